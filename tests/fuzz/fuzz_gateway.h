// What the engine fuzzer and its seed writer share: the gateway's
// configuration (a PSK responder with address pools, as in
// tests/unit/controlplane/engine/engine_test.cc) and the layout of a
// multi-datagram fuzz input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace segw::fuzz {

inline constexpr const char* kGatewayAddress = "198.51.100.1";
inline constexpr const char* kPsk = "0x00112233445566778899aabbccddeeff0011223344556677";

// The gateway. cookie_threshold is low so that a third IKE_SA_INIT in one
// input already meets the COOKIE path (RFC 7296 2.6).
inline std::string gateway_config_text() {
  return std::string(R"(
[controlplane]
transport = udp
listen = 198.51.100.1
cookie_threshold = 2
half_open_timeout_s = 30

[pool v4]
range = 10.64.0.0/24

[pool v6]
range = fd00:64::/120
lease_prefix_length = 128

[secret default]
id = %any
psk = )") + kPsk + R"(

[profile fap]
remote_id = %any
local_id = fqdn:segw.example
local_auth = psk
remote_auth = psk
pools = v4, v6
dns = 192.0.2.53, 2001:db8::53
local_subnets = 10.0.0.0/8, 2001:db8:c::/48
ike_proposals = aes256gcm16-prfsha256-ecp256, aes128-sha256-ecp256-modp2048, aes256gcm16-prfsha384-ecp384
)";
}

// A multi-datagram input is a sequence of records, each
//   flags (1 byte) | length (2 bytes, big-endian) | length bytes of IKE message
// (a record cut short by the end of the input takes what is left).
// The flags:
inline constexpr uint8_t kRecordNatT = 0x01;       // to and from port 4500, non-ESP marker
inline constexpr uint8_t kRecordPatchSpiR = 0x02;  // put the gateway's latest SPIr in bytes 8..15
inline constexpr unsigned kRecordHostShift = 2;    // bits 2-4: peer 203.0.113.(10 + n)
inline constexpr uint8_t kRecordHostMask = 0x07;
inline constexpr unsigned kRecordClockShift = 5;   // bits 5-7: clock advances n x 250 ms first
inline constexpr uint8_t kRecordClockMask = 0x07;
inline constexpr size_t kRecordHeaderSize = 3;
inline constexpr size_t kMaxRecords = 16;

}  // namespace segw::fuzz
