// Punt and inject framing: PuntPacket from a classified frame, an access-port
// frame from an InjectPacket (RFC 3948 2.2 marker on UDP/4500).
#include "dataplane/channel/ike_bridge.h"

#include <rte_ip.h>
#include <rte_udp.h>

#include <cstring>

#include "shared/wire.h"

namespace segw::dp {

using shared::IpAddress;
using shared::channel::InjectPacket;
using shared::channel::PuntPacket;

namespace {
constexpr uint16_t kAnyAccessPort = 0xffff;
constexpr uint8_t kInjectTtl = 64;
constexpr uint32_t kMarkerBytes = 4;
constexpr uint8_t kIpv6FragmentHeader = 44;  // RFC 8200 4.5

bool valid_address(const IpAddress& address) {
  if (address.is_ipv4()) {
    // IPv4 keeps bytes 4..15 zero (ip_address.h): anything else is a
    // corrupt or foreign message.
    for (int i = 4; i < 16; ++i)
      if (address.bytes()[i] != 0) return false;
    return true;
  }
  return address.is_ipv6();
}
}  // namespace

const char* to_string(PuntResult result) {
  switch (result) {
#define SEGW_PUNT_NAME(id, name, description) \
  case PuntResult::id: return name;
    SEGW_PUNT_RESULTS(SEGW_PUNT_NAME)
#undef SEGW_PUNT_NAME
  }
  return "unknown";
}

const char* to_string(InjectResult result) {
  switch (result) {
#define SEGW_INJECT_NAME(id, name, description) \
  case InjectResult::id: return name;
    SEGW_INJECT_RESULTS(SEGW_INJECT_NAME)
#undef SEGW_INJECT_NAME
  }
  return "unknown";
}

PuntResult build_punt_packet(const rte_mbuf* frame, uint64_t arrival_ns, PuntPacket& out) {
  uint32_t udp_offset = frame->l2_len + frame->l3_len;
  // A reassembled datagram (an IKE_AUTH with certificates is often larger
  // than the path MTU) is a chain: the headers are in its first segment,
  // the payload is read across segments below.
  if (frame->l4_len != sizeof(rte_udp_hdr) || frame->pkt_len < udp_offset + sizeof(rte_udp_hdr) ||
      frame->data_len < udp_offset + sizeof(rte_udp_hdr))
    return PuntResult::kMalformed;
  const uint8_t* l3 = rte_pktmbuf_mtod_offset(frame, const uint8_t*, frame->l2_len);
  auto* udp = rte_pktmbuf_mtod_offset(frame, const rte_udp_hdr*, udp_offset);
  if (RTE_ETH_IS_IPV4_HDR(frame->packet_type)) {
    auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(l3);
    out.source.address = IpAddress::from_ipv4_bytes(reinterpret_cast<const uint8_t*>(&ip->src_addr));
    out.destination.address = IpAddress::from_ipv4_bytes(reinterpret_cast<const uint8_t*>(&ip->dst_addr));
  } else if (RTE_ETH_IS_IPV6_HDR(frame->packet_type)) {
    auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(l3);
    out.source.address = IpAddress::from_ipv6_bytes(ip->src_addr);
    out.destination.address = IpAddress::from_ipv6_bytes(ip->dst_addr);
  } else {
    return PuntResult::kMalformed;
  }
  out.source.port = rte_be_to_cpu_16(udp->src_port);
  out.destination.port = rte_be_to_cpu_16(udp->dst_port);
  uint32_t payload_length = frame->pkt_len - udp_offset - sizeof(rte_udp_hdr);
  if (payload_length > shared::channel::kMaxIkePacketBytes + kMarkerBytes) return PuntResult::kTooBig;
  uint8_t linear[shared::channel::kMaxIkePacketBytes + kMarkerBytes];
  const auto* payload = static_cast<const uint8_t*>(
      rte_pktmbuf_read(frame, udp_offset + sizeof(rte_udp_hdr), payload_length, linear));
  if (payload == nullptr) return PuntResult::kMalformed;
  // classify_access punts UDP/500 as is and UDP/4500 only with the marker.
  if (out.destination.port != shared::kIkePort) {
    if (payload_length < kMarkerBytes || shared::load_be32(payload) != shared::kNonEspMarker)
      return PuntResult::kMalformed;
    payload += kMarkerBytes;
    payload_length -= kMarkerBytes;
  }
  if (!out.assign({payload, payload_length})) return PuntResult::kTooBig;
  out.version = shared::channel::kMessageVersion;
  out.port_id = frame->port;
  out.arrival_time_ns = arrival_ns;
  return PuntResult::kOk;
}

InjectResult build_inject_frames(const InjectPacket& packet, const InjectFrameSetup& setup, uint32_t fragment_id,
                                 rte_mbuf** frames, unsigned* count) {
  *count = 0;
  if (packet.version != shared::channel::kMessageVersion) return InjectResult::kUnsupportedVersion;
  if (packet.length == 0 || packet.length > packet.bytes.size()) return InjectResult::kBadLength;
  const IpAddress& source = packet.source.address;
  const IpAddress& destination = packet.destination.address;
  if (!valid_address(source) || !valid_address(destination) || source.family() != destination.family())
    return InjectResult::kBadAddress;
  if ((packet.port_id != setup.access_port && packet.port_id != kAnyAccessPort) || packet.source.port == 0 ||
      packet.destination.port == 0)
    return InjectResult::kBadPort;
  bool ipv6 = source.is_ipv6();
  uint32_t ip_header = ipv6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
  uint32_t udp_length = sizeof(rte_udp_hdr) + (packet.non_esp_marker ? kMarkerBytes : 0) + packet.length;
  uint32_t ip_length = ip_header + udp_length;
  // The whole datagram first, contiguous, so the UDP checksum covers it.
  alignas(8) uint8_t whole[sizeof(rte_ipv6_hdr) + sizeof(rte_udp_hdr) + kMarkerBytes +
                           shared::channel::kMaxIkePacketBytes];
  uint8_t* l3 = whole;
  auto* udp = reinterpret_cast<rte_udp_hdr*>(l3 + ip_header);
  udp->src_port = rte_cpu_to_be_16(packet.source.port);
  udp->dst_port = rte_cpu_to_be_16(packet.destination.port);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(udp_length));
  udp->dgram_cksum = 0;
  uint8_t* payload = reinterpret_cast<uint8_t*>(udp + 1);
  if (packet.non_esp_marker) {
    std::memset(payload, 0, kMarkerBytes);  // RFC 3948 2.2 non-ESP marker
    payload += kMarkerBytes;
  }
  std::memcpy(payload, packet.bytes.data(), packet.length);
  if (ipv6) {
    auto* ip = reinterpret_cast<rte_ipv6_hdr*>(l3);
    ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
    ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(udp_length));
    ip->proto = shared::kIpProtocolUdp;
    ip->hop_limits = kInjectTtl;
    std::memcpy(ip->src_addr, source.bytes(), 16);
    std::memcpy(ip->dst_addr, destination.bytes(), 16);
    // RFC 8200 8.1: a zero UDP checksum is not allowed over IPv6.
    udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip, udp);
  } else {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(ip_length));
    ip->packet_id = rte_cpu_to_be_16(static_cast<uint16_t>(fragment_id));
    ip->fragment_offset = 0;
    ip->time_to_live = kInjectTtl;
    ip->next_proto_id = shared::kIpProtocolUdp;
    ip->hdr_checksum = 0;
    std::memcpy(&ip->src_addr, source.bytes(), 4);
    std::memcpy(&ip->dst_addr, destination.bytes(), 4);
    // Software checksums: the frame goes out on whatever queue/driver, with
    // no offload flags to rely on.
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
  }
  // Fragments carry this much of the UDP datagram each (a multiple of 8).
  uint32_t fragment_header = ipv6 ? 8 : 0;
  uint32_t per_fragment = ip_length <= setup.access_mtu
                              ? udp_length
                              : (setup.access_mtu - ip_header - fragment_header) & ~7u;
  if (per_fragment == 0) return InjectResult::kTooBig;
  unsigned needed = (udp_length + per_fragment - 1) / per_fragment;
  if (needed > kMaxInjectFrames) return InjectResult::kTooBig;
  rte_mbuf* built[kMaxInjectFrames];
  if (rte_pktmbuf_alloc_bulk(setup.pool, built, needed) != 0) return InjectResult::kNoMbuf;
  for (unsigned i = 0; i < needed; ++i) {
    uint32_t offset = i * per_fragment;
    uint32_t chunk = std::min(per_fragment, udp_length - offset);
    bool more = i + 1 < needed;
    bool fragmented = needed > 1;
    uint32_t header = ip_header + (fragmented ? fragment_header : 0);
    uint32_t frame_length = sizeof(rte_ether_hdr) + header + chunk;
    auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(built[i], static_cast<uint16_t>(frame_length)));
    if (data == nullptr) {  // data room smaller than the MTU allows
      rte_pktmbuf_free_bulk(built, needed);
      return InjectResult::kTooBig;
    }
    auto* eth = reinterpret_cast<rte_ether_hdr*>(data);
    eth->dst_addr = setup.next_hop_mac;
    eth->src_addr = setup.access_mac;
    eth->ether_type = rte_cpu_to_be_16(ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    uint8_t* out = data + sizeof(rte_ether_hdr);
    std::memcpy(out, l3, ip_header);
    if (ipv6 && fragmented) {
      auto* ip = reinterpret_cast<rte_ipv6_hdr*>(out);
      ip->proto = kIpv6FragmentHeader;
      ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(fragment_header + chunk));
      uint8_t* fragment = out + ip_header;
      fragment[0] = shared::kIpProtocolUdp;
      fragment[1] = 0;
      uint16_t offset_field = static_cast<uint16_t>(offset | (more ? 1 : 0));  // offset in 8-byte units << 3
      fragment[2] = static_cast<uint8_t>(offset_field >> 8);
      fragment[3] = static_cast<uint8_t>(offset_field);
      fragment[4] = static_cast<uint8_t>(fragment_id >> 24);
      fragment[5] = static_cast<uint8_t>(fragment_id >> 16);
      fragment[6] = static_cast<uint8_t>(fragment_id >> 8);
      fragment[7] = static_cast<uint8_t>(fragment_id);
    } else if (!ipv6 && fragmented) {
      auto* ip = reinterpret_cast<rte_ipv4_hdr*>(out);
      ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(ip_header + chunk));
      ip->fragment_offset = rte_cpu_to_be_16(static_cast<uint16_t>((offset / 8) | (more ? RTE_IPV4_HDR_MF_FLAG : 0)));
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    std::memcpy(out + header, l3 + ip_header + offset, chunk);
    built[i]->l2_len = sizeof(rte_ether_hdr);
    built[i]->l3_len = static_cast<uint16_t>(header);
    built[i]->l4_len = i == 0 ? sizeof(rte_udp_hdr) : 0;
    frames[i] = built[i];
  }
  *count = needed;
  return InjectResult::kOk;
}

}  // namespace segw::dp
