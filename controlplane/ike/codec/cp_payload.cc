// Configuration payload codec and typed attribute values.
#include "controlplane/ike/codec/cp_payload.h"

#include <string>

namespace segw::cp::ike {
namespace {

std::string n(size_t v) { return std::to_string(v); }

constexpr size_t kAttributeHeaderSize = 4;

Status expect_value(const CpAttribute& attribute, size_t expected) {
  if (attribute.value.size() != expected) {
    return make_error(to_string(attribute.type) + " value of " + n(attribute.value.size()) +
                      " bytes, expected " + n(expected));
  }
  return Status::success();
}

std::vector<uint8_t> address_bytes(const shared::IpAddress& a) {
  return {a.bytes(), a.bytes() + a.byte_length()};
}

}  // namespace

std::optional<size_t> cp_attribute_value_length(CpAttributeType type) {
  switch (type) {
    case CpAttributeType::kInternalIp4Address:
    case CpAttributeType::kInternalIp4Netmask:
    case CpAttributeType::kInternalIp4Dns:
    case CpAttributeType::kInternalIp4Nbns:
    case CpAttributeType::kInternalAddressExpiry:
    case CpAttributeType::kInternalIp4Dhcp:
      return 4;
    case CpAttributeType::kInternalIp6Address:
    case CpAttributeType::kInternalIp6Subnet:
      return 17;
    case CpAttributeType::kInternalIp6Dns:
    case CpAttributeType::kInternalIp6Dhcp:
      return 16;
    case CpAttributeType::kInternalIp4Subnet:
      return 8;
    case CpAttributeType::kExternalSourceIp4NatInfo:
      return 6;
    case CpAttributeType::kApplicationVersion:
    case CpAttributeType::kSupportedAttributes:
      return std::nullopt;
  }
  return std::nullopt;
}

Result<CpPayload> decode_cp_body(std::span<const uint8_t> body) {
  if (body.size() < 4) {
    return make_error("CP payload body of " + n(body.size()) + " bytes, minimum 4");
  }
  CpPayload cp;
  cp.type = static_cast<CpType>(body[0]);
  size_t pos = 4;
  while (pos < body.size()) {
    const std::string where = "CP attribute " + n(cp.attributes.size() + 1);
    const size_t left = body.size() - pos;
    if (left < kAttributeHeaderSize) {
      return make_error(where + ": needs " + n(kAttributeHeaderSize) + " bytes, only " +
                        n(left) + " left in the payload");
    }
    CpAttribute attribute;
    attribute.type = static_cast<CpAttributeType>(read_be16(body, pos) & kCpAttributeTypeMask);
    const size_t length = read_be16(body, pos + 2);
    if (length > left - kAttributeHeaderSize) {
      return make_error(where + " " + to_string(attribute.type) + ": Length " + n(length) +
                        " exceeds the " + n(left - kAttributeHeaderSize) +
                        " bytes left in the payload");
    }
    const auto expected = cp_attribute_value_length(attribute.type);
    if (expected && length != 0 && length != *expected) {
      return make_error(where + " " + to_string(attribute.type) + ": Length " + n(length) +
                        ", expected 0 or " + n(*expected));
    }
    attribute.value = to_vector(body.subspan(pos + kAttributeHeaderSize, length));
    cp.attributes.push_back(std::move(attribute));
    pos += kAttributeHeaderSize + length;
  }
  return cp;
}

Status encode_cp_body(const CpPayload& cp, ByteWriter& out) {
  out.u8(static_cast<uint8_t>(cp.type));
  out.zeros(3);
  for (const auto& attribute : cp.attributes) {
    if (attribute.value.size() > 0xffff) {
      return make_error("CP attribute " + to_string(attribute.type) + " value of " +
                        n(attribute.value.size()) + " bytes, at most 65535");
    }
    out.u16(static_cast<uint16_t>(attribute.type) & kCpAttributeTypeMask);
    out.u16(static_cast<uint16_t>(attribute.value.size()));
    out.bytes(attribute.value);
  }
  return Status::success();
}

CpAttribute make_cp_ip4_attribute(CpAttributeType type, const shared::IpAddress& address) {
  return {type, address_bytes(address)};
}

CpAttribute make_cp_ip6_attribute(CpAttributeType type, const shared::IpAddress& address) {
  return {type, address_bytes(address)};
}

CpAttribute make_cp_ip6_prefix_attribute(CpAttributeType type, const Ip6AddressValue& value) {
  CpAttribute attribute{type, address_bytes(value.address)};
  attribute.value.push_back(value.prefix_length);
  return attribute;
}

CpAttribute make_cp_ip4_subnet_attribute(const Ip4SubnetValue& value) {
  CpAttribute attribute{CpAttributeType::kInternalIp4Subnet, address_bytes(value.address)};
  const auto mask = address_bytes(value.netmask);
  attribute.value.insert(attribute.value.end(), mask.begin(), mask.end());
  return attribute;
}

CpAttribute make_cp_nat_info_attribute(const NatInfoValue& value) {
  CpAttribute attribute{CpAttributeType::kExternalSourceIp4NatInfo, address_bytes(value.address)};
  ByteWriter out(attribute.value);
  out.u16(value.port);
  return attribute;
}

CpAttribute make_cp_request_attribute(CpAttributeType type) { return {type, {}}; }

Result<shared::IpAddress> cp_attribute_ip4(const CpAttribute& attribute) {
  if (auto s = expect_value(attribute, 4); !s) return Error{s.error()};
  return shared::IpAddress::from_ipv4_bytes(attribute.value.data());
}

Result<shared::IpAddress> cp_attribute_ip6(const CpAttribute& attribute) {
  if (auto s = expect_value(attribute, 16); !s) return Error{s.error()};
  return shared::IpAddress::from_ipv6_bytes(attribute.value.data());
}

Result<Ip6AddressValue> cp_attribute_ip6_prefix(const CpAttribute& attribute) {
  if (auto s = expect_value(attribute, 17); !s) return Error{s.error()};
  if (attribute.value[16] > 128) {
    return make_error(to_string(attribute.type) + " prefix length " +
                      n(attribute.value[16]) + ", at most 128");
  }
  return Ip6AddressValue{shared::IpAddress::from_ipv6_bytes(attribute.value.data()),
                         attribute.value[16]};
}

Result<Ip4SubnetValue> cp_attribute_ip4_subnet(const CpAttribute& attribute) {
  if (auto s = expect_value(attribute, 8); !s) return Error{s.error()};
  return Ip4SubnetValue{shared::IpAddress::from_ipv4_bytes(attribute.value.data()),
                        shared::IpAddress::from_ipv4_bytes(attribute.value.data() + 4)};
}

Result<NatInfoValue> cp_attribute_nat_info(const CpAttribute& attribute) {
  if (auto s = expect_value(attribute, 6); !s) return Error{s.error()};
  return NatInfoValue{shared::IpAddress::from_ipv4_bytes(attribute.value.data()),
                      read_be16(attribute.value, 4)};
}

}  // namespace segw::cp::ike
