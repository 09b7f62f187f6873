// Per payload: build the typed struct, encode it in a message and inside an
// SK inner chain, decode it back, compare structs and bytes.
#include <gtest/gtest.h>

#include "tests/unit/controlplane/ike_codec/test_util.h"

namespace segw::cp::ike::test {
namespace {

shared::IpAddress ip(const char* text) { return *shared::IpAddress::parse(text); }

// encode -> decode -> equal struct -> encode -> equal bytes, both as a
// cleartext message and as an inner payload chain.
void expect_round_trip(const Payload& payload) {
  Message m;
  m.header.spi_i = 0x0102030405060708ull;
  m.header.spi_r = 0x1112131415161718ull;
  m.header.exchange = ExchangeType::kInformational;
  m.header.flags = kFlagInitiator | kFlagResponse;
  m.header.message_id = 7;
  m.payloads = {payload, make_payload(VendorIdPayload{{0xaa}})};
  auto bytes = encode_message(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  auto decoded = decode_message(*bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded->payloads, m.payloads);
  EXPECT_EQ(decoded->header.length, bytes->size());
  EXPECT_EQ(decoded->header.next_payload, payload.type);
  auto again = encode_message(*decoded);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(*again, *bytes);

  auto chain = encode_payload_chain(m.payloads);
  ASSERT_TRUE(chain.ok()) << chain.error();
  auto inner = decode_payload_chain(payload.type, *chain);
  ASSERT_TRUE(inner.ok()) << inner.error();
  EXPECT_EQ(*inner, m.payloads);
}

TEST(IkePayloadRoundTrip, SaWithSeveralProposals) {
  SaPayload sa;
  Proposal gcm{1, ProtocolId::kIke, {}, {}};
  gcm.transforms = {
      {TransformType::kEncryption, static_cast<uint16_t>(EncrId::kAesGcm16),
       {TransformAttribute::key_length(256)}},
      {TransformType::kPrf, static_cast<uint16_t>(PrfId::kHmacSha2_384), {}},
      {TransformType::kDiffieHellman, static_cast<uint16_t>(DhId::kEcp384), {}},
      {TransformType::kDiffieHellman, static_cast<uint16_t>(DhId::kModp2048), {}},
  };
  Proposal cbc{2, ProtocolId::kIke, filled(8, 0x42), {}};
  cbc.transforms = {
      {TransformType::kEncryption, static_cast<uint16_t>(EncrId::kAesCbc),
       {TransformAttribute::key_length(128), TransformAttribute{0x0123, false, 0, {1, 2, 3}}}},
      {TransformType::kIntegrity, static_cast<uint16_t>(IntegId::kHmacSha1_96), {}},
  };
  Proposal esp{3, ProtocolId::kEsp, {1, 2, 3, 4}, {}};
  esp.transforms = {{TransformType::kEsn, static_cast<uint16_t>(EsnId::kEsn), {}}};
  Proposal empty{4, ProtocolId::kAh, {9, 9, 9, 9}, {}};
  sa.proposals = {gcm, cbc, esp, empty};
  expect_round_trip(make_payload(sa));
  EXPECT_EQ(gcm.transforms[0].key_length(), 256);
  EXPECT_EQ(gcm.transforms[1].key_length(), std::nullopt);
}

TEST(IkePayloadRoundTrip, Ke) {
  expect_round_trip(make_payload(KePayload{DhId::kCurve25519, filled(32, 0x31)}));
  expect_round_trip(make_payload(KePayload{DhId::kModp2048, filled(256, 0x14)}));
}

TEST(IkePayloadRoundTrip, IdInitiatorAndResponder) {
  expect_round_trip(make_id_payload(true, IdPayload{IdType::kIpv4Address, {192, 0, 2, 1}}));
  expect_round_trip(make_id_payload(false, IdPayload{IdType::kIpv6Address, filled(16, 0x20)}));
  expect_round_trip(make_id_payload(true, IdPayload{IdType::kRfc822Address, {'a', '@', 'b'}}));
  expect_round_trip(make_id_payload(false, IdPayload{IdType::kDerAsn1Dn, filled(40, 0x30)}));
  expect_round_trip(make_id_payload(true, IdPayload{IdType::kKeyId, {}}));
}

TEST(IkePayloadRoundTrip, CertAndCertReq) {
  expect_round_trip(make_payload(CertPayload{CertEncoding::kX509Signature, filled(300, 0x30)}));
  expect_round_trip(make_payload(CertReqPayload{CertEncoding::kX509Signature, filled(40, 0xca)}));
  expect_round_trip(make_payload(CertReqPayload{CertEncoding::kX509Signature, {}}));
}

TEST(IkePayloadRoundTrip, Auth) {
  expect_round_trip(make_payload(AuthPayload{AuthMethod::kDigitalSignature, filled(80, 0x0d)}));
  expect_round_trip(make_payload(AuthPayload{AuthMethod::kEcdsaSha256P256, filled(64, 0x0e)}));
}

TEST(IkePayloadRoundTrip, NonceAtBothLimits) {
  expect_round_trip(make_payload(NoncePayload{filled(16, 1)}));
  expect_round_trip(make_payload(NoncePayload{filled(256, 2)}));
}

TEST(IkePayloadRoundTrip, Notify) {
  expect_round_trip(make_payload(make_notify(NotifyType::kCookie2, filled(8, 0xc2))));
  NotifyPayload rekey{ProtocolId::kEsp, NotifyType::kRekeySa, {1, 2, 3, 4}, {}};
  expect_round_trip(make_payload(rekey));
  expect_round_trip(make_payload(make_additional_address_notify(ip("2001:db8::1"))));
  NotifyPayload unknown_type{ProtocolId::kNone, static_cast<NotifyType>(40000), {}, {7}};
  expect_round_trip(make_payload(unknown_type));
}

TEST(IkePayloadRoundTrip, Delete) {
  expect_round_trip(make_payload(DeletePayload{ProtocolId::kIke, 0, {}}));
  expect_round_trip(
      make_payload(DeletePayload{ProtocolId::kEsp, 4, {{1, 2, 3, 4}, {5, 6, 7, 8}}}));
}

TEST(IkePayloadRoundTrip, VendorIdAndEap) {
  expect_round_trip(make_payload(VendorIdPayload{{}}));
  expect_round_trip(make_payload(VendorIdPayload{filled(16, 0xfe)}));
  // EAP-Response/Identity (RFC 3748 5.1): code 2, id 7, length 9, type 1, "fap".
  expect_round_trip(make_payload(EapPayload{{2, 7, 0, 9, 1, 'f', 'a', 'p', '1'}}));
}

TEST(IkePayloadRoundTrip, TrafficSelectors) {
  TsPayload ts;
  ts.selectors.push_back(make_any_selector(shared::IpFamily::kIpv4));
  ts.selectors.push_back(make_any_selector(shared::IpFamily::kIpv6));
  TrafficSelector udp = make_range_selector(ip("10.1.0.0"), ip("10.1.255.255"));
  udp.ip_protocol = 17;
  udp.start_port = 2152;
  udp.end_port = 2152;
  ts.selectors.push_back(udp);
  TrafficSelector label;  // an unknown type (10, RFC 9478) survives as bytes
  label.type = static_cast<TsType>(10);
  label.start_port = 0;
  label.end_port = 0;
  label.opaque = {0x73, 0x79, 0x73};
  ts.selectors.push_back(label);
  expect_round_trip(make_ts_payload(true, ts));
  expect_round_trip(make_ts_payload(false, ts));
}

TEST(IkePayloadRoundTrip, ConfigurationWithTypedAttributes) {
  CpPayload cp;
  cp.type = CpType::kReply;
  cp.attributes = {
      make_cp_ip4_attribute(CpAttributeType::kInternalIp4Address, ip("100.64.0.7")),
      make_cp_ip4_attribute(CpAttributeType::kInternalIp4Netmask, ip("255.255.255.255")),
      make_cp_ip4_attribute(CpAttributeType::kInternalIp4Dns, ip("192.0.2.53")),
      make_cp_ip6_prefix_attribute(CpAttributeType::kInternalIp6Address,
                                   {ip("2001:db8::7"), 64}),
      make_cp_ip6_attribute(CpAttributeType::kInternalIp6Dns, ip("2001:db8::53")),
      make_cp_ip4_subnet_attribute({ip("10.0.0.0"), ip("255.0.0.0")}),
      make_cp_ip6_prefix_attribute(CpAttributeType::kInternalIp6Subnet, {ip("2001:db8::"), 32}),
      make_cp_nat_info_attribute({ip("198.51.100.9"), 61234}),
      CpAttribute{CpAttributeType::kApplicationVersion, {'s', 'e', 'g', 'w'}},
      CpAttribute{static_cast<CpAttributeType>(0x4000), {1, 2, 3}},
  };
  const Payload payload = make_payload(cp);
  expect_round_trip(payload);

  EXPECT_EQ(*cp_attribute_ip4(cp.attributes[0]), ip("100.64.0.7"));
  EXPECT_EQ(*cp_attribute_ip6_prefix(cp.attributes[3]), (Ip6AddressValue{ip("2001:db8::7"), 64}));
  EXPECT_EQ(*cp_attribute_ip6(cp.attributes[4]), ip("2001:db8::53"));
  EXPECT_EQ(*cp_attribute_ip4_subnet(cp.attributes[5]),
            (Ip4SubnetValue{ip("10.0.0.0"), ip("255.0.0.0")}));
  auto nat = cp_attribute_nat_info(cp.attributes[7]);
  ASSERT_TRUE(nat.ok()) << nat.error();
  EXPECT_EQ(nat->address, ip("198.51.100.9"));
  EXPECT_EQ(nat->port, 61234);
  EXPECT_EQ(cp.attributes[7].value, hex("c6336409 ef32"));
  auto empty = cp_attribute_nat_info(make_cp_request_attribute(CpAttributeType::kExternalSourceIp4NatInfo));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error(), "EXTERNAL_SOURCE_IP4_NAT_INFO value of 0 bytes, expected 6");
  auto bad_prefix = cp_attribute_ip6_prefix(
      CpAttribute{CpAttributeType::kInternalIp6Address, cat({filled(16, 0), {129}})});
  EXPECT_FALSE(bad_prefix.ok());
}

TEST(IkePayloadRoundTrip, CpReservedTypeBitIsIgnored) {
  // RFC 7296 3.15.1: the top bit of the attribute type is reserved.
  auto m = decode_message(single(PayloadType::kConfiguration,
                                 cat({{1, 0, 0, 0}, be16(0x8001), be16(0)})));
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->payloads[0].get<CpPayload>()->attributes[0].type,
            CpAttributeType::kInternalIp4Address);
}

TEST(IkePayloadRoundTrip, UnknownNonCriticalPayloadIsRecordedAndKept) {
  const Bytes b = message(static_cast<PayloadType>(49),
                          cat({gp(PayloadType::kNonce, {1, 2, 3}), gp(PayloadType::kNone, filled(16, 9))}));
  auto m = decode_message(b);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(m->payloads.size(), 2u);
  EXPECT_EQ(m->payloads[0].type, static_cast<PayloadType>(49));
  ASSERT_NE(m->payloads[0].get<UnknownPayload>(), nullptr);
  EXPECT_EQ(m->payloads[0].get<UnknownPayload>()->body, (Bytes{1, 2, 3}));
  EXPECT_NE(m->payloads[1].get<NoncePayload>(), nullptr);
  EXPECT_EQ(*encode_message(*m), b);
}

TEST(IkePayloadRoundTrip, CriticalBitOnKnownPayloadIsKept) {
  // RFC 7296 2.5: a receiver ignores the bit on types it knows.
  const Bytes b = message(PayloadType::kNonce, gp(PayloadType::kNone, filled(16, 1), true));
  auto m = decode_message(b);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_TRUE(m->payloads[0].critical);
  EXPECT_EQ(*encode_message(*m), b);
}

}  // namespace
}  // namespace segw::cp::ike::test
