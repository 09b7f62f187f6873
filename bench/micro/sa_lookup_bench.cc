// SA lookup benchmarks: inbound by SPI (the direct index, staged over the
// burst as esp_inbound_burst does it, and one SaTables::inbound_lookup at a
// time) and outbound by longest-prefix match on the inner destination
// (rte_fib_lookup_bulk / rte_fib6_lookup_bulk, then SaTables::outbound_at,
// as esp_outbound_burst does it), with 1, 1,000 and 1,000,000 tunnels
// installed. Keys are drawn uniformly at random over the
// installed tunnels and pre-generated, so at 1,000,000 the SA slots, SA
// lines and FIB entries miss the caches as real traffic would.
#include <benchmark/benchmark.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_prefetch.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/micro/bench_support.h"
#include "bench/micro/benchmarks.h"
#include "shared/wire.h"

namespace segw::bench {

namespace {

using shared::EspAlgorithm;

// Keys per pre-generated array: 1M random draws, far more than any cache
// holds for the 1M-tunnel set; read sequentially (the prefetcher hides the
// array itself, only the table accesses are random).
constexpr size_t kKeys = size_t{1} << 20;
constexpr uint32_t kSeed = 0x5e9a;

// Random tunnel indexes in [0, count), one array per count.
const std::vector<uint32_t>& random_tunnels(uint32_t count) {
  static std::map<uint32_t, std::vector<uint32_t>> cache;
  auto& tunnels = cache[count];
  if (tunnels.empty()) {
    std::mt19937 random(kSeed + count);
    std::uniform_int_distribution<uint32_t> pick(0, count - 1);
    tunnels.resize(kKeys);
    for (auto& t : tunnels) t = pick(random);
  }
  return tunnels;
}

SaSet* lookup_set(benchmark::State& state, uint32_t count) {
  SaSet* set = SaSet::get({EspAlgorithm::kAesGcm128}, count, true);
  if (set == nullptr) state.SkipWithError("cannot build the SA set (see stderr)");
  return set;
}

void report(benchmark::State& state, const SaSet& set) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
  // Seconds per lookup (printed with an SI prefix: "4.2n" is 4.2 ns).
  state.counters["per_lookup"] = benchmark::Counter(static_cast<double>(state.iterations()) * kBurst,
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  if (set.count() >= kMillionTunnels) state.counters["bytes_per_tunnel"] = set.bytes_per_tunnel();
}

// `staged`: as esp_inbound_burst's first pass does it, in three sweeps over
// the burst (prefetch every slot; load the slots, prefetch every SA line;
// compare the SPIs) so the burst's misses overlap. Otherwise one
// SaTables::inbound_lookup per packet, in a loop.
void inbound(benchmark::State& state, uint32_t count, bool staged) {
  SaSet* set = lookup_set(state, count);
  if (set == nullptr) return;
  const dp::SaTables& tables = set->tables();
  std::vector<uint32_t> spis;
  spis.reserve(kKeys);
  for (uint32_t t : random_tunnels(count)) spis.push_back(inbound_spi(t));
  for (size_t i = 0; i < kBurst; ++i)
    if (tables.inbound_lookup(spis[i]) == nullptr) return state.SkipWithError("an installed SPI was not found");

  size_t position = 0;
  for (auto _ : state) {
    dp::EspSa* found[kBurst];
    const uint32_t* keys = spis.data() + position;
    if (staged) {
      for (uint16_t k = 0; k < kBurst; ++k) rte_prefetch0(tables.inbound_slot(keys[k]));
      for (uint16_t k = 0; k < kBurst; ++k) {
        found[k] = tables.inbound_slot(keys[k])->load(std::memory_order_acquire);
        if (found[k] != nullptr) rte_prefetch0(found[k]);
      }
      for (uint16_t k = 0; k < kBurst; ++k)
        if (found[k] != nullptr && found[k]->spi != keys[k]) found[k] = nullptr;
    } else {
      for (uint16_t k = 0; k < kBurst; ++k) found[k] = tables.inbound_lookup(keys[k]);
    }
    benchmark::DoNotOptimize(found);
    position = (position + kBurst) & (kKeys - 1);
  }
  report(state, *set);
}

void bm_inbound_spi(benchmark::State& state, uint32_t count) { inbound(state, count, true); }
void bm_inbound_spi_unstaged(benchmark::State& state, uint32_t count) { inbound(state, count, false); }

// `touch_sa`: also read the SA's first cache line (its SPI), as the
// inbound lookup must; without it the lookup ends at the SA pointer.
void outbound_ipv4(benchmark::State& state, uint32_t count, bool touch_sa) {
  SaSet* set = lookup_set(state, count);
  if (set == nullptr) return;
  const dp::SaTables& tables = set->tables();
  std::vector<uint32_t> destinations;  // host order, as the burst loads them
  destinations.reserve(kKeys);
  for (uint32_t t : random_tunnels(count)) destinations.push_back(peer_inner_ipv4(t));
  {
    uint64_t hops[kBurst];
    rte_fib_lookup_bulk(tables.ipv4_routes(), destinations.data(), hops, kBurst);
    for (uint16_t k = 0; k < kBurst; ++k)
      if (hops[k] == dp::SaTables::kNoRoute || tables.outbound_at(static_cast<uint32_t>(hops[k] - 1)) == nullptr)
        return state.SkipWithError("an installed destination has no SA");
  }

  size_t position = 0;
  for (auto _ : state) {
    uint64_t hops[kBurst];
    dp::EspSa* found[kBurst];
    rte_fib_lookup_bulk(tables.ipv4_routes(), destinations.data() + position, hops, kBurst);
    for (uint16_t k = 0; k < kBurst; ++k) found[k] = tables.outbound_at(static_cast<uint32_t>(hops[k] - 1));
    if (touch_sa) {
      uint32_t spis[kBurst];
      for (uint16_t k = 0; k < kBurst; ++k) spis[k] = found[k]->spi;
      benchmark::DoNotOptimize(spis);
    }
    benchmark::DoNotOptimize(found);
    position = (position + kBurst) & (kKeys - 1);
  }
  report(state, *set);
}

void bm_outbound_ipv4(benchmark::State& state, uint32_t count) { outbound_ipv4(state, count, false); }
void bm_outbound_ipv4_sa(benchmark::State& state, uint32_t count) { outbound_ipv4(state, count, true); }

void bm_outbound_ipv6(benchmark::State& state, uint32_t count) {
  SaSet* set = lookup_set(state, count);
  if (set == nullptr) return;
  const dp::SaTables& tables = set->tables();
  std::vector<std::array<uint8_t, 16>> destinations(kKeys);
  const auto& tunnels = random_tunnels(count);
  for (size_t i = 0; i < kKeys; ++i) peer_inner_ipv6(tunnels[i], destinations[i].data());
  auto* keys = reinterpret_cast<uint8_t(*)[16]>(destinations.data());
  {
    uint64_t hops[kBurst];
    rte_fib6_lookup_bulk(tables.ipv6_routes(), keys, hops, kBurst);
    for (uint16_t k = 0; k < kBurst; ++k)
      if (hops[k] == dp::SaTables::kNoRoute || tables.outbound_at(static_cast<uint32_t>(hops[k] - 1)) == nullptr)
        return state.SkipWithError("an installed destination has no SA");
  }

  size_t position = 0;
  for (auto _ : state) {
    uint64_t hops[kBurst];
    dp::EspSa* found[kBurst];
    rte_fib6_lookup_bulk(tables.ipv6_routes(), keys + position, hops, kBurst);
    for (uint16_t k = 0; k < kBurst; ++k) found[k] = tables.outbound_at(static_cast<uint32_t>(hops[k] - 1));
    benchmark::DoNotOptimize(found);
    position = (position + kBurst) & (kKeys - 1);
  }
  report(state, *set);
}

}  // namespace

void register_sa_lookup_benchmarks(Scale scale) {
  struct Kind {
    const char* name;
    void (*function)(benchmark::State&, uint32_t);
    bool million;  // also registered for 1,000,000 tunnels
  };
  // No IPv6 routes in the 1,000,000-tunnel set (bench_support.cc:
  // with_ipv6_selector, the trie's tbl8 reservation).
  const Kind kinds[] = {
      {"inbound_spi", bm_inbound_spi, true},
      {"inbound_spi_unstaged", bm_inbound_spi_unstaged, true},
      {"outbound_ipv4", bm_outbound_ipv4, true},
      {"outbound_ipv4_sa", bm_outbound_ipv4_sa, true},
      {"outbound_ipv6", bm_outbound_ipv6, false},
  };
  std::vector<uint32_t> counts;
  if (scale == Scale::kSmall) counts = {1, kManyTunnels};
  else counts = {kMillionTunnels};
  for (const Kind& kind : kinds)
    for (uint32_t count : counts) {
      if (count >= kMillionTunnels && !kind.million) continue;
      benchmark::RegisterBenchmark(("BM_SaLookup/" + std::string(kind.name) + "/" + std::to_string(count)).c_str(),
                                   kind.function, count);
    }
}

}  // namespace segw::bench
