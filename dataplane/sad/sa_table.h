// SA tables: inbound SAs indexed straight from the SPI (no hash), outbound
// SAs reached by longest-prefix match on the inner destination (DPDK FIB for
// IPv4 and IPv6), tunnels with their current Path, and RCU-deferred frees.
//
// Threads: workers call the const lookups; exactly one control thread calls
// everything else (install, remove, path_update, reclaim).
#pragma once

#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dataplane/esp/crypto.h"
#include "dataplane/esp/runtime_sa.h"
#include "dataplane/sad/slab_arena.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::dp {

struct SaTableConfig {
  uint32_t capacity = 1u << 18;    // power of two; inbound SPIs carry log2(capacity) index bits
  uint32_t ipv4_tbl8_groups = 1u << 16;
  uint32_t ipv6_tbl8_groups = 1u << 16;
  uint32_t max_routes = 1u << 21;
  uint32_t max_workers = 64;       // RCU reader slots
  bool anti_replay = true;         // false: inbound windows kept, not enforced (benchmarks)
  int socket_id = 0;
};

class SaTables {
 public:
  static shared::Result<std::unique_ptr<SaTables>> create(const SaTableConfig& config);
  ~SaTables();
  SaTables(const SaTables&) = delete;
  SaTables& operator=(const SaTables&) = delete;

  // --- worker side (any lcore, inside an RCU read-side section) ---

  // The low bits of an inbound SPI are the table index; the entry's full SPI
  // must match, so a guessed index with other high bits finds nothing.
  EspSa* inbound_lookup(uint32_t spi) const {
    EspSa* sa = inbound_[spi & index_mask_].load(std::memory_order_acquire);
    return (sa != nullptr && sa->spi == spi) ? sa : nullptr;
  }
  EspSa* outbound_at(uint32_t index) const {
    return index < capacity_ ? outbound_[index].load(std::memory_order_acquire) : nullptr;
  }
  const std::atomic<EspSa*>* inbound_slot(uint32_t spi) const { return &inbound_[spi & index_mask_]; }
  const std::atomic<EspSa*>* outbound_slot(uint32_t index) const {
    return index < capacity_ ? &outbound_[index] : nullptr;
  }
  rte_fib* ipv4_routes() const { return fib4_; }
  rte_fib6* ipv6_routes() const { return fib6_; }
  rte_rcu_qsbr* rcu() const { return rcu_; }
  // FIB next hop = outbound index + 1; this value means "no route".
  static constexpr uint64_t kNoRoute = 0;

  // --- control thread ---

  // Installs one SA. Errors: invalid descriptor, duplicate SPI, index taken,
  // table full, tunnel path conflict, FIB full. On error nothing changed.
  shared::Status install(const shared::SaDescriptor& descriptor);
  // Removes one SA; its memory (and keys) is freed after every worker passed
  // a quiescent state. Error: unknown SA.
  shared::Status remove(uint32_t spi, shared::SaDirection direction);
  // Publishes a new Path for a tunnel (all its SAs at once). Error: unknown tunnel.
  shared::Status path_update(uint32_t tunnel_id, const shared::PathDescriptor& path);
  // Replaces an SA's traffic selectors as one unit (workers see the old set
  // or the new one, never a mix). Outbound: its routes follow, new ones
  // claimed before old ones are given up. Errors: unknown SA, too many
  // selectors, an outbound SA left without remote selectors, route table
  // full. On error nothing changed.
  shared::Status update_selectors(uint32_t spi, shared::SaDirection direction, const shared::TrafficSelector* local,
                                  int local_count, const shared::TrafficSelector* remote, int remote_count);
  // Frees what no worker can still see. Returns how many objects were freed.
  size_t reclaim();
  // Blocks until everything deferred is freed (shutdown, tests).
  void reclaim_all();

  const Tunnel* tunnel(uint32_t tunnel_id) const;
  EspSa* find(uint32_t spi, shared::SaDirection direction) const;
  void for_each_sa(const std::function<void(const EspSa&)>& visit) const;
  size_t inbound_count() const { return inbound_count_; }
  size_t outbound_count() const { return outbound_count_; }
  size_t pending_reclaim() const { return deferred_.size(); }
  uint32_t capacity() const { return capacity_; }
  // The arena behind SAs, tunnels, paths and selector sets: bytes mapped,
  // objects live (both fall back when SAs go: slab_arena.h).
  size_t arena_reserved_bytes() const { return arena_.reserved_bytes(); }
  size_t arena_objects_in_use() const { return arena_.objects_in_use(); }
  uint32_t index_bits() const { return index_bits_; }
  // Bytes of memory one SA of this algorithm/window costs (object, keys, window).
  static size_t sa_footprint(uint32_t replay_window, bool inbound);

 private:
  SaTables() = default;
  EspSa* allocate_sa(const shared::SaDescriptor& descriptor);
  void free_sa(EspSa* sa);
  void free_tunnel(Tunnel* tunnel);
  void free_path(const Path* path);
  const SelectorSet* build_selectors(const shared::TrafficSelector* local, int local_count,
                                     const shared::TrafficSelector* remote, int remote_count);
  void free_selectors(const SelectorSet* set);
  void defer(std::function<void()> free_function);
  struct RouteKey;
  // The prefixes that cover the remote selectors, sorted, each once.
  static std::vector<RouteKey> route_keys(const shared::TrafficSelector* remote, int remote_count);
  int claim_route(const RouteKey& key, uint32_t index);  // 0 or -errno
  void release_route(const RouteKey& key, uint32_t index);
  shared::Status add_routes(const shared::SaDescriptor& descriptor, uint32_t index);
  void remove_routes(uint32_t index);
  Tunnel* attach_tunnel(const shared::SaDescriptor& descriptor, shared::Status& status);
  void detach_tunnel(Tunnel* tunnel);

  struct RouteKey {
    bool ipv6;
    uint8_t depth;
    std::array<uint8_t, 16> address;
    auto operator<=>(const RouteKey&) const = default;
  };
  struct Deferred {
    uint64_t token;
    std::function<void()> free_function;
  };

  // SAs, tunnels and paths: huge-page backed (slab_arena.h). Declared first
  // so it outlives everything the destructor frees into it.
  SlabArena arena_;
  uint32_t capacity_ = 0;
  uint32_t index_mask_ = 0;
  uint32_t index_bits_ = 0;
  bool anti_replay_ = true;
  std::atomic<EspSa*>* inbound_ = nullptr;
  std::atomic<EspSa*>* outbound_ = nullptr;
  size_t slot_bytes_ = 0;
  rte_fib* fib4_ = nullptr;
  rte_fib6* fib6_ = nullptr;
  rte_rcu_qsbr* rcu_ = nullptr;
  size_t inbound_count_ = 0;
  size_t outbound_count_ = 0;
  std::vector<uint32_t> free_outbound_indexes_;
  uint32_t next_outbound_index_ = 0;
  // Outbound SPI -> table index (outbound SPIs carry no index). A scan of
  // the table per install made installing N outbound SAs O(N^2).
  std::unordered_map<uint32_t, uint32_t> outbound_by_spi_;
  std::unordered_map<uint32_t, Tunnel*> tunnels_;
  // Routes and the outbound SAs that claim them, newest last: a rekeyed SA
  // takes a route over, and removing it gives the route back to the older one.
  std::map<RouteKey, std::vector<uint32_t>> route_owners_;
  std::unordered_map<uint32_t, std::vector<RouteKey>> routes_of_sa_;
  std::vector<Deferred> deferred_;
  // Objects freed since the C heap was last trimmed (reclaim()).
  static constexpr size_t kTrimAfterFrees = 65536;
  size_t freed_since_trim_ = 0;
  CryptoManager crypto_;
};

// Splits an address range into the CIDR prefixes that cover it exactly.
std::vector<shared::IpPrefix> range_to_prefixes(const shared::IpAddress& start,
                                                const shared::IpAddress& end);

}  // namespace segw::dp
