// Notify payload (RFC 7296 3.10) and typed views of the notify data the
// engine reads: COOKIE, COOKIE2, ADDITIONAL_IP4/6_ADDRESS, NAT-D hashes and
// SIGNATURE_HASH_ALGORITHMS.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"
#include "shared/ip_address.h"

namespace segw::cp::ike {

struct NotifyPayload {
  ProtocolId protocol = ProtocolId::kNone;
  NotifyType type = NotifyType::kInitialContact;
  std::vector<uint8_t> spi;  // 0 bytes for the IKE SA, 4 for AH/ESP
  std::vector<uint8_t> data;
  friend bool operator==(const NotifyPayload&, const NotifyPayload&) = default;
};

// Errors: body < 4; SPI size beyond the body; SPI size other than 0 or 4
// for AH/ESP, other than 0 or 8 for any other protocol.
Result<NotifyPayload> decode_notify_body(std::span<const uint8_t> body);
// Errors: an SPI longer than 255 bytes.
Status encode_notify_body(const NotifyPayload& p, ByteWriter& out);

// RFC 7296 2.6: COOKIE data is 1 to 64 bytes.
inline constexpr size_t kMaxCookieLength = 64;
// RFC 4555 3.6 / 4.8: COOKIE2 data is 8 to 64 bytes.
inline constexpr size_t kMinCookie2Length = 8;
// RFC 7296 2.23: NAT-D data is a SHA-1 hash.
inline constexpr size_t kNatDetectionHashLength = 20;

// Typed views. Each checks the notify type and the data size; errors say
// which and by how much.
Result<std::vector<uint8_t>> notify_cookie(const NotifyPayload& notify);
Result<std::vector<uint8_t>> notify_cookie2(const NotifyPayload& notify);
// ADDITIONAL_IP4_ADDRESS (4 bytes) or ADDITIONAL_IP6_ADDRESS (16 bytes).
Result<shared::IpAddress> notify_additional_address(const NotifyPayload& notify);
// NAT_DETECTION_SOURCE_IP or NAT_DETECTION_DESTINATION_IP.
Result<std::vector<uint8_t>> notify_nat_detection_hash(const NotifyPayload& notify);
// RFC 7427 4: a list of 16-bit hash algorithm IDs (odd data size fails).
Result<std::vector<HashAlgorithm>> notify_signature_hash_algorithms(const NotifyPayload& notify);

// Builders for the same notifies (protocol NONE, no SPI).
NotifyPayload make_notify(NotifyType type, std::vector<uint8_t> data = {});
NotifyPayload make_additional_address_notify(const shared::IpAddress& address);
NotifyPayload make_signature_hash_algorithms_notify(std::span<const HashAlgorithm> algorithms);

}  // namespace segw::cp::ike
