// Every packet the data plane does not transmit has a named, counted reason.
// The X-macro keeps the enum, its name and its description together.
#pragma once

#include <cstdint>

namespace segw::dp {

#define SEGW_DROP_REASONS(X)                                                          \
  X(kMalformed, "malformed", "truncated or inconsistent Ethernet/IP/UDP headers")      \
  X(kUnsupportedEthertype, "unsupported_ethertype", "neither IPv4 nor IPv6")           \
  X(kNotForUs, "not_for_us", "access-side packet that is not ESP, IKE or keepalive")   \
  X(kNatKeepalive, "nat_keepalive", "NAT-T keepalive (RFC 3948 2.3), counted")         \
  X(kPuntQueueFull, "punt_queue_full", "IKE packet dropped: punt queue full")          \
  X(kFragmentError, "fragment_error", "fragment could not be reassembled/created")    \
  X(kUnknownSpi, "unknown_spi", "no inbound SA for the SPI")                           \
  X(kTruncated, "truncated", "ESP payload shorter than header+IV+ICV or misaligned")  \
  X(kReplay, "replay", "sequence number duplicate or behind the window")              \
  X(kIcvFailure, "icv_failure", "integrity check failed")                              \
  X(kCryptoError, "crypto_error", "crypto library rejected the job")                   \
  X(kBadPadding, "bad_padding", "ESP padding not 1,2,3,... (RFC 4303 2.4)")            \
  X(kDummyPacket, "dummy_packet", "next header 59, TFC dummy (RFC 4303 2.6)")          \
  X(kBadNextHeader, "bad_next_header", "ESP next header not IPv4/IPv6")                \
  X(kBadInnerPacket, "bad_inner_packet", "decrypted inner IP header invalid")          \
  X(kSelectorMismatch, "selector_mismatch", "inner packet outside the SA's selectors") \
  X(kLifetimeExpired, "lifetime_expired", "hard byte/packet lifetime reached")         \
  X(kNoRoute, "no_route", "no outbound SA covers the inner destination")              \
  X(kNoSa, "no_sa", "route points at an SA that is gone")                              \
  X(kSequenceOverflow, "sequence_overflow", "outbound sequence number exhausted")     \
  X(kMtuExceeded, "mtu_exceeded", "too big after encapsulation, DF set or IPv6 (ICMP sent)") \
  X(kNoBuffer, "no_buffer", "mbuf pool empty or no room in the mbuf")                  \
  X(kTxFull, "tx_full", "transmit queue full")

enum class DropReason : uint8_t {
#define SEGW_DROP_ENUM(id, name, description) id,
  SEGW_DROP_REASONS(SEGW_DROP_ENUM)
#undef SEGW_DROP_ENUM
  kCount
};

inline constexpr int kDropReasonCount = static_cast<int>(DropReason::kCount);

const char* to_string(DropReason reason);
const char* describe(DropReason reason);

}  // namespace segw::dp
