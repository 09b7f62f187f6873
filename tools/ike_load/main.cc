// segw-ike-load: an IKEv2 load generator. Opens --count IKE SAs against one
// responder, --concurrency at a time, each from its own source address
// (127.1.0.1, 127.1.0.2, ...: every 127/8 address is local on Linux, and
// UdpTransport's IP_PKTINFO sends from it), with segw's own IKE engine as the
// initiator. Child SAs are negotiated but never installed (no data plane).
// Reports how many came up, how fast, and why the others failed; with --hold
// keeps them up until told to stop, then deletes them all.
//
// Threads: the engine runs on main's thread only (engine.h); UdpTransport's
// receive thread hands datagrams over through an Inbox, as segw-controlplane
// does.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/ike/engine/engine.h"
#include "controlplane/transport/udp_transport.h"

namespace po = boost::program_options;
namespace config = segw::cp::config;
namespace dp_link = segw::cp::dp_link;
namespace ike = segw::cp::ike;
using segw::shared::IpAddress;

namespace {

enum ExitCode : int {
  kExitOk = 0,
  kExitSomeFailed = 1,  // the run completed, but not every IKE SA came up
  kExitUsage = 2,
  kExitTransport = 3,
  kExitConfig = 5,
};

// Tuning constants.
// Progress lines on stderr this often (unless --quiet).
constexpr auto kProgressInterval = std::chrono::seconds(2);
// The loop sleeps at most this long: poll() runs the engine's timers and the
// stop flag is looked at.
constexpr int kMaxSleepMs = 10;
// Datagrams queued for the engine thread beyond this are dropped (counted):
// IKE retransmits what matters.
constexpr size_t kInboxLimit = 262144;

std::atomic<int> stop_requests{0};
std::atomic<int> probe_requests{0};
std::atomic<int> move_requests{0};
int wake_fd = -1;

void wake() {
  uint64_t one = 1;
  if (wake_fd >= 0) (void)!write(wake_fd, &one, sizeof one);
}

// SIGUSR1 while holding: every held IKE SA sends a liveness check now (the
// fleet's next IKE message after a NAT remap, bench/remap_mass).
void on_probe_signal(int) {
  probe_requests.fetch_add(1);
  wake();
}

// SIGUSR2 while holding: every held IKE SA moves to its next --move-base
// address with a MOBIKE update (tests/integration/remap: devices moving
// between networks, in and out of NATs).
void on_move_signal(int) {
  move_requests.fetch_add(1);
  wake();
}

void on_signal(int) {
  stop_requests.fetch_add(1);
  wake();
}

// Datagrams from the transport's thread to the engine's.
class Inbox {
 public:
  void push(const dp_link::IkeDatagram& datagram) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= kInboxLimit) {
        ++dropped_;
        return;
      }
      queue_.push_back(datagram);
    }
    wake();
  }
  std::deque<dp_link::IkeDatagram> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(queue_, {});
  }
  uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  mutable std::mutex mutex_;
  std::deque<dp_link::IkeDatagram> queue_;
  uint64_t dropped_ = 0;
};

// The children are never installed (InitiateRequest::install_children =
// false); the engine still wants an installer.
class NoInstaller final : public dp_link::SaInstaller {
 public:
  using Future = segw::shared::Result<std::future<dp_link::CommandResult>>;
  Future install(const segw::shared::SaDescriptor&) override { return ok(); }
  Future remove(uint32_t, segw::shared::SaDirection) override { return ok(); }
  Future update_path(uint32_t, const segw::shared::PathDescriptor&) override { return ok(); }
  Future update_selectors(uint32_t, segw::shared::SaDirection, std::span<const segw::shared::TrafficSelector>,
                          std::span<const segw::shared::TrafficSelector>) override {
    return ok();
  }

 private:
  static Future ok() {
    std::promise<dp_link::CommandResult> promise;
    promise.set_value(dp_link::CommandResult{});
    return promise.get_future();
  }
};

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// Distinct source addresses from `base` on. IPv4: host parts .0 and .255 are
// skipped (legal on lo, but they look like network and broadcast addresses
// in every capture).
std::vector<IpAddress> source_addresses(const IpAddress& base, size_t count) {
  std::vector<IpAddress> out;
  out.reserve(count);
  for (uint64_t offset = 0; out.size() < count; ++offset) {
    IpAddress address = base.plus(offset);
    if (address.is_ipv4()) {
      uint8_t last = address.bytes()[3];
      if (last == 0 || last == 255) continue;
    }
    out.push_back(address);
  }
  return out;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

// What happened to every IKE SA we started. An IKE SA is counted exactly
// once as established or failed; an established one whose first child was
// refused is established (RFC 7296 2.21.2: the IKE SA stays) and also
// counted in child_failed.
class Tally {
 public:
  enum class Phase { kLoad, kHold, kDelete };

  void started(uint64_t id, uint64_t now_ns) { sas_[id] = Entry{now_ns, false}; }
  void failed_to_start(const std::string& why) { fail(why); }

  void on_event(const ike::EngineEvent& event, uint64_t now_ns) {
    auto it = sas_.find(event.ike_sa);
    if (it == sas_.end()) return;  // not (yet) ours: initiate() reports its own errors
    Entry& entry = it->second;
    switch (event.kind) {
      case ike::EngineEventKind::kEstablished:
        if (!entry.established) {
          entry.established = true;
          ++established_;
          latencies_ns_.push_back(now_ns - entry.started_ns);
          last_completion_ns_ = now_ns;
        }
        break;
      case ike::EngineEventKind::kFailed:
        if (entry.established) {
          ++child_failed_;
          ++child_reasons_[event.detail];
        } else {
          fail(event.detail);
          last_completion_ns_ = now_ns;
          sas_.erase(it);
        }
        break;
      case ike::EngineEventKind::kDeleted:
        if (!entry.established) {
          fail(event.detail);  // terminated (interrupted) before it came up
          last_completion_ns_ = now_ns;
        } else if (phase_ == Phase::kDelete) {
          ++deleted_;
          if (event.detail != "deleted by us") ++reasons_on_delete_[event.detail];
        } else {
          ++lost_;  // gone while it should have stayed: the peer deleted it, or liveness
          ++lost_reasons_[event.detail];
        }
        sas_.erase(it);
        break;
      case ike::EngineEventKind::kIkeRekeyed: {
        // The successor carries on; detail is its id.
        uint64_t successor = std::strtoull(event.detail.c_str(), nullptr, 10);
        if (successor != 0) {
          Entry moved = entry;
          sas_.erase(it);
          sas_[successor] = moved;
        }
        break;
      }
      case ike::EngineEventKind::kChildInstalled:
      case ike::EngineEventKind::kChildDeleted:
      case ike::EngineEventKind::kMoved:
      case ike::EngineEventKind::kMoveRefused:
        break;
    }
  }

  void set_phase(Phase phase) { phase_ = phase; }
  uint64_t established() const { return established_; }
  uint64_t failed() const { return failed_; }
  uint64_t completed() const { return established_ + failed_; }
  uint64_t child_failed() const { return child_failed_; }
  uint64_t lost() const { return lost_; }
  uint64_t deleted() const { return deleted_; }
  uint64_t last_completion_ns() const { return last_completion_ns_; }
  const std::string& first_failure() const { return first_failure_; }
  const std::map<std::string, uint64_t>& reasons() const { return reasons_; }
  const std::map<std::string, uint64_t>& child_reasons() const { return child_reasons_; }
  const std::map<std::string, uint64_t>& lost_reasons() const { return lost_reasons_; }
  const std::map<std::string, uint64_t>& delete_reasons() const { return reasons_on_delete_; }

  std::vector<uint64_t> established_ids() const {
    std::vector<uint64_t> ids;
    for (const auto& [id, entry] : sas_)
      if (entry.established) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  std::vector<uint64_t> pending_ids() const {
    std::vector<uint64_t> ids;
    for (const auto& [id, entry] : sas_)
      if (!entry.established) ids.push_back(id);
    return ids;
  }
  size_t tracked() const { return sas_.size(); }

  // Setup latency (IKE_SA_INIT out -> established) at quantile q, ms.
  std::optional<double> latency_ms(double q) {
    if (latencies_ns_.empty()) return std::nullopt;
    size_t index = std::min(latencies_ns_.size() - 1, size_t(q * double(latencies_ns_.size())));
    std::nth_element(latencies_ns_.begin(), latencies_ns_.begin() + long(index), latencies_ns_.end());
    return double(latencies_ns_[index]) / 1e6;
  }

 private:
  struct Entry {
    uint64_t started_ns = 0;
    bool established = false;
  };
  void fail(const std::string& why) {
    ++failed_;
    ++reasons_[why];
    if (first_failure_.empty()) first_failure_ = why.empty() ? "(no reason given)" : why;
  }

  Phase phase_ = Phase::kLoad;
  std::unordered_map<uint64_t, Entry> sas_;
  uint64_t established_ = 0;
  uint64_t failed_ = 0;
  uint64_t child_failed_ = 0;
  uint64_t lost_ = 0;
  uint64_t deleted_ = 0;
  uint64_t last_completion_ns_ = 0;
  std::string first_failure_;
  std::map<std::string, uint64_t> reasons_;
  std::map<std::string, uint64_t> child_reasons_;
  std::map<std::string, uint64_t> lost_reasons_;
  std::map<std::string, uint64_t> reasons_on_delete_;
  std::vector<uint64_t> latencies_ns_;
};

void print_reasons(const char* what, const std::map<std::string, uint64_t>& reasons) {
  for (const auto& [why, n] : reasons)
    std::fprintf(stderr, "segw-ike-load: %s: %lu x %s\n", what, (unsigned long)n, why.c_str());
}

std::string json_reasons(const std::map<std::string, uint64_t>& reasons) {
  std::string out = "{";
  for (const auto& [why, n] : reasons) {
    if (out.size() > 1) out += ", ";
    out += json_string(why) + ": " + std::to_string(n);
  }
  return out + "}";
}

std::string json_number(std::optional<double> value, const char* format) {
  if (!value) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, *value);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("segw-ike-load options");
  std::string config_path, profile_name, target_text = "127.0.0.1", source_base_text;
  std::vector<std::string> move_bases;
  uint16_t target_port = dp_link::kIkePort, ike_port = 10500, natt_port = 14500;
  uint64_t count = 1000, sources = 0;
  uint32_t concurrency = 64;
  double hold = -1, timeout = 0;
  int receive_buffer = 8 << 20;
  options.add_options()
      ("help,h", "this text")
      ("config,c", po::value<std::string>(&config_path), "initiator configuration (configs/controlplane.md): "
                                                         "its [profile] gives local_id, auth and proposals, "
                                                         "[controlplane] the retransmission and half-open timers")
      ("profile", po::value<std::string>(&profile_name), "the [profile] to initiate with (default: the first)")
      ("target", po::value<std::string>(&target_text), "responder address (default 127.0.0.1)")
      ("target-port", po::value<uint16_t>(&target_port), "responder IKE port (default 500)")
      ("ike-port", po::value<uint16_t>(&ike_port), "our IKE port on every source address (default 10500; "
                                                   "fixed, the responder answers to it)")
      ("natt-port", po::value<uint16_t>(&natt_port), "our NAT-T port (default 14500). Behind a NAT (or a "
                                                     "responder that fakes one) the engine floats to this port "
                                                     "on BOTH ends: give the responder's (4500) then")
      ("source-base", po::value<std::string>(&source_base_text),
       "first source address; one per IKE SA upwards from it (default 127.1.0.1; .0 and .255 skipped). "
       "Every one must be an address of this host")
      ("sources", po::value<uint64_t>(&sources), "distinct source addresses, reused round robin (default: --count)")
      ("count,n", po::value<uint64_t>(&count), "IKE SAs to open in all (default 1000)")
      ("concurrency", po::value<uint32_t>(&concurrency), "IKE SAs being set up at once (default 64)")
      ("request-nat-info", "ask for EXTERNAL_SOURCE_IP4_NAT_INFO (CP attribute 23)")
      ("no-address", "ask for no INTERNAL_IP4_ADDRESS (no CP payload)")
      ("no-nats-allowed", "send NO_NATS_ALLOWED (RFC 4555 3.9): a NAT on the path fails the IKE SA with "
                          "UNEXPECTED_NAT_DETECTED")
      ("move-base", po::value<std::vector<std::string>>(&move_bases)->composing(),
       "MOBIKE (the profile needs mobike = yes): the Nth SIGUSR2 while holding moves IKE SA i to address "
       "BASE_N + i (repeat the option for each move) with UPDATE_SA_ADDRESSES")
      ("hold", po::value<double>(&hold)->implicit_value(0),
       "keep the IKE SAs up after the load phase: SECONDS, or until SIGINT/SIGTERM without a value; the "
       "summary is printed before holding. While holding, SIGUSR1 makes every held IKE SA send a liveness "
       "check (bench/remap_mass: the devices' next IKE message after a NAT remap)")
      ("no-delete", "do not delete the IKE SAs at the end (the responder keeps them until its own timers)")
      ("timeout", po::value<double>(&timeout), "give up on the load phase after this many seconds (default: none; "
                                               "the half-open timer bounds each IKE SA)")
      ("receive-buffer", po::value<int>(&receive_buffer), "SO_RCVBUF of our sockets (default 8 MiB, capped by "
                                                          "net.core.rmem_max)")
      ("json", "print one JSON summary line on stdout")
      ("quiet,q", "no progress lines on stderr");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "segw-ike-load: " << e.what() << "\n" << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << "Usage: segw-ike-load -c FILE [options]\n\n" << options
              << "\nJSON summary keys: count, established, failed, seconds (first IKE_SA_INIT to last "
                 "result), setups_per_s (established / seconds), retransmissions (our requests sent again), "
                 "first_failure (null when none), then child_failed, concurrency, p50_ms, p99_ms, send_errors, "
                 "inbox_dropped, failure_reasons, child_failure_reasons, nat_info_answers, first_nat_info, first_internal_ip4.\n"
                 "Exit codes: 0 every IKE SA established, 1 some failed, 2 usage, 3 transport, 5 configuration\n";
    return kExitOk;
  }
  if (config_path.empty() || count == 0 || concurrency == 0 || ike_port == natt_port) {
    std::cerr << "segw-ike-load: need -c FILE, --count > 0, --concurrency > 0 and --ike-port != --natt-port\n";
    return kExitUsage;
  }
  bool json = vm.count("json") > 0;
  bool quiet = vm.count("quiet") > 0;
  auto target = IpAddress::parse(target_text);
  if (!target) {
    std::cerr << "segw-ike-load: --target " << target_text << " is not an address\n";
    return kExitUsage;
  }
  if (source_base_text.empty()) source_base_text = target->is_ipv4() ? "127.1.0.1" : "fd00:1c1::1";
  auto source_base = IpAddress::parse(source_base_text);
  if (!source_base || source_base->family() != target->family()) {
    std::cerr << "segw-ike-load: --source-base " << source_base_text
              << " is not an address of the target's family\n";
    return kExitUsage;
  }
  if (sources == 0 || sources > count) sources = count;

  auto loaded = config::load_controlplane_config(config_path);
  if (!loaded) {
    std::cerr << "segw-ike-load: " << loaded.error() << "\n";
    return kExitConfig;
  }
  const config::ControlPlaneConfig& cfg = *loaded;
  if (profile_name.empty()) profile_name = cfg.profiles.front().name;
  ike::EngineOptions engine_options = ike::EngineOptions::from(cfg.daemon);
  // Our NAT-T port is the one we bind. The engine floats an IKE SA to it
  // (and sends to the peer's port of the same number) only behind a NAT,
  // which loopback has not.
  engine_options.natt_port = natt_port;

  wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, on_probe_signal);
  std::signal(SIGUSR2, on_move_signal);
  std::signal(SIGPIPE, SIG_IGN);

  segw::cp::transport::UdpTransportOptions udp_options;
  udp_options.listen_addresses = {*IpAddress::parse(target->is_ipv4() ? "0.0.0.0" : "::")};
  udp_options.ike_port = ike_port;
  udp_options.natt_port = natt_port;
  udp_options.receive_buffer_bytes = receive_buffer;
  auto opened = segw::cp::transport::UdpTransport::open(udp_options);
  if (!opened) {
    std::cerr << "segw-ike-load: " << opened.error() << "\n";
    return kExitTransport;
  }
  std::unique_ptr<segw::cp::transport::UdpTransport> udp = std::move(*opened);
  NoInstaller installer;
  auto created = ike::Engine::create(cfg, engine_options, *udp, installer);
  if (!created) {
    std::cerr << "segw-ike-load: " << created.error() << "\n";
    return kExitConfig;
  }
  ike::Engine& engine = **created;
  Tally tally;
  // What the responder told the first IKE SA that got an answer: its inner
  // address and EXTERNAL_SOURCE_IP4_NAT_INFO (our public address:port as it
  // sees them), for tests that check attribute 23 end to end.
  std::string first_inner;
  std::string first_nat_info;
  uint64_t nat_info_answers = 0;
  uint64_t moved_events = 0, move_refusals = 0;
  std::string first_refusal;
  engine.set_event_handler([&](const ike::EngineEvent& event) {
    if (event.kind == ike::EngineEventKind::kMoved) ++moved_events;
    if (event.kind == ike::EngineEventKind::kMoveRefused) {
      ++move_refusals;
      if (first_refusal.empty()) first_refusal = event.detail;
    }
    if (event.kind == ike::EngineEventKind::kEstablished) {
      if (auto info = engine.ike_sa(event.ike_sa)) {
        if (info->nat_info) {
          ++nat_info_answers;
          if (first_nat_info.empty())
            first_nat_info = info->nat_info->address.to_string() + ":" + std::to_string(info->nat_info->port);
        }
        if (first_inner.empty() && info->internal_ip4) first_inner = info->internal_ip4->to_string();
      }
    }
    tally.on_event(event, monotonic_ns());
  });
  Inbox inbox;
  udp->set_receiver([&inbox](const dp_link::IkeDatagram& datagram) { inbox.push(datagram); });

  std::vector<IpAddress> addresses = source_addresses(*source_base, sources);
  ike::InitiateRequest request;
  request.profile = profile_name;
  request.remote = {*target, target_port};
  request.request_ip4 = target->is_ipv4() && !vm.count("no-address");
  request.request_ip6 = target->is_ipv6() && !vm.count("no-address");
  request.request_nat_info = vm.count("request-nat-info") > 0;
  request.no_nats_allowed = vm.count("no-nats-allowed") > 0;
  std::vector<IpAddress> move_base_addresses;
  for (const auto& text : move_bases) {
    auto address = IpAddress::parse(text);
    if (!address || address->family() != target->family()) {
      std::cerr << "segw-ike-load: --move-base " << text << " is not an address of the target's family\n";
      return kExitUsage;
    }
    move_base_addresses.push_back(*address);
  }
  // Every IKE SA of the tool has the same identity: INITIAL_CONTACT would
  // make the responder delete the ones before.
  request.initial_contact = false;
  request.install_children = false;
  if (!quiet)
    std::fprintf(stderr, "segw-ike-load: %lu IKE SAs to %s:%u, %u at once, from %s .. %s port %u (profile %s)\n",
                 (unsigned long)count, target->to_string().c_str(), target_port, concurrency,
                 addresses.front().to_string().c_str(), addresses.back().to_string().c_str(), ike_port,
                 profile_name.c_str());

  // One turn of the engine thread: datagrams in, timers, then sleep until
  // a datagram arrives or the next timer is due (at most kMaxSleepMs).
  auto turn = [&](bool sleep) {
    for (auto& datagram : inbox.take()) engine.handle_datagram(datagram);
    engine.poll();
    if (!sleep) return;
    int timeout_ms = kMaxSleepMs;
    if (uint64_t deadline = engine.next_deadline_ns()) {
      uint64_t now_ns = monotonic_ns();
      timeout_ms = deadline <= now_ns ? 0 : int(std::min<uint64_t>(kMaxSleepMs, (deadline - now_ns) / 1'000'000 + 1));
    }
    pollfd pfd{wake_fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) > 0) {
      uint64_t value;
      (void)!read(wake_fd, &value, sizeof value);
    }
  };
  auto progress_due = std::chrono::steady_clock::now() + kProgressInterval;
  auto progress = [&](const char* phase, uint64_t in_flight) {
    if (quiet || std::chrono::steady_clock::now() < progress_due) return;
    progress_due = std::chrono::steady_clock::now() + kProgressInterval;
    std::fprintf(stderr, "segw-ike-load: %s: established %lu, failed %lu, in flight %lu, retransmissions %lu\n",
                 phase, (unsigned long)tally.established(), (unsigned long)tally.failed(), (unsigned long)in_flight,
                 (unsigned long)engine.stats().retransmitted_requests);
  };

  // Load phase.
  uint64_t first_ns = monotonic_ns();
  uint64_t started = 0;
  bool interrupted = false;
  while (tally.completed() < count) {
    if (stop_requests.load() > 0 || (timeout > 0 && double(monotonic_ns() - first_ns) / 1e9 >= timeout)) {
      interrupted = true;
      break;
    }
    // Top up to the concurrency; in flight = started - completed.
    while (started < count && started - tally.completed() < concurrency) {
      request.local = {addresses[started % addresses.size()], ike_port};
      ++started;
      auto id = engine.initiate(request);
      if (id)
        tally.started(*id, monotonic_ns());
      else
        tally.failed_to_start("initiate: " + id.error());
    }
    turn(true);
    progress("load", started - tally.completed());
  }
  uint64_t end_ns = tally.completed() > 0 ? tally.last_completion_ns() : monotonic_ns();
  if (interrupted) {
    // The ones still being set up are abandoned (and counted as failed),
    // and so are the ones never started.
    for (uint64_t id : tally.pending_ids()) (void)engine.terminate(id);
    for (uint64_t n = started; n < count; ++n) tally.failed_to_start("not started (interrupted)");
  }
  double seconds = std::max(1e-9, double(end_ns - first_ns) / 1e9);
  double rate = double(tally.established()) / seconds;
  const auto& stats = engine.stats();
  if (!quiet) {
    std::fprintf(stderr,
                 "segw-ike-load: %lu of %lu IKE SAs established in %.3f s (%.1f/s), %lu failed, %lu without "
                 "their first child; %lu retransmissions, %lu send errors, %lu datagrams dropped in the inbox\n",
                 (unsigned long)tally.established(), (unsigned long)count, seconds, rate,
                 (unsigned long)tally.failed(), (unsigned long)tally.child_failed(),
                 (unsigned long)stats.retransmitted_requests, (unsigned long)stats.send_errors,
                 (unsigned long)inbox.dropped());
    print_reasons("failed", tally.reasons());
    print_reasons("established without child", tally.child_reasons());
  }
  if (json) {
    std::string line = "{\"count\": " + std::to_string(count) +
                       ", \"established\": " + std::to_string(tally.established()) +
                       ", \"failed\": " + std::to_string(tally.failed()) +
                       ", \"seconds\": " + json_number(seconds, "%.6f") +
                       ", \"setups_per_s\": " + json_number(rate, "%.1f") +
                       ", \"retransmissions\": " + std::to_string(stats.retransmitted_requests) +
                       ", \"first_failure\": " +
                       (tally.first_failure().empty() ? std::string("null") : json_string(tally.first_failure())) +
                       ", \"child_failed\": " + std::to_string(tally.child_failed()) +
                       ", \"concurrency\": " + std::to_string(concurrency) +
                       ", \"p50_ms\": " + json_number(tally.latency_ms(0.5), "%.3f") +
                       ", \"p99_ms\": " + json_number(tally.latency_ms(0.99), "%.3f") +
                       ", \"send_errors\": " + std::to_string(stats.send_errors) +
                       ", \"inbox_dropped\": " + std::to_string(inbox.dropped()) +
                       ", \"failure_reasons\": " + json_reasons(tally.reasons()) +
                       ", \"child_failure_reasons\": " + json_reasons(tally.child_reasons()) +
                       ", \"nat_info_answers\": " + std::to_string(nat_info_answers) +
                       ", \"first_nat_info\": " + (first_nat_info.empty() ? std::string("null") : json_string(first_nat_info)) +
                       ", \"first_internal_ip4\": " + (first_inner.empty() ? std::string("null") : json_string(first_inner)) + "}";
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  // Hold phase: until the time is up or a signal (a signal during the load
  // phase ends the hold at once).
  if (hold >= 0 && !interrupted) {
    tally.set_phase(Tally::Phase::kHold);
    if (!quiet)
      std::fprintf(stderr, "segw-ike-load: holding %lu IKE SAs %s\n", (unsigned long)tally.established(),
                   hold > 0 ? ("for " + std::to_string(hold) + " s").c_str() : "until SIGINT/SIGTERM");
    uint64_t hold_end_ns = hold > 0 ? monotonic_ns() + uint64_t(hold * 1e9) : 0;
    int probes_seen = 0;
    std::vector<uint64_t> to_probe;
    size_t probe_next = 0;
    uint64_t probes_sent = 0, probes_answered_before = 0;
    int moves_seen = 0;
    while (stop_requests.load() == 0 && (hold_end_ns == 0 || monotonic_ns() < hold_end_ns)) {
      if (move_requests.load() != moves_seen) {
        moves_seen = move_requests.load();
        if (size_t(moves_seen) > move_base_addresses.size()) {
          std::fprintf(stderr, "segw-ike-load: move %d: no --move-base for it\n", moves_seen);
        } else {
          auto ids = tally.established_ids();
          std::sort(ids.begin(), ids.end());
          const IpAddress& base = move_base_addresses[size_t(moves_seen) - 1];
          uint64_t moved = 0;
          std::string first_error;
          for (size_t i = 0; i < ids.size(); ++i) {
            auto status = engine.update_local_address(ids[i], {base.plus(i), natt_port});
            if (status) ++moved;
            else if (first_error.empty()) first_error = status.error();
          }
          if (!quiet)
            std::fprintf(stderr, "segw-ike-load: move %d: %lu IKE SAs update their addresses from %s on%s%s\n",
                         moves_seen, (unsigned long)moved, base.to_string().c_str(),
                         first_error.empty() ? "" : "; refused: ", first_error.c_str());
        }
      }
      if (probe_requests.load() != probes_seen) {
        probes_seen = probe_requests.load();
        to_probe = tally.established_ids();
        probe_next = 0;
        probes_answered_before = engine.stats().retransmitted_requests;
        if (!quiet) std::fprintf(stderr, "segw-ike-load: liveness check from every held IKE SA (%zu)\n", to_probe.size());
      }
      // --concurrency at a time is not needed here: each IKE SA has its
      // own window; a bounded batch per turn keeps the receive side served.
      for (size_t batch = 0; probe_next < to_probe.size() && batch < 4096; ++batch, ++probe_next)
        if (engine.check_liveness(to_probe[probe_next])) ++probes_sent;
      turn(true);
    }
    if (!quiet && !move_base_addresses.empty())
      std::fprintf(stderr, "segw-ike-load: MOBIKE: %lu moved, %lu refused%s%s\n", (unsigned long)moved_events,
                   (unsigned long)move_refusals, first_refusal.empty() ? "" : " (first: ", 
                   first_refusal.empty() ? "" : (first_refusal + ")").c_str());
    if (!quiet && probes_sent > 0)
      std::fprintf(stderr, "segw-ike-load: %lu liveness checks sent, %lu retransmissions\n",
                   (unsigned long)probes_sent,
                   (unsigned long)(engine.stats().retransmitted_requests - probes_answered_before));
    if (!quiet && tally.lost() > 0) {
      std::fprintf(stderr, "segw-ike-load: %lu IKE SAs went away while held\n", (unsigned long)tally.lost());
      print_reasons("lost", tally.lost_reasons());
    }
  }

  // Delete phase: DELETE for each, --concurrency outstanding, until each is
  // answered or has run out of retransmissions. A second signal abandons it.
  int exit_code = tally.failed() == 0 && !interrupted ? kExitOk : kExitSomeFailed;
  if (vm.count("no-delete")) {
    if (!quiet) std::fprintf(stderr, "segw-ike-load: leaving %zu IKE SAs to the responder\n", tally.tracked());
    udp->set_receiver({});
    return exit_code;
  }
  tally.set_phase(Tally::Phase::kDelete);
  int signals_seen = stop_requests.load();
  std::vector<uint64_t> to_delete = tally.established_ids();
  uint64_t delete_started_ns = monotonic_ns();
  size_t next = 0;
  uint64_t refused = 0;
  auto deletes_in_flight = [&] {
    uint64_t done = tally.deleted() + refused;
    return next > done ? next - done : 0;
  };
  while (tally.tracked() > 0 && stop_requests.load() == signals_seen) {
    while (next < to_delete.size() && deletes_in_flight() < concurrency) {
      if (!engine.terminate(to_delete[next])) ++refused;  // already gone
      ++next;
    }
    turn(true);
    progress("delete", deletes_in_flight());
  }
  // Whatever an interrupted delete left behind goes away with the engine.
  if (!quiet) {
    std::fprintf(stderr, "segw-ike-load: deleted %lu IKE SAs in %.3f s\n", (unsigned long)tally.deleted(),
                 double(monotonic_ns() - delete_started_ns) / 1e9);
    print_reasons("deleted", tally.delete_reasons());
  }
  udp->set_receiver({});
  return exit_code;
}
