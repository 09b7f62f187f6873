// Notify payload codec and typed notify data.
#include "controlplane/ike/codec/notify_payload.h"

#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

Status expect_type(const NotifyPayload& notify, std::initializer_list<NotifyType> types) {
  for (NotifyType t : types) {
    if (notify.type == t) return Status::success();
  }
  return make_error("notify " + to_string(notify.type) + ", expected " +
                    to_string(*types.begin()));
}

}  // namespace

Result<NotifyPayload> decode_notify_body(std::span<const uint8_t> body) {
  if (body.size() < 4) {
    return make_error("Notify payload body of " + n(body.size()) + " bytes, minimum 4");
  }
  NotifyPayload notify;
  notify.protocol = static_cast<ProtocolId>(body[0]);
  const size_t spi_size = body[1];
  notify.type = static_cast<NotifyType>(read_be16(body, 2));
  if (spi_size > body.size() - 4) {
    return make_error("Notify " + to_string(notify.type) + ": SPI size " + n(spi_size) +
                      " exceeds the " + n(body.size() - 4) + " bytes after the header");
  }
  // RFC 7296 3.10: 4 bytes for AH/ESP (or none for a notify that names no
  // Child SA); zero for the IKE SA, where an 8-byte IKE SPI from an old peer
  // is tolerated and kept.
  const bool child = notify.protocol == ProtocolId::kEsp || notify.protocol == ProtocolId::kAh;
  if (child ? (spi_size != 0 && spi_size != 4) : (spi_size != 0 && spi_size != 8)) {
    return make_error("Notify " + to_string(notify.type) + ": SPI size " + n(spi_size) +
                      " for protocol " + to_string(notify.protocol) + ", expected " +
                      (child ? "0 or 4" : "0 or 8"));
  }
  notify.spi = to_vector(body.subspan(4, spi_size));
  notify.data = to_vector(body.subspan(4 + spi_size));
  return notify;
}

Status encode_notify_body(const NotifyPayload& p, ByteWriter& out) {
  if (p.spi.size() > 255) {
    return make_error("Notify " + to_string(p.type) + ": SPI of " + n(p.spi.size()) +
                      " bytes, at most 255");
  }
  out.u8(static_cast<uint8_t>(p.protocol));
  out.u8(static_cast<uint8_t>(p.spi.size()));
  out.u16(static_cast<uint16_t>(p.type));
  out.bytes(p.spi);
  out.bytes(p.data);
  return Status::success();
}

Result<std::vector<uint8_t>> notify_cookie(const NotifyPayload& notify) {
  if (auto s = expect_type(notify, {NotifyType::kCookie}); !s) return Error{s.error()};
  if (notify.data.empty() || notify.data.size() > kMaxCookieLength) {
    return make_error("COOKIE of " + n(notify.data.size()) + " bytes, expected 1 to " +
                      n(kMaxCookieLength));
  }
  return notify.data;
}

Result<std::vector<uint8_t>> notify_cookie2(const NotifyPayload& notify) {
  if (auto s = expect_type(notify, {NotifyType::kCookie2}); !s) return Error{s.error()};
  if (notify.data.size() < kMinCookie2Length || notify.data.size() > kMaxCookieLength) {
    return make_error("COOKIE2 of " + n(notify.data.size()) + " bytes, expected " +
                      n(kMinCookie2Length) + " to " + n(kMaxCookieLength));
  }
  return notify.data;
}

Result<shared::IpAddress> notify_additional_address(const NotifyPayload& notify) {
  if (auto s = expect_type(notify, {NotifyType::kAdditionalIp4Address,
                                    NotifyType::kAdditionalIp6Address});
      !s) {
    return Error{s.error()};
  }
  const bool v4 = notify.type == NotifyType::kAdditionalIp4Address;
  const size_t expected = v4 ? 4 : 16;
  if (notify.data.size() != expected) {
    return make_error(to_string(notify.type) + " of " + n(notify.data.size()) +
                      " bytes, expected " + n(expected));
  }
  return v4 ? shared::IpAddress::from_ipv4_bytes(notify.data.data())
            : shared::IpAddress::from_ipv6_bytes(notify.data.data());
}

Result<std::vector<uint8_t>> notify_nat_detection_hash(const NotifyPayload& notify) {
  if (auto s = expect_type(notify, {NotifyType::kNatDetectionSourceIp,
                                    NotifyType::kNatDetectionDestinationIp});
      !s) {
    return Error{s.error()};
  }
  if (notify.data.size() != kNatDetectionHashLength) {
    return make_error(to_string(notify.type) + " of " + n(notify.data.size()) +
                      " bytes, expected " + n(kNatDetectionHashLength));
  }
  return notify.data;
}

Result<std::vector<HashAlgorithm>> notify_signature_hash_algorithms(const NotifyPayload& notify) {
  if (auto s = expect_type(notify, {NotifyType::kSignatureHashAlgorithms}); !s) {
    return Error{s.error()};
  }
  if (notify.data.size() % 2 != 0) {
    return make_error("SIGNATURE_HASH_ALGORITHMS of " + n(notify.data.size()) +
                      " bytes, expected a multiple of 2");
  }
  std::vector<HashAlgorithm> algorithms;
  for (size_t i = 0; i < notify.data.size(); i += 2) {
    algorithms.push_back(static_cast<HashAlgorithm>(read_be16(notify.data, i)));
  }
  return algorithms;
}

NotifyPayload make_notify(NotifyType type, std::vector<uint8_t> data) {
  NotifyPayload notify;
  notify.type = type;
  notify.data = std::move(data);
  return notify;
}

NotifyPayload make_additional_address_notify(const shared::IpAddress& address) {
  const uint8_t* bytes = address.bytes();
  return make_notify(address.is_ipv4() ? NotifyType::kAdditionalIp4Address
                                       : NotifyType::kAdditionalIp6Address,
                     std::vector<uint8_t>(bytes, bytes + address.byte_length()));
}

NotifyPayload make_signature_hash_algorithms_notify(std::span<const HashAlgorithm> algorithms) {
  std::vector<uint8_t> data;
  ByteWriter out(data);
  for (HashAlgorithm a : algorithms) out.u16(static_cast<uint16_t>(a));
  return make_notify(NotifyType::kSignatureHashAlgorithms, std::move(data));
}

}  // namespace segw::cp::ike
