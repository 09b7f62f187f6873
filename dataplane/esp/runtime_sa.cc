// Path template construction and selector conversion (setup time only).
#include "dataplane/esp/runtime_sa.h"

#include <rte_ip.h>
#include <new>
#include <rte_udp.h>

#include "shared/wire.h"

namespace segw::dp {

Path* Path::create(const shared::PathDescriptor& d, uint64_t generation, void* memory) {
  auto* path = memory ? new (memory) Path : new Path;
  path->descriptor = d;
  path->generation = generation;
  path->ipv6 = d.remote.is_ipv6();
  path->udp_encapsulation = d.udp_encapsulation;
  path->remote_port_be = rte_cpu_to_be_16(d.remote_port);
  std::memcpy(path->remote_address, d.remote.bytes(), d.remote.byte_length());
  uint8_t* h = path->header_template;
  uint8_t next_protocol = d.udp_encapsulation ? shared::kIpProtocolUdp : shared::kIpProtocolEsp;
  size_t ip_length;
  if (!path->ipv6) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(h);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->fragment_offset = 0;  // DF clear: the access path may fragment (RFC 4303 3.3.5)
    ip->time_to_live = 64;
    ip->next_proto_id = next_protocol;
    std::memcpy(&ip->src_addr, d.local.bytes(), 4);
    std::memcpy(&ip->dst_addr, d.remote.bytes(), 4);
    ip_length = sizeof(rte_ipv4_hdr);
  } else {
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(h);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->proto = next_protocol;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, d.local.bytes(), 16);
    std::memcpy(ip->dst_addr, d.remote.bytes(), 16);
    ip_length = sizeof(rte_ipv6_hdr);
  }
  if (d.udp_encapsulation) {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(h + ip_length);
    udp->src_port = rte_cpu_to_be_16(d.local_port);
    udp->dst_port = rte_cpu_to_be_16(d.remote_port);
    udp->dgram_cksum = 0;  // RFC 3948 2.1: zero over IPv4; computed per packet over IPv6
    ip_length += sizeof(rte_udp_hdr);
  }
  path->header_length = static_cast<uint8_t>(ip_length);
  return path;
}

SelectorRange SelectorRange::from(const shared::TrafficSelector& s) {
  SelectorRange r;
  r.ipv6 = s.start.is_ipv6();
  r.protocol = s.protocol;
  r.port_start = s.port_start;
  r.port_end = s.port_end;
  if (!r.ipv6) {
    r.ipv4_start = s.start.ipv4_host_order();
    r.ipv4_end = s.end.ipv4_host_order();
  } else {
    std::memcpy(r.ipv6_start, s.start.bytes(), 16);
    std::memcpy(r.ipv6_end, s.end.bytes(), 16);
  }
  return r;
}

}  // namespace segw::dp
