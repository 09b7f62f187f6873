// The REST API over real HTTP on 127.0.0.1 (httplib::Client) against a
// real IKE engine: a gateway engine and two device engines joined by an
// in-memory network (one device behind a NAT), as in the engine tests
// (their LoopTransport and Network are copied here, trimmed). After the
// devices are up, an "engine thread" of the test's own owns every engine:
// it runs the API's queued closures and the network, like the daemon's
// loop. Covered: authentication, every route and its errors, filters, no
// key material in any answer, the engine-thread timeout (503, nothing
// changed), the event stream and its bounded per-client buffer, TLS, and
// the [controlplane] api_* configuration keys.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "controlplane/api/api_server.h"
#include "controlplane/api/json_views.h"
#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/recording_sa_installer.h"
#include "controlplane/ike/engine/engine.h"
#include "tests/unit/controlplane/config/test_pki.h"

namespace segw::cp::api {
namespace {

using dp_link::IkeDatagram;
using dp_link::RecordingSaInstaller;
using ike::Engine;
using ike::EngineEvent;
using ike::EngineEventKind;
using nlohmann::json;
using shared::IpAddress;

constexpr uint64_t kSecond = 1'000'000'000;
const char* kPsk = "0x00112233445566778899aabbccddeeff0011223344556677";
const char* kToken = "test-token-0123456789";

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// ---------------------------------------------------------------------------
// The in-memory network (from tests/unit/controlplane/engine/engine_test.cc).

class Network;

class LoopTransport final : public dp_link::IkeTransport {
 public:
  LoopTransport(Network& network, int node) : network_(network), node_(node) {}
  shared::Status send(const IkeDatagram& datagram) override;
  void set_receiver(dp_link::IkeReceiver) override {}

 private:
  Network& network_;
  int node_;
};

struct Node {
  std::string name;
  IpAddress address;
  config::ControlPlaneConfig config;
  RecordingSaInstaller installer;
  std::unique_ptr<LoopTransport> transport;
  std::unique_ptr<Engine> engine;
  std::vector<EngineEvent> events;
  bool behind_nat = false;
};

// Node 0 is the gateway at 198.51.100.1; a node behind the NAT appears as
// 198.51.100.20:(40000 + 100n + 0|1).
class Network {
 public:
  uint64_t now = 1000 * kSecond;
  std::deque<std::pair<int, IkeDatagram>> in_flight;
  std::vector<std::unique_ptr<Node>> nodes;
  std::function<void(const EngineEvent&)> on_gateway_event;

  Node& add(const std::string& name, const IpAddress& address, const std::string& config_text,
            bool behind_nat = false) {
    auto node = std::make_unique<Node>();
    node->name = name;
    node->address = address;
    node->behind_nat = behind_nat;
    auto parsed = config::parse_controlplane_config(config_text, name + ".conf");
    EXPECT_TRUE(parsed.ok()) << parsed.error();
    node->config = std::move(*parsed);
    int index = int(nodes.size());
    node->transport = std::make_unique<LoopTransport>(*this, index);
    auto engine = Engine::create(node->config, ike::EngineOptions::from(node->config.daemon), *node->transport,
                                 node->installer, [this] { return now; });
    EXPECT_TRUE(engine.ok()) << engine.error();
    node->engine = std::move(*engine);
    Node* raw = node.get();
    bool gateway = index == 0;
    node->engine->set_event_handler([this, raw, gateway](const EngineEvent& e) {
      raw->events.push_back(e);
      if (gateway && on_gateway_event) on_gateway_event(e);
    });
    nodes.push_back(std::move(node));
    return *raw;
  }

  shared::channel::OuterEndpoint public_of(int node, uint16_t port) const {
    if (!nodes[node]->behind_nat) return {nodes[node]->address, port};
    return {ip("198.51.100.20"), uint16_t(40000 + 100 * node + (port == 4500 ? 1 : 0))};
  }

  void run(int max_steps = 10000) {
    for (int step = 0; step < max_steps; ++step) {
      for (auto& node : nodes) node->engine->poll();
      if (in_flight.empty()) return;
      auto [from, sent] = std::move(in_flight.front());
      in_flight.pop_front();
      IkeDatagram received = sent;
      received.remote = public_of(from, sent.local.port);
      int to = -1;
      for (size_t n = 0; n < nodes.size(); ++n) {
        if (int(n) == from) continue;
        for (uint16_t port : {uint16_t(500), uint16_t(4500)}) {
          if (public_of(int(n), port) == sent.remote) {
            to = int(n);
            received.local = {nodes[n]->address, port};
          }
        }
      }
      if (to >= 0) nodes[to]->engine->handle_datagram(received);
    }
  }
};

shared::Status LoopTransport::send(const IkeDatagram& datagram) {
  network_.in_flight.emplace_back(node_, datagram);
  return {};
}

std::string gateway_config() {
  return std::string(R"(
[controlplane]
transport = udp
listen = 198.51.100.1

[pool v4]
range = 10.64.0.0/24

[secret default]
id = %any
psk = )") + kPsk + R"(

[profile fap]
remote_id = %any
local_id = fqdn:segw.example
pools = v4
local_subnets = 10.0.0.0/8
)";
}

std::string device_config(const std::string& name) {
  return std::string(R"(
[controlplane]
transport = udp
listen = 192.168.1.10

[secret default]
id = %any
psk = )") + kPsk + R"(

[profile device]
remote_id = fqdn:segw.example
local_id = fqdn:)" + name + "\n";
}

// ---------------------------------------------------------------------------
// The fixture: two devices up, then an engine thread and the API.

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { start(ApiOptions{}); }

  void start(ApiOptions options) {
    net_.add("gateway", ip("198.51.100.1"), gateway_config());
    net_.add("fap-a", ip("192.168.1.10"), device_config("fap-a.example"));
    net_.add("fap-b", ip("192.168.7.20"), device_config("fap-b.example"), /*behind_nat=*/true);
    for (int node : {1, 2}) {
      ike::InitiateRequest request;
      request.profile = "device";
      request.local = {net_.nodes[node]->address, 500};
      request.remote = {ip("198.51.100.1"), 500};
      auto started = net_.nodes[node]->engine->initiate(request);
      ASSERT_TRUE(started.ok()) << started.error();
      net_.run();
    }
    ASSERT_EQ(gateway().engine->ike_sas().size(), 2u);
    for (const auto& sa : gateway().engine->ike_sas()) (sa.peer_id == "fap-a.example" ? sa_a_ : sa_b_) = sa.id;
    keys_ = gateway().installer.installed();

    options.listen_address = "127.0.0.1";
    options.port = 0;
    if (options.bearer_token.empty() && !no_token_) options.bearer_token = kToken;
    options.clock = [this] { return net_.now; };
    auto server = ApiServer::start(options, [this] {
      std::lock_guard lock(mutex_);
      woken_ = true;
      wake_.notify_one();
    });
    ASSERT_TRUE(server.ok()) << server.error();
    api_ = std::move(*server);
    net_.on_gateway_event = [this](const EngineEvent& e) {
      api_->publish(e, gateway().engine->ike_sa(e.ike_sa));
    };
    engine_thread_ = std::thread([this] { engine_loop(); });
  }

  void TearDown() override {
    stop_engine_thread();
    if (api_) api_->stop();
  }

  void stop_engine_thread() {
    if (!engine_thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      wake_.notify_one();
    }
    engine_thread_.join();
  }

  // The daemon's loop in small: API closures, then the network.
  void engine_loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(5), [this] { return woken_ || stop_; });
      woken_ = false;
      if (paused_) continue;
      lock.unlock();
      api_->run_pending(*gateway().engine);
      net_.run();
      lock.lock();
    }
  }

  void pause_engine(bool paused) {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }

  Node& gateway() { return *net_.nodes[0]; }

  httplib::Client client(bool with_token = true) {
    httplib::Client c("127.0.0.1", api_->port());
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(10, 0);
    if (with_token) c.set_bearer_token_auth(kToken);
    return c;
  }

  // GET/POST/DELETE: status and parsed body (null when not JSON).
  std::pair<int, json> call(const std::string& method, const std::string& path, const std::string& body = "",
                            bool with_token = true) {
    auto c = client(with_token);
    httplib::Result result = method == "GET"      ? c.Get(path.c_str())
                             : method == "DELETE" ? c.Delete(path.c_str())
                             : method == "PUT"    ? c.Put(path.c_str(), body, "application/json")
                                                  : c.Post(path.c_str(), body, "application/json");
    if (!result) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(result.error());
      return {0, json()};
    }
    json parsed = json::parse(result->body, nullptr, false);
    return {result->status, parsed.is_discarded() ? json() : parsed};
  }

  // Waits (the engine thread running) until `predicate` holds.
  template <typename Predicate>
  bool eventually(Predicate predicate, int ms = 3000) {
    for (int i = 0; i < ms / 10; ++i) {
      if (predicate()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return predicate();
  }

  Network net_;
  std::unique_ptr<ApiServer> api_;
  std::thread engine_thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stop_ = false;
  bool paused_ = false;
  bool no_token_ = false;
  uint64_t sa_a_ = 0, sa_b_ = 0;
  std::vector<shared::SaDescriptor> keys_;
};

std::string hex(const uint8_t* bytes, size_t length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

// ---------------------------------------------------------------------------

TEST_F(ApiServerTest, HealthAndReadyNeedNoTokenEverythingElseDoes) {
  EXPECT_EQ(call("GET", "/v1/health", "", false), std::make_pair(200, json{{"status", "ok"}}));
  EXPECT_EQ(call("GET", "/v1/ready", "", false).first, 200);
  auto [status, body] = call("GET", "/v1/ike-sas", "", false);
  EXPECT_EQ(status, 401);
  EXPECT_TRUE(body.contains("error")) << body;

  auto c = client(false);
  c.set_bearer_token_auth("wrong-token");
  auto wrong = c.Get("/v1/stats");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->get_header_value("WWW-Authenticate"), "Bearer realm=\"segw\"");
  EXPECT_NE(wrong->body.find("wrong bearer token"), std::string::npos);
  // A prefix of the token is no token.
  c.set_bearer_token_auth(std::string(kToken).substr(0, 5).c_str());
  EXPECT_EQ(c.Get("/v1/stats")->status, 401);
  // Unknown routes say nothing to a stranger.
  EXPECT_EQ(call("GET", "/v1/secret-route", "", false).first, 401);
  EXPECT_EQ(api_->counters().unauthorized, 4u);
}

TEST_F(ApiServerTest, ListShowsEveryIkeSaAndFilters) {
  auto [status, body] = call("GET", "/v1/ike-sas");
  ASSERT_EQ(status, 200) << body;
  ASSERT_EQ(body["ike_sas"].size(), 2u);

  auto ids = [&](const std::string& query) {
    auto [s, b] = call("GET", "/v1/ike-sas" + query);
    EXPECT_EQ(s, 200) << query << ": " << b;
    std::vector<uint64_t> out;
    for (const auto& sa : b["ike_sas"]) out.push_back(sa["id"].get<uint64_t>());
    return out;
  };
  EXPECT_EQ(ids("?identity=fap-a.example"), std::vector<uint64_t>{sa_a_});
  EXPECT_EQ(ids("?identity=fap-b.example"), std::vector<uint64_t>{sa_b_});
  EXPECT_EQ(ids("?identity=nobody.example"), std::vector<uint64_t>{});
  json inner_b = call("GET", "/v1/ike-sas/" + std::to_string(sa_b_)).second["inner_ipv4"];
  ASSERT_TRUE(inner_b.is_string());
  EXPECT_EQ(ids("?inner=" + inner_b.get<std::string>()), std::vector<uint64_t>{sa_b_});
  EXPECT_EQ(ids("?inner=10.99.99.99"), std::vector<uint64_t>{});
  EXPECT_EQ(ids("?public=198.51.100.20"), std::vector<uint64_t>{sa_b_});
  EXPECT_EQ(ids("?public=192.168.1.10"), std::vector<uint64_t>{sa_a_});
  EXPECT_EQ(ids("?public=192.168.1.10&identity=fap-b.example"), std::vector<uint64_t>{});

  EXPECT_EQ(call("GET", "/v1/ike-sas?inner=not-an-address").first, 400);
  EXPECT_EQ(call("GET", "/v1/ike-sas?public=10.1.2").first, 400);
  auto [bad, error] = call("GET", "/v1/ike-sas?colour=blue");
  EXPECT_EQ(bad, 400);
  EXPECT_NE(error["error"].get<std::string>().find("colour"), std::string::npos);
}

TEST_F(ApiServerTest, ShowHasEveryFieldAndNoKeyMaterial) {
  auto [status, sa] = call("GET", "/v1/ike-sas/" + std::to_string(sa_b_));
  ASSERT_EQ(status, 200) << sa;
  EXPECT_EQ(sa["id"], sa_b_);
  EXPECT_EQ(sa["state"], "established");
  EXPECT_EQ(sa["initiator"], false);
  EXPECT_EQ(sa["spi_i"].get<std::string>().size(), 16u);
  EXPECT_EQ(sa["spi_r"].get<std::string>().size(), 16u);
  EXPECT_EQ(sa["remote"]["address"], "198.51.100.20");  // as seen: the NAT's public side
  EXPECT_EQ(sa["remote"]["port"], 40201);                // floated to 4500 behind the NAT
  EXPECT_EQ(sa["local"]["address"], "198.51.100.1");
  EXPECT_EQ(sa["peer_id"], "fap-b.example");
  EXPECT_EQ(sa["profile"], "fap");
  EXPECT_EQ(sa["nat"]["peer_behind_nat"], true);
  EXPECT_EQ(sa["nat"]["local_behind_nat"], false);
  EXPECT_EQ(sa["udp_encapsulation"], true);
  EXPECT_TRUE(sa["mobike"].is_boolean());
  EXPECT_TRUE(sa["fragmentation"].is_boolean());
  EXPECT_TRUE(sa["inner_ipv4"].is_string());
  EXPECT_TRUE(sa["inner_ipv6"].is_null());
  EXPECT_FALSE(sa["ike_algorithms"].get<std::string>().empty());
  EXPECT_EQ(sa["established_age_s"], 0);
  EXPECT_TRUE(sa["rekey_in_s"].is_number());
  ASSERT_EQ(sa["children"].size(), 1u);
  const json& child = sa["children"][0];
  EXPECT_EQ(child["inbound_spi"].get<std::string>().size(), 8u);
  EXPECT_EQ(child["outbound_spi"].get<std::string>().size(), 8u);
  EXPECT_FALSE(child["algorithm"].get<std::string>().empty());
  EXPECT_TRUE(child["esn"].is_boolean());
  EXPECT_EQ(child["installed"], true);
  EXPECT_EQ(child["local_ts"][0]["start"], "10.0.0.0");
  EXPECT_EQ(child["local_ts"][0]["end"], "10.255.255.255");
  EXPECT_EQ(child["remote_ts"][0]["start"], sa["inner_ipv4"]);

  // Not one key the gateway installed appears in any answer.
  std::string everything = call("GET", "/v1/ike-sas").second.dump() + sa.dump();
  ASSERT_FALSE(keys_.empty());
  for (const auto& installed : keys_) {
    const auto& props = shared::properties(installed.algorithm);
    std::string cipher = hex(installed.cipher_key.data(), props.cipher_key_length);
    ASSERT_GE(cipher.size(), 32u);
    EXPECT_EQ(everything.find(cipher.substr(0, 16)), std::string::npos);
    if (props.integrity_key_length) {
      std::string integrity = hex(installed.integrity_key.data(), props.integrity_key_length);
      EXPECT_EQ(everything.find(integrity.substr(0, 16)), std::string::npos);
    }
  }
  for (const char* forbidden : {"key", "psk", "secret", "sk_"})
    EXPECT_EQ(everything.find(std::string("\"") + forbidden), std::string::npos) << forbidden;

  EXPECT_EQ(call("GET", "/v1/ike-sas/999").first, 404);
  EXPECT_EQ(call("GET", "/v1/ike-sas/abc").first, 400);
  EXPECT_EQ(call("GET", "/v1/ike-sas/99999999999999999999999").first, 400);
}

TEST_F(ApiServerTest, UnknownRoutesAre404WrongMethods405) {
  auto [status, body] = call("GET", "/v1/nothing-here");
  EXPECT_EQ(status, 404);
  EXPECT_TRUE(body["error"].is_string());
  auto c = client();
  auto wrong = c.Put("/v1/ike-sas/1", "{}", "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "GET, DELETE");
  EXPECT_EQ(call("POST", "/v1/stats", "{}").first, 405);
  EXPECT_EQ(call("GET", "/v1/ike-sas/1/rekey").first, 405);
  EXPECT_EQ(call("DELETE", "/v1/ike-sas").first, 405);
}

TEST_F(ApiServerTest, TerminateDeletesTheIkeSaOnBothSides) {
  EXPECT_EQ(call("DELETE", "/v1/ike-sas/999").first, 404);
  EXPECT_EQ(call("DELETE", "/v1/ike-sas/x1").first, 400);
  auto [status, body] = call("DELETE", "/v1/ike-sas/" + std::to_string(sa_a_));
  ASSERT_EQ(status, 202) << body;
  EXPECT_EQ(body["ike_sa"], sa_a_);
  EXPECT_TRUE(eventually([&] { return call("GET", "/v1/ike-sas/" + std::to_string(sa_a_)).first == 404; }));
  auto [list_status, list] = call("GET", "/v1/ike-sas");
  ASSERT_EQ(list["ike_sas"].size(), 1u);
  EXPECT_EQ(list["ike_sas"][0]["id"], sa_b_);
}

TEST_F(ApiServerTest, RekeyIkeAndChild) {
  auto path = "/v1/ike-sas/" + std::to_string(sa_a_) + "/rekey";
  EXPECT_EQ(call("POST", path, R"({"child":"yes"})").first, 400);
  EXPECT_EQ(call("POST", path, R"({"children":true})").first, 400);
  EXPECT_EQ(call("POST", path, R"([true])").first, 400);
  EXPECT_EQ(call("POST", path, "{not json").first, 400);
  EXPECT_EQ(call("POST", "/v1/ike-sas/999/rekey", "").first, 404);

  auto before = call("GET", "/v1/ike-sas/" + std::to_string(sa_a_)).second;
  auto [status, body] = call("POST", path, R"({"child":true})");
  ASSERT_EQ(status, 202) << body;
  EXPECT_EQ(body["rekey"], "child");
  EXPECT_TRUE(eventually([&] {
    auto sa = call("GET", "/v1/ike-sas/" + std::to_string(sa_a_)).second;
    return sa["children"].size() == 1 && sa["children"][0]["inbound_spi"] != before["children"][0]["inbound_spi"];
  }));

  auto [ike_status, ike_body] = call("POST", path, "");
  ASSERT_EQ(ike_status, 202) << ike_body;
  EXPECT_EQ(ike_body["rekey"], "ike");
  // The rekeyed IKE SA has a new id; the old one goes.
  EXPECT_TRUE(eventually([&] { return call("GET", "/v1/ike-sas/" + std::to_string(sa_a_)).first == 404; }));
  auto list = call("GET", "/v1/ike-sas?identity=fap-a.example").second;
  ASSERT_EQ(list["ike_sas"].size(), 1u);
  EXPECT_NE(list["ike_sas"][0]["id"], sa_a_);
  EXPECT_EQ(list["ike_sas"][0]["spi_i"].get<std::string>().size(), 16u);
}

TEST_F(ApiServerTest, MoveValidatesThenMoves) {
  auto path = "/v1/ike-sas/" + std::to_string(sa_b_) + "/move";
  auto remote = [&] { return call("GET", "/v1/ike-sas/" + std::to_string(sa_b_)).second["remote"]; };
  json original = remote();
  struct Bad {
    const char* body;
    const char* mentions;
  };
  for (const Bad& bad : {Bad{R"({"address":"198.51.100.7"})", "port"},
                         Bad{R"({"address":"198.51.100.7","port":0})", "port"},
                         Bad{R"({"address":"198.51.100.7","port":65536})", "port"},
                         Bad{R"({"address":"198.51.100.7","port":-1})", "port"},
                         Bad{R"({"address":"198.51.100.7","port":"4500"})", "port"},
                         Bad{R"({"address":"198.51.100.7","port":4500.5})", "port"},
                         Bad{R"({"address":"not-an-ip","port":4500})", "address"},
                         Bad{R"({"address":42,"port":4500})", "address"},
                         Bad{R"({"port":4500})", "address"},
                         Bad{R"({"address":"198.51.100.7","port":4500,"via":"x"})", "via"},
                         Bad{"", "body"},
                         Bad{"{", "JSON"}}) {
    auto [status, body] = call("POST", path, bad.body);
    EXPECT_EQ(status, 400) << bad.body;
    EXPECT_NE(body["error"].get<std::string>().find(bad.mentions), std::string::npos) << bad.body << " " << body;
  }
  EXPECT_EQ(call("POST", "/v1/ike-sas/999/move", R"({"address":"198.51.100.7","port":4500})").first, 404);
  // The engine refuses an address of the other family: 409, nothing moved.
  auto [refused, why] = call("POST", path, R"({"address":"2001:db8::7","port":4500})");
  EXPECT_EQ(refused, 409) << why;
  EXPECT_EQ(remote(), original);

  auto [status, sa] = call("POST", path, R"({"address":"198.51.100.7","port":4501})");
  ASSERT_EQ(status, 200) << sa;
  EXPECT_EQ(sa["remote"], (json{{"address", "198.51.100.7"}, {"port", 4501}}));
  EXPECT_EQ(remote(), sa["remote"]);
}

TEST_F(ApiServerTest, StatsHasEveryCounterAndTheGauges) {
  auto [status, body] = call("GET", "/v1/stats");
  ASSERT_EQ(status, 200) << body;
#define SEGW_EXPECT_COUNTER(name) EXPECT_TRUE(body.contains(#name)) << #name;
  SEGW_ENGINE_COUNTERS(SEGW_EXPECT_COUNTER)
#undef SEGW_EXPECT_COUNTER
  EXPECT_EQ(body["ike_sas_established"], 2u);
  EXPECT_EQ(body["gauges"]["established"], 2u);
  EXPECT_EQ(body["gauges"]["ike_sas"], 2u);
  EXPECT_TRUE(body["gauges"].contains("half_open"));
  EXPECT_TRUE(body["api"]["requests"].is_number());
}

TEST_F(ApiServerTest, AnEngineThreadThatDoesNotAnswerGives503AndChangesNothing) {
  stop_engine_thread();
  api_->stop();
  api_.reset();
  ApiOptions options;
  options.engine_timeout = std::chrono::milliseconds(200);
  options.listen_address = "127.0.0.1";
  options.port = 0;
  options.bearer_token = kToken;
  options.clock = [this] { return net_.now; };
  auto server = ApiServer::start(options, [this] {
    std::lock_guard lock(mutex_);
    woken_ = true;
    wake_.notify_one();
  });
  ASSERT_TRUE(server.ok()) << server.error();
  api_ = std::move(*server);
  stop_ = false;
  pause_engine(true);
  engine_thread_ = std::thread([this] { engine_loop(); });

  EXPECT_EQ(call("GET", "/v1/health").first, 200);  // no engine needed
  EXPECT_EQ(call("GET", "/v1/ready").first, 503);
  auto [status, body] = call("DELETE", "/v1/ike-sas/" + std::to_string(sa_a_));
  EXPECT_EQ(status, 503);
  EXPECT_NE(body["error"].get<std::string>().find("did not answer"), std::string::npos) << body;
  pause_engine(false);
  EXPECT_EQ(call("GET", "/v1/ready").first, 200);
  // The DELETE that timed out never ran.
  EXPECT_EQ(call("GET", "/v1/ike-sas/" + std::to_string(sa_a_)).first, 200);
  EXPECT_EQ(call("GET", "/v1/ike-sas").second["ike_sas"].size(), 2u);
  EXPECT_GE(api_->counters().engine_timeouts, 2u);
}

// An SSE reader on its own thread: collects "event:" names and data.
class EventReader {
 public:
  EventReader(uint16_t port, const char* token, const std::string& last_event_id = "")
      : client_("127.0.0.1", port) {
    client_.set_read_timeout(10, 0);
    if (token) client_.set_bearer_token_auth(token);
    httplib::Headers headers;
    if (!last_event_id.empty()) headers.emplace("Last-Event-ID", last_event_id);
    thread_ = std::thread([this, headers] {
      auto result = client_.Get(
          "/v1/events", headers,
          [this](const httplib::Response& response) {
            std::lock_guard lock(mutex_);
            status_ = response.status;
            changed_.notify_all();
            return true;
          },
          [this](const char* data, size_t length) {
            if (block_.load()) {
              std::unique_lock lock(mutex_);
              changed_.wait(lock, [this] { return !block_.load() || stop_; });
            }
            std::lock_guard lock(mutex_);
            text_.append(data, length);
            changed_.notify_all();
            return !stop_;
          });
      (void)result;
      std::lock_guard lock(mutex_);
      ended_ = true;
      changed_.notify_all();
    });
  }
  ~EventReader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      block_ = false;
      changed_.notify_all();
    }
    client_.stop();
    thread_.join();
  }
  // Waits for `needle` in the stream (each wake-up searches only what
  // came since the last one: the stream may be megabytes).
  bool wait_for(const std::string& needle, int ms = 5000) {
    std::unique_lock lock(mutex_);
    size_t searched = 0;
    return changed_.wait_for(lock, std::chrono::milliseconds(ms), [&] {
      size_t from = searched > needle.size() ? searched - needle.size() : 0;
      searched = text_.size();
      return text_.find(needle, from) != std::string::npos;
    });
  }
  int status() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(5), [&] { return status_ != 0 || ended_; });
    return status_;
  }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }
  void block(bool blocked) {
    std::lock_guard lock(mutex_);
    block_ = blocked;
    changed_.notify_all();
  }

 private:
  httplib::Client client_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  int status_ = 0;
  bool stop_ = false;
  bool ended_ = false;
  std::atomic<bool> block_{false};
};

TEST_F(ApiServerTest, EventsStreamEngineEventsAsServerSentEvents) {
  {
    EventReader stranger(api_->port(), nullptr);
    EXPECT_EQ(stranger.status(), 401);
  }
  EventReader reader(api_->port(), kToken);
  ASSERT_EQ(reader.status(), 200);
  ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
  ASSERT_TRUE(eventually([&] { return api_->counters().event_clients == 1; }));
  ASSERT_EQ(call("DELETE", "/v1/ike-sas/" + std::to_string(sa_a_)).first, 202);
  ASSERT_TRUE(reader.wait_for("event: deleted\ndata: {")) << reader.text();
  std::string text = reader.text();
  size_t at = text.find("event: deleted\ndata: ");
  size_t end = text.find("\n\n", at);
  ASSERT_NE(end, std::string::npos);
  json event = json::parse(text.substr(at + 21, end - at - 21), nullptr, false);
  ASSERT_FALSE(event.is_discarded()) << text;
  EXPECT_EQ(event["kind"], "deleted");
  EXPECT_EQ(event["ike_sa"], sa_a_);
  EXPECT_TRUE(event["detail"].is_string());
  EXPECT_TRUE(event["remote"]["address"].is_string());
  EXPECT_TRUE(event["remote"]["port"].is_number());
  EXPECT_TRUE(event.contains("inner_ipv4"));
  EXPECT_EQ(event["time"].get<std::string>().size(), 24u);  // 2026-11-24T22:55:35.123Z
}

// The stalled reader below must not be disconnected for taking no bytes
// (the write timeout, 5 s by default) while the test publishes, however
// slow the machine (ThreadSanitizer): that is another behaviour.
class ApiServerPatientWriterTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiOptions options;
    options.write_timeout = std::chrono::seconds(120);
    start(options);
  }
};

TEST_F(ApiServerPatientWriterTest, ASlowEventClientLosesEventsNeverTheEngineThread) {
  stop_engine_thread();  // publish() from this thread now: it owns the engines
  EventReader reader(api_->port(), kToken);
  ASSERT_EQ(reader.status(), 200);
  ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
  reader.block(true);
  auto sa = gateway().engine->ike_sa(sa_a_);
  EngineEvent event;
  event.kind = EngineEventKind::kMoved;
  event.ike_sa = sa_a_;
  event.detail = std::string(24000, 'x');  // fills socket buffers quickly
  constexpr int kEvents = 2000;            // ~ 50 MB: far beyond any socket buffer
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i) api_->publish(event, sa);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(api_->counters().events_published, uint64_t(kEvents));
  EXPECT_GT(api_->counters().events_dropped, 0u);
  reader.block(false);
  // The client is told how many it lost.
  EXPECT_TRUE(reader.wait_for("event: dropped\ndata: {\"dropped\":", 20000))
      << reader.text().size() << " bytes read, ending: "
      << reader.text().substr(reader.text().size() > 300 ? reader.text().size() - 300 : 0);
}

// A client that takes no bytes for the write timeout is let go: a stuck
// client holds no HTTP worker (and no event buffer) for ever.
class ApiServerImpatientWriterTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiOptions options;
    options.write_timeout = std::chrono::milliseconds(300);
    start(options);
  }
};

TEST_F(ApiServerImpatientWriterTest, AStalledEventClientIsDisconnectedAfterTheWriteTimeout) {
  stop_engine_thread();
  EventReader reader(api_->port(), kToken);
  ASSERT_EQ(reader.status(), 200);
  ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
  ASSERT_EQ(api_->counters().event_clients, 1u);
  reader.block(true);
  auto sa = gateway().engine->ike_sa(sa_a_);
  EngineEvent event;
  event.kind = EngineEventKind::kMoved;
  event.ike_sa = sa_a_;
  event.detail = std::string(24000, 'x');
  for (int i = 0; i < 2000 && api_->counters().event_clients != 0; ++i) api_->publish(event, sa);
  EXPECT_TRUE(eventually([&] { return api_->counters().event_clients == 0; }, 10000));
}

// The messages of an event stream in order: id (empty when none), event
// name, data.
struct SseMessage {
  std::string id, event, data;
};
std::vector<SseMessage> sse_messages(const std::string& text) {
  std::vector<SseMessage> out;
  SseMessage message;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) break;  // a partial line: not yet complete
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (line.empty()) {
      if (!message.event.empty()) out.push_back(message);
      message = SseMessage{};
    } else if (line.rfind("id: ", 0) == 0) {
      message.id = line.substr(4);
    } else if (line.rfind("event: ", 0) == 0) {
      message.event = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      message.data = line.substr(6);
    }
  }
  return out;
}

// A moved event whose detail names it ("e1", "e2", ...), published from the
// test thread (the engine thread stopped).
void publish_named(ApiServer& api, Node& gateway, uint64_t ike_sa, const std::string& name) {
  EngineEvent event;
  event.kind = EngineEventKind::kMoved;
  event.ike_sa = ike_sa;
  event.detail = name;
  api.publish(event, gateway.engine->ike_sa(ike_sa));
}

std::vector<std::string> details_of(const std::vector<SseMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) {
    json data = json::parse(m.data, nullptr, false);
    out.push_back(m.event == "dropped" ? "dropped:" + data.dump() : data.value("detail", "?"));
  }
  return out;
}

// A policy function that loses its connection reconnects with the
// Last-Event-ID it saw (as EventSource does) and gets what it missed, in
// order, then the live events; nothing twice.
TEST_F(ApiServerTest, ResumingWithLastEventIdReplaysWhatTheClientMissed) {
  stop_engine_thread();
  std::string second_id;
  {
    EventReader reader(api_->port(), kToken);
    ASSERT_EQ(reader.status(), 200);
    ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
    for (const char* name : {"e1", "e2", "e3"}) publish_named(*api_, gateway(), sa_a_, name);
    ASSERT_TRUE(reader.wait_for("\"detail\":\"e3\""));
    auto messages = sse_messages(reader.text());
    ASSERT_EQ(details_of(messages), (std::vector<std::string>{"e1", "e2", "e3"}));
    // STREAM-SEQUENCE, one stream, consecutive sequences.
    std::string stream = messages[0].id.substr(0, messages[0].id.find('-'));
    uint64_t first = std::stoull(messages[0].id.substr(stream.size() + 1));
    for (size_t i = 0; i < messages.size(); ++i)
      EXPECT_EQ(messages[i].id, stream + "-" + std::to_string(first + i));
    second_id = messages[1].id;
  }
  publish_named(*api_, gateway(), sa_a_, "e4");  // while the client is away
  publish_named(*api_, gateway(), sa_a_, "e5");
  EventReader resumed(api_->port(), kToken, second_id);
  ASSERT_EQ(resumed.status(), 200);
  ASSERT_TRUE(resumed.wait_for("\"detail\":\"e5\"")) << resumed.text();
  publish_named(*api_, gateway(), sa_a_, "e6");  // live again
  ASSERT_TRUE(resumed.wait_for("\"detail\":\"e6\"")) << resumed.text();
  EXPECT_EQ(details_of(sse_messages(resumed.text())), (std::vector<std::string>{"e3", "e4", "e5", "e6"}));

  // An id of an earlier run of the daemon: its events are gone.
  EventReader stranger(api_->port(), kToken, "1-7");
  ASSERT_EQ(stranger.status(), 200);
  ASSERT_TRUE(stranger.wait_for("event: dropped")) << stranger.text();
  EXPECT_EQ(details_of(sse_messages(stranger.text())),
            (std::vector<std::string>{R"(dropped:{"dropped":null,"reason":"restarted"})"}));
  // Not an id, or one this run has not given yet: 400, no stream.
  EXPECT_EQ(EventReader(api_->port(), kToken, "abc").status(), 400);
  EXPECT_EQ(EventReader(api_->port(), kToken, "12-").status(), 400);
  std::string stream = second_id.substr(0, second_id.find('-'));
  EXPECT_EQ(EventReader(api_->port(), kToken, stream + "-99999").status(), 400);
}

// Events are kept only while someone listens and for the resume window
// after: a resume across a time nobody could have wanted them is told how
// many it lost, then gets the rest.
constexpr std::chrono::milliseconds kShortResumeWindow{100};
class ApiServerShortResumeWindowTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiOptions options;
    options.event_resume_window = kShortResumeWindow;
    start(options);
  }
};

TEST_F(ApiServerShortResumeWindowTest, AResumeAcrossEventsNotKeptIsToldHowManyItLost) {
  stop_engine_thread();
  std::string first_id;
  {
    EventReader reader(api_->port(), kToken);
    ASSERT_EQ(reader.status(), 200);
    ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
    publish_named(*api_, gateway(), sa_a_, "e1");
    ASSERT_TRUE(reader.wait_for("\"detail\":\"e1\""));
    first_id = sse_messages(reader.text()).at(0).id;
  }
  // The server learns that a client went when a write to it fails: events
  // until then are still kept (and counted below).
  uint64_t fillers = 0;
  while (api_->counters().event_clients != 0 && fillers < 1000) {
    publish_named(*api_, gateway(), sa_a_, "filler");
    ++fillers;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(api_->counters().event_clients, 0u);
  std::this_thread::sleep_for(kShortResumeWindow * 2);
  publish_named(*api_, gateway(), sa_a_, "e2");  // past the window: not kept
  publish_named(*api_, gateway(), sa_a_, "e3");
  EventReader resumed(api_->port(), kToken, first_id);
  ASSERT_EQ(resumed.status(), 200);
  ASSERT_TRUE(resumed.wait_for("event: dropped")) << resumed.text();
  publish_named(*api_, gateway(), sa_a_, "e4");
  ASSERT_TRUE(resumed.wait_for("\"detail\":\"e4\"")) << resumed.text();
  EXPECT_EQ(details_of(sse_messages(resumed.text())),
            (std::vector<std::string>{
                "dropped:{\"dropped\":" + std::to_string(fillers + 2) + ",\"reason\":\"not_kept\"}", "e4"}));
}

class ApiServerShortHistoryTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiOptions options;
    options.event_history = 2;
    start(options);
  }
};

TEST_F(ApiServerShortHistoryTest, AResumeOlderThanTheHistoryGetsTheCountThenTheKeptOnes) {
  stop_engine_thread();
  std::string first_id;
  {
    EventReader reader(api_->port(), kToken);
    ASSERT_EQ(reader.status(), 200);
    ASSERT_TRUE(reader.wait_for(": segw-controlplane events"));
    for (const char* name : {"e1", "e2", "e3", "e4", "e5"}) publish_named(*api_, gateway(), sa_a_, name);
    ASSERT_TRUE(reader.wait_for("\"detail\":\"e5\""));
    first_id = sse_messages(reader.text()).at(0).id;
  }
  EventReader resumed(api_->port(), kToken, first_id);
  ASSERT_EQ(resumed.status(), 200);
  ASSERT_TRUE(resumed.wait_for("\"detail\":\"e5\"")) << resumed.text();
  EXPECT_EQ(details_of(sse_messages(resumed.text())),
            (std::vector<std::string>{R"(dropped:{"dropped":2,"reason":"not_kept"})", "e4", "e5"}));
}

TEST(ApiServerStartTest, RefusesNoTokenOffLoopbackAndTellsTheEphemeralPort) {
  ApiOptions options;
  options.listen_address = "0.0.0.0";
  options.port = 0;
  auto refused = ApiServer::start(options, [] {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("loopback"), std::string::npos) << refused.error();
  options.listen_address = "localhost";
  EXPECT_FALSE(ApiServer::start(options, [] {}).ok());  // an address, not a name
  options.listen_address = "127.0.0.1";
  auto started = ApiServer::start(options, [] {});
  ASSERT_TRUE(started.ok()) << started.error();
  EXPECT_NE((*started)->port(), 0);
  EXPECT_FALSE((*started)->tls());
  // Without a token: no authentication (loopback).
  httplib::Client c("127.0.0.1", (*started)->port());
  auto result = c.Get("/v1/nothing");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  // The same port twice: an error, not a crash.
  options.port = (*started)->port();
  auto second = ApiServer::start(options, [] {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find("cannot listen"), std::string::npos) << second.error();
}

TEST(ApiServerStartTest, ServesHttpsWithTheConfiguredCertificate) {
  config::test::TempDirectory dir;
  config::test::make_pki(dir, "IP:127.0.0.1");
  ApiOptions options;
  options.port = 0;
  options.bearer_token = kToken;
  options.tls_certificate_file = dir.file("certs/segw.pem");
  options.tls_private_key_file = dir.file("certs/other.key");  // not its key
  EXPECT_FALSE(ApiServer::start(options, [] {}).ok());
  options.tls_private_key_file = dir.file("certs/segw.key");
  auto started = ApiServer::start(options, [] {});
  ASSERT_TRUE(started.ok()) << started.error();
  EXPECT_TRUE((*started)->tls());
  httplib::SSLClient verified("127.0.0.1", (*started)->port());
  verified.set_ca_cert_path(dir.file("certs/ca.pem").c_str());
  verified.enable_server_certificate_verification(true);
  auto health = verified.Get("/v1/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  httplib::Client plain("127.0.0.1", (*started)->port());
  plain.set_read_timeout(2, 0);
  auto refused = plain.Get("/v1/health");
  EXPECT_TRUE(!refused || refused->status != 200);
}

TEST(JsonViewsTest, SpisAreFixedWidthHex) {
  EXPECT_EQ(spi_hex(0x1, 8), "00000001");
  EXPECT_EQ(spi_hex(0xdeadbeef, 8), "deadbeef");
  EXPECT_EQ(spi_hex(0x0123456789abcdefull, 16), "0123456789abcdef");
  EXPECT_EQ(spi_hex(0, 16), "0000000000000000");
  EXPECT_EQ(rfc3339_utc(1'700'000'000'123ull), "2023-11-14T22:13:20.123Z");
}

// ---------------------------------------------------------------------------
// [controlplane] api_* keys.

const char* kRest =
    "[secret s]\nid = %any\npsk = 0123456789abcdef0123\n"
    "[profile p]\nlocal_id = fqdn:gw.example\n";

TEST(ApiConfigTest, DefaultsAreOnLoopback8443WithoutToken) {
  auto config = config::parse_controlplane_config(kRest, "test.conf");
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_TRUE(config->daemon.api);
  EXPECT_EQ(config->daemon.api_listen.to_string(), "127.0.0.1");
  EXPECT_EQ(config->daemon.api_port, 8443);
  EXPECT_TRUE(config->daemon.api_token.empty());
  EXPECT_TRUE(config->daemon.api_tls_certificate.empty());
  auto embedded = config::parse_controlplane_config(config::embedded_default_config(), "(embedded default)");
  ASSERT_TRUE(embedded.ok()) << embedded.error();
  EXPECT_TRUE(embedded->daemon.api);
}

TEST(ApiConfigTest, EveryKeyAndEveryError) {
  config::test::TempDirectory dir;
  config::test::make_pki(dir, "IP:127.0.0.1");
  dir.write("token", "  s3cret-token\n");
  dir.write("empty-token", "\n\n");
  dir.write("spaced-token", "two words\n");
  auto load = [&](const std::string& daemon) {
    dir.write("test.conf", "[controlplane]\n" + daemon + kRest);
    return config::load_controlplane_config(dir.file("test.conf"));
  };
  auto ok = load(
      "api = on\napi_listen = 192.0.2.1\napi_port = 9443\napi_token_file = token\n"
      "api_tls_certificate = certs/segw.pem\napi_tls_private_key = certs/segw.key\n");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->daemon.api_listen.to_string(), "192.0.2.1");
  EXPECT_EQ(ok->daemon.api_port, 9443);
  EXPECT_EQ(ok->daemon.api_token, "s3cret-token");
  EXPECT_EQ(ok->daemon.api_token_file, dir.file("token"));
  EXPECT_EQ(ok->daemon.api_tls_certificate, dir.file("certs/segw.pem"));
  EXPECT_FALSE(load("api = off\n")->daemon.api);
  EXPECT_TRUE(load("api_listen = ::1\n").ok());
  EXPECT_TRUE(load("api = off\napi_listen = 192.0.2.1\n").ok());  // off: no token needed

  const std::string conf = dir.file("test.conf");
  struct Bad {
    const char* daemon;
    std::string error;
  };
  for (const Bad& bad : {
           Bad{"api = maybe\n", conf + ":2: [controlplane] api: expected yes/no"},
           Bad{"api_listen = gw.example\n", conf + ":2: [controlplane] api_listen: expected an IPv4 or IPv6"},
           Bad{"api_port = 0\n", conf + ":2: [controlplane] api_port:"},
           Bad{"api_port = 65536\n", conf + ":2: [controlplane] api_port:"},
           Bad{"api_token_file = missing\n", conf + ":2: [controlplane] api_token_file: cannot open '" +
                                                 dir.file("missing") + "'"},
           Bad{"api_token_file = empty-token\n", conf + ":2: [controlplane] api_token_file: '"},
           Bad{"api_token_file = spaced-token\n", conf + ":2: [controlplane] api_token_file: '"},
           Bad{"api_listen = 192.0.2.1\n", conf + ":2: [controlplane] api_listen: the API on a non-loopback"},
           Bad{"api_tls_certificate = certs/segw.pem\n",
               conf + ":2: [controlplane] api_tls_certificate: api_tls_certificate and api_tls_private_key go"},
           Bad{"api_tls_certificate = certs/garbage.pem\napi_tls_private_key = certs/segw.key\n",
               conf + ":2: [controlplane] api_tls_certificate: cannot load certificate"},
       }) {
    auto loaded = load(bad.daemon);
    ASSERT_FALSE(loaded.ok()) << bad.daemon;
    EXPECT_EQ(loaded.error().rfind(bad.error, 0), 0u) << bad.daemon << "\n  got:      " << loaded.error()
                                                      << "\n  expected: " << bad.error << "...";
    EXPECT_EQ(loaded.error().find("s3cret"), std::string::npos);
    EXPECT_EQ(loaded.error().find("two words"), std::string::npos);
  }
}

}  // namespace
}  // namespace segw::cp::api
