// Configuration payload CP (RFC 7296 3.15) with typed attribute values,
// including EXTERNAL_SOURCE_IP4_NAT_INFO (3GPP TS 29.139, attribute 23).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "controlplane/ike/codec/codec_common.h"
#include "shared/ip_address.h"

namespace segw::cp::ike {

// RFC 7296 3.15.1. An empty value asks for one (CFG_REQUEST).
struct CpAttribute {
  CpAttributeType type = CpAttributeType::kInternalIp4Address;  // 15 bits
  std::vector<uint8_t> value;
  friend bool operator==(const CpAttribute&, const CpAttribute&) = default;
};

struct CpPayload {
  CpType type = CpType::kRequest;
  std::vector<CpAttribute> attributes;
  friend bool operator==(const CpPayload&, const CpPayload&) = default;
};

// Value size of a known attribute when it is not empty (RFC 7296 3.15.1
// table); nullopt for types of any size or unknown types.
std::optional<size_t> cp_attribute_value_length(CpAttributeType type);

// Errors: body < 4; attribute header truncated; attribute Length beyond the
// payload; a known attribute whose value is neither empty nor its size.
Result<CpPayload> decode_cp_body(std::span<const uint8_t> body);
// Errors: a value longer than 65535 bytes.
Status encode_cp_body(const CpPayload& cp, ByteWriter& out);

// Typed values. Builders take what the attribute carries; readers check the
// value size (an empty request value is an error here).
struct Ip6AddressValue {
  shared::IpAddress address;
  uint8_t prefix_length = 0;
  friend bool operator==(const Ip6AddressValue&, const Ip6AddressValue&) = default;
};
struct Ip4SubnetValue {
  shared::IpAddress address;
  shared::IpAddress netmask;
  friend bool operator==(const Ip4SubnetValue&, const Ip4SubnetValue&) = default;
};
struct NatInfoValue {
  shared::IpAddress address;  // public IPv4 address of the initiator
  uint16_t port = 0;          // its public UDP port
  friend bool operator==(const NatInfoValue&, const NatInfoValue&) = default;
};

// INTERNAL_IP4_ADDRESS / NETMASK / DNS / NBNS / DHCP (4 bytes).
CpAttribute make_cp_ip4_attribute(CpAttributeType type, const shared::IpAddress& address);
// INTERNAL_IP6_DNS / DHCP (16 bytes).
CpAttribute make_cp_ip6_attribute(CpAttributeType type, const shared::IpAddress& address);
// INTERNAL_IP6_ADDRESS and INTERNAL_IP6_SUBNET (16 bytes + prefix length).
CpAttribute make_cp_ip6_prefix_attribute(CpAttributeType type, const Ip6AddressValue& value);
CpAttribute make_cp_ip4_subnet_attribute(const Ip4SubnetValue& value);
CpAttribute make_cp_nat_info_attribute(const NatInfoValue& value);
CpAttribute make_cp_request_attribute(CpAttributeType type);  // empty value

Result<shared::IpAddress> cp_attribute_ip4(const CpAttribute& attribute);
Result<shared::IpAddress> cp_attribute_ip6(const CpAttribute& attribute);
Result<Ip6AddressValue> cp_attribute_ip6_prefix(const CpAttribute& attribute);
Result<Ip4SubnetValue> cp_attribute_ip4_subnet(const CpAttribute& attribute);
Result<NatInfoValue> cp_attribute_nat_info(const CpAttribute& attribute);

}  // namespace segw::cp::ike
