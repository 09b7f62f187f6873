// Frame classification for the access and core ports.
#include "dataplane/worker/classify.h"

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_udp.h>

#include <cstring>

#include "shared/wire.h"

namespace segw::dp {

const char* to_string(AccessClass kind) {
  switch (kind) {
    case AccessClass::kEsp: return "esp";
    case AccessClass::kIke: return "ike";
    case AccessClass::kKeepalive: return "keepalive";
    case AccessClass::kFragment: return "fragment";
    case AccessClass::kDrop: return "drop";
  }
  return "unknown";
}

namespace {

// Single-segment frames only past this point: the ESP code works in place.
bool make_contiguous(rte_mbuf* m) {
  return m->nb_segs == 1 || rte_pktmbuf_linearize(m) == 0;
}

// Validates the IP header after Ethernet, trims link-layer padding, sets
// l3_len and packet_type. Returns the IP protocol of the payload, or -1.
int parse_ip(rte_mbuf* m, uint16_t ether_type, bool* is_fragment) {
  uint32_t l3_available = m->pkt_len - m->l2_len;
  const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
  *is_fragment = false;
  if (ether_type == RTE_ETHER_TYPE_IPV4) {
    if (l3_available < sizeof(rte_ipv4_hdr)) return -1;
    auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(l3);
    uint32_t header_length = rte_ipv4_hdr_len(ip);
    uint32_t total = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || header_length < sizeof(rte_ipv4_hdr) || total < header_length ||
        total > l3_available)
      return -1;
    rte_pktmbuf_trim(m, static_cast<uint16_t>(l3_available - total));
    m->l3_len = static_cast<uint16_t>(header_length);
    m->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4;
    *is_fragment = rte_ipv4_frag_pkt_is_fragmented(ip);
    return ip->next_proto_id;
  }
  if (ether_type == RTE_ETHER_TYPE_IPV6) {
    if (l3_available < sizeof(rte_ipv6_hdr)) return -1;
    auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(l3);
    uint32_t total = sizeof(rte_ipv6_hdr) + rte_be_to_cpu_16(ip->payload_len);
    if ((l3[0] >> 4) != 6 || total > l3_available) return -1;
    rte_pktmbuf_trim(m, static_cast<uint16_t>(l3_available - total));
    m->l3_len = sizeof(rte_ipv6_hdr);
    m->packet_type = RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV6;
    if (ip->proto == shared::kIpProtocolIpv6Fragment) {
      if (total < sizeof(rte_ipv6_hdr) + 8) return -1;
      *is_fragment = true;
    }
    return ip->proto;
  }
  return -2;
}

bool addressed_to_us(const rte_mbuf* m, const AccessAddresses& ours) {
  const uint8_t* l3 = rte_pktmbuf_mtod_offset(m, const uint8_t*, m->l2_len);
  if (RTE_ETH_IS_IPV4_HDR(m->packet_type)) {
    uint32_t destination;
    std::memcpy(&destination, l3 + 16, 4);
    for (int i = 0; i < ours.ipv4_count; ++i)
      if (ours.ipv4_be[i] == destination) return true;
    return false;
  }
  for (int i = 0; i < ours.ipv6_count; ++i)
    if (std::memcmp(ours.ipv6[i], l3 + 24, 16) == 0) return true;
  return false;
}

}  // namespace

AccessClass classify_access(rte_mbuf* m, const AccessAddresses& ours, DropReason* reason) {
  if (!make_contiguous(m) || m->pkt_len < sizeof(rte_ether_hdr)) {
    *reason = DropReason::kMalformed;
    return AccessClass::kDrop;
  }
  auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  m->l2_len = sizeof(rte_ether_hdr);
  m->l4_len = 0;
  bool is_fragment;
  int protocol = parse_ip(m, rte_be_to_cpu_16(eth->ether_type), &is_fragment);
  if (protocol == -2) {
    *reason = DropReason::kUnsupportedEthertype;
    return AccessClass::kDrop;
  }
  if (protocol < 0) {
    *reason = DropReason::kMalformed;
    return AccessClass::kDrop;
  }
  if (!addressed_to_us(m, ours)) {
    *reason = DropReason::kNotForUs;
    return AccessClass::kDrop;
  }
  if (is_fragment) return AccessClass::kFragment;
  if (protocol == shared::kIpProtocolEsp) return AccessClass::kEsp;
  if (protocol != shared::kIpProtocolUdp) {
    *reason = DropReason::kNotForUs;
    return AccessClass::kDrop;
  }
  uint32_t udp_offset = m->l2_len + m->l3_len;
  if (m->pkt_len < udp_offset + sizeof(rte_udp_hdr)) {
    *reason = DropReason::kMalformed;
    return AccessClass::kDrop;
  }
  auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, udp_offset);
  uint32_t udp_length = rte_be_to_cpu_16(udp->dgram_len);
  if (udp_length < sizeof(rte_udp_hdr) || udp_offset + udp_length != m->pkt_len) {
    *reason = DropReason::kMalformed;
    return AccessClass::kDrop;
  }
  m->l4_len = sizeof(rte_udp_hdr);
  uint16_t destination_port = rte_be_to_cpu_16(udp->dst_port);
  uint32_t payload_length = udp_length - sizeof(rte_udp_hdr);
  const uint8_t* payload = reinterpret_cast<const uint8_t*>(udp + 1);
  if (destination_port == shared::kIkePort) return AccessClass::kIke;
  if (destination_port != shared::kNatTraversalPort) {
    *reason = DropReason::kNotForUs;
    return AccessClass::kDrop;
  }
  if (payload_length == 1 && payload[0] == shared::kNatKeepaliveByte) return AccessClass::kKeepalive;
  if (payload_length >= 4 && shared::load_be32(payload) == shared::kNonEspMarker) return AccessClass::kIke;
  if (payload_length >= sizeof(shared::EspHeader)) return AccessClass::kEsp;
  *reason = DropReason::kMalformed;
  return AccessClass::kDrop;
}

bool classify_core(rte_mbuf* m, DropReason* reason) {
  if (!make_contiguous(m) || m->pkt_len < sizeof(rte_ether_hdr)) {
    *reason = DropReason::kMalformed;
    return false;
  }
  auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  m->l2_len = sizeof(rte_ether_hdr);
  m->l4_len = 0;
  bool is_fragment;
  int protocol = parse_ip(m, rte_be_to_cpu_16(eth->ether_type), &is_fragment);
  if (protocol == -2) {
    *reason = DropReason::kUnsupportedEthertype;
    return false;
  }
  if (protocol < 0) {
    *reason = DropReason::kMalformed;
    return false;
  }
  return true;
}

}  // namespace segw::dp
