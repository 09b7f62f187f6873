// Runtime objects the packet path reads: Path (immutable outer addressing),
// Tunnel (the one atomic pointer to a tunnel's current Path, shared by all
// its SAs so a move is one store), EspSa (one direction of one SA).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/esp/crypto.h"
#include "dataplane/esp/replay_window.h"
#include "dataplane/stats/drop_reason.h"
#include "shared/sa_descriptor.h"

namespace segw::dp {

// Outer addressing of a tunnel, with the outer IP (+UDP) header prebuilt
// (STYLE: dpdk lib/ipsec sa.c builds the template once at setup). Never
// modified after it is published; a move publishes a new Path.
struct Path {
  shared::PathDescriptor descriptor;
  uint64_t generation = 0;      // publication number, increases per tunnel
  bool ipv6 = false;
  bool udp_encapsulation = true;
  uint8_t header_length = 0;    // outer IP header + UDP header when encapsulating
  // Inbound new-source check compares against these, in network order.
  uint16_t remote_port_be = 0;
  alignas(16) uint8_t remote_address[16] = {};
  alignas(16) uint8_t header_template[48] = {};

  // Built in `memory` (sizeof(Path) bytes, 64-byte aligned) when given,
  // else on the heap (delete it then).
  static Path* create(const shared::PathDescriptor& descriptor, uint64_t generation,
                      void* memory = nullptr);
};

struct Tunnel {
  // Workers load with acquire; the control thread stores with release after
  // the new Path is fully built, so a worker never sees a half-built Path.
  std::atomic<const Path*> path{nullptr};
  uint32_t id = 0;
  uint32_t sa_count = 0;       // control thread only
  uint64_t next_generation = 1;  // control thread only
};

// A traffic selector in the form the packet path checks quickly.
struct SelectorRange {
  bool ipv6 = false;
  uint8_t protocol = 0;        // 0 = any
  uint16_t port_start = 0;
  uint16_t port_end = 65535;
  uint32_t ipv4_start = 0;     // host order
  uint32_t ipv4_end = 0;
  uint8_t ipv6_start[16] = {};
  uint8_t ipv6_end[16] = {};

  static SelectorRange from(const shared::TrafficSelector& selector);
  bool contains_ipv4(uint32_t address_host_order) const {
    return !ipv6 && address_host_order >= ipv4_start && address_host_order <= ipv4_end;
  }
  bool contains_ipv6(const uint8_t* address) const {
    return ipv6 && std::memcmp(address, ipv6_start, 16) >= 0 && std::memcmp(address, ipv6_end, 16) <= 0;
  }
  bool ports_constrained() const { return protocol != 0 || port_start != 0 || port_end != 65535; }
};

// An SA's traffic selectors: immutable once published, replaced as a whole
// (update_selectors swaps the SA's pointer and frees the old set after an
// RCU grace period), so a worker checks a packet against one consistent
// set. Sized to the selectors it holds (most SAs have one of each): inline
// arrays of kMaxSelectors cost 768 bytes per SA.
struct alignas(8) SelectorSet {
  uint8_t local_count = 0;
  uint8_t remote_count = 0;

  static size_t bytes_for(int local_count, int remote_count) {
    return sizeof(SelectorSet) + sizeof(SelectorRange) * static_cast<size_t>(local_count + remote_count);
  }
  size_t bytes() const { return bytes_for(local_count, remote_count); }
  // The ranges follow the header: local ones first, then remote ones.
  const SelectorRange* local() const { return reinterpret_cast<const SelectorRange*>(this + 1); }
  const SelectorRange* remote() const { return local() + local_count; }
  SelectorRange* ranges() { return reinterpret_cast<SelectorRange*>(this + 1); }
};
static_assert(alignof(SelectorRange) <= alignof(SelectorSet));

// Counters written by workers with relaxed atomic adds (several workers may
// share an SA) and read by anyone without messages.
struct alignas(64) SaCounters {
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> new_source_packets{0};  // verified, but from another outer address
  // The latest such source, for the control lcore's new-source event: the
  // address's 16 bytes (IPv4 in the first 4) and (family << 16 | UDP port in
  // host order, 0 = raw ESP). Workers store the address words, then
  // new_source_endpoint with release; the reader loads that with acquire
  // first. Two workers reporting different sources of one SA at once may
  // mix them: the event is a hint the control plane verifies (DESIGN: NAT
  // remapping), never a reason to move the SA.
  std::atomic<uint64_t> new_source_address[2] = {};
  std::atomic<uint32_t> new_source_endpoint{0};
  // 1 while this SA's SPI waits in the new-source notice ring (EspContext):
  // one notice per SA until the control lcore has looked at it, however
  // many packets come from the new source meanwhile.
  mutable std::atomic<uint32_t> new_source_queued{0};  // the control lcore holds const EspSa*
  std::atomic<uint64_t> drops[kDropReasonCount] = {};
  std::atomic<bool> soft_lifetime_reached{false};
  std::atomic<bool> hard_lifetime_reached{false};
};

// One direction of one ESP SA. Hot fields first, on their own cache line.
struct alignas(64) EspSa {
  // --- cache line 0: everything a packet reads ---
  uint32_t spi = 0;
  uint32_t table_index = 0;
  shared::EspAlgorithm algorithm{};
  shared::SaDirection direction{};
  uint8_t iv_length = 0;
  uint8_t icv_length = 0;
  uint8_t block_size = 0;
  uint8_t cipher_key_length = 0;
  bool aead = false;
  bool esn = false;
  bool hmac_sha256 = false;
  uint8_t salt[4] = {};
  const SaKeys* keys = nullptr;
  Tunnel* tunnel = nullptr;
  uint64_t hard_packets = 0;  // 0 = no limit
  uint64_t hard_bytes = 0;
  // --- cache line 1: outbound sequence / inbound window ---
  alignas(64) std::atomic<uint64_t> sequence{0};  // outbound: last sequence number used
  ReplayWindow replay;                              // inbound
  // Read once per packet after the hard limits; kept off line 0, which is full.
  uint64_t soft_packets = 0;
  uint64_t soft_bytes = 0;
  // Inbound packets are checked against it after decryption (acquire: the
  // set is fully built before it is published). Outbound packets never read
  // it; their routes in the FIB are what the selectors say.
  std::atomic<const SelectorSet*> selectors{nullptr};
  // --- counters on their own lines ---
  SaCounters counters;
  char name[32] = {};
};
// Everything a packet reads first must stay on one line.
static_assert(offsetof(EspSa, sequence) == 64, "EspSa cache line 0 overflowed");
// The selector pointer rides on line 1, which an inbound packet reads anyway.
static_assert(offsetof(EspSa, selectors) + sizeof(EspSa::selectors) <= 128, "EspSa cache line 1 overflowed");

}  // namespace segw::dp
