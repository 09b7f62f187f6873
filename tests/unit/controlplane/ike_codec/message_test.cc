// Whole messages: a hand-built IKE_SA_INIT request, SK and SKF layouts and
// prefixes, the inner chain of IKE_AUTH, encode errors, typed notify data
// and the name tables.
#include <gtest/gtest.h>

#include "tests/unit/controlplane/ike_codec/test_util.h"

namespace segw::cp::ike::test {
namespace {

shared::IpAddress ip(const char* text) { return *shared::IpAddress::parse(text); }

//   Initiator                         Responder
//   HDR, SAi1, KEi, Ni,
//   N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP),
//   N(IKEV2_FRAGMENTATION_SUPPORTED), N(SIGNATURE_HASH_ALGORITHMS), V  -->
TEST(IkeMessage, DecodesHandBuiltIkeSaInitRequest) {
  const Bytes bytes = sample_ike_sa_init_request();
  ASSERT_EQ(bytes.size(), 282u);
  DecodeFailure failure{DecodeFailureKind::kMalformed, 1};
  auto m = decode_message(bytes, &failure);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(failure.kind, DecodeFailureKind::kNone);

  const IkeHeader& h = m->header;
  EXPECT_EQ(h.spi_i, 0x1122334455667788ull);
  EXPECT_EQ(h.spi_r, 0u);
  EXPECT_EQ(h.next_payload, PayloadType::kSecurityAssociation);
  EXPECT_EQ(h.major_version, 2);
  EXPECT_EQ(h.minor_version, 0);
  EXPECT_EQ(h.exchange, ExchangeType::kIkeSaInit);
  EXPECT_TRUE(h.is_initiator());
  EXPECT_FALSE(h.is_response());
  EXPECT_EQ(h.message_id, 0u);
  EXPECT_EQ(h.length, 282u);
  EXPECT_EQ(to_string(h),
            "IKE_SA_INIT request #0 spi_i=1122334455667788 spi_r=0000000000000000 flags=I "
            "next=SA version=2.0 length=282");

  ASSERT_EQ(m->payloads.size(), 8u);
  const auto* sa = m->payloads[0].get<SaPayload>();
  ASSERT_NE(sa, nullptr);
  ASSERT_EQ(sa->proposals.size(), 1u);
  const Proposal& p = sa->proposals[0];
  EXPECT_EQ(p.number, 1);
  EXPECT_EQ(p.protocol, ProtocolId::kIke);
  EXPECT_TRUE(p.spi.empty());
  ASSERT_EQ(p.transforms.size(), 4u);
  EXPECT_EQ(p.transforms[0].type, TransformType::kEncryption);
  EXPECT_EQ(transform_id_to_string(p.transforms[0].type, p.transforms[0].id), "ENCR_AES_CBC");
  EXPECT_EQ(p.transforms[0].key_length(), 256);
  EXPECT_EQ(transform_id_to_string(p.transforms[1].type, p.transforms[1].id), "PRF_HMAC_SHA2_256");
  EXPECT_EQ(transform_id_to_string(p.transforms[2].type, p.transforms[2].id),
            "AUTH_HMAC_SHA2_256_128");
  EXPECT_EQ(transform_id_to_string(p.transforms[3].type, p.transforms[3].id), "ECP_256");

  const auto* ke = m->payloads[1].get<KePayload>();
  ASSERT_NE(ke, nullptr);
  EXPECT_EQ(ke->group, DhId::kEcp256);
  EXPECT_EQ(ke->key_data.size(), 64u);
  EXPECT_EQ(m->payloads[2].get<NoncePayload>()->data, filled(32, 0xc3));

  auto src = notify_nat_detection_hash(*m->find_notify(NotifyType::kNatDetectionSourceIp));
  ASSERT_TRUE(src.ok()) << src.error();
  EXPECT_EQ(*src, filled(20, 0xd4));
  auto dst = notify_nat_detection_hash(*m->find_notify(NotifyType::kNatDetectionDestinationIp));
  ASSERT_TRUE(dst.ok());
  EXPECT_EQ(*dst, filled(20, 0xe5));
  EXPECT_NE(m->find_notify(NotifyType::kIkev2FragmentationSupported), nullptr);
  auto hashes =
      notify_signature_hash_algorithms(*m->find_notify(NotifyType::kSignatureHashAlgorithms));
  ASSERT_TRUE(hashes.ok()) << hashes.error();
  EXPECT_EQ(*hashes, (std::vector<HashAlgorithm>{HashAlgorithm::kSha2_256,
                                                 HashAlgorithm::kSha2_384,
                                                 HashAlgorithm::kSha2_512}));
  EXPECT_EQ(m->find_notify(NotifyType::kCookie), nullptr);
  ASSERT_NE(m->find(PayloadType::kVendorId), nullptr);
  EXPECT_EQ(m->find(PayloadType::kVendorId)->get<VendorIdPayload>()->data, filled(16, 0xf6));

  // Byte-exact round trip.
  auto encoded = encode_message(*m);
  ASSERT_TRUE(encoded.ok()) << encoded.error();
  EXPECT_EQ(*encoded, bytes);
}

TEST(IkeMessage, BuildsTheSameIkeSaInitFromStructs) {
  auto decoded = decode_message(sample_ike_sa_init_request());
  ASSERT_TRUE(decoded.ok());
  Message m;
  m.header.spi_i = 0x1122334455667788ull;
  m.header.flags = kFlagInitiator;
  Proposal p{1, ProtocolId::kIke, {}, {}};
  p.transforms = {
      {TransformType::kEncryption, 12, {TransformAttribute::key_length(256)}},
      {TransformType::kPrf, 5, {}},
      {TransformType::kIntegrity, 12, {}},
      {TransformType::kDiffieHellman, 19, {}},
  };
  m.payloads.push_back(make_payload(SaPayload{{p}}));
  m.payloads.push_back(make_payload(KePayload{DhId::kEcp256, cat({filled(32, 0xa1), filled(32, 0xb2)})}));
  m.payloads.push_back(make_payload(NoncePayload{filled(32, 0xc3)}));
  m.payloads.push_back(make_payload(make_notify(NotifyType::kNatDetectionSourceIp, filled(20, 0xd4))));
  m.payloads.push_back(make_payload(make_notify(NotifyType::kNatDetectionDestinationIp, filled(20, 0xe5))));
  m.payloads.push_back(make_payload(make_notify(NotifyType::kIkev2FragmentationSupported)));
  const HashAlgorithm algorithms[] = {HashAlgorithm::kSha2_256, HashAlgorithm::kSha2_384,
                                      HashAlgorithm::kSha2_512};
  m.payloads.push_back(make_payload(make_signature_hash_algorithms_notify(algorithms)));
  m.payloads.push_back(make_payload(VendorIdPayload{filled(16, 0xf6)}));
  auto bytes = encode_message(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  EXPECT_EQ(*bytes, sample_ike_sa_init_request());
}

TEST(IkeMessage, HeaderOnlyDecodeForSaLookup) {
  auto h = decode_ike_header(sample_ike_sa_init_request());
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_EQ(h->spi_i, 0x1122334455667788ull);
  DecodeFailure failure;
  Bytes v3 = sample_ike_sa_init_request();
  v3[17] = 0x30;
  EXPECT_FALSE(decode_ike_header(v3, &failure).ok());
  EXPECT_EQ(failure.kind, DecodeFailureKind::kInvalidMajorVersion);
}

TEST(IkeMessage, MinorVersionAndVersionFlagAreKept) {
  Bytes b = message(PayloadType::kNone, {}, ExchangeType::kInformational, 0x21);
  b[19] = kFlagVersion | kFlagResponse;
  auto m = decode_message(b);
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_EQ(m->header.minor_version, 1);
  EXPECT_EQ(flags_to_string(m->header.flags), "V|R");
  EXPECT_TRUE(m->payloads.empty());
  EXPECT_EQ(*encode_message(*m), b);
}

//   HDR, SK {IDi, AUTH, CP(CFG_REQUEST), SAi2, TSi, TSr}  -->
TEST(IkeMessage, SkPayloadStopsDecodingAndReportsLayout) {
  const Message inner = sample_ike_auth_inner();
  auto plaintext = encode_payload_chain(inner.payloads);
  ASSERT_TRUE(plaintext.ok()) << plaintext.error();
  // Stand-in for IV || ciphertext || padding || ICV.
  const Bytes body = cat({filled(8, 0x11), *plaintext, filled(16, 0x22)});
  const Bytes b = message(PayloadType::kEncrypted, gp(PayloadType::kIdInitiator, body),
                          ExchangeType::kIkeAuth);
  auto m = decode_message(b);
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_EQ(m->payloads.size(), 1u);
  const auto* sk = m->payloads[0].get<EncryptedPayload>();
  ASSERT_NE(sk, nullptr);
  EXPECT_EQ(sk->first_inner, PayloadType::kIdInitiator);
  EXPECT_EQ(sk->encrypted, body);
  EXPECT_EQ(sk->layout.payload_offset, 28u);
  EXPECT_EQ(sk->layout.body_offset, 32u);  // AAD = bytes [0, 32)
  EXPECT_EQ(sk->layout.body_length, body.size());
  EXPECT_EQ(sk->layout.body_offset + sk->layout.body_length, b.size());
  EXPECT_EQ(*encode_message(*m), b);

  // After "decryption": the inner chain.
  auto payloads = decode_payload_chain(
      sk->first_inner, std::span<const uint8_t>(sk->encrypted).subspan(8, plaintext->size()));
  ASSERT_TRUE(payloads.ok()) << payloads.error();
  EXPECT_EQ(*payloads, inner.payloads);
  const auto* cp = (*payloads)[2].get<CpPayload>();
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->attributes[2].type, CpAttributeType::kExternalSourceIp4NatInfo);
  EXPECT_TRUE(cp->attributes[2].value.empty());
}

TEST(IkeMessage, SkPrefixMatchesEncoder) {
  IkeHeader h;
  h.spi_i = 1;
  h.spi_r = 2;
  h.exchange = ExchangeType::kIkeAuth;
  h.flags = kFlagInitiator;
  h.message_id = 1;
  const Bytes body = filled(60, 0x5c);
  auto prefix = build_sk_prefix(h, PayloadType::kIdInitiator, body.size());
  ASSERT_TRUE(prefix.ok()) << prefix.error();
  ASSERT_EQ(prefix->size(), 32u);
  Message m{h, {make_payload(EncryptedPayload{PayloadType::kIdInitiator, body, {}})}};
  auto whole = encode_message(m);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(cat({*prefix, body}), *whole);
  EXPECT_FALSE(build_sk_prefix(h, PayloadType::kIdInitiator, 65532).ok());
  EXPECT_TRUE(build_sk_prefix(h, PayloadType::kIdInitiator, 65531).ok());
}

TEST(IkeMessage, SkfFieldsAndLayout) {
  const Bytes b = sample_skf_message();
  auto m = decode_message(b);
  ASSERT_TRUE(m.ok()) << m.error();
  const auto* skf = m->payloads.at(0).get<EncryptedFragmentPayload>();
  ASSERT_NE(skf, nullptr);
  EXPECT_EQ(skf->first_inner, PayloadType::kIdInitiator);
  EXPECT_EQ(skf->fragment_number, 1);
  EXPECT_EQ(skf->total_fragments, 3);
  EXPECT_EQ(skf->encrypted, filled(48, 0x77));
  EXPECT_EQ(skf->layout.payload_offset, 28u);
  EXPECT_EQ(skf->layout.body_offset, 36u);  // RFC 7383 2.5: AAD through Total Fragments
  EXPECT_EQ(skf->layout.body_length, 48u);
  EXPECT_EQ(*encode_message(*m), b);

  IkeHeader h = m->header;
  auto prefix = build_skf_prefix(h, PayloadType::kIdInitiator, 1, 3, 48);
  ASSERT_TRUE(prefix.ok()) << prefix.error();
  EXPECT_EQ(cat({*prefix, filled(48, 0x77)}), b);
  EXPECT_FALSE(build_skf_prefix(h, PayloadType::kIdInitiator, 2, 3, 48).ok());
  EXPECT_TRUE(build_skf_prefix(h, PayloadType::kNone, 3, 3, 48).ok());
  EXPECT_FALSE(build_skf_prefix(h, PayloadType::kNone, 4, 3, 48).ok());
  EXPECT_FALSE(build_skf_prefix(h, PayloadType::kNone, 0, 3, 48).ok());
}

TEST(IkeMessage, NonFirstFragmentRoundTrip) {
  Message m;
  m.header.exchange = ExchangeType::kIkeAuth;
  m.payloads.push_back(make_payload(EncryptedFragmentPayload{PayloadType::kNone, 2, 2, filled(30, 3), {}}));
  auto b = encode_message(m);
  ASSERT_TRUE(b.ok()) << b.error();
  auto d = decode_message(*b);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->payloads[0].get<EncryptedFragmentPayload>()->fragment_number, 2);
  EXPECT_EQ(*encode_message(*d), *b);
}

TEST(IkeEncode, EncryptedPayloadMustBeLast) {
  Message m;
  m.payloads.push_back(make_payload(EncryptedPayload{PayloadType::kNone, {1}, {}}));
  m.payloads.push_back(make_payload(VendorIdPayload{{1}}));
  auto b = encode_message(m);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().find("must be the last payload"), std::string::npos) << b.error();
}

TEST(IkeEncode, NoEncryptedPayloadInsideChain) {
  std::vector<Payload> chain{make_payload(EncryptedPayload{PayloadType::kNone, {1}, {}})};
  EXPECT_FALSE(encode_payload_chain(chain).ok());
}

TEST(IkeEncode, BodyMustMatchType) {
  Payload p = make_payload(NoncePayload{filled(16, 1)});
  p.type = PayloadType::kKeyExchange;
  Message m{{}, {p}};
  auto b = encode_message(m);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().find("body does not match the payload type"), std::string::npos);
  Payload unknown{PayloadType::kNonce, false, UnknownPayload{{1}}};
  EXPECT_FALSE(encode_message(Message{{}, {unknown}}).ok());
}

TEST(IkeEncode, PayloadTooLong) {
  Message m{{}, {make_payload(VendorIdPayload{filled(65532, 1)})}};
  EXPECT_FALSE(encode_message(m).ok());
  m.payloads[0] = make_payload(VendorIdPayload{filled(65531, 1)});
  EXPECT_TRUE(encode_message(m).ok());
}

TEST(IkeEncode, BodyEncoderErrors) {
  EXPECT_FALSE(encode_message(Message{{}, {make_payload(SaPayload{})}}).ok());
  EXPECT_FALSE(encode_message(Message{{}, {make_payload(TsPayload{})}}).ok());
  EXPECT_FALSE(
      encode_message(Message{{}, {make_payload(DeletePayload{ProtocolId::kEsp, 4, {{1, 2}}})}}).ok());
  TsPayload mixed;
  mixed.selectors.push_back(make_range_selector(ip("10.0.0.1"), ip("2001:db8::1")));
  EXPECT_FALSE(encode_message(Message{{}, {make_ts_payload(true, mixed)}}).ok());
}

// ---- Typed notify data ----

TEST(IkeNotifyData, Cookie2) {
  EXPECT_EQ(*notify_cookie2(make_notify(NotifyType::kCookie2, filled(8, 1))), filled(8, 1));
  EXPECT_EQ(notify_cookie2(make_notify(NotifyType::kCookie2, filled(7, 1))).error(),
            "COOKIE2 of 7 bytes, expected 8 to 64");
  EXPECT_FALSE(notify_cookie2(make_notify(NotifyType::kCookie2, filled(65, 1))).ok());
  EXPECT_EQ(notify_cookie2(make_notify(NotifyType::kCookie, filled(8, 1))).error(),
            "notify COOKIE, expected COOKIE2");
  EXPECT_TRUE(notify_cookie(make_notify(NotifyType::kCookie, filled(64, 1))).ok());
  EXPECT_FALSE(notify_cookie(make_notify(NotifyType::kCookie, {})).ok());
}

TEST(IkeNotifyData, AdditionalAddresses) {
  auto v4 = notify_additional_address(make_additional_address_notify(ip("192.0.2.7")));
  ASSERT_TRUE(v4.ok()) << v4.error();
  EXPECT_EQ(*v4, ip("192.0.2.7"));
  auto v6 = notify_additional_address(make_additional_address_notify(ip("2001:db8::7")));
  ASSERT_TRUE(v6.ok()) << v6.error();
  EXPECT_EQ(*v6, ip("2001:db8::7"));
  EXPECT_EQ(notify_additional_address(make_notify(NotifyType::kAdditionalIp6Address, filled(4, 1)))
                .error(),
            "ADDITIONAL_IP6_ADDRESS of 4 bytes, expected 16");
  EXPECT_FALSE(notify_additional_address(make_notify(NotifyType::kNoAdditionalAddresses)).ok());
}

TEST(IkeNotifyData, SignatureHashAlgorithmsOddLength) {
  EXPECT_FALSE(
      notify_signature_hash_algorithms(make_notify(NotifyType::kSignatureHashAlgorithms, {0, 2, 0}))
          .ok());
  EXPECT_FALSE(notify_nat_detection_hash(make_notify(NotifyType::kNatDetectionSourceIp, filled(19, 0))).ok());
  EXPECT_TRUE(is_error_notify(NotifyType::kUnsupportedCriticalPayload));
  EXPECT_FALSE(is_error_notify(NotifyType::kCookie2));
}

// ---- Name tables ----

TEST(IkeConstants, EveryValuePrintsByName) {
  EXPECT_EQ(to_string(ExchangeType::kCreateChildSa), "CREATE_CHILD_SA");
  EXPECT_EQ(to_string(PayloadType::kEncryptedFragment), "SKF");
  EXPECT_EQ(to_string(static_cast<PayloadType>(99)), "unknown(99)");
  EXPECT_EQ(to_string(TransformType::kEsn), "ESN");
  EXPECT_EQ(to_string(EncrId::kAesGcm16), "ENCR_AES_GCM_16");
  EXPECT_EQ(to_string(PrfId::kHmacSha2_512), "PRF_HMAC_SHA2_512");
  EXPECT_EQ(to_string(IntegId::kHmacSha2_512_256), "AUTH_HMAC_SHA2_512_256");
  EXPECT_EQ(to_string(DhId::kModp2048), "MODP_2048");
  EXPECT_EQ(to_string(EsnId::kNoEsn), "NO_ESN");
  EXPECT_EQ(to_string(TransformAttributeType::kKeyLength), "KEY_LENGTH");
  EXPECT_EQ(to_string(ProtocolId::kEsp), "ESP");
  EXPECT_EQ(to_string(IdType::kDerAsn1Dn), "ID_DER_ASN1_DN");
  EXPECT_EQ(to_string(AuthMethod::kDigitalSignature), "DIGITAL_SIGNATURE");
  EXPECT_EQ(to_string(CertEncoding::kX509Signature), "X509_CERTIFICATE_SIGNATURE");
  EXPECT_EQ(to_string(NotifyType::kUpdateSaAddresses), "UPDATE_SA_ADDRESSES");
  EXPECT_EQ(to_string(NotifyType::kUnexpectedNatDetected), "UNEXPECTED_NAT_DETECTED");
  EXPECT_EQ(to_string(HashAlgorithm::kSha2_384), "SHA2_384");
  EXPECT_EQ(to_string(CpType::kAck), "CFG_ACK");
  EXPECT_EQ(to_string(CpAttributeType::kExternalSourceIp4NatInfo), "EXTERNAL_SOURCE_IP4_NAT_INFO");
  EXPECT_EQ(to_string(TsType::kIpv6AddressRange), "TS_IPV6_ADDR_RANGE");
  EXPECT_EQ(to_string(DecodeFailureKind::kUnsupportedCriticalPayload),
            "unsupported_critical_payload");
  EXPECT_EQ(flags_to_string(0), "none");
  EXPECT_EQ(flags_to_string(kFlagInitiator | 0x01), "I|reserved(1)");

  // Every defined value of the wide tables has a name, none "unknown".
  for (unsigned v = 0; v < 65536; ++v) {
    const std::string name = to_string(static_cast<NotifyType>(v));
    const bool known = name.rfind("unknown", 0) != 0;
    if (known) {
      EXPECT_EQ(name.find(' '), std::string::npos);
    }
  }
  for (unsigned v = 0; v < 256; ++v) {
    EXPECT_EQ(is_known_payload_type(static_cast<PayloadType>(v)),
              to_string(static_cast<PayloadType>(v)).rfind("unknown", 0) != 0 && v != 0)
        << v;
  }
}

TEST(IkeConstants, KnownGroupLengths) {
  EXPECT_EQ(dh_public_value_length(DhId::kModp2048), 256u);
  EXPECT_EQ(dh_public_value_length(DhId::kEcp256), 64u);
  EXPECT_EQ(dh_public_value_length(DhId::kEcp384), 96u);
  EXPECT_EQ(dh_public_value_length(DhId::kCurve25519), 32u);
  EXPECT_EQ(dh_public_value_length(static_cast<DhId>(1234)), 0u);
}

}  // namespace
}  // namespace segw::cp::ike::test
