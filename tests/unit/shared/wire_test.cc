// Unit tests for shared/wire: protocol name table and big-endian helpers.
#include "shared/wire.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace segw::shared {
namespace {

TEST(WireTest, ProtocolNumbersMatchIana) {
  EXPECT_EQ(kIpProtocolIcmp, 1);
  EXPECT_EQ(kIpProtocolIpv4, 4);
  EXPECT_EQ(kIpProtocolTcp, 6);
  EXPECT_EQ(kIpProtocolUdp, 17);
  EXPECT_EQ(kIpProtocolIpv6, 41);
  EXPECT_EQ(kIpProtocolIpv6Fragment, 44);
  EXPECT_EQ(kIpProtocolEsp, 50);
  EXPECT_EQ(kIpProtocolIcmpv6, 58);
  EXPECT_EQ(kIpProtocolNoNext, 59);
  EXPECT_EQ(kIkePort, 500);
  EXPECT_EQ(kNatTraversalPort, 4500);
  EXPECT_EQ(kMinimumSpi, 256u);
}

TEST(WireTest, ProtocolsPrintByName) {
  EXPECT_STREQ(ip_protocol_name(kIpProtocolIcmp), "icmp");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolIpv4), "ipv4");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolTcp), "tcp");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolUdp), "udp");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolIpv6), "ipv6");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolIpv6Fragment), "ipv6-frag");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolEsp), "esp");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolIcmpv6), "icmpv6");
  EXPECT_STREQ(ip_protocol_name(kIpProtocolNoNext), "no-next-header");
  EXPECT_STREQ(ip_protocol_name(0), "other");
  EXPECT_STREQ(ip_protocol_name(255), "other");
}

TEST(WireTest, LoadsBigEndian) {
  const uint8_t bytes[] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  EXPECT_EQ(load_be16(bytes), 0x1234);
  EXPECT_EQ(load_be32(bytes), 0x12345678u);
  EXPECT_EQ(load_be32(bytes + 1), 0x3456789au);  // unaligned is fine
}

TEST(WireTest, StoresBigEndian) {
  std::array<uint8_t, 9> buffer{};
  store_be16(buffer.data(), 0x1234);
  EXPECT_EQ(buffer[0], 0x12);
  EXPECT_EQ(buffer[1], 0x34);
  store_be32(buffer.data() + 1, 0xdeadbeef);
  EXPECT_EQ(buffer[1], 0xde);
  EXPECT_EQ(buffer[4], 0xef);
  store_be64(buffer.data() + 1, 0x0102030405060708ull);
  EXPECT_EQ(buffer, (std::array<uint8_t, 9>{0x12, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(WireTest, StoreThenLoadRoundTrips) {
  uint8_t buffer[4];
  for (uint32_t v : {0u, 1u, 0x80000000u, 0xffffffffu, 0x01020304u}) {
    store_be32(buffer, v);
    EXPECT_EQ(load_be32(buffer), v);
  }
  store_be16(buffer, 0xfffe);
  EXPECT_EQ(load_be16(buffer), 0xfffe);
}

TEST(WireTest, EspHeaderIsSpiThenSequence) {
  // RFC 4303 2: SPI at offset 0, sequence number at offset 4.
  uint8_t packet[8];
  store_be32(packet, 0x00001000);
  store_be32(packet + 4, 7);
  EspHeader header;
  std::memcpy(&header, packet, sizeof(header));
  EXPECT_EQ(load_be32(&header.spi_be), 0x1000u);
  EXPECT_EQ(load_be32(&header.sequence_be), 7u);
}

}  // namespace
}  // namespace segw::shared
