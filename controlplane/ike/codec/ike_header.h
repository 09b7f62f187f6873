// The fixed IKE header (RFC 7296 3.1).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "controlplane/ike/codec/codec_common.h"

namespace segw::cp::ike {

struct IkeHeader {
  uint64_t spi_i = 0;  // host order; the wire is big-endian
  uint64_t spi_r = 0;
  PayloadType next_payload = PayloadType::kNone;
  uint8_t major_version = kIkeMajorVersion;
  uint8_t minor_version = kIkeMinorVersion;
  ExchangeType exchange = ExchangeType::kIkeSaInit;
  uint8_t flags = 0;  // kFlagInitiator | kFlagVersion | kFlagResponse
  uint32_t message_id = 0;
  uint32_t length = 0;  // whole message, header included

  bool is_initiator() const { return (flags & kFlagInitiator) != 0; }
  bool is_response() const { return (flags & kFlagResponse) != 0; }
  friend bool operator==(const IkeHeader&, const IkeHeader&) = default;
};

// "IKE_SA_INIT request #0 spi_i=... spi_r=... flags=I len=..." for logs.
std::string to_string(const IkeHeader& header);

// Reads the header only, so the engine can look up the SA (and answer
// INVALID_MAJOR_VERSION) before decoding payloads. Checks: at least 28
// bytes; Length equals the datagram size; major version 2 (failure kind
// kInvalidMajorVersion). `failure` (optional) gets the kind.
Result<IkeHeader> decode_ike_header(std::span<const uint8_t> datagram,
                                    DecodeFailure* failure = nullptr);

// Appends the 28-byte header exactly as given (next_payload and length
// included): callers that build a message through encode_message never call
// this directly.
void encode_ike_header(const IkeHeader& header, ByteWriter& out);

}  // namespace segw::cp::ike
