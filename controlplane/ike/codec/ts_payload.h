// Traffic selector payloads TSi/TSr (RFC 7296 3.13).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"
#include "shared/ip_address.h"

namespace segw::cp::ike {

// RFC 7296 3.13.1. For the two address-range types the fields below are
// filled; a selector of an unknown type keeps the bytes after its Selector
// Length field in `opaque` (and nothing else) so it survives a round trip.
struct TrafficSelector {
  TsType type = TsType::kIpv4AddressRange;
  uint8_t ip_protocol = 0;  // 0: any
  uint16_t start_port = 0;
  uint16_t end_port = 65535;
  shared::IpAddress start_address;
  shared::IpAddress end_address;
  std::vector<uint8_t> opaque;
  friend bool operator==(const TrafficSelector&, const TrafficSelector&) = default;
};

struct TsPayload {
  std::vector<TrafficSelector> selectors;
  friend bool operator==(const TsPayload&, const TsPayload&) = default;
};

inline constexpr size_t kTsIpv4Length = 16;
inline constexpr size_t kTsIpv6Length = 40;

// Selector covering one whole address family (any protocol, any port).
TrafficSelector make_any_selector(shared::IpFamily family);
// Selector for [start, end] (same family), any protocol and port.
TrafficSelector make_range_selector(const shared::IpAddress& start, const shared::IpAddress& end);

// Errors: body < 4; no selector; selector header truncated; Selector Length
// below 4 or beyond the payload; an IPv4/IPv6 range not 16/40 bytes; the
// Number of TSs disagreeing with the bytes.
Result<TsPayload> decode_ts_body(std::span<const uint8_t> body);
// Errors: more than 255 selectors; address family not matching the type;
// an opaque selector longer than a 16-bit length allows.
Status encode_ts_body(const TsPayload& ts, ByteWriter& out);

}  // namespace segw::cp::ike
