// Test support for the data plane unit tests: the process-wide mbuf pool,
// packet builders, independent checksums, SA descriptor pairs (an outbound SA
// and its mirrored inbound SA), a Gateway bundle (SaTables + EspContext +
// crypto + counters) standing in for one worker, a reference ESP
// implementation on OpenSSL so the data plane is checked against code it does
// not share (RFC 4303, RFC 4106, RFC 3602, RFC 2404, RFC 4868), and the real
// worker loop between two ring-backed ports.
#pragma once

#include <gtest/gtest.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/esp/crypto.h"
#include "dataplane/esp/esp_context.h"
#include "dataplane/sad/sa_table.h"
#include "dataplane/stats/drop_reason.h"
#include "dataplane/stats/worker_counters.h"
#include "dataplane/worker/classify.h"
#include "dataplane/worker/worker.h"
#include "shared/ip_address.h"
#include "shared/sa_descriptor.h"

namespace segw::shared {
inline void PrintTo(EspAlgorithm algorithm, std::ostream* os) { *os << to_string(algorithm); }
}  // namespace segw::shared

namespace segw::dp {
// Printers so a failed EXPECT_EQ names the reason instead of a number.
inline void PrintTo(DropReason reason, std::ostream* os) { *os << to_string(reason); }
inline void PrintTo(AccessClass kind, std::ostream* os) { *os << to_string(kind); }
inline void PrintTo(ReplayVerdict verdict, std::ostream* os) { *os << to_string(verdict); }
}  // namespace segw::dp

namespace segw::dp::testing {

using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------
// Process-wide environment (test_main.cc creates it after rte_eal_init).

// The mbuf pool every test allocates from (8191 mbufs, 2176-byte buffers).
rte_mempool* packet_pool();

// Fixture base: checks that a test gives back every mbuf it took
// (rte_mempool_in_use_count returns to its value at SetUp).
class MbufLeakCheck : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

 private:
  unsigned in_use_at_start_ = 0;
};

// ---------------------------------------------------------------------------
// Bytes, addresses, checksums.

Bytes from_hex(std::string_view text);  // whitespace ignored
std::string to_hex(std::span<const uint8_t> bytes);
shared::IpAddress address(std::string_view text);
shared::IpPrefix prefix(std::string_view text);
shared::TrafficSelector selector(std::string_view prefix_text);

// RFC 1071 one's complement sum of 16-bit big-endian words, carries kept
// (add more with `sum`); fold() folds it to 16 bits, not inverted.
uint32_t ones_sum(std::span<const uint8_t> data, uint32_t sum = 0);
uint16_t fold(uint32_t sum);
// True if the IPv4 header at `ip` (IHL taken from it) sums to 0xffff.
bool ipv4_header_checksum_ok(const uint8_t* ip);
// True if the L4 checksum of the IPv6 packet at `ip` (payload = upper layer
// directly after the fixed header) verifies with the RFC 8200 8.1 pseudo-header.
bool ipv6_l4_checksum_ok(const uint8_t* ip);

// ---------------------------------------------------------------------------
// Packet builders (IP packets without Ethernet unless said otherwise).

inline constexpr rte_ether_addr kCoreMac{{0x02, 0, 0, 0, 0xc0, 0x01}};
inline constexpr rte_ether_addr kCoreNextHop{{0x02, 0, 0, 0, 0xc0, 0x02}};
inline constexpr rte_ether_addr kAccessMac{{0x02, 0, 0, 0, 0xa0, 0x01}};
inline constexpr rte_ether_addr kAccessNextHop{{0x02, 0, 0, 0, 0xa0, 0x02}};

// IPv4/UDP packet of exactly `total_length` bytes (>= 28) with a payload
// pattern derived from `seed`; header checksum and UDP checksum valid.
Bytes make_ipv4_udp(const shared::IpAddress& source, const shared::IpAddress& destination,
                    uint16_t source_port, uint16_t destination_port, size_t total_length,
                    uint32_t seed, bool dont_fragment = false);
// IPv6/UDP packet of exactly `total_length` bytes (>= 48).
Bytes make_ipv6_udp(const shared::IpAddress& source, const shared::IpAddress& destination,
                    uint16_t source_port, uint16_t destination_port, size_t total_length,
                    uint32_t seed);
// Ethernet frame around `l3`.
Bytes ethernet(std::span<const uint8_t> l3, uint16_t ether_type, const rte_ether_addr& destination,
               const rte_ether_addr& source);
// The access-side frame that `path` (sender's view: local -> remote) carries
// `esp` in: Ethernet, IPv4/IPv6, UDP 8 bytes when encapsulating, ESP.
// Lengths and checksums valid.
Bytes outer_frame(const shared::PathDescriptor& path, std::span<const uint8_t> esp);
// An access frame carrying a UDP datagram from `source` to `destination`
// (UDP checksum zero over IPv4, valid over IPv6).
Bytes udp_frame(const shared::IpAddress& source, const shared::IpAddress& destination,
                uint16_t source_port, uint16_t destination_port, std::span<const uint8_t> payload);

// ---------------------------------------------------------------------------
// mbufs.

// Copies `frame` into a fresh single-segment mbuf from packet_pool().
rte_mbuf* to_mbuf(std::span<const uint8_t> frame);
// Copies `frame` into a chain of mbufs of at most `segment_bytes` each.
rte_mbuf* to_chained_mbuf(std::span<const uint8_t> frame, uint16_t segment_bytes);
Bytes to_bytes(const rte_mbuf* m);
void free_all(std::vector<rte_mbuf*>& packets);

// ---------------------------------------------------------------------------
// SA descriptors.

// Standard addresses: the encrypting gateway ("A") and its peer ("B").
struct Endpoints {
  static shared::IpAddress a_ipv4() { return address("192.0.2.1"); }
  static shared::IpAddress b_ipv4() { return address("198.51.100.2"); }
  static shared::IpAddress a_ipv6() { return address("2001:db8::1"); }
  static shared::IpAddress b_ipv6() { return address("2001:db8:1::2"); }
  // Inner hosts: behind A (sources of A's outbound traffic) and behind B.
  static shared::IpAddress inner_a_ipv4() { return address("10.1.0.5"); }
  static shared::IpAddress inner_b_ipv4() { return address("10.2.0.9"); }
  static shared::IpAddress inner_a_ipv6() { return address("fd00:1::5"); }
  static shared::IpAddress inner_b_ipv6() { return address("fd00:2::9"); }
};

enum class OuterKind : uint8_t { kIpv4Udp, kIpv4Raw, kIpv6Udp, kIpv6Raw };
const char* to_string(OuterKind kind);
inline void PrintTo(OuterKind kind, std::ostream* os) { *os << to_string(kind); }
// A -> B path: A sends from port 61000 (as if NATed) to B's 4500.
shared::PathDescriptor path_a_to_b(OuterKind kind);
// The same path seen from the other end.
shared::PathDescriptor mirror(const shared::PathDescriptor& path);

// One direction of one tunnel, described from the encrypting side.
struct TunnelSpec {
  uint32_t spi = 0x1001;
  uint32_t tunnel_id = 1;
  shared::EspAlgorithm algorithm = shared::EspAlgorithm::kAesGcm128;
  bool esn = false;
  uint32_t replay_window = 1024;
  shared::PathDescriptor path = path_a_to_b(OuterKind::kIpv4Udp);
  // Inner sources (behind the encrypting side) and destinations.
  std::vector<shared::TrafficSelector> sources = {selector("10.1.0.0/16"), selector("fd00:1::/48")};
  std::vector<shared::TrafficSelector> destinations = {selector("10.2.0.0/16"), selector("fd00:2::/48")};
  shared::Lifetime lifetime{};
  uint8_t key_seed = 1;  // keys are a pattern of this seed
};
shared::SaDescriptor outbound_sa(const TunnelSpec& spec);
// The decrypting side's SA: same keys, mirrored path and selectors.
shared::SaDescriptor inbound_sa(const TunnelSpec& spec);

// ---------------------------------------------------------------------------
// One worker's view of one gateway.

// Small tables: the FIB tbl24 arrays are fixed (2 x 64 MiB) but the rest
// stays small so several gateways fit in the EAL memory (-m, test_main.cc).
SaTableConfig small_config(uint32_t capacity = 1024);

struct Gateway {
  explicit Gateway(const SaTableConfig& config = small_config());
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  void install(const shared::SaDescriptor& descriptor);  // ASSERT-style: fails the test on error
  uint64_t drops(DropReason reason) const {
    return counters.drops[static_cast<int>(reason)].load(std::memory_order_relaxed);
  }
  uint64_t total_drops() const;
  // Non-zero drop counters as "name=count ..." ("" when none), for messages.
  std::string drop_summary() const;
  // The installed SA, or nullptr.
  EspSa* outbound(uint32_t spi) const { return tables->find(spi, shared::SaDirection::kOutbound); }
  EspSa* inbound(uint32_t spi) const { return tables->find(spi, shared::SaDirection::kInbound); }

  // Frames `inner` IP packets for the core port, classifies them
  // (classify_core) and encapsulates them in bursts of `burst`.
  std::vector<rte_mbuf*> encapsulate(const std::vector<Bytes>& inner,
                                     std::vector<rte_mbuf*>* to_core = nullptr, uint16_t burst = 16);
  std::vector<rte_mbuf*> encapsulate_frames(std::vector<rte_mbuf*> frames,
                                            std::vector<rte_mbuf*>* to_core = nullptr,
                                            uint16_t burst = 16);
  // Classifies access frames (each must be kEsp, else the test fails and the
  // frame is freed) and decapsulates them in bursts of `burst`.
  std::vector<rte_mbuf*> decapsulate(std::vector<rte_mbuf*> frames, uint16_t burst = 32);

  std::unique_ptr<SaTables> tables;
  CryptoManager crypto;
  WorkerCounters counters;
  EspContext ctx;
  // Owns both Endpoints (A and B, IPv4 and IPv6), so one Gateway can play
  // the encrypting side of one tunnel and the decrypting side of another.
  AccessAddresses access;
};

// Non-zero drop counters of `counters` as "name=count ...".
std::string drop_summary(const WorkerCounters& counters);
std::string drop_summary(const SaCounters& counters);

// The inner IP packet of a decapsulated frame (after its Ethernet header).
Bytes inner_of(const rte_mbuf* m);

// ---------------------------------------------------------------------------
// Reference ESP on OpenSSL (shares no code with the data plane).

struct ReferenceSa {
  shared::EspAlgorithm algorithm{};
  uint32_t spi = 0;
  bool esn = false;
  Bytes cipher_key;
  Bytes integrity_key;
  Bytes salt;
  static ReferenceSa from(const shared::SaDescriptor& descriptor);
};

// inner || 1, 2, 3, ... || pad length || next header, the minimum padding
// that aligns the result to `block` (RFC 4303 2.4).
Bytes with_trailer(std::span<const uint8_t> inner, unsigned block, uint8_t next_header);
// SPI || low 32 bits of `sequence` || IV || ciphertext || ICV. `plaintext`
// carries its trailer already; `iv` is 8 bytes (GCM, RFC 4106 3.1) or 16 (CBC).
Bytes reference_seal(const ReferenceSa& sa, uint64_t sequence, std::span<const uint8_t> iv,
                     std::span<const uint8_t> plaintext);
// Verifies the ICV (ESN high bits from `sequence`, RFC 4303 2.2.1 / RFC 4106 5)
// and decrypts; returns the plaintext with its trailer, nullopt on ICV failure.
std::optional<Bytes> reference_open(const ReferenceSa& sa, uint64_t sequence,
                                    std::span<const uint8_t> esp);
// The primitives reference_seal and reference_open are built on, exposed so
// published vectors can prove them (esp_crypto_kat_test.cc).
// AES-GCM (key length picks AES-128/256): ciphertext || 16-byte tag.
Bytes reference_gcm_seal(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                         std::span<const uint8_t> aad, std::span<const uint8_t> plaintext);
// AES-CBC without padding (plaintext a whole number of blocks).
Bytes reference_cbc_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                            std::span<const uint8_t> plaintext);
// HMAC with the hash of `algorithm` (a CBC one), truncated to its ICV length.
Bytes reference_hmac(shared::EspAlgorithm algorithm, std::span<const uint8_t> key,
                     std::span<const uint8_t> data);
// AES-ECB of one block (for checking how CBC IVs are derived).
Bytes aes_ecb_block(std::span<const uint8_t> key, std::span<const uint8_t> block);

// The IV the gateway's outbound path puts in packet `sequence` of `sa`
// (esp_outbound.cc): GCM, the 64-bit sequence number (RFC 4106 3.1); CBC,
// E_K(sequence || SPI || 0) (NIST SP 800-38A appendix C).
Bytes gateway_iv(const ReferenceSa& sa, uint64_t sequence);
// An arbitrary IV of the right length for `sa`, different for each `seed`.
Bytes pattern_iv(const ReferenceSa& sa, uint64_t seed);
// Checks the RFC 4303 2.4 trailer of `plaintext` (padding 1, 2, 3, ...):
// returns the payload before the padding and sets `next_header`; nullopt
// (with a test failure naming the problem) if the trailer is malformed.
std::optional<Bytes> strip_trailer(std::span<const uint8_t> plaintext, uint8_t* next_header);
// Seals `inner` for `sa` with a pattern IV and minimal padding, wrapped in
// the access frame of `path` (sender's view).
Bytes sealed_frame(const ReferenceSa& sa, const shared::PathDescriptor& path, uint64_t sequence,
                   std::span<const uint8_t> inner);
// The ESP bytes (SPI to ICV) inside an access frame: after Ethernet, the IP
// header (IPv4 IHL or the IPv6 fixed header) and UDP when the protocol is 17.
Bytes esp_of(std::span<const uint8_t> frame);

// Reads the process resident set size from /proc/self/statm, in bytes.
size_t resident_bytes();

// ---------------------------------------------------------------------------
// The real worker loop (Worker::poll_once) between two ring-backed ethdev
// ports (net_ring): for what only the worker does (outer reassembly, IKE
// punt, keepalive counting). The ports are created once per process and
// shared; one WorkerHarness may exist at a time.

struct WorkerHarnessOptions {
  uint32_t reassembly_flows = 4096;
  uint32_t reassembly_timeout_ms = 2000;
  uint32_t punt_ring_size = 64;  // power of two; holds size - 1 packets
};

class WorkerHarness {
 public:
  // Runs `gateway`'s tables, MACs, MTU and access addresses.
  explicit WorkerHarness(Gateway& gateway, const WorkerHarnessOptions& options = {});
  ~WorkerHarness();  // frees whatever the rings still hold
  WorkerHarness(const WorkerHarness&) = delete;
  WorkerHarness& operator=(const WorkerHarness&) = delete;

  // Puts `frames` on the access port's receive ring and polls until the
  // worker has taken them all.
  void receive_on_access(const std::vector<Bytes>& frames);
  void receive_on_core(const std::vector<Bytes>& frames);
  // One more turn of the loop with nothing received (timers, clean-up).
  void poll() { worker_->poll_once(); }
  // What the worker transmitted / punted since the last call (caller frees).
  std::vector<rte_mbuf*> sent_to_core();
  std::vector<rte_mbuf*> sent_to_access();
  std::vector<rte_mbuf*> punted();
  // Fills the core port's transmit ring with placeholder mbufs until only
  // `slots` entries are free (sent_to_core() returns the placeholders too).
  void leave_core_transmit_room(unsigned slots);

  const WorkerCounters& counters() const { return worker_->counters(); }
  uint64_t drops(DropReason reason) const {
    return counters().drops[static_cast<int>(reason)].load(std::memory_order_relaxed);
  }

 private:
  void receive(rte_ring* ring, const std::vector<Bytes>& frames);
  rte_ring* punt_ring_ = nullptr;
  std::unique_ptr<Worker> worker_;
};

}  // namespace segw::dp::testing
