// IPv4/IPv6 address parsing and printing (inet_pton/ntop are POSIX, not DPDK).
#include "shared/ip_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace segw::shared {

const char* to_string(IpFamily family) {
  switch (family) {
    case IpFamily::kIpv4: return "ipv4";
    case IpFamily::kIpv6: return "ipv6";
  }
  return "unknown";
}

IpAddress IpAddress::from_ipv4(uint32_t host_order) {
  IpAddress a;
  a.family_ = IpFamily::kIpv4;
  a.bytes_[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes_[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes_[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes_[3] = static_cast<uint8_t>(host_order);
  return a;
}

IpAddress IpAddress::from_ipv4_bytes(const uint8_t bytes[4]) {
  IpAddress a;
  a.family_ = IpFamily::kIpv4;
  std::memcpy(a.bytes_.data(), bytes, 4);
  return a;
}

IpAddress IpAddress::from_ipv6_bytes(const uint8_t bytes[16]) {
  IpAddress a;
  a.family_ = IpFamily::kIpv6;
  std::memcpy(a.bytes_.data(), bytes, 16);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton stops at a NUL; a NUL inside the view is garbage, not the end.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  std::string s(text);
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = IpFamily::kIpv6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), a.bytes_.data()) != 1) return std::nullopt;
    a.family_ = IpFamily::kIpv4;
  }
  return a;
}

uint32_t IpAddress::ipv4_host_order() const {
  return (uint32_t{bytes_[0]} << 24) | (uint32_t{bytes_[1]} << 16) |
         (uint32_t{bytes_[2]} << 8) | uint32_t{bytes_[3]};
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_ipv4() ? AF_INET : AF_INET6, bytes_.data(), buffer, sizeof(buffer));
  return buffer;
}

IpAddress IpAddress::plus(uint64_t offset) const {
  IpAddress a = *this;
  int i = static_cast<int>(byte_length()) - 1;
  unsigned carry = 0;
  while (i >= 0 && (offset != 0 || carry != 0)) {
    unsigned sum = a.bytes_[i] + static_cast<unsigned>(offset & 0xff) + carry;
    a.bytes_[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    offset >>= 8;
    --i;
  }
  return a;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  unsigned max_length = address->is_ipv4() ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc() || end != digits.data() + digits.size() || length > max_length)
      return std::nullopt;
  }
  IpPrefix p{*address, static_cast<uint8_t>(length)};
  // Clear host bits so equal prefixes compare equal.
  uint8_t bytes[16];
  std::memcpy(bytes, p.address.bytes(), 16);
  for (unsigned bit = length; bit < max_length; ++bit) bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  p.address = address->is_ipv4() ? IpAddress::from_ipv4_bytes(bytes) : IpAddress::from_ipv6_bytes(bytes);
  return p;
}

bool IpPrefix::contains(const IpAddress& candidate) const {
  if (candidate.family() != address.family()) return false;
  const uint8_t* a = address.bytes();
  const uint8_t* b = candidate.bytes();
  unsigned full = length / 8;
  if (std::memcmp(a, b, full) != 0) return false;
  unsigned rest = length % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
  return (a[full] & mask) == (b[full] & mask);
}

IpAddress IpPrefix::last() const {
  uint8_t bytes[16];
  std::memcpy(bytes, address.bytes(), 16);
  unsigned max_length = address.is_ipv4() ? 32 : 128;
  for (unsigned bit = length; bit < max_length; ++bit) bytes[bit / 8] |= static_cast<uint8_t>(0x80u >> (bit % 8));
  return address.is_ipv4() ? IpAddress::from_ipv4_bytes(bytes) : IpAddress::from_ipv6_bytes(bytes);
}

std::string IpPrefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

}  // namespace segw::shared
