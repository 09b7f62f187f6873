// Wire formats both processes agree on: IP protocol numbers, IKE/NAT-T ports,
// ESP header and trailer layout (RFC 4303), UDP encapsulation (RFC 3948).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace segw::shared {

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
inline constexpr uint8_t kIpProtocolIcmp = 1;
inline constexpr uint8_t kIpProtocolIpv4 = 4;     // ESP next header: inner IPv4 (tunnel mode)
inline constexpr uint8_t kIpProtocolTcp = 6;
inline constexpr uint8_t kIpProtocolUdp = 17;
inline constexpr uint8_t kIpProtocolIpv6 = 41;    // ESP next header: inner IPv6
inline constexpr uint8_t kIpProtocolEsp = 50;
inline constexpr uint8_t kIpProtocolIcmpv6 = 58;
inline constexpr uint8_t kIpProtocolNoNext = 59;  // RFC 4303 2.6: dummy packet, discard
inline constexpr uint8_t kIpProtocolIpv6Fragment = 44;

const char* ip_protocol_name(uint8_t protocol);

// UDP ports (RFC 7296 2.23, RFC 3948 2).
inline constexpr uint16_t kIkePort = 500;
inline constexpr uint16_t kNatTraversalPort = 4500;

// RFC 3948 2.2: on port 4500 a zero first word marks IKE, not ESP.
inline constexpr uint32_t kNonEspMarker = 0;
// RFC 3948 2.3: NAT-keepalive is one octet 0xFF.
inline constexpr uint8_t kNatKeepaliveByte = 0xff;

// ESP header (RFC 4303 2): SPI and low 32 bits of the sequence number.
struct EspHeader {
  uint32_t spi_be;
  uint32_t sequence_be;
};
static_assert(sizeof(EspHeader) == 8);

// ESP trailer (RFC 4303 2.4/2.6): pad length, then next header, before the ICV.
struct EspTrailer {
  uint8_t pad_length;
  uint8_t next_header;
};
static_assert(sizeof(EspTrailer) == 2);

// SPIs 1..255 are reserved by IANA (RFC 4303 2.1); 0 is never sent.
inline constexpr uint32_t kMinimumSpi = 256;

inline constexpr uint16_t load_be16(const void* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return std::endian::native == std::endian::little ? __builtin_bswap16(v) : v;
}
inline constexpr uint32_t load_be32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return std::endian::native == std::endian::little ? __builtin_bswap32(v) : v;
}
inline void store_be16(void* p, uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, sizeof(v));
}
inline void store_be32(void* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, sizeof(v));
}
inline void store_be64(void* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  std::memcpy(p, &v, sizeof(v));
}

}  // namespace segw::shared
