// IPv4 fragmentation by copy, and ICMP/ICMPv6 too-big errors.
#include "dataplane/frag/fragment.h"

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>

#include <algorithm>
#include <cstring>

namespace segw::dp {

uint16_t fragment_ipv4(rte_mbuf* m, uint32_t max_ip_size, rte_mempool* pool,
                       rte_mbuf** fragments, uint16_t max_fragments) {
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(frame + m->l2_len);
  uint32_t header_length = rte_ipv4_hdr_len(ip);
  uint32_t total = rte_be_to_cpu_16(ip->total_length);
  if (max_ip_size <= header_length + 8) return 0;
  // Fragment data is a multiple of 8 bytes except in the last one (RFC 791).
  uint32_t chunk = (max_ip_size - header_length) & ~7u;
  uint32_t data_length = total - header_length;
  uint16_t needed = static_cast<uint16_t>((data_length + chunk - 1) / chunk);
  if (needed > max_fragments) return 0;
  uint16_t original_flags = rte_be_to_cpu_16(ip->fragment_offset);
  uint32_t original_offset = (original_flags & RTE_IPV4_HDR_OFFSET_MASK) * 8;
  bool original_more = original_flags & RTE_IPV4_HDR_MF_FLAG;
  const uint8_t* data = frame + m->l2_len + header_length;
  for (uint16_t f = 0; f < needed; ++f) {
    rte_mbuf* piece = rte_pktmbuf_alloc(pool);
    if (!piece) {
      for (uint16_t k = 0; k < f; ++k) rte_pktmbuf_free(fragments[k]);
      return 0;
    }
    uint32_t offset = f * chunk;
    uint32_t length = std::min(chunk, data_length - offset);
    uint32_t frame_length = m->l2_len + header_length + length;
    auto* out = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(piece, static_cast<uint16_t>(frame_length)));
    if (!out) {
      rte_pktmbuf_free(piece);
      for (uint16_t k = 0; k < f; ++k) rte_pktmbuf_free(fragments[k]);
      return 0;
    }
    std::memcpy(out, frame, m->l2_len + header_length);
    std::memcpy(out + m->l2_len + header_length, data + offset, length);
    auto* fip = reinterpret_cast<rte_ipv4_hdr*>(out + m->l2_len);
    bool more = (f + 1 < needed) || original_more;
    uint16_t field = static_cast<uint16_t>(((original_offset + offset) / 8) |
                                           (more ? RTE_IPV4_HDR_MF_FLAG : 0));
    fip->fragment_offset = rte_cpu_to_be_16(field);
    fip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(header_length + length));
    fip->hdr_checksum = 0;
    fip->hdr_checksum = rte_ipv4_cksum(fip);
    piece->l2_len = m->l2_len;
    piece->packet_type = m->packet_type;
    fragments[f] = piece;
  }
  return needed;
}

rte_mbuf* make_too_big_error(rte_mbuf* m, bool ipv6, uint32_t mtu, const shared::IpAddress& source,
                             rte_mempool* pool) {
  rte_mbuf* reply = rte_pktmbuf_alloc(pool);
  if (!reply) return nullptr;
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  const uint8_t* original = frame + m->l2_len;
  uint32_t original_length = m->pkt_len - m->l2_len;
  auto* in_eth = reinterpret_cast<const rte_ether_hdr*>(frame);
  if (!ipv6) {
    // RFC 792: the original IP header plus 64 bits of its data; RFC 1812
    // 4.3.2.3 allows more, up to a 576-byte error.
    auto* in_ip = reinterpret_cast<const rte_ipv4_hdr*>(original);
    uint32_t quoted = std::min<uint32_t>(original_length, 576 - 20 - 8);
    uint32_t length = sizeof(rte_ether_hdr) + 20 + 8 + quoted;
    auto* out = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(reply, static_cast<uint16_t>(length)));
    if (!out) { rte_pktmbuf_free(reply); return nullptr; }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(out);
    eth->dst_addr = in_eth->src_addr;
    eth->src_addr = in_eth->dst_addr;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(out + sizeof(rte_ether_hdr));
    std::memset(ip, 0, sizeof(*ip));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + 8 + quoted));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_ICMP;
    std::memcpy(&ip->src_addr, source.bytes(), 4);
    ip->dst_addr = in_ip->src_addr;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* icmp = reinterpret_cast<uint8_t*>(ip + 1);
    icmp[0] = 3;  // destination unreachable
    icmp[1] = 4;  // fragmentation needed and DF set
    icmp[2] = icmp[3] = 0;
    icmp[4] = icmp[5] = 0;  // unused
    icmp[6] = static_cast<uint8_t>(mtu >> 8);  // next-hop MTU (RFC 1191)
    icmp[7] = static_cast<uint8_t>(mtu);
    std::memcpy(icmp + 8, original, quoted);
    uint16_t checksum = static_cast<uint16_t>(~rte_raw_cksum(icmp, 8 + quoted));
    std::memcpy(icmp + 2, &checksum, 2);
  } else {
    // RFC 4443 3.2: as much of the packet as fits in the minimum IPv6 MTU.
    auto* in_ip = reinterpret_cast<const rte_ipv6_hdr*>(original);
    uint32_t quoted = std::min<uint32_t>(original_length, 1280 - 40 - 8);
    uint32_t length = sizeof(rte_ether_hdr) + 40 + 8 + quoted;
    auto* out = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(reply, static_cast<uint16_t>(length)));
    if (!out) { rte_pktmbuf_free(reply); return nullptr; }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(out);
    eth->dst_addr = in_eth->src_addr;
    eth->src_addr = in_eth->dst_addr;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(out + sizeof(rte_ether_hdr));
    std::memset(ip, 0, sizeof(*ip));
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + quoted));
    ip->proto = IPPROTO_ICMPV6;
    ip->hop_limits = 64;
    std::memcpy(ip->src_addr, source.bytes(), 16);
    std::memcpy(ip->dst_addr, in_ip->src_addr, 16);
    auto* icmp = reinterpret_cast<uint8_t*>(ip + 1);
    icmp[0] = 2;  // packet too big
    icmp[1] = 0;
    icmp[2] = icmp[3] = 0;
    icmp[4] = static_cast<uint8_t>(mtu >> 24);
    icmp[5] = static_cast<uint8_t>(mtu >> 16);
    icmp[6] = static_cast<uint8_t>(mtu >> 8);
    icmp[7] = static_cast<uint8_t>(mtu);
    std::memcpy(icmp + 8, original, quoted);
    uint16_t checksum = rte_ipv6_udptcp_cksum(ip, icmp);
    std::memcpy(icmp + 2, &checksum, 2);
  }
  reply->l2_len = sizeof(rte_ether_hdr);
  reply->packet_type = ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4;
  return reply;
}

}  // namespace segw::dp
