// Unit tests for SaRegistry: ownership by (SPI, direction), tunnel paths,
// slot reuse, and wiping of removed and cleared slots.
#include "controlplane/dp_link/sa_registry.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace segw::cp::dp_link {
namespace {

using shared::SaDescriptor;
using shared::SaDirection;

SaDescriptor make_sa(uint32_t spi, SaDirection direction, uint32_t tunnel) {
  SaDescriptor sa;
  sa.spi = spi;
  sa.direction = direction;
  sa.tunnel_id = tunnel;
  sa.cipher_key.fill(0x5a);
  sa.integrity_key.fill(0x5b);
  sa.path.remote = *shared::IpAddress::parse("198.51.100.1");
  return sa;
}

bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

TEST(SaRegistryTest, OwnsBySpiAndDirection) {
  SaRegistry registry;
  EXPECT_TRUE(registry.add(make_sa(1, SaDirection::kInbound, 7)));
  EXPECT_TRUE(registry.add(make_sa(1, SaDirection::kOutbound, 7)));
  EXPECT_FALSE(registry.add(make_sa(1, SaDirection::kInbound, 8))) << "same SPI and direction";
  EXPECT_EQ(registry.size(), 2u);
  ASSERT_NE(registry.find({1, SaDirection::kInbound}), nullptr);
  EXPECT_EQ(registry.find({1, SaDirection::kInbound})->tunnel_id, 7u);
  EXPECT_EQ(registry.find({2, SaDirection::kInbound}), nullptr);
  EXPECT_FALSE(registry.remove({2, SaDirection::kInbound}));
}

TEST(SaRegistryTest, TunnelPathMovesEverySaOfTheTunnel) {
  SaRegistry registry;
  ASSERT_TRUE(registry.add(make_sa(1, SaDirection::kInbound, 7)));
  ASSERT_TRUE(registry.add(make_sa(2, SaDirection::kOutbound, 7)));
  ASSERT_TRUE(registry.add(make_sa(3, SaDirection::kOutbound, 8)));
  shared::PathDescriptor path;
  path.remote = *shared::IpAddress::parse("203.0.113.5");
  path.remote_port = 1234;
  EXPECT_EQ(registry.set_tunnel_path(7, path), 2u);
  EXPECT_EQ(registry.find({1, SaDirection::kInbound})->path, path);
  EXPECT_EQ(registry.find({2, SaDirection::kOutbound})->path, path);
  EXPECT_NE(registry.find({3, SaDirection::kOutbound})->path, path);
  EXPECT_EQ(registry.tunnel_path(7), path);
  EXPECT_EQ(registry.set_tunnel_path(99, path), 0u);
  EXPECT_FALSE(registry.tunnel_path(99));
  ASSERT_TRUE(registry.remove({1, SaDirection::kInbound}));
  ASSERT_TRUE(registry.remove({2, SaDirection::kOutbound}));
  EXPECT_FALSE(registry.tunnel_path(7)) << "no SA of the tunnel left";
}

TEST(SaRegistryTest, RemovedSlotIsWipedAndReused) {
  SaRegistry registry;
  ASSERT_TRUE(registry.add(make_sa(1, SaDirection::kInbound, 7)));
  ASSERT_TRUE(registry.add(make_sa(2, SaDirection::kInbound, 7)));
  auto slot = registry.slot_of({1, SaDirection::kInbound});
  ASSERT_TRUE(slot);
  EXPECT_FALSE(all_zero(registry.slot_bytes(*slot)));
  ASSERT_TRUE(registry.remove({1, SaDirection::kInbound}));
  EXPECT_TRUE(all_zero(registry.slot_bytes(*slot))) << "keys and all";
  ASSERT_TRUE(registry.add(make_sa(3, SaDirection::kInbound, 9)));
  EXPECT_EQ(registry.slot_of({3, SaDirection::kInbound}), slot) << "reused, not grown";
  EXPECT_EQ(registry.slot_count(), 2u);

  int visited = 0;
  registry.for_each([&](const SaDescriptor&) { ++visited; });
  EXPECT_EQ(visited, 2);
  registry.clear();
  EXPECT_EQ(registry.size(), 0u);
  for (size_t i = 0; i < registry.slot_count(); ++i) EXPECT_TRUE(all_zero(registry.slot_bytes(i)));
  ASSERT_TRUE(registry.add(make_sa(4, SaDirection::kOutbound, 1)));
  EXPECT_EQ(registry.slot_count(), 2u);
}

}  // namespace
}  // namespace segw::cp::dp_link
