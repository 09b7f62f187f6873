// Micro-benchmark support: pool, generated tunnels, cached SA sets, worker
// context, bursts, frames.
#include "bench/micro/bench_support.h"

#include <malloc.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "shared/wire.h"
#include "tools/pcapgen/packet_builder.h"
#include "tools/pcapgen/peer_encryptor.h"

namespace segw::bench {

using shared::EspAlgorithm;
using shared::IpAddress;
using shared::IpPrefix;
using shared::SaDescriptor;
using shared::SaDirection;
using shared::TrafficSelector;

namespace {

// Pool: one burst per benchmark run (no packet here exceeds the MTU, so the
// ESP code takes none for fragments or ICMP errors), with room to spare;
// 2176-byte buffers (128 headroom + 2048) hold a 1420-byte inner packet with
// every ESP overhead.
constexpr unsigned kPoolMbufs = 255;

// Sets of at least this many tunnels count as large: one at a time.
constexpr uint32_t kLargeSet = 100000;
// Small sets kept at once (each holds 128 MB of EAL memory in its FIBs).
constexpr size_t kSmallSetsKept = 3;

// Endpoint addresses (documentation and CGN space, as bench/pipeline uses).
constexpr uint32_t kGatewayAccess = 0xc0000201;   // 192.0.2.1
constexpr uint32_t kPeerFirst = 0x64400000;       // 100.64.0.0
constexpr uint32_t kPeerInnerFirst = 0xac100000;  // 172.16.0.0
constexpr uint32_t kCoreInnerHost = 0x0a000001;   // 10.0.0.1

constexpr rte_ether_addr kAccessMac{{0x02, 0, 0, 0, 0xa0, 0x01}};
constexpr rte_ether_addr kAccessNextHop{{0x02, 0, 0, 0, 0xa0, 0x02}};
constexpr rte_ether_addr kCoreMac{{0x02, 0, 0, 0, 0xc0, 0x01}};
constexpr rte_ether_addr kCoreNextHop{{0x02, 0, 0, 0, 0xc0, 0x02}};

rte_mempool* pool = nullptr;

// The one worker of this process (benchmarks run on the main lcore).
struct WorkerState {
  dp::CryptoManager crypto;
  dp::WorkerCounters counters;
};
WorkerState& worker() {
  static WorkerState state;
  return state;
}

IpPrefix prefix_of(const IpAddress& address, uint8_t length) {
  IpPrefix p;
  p.address = address;
  p.length = length;
  return p;
}

void fill_key(std::array<uint8_t, shared::kMaxKeyLength>& key, uint32_t tunnel, uint8_t salt) {
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(tunnel * 31 + i * 7 + salt);
}

// Whether tunnels of a set of `count` get an IPv6 remote selector (a /64).
// DPDK 22.11's IPv6 trie reserves (depth - 24) / 8 tbl8 groups for every
// route without a covering route, 5 for a /64 (1 KB each with 4-byte next
// hops): 5 GB of tbl8 groups for 1,000,000 tunnels. Large sets are IPv4 only.
bool with_ipv6_selector(uint32_t count) { return count < kLargeSet; }
constexpr uint32_t kIpv6GroupsPerRoute = (64 - 24) / 8;

SaDescriptor base_descriptor(EspAlgorithm algorithm, uint32_t tunnel, bool ipv6_selector) {
  SaDescriptor d;
  d.algorithm = algorithm;
  d.tunnel_id = tunnel + 1;
  fill_key(d.cipher_key, tunnel, 0x10);
  fill_key(d.integrity_key, tunnel, 0x40);
  for (size_t i = 0; i < d.salt.size(); ++i) d.salt[i] = static_cast<uint8_t>(0x80 + tunnel + i);
  d.path.local = IpAddress::from_ipv4(kGatewayAccess);
  d.path.remote = IpAddress::from_ipv4(kPeerFirst + tunnel);
  d.path.local_port = 4500;
  d.path.remote_port = static_cast<uint16_t>(1024 + tunnel % 60000);
  d.path.udp_encapsulation = true;
  d.local_selectors[0] = TrafficSelector::from_prefix(prefix_of(IpAddress::from_ipv4(0x0a000000), 8));
  uint8_t core6[16] = {0xfd, 0x00, 0x00, 0x0a};
  d.local_selectors[1] = TrafficSelector::from_prefix(prefix_of(IpAddress::from_ipv6_bytes(core6), 32));
  d.local_selector_count = 2;
  d.remote_selectors[0] = TrafficSelector::from_prefix(prefix_of(IpAddress::from_ipv4(peer_inner_ipv4(tunnel)), 32));
  d.remote_selector_count = 1;
  if (ipv6_selector) {
    uint8_t peer6[16];
    peer_inner_ipv6(tunnel, peer6);
    peer6[15] = 0;  // the /64 itself
    d.remote_selectors[1] = TrafficSelector::from_prefix(prefix_of(IpAddress::from_ipv6_bytes(peer6), 64));
    d.remote_selector_count = 2;
  }
  return d;
}

std::string algorithm_list(const std::vector<EspAlgorithm>& algorithms) {
  std::string text;
  for (EspAlgorithm a : algorithms) text += std::string(text.empty() ? "" : ",") + shared::to_string(a);
  return text;
}

}  // namespace

// --- process ---------------------------------------------------------------

bool create_packet_pool() {
  // Cache size 0: in-use counts are exact, so a leak shows as a number.
  pool = rte_pktmbuf_pool_create("segw_bench_pool", kPoolMbufs, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                 static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::fprintf(stderr, "segw-bench-micro: rte_pktmbuf_pool_create failed: %s\n", rte_strerror(rte_errno));
    return false;
  }
  return true;
}

// --- generated tunnels ------------------------------------------------------

uint32_t inbound_spi(uint32_t tunnel) { return kInboundSpiBase | tunnel; }
uint32_t peer_inner_ipv4(uint32_t tunnel) { return kPeerInnerFirst + tunnel; }

void peer_inner_ipv6(uint32_t tunnel, uint8_t out[16]) {
  // fd00:172:<tunnel high 16>:<tunnel low 16>::1 inside the tunnel's /64.
  std::memset(out, 0, 16);
  out[0] = 0xfd;
  out[2] = 0x01;
  out[3] = 0x72;
  shared::store_be32(out + 4, tunnel);
  out[15] = 1;
}

SaDescriptor inbound_descriptor(EspAlgorithm algorithm, uint32_t tunnel, bool ipv6_selector) {
  SaDescriptor d = base_descriptor(algorithm, tunnel, ipv6_selector);
  d.direction = SaDirection::kInbound;
  d.spi = inbound_spi(tunnel);
  d.replay_window = shared::kDefaultReplayWindow;
  return d;
}

SaDescriptor outbound_descriptor(EspAlgorithm algorithm, uint32_t tunnel, bool ipv6_selector) {
  SaDescriptor d = base_descriptor(algorithm, tunnel, ipv6_selector);
  d.direction = SaDirection::kOutbound;
  d.spi = kOutboundSpiBase + tunnel;
  return d;
}

// --- SA sets ------------------------------------------------------------------

struct SaSetCache {
  std::vector<std::unique_ptr<SaSet>> sets;
  uint64_t clock = 0;

  static SaSetCache& instance() {
    static SaSetCache cache;
    return cache;
  }

  // Drops the least recently used set among those `pick` selects.
  template <typename Pick>
  void evict_one(Pick pick) {
    auto victim = sets.end();
    for (auto it = sets.begin(); it != sets.end(); ++it)
      if (pick(**it) && (victim == sets.end() || (*it)->last_use_ < (*victim)->last_use_)) victim = it;
    if (victim != sets.end()) sets.erase(victim);
  }
};

namespace {

dp::SaTableConfig table_config(uint32_t count) {
  dp::SaTableConfig config;
  config.capacity = std::max<uint32_t>(1024, std::bit_ceil(count));
  // DIR-24-8 reserves one tbl8 group per /24 holding longer routes; the IPv6
  // trie reserves kIpv6GroupsPerRoute per /64 (see with_ipv6_selector).
  config.ipv4_tbl8_groups = count / 256 + 64;
  config.ipv6_tbl8_groups = with_ipv6_selector(count) ? count * kIpv6GroupsPerRoute + 64 : 64;
  // Both FIBs preallocate RIB nodes for this many routes (about 900 MB of
  // EAL memory in all for 1,000,000).
  config.max_routes = count + 64;
  config.max_workers = 1;
  config.anti_replay = false;  // decap loops over one captured burst
  config.socket_id = static_cast<int>(rte_socket_id());
  return config;
}

// Memory counters sampled before and after building a set. What a set
// takes: malloc'd bytes in use (maps, vectors), private mappings that are
// not malloc's (SaTables' slot arrays and its slab arena of SAs, tunnels and
// paths), and EAL heap (FIBs, RIB nodes, RCU).
struct MemorySample {
  double malloc_in_use = 0;   // uordblks + hblkhd
  double malloc_mapped = 0;   // arena + hblkhd: what malloc took from the kernel
  double private_mapped = 0;  // /proc/self/statm "data" (private writable mappings)
  double eal = 0;

  static MemorySample take() {
    MemorySample m;
    struct mallinfo2 info = mallinfo2();
    m.malloc_in_use = double(info.uordblks + info.hblkhd);
    m.malloc_mapped = double(info.arena + info.hblkhd);
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    unsigned long pages[6] = {};
    if (statm) {
      if (std::fscanf(statm, "%lu %lu %lu %lu %lu %lu", &pages[0], &pages[1], &pages[2], &pages[3], &pages[4],
                      &pages[5]) != 6)
        pages[5] = 0;
      std::fclose(statm);
    }
    m.private_mapped = double(pages[5]) * double(sysconf(_SC_PAGESIZE));
    rte_malloc_socket_stats stats{};
    rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id()), &stats);
    m.eal = double(stats.heap_allocsz_bytes);
    return m;
  }
};

struct MemoryUse {
  double heap = 0;    // malloc
  double mapped = 0;  // slot arrays, slab arena
  double eal = 0;
  double total() const { return heap + mapped + eal; }
};

MemoryUse difference(const MemorySample& before, const MemorySample& after) {
  MemoryUse use;
  use.heap = after.malloc_in_use - before.malloc_in_use;
  use.mapped = (after.private_mapped - before.private_mapped) - (after.malloc_mapped - before.malloc_mapped);
  use.eal = after.eal - before.eal;
  return use;
}

}  // namespace

SaSet* SaSet::get(std::initializer_list<EspAlgorithm> algorithm_list_in, uint32_t count, bool with_inbound) {
  std::vector<EspAlgorithm> algorithms(algorithm_list_in);
  SaSetCache& cache = SaSetCache::instance();
  for (auto& set : cache.sets) {
    if (set->algorithms_ == algorithms && set->count_ == count && (set->with_inbound_ || !with_inbound)) {
      set->last_use_ = ++cache.clock;
      return set.get();
    }
  }
  auto small = [](const SaSet& s) { return s.count_ < kLargeSet; };
  if (count >= kLargeSet) {
    // A large set needs ~900 MB of EAL memory: everything else goes first
    // (also the superseded variant of the same set, one without inbound SAs).
    // main() registers the large-set benchmarks last, so nothing comes back.
    cache.sets.clear();
  } else {
    while (static_cast<size_t>(std::count_if(cache.sets.begin(), cache.sets.end(),
                                             [&](auto& s) { return small(*s); })) >= kSmallSetsKept)
      cache.evict_one(small);
  }
  auto set = build(algorithms, count, with_inbound);
  if (!set) return nullptr;
  set->last_use_ = ++cache.clock;
  cache.sets.push_back(std::move(set));
  return cache.sets.back().get();
}

bool SaSet::make_room() {
  SaSetCache& cache = SaSetCache::instance();
  if (cache.sets.empty()) return false;
  cache.evict_one([](const SaSet&) { return true; });
  return true;
}

std::unique_ptr<SaSet> SaSet::build(const std::vector<EspAlgorithm>& algorithms, uint32_t count, bool with_inbound) {
  auto started = std::chrono::steady_clock::now();
  bool large = count >= kLargeSet;
  if (large)
    std::fprintf(stderr, "segw-bench-micro: installing %u tunnels (%s, %s)...\n", count,
                 algorithm_list(algorithms).c_str(), with_inbound ? "inbound + outbound" : "outbound");

  MemorySample before = MemorySample::take();
  dp::SaTableConfig config = table_config(count);
  auto tables = dp::SaTables::create(config);
  // EAL memory is what runs out (a 1,000,000-tunnel set takes ~900 MB of the
  // default 1 GiB): drop cached sets, least recently used first, and retry.
  while (!tables && make_room()) {
    before = MemorySample::take();
    tables = dp::SaTables::create(config);
  }
  if (!tables) {
    std::fprintf(stderr, "segw-bench-micro: cannot create SA tables for %u tunnels: %s (more EAL memory: -- -m)\n",
                 count, tables.error().c_str());
    return nullptr;
  }
  std::unique_ptr<SaSet> set(new SaSet);
  set->tables_ = std::move(*tables);
  set->algorithms_ = algorithms;
  set->count_ = count;
  set->with_inbound_ = with_inbound;
  set->outbound_.resize(count);
  bool ipv6 = with_ipv6_selector(count);
  for (uint32_t i = 0; i < count; ++i) {
    EspAlgorithm algorithm = algorithms[i % algorithms.size()];
    SaDescriptor out = outbound_descriptor(algorithm, i, ipv6);
    shared::Status status = set->tables_->install(out);
    shared::secure_zero(out);
    if (status && with_inbound) {
      SaDescriptor in = inbound_descriptor(algorithm, i, ipv6);
      status = set->tables_->install(in);
      shared::secure_zero(in);
    }
    if (!status) {
      std::fprintf(stderr, "segw-bench-micro: tunnel %u of %u: %s\n", i, count, status.error().c_str());
      return nullptr;
    }
    set->outbound_[i] = set->tables_->find(kOutboundSpiBase + i, SaDirection::kOutbound);
    if (large && (i + 1) % 250000 == 0) std::fprintf(stderr, "segw-bench-micro:   %u\n", i + 1);
  }
  set->build_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  MemoryUse use = difference(before, MemorySample::take());
  set->bytes_per_tunnel_ = use.total() / count;
  if (large)
    std::fprintf(stderr,
                 "segw-bench-micro: %u tunnels installed in %.1f s; %.0f bytes per tunnel: %.0f slab arena and slot "
                 "arrays (SA objects %zu outbound%s), %.0f malloc (control maps), %.0f EAL (FIBs with RIB nodes for "
                 "%u routes each)\n",
                 count, set->build_seconds_, set->bytes_per_tunnel_, use.mapped / count,
                 dp::SaTables::sa_footprint(shared::kDefaultReplayWindow, false),
                 with_inbound ? (" + " + std::to_string(dp::SaTables::sa_footprint(shared::kDefaultReplayWindow, true)) +
                                 " inbound").c_str()
                              : "",
                 use.heap / count, use.eal / count, config.max_routes);
  return set;
}

SaSet::~SaSet() = default;

void SaSet::reset_sequences() {
  for (dp::EspSa* sa : outbound_) sa->sequence.store(0, std::memory_order_relaxed);
}

// --- worker -------------------------------------------------------------------

dp::EspContext worker_context(const dp::SaTables& tables) {
  dp::EspContext ctx;
  ctx.crypto = worker().crypto.get();
  ctx.tables = &tables;
  ctx.counters = &worker().counters;
  ctx.pool = pool;
  ctx.core_mac = kCoreMac;
  ctx.core_next_hop = kCoreNextHop;
  ctx.access_mac = kAccessMac;
  ctx.access_next_hop = kAccessNextHop;
  ctx.access_mtu = 1500;
  return ctx;
}

uint64_t worker_drops() {
  uint64_t total = 0;
  for (auto& d : worker().counters.drops) total += d.load(std::memory_order_relaxed);
  return total;
}

std::string worker_drop_summary() {
  std::string text;
  for (int r = 0; r < dp::kDropReasonCount; ++r)
    if (uint64_t n = worker().counters.drops[r].load(std::memory_order_relaxed))
      text += std::string(text.empty() ? "" : ", ") + dp::to_string(static_cast<dp::DropReason>(r)) + " " +
              std::to_string(n);
  return text;
}

// --- bursts -------------------------------------------------------------------

Burst::Burst() { owned_ = rte_pktmbuf_alloc_bulk(pool, mbufs_.data(), kBurst) == 0; }

Burst::~Burst() {
  if (owned_) rte_pktmbuf_free_bulk(mbufs_.data(), kBurst);
}

void Burst::lose(std::span<rte_mbuf* const> survivors) {
  for (rte_mbuf* m : survivors) rte_pktmbuf_free(m);
  owned_ = false;
}

namespace {
inline void reset_data(rte_mbuf* m, uint32_t length) {
  m->data_off = RTE_PKTMBUF_HEADROOM;
  m->data_len = static_cast<uint16_t>(length);
  m->pkt_len = length;
}
}  // namespace

void load_core_frame(rte_mbuf* m, const uint8_t* frame, uint32_t length, bool ipv6) {
  reset_data(m, length);
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame, length);
  m->l2_len = sizeof(rte_ether_hdr);
  m->l3_len = 0;
  m->l4_len = 0;
  m->packet_type = RTE_PTYPE_L2_ETHER | (ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4);
}

void reload_core_header(rte_mbuf* m, const uint8_t* header, uint32_t header_length, uint32_t frame_length,
                        bool ipv6) {
  reset_data(m, frame_length);
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), header, header_length);
  m->l2_len = sizeof(rte_ether_hdr);
  m->l3_len = 0;
  m->l4_len = 0;
  m->packet_type = RTE_PTYPE_L2_ETHER | (ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4);
}

void load_access_frame(rte_mbuf* m, const uint8_t* frame, uint32_t length) {
  reset_data(m, length);
  std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), frame, length);
  m->l2_len = sizeof(rte_ether_hdr);
  m->l3_len = 20;
  m->l4_len = 8;
  m->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4;
}

// --- frames ---------------------------------------------------------------------

std::vector<uint8_t> core_frame(uint32_t tunnel, uint32_t inner_size) {
  std::vector<uint8_t> frame(pcapgen::kEthernetHeaderLength + inner_size);
  pcapgen::write_ethernet_header(frame.data(), kCoreMac.addr_bytes, kCoreNextHop.addr_bytes, false);
  pcapgen::UdpEndpoints e;
  e.source = IpAddress::from_ipv4(kCoreInnerHost);
  e.destination = IpAddress::from_ipv4(peer_inner_ipv4(tunnel));
  e.source_port = pcapgen::kCoreSidePort;
  e.destination_port = pcapgen::kPeerSidePort;
  shared::Status built = pcapgen::build_udp_packet(e, inner_size, static_cast<uint16_t>(tunnel),
                                                   frame.data() + pcapgen::kEthernetHeaderLength);
  if (!built) std::fprintf(stderr, "segw-bench-micro: %s\n", built.error().c_str());
  return frame;
}

std::vector<uint8_t> peer_inner_packet(uint32_t tunnel, uint32_t inner_size) {
  std::vector<uint8_t> packet(inner_size);
  pcapgen::UdpEndpoints e;
  e.source = IpAddress::from_ipv4(peer_inner_ipv4(tunnel));
  e.destination = IpAddress::from_ipv4(kCoreInnerHost);
  e.source_port = pcapgen::kPeerSidePort;
  e.destination_port = pcapgen::kCoreSidePort;
  shared::Status built = pcapgen::build_udp_packet(e, inner_size, static_cast<uint16_t>(tunnel), packet.data());
  if (!built) std::fprintf(stderr, "segw-bench-micro: %s\n", built.error().c_str());
  return packet;
}

const std::vector<std::vector<uint8_t>>& peer_frames(EspAlgorithm algorithm, uint32_t tunnel, uint32_t inner_size) {
  static std::map<std::tuple<EspAlgorithm, uint32_t, uint32_t>, std::vector<std::vector<uint8_t>>> cache;
  auto key = std::make_tuple(algorithm, tunnel, inner_size);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::vector<std::vector<uint8_t>>& frames = cache[key];
  // The encryptor holds its own SaTables (128 MB of EAL memory): made for
  // this call and dropped, the frames are what is kept.
  pcapgen::PeerEncryptor::Options options;
  std::memcpy(options.destination_mac, kAccessMac.addr_bytes, 6);
  std::memcpy(options.source_mac, kAccessNextHop.addr_bytes, 6);
  auto encryptor = pcapgen::PeerEncryptor::create(options);
  while (!encryptor && SaSet::make_room()) encryptor = pcapgen::PeerEncryptor::create(options);
  if (!encryptor) {
    std::fprintf(stderr, "segw-bench-micro: peer encryptor: %s\n", encryptor.error().c_str());
    return frames;
  }
  std::vector<uint8_t> inner = peer_inner_packet(tunnel, inner_size);
  // The selectors play no part in encryption: the IPv4-only descriptor
  // encrypts for a set of any size.
  SaDescriptor inbound = inbound_descriptor(algorithm, tunnel, false);
  shared::Status status = (*encryptor)->encrypt(inbound, inner.data(), inner_size, kBurst,
                                                [&](const uint8_t* frame, uint32_t length) {
                                                  frames.emplace_back(frame, frame + length);
                                                });
  shared::secure_zero(inbound);
  if (!status) {
    std::fprintf(stderr, "segw-bench-micro: peer encryptor: %s\n", status.error().c_str());
    frames.clear();
  }
  return frames;
}

// --- release ----------------------------------------------------------------------

unsigned release_all() {
  SaSetCache::instance().sets.clear();
  unsigned in_use = pool ? rte_mempool_in_use_count(pool) : 0;
  if (pool && in_use == 0) {
    rte_mempool_free(pool);
    pool = nullptr;
  }
  return in_use;
}

}  // namespace segw::bench
