// SK/SKF payload codec and the prefix builders for outgoing protected
// messages. No crypto here: that lives in the crypto layer.
#include "controlplane/ike/codec/encrypted_payload.h"

#include <limits>
#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

Status check_fragment_numbers(uint16_t number, uint16_t total) {
  // RFC 7383 2.5 / 2.6.1: numbering starts at 1 and never passes the total.
  if (number == 0 || total == 0 || number > total) {
    return make_error("SKF Fragment Number " + n(number) + " of Total Fragments " + n(total) +
                      ", expected 1 <= number <= total");
  }
  return Status::success();
}

Result<std::vector<uint8_t>> build_prefix(const IkeHeader& header, PayloadType type,
                                          PayloadType first_inner, size_t fields_size,
                                          size_t encrypted_body_length) {
  const size_t payload_length = kGenericPayloadHeaderSize + fields_size;
  if (encrypted_body_length > std::numeric_limits<uint16_t>::max() - payload_length) {
    return make_error(to_string(type) + " body of " + n(encrypted_body_length) +
                      " bytes, too long for the 16-bit Payload Length");
  }
  IkeHeader h = header;
  h.next_payload = type;
  h.length = static_cast<uint32_t>(kIkeHeaderSize + payload_length + encrypted_body_length);
  std::vector<uint8_t> bytes;
  bytes.reserve(kIkeHeaderSize + payload_length);
  ByteWriter out(bytes);
  encode_ike_header(h, out);
  out.u8(static_cast<uint8_t>(first_inner));
  out.u8(0);
  out.u16(static_cast<uint16_t>(payload_length + encrypted_body_length));
  return bytes;
}

}  // namespace

Result<EncryptedPayload> decode_sk_body(PayloadType first_inner, std::span<const uint8_t> body,
                                        size_t payload_offset) {
  EncryptedPayload sk;
  sk.first_inner = first_inner;
  sk.encrypted = to_vector(body);
  sk.layout = {payload_offset, payload_offset + kGenericPayloadHeaderSize, body.size()};
  return sk;
}

Result<EncryptedFragmentPayload> decode_skf_body(PayloadType first_inner,
                                                 std::span<const uint8_t> body,
                                                 size_t payload_offset) {
  if (body.size() < kSkfFieldsSize) {
    return make_error("SKF payload body of " + n(body.size()) + " bytes, minimum " +
                      n(kSkfFieldsSize));
  }
  EncryptedFragmentPayload skf;
  skf.first_inner = first_inner;
  skf.fragment_number = read_be16(body, 0);
  skf.total_fragments = read_be16(body, 2);
  if (auto s = check_fragment_numbers(skf.fragment_number, skf.total_fragments); !s) {
    return Error{s.error()};
  }
  const auto encrypted = body.subspan(kSkfFieldsSize);
  skf.encrypted = to_vector(encrypted);
  const size_t body_offset = payload_offset + kGenericPayloadHeaderSize + kSkfFieldsSize;
  skf.layout = {payload_offset, body_offset, encrypted.size()};
  return skf;
}

void encode_sk_body(const EncryptedPayload& p, ByteWriter& out) { out.bytes(p.encrypted); }

void encode_skf_body(const EncryptedFragmentPayload& p, ByteWriter& out) {
  out.u16(p.fragment_number);
  out.u16(p.total_fragments);
  out.bytes(p.encrypted);
}

Result<std::vector<uint8_t>> build_sk_prefix(const IkeHeader& header, PayloadType first_inner,
                                             size_t encrypted_body_length) {
  return build_prefix(header, PayloadType::kEncrypted, first_inner, 0, encrypted_body_length);
}

Result<std::vector<uint8_t>> build_skf_prefix(const IkeHeader& header, PayloadType first_inner,
                                              uint16_t fragment_number, uint16_t total_fragments,
                                              size_t encrypted_body_length) {
  if (auto s = check_fragment_numbers(fragment_number, total_fragments); !s) {
    return Error{s.error()};
  }
  if (fragment_number != 1 && first_inner != PayloadType::kNone) {
    return make_error("SKF fragment " + n(fragment_number) + " names first inner payload " +
                      to_string(first_inner) + ", only fragment 1 may (RFC 7383 2.5)");
  }
  auto prefix = build_prefix(header, PayloadType::kEncryptedFragment, first_inner,
                             kSkfFieldsSize, encrypted_body_length);
  if (!prefix) return prefix;
  ByteWriter out(*prefix);
  out.u16(fragment_number);
  out.u16(total_fragments);
  return prefix;
}

}  // namespace segw::cp::ike
