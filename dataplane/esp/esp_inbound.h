// ESP inbound burst (RFC 4303 3.4): SA by SPI, replay pre-check, decrypt and
// verify in one IPsec-MB burst that mixes SAs freely, window update after the
// ICV verified, padding and next-header checks, selector check, inner packet
// framed for the core port.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/esp/esp_context.h"

namespace segw::dp {

// Preconditions per mbuf (the classifier establishes them): one segment,
// data starts at the Ethernet header, l2_len/l3_len/l4_len locate the ESP
// header (l4_len = 8 for UDP-encapsulated, 0 for raw ESP), packet_type says
// outer IPv4 or IPv6, pkt_len ends where the outer IP packet ends.
// Decapsulated packets go to `out` (Ethernet header for the core port), in
// input order; every other packet is freed and counted with its reason.
// count <= kMaxEspBurst. Worker lcore only. Returns the number in `out`.
uint16_t esp_inbound_burst(EspContext& ctx, rte_mbuf** packets, uint16_t count, rte_mbuf** out);

}  // namespace segw::dp
