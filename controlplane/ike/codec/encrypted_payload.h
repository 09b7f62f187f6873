// Encrypted payloads SK (RFC 7296 3.14) and SKF (RFC 7383 2.5), kept as the
// bytes the crypto layer works on, with the offsets it needs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"
#include "controlplane/ike/codec/ike_header.h"

namespace segw::cp::ike {

// Where an encrypted payload sits in the datagram it was decoded from (all
// zero on payloads built for encoding). With IV and ICV sizes from the
// negotiated transforms, the crypto layer finds:
//   AEAD associated data (RFC 5282 5.1, RFC 7383 2.5): datagram[0, body_offset)
//   IV:          datagram[body_offset, body_offset + iv_size)
//   ICV:         the last icv_size bytes of the datagram
//   integrity (RFC 7296 3.14): datagram[0, size - icv_size)
struct EncryptedLayout {
  size_t payload_offset = 0;  // generic payload header of SK/SKF
  size_t body_offset = 0;     // first byte of the IV
  size_t body_length = 0;     // IV || ciphertext || ICV, up to the end of the datagram
  friend bool operator==(const EncryptedLayout&, const EncryptedLayout&) = default;
};

struct EncryptedPayload {
  // The generic header's Next Payload: the type of the first inner payload.
  PayloadType first_inner = PayloadType::kNone;
  std::vector<uint8_t> encrypted;  // IV || ciphertext || padding || ICV
  EncryptedLayout layout;          // filled by the decoder only
  friend bool operator==(const EncryptedPayload&, const EncryptedPayload&) = default;
};

// RFC 7383 2.5: Fragment Number 1..Total Fragments. Only fragment 1 names
// the first inner payload; the others carry kNone.
struct EncryptedFragmentPayload {
  PayloadType first_inner = PayloadType::kNone;
  uint16_t fragment_number = 1;
  uint16_t total_fragments = 1;
  std::vector<uint8_t> encrypted;
  EncryptedLayout layout;
  friend bool operator==(const EncryptedFragmentPayload&,
                         const EncryptedFragmentPayload&) = default;
};

inline constexpr size_t kSkfFieldsSize = 4;  // Fragment Number, Total Fragments

// Body decoders. `payload_offset` is the offset of the generic payload
// header in the datagram (for the layout). SKF errors: body < 4; Fragment
// Number or Total Fragments 0; Fragment Number above Total Fragments.
Result<EncryptedPayload> decode_sk_body(PayloadType first_inner, std::span<const uint8_t> body,
                                        size_t payload_offset);
Result<EncryptedFragmentPayload> decode_skf_body(PayloadType first_inner,
                                                 std::span<const uint8_t> body,
                                                 size_t payload_offset);
void encode_sk_body(const EncryptedPayload& p, ByteWriter& out);
void encode_skf_body(const EncryptedFragmentPayload& p, ByteWriter& out);

// The bytes in front of the encrypted body of an outgoing protected message:
// the IKE header (next payload SK, Length covering the whole message) and
// the SK generic header (Next Payload = first_inner, Payload Length = 4 +
// encrypted_body_length). The crypto layer appends exactly
// encrypted_body_length bytes (IV || ciphertext || padding || ICV); with
// AEAD the returned bytes are the associated data. `header.next_payload`
// and `header.length` are ignored. Errors: sizes beyond 16/32-bit lengths.
Result<std::vector<uint8_t>> build_sk_prefix(const IkeHeader& header, PayloadType first_inner,
                                             size_t encrypted_body_length);
// The same for one SKF fragment (RFC 7383 2.5): header, SKF generic header,
// Fragment Number and Total Fragments. first_inner must be kNone for every
// fragment but the first. Errors: as above, plus fragment numbers out of
// range or first_inner set on a non-first fragment.
Result<std::vector<uint8_t>> build_skf_prefix(const IkeHeader& header, PayloadType first_inner,
                                              uint16_t fragment_number, uint16_t total_fragments,
                                              size_t encrypted_body_length);

}  // namespace segw::cp::ike
