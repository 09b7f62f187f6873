// Peer-side ESP through segw's own SaTables and esp_outbound_burst.
#include "tools/pcapgen/peer_encryptor.h"

#include <rte_errno.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "dataplane/esp/esp_outbound.h"
#include "tools/pcapgen/packet_builder.h"

namespace segw::pcapgen {

using shared::make_error;

namespace {

// Packets per esp_outbound_burst call: the data plane's default RX burst.
constexpr uint16_t kBurst = 32;
// Mbufs in the private pool: one burst plus the outbound code's spares
// (fragments and ICMP errors are never made here: the MTU is unlimited).
constexpr unsigned kPoolSize = 4 * kBurst - 1;
// Room behind the inner packet for padding, trailer and ICV (<= 15 + 2 + 16).
constexpr unsigned kTailRoom = 64;

std::atomic<int> pool_instance{0};

std::string hex_spi(uint32_t spi) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", spi);
  return text;
}

}  // namespace

shared::SaDescriptor mirror_for_peer(const shared::SaDescriptor& inbound) {
  shared::SaDescriptor peer = inbound;
  peer.direction = shared::SaDirection::kOutbound;
  peer.replay_window = shared::kDefaultReplayWindow;
  peer.path.local = inbound.path.remote;
  peer.path.remote = inbound.path.local;
  peer.path.local_port = inbound.path.remote_port;
  peer.path.remote_port = inbound.path.local_port;
  peer.local_selectors = inbound.remote_selectors;
  peer.local_selector_count = inbound.remote_selector_count;
  peer.remote_selectors = inbound.local_selectors;
  peer.remote_selector_count = inbound.local_selector_count;
  peer.lifetime = {};
  return peer;
}

shared::Result<std::unique_ptr<PeerEncryptor>> PeerEncryptor::create(const Options& options) {
  std::unique_ptr<PeerEncryptor> e(new PeerEncryptor);
  std::string name = "pcapgen_pool_" + std::to_string(pool_instance.fetch_add(1));
  uint32_t data_room = RTE_PKTMBUF_HEADROOM + kEthernetHeaderLength + kMaxInnerPacket + kTailRoom;
  e->pool_ = rte_pktmbuf_pool_create(name.c_str(), kPoolSize, 0, 0, static_cast<uint16_t>(data_room),
                                     static_cast<int>(rte_socket_id()));
  if (e->pool_ == nullptr)
    return make_error(std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno) +
                      " (give EAL more memory: -m)");
  // One SA at a time, each with one host route: tiny tables. The FIBs'
  // first-level tables (64 MB each) are what needs EAL memory.
  dp::SaTableConfig config;
  config.capacity = 16;
  config.ipv4_tbl8_groups = 16;
  config.ipv6_tbl8_groups = 16;
  config.max_routes = 16;
  config.max_workers = 1;
  config.socket_id = static_cast<int>(rte_socket_id());
  auto tables = dp::SaTables::create(config);
  if (!tables) return make_error(tables.error() + " (give EAL more memory: -m)");
  e->tables_ = std::move(*tables);
  e->context_.crypto = e->crypto_.get();
  e->context_.tables = e->tables_.get();
  e->context_.counters = &e->counters_;
  e->context_.pool = e->pool_;
  std::memcpy(e->context_.access_mac.addr_bytes, options.source_mac, 6);
  std::memcpy(e->context_.access_next_hop.addr_bytes, options.destination_mac, 6);
  // No MTU on the generator's side: one inner packet, one ESP packet.
  e->context_.access_mtu = UINT16_MAX;
  return e;
}

PeerEncryptor::~PeerEncryptor() {
  tables_.reset();
  rte_mempool_free(pool_);
}

shared::Status PeerEncryptor::encrypt(const shared::SaDescriptor& inbound, const uint8_t* inner, uint32_t inner_size,
                                      uint64_t count,
                                      const std::function<void(const uint8_t* frame, uint32_t length)>& emit) {
  if (inner_size < kMinIpv4UdpPacket || inner_size > kMaxInnerPacket)
    return make_error("inner packet size " + std::to_string(inner_size) + " out of range");
  bool inner_ipv6 = (inner[0] >> 4) == 6;
  shared::SaDescriptor peer = mirror_for_peer(inbound);
  // Route this packet's destination to the SA by the /24 around it: the
  // table holds one SA at a time, and a /24 is one first-level FIB entry
  // (longer prefixes take tbl8 groups, which the IPv6 trie does not give
  // back on delete in DPDK 22.11). The outbound code checks no selectors.
  shared::IpAddress destination = inner_ipv6 ? shared::IpAddress::from_ipv6_bytes(inner + 24)
                                             : shared::IpAddress::from_ipv4_bytes(inner + 16);
  auto route = shared::IpPrefix::parse(destination.to_string() + "/24");
  if (!route) return make_error("cannot route inner destination " + destination.to_string());
  peer.remote_selectors = {};
  peer.remote_selectors[0] = shared::TrafficSelector::from_prefix(*route);
  peer.remote_selector_count = 1;
  shared::Status installed = tables_->install(peer);
  shared::secure_zero(peer);
  if (!installed) return make_error("cannot install the peer side of SA " + hex_spi(inbound.spi) + ": " + installed.error());

  shared::Status status;
  rte_mbuf* packets[kBurst];
  rte_mbuf* out[dp::kMaxEspBurst];
  rte_mbuf* to_core[kBurst];
  for (uint64_t done = 0; done < count && status.ok();) {
    uint16_t n = static_cast<uint16_t>(std::min<uint64_t>(kBurst, count - done));
    if (rte_pktmbuf_alloc_bulk(pool_, packets, n) != 0) {
      status = make_error("mbuf pool empty");
      break;
    }
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = packets[i];
      auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(kEthernetHeaderLength + inner_size)));
      write_ethernet_header(data, context_.access_next_hop.addr_bytes, context_.access_mac.addr_bytes, inner_ipv6);
      std::memcpy(data + kEthernetHeaderLength, inner, inner_size);
      m->l2_len = kEthernetHeaderLength;
      m->packet_type = RTE_PTYPE_L2_ETHER | (inner_ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4);
    }
    uint64_t drops_before[dp::kDropReasonCount];
    for (int r = 0; r < dp::kDropReasonCount; ++r) drops_before[r] = counters_.drops[r].load(std::memory_order_relaxed);
    uint16_t to_core_count = 0;
    uint16_t good = dp::esp_outbound_burst(context_, packets, n, out, to_core, &to_core_count);
    for (uint16_t i = 0; i < good; ++i) {
      emit(rte_pktmbuf_mtod(out[i], const uint8_t*), out[i]->pkt_len);
      rte_pktmbuf_free(out[i]);
    }
    for (uint16_t i = 0; i < to_core_count; ++i) rte_pktmbuf_free(to_core[i]);
    if (good != n) {
      std::string reasons;
      for (int r = 0; r < dp::kDropReasonCount; ++r)
        if (uint64_t d = counters_.drops[r].load(std::memory_order_relaxed) - drops_before[r])
          reasons += std::string(reasons.empty() ? "" : ", ") + dp::to_string(static_cast<dp::DropReason>(r)) + " " +
                     std::to_string(d);
      status = make_error("SA " + hex_spi(inbound.spi) + ": the outbound code dropped " + std::to_string(n - good) +
                          " of " + std::to_string(n) + " packets (" + reasons + ")");
    }
    done += n;
  }
  shared::Status removed = tables_->remove(inbound.spi, shared::SaDirection::kOutbound);
  tables_->reclaim();
  if (status.ok() && !removed) return removed;
  return status;
}

}  // namespace segw::pcapgen
