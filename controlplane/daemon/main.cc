// segw-controlplane: the IKEv2 daemon. Reads its configuration
// (configs/controlplane.md; the embedded default without -c), opens its IKE
// transport (segw-dataplane's punt/inject rings, or kernel UDP sockets) and
// runs the IKE engine on one thread; child SAs go to the data plane through
// the same channel. Logs one line per IKE SA event on stdout. Serves the
// REST API (controlplane/api/openapi.yaml) unless `api = off`: its requests
// run on the engine thread between datagrams, and the engine's events go
// out on its event stream too.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <boost/program_options.hpp>

#include "controlplane/api/api_server.h"
#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/data_plane_link.h"
#include "controlplane/ike/engine/engine.h"
#include "controlplane/transport/udp_transport.h"

namespace po = boost::program_options;
namespace config = segw::cp::config;
namespace dp_link = segw::cp::dp_link;
namespace ike = segw::cp::ike;

namespace {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 2,
  kExitConfig = 5,
  kExitTransport = 3,
};

std::atomic<bool> stop_requested{false};
std::atomic<bool> reload_requested{false};
int wake_fd = -1;

void on_signal(int) {
  stop_requested.store(true);
  uint64_t one = 1;
  if (wake_fd >= 0) (void)!write(wake_fd, &one, sizeof one);
}

// SIGHUP: reload the configuration file (as POST /v1/config/reload).
void on_hangup(int) {
  reload_requested.store(true);
  uint64_t one = 1;
  if (wake_fd >= 0) (void)!write(wake_fd, &one, sizeof one);
}

// SAs of an IKE-only run (transport = udp): accepted and forgotten, keys
// wiped at once. Development and the IKE benchmark, where no data plane
// carries ESP.
class DiscardingSaInstaller final : public dp_link::SaInstaller {
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

// Datagrams from the transport's thread to the engine's.
class Inbox {
 public:
  // The engine thread drains everything once woken, so only the push that
  // finds the inbox empty wakes it: a burst of thousands of datagrams costs
  // one eventfd write, not one each.
  void push(const dp_link::IkeDatagram& datagram) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= kLimit) {
        ++dropped_;
        return;
      }
      wake = queue_.empty();  // else the engine thread has not taken the queue yet
      queue_.push_back(datagram);
    }
    if (!wake) return;
    uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }
  std::deque<dp_link::IkeDatagram> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(queue_, {});
  }
  void push_event(const segw::shared::channel::Event& event) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = events_.empty();
      events_.push_back(event);
    }
    if (!wake) return;
    uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }
  std::deque<segw::shared::channel::Event> take_events() {
    std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
  }
  uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  // A flood beyond this waits in no queue: IKE retransmits what matters.
  static constexpr size_t kLimit = 65536;
  mutable std::mutex mutex_;
  std::deque<dp_link::IkeDatagram> queue_;
  std::deque<segw::shared::channel::Event> events_;  // rate-limited by the data plane
  uint64_t dropped_ = 0;
};

std::string endpoint(const segw::shared::channel::OuterEndpoint& e) {
  std::string text;
  if (e.address.is_ipv6()) text.push_back('[');
  text.append(e.address.to_string());
  if (e.address.is_ipv6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(e.port));
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("segw-controlplane options");
  std::string config_path;
  double duration = 0;
  unsigned status_interval = 0;
  options.add_options()
      ("help,h", "this text")
      ("config,c", po::value<std::string>(&config_path), "configuration file (default: the embedded one, "
                                                         "configs/controlplane-default.conf)")
      ("check-config", "load and validate the configuration (files, proposals, pools), then exit")
      ("print-default-config", "print the embedded default configuration and exit")
      ("duration", po::value<double>(&duration), "stop after this many seconds (tests, demos)")
      ("status-interval", po::value<unsigned>(&status_interval), "print IKE SA counts every N seconds");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "segw-controlplane: " << e.what() << "\n" << options;
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << "Usage: segw-controlplane [-c FILE] [options]\n\n" << options
              << "\nExit codes: 0 ok, 2 usage, 3 transport (no data plane region, cannot bind), "
                 "5 configuration\n";
    return kExitOk;
  }
  if (vm.count("print-default-config")) {
    std::cout << config::embedded_default_config();
    return kExitOk;
  }
  auto loaded = config_path.empty()
                    ? config::parse_controlplane_config(config::embedded_default_config(), "(embedded default)")
                    : config::load_controlplane_config(config_path);
  if (!loaded) {
    std::cerr << "segw-controlplane: " << loaded.error() << "\n";
    return kExitConfig;
  }
  const config::ControlPlaneConfig& cfg = *loaded;
  ike::EngineOptions engine_options = ike::EngineOptions::from(cfg.daemon);

  if (vm.count("check-config")) {
    // Build the engine for real (certificates, keys, CA stores, pools)
    // against a transport that sends nothing.
    struct NoTransport final : dp_link::IkeTransport {
      segw::shared::Status send(const dp_link::IkeDatagram&) override { return {}; }
      void set_receiver(dp_link::IkeReceiver) override {}
    } transport;
    DiscardingSaInstaller installer;
    auto engine = ike::Engine::create(cfg, engine_options, transport, installer);
    if (!engine) {
      std::cerr << "segw-controlplane: " << engine.error() << "\n";
      return kExitConfig;
    }
    std::cout << "segw-controlplane: configuration " << (config_path.empty() ? "(embedded default)" : config_path)
              << " is valid: " << cfg.profiles.size() << " profile(s), " << cfg.pools.size() << " pool(s)\n";
    return kExitOk;
  }

  wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_hangup);
  std::signal(SIGPIPE, SIG_IGN);

  Inbox inbox;
  std::unique_ptr<segw::cp::transport::UdpTransport> udp;
  std::unique_ptr<dp_link::DataPlaneLink> link;
  DiscardingSaInstaller discarding;
  dp_link::IkeTransport* transport = nullptr;
  dp_link::SaInstaller* installer = nullptr;
  if (cfg.daemon.transport == config::TransportKind::kUdp) {
    segw::cp::transport::UdpTransportOptions udp_options;
    udp_options.listen_addresses = cfg.daemon.listen;
    udp_options.ike_port = cfg.daemon.ike_port;
    udp_options.natt_port = cfg.daemon.natt_port;
    auto opened = segw::cp::transport::UdpTransport::open(udp_options);
    if (!opened) {
      std::cerr << "segw-controlplane: " << opened.error() << "\n";
      return kExitTransport;
    }
    udp = std::move(*opened);
    transport = udp.get();
    installer = &discarding;
    std::printf("segw-controlplane: IKE on UDP %u/%u (no data plane: child SAs are not installed)\n",
                cfg.daemon.ike_port, cfg.daemon.natt_port);
  } else {
    dp_link::DataPlaneLinkOptions link_options;
    link_options.region_name = cfg.daemon.channel;
    link_options.directory = cfg.daemon.channel_directory;
    auto attached = dp_link::DataPlaneLink::attach(link_options);
    if (!attached) {
      std::cerr << "segw-controlplane: " << attached.error() << "\n";
      return kExitTransport;
    }
    link = std::move(*attached);
    // SAs a previous segw-controlplane left in the data plane: their IKE
    // SAs (and keys) died with it, so nothing can rekey or delete them and
    // their tunnel ids would collide with ours. They go; the devices notice
    // (liveness, rekey) and attach again.
    auto resumed = link->resume([](const segw::shared::channel::SaInventoryRecord&) {
      return std::optional<segw::shared::SaDescriptor>{};
    });
    if (!resumed) {
      std::cerr << "segw-controlplane: reading the data plane's SA inventory: " << resumed.error() << "\n";
      return kExitTransport;
    }
    if (!resumed->orphans.empty()) {
      size_t removed = 0;
      for (const auto& orphan : resumed->orphans) {
        auto future = link->remove(orphan.spi, orphan.direction);
        if (future && future->get().ok()) ++removed;
      }
      std::printf("segw-controlplane: removed %zu of %zu SAs left by a previous control plane\n", removed,
                  resumed->orphans.size());
    }
    transport = link.get();
    installer = link.get();
    std::printf("segw-controlplane: attached to segw-dataplane channel '%s'\n", cfg.daemon.channel.c_str());
  }
  // Declared before the engine, so it outlives the engine's event handler.
  std::unique_ptr<segw::cp::api::ApiServer> api;
  auto engine = ike::Engine::create(cfg, engine_options, *transport, *installer);
  if (!engine) {
    std::cerr << "segw-controlplane: " << engine.error() << "\n";
    return kExitConfig;
  }
  ike::Engine& ikev2 = **engine;
  // Site-to-site profiles (connect = ...): we initiate, and again after the
  // IKE SA goes down (reconnect_delay_s later). The list follows the
  // configuration in force: a reload (SIGHUP or the API) that adds a connect
  // profile starts it at once; one that changes it keeps the IKE SA that is
  // up and reconnects with the new settings when that goes down; one that
  // removes it (or its connect key) leaves the IKE SA up on its retired
  // profile and no longer reconnects.
  struct Connection {
    const config::ProfileSection* profile = nullptr;  // into ikev2.config(), which outlives it
    uint64_t ike_sa = 0;                 // 0: none up or being set up
    std::chrono::steady_clock::time_point retry_at{};
  };
  std::vector<Connection> connections;
  const config::ControlPlaneConfig* connections_config = nullptr;
  auto follow_configuration = [&ikev2, &connections, &connections_config] {
    const config::ControlPlaneConfig& current = ikev2.config();
    if (&current == connections_config) return;
    bool first = connections_config == nullptr;
    connections_config = &current;
    std::vector<Connection> next;
    for (const auto& profile : current.profiles) {
      if (!profile.connect) continue;
      auto kept = std::find_if(connections.begin(), connections.end(),
                               [&](const Connection& c) { return c.profile->name == profile.name; });
      if (kept != connections.end()) {
        next.push_back({&profile, kept->ike_sa, kept->retry_at});
      } else {
        next.push_back({&profile, 0, {}});
        if (!first) std::printf("segw-controlplane: profile %s: added by a reload\n", profile.name.c_str());
      }
    }
    for (const auto& gone : connections) {
      bool still = std::any_of(next.begin(), next.end(),
                               [&](const Connection& c) { return c.profile->name == gone.profile->name; });
      if (!still)
        std::printf("segw-controlplane: profile %s: no longer initiated (removed by a reload)%s\n",
                    gone.profile->name.c_str(), gone.ike_sa != 0 ? "; its IKE SA stays up" : "");
    }
    connections = std::move(next);
    std::fflush(stdout);
  };
  follow_configuration();
  bool events_printed = false;
  ikev2.set_event_handler([&ikev2, &connections, &api, &events_printed](const ike::EngineEvent& event) {
    for (auto& connection : connections) {
      if (connection.ike_sa != event.ike_sa) continue;
      if (event.kind == ike::EngineEventKind::kIkeRekeyed) {
        connection.ike_sa = std::stoull(event.detail);  // the new IKE SA's id
      } else if (event.kind == ike::EngineEventKind::kDeleted || event.kind == ike::EngineEventKind::kFailed) {
        auto info = ikev2.ike_sa(event.ike_sa);
        if (!info || info->state == ike::IkeSaState::kClosed) {
          connection.ike_sa = 0;
          connection.retry_at =
              std::chrono::steady_clock::now() + std::chrono::seconds(connection.profile->reconnect_delay_s);
        }
      }
    }
    std::string line = std::string("segw-controlplane: IKE SA ") + std::to_string(event.ike_sa) + " " +
                       ike::to_string(event.kind);
    auto info = ikev2.ike_sa(event.ike_sa);
    if (api) api->publish(event, info);
    if (info) {
      if (!info->peer_id.empty()) line += " peer " + info->peer_id;
      line += " at " + endpoint(info->remote);
      if (info->internal_ip4) line += " inner " + info->internal_ip4->to_string();
      if (info->internal_ip6) line += " inner " + info->internal_ip6->to_string();
      if (info->peer_behind_nat) line += " (behind NAT)";
      line += " children " + std::to_string(info->children.size());
    }
    if (!event.detail.empty()) line += ": " + event.detail;
    std::printf("%s\n", line.c_str());
    events_printed = true;  // flushed once per loop turn, not once per line
  });
  transport->set_receiver([&inbox](const dp_link::IkeDatagram& datagram) { inbox.push(datagram); });
  if (link) {
    // Lifetimes and sequence numbers are counted by the data plane: its
    // events make the engine rekey (soft) or delete (hard) the child.
    using segw::shared::channel::EventKind;
    for (auto kind : {EventKind::kSoftLifetime, EventKind::kHardLifetime, EventKind::kSequenceNearExhaustion,
                      EventKind::kNewSourceAddress})
      link->subscribe(kind, [&inbox](const segw::shared::channel::Event& event) { inbox.push_event(event); });
  }
  if (cfg.daemon.api) {
    segw::cp::api::ApiOptions api_options;
    api_options.listen_address = cfg.daemon.api_listen.to_string();
    api_options.port = cfg.daemon.api_port;
    api_options.bearer_token = cfg.daemon.api_token;
    api_options.tls_certificate_file = cfg.daemon.api_tls_certificate;
    api_options.tls_private_key_file = cfg.daemon.api_tls_private_key;
    api_options.tls_client_ca_file = cfg.daemon.api_tls_client_ca;
    if (link) api_options.dataplane_statistics = [&link] { return link->dataplane_statistics(); };
    api_options.config_path = config_path;
    api_options.reload_observer = [](const std::string& what) {
      std::printf("segw-controlplane: %s\n", what.c_str());
      std::fflush(stdout);
    };
    auto started = segw::cp::api::ApiServer::start(api_options, [] {
      uint64_t one = 1;
      (void)!write(wake_fd, &one, sizeof one);
    });
    // The API is for operators; IKE is the gateway's job: a port that cannot
    // be bound (another daemon on the host has it) is reported, not fatal.
    if (started) {
      api = std::move(*started);
      std::printf("segw-controlplane: REST API on %s://%s/v1/ (%s%s)\n", api->tls() ? "https" : "http",
                  endpoint({cfg.daemon.api_listen, api->port()}).c_str(),
                  cfg.daemon.api_token.empty() ? "no token: loopback only" : "bearer token",
                  cfg.daemon.api_tls_client_ca.empty() ? "" : ", client certificates");
    } else {
      std::fprintf(stderr, "segw-controlplane: REST API not started: %s\n", started.error().c_str());
    }
  }
  std::printf("segw-controlplane: %zu profile(s) loaded; running\n", cfg.profiles.size());
  std::fflush(stdout);

  auto started = std::chrono::steady_clock::now();
  auto last_status = started;
  while (!stop_requested.load()) {
    follow_configuration();
    for (auto& connection : connections) {
      if (connection.ike_sa != 0 || std::chrono::steady_clock::now() < connection.retry_at) continue;
      const auto& profile = *connection.profile;
      ike::InitiateRequest request;
      request.profile = profile.name;
      request.local = {*profile.connect_from, cfg.daemon.ike_port};
      request.remote = {*profile.connect, profile.connect_port};
      request.request_ip4 = profile.request_address && profile.connect->is_ipv4();
      request.request_ip6 = profile.request_address && profile.connect->is_ipv6();
      for (const auto& subnet : profile.local_subnets)
        request.local_ts.push_back(segw::shared::TrafficSelector::from_prefix(subnet));
      for (const auto& subnet : profile.remote_subnets)
        request.remote_ts.push_back(segw::shared::TrafficSelector::from_prefix(subnet));
      if (request.remote_ts.empty())
        for (const char* any : {"0.0.0.0/0", "::/0"})
          request.remote_ts.push_back(segw::shared::TrafficSelector::from_prefix(*segw::shared::IpPrefix::parse(any)));
      auto started = ikev2.initiate(request);
      if (started) {
        connection.ike_sa = *started;
        std::printf("segw-controlplane: profile %s: initiating IKE SA %lu to %s\n", profile.name.c_str(),
                    (unsigned long)*started, endpoint(request.remote).c_str());
      } else {
        std::printf("segw-controlplane: profile %s: cannot initiate: %s\n", profile.name.c_str(),
                    started.error().c_str());
        connection.retry_at = std::chrono::steady_clock::now() + std::chrono::seconds(profile.reconnect_delay_s);
      }
      std::fflush(stdout);
    }
    for (auto& datagram : inbox.take()) ikev2.handle_datagram(datagram);
    if (api) api->run_pending(ikev2);
    if (reload_requested.exchange(false)) {
      if (config_path.empty()) {
        std::printf("segw-controlplane: SIGHUP: running the built-in configuration, nothing to reload\n");
      } else if (auto next = config::load_controlplane_config(config_path); !next) {
        std::printf("segw-controlplane: SIGHUP: reload refused: %s\n", next.error().c_str());
      } else if (auto report = ikev2.reload(std::make_shared<const config::ControlPlaneConfig>(std::move(*next)));
                 !report) {
        std::printf("segw-controlplane: SIGHUP: reload refused: %s\n", report.error().c_str());
      } else {
        std::printf("segw-controlplane: SIGHUP: configuration reloaded from %s: %s\n", config_path.c_str(),
                    ike::to_string(*report).c_str());
      }
      std::fflush(stdout);
    }
    for (auto& event : inbox.take_events()) {
      if (event.kind == segw::shared::channel::EventKind::kNewSourceAddress) {
        ikev2.on_new_source(event.spi, event.new_remote, event.tunnel_id);  // the profile's remap policy decides
        continue;
      }
      ikev2.on_sa_condition(event.spi, event.direction,
                            event.kind == segw::shared::channel::EventKind::kHardLifetime
                                ? ike::Engine::SaCondition::kExpired
                                : ike::Engine::SaCondition::kRekeyWanted,
                            event.tunnel_id);
    }
    ikev2.poll();
    if (events_printed) {
      std::fflush(stdout);
      events_printed = false;
    }
    auto now = std::chrono::steady_clock::now();
    if (duration > 0 && now - started >= std::chrono::duration<double>(duration)) break;
    if (status_interval && now - last_status >= std::chrono::seconds(status_interval)) {
      last_status = now;
      const auto& s = ikev2.stats();
      std::printf("segw-controlplane: IKE SAs established %lu (now %zu), failed %lu, deleted %lu, datagrams %lu\n",
                  (unsigned long)s.ike_sas_established, ikev2.ike_sa_count(), (unsigned long)s.ike_sas_failed,
                  (unsigned long)s.ike_sas_deleted, (unsigned long)s.datagrams);
      std::fflush(stdout);
    }
    // Sleep until a datagram arrives or the next timer; at most 10 ms so
    // data-plane completions (futures) are picked up promptly.
    int timeout_ms = 10;
    if (uint64_t deadline = ikev2.next_deadline_ns()) {
      timespec ts{};
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t now_ns = uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
      if (deadline <= now_ns)
        timeout_ms = 0;
      else
        timeout_ms = int(std::min<uint64_t>(10, (deadline - now_ns) / 1'000'000 + 1));
    }
    pollfd pfd{wake_fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) > 0) {
      uint64_t value;
      (void)!read(wake_fd, &value, sizeof value);
    }
  }
  if (api) api->stop();  // before the engine goes: queued requests get their 503
  transport->set_receiver({});
  const auto& s = ikev2.stats();
  std::printf("segw-controlplane: stopped; IKE SAs established %lu, failed %lu, deleted %lu, rekeyed %lu; "
              "child SAs installed %lu; datagrams %lu (malformed %lu, ICV %lu, inbox overflow %lu)\n",
              (unsigned long)s.ike_sas_established, (unsigned long)s.ike_sas_failed, (unsigned long)s.ike_sas_deleted,
              (unsigned long)s.ike_sas_rekeyed, (unsigned long)s.child_sas_installed, (unsigned long)s.datagrams,
              (unsigned long)s.dropped_malformed, (unsigned long)s.dropped_icv, (unsigned long)inbox.dropped());
  return kExitOk;
}
