// SA tables: install/remove/path_update on the control thread, RCU-deferred
// reclamation, route ownership for make-before-break rekeys.
#include "dataplane/sad/sa_table.h"

#include <malloc.h>

#include <algorithm>

#include <rte_errno.h>
#include <rte_malloc.h>
#include <sys/mman.h>

#include "shared/wire.h"

#include <bit>
#include <cstdio>
#include <new>
#include <string>

namespace segw::dp {

using shared::make_error;
using shared::SaDescriptor;
using shared::SaDirection;
using shared::Status;

namespace {
std::atomic<int> table_instance{0};

std::string hex_spi(uint32_t spi) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", spi);
  return text;
}

// Slot arrays are large (8 bytes * capacity * 2) and only read by index: ask
// for transparent huge pages so 1M SAs do not cost 1M TLB entries.
void* allocate_slots(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

unsigned __int128 to_integer(const shared::IpAddress& a) {
  unsigned __int128 v = 0;
  for (size_t i = 0; i < a.byte_length(); ++i) v = v << 8 | a.bytes()[i];
  return v;
}

shared::IpAddress from_integer(unsigned __int128 v, bool ipv6) {
  uint8_t bytes[16] = {};
  size_t n = ipv6 ? 16 : 4;
  for (size_t i = 0; i < n; ++i) bytes[n - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return ipv6 ? shared::IpAddress::from_ipv6_bytes(bytes) : shared::IpAddress::from_ipv4_bytes(bytes);
}

// Layout of one SA allocation: [EspSa][SaKeys][replay slots].
size_t keys_offset() { return (sizeof(EspSa) + 63) & ~size_t{63}; }
size_t slots_offset() { return keys_offset() + ((sizeof(SaKeys) + 63) & ~size_t{63}); }
}  // namespace

std::vector<shared::IpPrefix> range_to_prefixes(const shared::IpAddress& start,
                                                const shared::IpAddress& end) {
  std::vector<shared::IpPrefix> prefixes;
  bool ipv6 = start.is_ipv6();
  unsigned bits = ipv6 ? 128 : 32;
  unsigned __int128 lo = to_integer(start);
  unsigned __int128 hi = to_integer(end);
  while (lo <= hi) {
    // Largest aligned block starting at lo that does not pass hi.
    unsigned size_bits = 0;
    while (size_bits < bits) {
      unsigned __int128 block = static_cast<unsigned __int128>(1) << (size_bits + 1);
      if ((lo & (block - 1)) != 0) break;
      if (lo + (block - 1) > hi || lo + (block - 1) < lo) break;
      ++size_bits;
    }
    prefixes.push_back({from_integer(lo, ipv6), static_cast<uint8_t>(bits - size_bits)});
    if (size_bits == bits) break;  // the whole space
    unsigned __int128 next = lo + (static_cast<unsigned __int128>(1) << size_bits);
    if (next == 0 || (!ipv6 && next > 0xffffffffu)) break;
    lo = next;
  }
  return prefixes;
}

size_t SaTables::sa_footprint(uint32_t replay_window, bool inbound) {
  size_t bytes = slots_offset();
  if (inbound) bytes += ReplayWindow::slot_count_for(replay_window) * sizeof(uint64_t);
  return bytes;
}

shared::Result<std::unique_ptr<SaTables>> SaTables::create(const SaTableConfig& config) {
  if (!std::has_single_bit(config.capacity) || config.capacity < 2)
    return make_error("sa_capacity must be a power of two >= 2, got " + std::to_string(config.capacity));
  std::unique_ptr<SaTables> t(new SaTables);
  t->capacity_ = config.capacity;
  t->anti_replay_ = config.anti_replay;
  t->index_mask_ = config.capacity - 1;
  t->index_bits_ = static_cast<uint32_t>(std::countr_zero(config.capacity));
  t->slot_bytes_ = sizeof(std::atomic<EspSa*>) * config.capacity;
  t->inbound_ = static_cast<std::atomic<EspSa*>*>(allocate_slots(t->slot_bytes_));
  t->outbound_ = static_cast<std::atomic<EspSa*>*>(allocate_slots(t->slot_bytes_));
  if (!t->inbound_ || !t->outbound_) return make_error("cannot allocate SA slot arrays");

  int instance = table_instance.fetch_add(1);
  std::string name4 = "segw_fib4_" + std::to_string(instance);
  rte_fib_conf conf4{};
  conf4.type = RTE_FIB_DIR24_8;
  conf4.default_nh = kNoRoute;
  conf4.max_routes = static_cast<int>(config.max_routes);
  conf4.dir24_8.nh_sz = RTE_FIB_DIR24_8_4B;
  conf4.dir24_8.num_tbl8 = config.ipv4_tbl8_groups;
  t->fib4_ = rte_fib_create(name4.c_str(), config.socket_id, &conf4);
  if (!t->fib4_) return make_error(std::string("rte_fib_create failed: ") + rte_strerror(rte_errno));
  std::string name6 = "segw_fib6_" + std::to_string(instance);
  rte_fib6_conf conf6{};
  conf6.type = RTE_FIB6_TRIE;
  conf6.default_nh = kNoRoute;
  conf6.max_routes = static_cast<int>(config.max_routes);
  conf6.trie.nh_sz = RTE_FIB6_TRIE_4B;
  conf6.trie.num_tbl8 = config.ipv6_tbl8_groups;
  t->fib6_ = rte_fib6_create(name6.c_str(), config.socket_id, &conf6);
  if (!t->fib6_) return make_error(std::string("rte_fib6_create failed: ") + rte_strerror(rte_errno));

  size_t rcu_bytes = rte_rcu_qsbr_get_memsize(config.max_workers);
  t->rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("segw_rcu", rcu_bytes, RTE_CACHE_LINE_SIZE));
  if (!t->rcu_ || rte_rcu_qsbr_init(t->rcu_, config.max_workers) != 0)
    return make_error("cannot create the RCU QSBR variable");
  return t;
}

SaTables::~SaTables() {
  for (uint32_t i = 0; i < capacity_ && inbound_; ++i) {
    if (EspSa* sa = inbound_[i].load(std::memory_order_relaxed)) free_sa(sa);
    if (EspSa* sa = outbound_[i].load(std::memory_order_relaxed)) free_sa(sa);
  }
  for (auto& d : deferred_) d.free_function();
  for (auto& [id, tunnel] : tunnels_) free_tunnel(tunnel);
  if (inbound_) munmap(inbound_, slot_bytes_);
  if (outbound_) munmap(outbound_, slot_bytes_);
  if (fib4_) rte_fib_free(fib4_);
  if (fib6_) rte_fib6_free(fib6_);
  rte_free(rcu_);
}

EspSa* SaTables::allocate_sa(const SaDescriptor& d) {
  bool inbound = d.direction == SaDirection::kInbound;
  size_t bytes = sa_footprint(d.replay_window, inbound);
  void* memory = arena_.allocate(bytes);
  if (!memory) return nullptr;
  std::memset(memory, 0, bytes);
  auto* sa = new (memory) EspSa;
  auto* keys = new (static_cast<uint8_t*>(memory) + keys_offset()) SaKeys;
  crypto_.expand_keys(d, *keys);
  const auto& props = shared::properties(d.algorithm);
  sa->spi = d.spi;
  sa->algorithm = d.algorithm;
  sa->direction = d.direction;
  sa->iv_length = props.iv_length;
  sa->icv_length = props.icv_length;
  sa->block_size = props.block_size;
  sa->cipher_key_length = props.cipher_key_length;
  sa->aead = props.aead;
  sa->esn = d.esn;
  sa->hmac_sha256 = d.algorithm == shared::EspAlgorithm::kAesCbc128HmacSha256 ||
                    d.algorithm == shared::EspAlgorithm::kAesCbc256HmacSha256;
  std::memcpy(sa->salt, d.salt.data(), 4);
  sa->keys = keys;
  sa->hard_packets = d.lifetime.hard_packets;
  sa->hard_bytes = d.lifetime.hard_bytes;
  sa->soft_packets = d.lifetime.soft_packets;
  sa->soft_bytes = d.lifetime.soft_bytes;
  const SelectorSet* selectors = build_selectors(d.local_selectors.data(), d.local_selector_count,
                                                 d.remote_selectors.data(), d.remote_selector_count);
  if (!selectors) {
    keys->~SaKeys();
    sa->~EspSa();
    arena_.release(memory, bytes);
    return nullptr;
  }
  sa->selectors.store(selectors, std::memory_order_relaxed);  // published with the SA
  auto name = d.name_view();
  std::memcpy(sa->name, name.data(), std::min(name.size(), sizeof(sa->name) - 1));
  if (inbound) {
    auto* slots = reinterpret_cast<std::atomic<uint64_t>*>(static_cast<uint8_t*>(memory) + slots_offset());
    sa->replay.init(d.replay_window, d.esn, slots, anti_replay_);
  }
  return sa;
}

const SelectorSet* SaTables::build_selectors(const shared::TrafficSelector* local, int local_count,
                                             const shared::TrafficSelector* remote, int remote_count) {
  size_t bytes = SelectorSet::bytes_for(local_count, remote_count);
  void* memory = arena_.allocate(bytes);
  if (!memory) return nullptr;
  auto* set = new (memory) SelectorSet;
  set->local_count = static_cast<uint8_t>(local_count);
  set->remote_count = static_cast<uint8_t>(remote_count);
  SelectorRange* ranges = set->ranges();
  for (int i = 0; i < local_count; ++i) new (&ranges[i]) SelectorRange(SelectorRange::from(local[i]));
  for (int i = 0; i < remote_count; ++i)
    new (&ranges[local_count + i]) SelectorRange(SelectorRange::from(remote[i]));
  return set;
}

void SaTables::free_selectors(const SelectorSet* set) {
  if (set) arena_.release(const_cast<SelectorSet*>(set), set->bytes());
}

void SaTables::free_path(const Path* path) {
  path->~Path();
  arena_.release(const_cast<Path*>(path), sizeof(Path));
}

void SaTables::free_tunnel(Tunnel* tunnel) {
  free_path(tunnel->path.load(std::memory_order_relaxed));
  tunnel->~Tunnel();
  arena_.release(tunnel, sizeof(Tunnel));
}

void SaTables::free_sa(EspSa* sa) {
  auto* keys = const_cast<SaKeys*>(sa->keys);
  keys->~SaKeys();  // zeroises the expanded keys
  shared::secure_zero(sa->salt, sizeof(sa->salt));
  size_t bytes = sa_footprint(sa->replay.window(), sa->direction == SaDirection::kInbound);
  free_selectors(sa->selectors.load(std::memory_order_relaxed));
  sa->~EspSa();
  arena_.release(sa, bytes);
}

void SaTables::defer(std::function<void()> free_function) {
  // Token taken after the unpublishing store: once every worker reported a
  // quiescent state past it, none can still hold the old pointer.
  uint64_t token = rte_rcu_qsbr_start(rcu_);
  deferred_.push_back({token, std::move(free_function)});
}

size_t SaTables::reclaim() {
  size_t done = 0;
  while (done < deferred_.size() && rte_rcu_qsbr_check(rcu_, deferred_[done].token, false) == 1) {
    deferred_[done].free_function();
    ++done;
  }
  deferred_.erase(deferred_.begin(), deferred_.begin() + static_cast<long>(done));
  freed_since_trim_ += done;
  if (deferred_.empty() && freed_since_trim_ >= kTrimAfterFrees) {
    // A mass removal is over (a million SAs leave a few hundred MB of
    // freed map nodes and queue capacity in the C heap): hand the free
    // pages back. Control thread only; a few ms, rarely.
    freed_since_trim_ = 0;
    deferred_.shrink_to_fit();
    malloc_trim(0);
  }
  return done;
}

void SaTables::reclaim_all() {
  if (deferred_.empty()) return;
  rte_rcu_qsbr_check(rcu_, deferred_.back().token, true);
  reclaim();
}

Tunnel* SaTables::attach_tunnel(const SaDescriptor& d, Status& status) {
  auto it = tunnels_.find(d.tunnel_id);
  if (it != tunnels_.end()) {
    const Path* current = it->second->path.load(std::memory_order_relaxed);
    if (!(current->descriptor == d.path)) {
      status = make_error("SA " + hex_spi(d.spi) + ": tunnel " + std::to_string(d.tunnel_id) +
                          " already has another path; move it with path_update");
      return nullptr;
    }
    ++it->second->sa_count;
    return it->second;
  }
  void* tunnel_memory = arena_.allocate(sizeof(Tunnel));
  void* path_memory = arena_.allocate(sizeof(Path));
  if (!tunnel_memory || !path_memory) {
    arena_.release(tunnel_memory, sizeof(Tunnel));
    arena_.release(path_memory, sizeof(Path));
    status = make_error("SA " + hex_spi(d.spi) + ": out of memory for its tunnel");
    return nullptr;
  }
  auto* tunnel = new (tunnel_memory) Tunnel;
  tunnel->id = d.tunnel_id;
  tunnel->sa_count = 1;
  tunnel->path.store(Path::create(d.path, tunnel->next_generation++, path_memory), std::memory_order_release);
  tunnels_.emplace(d.tunnel_id, tunnel);
  return tunnel;
}

void SaTables::detach_tunnel(Tunnel* tunnel) {
  if (--tunnel->sa_count > 0) return;
  tunnels_.erase(tunnel->id);
  // Workers may still be reading the tunnel through an SA being removed.
  defer([this, tunnel] { free_tunnel(tunnel); });
}

std::vector<SaTables::RouteKey> SaTables::route_keys(const shared::TrafficSelector* remote, int remote_count) {
  std::vector<RouteKey> keys;
  for (int i = 0; i < remote_count; ++i) {
    for (const auto& prefix : range_to_prefixes(remote[i].start, remote[i].end)) {
      RouteKey key{prefix.address.is_ipv6(), prefix.length, {}};
      std::memcpy(key.address.data(), prefix.address.bytes(), 16);
      keys.push_back(key);
    }
  }
  // Overlapping selectors may cover one prefix twice; an SA owns it once.
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

int SaTables::claim_route(const RouteKey& key, uint32_t index) {
  int rc = key.ipv6 ? rte_fib6_add(fib6_, key.address.data(), key.depth, index + 1)
                    : rte_fib_add(fib4_, shared::load_be32(key.address.data()), key.depth, index + 1);
  if (rc == 0) route_owners_[key].push_back(index);
  return rc;
}

void SaTables::release_route(const RouteKey& key, uint32_t index) {
  auto& owners = route_owners_[key];
  bool was_active = !owners.empty() && owners.back() == index;
  std::erase(owners, index);
  if (!was_active) return;
  if (owners.empty()) {
    route_owners_.erase(key);
    if (key.ipv6) rte_fib6_delete(fib6_, key.address.data(), key.depth);
    else rte_fib_delete(fib4_, shared::load_be32(key.address.data()), key.depth);
  } else {
    // Give the route back to the previous (older) SA of these selectors.
    uint64_t next_hop = owners.back() + 1;
    if (key.ipv6) rte_fib6_add(fib6_, key.address.data(), key.depth, next_hop);
    else rte_fib_add(fib4_, shared::load_be32(key.address.data()), key.depth, next_hop);
  }
}

Status SaTables::add_routes(const SaDescriptor& d, uint32_t index) {
  std::vector<RouteKey> keys = route_keys(d.remote_selectors.data(), d.remote_selector_count);
  size_t added = 0;
  Status status;
  for (const auto& key : keys) {
    if (int rc = claim_route(key, index); rc != 0) {
      status = make_error("SA " + hex_spi(d.spi) + ": route table full (" + rte_strerror(-rc) + ")");
      break;
    }
    ++added;
  }
  routes_of_sa_[index] = std::vector<RouteKey>(keys.begin(), keys.begin() + static_cast<long>(added));
  if (!status) remove_routes(index);
  return status;
}

void SaTables::remove_routes(uint32_t index) {
  auto it = routes_of_sa_.find(index);
  if (it == routes_of_sa_.end()) return;
  for (const auto& key : it->second) release_route(key, index);
  routes_of_sa_.erase(it);
}

Status SaTables::update_selectors(uint32_t spi, SaDirection direction, const shared::TrafficSelector* local,
                                  int local_count, const shared::TrafficSelector* remote, int remote_count) {
  EspSa* sa = find(spi, direction);
  if (!sa) return make_error(std::string("no ") + shared::to_string(direction) + " SA with SPI " + hex_spi(spi));
  if (local_count < 0 || remote_count < 0 || local_count > shared::kMaxSelectors ||
      remote_count > shared::kMaxSelectors)
    return make_error("SA " + hex_spi(spi) + ": too many selectors");
  if (direction == SaDirection::kOutbound && remote_count == 0)
    return make_error("SA " + hex_spi(spi) + ": outbound SA without remote selectors has no route");
  const SelectorSet* fresh = build_selectors(local, local_count, remote, remote_count);
  if (!fresh) return make_error("out of memory for the selectors of SA " + hex_spi(spi));
  if (direction == SaDirection::kOutbound) {
    // New routes first, then the ones that went away: a destination in both
    // the old and the new selectors is never without a route.
    uint32_t index = sa->table_index;
    std::vector<RouteKey> wanted = route_keys(remote, remote_count);
    std::vector<RouteKey>& held = routes_of_sa_[index];
    std::vector<RouteKey> added;
    for (const auto& key : wanted) {
      if (std::binary_search(held.begin(), held.end(), key)) continue;
      if (int rc = claim_route(key, index); rc != 0) {
        for (const auto& undo : added) release_route(undo, index);
        free_selectors(fresh);
        return make_error("SA " + hex_spi(spi) + ": route table full (" + rte_strerror(-rc) + ")");
      }
      added.push_back(key);
    }
    for (const auto& key : held)
      if (!std::binary_search(wanted.begin(), wanted.end(), key)) release_route(key, index);
    held = std::move(wanted);
  }
  // release: a worker that loads the new set sees it fully built.
  const SelectorSet* old = sa->selectors.exchange(fresh, std::memory_order_acq_rel);
  defer([this, old] { free_selectors(old); });
  return {};
}

Status SaTables::install(const SaDescriptor& d) {
  if (d.spi < shared::kMinimumSpi) return make_error("SPI " + hex_spi(d.spi) + " is reserved (< 256)");
  if (d.direction == SaDirection::kInbound &&
      (d.replay_window < shared::kMinReplayWindow || d.replay_window > shared::kMaxReplayWindow))
    return make_error("SA " + hex_spi(d.spi) + ": replay_window " + std::to_string(d.replay_window) +
                      " outside [64, 32768]");
  if (static_cast<int>(d.algorithm) >= shared::kEspAlgorithmCount)
    return make_error("SA " + hex_spi(d.spi) + ": unknown algorithm");
  if (d.local_selector_count > shared::kMaxSelectors || d.remote_selector_count > shared::kMaxSelectors)
    return make_error("SA " + hex_spi(d.spi) + ": too many selectors");
  if (d.path.local.family() != d.path.remote.family())
    return make_error("SA " + hex_spi(d.spi) + ": path addresses of different families");
  if (d.direction == SaDirection::kOutbound && d.remote_selector_count == 0)
    return make_error("SA " + hex_spi(d.spi) + ": outbound SA without remote selectors has no route");

  uint32_t index;
  if (d.direction == SaDirection::kInbound) {
    index = d.spi & index_mask_;
    if (EspSa* existing = inbound_[index].load(std::memory_order_relaxed)) {
      if (existing->spi == d.spi) return make_error("duplicate inbound SPI " + hex_spi(d.spi));
      return make_error("inbound SPI " + hex_spi(d.spi) + " uses table index " + std::to_string(index) +
                        ", taken by SPI " + hex_spi(existing->spi) + " (the low " +
                        std::to_string(index_bits_) + " bits of an inbound SPI are its index)");
    }
  } else {
    if (find(d.spi, SaDirection::kOutbound)) return make_error("duplicate outbound SPI " + hex_spi(d.spi));
    if (!free_outbound_indexes_.empty()) {
      index = free_outbound_indexes_.back();
    } else if (next_outbound_index_ < capacity_) {
      index = next_outbound_index_;
    } else {
      return make_error("outbound SA table full (" + std::to_string(capacity_) + ")");
    }
  }

  Status status;
  Tunnel* tunnel = attach_tunnel(d, status);
  if (!tunnel) return status;
  EspSa* sa = allocate_sa(d);
  if (!sa) {
    detach_tunnel(tunnel);
    return make_error("out of memory for SA " + hex_spi(d.spi));
  }
  sa->tunnel = tunnel;
  sa->table_index = index;

  if (d.direction == SaDirection::kInbound) {
    // release: the SA is fully built before a worker can find it.
    inbound_[index].store(sa, std::memory_order_release);
    ++inbound_count_;
    return {};
  }
  outbound_[index].store(sa, std::memory_order_release);
  status = add_routes(d, index);
  if (!status) {
    outbound_[index].store(nullptr, std::memory_order_release);
    detach_tunnel(tunnel);
    defer([this, sa] { free_sa(sa); });
    return status;
  }
  if (!free_outbound_indexes_.empty() && free_outbound_indexes_.back() == index)
    free_outbound_indexes_.pop_back();
  else
    ++next_outbound_index_;
  outbound_by_spi_[d.spi] = index;
  ++outbound_count_;
  return {};
}

EspSa* SaTables::find(uint32_t spi, SaDirection direction) const {
  if (direction == SaDirection::kInbound) return inbound_lookup(spi);
  // Outbound SPIs are the peer's choice: no index in them, hence the map.
  auto it = outbound_by_spi_.find(spi);
  return it == outbound_by_spi_.end() ? nullptr : outbound_[it->second].load(std::memory_order_relaxed);
}

Status SaTables::remove(uint32_t spi, SaDirection direction) {
  EspSa* sa = find(spi, direction);
  if (!sa) return make_error(std::string("no ") + shared::to_string(direction) + " SA with SPI " + hex_spi(spi));
  uint32_t index = sa->table_index;
  if (direction == SaDirection::kInbound) {
    inbound_[index].store(nullptr, std::memory_order_release);
    --inbound_count_;
  } else {
    remove_routes(index);
    outbound_[index].store(nullptr, std::memory_order_release);
    outbound_by_spi_.erase(spi);
    free_outbound_indexes_.push_back(index);
    --outbound_count_;
  }
  Tunnel* tunnel = sa->tunnel;
  defer([this, sa] { free_sa(sa); });
  detach_tunnel(tunnel);
  return {};
}

Status SaTables::path_update(uint32_t tunnel_id, const shared::PathDescriptor& path) {
  auto it = tunnels_.find(tunnel_id);
  if (it == tunnels_.end()) return make_error("no tunnel " + std::to_string(tunnel_id));
  if (path.local.family() != path.remote.family())
    return make_error("path addresses of different families");
  Tunnel* tunnel = it->second;
  void* path_memory = arena_.allocate(sizeof(Path));
  if (!path_memory) return make_error("out of memory for a path");
  Path* fresh = Path::create(path, tunnel->next_generation++, path_memory);
  // One release store switches every SA of the tunnel to the fresh path.
  const Path* old = tunnel->path.exchange(fresh, std::memory_order_acq_rel);
  defer([this, old] { free_path(old); });
  return {};
}

const Tunnel* SaTables::tunnel(uint32_t tunnel_id) const {
  auto it = tunnels_.find(tunnel_id);
  return it == tunnels_.end() ? nullptr : it->second;
}

void SaTables::for_each_sa(const std::function<void(const EspSa&)>& visit) const {
  for (uint32_t i = 0; i < capacity_; ++i)
    if (EspSa* sa = inbound_[i].load(std::memory_order_acquire)) visit(*sa);
  for (uint32_t i = 0; i < next_outbound_index_; ++i)
    if (EspSa* sa = outbound_[i].load(std::memory_order_acquire)) visit(*sa);
}

}  // namespace segw::dp
