// IPv4/IPv6 UDP packet construction with checksums (RFC 791, RFC 8200,
// RFC 768), Ethernet framing, inner addresses of an SA.
#include "tools/pcapgen/packet_builder.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "shared/wire.h"

namespace segw::pcapgen {

using shared::make_error;

namespace {

// One's-complement sum of 16-bit big-endian words (RFC 1071).
uint32_t sum_words(const uint8_t* data, size_t length, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < length; i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (length & 1) sum += uint32_t{data[length - 1]} << 8;
  return sum;
}

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

uint32_t min_udp_packet_size(shared::IpFamily family) {
  return family == shared::IpFamily::kIpv4 ? kMinIpv4UdpPacket : kMinIpv6UdpPacket;
}

shared::Status build_udp_packet(const UdpEndpoints& e, uint32_t size, uint16_t ip_id, uint8_t* out) {
  if (e.source.family() != e.destination.family())
    return make_error("inner source " + e.source.to_string() + " and destination " + e.destination.to_string() +
                      " are of different families");
  bool ipv6 = e.source.is_ipv6();
  uint32_t minimum = min_udp_packet_size(e.source.family());
  if (size < minimum || size > kMaxInnerPacket)
    return make_error("inner packet size " + std::to_string(size) + " outside [" + std::to_string(minimum) + ", " +
                      std::to_string(kMaxInnerPacket) + "] for " + shared::to_string(e.source.family()));
  uint32_t ip_header = ipv6 ? 40 : 20;
  uint32_t udp_length = size - ip_header;
  std::memset(out, 0, size);
  if (!ipv6) {
    out[0] = 0x45;  // version 4, IHL 5
    shared::store_be16(out + 2, static_cast<uint16_t>(size));
    shared::store_be16(out + 4, ip_id);
    out[8] = 64;  // TTL; DF clear, so the gateway may fragment before encrypting
    out[9] = shared::kIpProtocolUdp;
    std::memcpy(out + 12, e.source.bytes(), 4);
    std::memcpy(out + 16, e.destination.bytes(), 4);
    shared::store_be16(out + 10, fold(sum_words(out, 20)));
  } else {
    out[0] = 0x60;  // version 6, traffic class 0, flow label 0
    shared::store_be16(out + 4, static_cast<uint16_t>(udp_length));
    out[6] = shared::kIpProtocolUdp;
    out[7] = 64;
    std::memcpy(out + 8, e.source.bytes(), 16);
    std::memcpy(out + 24, e.destination.bytes(), 16);
  }
  uint8_t* udp = out + ip_header;
  shared::store_be16(udp, e.source_port);
  shared::store_be16(udp + 2, e.destination_port);
  shared::store_be16(udp + 4, static_cast<uint16_t>(udp_length));
  // A recognisable payload: the byte offset inside the datagram.
  for (uint32_t i = 8; i < udp_length; ++i) udp[i] = static_cast<uint8_t>(i);
  // UDP checksum over the pseudo-header (RFC 768; mandatory over IPv6,
  // RFC 8200 8.1). Receiving kernels check it.
  size_t address_length = e.source.byte_length();
  uint32_t sum = sum_words(e.source.bytes(), address_length);
  sum = sum_words(e.destination.bytes(), address_length, sum);
  sum += shared::kIpProtocolUdp;
  sum += udp_length;
  sum = sum_words(udp, udp_length, sum);
  uint16_t checksum = fold(sum);
  shared::store_be16(udp + 6, checksum == 0 ? 0xffff : checksum);
  return {};
}

shared::Result<SaInnerAddresses> inner_addresses(const shared::SaDescriptor& sa) {
  if (sa.remote_selector_count == 0) return make_error("SA has no remote selector");
  SaInnerAddresses a;
  a.remote = sa.remote_selectors[0].start;
  for (int i = 0; i < sa.local_selector_count; ++i) {
    if (sa.local_selectors[i].start.family() == a.remote.family()) {
      a.local = sa.local_selectors[i].start;
      return a;
    }
  }
  return make_error(std::string("SA has no ") + shared::to_string(a.remote.family()) +
                    " local selector to match its first remote selector " + sa.remote_selectors[0].to_string());
}

bool parse_mac(const std::string& text, uint8_t out[6]) {
  unsigned v[6];
  char tail;
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    return false;
  for (int i = 0; i < 6; ++i) {
    if (v[i] > 0xff) return false;
    out[i] = static_cast<uint8_t>(v[i]);
  }
  return true;
}

void write_ethernet_header(uint8_t* out, const uint8_t destination[6], const uint8_t source[6], bool ipv6) {
  std::memcpy(out, destination, 6);
  std::memcpy(out + 6, source, 6);
  shared::store_be16(out + 12, ipv6 ? 0x86dd : 0x0800);
}

}  // namespace segw::pcapgen
