// The shared-memory region joining segw-dataplane and segw-controlplane: a
// file under /dev/hugepages (hugetlbfs) or /dev/shm that the data plane
// creates and the control plane maps. It holds a RegionHeader and the five
// SPSC rings of DESIGN.md (command, completion, event, punt, inject).
//
// Memory layout (offsets from the start of the file; all in the header):
//
//   0      RegionHeader (magic, layout version, sizes, ring table, the two
//          sides' generations and heartbeats), padded to kHeaderBytes
//   4096   command ring     SpscRing<Command>       control -> data
//          completion ring  SpscRing<Completion>    data -> control
//          event ring       SpscRing<Event>         data -> control
//          punt ring        SpscRing<PuntPacket>    data -> control
//          inject ring      SpscRing<InjectPacket>  control -> data
//          SA inventory     SaInventoryHeader + entries (sa_inventory.h),
//                           written by the data plane, read by the control
//                           plane; absent when created with capacity 0
//          (each aligned to kFalseSharingRange; the file is rounded up to
//          the backing page size, 2 MB on hugetlbfs)
//
// Lifecycle and restarts:
//   - The data plane calls Region::create once at start. The region is built
//     under a temporary name and published with link() (or rename() when
//     replacing), so an attaching control plane never sees a half-built one.
//   - The control plane calls Region::attach, which validates everything it
//     maps (a stale or foreign file gives a clear error, never a crash).
//   - Each side's generation is incremented every time it (re)attaches; a
//     data plane that replaces its predecessor's region carries both
//     generations over, so they never go back. Commands carry the control
//     plane's generation (messages.h) so a dead control plane's leftovers
//     are refused.
//   - Each side calls heartbeat() periodically; peer_alive() tells the other
//     whether the peer is still beating. A clean close clears the heartbeat.
//   - Restarts: the data plane remembers peer().generation; a different
//     value later means a new control plane attached (it resynchronises
//     from the region). The control plane sees a data plane restart as
//     superseded(): the name now points at a new file, which it attaches
//     afresh, finding a higher data-plane generation, and re-pushes its SAs.
//   - Each side holds an open-file-description lock on its own byte of the
//     file for as long as it is attached, so a second data plane or a second
//     control plane cannot attach to the same region and break the
//     single-producer/single-consumer rule; the kernel drops the lock when a
//     process dies, so a restarted one can take over.
//
// Thread rules: create/attach/destruction, superseded() and unlink() from
// one control thread. The ring accessors return the shared rings; each ring
// has one producer thread and one consumer thread (spsc_ring.h).
// heartbeat() from the owning side's one thread; the read-only queries from
// any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "shared/channel/dataplane_statistics.h"
#include "shared/channel/messages.h"
#include "shared/channel/sa_inventory.h"
#include "shared/channel/spsc_ring.h"
#include "shared/result.h"

namespace segw::shared::channel {

// Version of everything laid out in the region: header, ring layout and every
// message format. Bump it on any such change (the static_asserts on sizes in
// messages.h and below say where).
// 2: SA inventory (sa_inventory.h) added after the rings.
// 3: the data plane's statistics (dataplane_statistics.h) in the header
//    page, which grew from 4 KB to 16 KB for them.
inline constexpr uint32_t kLayoutVersion = 3;
// "SEGWCHAN" read as a little-endian 64-bit word.
inline constexpr uint64_t kRegionMagic = 0x4e41484357474553;
// The header gets pages of its own: rings start page-aligned. It holds the
// RegionHeader, then at kStatisticsOffset the data plane's statistics.
inline constexpr uint64_t kHeaderBytes = 16384;
inline constexpr uint64_t kStatisticsOffset = 512;

inline constexpr const char* kHugepageDirectory = "/dev/hugepages";
inline constexpr const char* kSharedMemoryDirectory = "/dev/shm";

enum class RingId : uint8_t { kCommand, kCompletion, kEvent, kPunt, kInject };
inline constexpr int kRingCount = 5;
const char* to_string(RingId ring);

// Where one ring lives, as the creator laid it out.
struct RingDescriptor {
  uint64_t offset = 0;      // from the start of the region
  uint64_t bytes = 0;       // SpscRing<T>::bytes_for(capacity)
  uint32_t capacity = 0;    // slots, a power of two
  uint32_t slot_size = 0;   // sizeof(T) in the creator's build
};

// Where the SA inventory lives; capacity 0 = none.
struct InventoryDescriptor {
  uint64_t offset = 0;      // of its SaInventoryHeader, from the start of the region
  uint64_t bytes = 0;       // sa_inventory_bytes(capacity)
  uint32_t capacity = 0;    // entries
  uint32_t entry_bytes = 0; // sizeof(SaInventoryEntry) in the creator's build
};

// What one side publishes about itself. Written only by that side (and by
// the creator before publication), so each gets its own line.
struct alignas(kFalseSharingRange) SideState {
  // How many times this side has attached to this region or its
  // predecessors; 0 = never. A change means the peer restarted.
  std::atomic<uint64_t> generation{0};
  // CLOCK_MONOTONIC (system-wide, so comparable across processes) at this
  // side's last heartbeat; 0 = not attached (never, or closed cleanly).
  std::atomic<uint64_t> heartbeat_ns{0};
  std::atomic<uint64_t> pid{0};  // process attached as this side, for diagnostics
};

struct RegionHeader {
  // kRegionMagic; stored last by the creator with release, loaded first by
  // an attacher with acquire: a region with the magic is fully initialised.
  std::atomic<uint64_t> magic{0};
  uint32_t layout_version = 0;
  uint32_t header_bytes = 0;     // sizeof(RegionHeader) in the creator's build
  uint64_t region_bytes = 0;     // bytes laid out (the file may be larger: page rounding)
  uint64_t instance_id = 0;      // random per create(): a replacement region differs
  uint64_t created_realtime_ns = 0;
  std::array<RingDescriptor, kRingCount> rings{};
  // The SA inventory and per-SA counters the control plane reads without
  // messages (sa_inventory.h).
  InventoryDescriptor inventory{};
  SideState data_plane;
  SideState control_plane;
};
static_assert(sizeof(RegionHeader) <= kStatisticsOffset);
static_assert(kStatisticsOffset % alignof(DataPlaneStatistics) == 0);
static_assert(kStatisticsOffset + sizeof(DataPlaneStatistics) <= kHeaderBytes);
static_assert(sizeof(RegionHeader) == 512, "RegionHeader changed: bump kLayoutVersion");
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Ring sizes in slots (powers of two). The defaults take about 10 MB:
// 4096 commands absorb a burst of path updates at the 1,000,000/s target
// while the control lcore drains them; 1024 IKE packets each way outlast a
// storm of IKE_SA_INIT retransmissions.
struct RingCapacities {
  uint32_t command = 4096;
  uint32_t completion = 4096;
  uint32_t event = 4096;
  uint32_t punt = 1024;
  uint32_t inject = 1024;
};

enum class RegionBacking : uint8_t {
  kAutomatic,     // hugetlbfs when mounted at /dev/hugepages with room, else /dev/shm
  kHugepages,     // /dev/hugepages only
  kSharedMemory,  // /dev/shm only
};

struct RegionCreateOptions {
  RingCapacities capacities;
  RegionBacking backing = RegionBacking::kAutomatic;
  // Remove an existing region of the same name (a dead data plane's)
  // instead of failing; its generations are carried over.
  bool replace = false;
  // Non-empty: create in this directory instead, whatever `backing` says
  // (tests, and hosts that mount hugetlbfs elsewhere).
  std::string directory;
  // Install commands carry keys: owner-only by default.
  uint32_t file_mode = 0600;
  // Entries of the SA inventory (one per installed SA and direction); 0 =
  // no inventory.
  uint32_t inventory_capacity = 0;
};

struct RegionAttachOptions {
  // Non-empty: look only here; else /dev/hugepages, then /dev/shm.
  std::string directory;
};

enum class RegionSide : uint8_t { kDataPlane, kControlPlane };
const char* to_string(RegionSide side);

struct PeerStatus {
  uint64_t generation = 0;
  uint64_t heartbeat_ns = 0;  // 0: not attached
  uint64_t pid = 0;
};

class Region {
 public:
  // Data plane: creates and maps region `name` (letters, digits, '.', '_',
  // '-'; not starting with '.'; at most 200 characters), lays out the rings,
  // becomes its data-plane side (generation incremented, heartbeat set) and
  // publishes it under the name. Errors: invalid name or capacities; a
  // region of that name exists (in either directory) and !replace; no
  // directory usable or no room (each attempt's reason is in the message).
  static Result<Region> create(std::string_view name, const RegionCreateOptions& options = {});

  // Control plane: maps region `name` and validates it: "not a segw region",
  // "layout version 3, expected 1", "truncated", a ring table that does not
  // fit, ring slot sizes of another build. Then becomes its control-plane
  // side (generation incremented, heartbeat set). Errors also: no such
  // region; another control plane is attached.
  static Result<Region> attach(std::string_view name, const RegionAttachOptions& options = {});

  // Removes region `name` (tools, tests, a stale region after a crash).
  // Mappings stay valid until closed. Error if there is none.
  static Status remove(std::string_view name, const RegionAttachOptions& options = {});

  Region(Region&& other) noexcept;
  Region& operator=(Region&& other) noexcept;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  // Clears this side's heartbeat (a clean close), and for the data plane
  // wipes the command ring's slots (keys of commands never consumed);
  // unlinks the name if unlink_on_close was requested and the name still
  // refers to this region; unmaps; closes (dropping the side's lock).
  ~Region();

  RegionSide side() const { return side_; }
  const std::string& path() const { return path_; }
  bool on_hugepages() const { return on_hugepages_; }
  uint64_t mapped_bytes() const { return mapped_bytes_; }
  const RegionHeader& header() const { return *header_; }

  SpscRing<Command>& command_ring() { return *command_ring_; }
  SpscRing<Completion>& completion_ring() { return *completion_ring_; }
  SpscRing<Event>& event_ring() { return *event_ring_; }
  SpscRing<PuntPacket>& punt_ring() { return *punt_ring_; }
  SpscRing<InjectPacket>& inject_ring() { return *inject_ring_; }
  // The SA inventory; !present() when the region was created without one.
  // Data plane: the control lcore writes it; control plane: read only.
  SaInventory inventory() const { return inventory_; }
  // The data plane's statistics (dataplane_statistics.h): the data plane's
  // control lcore writes them, anyone reads them.
  DataPlaneStatistics& statistics();
  const DataPlaneStatistics& statistics() const;

  // This side's generation, as set when it attached.
  uint64_t own_generation() const;
  PeerStatus peer() const;

  // Publishes this side's liveness: now, or `monotonic_ns` (tests). Cheap
  // (one store); call it every few milliseconds from the side's main loop.
  void heartbeat();
  void heartbeat_at(uint64_t monotonic_ns);

  // True when the peer is attached and beat within `timeout` of now (or of
  // `now_ns`). A peer that closed cleanly is not alive at once; one that
  // died is not alive after `timeout`.
  bool peer_alive(std::chrono::nanoseconds timeout) const;
  bool peer_alive_at(std::chrono::nanoseconds timeout, uint64_t now_ns) const;

  // True when the name no longer refers to this region: removed, or
  // replaced by a restarted data plane. The control plane then attaches
  // again. Error only when the name cannot be checked.
  Result<bool> superseded() const;

  // Removes the name now (if it still refers to this region); the mapping
  // stays valid. unlink_on_close does it at destruction.
  Status unlink();
  void set_unlink_on_close(bool unlink) { unlink_on_close_ = unlink; }

  // CLOCK_MONOTONIC in ns: the clock of heartbeats and message timestamps.
  static uint64_t monotonic_now_ns();

 private:
  Region() = default;
  // Finds the five rings from the header's table, checking each (attach),
  // and the SA inventory.
  Status open_rings();
  void close_now();
  SideState& own_state();
  const SideState& peer_state() const;

  RegionSide side_ = RegionSide::kDataPlane;
  std::string path_;
  int fd_ = -1;
  void* base_ = nullptr;
  uint64_t mapped_bytes_ = 0;
  bool on_hugepages_ = false;
  bool unlink_on_close_ = false;
  RegionHeader* header_ = nullptr;
  SpscRing<Command>* command_ring_ = nullptr;
  SpscRing<Completion>* completion_ring_ = nullptr;
  SpscRing<Event>* event_ring_ = nullptr;
  SpscRing<PuntPacket>* punt_ring_ = nullptr;
  SpscRing<InjectPacket>* inject_ring_ = nullptr;
  SaInventory inventory_;
};

}  // namespace segw::shared::channel
