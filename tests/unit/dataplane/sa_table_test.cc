// SA table tests: inbound SPI indexing, outbound longest-prefix routes
// (IPv4 and IPv6), route ownership across rekeys, tunnels shared by SAs,
// RCU-deferred frees, and a million tunnels installed and removed.
#include "dataplane/sad/sa_table.h"

#include <gtest/gtest.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <chrono>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <atomic>
#include <vector>

#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp {
namespace {

using shared::SaDirection;
using testing::address;
using testing::selector;

constexpr uint32_t kCapacity = 1024;  // small_config's default: 10 index bits

// An outbound SA of `tunnel_id` whose remote selectors (hence routes) are
// `destinations`.
shared::SaDescriptor outbound(uint32_t spi, std::initializer_list<std::string_view> destinations,
                              uint32_t tunnel_id = 1) {
  testing::TunnelSpec spec;
  spec.spi = spi;
  spec.tunnel_id = tunnel_id;
  spec.destinations.clear();
  for (std::string_view d : destinations) spec.destinations.push_back(selector(d));
  return testing::outbound_sa(spec);
}

// An inbound SA of `tunnel_id`. Its path is the gateway's own view, the same
// as its outbound SA's, so both share the tunnel (support's inbound_sa models
// the peer gateway and mirrors the path).
shared::SaDescriptor inbound(uint32_t spi, uint32_t tunnel_id = 1) {
  testing::TunnelSpec spec;
  spec.spi = spi;
  spec.tunnel_id = tunnel_id;
  shared::SaDescriptor d = testing::inbound_sa(spec);
  d.path = spec.path;
  return d;
}

// The next hop the FIB holds for `destination` (outbound index + 1, or kNoRoute).
uint64_t next_hop_for(const SaTables& tables, const shared::IpAddress& destination) {
  uint64_t next_hop = SaTables::kNoRoute;
  if (destination.is_ipv4()) {
    uint32_t ip = destination.ipv4_host_order();
    EXPECT_EQ(rte_fib_lookup_bulk(tables.ipv4_routes(), &ip, &next_hop, 1), 0);
  } else {
    uint8_t ip[1][RTE_FIB6_IPV6_ADDR_SIZE];
    std::memcpy(ip[0], destination.bytes(), 16);
    EXPECT_EQ(rte_fib6_lookup_bulk(tables.ipv6_routes(), ip, &next_hop, 1), 0);
  }
  return next_hop;
}

// SPI of the outbound SA that traffic to `destination` is routed to, as the
// outbound burst finds it; nullopt when there is no route.
std::optional<uint32_t> routed_spi(const SaTables& tables, std::string_view destination) {
  uint64_t next_hop = next_hop_for(tables, address(destination));
  if (next_hop == SaTables::kNoRoute) return std::nullopt;
  const EspSa* sa = tables.outbound_at(static_cast<uint32_t>(next_hop - 1));
  if (sa == nullptr) {
    ADD_FAILURE() << destination << " routes to outbound index " << next_hop - 1 << ", which is empty";
    return std::nullopt;
  }
  return sa->spi;
}

class SaTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = SaTables::create(testing::small_config(kCapacity));
    ASSERT_TRUE(created.ok()) << created.error();
    tables_ = std::move(created.value());
  }

  void install_ok(const shared::SaDescriptor& d) {
    shared::Status s = tables_->install(d);
    ASSERT_TRUE(s.ok()) << "SPI " << std::hex << d.spi << ": " << s.error();
  }
  void remove_ok(uint32_t spi, SaDirection direction) {
    shared::Status s = tables_->remove(spi, direction);
    ASSERT_TRUE(s.ok()) << "SPI " << std::hex << spi << ": " << s.error();
  }

  std::unique_ptr<SaTables> tables_;
};

// ---------------------------------------------------------------------------
// Install, find, remove.

TEST_F(SaTableTest, InstallFindRemoveInbound) {
  const uint32_t spi = 0xa1000123;
  install_ok(inbound(spi));
  EspSa* sa = tables_->find(spi, SaDirection::kInbound);
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->spi, spi);
  EXPECT_EQ(sa->direction, SaDirection::kInbound);
  EXPECT_EQ(sa->table_index, spi & (kCapacity - 1));
  EXPECT_EQ(tables_->inbound_lookup(spi), sa);
  EXPECT_EQ(tables_->find(spi, SaDirection::kOutbound), nullptr);
  EXPECT_EQ(tables_->inbound_count(), 1u);
  EXPECT_EQ(tables_->outbound_count(), 0u);
  EXPECT_EQ(sa->replay.window(), 1024u);
  ASSERT_NE(sa->tunnel, nullptr);
  EXPECT_EQ(sa->tunnel, tables_->tunnel(1));

  remove_ok(spi, SaDirection::kInbound);
  EXPECT_EQ(tables_->find(spi, SaDirection::kInbound), nullptr);
  EXPECT_EQ(tables_->inbound_lookup(spi), nullptr);
  EXPECT_EQ(tables_->inbound_count(), 0u);
  EXPECT_EQ(tables_->tunnel(1), nullptr) << "the tunnel's last SA is gone";
  // No reader is registered: everything deferred can go at once.
  EXPECT_GT(tables_->pending_reclaim(), 0u);
  tables_->reclaim();
  EXPECT_EQ(tables_->pending_reclaim(), 0u);
}

TEST_F(SaTableTest, InstallFindRemoveOutbound) {
  const uint32_t spi = 0xb2000001;
  install_ok(outbound(spi, {"10.2.0.0/16", "fd00:2::/48"}));
  EspSa* sa = tables_->find(spi, SaDirection::kOutbound);
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->spi, spi);
  EXPECT_EQ(sa->direction, SaDirection::kOutbound);
  EXPECT_EQ(tables_->outbound_at(sa->table_index), sa);
  EXPECT_EQ(tables_->find(spi, SaDirection::kInbound), nullptr);
  EXPECT_EQ(tables_->outbound_count(), 1u);
  EXPECT_EQ(routed_spi(*tables_, "10.2.200.1"), spi);
  EXPECT_EQ(routed_spi(*tables_, "fd00:2::77"), spi);
  EXPECT_EQ(routed_spi(*tables_, "10.3.0.1"), std::nullopt);

  remove_ok(spi, SaDirection::kOutbound);
  EXPECT_EQ(tables_->find(spi, SaDirection::kOutbound), nullptr);
  EXPECT_EQ(tables_->outbound_at(sa->table_index), nullptr);
  EXPECT_EQ(tables_->outbound_count(), 0u);
  EXPECT_EQ(routed_spi(*tables_, "10.2.200.1"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "fd00:2::77"), std::nullopt);
  tables_->reclaim();
  EXPECT_EQ(tables_->pending_reclaim(), 0u);
}

TEST_F(SaTableTest, InboundAndOutboundOfOneTunnelShareItsPath) {
  install_ok(inbound(0x1001));
  install_ok(outbound(0x2001, {"10.2.0.0/16"}));
  const Tunnel* tunnel = tables_->tunnel(1);
  ASSERT_NE(tunnel, nullptr);
  EXPECT_EQ(tunnel->sa_count, 2u);
  EXPECT_EQ(tables_->find(0x1001, SaDirection::kInbound)->tunnel, tunnel);
  EXPECT_EQ(tables_->find(0x2001, SaDirection::kOutbound)->tunnel, tunnel);
  int visited = 0;
  tables_->for_each_sa([&](const EspSa&) { ++visited; });
  EXPECT_EQ(visited, 2);
}

TEST_F(SaTableTest, DuplicateSpiIsRejected) {
  install_ok(inbound(0x1001));
  install_ok(outbound(0x2002, {"10.2.0.0/16"}));
  shared::Status again_in = tables_->install(inbound(0x1001));
  EXPECT_FALSE(again_in.ok());
  EXPECT_NE(again_in.error().find("duplicate"), std::string::npos) << again_in.error();
  shared::Status again_out = tables_->install(outbound(0x2002, {"10.9.0.0/16"}));
  EXPECT_FALSE(again_out.ok());
  EXPECT_NE(again_out.error().find("duplicate"), std::string::npos) << again_out.error();
  // Nothing changed: no second SA, no route for the refused one.
  EXPECT_EQ(tables_->inbound_count(), 1u);
  EXPECT_EQ(tables_->outbound_count(), 1u);
  EXPECT_EQ(routed_spi(*tables_, "10.9.0.1"), std::nullopt);
  EXPECT_EQ(tables_->tunnel(1)->sa_count, 2u);
  // The same SPI in the other direction is another SA (the peer chose it).
  install_ok(outbound(0x1001, {"10.9.0.0/16"}));
  install_ok(inbound(0x2002));
}

TEST_F(SaTableTest, InboundSpiCarriesItsIndexAndRandomBitsAreChecked) {
  EXPECT_EQ(tables_->index_bits(), 10u);
  const uint32_t spi = 0x5a5a0000 | 0x2c7;           // index 0x2c7
  const uint32_t same_index = 0x3c3c0000 | 0x2c7;    // same low 10 bits, other random bits
  install_ok(inbound(spi));
  EXPECT_NE(tables_->inbound_lookup(spi), nullptr);
  // A packet with a guessed index but other high bits finds nothing.
  EXPECT_EQ(tables_->inbound_lookup(same_index), nullptr);
  EXPECT_EQ(tables_->find(same_index, SaDirection::kInbound), nullptr);
  EXPECT_EQ(tables_->inbound_lookup(spi ^ 0x80000000u), nullptr);
  EXPECT_EQ(tables_->inbound_lookup(spi + 1), nullptr);
  // The index is taken: the control plane must pick another SPI.
  shared::Status collision = tables_->install(inbound(same_index));
  EXPECT_FALSE(collision.ok());
  EXPECT_NE(collision.error().find("index"), std::string::npos) << collision.error();
  EXPECT_EQ(tables_->inbound_lookup(spi)->spi, spi) << "the refused install must leave the slot alone";
  EXPECT_FALSE(tables_->remove(same_index, SaDirection::kInbound).ok());
  // Once freed, the index serves the new SPI and only it.
  remove_ok(spi, SaDirection::kInbound);
  install_ok(inbound(same_index));
  EXPECT_EQ(tables_->inbound_lookup(same_index)->spi, same_index);
  EXPECT_EQ(tables_->inbound_lookup(spi), nullptr);
}

TEST_F(SaTableTest, InvalidDescriptorsAreRejected) {
  EXPECT_FALSE(tables_->install(inbound(0xff)).ok()) << "SPIs below 256 are reserved (RFC 4303 2.1)";
  shared::SaDescriptor small_window = inbound(0x1001);
  small_window.replay_window = 32;
  EXPECT_FALSE(tables_->install(small_window).ok());
  shared::SaDescriptor big_window = inbound(0x1002);
  big_window.replay_window = 65536;
  EXPECT_FALSE(tables_->install(big_window).ok());
  shared::SaDescriptor no_route = outbound(0x2001, {});
  EXPECT_FALSE(tables_->install(no_route).ok());
  shared::SaDescriptor mixed = inbound(0x1003);
  mixed.path.remote = testing::Endpoints::b_ipv6();
  EXPECT_FALSE(tables_->install(mixed).ok());
  EXPECT_EQ(tables_->inbound_count() + tables_->outbound_count(), 0u);
  EXPECT_EQ(tables_->tunnel(1), nullptr);
}

TEST_F(SaTableTest, InboundWindowSizesFromTheDescriptor) {
  uint32_t spi = 0x7000;
  for (uint32_t window : {64u, 100u, 4096u, 32768u}) {
    shared::SaDescriptor d = inbound(++spi);
    d.replay_window = window;
    install_ok(d);
    EXPECT_EQ(tables_->find(d.spi, SaDirection::kInbound)->replay.window(), window);
    EXPECT_GE(SaTables::sa_footprint(window, true),
              SaTables::sa_footprint(64, false) + ReplayWindow::slot_count_for(window) * sizeof(uint64_t));
  }
}

TEST_F(SaTableTest, TunnelWithAnotherPathIsRefused) {
  install_ok(inbound(0x1001));
  shared::SaDescriptor moved = inbound(0x1002);
  moved.path.remote_port = 1234;
  shared::Status s = tables_->install(moved);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error().find("path"), std::string::npos) << s.error();
  EXPECT_EQ(tables_->tunnel(1)->sa_count, 1u);
}

TEST_F(SaTableTest, RemovingWhatIsNotThereFails) {
  EXPECT_FALSE(tables_->remove(0x1001, SaDirection::kInbound).ok());
  EXPECT_FALSE(tables_->remove(0x1001, SaDirection::kOutbound).ok());
  install_ok(inbound(0x1001));
  EXPECT_FALSE(tables_->remove(0x1001, SaDirection::kOutbound).ok()) << "wrong direction";
  remove_ok(0x1001, SaDirection::kInbound);
  EXPECT_FALSE(tables_->remove(0x1001, SaDirection::kInbound).ok()) << "removed twice";
  EXPECT_FALSE(tables_->path_update(77, testing::path_a_to_b(testing::OuterKind::kIpv4Udp)).ok());
}

// ---------------------------------------------------------------------------
// Capacity.

TEST(SaTableCapacity, OutboundTableFull) {
  constexpr uint32_t kSmall = 16;
  auto created = SaTables::create(testing::small_config(kSmall));
  ASSERT_TRUE(created.ok()) << created.error();
  SaTables& tables = *created.value();
  auto nth = [](uint32_t i) {
    return outbound(0x20000 + i, {"10.5." + std::to_string(i) + ".0/24"}, /*tunnel_id=*/i + 1);
  };
  for (uint32_t i = 0; i < kSmall; ++i) ASSERT_TRUE(tables.install(nth(i)).ok()) << i;
  shared::Status full = tables.install(nth(kSmall));
  EXPECT_FALSE(full.ok());
  EXPECT_NE(full.error().find("full"), std::string::npos) << full.error();
  EXPECT_EQ(routed_spi(tables, "10.5.16.1"), std::nullopt);
  EXPECT_EQ(tables.tunnel(kSmall + 1), nullptr) << "a refused SA must not leave its tunnel behind";
  // A removed SA's index is reused.
  ASSERT_TRUE(tables.remove(0x20000 + 3, SaDirection::kOutbound).ok());
  ASSERT_TRUE(tables.install(nth(kSmall)).ok());
  EXPECT_EQ(routed_spi(tables, "10.5.16.1"), 0x20000 + kSmall);
  EXPECT_EQ(routed_spi(tables, "10.5.3.1"), std::nullopt);
  for (uint32_t i = 0; i <= kSmall; ++i) {
    if (i == 3) continue;
    EXPECT_EQ(routed_spi(tables, "10.5." + std::to_string(i) + ".1"), 0x20000 + i) << i;
  }
}

TEST(SaTableCapacity, InboundTableFull) {
  // Every index in use: any further SPI collides with one of them.
  constexpr uint32_t kSmall = 16;
  auto created = SaTables::create(testing::small_config(kSmall));
  ASSERT_TRUE(created.ok()) << created.error();
  SaTables& tables = *created.value();
  for (uint32_t i = 0; i < kSmall; ++i) ASSERT_TRUE(tables.install(inbound(0x4400 + i)).ok()) << i;
  for (uint32_t spi : {0x4410u, 0x9999u, 0xfffffff0u}) {
    shared::Status s = tables.install(inbound(spi));
    EXPECT_FALSE(s.ok()) << std::hex << spi;
  }
  EXPECT_EQ(tables.inbound_count(), kSmall);
}

// ---------------------------------------------------------------------------
// Outbound routes: longest-prefix match over the remote selectors.

TEST_F(SaTableTest, LongestPrefixMatchIpv4) {
  install_ok(outbound(0x100, {"0.0.0.0/0"}, 1));
  install_ok(outbound(0x200, {"10.0.0.0/8"}, 2));
  install_ok(outbound(0x300, {"10.1.2.0/24"}, 3));
  install_ok(outbound(0x400, {"10.1.2.3/32"}, 4));
  install_ok(outbound(0x500, {"10.1.2.128/25"}, 5));  // overlaps the /24
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.3"), 0x400u);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.4"), 0x300u);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.2"), 0x300u);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.200"), 0x500u);
  EXPECT_EQ(routed_spi(*tables_, "10.1.3.1"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "10.255.255.255"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "11.0.0.0"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "255.255.255.255"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "fd00::1"), std::nullopt) << "an IPv4 default does not cover IPv6";
  // Removing a more specific route uncovers the next shorter one.
  remove_ok(0x400, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.3"), 0x300u);
  remove_ok(0x300, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.3"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "10.1.2.200"), 0x500u);
  remove_ok(0x100, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "11.0.0.0"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "10.0.0.1"), 0x200u);
}

TEST_F(SaTableTest, LongestPrefixMatchIpv6) {
  install_ok(outbound(0x100, {"::/0"}, 1));
  install_ok(outbound(0x200, {"2001:db8::/32"}, 2));
  install_ok(outbound(0x300, {"2001:db8:1::/48"}, 3));
  install_ok(outbound(0x400, {"2001:db8:1::5/128"}, 4));
  install_ok(outbound(0x500, {"2001:db8:1:0:8000::/65"}, 5));
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1::5"), 0x400u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1::6"), 0x300u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1:0:8000::1"), 0x500u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1:1::5"), 0x300u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:2::5"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db9::"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.0.0.1"), std::nullopt) << "an IPv6 default does not cover IPv4";
  remove_ok(0x400, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1::5"), 0x300u);
  remove_ok(0x200, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:2::5"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "2001:db8:1::5"), 0x300u);
}

TEST_F(SaTableTest, AddressRangeSelectorsBecomeExactPrefixes) {
  // 10.3.0.5 - 10.3.0.10 is not a prefix: /32, /31, /31, /32.
  shared::SaDescriptor d = outbound(0x600, {});
  d.remote_selectors[0].start = address("10.3.0.5");
  d.remote_selectors[0].end = address("10.3.0.10");
  d.remote_selector_count = 1;
  install_ok(d);
  for (int last = 0; last <= 16; ++last) {
    std::string destination = "10.3.0." + std::to_string(last);
    bool inside = last >= 5 && last <= 10;
    EXPECT_EQ(routed_spi(*tables_, destination).has_value(), inside) << destination;
  }
  auto prefixes = range_to_prefixes(address("10.3.0.5"), address("10.3.0.10"));
  ASSERT_EQ(prefixes.size(), 4u);
  EXPECT_EQ(prefixes[0].to_string(), "10.3.0.5/32");
  EXPECT_EQ(prefixes[1].to_string(), "10.3.0.6/31");
  EXPECT_EQ(prefixes[2].to_string(), "10.3.0.8/31");
  EXPECT_EQ(prefixes[3].to_string(), "10.3.0.10/32");
  auto everything = range_to_prefixes(address("0.0.0.0"), address("255.255.255.255"));
  ASSERT_EQ(everything.size(), 1u);
  EXPECT_EQ(everything[0].length, 0);
  auto everything6 = range_to_prefixes(address("::"), address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  ASSERT_EQ(everything6.size(), 1u);
  EXPECT_EQ(everything6[0].length, 0);
  auto top_end = range_to_prefixes(address("255.255.255.254"), address("255.255.255.255"));
  ASSERT_EQ(top_end.size(), 1u);
  EXPECT_EQ(top_end[0].to_string(), "255.255.255.254/31");
}

// ---------------------------------------------------------------------------
// Rekey (make before break): the newest SA of a selector owns its route.

TEST_F(SaTableTest, RekeyedOutboundSaTakesTheRouteOverAndGivesItBack) {
  install_ok(outbound(0x100, {"10.2.0.0/16", "fd00:2::/48"}));
  install_ok(outbound(0x200, {"10.2.0.0/16", "fd00:2::/48"}));  // the rekeyed child SA
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.9"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "fd00:2::9"), 0x200u);
  remove_ok(0x200, SaDirection::kOutbound);  // e.g. the rekey is rolled back
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.9"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "fd00:2::9"), 0x100u);
  remove_ok(0x100, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.9"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "fd00:2::9"), std::nullopt);
}

TEST_F(SaTableTest, RemovingTheOldSaAfterARekeyKeepsTheNewRoute) {
  install_ok(outbound(0x100, {"10.2.0.0/16"}));
  install_ok(outbound(0x200, {"10.2.0.0/16"}));
  remove_ok(0x100, SaDirection::kOutbound);  // the normal end of a rekey
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.9"), 0x200u);
  remove_ok(0x200, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.9"), std::nullopt);
}

TEST_F(SaTableTest, RouteOwnershipIsAStack) {
  // Three generations, partly overlapping selectors.
  install_ok(outbound(0x100, {"10.2.0.0/16", "10.7.0.0/16"}));
  install_ok(outbound(0x200, {"10.2.0.0/16"}));
  install_ok(outbound(0x300, {"10.2.0.0/16", "10.7.0.0/16"}));
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x300u);
  EXPECT_EQ(routed_spi(*tables_, "10.7.0.1"), 0x300u);
  remove_ok(0x200, SaDirection::kOutbound);  // the middle one: not active, nothing moves
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x300u);
  remove_ok(0x300, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.7.0.1"), 0x100u);
  // A new SA reuses 0x300's index: the old route entries must not point at it.
  install_ok(outbound(0x400, {"10.9.0.0/16"}));
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.9.0.1"), 0x400u);
}

TEST_F(SaTableTest, SeveralInboundSasPerTunnelDuringARekey) {
  install_ok(inbound(0x1001));
  install_ok(inbound(0x1002));  // new child SA; the old one still receives
  const EspSa* old_sa = tables_->inbound_lookup(0x1001);
  const EspSa* new_sa = tables_->inbound_lookup(0x1002);
  ASSERT_NE(old_sa, nullptr);
  ASSERT_NE(new_sa, nullptr);
  EXPECT_NE(old_sa, new_sa);
  EXPECT_EQ(old_sa->tunnel, new_sa->tunnel);
  EXPECT_EQ(tables_->tunnel(1)->sa_count, 2u);
  // Separate windows: a sequence number used on one is fresh on the other.
  ASSERT_EQ(tables_->inbound_lookup(0x1001)->replay.update(1), ReplayVerdict::kAccept);
  EXPECT_EQ(tables_->inbound_lookup(0x1002)->replay.check(1), ReplayVerdict::kAccept);
  remove_ok(0x1001, SaDirection::kInbound);
  EXPECT_EQ(tables_->inbound_lookup(0x1002), new_sa);
  ASSERT_NE(tables_->tunnel(1), nullptr);
  EXPECT_EQ(tables_->tunnel(1)->sa_count, 1u);
  remove_ok(0x1002, SaDirection::kInbound);
  EXPECT_EQ(tables_->tunnel(1), nullptr);
}

// ---------------------------------------------------------------------------
// Selector (route) updates of installed SAs.

TEST_F(SaTableTest, OutboundSelectorUpdateMovesItsRoutesAndKeepsTheCommonOnes) {
  install_ok(outbound(0x100, {"10.2.0.0/16", "10.3.0.0/16"}));
  install_ok(outbound(0x200, {"10.9.0.0/16"}));
  std::vector<shared::TrafficSelector> wanted = {selector("10.3.0.0/16"), selector("10.4.0.0/16"),
                                                 selector("fd00:4::/48")};
  ASSERT_TRUE(tables_->update_selectors(0x100, SaDirection::kOutbound, nullptr, 0, wanted.data(), 3).ok());
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), std::nullopt) << "dropped selector: route gone";
  EXPECT_EQ(routed_spi(*tables_, "10.3.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.4.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "fd00:4::1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.9.0.1"), 0x200u) << "another SA's route untouched";
  const SelectorSet* set = tables_->find(0x100, SaDirection::kOutbound)->selectors.load();
  EXPECT_EQ(set->local_count, 0);
  ASSERT_EQ(set->remote_count, 3);
  EXPECT_EQ(set->remote()[1].ipv4_start, address("10.4.0.0").ipv4_host_order());
  // Removing the SA gives back exactly the routes it holds now.
  remove_ok(0x100, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.3.0.1"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "10.4.0.1"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "fd00:4::1"), std::nullopt);
  EXPECT_EQ(routed_spi(*tables_, "10.9.0.1"), 0x200u);
}

TEST_F(SaTableTest, SelectorUpdateKeepsRouteOwnershipOrder) {
  // 0x200 is the rekeyed SA on top of 0x100 for 10.2/16. Narrowing 0x200 to
  // 10.2.5/24 gives 10.2/16 back to 0x100; widening it again takes it over.
  install_ok(outbound(0x100, {"10.2.0.0/16"}));
  install_ok(outbound(0x200, {"10.2.0.0/16"}));
  auto narrow = selector("10.2.5.0/24");
  ASSERT_TRUE(tables_->update_selectors(0x200, SaDirection::kOutbound, nullptr, 0, &narrow, 1).ok());
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.2.5.1"), 0x200u);
  auto wide = selector("10.2.0.0/16");
  ASSERT_TRUE(tables_->update_selectors(0x200, SaDirection::kOutbound, nullptr, 0, &wide, 1).ok());
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x200u);
  EXPECT_EQ(routed_spi(*tables_, "10.2.5.1"), 0x200u) << "10.2.5/24 was given up";
  remove_ok(0x200, SaDirection::kOutbound);
  EXPECT_EQ(routed_spi(*tables_, "10.2.5.1"), 0x100u);
}

TEST_F(SaTableTest, BadSelectorUpdatesChangeNothing) {
  install_ok(outbound(0x100, {"10.2.0.0/16"}));
  install_ok(inbound(0x1001));
  const SelectorSet* before = tables_->find(0x100, SaDirection::kOutbound)->selectors.load();
  size_t pending = tables_->pending_reclaim();
  EXPECT_FALSE(tables_->update_selectors(0x100, SaDirection::kOutbound, nullptr, 0, nullptr, 0).ok())
      << "an outbound SA without a route";
  std::vector<shared::TrafficSelector> nine(shared::kMaxSelectors + 1, selector("10.5.0.0/16"));
  EXPECT_FALSE(tables_->update_selectors(0x100, SaDirection::kOutbound, nullptr, 0, nine.data(), 9).ok());
  EXPECT_FALSE(tables_->update_selectors(0x999, SaDirection::kOutbound, nullptr, 0, nine.data(), 1).ok());
  EXPECT_FALSE(tables_->update_selectors(0x100, SaDirection::kInbound, nullptr, 0, nine.data(), 1).ok())
      << "0x100 is outbound only";
  EXPECT_EQ(tables_->find(0x100, SaDirection::kOutbound)->selectors.load(), before);
  EXPECT_EQ(routed_spi(*tables_, "10.2.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(*tables_, "10.5.0.1"), std::nullopt);
  EXPECT_EQ(tables_->pending_reclaim(), pending);
}

TEST(SaTableSelectors, RouteTableFullRollsTheUpdateBack) {
  SaTableConfig config = testing::small_config(kCapacity);
  config.max_routes = 4;
  auto created = SaTables::create(config);
  ASSERT_TRUE(created.ok()) << created.error();
  SaTables& tables = *created.value();
  ASSERT_TRUE(tables.install(outbound(0x100, {"10.2.0.0/16", "10.3.0.0/16"})).ok());
  std::vector<shared::TrafficSelector> many = {selector("10.3.0.0/16"), selector("10.4.0.0/16"),
                                               selector("10.5.0.0/16"), selector("10.6.0.0/16")};
  // 10.3 is kept, 10.4-10.6 are new: 5 routes at once do not fit in 4.
  EXPECT_FALSE(tables.update_selectors(0x100, SaDirection::kOutbound, nullptr, 0, many.data(), 4).ok());
  EXPECT_EQ(routed_spi(tables, "10.2.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(tables, "10.3.0.1"), 0x100u);
  for (const char* gone : {"10.4.0.1", "10.5.0.1", "10.6.0.1"})
    EXPECT_EQ(routed_spi(tables, gone), std::nullopt) << gone << ": rolled back";
  EXPECT_EQ(tables.find(0x100, SaDirection::kOutbound)->selectors.load()->remote_count, 2);
  // Two new routes replacing one old one fit (3 routes while moving, 2 after).
  std::vector<shared::TrafficSelector> two = {selector("10.3.0.0/16"), selector("10.4.0.0/16")};
  EXPECT_TRUE(tables.update_selectors(0x100, SaDirection::kOutbound, nullptr, 0, two.data(), 2).ok());
  EXPECT_EQ(routed_spi(tables, "10.4.0.1"), 0x100u);
  EXPECT_EQ(routed_spi(tables, "10.2.0.1"), std::nullopt);
}

TEST_F(SaTableTest, InboundSelectorSetsAreSwappedWholeAndFreedAfterTheWorkers) {
  constexpr unsigned kReader = 5;
  rte_rcu_qsbr* rcu = tables_->rcu();
  ASSERT_EQ(rte_rcu_qsbr_thread_register(rcu, kReader), 0);
  install_ok(inbound(0x1001));
  tables_->reclaim_all();
  EspSa* sa = tables_->find(0x1001, SaDirection::kInbound);
  // Generation g publishes g+1 local selectors, every one 10.g.0.0/16, and
  // remote 172.16.g.0/24: a reader that saw sets mixed would find two g's.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> checked{0};
  std::atomic<uint64_t> torn{0};
  std::thread reader([&] {
    rte_rcu_qsbr_thread_online(rcu, kReader);
    while (!stop.load(std::memory_order_relaxed)) {
      const SelectorSet* set = sa->selectors.load(std::memory_order_acquire);
      uint32_t g = (set->remote()[0].ipv4_start >> 8) & 0xff;
      bool whole = set->remote_count == 1 && set->local_count == (g % shared::kMaxSelectors) + 1;
      for (int i = 0; i < set->local_count; ++i) whole = whole && ((set->local()[i].ipv4_start >> 16) & 0xff) == g;
      if (!whole) torn.fetch_add(1);
      checked.fetch_add(1, std::memory_order_relaxed);
      rte_rcu_qsbr_quiescent(rcu, kReader);
    }
    rte_rcu_qsbr_thread_offline(rcu, kReader);
  });
  for (uint32_t update = 0; update < 20000; ++update) {
    uint32_t g = update % 250;
    std::vector<shared::TrafficSelector> local(g % shared::kMaxSelectors + 1,
                                               selector("10." + std::to_string(g) + ".0.0/16"));
    auto remote = selector("172.16." + std::to_string(g) + ".0/24");
    ASSERT_TRUE(tables_->update_selectors(0x1001, SaDirection::kInbound, local.data(), static_cast<int>(local.size()),
                                          &remote, 1).ok());
    tables_->reclaim();
  }
  stop = true;
  reader.join();
  rte_rcu_qsbr_thread_unregister(rcu, kReader);
  tables_->reclaim_all();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(checked.load(), 0u);
  EXPECT_EQ(tables_->pending_reclaim(), 0u);
  const SelectorSet* last = sa->selectors.load();
  EXPECT_EQ(last->local_count, (19999 % 250) % shared::kMaxSelectors + 1);
}

// ---------------------------------------------------------------------------
// Paths and RCU.

TEST_F(SaTableTest, PathUpdatePublishesANewPathForEverySaOfTheTunnel) {
  install_ok(inbound(0x1001));
  install_ok(outbound(0x2001, {"10.2.0.0/16"}));
  const Tunnel* tunnel = tables_->tunnel(1);
  const Path* first = tunnel->path.load();
  ASSERT_NE(first, nullptr);
  shared::PathDescriptor moved = testing::path_a_to_b(testing::OuterKind::kIpv6Udp);
  moved.remote_port = 40001;
  size_t pending = tables_->pending_reclaim();
  ASSERT_TRUE(tables_->path_update(1, moved).ok());
  const Path* second = tunnel->path.load();
  ASSERT_NE(second, first);
  EXPECT_EQ(second->descriptor, moved);
  EXPECT_TRUE(second->ipv6);
  EXPECT_GT(second->generation, first->generation);
  EXPECT_EQ(tables_->find(0x1001, SaDirection::kInbound)->tunnel->path.load(), second);
  EXPECT_EQ(tables_->find(0x2001, SaDirection::kOutbound)->tunnel->path.load(), second);
  EXPECT_EQ(tables_->pending_reclaim(), pending + 1) << "the old path waits for the workers";
  shared::PathDescriptor mixed = moved;
  mixed.local = testing::Endpoints::a_ipv4();
  EXPECT_FALSE(tables_->path_update(1, mixed).ok());
  EXPECT_EQ(tunnel->path.load(), second);
  // New SAs of the tunnel must now carry the new path.
  shared::SaDescriptor stale = inbound(0x1003);
  EXPECT_FALSE(tables_->install(stale).ok());
  stale.path = moved;
  install_ok(stale);
}

TEST_F(SaTableTest, DeferredFreesWaitForEveryOnlineReader) {
  constexpr unsigned kReader = 3;
  rte_rcu_qsbr* rcu = tables_->rcu();
  ASSERT_EQ(rte_rcu_qsbr_thread_register(rcu, kReader), 0);
  rte_rcu_qsbr_thread_online(rcu, kReader);
  install_ok(inbound(0x1001));
  tables_->reclaim();
  ASSERT_TRUE(tables_->path_update(1, testing::path_a_to_b(testing::OuterKind::kIpv6Raw)).ok());
  remove_ok(0x1001, SaDirection::kInbound);
  size_t pending = tables_->pending_reclaim();
  EXPECT_GE(pending, 2u) << "old path and SA at least";
  // The reader may still hold the SA or the old path.
  EXPECT_EQ(tables_->reclaim(), 0u);
  EXPECT_EQ(tables_->pending_reclaim(), pending);
  rte_rcu_qsbr_quiescent(rcu, kReader);
  EXPECT_EQ(tables_->reclaim(), pending);
  EXPECT_EQ(tables_->pending_reclaim(), 0u);
  // A reader that is offline (between polls, parked) holds nothing back.
  install_ok(inbound(0x1002));
  remove_ok(0x1002, SaDirection::kInbound);
  EXPECT_EQ(tables_->reclaim(), 0u);
  rte_rcu_qsbr_thread_offline(rcu, kReader);
  EXPECT_GT(tables_->reclaim(), 0u);
  EXPECT_EQ(tables_->pending_reclaim(), 0u);
  rte_rcu_qsbr_thread_unregister(rcu, kReader);
}

// ---------------------------------------------------------------------------
// A million tunnels: one inbound and one outbound SA each, the outbound SA
// with a /32 route, all installed, checked, removed and installed again.

constexpr uint32_t kScaleTunnels = 1'000'000;

// Inner destinations of the tunnels: consecutive /32s from 10.0.0.0 pack 256
// routes into each /24, so the DIR-24-8 FIB needs one tbl8 group per /24
// (about 4,000) rather than one per route.
constexpr uint32_t kScaleFirstDestination = 0x0a000000;

SaTableConfig scale_config() {
  SaTableConfig c;
  c.capacity = 1u << 20;                  // >= kScaleTunnels inbound indexes and outbound slots
  c.ipv4_tbl8_groups = 1u << 13;          // kScaleTunnels / 256 /24s, with room
  c.ipv6_tbl8_groups = 1u << 8;           // no IPv6 routes here
  c.max_routes = kScaleTunnels + 4096;
  c.max_workers = 8;
  return c;
}

uint32_t scale_inbound_spi(uint32_t i) { return 0x40000000u | (i + 1); }  // index = i + 1
uint32_t scale_outbound_spi(uint32_t i) { return 0x80000000u | i; }

class ScaleInstaller {
 public:
  ScaleInstaller() {
    testing::TunnelSpec spec;
    spec.algorithm = shared::EspAlgorithm::kAesGcm128;
    spec.replay_window = 64;
    spec.destinations = {selector("10.0.0.0/32")};
    in_ = testing::inbound_sa(spec);
    in_.path = spec.path;
    out_ = testing::outbound_sa(spec);
  }

  // Installs tunnel i's two SAs; returns the first failure.
  shared::Status install(SaTables& tables, uint32_t i) {
    in_.spi = scale_inbound_spi(i);
    in_.tunnel_id = out_.tunnel_id = i + 1;
    in_.cipher_key[0] = out_.cipher_key[0] = static_cast<uint8_t>(i);
    // Every tunnel's own peer: another remote port for each.
    in_.path.remote_port = out_.path.remote_port = static_cast<uint16_t>(1024 + i % 60000);
    in_.path.remote = out_.path.remote = shared::IpAddress::from_ipv4(0xc6330000u + i / 60000);
    out_.spi = scale_outbound_spi(i);
    auto destination = shared::IpAddress::from_ipv4(kScaleFirstDestination + i);
    out_.remote_selectors[0].start = destination;
    out_.remote_selectors[0].end = destination;
    shared::Status s = tables.install(in_);
    if (!s.ok()) return s;
    return tables.install(out_);
  }

 private:
  shared::SaDescriptor in_;
  shared::SaDescriptor out_;
};

size_t eal_heap_allocated() {
  rte_malloc_socket_stats stats{};
  rte_malloc_get_socket_stats(0, &stats);
  return stats.heap_allocsz_bytes;
}

TEST(SaTableScale, AMillionTunnelsInstalledRemovedAndInstalledAgain) {
  using Clock = std::chrono::steady_clock;
  size_t eal_before = eal_heap_allocated();
  auto created = SaTables::create(scale_config());
  ASSERT_TRUE(created.ok()) << created.error() << " (EAL heap in use before: " << eal_before << " bytes)";
  SaTables& tables = *created.value();
  size_t eal_tables = eal_heap_allocated() - eal_before;
  size_t resident_empty = testing::resident_bytes();
  size_t arena_empty = tables.arena_reserved_bytes();

  auto started = Clock::now();
  ScaleInstaller installer;
  for (uint32_t i = 0; i < kScaleTunnels; ++i) {
    shared::Status s = installer.install(tables, i);
    ASSERT_TRUE(s.ok()) << "tunnel " << i << ": " << s.error();
  }
  double install_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  size_t resident_full = testing::resident_bytes();
  EXPECT_EQ(tables.inbound_count(), kScaleTunnels);
  EXPECT_EQ(tables.outbound_count(), kScaleTunnels);

  // Spot checks over the whole range: lookups find exactly their SA.
  for (uint32_t i = 0; i < kScaleTunnels; i += 9973) {
    const EspSa* in = tables.inbound_lookup(scale_inbound_spi(i));
    ASSERT_NE(in, nullptr) << i;
    EXPECT_EQ(in->spi, scale_inbound_spi(i));
    uint64_t next_hop = next_hop_for(tables, shared::IpAddress::from_ipv4(kScaleFirstDestination + i));
    ASSERT_NE(next_hop, SaTables::kNoRoute) << i;
    const EspSa* out = tables.outbound_at(static_cast<uint32_t>(next_hop - 1));
    ASSERT_NE(out, nullptr) << i;
    EXPECT_EQ(out->spi, scale_outbound_spi(i));
    EXPECT_EQ(out->tunnel, in->tunnel);
  }
  EXPECT_EQ(next_hop_for(tables, shared::IpAddress::from_ipv4(kScaleFirstDestination + kScaleTunnels)),
            SaTables::kNoRoute);

  size_t per_tunnel = (resident_full - resident_empty) / kScaleTunnels;
  RecordProperty("tunnels", std::to_string(kScaleTunnels));
  RecordProperty("resident_bytes_per_tunnel", std::to_string(per_tunnel));
  RecordProperty("sa_footprint_inbound_window64", std::to_string(SaTables::sa_footprint(64, true)));
  RecordProperty("sa_footprint_outbound", std::to_string(SaTables::sa_footprint(64, false)));
  RecordProperty("sizeof_path", std::to_string(sizeof(Path)));
  RecordProperty("sizeof_tunnel", std::to_string(sizeof(Tunnel)));
  RecordProperty("eal_bytes_for_tables", std::to_string(eal_tables));
  RecordProperty("install_seconds", std::to_string(install_seconds));
  // Objects alone cost this much; the rest (maps, FIB, slot arrays) comes on top.
  EXPECT_GE(per_tunnel, SaTables::sa_footprint(64, true) + SaTables::sa_footprint(64, false));

  // One online reader (a worker between two polls): nothing removed may be
  // freed until it reports a quiescent state, then everything may.
  constexpr unsigned kReader = 0;
  rte_rcu_qsbr* rcu = tables.rcu();
  ASSERT_EQ(rte_rcu_qsbr_thread_register(rcu, kReader), 0);
  rte_rcu_qsbr_thread_online(rcu, kReader);
  started = Clock::now();
  for (uint32_t i = 0; i < kScaleTunnels; ++i) {
    ASSERT_TRUE(tables.remove(scale_inbound_spi(i), SaDirection::kInbound).ok()) << i;
    ASSERT_TRUE(tables.remove(scale_outbound_spi(i), SaDirection::kOutbound).ok()) << i;
  }
  EXPECT_GE(tables.pending_reclaim(), 2 * size_t{kScaleTunnels}) << "both SAs of every tunnel wait";
  EXPECT_EQ(tables.reclaim(), 0u);
  rte_rcu_qsbr_quiescent(rcu, kReader);
  size_t pending = tables.pending_reclaim();
  EXPECT_EQ(tables.reclaim(), pending);
  rte_rcu_qsbr_thread_offline(rcu, kReader);
  rte_rcu_qsbr_thread_unregister(rcu, kReader);
  double remove_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  RecordProperty("remove_seconds", std::to_string(remove_seconds));
  EXPECT_EQ(tables.inbound_count(), 0u);
  EXPECT_EQ(tables.outbound_count(), 0u);
  EXPECT_EQ(tables.pending_reclaim(), 0u);
  // The memory is back: no object left, and of the ~2.5 GB of chunks at
  // most one per size class (SA in, SA out, tunnel, path, selector set) is
  // still mapped, its pages dropped.
  EXPECT_EQ(tables.arena_objects_in_use(), 0u);
  EXPECT_LE(tables.arena_reserved_bytes(), arena_empty + 5 * SlabArena::kChunkBytes);
  size_t resident_removed = testing::resident_bytes();
  std::printf("resident: %zu MB empty, %zu MB with %u tunnels, %zu MB after removing them\n", resident_empty >> 20,
              resident_full >> 20, kScaleTunnels, resident_removed >> 20);
  RecordProperty("resident_growth_after_remove", std::to_string(resident_removed - std::min(resident_removed, resident_empty)));
  EXPECT_LT(resident_removed, resident_empty + (resident_full - resident_empty) / 10)
      << "less than a tenth of what a million tunnels took stays resident";
  for (uint32_t i = 0; i < kScaleTunnels; i += 9973) {
    EXPECT_EQ(tables.inbound_lookup(scale_inbound_spi(i)), nullptr) << i;
    EXPECT_EQ(next_hop_for(tables, shared::IpAddress::from_ipv4(kScaleFirstDestination + i)), SaTables::kNoRoute)
        << i;
    EXPECT_EQ(tables.tunnel(i + 1), nullptr) << i;
  }
  int left = 0;
  tables.for_each_sa([&](const EspSa&) { ++left; });
  EXPECT_EQ(left, 0);

  // Installing everything again must reuse what was freed: the process may
  // grow a little (allocator slack), never by another table's worth.
  started = Clock::now();
  for (uint32_t i = 0; i < kScaleTunnels; ++i) {
    shared::Status s = installer.install(tables, i);
    ASSERT_TRUE(s.ok()) << "again, tunnel " << i << ": " << s.error();
  }
  RecordProperty("reinstall_seconds",
                 std::to_string(std::chrono::duration<double>(Clock::now() - started).count()));
  size_t resident_again = testing::resident_bytes();
  size_t growth = resident_again > resident_full ? resident_again - resident_full : 0;
  RecordProperty("resident_growth_on_reinstall", std::to_string(growth));
  EXPECT_LT(growth, (resident_full - resident_empty) / 10)
      << "memory of removed SAs was not given back for reuse";
  EXPECT_EQ(tables.inbound_count(), kScaleTunnels);
  EXPECT_EQ(tables.outbound_count(), kScaleTunnels);
}

}  // namespace
}  // namespace segw::dp
