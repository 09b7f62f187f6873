// segw-dataplane as a whole: EAL, mempool, SA tables, ports, workers, the
// main-lcore loop (punt drain, RCU reclaim, stats line), telemetry commands,
// and the final statistics document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segw::dp {

struct AppOptions {
  std::string config_path;          // empty: the embedded demo configuration
  double duration_seconds = 0;      // 0: until SIGINT/SIGTERM
  double warmup_seconds = 0;        // rates in the statistics document start after this
  std::string stats_json_path;      // where to write final statistics (JSON), empty: none
  uint32_t stats_sa_limit = 1000;   // at most this many SAs listed in the JSON
  bool check_config_only = false;   // validate, print a summary, exit
  std::vector<std::string> eal_arguments;
};

// Runs the data plane; returns the process exit code (0 ok, 1 runtime
// failure, 2 bad configuration or command line).
int run_dataplane(const AppOptions& options);

// The configuration used when none is given (documented in configs/README.md).
const char* embedded_default_config();

}  // namespace segw::dp
