// Whole IKEv2 exchanges between engines in one process: a responder (the
// gateway) and one or more initiators (devices), joined by an in-memory
// network that can put a NAT between them, lose datagrams, repeat them or
// corrupt them; a fake clock drives retransmissions, liveness and rekeys.
// Child SAs land in RecordingSaInstallers, whose models are compared across
// the two sides (same SPIs, same keys, crossed directions).
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/recording_sa_installer.h"
#include "controlplane/ike/engine/engine.h"
#include "tests/unit/controlplane/config/test_pki.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::ike {
namespace {

using dp_link::IkeDatagram;
using dp_link::RecordingSaInstaller;
using shared::IpAddress;
using shared::SaDirection;

constexpr uint64_t kSecond = 1'000'000'000;
const char* kPsk = "0x00112233445566778899aabbccddeeff0011223344556677";

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

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
  IpAddress address;            // its own (private for a device behind the NAT)
  config::ControlPlaneConfig config;
  RecordingSaInstaller installer;
  std::unique_ptr<LoopTransport> transport;
  std::unique_ptr<Engine> engine;
  std::vector<EngineEvent> events;
  bool behind_nat = false;

  size_t count(EngineEventKind kind) const {
    size_t n = 0;
    for (const auto& e : events) n += e.kind == kind;
    return n;
  }
};

// Node 0 is the gateway at 198.51.100.1; the NAT (when a node is behind it)
// maps node n's private address:port to 198.51.100.20:(40000 + 100n + 0|1).
class Network {
 public:
  uint64_t now = 1000 * kSecond;
  std::deque<std::pair<int, IkeDatagram>> in_flight;
  std::vector<std::unique_ptr<Node>> nodes;
  // Return true to drop the datagram (sender node, datagram as sent).
  std::function<bool(int, const IkeDatagram&)> drop;
  size_t delivered = 0;

  static constexpr const char* kNatPublic = "198.51.100.20";

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
    auto engine = Engine::create(node->config, EngineOptions::from(node->config.daemon), *node->transport,
                                 node->installer,
                                 [this] { return now; });
    EXPECT_TRUE(engine.ok()) << engine.error();
    node->engine = std::move(*engine);
    Node* raw = node.get();
    node->engine->set_event_handler([raw](const EngineEvent& e) { raw->events.push_back(e); });
    nodes.push_back(std::move(node));
    return *raw;
  }

  shared::channel::OuterEndpoint public_of(int node, uint16_t port) const {
    if (!nodes[node]->behind_nat) return {nodes[node]->address, port};
    return {ip(kNatPublic), uint16_t(40000 + 100 * node + (port == 4500 ? 1 : 0))};
  }

  // Delivers everything in flight (and what that causes) until quiet.
  void run(int max_steps = 10000) {
    for (int step = 0; step < max_steps; ++step) {
      for (auto& node : nodes) node->engine->poll();
      if (in_flight.empty()) {
        for (auto& node : nodes) node->engine->poll();
        if (in_flight.empty()) return;
      }
      auto [from, sent] = std::move(in_flight.front());
      in_flight.pop_front();
      if (drop && drop(from, sent)) continue;
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
      if (to < 0) continue;  // nobody there
      ++delivered;
      nodes[to]->engine->handle_datagram(received);
    }
    FAIL() << "network did not settle";
  }

  // Advances the clock in steps, running timers and traffic each time.
  void advance(uint64_t duration, uint64_t step = kSecond / 10) {
    for (uint64_t t = 0; t < duration; t += step) {
      now += step;
      run();
    }
  }
};

shared::Status LoopTransport::send(const IkeDatagram& datagram) {
  network_.in_flight.emplace_back(node_, datagram);
  return {};
}

std::string gateway_config(const std::string& extra_profile = "", const std::string& extra = "") {
  return std::string(R"(
[controlplane]
transport = udp
listen = 198.51.100.1
)") + extra + R"(
[pool v4]
range = 10.64.0.0/24

[pool v6]
range = fd00:64::/120
lease_prefix_length = 128

[secret default]
id = %any
psk = )" + kPsk + R"(

[profile fap]
remote_id = %any
local_id = fqdn:segw.example
local_auth = psk
remote_auth = psk
pools = v4, v6
dns = 192.0.2.53, 2001:db8::53
local_subnets = 10.0.0.0/8, 2001:db8:c::/48
)" + extra_profile;
}

std::string device_config(const std::string& name, const std::string& extra_profile = "",
                          const std::string& psk = kPsk) {
  return R"(
[controlplane]
transport = udp
listen = 192.168.1.10

[secret default]
id = %any
psk = )" + psk + R"(

[profile device]
remote_id = fqdn:segw.example
local_id = fqdn:)" + name + R"(
local_auth = psk
remote_auth = psk
)" + extra_profile;
}

InitiateRequest to_gateway(Network& net, int node, bool ip6 = false, bool nat_info = false) {
  InitiateRequest request;
  request.profile = "device";
  request.local = {net.nodes[node]->address, 500};
  request.remote = {ip("198.51.100.1"), 500};
  request.request_ip4 = true;
  request.request_ip6 = ip6;
  request.request_nat_info = nat_info;
  return request;
}

const shared::SaDescriptor* installed(const RecordingSaInstaller& installer, uint32_t spi,
                                      SaDirection direction, std::vector<shared::SaDescriptor>& keep) {
  keep = installer.installed();
  for (const auto& sa : keep)
    if (sa.spi == spi && sa.direction == direction) return &sa;
  return nullptr;
}

// Both ends agree on every child: the gateway's inbound SA is the device's
// outbound one (same SPI, algorithm and keys) and the other way round.
void expect_matching_children(const Node& gateway, const Node& device, uint64_t device_sa) {
  auto info = device.engine->ike_sa(device_sa);
  ASSERT_TRUE(info);
  ASSERT_FALSE(info->children.empty());
  for (const auto& child : info->children) {
    std::vector<shared::SaDescriptor> a, b, c, d;
    const auto* device_out = installed(device.installer, child.outbound_spi, SaDirection::kOutbound, a);
    const auto* gateway_in = installed(gateway.installer, child.outbound_spi, SaDirection::kInbound, b);
    const auto* device_in = installed(device.installer, child.inbound_spi, SaDirection::kInbound, c);
    const auto* gateway_out = installed(gateway.installer, child.inbound_spi, SaDirection::kOutbound, d);
    ASSERT_TRUE(device_out && gateway_in && device_in && gateway_out) << "child " << child.inbound_spi;
    EXPECT_EQ(device_out->algorithm, gateway_in->algorithm);
    EXPECT_EQ(device_out->cipher_key, gateway_in->cipher_key);
    EXPECT_EQ(device_out->salt, gateway_in->salt);
    EXPECT_EQ(device_out->integrity_key, gateway_in->integrity_key);
    EXPECT_EQ(device_in->cipher_key, gateway_out->cipher_key);
    EXPECT_EQ(device_in->integrity_key, gateway_out->integrity_key);
    EXPECT_NE(device_in->cipher_key, device_out->cipher_key);
    EXPECT_EQ(device_out->esn, gateway_in->esn);
  }
}

uint64_t only_sa(const Node& node) {
  auto sas = node.engine->ike_sas();
  EXPECT_EQ(sas.size(), 1u);
  return sas.empty() ? 0 : sas.front().id;
}

TEST(EngineTest, PskWithoutNatEstablishesWithAddressesAndMatchingChildSas) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1, true));
  ASSERT_TRUE(id.ok()) << id.error();
  net.run();
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state, IkeSaState::kEstablished);
  EXPECT_EQ(d->peer_id, "segw.example");
  ASSERT_TRUE(d->internal_ip4);
  EXPECT_EQ(d->internal_ip4->to_string(), "10.64.0.1");
  ASSERT_TRUE(d->internal_ip6);
  EXPECT_FALSE(d->udp_encapsulation);
  EXPECT_FALSE(d->peer_behind_nat);
  auto g = gateway.engine->ike_sa(only_sa(gateway));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->state, IkeSaState::kEstablished);
  EXPECT_EQ(g->peer_id, "dev1.fap.example");
  EXPECT_EQ(g->profile, "fap");
  EXPECT_EQ(g->internal_ip4, d->internal_ip4);
  EXPECT_EQ(g->internal_ip6, d->internal_ip6);
  EXPECT_FALSE(g->peer_behind_nat);
  ASSERT_EQ(g->children.size(), 1u);
  // The device's side is exactly its leases; ours is what it asked (any)
  // narrowed to the profile's subnets.
  const auto& child = g->children.front();
  ASSERT_EQ(child.remote_ts.size(), 2u);
  EXPECT_EQ(child.remote_ts[0].start, *d->internal_ip4);
  EXPECT_EQ(child.remote_ts[0].end, *d->internal_ip4);
  ASSERT_EQ(child.local_ts.size(), 2u);
  EXPECT_EQ(child.local_ts[0].to_string(), "10.0.0.0-10.255.255.255");
  expect_matching_children(gateway, device, *id);
  // Raw ESP: no NAT between them.
  std::vector<shared::SaDescriptor> keep;
  const auto* out = installed(gateway.installer, child.outbound_spi, SaDirection::kOutbound, keep);
  ASSERT_TRUE(out);
  EXPECT_FALSE(out->path.udp_encapsulation);
  EXPECT_EQ(out->path.remote, ip("203.0.113.10"));
  EXPECT_EQ(out->path.local, ip("198.51.100.1"));
  EXPECT_EQ(gateway.engine->stats().ike_sas_established, 1u);
  EXPECT_EQ(gateway.count(EngineEventKind::kEstablished), 1u);
}

TEST(EngineTest, BehindNatFloatsTo4500EncapsulatesAndReportsThePublicEndpoint) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
  auto id = device.engine->initiate(to_gateway(net, 1, false, true));
  ASSERT_TRUE(id.ok());
  net.run();
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d && d->state == IkeSaState::kEstablished);
  EXPECT_TRUE(d->local_behind_nat);
  EXPECT_TRUE(d->udp_encapsulation);
  EXPECT_EQ(d->local.port, 4500);
  // EXTERNAL_SOURCE_IP4_NAT_INFO: what the gateway sees of us.
  ASSERT_TRUE(d->nat_info);
  EXPECT_EQ(d->nat_info->address, ip(Network::kNatPublic));
  EXPECT_EQ(d->nat_info->port, net.public_of(1, 4500).port);
  auto g = gateway.engine->ike_sa(only_sa(gateway));
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->peer_behind_nat);
  EXPECT_FALSE(g->local_behind_nat);
  EXPECT_EQ(g->remote, net.public_of(1, 4500));
  std::vector<shared::SaDescriptor> keep;
  const auto* out = installed(gateway.installer, g->children.front().outbound_spi, SaDirection::kOutbound, keep);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->path.udp_encapsulation);
  EXPECT_EQ(out->path.remote, ip(Network::kNatPublic));
  EXPECT_EQ(out->path.remote_port, net.public_of(1, 4500).port);
  EXPECT_EQ(out->path.local_port, 4500);
  expect_matching_children(gateway, device, *id);
}

TEST(EngineTest, NatInfoIsNotAnsweredWithoutANat) {
  Network net;
  net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1, false, true));
  net.run();
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d && d->state == IkeSaState::kEstablished);
  EXPECT_FALSE(d->nat_info);
}

TEST(EngineTest, ForcedEncapsulationWithoutNat) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("force_encapsulation = yes\n"));
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d && d->state == IkeSaState::kEstablished);
  EXPECT_TRUE(d->udp_encapsulation);
  auto g = gateway.engine->ike_sa(only_sa(gateway));
  EXPECT_TRUE(g->udp_encapsulation);
  std::vector<shared::SaDescriptor> keep;
  const auto* out = installed(gateway.installer, g->children.front().outbound_spi, SaDirection::kOutbound, keep);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->path.udp_encapsulation);
}

TEST(EngineTest, WrongPskFailsBothSidesAndLeavesNothingInstalled) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"),
                         device_config("dev1.fap.example", "", "0xffffffffffffffffffffffffffffffff01"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  ASSERT_TRUE(id.ok());
  net.run();
  EXPECT_FALSE(device.engine->ike_sa(*id));
  EXPECT_TRUE(gateway.engine->ike_sas().empty());
  EXPECT_EQ(gateway.engine->stats().auth_failed, 1u);
  EXPECT_EQ(device.engine->stats().auth_failed, 1u);
  EXPECT_TRUE(gateway.installer.installed().empty());
  EXPECT_TRUE(device.installer.installed().empty());
  EXPECT_EQ(device.count(EngineEventKind::kFailed), 1u);
  // Nothing leaked: the next device gets the first address.
  Node& good = net.add("device2", ip("203.0.113.11"), device_config("dev2.fap.example"));
  auto second = good.engine->initiate(to_gateway(net, 2));
  net.run();
  auto info = good.engine->ike_sa(*second);
  ASSERT_TRUE(info && info->internal_ip4);
  EXPECT_EQ(info->internal_ip4->to_string(), "10.64.0.1");
}

TEST(EngineTest, ManyDevicesBehindOneNatGetDistinctAddressesAndSpis) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  std::vector<uint64_t> ids;
  for (int n = 1; n <= 20; ++n) {
    Node& device = net.add("device" + std::to_string(n), ip("192.168.1.10"),
                           device_config("dev" + std::to_string(n) + ".fap.example"), true);
    auto id = device.engine->initiate(to_gateway(net, n));
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  net.run();
  std::set<IpAddress> addresses;
  std::set<uint32_t> spis;
  for (const auto& info : gateway.engine->ike_sas()) {
    EXPECT_EQ(info.state, IkeSaState::kEstablished);
    ASSERT_TRUE(info.internal_ip4);
    addresses.insert(*info.internal_ip4);
    for (const auto& child : info.children) spis.insert(child.inbound_spi);
  }
  EXPECT_EQ(addresses.size(), 20u);
  EXPECT_EQ(spis.size(), 20u);
  EXPECT_EQ(gateway.installer.installed().size(), 40u);
  for (int n = 1; n <= 20; ++n) expect_matching_children(gateway, *net.nodes[n], ids[n - 1]);
}

TEST(EngineTest, ExhaustedPoolAnswersInternalAddressFailureAndInstallsNothing) {
  Network net;
  std::string config = gateway_config();
  config.replace(config.find("range = 10.64.0.0/24"), 21, "range = 10.64.0.5-10.64.0.5");
  Node& gateway = net.add("gateway", ip("198.51.100.1"), config);
  Node& first = net.add("device1", ip("203.0.113.10"), device_config("dev1.fap.example"));
  Node& second = net.add("device2", ip("203.0.113.11"), device_config("dev2.fap.example"));
  auto a = first.engine->initiate(to_gateway(net, 1));
  net.run();
  auto b = second.engine->initiate(to_gateway(net, 2));
  net.run();
  auto first_info = first.engine->ike_sa(*a);
  ASSERT_TRUE(first_info && first_info->internal_ip4);
  EXPECT_EQ(first_info->internal_ip4->to_string(), "10.64.0.5");
  auto second_info = second.engine->ike_sa(*b);
  ASSERT_TRUE(second_info);
  EXPECT_FALSE(second_info->internal_ip4);
  EXPECT_TRUE(second_info->children.empty());
  EXPECT_EQ(gateway.engine->stats().address_failures, 1u);
  EXPECT_EQ(gateway.installer.installed().size(), 2u);  // the first device's pair only
  // The first device leaves: its address is free for the next one.
  ASSERT_TRUE(first.engine->terminate(*a).ok());
  net.run();
  EXPECT_EQ(gateway.installer.installed().size(), 0u);
  Node& third = net.add("device3", ip("203.0.113.12"), device_config("dev3.fap.example"));
  auto c = third.engine->initiate(to_gateway(net, 3));
  net.run();
  auto third_info = third.engine->ike_sa(*c);
  ASSERT_TRUE(third_info && third_info->internal_ip4);
  EXPECT_EQ(third_info->internal_ip4->to_string(), "10.64.0.5");
}

TEST(EngineTest, TerminateDeletesEverythingOnBothSides) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  ASSERT_EQ(gateway.installer.installed().size(), 2u);
  // From the gateway this time.
  ASSERT_TRUE(gateway.engine->terminate(only_sa(gateway)).ok());
  net.run();
  EXPECT_TRUE(gateway.engine->ike_sas().empty());
  EXPECT_FALSE(device.engine->ike_sa(*id));
  EXPECT_TRUE(gateway.installer.installed().empty());
  EXPECT_TRUE(device.installer.installed().empty());
  EXPECT_EQ(gateway.count(EngineEventKind::kDeleted), 1u);
  EXPECT_EQ(device.count(EngineEventKind::kDeleted), 1u);
}

TEST(EngineTest, ChildRekeyBothWaysIsMakeBeforeBreak) {
  for (int rekeying_side : {0, 1}) {
    Network net;
    Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
    Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
    auto id = device.engine->initiate(to_gateway(net, 1));
    net.run();
    auto before = device.engine->ike_sa(*id)->children.front();
    uint64_t side_sa = rekeying_side == 0 ? only_sa(gateway) : *id;
    // Watch the gateway's data plane: at no call may the tunnel have no
    // outbound SA (make before break).
    ASSERT_TRUE(net.nodes[rekeying_side]->engine->rekey_child(side_sa).ok());
    net.run();
    for (const Node* node : {&gateway, &device}) {
      bool had_outbound = true;
      bool seen_outbound = false;
      // Replay the recorded calls: installs add, removes take away.
      std::map<std::pair<uint32_t, int>, bool> model;
      for (const auto& call : node->installer.calls()) {
        if (call.kind == shared::channel::CommandKind::kInstallSa)
          model[{call.sa.spi, int(call.sa.direction)}] = true;
        else if (call.kind == shared::channel::CommandKind::kRemoveSa)
          model.erase({call.spi, int(call.direction)});
        bool any_out = false;
        for (const auto& [key, present] : model) any_out |= key.second == int(SaDirection::kOutbound);
        // Once the tunnel had an outbound SA, it never lacks one again.
        if (seen_outbound) had_outbound &= any_out;
        seen_outbound |= any_out;
      }
      EXPECT_TRUE(had_outbound) << node->name;
    }
    auto after = device.engine->ike_sa(*id);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->children.size(), 1u) << "side " << rekeying_side;
    EXPECT_NE(after->children.front().inbound_spi, before.inbound_spi);
    EXPECT_NE(after->children.front().outbound_spi, before.outbound_spi);
    EXPECT_EQ(after->children.front().remote_ts, before.remote_ts);
    EXPECT_EQ(gateway.installer.installed().size(), 2u);
    EXPECT_EQ(device.installer.installed().size(), 2u);
    expect_matching_children(gateway, device, *id);
    EXPECT_EQ(net.nodes[rekeying_side]->engine->stats().child_sas_rekeyed, 1u);
    EXPECT_EQ(net.nodes[1 - rekeying_side]->engine->stats().child_sas_rekeyed, 1u);
  }
}

TEST(EngineTest, ChildRekeyWithPfs) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"),
                          gateway_config("esp_proposals = aes128gcm16-ecp256-esn-noesn, aes128gcm16-esn-noesn\n"));
  Node& device = net.add("device", ip("203.0.113.10"),
                         device_config("dev1.fap.example", "esp_proposals = aes128gcm16-ecp256-esn\n"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  auto before = device.engine->ike_sa(*id)->children.front();
  EXPECT_TRUE(before.esn);
  ASSERT_TRUE(device.engine->rekey_child(*id).ok());
  net.run();
  auto after = device.engine->ike_sa(*id);
  ASSERT_EQ(after->children.size(), 1u);
  EXPECT_NE(after->children.front().inbound_spi, before.inbound_spi);
  expect_matching_children(gateway, device, *id);
}

TEST(EngineTest, IkeRekeyBothWaysKeepsChildrenAndLeases) {
  for (int rekeying_side : {0, 1}) {
    Network net;
    Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
    Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
    auto id = device.engine->initiate(to_gateway(net, 1));
    net.run();
    auto before = gateway.engine->ike_sa(only_sa(gateway));
    uint64_t side_sa = rekeying_side == 0 ? before->id : *id;
    size_t calls_before = gateway.installer.call_count();
    ASSERT_TRUE(net.nodes[rekeying_side]->engine->rekey_ike(side_sa).ok());
    net.run();
    auto g = gateway.engine->ike_sas();
    auto d = device.engine->ike_sas();
    ASSERT_EQ(g.size(), 1u) << "side " << rekeying_side;
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(g.front().id, before->id);
    EXPECT_NE(g.front().spi_i, before->spi_i);
    EXPECT_EQ(g.front().spi_i, d.front().spi_i);
    EXPECT_EQ(g.front().spi_r, d.front().spi_r);
    EXPECT_EQ(g.front().internal_ip4, before->internal_ip4);
    ASSERT_EQ(g.front().children.size(), 1u);
    EXPECT_EQ(g.front().children.front().inbound_spi, before->children.front().inbound_spi);
    // The data plane did not notice: no SA removed or added.
    EXPECT_EQ(gateway.installer.call_count(), calls_before);
    EXPECT_EQ(gateway.engine->stats().ike_sas_rekeyed, 1u);
    // The new IKE SA works: a child rekey over it.
    ASSERT_TRUE(device.engine->rekey_child(d.front().id).ok());
    net.run();
    expect_matching_children(gateway, device, device.engine->ike_sas().front().id);
    // And the lease survives until the new IKE SA goes.
    ASSERT_TRUE(device.engine->terminate(device.engine->ike_sas().front().id).ok());
    net.run();
    EXPECT_TRUE(gateway.engine->ike_sas().empty());
    EXPECT_TRUE(gateway.installer.installed().empty());
  }
}

TEST(EngineTest, DataPlaneEventsRekeyAndExpireChildren) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  auto before = gateway.engine->ike_sa(only_sa(gateway))->children.front();
  // Soft lifetime of the gateway's inbound SA: the gateway rekeys at once.
  gateway.engine->on_sa_condition(before.inbound_spi, SaDirection::kInbound, Engine::SaCondition::kRekeyWanted);
  net.run();
  auto after = gateway.engine->ike_sa(only_sa(gateway))->children;
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after.front().inbound_spi, before.inbound_spi);
  EXPECT_EQ(gateway.engine->stats().data_plane_rekeys, 1u);
  expect_matching_children(gateway, device, *id);
  // Sequence numbers near exhaustion on the outbound side: the same.
  gateway.engine->on_sa_condition(after.front().outbound_spi, SaDirection::kOutbound,
                                  Engine::SaCondition::kRekeyWanted);
  net.run();
  auto third = gateway.engine->ike_sa(only_sa(gateway))->children;
  ASSERT_EQ(third.size(), 1u);
  EXPECT_NE(third.front().outbound_spi, after.front().outbound_spi);
  // Hard lifetime: the child is deleted on both sides.
  gateway.engine->on_sa_condition(third.front().inbound_spi, SaDirection::kInbound, Engine::SaCondition::kExpired);
  net.run();
  EXPECT_TRUE(gateway.engine->ike_sa(only_sa(gateway))->children.empty());
  EXPECT_TRUE(device.engine->ike_sa(*id)->children.empty());
  EXPECT_TRUE(gateway.installer.installed().empty());
  EXPECT_TRUE(device.installer.installed().empty());
  // Unknown SPIs are counted, nothing else.
  gateway.engine->on_sa_condition(12345, SaDirection::kInbound, Engine::SaCondition::kRekeyWanted);
  EXPECT_EQ(gateway.engine->stats().unknown_sa_conditions, 1u);
}

TEST(EngineTest, LostResponsesAreRetransmittedAndRepeatedRequestsAnsweredFromCache) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  // Lose the gateway's first IKE_SA_INIT and first IKE_AUTH answer.
  int gateway_sent = 0;
  net.drop = [&](int from, const IkeDatagram&) { return from == 0 && (++gateway_sent == 1 || gateway_sent == 3); };
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  EXPECT_EQ(device.engine->ike_sa(*id)->state, IkeSaState::kInitSent);
  net.advance(3 * kSecond);
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state, IkeSaState::kEstablished);
  EXPECT_GE(device.engine->stats().retransmitted_requests, 2u);
  EXPECT_EQ(gateway.engine->stats().retransmitted_responses, 2u);
  EXPECT_EQ(gateway.engine->ike_sas().size(), 1u);
  EXPECT_EQ(gateway.installer.installed().size(), 2u);  // installed once
}

TEST(EngineTest, DeadPeerIsDetectedAndCleanedUp) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"),
                          gateway_config("dpd_interval_s = 10\n", "retransmit_tries = 2\n"));
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example", "dpd_interval_s = 0\n"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  ASSERT_EQ(device.engine->ike_sa(*id)->state, IkeSaState::kEstablished);
  // Alive: liveness checks are answered.
  net.advance(25 * kSecond, kSecond);
  EXPECT_EQ(gateway.engine->ike_sas().size(), 1u);
  EXPECT_GE(device.engine->stats().datagrams, 3u);
  // The device vanishes.
  net.drop = [](int from, const IkeDatagram&) { return from == 1; };
  net.advance(60 * kSecond, kSecond);
  EXPECT_TRUE(gateway.engine->ike_sas().empty());
  EXPECT_EQ(gateway.engine->stats().liveness_failures, 1u);
  EXPECT_TRUE(gateway.installer.installed().empty());
}

TEST(EngineTest, CookiesAreDemandedBeyondTheThresholdAndHonoured) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("", "cookie_threshold = 0\n"));
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  EXPECT_EQ(gateway.engine->stats().cookies_sent, 1u);
  EXPECT_EQ(device.engine->ike_sa(*id)->state, IkeSaState::kEstablished);
}

TEST(EngineTest, EstablishedSasLeaveTheHalfOpenCountAfterTheirNatTFloat) {
  // Regression: the half-open index was keyed by the IKE_SA_INIT's source
  // port and erased with the floated one (4500), so every SA behind a NAT
  // stayed "half open" and COOKIEs were demanded of everyone after a while.
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("", "cookie_threshold = 2\n"));
  for (int n = 1; n <= 10; ++n) {
    Node& device = net.add("device" + std::to_string(n), ip("192.168.1.10"),
                           device_config("dev" + std::to_string(n) + ".fap.example"), true);
    auto id = device.engine->initiate(to_gateway(net, n));
    ASSERT_TRUE(id.ok());
    net.run();
    ASSERT_EQ(device.engine->ike_sa(*id)->state, IkeSaState::kEstablished);
  }
  EXPECT_EQ(gateway.engine->stats().cookies_sent, 0u);
  EXPECT_EQ(gateway.engine->stats().half_open, 0u);
  EXPECT_EQ(gateway.engine->stats().established, 10u);
}

TEST(EngineTest, InvalidKePayloadMakesTheInitiatorSwitchGroups) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"),
                          gateway_config("ike_proposals = aes128-sha256-modp2048\n"));
  Node& device = net.add("device", ip("203.0.113.10"),
                         device_config("dev1.fap.example", "ike_proposals = aes128-sha256-ecp256-modp2048\n"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  EXPECT_EQ(gateway.engine->stats().invalid_ke_sent, 1u);
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state, IkeSaState::kEstablished);
  EXPECT_EQ(d->ike_algorithms, "aes128-sha256-prfsha256-modp2048");
}

TEST(EngineTest, NoCommonProposalFails) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("ike_proposals = aes256gcm16-prfsha384-ecp384\n"));
  Node& device = net.add("device", ip("203.0.113.10"),
                         device_config("dev1.fap.example", "ike_proposals = aes128-sha256-modp2048\n"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  EXPECT_FALSE(device.engine->ike_sa(*id));
  EXPECT_EQ(gateway.engine->stats().no_proposal_chosen, 1u);
  EXPECT_TRUE(gateway.engine->ike_sas().empty());
}

TEST(EngineTest, DataPlaneRefusalLeavesNoTunnelUp) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  gateway.installer.fail_next(shared::channel::CommandKind::kInstallSa, shared::channel::CompletionCode::kTableFull);
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  EXPECT_TRUE(gateway.installer.installed().empty());
  auto g = gateway.engine->ike_sas();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_TRUE(g.front().children.empty());
  EXPECT_EQ(gateway.engine->stats().install_failures, 1u);
  EXPECT_EQ(gateway.engine->stats().child_sas_installed, 0u);
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->children.empty());
}

TEST(EngineTest, GarbageAndTamperedMessagesAreCountedNeverAnswered) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  net.run();
  ASSERT_EQ(device.engine->ike_sa(*id)->state, IkeSaState::kEstablished);
  IkeDatagram garbage;
  garbage.local = {ip("198.51.100.1"), 500};
  garbage.remote = {ip("203.0.113.99"), 500};
  std::mt19937 random(7);
  for (int i = 0; i < 2000; ++i) {
    garbage.message.resize(random() % 300);
    for (auto& b : garbage.message) b = uint8_t(random());
    if (i % 2 && garbage.message.size() >= 28) {
      garbage.message[17] = 0x20;  // version 2.0
      uint32_t length = uint32_t(garbage.message.size());
      garbage.message[24] = uint8_t(length >> 24);
      garbage.message[25] = uint8_t(length >> 16);
      garbage.message[26] = uint8_t(length >> 8);
      garbage.message[27] = uint8_t(length);
      garbage.message[18] = uint8_t(34 + i % 4);
    }
    gateway.engine->handle_datagram(garbage);
  }
  EXPECT_TRUE(net.in_flight.empty());
  // A tampered liveness request from the device: the ICV fails, no answer.
  ASSERT_TRUE(device.engine->terminate(*id).ok());
  ASSERT_EQ(net.in_flight.size(), 1u);
  auto tampered = net.in_flight.front();
  net.in_flight.clear();
  tampered.second.message.back() ^= 1;
  IkeDatagram received = tampered.second;
  received.local = tampered.second.remote;
  received.remote = tampered.second.local;
  gateway.engine->handle_datagram(received);
  EXPECT_TRUE(net.in_flight.empty());
  EXPECT_EQ(gateway.engine->stats().dropped_icv, 1u);
  EXPECT_EQ(gateway.engine->ike_sas().size(), 1u);
  EXPECT_GE(gateway.engine->stats().dropped_malformed + gateway.engine->stats().dropped_unknown_spi +
                gateway.engine->stats().dropped_invalid + gateway.engine->stats().dropped_unexpected,
            1900u);
}

// Certificates: ECDSA and RSA, each side its own key, one CA.
class EngineCertificateTest : public ::testing::TestWithParam<bool> {};

TEST_P(EngineCertificateTest, CertificatesBothWays) {
  bool rsa = GetParam();
  config::test::TempDirectory dir;
  auto ca_key = crypto::test::make_ec_key("P-256");
  auto ca = crypto::test::make_cert(crypto::test::CertSpec().cn("segw test CA").ca(), ca_key.get(), nullptr, nullptr);
  auto gw_key = rsa ? crypto::test::make_rsa_key(2048) : crypto::test::make_ec_key("P-256");
  auto gw = crypto::test::make_cert(crypto::test::CertSpec().cn("segw").san("DNS:segw.example"), gw_key.get(), &ca,
                                    ca_key.get());
  auto dev_key = rsa ? crypto::test::make_rsa_key(2048) : crypto::test::make_ec_key("P-256");
  auto dev = crypto::test::make_cert(crypto::test::CertSpec().cn("dev1").san("DNS:dev1.fap.example"), dev_key.get(),
                                     &ca, ca_key.get());
  ASSERT_TRUE(config::test::write_cert(dir.file("ca.pem"), ca));
  ASSERT_TRUE(config::test::write_cert(dir.file("gw.pem"), gw));
  ASSERT_TRUE(config::test::write_key(dir.file("gw.key"), gw_key.get()));
  ASSERT_TRUE(config::test::write_cert(dir.file("dev.pem"), dev));
  ASSERT_TRUE(config::test::write_key(dir.file("dev.key"), dev_key.get()));
  std::string gateway_text = gateway_config();
  const std::string psk_lines = "local_auth = psk\nremote_auth = psk";
  gateway_text.replace(gateway_text.find(psk_lines), psk_lines.size(),
                       "local_auth = pubkey\nremote_auth = pubkey\ncertificate_file = " + dir.file("gw.pem") +
                           "\nprivate_key_file = " + dir.file("gw.key") + "\nca_files = " + dir.file("ca.pem"));
  gateway_text.replace(gateway_text.find("remote_id = %any"), 16, "remote_id = *.fap.example");
  std::string device_text = device_config("dev1.fap.example");
  device_text.replace(device_text.find(psk_lines), psk_lines.size(),
                      "local_auth = pubkey\nremote_auth = pubkey\ncertificate_file = " + dir.file("dev.pem") +
                          "\nprivate_key_file = " + dir.file("dev.key") + "\nca_files = " + dir.file("ca.pem"));
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_text);
  Node& device = net.add("device", ip("192.168.1.10"), device_text, true);
  auto id = device.engine->initiate(to_gateway(net, 1));
  ASSERT_TRUE(id.ok());
  net.run();
  auto d = device.engine->ike_sa(*id);
  ASSERT_TRUE(d) << (device.events.empty() ? "" : device.events.back().detail);
  EXPECT_EQ(d->state, IkeSaState::kEstablished);
  auto g = gateway.engine->ike_sas();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g.front().peer_id, "dev1.fap.example");
  expect_matching_children(gateway, device, *id);

  // A device with a certificate from a CA the gateway does not trust is
  // refused, whatever name it carries.
  auto rogue_key = crypto::test::make_ec_key("P-256");
  auto rogue_ca = crypto::test::make_cert(crypto::test::CertSpec().cn("rogue CA").ca(), rogue_key.get(), nullptr,
                                          nullptr);
  auto liar = crypto::test::make_cert(crypto::test::CertSpec().cn("dev1").san("DNS:dev1.fap.example"), dev_key.get(),
                                      &rogue_ca, rogue_key.get());
  ASSERT_TRUE(config::test::write_cert(dir.file("dev.pem"), liar));
  Node& impostor = net.add("impostor", ip("203.0.113.30"), device_text);
  auto bad = impostor.engine->initiate(to_gateway(net, 2));
  ASSERT_TRUE(bad.ok());
  net.run();
  EXPECT_FALSE(impostor.engine->ike_sa(*bad));
  EXPECT_EQ(gateway.engine->stats().auth_failed, 1u);
  EXPECT_EQ(gateway.engine->ike_sas().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(EcdsaAndRsa, EngineCertificateTest, ::testing::Values(false, true));

}  // namespace
}  // namespace segw::cp::ike
