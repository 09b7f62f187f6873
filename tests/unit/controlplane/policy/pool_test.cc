// Address pools: creation errors, exhaustion, idempotent leases, requested
// addresses, reuse order, exclusions, IPv6 /64 leases, and a 1,000,000-step
// random run checked against a std::set model.
#include "controlplane/policy/pool.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace segw::cp::policy {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

AddressPool make_pool(std::string range, std::vector<IpAddress> excluded = {},
                      uint8_t lease_length = 0, bool network_broadcast = true) {
  PoolConfig c{"test", std::move(range), std::move(excluded), network_broadcast, lease_length};
  auto pool = AddressPool::create(c);
  EXPECT_TRUE(pool.ok()) << pool.error();
  return std::move(pool).value();
}

TEST(AddressPoolTest, CreateErrors) {
  EXPECT_FALSE(AddressPool::create({"", "10.0.0.0/24", {}, true, 0}).ok());
  auto bad = AddressPool::create({"p", "10.0.0.0/33", {}, true, 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("10.0.0.0/33"), std::string::npos) << bad.error();
  EXPECT_FALSE(AddressPool::create({"p", "10.0.0.9-10.0.0.1", {}, true, 0}).ok());
  EXPECT_FALSE(AddressPool::create({"p", "10.0.0.1-2001:db8::1", {}, true, 0}).ok());
  EXPECT_FALSE(AddressPool::create({"p", "10.0.0.0/24", {}, true, 24}).ok());
  EXPECT_FALSE(AddressPool::create({"p", "2001:db8::/48", {}, true, 96}).ok());
  EXPECT_FALSE(AddressPool::create({"p", "2001:db8::/72", {}, true, 64}).ok());
  // Nothing leasable: /32 excluded.
  EXPECT_FALSE(AddressPool::create({"p", "10.0.0.1/32", {ip("10.0.0.1")}, true, 0}).ok());
}

TEST(AddressPoolTest, Ipv4PrefixExcludesNetworkAndBroadcast) {
  auto pool = make_pool("10.0.0.0/30");
  EXPECT_EQ(pool.stats().size, 2u);
  EXPECT_EQ(pool.stats().excluded, 2u);
  auto a = pool.lease(1);
  auto b = pool.lease(2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->address, ip("10.0.0.1"));
  EXPECT_EQ(a->prefix_length, 32);
  EXPECT_EQ(b->address, ip("10.0.0.2"));
  // Without the implicit exclusion the whole /30 is leasable.
  auto all = make_pool("10.0.0.0/30", {}, 0, false);
  EXPECT_EQ(all.stats().size, 4u);
  // A range excludes nothing implicitly.
  auto range = make_pool("10.0.0.0-10.0.0.3");
  EXPECT_EQ(range.stats().size, 4u);
  EXPECT_EQ(range.lease(1)->address, ip("10.0.0.0"));
}

TEST(AddressPoolTest, ExhaustionIsAnErrorAndChangesNothing) {
  auto pool = make_pool("192.168.1.10-192.168.1.12");
  for (uint64_t owner = 1; owner <= 3; ++owner) ASSERT_TRUE(pool.lease(owner).ok());
  auto before = pool.stats();
  auto fail = pool.lease(4);
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.error(), "pool test exhausted (3 of 3 in use)");
  auto after = pool.stats();
  EXPECT_EQ(after.in_use, before.in_use);
  EXPECT_EQ(after.never_used, 0u);
  EXPECT_FALSE(pool.lease_of(4).has_value());
  for (uint64_t owner = 1; owner <= 3; ++owner) EXPECT_TRUE(pool.lease_of(owner).has_value());
  // A release makes room again; the exhausted owner can then lease.
  auto released = pool.release(2);
  ASSERT_TRUE(released.has_value());
  auto again = pool.lease(4);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->address, released->address);
}

TEST(AddressPoolTest, LeaseIsIdempotentPerOwner) {
  auto pool = make_pool("10.1.0.0/24");
  auto first = pool.lease(7);
  ASSERT_TRUE(first.ok());
  auto second = pool.lease(7, ip("10.1.0.200"));  // a request does not move a lease
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(pool.stats().in_use, 1u);
  EXPECT_EQ(pool.owner_of(first->address), 7u);
  EXPECT_EQ(pool.lease_of(7)->address, first->address);
  EXPECT_FALSE(pool.release(8).has_value());
  EXPECT_TRUE(pool.release(7).has_value());
  EXPECT_FALSE(pool.release(7).has_value());
  EXPECT_FALSE(pool.owner_of(first->address).has_value());
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(AddressPoolTest, RequestedAddressHonouredWhenFree) {
  auto pool = make_pool("10.2.0.0/24", {ip("10.2.0.1")});
  auto a = pool.lease(1, ip("10.2.0.77"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->address, ip("10.2.0.77"));
  // Taken: another owner asking for it gets something else.
  auto b = pool.lease(2, ip("10.2.0.77"));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->address, ip("10.2.0.77"));
  // Excluded, outside the pool or of the other family: ignored.
  EXPECT_NE(pool.lease(3, ip("10.2.0.1"))->address, ip("10.2.0.1"));
  EXPECT_TRUE(pool.contains(pool.lease(4, ip("10.3.0.5"))->address));
  EXPECT_TRUE(pool.lease(5, ip("2001:db8::1"))->address.is_ipv4());
  // The never-used cursor skips the requested slot later on.
  std::set<IpAddress> seen;
  for (uint64_t owner = 10; owner < 10 + 248; ++owner) {
    auto l = pool.lease(owner);
    ASSERT_TRUE(l.ok()) << owner;
    EXPECT_TRUE(seen.insert(l->address).second);
    EXPECT_NE(l->address, ip("10.2.0.77"));
  }
  EXPECT_FALSE(pool.lease(9999).ok());
}

TEST(AddressPoolTest, ReleasedAddressesReusedOnlyAfterNeverUsedOnes) {
  auto pool = make_pool("10.4.0.0/29");  // 6 usable: .1 .. .6
  auto a = pool.lease(1);
  auto b = pool.lease(2);
  ASSERT_TRUE(a.ok() && b.ok());
  (void)pool.release(1);
  (void)pool.release(2);
  // Four never-used addresses come first, in order.
  for (uint64_t owner = 3; owner <= 6; ++owner) {
    auto l = pool.lease(owner);
    ASSERT_TRUE(l.ok());
    EXPECT_NE(l->address, a->address);
    EXPECT_NE(l->address, b->address);
  }
  EXPECT_EQ(pool.stats().never_used, 0u);
  // Then the oldest release first.
  EXPECT_EQ(pool.lease(7)->address, a->address);
  EXPECT_EQ(pool.lease(8)->address, b->address);
}

TEST(AddressPoolTest, ReconnectingDeviceGetsItsOldAddressWhenItAsks) {
  auto pool = make_pool("10.5.0.0/24");
  auto old = pool.lease(1);
  ASSERT_TRUE(old.ok());
  (void)pool.release(1);
  for (uint64_t owner = 2; owner < 50; ++owner) ASSERT_TRUE(pool.lease(owner).ok());
  auto back = pool.lease(100, old->address);  // new IKE SA id, same device
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->address, old->address);
  // The slot is still in the release queue; draining the pool never hands
  // it out twice.
  std::set<IpAddress> seen{back->address};
  for (uint64_t owner = 2; owner < 50; ++owner) seen.insert(pool.lease_of(owner)->address);
  for (uint64_t owner = 200;; ++owner) {
    auto l = pool.lease(owner);
    if (!l.ok()) break;
    EXPECT_TRUE(seen.insert(l->address).second) << l->address.to_string();
  }
  EXPECT_EQ(seen.size(), 254u);
}

TEST(AddressPoolTest, ExcludedAddressesNeverLeased) {
  std::vector<IpAddress> excluded = {ip("10.6.0.1"), ip("10.6.0.9"), ip("10.6.0.14"), ip("10.9.9.9")};
  auto pool = make_pool("10.6.0.0/28", excluded);
  EXPECT_EQ(pool.stats().size, 16u - 2 - 3);
  std::set<IpAddress> got;
  for (uint64_t owner = 1; owner <= 11; ++owner) {
    auto l = pool.lease(owner, ip("10.6.0.9"));
    ASSERT_TRUE(l.ok());
    got.insert(l->address);
  }
  EXPECT_FALSE(pool.lease(12).ok());
  for (const auto& x : excluded) EXPECT_FALSE(got.contains(x));
  EXPECT_FALSE(got.contains(ip("10.6.0.0")));
  EXPECT_FALSE(got.contains(ip("10.6.0.15")));
  EXPECT_EQ(got.size(), 11u);
}

TEST(AddressPoolTest, Ipv6HostLeases) {
  auto pool = make_pool("2001:db8::/64", {ip("2001:db8::1")});
  auto a = pool.lease(1);
  ASSERT_TRUE(a.ok());
  // 2001:db8:: is the Subnet-Router anycast address (RFC 4291 2.6.1): never
  // leased, even on request; ::1 is excluded by configuration.
  EXPECT_EQ(a->address, ip("2001:db8::2"));
  EXPECT_EQ(a->prefix_length, 128);
  EXPECT_EQ(pool.lease(2, ip("2001:db8::"))->address, ip("2001:db8::3"));
  EXPECT_EQ(pool.lease(3, ip("2001:db8::1:2"))->address, ip("2001:db8::1:2"));
  // 2^64 slots capped at the first 2^32: a request beyond them is not honoured.
  EXPECT_FALSE(pool.contains(ip("2001:db8::ffff:0:0:1")));
  EXPECT_EQ(pool.lease(4, ip("2001:db8::ffff:0:0:1"))->address, ip("2001:db8::4"));
  EXPECT_EQ(pool.stats().size, kMaxPoolSlots - 2);
  auto range = make_pool("2001:db8::100-2001:db8::1ff");
  EXPECT_EQ(range.stats().size, 256u);
  EXPECT_EQ(range.lease(1)->address, ip("2001:db8::100"));
}

TEST(AddressPoolTest, Ipv6Slash64Leases) {
  auto pool = make_pool("2001:db8:100::/48", {ip("2001:db8:100:1::1")}, 64);
  EXPECT_EQ(pool.stats().size, 65535u);  // 2^16 /64s, one excluded (the gateway's)
  auto a = pool.lease(1);
  auto b = pool.lease(2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->address, ip("2001:db8:100::"));
  EXPECT_EQ(a->prefix_length, 64);
  EXPECT_EQ(b->address, ip("2001:db8:100:2::"));  // :1::/64 holds the excluded address
  // Any address inside a leased /64 finds its owner.
  EXPECT_EQ(pool.owner_of(ip("2001:db8:100:2:abcd::5")), 2u);
  EXPECT_FALSE(pool.owner_of(ip("2001:db8:100:3::")).has_value());
  // A request names the /64 by any address inside it.
  auto c = pool.lease(3, ip("2001:db8:100:ff:1:2:3:4"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->address, ip("2001:db8:100:ff::"));
  auto d = pool.lease(4, ip("2001:db8:100:1::7"));  // the excluded /64
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->address, ip("2001:db8:100:1::"));
}

// 1,000,000 random lease/release steps against a std::set model: never one
// address to two owners, idempotent leases, exhaustion exactly when the
// model is full, requests honoured exactly when the model says free.
TEST(AddressPoolTest, RandomOperationsMatchModel) {
  std::vector<IpAddress> excluded = {ip("10.8.0.1"), ip("10.8.3.7")};
  auto pool = make_pool("10.8.0.0/22", excluded);  // 1022 - 2 = 1020 leasable
  const uint64_t size = pool.stats().size;
  ASSERT_EQ(size, 1020u);
  std::map<uint64_t, IpAddress> by_owner;
  std::set<IpAddress> used;
  std::set<IpAddress> ever;
  std::mt19937_64 rng(12345);
  for (int step = 0; step < 1'000'000; ++step) {
    uint64_t owner = rng() % 1500;
    unsigned action = static_cast<unsigned>(rng() % 10);
    if (action < 6) {
      std::optional<IpAddress> requested;
      if (action < 2) requested = ip("10.8.0.0").plus(rng() % 1100);
      auto l = pool.lease(owner, requested);
      if (auto it = by_owner.find(owner); it != by_owner.end()) {
        ASSERT_TRUE(l.ok());
        ASSERT_EQ(l->address, it->second) << "step " << step;
        continue;
      }
      if (used.size() == size) {
        ASSERT_FALSE(l.ok()) << "step " << step;
        continue;
      }
      ASSERT_TRUE(l.ok()) << "step " << step << ": " << l.error();
      const IpAddress& got = l->address;
      ASSERT_TRUE(pool.contains(got));
      ASSERT_FALSE(used.contains(got)) << "duplicate " << got.to_string() << " at step " << step;
      for (const auto& x : excluded) ASSERT_NE(got, x);
      ASSERT_NE(got, ip("10.8.0.0"));
      ASSERT_NE(got, ip("10.8.3.255"));
      if (requested && pool.contains(*requested) && !used.contains(*requested) &&
          *requested != ip("10.8.0.0") && *requested != ip("10.8.3.255") &&
          std::find(excluded.begin(), excluded.end(), *requested) == excluded.end()) {
        ASSERT_EQ(got, *requested) << "step " << step;
      } else if (ever.size() < size) {
        ASSERT_FALSE(ever.contains(got)) << "reused before never-used ones, step " << step;
      }
      by_owner.emplace(owner, got);
      used.insert(got);
      ever.insert(got);
    } else {
      auto r = pool.release(owner);
      auto it = by_owner.find(owner);
      ASSERT_EQ(r.has_value(), it != by_owner.end());
      if (r) {
        ASSERT_EQ(r->address, it->second);
        used.erase(it->second);
        by_owner.erase(it);
      }
    }
    if (step % 4096 == 0) {
      ASSERT_EQ(pool.stats().in_use, used.size());
      ASSERT_EQ(pool.stats().never_used, size - ever.size());
    }
  }
  for (const auto& [owner, address] : by_owner) {
    ASSERT_EQ(pool.owner_of(address), owner);
    ASSERT_EQ(pool.lease_of(owner)->address, address);
  }
}

// Sized for the design target: 1,000,000 leases from a /12, released and
// leased again, without one duplicate.
TEST(AddressPoolTest, MillionLeases) {
  auto pool = make_pool("100.64.0.0/12");
  std::vector<uint32_t> seen(1u << 20, 0);
  for (uint64_t owner = 0; owner < 1'000'000; ++owner) {
    auto l = pool.lease(owner);
    ASSERT_TRUE(l.ok());
    uint32_t index = l->address.ipv4_host_order() - ip("100.64.0.0").ipv4_host_order();
    ASSERT_EQ(seen[index]++, 0u);
  }
  EXPECT_EQ(pool.stats().in_use, 1'000'000u);
  for (uint64_t owner = 0; owner < 1'000'000; owner += 2) ASSERT_TRUE(pool.release(owner).has_value());
  EXPECT_EQ(pool.stats().in_use, 500'000u);
  for (uint64_t owner = 2'000'000; owner < 2'500'000; ++owner) ASSERT_TRUE(pool.lease(owner).ok());
  EXPECT_EQ(pool.stats().in_use, 1'000'000u);
}

}  // namespace
}  // namespace segw::cp::policy
