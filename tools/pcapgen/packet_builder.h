// Plain inner packets (IPv4/IPv6 + UDP + payload) for segw-pcapgen and the
// benchmarks, and the inner addresses a static SA's traffic uses. Std-only.
#pragma once

#include <cstdint>

#include "shared/ip_address.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::pcapgen {

inline constexpr uint32_t kEthernetHeaderLength = 14;
inline constexpr uint32_t kMinIpv4UdpPacket = 20 + 8;
inline constexpr uint32_t kMinIpv6UdpPacket = 40 + 8;
// Largest inner packet the generator builds (jumbo frames are the limit the
// data plane's mbuf_data_room sets; see configs/README.md).
inline constexpr uint32_t kMaxInnerPacket = 9000;

// UDP ports of generated traffic: the device behind the peer and the host
// on the core side.
inline constexpr uint16_t kPeerSidePort = 40000;
inline constexpr uint16_t kCoreSidePort = 5001;

struct UdpEndpoints {
  shared::IpAddress source;
  shared::IpAddress destination;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
};

// Smallest IP/UDP packet of the family (header bytes only).
uint32_t min_udp_packet_size(shared::IpFamily family);

// Writes an IPv4 or IPv6 packet of exactly `size` bytes (IP header included)
// carrying UDP from `e.source` to `e.destination` into `out`, with valid IP
// and UDP checksums. Both addresses must be of one family and `size` at
// least min_udp_packet_size(). Errors: family mismatch, size out of range.
[[nodiscard]] shared::Status build_udp_packet(const UdpEndpoints& e, uint32_t size, uint16_t ip_id,
                                              uint8_t* out);

// The inner addresses of an SA's traffic, as DESIGN's benchmark needs them:
// `remote` = first address of the first remote selector, `local` = first
// address of the first local selector of the same family. Error: no local
// selector of that family.
struct SaInnerAddresses {
  shared::IpAddress remote;
  shared::IpAddress local;
};
[[nodiscard]] shared::Result<SaInnerAddresses> inner_addresses(const shared::SaDescriptor& sa);

// "aa:bb:cc:dd:ee:ff" -> 6 bytes. False on bad text.
bool parse_mac(const std::string& text, uint8_t out[6]);

// Writes a 14-byte Ethernet header (dst, src, IPv4/IPv6 ethertype).
void write_ethernet_header(uint8_t* out, const uint8_t destination[6], const uint8_t source[6], bool ipv6);

}  // namespace segw::pcapgen
