// Inner-packet fragmentation before encryption (IPv4, RFC 791) and the ICMP
// errors for packets that may not be fragmented (RFC 792 type 3 code 4,
// RFC 4443 Packet Too Big). Copies into fresh single-segment mbufs so the ESP
// code can work in place.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "shared/ip_address.h"

namespace segw::dp {

// Splits the IPv4 packet in `m` (Ethernet-framed, l2_len set) into fragments
// of at most `max_ip_size` bytes, each Ethernet-framed like `m`. Returns the
// number written to `fragments` (<= max_fragments), 0 on failure (no mbufs,
// too many fragments, header options too big). Does not free `m`.
uint16_t fragment_ipv4(rte_mbuf* m, uint32_t max_ip_size, rte_mempool* pool,
                       rte_mbuf** fragments, uint16_t max_fragments);

// Builds the "too big" ICMP/ICMPv6 error for the inner packet in `m`
// (Ethernet-framed), addressed to its source, from `source`, with next-hop
// MTU `mtu`. Returns nullptr if no mbuf. Does not free `m`.
rte_mbuf* make_too_big_error(rte_mbuf* m, bool ipv6, uint32_t mtu, const shared::IpAddress& source,
                             rte_mempool* pool);

}  // namespace segw::dp
