// segw-bench-channel-driver: the control-plane side of bench/channel. Attaches
// to a running segw-dataplane's region with DataPlaneLink (no DPDK) and runs
// one mode, printing one JSON object on stdout:
//   install N SPI_BASE TUNNEL_BASE   N SAs (N/2 tunnels, inbound + outbound,
//                                    /32 route each), max pipelining -> seconds
//   updates SECONDS FIRST COUNT      update_path round robin over tunnels
//                                    FIRST..FIRST+COUNT-1, many in flight -> ok/s
//   latency N FIRST COUNT            one update_path at a time; submit ->
//                                    completion per update -> p50/p99 us. The
//                                    data plane swaps the path before it answers,
//                                    so this is command-to-effect (as the data
//                                    plane sees it, not a packet on the wire).
// Options after the mode: --name NAME --dir DIR (the [channel] name/directory),
// --wait spin|yield (latency: how this thread polls for its completion).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/dp_link/data_plane_link.h"

using namespace segw;
using namespace segw::cp::dp_link;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kGatewayAccess = 0xC0000201;  // 192.0.2.1
constexpr uint32_t kPeerBase = 0x64400001;       // 100.64.0.1 (+ i)
constexpr uint32_t kInnerBase = 0xAC100000;      // 172.16.0.0 (+ i), /32 each

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

shared::PathDescriptor path_for(uint32_t index, uint32_t variant) {
  shared::PathDescriptor path;
  path.local = shared::IpAddress::from_ipv4(kGatewayAccess);
  path.remote = shared::IpAddress::from_ipv4(kPeerBase + (index & 0xfffff));
  path.local_port = 4500;
  path.remote_port = static_cast<uint16_t>(1024 + (variant % 60000));
  path.udp_encapsulation = true;
  return path;
}

shared::SaDescriptor make_sa(uint32_t spi, shared::SaDirection direction, uint32_t tunnel,
                             uint32_t index) {
  shared::SaDescriptor sa;
  sa.spi = spi;
  sa.direction = direction;
  sa.algorithm = shared::EspAlgorithm::kAesGcm128;
  sa.tunnel_id = tunnel;
  for (int i = 0; i < 16; ++i) sa.cipher_key[i] = static_cast<uint8_t>(index * 7 + i);
  for (int i = 0; i < 4; ++i) sa.salt[i] = static_cast<uint8_t>(index + i);
  sa.path = path_for(index, index);
  shared::IpPrefix core{shared::IpAddress::from_ipv4(0x0A000000), 8};
  shared::IpPrefix peer{shared::IpAddress::from_ipv4(kInnerBase + index), 32};
  sa.local_selectors[0] = shared::TrafficSelector::from_prefix(core);
  sa.remote_selectors[0] = shared::TrafficSelector::from_prefix(peer);
  sa.local_selector_count = 1;
  sa.remote_selector_count = 1;
  return sa;
}

[[noreturn]] void die(const std::string& text) {
  std::fprintf(stderr, "segw-bench-channel-driver: %s\n", text.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s install N SPI_BASE TUNNEL_BASE | updates SECONDS FIRST COUNT | "
                 "latency N FIRST COUNT  [--name NAME] [--dir DIR]\n",
                 argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  std::vector<std::string> positional;
  DataPlaneLinkOptions options;
  std::string wait_mode = "yield";  // latency: spin | yield (poll from this thread)
  options.follow_restarts = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--name" && i + 1 < argc) options.region_name = argv[++i];
    else if (arg == "--dir" && i + 1 < argc) options.directory = argv[++i];
    else if (arg == "--wait" && i + 1 < argc) wait_mode = argv[++i];
    else positional.push_back(arg);
  }
  auto num = [&](size_t i, uint64_t fallback) -> uint64_t {
    return i < positional.size() ? std::strtoull(positional[i].c_str(), nullptr, 0) : fallback;
  };
  const bool latency_mode = mode == "latency";
  // Latency: poll the link from this thread, busy, so the link's own
  // idle sleep is not part of the figure.
  options.service_thread = !latency_mode;
  options.idle_sleep = std::chrono::microseconds(latency_mode ? 0 : 20);
  options.submit_timeout = std::chrono::milliseconds(10000);
  options.command_timeout = std::chrono::milliseconds(30000);

  auto attached = DataPlaneLink::attach(options);
  if (!attached) die("attach: " + attached.error());
  std::unique_ptr<DataPlaneLink> link = std::move(*attached);
  if (!link->wait_for_state(LinkState::kAttached, std::chrono::milliseconds(5000)))
    die("data plane not alive: " + link->last_error());

  std::atomic<uint64_t> done{0}, failed{0};
  std::string first_failure;
  std::atomic<bool> have_failure{false};
  auto on_done = [&](const CommandResult& result) {
    if (!result.ok()) {
      if (!have_failure.exchange(true)) first_failure = result.to_string();
      failed.fetch_add(1, std::memory_order_relaxed);
    }
    done.fetch_add(1, std::memory_order_release);
  };
  auto wait_all = [&](uint64_t sent, double limit_s) {
    auto start = Clock::now();
    while (done.load(std::memory_order_acquire) < sent && seconds_since(start) < limit_s)
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  };

  if (mode == "install") {
    uint64_t n = num(0, 1000);
    uint32_t spi_base = static_cast<uint32_t>(num(1, 0x02000000));
    uint32_t tunnel_base = static_cast<uint32_t>(num(2, 1000000));
    uint64_t sent = 0;
    auto start = Clock::now();
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t t = static_cast<uint32_t>(i / 2);
      auto dir = (i % 2 == 0) ? shared::SaDirection::kOutbound : shared::SaDirection::kInbound;
      shared::SaDescriptor sa = make_sa(spi_base + t, dir, tunnel_base + t, t);
      auto status = link->install(sa, on_done);
      shared::secure_zero(sa);
      if (!status) die("install " + std::to_string(i) + ": " + status.error());
      ++sent;
    }
    wait_all(sent, 120);
    double seconds = seconds_since(start);
    std::printf("{\"mode\":\"install\",\"sas\":%llu,\"completed\":%llu,\"failed\":%llu,"
                "\"seconds\":%.6f,\"first_failure\":\"%s\"}\n",
                (unsigned long long)n, (unsigned long long)done.load(),
                (unsigned long long)failed.load(), seconds, first_failure.c_str());
    return done.load() == sent && failed.load() == 0 ? 0 : 1;
  }

  uint32_t first = static_cast<uint32_t>(num(1, 1));
  uint32_t count = static_cast<uint32_t>(std::max<uint64_t>(1, num(2, 1)));

  if (mode == "updates") {
    double duration = static_cast<double>(num(0, 5));
    uint64_t sent = 0;
    auto start = Clock::now();
    while (true) {
      // Check the clock every 256 submits.
      if ((sent & 255) == 0 && seconds_since(start) >= duration) break;
      uint32_t index = static_cast<uint32_t>(sent % count);
      auto status = link->update_path(first + index, path_for(index, 1 + sent / count), on_done);
      if (!status) die("update_path: " + status.error());
      ++sent;
    }
    double submit_s = seconds_since(start);
    wait_all(sent, 60);
    double seconds = seconds_since(start);
    uint64_t ok = done.load() - failed.load();
    std::printf("{\"mode\":\"updates\",\"sent\":%llu,\"completed_ok\":%llu,\"failed\":%llu,"
                "\"submit_seconds\":%.6f,\"seconds\":%.6f,\"updates_per_s\":%.1f,"
                "\"first_failure\":\"%s\"}\n",
                (unsigned long long)sent, (unsigned long long)ok,
                (unsigned long long)failed.load(), submit_s, seconds, ok / seconds,
                first_failure.c_str());
    return failed.load() == 0 ? 0 : 1;
  }

  if (latency_mode) {
    uint64_t n = num(0, 1000);
    std::vector<double> samples;
    samples.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint32_t index = static_cast<uint32_t>(i % count);
      std::atomic<bool> finished{false};
      bool ok = false;
      auto start = Clock::now();
      auto status = link->update_path(first + index, path_for(index, 7 + i),
                                      [&](const CommandResult& r) {
                                        ok = r.ok();
                                        if (!ok && first_failure.empty())
                                          first_failure = r.to_string();
                                        finished.store(true);
                                      });
      if (!status) die("update_path: " + status.error());
      while (!finished.load()) {
        if (link->poll() == 0 && wait_mode == "yield") std::this_thread::yield();
      }
      double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      if (ok) samples.push_back(us);
      else failed.fetch_add(1);
    }
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
      if (samples.empty()) return -1.0;
      size_t k = static_cast<size_t>(p * (samples.size() - 1) + 0.5);
      return samples[k];
    };
    std::printf("{\"mode\":\"latency\",\"samples\":%zu,\"failed\":%llu,\"p50_us\":%.2f,"
                "\"p99_us\":%.2f,\"max_us\":%.2f,\"first_failure\":\"%s\"}\n",
                samples.size(), (unsigned long long)failed.load(), pct(0.5), pct(0.99),
                pct(1.0), first_failure.c_str());
    return samples.empty() ? 1 : 0;
  }
  die("unknown mode " + mode);
}
