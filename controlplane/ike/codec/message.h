// An IKEv2 message: the header and its ordered payloads; decode and encode
// of whole datagrams and of the inner payload chain of SK/SKF.
//
// Thread safety: every function here is pure (no shared state) and may be
// called from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"
#include "controlplane/ike/codec/cp_payload.h"
#include "controlplane/ike/codec/encrypted_payload.h"
#include "controlplane/ike/codec/ike_header.h"
#include "controlplane/ike/codec/notify_payload.h"
#include "controlplane/ike/codec/sa_payload.h"
#include "controlplane/ike/codec/simple_payloads.h"
#include "controlplane/ike/codec/ts_payload.h"

namespace segw::cp::ike {

// A payload of a type the codec does not know, not marked critical: skipped
// by the engine (RFC 7296 2.5), kept here so it can be logged and re-encoded.
struct UnknownPayload {
  std::vector<uint8_t> body;
  friend bool operator==(const UnknownPayload&, const UnknownPayload&) = default;
};

using PayloadBody =
    std::variant<SaPayload, KePayload, IdPayload, CertPayload, CertReqPayload, AuthPayload,
                 NoncePayload, NotifyPayload, DeletePayload, VendorIdPayload, TsPayload,
                 CpPayload, EapPayload, EncryptedPayload, EncryptedFragmentPayload,
                 UnknownPayload>;

// `type` picks the wire type where a body type serves two (IDi/IDr,
// TSi/TSr); encode checks that it fits the body.
struct Payload {
  PayloadType type = PayloadType::kNone;
  bool critical = false;  // RFC 7296 3.2; ignored by receivers for known types
  PayloadBody body;

  template <typename T>
  const T* get() const { return std::get_if<T>(&body); }
  template <typename T>
  T* get() { return std::get_if<T>(&body); }
  friend bool operator==(const Payload&, const Payload&) = default;
};

// Builds a payload whose wire type follows from the body; for IdPayload and
// TsPayload use the initiator/responder forms below.
Payload make_payload(PayloadBody body);
Payload make_id_payload(bool initiator, IdPayload id);
Payload make_ts_payload(bool initiator, TsPayload ts);

struct Message {
  IkeHeader header;
  std::vector<Payload> payloads;  // in wire order; an SK/SKF payload is last

  // First payload of a type, nullptr when absent.
  const Payload* find(PayloadType type) const;
  // First Notify of a type, nullptr when absent.
  const NotifyPayload* find_notify(NotifyType type) const;
  friend bool operator==(const Message&, const Message&) = default;
};

const NotifyPayload* find_notify(std::span<const Payload> payloads, NotifyType type);

// Decodes a whole IKE datagram (after any non-ESP marker). Validates every
// length before reading what it covers: the header (see decode_ike_header),
// each generic payload header (4 bytes present, Payload Length >= 4 and
// within the message), each payload body (see the decode_*_body functions),
// the chain ending exactly at the end (no trailing bytes, no missing
// payload). An unknown payload type is recorded as UnknownPayload, unless
// its critical bit is set: then the error names the type and `failure`
// (optional) says kUnsupportedCriticalPayload with the type. An SK or SKF
// payload ends the decoding: it must reach the end of the message; its
// encrypted bytes, inner Next Payload and layout are returned, the inner
// chain is left for decode_payload_chain after decryption.
// Never throws for bad input, never reads outside `datagram`.
Result<Message> decode_message(std::span<const uint8_t> datagram,
                               DecodeFailure* failure = nullptr);

// Decodes the decrypted content of SK (padding and Pad Length already
// removed by the crypto layer) or a reassembled SKF set. `first` is the
// encrypted payload's Next Payload. SK/SKF inside it is an error (RFC 7296
// 3.14: payloads cannot nest encryption). Offsets in error messages count
// from the start of `bytes`.
Result<std::vector<Payload>> decode_payload_chain(PayloadType first,
                                                  std::span<const uint8_t> bytes,
                                                  DecodeFailure* failure = nullptr);

// Encodes a message. header.next_payload and header.length are computed
// from the payloads (the other header fields are written as given); each
// payload's Next Payload is the type of the one after it, or for SK/SKF its
// first_inner. Errors: SK/SKF not last; a body that does not match its
// payload type; a payload longer than 65535 bytes; a payload body encoder
// error. Round trip: decode(encode(m)) == m, and encode(decode(b)) == b for
// any b whose reserved fields are zero.
Result<std::vector<uint8_t>> encode_message(const Message& message);

// Encodes the inner chain to put into SK (before padding and encryption);
// the SK payload's first_inner is payloads.front().type. Errors: as
// encode_message, and SK/SKF anywhere in the chain.
Result<std::vector<uint8_t>> encode_payload_chain(std::span<const Payload> payloads);

}  // namespace segw::cp::ike
