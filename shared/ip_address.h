// IPv4/IPv6 addresses and prefixes, in network byte order, std-only.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace segw::shared {

enum class IpFamily : uint8_t { kIpv4 = 4, kIpv6 = 6 };

const char* to_string(IpFamily family);

// An IPv4 or IPv6 address. IPv4 addresses live in bytes_[0..3]; the rest is
// zero, so comparing the whole object is comparing the address.
class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress from_ipv4(uint32_t host_order);
  static IpAddress from_ipv4_bytes(const uint8_t bytes[4]);
  static IpAddress from_ipv6_bytes(const uint8_t bytes[16]);
  static std::optional<IpAddress> parse(std::string_view text);

  IpFamily family() const { return family_; }
  bool is_ipv4() const { return family_ == IpFamily::kIpv4; }
  bool is_ipv6() const { return family_ == IpFamily::kIpv6; }
  uint32_t ipv4_host_order() const;
  const uint8_t* bytes() const { return bytes_.data(); }
  size_t byte_length() const { return is_ipv4() ? 4 : 16; }
  std::string to_string() const;

  // Adds `offset` to the address as an unsigned big-endian integer (wraps).
  IpAddress plus(uint64_t offset) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress& a, const IpAddress& b) {
    if (a.family_ != b.family_) return a.family_ <=> b.family_;
    int c = std::memcmp(a.bytes_.data(), b.bytes_.data(), 16);
    return c <=> 0;
  }

 private:
  IpFamily family_ = IpFamily::kIpv4;
  std::array<uint8_t, 16> bytes_{};
};

// address/length, with the host bits cleared.
struct IpPrefix {
  IpAddress address;
  uint8_t length = 0;

  static std::optional<IpPrefix> parse(std::string_view text);
  bool contains(const IpAddress& candidate) const;
  IpAddress last() const;  // highest address inside the prefix
  std::string to_string() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace segw::shared
