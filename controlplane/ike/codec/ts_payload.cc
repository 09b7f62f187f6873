// Traffic selector codec: Number of TSs, then one length-checked selector
// after another (RFC 7296 3.13).
#include "controlplane/ike/codec/ts_payload.h"

#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

constexpr size_t kSelectorHeaderSize = 4;  // type, protocol, length

}  // namespace

TrafficSelector make_any_selector(shared::IpFamily family) {
  TrafficSelector ts;
  if (family == shared::IpFamily::kIpv4) {
    ts.type = TsType::kIpv4AddressRange;
    ts.start_address = shared::IpAddress::from_ipv4(0);
    ts.end_address = shared::IpAddress::from_ipv4(0xffffffffu);
  } else {
    uint8_t low[16] = {};
    uint8_t high[16];
    for (auto& b : high) b = 0xff;
    ts.type = TsType::kIpv6AddressRange;
    ts.start_address = shared::IpAddress::from_ipv6_bytes(low);
    ts.end_address = shared::IpAddress::from_ipv6_bytes(high);
  }
  return ts;
}

TrafficSelector make_range_selector(const shared::IpAddress& start, const shared::IpAddress& end) {
  TrafficSelector ts;
  ts.type = start.is_ipv4() ? TsType::kIpv4AddressRange : TsType::kIpv6AddressRange;
  ts.start_address = start;
  ts.end_address = end;
  return ts;
}

Result<TsPayload> decode_ts_body(std::span<const uint8_t> body) {
  if (body.size() < 4) {
    return make_error("TS payload body of " + n(body.size()) + " bytes, minimum 4");
  }
  const size_t count = body[0];
  if (count == 0) return make_error("TS payload with 0 traffic selectors, expected at least 1");
  TsPayload ts;
  size_t pos = 4;
  for (size_t i = 0; i < count; ++i) {
    const std::string where = "TS selector " + n(i + 1) + " of " + n(count);
    const size_t left = body.size() - pos;
    if (left < kSelectorHeaderSize) {
      return make_error(where + ": needs " + n(kSelectorHeaderSize) + " bytes, only " +
                        n(left) + " left in the payload");
    }
    TrafficSelector selector;
    selector.type = static_cast<TsType>(body[pos]);
    selector.ip_protocol = body[pos + 1];
    const size_t length = read_be16(body, pos + 2);
    if (length < kSelectorHeaderSize || length > left) {
      return make_error(where + ": Selector Length " + n(length) + ", expected " +
                        n(kSelectorHeaderSize) + " to the " + n(left) +
                        " bytes left in the payload");
    }
    const auto data = body.subspan(pos, length);
    if (selector.type == TsType::kIpv4AddressRange || selector.type == TsType::kIpv6AddressRange) {
      const bool v4 = selector.type == TsType::kIpv4AddressRange;
      const size_t expected = v4 ? kTsIpv4Length : kTsIpv6Length;
      if (length != expected) {
        return make_error(where + ": Selector Length " + n(length) + " for " +
                          to_string(selector.type) + ", expected " + n(expected));
      }
      selector.start_port = read_be16(data, 4);
      selector.end_port = read_be16(data, 6);
      const size_t address_size = v4 ? 4 : 16;
      const uint8_t* start = data.data() + 8;
      const uint8_t* end = start + address_size;
      selector.start_address = v4 ? shared::IpAddress::from_ipv4_bytes(start)
                                  : shared::IpAddress::from_ipv6_bytes(start);
      selector.end_address = v4 ? shared::IpAddress::from_ipv4_bytes(end)
                                : shared::IpAddress::from_ipv6_bytes(end);
    } else {
      selector.start_port = 0;
      selector.end_port = 0;
      selector.opaque = to_vector(data.subspan(kSelectorHeaderSize));
    }
    ts.selectors.push_back(std::move(selector));
    pos += length;
  }
  if (pos != body.size()) {
    return make_error("TS payload: " + n(count) + " selectors end at byte " + n(pos) +
                      " of a " + n(body.size()) + "-byte body");
  }
  return ts;
}

Status encode_ts_body(const TsPayload& ts, ByteWriter& out) {
  if (ts.selectors.empty() || ts.selectors.size() > 255) {
    return make_error("TS payload with " + n(ts.selectors.size()) +
                      " selectors, expected 1 to 255");
  }
  out.u8(static_cast<uint8_t>(ts.selectors.size()));
  out.zeros(3);
  for (size_t i = 0; i < ts.selectors.size(); ++i) {
    const TrafficSelector& s = ts.selectors[i];
    out.u8(static_cast<uint8_t>(s.type));
    out.u8(s.ip_protocol);
    if (s.type == TsType::kIpv4AddressRange || s.type == TsType::kIpv6AddressRange) {
      const bool v4 = s.type == TsType::kIpv4AddressRange;
      if (s.start_address.is_ipv4() != v4 || s.end_address.is_ipv4() != v4) {
        return make_error("TS selector " + n(i + 1) + ": " + to_string(s.type) + " with " +
                          shared::to_string(s.start_address.family()) + "/" +
                          shared::to_string(s.end_address.family()) + " addresses");
      }
      out.u16(static_cast<uint16_t>(v4 ? kTsIpv4Length : kTsIpv6Length));
      out.u16(s.start_port);
      out.u16(s.end_port);
      out.bytes({s.start_address.bytes(), s.start_address.byte_length()});
      out.bytes({s.end_address.bytes(), s.end_address.byte_length()});
    } else {
      if (s.opaque.size() > 0xffff - kSelectorHeaderSize) {
        return make_error("TS selector " + n(i + 1) + ": " + n(s.opaque.size()) +
                          " opaque bytes, too long for a 16-bit length");
      }
      out.u16(static_cast<uint16_t>(s.opaque.size() + kSelectorHeaderSize));
      out.bytes(s.opaque);
    }
  }
  return Status::success();
}

}  // namespace segw::cp::ike
