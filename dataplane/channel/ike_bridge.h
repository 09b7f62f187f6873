// IKE between the wire and the channel: a punted frame becomes a
// PuntPacket (metadata + IKE bytes without the RFC 3948 non-ESP marker), and
// an InjectPacket becomes an Ethernet/IP/UDP frame for the access port.
// Control lcore only; the data plane never parses IKE itself (DESIGN.md).
#pragma once

#include <rte_ether.h>
#include <rte_mbuf.h>

#include <cstdint>

#include "shared/channel/messages.h"

namespace segw::dp {

#define SEGW_PUNT_RESULTS(X)                                                  \
  X(kOk, "ok", "punt packet built")                                           \
  X(kTooBig, "too_big", "IKE message larger than kMaxIkePacketBytes")         \
  X(kMalformed, "malformed", "not the IPv4/IPv6 UDP frame the worker classified")

enum class PuntResult : uint8_t {
#define SEGW_PUNT_ENUM(id, name, description) id,
  SEGW_PUNT_RESULTS(SEGW_PUNT_ENUM)
#undef SEGW_PUNT_ENUM
};
const char* to_string(PuntResult result);

// Fills `out` from a frame a worker classified as IKE (contiguous, l2/l3/l4
// lengths and packet_type set by classify_access). UDP/4500 loses its
// 4-byte marker; UDP/500 is copied whole. `arrival_ns` is CLOCK_MONOTONIC.
PuntResult build_punt_packet(const rte_mbuf* frame, uint64_t arrival_ns,
                             shared::channel::PuntPacket& out);

#define SEGW_INJECT_RESULTS(X)                                                           \
  X(kOk, "ok", "frame built")                                                            \
  X(kUnsupportedVersion, "unsupported_version", "InjectPacket of another message version") \
  X(kBadLength, "bad_length", "length 0 or beyond the bytes array")                     \
  X(kBadAddress, "bad_address", "address families differ or are not IPv4/IPv6")       \
  X(kBadPort, "bad_port", "not the access port, or a UDP port of 0")                    \
  X(kTooBig, "too_big", "more fragments than kMaxInjectFrames at the access MTU")       \
  X(kNoMbuf, "no_mbuf", "packet buffer pool exhausted")

enum class InjectResult : uint8_t {
#define SEGW_INJECT_ENUM(id, name, description) id,
  SEGW_INJECT_RESULTS(SEGW_INJECT_ENUM)
#undef SEGW_INJECT_ENUM
};
const char* to_string(InjectResult result);

// What a frame for the access port needs besides the InjectPacket.
struct InjectFrameSetup {
  rte_mempool* pool = nullptr;
  uint16_t access_port = 0;
  rte_ether_addr access_mac{};
  rte_ether_addr next_hop_mac{};  // [port access] next_hop_mac
  uint32_t access_mtu = 1500;
};

// Builds Ethernet + IPv4/IPv6 + UDP (+ zero marker when non_esp_marker) +
// the IKE bytes, checksums filled in software. port_id must be the access
// port (or 0xffff for "the access port"). On kOk `*frame` is the caller's.
// An IKE message larger than the access MTU allows (an IKE_AUTH with
// certificates) leaves as IP fragments (RFC 791 / RFC 8200 4.5): at most
// this many frames per message.
inline constexpr unsigned kMaxInjectFrames = 8;

// Builds the frame(s) of one injected message into frames[0..*count).
// `fragment_id`: the IPv4 Identification (low 16 bits) or the IPv6 fragment
// Identification. On error nothing is allocated.
InjectResult build_inject_frames(const shared::channel::InjectPacket& packet, const InjectFrameSetup& setup,
                                 uint32_t fragment_id, rte_mbuf** frames, unsigned* count);

}  // namespace segw::dp
