// The REST endpoint: routing, authentication, request validation, the
// hand-over of work to the engine thread, and the event stream.
#include "controlplane/api/api_server.h"

#include <time.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <charconv>
#include <regex>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "controlplane/api/json_views.h"

namespace segw::cp::api {

using nlohmann::json;
using shared::make_error;

namespace {

constexpr size_t kMaxBodyBytes = 64 * 1024;  // the largest body is a move: tens of bytes
constexpr time_t kReadTimeoutS = 10;
constexpr time_t kKeepAliveTimeoutS = 5;
// An event stream's provider wakes this often to notice stop() and send
// keepalives.
constexpr std::chrono::milliseconds kEventPoll{250};

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

uint64_t unix_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000ull + uint64_t(ts.tv_nsec) / 1'000'000ull;
}

bool is_loopback(const shared::IpAddress& address) {
  if (address.is_ipv4()) return (address.ipv4_host_order() >> 24) == 127;
  return address == *shared::IpAddress::parse("::1");
}

// Compares without an early exit, so the time taken does not tell how much
// of a guessed token was right.
bool same_secret(const std::string& given, const std::string& expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i % (expected.empty() ? 1 : expected.size())]);
  return diff == 0;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void fail(httplib::Response& res, int status, const std::string& what) {
  json body;
  body["error"] = what;
  reply(res, status, body);
}

// A queued closure for the engine thread. `state` decides, once, whether
// the engine thread runs it (kTaken) or the waiting request gave up on it
// (kAbandoned): an abandoned closure never runs, and a taken one is always
// waited for, so closures may refer to the request handler's locals.
struct Job {
  enum State : int { kPending, kTaken, kAbandoned };
  std::function<void(ike::Engine&)> work;
  std::promise<void> done;
  std::atomic<int> state{kPending};
};

// One /v1/events client. The engine thread appends (publish), the client's
// HTTP worker takes; `mutex` is held only to move strings.
struct EventClient {
  std::mutex mutex;
  std::condition_variable ready;
  // Shared with the history and the other clients: an event's text is
  // built once, not copied per client.
  std::deque<std::shared_ptr<const std::string>> frames;
  uint64_t dropped_unreported = 0;
};

// `id` empty: a message that is not an engine event (dropped), which does
// not move the client's Last-Event-ID.
std::string sse_frame(const std::string& event, const std::string& data, const std::string& id = "") {
  std::string frame;
  if (!id.empty()) {
    frame.append("id: ");
    frame.append(id);
    frame.append("\n");
  }
  frame.append("event: ");
  frame.append(event);
  frame.append("\ndata: ");
  frame.append(data);
  frame.append("\n\n");
  return frame;
}

std::string dropped_frame(std::optional<uint64_t> count, const char* reason) {
  json data;
  data["dropped"] = count ? json(*count) : json(nullptr);
  data["reason"] = reason;
  return sse_frame("dropped", data.dump());
}

}  // namespace

// GET /v1/ike-sas pages: a whole fleet in one answer would be tens of MB
// and seconds of JSON.
constexpr uint64_t kDefaultListLimit = 1000;
constexpr uint64_t kMaxListLimit = 10000;

namespace {

// A query parameter that must be a whole number min..max; false (and a 400
// in `res`) otherwise.
bool parse_count(httplib::Response& res, const std::string& key, const std::string& value, uint64_t min,
                 uint64_t max, uint64_t& out) {
  uint64_t n = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (error != std::errc() || end != value.data() + value.size() || n < min || n > max) {
    fail(res, 400,
         "query parameter " + key + ": '" + value + "' is not an integer " + std::to_string(min) + ".." +
             std::to_string(max));
    return false;
  }
  out = n;
  return true;
}

}  // namespace

class ApiServer::Impl {
 public:
  Impl(const ApiOptions& options, std::function<void()> wake) : options_(options), wake_(std::move(wake)) {
    if (!options_.clock) options_.clock = monotonic_ns;
  }

  shared::Status start();
  void stop();
  size_t run_pending(ike::Engine& engine);
  void publish(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa);
  ApiCounters counters() const;
  uint16_t port() const { return port_; }
  bool tls() const { return tls_; }

 private:
  using Handler = void (Impl::*)(const httplib::Request&, httplib::Response&, const std::smatch&);
  struct Route {
    const char* method;
    std::regex path;
    Handler handler;
    bool authenticated;
  };

  void dispatch(const httplib::Request& req, httplib::Response& res);
  bool authorized(const httplib::Request& req) const;
  // Runs `work` on the engine thread; false (and a 503 in `res`) when it
  // did not run.
  bool on_engine(httplib::Response& res, std::function<void(ike::Engine&)> work);

  void health(const httplib::Request&, httplib::Response&, const std::smatch&);
  void ready(const httplib::Request&, httplib::Response&, const std::smatch&);
  void list(const httplib::Request&, httplib::Response&, const std::smatch&);
  void show(const httplib::Request&, httplib::Response&, const std::smatch&);
  void terminate(const httplib::Request&, httplib::Response&, const std::smatch&);
  void rekey(const httplib::Request&, httplib::Response&, const std::smatch&);
  void move(const httplib::Request&, httplib::Response&, const std::smatch&);
  void stats(const httplib::Request&, httplib::Response&, const std::smatch&);
  void metrics(const httplib::Request&, httplib::Response&, const std::smatch&);
  void dataplane(const httplib::Request&, httplib::Response&, const std::smatch&);
  void pools(const httplib::Request&, httplib::Response&, const std::smatch&);
  void pool(const httplib::Request&, httplib::Response&, const std::smatch&);
  void reload(const httplib::Request&, httplib::Response&, const std::smatch&);
  void events(const httplib::Request&, httplib::Response&, const std::smatch&);

  // The IKE SA id of a path; false (and a 400 in `res`) if it is not one.
  static bool parse_id(const std::string& text, uint64_t& id, httplib::Response& res);
  // The request body as a JSON object with only `allowed` keys; an empty
  // body is {} when `optional`. False (and a 400 in `res`) otherwise.
  static bool parse_body(const httplib::Request& req, std::initializer_list<const char*> allowed, bool optional,
                         json& body, httplib::Response& res);

  ApiOptions options_;
  std::function<void()> wake_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  uint16_t port_ = 0;
  bool tls_ = false;
  std::vector<Route> routes_;

  std::mutex jobs_mutex_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stopping_ = false;  // under jobs_mutex_
  std::atomic<bool> stopped_{false};

  std::mutex clients_mutex_;
  std::vector<std::shared_ptr<EventClient>> clients_;
  std::atomic<size_t> client_count_{0};
  // Event ids are "<stream>-<sequence>": `stream` names this run of the
  // daemon (its start, Unix ms), so an id from an earlier run is told apart
  // (its events are gone with that run's IKE SAs); the sequence counts every
  // event published, kept or not.
  const uint64_t stream_ = unix_ms();
  struct KeptEvent {
    uint64_t sequence;
    std::shared_ptr<const std::string> frame;
  };
  // Contiguous, and ending at the last event published when not empty
  // (cleared whenever an event is not kept). Under clients_mutex_.
  std::deque<KeptEvent> history_;
  // Events are kept (and their JSON built) while a client is connected and
  // until this time (CLOCK_MONOTONIC, ns) after the last one left. Not the
  // engine's clock (options_.clock): this is set on HTTP threads.
  std::atomic<uint64_t> keep_until_ns_{0};
  bool history_in_use_ = false;  // publish() (the engine thread) only

  std::atomic<uint64_t> requests_{0}, unauthorized_{0}, engine_timeouts_{0}, events_published_{0},
      events_dropped_{0};
};

shared::Status ApiServer::Impl::start() {
  auto address = shared::IpAddress::parse(options_.listen_address);
  if (!address) return make_error("API listen address '" + options_.listen_address + "' is not an IP address");
  if (options_.bearer_token.empty() && !is_loopback(*address))
    return make_error("API on " + options_.listen_address +
                      " without a bearer token: only a loopback address may go without one");
  if (options_.tls_certificate_file.empty() != options_.tls_private_key_file.empty())
    return make_error("API TLS needs both a certificate and a private key");
  if (!options_.tls_client_ca_file.empty() && options_.tls_certificate_file.empty())
    return make_error("API client certificates (mTLS) need HTTPS (a certificate and a private key)");
  if (!options_.tls_certificate_file.empty()) {
    auto server = std::make_unique<httplib::SSLServer>(
        options_.tls_certificate_file.c_str(), options_.tls_private_key_file.c_str(),
        options_.tls_client_ca_file.empty() ? nullptr : options_.tls_client_ca_file.c_str());
    if (!server->is_valid())
      return make_error("API TLS: cannot load certificate '" + options_.tls_certificate_file + "' with key '" +
                        options_.tls_private_key_file + "' (or they do not match)");
    server_ = std::move(server);
    tls_ = true;
  } else {
    server_ = std::make_unique<httplib::Server>();
  }

  routes_.push_back({"GET", std::regex("/v1/health"), &Impl::health, false});
  routes_.push_back({"GET", std::regex("/v1/ready"), &Impl::ready, false});
  routes_.push_back({"GET", std::regex("/v1/ike-sas"), &Impl::list, true});
  routes_.push_back({"GET", std::regex("/v1/ike-sas/([^/]+)"), &Impl::show, true});
  routes_.push_back({"DELETE", std::regex("/v1/ike-sas/([^/]+)"), &Impl::terminate, true});
  routes_.push_back({"POST", std::regex("/v1/ike-sas/([^/]+)/rekey"), &Impl::rekey, true});
  routes_.push_back({"POST", std::regex("/v1/ike-sas/([^/]+)/move"), &Impl::move, true});
  routes_.push_back({"GET", std::regex("/v1/stats"), &Impl::stats, true});
  routes_.push_back({"GET", std::regex("/metrics"), &Impl::metrics, true});
  routes_.push_back({"GET", std::regex("/v1/dataplane"), &Impl::dataplane, true});
  routes_.push_back({"GET", std::regex("/v1/pools"), &Impl::pools, true});
  routes_.push_back({"GET", std::regex("/v1/pools/([^/]+)"), &Impl::pool, true});
  routes_.push_back({"POST", std::regex("/v1/config/reload"), &Impl::reload, true});
  routes_.push_back({"GET", std::regex("/v1/events"), &Impl::events, true});

  // httplib parses HTTP; the routing (404 vs 405, authentication first) is
  // ours, so every method goes to one dispatcher.
  auto any = [this](const httplib::Request& req, httplib::Response& res) { dispatch(req, res); };
  // Methods that may carry a body read it here: a request with neither
  // Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3), but
  // httplib 0.11 would wait for one until the client closed or the read
  // timeout passed, so `curl -X POST URL` hung for 10 s and got a 400.
  auto with_body = [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
    bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
    if (!chunked && !req.has_header("Content-Length")) return dispatch(req, res);
    if (!chunked) {
      const std::string length = req.get_header_value("Content-Length");
      uint64_t bytes = 0;
      auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), bytes);
      if (error != std::errc() || end != length.data() + length.size()) {
        res.set_header("Connection", "close");  // the body's end is unknown: the connection cannot go on
        return fail(res, 400, "Content-Length '" + length + "' is not a number");
      }
      if (bytes > kMaxBodyBytes) {
        res.set_header("Connection", "close");  // the body is left unread
        return fail(res, 413, "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes");
      }
    }
    httplib::Request with = req;
    bool too_large = false;
    bool complete = read([&](const char* data, size_t length) {
      if (with.body.size() + length > kMaxBodyBytes) {
        too_large = true;
        return false;
      }
      with.body.append(data, length);
      return true;
    });
    if (too_large || !complete) res.set_header("Connection", "close");
    if (too_large) return fail(res, 413, "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    if (!complete) return fail(res, 400, "the request body ended early");
    dispatch(with, res);
  };
  // httplib takes the content-reader handler when it expects a body (a
  // DELETE only with a Content-Length), the plain one otherwise.
  server_->Get(".*", any);
  server_->Post(".*", with_body);
  server_->Post(".*", any);
  server_->Put(".*", with_body);
  server_->Put(".*", any);
  server_->Patch(".*", with_body);
  server_->Patch(".*", any);
  server_->Delete(".*", with_body);
  server_->Delete(".*", any);
  server_->Options(".*", any);
  // httplib's own errors (malformed request, body too large) get a JSON body.
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 400)
      fail(res, 400, "malformed HTTP request");
    else if (res.status == 413)
      fail(res, 413, "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes");
    else
      fail(res, res.status, "HTTP " + std::to_string(res.status));
  });
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what += ": ";
      what += e.what();
    } catch (...) {
    }
    fail(res, 500, what);
  });
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // daemon bind the same port and take half of the requests: only
  // SO_REUSEADDR (a restart need not wait for TIME_WAIT).
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server_->set_payload_max_length(kMaxBodyBytes);
  server_->set_read_timeout(kReadTimeoutS, 0);
  server_->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(options_.write_timeout));
  server_->set_keep_alive_timeout(kKeepAliveTimeoutS);
  unsigned workers = options_.worker_threads;
  server_->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };

  if (options_.port == 0) {
    errno = 0;
    int bound = server_->bind_to_any_port(options_.listen_address);
    if (bound <= 0)
      return make_error("API: cannot listen on " + options_.listen_address + " (any port): " + std::strerror(errno));
    port_ = uint16_t(bound);
  } else {
    errno = 0;
    if (!server_->bind_to_port(options_.listen_address, options_.port))
      return make_error("API: cannot listen on " + options_.listen_address + " port " +
                        std::to_string(options_.port) + ": " + std::strerror(errno));
    port_ = options_.port;
  }
  listener_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() does nothing before the listener is running (it would
  // then never return from accept()): start() returns only once it runs.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!server_->is_running()) {
    stop();
    return make_error("API: the listener on " + options_.listen_address + " did not start");
  }
  return {};
}

void ApiServer::Impl::stop() {
  if (stopped_.exchange(true)) return;
  std::deque<std::shared_ptr<Job>> queued;
  {
    std::lock_guard lock(jobs_mutex_);
    stopping_ = true;
    queued.swap(jobs_);
  }
  // Requests waiting for the engine get their 503 at once.
  for (auto& job : queued) {
    int expected = Job::kPending;
    if (job->state.compare_exchange_strong(expected, Job::kAbandoned)) job->done.set_value();
  }
  {
    std::lock_guard lock(clients_mutex_);
    for (auto& client : clients_) client->ready.notify_all();
  }
  if (server_) server_->stop();
  if (listener_.joinable()) listener_.join();
}

size_t ApiServer::Impl::run_pending(ike::Engine& engine) {
  std::deque<std::shared_ptr<Job>> taken;
  {
    std::lock_guard lock(jobs_mutex_);
    taken.swap(jobs_);
  }
  size_t ran = 0;
  for (auto& job : taken) {
    int expected = Job::kPending;
    if (!job->state.compare_exchange_strong(expected, Job::kTaken)) continue;  // its request gave up
    try {
      job->work(engine);
      job->done.set_value();
    } catch (...) {
      job->done.set_exception(std::current_exception());
    }
    ++ran;
  }
  return ran;
}

bool ApiServer::Impl::on_engine(httplib::Response& res, std::function<void(ike::Engine&)> work) {
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  auto done = job->done.get_future();
  {
    std::lock_guard lock(jobs_mutex_);
    if (stopping_) {
      fail(res, 503, "the control plane is shutting down");
      return false;
    }
    if (jobs_.size() >= options_.max_pending_jobs) {
      ++engine_timeouts_;
      fail(res, 503, "the engine thread is busy: " + std::to_string(jobs_.size()) + " requests queued");
      return false;
    }
    jobs_.push_back(job);
  }
  wake_();
  if (done.wait_for(options_.engine_timeout) != std::future_status::ready) {
    int expected = Job::kPending;
    if (job->state.compare_exchange_strong(expected, Job::kAbandoned)) {
      ++engine_timeouts_;
      fail(res, 503, "the engine thread did not answer within " + std::to_string(options_.engine_timeout.count()) +
                         " ms (nothing was changed)");
      return false;
    }
    // The engine thread is running it right now: its answer comes shortly.
  }
  done.get();  // rethrows what the closure threw: the exception handler's 500
  if (job->state.load() == Job::kAbandoned) {  // stop() answered for it
    fail(res, 503, "the control plane is shutting down");
    return false;
  }
  return true;
}

bool ApiServer::Impl::authorized(const httplib::Request& req) const {
  if (options_.bearer_token.empty()) return true;
  static constexpr std::string_view kScheme = "Bearer ";
  std::string header = req.get_header_value("Authorization");
  if (header.size() <= kScheme.size()) return false;
  // RFC 6750 2.1 / RFC 7235: the scheme is case-insensitive.
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != std::tolower(static_cast<unsigned char>(kScheme[i])))
      return false;
  return same_secret(header.substr(kScheme.size()), options_.bearer_token);
}

void ApiServer::Impl::dispatch(const httplib::Request& req, httplib::Response& res) {
  ++requests_;
  // HEAD is GET without the body (httplib drops it).
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::string allowed;
  const Route* path_match = nullptr;
  std::smatch match;
  for (const auto& route : routes_) {
    std::smatch m;
    if (!std::regex_match(req.path, m, route.path)) continue;
    path_match = &route;
    if (method == route.method) {
      if (route.authenticated && !authorized(req)) {
        ++unauthorized_;
        res.set_header("WWW-Authenticate", "Bearer realm=\"segw\"");
        fail(res, 401, req.has_header("Authorization") ? "wrong bearer token" : "missing bearer token "
                                                                                  "(Authorization: Bearer ...)");
        return;
      }
      match = m;
      (this->*route.handler)(req, res, match);
      return;
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += route.method;
  }
  // Unknown routes and methods say so only to an authenticated client.
  if (!authorized(req)) {
    ++unauthorized_;
    res.set_header("WWW-Authenticate", "Bearer realm=\"segw\"");
    fail(res, 401, req.has_header("Authorization") ? "wrong bearer token" : "missing bearer token");
    return;
  }
  if (path_match) {
    res.set_header("Allow", allowed);
    fail(res, 405, "method " + req.method + " not allowed on " + req.path + " (allowed: " + allowed + ")");
    return;
  }
  fail(res, 404, "no route " + req.path);
}

bool ApiServer::Impl::parse_id(const std::string& text, uint64_t& id, httplib::Response& res) {
  bool digits = !text.empty() && text.size() <= 20;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    errno = 0;
    char* end = nullptr;
    unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (errno == 0 && end && *end == '\0') {
      id = value;
      return true;
    }
  }
  fail(res, 400, "IKE SA id '" + text + "' is not a decimal number");
  return false;
}

bool ApiServer::Impl::parse_body(const httplib::Request& req, std::initializer_list<const char*> allowed,
                                 bool optional, json& body, httplib::Response& res) {
  bool blank = req.body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) {
    if (optional) {
      body = json::object();
      return true;
    }
    fail(res, 400, "a JSON object body is required");
    return false;
  }
  body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    fail(res, 400, "the body is not valid JSON");
    return false;
  }
  if (!body.is_object()) {
    fail(res, 400, std::string("the body must be a JSON object, got ") + body.type_name());
    return false;
  }
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* name : allowed) known = known || key == name;
    if (!known) {
      std::string expected;
      for (const char* name : allowed) {
        if (!expected.empty()) expected += ", ";
        expected += name;
      }
      fail(res, 400, "unknown field '" + key + "' (expected: " + expected + ")");
      return false;
    }
  }
  return true;
}

void ApiServer::Impl::health(const httplib::Request&, httplib::Response& res, const std::smatch&) {
  reply(res, 200, json{{"status", "ok"}});
}

void ApiServer::Impl::ready(const httplib::Request&, httplib::Response& res, const std::smatch&) {
  if (!on_engine(res, [](ike::Engine&) {})) return;
  reply(res, 200, json{{"status", "ready"}});
}

void ApiServer::Impl::list(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  ike::IkeSaQuery query;
  query.limit = kDefaultListLimit;
  for (const auto& [key, value] : req.params) {
    if (key == "identity") {
      query.identity = value;
    } else if (key == "inner" || key == "public") {
      auto address = shared::IpAddress::parse(value);
      if (!address) {
        fail(res, 400, "query parameter " + key + ": '" + value + "' is not an IP address");
        return;
      }
      (key == "inner" ? query.inner : query.public_address) = *address;
    } else if (key == "limit") {
      uint64_t limit = 0;
      if (!parse_count(res, key, value, 1, kMaxListLimit, limit)) return;
      query.limit = size_t(limit);
    } else if (key == "after") {
      if (!parse_count(res, key, value, 0, UINT64_MAX, query.after)) return;
    } else {
      fail(res, 400, "unknown query parameter '" + key + "' (expected: identity, inner, public, limit, after)");
      return;
    }
  }
  ike::IkeSaPage page;
  uint64_t now = 0;
  if (!on_engine(res, [&](ike::Engine& engine) {
        page = engine.ike_sas(query);
        now = options_.clock();
      }))
    return;
  // The JSON is built here, off the engine thread.
  json list = json::array();
  for (const auto& sa : page.sas) list.push_back(ike_sa_view(sa, now));
  json body;
  body["ike_sas"] = std::move(list);
  body["matched"] = page.matched;
  body["next_after"] = page.next_after ? json(*page.next_after) : json(nullptr);
  reply(res, 200, body);
}

void ApiServer::Impl::show(const httplib::Request&, httplib::Response& res, const std::smatch& match) {
  uint64_t id = 0;
  if (!parse_id(match[1].str(), id, res)) return;
  std::optional<ike::IkeSaInfo> sa;
  uint64_t now = 0;
  if (!on_engine(res, [&](ike::Engine& engine) {
        sa = engine.ike_sa(id);
        now = options_.clock();
      }))
    return;
  if (!sa || sa->state == ike::IkeSaState::kClosed) {
    fail(res, 404, "no IKE SA " + std::to_string(id));
    return;
  }
  reply(res, 200, ike_sa_view(*sa, now));
}

void ApiServer::Impl::terminate(const httplib::Request&, httplib::Response& res, const std::smatch& match) {
  uint64_t id = 0;
  if (!parse_id(match[1].str(), id, res)) return;
  bool found = false;
  shared::Status status;
  if (!on_engine(res, [&](ike::Engine& engine) {
        auto sa = engine.ike_sa(id);
        found = sa && sa->state != ike::IkeSaState::kClosed;
        if (found) status = engine.terminate(id);
      }))
    return;
  if (!found) return fail(res, 404, "no IKE SA " + std::to_string(id));
  if (!status) return fail(res, 409, status.error());
  reply(res, 202, json{{"ike_sa", id}, {"status", "deleting"}});
}

void ApiServer::Impl::rekey(const httplib::Request& req, httplib::Response& res, const std::smatch& match) {
  uint64_t id = 0;
  if (!parse_id(match[1].str(), id, res)) return;
  json body;
  if (!parse_body(req, {"child"}, true, body, res)) return;
  bool child = false;
  if (body.contains("child")) {
    if (!body["child"].is_boolean())
      return fail(res, 400, std::string("field 'child' must be true or false, got ") + body["child"].type_name());
    child = body["child"].get<bool>();
  }
  bool found = false;
  shared::Status status;
  if (!on_engine(res, [&](ike::Engine& engine) {
        auto sa = engine.ike_sa(id);
        found = sa && sa->state != ike::IkeSaState::kClosed;
        if (found) status = child ? engine.rekey_child(id) : engine.rekey_ike(id);
      }))
    return;
  if (!found) return fail(res, 404, "no IKE SA " + std::to_string(id));
  if (!status) return fail(res, 409, status.error());
  reply(res, 202, json{{"ike_sa", id}, {"rekey", child ? "child" : "ike"}});
}

void ApiServer::Impl::move(const httplib::Request& req, httplib::Response& res, const std::smatch& match) {
  uint64_t id = 0;
  if (!parse_id(match[1].str(), id, res)) return;
  json body;
  if (!parse_body(req, {"address", "port"}, false, body, res)) return;
  if (!body.contains("address") || !body["address"].is_string())
    return fail(res, 400, "field 'address' (a string, an IPv4 or IPv6 address) is required");
  auto address = shared::IpAddress::parse(body["address"].get<std::string>());
  if (!address)
    return fail(res, 400, "field 'address': '" + body["address"].get<std::string>() + "' is not an IP address");
  const json& port = body.contains("port") ? body["port"] : json();
  if (!port.is_number_integer())
    return fail(res, 400, "field 'port' (an integer 1..65535) is required");
  int64_t port_value = port.is_number_unsigned() ? int64_t(std::min<uint64_t>(port.get<uint64_t>(), 1u << 20))
                                                 : port.get<int64_t>();
  if (port_value < 1 || port_value > 65535)
    return fail(res, 400, "field 'port': " + std::to_string(port_value) + " is out of range 1..65535");
  ike::OuterEndpoint to{*address, uint16_t(port_value)};
  bool found = false;
  shared::Status status;
  std::optional<ike::IkeSaInfo> after;
  uint64_t now = 0;
  if (!on_engine(res, [&](ike::Engine& engine) {
        auto sa = engine.ike_sa(id);
        found = sa && sa->state != ike::IkeSaState::kClosed;
        if (!found) return;
        status = engine.move(id, to);
        after = engine.ike_sa(id);
        now = options_.clock();
      }))
    return;
  if (!found) return fail(res, 404, "no IKE SA " + std::to_string(id));
  if (!status) return fail(res, 409, status.error());
  if (!after) return fail(res, 404, "IKE SA " + std::to_string(id) + " went away");
  reply(res, 200, ike_sa_view(*after, now));
}

void ApiServer::Impl::stats(const httplib::Request&, httplib::Response& res, const std::smatch&) {
  ike::EngineStats engine_stats;
  size_t ike_sas = 0;
  if (!on_engine(res, [&](ike::Engine& engine) {
        engine_stats = engine.stats();
        ike_sas = engine.ike_sa_count();
      }))
    return;
  json body = stats_view(engine_stats);
  body["gauges"]["ike_sas"] = ike_sas;
  ApiCounters api = counters();
  body["api"] = json{{"requests", api.requests},
                     {"unauthorized", api.unauthorized},
                     {"engine_timeouts", api.engine_timeouts},
                     {"events_published", api.events_published},
                     {"events_dropped", api.events_dropped},
                     {"event_clients", api.event_clients}};
  reply(res, 200, body);
}

// Prometheus text format (0.0.4). Every engine counter as
// segw_ike_<name>_total, and the same numbers grouped where an operator
// sums or compares them: remaps by kind, MOBIKE updates by outcome.
void ApiServer::Impl::metrics(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  if (!req.params.empty()) return fail(res, 400, "/metrics takes no query parameters");
  ike::EngineStats s;
  size_t ike_sas = 0;
  if (!on_engine(res, [&](ike::Engine& engine) {
        s = engine.stats();
        ike_sas = engine.ike_sa_count();
      }))
    return;
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  auto sample = [&out](const std::string& name, uint64_t value) {
    out.append(name).append(" ").append(std::to_string(value)).append("\n");
  };
#define SEGW_API_METRIC(name)                                                              \
  metric("segw_ike_" #name "_total", "counter", "IKE engine counter " #name " (engine.h)"); \
  sample("segw_ike_" #name "_total", s.name);
  SEGW_ENGINE_COUNTERS(SEGW_API_METRIC)
#undef SEGW_API_METRIC
  metric("segw_ike_sas", "gauge", "IKE SAs the engine holds, in any state");
  sample("segw_ike_sas", ike_sas);
  metric("segw_tunnels", "gauge", "established IKE SAs (tunnels up)");
  sample("segw_tunnels", s.established);
  metric("segw_ike_sas_half_open", "gauge", "responder IKE SAs waiting for IKE_AUTH");
  sample("segw_ike_sas_half_open", s.half_open);
  metric("segw_remaps_total", "counter", "NAT remap signals by what the remap policy did");
  sample("segw_remaps_total{kind=\"followed\"}", s.remaps_followed);
  sample("segw_remaps_total{kind=\"verified\"}", s.remaps_verified);
  sample("segw_remaps_total{kind=\"ignored\"}", s.remaps_ignored);
  sample("segw_remaps_total{kind=\"external\"}", s.external_moves);
  metric("segw_mobike_updates_total", "counter", "MOBIKE UPDATE_SA_ADDRESSES received, by outcome");
  uint64_t refused = s.mobike_updates_stale + s.mobike_nat_refused + s.mobike_unacceptable;
  sample("segw_mobike_updates_total{outcome=\"accepted\"}",
         s.mobike_updates_received > refused ? s.mobike_updates_received - refused : 0);
  sample("segw_mobike_updates_total{outcome=\"stale\"}", s.mobike_updates_stale);
  sample("segw_mobike_updates_total{outcome=\"unexpected_nat\"}", s.mobike_nat_refused);
  sample("segw_mobike_updates_total{outcome=\"unacceptable\"}", s.mobike_unacceptable);
  metric("segw_ike_setup_failures_total", "counter", "IKE SA set-ups that failed, by reason");
  sample("segw_ike_setup_failures_total{reason=\"no_proposal_chosen\"}", s.no_proposal_chosen);
  sample("segw_ike_setup_failures_total{reason=\"authentication_failed\"}", s.auth_failed);
  sample("segw_ike_setup_failures_total{reason=\"ts_unacceptable\"}", s.ts_unacceptable);
  sample("segw_ike_setup_failures_total{reason=\"address_pool_exhausted\"}", s.address_failures);
  sample("segw_ike_setup_failures_total{reason=\"half_open_expired\"}", s.half_open_expired);
  if (options_.dataplane_statistics) append_dataplane_metrics(out, options_.dataplane_statistics());
  ApiCounters api = counters();
  metric("segw_api_requests_total", "counter", "REST API requests");
  sample("segw_api_requests_total", api.requests);
  metric("segw_api_unauthorized_total", "counter", "REST API requests refused for their token");
  sample("segw_api_unauthorized_total", api.unauthorized);
  metric("segw_api_event_clients", "gauge", "event stream clients connected");
  sample("segw_api_event_clients", api.event_clients);
  res.status = 200;
  res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
}

void ApiServer::Impl::dataplane(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  if (!req.params.empty()) return fail(res, 400, "/v1/dataplane takes no query parameters");
  if (!options_.dataplane_statistics)
    return fail(res, 404, "this control plane has no data plane (transport = udp)");
  reply(res, 200, dataplane_view(options_.dataplane_statistics(), options_.clock()));
}

void ApiServer::Impl::pools(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  if (!req.params.empty()) return fail(res, 400, "/v1/pools takes no query parameters");
  std::vector<ike::PoolInfo> pools;
  if (!on_engine(res, [&](ike::Engine& engine) { pools = engine.pools(); })) return;
  json list = json::array();
  for (const auto& pool : pools) list.push_back(pool_view(pool));
  reply(res, 200, json{{"pools", std::move(list)}});
}

void ApiServer::Impl::pool(const httplib::Request& req, httplib::Response& res, const std::smatch& match) {
  std::string name = match[1].str();
  ike::LeaseQuery query;
  query.limit = kDefaultListLimit;
  for (const auto& [key, value] : req.params) {
    if (key == "limit") {
      uint64_t limit = 0;
      if (!parse_count(res, key, value, 1, kMaxListLimit, limit)) return;
      query.limit = size_t(limit);
    } else if (key == "after") {
      auto address = shared::IpAddress::parse(value);
      if (!address) return fail(res, 400, "query parameter after: '" + value + "' is not an IP address");
      query.after = *address;
    } else {
      return fail(res, 400, "unknown query parameter '" + key + "' (expected: limit, after)");
    }
  }
  std::optional<ike::PoolInfo> info;
  std::optional<ike::LeasePage> page;
  if (!on_engine(res, [&](ike::Engine& engine) {
        for (auto& pool : engine.pools())
          if (pool.name == name) info = std::move(pool);
        if (info && (!query.after || query.after->family() == info->family)) page = engine.pool_leases(name, query);
      }))
    return;
  if (!info) return fail(res, 404, "no pool '" + name + "'");
  if (!page)
    return fail(res, 400, "query parameter after: '" + query.after->to_string() + "' is not an " +
                              (info->family == shared::IpFamily::kIpv4 ? "IPv4" : "IPv6") + " address like the pool's");
  // The JSON is built here, off the engine thread.
  json view = pool_view(*info);
  json list = json::array();
  for (const auto& lease : page->leases) list.push_back(lease_view(lease));
  view["leases"] = std::move(list);
  view["next_after"] = page->next_after ? json(page->next_after->to_string()) : json(nullptr);
  reply(res, 200, view);
}

void ApiServer::Impl::reload(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  json body;
  if (!parse_body(req, {}, true, body, res)) return;
  auto tell = [this](const std::string& what) {
    if (options_.reload_observer) options_.reload_observer(what);
  };
  if (options_.config_path.empty())
    return fail(res, 409, "the daemon runs its built-in configuration: there is no file to reload");
  // Read and validate on this HTTP thread; only the switch-over runs on the
  // engine thread.
  auto loaded = config::load_controlplane_config(options_.config_path);
  if (!loaded) {
    tell("reload refused: " + loaded.error());
    return fail(res, 409, "configuration not applied: " + loaded.error());
  }
  auto next = std::make_shared<const config::ControlPlaneConfig>(std::move(*loaded));
  std::optional<shared::Result<ike::ReloadReport>> outcome;
  if (!on_engine(res, [&](ike::Engine& engine) { outcome = engine.reload(next); })) return;
  if (!*outcome) {
    tell("reload refused: " + outcome->error());
    return fail(res, 409, "configuration not applied: " + outcome->error());
  }
  const ike::ReloadReport& r = **outcome;
  tell("configuration reloaded from " + options_.config_path + ": " + ike::to_string(r));
  reply(res, 200,
        json{{"status", "reloaded"},
             {"profiles", r.profiles},
             {"secrets", r.secrets},
             {"pools", r.pools},
             {"pools_rebuilt", r.pools_rebuilt},
             {"ike_sas", r.ike_sas},
             {"ike_sas_on_retired_profiles", r.ike_sas_on_retired_profiles}});
}

void ApiServer::Impl::events(const httplib::Request& req, httplib::Response& res, const std::smatch&) {
  if (!req.params.empty()) return fail(res, 400, "/v1/events takes no query parameters");
  // Resuming (the EventSource reconnection): the events after the last one
  // the client saw are sent first, from the history.
  std::optional<std::pair<uint64_t, uint64_t>> resume;  // stream, sequence
  if (req.has_header("Last-Event-ID")) {
    const std::string id = req.get_header_value("Last-Event-ID");
    uint64_t stream = 0, sequence = 0;
    size_t dash = id.find('-');
    auto whole = [](std::string_view text, uint64_t& out) {
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
      return !text.empty() && error == std::errc() && end == text.data() + text.size();
    };
    if (dash == std::string::npos || !whole(std::string_view(id).substr(0, dash), stream) ||
        !whole(std::string_view(id).substr(dash + 1), sequence))
      return fail(res, 400, "Last-Event-ID '" + id + "' is not an event id (STREAM-SEQUENCE) of this API");
    if (stream == stream_ && sequence > events_published_.load())
      return fail(res, 400, "Last-Event-ID '" + id + "': no such event yet");
    resume = {stream, sequence};
  }
  auto client = std::make_shared<EventClient>();
  {
    std::lock_guard lock(clients_mutex_);
    if (stopped_.load()) return fail(res, 503, "the control plane is shutting down");
    if (clients_.size() >= options_.max_event_clients)
      return fail(res, 503, "too many event clients (" + std::to_string(clients_.size()) + ")");
    // Under clients_mutex_, as publish() appends: nothing between the
    // replay and the live events is lost or sent twice.
    if (resume && resume->first != stream_) {
      client->frames.push_back(std::make_shared<const std::string>(dropped_frame(std::nullopt, "restarted")));
    } else if (resume) {
      uint64_t last = events_published_.load();
      uint64_t first_kept = history_.empty() ? last + 1 : history_.front().sequence;
      if (resume->second + 1 < first_kept)
        client->frames.push_back(
            std::make_shared<const std::string>(dropped_frame(first_kept - resume->second - 1, "not_kept")));
      for (const auto& kept : history_)
        if (kept.sequence > resume->second) client->frames.push_back(kept.frame);
    }
    clients_.push_back(client);
    client_count_.store(clients_.size());
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  auto greeted = std::make_shared<bool>(false);
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, client, last_write, greeted](size_t, httplib::DataSink& sink) {
        if (!*greeted) {
          *greeted = true;
          // A comment line: the client sees the stream open at once.
          static constexpr std::string_view kHello = ": segw-controlplane events\n\n";
          return sink.write(kHello.data(), kHello.size());
        }
        std::deque<std::shared_ptr<const std::string>> frames;
        uint64_t dropped = 0;
        {
          std::unique_lock lock(client->mutex);
          client->ready.wait_for(lock, kEventPoll,
                                 [&] { return !client->frames.empty() || client->dropped_unreported || stopped_.load(); });
          frames.swap(client->frames);
          dropped = std::exchange(client->dropped_unreported, 0);
        }
        if (stopped_.load()) {
          sink.done();
          return true;
        }
        auto now = std::chrono::steady_clock::now();
        if (dropped) {
          std::string frame = dropped_frame(dropped, "slow");
          if (!sink.write(frame.data(), frame.size())) return false;
        }
        for (const auto& frame : frames)
          if (!sink.write(frame->data(), frame->size())) return false;
        if (dropped || !frames.empty()) {
          *last_write = now;
        } else if (now - *last_write >= options_.event_keepalive) {
          static constexpr std::string_view kKeepalive = ": keepalive\n\n";
          if (!sink.write(kKeepalive.data(), kKeepalive.size())) return false;
          *last_write = now;
        }
        return true;
      },
      [this, client](bool) {
        std::lock_guard lock(clients_mutex_);
        std::erase(clients_, client);
        client_count_.store(clients_.size());
        uint64_t window_ns = uint64_t(options_.event_resume_window.count()) * 1'000'000ull;
        keep_until_ns_.store(monotonic_ns() + window_ns);
      });
}

void ApiServer::Impl::publish(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa) {
  uint64_t sequence = ++events_published_;
  bool keep = options_.event_history > 0 &&
              (client_count_.load(std::memory_order_relaxed) != 0 || monotonic_ns() < keep_until_ns_.load());
  if (!keep) {
    // A gap in the history: a resume from before it is told what it lost.
    if (history_in_use_) {
      std::lock_guard lock(clients_mutex_);
      history_.clear();
      history_in_use_ = false;
    }
    // Nobody listens and nobody may come back for it: no JSON built (a mass
    // remap is one event per tunnel).
    if (client_count_.load(std::memory_order_relaxed) == 0) return;
  }
  std::string id = std::to_string(stream_) + "-" + std::to_string(sequence);
  json data = event_view(event, sa, options_.clock(), unix_ms());
  data["id"] = id;  // also in the data: a consumer of the JSON alone (segwctl --json watch) can resume
  auto frame = std::make_shared<const std::string>(sse_frame(ike::to_string(event.kind), data.dump(), id));
  std::lock_guard lock(clients_mutex_);
  if (keep) {
    history_.push_back({sequence, frame});
    history_in_use_ = true;
    while (history_.size() > options_.event_history) history_.pop_front();
  }
  for (auto& client : clients_) {
    {
      std::lock_guard client_lock(client->mutex);
      if (client->frames.size() >= options_.event_buffer) {
        ++client->dropped_unreported;
        ++events_dropped_;
        continue;
      }
      client->frames.push_back(frame);
    }
    client->ready.notify_one();
  }
}

ApiCounters ApiServer::Impl::counters() const {
  ApiCounters c;
  c.requests = requests_.load();
  c.unauthorized = unauthorized_.load();
  c.engine_timeouts = engine_timeouts_.load();
  c.events_published = events_published_.load();
  c.events_dropped = events_dropped_.load();
  c.event_clients = client_count_.load();
  return c;
}

shared::Result<std::unique_ptr<ApiServer>> ApiServer::start(const ApiOptions& options, std::function<void()> wake) {
  auto impl = std::make_unique<Impl>(options, std::move(wake));
  if (auto status = impl->start(); !status) return make_error(status.error());
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiServer::~ApiServer() {
  if (impl_) impl_->stop();
}
uint16_t ApiServer::port() const { return impl_->port(); }
bool ApiServer::tls() const { return impl_->tls(); }
void ApiServer::stop() { impl_->stop(); }
size_t ApiServer::run_pending(ike::Engine& engine) { return impl_->run_pending(engine); }
void ApiServer::publish(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa) {
  impl_->publish(event, sa);
}
ApiCounters ApiServer::counters() const { return impl_->counters(); }

}  // namespace segw::cp::api
