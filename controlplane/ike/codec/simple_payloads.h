// The flat IKEv2 payloads (RFC 7296 3.4-3.9, 3.11, 3.12, 3.16): KE, ID,
// CERT, CERTREQ, AUTH, Nonce, Delete, Vendor ID and EAP (opaque).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"

namespace segw::cp::ike {

// RFC 7296 3.4.
struct KePayload {
  DhId group = DhId::kNone;
  std::vector<uint8_t> key_data;
  friend bool operator==(const KePayload&, const KePayload&) = default;
};

// RFC 7296 3.5 (IDi and IDr share the layout).
struct IdPayload {
  IdType type = IdType::kFqdn;
  std::vector<uint8_t> data;
  friend bool operator==(const IdPayload&, const IdPayload&) = default;
};

// RFC 7296 3.6.
struct CertPayload {
  CertEncoding encoding = CertEncoding::kX509Signature;
  std::vector<uint8_t> data;
  friend bool operator==(const CertPayload&, const CertPayload&) = default;
};

// RFC 7296 3.7. For X.509 the authority is a list of 20-byte SHA-1 hashes.
struct CertReqPayload {
  CertEncoding encoding = CertEncoding::kX509Signature;
  std::vector<uint8_t> authority;
  friend bool operator==(const CertReqPayload&, const CertReqPayload&) = default;
};

// RFC 7296 3.8 (RFC 7427 for method 14: data starts with the ASN.1 length).
struct AuthPayload {
  AuthMethod method = AuthMethod::kSharedKeyMic;
  std::vector<uint8_t> data;
  friend bool operator==(const AuthPayload&, const AuthPayload&) = default;
};

// RFC 7296 3.9: 16 to 256 bytes.
struct NoncePayload {
  std::vector<uint8_t> data;
  friend bool operator==(const NoncePayload&, const NoncePayload&) = default;
};
inline constexpr size_t kMinNonceLength = 16;
inline constexpr size_t kMaxNonceLength = 256;

// RFC 7296 3.11. IKE: SPI size 0 and no SPIs; AH/ESP: 4-byte SPIs.
struct DeletePayload {
  ProtocolId protocol = ProtocolId::kIke;
  uint8_t spi_size = 0;
  std::vector<std::vector<uint8_t>> spis;
  friend bool operator==(const DeletePayload&, const DeletePayload&) = default;
};

// RFC 7296 3.12.
struct VendorIdPayload {
  std::vector<uint8_t> data;
  friend bool operator==(const VendorIdPayload&, const VendorIdPayload&) = default;
};

// RFC 7296 3.16: a whole EAP message (RFC 3748 4), kept opaque.
struct EapPayload {
  std::vector<uint8_t> message;
  friend bool operator==(const EapPayload&, const EapPayload&) = default;
};

// Body decoders (the bytes after the generic payload header). Errors name
// the payload, the field, the expected and the actual size:
//   KE: body < 4; key data length wrong for a known group.
//   ID: body < 4; ID_IPV4_ADDR data not 4 bytes, ID_IPV6_ADDR not 16.
//   CERT, CERTREQ: body < 1; X.509 CERTREQ authority not a multiple of 20.
//   AUTH: body < 4.   Nonce: data outside 16..256.
//   Delete: body < 4; SPI size wrong for the protocol; body size not
//     4 + SPI size * number of SPIs.
//   EAP: body < 4; EAP Length field not the body size.
Result<KePayload> decode_ke_body(std::span<const uint8_t> body);
Result<IdPayload> decode_id_body(std::span<const uint8_t> body);
Result<CertPayload> decode_cert_body(std::span<const uint8_t> body);
Result<CertReqPayload> decode_certreq_body(std::span<const uint8_t> body);
Result<AuthPayload> decode_auth_body(std::span<const uint8_t> body);
Result<NoncePayload> decode_nonce_body(std::span<const uint8_t> body);
Result<DeletePayload> decode_delete_body(std::span<const uint8_t> body);
Result<VendorIdPayload> decode_vendor_id_body(std::span<const uint8_t> body);
Result<EapPayload> decode_eap_body(std::span<const uint8_t> body);

// Body encoders. Only Delete can fail (an SPI whose size is not spi_size, or
// more than 65535 SPIs); the others never do.
void encode_ke_body(const KePayload& p, ByteWriter& out);
void encode_id_body(const IdPayload& p, ByteWriter& out);
void encode_cert_body(const CertPayload& p, ByteWriter& out);
void encode_certreq_body(const CertReqPayload& p, ByteWriter& out);
void encode_auth_body(const AuthPayload& p, ByteWriter& out);
void encode_nonce_body(const NoncePayload& p, ByteWriter& out);
Status encode_delete_body(const DeletePayload& p, ByteWriter& out);
void encode_vendor_id_body(const VendorIdPayload& p, ByteWriter& out);
void encode_eap_body(const EapPayload& p, ByteWriter& out);

}  // namespace segw::cp::ike
