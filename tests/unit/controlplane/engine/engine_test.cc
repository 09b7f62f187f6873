// Whole IKEv2 exchanges between engines in one process: a responder (the
// gateway) and one or more initiators (devices), joined by an in-memory
// network that can put a NAT between them, lose datagrams, repeat them or
// corrupt them; a fake clock drives retransmissions, liveness and rekeys.
// Child SAs land in RecordingSaInstallers, whose models are compared across
// the two sides (same SPIs, same keys, crossed directions). At the end,
// IKE fragmentation (RFC 7383): RSA certificates and a 576-byte limit make
// IKE_AUTH travel as SKF fragments, which the network loses, reorders,
// repeats, forges and floods.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/recording_sa_installer.h"
#include "controlplane/ike/codec/message.h"
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

  // A NAT remap of node n: its mappings move by 10 ports per epoch.
  std::map<int, int> nat_epoch;

  shared::channel::OuterEndpoint public_of(int node, uint16_t port) const {
    if (!nodes[node]->behind_nat) return {nodes[node]->address, port};
    auto epoch = nat_epoch.find(node);
    int shift = epoch == nat_epoch.end() ? 0 : 10 * epoch->second;
    return {ip(kNatPublic), uint16_t(40000 + 100 * node + shift + (port == 4500 ? 1 : 0))};
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

TEST(EngineTest, IkeSaListingsAreFilteredAndPagedInIdOrder) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  for (int n = 1; n <= 20; ++n) {
    Node& device = net.add("device" + std::to_string(n), ip("192.168.1.10"),
                           device_config("dev" + std::to_string(n) + ".fap.example"), true);
    ASSERT_TRUE(device.engine->initiate(to_gateway(net, n)).ok());
  }
  net.run();
  std::vector<uint64_t> seen;
  IkeSaQuery query;
  query.limit = 7;
  for (int page_number = 0; page_number < 10; ++page_number) {
    IkeSaPage page = gateway.engine->ike_sas(query);
    EXPECT_EQ(page.matched, 20u);
    EXPECT_LE(page.sas.size(), 7u);
    for (const auto& sa : page.sas) seen.push_back(sa.id);
    if (!page.next_after) break;
    EXPECT_EQ(*page.next_after, page.sas.back().id);
    query.after = *page.next_after;
  }
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<uint64_t>(seen.begin(), seen.end()).size(), 20u);

  IkeSaQuery by_identity;
  by_identity.identity = "dev7.fap.example";
  IkeSaPage one = gateway.engine->ike_sas(by_identity);
  ASSERT_EQ(one.sas.size(), 1u);
  EXPECT_EQ(one.matched, 1u);
  EXPECT_FALSE(one.next_after);
  ASSERT_TRUE(one.sas[0].internal_ip4);
  IkeSaQuery by_inner;
  by_inner.inner = *one.sas[0].internal_ip4;
  IkeSaPage same = gateway.engine->ike_sas(by_inner);
  ASSERT_EQ(same.sas.size(), 1u);
  EXPECT_EQ(same.sas[0].id, one.sas[0].id);
  IkeSaQuery by_public;
  by_public.public_address = ip(Network::kNatPublic);
  EXPECT_EQ(gateway.engine->ike_sas(by_public).matched, 20u);
  by_public.public_address = ip("192.0.2.99");
  EXPECT_EQ(gateway.engine->ike_sas(by_public).matched, 0u);
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

// Pools and leases as the REST API shows them, and configuration reload:
// every refusal changes nothing; an accepted reload keeps the tunnel, its
// lease and its traffic-carrying child SAs, and new IKE SAs get the new
// policy (here: a rebuilt, wider pool and a new pool list).
std::shared_ptr<const config::ControlPlaneConfig> reparsed(const std::string& text) {
  auto parsed = config::parse_controlplane_config(text, "reloaded.conf");
  EXPECT_TRUE(parsed.ok()) << parsed.error();
  return std::make_shared<const config::ControlPlaneConfig>(std::move(*parsed));
}

// A pool's leases page by page (GET /v1/pools/{name}?limit=&after=): address
// order, each page's last address continues the walk, every lease exactly
// once, each with the IKE SA holding it.
TEST(EngineTest, PoolLeasesComeInAddressOrderPages) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  std::vector<std::string> devices;
  for (int i = 1; i <= 3; ++i) {
    devices.push_back("dev" + std::to_string(i) + ".fap.example");
    Node& device = net.add("device" + std::to_string(i), ip(("203.0.113." + std::to_string(9 + i)).c_str()),
                           device_config(devices.back()));
    ASSERT_TRUE(device.engine->initiate(to_gateway(net, i)).ok());
    net.run();
  }
  auto all = gateway.engine->pool_leases("v4", LeaseQuery{});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->leases.size(), 3u);
  EXPECT_FALSE(all->next_after);
  std::vector<std::string> walked;
  std::set<uint64_t> holders;
  LeaseQuery query;
  query.limit = 2;
  for (int pages = 1;; ++pages) {
    ASSERT_LE(pages, 2);
    auto page = gateway.engine->pool_leases("v4", query);
    ASSERT_TRUE(page);
    for (const auto& lease : page->leases) {
      walked.push_back(lease.address.to_string());
      holders.insert(lease.ike_sa);
      auto holder = gateway.engine->ike_sa(lease.ike_sa);
      ASSERT_TRUE(holder && holder->internal_ip4);
      EXPECT_EQ(*holder->internal_ip4, lease.address);
      EXPECT_EQ(holder->peer_id, lease.peer_id);
    }
    if (!page->next_after) break;
    EXPECT_EQ(*page->next_after, page->leases.back().address);
    query.after = page->next_after;
  }
  EXPECT_EQ(walked, (std::vector<std::string>{all->leases[0].address.to_string(), all->leases[1].address.to_string(),
                                              all->leases[2].address.to_string()}));
  EXPECT_TRUE(std::is_sorted(all->leases.begin(), all->leases.end(),
                             [](const LeaseInfo& a, const LeaseInfo& b) { return a.address < b.address; }));
  EXPECT_EQ(holders.size(), 3u);
  // Past the last lease: an empty last page; an unknown pool: none.
  query.after = all->leases.back().address;
  auto past = gateway.engine->pool_leases("v4", query);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->leases.empty());
  EXPECT_FALSE(past->next_after);
  EXPECT_FALSE(gateway.engine->pool_leases("nope", LeaseQuery{}));
}

TEST(EngineTest, PoolsShowTheirLeasesAndAReloadKeepsTunnelsAndLeases) {
  Network net;
  std::string base = gateway_config();
  Node& gateway = net.add("gateway", ip("198.51.100.1"), base);
  Node& device = net.add("device1", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  ASSERT_TRUE(id.ok());
  net.run();
  uint64_t gateway_sa = only_sa(gateway);
  auto before = gateway.engine->ike_sa(gateway_sa);
  ASSERT_TRUE(before && before->internal_ip4);
  std::string address = before->internal_ip4->to_string();
  auto v4 = [&gateway] {
    for (auto& pool : gateway.engine->pools())
      if (pool.name == "v4") return pool;
    ADD_FAILURE() << "no pool v4";
    return PoolInfo{};
  };

  auto pools = gateway.engine->pools();
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].name, "v4");
  EXPECT_EQ(pools[0].range, "10.64.0.0/24");
  EXPECT_EQ(pools[0].stats.in_use, 1u);
  auto leases = gateway.engine->pool_leases("v4");
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].address.to_string(), address);
  EXPECT_EQ((*leases)[0].ike_sa, gateway_sa);
  EXPECT_EQ((*leases)[0].peer_id, before->peer_id);
  EXPECT_FALSE(gateway.engine->pool_leases("nope"));

  auto unchanged = [&] {
    auto sa = gateway.engine->ike_sa(gateway_sa);
    ASSERT_TRUE(sa);
    EXPECT_EQ(sa->state, IkeSaState::kEstablished);
    EXPECT_EQ(v4().range, "10.64.0.0/24");
    EXPECT_EQ(v4().stats.in_use, 1u);
  };
  // Refused: [controlplane] changed.
  std::string daemon_changed = base;
  daemon_changed.replace(daemon_changed.find("listen = 198.51.100.1"), 21, "listen = 198.51.100.9");
  auto refused = gateway.engine->reload(reparsed(daemon_changed));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("[controlplane]"), std::string::npos) << refused.error();
  unchanged();
  // Refused: the pool with the lease is gone.
  std::string pool_gone = base;
  pool_gone.replace(pool_gone.find("[pool v4]\nrange = 10.64.0.0/24"), 30, "[pool w4]\nrange = 10.64.0.0/24");
  pool_gone.replace(pool_gone.find("pools = v4, v6"), 14, "pools = w4, v6");
  refused = gateway.engine->reload(reparsed(pool_gone));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("pool v4 is gone"), std::string::npos) << refused.error();
  unchanged();
  // Refused: the pool shrinks away from the lease.
  std::string shrunk = base;
  shrunk.replace(shrunk.find("range = 10.64.0.0/24"), 20, "range = 10.64.0.200-10.64.0.210");
  refused = gateway.engine->reload(reparsed(shrunk));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("does not fit"), std::string::npos) << refused.error();
  unchanged();

  // Accepted: a wider pool (rebuilt, the lease carried over) and a new one.
  std::string wider = base;
  wider.replace(wider.find("range = 10.64.0.0/24"), 20, "range = 10.64.0.0/23");
  wider += "\n[pool spare]\nrange = 10.99.0.0/24\n";
  size_t installs = gateway.installer.installed().size();
  auto report = gateway.engine->reload(reparsed(wider));
  ASSERT_TRUE(report.ok()) << report.error();
  EXPECT_EQ(report->pools, 3u);
  EXPECT_EQ(report->pools_rebuilt, 1u);
  EXPECT_EQ(report->ike_sas, 1u);
  auto after = gateway.engine->ike_sa(gateway_sa);
  ASSERT_TRUE(after && after->internal_ip4);
  EXPECT_EQ(after->state, IkeSaState::kEstablished);
  EXPECT_EQ(after->internal_ip4->to_string(), address);
  EXPECT_EQ(gateway.installer.installed().size(), installs);  // nothing removed or re-pushed
  leases = gateway.engine->pool_leases("v4");
  ASSERT_TRUE(leases && leases->size() == 1u);
  EXPECT_EQ((*leases)[0].address.to_string(), address);
  EXPECT_EQ(v4().range, "10.64.0.0/23");

  // The tunnel still works under the new profile (a child rekey), and a new
  // device gets another address from the rebuilt pool.
  ASSERT_TRUE(gateway.engine->rekey_child(gateway_sa).ok());
  net.run();
  EXPECT_EQ(gateway.engine->ike_sa(gateway_sa)->children.size(), 1u);
  Node& second = net.add("device2", ip("203.0.113.11"), device_config("dev2.fap.example"));
  auto id2 = second.engine->initiate(to_gateway(net, 2));
  ASSERT_TRUE(id2.ok());
  net.run();
  auto second_info = second.engine->ike_sa(*id2);
  ASSERT_TRUE(second_info && second_info->internal_ip4);
  EXPECT_NE(second_info->internal_ip4->to_string(), address);
  EXPECT_EQ(v4().stats.in_use, 2u);
  // The first device leaves: its lease goes back to the rebuilt pool.
  ASSERT_TRUE(device.engine->terminate(*id).ok());
  net.run();
  EXPECT_EQ(v4().stats.in_use, 1u);
}

TEST(EngineTest, AnIkeSaWhoseProfileAReloadRemovedKeepsItsOldPolicyAndReleasesItsLease) {
  Network net;
  std::string base = gateway_config();
  Node& gateway = net.add("gateway", ip("198.51.100.1"), base);
  Node& device = net.add("device1", ip("203.0.113.10"), device_config("dev1.fap.example"));
  auto id = device.engine->initiate(to_gateway(net, 1));
  ASSERT_TRUE(id.ok());
  net.run();
  uint64_t gateway_sa = only_sa(gateway);
  std::string renamed = base;
  renamed.replace(renamed.find("[profile fap]"), 13, "[profile femto]");
  auto report = gateway.engine->reload(reparsed(renamed));
  ASSERT_TRUE(report.ok()) << report.error();
  EXPECT_EQ(report->ike_sas_on_retired_profiles, 1u);
  auto sa = gateway.engine->ike_sa(gateway_sa);
  ASSERT_TRUE(sa);
  EXPECT_EQ(sa->profile, "fap");
  // It still rekeys, and a second reload keeps the retired profile alive.
  ASSERT_TRUE(gateway.engine->rekey_child(gateway_sa).ok());
  net.run();
  EXPECT_EQ(gateway.engine->ike_sa(gateway_sa)->children.size(), 1u);
  ASSERT_TRUE(gateway.engine->reload(reparsed(renamed)).ok());
  ASSERT_TRUE(device.engine->terminate(*id).ok());
  net.run();
  auto leases = gateway.engine->pool_leases("v4");
  ASSERT_TRUE(leases);
  EXPECT_TRUE(leases->empty());
}

TEST(EngineTest, InitialContactReplacesTheIkeSaOfARebootedDevice) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config());
  Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
  auto first = device.engine->initiate(to_gateway(net, 1));
  net.run();
  auto before = gateway.engine->ike_sas();
  ASSERT_EQ(before.size(), 1u);
  ASSERT_TRUE(before.front().internal_ip4);
  // The device reboots: a new engine, same identity, nothing deleted.
  Node& rebooted = net.add("device-again", ip("192.168.1.10"), device_config("dev1.fap.example"), true);
  auto second = rebooted.engine->initiate(to_gateway(net, 2));
  net.run();
  auto after = gateway.engine->ike_sas();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after.front().id, before.front().id);
  EXPECT_EQ(gateway.engine->stats().initial_contact_replaced, 1u);
  EXPECT_EQ(gateway.installer.installed().size(), 2u);  // the new pair only
  ASSERT_TRUE(after.front().internal_ip4);
  expect_matching_children(gateway, rebooted, *second);
  // Another identity is left alone; without INITIAL_CONTACT nothing goes.
  Node& other = net.add("device2", ip("203.0.113.11"), device_config("dev2.fap.example"));
  ASSERT_TRUE(other.engine->initiate(to_gateway(net, 3)).ok());
  net.run();
  EXPECT_EQ(gateway.engine->ike_sas().size(), 2u);
  (void)first;
}

// NAT remaps (RFC 7296 2.23) under each profile policy. The data plane's
// new-source event is simulated with on_new_source().
struct RemapFixture {
  Network net;
  Node* gateway = nullptr;
  Node* device = nullptr;
  uint64_t device_sa = 0;
  ChildSaInfo child;

  explicit RemapFixture(const std::string& policy) {
    gateway = &net.add("gateway", ip("198.51.100.1"), gateway_config("remap = " + policy + "\ndpd_interval_s = 0\n"));
    device = &net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example", "dpd_interval_s = 0\n"), true);
    device_sa = *device->engine->initiate(to_gateway(net, 1));
    net.run();
    child = gateway->engine->ike_sas().front().children.front();
  }
  std::vector<dp_link::RecordedCall> path_updates() const {
    std::vector<dp_link::RecordedCall> out;
    for (const auto& call : gateway->installer.calls())
      if (call.kind == shared::channel::CommandKind::kUpdatePath) out.push_back(call);
    return out;
  }
};

TEST(EngineTest, RemapFollowMovesTheIkeSaAndItsChildrenAtOnce) {
  RemapFixture f("follow");
  f.net.nat_epoch[1] = 1;  // the NAT remapped the device
  auto moved_to = f.net.public_of(1, 4500);
  f.gateway->engine->on_new_source(f.child.inbound_spi, moved_to);
  auto info = f.gateway->engine->ike_sas().front();
  EXPECT_EQ(info.remote, moved_to);
  auto updates = f.path_updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].tunnel_id, f.child.tunnel_id);
  EXPECT_EQ(updates[0].path.remote_port, moved_to.port);
  EXPECT_TRUE(updates[0].path.udp_encapsulation);
  EXPECT_EQ(f.gateway->count(EngineEventKind::kMoved), 1u);
  // The IKE SA works on the new path: a rekey from the gateway reaches it.
  ASSERT_TRUE(f.gateway->engine->rekey_child(info.id).ok());
  f.net.run();
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
}

TEST(EngineTest, DataPlaneEventsFindTheirIkeSaByTunnelAlsoAfterAnIkeRekey) {
  RemapFixture f("follow");
  auto gateway_sa = f.gateway->engine->ike_sas().front();
  ASSERT_TRUE(f.gateway->engine->rekey_ike(gateway_sa.id).ok());
  f.net.run();
  auto sas = f.gateway->engine->ike_sas();
  ASSERT_EQ(sas.size(), 1u);
  ASSERT_NE(sas.front().id, gateway_sa.id);  // the successor owns the tunnel now
  // A wrong tunnel id finds nothing (no scan fallback that could pick
  // another tunnel's SA).
  f.net.nat_epoch[1] = 1;
  auto moved_to = f.net.public_of(1, 4500);
  f.gateway->engine->on_new_source(f.child.inbound_spi, moved_to, f.child.tunnel_id + 100);
  EXPECT_EQ(f.gateway->engine->stats().unknown_sa_conditions, 1u);
  EXPECT_TRUE(f.path_updates().empty());
  f.gateway->engine->on_new_source(f.child.inbound_spi, moved_to, f.child.tunnel_id);
  EXPECT_EQ(f.gateway->engine->ike_sas().front().remote, moved_to);
  EXPECT_EQ(f.path_updates().size(), 1u);
  f.gateway->engine->on_sa_condition(f.child.inbound_spi, SaDirection::kInbound, Engine::SaCondition::kRekeyWanted,
                                     f.child.tunnel_id);
  EXPECT_EQ(f.gateway->engine->stats().data_plane_rekeys, 1u);
}

TEST(EngineTest, RemapVerifyMovesOnlyOnAnAuthenticatedAnswerFromTheNewEndpoint) {
  RemapFixture f("verify");
  f.net.nat_epoch[1] = 1;
  auto moved_to = f.net.public_of(1, 4500);
  f.gateway->engine->on_new_source(f.child.inbound_spi, moved_to);
  // Nothing moves before the answer.
  EXPECT_NE(f.gateway->engine->ike_sas().front().remote, moved_to);
  EXPECT_TRUE(f.path_updates().empty());
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_sent, 1u);
  f.net.run();  // the check reaches the device at its new mapping; it answers from there
  EXPECT_EQ(f.gateway->engine->ike_sas().front().remote, moved_to);
  ASSERT_EQ(f.path_updates().size(), 1u);
  EXPECT_EQ(f.path_updates()[0].path.remote_port, moved_to.port);
  EXPECT_EQ(f.gateway->engine->stats().remaps_verified, 1u);
}

TEST(EngineTest, RemapVerifyNeverMovesToASpoofedSource) {
  RemapFixture f("verify");
  auto before = f.gateway->engine->ike_sas().front().remote;
  // A replayed ESP packet re-sent from an attacker's address: the check
  // goes there, nobody with the keys answers, nothing moves.
  shared::channel::OuterEndpoint attacker{ip("203.0.113.66"), 4500};
  f.gateway->engine->on_new_source(f.child.inbound_spi, attacker);
  // More replays within the second: no second check (no packet cannon).
  for (int i = 0; i < 50; ++i) f.gateway->engine->on_new_source(f.child.inbound_spi, attacker);
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_sent, 1u);
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_rate_limited, 50u);
  f.net.advance(10 * kSecond);
  EXPECT_EQ(f.gateway->engine->ike_sas().front().remote, before);
  EXPECT_TRUE(f.path_updates().empty());
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_failed, 1u);
  EXPECT_EQ(f.gateway->count(EngineEventKind::kMoved), 0u);
  // The IKE SA is intact: the device still talks to the gateway, and the
  // gateway's own requests still fit the device's window (the unanswered
  // check's message ID went on as a liveness check on the current path).
  ASSERT_TRUE(f.device->engine->rekey_child(f.device_sa).ok());
  f.net.run();
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
  f.net.advance(5 * kSecond);
  uint64_t rekeyed_before = f.gateway->engine->stats().child_sas_rekeyed;
  ASSERT_TRUE(f.gateway->engine->rekey_child(f.gateway->engine->ike_sas().front().id).ok());
  f.net.run();
  EXPECT_EQ(f.gateway->engine->stats().child_sas_rekeyed, rekeyed_before + 1);
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
}

TEST(EngineTest, RemapChecksToASpoofedSourceStayAtOneDatagramASecond) {
  RemapFixture f("verify");
  shared::channel::OuterEndpoint attacker{ip("203.0.113.66"), 4500};
  size_t to_attacker = 0;
  f.net.drop = [&](int from, const IkeDatagram& d) {
    if (from == 0 && d.remote == attacker) ++to_attacker;
    return d.remote == attacker;
  };
  // The attacker relays the device's fresh ESP ten times a second for 10 s.
  for (int i = 0; i < 100; ++i) {
    f.gateway->engine->on_new_source(f.child.inbound_spi, attacker);
    f.net.advance(kSecond / 10);
  }
  EXPECT_LE(to_attacker, 11u);
  EXPECT_GE(to_attacker, 5u);
  EXPECT_EQ(f.path_updates().size(), 0u);
  // And the IKE SA still works both ways.
  ASSERT_TRUE(f.gateway->engine->rekey_child(f.gateway->engine->ike_sas().front().id).ok());
  f.net.run();
  f.net.advance(2 * kSecond);
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
}

TEST(EngineTest, RemapVerifyIgnoresAnAnswerFromAnotherEndpoint) {
  RemapFixture f("verify");
  auto before = f.gateway->engine->ike_sas().front().remote;
  // The check goes to an attacker, who relays it to the device's real
  // mapping; the device's answer arrives from its real (old) mapping, not
  // from the candidate: it proves nothing about the candidate.
  shared::channel::OuterEndpoint attacker{ip("203.0.113.66"), 4500};
  f.net.drop = [&](int from, const IkeDatagram& d) {
    if (from == 0 && d.remote == attacker) {
      IkeDatagram relayed = d;
      relayed.remote = before;
      f.net.in_flight.emplace_back(0, relayed);
      return true;
    }
    return false;
  };
  f.gateway->engine->on_new_source(f.child.inbound_spi, attacker);
  f.net.advance(10 * kSecond);
  EXPECT_EQ(f.gateway->engine->ike_sas().front().remote, before);
  EXPECT_TRUE(f.path_updates().empty());
  EXPECT_GE(f.gateway->engine->stats().remap_answers_wrong_source, 1u);
}

TEST(EngineTest, RemapOffNeverMoves) {
  RemapFixture f("off");
  f.net.nat_epoch[1] = 1;
  f.gateway->engine->on_new_source(f.child.inbound_spi, f.net.public_of(1, 4500));
  f.net.run();
  EXPECT_NE(f.gateway->engine->ike_sas().front().remote, f.net.public_of(1, 4500));
  EXPECT_TRUE(f.path_updates().empty());
  EXPECT_EQ(f.gateway->engine->stats().remaps_ignored, 1u);
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_sent, 0u);
}

TEST(EngineTest, AnIkeRequestFromANewEndpointIsARemapSignal) {
  RemapFixture f("verify");
  f.net.nat_epoch[1] = 1;  // the device's next request leaves through the new mapping
  ASSERT_TRUE(f.device->engine->rekey_child(f.device_sa).ok());
  f.net.run();
  EXPECT_EQ(f.gateway->engine->ike_sas().front().remote, f.net.public_of(1, 4500));
  EXPECT_EQ(f.gateway->engine->stats().remaps_verified, 1u);
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
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
  // Both SAs of a child reach their soft lifetime together (two events, the
  // second while the first's rekey is under way): one rekey, one new child.
  auto pair = gateway.engine->ike_sa(only_sa(gateway))->children.front();
  gateway.engine->on_sa_condition(pair.inbound_spi, SaDirection::kInbound, Engine::SaCondition::kRekeyWanted);
  gateway.engine->poll();
  gateway.engine->on_sa_condition(pair.outbound_spi, SaDirection::kOutbound, Engine::SaCondition::kRekeyWanted);
  net.run();
  gateway.engine->on_sa_condition(pair.outbound_spi, SaDirection::kOutbound, Engine::SaCondition::kRekeyWanted);
  net.run();
  after = gateway.engine->ike_sa(only_sa(gateway))->children;
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after.front().inbound_spi, pair.inbound_spi);
  EXPECT_EQ(gateway.installer.installed().size(), 2u);
  EXPECT_EQ(gateway.engine->stats().child_sas_rekeyed, 2u);
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
  uint64_t unknown_before = gateway.engine->stats().unknown_sa_conditions;
  gateway.engine->on_sa_condition(12345, SaDirection::kInbound, Engine::SaCondition::kRekeyWanted);
  EXPECT_EQ(gateway.engine->stats().unknown_sa_conditions, unknown_before + 1);
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
                          gateway_config("dpd_interval_s = 10\ndpd_timeout_s = 20\n", "retransmit_tries = 2\n"));
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
  // Not dead after retransmit_tries (2) unanswered checks: dpd_timeout_s
  // (20 s) decides. The check starts within 10 s of silence.
  net.advance(20 * kSecond, kSecond);
  EXPECT_EQ(gateway.engine->ike_sas().size(), 1u);
  EXPECT_GE(gateway.engine->stats().retransmitted_requests, 3u);
  net.advance(40 * kSecond, kSecond);
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

// ------------------------------------------------------------ RFC 7383 fragmentation

// RSA-2048 certificates for the gateway and dev1.fap.example from one CA:
// an IKE_AUTH of either side is well over 576 bytes. Made once, kept in a
// directory that lives as long as the test program.
struct RsaPki {
  config::test::TempDirectory dir;
  RsaPki() {
    auto ca_key = crypto::test::make_ec_key("P-256");
    auto ca = crypto::test::make_cert(crypto::test::CertSpec().cn("segw test CA").ca(), ca_key.get(), nullptr,
                                      nullptr);
    auto gw_key = crypto::test::make_rsa_key(2048);
    auto gw = crypto::test::make_cert(crypto::test::CertSpec().cn("segw").san("DNS:segw.example"), gw_key.get(),
                                      &ca, ca_key.get());
    auto dev_key = crypto::test::make_rsa_key(2048);
    auto dev = crypto::test::make_cert(crypto::test::CertSpec().cn("dev1").san("DNS:dev1.fap.example"),
                                       dev_key.get(), &ca, ca_key.get());
    EXPECT_TRUE(config::test::write_cert(dir.file("ca.pem"), ca));
    EXPECT_TRUE(config::test::write_cert(dir.file("gw.pem"), gw));
    EXPECT_TRUE(config::test::write_key(dir.file("gw.key"), gw_key.get()));
    EXPECT_TRUE(config::test::write_cert(dir.file("dev.pem"), dev));
    EXPECT_TRUE(config::test::write_key(dir.file("dev.key"), dev_key.get()));
  }
};

const RsaPki& rsa_pki() {
  static RsaPki pki;
  return pki;
}

// `fragment_size` on each side (0: does not announce RFC 7383 support).
std::pair<std::string, std::string> rsa_configs(uint32_t gateway_fragment_size, uint32_t device_fragment_size,
                                                const std::string& gateway_extra = "",
                                                const std::string& gateway_profile = "",
                                                const std::string& device_profile = "",
                                                const std::string& device_extra = "") {
  const auto& dir = rsa_pki().dir;
  const std::string psk_lines = "local_auth = psk\nremote_auth = psk";
  std::string gateway_text =
      gateway_config(gateway_profile, "fragment_size = " + std::to_string(gateway_fragment_size) + "\n" + gateway_extra);
  gateway_text.replace(gateway_text.find(psk_lines), psk_lines.size(),
                       "local_auth = pubkey\nremote_auth = pubkey\ncertificate_file = " + dir.file("gw.pem") +
                           "\nprivate_key_file = " + dir.file("gw.key") + "\nca_files = " + dir.file("ca.pem"));
  gateway_text.replace(gateway_text.find("remote_id = %any"), 16, "remote_id = *.fap.example");
  const std::string subnets = "local_subnets = 10.0.0.0/8, 2001:db8:c::/48\n";
  if (gateway_profile.find("local_subnets") != std::string::npos)
    gateway_text.erase(gateway_text.find(subnets), subnets.size());
  std::string device_text = device_config("dev1.fap.example", device_profile);
  device_text.replace(device_text.find(psk_lines), psk_lines.size(),
                      "local_auth = pubkey\nremote_auth = pubkey\ncertificate_file = " + dir.file("dev.pem") +
                          "\nprivate_key_file = " + dir.file("dev.key") + "\nca_files = " + dir.file("ca.pem"));
  const std::string listen = "listen = 192.168.1.10\n";
  device_text.replace(device_text.find(listen), listen.size(),
                      listen + "fragment_size = " + std::to_string(device_fragment_size) + "\n" + device_extra);
  return {gateway_text, device_text};
}

// Wire fields of a datagram as sent (RFC 7296 3.1, RFC 7383 2.5).
constexpr uint8_t kSkfType = 53;
constexpr uint8_t kIkeAuthType = 35;
bool is_skf(const IkeDatagram& d) { return d.message.size() > 36 && d.message[16] == kSkfType; }
bool is_ike_auth(const IkeDatagram& d) { return d.message.size() > 28 && d.message[18] == kIkeAuthType; }
bool is_response(const IkeDatagram& d) { return d.message.size() > 28 && (d.message[19] & 0x20) != 0; }
uint16_t fragment_number(const IkeDatagram& d) { return uint16_t((d.message[32] << 8) | d.message[33]); }
uint16_t total_fragments(const IkeDatagram& d) { return uint16_t((d.message[34] << 8) | d.message[35]); }
// RFC 7383 2.5.1: what the datagram occupies on the wire, IP and UDP included.
size_t wire_size(const IkeDatagram& d) {
  return d.message.size() + (d.remote.address.is_ipv4() ? 20 : 40) + 8 + (d.non_esp_marker ? 4 : 0);
}

// The gateway (node 0) and a device with RSA certificates behind the NAT
// (node 1: IKE_AUTH on 4500 with the non-ESP marker).
struct FragmentFixture {
  Network net;
  Node* gateway = nullptr;
  Node* device = nullptr;
  uint64_t id = 0;
  FragmentFixture(uint32_t gateway_fragment_size, uint32_t device_fragment_size, const std::string& gateway_extra = "",
                  const std::string& gateway_profile = "", const std::string& device_profile = "",
                  const std::string& device_extra = "") {
    auto [gateway_text, device_text] = rsa_configs(gateway_fragment_size, device_fragment_size, gateway_extra,
                                                   gateway_profile, device_profile, device_extra);
    gateway = &net.add("gateway", ip("198.51.100.1"), gateway_text);
    device = &net.add("device", ip("192.168.1.10"), device_text, true);
  }
  void initiate() {
    auto started = device->engine->initiate(to_gateway(net, 1));
    ASSERT_TRUE(started.ok());
    id = *started;
  }
  bool established() const {
    auto d = device->engine->ike_sa(id);
    auto g = gateway->engine->ike_sas();
    return d && d->state == IkeSaState::kEstablished && g.size() == 1 && g.front().state == IkeSaState::kEstablished;
  }
};

TEST(EngineFragmentTest, IkeAuthWithRsaCertificatesIsFragmentedBothWaysWithinTheLimit) {
  FragmentFixture f(576, 576);
  std::vector<IkeDatagram> sent[2];
  f.net.drop = [&](int from, const IkeDatagram& d) {
    sent[from].push_back(d);
    return false;
  };
  f.initiate();
  f.net.run();
  ASSERT_TRUE(f.established()) << (f.device->events.empty() ? "" : f.device->events.back().detail);
  expect_matching_children(*f.gateway, *f.device, f.id);
  EXPECT_TRUE(f.device->engine->ike_sa(f.id)->fragmentation);
  EXPECT_TRUE(f.gateway->engine->ike_sas().front().fragmentation);
  // Both directions of IKE_AUTH went as fragments 1..N, each within 576.
  for (int node : {0, 1}) {
    std::vector<uint16_t> numbers;
    for (const auto& d : sent[node]) {
      EXPECT_LE(wire_size(d), 576u) << "node " << node;
      if (!is_ike_auth(d)) continue;
      EXPECT_TRUE(is_skf(d)) << "node " << node;
      EXPECT_EQ(is_response(d), node == 0);
      EXPECT_EQ(total_fragments(d), sent[node].size() - 1);  // all but IKE_SA_INIT
      numbers.push_back(fragment_number(d));
    }
    ASSERT_GE(numbers.size(), 3u) << "node " << node;
    for (size_t i = 0; i < numbers.size(); ++i) EXPECT_EQ(numbers[i], i + 1);
    const auto& stats = f.net.nodes[node]->engine->stats();
    EXPECT_EQ(stats.fragments_sent, numbers.size());
    EXPECT_EQ(stats.fragments_received, sent[1 - node].size() - 1);
    EXPECT_EQ(stats.fragmented_messages_reassembled, 1u);
    EXPECT_EQ(stats.fragments_dropped, 0u);
    EXPECT_EQ(stats.fragment_collections, 0u);
    EXPECT_EQ(stats.fragment_bytes, 0u);
    EXPECT_EQ(stats.dropped_icv + stats.dropped_malformed + stats.dropped_invalid, 0u);
  }

  // The small exchanges after it fit in one datagram each and stay whole;
  // child and IKE rekeys still work over the fragmenting SA.
  for (auto& d : sent) d.clear();
  ASSERT_TRUE(f.device->engine->rekey_child(f.id).ok());
  f.net.run();
  ASSERT_TRUE(f.gateway->engine->rekey_ike(f.gateway->engine->ike_sas().front().id).ok());
  f.net.run();
  for (int node : {0, 1})
    for (const auto& d : sent[node]) {
      EXPECT_FALSE(is_skf(d));
      EXPECT_LE(wire_size(d), 576u);
    }
  auto sas = f.device->engine->ike_sas();
  ASSERT_EQ(sas.size(), 1u);
  EXPECT_EQ(sas.front().state, IkeSaState::kEstablished);
  expect_matching_children(*f.gateway, *f.device, sas.front().id);
}

TEST(EngineFragmentTest, TheDefaultSizeOf1280BoundsEveryDatagram) {
  // fragment_size 1280 (the default) and an IPv4 path: the RSA IKE_AUTH
  // still needs fragments (two certificates' worth), each within 1280.
  FragmentFixture f(1280, 1280);
  std::vector<IkeDatagram> sent;
  f.net.drop = [&](int, const IkeDatagram& d) {
    sent.push_back(d);
    return false;
  };
  f.initiate();
  f.net.run();
  ASSERT_TRUE(f.established());
  for (const auto& d : sent) EXPECT_LE(wire_size(d), 1280u);
  EXPECT_GT(f.device->engine->stats().fragments_sent + f.gateway->engine->stats().fragments_sent, 0u);
}

TEST(EngineFragmentTest, ALostFragmentIsRecoveredByRetransmittingTheWholeMessage) {
  for (int lose_from : {1, 0}) {  // a request fragment, then a response fragment
    SCOPED_TRACE(lose_from == 1 ? "request fragment lost" : "response fragment lost");
    FragmentFixture f(576, 576);
    bool lost = false;
    size_t skf_after_loss[2] = {0, 0};
    f.net.drop = [&](int from, const IkeDatagram& d) {
      if (lost && is_skf(d)) ++skf_after_loss[from];
      if (!lost && from == lose_from && is_skf(d) && fragment_number(d) == 2) {
        lost = true;
        return true;
      }
      return false;
    };
    f.initiate();
    f.net.run();
    ASSERT_TRUE(lost);
    EXPECT_FALSE(f.established());
    f.net.advance(5 * kSecond);
    ASSERT_TRUE(f.established());
    expect_matching_children(*f.gateway, *f.device, f.id);
    const auto& device = f.device->engine->stats();
    const auto& gateway = f.gateway->engine->stats();
    EXPECT_EQ(device.retransmitted_requests, 1u);
    EXPECT_EQ(gateway.fragmented_messages_reassembled, 1u);
    EXPECT_EQ(device.fragmented_messages_reassembled, 1u);
    // The whole request went again (every fragment), and with a lost
    // response fragment the whole cached response, once, on fragment 1.
    EXPECT_EQ(device.fragments_sent % 2, 0u);
    // After the loss: the rest of the first transmission, then all again.
    EXPECT_EQ(skf_after_loss[1], lose_from == 1 ? device.fragments_sent - 2 : device.fragments_sent / 2);
    if (lose_from == 0) {
      EXPECT_EQ(gateway.retransmitted_responses, 1u);
      EXPECT_EQ(gateway.fragments_sent % 2, 0u);
      EXPECT_EQ(skf_after_loss[0], gateway.fragments_sent - 2);
      // The repeated request's other fragments: not answered again.
      EXPECT_EQ(gateway.fragments_dropped, device.fragments_sent / 2 - 1);
    }
    EXPECT_EQ(gateway.fragment_collections + device.fragment_collections, 0u);
  }
}

}  // namespace
}  // namespace segw::cp::ike

namespace segw::cp::ike {
namespace {

// Holds back the datagrams `hold` picks until released.
struct Holder {
  std::vector<IkeDatagram> held[2];
  std::function<bool(int, const IkeDatagram&)> hold;
  bool holding = true;
  void attach(Network& net) {
    net.drop = [this](int from, const IkeDatagram& d) {
      if (!holding || !hold(from, d)) return false;
      held[from].push_back(d);
      return true;
    };
  }
  // Hands a datagram `from` sent to its receiver now, past the network's
  // hook (what it answers goes through the network as usual).
  static void deliver(Network& net, int from, const IkeDatagram& sent) {
    IkeDatagram received = sent;
    received.remote = net.public_of(from, sent.local.port);
    for (size_t n = 0; n < net.nodes.size(); ++n) {
      if (int(n) == from) continue;
      for (uint16_t port : {uint16_t(500), uint16_t(4500)}) {
        if (net.public_of(int(n), port) != sent.remote) continue;
        received.local = {net.nodes[n]->address, port};
        net.nodes[n]->engine->handle_datagram(received);
        return;
      }
    }
    ADD_FAILURE() << "nobody at the destination";
  }
};

TEST(EngineFragmentTest, FragmentsInReverseOrderAreReassembled) {
  FragmentFixture f(576, 576);
  Holder holder;
  holder.hold = [](int, const IkeDatagram& d) { return is_skf(d); };
  holder.attach(f.net);
  f.initiate();
  f.net.run();
  ASSERT_GE(holder.held[1].size(), 3u);
  holder.holding = false;
  // The request's fragments, last first...
  for (auto it = holder.held[1].rbegin(); it != holder.held[1].rend(); ++it) Holder::deliver(f.net, 1, *it);
  holder.holding = true;
  f.net.run();
  EXPECT_EQ(f.gateway->engine->stats().fragmented_messages_reassembled, 1u);
  // ... then the response's.
  ASSERT_GE(holder.held[0].size(), 3u);
  holder.holding = false;
  for (auto it = holder.held[0].rbegin(); it != holder.held[0].rend(); ++it) Holder::deliver(f.net, 0, *it);
  f.net.run();
  ASSERT_TRUE(f.established());
  expect_matching_children(*f.gateway, *f.device, f.id);
  for (int node : {0, 1}) {
    const auto& stats = f.net.nodes[node]->engine->stats();
    EXPECT_EQ(stats.retransmitted_requests + stats.retransmitted_responses, 0u);
    EXPECT_EQ(stats.fragments_dropped, 0u);
    EXPECT_EQ(stats.fragmented_messages_reassembled, 1u);
  }
}

TEST(EngineFragmentTest, DuplicatedFragmentsAreIgnored) {
  FragmentFixture f(576, 576);
  size_t duplicated[2] = {0, 0};
  bool next_is_copy = false;
  // Every fragment but the last arrives twice, the copy right behind it.
  f.net.drop = [&](int from, const IkeDatagram& d) {
    if (next_is_copy) {
      next_is_copy = false;
      return false;
    }
    if (is_skf(d) && fragment_number(d) < total_fragments(d)) {
      ++duplicated[from];
      f.net.in_flight.emplace_front(from, d);
      next_is_copy = true;
    }
    return false;
  };
  f.initiate();
  f.net.run();
  ASSERT_TRUE(f.established());
  expect_matching_children(*f.gateway, *f.device, f.id);
  for (int node : {0, 1}) {
    ASSERT_GE(duplicated[1 - node], 2u);
    const auto& stats = f.net.nodes[node]->engine->stats();
    EXPECT_EQ(stats.fragments_dropped, duplicated[1 - node]) << "node " << node;
    EXPECT_EQ(stats.fragmented_messages_reassembled, 1u);
    EXPECT_EQ(stats.retransmitted_requests + stats.retransmitted_responses, 0u);
    EXPECT_EQ(stats.fragment_collections, 0u);
  }
}

TEST(EngineFragmentTest, ATamperedFragmentFailsItsIcvAndTheRetransmissionCompletes) {
  for (int from_node : {1, 0}) {
    SCOPED_TRACE(from_node == 1 ? "request fragment tampered" : "response fragment tampered");
    FragmentFixture f(576, 576);
    bool tampered = false;
    f.net.drop = [&](int from, const IkeDatagram& d) {
      if (tampered || from != from_node || !is_skf(d) || fragment_number(d) != 2) return false;
      tampered = true;
      IkeDatagram bad = d;
      bad.message[bad.message.size() / 2] ^= 0x40;  // inside the ciphertext
      f.net.in_flight.emplace_front(from, bad);
      return true;
    };
    f.initiate();
    f.net.run();
    ASSERT_TRUE(tampered);
    EXPECT_FALSE(f.established());
    Node& receiver = *f.net.nodes[1 - from_node];
    EXPECT_EQ(receiver.engine->stats().dropped_icv, 1u);
    EXPECT_EQ(receiver.engine->stats().fragments_dropped, 1u);
    // The verified fragments are held; fragment 2 is missing.
    EXPECT_EQ(receiver.engine->stats().fragment_collections, 1u);
    f.net.advance(5 * kSecond);
    ASSERT_TRUE(f.established());
    expect_matching_children(*f.gateway, *f.device, f.id);
    EXPECT_EQ(f.device->engine->stats().retransmitted_requests, 1u);
    EXPECT_EQ(receiver.engine->stats().fragmented_messages_reassembled, 1u);
    EXPECT_EQ(receiver.engine->stats().fragment_collections, 0u);
  }
}

TEST(EngineFragmentTest, APeerWithoutSupportGetsWholeMessages) {
  for (bool device_announces : {false, true}) {
    SCOPED_TRACE(device_announces ? "gateway fragment_size 0" : "device fragment_size 0");
    FragmentFixture f(device_announces ? 0 : 576, device_announces ? 576 : 0);
    std::vector<IkeDatagram> sent[2];
    f.net.drop = [&](int from, const IkeDatagram& d) {
      sent[from].push_back(d);
      return false;
    };
    f.initiate();
    f.net.run();
    ASSERT_TRUE(f.established());
    expect_matching_children(*f.gateway, *f.device, f.id);
    // IKE_SA_INIT: the notify only from a device that fragments, and no
    // answer to it from a gateway that does not (nor to a device that
    // did not ask).
    auto announces = [](const IkeDatagram& d) {
      auto message = decode_message(d.message);
      return message && message->find_notify(NotifyType::kIkev2FragmentationSupported) != nullptr;
    };
    ASSERT_FALSE(sent[0].empty());
    ASSERT_FALSE(sent[1].empty());
    EXPECT_EQ(announces(sent[1].front()), device_announces);
    EXPECT_FALSE(announces(sent[0].front()));
    size_t largest = 0;
    for (int node : {0, 1}) {
      for (const auto& d : sent[node]) {
        EXPECT_FALSE(is_skf(d));
        if (is_ike_auth(d)) largest = std::max(largest, wire_size(d));
      }
      EXPECT_EQ(f.net.nodes[node]->engine->stats().fragments_sent, 0u);
    }
    EXPECT_GT(largest, 576u);  // it would have been fragmented
    EXPECT_FALSE(f.device->engine->ike_sa(f.id)->fragmentation);
    EXPECT_FALSE(f.gateway->engine->ike_sas().front().fragmentation);
  }
}

TEST(EngineFragmentTest, FragmentsWithoutNegotiationAreDroppedAndCounted) {
  // The gateway's IKEV2_FRAGMENTATION_SUPPORTED is cut out of its
  // IKE_SA_INIT response on the way: the gateway believes fragmentation
  // negotiated, the device does not, and drops the fragmented IKE_AUTH
  // response it then gets (RFC 7383 2.3: fragments only once both sides
  // announced support).
  FragmentFixture f(576, 576);
  bool stripped = false;
  f.net.drop = [&](int from, const IkeDatagram& d) {
    if (from != 0 || stripped || d.message.size() < 28 || d.message[18] != 34) return false;
    auto message = decode_message(d.message);
    if (!message) return false;
    auto& payloads = message->payloads;
    auto notify = std::find_if(payloads.begin(), payloads.end(), [](const Payload& p) {
      const auto* n = p.get<NotifyPayload>();
      return n && n->type == NotifyType::kIkev2FragmentationSupported;
    });
    if (notify == payloads.end()) return false;
    payloads.erase(notify);
    auto bytes = encode_message(*message);
    if (!bytes) return false;
    stripped = true;
    IkeDatagram changed = d;
    changed.message = std::move(*bytes);
    f.net.in_flight.emplace_front(from, changed);
    return true;
  };
  f.initiate();
  f.net.run();
  ASSERT_TRUE(stripped);
  EXPECT_FALSE(f.established());
  const auto& device = f.device->engine->stats();
  const auto& gateway = f.gateway->engine->stats();
  EXPECT_EQ(device.fragments_sent, 0u);  // the request went whole
  ASSERT_GE(gateway.fragments_sent, 2u);
  EXPECT_EQ(device.fragments_received, gateway.fragments_sent);
  EXPECT_EQ(device.fragments_dropped, gateway.fragments_sent);
  EXPECT_EQ(device.fragment_collections, 0u);
  EXPECT_EQ(device.fragmented_messages_reassembled, 0u);
}

TEST(EngineFragmentTest, InconsistentTotalsAreDroppedAndDoNotDisturbTheCollection) {
  FragmentFixture f(576, 576);
  Holder holder;
  holder.hold = [](int from, const IkeDatagram& d) { return from == 1 && is_skf(d); };
  holder.attach(f.net);
  f.initiate();
  f.net.run();
  auto fragments = holder.held[1];
  ASSERT_GE(fragments.size(), 3u);
  holder.holding = false;
  const auto& stats = f.gateway->engine->stats();
  Holder::deliver(f.net, 1, fragments[0]);
  f.net.run();
  EXPECT_EQ(stats.fragment_collections, 1u);
  // Fragment 2 claiming one fragment fewer than fragment 1 did: dropped
  // (RFC 7383 2.6.1) before any ICV work.
  IkeDatagram fewer = fragments[1];
  fewer.message[35] = uint8_t(fewer.message[35] - 1);
  Holder::deliver(f.net, 1, fewer);
  f.net.run();
  EXPECT_EQ(stats.fragments_dropped, 1u);
  EXPECT_EQ(stats.dropped_icv, 0u);
  // Claiming more: that restarts a collection, but only once its ICV holds
  // (the header is in the AAD): this forged one is dropped, nothing lost.
  IkeDatagram more = fragments[1];
  more.message[35] = uint8_t(more.message[35] + 1);
  Holder::deliver(f.net, 1, more);
  f.net.run();
  EXPECT_EQ(stats.fragments_dropped, 2u);
  EXPECT_EQ(stats.dropped_icv, 1u);
  EXPECT_EQ(stats.fragment_collections, 1u);
  // The genuine rest completes the message collected so far.
  for (size_t i = 1; i < fragments.size(); ++i) Holder::deliver(f.net, 1, fragments[i]);
  f.net.run();
  ASSERT_TRUE(f.established());
  EXPECT_EQ(stats.fragmented_messages_reassembled, 1u);
  EXPECT_EQ(f.device->engine->stats().retransmitted_requests, 0u);
}

TEST(EngineFragmentTest, MemoryStaysBoundedUnderAFloodAndIncompleteMessagesExpire) {
  FragmentFixture f(576, 576, "half_open_timeout_s = 120\n", "", "", "retransmit_timeout_ms = 60000\nhalf_open_timeout_s = 120\n");
  Holder holder;
  holder.hold = [](int from, const IkeDatagram& d) { return from == 1 && is_skf(d); };
  holder.attach(f.net);
  f.initiate();
  f.net.run();
  auto fragments = holder.held[1];
  ASSERT_GE(fragments.size(), 3u);
  const auto& stats = f.gateway->engine->stats();
  holder.holding = false;
  Holder::deliver(f.net, 1, fragments[0]);
  f.net.run();
  holder.holding = true;  // the device's retransmissions stay held
  ASSERT_EQ(stats.fragment_collections, 1u);
  const uint64_t held_bytes = stats.fragment_bytes;
  ASSERT_GT(held_bytes, 0u);
  // A flood: fragment 1 under other message IDs (outside the window, never
  // decrypted) and fragment 2 of the expected one with forged contents
  // (the ICV fails: never stored).
  for (uint32_t i = 0; i < 500; ++i) {
    IkeDatagram other = fragments[0];
    uint32_t message_id = 2 + i;
    other.message[20] = uint8_t(message_id >> 24);
    other.message[21] = uint8_t(message_id >> 16);
    other.message[22] = uint8_t(message_id >> 8);
    other.message[23] = uint8_t(message_id);
    Holder::deliver(f.net, 1, other);
    IkeDatagram forged = fragments[1];
    forged.message[40 + i % 200] ^= uint8_t(1 + i % 255);
    Holder::deliver(f.net, 1, forged);
  }
  EXPECT_EQ(stats.fragment_collections, 1u);
  EXPECT_EQ(stats.fragment_bytes, held_bytes);
  EXPECT_EQ(stats.dropped_message_id, 500u);
  EXPECT_EQ(stats.dropped_icv, 500u);
  EXPECT_EQ(stats.fragments_dropped, 500u);
  // Nothing more arrives: the collection is forgotten after its timeout
  // (30 s), while the half-open IKE SA itself lives on (120 s).
  f.net.advance(29 * kSecond, kSecond);
  EXPECT_EQ(stats.fragment_collections, 1u);
  f.net.advance(2 * kSecond, kSecond);
  EXPECT_EQ(stats.fragment_collections, 0u);
  EXPECT_EQ(stats.fragment_bytes, 0u);
  EXPECT_EQ(f.gateway->engine->ike_sas().size(), 1u);
  // The whole message again: it completes.
  holder.holding = false;
  for (const auto& d : fragments) Holder::deliver(f.net, 1, d);
  f.net.run();
  ASSERT_TRUE(f.established());
  EXPECT_EQ(stats.fragmented_messages_reassembled, 1u);
}

TEST(EngineFragmentTest, CreateChildSaMessagesAreFragmentedToo) {
  // PFS with MODP-2048 (a 256-byte KE), several proposals and eight
  // subnets make the CREATE_CHILD_SA messages of rekeys larger than 576.
  const std::string gateway_profile =
      "esp_proposals = aes128gcm16-modp2048-esn-noesn, aes256gcm16-modp2048-esn-noesn\n"
      "ike_proposals = aes128-sha256-modp2048\n"
      "local_subnets = 10.0.0.0/16, 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16, 10.4.0.0/16, 10.5.0.0/16, "
      "10.6.0.0/16, 10.7.0.0/16\n";
  const std::string device_profile =
      "esp_proposals = aes128gcm16-modp2048-esn-noesn, aes256gcm16-modp2048-esn-noesn, "
      "aes128-sha256-modp2048-esn-noesn, aes256-sha256-modp2048-esn-noesn, aes128-sha1-modp2048-esn-noesn\n"
      "ike_proposals = aes128-sha256-modp2048\n";
  FragmentFixture f(576, 576, "", gateway_profile, device_profile);
  std::vector<IkeDatagram> sent[2];
  f.net.drop = [&](int from, const IkeDatagram& d) {
    sent[from].push_back(d);
    return false;
  };
  f.initiate();
  f.net.run();
  ASSERT_TRUE(f.established());
  for (auto& d : sent) d.clear();
  auto before = f.device->engine->stats();
  auto gateway_before = f.gateway->engine->stats();
  ASSERT_TRUE(f.device->engine->rekey_child(f.id).ok());
  f.net.run();
  ASSERT_TRUE(f.gateway->engine->rekey_child(f.gateway->engine->ike_sas().front().id).ok());
  f.net.run();
  ASSERT_TRUE(f.device->engine->rekey_ike(f.id).ok());
  f.net.run();
  size_t skf[2] = {0, 0};
  for (int node : {0, 1})
    for (const auto& d : sent[node]) {
      EXPECT_LE(wire_size(d), 576u);
      skf[node] += is_skf(d);
    }
  EXPECT_GT(skf[0], 0u);
  EXPECT_GT(skf[1], 0u);
  EXPECT_GT(f.device->engine->stats().fragmented_messages_reassembled, before.fragmented_messages_reassembled);
  EXPECT_GT(f.gateway->engine->stats().fragmented_messages_reassembled,
            gateway_before.fragmented_messages_reassembled);
  auto sas = f.device->engine->ike_sas();
  ASSERT_EQ(sas.size(), 1u);
  EXPECT_EQ(sas.front().state, IkeSaState::kEstablished);
  expect_matching_children(*f.gateway, *f.device, sas.front().id);
}


TEST(EngineTest, BehindANatAQuietIkeSaSendsNatKeepalives) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("dpd_interval_s = 0\n"));
  Node& device = net.add("device", ip("192.168.1.10"),
                         device_config("dev1.fap.example", "dpd_interval_s = 0\nnat_keepalive_s = 5\n"), true);
  ASSERT_TRUE(device.engine->initiate(to_gateway(net, 1)).ok());
  net.run();
  size_t keepalives = 0, from_gateway = 0;
  net.drop = [&](int from, const IkeDatagram& d) {
    if (d.message.size() == 1 && d.message[0] == 0xff) {
      EXPECT_FALSE(d.non_esp_marker);
      EXPECT_EQ(d.remote.port, 4500);
      (from == 1 ? keepalives : from_gateway) += 1;
      return true;
    }
    return false;
  };
  net.advance(21 * kSecond);
  EXPECT_EQ(keepalives, 4u);  // one per 5 s of silence
  EXPECT_EQ(from_gateway, 0u);  // the gateway is not behind a NAT
  EXPECT_EQ(device.engine->stats().nat_keepalives_sent, 4u);
  EXPECT_EQ(gateway.engine->stats().nat_keepalives_sent, 0u);
}

// ---------------------------------------------------------------- MOBIKE (RFC 4555) and external moves

// A device that moves: node 1, behind the NAT or not; MOBIKE negotiated by
// default on both sides.
struct MobikeFixture {
  Network net;
  Node* gateway = nullptr;
  Node* device = nullptr;
  uint64_t device_sa = 0;
  uint64_t gateway_sa = 0;

  MobikeFixture(const std::string& gateway_extra, bool behind_nat, bool no_nats_allowed = false,
                const std::string& device_address = "192.168.1.10") {
    gateway = &net.add("gateway", ip("198.51.100.1"), gateway_config(gateway_extra + "dpd_interval_s = 0\n"));
    device = &net.add("device", ip(device_address.c_str()), device_config("dev1.fap.example", "dpd_interval_s = 0\n"),
                      behind_nat);
    auto request = to_gateway(net, 1);
    request.no_nats_allowed = no_nats_allowed;
    device_sa = *device->engine->initiate(request);
    net.run();
    auto sas = gateway->engine->ike_sas();
    if (!sas.empty()) gateway_sa = sas.front().id;
  }
  std::vector<dp_link::RecordedCall> path_updates(const Node& node) const {
    std::vector<dp_link::RecordedCall> out;
    for (const auto& call : node.installer.calls())
      if (call.kind == shared::channel::CommandKind::kUpdatePath) out.push_back(call);
    return out;
  }
  // The device's own address changes (and with it, perhaps, the NAT).
  void device_moves(const char* address, bool behind_nat) {
    device->address = ip(address);
    device->behind_nat = behind_nat;
    ASSERT_TRUE(device->engine->update_local_address(device_sa, {device->address, 4500}).ok());
  }
};

TEST(EngineMobikeTest, BothEndsNegotiateMobikeAndExchangeAdditionalAddresses) {
  MobikeFixture f("additional_addresses = 198.51.100.5\n", true);
  auto gateway_view = f.gateway->engine->ike_sa(f.gateway_sa);
  auto device_view = f.device->engine->ike_sa(f.device_sa);
  ASSERT_TRUE(gateway_view && device_view);
  EXPECT_TRUE(gateway_view->mobike_supported);
  EXPECT_TRUE(device_view->mobike_supported);
  ASSERT_EQ(device_view->peer_additional_addresses.size(), 1u);
  EXPECT_EQ(device_view->peer_additional_addresses[0], ip("198.51.100.5"));
  // Without additional addresses the gateway says NO_ADDITIONAL_ADDRESSES.
  MobikeFixture g("", true);
  EXPECT_TRUE(g.device->engine->ike_sa(g.device_sa)->peer_additional_addresses.empty());
}

TEST(EngineMobikeTest, MoveBetweenNatsMovesEverythingOnceAfterTheReturnRoutabilityCheck) {
  MobikeFixture f("", true);
  auto children_before = f.gateway->engine->ike_sa(f.gateway_sa)->children;
  f.net.nat_epoch[1] = 1;  // a new NAT mapping: the device changed networks
  f.device_moves("192.168.1.10", true);
  f.net.run();
  auto info = *f.gateway->engine->ike_sa(f.gateway_sa);
  EXPECT_EQ(info.remote, f.net.public_of(1, 4500));
  EXPECT_TRUE(info.udp_encapsulation);
  auto updates = f.path_updates(*f.gateway);
  ASSERT_EQ(updates.size(), 1u);  // one atomic update for the IKE SA's tunnel
  EXPECT_EQ(updates[0].tunnel_id, children_before.front().tunnel_id);
  EXPECT_EQ(updates[0].path.remote_port, f.net.public_of(1, 4500).port);
  EXPECT_TRUE(updates[0].path.udp_encapsulation);
  const auto& s = f.gateway->engine->stats();
  EXPECT_EQ(s.mobike_updates_received, 1u);
  EXPECT_EQ(s.remap_checks_sent, 1u);  // verify: the new address proved itself first
  EXPECT_EQ(s.remaps_verified, 1u);
  EXPECT_EQ(f.gateway->count(EngineEventKind::kMoved), 1u);
  EXPECT_EQ(f.device->count(EngineEventKind::kMoved), 1u);  // the device saw COOKIE2 echoed
  EXPECT_EQ(f.device->engine->stats().mobike_updates_sent, 1u);
  // No rekey, no new IKE SA: same SPIs, and the SA still works.
  EXPECT_EQ(f.gateway->engine->ike_sa(f.gateway_sa)->children.front().inbound_spi, children_before.front().inbound_spi);
  ASSERT_TRUE(f.device->engine->rekey_child(f.device_sa).ok());
  f.net.run();
  expect_matching_children(*f.gateway, *f.device, f.device_sa);
}

TEST(EngineMobikeTest, UnderFollowTheUpdateMovesAtOnce) {
  MobikeFixture f("remap = follow\n", true);
  f.net.nat_epoch[1] = 1;
  f.device_moves("192.168.1.10", true);
  f.net.run();
  EXPECT_EQ(f.gateway->engine->ike_sa(f.gateway_sa)->remote, f.net.public_of(1, 4500));
  EXPECT_EQ(f.gateway->engine->stats().remap_checks_sent, 0u);
  EXPECT_EQ(f.path_updates(*f.gateway).size(), 1u);
}

TEST(EngineMobikeTest, MovingOutFromBehindTheNatSwitchesEncapsulationOff) {
  MobikeFixture f("", true);
  ASSERT_TRUE(f.gateway->engine->ike_sa(f.gateway_sa)->udp_encapsulation);
  f.device_moves("203.0.113.10", false);
  f.net.run();
  auto info = *f.gateway->engine->ike_sa(f.gateway_sa);
  EXPECT_EQ(info.remote, (shared::channel::OuterEndpoint{ip("203.0.113.10"), 4500}));
  EXPECT_FALSE(info.udp_encapsulation);
  EXPECT_FALSE(info.peer_behind_nat);
  auto updates = f.path_updates(*f.gateway);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_FALSE(updates[0].path.udp_encapsulation);
  EXPECT_EQ(updates[0].path.remote, ip("203.0.113.10"));
  // The device drops encapsulation too, and moves its own SAs' local address.
  auto device_updates = f.path_updates(*f.device);
  ASSERT_EQ(device_updates.size(), 1u);
  EXPECT_FALSE(device_updates[0].path.udp_encapsulation);
  EXPECT_EQ(device_updates[0].path.local, ip("203.0.113.10"));
}

TEST(EngineMobikeTest, MovingBehindANatSwitchesEncapsulationOn) {
  MobikeFixture f("", false, false, "203.0.113.10");
  ASSERT_FALSE(f.gateway->engine->ike_sa(f.gateway_sa)->udp_encapsulation);
  f.device_moves("192.168.1.10", true);
  f.net.run();
  auto info = *f.gateway->engine->ike_sa(f.gateway_sa);
  EXPECT_EQ(info.remote, f.net.public_of(1, 4500));
  EXPECT_TRUE(info.udp_encapsulation);
  EXPECT_TRUE(info.peer_behind_nat);
  auto updates = f.path_updates(*f.gateway);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_TRUE(updates[0].path.udp_encapsulation);
}

TEST(EngineMobikeTest, NoNatsAllowedInIkeSaInitBehindANatGetsUnexpectedNatDetected) {
  MobikeFixture f("", true, true);
  EXPECT_TRUE(f.gateway->engine->ike_sas().empty());  // no state kept
  EXPECT_EQ(f.gateway->engine->stats().mobike_nat_refused, 1u);
  EXPECT_EQ(f.device->count(EngineEventKind::kEstablished), 0u);
  // Without a NAT the same request is fine.
  MobikeFixture g("", false, true, "203.0.113.10");
  EXPECT_EQ(g.device->count(EngineEventKind::kEstablished), 1u);
}

TEST(EngineMobikeTest, NoNatsAllowedInAnUpdateBehindANatIsRefusedAndNothingMoves) {
  MobikeFixture f("", false, true, "203.0.113.10");
  ASSERT_EQ(f.device->count(EngineEventKind::kEstablished), 1u);
  auto before = f.gateway->engine->ike_sa(f.gateway_sa)->remote;
  f.device_moves("192.168.1.10", true);
  f.net.run();
  EXPECT_EQ(f.gateway->engine->ike_sa(f.gateway_sa)->remote, before);
  EXPECT_TRUE(f.path_updates(*f.gateway).empty());
  EXPECT_EQ(f.gateway->engine->stats().mobike_nat_refused, 1u);
  EXPECT_EQ(f.device->count(EngineEventKind::kMoveRefused), 1u);
  EXPECT_EQ(f.device->engine->stats().mobike_updates_refused, 1u);
}

TEST(EngineMobikeTest, AnAddressOutsideThePolicyGetsUnacceptableAddresses) {
  MobikeFixture f("mobike_allowed_networks = 198.51.100.0/24\n", true);
  auto before = f.gateway->engine->ike_sa(f.gateway_sa)->remote;
  f.device_moves("203.0.113.10", false);
  f.net.run();
  EXPECT_EQ(f.gateway->engine->ike_sa(f.gateway_sa)->remote, before);
  EXPECT_TRUE(f.path_updates(*f.gateway).empty());
  EXPECT_EQ(f.gateway->engine->stats().mobike_unacceptable, 1u);
  EXPECT_EQ(f.device->count(EngineEventKind::kMoveRefused), 1u);
}

TEST(EngineMobikeTest, AnUpdateRelayedByAnAttackerDoesNotMoveUnderVerify) {
  MobikeFixture f("", true);
  auto before = f.gateway->engine->ike_sa(f.gateway_sa)->remote;
  // The attacker withholds the device's update and sends it on from its own
  // address; it never answers the check (it has no keys).
  shared::channel::OuterEndpoint attacker{ip("203.0.113.66"), 4500};
  bool withheld = false;
  f.net.drop = [&](int from, const IkeDatagram& d) {
    if (from == 1 && !withheld) {
      withheld = true;
      IkeDatagram relayed;
      relayed.local = {ip("198.51.100.1"), 4500};
      relayed.remote = attacker;
      relayed.non_esp_marker = true;
      relayed.message = d.message;
      f.gateway->engine->handle_datagram(relayed);
      return true;
    }
    return false;
  };
  f.net.nat_epoch[1] = 1;
  f.device_moves("192.168.1.10", true);
  f.net.advance(10 * kSecond);
  EXPECT_TRUE(withheld);
  EXPECT_NE(f.gateway->engine->ike_sa(f.gateway_sa)->remote, attacker);
  for (const auto& update : f.path_updates(*f.gateway)) EXPECT_NE(update.path.remote, attacker.address);
  EXPECT_GE(f.gateway->engine->stats().remap_checks_failed, 1u);
  // The device's own traffic from its real new mapping still gets it moved.
  auto child = f.gateway->engine->ike_sa(f.gateway_sa)->children.front();
  f.gateway->engine->on_new_source(child.inbound_spi, f.net.public_of(1, 4500));
  f.net.run();
  EXPECT_EQ(f.gateway->engine->ike_sa(f.gateway_sa)->remote, f.net.public_of(1, 4500));
  EXPECT_NE(f.gateway->engine->ike_sa(f.gateway_sa)->remote, before);
}

TEST(EngineMobikeTest, OnlyTheOriginalInitiatorMayUpdateAndOnlyWithMobike) {
  MobikeFixture f("mobike = no\n", true);
  EXPECT_FALSE(f.device->engine->ike_sa(f.device_sa)->mobike_supported);
  EXPECT_FALSE(f.device->engine->update_local_address(f.device_sa, {ip("192.168.1.10"), 4500}).ok());
  MobikeFixture g("", true);
  // The gateway is the responder: it does not send updates.
  EXPECT_FALSE(g.gateway->engine->update_local_address(g.gateway_sa, {ip("198.51.100.1"), 4500}).ok());
}

TEST(EngineMobikeTest, ARemapCheckReplacesALivenessCheckLostOnTheOldMapping) {
  Network net;
  Node& gateway = net.add("gateway", ip("198.51.100.1"), gateway_config("dpd_interval_s = 5\n"));
  Node& device = net.add("device", ip("192.168.1.10"), device_config("dev1.fap.example", "dpd_interval_s = 0\n"), true);
  ASSERT_TRUE(device.engine->initiate(to_gateway(net, 1)).ok());
  net.run();
  auto child = gateway.engine->ike_sas().front().children.front();
  net.nat_epoch[1] = 1;     // remapped while the downlink is quiet
  net.advance(6 * kSecond);  // the gateway's liveness check goes to the old mapping and is lost
  ASSERT_EQ(gateway.engine->stats().remap_checks_sent, 0u);
  gateway.engine->on_new_source(child.inbound_spi, net.public_of(1, 4500));
  net.run();
  // The check did not wait for the liveness retransmissions to give up.
  EXPECT_EQ(gateway.engine->ike_sas().front().remote, net.public_of(1, 4500));
  EXPECT_EQ(gateway.engine->stats().remaps_verified, 1u);
}

TEST(EngineExternalMoveTest, MovesTheIkeSaAndAllChildrenWithOnePathUpdate) {
  MobikeFixture f("", true);
  shared::channel::OuterEndpoint to{ip("198.51.100.77"), 4777};
  ASSERT_TRUE(f.gateway->engine->move(f.gateway_sa, to).ok());
  auto info = *f.gateway->engine->ike_sa(f.gateway_sa);
  EXPECT_EQ(info.remote, to);
  EXPECT_EQ(info.moves, 1u);
  auto updates = f.path_updates(*f.gateway);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].path.remote, to.address);
  EXPECT_EQ(updates[0].path.remote_port, to.port);
  EXPECT_TRUE(updates[0].path.udp_encapsulation);
  EXPECT_EQ(f.gateway->engine->stats().external_moves, 1u);
  ASSERT_EQ(f.gateway->count(EngineEventKind::kMoved), 1u);
  EXPECT_NE(f.gateway->events.back().detail.find("external"), std::string::npos);
  // Errors change nothing.
  EXPECT_FALSE(f.gateway->engine->move(999, to).ok());
  EXPECT_FALSE(f.gateway->engine->move(f.gateway_sa, {ip("2001:db8::7"), 4500}).ok());
  EXPECT_FALSE(f.gateway->engine->move(f.gateway_sa, {ip("198.51.100.78"), 0}).ok());
  EXPECT_EQ(f.path_updates(*f.gateway).size(), 1u);
}

}  // namespace
}  // namespace segw::cp::ike
