// What the ESP burst functions need from their worker: the crypto manager,
// the SA tables, MAC addresses for the frames they emit, MTU policy.
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/esp/crypto.h"
#include "dataplane/sad/sa_table.h"
#include "dataplane/stats/worker_counters.h"
#include "shared/ip_address.h"

namespace segw::dp {

// What to do with an inner packet too big for the access MTU once
// encapsulated (DESIGN: Fragmentation).
enum class DfPolicy : uint8_t {
  kHonour,  // IPv4 with DF and all IPv6: drop and send ICMP too-big; IPv4 without DF: fragment
  kIgnore,  // fragment every IPv4 inner packet regardless of DF (IPv6 still gets ICMPv6)
};

struct EspContext {
  IMB_MGR* crypto = nullptr;
  const SaTables* tables = nullptr;
  WorkerCounters* counters = nullptr;
  rte_mempool* pool = nullptr;        // for fragments and ICMP errors
  rte_ether_addr core_mac{};          // our core port
  rte_ether_addr core_next_hop{};     // where decapsulated packets go
  rte_ether_addr access_mac{};        // our access port
  rte_ether_addr access_next_hop{};   // where encapsulated packets go
  uint16_t access_mtu = 1500;         // outer IP packet size limit
  DfPolicy df_policy = DfPolicy::kHonour;
  // Source addresses of the ICMP errors we originate toward the core.
  shared::IpAddress core_ipv4;
  shared::IpAddress core_ipv6;
  bool have_core_ipv4 = false;
  bool have_core_ipv6 = false;
  // Inbound SPIs of SAs that just saw a verified packet from a new outer
  // source (multi-producer: every worker; single consumer: the control
  // lcore, which raises the new-source event at once instead of at its next
  // counter sweep: a NAT remap is noticed within a loop, not a sweep). Null
  // without a [channel].
  rte_ring* new_source_ring = nullptr;
};

// Largest burst the ESP functions accept in one call.
inline constexpr uint16_t kMaxEspBurst = 128;

// Frees `m` and counts it under `reason` for the worker and, if known, the SA.
inline void drop_packet(EspContext& ctx, rte_mbuf* m, DropReason reason, EspSa* sa = nullptr) {
  bump(ctx.counters->drops[static_cast<int>(reason)]);
  if (sa) sa->counters.drops[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
  rte_pktmbuf_free(m);
}

}  // namespace segw::dp
