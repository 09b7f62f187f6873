// Seed corpora from real exchanges between the fuzz gateway and a device
// (seed_writer.h). The network is the one of
// tests/unit/controlplane/engine/engine_test.cc cut down to two nodes.
#include "tests/fuzz/seed_writer.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/recording_sa_installer.h"
#include "controlplane/ike/codec/ike_constants.h"
#include "controlplane/ike/engine/engine.h"
#include "tests/fuzz/fuzz_gateway.h"

namespace segw::fuzz {
namespace {

using cp::dp_link::IkeDatagram;
using shared::IpAddress;
using shared::make_error;
using shared::channel::OuterEndpoint;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr int kGatewayNode = 0;
constexpr int kDeviceNode = 1;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// One conversation: how the device is configured and what it does once up.
struct Scenario {
  const char* name;
  const char* device_controlplane;  // extra [controlplane] lines
  const char* device_profile;       // extra [profile device] lines
  bool behind_nat = false;
  bool request_ip6 = false;
  bool request_nat_info = false;
  bool wrong_psk = false;
  bool rekey_child = false;
  bool rekey_ike = false;
  bool terminate = false;
};

constexpr Scenario kScenarios[] = {
    {"psk", "", "", false, false, false, false, true, true, true},
    {"nat", "", "", true, true, true, false, true, false, true},
    {"modp", "", "ike_proposals = aes128-sha256-modp2048\n", false, true, false, false, false,
     false, true},
    {"ecp384", "", "ike_proposals = aes256gcm16-prfsha384-ecp384\n", false, false, false, false,
     true, false, false},
    {"frag", "fragment_size = 576\n", "", true, true, true, false, false, false, false},
};

// The device with the wrong PSK: the gateway answers IKE_AUTH with
// AUTHENTICATION_FAILED. Left out of the corpora by default because the
// initiator engine then reads its freed IKE SA (tests/fuzz/crashes/README.md);
// SEGW_FUZZ_SEED_BADPSK=1 adds it, which reproduces that under ASan.
constexpr Scenario kBadPskScenario = {"badpsk", "", "", false, false, false, true, false, false, false};

class Network;

class QueueTransport final : public cp::dp_link::IkeTransport {
 public:
  QueueTransport(Network& network, int node) : network_(network), node_(node) {}
  shared::Status send(const IkeDatagram& datagram) override;
  void set_receiver(cp::dp_link::IkeReceiver) override {}

 private:
  Network& network_;
  int node_;
};

struct Node {
  IpAddress address;
  cp::config::ControlPlaneConfig config;
  cp::dp_link::RecordingSaInstaller installer;
  std::unique_ptr<QueueTransport> transport;
  std::unique_ptr<cp::ike::Engine> engine;
};

struct Captured {
  int from = 0;
  IkeDatagram sent;
};

// Node 0 is the gateway; node 1 the device, behind a NAT (203.0.113.20,
// ports 40000/40001) or not.
class Network {
 public:
  uint64_t now = 1000 * kSecond;
  bool nat = false;
  std::deque<Captured> in_flight;
  std::vector<Captured> delivered;
  Node nodes[2];

  shared::Status add(int index, const IpAddress& address, const std::string& text) {
    Node& node = nodes[index];
    node.address = address;
    auto parsed = cp::config::parse_controlplane_config(text, "seed.conf");
    if (!parsed.ok()) return make_error("config: " + parsed.error());
    node.config = std::move(*parsed);
    node.transport = std::make_unique<QueueTransport>(*this, index);
    auto engine = cp::ike::Engine::create(node.config, cp::ike::EngineOptions::from(node.config.daemon),
                                          *node.transport, node.installer, [this] { return now; });
    if (!engine.ok()) return make_error("engine: " + engine.error());
    node.engine = std::move(*engine);
    return {};
  }

  OuterEndpoint device_public(uint16_t port) const {
    if (!nat) return {nodes[kDeviceNode].address, port};
    return {ip("203.0.113.20"), uint16_t(port == 4500 ? 40001 : 40000)};
  }

  void run() {
    for (int step = 0; step < 10000; ++step) {
      for (auto& node : nodes) node.engine->poll();
      if (in_flight.empty()) {
        for (auto& node : nodes) node.engine->poll();
        if (in_flight.empty()) return;
      }
      Captured c = std::move(in_flight.front());
      in_flight.pop_front();
      IkeDatagram received = c.sent;
      received.arrival_time_ns = now;
      if (c.from == kDeviceNode) {
        received.remote = device_public(c.sent.local.port);
        received.local = {nodes[kGatewayNode].address, c.sent.remote.port};
        delivered.push_back(c);
        nodes[kGatewayNode].engine->handle_datagram(received);
      } else {
        bool found = false;
        for (uint16_t port : {uint16_t(500), uint16_t(4500)}) {
          if (device_public(port) == c.sent.remote) {
            received.local = {nodes[kDeviceNode].address, port};
            found = true;
          }
        }
        if (!found) continue;
        received.remote = c.sent.local;
        delivered.push_back(c);
        nodes[kDeviceNode].engine->handle_datagram(received);
      }
    }
  }
};

shared::Status QueueTransport::send(const IkeDatagram& datagram) {
  network_.in_flight.push_back({node_, datagram});
  return {};
}

std::string device_config(const Scenario& s, const IpAddress& address) {
  const char* psk = s.wrong_psk ? "0xffeeddccbbaa99887766554433221100ffeeddccbbaa9988" : kPsk;
  return "[controlplane]\ntransport = udp\nlisten = " + address.to_string() + "\n" +
         s.device_controlplane + "\n[secret default]\nid = %any\npsk = " + psk +
         "\n\n[profile device]\nremote_id = fqdn:segw.example\nlocal_id = fqdn:dev1.fap.example\n"
         "local_auth = psk\nremote_auth = psk\n" + s.device_profile;
}

uint64_t spi_r_of(const std::vector<uint8_t>& m) {
  uint64_t spi = 0;
  for (size_t i = 8; i < 16 && i < m.size(); ++i) spi = spi << 8 | m[i];
  return spi;
}

std::string exchange_name(const std::vector<uint8_t>& m) {
  if (m.size() < cp::ike::kIkeHeaderSize) return "short";
  switch (static_cast<cp::ike::ExchangeType>(m[18])) {
    case cp::ike::ExchangeType::kIkeSaInit: return "init";
    case cp::ike::ExchangeType::kIkeAuth: return "auth";
    case cp::ike::ExchangeType::kCreateChildSa: return "child";
    case cp::ike::ExchangeType::kInformational: return "info";
  }
  return "other";
}

shared::Status write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) return make_error("cannot write " + path.string());
  return {};
}

shared::Result<std::vector<Captured>> converse(const Scenario& s) {
  Network net;
  net.nat = s.behind_nat;
  if (auto st = net.add(kGatewayNode, ip(kGatewayAddress), gateway_config_text()); !st.ok())
    return make_error(std::string(s.name) + ": gateway " + st.error());
  IpAddress device = ip(s.behind_nat ? "192.168.1.10" : "203.0.113.10");
  if (auto st = net.add(kDeviceNode, device, device_config(s, device)); !st.ok())
    return make_error(std::string(s.name) + ": device " + st.error());
  cp::ike::Engine& engine = *net.nodes[kDeviceNode].engine;

  cp::ike::InitiateRequest request;
  request.profile = "device";
  request.local = {device, 500};
  request.remote = {ip(kGatewayAddress), 500};
  request.request_ip6 = s.request_ip6;
  request.request_nat_info = s.request_nat_info;
  auto id = engine.initiate(request);
  if (!id.ok()) return make_error(std::string(s.name) + ": initiate: " + id.error());
  net.run();
  auto info = engine.ike_sa(*id);
  bool up = info && info->state == cp::ike::IkeSaState::kEstablished;
  if (up == s.wrong_psk)
    return make_error(std::string(s.name) + ": IKE SA " + (up ? "came up" : "did not come up"));
  uint64_t current = *id;
  if (s.rekey_child) {
    (void)engine.rekey_child(current);
    net.run();
  }
  if (s.rekey_ike) {
    (void)engine.rekey_ike(current);
    net.run();
    auto sas = engine.ike_sas();
    if (!sas.empty()) current = sas.back().id;
  }
  if (s.terminate) {
    (void)engine.terminate(current);
    net.run();
  }
  return std::move(net.delivered);
}

}  // namespace

shared::Result<size_t> write_seed_corpora(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path message_dir = fs::path(dir) / "message";
  const fs::path engine_dir = fs::path(dir) / "engine";
  std::error_code ec;
  fs::create_directories(message_dir, ec);
  fs::create_directories(engine_dir, ec);
  if (ec) return make_error("cannot create " + dir + ": " + ec.message());

  std::vector<Scenario> scenarios(std::begin(kScenarios), std::end(kScenarios));
  if (std::getenv("SEGW_FUZZ_SEED_BADPSK") != nullptr) scenarios.push_back(kBadPskScenario);
  size_t written = 0;
  for (const Scenario& s : scenarios) {
    auto captured = converse(s);
    if (!captured.ok()) return make_error(captured.error());
    std::vector<uint8_t> sequence;
    int n = 0;
    for (const Captured& c : *captured) {
      const auto& m = c.sent.message;
      const bool from_device = c.from == kDeviceNode;
      char name[96];
      std::snprintf(name, sizeof name, "%s-%02d-%s-%s.bin", s.name, n++, exchange_name(m).c_str(),
                    from_device ? "device" : "gateway");
      if (auto st = write_file(message_dir / name, m); !st.ok()) return make_error(st.error());
      ++written;
      if (!from_device) continue;
      // Alone: the first IKE_SA_INIT (phase 1 of the engine fuzzer).
      if (sequence.empty()) {
        if (auto st = write_file(engine_dir / (std::string(s.name) + "-init.bin"), m); !st.ok())
          return make_error(st.error());
        ++written;
      }
      if (m.size() > 0xffff) continue;
      uint8_t flags = 0;
      if (c.sent.remote.port == 4500) flags |= kRecordNatT;
      if (spi_r_of(m) != 0) flags |= kRecordPatchSpiR;
      sequence.push_back(flags);
      sequence.push_back(uint8_t(m.size() >> 8));
      sequence.push_back(uint8_t(m.size()));
      sequence.insert(sequence.end(), m.begin(), m.end());
    }
    if (auto st = write_file(engine_dir / (std::string(s.name) + "-sequence.bin"), sequence); !st.ok())
      return make_error(st.error());
    ++written;
  }
  return written;
}

}  // namespace segw::fuzz
