// ESP outbound burst (RFC 4303 3.3): SA by longest-prefix match on the inner
// destination, sequence number, padding, encryption and ICV in one IPsec-MB
// burst mixing SAs, outer IP (+UDP, RFC 3948) from the tunnel's current Path.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/esp/esp_context.h"

namespace segw::dp {

// Preconditions per mbuf: one segment, data starts at the Ethernet header
// (l2_len), packet_type says inner IPv4 or IPv6, pkt_len ends where the IP
// packet ends. Encapsulated packets go to `out` (framed for the access port);
// ICMP "too big" errors generated for the core side go to `to_core`. Inner
// IPv4 packets too big for the access MTU are fragmented first (DfPolicy).
// `out` must hold kMaxEspBurst entries; `to_core` count entries.
// count <= kMaxEspBurst / kMaxFragmentsPerPacket is always safe; more input
// is accepted but fragments beyond kMaxEspBurst are dropped as kFragmentError.
// Worker lcore only; inside an RCU read-side section.
uint16_t esp_outbound_burst(EspContext& ctx, rte_mbuf** packets, uint16_t count, rte_mbuf** out,
                            rte_mbuf** to_core, uint16_t* to_core_count);

// Largest inner packet that fits the access MTU once encapsulated for `sa`
// on `path` (block alignment and ICV included).
uint32_t max_inner_size(const EspSa& sa, const Path& path, uint16_t access_mtu);

inline constexpr int kMaxFragmentsPerPacket = 8;

}  // namespace segw::dp
