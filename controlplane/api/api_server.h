// segw-controlplane's REST endpoint (first cut): IKE SAs (list, show,
// terminate, rekey, move), engine counters, health, and the engine's events
// as Server-Sent Events. Routes, bodies and errors: controlplane/api/openapi.yaml.
//
// Threads. HTTP runs on the server's own threads (cpp-httplib: one listener
// thread and a pool of workers). The IKE engine is single-threaded
// (engine.h), so a request never touches it: its handler queues a closure,
// calls the daemon's wake() and waits (ApiOptions::engine_timeout, then 503)
// for the engine thread to run it in run_pending(). A closure that timed out
// before the engine thread took it never runs, so a 503 changes nothing.
// Events go the other way: the engine thread publish()es them, each event
// client has a bounded buffer, and a client that does not keep up loses
// events (counted, and told with an `event: dropped` message) instead of
// ever holding up the engine thread.
//
// Authentication: `Authorization: Bearer <token>` on every route but
// /v1/health and /v1/ready (probes; they reveal nothing). An empty token
// means no authentication at all, which start() accepts only on a loopback
// listen address (127.0.0.0/8, ::1).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/ike/engine/engine.h"
#include "shared/channel/dataplane_statistics.h"
#include "shared/result.h"

namespace segw::cp::api {

struct ApiOptions {
  std::string listen_address = "127.0.0.1";  // an IPv4 or IPv6 address
  uint16_t port = config::kDefaultApiPort;   // 0: any free port (tests); ApiServer::port() tells
  std::string bearer_token;                  // empty: no authentication (loopback only)
  // HTTPS when both are set (PEM files); plain HTTP when both are empty.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  // mTLS (HTTPS only): a PEM file of CAs; clients without a certificate
  // from one of them are refused in the TLS handshake.
  std::string tls_client_ca_file;
  // How long a request waits for the engine thread before answering 503.
  std::chrono::milliseconds engine_timeout{3000};
  size_t max_pending_jobs = 256;   // requests queued for the engine thread; beyond: 503
  unsigned worker_threads = 16;    // HTTP workers; each event client holds one
  size_t max_event_clients = 8;    // beyond: 503 (leaves workers for the other routes)
  size_t event_buffer = 1024;      // events held per client; beyond: dropped and counted
  // A client that takes no bytes of an answer (or of the event stream) for
  // this long is disconnected: a stuck client holds no HTTP worker.
  std::chrono::milliseconds write_timeout{5000};
  // Resuming a stream (Last-Event-ID): the last `event_history` events are
  // kept while a client is connected and for `event_resume_window` after
  // the last one left, so a policy function that reconnects gets what it
  // missed; older ones, or ones nobody could have wanted, are reported as
  // lost (`event: dropped`). 0: no history.
  size_t event_history = 16384;
  std::chrono::milliseconds event_resume_window{300'000};
  std::chrono::seconds event_keepalive{15};  // a comment line on a quiet stream (finds dead clients)
  ike::Clock clock;                // the engine's clock, for ages in views; empty: CLOCK_MONOTONIC
  // The data plane's figures (GET /v1/dataplane and the segw_dataplane_*
  // metrics), called on HTTP threads; empty without a data plane
  // (transport = udp).
  std::function<shared::channel::DataPlaneStatisticsSnapshot()> dataplane_statistics;
  // POST /v1/config/reload reads this file again (validated, then
  // Engine::reload); empty: the daemon runs its built-in configuration and
  // a reload is refused (409).
  std::string config_path;
  // Told the outcome of every reload the API ran (the daemon logs it).
  std::function<void(const std::string&)> reload_observer;
};

struct ApiCounters {
  uint64_t requests = 0;
  uint64_t unauthorized = 0;
  uint64_t engine_timeouts = 0;   // 503 after engine_timeout (or queue full, or stopping)
  uint64_t events_published = 0;
  uint64_t events_dropped = 0;    // summed over clients
  uint64_t event_clients = 0;     // gauge
};

class ApiServer {
 public:
  // Binds and starts serving. `wake` is called from HTTP threads after a
  // closure was queued: it must make the engine thread call run_pending()
  // soon (the daemon writes its eventfd). Errors: a bad listen address, an
  // empty token on a non-loopback address, TLS files that do not load, a
  // port that cannot be bound.
  static shared::Result<std::unique_ptr<ApiServer>> start(const ApiOptions& options, std::function<void()> wake);
  ~ApiServer();  // stop()
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  uint16_t port() const;  // the bound port (the ephemeral one for port 0)
  bool tls() const;

  // Stops accepting, ends event streams, answers queued requests 503, and
  // joins the HTTP threads. Idempotent; any thread but an HTTP thread.
  void stop();

  // Engine thread only: runs the queued closures; returns how many ran.
  size_t run_pending(ike::Engine& engine);
  // Engine thread only (from the engine's event handler): hands the event,
  // and the IKE SA's state when there is one, to every event client.
  // Never blocks on a client.
  void publish(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa);

  ApiCounters counters() const;  // any thread

  class Impl;

 private:
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace segw::cp::api
