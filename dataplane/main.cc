// segw-dataplane: command line (Boost.Program_options) around run_dataplane().
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "dataplane/app/dataplane_app.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  segw::dp::AppOptions options;
  // Everything after "--" goes to DPDK's EAL untouched.
  int split = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      split = i;
      break;
    }
  for (int i = split + 1; i < argc; ++i) options.eal_arguments.emplace_back(argv[i]);

  po::options_description described(
      "segw-dataplane: DPDK ESP-in-UDP data plane of the segw security gateway.\n\n"
      "Usage: segw-dataplane [options] [-- EAL arguments]\n\n"
      "EAL arguments (after --) go to DPDK unchanged, e.g. -l 0,1 (main lcore + workers; one\n"
      "worker per lcore after the first, default -l0,1), --no-huge -m 1024, --file-prefix NAME,\n"
      "--in-memory. Ports named in the configuration are added as --vdev (net_* devices) or\n"
      "-a (PCI addresses) automatically.\n\nOptions");
  described.add_options()
      ("help,h", "print this help and exit")
      ("config,c", po::value<std::string>(&options.config_path),
       "configuration file (format: configs/README.md); without it the embedded default runs")
      ("duration,d", po::value<double>(&options.duration_seconds)->default_value(0),
       "stop after this many seconds (0: run until SIGINT/SIGTERM)")
      ("warmup", po::value<double>(&options.warmup_seconds)->default_value(0),
       "seconds excluded from the rates in --stats-json")
      ("stats-json", po::value<std::string>(&options.stats_json_path),
       "write final counters, rates and per-SA statistics to this file as JSON")
      ("stats-sa-limit", po::value<uint32_t>(&options.stats_sa_limit)->default_value(1000),
       "list at most this many SAs in --stats-json")
      ("check-config", "validate the configuration, print a summary and exit")
      ("print-default-config", "print the embedded default configuration and exit");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(split, argv).options(described).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "segw-dataplane: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << described << "\n";
    return 0;
  }
  if (vm.count("print-default-config")) {
    std::fputs(segw::dp::embedded_default_config(), stdout);
    return 0;
  }
  if (options.duration_seconds < 0 || options.warmup_seconds < 0) {
    std::fprintf(stderr, "segw-dataplane: --duration and --warmup must not be negative\n");
    return 2;
  }
  options.check_config_only = vm.count("check-config") > 0;
  return segw::dp::run_dataplane(options);
}
