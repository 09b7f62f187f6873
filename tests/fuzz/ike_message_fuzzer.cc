// libFuzzer target: the IKEv2 codec and the message legality rules on
// untrusted bytes. One input is one IKE datagram (after any non-ESP
// marker). It is decoded (header, then the whole message); what decodes is
// re-encoded and must decode back to the same value (message.h: "decode(
// encode(m)) == m"); the bytes inside an SK/SKF payload are also decoded as
// if they were decrypted content, with the payload's own Next Payload and
// with every other payload type as the first one; policy::check_message
// then judges the result. Nothing here may crash, leak or hit UB; a broken
// round trip aborts with both values' sizes and the first difference.
//
// Built with clang -fsanitize=fuzzer,address,undefined (tests/fuzz/meson.build).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "controlplane/ike/codec/message.h"
#include "controlplane/policy/message_rules.h"

namespace segw::cp::ike {
namespace {

// Every payload type the codec knows, plus one it does not (kNone ends a
// chain; 49 is unassigned): the first-payload sweep over SK content.
constexpr PayloadType kFirstPayloadSweep[] = {
    PayloadType::kNone,          PayloadType::kSecurityAssociation,
    PayloadType::kKeyExchange,   PayloadType::kIdInitiator,
    PayloadType::kIdResponder,   PayloadType::kCertificate,
    PayloadType::kCertificateRequest, PayloadType::kAuthentication,
    PayloadType::kNonce,         PayloadType::kNotify,
    PayloadType::kDelete,        PayloadType::kVendorId,
    PayloadType::kTsInitiator,   PayloadType::kTsResponder,
    PayloadType::kEncrypted,     PayloadType::kConfiguration,
    PayloadType::kEap,           PayloadType::kEncryptedFragment,
    static_cast<PayloadType>(49),
};

[[noreturn]] void fail(const char* what, std::span<const uint8_t> a, std::span<const uint8_t> b) {
  size_t first = 0;
  while (first < a.size() && first < b.size() && a[first] == b[first]) ++first;
  std::fprintf(stderr, "ike_message_fuzzer: %s (sizes %zu and %zu, first difference at %zu)\n",
               what, a.size(), b.size(), first);
  std::abort();
}

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "ike_message_fuzzer: %s: %s\n", what, detail.c_str());
  std::abort();
}

// decode_payload_chain on `bytes` with `first` as the first type; what
// decodes must encode and decode back to itself. Returns the chain (empty
// when it did not decode).
std::vector<Payload> fuzz_chain(PayloadType first, std::span<const uint8_t> bytes) {
  DecodeFailure failure;
  auto chain = decode_payload_chain(first, bytes, &failure);
  if (!chain.ok()) {
    (void)to_string(failure.kind);
    return {};
  }
  if (chain->empty()) return {};
  auto encoded = encode_payload_chain(*chain);
  if (!encoded.ok()) fail("encode_payload_chain refused a decoded chain", encoded.error());
  auto again = decode_payload_chain(chain->front().type, *encoded);
  if (!again.ok()) fail("re-encoded chain does not decode", again.error());
  if (*again != *chain) fail("chain round trip changed the payloads", bytes, *encoded);
  // Reserved fields are the only bytes the encoder may write differently.
  if (encoded->size() != bytes.size()) fail("chain round trip changed the size", bytes, *encoded);
  return std::move(*chain);
}

void fuzz_message(std::span<const uint8_t> datagram) {
  DecodeFailure header_failure;
  auto header = decode_ike_header(datagram, &header_failure);
  if (header.ok()) (void)to_string(*header);

  DecodeFailure failure;
  auto message = decode_message(datagram, &failure);
  if (!message.ok()) {
    (void)to_string(failure.kind);
    // The chain decoder on arbitrary bytes too: whatever follows 28 bytes,
    // with the header's Next Payload as the first type.
    if (datagram.size() > kIkeHeaderSize)
      (void)fuzz_chain(static_cast<PayloadType>(datagram[16]),
                       datagram.subspan(kIkeHeaderSize));
    return;
  }
  if (!header.ok()) fail("decode_message accepted a header decode_ike_header refuses", header.error());
  if (!(message->header == *header)) fail("decode_message and decode_ike_header disagree", "header");

  // decode(encode(m)) == m (message.h).
  auto encoded = encode_message(*message);
  if (!encoded.ok()) fail("encode_message refused a decoded message", encoded.error());
  auto again = decode_message(*encoded);
  if (!again.ok()) fail("re-encoded message does not decode", again.error());
  if (*again != *message) fail("message round trip changed the message", datagram, *encoded);
  if (encoded->size() != datagram.size()) fail("message round trip changed the size", datagram, *encoded);

  // SK/SKF content as if decrypted: its own first type, then the sweep.
  std::vector<Payload> inner;
  if (!message->payloads.empty()) {
    const Payload& last = message->payloads.back();
    std::span<const uint8_t> content;
    PayloadType first = PayloadType::kNone;
    if (const auto* sk = last.get<EncryptedPayload>()) {
      content = sk->encrypted;
      first = sk->first_inner;
    } else if (const auto* skf = last.get<EncryptedFragmentPayload>()) {
      content = skf->encrypted;
      first = skf->first_inner;
    }
    if (!content.empty()) {
      inner = fuzz_chain(first, content);
      for (PayloadType type : kFirstPayloadSweep)
        if (type != first) (void)fuzz_chain(type, content);
    }
  }

  for (const Payload& p : message->payloads) (void)to_string(p.type);
  (void)message->find(PayloadType::kNotify);
  (void)message->find_notify(NotifyType::kCookie);
  auto verdict = policy::check_message(*message, inner);
  (void)verdict.ok();
  // The same message judged as if its SK held nothing (a failed decrypt
  // never reaches the rules, but the rules must not depend on that).
  auto bare = policy::check_message(*message, {});
  (void)bare.ok();
}

}  // namespace
}  // namespace segw::cp::ike

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  segw::cp::ike::fuzz_message(std::span<const uint8_t>(data, size));
  return 0;
}
