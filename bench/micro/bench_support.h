// Micro-benchmark support: the process-wide mbuf pool, SA sets (SaTables
// holding N generated tunnels, cached so a 1,000,000-tunnel set is built once
// per process), one worker's ESP context, bursts of mbufs and frame loading.
//
// Threads: everything here runs on the main lcore (benchmarks are single
// threaded); nothing is thread safe.
#pragma once

#include <rte_mbuf.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/esp/esp_context.h"
#include "dataplane/sad/sa_table.h"
#include "shared/sa_descriptor.h"

namespace segw::bench {

// Packets per ESP call and per lookup round: the data plane's default burst.
inline constexpr uint16_t kBurst = 32;
// Tunnel counts of the scaling benchmarks.
inline constexpr uint32_t kManyTunnels = 1000;
inline constexpr uint32_t kMillionTunnels = 1000000;

// --- process ---------------------------------------------------------------

// Creates the mbuf pool every Burst takes from (main, after rte_eal_init).
// False on failure (logged).
bool create_packet_pool();
// Frees the cached SA sets and the pool; returns the mbufs still in use
// (a leak when not 0). Call after the last benchmark.
unsigned release_all();

// --- generated tunnels ------------------------------------------------------
//
// Tunnel i (0-based) of a set, from the gateway's point of view:
//   path      192.0.2.1:4500 <-> 100.64.0.0 + i : 1024 + i % 60000 (ESP in UDP)
//   local     10.0.0.0/8, fd00:a::/32 (core side)
//   remote    172.16.0.0 + i /32, and fd00:172:<i>::/64 in sets of fewer than
//             100,000 tunnels (behind the peer; see with_ipv6_selector in the .cc)
//   inbound   SPI kInboundSpiBase | i (the low bits are the table index)
//   outbound  SPI kOutboundSpiBase + i
inline constexpr uint32_t kInboundSpiBase = 0x01000000;
inline constexpr uint32_t kOutboundSpiBase = 0x02000000;

uint32_t inbound_spi(uint32_t tunnel);
// The peer-side host of tunnel i's traffic (inside its remote selectors);
// the core-side host is 10.0.0.1.
uint32_t peer_inner_ipv4(uint32_t tunnel);  // host order
void peer_inner_ipv6(uint32_t tunnel, uint8_t out[16]);

shared::SaDescriptor inbound_descriptor(shared::EspAlgorithm algorithm, uint32_t tunnel, bool ipv6_selector);
shared::SaDescriptor outbound_descriptor(shared::EspAlgorithm algorithm, uint32_t tunnel, bool ipv6_selector);

// --- SA sets ------------------------------------------------------------------

// One SaTables with `count` tunnels; tunnel i uses algorithms[i % size].
// Inbound tables are built without anti-replay enforcement (SaTableConfig::
// anti_replay = false) so decapsulation can loop over one captured burst.
class SaSet {
 public:
  // The cached set for (algorithms, count), built on first use. A set with
  // inbound SAs also serves callers that do not need them. EAL memory bounds
  // the cache: every SaTables holds two 64 MB first-level FIB tables, and a
  // 1,000,000-tunnel set ~900 MB with its RIB nodes. Building a set of
  // >= 100,000 tunnels drops every other set; at most three small ones are
  // kept, and when EAL memory runs out the least recently used go first
  // (rebuilt when needed again: register benchmarks grouped by set). Null
  // (after logging) if building failed.
  static SaSet* get(std::initializer_list<shared::EspAlgorithm> algorithms, uint32_t count, bool with_inbound);
  // Drops the least recently used cached set; false if none is left.
  static bool make_room();

  ~SaSet();
  SaSet(const SaSet&) = delete;
  SaSet& operator=(const SaSet&) = delete;

  const dp::SaTables& tables() const { return *tables_; }
  uint32_t count() const { return count_; }
  bool has_inbound() const { return with_inbound_; }
  // Outbound SA of tunnel i (for resetting its sequence number).
  dp::EspSa* outbound(uint32_t tunnel) const { return outbound_[tunnel]; }
  // Memory the set took while it was built, per tunnel (slab arena: SAs,
  // keys, windows, tunnels, paths; slot arrays; malloc: control maps; EAL:
  // FIBs and RIB nodes), and the build time.
  double bytes_per_tunnel() const { return bytes_per_tunnel_; }
  double build_seconds() const { return build_seconds_; }
  // Every outbound sequence number back to 0, so a long run of a
  // non-ESN SA never reaches the 2^32 limit (RFC 4303 3.3.3).
  void reset_sequences();

 private:
  SaSet() = default;
  static std::unique_ptr<SaSet> build(const std::vector<shared::EspAlgorithm>& algorithms, uint32_t count,
                                      bool with_inbound);

  std::unique_ptr<dp::SaTables> tables_;
  std::vector<dp::EspSa*> outbound_;
  std::vector<shared::EspAlgorithm> algorithms_;
  uint32_t count_ = 0;
  bool with_inbound_ = false;
  double bytes_per_tunnel_ = 0;
  double build_seconds_ = 0;
  uint64_t last_use_ = 0;

  friend struct SaSetCache;
};

// --- one worker ---------------------------------------------------------------

// What a worker hands the ESP bursts: its own IPsec-MB manager and counters,
// the set's tables, the access MTU of a standard Ethernet port.
dp::EspContext worker_context(const dp::SaTables& tables);
// Sum of the worker's drop counters (expected to stay 0).
uint64_t worker_drops();
// Names the worker's non-zero drop reasons ("no_route 3, ...").
std::string worker_drop_summary();

// --- bursts -------------------------------------------------------------------

// kBurst mbufs taken from the pool for one benchmark run and given back at
// the end. If an ESP call drops packets (it frees them), lose() gives back
// the survivors and the burst owns nothing any more.
class Burst {
 public:
  Burst();
  ~Burst();
  Burst(const Burst&) = delete;
  Burst& operator=(const Burst&) = delete;

  bool ok() const { return owned_; }
  rte_mbuf** mbufs() { return mbufs_.data(); }
  rte_mbuf* operator[](size_t i) const { return mbufs_[i]; }
  // `survivors` are the mbufs an ESP call handed back (a subset of this burst).
  void lose(std::span<rte_mbuf* const> survivors);

 private:
  std::array<rte_mbuf*, kBurst> mbufs_{};
  bool owned_ = false;
};

// Puts `frame` at the start of `m`'s data room as the classifier leaves it.
// Core side: l2_len 14, packet_type L2_ETHER | L3_IPV4/IPV6.
// Access side (ESP in UDP over IPv4): l2/l3/l4_len 14/20/8.
void load_core_frame(rte_mbuf* m, const uint8_t* frame, uint32_t length, bool ipv6);
void load_access_frame(rte_mbuf* m, const uint8_t* frame, uint32_t length);
// Only what encapsulation consumed: data offset, lengths, metadata and the
// first `header_length` bytes (Ethernet + IP + UDP headers, which the
// encryption overwrote); the rest of the frame stays as it is.
void reload_core_header(rte_mbuf* m, const uint8_t* header, uint32_t header_length, uint32_t frame_length,
                        bool ipv6);

// An Ethernet frame of the core side: IPv4/UDP of `inner_size` bytes from
// 10.0.0.1 to tunnel `tunnel`'s peer-side host (what encapsulation takes).
std::vector<uint8_t> core_frame(uint32_t tunnel, uint32_t inner_size);
// The inner IPv4/UDP packet tunnel `tunnel`'s peer sends: from its host to
// 10.0.0.1, `inner_size` bytes.
std::vector<uint8_t> peer_inner_packet(uint32_t tunnel, uint32_t inner_size);

// kBurst ESP frames (sequence numbers 1..kBurst) that tunnel `tunnel` of an
// (algorithm, ...) set accepts, made by the peer-side encryptor (segw's own
// outbound code with the SA mirrored) and cached per (algorithm, size).
// Empty (after logging) on failure.
const std::vector<std::vector<uint8_t>>& peer_frames(shared::EspAlgorithm algorithm, uint32_t tunnel,
                                                     uint32_t inner_size);

}  // namespace segw::bench
