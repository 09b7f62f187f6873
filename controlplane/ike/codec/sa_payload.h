// SA payload (RFC 7296 3.3): proposals, transforms and transform attributes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"

namespace segw::cp::ike {

// RFC 7296 3.3.5. TV attributes carry a 16-bit value inline (Key Length is
// always TV); TLV attributes carry a byte string.
struct TransformAttribute {
  uint16_t type = 0;  // without the AF bit
  bool tv = true;
  uint16_t tv_value = 0;
  std::vector<uint8_t> tlv_value;

  static TransformAttribute key_length(uint16_t bits) {
    return {static_cast<uint16_t>(TransformAttributeType::kKeyLength), true, bits, {}};
  }
  friend bool operator==(const TransformAttribute&, const TransformAttribute&) = default;
};

// RFC 7296 3.3.2. `id` is read in the table of `type` (transform_id_to_string).
struct Transform {
  TransformType type = TransformType::kEncryption;
  uint16_t id = 0;
  std::vector<TransformAttribute> attributes;

  // The Key Length attribute, when present.
  std::optional<uint16_t> key_length() const;
  friend bool operator==(const Transform&, const Transform&) = default;
};

// RFC 7296 3.3.1. The SPI is 0 bytes (initial IKE SA), 8 (IKE SA rekey) or 4
// (AH/ESP).
struct Proposal {
  uint8_t number = 1;
  ProtocolId protocol = ProtocolId::kIke;
  std::vector<uint8_t> spi;
  std::vector<Transform> transforms;
  friend bool operator==(const Proposal&, const Proposal&) = default;
};

struct SaPayload {
  std::vector<Proposal> proposals;
  friend bool operator==(const SaPayload&, const SaPayload&) = default;
};

// Decodes the body of an SA payload (after the generic header). Errors:
// no proposal; proposal or transform header truncated; proposal, transform
// or attribute length below its minimum or beyond its container; a Last
// Substruc value other than 0/2 (proposal) or 0/3 (transform) or one that
// disagrees with what follows; SPI size beyond the proposal or wrong for
// the protocol; transform count disagreeing with the bytes; Key Length not
// in TV format.
Result<SaPayload> decode_sa_body(std::span<const uint8_t> body);
// Appends the body. Errors: a proposal, transform or TLV attribute longer
// than a 16-bit length allows; more than 255 transforms or SPI bytes.
Status encode_sa_body(const SaPayload& sa, ByteWriter& out);

}  // namespace segw::cp::ike
