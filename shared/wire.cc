// Name table for IP protocol numbers, so logs never print a bare number.
#include "shared/wire.h"

namespace segw::shared {

const char* ip_protocol_name(uint8_t protocol) {
  switch (protocol) {
    case kIpProtocolIcmp: return "icmp";
    case kIpProtocolIpv4: return "ipv4";
    case kIpProtocolTcp: return "tcp";
    case kIpProtocolUdp: return "udp";
    case kIpProtocolIpv6: return "ipv6";
    case kIpProtocolIpv6Fragment: return "ipv6-frag";
    case kIpProtocolEsp: return "esp";
    case kIpProtocolIcmpv6: return "icmpv6";
    case kIpProtocolNoNext: return "no-next-header";
    default: return "other";
  }
}

}  // namespace segw::shared
