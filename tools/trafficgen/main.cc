// segw-trafficgen: a small DPDK traffic generator for machines without
// pktgen-dpdk. Replays a pcap file (segw-pcapgen output) on one port at a
// paced rate, counts what comes back on another (or the same) port, prints
// one JSON object at the end. Command line: Boost.Program_options; EAL
// arguments after "--"; the ports are added to EAL as --vdev or -a.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "dataplane/config/dataplane_config.h"
#include "dataplane/port/port.h"
#include "tools/pcapgen/packet_builder.h"
#include "tools/trafficgen/generator.h"
#include "tools/trafficgen/pcap_source.h"

namespace po = boost::program_options;
using segw::dp::PortConfig;
using segw::trafficgen::GeneratorCounters;
using segw::trafficgen::PcapSource;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Setup constants.
constexpr uint64_t kMaxPps = 1'000'000'000;   // beyond any port we drive: a typo, not a rate
constexpr double kMaxSeconds = 30 * 86400.0;  // a month
constexpr uint32_t kPoolMbufs = 16383;        // 2 ports x (RX + TX descriptors) + bursts in flight
constexpr uint32_t kPoolCache = 256;
constexpr uint32_t kLinkWaitMs = 10000;       // a PCI NIC's link comes up within seconds after start

std::atomic<bool> g_stop{false};

// Signal handler: only sets the flag the loop polls.
void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

struct Options {
  std::string pcap_path;
  std::string tx_device;
  std::string rx_device;
  std::string pps = "0";
  std::string seconds = "0";
  std::string count = "0";
  std::string destination_mac;
  uint32_t drain_ms = 500;
  bool quiet = false;
  std::vector<std::string> eal_arguments;
};

// Whole-string unsigned decimal; no sign, no suffix.
bool parse_unsigned(const std::string& text, uint64_t& out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 19) return false;
  out = std::strtoull(text.c_str(), nullptr, 10);
  return true;
}

bool parse_seconds(const std::string& text, double& out) {
  if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return errno == 0 && end && *end == '\0' && out >= 0 && out <= kMaxSeconds;
}

// True if EAL arguments already carry one of `keys` ("-l 0", "-l0", "--lcores=0").
bool has_eal_option(const std::vector<std::string>& given, std::initializer_list<const char*> keys) {
  for (const auto& a : given)
    for (const char* k : keys) {
      std::string key = k;
      if (a == key || a.rfind(key + "=", 0) == 0) return true;
      if (key.size() == 2 && key[1] != '-' && a.size() > 2 && a.rfind(key, 0) == 0) return true;
    }
  return false;
}

PortConfig port_config(const std::string& device, const char* role) {
  PortConfig config;
  config.role = role;
  config.device = device;
  return config;
}

// Waits until the port reports its link up (PCI NICs need a moment after
// start; vdevs are up at once). A link still down is reported, not fatal:
// some vdevs never report a link.
void wait_for_link(uint16_t port, const char* role) {
  for (uint32_t waited = 0; waited <= kLinkWaitMs; waited += 100) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(port, &link) != 0 || link.link_status == RTE_ETH_LINK_UP) return;
    if (g_stop.load(std::memory_order_relaxed)) return;
    rte_delay_ms(100);
  }
  std::fprintf(stderr, "segw-trafficgen: warning: %s port %u: link still down after %u ms\n", role, port,
               kLinkWaitMs);
}

void print_json(const GeneratorCounters& c) {
  auto mpps = [&](uint64_t packets) { return c.seconds > 0 ? packets / c.seconds / 1e6 : 0.0; };
  std::printf(
      "{\"tx_packets\": %lu, \"tx_bytes\": %lu, \"tx_mpps\": %.6f, \"rx_packets\": %lu, \"rx_bytes\": %lu, "
      "\"rx_mpps\": %.6f, \"seconds\": %.6f, \"tx_dropped\": %lu}\n",
      static_cast<unsigned long>(c.tx_packets), static_cast<unsigned long>(c.tx_bytes), mpps(c.tx_packets),
      static_cast<unsigned long>(c.rx_packets), static_cast<unsigned long>(c.rx_bytes), mpps(c.rx_packets),
      c.seconds, static_cast<unsigned long>(c.tx_dropped));
  std::fflush(stdout);
}

// EAL, ports, the loop, the report. Input has been validated.
int run(const Options& o, const PcapSource& source, const segw::trafficgen::GeneratorLimits& limits) {
  PortConfig tx_port = port_config(o.tx_device, "tx");
  PortConfig rx_port = port_config(o.rx_device.empty() ? o.tx_device : o.rx_device, "rx");
  const bool two_ports = rx_port.port_name() != tx_port.port_name();

  std::vector<std::string> eal = {"segw-trafficgen"};
  eal.insert(eal.end(), o.eal_arguments.begin(), o.eal_arguments.end());
  if (!has_eal_option(o.eal_arguments, {"-l", "-c", "--lcores"})) eal.emplace_back("-l0");
  if (!has_eal_option(o.eal_arguments, {"--file-prefix"})) eal.emplace_back("--file-prefix=segw-trafficgen");
  if (!tx_port.is_pci() && !rx_port.is_pci() &&
      !has_eal_option(o.eal_arguments, {"-a", "--allow", "-b", "--block", "--no-pci"}))
    eal.emplace_back("--no-pci");
  for (const PortConfig* port : {&tx_port, &rx_port}) {
    if (port == &rx_port && !two_ports) break;
    std::string arg = port->is_vdev() ? "--vdev=" : (port->is_pci() ? "-a" : "");
    if (arg.empty()) continue;  // a port name EAL creates from the user's own arguments
    arg.append(port->device);
    eal.push_back(std::move(arg));
  }
  std::vector<char*> argv;
  for (auto& a : eal) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "segw-trafficgen: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return kExitRuntime;
  }
  struct sigaction action{};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  int code = kExitOk;
  rte_mempool* pool = nullptr;
  std::vector<segw::dp::Port> opened;
  do {
    // Room for the largest frame of the capture (jumbo frames stay in one
    // segment: the loop copies a frame into a single mbuf).
    uint32_t room = std::max<uint32_t>(RTE_MBUF_DEFAULT_DATAROOM, source.max_length());
    pool = rte_pktmbuf_pool_create("segw_tgen", kPoolMbufs, kPoolCache, 0,
                                   static_cast<uint16_t>(room + RTE_PKTMBUF_HEADROOM),
                                   static_cast<int>(rte_socket_id()));
    if (!pool) {
      std::fprintf(stderr, "segw-trafficgen: mbuf pool of %u x %u bytes: %s\n", kPoolMbufs, room,
                   rte_strerror(rte_errno));
      code = kExitRuntime;
      break;
    }
    uint32_t mtu = std::max<uint32_t>(1500, source.max_length() - 14);
    for (const PortConfig* config : {&tx_port, &rx_port}) {
      if (config == &rx_port && !two_ports) break;
      auto port = segw::dp::open_port(*config, 1, pool, mtu);
      if (!port) {
        std::fprintf(stderr, "segw-trafficgen: %s\n", port.error().c_str());
        code = kExitRuntime;
        break;
      }
      opened.push_back(*port);
    }
    if (code != kExitOk) break;
    segw::trafficgen::GeneratorPorts ports{opened[0].id, opened[two_ports ? 1 : 0].id};
    for (const auto& port : opened) wait_for_link(port.id, port.role.c_str());
    auto print_port = [](const segw::dp::Port& p, const char* what) {
      char mac[RTE_ETHER_ADDR_FMT_SIZE];
      rte_ether_format_addr(mac, sizeof(mac), &p.mac);
      std::fprintf(stderr, "segw-trafficgen: %s: port %u (%s, %s)\n", what, p.id, p.driver.c_str(), mac);
    };
    print_port(opened[0], two_ports ? "tx" : "tx and rx");
    if (two_ports) print_port(opened[1], "rx");
    std::fprintf(stderr, "segw-trafficgen: %zu frames (%lu bytes) from %s, %s pps\n", source.size(),
                 static_cast<unsigned long>(source.total_bytes()), o.pcap_path.c_str(),
                 limits.pps ? std::to_string(limits.pps).c_str() : "max");

    GeneratorCounters counters = segw::trafficgen::run_generator(source, pool, ports, limits, g_stop);

    rte_eth_stats stats{};
    if (rte_eth_stats_get(ports.rx, &stats) == 0)
      std::fprintf(stderr, "segw-trafficgen: rx port: missed %lu, errors %lu, no mbuf %lu; tx port rx %lu\n",
                   static_cast<unsigned long>(stats.imissed), static_cast<unsigned long>(stats.ierrors),
                   static_cast<unsigned long>(stats.rx_nombuf),
                   static_cast<unsigned long>(counters.tx_port_rx_packets));
    print_json(counters);
  } while (false);

  for (const auto& port : opened) segw::dp::close_port(port);
  if (pool) rte_mempool_free(pool);
  rte_eal_cleanup();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  int split = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      split = i;
      break;
    }
  for (int i = split + 1; i < argc; ++i) o.eal_arguments.emplace_back(argv[i]);

  po::options_description described(
      "segw-trafficgen: replays a pcap file (segw-pcapgen output) on a DPDK port at a paced rate and\n"
      "counts the packets that come back on a second port (or the same one): a traffic generator for\n"
      "machines without pktgen-dpdk (bench/pktgen/README.md).\n\n"
      "Usage: segw-trafficgen --pcap FILE --tx-port DEVICE [--rx-port DEVICE] [options]\n"
      "                       [-- EAL arguments]\n\n"
      "DEVICE is a vdev string (net_af_packet0,iface=va1  net_pcap0,...  net_ring0) or a PCI address\n"
      "(0000:3b:00.0); it is added to EAL as --vdev or -a. Any other name must be a port the EAL\n"
      "arguments create. Both ports get one RX and one TX queue and run promiscuous.\n\n"
      "The frames of the capture are sent in file order, looped, in bursts of 32, from the main\n"
      "lcore, until --seconds or --count is reached (the first of them; neither: until SIGINT or\n"
      "SIGTERM); with both --pps and --seconds exactly pps x seconds frames are offered. A frame\n"
      "the TX queue refuses is freed and counted in tx_dropped, not retried.\n"
      "After the last frame the RX port is drained for --drain-ms. Every second one line of\n"
      "progress goes to stderr; at the end one JSON object goes to stdout:\n"
      "  {\"tx_packets\", \"tx_bytes\", \"tx_mpps\", \"rx_packets\", \"rx_bytes\", \"rx_mpps\", \"seconds\",\n"
      "   \"tx_dropped\"}\n"
      "bytes are frame bytes without FCS; seconds is the sending time (first frame to last, or to\n"
      "the signal) and both rates are counts over it. rx_* are the RX port's packets (the TX\n"
      "port's own received packets, with two ports, are in the last stderr line). SIGINT/SIGTERM\n"
      "stop at once (no drain) and still print the JSON.\n\n"
      "Segw-pcapgen's ESP carries sequence numbers 1, 2, 3, ... per SA: looping the file replays\n"
      "them and the gateway's anti-replay drops the repeats. Use --count <= the frames in the file,\n"
      "or anti_replay = no for the measurement.\n\n"
      "EAL arguments go after -- unchanged; -l0, --file-prefix=segw-trafficgen and (without a PCI\n"
      "port) --no-pci are added when absent. Beside segw-dataplane on one host, give each DPDK\n"
      "process its own --file-prefix, and --no-huge -m 512 or hugepages.\n\n"
      "Exit status: 0 done (also when stopped by a signal), 1 runtime failure (EAL, mbuf pool, port),\n"
      "2 bad command line or input (pcap missing, unreadable, empty, not Ethernet; bad MAC, rate,\n"
      "duration or count).\n\nOptions");
  described.add_options()
      ("help,h", "print this help and exit")
      ("pcap", po::value<std::string>(&o.pcap_path),
       "pcap file of Ethernet frames to send (required; read into memory once; frames 14..9600 bytes, "
       "not truncated by the capture)")
      ("tx-port", po::value<std::string>(&o.tx_device), "DPDK device the frames are sent on (required)")
      ("rx-port", po::value<std::string>(&o.rx_device),
       "DPDK device whose received packets are counted as rx_* (default: the TX port)")
      ("pps", po::value<std::string>(&o.pps)->default_value("0"),
       "frames per second offered to the TX queue, an integer up to 1000000000 (0: as fast as possible)")
      ("seconds", po::value<std::string>(&o.seconds)->default_value("0"),
       "stop sending after this many seconds, decimals allowed (0: no time limit)")
      ("count", po::value<std::string>(&o.count)->default_value("0"),
       "stop after offering this many frames to the TX queue (0: no limit)")
      ("dst-mac", po::value<std::string>(&o.destination_mac),
       "rewrite the Ethernet destination of every frame to this MAC (aa:bb:cc:dd:ee:ff)")
      ("drain-ms", po::value<uint32_t>(&o.drain_ms)->default_value(500),
       "keep counting received packets this long after the last frame was sent")
      ("quiet,q", po::bool_switch(&o.quiet), "no progress lines on stderr");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(split, argv).options(described).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "segw-trafficgen: %s (see --help)\n", e.what());
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << described << "\n";
    return kExitOk;
  }
  for (const char* required : {"pcap", "tx-port"})
    if (!vm.count(required)) {
      std::fprintf(stderr, "segw-trafficgen: --%s is required (see --help)\n", required);
      return kExitUsage;
    }
  if (o.tx_device.empty() || (vm.count("rx-port") && o.rx_device.empty())) {
    std::fprintf(stderr, "segw-trafficgen: --tx-port/--rx-port: empty device\n");
    return kExitUsage;
  }
  if (!o.rx_device.empty() && o.rx_device != o.tx_device &&
      port_config(o.rx_device, "rx").port_name() == port_config(o.tx_device, "tx").port_name()) {
    std::fprintf(stderr, "segw-trafficgen: --tx-port '%s' and --rx-port '%s' name one DPDK port differently; "
                 "give each port its own name (net_af_packet0, net_af_packet1)\n", o.tx_device.c_str(),
                 o.rx_device.c_str());
    return kExitUsage;
  }
  segw::trafficgen::GeneratorLimits limits;
  if (!parse_unsigned(o.pps, limits.pps) || limits.pps > kMaxPps) {
    std::fprintf(stderr, "segw-trafficgen: --pps: expected an integer from 0 to %lu, got '%s'\n",
                 static_cast<unsigned long>(kMaxPps), o.pps.c_str());
    return kExitUsage;
  }
  if (!parse_seconds(o.seconds, limits.seconds)) {
    std::fprintf(stderr, "segw-trafficgen: --seconds: expected a number from 0 to %.0f, got '%s'\n", kMaxSeconds,
                 o.seconds.c_str());
    return kExitUsage;
  }
  if (!parse_unsigned(o.count, limits.count)) {
    std::fprintf(stderr, "segw-trafficgen: --count: expected a non-negative integer, got '%s'\n", o.count.c_str());
    return kExitUsage;
  }
  limits.drain_ms = o.drain_ms;
  limits.progress = !o.quiet;
  uint8_t mac[6];
  if (vm.count("dst-mac") && !segw::pcapgen::parse_mac(o.destination_mac, mac)) {
    std::fprintf(stderr, "segw-trafficgen: --dst-mac: expected a MAC address like 02:00:00:00:00:01, got '%s'\n",
                 o.destination_mac.c_str());
    return kExitUsage;
  }
  auto source = PcapSource::load(o.pcap_path);
  if (!source) {
    std::fprintf(stderr, "segw-trafficgen: --pcap: %s\n", source.error().c_str());
    return kExitUsage;
  }
  if (vm.count("dst-mac")) source->rewrite_destination(mac);
  return run(o, *source, limits);
}
