// One test per length/value check of the decoder: each builds the smallest
// message that trips exactly that check and expects its error text, so the
// test fails if the check is removed (another check would report, or none).
#include <gtest/gtest.h>

#include "tests/unit/controlplane/ike_codec/test_util.h"

namespace segw::cp::ike::test {
namespace {

constexpr PayloadType kNone = PayloadType::kNone;
constexpr uint8_t kLast = 0;
constexpr uint8_t kMore = 2;
constexpr uint8_t kMoreT = 3;

// ---- IKE header (RFC 7296 3.1) ----

TEST(IkeDecodeHeader, ShorterThanHeader) {
  Bytes b = message(kNone, {});
  b.pop_back();
  SEGW_EXPECT_DECODE_ERROR(b, "IKE message of 27 bytes, shorter than the 28-byte IKE header");
}

TEST(IkeDecodeHeader, LengthLargerThanDatagram) {
  Bytes b = message(kNone, {});
  b[27] = 29;
  SEGW_EXPECT_DECODE_ERROR(b, "IKE header Length 29, expected the datagram size 28");
}

TEST(IkeDecodeHeader, LengthSmallerThanDatagram) {
  Bytes b = single(PayloadType::kVendorId, {1, 2});
  b[27] = 28;  // claims the header only: trailing payload bytes are not read
  SEGW_EXPECT_DECODE_ERROR(b, "IKE header Length 28, expected the datagram size 34");
}

TEST(IkeDecodeHeader, MajorVersionThree) {
  DecodeFailure failure;
  EXPECT_EQ(decode_error(message(kNone, {}, ExchangeType::kIkeSaInit, 0x30), &failure),
            "IKE major version 3, expected 2");
  EXPECT_EQ(failure.kind, DecodeFailureKind::kInvalidMajorVersion);
}

// ---- Generic payload header chain (RFC 7296 3.2) ----

TEST(IkeDecodeChain, GenericHeaderTruncated) {
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kNonce, {0, 0}),
                           "generic payload header needs 4 bytes, only 2 left");
}

TEST(IkeDecodeChain, NextPayloadPointsPastTheEnd) {
  // The last payload names a next one but the message ends.
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kVendorId, gp(PayloadType::kNonce, {1})),
                           "generic payload header needs 4 bytes, only 0 left");
}

TEST(IkeDecodeChain, PayloadLengthBelowHeader) {
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kVendorId, gp_len(kNone, 3, {0, 0, 0, 0})),
                           "Payload Length 3, minimum 4");
}

TEST(IkeDecodeChain, PayloadLengthBeyondMessage) {
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kVendorId, gp_len(kNone, 9, {1, 2, 3, 4})),
                           "Payload Length 9 exceeds the 8 bytes left in the message");
}

TEST(IkeDecodeChain, TrailingBytesAfterLastPayload) {
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kVendorId, cat({gp(kNone, {1}), {0xee}})),
                           "payload chain ends at offset 33, 1 bytes before the end");
}

TEST(IkeDecodeChain, TrailingBytesWithoutPayloads) {
  SEGW_EXPECT_DECODE_ERROR(message(kNone, {0xee}), "payload chain ends at offset 28");
}

TEST(IkeDecodeChain, UnknownCriticalPayloadNamesType) {
  DecodeFailure failure;
  const Bytes b = message(static_cast<PayloadType>(99), gp(kNone, {1, 2}, /*critical=*/true));
  EXPECT_NE(decode_error(b, &failure).find("unsupported critical payload type 99"),
            std::string::npos);
  EXPECT_EQ(failure.kind, DecodeFailureKind::kUnsupportedCriticalPayload);
  EXPECT_EQ(failure.payload_type, 99);
}

TEST(IkeDecodeChain, EncryptedPayloadNotLast) {
  const Bytes b = message(PayloadType::kEncrypted,
                          cat({gp(PayloadType::kIdInitiator, filled(16, 1)), {0xee, 0xee}}),
                          ExchangeType::kIkeAuth);
  SEGW_EXPECT_DECODE_ERROR(b, "leaves 2 bytes after it, expected it to be the last payload");
}

TEST(IkeDecodeChain, EncryptedPayloadInsideInnerChain) {
  const Bytes chain = gp(kNone, filled(16, 1));
  auto r = decode_payload_chain(PayloadType::kEncrypted, chain);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("encrypted payload inside an encrypted payload"), std::string::npos)
      << r.error();
}

// ---- SA (RFC 7296 3.3) ----

Bytes ike_transforms() {
  return cat({transform(kMoreT, TransformType::kEncryption, 12, key_length_attribute(128)),
              transform(kLast, TransformType::kDiffieHellman, 31)});
}

TEST(IkeDecodeSa, ValidBaseline) {
  EXPECT_EQ(decode_error(single(PayloadType::kSecurityAssociation,
                                proposal(kLast, 1, ProtocolId::kIke, {}, 2, ike_transforms()))),
            "");
}

TEST(IkeDecodeSa, NoProposal) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, {}),
                           "SA payload without proposals");
}

TEST(IkeDecodeSa, ProposalHeaderTruncated) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, {0, 0, 0, 5, 1}),
                           "SA proposal 1: needs 8 bytes, only 5 left in the SA payload");
}

TEST(IkeDecodeSa, ProposalLastSubstrucInvalid) {
  Bytes p = proposal(1, 1, ProtocolId::kIke, {}, 2, ike_transforms());
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "Last Substruc 1, expected 0 or 2");
}

TEST(IkeDecodeSa, ProposalLengthBelowMinimum) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 0, {});
  p[3] = 7;
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "proposal length 7, minimum 8");
}

TEST(IkeDecodeSa, ProposalLengthBeyondPayload) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 2, ike_transforms());
  p[3] += 1;
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "proposal length 29 exceeds the 28 bytes left in the SA payload");
}

TEST(IkeDecodeSa, LastProposalFollowedByBytes) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 2, ike_transforms());
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, cat({p, p})),
                           "Last Substruc 0 but 28 bytes follow");
}

TEST(IkeDecodeSa, MoreProposalsButNoneFollows) {
  Bytes p = proposal(kMore, 1, ProtocolId::kIke, {}, 2, ike_transforms());
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "Last Substruc 2 but no proposal follows");
}

TEST(IkeDecodeSa, SpiSizeBeyondProposal) {
  Bytes p = proposal(kLast, 1, ProtocolId::kEsp, {}, 0, {1, 2});
  p[6] = 4;
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "SPI size 4 exceeds the 2 bytes after the proposal header");
}

TEST(IkeDecodeSa, SpiSizeWrongForIke) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {1, 2, 3, 4}, 2, ike_transforms());
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "SPI size 4 for IKE, expected 0 or 8");
}

TEST(IkeDecodeSa, SpiSizeWrongForEsp) {
  Bytes p = proposal(kLast, 1, ProtocolId::kEsp, {}, 2, ike_transforms());
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "SPI size 0 for ESP, expected 4");
}

TEST(IkeDecodeSa, TransformHeaderTruncated) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1, {0, 0, 0, 8});
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform 1 of 1: needs 8 bytes, only 4 left in the proposal");
}

TEST(IkeDecodeSa, TransformLengthBelowMinimum) {
  Bytes tr = transform(kLast, TransformType::kEsn, 0);
  tr[3] = 6;
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1, tr);
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform length 6, minimum 8");
}

TEST(IkeDecodeSa, TransformLengthBeyondProposal) {
  Bytes tr = transform(kLast, TransformType::kEsn, 0);
  tr[3] = 20;
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1, tr);
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform length 20 exceeds the 8 bytes left in the proposal");
}

TEST(IkeDecodeSa, TransformLastSubstrucTooEarly) {
  Bytes trs = cat({transform(kLast, TransformType::kEncryption, 20),
                   transform(kLast, TransformType::kEsn, 0)});
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 2, trs);
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform 1 of 2: Last Substruc 0, expected 3");
}

TEST(IkeDecodeSa, TransformLastSubstrucOnLastNotZero) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1, transform(kMoreT, TransformType::kEsn, 0));
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform 1 of 1: Last Substruc 3, expected 0");
}

TEST(IkeDecodeSa, MoreTransformBytesThanCount) {
  Bytes trs = cat({transform(kLast, TransformType::kEncryption, 20),
                   transform(kLast, TransformType::kEsn, 0)});
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1, trs);
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "1 transforms end at byte 16 of a 24-byte proposal");
}

TEST(IkeDecodeSa, AttributeHeaderTruncated) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1,
                     transform(kLast, TransformType::kEncryption, 12, {0x80, 0x0e}));
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "transform attribute needs 4 bytes, only 2 left");
}

TEST(IkeDecodeSa, TlvAttributeLengthBeyondTransform) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1,
                     transform(kLast, TransformType::kEncryption, 12,
                               cat({be16(0x0001), be16(10), {1, 2}})));
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "TLV transform attribute 1 length 10 exceeds the 2 bytes left");
}

TEST(IkeDecodeSa, KeyLengthInTlvFormat) {
  Bytes p = proposal(kLast, 1, ProtocolId::kIke, {}, 1,
                     transform(kLast, TransformType::kEncryption, 12,
                               cat({be16(0x000e), be16(2), be16(256)})));
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kSecurityAssociation, p),
                           "KEY_LENGTH attribute in TLV format, expected TV");
}

// ---- KE, ID, CERT, CERTREQ, AUTH, Nonce (RFC 7296 3.4-3.9) ----

TEST(IkeDecodeKe, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kKeyExchange, {0, 19, 0}),
                           "KE payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeKe, KeyDataLengthWrongForGroup) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kKeyExchange, cat({{0, 19, 0, 0}, filled(63, 1)})),
                           "63 bytes of key data for ECP_256, expected 64");
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kKeyExchange, cat({{0, 31, 0, 0}, filled(33, 1)})),
                           "33 bytes of key data for CURVE25519, expected 32");
}

TEST(IkeDecodeKe, UnknownGroupAnyLength) {
  EXPECT_EQ(decode_error(single(PayloadType::kKeyExchange, cat({{0, 99, 0, 0}, filled(7, 1)}))),
            "");
}

TEST(IkeDecodeId, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kIdInitiator, {2, 0, 0}),
                           "ID payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeId, Ipv4AddressLength) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kIdInitiator, {1, 0, 0, 0, 10, 0, 0, 1, 9}),
                           "5 bytes of ID_IPV4_ADDR data, expected 4");
}

TEST(IkeDecodeId, Ipv6AddressLength) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kIdResponder, cat({{5, 0, 0, 0}, filled(15, 1)})),
                           "15 bytes of ID_IPV6_ADDR data, expected 16");
}

TEST(IkeDecodeCert, BodyEmpty) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kCertificate, {}),
                           "CERT payload body of 0 bytes, minimum 1");
}

TEST(IkeDecodeCertReq, BodyEmpty) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kCertificateRequest, {}),
                           "CERTREQ payload body of 0 bytes, minimum 1");
}

TEST(IkeDecodeCertReq, X509HashesNotMultipleOf20) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kCertificateRequest, cat({{4}, filled(21, 1)})),
                           "21 bytes of CA hashes, expected a multiple of 20");
}

TEST(IkeDecodeAuth, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kAuthentication, {2, 0, 0}),
                           "AUTH payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeNonce, TooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNonce, filled(15, 1)),
                           "15 bytes of nonce, expected 16 to 256");
}

TEST(IkeDecodeNonce, TooLong) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNonce, filled(257, 1)),
                           "257 bytes of nonce, expected 16 to 256");
}

// ---- Notify, Delete (RFC 7296 3.10, 3.11) ----

TEST(IkeDecodeNotify, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNotify, {0, 0, 0x40}),
                           "Notify payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeNotify, SpiSizeBeyondBody) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNotify, {3, 4, 0x40, 0x09, 1, 2}),
                           "REKEY_SA: SPI size 4 exceeds the 2 bytes after the header");
}

TEST(IkeDecodeNotify, SpiSizeWrongForEsp) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNotify, cat({{3, 8, 0x40, 0x09}, filled(8, 1)})),
                           "SPI size 8 for protocol ESP, expected 0 or 4");
}

TEST(IkeDecodeNotify, SpiSizeWrongForIkeSa) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kNotify, cat({{0, 4, 0x40, 0x00}, filled(4, 1)})),
                           "SPI size 4 for protocol NONE, expected 0 or 8");
}

TEST(IkeDecodeDelete, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kDelete, {1, 0, 0}),
                           "Delete payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeDelete, IkeSpiSizeNotZero) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kDelete, cat({{1, 4, 0, 1}, filled(4, 1)})),
                           "SPI size 4 for IKE, expected 0");
}

TEST(IkeDecodeDelete, EspSpiSizeNotFour) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kDelete, cat({{3, 8, 0, 1}, filled(8, 1)})),
                           "SPI size 8 for ESP, expected 4");
}

TEST(IkeDecodeDelete, SpiCountDisagreesWithBody) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kDelete, cat({{3, 4, 0, 2}, filled(4, 1)})),
                           "body of 8 bytes, expected 12 for 2 SPIs of 4 bytes");
}

// ---- TS (RFC 7296 3.13) ----

Bytes ts4() { return hex("07 00 0010 0000 ffff 0a000000 0affffff"); }

TEST(IkeDecodeTs, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, {1, 0, 0}),
                           "TS payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeTs, ZeroSelectors) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, {0, 0, 0, 0}),
                           "TS payload with 0 traffic selectors");
}

TEST(IkeDecodeTs, SelectorHeaderTruncated) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, cat({{2, 0, 0, 0}, ts4(), {7, 0}})),
                           "TS selector 2 of 2: needs 4 bytes, only 2 left");
}

TEST(IkeDecodeTs, SelectorLengthBelowHeader) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, {1, 0, 0, 0, 9, 0, 0, 3}),
                           "Selector Length 3, expected 4 to the 4 bytes left");
}

TEST(IkeDecodeTs, SelectorLengthBeyondPayload) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, {1, 0, 0, 0, 9, 0, 0, 5}),
                           "Selector Length 5, expected 4 to the 4 bytes left");
}

TEST(IkeDecodeTs, Ipv4RangeLengthWrong) {
  Bytes s = cat({hex("07 00 0014 0000 ffff 0a000000 0affffff"), filled(4, 0)});
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, cat({{1, 0, 0, 0}, s})),
                           "Selector Length 20 for TS_IPV4_ADDR_RANGE, expected 16");
}

TEST(IkeDecodeTs, Ipv6RangeLengthWrong) {
  Bytes s = cat({hex("08 00 0010 0000 ffff"), filled(8, 0)});
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsResponder, cat({{1, 0, 0, 0}, s})),
                           "Selector Length 16 for TS_IPV6_ADDR_RANGE, expected 40");
}

TEST(IkeDecodeTs, MoreBytesThanCount) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kTsInitiator, cat({{1, 0, 0, 0}, ts4(), ts4()})),
                           "1 selectors end at byte 20 of a 36-byte body");
}

// ---- CP (RFC 7296 3.15) ----

TEST(IkeDecodeCp, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kConfiguration, {1, 0, 0}),
                           "CP payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeCp, AttributeHeaderTruncated) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kConfiguration, {1, 0, 0, 0, 0, 1}),
                           "CP attribute 1: needs 4 bytes, only 2 left");
}

TEST(IkeDecodeCp, AttributeLengthBeyondPayload) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kConfiguration, {1, 0, 0, 0, 0, 1, 0, 4, 10, 0}),
                           "INTERNAL_IP4_ADDRESS: Length 4 exceeds the 2 bytes left");
}

TEST(IkeDecodeCp, KnownAttributeLengthWrong) {
  SEGW_EXPECT_DECODE_ERROR(
      single(PayloadType::kConfiguration, cat({{2, 0, 0, 0}, be16(1), be16(5), filled(5, 1)})),
      "INTERNAL_IP4_ADDRESS: Length 5, expected 0 or 4");
  SEGW_EXPECT_DECODE_ERROR(
      single(PayloadType::kConfiguration, cat({{2, 0, 0, 0}, be16(23), be16(4), filled(4, 1)})),
      "EXTERNAL_SOURCE_IP4_NAT_INFO: Length 4, expected 0 or 6");
}

// ---- EAP (RFC 7296 3.16, RFC 3748 4) ----

TEST(IkeDecodeEap, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kEap, {1, 1, 0}),
                           "EAP payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeEap, EapLengthDisagrees) {
  SEGW_EXPECT_DECODE_ERROR(single(PayloadType::kEap, {1, 1, 0, 6, 1}),
                           "EAP Length 6, expected the 5-byte payload body");
}

// ---- SKF (RFC 7383 2.5) ----

Bytes skf(uint16_t number, uint16_t total) {
  return message(PayloadType::kEncryptedFragment,
                 gp(kNone, cat({be16(number), be16(total), filled(16, 1)})),
                 ExchangeType::kIkeAuth);
}

TEST(IkeDecodeSkf, BodyTooShort) {
  SEGW_EXPECT_DECODE_ERROR(message(PayloadType::kEncryptedFragment, gp(kNone, {0, 1, 0})),
                           "SKF payload body of 3 bytes, minimum 4");
}

TEST(IkeDecodeSkf, FragmentNumberZero) {
  SEGW_EXPECT_DECODE_ERROR(skf(0, 2), "SKF Fragment Number 0 of Total Fragments 2");
}

TEST(IkeDecodeSkf, TotalFragmentsZero) {
  SEGW_EXPECT_DECODE_ERROR(skf(1, 0), "SKF Fragment Number 1 of Total Fragments 0");
}

TEST(IkeDecodeSkf, FragmentNumberAboveTotal) {
  SEGW_EXPECT_DECODE_ERROR(skf(3, 2), "SKF Fragment Number 3 of Total Fragments 2");
}

}  // namespace
}  // namespace segw::cp::ike::test
