// The SA descriptor: THE contract between the processes. Everything the data
// plane needs to install one ESP SA, in a trivially copyable form so it can
// cross the shared-memory channel unchanged. Holds keys: callers zeroise it
// with secure_zero() when done (a trivially copyable type has no destructor).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

#include "shared/ip_address.h"

namespace segw::shared {

// ESP transforms (RFC 4106 AES-GCM with 16-byte ICV; RFC 3602 AES-CBC with
// RFC 2404 HMAC-SHA1-96 / RFC 4868 HMAC-SHA-256-128).
enum class EspAlgorithm : uint8_t {
  kAesGcm128,
  kAesGcm256,
  kAesCbc128HmacSha1,
  kAesCbc256HmacSha1,
  kAesCbc128HmacSha256,
  kAesCbc256HmacSha256,
};
inline constexpr int kEspAlgorithmCount = 6;

struct EspAlgorithmProperties {
  const char* name;            // config/log name, e.g. "aes-gcm-128"
  uint8_t cipher_key_length;   // bytes
  uint8_t integrity_key_length;
  uint8_t salt_length;         // RFC 4106 4: 4-byte salt for GCM
  uint8_t iv_length;           // bytes carried in each packet
  uint8_t icv_length;
  uint8_t block_size;          // payload alignment before the trailer (RFC 4303 2.4)
  bool aead;
};

const EspAlgorithmProperties& properties(EspAlgorithm algorithm);
const char* to_string(EspAlgorithm algorithm);
std::optional<EspAlgorithm> parse_esp_algorithm(std::string_view name);

enum class SaDirection : uint8_t { kInbound, kOutbound };
const char* to_string(SaDirection direction);

// The outer addressing of a tunnel, from the gateway's point of view.
struct PathDescriptor {
  IpAddress local;               // gateway's access-side address
  IpAddress remote;              // peer's public (NAT-translated) address
  uint16_t local_port = 4500;    // UDP source port when encapsulating
  uint16_t remote_port = 4500;   // peer's (NAT-translated) UDP port
  bool udp_encapsulation = true; // RFC 3948 ESP-in-UDP; false = raw ESP (proto 50)
  friend bool operator==(const PathDescriptor&, const PathDescriptor&) = default;
};

// An IKEv2-style traffic selector (RFC 7296 3.13.1): address range, protocol
// (0 = any), port range.
struct TrafficSelector {
  IpAddress start;
  IpAddress end;
  uint8_t protocol = 0;
  uint16_t port_start = 0;
  uint16_t port_end = 65535;

  static TrafficSelector from_prefix(const IpPrefix& prefix);
  bool contains_address(const IpAddress& address) const;
  std::string to_string() const;
  friend bool operator==(const TrafficSelector&, const TrafficSelector&) = default;
};

// Byte/packet limits; 0 = no limit (RFC 4301 4.4.2.1).
struct Lifetime {
  uint64_t soft_bytes = 0;
  uint64_t hard_bytes = 0;
  uint64_t soft_packets = 0;
  uint64_t hard_packets = 0;
};

inline constexpr int kMaxSelectors = 8;
inline constexpr int kMaxKeyLength = 32;
inline constexpr uint32_t kDefaultReplayWindow = 128;
inline constexpr uint32_t kMinReplayWindow = 64;
inline constexpr uint32_t kMaxReplayWindow = 32768;

struct SaDescriptor {
  uint32_t spi = 0;
  SaDirection direction = SaDirection::kInbound;
  EspAlgorithm algorithm = EspAlgorithm::kAesGcm128;
  bool esn = false;                    // RFC 4303 2.2.1 extended sequence numbers
  uint32_t replay_window = kDefaultReplayWindow;  // inbound only, in packets
  uint32_t tunnel_id = 0;              // SAs of one tunnel share one path
  std::array<uint8_t, kMaxKeyLength> cipher_key{};
  std::array<uint8_t, kMaxKeyLength> integrity_key{};
  std::array<uint8_t, 4> salt{};
  PathDescriptor path;
  // Inner addresses behind the gateway (core side) and behind the peer.
  std::array<TrafficSelector, kMaxSelectors> local_selectors{};
  std::array<TrafficSelector, kMaxSelectors> remote_selectors{};
  uint8_t local_selector_count = 0;
  uint8_t remote_selector_count = 0;
  Lifetime lifetime;
  std::array<char, 32> name{};         // operator label, NUL-terminated

  std::string_view name_view() const;
  void set_name(std::string_view text);
};
static_assert(std::is_trivially_copyable_v<SaDescriptor>);

// Overwrites the key material in a way the compiler may not elide.
void secure_zero(void* data, size_t length);
void secure_zero(SaDescriptor& descriptor);

}  // namespace segw::shared
