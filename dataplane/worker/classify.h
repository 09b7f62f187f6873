// Classification of received frames (RFC 3948 2.2 for port 4500): what the
// access side sees (ESP, IKE, NAT keepalive, fragments, other) and plain IP on
// the core side. Validates Ethernet/IP/UDP lengths and trims link padding.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>

#include "dataplane/stats/drop_reason.h"

namespace segw::dp {

enum class AccessClass : uint8_t {
  kEsp,        // l2/l3/l4_len locate the ESP header
  kIke,        // UDP/500, or UDP/4500 with the non-ESP marker
  kKeepalive,  // UDP/4500 with the single 0xFF byte
  kFragment,   // outer IPv4/IPv6 fragment: reassemble, then classify again
  kDrop,       // see the reason
};
const char* to_string(AccessClass kind);

// Addresses the access port owns; packets to other addresses are not for us.
struct AccessAddresses {
  static constexpr int kMax = 8;
  uint32_t ipv4_be[kMax] = {};
  uint8_t ipv6[kMax][16] = {};
  int ipv4_count = 0;
  int ipv6_count = 0;
};

// Classifies one access-side frame and sets l2_len, l3_len, l4_len,
// packet_type. On kDrop, *reason says why. Worker lcore, any thread.
AccessClass classify_access(rte_mbuf* m, const AccessAddresses& ours, DropReason* reason);

// Validates one core-side frame as IPv4/IPv6 and sets l2_len and
// packet_type; returns false (with *reason) for anything else.
bool classify_core(rte_mbuf* m, DropReason* reason);

}  // namespace segw::dp
