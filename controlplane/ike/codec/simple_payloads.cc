// Codecs of the flat payloads: fixed header, then a byte string whose size
// is checked against what its type allows.
#include "controlplane/ike/codec/simple_payloads.h"

#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

Status require_min(const char* payload, std::span<const uint8_t> body, size_t minimum) {
  if (body.size() < minimum) {
    return make_error(std::string(payload) + " payload body of " + n(body.size()) +
                      " bytes, minimum " + n(minimum));
  }
  return Status::success();
}

}  // namespace

Result<KePayload> decode_ke_body(std::span<const uint8_t> body) {
  if (auto s = require_min("KE", body, 4); !s) return Error{s.error()};
  KePayload ke;
  ke.group = static_cast<DhId>(read_be16(body, 0));
  const auto data = body.subspan(4);
  // RFC 7296 3.4: the data length is fixed by the group; a mismatch is a
  // syntax error, not a reason to answer INVALID_KE_PAYLOAD.
  const size_t expected = dh_public_value_length(ke.group);
  if (expected != 0 && data.size() != expected) {
    return make_error("KE payload: " + n(data.size()) + " bytes of key data for " +
                      to_string(ke.group) + ", expected " + n(expected));
  }
  ke.key_data = to_vector(data);
  return ke;
}

Result<IdPayload> decode_id_body(std::span<const uint8_t> body) {
  if (auto s = require_min("ID", body, 4); !s) return Error{s.error()};
  IdPayload id;
  id.type = static_cast<IdType>(body[0]);
  const auto data = body.subspan(4);
  const size_t expected = id.type == IdType::kIpv4Address   ? 4
                          : id.type == IdType::kIpv6Address ? 16
                                                            : data.size();
  if (data.size() != expected) {
    return make_error("ID payload: " + n(data.size()) + " bytes of " + to_string(id.type) +
                      " data, expected " + n(expected));
  }
  id.data = to_vector(data);
  return id;
}

Result<CertPayload> decode_cert_body(std::span<const uint8_t> body) {
  if (auto s = require_min("CERT", body, 1); !s) return Error{s.error()};
  return CertPayload{static_cast<CertEncoding>(body[0]), to_vector(body.subspan(1))};
}

Result<CertReqPayload> decode_certreq_body(std::span<const uint8_t> body) {
  if (auto s = require_min("CERTREQ", body, 1); !s) return Error{s.error()};
  CertReqPayload req{static_cast<CertEncoding>(body[0]), to_vector(body.subspan(1))};
  if (req.encoding == CertEncoding::kX509Signature && req.authority.size() % kCaHashLength != 0) {
    return make_error("CERTREQ payload: " + n(req.authority.size()) +
                      " bytes of CA hashes, expected a multiple of " + n(kCaHashLength));
  }
  return req;
}

Result<AuthPayload> decode_auth_body(std::span<const uint8_t> body) {
  if (auto s = require_min("AUTH", body, 4); !s) return Error{s.error()};
  return AuthPayload{static_cast<AuthMethod>(body[0]), to_vector(body.subspan(4))};
}

Result<NoncePayload> decode_nonce_body(std::span<const uint8_t> body) {
  if (body.size() < kMinNonceLength || body.size() > kMaxNonceLength) {
    return make_error("Nonce payload: " + n(body.size()) + " bytes of nonce, expected " +
                      n(kMinNonceLength) + " to " + n(kMaxNonceLength));
  }
  return NoncePayload{to_vector(body)};
}

Result<DeletePayload> decode_delete_body(std::span<const uint8_t> body) {
  if (auto s = require_min("Delete", body, 4); !s) return Error{s.error()};
  DeletePayload del;
  del.protocol = static_cast<ProtocolId>(body[0]);
  del.spi_size = body[1];
  const size_t count = read_be16(body, 2);
  // RFC 7296 3.11: IKE SA deletes carry no SPI, AH/ESP deletes 4-byte SPIs.
  const size_t expected_spi_size = del.protocol == ProtocolId::kIke ? 0 : 4;
  if ((del.protocol == ProtocolId::kIke || del.protocol == ProtocolId::kEsp ||
       del.protocol == ProtocolId::kAh) &&
      del.spi_size != expected_spi_size) {
    return make_error("Delete payload: SPI size " + n(del.spi_size) + " for " +
                      to_string(del.protocol) + ", expected " + n(expected_spi_size));
  }
  const size_t expected = 4 + size_t{del.spi_size} * count;
  if (body.size() != expected) {
    return make_error("Delete payload: body of " + n(body.size()) + " bytes, expected " +
                      n(expected) + " for " + n(count) + " SPIs of " + n(del.spi_size) +
                      " bytes");
  }
  for (size_t i = 0; i < count; ++i) {
    del.spis.push_back(to_vector(body.subspan(4 + i * del.spi_size, del.spi_size)));
  }
  return del;
}

Result<VendorIdPayload> decode_vendor_id_body(std::span<const uint8_t> body) {
  return VendorIdPayload{to_vector(body)};
}

Result<EapPayload> decode_eap_body(std::span<const uint8_t> body) {
  // RFC 3748 4: Code, Identifier, Length (whole EAP packet), data.
  if (auto s = require_min("EAP", body, 4); !s) return Error{s.error()};
  const size_t eap_length = read_be16(body, 2);
  if (eap_length != body.size()) {
    return make_error("EAP payload: EAP Length " + n(eap_length) + ", expected the " +
                      n(body.size()) + "-byte payload body");
  }
  return EapPayload{to_vector(body)};
}

void encode_ke_body(const KePayload& p, ByteWriter& out) {
  out.u16(static_cast<uint16_t>(p.group));
  out.u16(0);
  out.bytes(p.key_data);
}

void encode_id_body(const IdPayload& p, ByteWriter& out) {
  out.u8(static_cast<uint8_t>(p.type));
  out.zeros(3);
  out.bytes(p.data);
}

void encode_cert_body(const CertPayload& p, ByteWriter& out) {
  out.u8(static_cast<uint8_t>(p.encoding));
  out.bytes(p.data);
}

void encode_certreq_body(const CertReqPayload& p, ByteWriter& out) {
  out.u8(static_cast<uint8_t>(p.encoding));
  out.bytes(p.authority);
}

void encode_auth_body(const AuthPayload& p, ByteWriter& out) {
  out.u8(static_cast<uint8_t>(p.method));
  out.zeros(3);
  out.bytes(p.data);
}

void encode_nonce_body(const NoncePayload& p, ByteWriter& out) { out.bytes(p.data); }

Status encode_delete_body(const DeletePayload& p, ByteWriter& out) {
  if (p.spis.size() > 0xffff) {
    return make_error("Delete payload with " + n(p.spis.size()) + " SPIs, at most 65535");
  }
  for (const auto& spi : p.spis) {
    if (spi.size() != p.spi_size) {
      return make_error("Delete payload: SPI of " + n(spi.size()) + " bytes, SPI size says " +
                        n(p.spi_size));
    }
  }
  out.u8(static_cast<uint8_t>(p.protocol));
  out.u8(p.spi_size);
  out.u16(static_cast<uint16_t>(p.spis.size()));
  for (const auto& spi : p.spis) out.bytes(spi);
  return Status::success();
}

void encode_vendor_id_body(const VendorIdPayload& p, ByteWriter& out) { out.bytes(p.data); }

void encode_eap_body(const EapPayload& p, ByteWriter& out) { out.bytes(p.message); }

}  // namespace segw::cp::ike
