// ESP burst benchmarks: esp_outbound_burst (encap) and esp_inbound_burst
// (decap) on bursts of kBurst mbufs for every algorithm and inner size on one
// SA, the per-iteration reload of the mbufs alone (copy-only baselines), and
// encap over 1, 1,000 and 1,000,000 SAs in one burst.
//
// Each iteration reloads the burst (the ESP code works in place) and runs one
// ESP call; items are packets, bytes are inner IP bytes.
//   encap: the mbufs get their data offset, lengths, metadata and first 42
//          bytes (Ethernet + IPv4 + UDP header) back; the payload left by the
//          previous iteration is encrypted again (same cost, same cache lines).
//   decap: the whole ESP frame is copied back (it was decrypted in place and
//          must verify again). The inbound SA is installed with anti-replay
//          not enforced, so the same sequence numbers pass every iteration.
#include <benchmark/benchmark.h>
#include <rte_ether.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/micro/bench_support.h"
#include "bench/micro/benchmarks.h"
#include "dataplane/esp/esp_inbound.h"
#include "dataplane/esp/esp_outbound.h"
#include "shared/wire.h"

namespace segw::bench {

namespace {

using shared::EspAlgorithm;

constexpr EspAlgorithm kAlgorithms[] = {
    EspAlgorithm::kAesGcm128,          EspAlgorithm::kAesGcm256,
    EspAlgorithm::kAesCbc128HmacSha1,  EspAlgorithm::kAesCbc256HmacSha1,
    EspAlgorithm::kAesCbc128HmacSha256, EspAlgorithm::kAesCbc256HmacSha256,
};
constexpr uint32_t kSizes[] = {64, 512, 1420};
constexpr EspAlgorithm kMultiSaAlgorithms[] = {EspAlgorithm::kAesGcm128, EspAlgorithm::kAesCbc128HmacSha1};
constexpr uint32_t kMultiSaSizes[] = {64, 1420};

// Ethernet + IPv4 + UDP: what the encryption overwrites in front of the payload.
constexpr uint32_t kCoreHeaderLength = sizeof(rte_ether_hdr) + 20 + 8;
// Where the inner IPv4 destination sits in a core frame.
constexpr uint32_t kInnerDestinationOffset = sizeof(rte_ether_hdr) + 16;

uint32_t align_up(uint32_t value, uint32_t block) { return (value + block - 1) / block * block; }

// The access frame one inner packet becomes: Ethernet, IPv4, UDP, ESP header,
// IV, payload + padding + trailer, ICV (RFC 4303 2, RFC 3948 2.1).
uint32_t expected_esp_frame(EspAlgorithm algorithm, uint32_t inner_size) {
  const auto& p = shared::properties(algorithm);
  return sizeof(rte_ether_hdr) + 20 + 8 + 8 + p.iv_length + align_up(inner_size + 2, p.block_size) + p.icv_length;
}

void report(benchmark::State& state, uint32_t inner_size) {
  int64_t packets = static_cast<int64_t>(state.iterations()) * kBurst;
  state.SetItemsProcessed(packets);
  state.SetBytesProcessed(packets * inner_size);
}

// A random order over [0, count), walked round robin: every SA once per
// round, no stride for the hardware prefetcher to follow.
const std::vector<uint32_t>& tunnel_order(uint32_t count) {
  static std::map<uint32_t, std::vector<uint32_t>> cache;
  auto& order = cache[count];
  if (order.empty()) {
    order.resize(count);
    for (uint32_t i = 0; i < count; ++i) order[i] = i;
    std::mt19937 random(0x0b5 + count);
    std::shuffle(order.begin(), order.end(), random);
  }
  return order;
}

// Runs the encap loop. `tunnels` (nullptr: tunnel 0 only) gives the tunnel
// of each packet in turn, round robin.
void run_encap(benchmark::State& state, SaSet& set, EspAlgorithm algorithm, uint32_t inner_size,
               const std::vector<uint32_t>* tunnels) {
  set.reset_sequences();
  dp::EspContext ctx = worker_context(set.tables());
  std::vector<uint8_t> frame = core_frame(0, inner_size);
  uint32_t frame_length = static_cast<uint32_t>(frame.size());
  Burst burst;
  if (!burst.ok()) return state.SkipWithError("mbuf pool empty");
  for (uint16_t k = 0; k < kBurst; ++k) load_core_frame(burst[k], frame.data(), frame_length, false);

  rte_mbuf* input[kBurst];
  rte_mbuf* out[dp::kMaxEspBurst];
  rte_mbuf* to_core[kBurst];
  uint16_t to_core_count = 0;
  size_t next = 0;
  auto reload = [&] {
    for (uint16_t k = 0; k < kBurst; ++k) {
      rte_mbuf* m = burst[k];
      reload_core_header(m, frame.data(), kCoreHeaderLength, frame_length, false);
      if (tunnels) {
        shared::store_be32(rte_pktmbuf_mtod_offset(m, uint8_t*, kInnerDestinationOffset),
                           peer_inner_ipv4((*tunnels)[next]));
        if (++next == tunnels->size()) next = 0;
      }
      input[k] = m;
    }
  };
  auto fail = [&](uint16_t good) {
    for (uint16_t i = 0; i < to_core_count; ++i) rte_pktmbuf_free(to_core[i]);
    burst.lose({out, good});
    state.SkipWithError(("encap dropped packets: " + worker_drop_summary()).c_str());
  };

  // One checked burst first: all encapsulated, in order, the expected size.
  uint64_t drops_before = worker_drops();
  reload();
  uint16_t good = dp::esp_outbound_burst(ctx, input, kBurst, out, to_core, &to_core_count);
  if (good != kBurst || to_core_count != 0 || worker_drops() != drops_before) return fail(good);
  for (uint16_t k = 0; k < kBurst; ++k)
    if (out[k] != burst[k] || out[k]->pkt_len != expected_esp_frame(algorithm, inner_size))
      return state.SkipWithError("encap output is not the expected burst of ESP frames");

  for (auto _ : state) {
    reload();
    good = dp::esp_outbound_burst(ctx, input, kBurst, out, to_core, &to_core_count);
    if (good != kBurst || to_core_count != 0) [[unlikely]] {
      fail(good);
      break;
    }
  }
  report(state, inner_size);
}

void bm_encap(benchmark::State& state, EspAlgorithm algorithm, uint32_t inner_size) {
  SaSet* set = SaSet::get({algorithm}, 1, true);
  if (set == nullptr) return state.SkipWithError("cannot build the SA set (see stderr)");
  run_encap(state, *set, algorithm, inner_size, nullptr);
}

void bm_encap_multi_sa(benchmark::State& state, EspAlgorithm algorithm, uint32_t inner_size, uint32_t sas) {
  SaSet* set = SaSet::get({algorithm}, sas, false);
  if (set == nullptr) return state.SkipWithError("cannot build the SA set (see stderr)");
  run_encap(state, *set, algorithm, inner_size, &tunnel_order(sas));
  state.counters["sas"] = sas;
}

// The encap reload alone (subtract from BM_Encap / BM_EncapMultiSa time).
void bm_encap_copy_only(benchmark::State& state, uint32_t inner_size) {
  std::vector<uint8_t> frame = core_frame(0, inner_size);
  uint32_t frame_length = static_cast<uint32_t>(frame.size());
  Burst burst;
  if (!burst.ok()) return state.SkipWithError("mbuf pool empty");
  for (uint16_t k = 0; k < kBurst; ++k) load_core_frame(burst[k], frame.data(), frame_length, false);
  rte_mbuf* input[kBurst];
  for (auto _ : state) {
    for (uint16_t k = 0; k < kBurst; ++k) {
      reload_core_header(burst[k], frame.data(), kCoreHeaderLength, frame_length, false);
      input[k] = burst[k];
    }
    benchmark::DoNotOptimize(input);
    benchmark::ClobberMemory();
  }
  report(state, inner_size);
}

void bm_decap(benchmark::State& state, EspAlgorithm algorithm, uint32_t inner_size) {
  SaSet* set = SaSet::get({algorithm}, 1, true);
  if (set == nullptr) return state.SkipWithError("cannot build the SA set (see stderr)");
  const auto& frames = peer_frames(algorithm, 0, inner_size);
  if (frames.size() != kBurst) return state.SkipWithError("cannot encrypt the input burst (see stderr)");
  dp::EspContext ctx = worker_context(set->tables());
  Burst burst;
  if (!burst.ok()) return state.SkipWithError("mbuf pool empty");

  rte_mbuf* input[kBurst];
  rte_mbuf* out[kBurst];
  auto reload = [&] {
    for (uint16_t k = 0; k < kBurst; ++k) {
      load_access_frame(burst[k], frames[k].data(), static_cast<uint32_t>(frames[k].size()));
      input[k] = burst[k];  // the burst function clears entries of `input`
    }
  };
  auto fail = [&](uint16_t good) {
    burst.lose({out, good});
    state.SkipWithError(("decap dropped packets: " + worker_drop_summary()).c_str());
  };

  // One checked burst first: every packet back to the inner packet, in order.
  uint64_t drops_before = worker_drops();
  reload();
  uint16_t good = dp::esp_inbound_burst(ctx, input, kBurst, out);
  if (good != kBurst || worker_drops() != drops_before) return fail(good);
  std::vector<uint8_t> inner = peer_inner_packet(0, inner_size);
  for (uint16_t k = 0; k < kBurst; ++k)
    if (out[k] != burst[k] || out[k]->pkt_len != sizeof(rte_ether_hdr) + inner_size ||
        std::memcmp(rte_pktmbuf_mtod_offset(out[k], const uint8_t*, sizeof(rte_ether_hdr)), inner.data(),
                    inner_size) != 0)
      return state.SkipWithError("decap output is not the inner packets");

  for (auto _ : state) {
    reload();
    good = dp::esp_inbound_burst(ctx, input, kBurst, out);
    if (good != kBurst) [[unlikely]] {
      fail(good);
      break;
    }
  }
  report(state, inner_size);
}

// The decap reload alone (subtract from BM_Decap time): frames copied back.
void bm_decap_copy_only(benchmark::State& state, EspAlgorithm algorithm, uint32_t inner_size) {
  const auto& frames = peer_frames(algorithm, 0, inner_size);
  if (frames.size() != kBurst) return state.SkipWithError("cannot encrypt the input burst (see stderr)");
  Burst burst;
  if (!burst.ok()) return state.SkipWithError("mbuf pool empty");
  rte_mbuf* input[kBurst];
  for (auto _ : state) {
    for (uint16_t k = 0; k < kBurst; ++k) {
      load_access_frame(burst[k], frames[k].data(), static_cast<uint32_t>(frames[k].size()));
      input[k] = burst[k];
    }
    benchmark::DoNotOptimize(input);
    benchmark::ClobberMemory();
  }
  report(state, inner_size);
}

std::string name(const char* family, EspAlgorithm algorithm, uint32_t size) {
  return std::string(family) + "/" + shared::to_string(algorithm) + "/" + std::to_string(size);
}

}  // namespace

void register_esp_burst_benchmarks() {
  // Grouped per algorithm so its one-SA set is built once.
  for (EspAlgorithm algorithm : kAlgorithms) {
    for (uint32_t size : kSizes)
      benchmark::RegisterBenchmark(name("BM_Encap", algorithm, size).c_str(), bm_encap, algorithm, size);
    for (uint32_t size : kSizes)
      benchmark::RegisterBenchmark(name("BM_Decap", algorithm, size).c_str(), bm_decap, algorithm, size);
    for (uint32_t size : kSizes)
      benchmark::RegisterBenchmark(name("BM_DecapCopyOnly", algorithm, size).c_str(), bm_decap_copy_only, algorithm,
                                   size);
  }
  for (uint32_t size : kSizes)
    benchmark::RegisterBenchmark(("BM_EncapCopyOnly/" + std::to_string(size)).c_str(), bm_encap_copy_only, size);
}

void register_multi_sa_benchmarks(Scale scale) {
  std::vector<uint32_t> counts;
  if (scale == Scale::kSmall) counts = {1, kManyTunnels};
  else counts = {kMillionTunnels};
  // Algorithm outermost: one large set per algorithm.
  for (EspAlgorithm algorithm : kMultiSaAlgorithms)
    for (uint32_t size : kMultiSaSizes)
      for (uint32_t sas : counts)
        benchmark::RegisterBenchmark((name("BM_EncapMultiSa", algorithm, size) + "/" + std::to_string(sas)).c_str(),
                                     bm_encap_multi_sa, algorithm, size, sas);
}

}  // namespace segw::bench
