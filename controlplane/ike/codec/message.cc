// Message and payload-chain codec: the generic payload header walk, type
// dispatch and the critical bit (RFC 7296 2.5, 3.2), SK/SKF placement.
#include "controlplane/ike/codec/message.h"

#include <limits>
#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

std::string payload_name(uint8_t type) {
  return to_string(static_cast<PayloadType>(type));
}

template <typename T>
Result<PayloadBody> wrap(Result<T> r) {
  if (!r) return Error{r.error()};
  return PayloadBody{std::move(*r)};
}

Result<PayloadBody> decode_body(PayloadType type, std::span<const uint8_t> body) {
  switch (type) {
    case PayloadType::kSecurityAssociation: return wrap(decode_sa_body(body));
    case PayloadType::kKeyExchange: return wrap(decode_ke_body(body));
    case PayloadType::kIdInitiator:
    case PayloadType::kIdResponder: return wrap(decode_id_body(body));
    case PayloadType::kCertificate: return wrap(decode_cert_body(body));
    case PayloadType::kCertificateRequest: return wrap(decode_certreq_body(body));
    case PayloadType::kAuthentication: return wrap(decode_auth_body(body));
    case PayloadType::kNonce: return wrap(decode_nonce_body(body));
    case PayloadType::kNotify: return wrap(decode_notify_body(body));
    case PayloadType::kDelete: return wrap(decode_delete_body(body));
    case PayloadType::kVendorId: return wrap(decode_vendor_id_body(body));
    case PayloadType::kTsInitiator:
    case PayloadType::kTsResponder: return wrap(decode_ts_body(body));
    case PayloadType::kConfiguration: return wrap(decode_cp_body(body));
    case PayloadType::kEap: return wrap(decode_eap_body(body));
    case PayloadType::kNone:
    case PayloadType::kEncrypted:
    case PayloadType::kEncryptedFragment: break;  // handled by the caller
  }
  return PayloadBody{UnknownPayload{to_vector(body)}};
}

// Walks a chain of generic payload headers starting with `first`. `data`
// starts at the first payload, which sits at `base_offset` in the datagram.
// With `top_level`, SK/SKF may end the chain.
Result<std::vector<Payload>> decode_chain(PayloadType first, std::span<const uint8_t> data,
                                          size_t base_offset, bool top_level,
                                          DecodeFailure* failure) {
  auto fail = [failure](DecodeFailureKind kind, uint8_t type, std::string message) {
    if (failure != nullptr) *failure = DecodeFailure{kind, type};
    return make_error(std::move(message));
  };
  std::vector<Payload> payloads;
  PayloadType next = first;
  size_t pos = 0;
  while (next != PayloadType::kNone) {
    const uint8_t raw_type = static_cast<uint8_t>(next);
    const std::string where = "payload " + n(payloads.size() + 1) + " (" +
                              payload_name(raw_type) + ") at offset " + n(base_offset + pos);
    const size_t left = data.size() - pos;
    if (left < kGenericPayloadHeaderSize) {
      return fail(DecodeFailureKind::kMalformed, 0,
                  where + ": generic payload header needs " + n(kGenericPayloadHeaderSize) +
                      " bytes, only " + n(left) + " left");
    }
    const auto following = static_cast<PayloadType>(data[pos]);
    const bool critical = (data[pos + 1] & kPayloadCriticalBit) != 0;
    const size_t length = read_be16(data, pos + 2);
    if (length < kGenericPayloadHeaderSize) {
      return fail(DecodeFailureKind::kMalformed, 0,
                  where + ": Payload Length " + n(length) + ", minimum " +
                      n(kGenericPayloadHeaderSize));
    }
    if (length > left) {
      return fail(DecodeFailureKind::kMalformed, 0,
                  where + ": Payload Length " + n(length) + " exceeds the " + n(left) +
                      " bytes left in the message");
    }
    const auto body = data.subspan(pos + kGenericPayloadHeaderSize,
                                   length - kGenericPayloadHeaderSize);
    Payload payload;
    payload.type = next;
    payload.critical = critical;

    if (next == PayloadType::kEncrypted || next == PayloadType::kEncryptedFragment) {
      // RFC 7296 3.14: SK is the last payload, its Next Payload names the
      // first inner one; RFC 7383 2.5: the same for SKF. Never nested.
      if (!top_level) {
        return fail(DecodeFailureKind::kMalformed, 0,
                    where + ": encrypted payload inside an encrypted payload");
      }
      if (length != left) {
        return fail(DecodeFailureKind::kMalformed, 0,
                    where + ": Payload Length " + n(length) + " leaves " + n(left - length) +
                        " bytes after it, expected it to be the last payload");
      }
      if (next == PayloadType::kEncrypted) {
        auto sk = decode_sk_body(following, body, base_offset + pos);
        if (!sk) return fail(DecodeFailureKind::kMalformed, 0, where + ": " + sk.error());
        payload.body = std::move(*sk);
      } else {
        auto skf = decode_skf_body(following, body, base_offset + pos);
        if (!skf) return fail(DecodeFailureKind::kMalformed, 0, where + ": " + skf.error());
        payload.body = std::move(*skf);
      }
      payloads.push_back(std::move(payload));
      pos += length;
      break;
    }

    if (!is_known_payload_type(next)) {
      // RFC 7296 2.5: skip an unknown payload unless it is critical; then the
      // whole message is rejected with UNSUPPORTED_CRITICAL_PAYLOAD.
      if (critical) {
        return fail(DecodeFailureKind::kUnsupportedCriticalPayload, raw_type,
                    where + ": unsupported critical payload type " + n(raw_type));
      }
    }
    auto decoded = decode_body(next, body);
    if (!decoded) return fail(DecodeFailureKind::kMalformed, 0, where + ": " + decoded.error());
    payload.body = std::move(*decoded);
    payloads.push_back(std::move(payload));
    pos += length;
    next = following;
  }
  if (pos != data.size()) {
    return fail(DecodeFailureKind::kMalformed, 0,
                "payload chain ends at offset " + n(base_offset + pos) + ", " +
                    n(data.size() - pos) + " bytes before the end of the message");
  }
  return payloads;
}

// Whether the body alternative fits the wire type.
bool body_fits_type(const Payload& p) {
  switch (p.type) {
    case PayloadType::kSecurityAssociation: return p.get<SaPayload>() != nullptr;
    case PayloadType::kKeyExchange: return p.get<KePayload>() != nullptr;
    case PayloadType::kIdInitiator:
    case PayloadType::kIdResponder: return p.get<IdPayload>() != nullptr;
    case PayloadType::kCertificate: return p.get<CertPayload>() != nullptr;
    case PayloadType::kCertificateRequest: return p.get<CertReqPayload>() != nullptr;
    case PayloadType::kAuthentication: return p.get<AuthPayload>() != nullptr;
    case PayloadType::kNonce: return p.get<NoncePayload>() != nullptr;
    case PayloadType::kNotify: return p.get<NotifyPayload>() != nullptr;
    case PayloadType::kDelete: return p.get<DeletePayload>() != nullptr;
    case PayloadType::kVendorId: return p.get<VendorIdPayload>() != nullptr;
    case PayloadType::kTsInitiator:
    case PayloadType::kTsResponder: return p.get<TsPayload>() != nullptr;
    case PayloadType::kConfiguration: return p.get<CpPayload>() != nullptr;
    case PayloadType::kEap: return p.get<EapPayload>() != nullptr;
    case PayloadType::kEncrypted: return p.get<EncryptedPayload>() != nullptr;
    case PayloadType::kEncryptedFragment: return p.get<EncryptedFragmentPayload>() != nullptr;
    case PayloadType::kNone: return false;
  }
  return p.get<UnknownPayload>() != nullptr;
}

Status encode_body(const PayloadBody& body, ByteWriter& out) {
  struct Visitor {
    ByteWriter& out;
    Status operator()(const SaPayload& p) { return encode_sa_body(p, out); }
    Status operator()(const KePayload& p) { return encode_ke_body(p, out), Status(); }
    Status operator()(const IdPayload& p) { return encode_id_body(p, out), Status(); }
    Status operator()(const CertPayload& p) { return encode_cert_body(p, out), Status(); }
    Status operator()(const CertReqPayload& p) { return encode_certreq_body(p, out), Status(); }
    Status operator()(const AuthPayload& p) { return encode_auth_body(p, out), Status(); }
    Status operator()(const NoncePayload& p) { return encode_nonce_body(p, out), Status(); }
    Status operator()(const NotifyPayload& p) { return encode_notify_body(p, out); }
    Status operator()(const DeletePayload& p) { return encode_delete_body(p, out); }
    Status operator()(const VendorIdPayload& p) { return encode_vendor_id_body(p, out), Status(); }
    Status operator()(const TsPayload& p) { return encode_ts_body(p, out); }
    Status operator()(const CpPayload& p) { return encode_cp_body(p, out); }
    Status operator()(const EapPayload& p) { return encode_eap_body(p, out), Status(); }
    Status operator()(const EncryptedPayload& p) { return encode_sk_body(p, out), Status(); }
    Status operator()(const EncryptedFragmentPayload& p) {
      return encode_skf_body(p, out), Status();
    }
    Status operator()(const UnknownPayload& p) { return out.bytes(p.body), Status(); }
  };
  return std::visit(Visitor{out}, body);
}

Status encode_chain(std::span<const Payload> payloads, bool top_level, ByteWriter& out) {
  for (size_t i = 0; i < payloads.size(); ++i) {
    const Payload& p = payloads[i];
    const std::string where = "payload " + n(i + 1) + " (" + to_string(p.type) + ")";
    if (!body_fits_type(p)) {
      return make_error(where + ": body does not match the payload type");
    }
    PayloadType next = i + 1 < payloads.size() ? payloads[i + 1].type : PayloadType::kNone;
    if (p.type == PayloadType::kEncrypted || p.type == PayloadType::kEncryptedFragment) {
      if (!top_level) return make_error(where + ": encrypted payload inside an encrypted payload");
      if (i + 1 != payloads.size()) {
        return make_error(where + ": encrypted payload must be the last payload, " +
                          n(payloads.size() - i - 1) + " follow");
      }
      next = p.type == PayloadType::kEncrypted ? p.get<EncryptedPayload>()->first_inner
                                               : p.get<EncryptedFragmentPayload>()->first_inner;
    }
    const size_t start = out.size();
    out.u8(static_cast<uint8_t>(next));
    out.u8(p.critical ? kPayloadCriticalBit : 0);
    out.u16(0);  // Payload Length, patched below
    if (auto s = encode_body(p.body, out); !s) return make_error(where + ": " + s.error());
    const size_t length = out.size() - start;
    if (length > std::numeric_limits<uint16_t>::max()) {
      return make_error(where + ": " + n(length) + " bytes, Payload Length allows 65535");
    }
    out.patch_u16(start + 2, static_cast<uint16_t>(length));
  }
  return Status::success();
}

}  // namespace

std::string to_string(DecodeFailureKind kind) {
  switch (kind) {
    case DecodeFailureKind::kNone: return "none";
    case DecodeFailureKind::kMalformed: return "malformed";
    case DecodeFailureKind::kInvalidMajorVersion: return "invalid_major_version";
    case DecodeFailureKind::kUnsupportedCriticalPayload: return "unsupported_critical_payload";
  }
  return "unknown(" + std::to_string(static_cast<unsigned>(kind)) + ")";
}

Payload make_payload(PayloadBody body) {
  static constexpr PayloadType kTypes[] = {
      PayloadType::kSecurityAssociation, PayloadType::kKeyExchange,
      PayloadType::kIdInitiator,         PayloadType::kCertificate,
      PayloadType::kCertificateRequest,  PayloadType::kAuthentication,
      PayloadType::kNonce,               PayloadType::kNotify,
      PayloadType::kDelete,              PayloadType::kVendorId,
      PayloadType::kTsInitiator,         PayloadType::kConfiguration,
      PayloadType::kEap,                 PayloadType::kEncrypted,
      PayloadType::kEncryptedFragment,   PayloadType::kNone,
  };
  static_assert(std::size(kTypes) == std::variant_size_v<PayloadBody>);
  Payload p;
  p.type = kTypes[body.index()];
  p.body = std::move(body);
  return p;
}

Payload make_id_payload(bool initiator, IdPayload id) {
  Payload p = make_payload(std::move(id));
  p.type = initiator ? PayloadType::kIdInitiator : PayloadType::kIdResponder;
  return p;
}

Payload make_ts_payload(bool initiator, TsPayload ts) {
  Payload p = make_payload(std::move(ts));
  p.type = initiator ? PayloadType::kTsInitiator : PayloadType::kTsResponder;
  return p;
}

const NotifyPayload* find_notify(std::span<const Payload> payloads, NotifyType type) {
  for (const auto& p : payloads) {
    if (const auto* notify = p.get<NotifyPayload>(); notify != nullptr && notify->type == type) {
      return notify;
    }
  }
  return nullptr;
}

const Payload* Message::find(PayloadType type) const {
  for (const auto& p : payloads) {
    if (p.type == type) return &p;
  }
  return nullptr;
}

const NotifyPayload* Message::find_notify(NotifyType type) const {
  return ike::find_notify(payloads, type);
}

Result<Message> decode_message(std::span<const uint8_t> datagram, DecodeFailure* failure) {
  auto header = decode_ike_header(datagram, failure);
  if (!header) return Error{header.error()};
  auto payloads = decode_chain(header->next_payload, datagram.subspan(kIkeHeaderSize),
                               kIkeHeaderSize, /*top_level=*/true, failure);
  if (!payloads) return Error{payloads.error()};
  if (failure != nullptr) *failure = DecodeFailure{};
  return Message{*header, std::move(*payloads)};
}

Result<std::vector<Payload>> decode_payload_chain(PayloadType first,
                                                  std::span<const uint8_t> bytes,
                                                  DecodeFailure* failure) {
  auto payloads = decode_chain(first, bytes, 0, /*top_level=*/false, failure);
  if (payloads && failure != nullptr) *failure = DecodeFailure{};
  return payloads;
}

Result<std::vector<uint8_t>> encode_message(const Message& message) {
  std::vector<uint8_t> bytes;
  ByteWriter out(bytes);
  IkeHeader header = message.header;
  header.next_payload = message.payloads.empty() ? PayloadType::kNone : message.payloads[0].type;
  header.length = 0;  // patched below
  encode_ike_header(header, out);
  if (auto s = encode_chain(message.payloads, /*top_level=*/true, out); !s) {
    return Error{s.error()};
  }
  if (bytes.size() > std::numeric_limits<uint32_t>::max()) {
    return make_error("IKE message of " + n(bytes.size()) + " bytes, Length allows 2^32-1");
  }
  out.patch_u32(24, static_cast<uint32_t>(bytes.size()));
  return bytes;
}

Result<std::vector<uint8_t>> encode_payload_chain(std::span<const Payload> payloads) {
  std::vector<uint8_t> bytes;
  ByteWriter out(bytes);
  if (auto s = encode_chain(payloads, /*top_level=*/false, out); !s) return Error{s.error()};
  return bytes;
}

}  // namespace segw::cp::ike
