// main() of segw-bench-micro: Google Benchmark flags, then EAL (no
// hugepages, no PCI, no shared config: any user, beside other processes),
// the mbuf pool, every benchmark, and a leak check at the end.
//
//   segw-bench-micro [--benchmark_* flags] [-- EAL arguments]
//
// EAL arguments after `--` replace the defaults entirely.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/micro/bench_support.h"
#include "bench/micro/benchmarks.h"

namespace {

// 1 GiB holds the 1,000,000-tunnel set (~900 MB: two FIBs with 64 MB
// first-level tables and RIB nodes preallocated for 1,000,064 routes each)
// or a few small sets; SaSet drops cached sets when it runs out.
const char* const kDefaultEalArguments[] = {
    "--no-huge", "-m", "1024", "--no-pci", "--no-shconf", "-l", "0", "--log-level=error",
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> benchmark_argv{argv[0]};
  std::vector<std::string> eal_arguments{argv[0]};
  bool eal_given = false;
  for (int i = 1; i < argc; ++i) {
    if (!eal_given && std::strcmp(argv[i], "--") == 0) {
      eal_given = true;
      continue;
    }
    if (eal_given) eal_arguments.emplace_back(argv[i]);
    else benchmark_argv.push_back(argv[i]);
  }
  if (!eal_given)
    for (const char* a : kDefaultEalArguments) eal_arguments.emplace_back(a);

  // Flags (and --help, --benchmark_list_tests) before EAL: they need none.
  int benchmark_argc = static_cast<int>(benchmark_argv.size());
  benchmark::Initialize(&benchmark_argc, benchmark_argv.data());
  if (benchmark::ReportUnrecognizedArguments(benchmark_argc, benchmark_argv.data())) return 2;
  using segw::bench::Scale;
  segw::bench::register_replay_window_benchmarks();
  segw::bench::register_sa_lookup_benchmarks(Scale::kSmall);
  segw::bench::register_esp_burst_benchmarks();
  segw::bench::register_multi_sa_benchmarks(Scale::kSmall);
  // Last and together: one 1,000,000-tunnel set for the lookups and the
  // AES-GCM encap, then one for AES-CBC.
  segw::bench::register_sa_lookup_benchmarks(Scale::kMillion);
  segw::bench::register_multi_sa_benchmarks(Scale::kMillion);

  std::vector<char*> eal_argv;
  for (auto& a : eal_arguments) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "segw-bench-micro: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  if (!segw::bench::create_packet_pool()) return 1;

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  unsigned leaked = segw::bench::release_all();
  if (leaked != 0)
    std::fprintf(stderr, "segw-bench-micro: %u mbufs were not given back to the pool\n", leaked);
  rte_eal_cleanup();
  return leaked == 0 ? 0 : 1;
}
