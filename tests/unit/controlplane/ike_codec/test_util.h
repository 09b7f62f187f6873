// Helpers for the IKEv2 codec tests: byte builders that lay out headers and
// payloads by hand (RFC 7296 section 3), sample messages, error matchers.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/ike/codec/message.h"

namespace segw::cp::ike::test {

using Bytes = std::vector<uint8_t>;

inline Bytes hex(std::string_view text) {
  Bytes out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  return out;
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline Bytes be16(unsigned v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }

inline Bytes filled(size_t size, uint8_t value) { return Bytes(size, value); }

inline uint8_t t(PayloadType type) { return static_cast<uint8_t>(type); }

// Generic payload header (next, critical, length = 4 + body) and body.
inline Bytes gp(PayloadType next, const Bytes& body, bool critical = false) {
  return cat({{t(next), static_cast<uint8_t>(critical ? 0x80 : 0)}, be16(4 + body.size()), body});
}
// The same with an explicit (possibly wrong) Payload Length.
inline Bytes gp_len(PayloadType next, unsigned length, const Bytes& body) {
  return cat({{t(next), 0}, be16(length), body});
}

// IKE header (SPIi 0x0102030405060708, SPIr 0, version 2.0, flags I) with
// Length set to the whole message, followed by `chain`.
inline Bytes message(PayloadType first, const Bytes& chain,
                     ExchangeType exchange = ExchangeType::kIkeSaInit, uint8_t version = 0x20) {
  const uint32_t length = static_cast<uint32_t>(28 + chain.size());
  Bytes header = hex("0102030405060708 0000000000000000");
  header.push_back(t(first));
  header.push_back(version);
  header.push_back(static_cast<uint8_t>(exchange));
  header.push_back(0x08);
  Bytes tail = {0, 0, 0, 0, static_cast<uint8_t>(length >> 24), static_cast<uint8_t>(length >> 16),
                static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)};
  return cat({header, tail, chain});
}

// A message holding one payload of `type` with `body`.
inline Bytes single(PayloadType type, const Bytes& body) {
  return message(type, gp(PayloadType::kNone, body));
}

// SA substructures (RFC 7296 3.3.1, 3.3.2) with computed lengths.
inline Bytes transform(uint8_t last, TransformType type, uint16_t id, const Bytes& attributes = {}) {
  return cat({{last, 0}, be16(8 + attributes.size()), {static_cast<uint8_t>(type), 0}, be16(id),
              attributes});
}
inline Bytes proposal(uint8_t last, uint8_t number, ProtocolId protocol, const Bytes& spi,
                      uint8_t transform_count, const Bytes& transforms) {
  return cat({{last, 0}, be16(8 + spi.size() + transforms.size()),
              {number, static_cast<uint8_t>(protocol), static_cast<uint8_t>(spi.size()),
               transform_count},
              spi, transforms});
}
inline Bytes key_length_attribute(uint16_t bits) { return cat({be16(0x800e), be16(bits)}); }

// Decodes and returns the error ("" when it decoded).
inline std::string decode_error(const Bytes& bytes, DecodeFailure* failure = nullptr) {
  auto r = decode_message(bytes, failure);
  return r.ok() ? std::string() : r.error();
}

#define SEGW_EXPECT_DECODE_ERROR(bytes, fragment)                                    \
  do {                                                                              \
    const std::string segw_error_ = ::segw::cp::ike::test::decode_error(bytes);      \
    EXPECT_NE(segw_error_.find(fragment), std::string::npos)                        \
        << "error was: \"" << segw_error_ << "\", expected it to contain \"" << (fragment) << "\""; \
  } while (0)

// ---- Sample messages (also the fuzz seeds) ----

// IKE_SA_INIT request as a device sends it, laid out field by field from
// RFC 7296 3.1-3.10 (see message_test.cc for the narrated layout).
inline Bytes sample_ike_sa_init_request() {
  return hex(
      // IKE header: SPIi, SPIr, next SA, version 2.0, IKE_SA_INIT, flags I, msgid 0, length 282
      "1122334455667788 0000000000000000 21 20 22 08 00000000 0000011a"
      // SA: next KE, length 48; proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms
      "22 00 0030  00 00 002c 01 01 00 04"
      //   ENCR AES-CBC, Key Length 256 (TV)
      "03 00 000c 01 00 000c 800e 0100"
      //   PRF HMAC-SHA2-256, INTEG HMAC-SHA2-256-128, DH ECP-256 (last)
      "03 00 0008 02 00 0005  03 00 0008 03 00 000c  00 00 0008 04 00 0013"
      // KE: next Nonce, length 72, group 19, reserved, 64 bytes of x||y
      "28 00 0048 0013 0000"
      "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
      "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
      // Nonce: next Notify, length 36, 32 bytes
      "29 00 0024 c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
      // Notify NAT_DETECTION_SOURCE_IP (16388): protocol 0, SPI size 0, 20-byte hash
      "29 00 001c 00 00 4004 d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
      // Notify NAT_DETECTION_DESTINATION_IP (16389)
      "29 00 001c 00 00 4005 e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5"
      // Notify IKEV2_FRAGMENTATION_SUPPORTED (16430), no data
      "29 00 0008 00 00 402e"
      // Notify SIGNATURE_HASH_ALGORITHMS (16431): SHA2-256, SHA2-384, SHA2-512; next Vendor ID
      "2b 00 000e 00 00 402f 0002 0003 0004"
      // Vendor ID, last payload, 16 bytes
      "00 00 0014 f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6");
}

// The inner chain of an IKE_AUTH request: IDi, AUTH, CP, SA (ESP), TSi, TSr.
inline Message sample_ike_auth_inner() {
  Message m;
  m.payloads.push_back(make_id_payload(true, IdPayload{IdType::kFqdn, {'f', 'a', 'p', '1'}}));
  m.payloads.push_back(make_payload(AuthPayload{AuthMethod::kSharedKeyMic, filled(32, 0x5a)}));
  CpPayload cp;
  cp.type = CpType::kRequest;
  cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kInternalIp4Address));
  cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kInternalIp4Dns));
  cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kExternalSourceIp4NatInfo));
  m.payloads.push_back(make_payload(cp));
  SaPayload sa;
  Proposal p;
  p.number = 1;
  p.protocol = ProtocolId::kEsp;
  p.spi = {0xc0, 0x01, 0x02, 0x03};
  Transform encr{TransformType::kEncryption, static_cast<uint16_t>(EncrId::kAesGcm16),
                 {TransformAttribute::key_length(128)}};
  p.transforms = {encr, Transform{TransformType::kEsn, 0, {}}};
  sa.proposals.push_back(p);
  m.payloads.push_back(make_payload(sa));
  TsPayload ts;
  ts.selectors.push_back(make_any_selector(shared::IpFamily::kIpv4));
  m.payloads.push_back(make_ts_payload(true, ts));
  m.payloads.push_back(make_ts_payload(false, ts));
  return m;
}

// A first SKF fragment of an IKE_AUTH request.
inline Bytes sample_skf_message() {
  Bytes fields = cat({be16(1), be16(3), filled(48, 0x77)});
  return message(PayloadType::kEncryptedFragment, gp(PayloadType::kIdInitiator, fields),
                 ExchangeType::kIkeAuth);
}

}  // namespace segw::cp::ike::test
