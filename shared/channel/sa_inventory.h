// The SA inventory: what the data plane has installed, with per-SA counters,
// kept inside the shared-memory region so a (re)started control plane reads
// it WITHOUT messages (resynchronisation after a restart, counters for the
// REST endpoint and segwctl-dp). Never holds key material.
//
// Layout (inside the region, at RegionHeader::inventory.offset):
//
//   SaInventoryHeader        capacity, entry size, change count, data-plane
//                            channel counters (punted, injected, ...)
//   SaInventoryEntry[capacity]  one per slot; a slot holds one SA (one
//                            direction) or is free
//
// Writer: the data plane's control lcore only (one thread of one process).
// It fills a slot on SA install, rewrites it on every path update, clears
// it on remove, and refreshes the counters of every installed slot every
// [channel] counters_refresh_ms. Slot numbers are the data plane's choice
// and may be reused after a remove: identify an SA by (spi, direction).
//
// Readers: the control plane (any thread), tests, tools. A reader never
// writes anything here. Each entry is a seqlock: read_entry() returns a
// consistent copy of one entry or says the slot is free; it never blocks the
// writer and retries only while that one entry is being rewritten.
//
// Why a seqlock with word-wise atomics: the writer must never wait for a
// reader (a dead control plane cannot hold anything), and copying the
// record with plain memcpy while the other process writes it would be a
// data race; relaxed atomic loads/stores of 8-byte words are race-free,
// and the sequence word orders them (fences below say how).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "shared/sa_descriptor.h"

namespace segw::shared::channel {

// Bits of SaInventoryRecord::flags.
enum SaInventoryFlag : uint8_t {
  kSaFlagEsn = 1u << 0,                     // RFC 4303 2.2.1 extended sequence numbers
  kSaFlagSoftLifetimeReached = 1u << 1,     // soft byte/packet limit reached (rekey)
  kSaFlagHardLifetimeReached = 1u << 2,     // hard limit reached: the SA drops traffic
  kSaFlagSequenceNearExhaustion = 1u << 3,  // outbound: sequence past the threshold
  kSaFlagIdle = 1u << 4,                    // no packet for [channel] idle_timeout_ms
};

// One SA as the data plane has it. Trivially copyable, a multiple of 8 bytes
// (copied word by word). Times are CLOCK_MONOTONIC ns (Region::monotonic_now_ns).
struct SaInventoryRecord {
  uint32_t spi = 0;
  SaDirection direction = SaDirection::kInbound;
  EspAlgorithm algorithm = EspAlgorithm::kAesGcm128;
  uint8_t flags = 0;                 // SaInventoryFlag bits
  uint8_t local_selector_count = 0;  // selectors themselves: see the install command
  uint32_t tunnel_id = 0;
  uint32_t replay_window = 0;        // inbound; 0 outbound
  uint8_t remote_selector_count = 0;
  uint8_t reserved[7] = {};
  // The tunnel's current outer path, and the control plane's path_generation
  // of the UpdatePath command that published it (0: the path given at install).
  PathDescriptor path;
  uint64_t path_generation = 0;
  uint64_t installed_ns = 0;
  uint64_t path_updated_ns = 0;      // = installed_ns until a path update
  // Counters: exact as of counters_refreshed_ns (the refresh interval bounds
  // how stale they are).
  uint64_t counters_refreshed_ns = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t drops = 0;                // all drop reasons charged to this SA
  uint64_t new_source_packets = 0;   // inbound: verified, from another outer address/port
  // Last refresh at which `packets` had grown (so to refresh-interval
  // precision); installed_ns while no packet has been seen.
  uint64_t last_packet_ns = 0;
  uint64_t sequence_number = 0;      // outbound: last sequence number used
  Lifetime lifetime;                 // the limits installed with the SA
  std::array<char, 32> name{};       // operator label, NUL-terminated
};
static_assert(std::is_trivially_copyable_v<SaInventoryRecord>);
static_assert(sizeof(SaInventoryRecord) % 8 == 0);
static_assert(sizeof(SaInventoryRecord) == 208, "SaInventoryRecord changed: bump kLayoutVersion");

// One slot: a sequence word and the record as words.
//   sequence == 0: never used (free); odd: being written;
//   even and non-zero: `words` hold a record, installed when `installed` is 1.
struct SaInventoryEntry {
  static constexpr size_t kWords = sizeof(SaInventoryRecord) / 8;
  std::atomic<uint64_t> sequence{0};
  std::atomic<uint64_t> installed{0};  // 1: the slot holds an SA; 0: free
  std::array<uint64_t, kWords> words{};
};
static_assert(sizeof(SaInventoryEntry) == 224, "SaInventoryEntry changed: bump kLayoutVersion");

// Data-plane channel counters, monotonic, written by the control lcore
// (relaxed; each is exact on its own, not as a set).
struct SaInventoryCounters {
  std::atomic<uint64_t> commands{0};            // commands popped
  std::atomic<uint64_t> commands_failed{0};     // answered with a code other than kOk
  std::atomic<uint64_t> completions_dropped{0}; // completion ring full (control plane not reading)
  std::atomic<uint64_t> events{0};              // events pushed
  std::atomic<uint64_t> events_suppressed{0};   // held back by the per-SA rate limit
  std::atomic<uint64_t> events_dropped{0};      // event ring full
  std::atomic<uint64_t> punted{0};              // IKE packets put on the punt ring
  std::atomic<uint64_t> punt_ring_full{0};      // IKE packets dropped: punt ring full
  std::atomic<uint64_t> punt_too_big{0};        // IKE packets dropped: > kMaxIkePacketBytes
  std::atomic<uint64_t> injected{0};            // IKE packets handed to the access port
  std::atomic<uint64_t> inject_errors{0};       // bad InjectPacket, no mbuf, or TX refused
  std::atomic<uint64_t> reserved[5] = {};
};

struct SaInventoryHeader {
  uint32_t capacity = 0;       // entries that follow
  uint32_t entry_bytes = 0;    // sizeof(SaInventoryEntry) in the writer's build
  // Installed entries now, and a count of every install/remove/path update
  // (a reader that sees `changes` unchanged across a full scan has a
  // consistent picture of the whole table, not just of each entry).
  std::atomic<uint64_t> installed{0};
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> counters_refreshed_ns{0};  // last full refresh
  SaInventoryCounters counters;
  uint8_t reserved[32] = {};
};
static_assert(sizeof(SaInventoryHeader) == 192, "SaInventoryHeader changed: bump kLayoutVersion");
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Bytes an inventory of `capacity` entries takes in the region.
constexpr uint64_t sa_inventory_bytes(uint32_t capacity) {
  return sizeof(SaInventoryHeader) + uint64_t(capacity) * sizeof(SaInventoryEntry);
}

// Writer side (data plane control lcore only). Publishes `record` in
// `entry`: readers see either the old or the new record, never a mix.
inline void write_inventory_entry(SaInventoryEntry& entry, const SaInventoryRecord& record,
                                  bool installed = true) {
  std::array<uint64_t, SaInventoryEntry::kWords> words;
  std::memcpy(words.data(), &record, sizeof(record));
  uint64_t sequence = entry.sequence.load(std::memory_order_relaxed);
  entry.sequence.store(sequence + 1, std::memory_order_relaxed);
  // release fence: a reader that sees any of the word stores below also
  // sees the odd sequence (and retries).
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t i = 0; i < words.size(); ++i)
    std::atomic_ref<uint64_t>(entry.words[i]).store(words[i], std::memory_order_relaxed);
  entry.installed.store(installed ? 1 : 0, std::memory_order_relaxed);
  // release: the words are visible before the even sequence that blesses them.
  entry.sequence.store(sequence + 2, std::memory_order_release);
}

// Writer side: marks the slot free (the record is wiped to zeros).
inline void clear_inventory_entry(SaInventoryEntry& entry) {
  write_inventory_entry(entry, SaInventoryRecord{}, false);
}

enum class InventoryRead : uint8_t { kInstalled, kFree, kBusy };

// Reader side (any thread of any process). kInstalled: `out` is a
// consistent copy. kFree: the slot holds no SA (`out` untouched). kBusy: the
// writer kept rewriting the entry for `max_attempts` tries (call again).
inline InventoryRead read_inventory_entry(const SaInventoryEntry& entry, SaInventoryRecord& out,
                                          int max_attempts = 1000) {
  std::array<uint64_t, SaInventoryEntry::kWords> words;
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    // acquire: pairs with the writer's final release store.
    uint64_t before = entry.sequence.load(std::memory_order_acquire);
    if (before == 0) return InventoryRead::kFree;
    if (before & 1) continue;
    bool installed = entry.installed.load(std::memory_order_relaxed) != 0;
    for (size_t i = 0; i < words.size(); ++i)
      words[i] = std::atomic_ref<uint64_t>(const_cast<uint64_t&>(entry.words[i]))
                     .load(std::memory_order_relaxed);
    // acquire fence: the word loads above happen before the re-check below,
    // so an unchanged sequence proves no write overlapped them.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (entry.sequence.load(std::memory_order_relaxed) != before) continue;
    if (!installed) return InventoryRead::kFree;
    std::memcpy(static_cast<void*>(&out), words.data(), sizeof(out));
    return InventoryRead::kInstalled;
  }
  return InventoryRead::kBusy;
}

// A view of the inventory in a mapped region (Region::inventory()).
class SaInventory {
 public:
  SaInventory() = default;
  SaInventory(SaInventoryHeader* header, SaInventoryEntry* entries)
      : header_(header), entries_(entries) {}

  // False when the region has no inventory (capacity 0 at create).
  bool present() const { return header_ != nullptr && header_->capacity != 0; }
  uint32_t capacity() const { return header_ ? header_->capacity : 0; }
  SaInventoryHeader& header() { return *header_; }
  const SaInventoryHeader& header() const { return *header_; }
  SaInventoryEntry& entry(uint32_t slot) { return entries_[slot]; }
  const SaInventoryEntry& entry(uint32_t slot) const { return entries_[slot]; }

  // Reader: visits every installed SA with a consistent copy of its entry
  // (slot, record). Slots busy for too long are skipped and counted in the
  // return value (0: the scan saw every entry).
  template <typename Visit>
  uint32_t for_each_installed(Visit&& visit) const {
    uint32_t skipped = 0;
    SaInventoryRecord record;
    for (uint32_t slot = 0; slot < capacity(); ++slot) {
      switch (read_inventory_entry(entries_[slot], record)) {
        case InventoryRead::kInstalled: visit(slot, record); break;
        case InventoryRead::kFree: break;
        case InventoryRead::kBusy: ++skipped; break;
      }
    }
    return skipped;
  }

  // Reader: the entry of SA (spi, direction), by a scan (the control plane
  // keeps its own index when it needs this often). False when absent.
  bool find(uint32_t spi, SaDirection direction, SaInventoryRecord& out) const {
    bool found = false;
    for_each_installed([&](uint32_t, const SaInventoryRecord& record) {
      if (!found && record.spi == spi && record.direction == direction) {
        out = record;
        found = true;
      }
    });
    return found;
  }

 private:
  SaInventoryHeader* header_ = nullptr;
  SaInventoryEntry* entries_ = nullptr;
};

}  // namespace segw::shared::channel
