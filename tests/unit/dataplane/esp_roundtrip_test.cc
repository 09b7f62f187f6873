// ESP round trips against the OpenSSL reference: every algorithm x outer kind
// (IPv4/UDP, IPv4 raw, IPv6/UDP, IPv6 raw) x inner IPv4/IPv6 x sizes that hit
// every padding length. The gateway seals, the reference opens; the reference
// seals, the gateway opens; the gateway talks to itself. Outer headers,
// sequence numbers, ESN high bits in the ICV, counters, mixed-SA bursts and
// overlapping SAs during a rekey.
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <rte_ring.h>

#include "dataplane/esp/esp_outbound.h"
#include "shared/wire.h"
#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp::testing {
namespace {

using shared::EspAlgorithm;
using shared::load_be16;
using shared::load_be32;

const EspAlgorithm kAllAlgorithms[] = {
    EspAlgorithm::kAesGcm128,         EspAlgorithm::kAesGcm256,          EspAlgorithm::kAesCbc128HmacSha1,
    EspAlgorithm::kAesCbc256HmacSha1, EspAlgorithm::kAesCbc128HmacSha256, EspAlgorithm::kAesCbc256HmacSha256,
};
const OuterKind kAllOuterKinds[] = {OuterKind::kIpv4Udp, OuterKind::kIpv4Raw, OuterKind::kIpv6Udp,
                                    OuterKind::kIpv6Raw};

std::string test_name(EspAlgorithm algorithm) {
  std::string name = shared::to_string(algorithm);
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

size_t align_up(size_t value, size_t block) { return (value + block - 1) / block * block; }

// Inner packets A -> B: the sixteen sizes from the minimum (every CBC and GCM
// padding length), then 64, 512 and 1420 bytes.
std::vector<Bytes> inner_packets(bool ipv6, uint32_t seed = 0) {
  std::vector<size_t> sizes;
  size_t minimum = ipv6 ? 48 : 28;
  for (size_t s = minimum; s < minimum + 16; ++s) sizes.push_back(s);
  for (size_t s : {64, 512, 1420}) sizes.push_back(s);
  std::vector<Bytes> packets;
  for (size_t size : sizes) {
    uint32_t pattern = static_cast<uint32_t>(size) + seed;
    packets.push_back(ipv6 ? make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 5000, 6000, size,
                                           pattern)
                           : make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 5000, 6000, size,
                                           pattern));
  }
  return packets;
}

uint64_t total_bytes(const std::vector<Bytes>& packets) {
  uint64_t total = 0;
  for (const Bytes& p : packets) total += p.size();
  return total;
}

// Outer headers of a frame the gateway sent on `path` (its own view).
void expect_outer_headers(const Bytes& frame, const shared::PathDescriptor& path, const rte_mbuf* m) {
  ASSERT_GE(frame.size(), 14u + 40u);
  EXPECT_EQ(0, std::memcmp(&frame[0], kAccessNextHop.addr_bytes, 6)) << "destination MAC";
  EXPECT_EQ(0, std::memcmp(&frame[6], kAccessMac.addr_bytes, 6)) << "source MAC";
  const uint8_t* ip = &frame[14];
  const size_t ip_length = frame.size() - 14;
  const uint8_t protocol = path.udp_encapsulation ? shared::kIpProtocolUdp : shared::kIpProtocolEsp;
  size_t ip_header;
  if (path.local.is_ipv4()) {
    ip_header = 20;
    EXPECT_EQ(load_be16(&frame[12]), RTE_ETHER_TYPE_IPV4);
    EXPECT_EQ(ip[0], 0x45);
    EXPECT_EQ(load_be16(ip + 2), ip_length) << "IPv4 total length";
    EXPECT_EQ(load_be16(ip + 6), 0) << "outer DF and offset clear (RFC 4303 3.3.5: the path may fragment)";
    EXPECT_EQ(ip[8], 64) << "TTL";
    EXPECT_EQ(ip[9], protocol);
    EXPECT_TRUE(ipv4_header_checksum_ok(ip)) << "IPv4 header checksum";
    EXPECT_EQ(0, std::memcmp(ip + 12, path.local.bytes(), 4)) << "outer source";
    EXPECT_EQ(0, std::memcmp(ip + 16, path.remote.bytes(), 4)) << "outer destination";
    EXPECT_EQ(m->packet_type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV4);
  } else {
    ip_header = 40;
    EXPECT_EQ(load_be16(&frame[12]), RTE_ETHER_TYPE_IPV6);
    EXPECT_EQ(ip[0] >> 4, 6);
    EXPECT_EQ(load_be16(ip + 4), ip_length - 40) << "IPv6 payload length";
    EXPECT_EQ(ip[6], protocol);
    EXPECT_EQ(ip[7], 64) << "hop limit";
    EXPECT_EQ(0, std::memcmp(ip + 8, path.local.bytes(), 16)) << "outer source";
    EXPECT_EQ(0, std::memcmp(ip + 24, path.remote.bytes(), 16)) << "outer destination";
    EXPECT_EQ(m->packet_type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV6);
  }
  EXPECT_EQ(m->l2_len, 14u);
  EXPECT_EQ(m->l3_len, ip_header);
  EXPECT_EQ(m->l4_len, path.udp_encapsulation ? 8u : 0u);
  if (path.udp_encapsulation) {
    const uint8_t* udp = ip + ip_header;
    EXPECT_EQ(load_be16(udp), path.local_port);
    EXPECT_EQ(load_be16(udp + 2), path.remote_port);
    EXPECT_EQ(load_be16(udp + 4), ip_length - ip_header) << "UDP length";
    if (path.local.is_ipv4()) {
      EXPECT_EQ(load_be16(udp + 6), 0) << "RFC 3948 2.1: zero UDP checksum over IPv4";
    } else {
      EXPECT_NE(load_be16(udp + 6), 0) << "RFC 8200 8.1: UDP over IPv6 needs a checksum";
      EXPECT_TRUE(ipv6_l4_checksum_ok(ip)) << "IPv6 UDP checksum";
    }
  }
}

// Opens one gateway-sealed frame with the reference and checks the ESP
// header, the alignment, the trailer and the inner packet.
void expect_opens_to(const Bytes& frame, const ReferenceSa& sa, uint64_t sequence, const Bytes& inner) {
  const auto& props = shared::properties(sa.algorithm);
  Bytes esp = esp_of(frame);
  ASSERT_GE(esp.size(), 8u + props.iv_length + props.icv_length);
  EXPECT_EQ(load_be32(&esp[0]), sa.spi) << "SPI";
  EXPECT_EQ(load_be32(&esp[4]), static_cast<uint32_t>(sequence)) << "sequence number";
  size_t encrypted = esp.size() - 8 - props.iv_length - props.icv_length;
  EXPECT_EQ(encrypted, align_up(inner.size() + 2, props.block_size)) << "minimal padding (RFC 4303 2.4)";
  auto plaintext = reference_open(sa, sequence, esp);
  ASSERT_TRUE(plaintext.has_value()) << "reference rejects the ICV";
  uint8_t next_header = 0;
  auto payload = strip_trailer(*plaintext, &next_header);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(next_header, (inner[0] >> 4) == 4 ? shared::kIpProtocolIpv4 : shared::kIpProtocolIpv6);
  EXPECT_EQ(to_hex(*payload), to_hex(inner));
}

// The core-side frame of a decapsulated packet.
void expect_core_frame(const rte_mbuf* m, const Bytes& inner) {
  Bytes frame = to_bytes(m);
  ASSERT_GE(frame.size(), 14u);
  EXPECT_EQ(0, std::memcmp(&frame[0], kCoreNextHop.addr_bytes, 6)) << "destination MAC";
  EXPECT_EQ(0, std::memcmp(&frame[6], kCoreMac.addr_bytes, 6)) << "source MAC";
  bool ipv6 = (inner[0] >> 4) == 6;
  EXPECT_EQ(load_be16(&frame[12]), ipv6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
  EXPECT_EQ(m->l2_len, 14u);
  EXPECT_EQ(m->packet_type & RTE_PTYPE_L3_MASK, ipv6 ? RTE_PTYPE_L3_IPV6 : RTE_PTYPE_L3_IPV4);
  EXPECT_EQ(to_hex(inner_of(m)), to_hex(inner));
}

// ---------------------------------------------------------------------------

class EspRoundTripTest : public MbufLeakCheck,
                         public ::testing::WithParamInterface<std::tuple<EspAlgorithm, OuterKind>> {
 protected:
  void SetUp() override {
    MbufLeakCheck::SetUp();
    spec_.spi = 0x7e571001;
    spec_.algorithm = std::get<0>(GetParam());
    spec_.path = path_a_to_b(std::get<1>(GetParam()));
    // 1420-byte inner packets over IPv6 with a CBC transform exceed 1500;
    // MTU handling has its own tests (esp_drop_test.cc, fragment_test.cc).
    gateway_.ctx.access_mtu = 1600;
  }
  TunnelSpec spec_;
  Gateway gateway_;
};

TEST_P(EspRoundTripTest, GatewaySealsReferenceOpens) {
  gateway_.install(outbound_sa(spec_));
  ReferenceSa reference = ReferenceSa::from(outbound_sa(spec_));
  uint64_t sequence = 0;
  uint64_t bytes = 0;
  for (bool inner_ipv6 : {false, true}) {
    SCOPED_TRACE(inner_ipv6 ? "inner IPv6" : "inner IPv4");
    std::vector<Bytes> inner = inner_packets(inner_ipv6);
    std::vector<rte_mbuf*> sealed = gateway_.encapsulate(inner);
    ASSERT_EQ(sealed.size(), inner.size()) << gateway_.drop_summary();
    for (size_t k = 0; k < sealed.size(); ++k) {
      SCOPED_TRACE("inner size " + std::to_string(inner[k].size()));
      Bytes frame = to_bytes(sealed[k]);
      expect_outer_headers(frame, spec_.path, sealed[k]);
      expect_opens_to(frame, reference, ++sequence, inner[k]);
    }
    bytes += total_bytes(inner);
    free_all(sealed);
  }
  EspSa* sa = gateway_.outbound(spec_.spi);
  EXPECT_EQ(sa->sequence.load(), sequence);
  EXPECT_EQ(sa->counters.packets.load(), sequence);
  EXPECT_EQ(sa->counters.bytes.load(), bytes) << "per-SA bytes count inner packets";
  EXPECT_EQ(gateway_.counters.encapsulated.load(), sequence);
  EXPECT_EQ(gateway_.total_drops(), 0u) << gateway_.drop_summary();
}

TEST_P(EspRoundTripTest, ReferenceSealsGatewayOpens) {
  gateway_.install(inbound_sa(spec_));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec_));
  uint64_t sequence = 0;
  uint64_t bytes = 0;
  for (bool inner_ipv6 : {false, true}) {
    SCOPED_TRACE(inner_ipv6 ? "inner IPv6" : "inner IPv4");
    std::vector<Bytes> inner = inner_packets(inner_ipv6, 99);
    std::vector<rte_mbuf*> frames;
    for (const Bytes& packet : inner) frames.push_back(to_mbuf(sealed_frame(reference, spec_.path, ++sequence, packet)));
    std::vector<rte_mbuf*> opened = gateway_.decapsulate(frames);
    ASSERT_EQ(opened.size(), inner.size()) << gateway_.drop_summary();
    for (size_t k = 0; k < opened.size(); ++k) {
      SCOPED_TRACE("inner size " + std::to_string(inner[k].size()));
      expect_core_frame(opened[k], inner[k]);
    }
    bytes += total_bytes(inner);
    free_all(opened);
  }
  EspSa* sa = gateway_.inbound(spec_.spi);
  EXPECT_EQ(sa->counters.packets.load(), sequence);
  EXPECT_EQ(sa->counters.bytes.load(), bytes);
  EXPECT_EQ(sa->counters.new_source_packets.load(), 0u) << "every packet came from the SA's path";
  EXPECT_EQ(sa->replay.top(), sequence);
  EXPECT_EQ(gateway_.counters.decapsulated.load(), sequence);
  EXPECT_EQ(gateway_.total_drops(), 0u) << gateway_.drop_summary();
}

TEST_P(EspRoundTripTest, GatewayOpensWhatItSealed) {
  // The same gateway holds the outbound SA and, as the peer would, the
  // inbound SA with the same keys (its own tunnel: the path is mirrored).
  gateway_.install(outbound_sa(spec_));
  TunnelSpec peer = spec_;
  peer.tunnel_id = 2;
  gateway_.install(inbound_sa(peer));
  for (bool inner_ipv6 : {false, true}) {
    std::vector<Bytes> inner = inner_packets(inner_ipv6, 7);
    std::vector<rte_mbuf*> opened = gateway_.decapsulate(gateway_.encapsulate(inner, nullptr, 32));
    ASSERT_EQ(opened.size(), inner.size()) << gateway_.drop_summary();
    for (size_t k = 0; k < opened.size(); ++k) expect_core_frame(opened[k], inner[k]);
    free_all(opened);
  }
  EXPECT_EQ(gateway_.total_drops(), 0u) << gateway_.drop_summary();
}

TEST_P(EspRoundTripTest, TfcPaddingAfterTheInnerPacketIsRemoved) {
  // RFC 4303 2.7: the sender may pad the payload after the inner packet; the
  // inner header's own length ends the packet.
  gateway_.install(inbound_sa(spec_));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec_));
  std::vector<rte_mbuf*> frames;
  std::vector<Bytes> inner;
  for (bool inner_ipv6 : {false, true}) {
    Bytes packet = inner_ipv6 ? make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, 61, 5)
                              : make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 41, 5);
    Bytes padded = packet;
    padded.resize(packet.size() + 37, 0);
    frames.push_back(to_mbuf(sealed_frame(reference, spec_.path, inner.size() + 1, padded)));
    inner.push_back(packet);
  }
  std::vector<rte_mbuf*> opened = gateway_.decapsulate(frames);
  ASSERT_EQ(opened.size(), 2u) << gateway_.drop_summary();
  expect_core_frame(opened[0], inner[0]);
  expect_core_frame(opened[1], inner[1]);
  EXPECT_EQ(gateway_.inbound(spec_.spi)->counters.bytes.load(), inner[0].size() + inner[1].size());
  free_all(opened);
}

TEST_P(EspRoundTripTest, LargestInnerPacketFillsTheMtu) {
  gateway_.ctx.access_mtu = 1500;
  gateway_.install(outbound_sa(spec_));
  EspSa* sa = gateway_.outbound(spec_.spi);
  const Path* path = sa->tunnel->path.load();
  uint32_t limit = max_inner_size(*sa, *path, 1500);
  const auto& props = shared::properties(spec_.algorithm);
  for (bool inner_ipv6 : {false, true}) {
    Bytes inner = inner_ipv6 ? make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, limit, 1)
                             : make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, limit, 1);
    std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner});
    ASSERT_EQ(sealed.size(), 1u) << gateway_.drop_summary();
    size_t outer_ip = sealed[0]->pkt_len - 14;
    EXPECT_LE(outer_ip, 1500u);
    EXPECT_GT(outer_ip + props.block_size, 1500u) << "one more block would not have fitted";
    expect_opens_to(to_bytes(sealed[0]), ReferenceSa::from(outbound_sa(spec_)), sa->sequence.load(), inner);
    free_all(sealed);
  }
  EXPECT_EQ(gateway_.counters.fragments_created.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AlgorithmsAndOuterKinds, EspRoundTripTest,
                         ::testing::Combine(::testing::ValuesIn(kAllAlgorithms), ::testing::ValuesIn(kAllOuterKinds)),
                         [](const auto& info) {
                           return test_name(std::get<0>(info.param)) + "_over_" + to_string(std::get<1>(info.param));
                         });

// --- extended sequence numbers -------------------------------------------------

class EspEsnTest : public MbufLeakCheck, public ::testing::WithParamInterface<EspAlgorithm> {};

TEST_P(EspEsnTest, OutboundHighBitsAreInTheIcvNotOnTheWire) {
  Gateway gateway;
  TunnelSpec spec;
  spec.algorithm = GetParam();
  spec.esn = true;
  gateway.install(outbound_sa(spec));
  gateway.outbound(spec.spi)->sequence.store(0x2fffffffeull);
  ReferenceSa reference = ReferenceSa::from(outbound_sa(spec));
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 100, 4);
  std::vector<rte_mbuf*> sealed = gateway.encapsulate({inner, inner, inner});
  ASSERT_EQ(sealed.size(), 3u) << gateway.drop_summary();
  const uint64_t sequences[] = {0x2ffffffffull, 0x300000000ull, 0x300000001ull};
  for (size_t k = 0; k < 3; ++k) {
    SCOPED_TRACE("sequence " + std::to_string(sequences[k]));
    Bytes frame = to_bytes(sealed[k]);
    expect_opens_to(frame, reference, sequences[k], inner);
    // Only the low 32 bits travel (RFC 4303 2.2.1); with other high bits the
    // ICV must not verify, which proves they were authenticated.
    Bytes esp = esp_of(frame);
    EXPECT_FALSE(reference_open(reference, sequences[k] + (uint64_t{1} << 32), esp).has_value());
    EXPECT_FALSE(reference_open(reference, static_cast<uint32_t>(sequences[k]), esp).has_value());
  }
  free_all(sealed);
}

TEST_P(EspEsnTest, InboundInfersHighBitsAcrossTheWrap) {
  Gateway gateway;
  TunnelSpec spec;
  spec.algorithm = GetParam();
  spec.esn = true;
  gateway.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  Bytes inner = make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, 80, 4);
  // Up to 2^32 - 16, then across into the next 2^32 block (RFC 4303 A2.2),
  // then a late packet from below the wrap, still inside the window.
  const uint64_t sequences[] = {0xfffffff0ull, 0x100000005ull, 0xfffffffeull, 0x100000006ull};
  std::vector<rte_mbuf*> frames;
  for (uint64_t s : sequences) frames.push_back(to_mbuf(sealed_frame(reference, spec.path, s, inner)));
  std::vector<rte_mbuf*> opened = gateway.decapsulate(frames, 1);
  ASSERT_EQ(opened.size(), 4u) << gateway.drop_summary();
  for (rte_mbuf* m : opened) expect_core_frame(m, inner);
  free_all(opened);
  EXPECT_EQ(gateway.inbound(spec.spi)->replay.top(), 0x100000006ull);

  // Sealed with high bits the receiver cannot be at: the ICV fails.
  std::vector<rte_mbuf*> wrong = {to_mbuf(sealed_frame(reference, spec.path, 0x200000007ull, inner)),
                                  to_mbuf(sealed_frame(reference, spec.path, 0x000000007ull, inner))};
  EXPECT_TRUE(gateway.decapsulate(wrong).empty());
  EXPECT_EQ(gateway.drops(DropReason::kIcvFailure), 2u) << gateway.drop_summary();
  EXPECT_EQ(gateway.inbound(spec.spi)->replay.top(), 0x100000006ull) << "the window moves only after the ICV";
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, EspEsnTest, ::testing::ValuesIn(kAllAlgorithms),
                         [](const auto& info) { return test_name(info.param); });

// --- many SAs in one burst -------------------------------------------------------

// One tunnel per algorithm (x2 for the second outer family), each with its
// own inner destination prefixes, so one burst mixes every transform.
std::vector<TunnelSpec> mixed_tunnels() {
  std::vector<TunnelSpec> tunnels;
  for (int k = 0; k < 12; ++k) {
    TunnelSpec spec;
    spec.spi = 0x00c00100u + static_cast<uint32_t>(k);
    spec.tunnel_id = 100 + static_cast<uint32_t>(k);
    spec.algorithm = kAllAlgorithms[k % 6];
    spec.esn = k % 3 == 0;
    spec.path = path_a_to_b(kAllOuterKinds[k % 4]);
    spec.key_seed = static_cast<uint8_t>(k + 10);
    spec.destinations = {selector("10.3." + std::to_string(k) + ".0/24"),
                         selector("fd00:3:" + std::to_string(k) + "::/64")};
    tunnels.push_back(spec);
  }
  return tunnels;
}

Bytes mixed_inner(int tunnel, int index) {
  size_t size = 40 + static_cast<size_t>(index * 37 % 400);
  if (index % 2 == 0)
    return make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.3." + std::to_string(tunnel) + ".7"), 1, 2, size,
                         static_cast<uint32_t>(index));
  return make_ipv6_udp(Endpoints::inner_a_ipv6(), address("fd00:3:" + std::to_string(tunnel) + "::7"), 1, 2, size + 20,
                       static_cast<uint32_t>(index));
}

class EspMixedBurstTest : public MbufLeakCheck {};

TEST_F(EspMixedBurstTest, OneOutboundBurstMixesEveryAlgorithm) {
  Gateway gateway;
  std::vector<TunnelSpec> tunnels = mixed_tunnels();
  for (const TunnelSpec& spec : tunnels) gateway.install(outbound_sa(spec));
  std::vector<Bytes> inner;
  std::vector<int> owner;
  for (int index = 0; index < 120; ++index) {
    int tunnel = (index * 7) % 12;  // interleaved, never two in a row
    inner.push_back(mixed_inner(tunnel, index));
    owner.push_back(tunnel);
  }
  std::vector<rte_mbuf*> sealed = gateway.encapsulate(inner, nullptr, 120);
  ASSERT_EQ(sealed.size(), inner.size()) << gateway.drop_summary();
  std::map<int, uint64_t> sequence;
  for (size_t k = 0; k < sealed.size(); ++k) {
    const TunnelSpec& spec = tunnels[static_cast<size_t>(owner[k])];
    SCOPED_TRACE("packet " + std::to_string(k) + " on " + shared::to_string(spec.algorithm));
    Bytes frame = to_bytes(sealed[k]);
    expect_outer_headers(frame, spec.path, sealed[k]);
    expect_opens_to(frame, ReferenceSa::from(outbound_sa(spec)), ++sequence[owner[k]], inner[k]);
  }
  for (const TunnelSpec& spec : tunnels)
    EXPECT_EQ(gateway.outbound(spec.spi)->counters.packets.load(), 10u) << "SPI " << spec.spi;
  free_all(sealed);
}

TEST_F(EspMixedBurstTest, OneInboundBurstMixesEveryAlgorithm) {
  Gateway gateway;
  std::vector<TunnelSpec> tunnels = mixed_tunnels();
  for (const TunnelSpec& spec : tunnels) gateway.install(inbound_sa(spec));
  std::vector<Bytes> inner;
  std::vector<rte_mbuf*> frames;
  std::map<int, uint64_t> sequence;
  for (int index = 0; index < 128; ++index) {
    int tunnel = (index * 5) % 12;
    const TunnelSpec& spec = tunnels[static_cast<size_t>(tunnel)];
    Bytes packet = mixed_inner(tunnel, index);
    // Inbound the peer's inner source must fall in its selectors (10.1/16,
    // fd00:1::/48) and the destination in ours: mixed_inner already does.
    frames.push_back(to_mbuf(sealed_frame(ReferenceSa::from(inbound_sa(spec)), spec.path, ++sequence[tunnel], packet)));
    inner.push_back(packet);
  }
  std::vector<rte_mbuf*> opened = gateway.decapsulate(frames, 128);
  ASSERT_EQ(opened.size(), inner.size()) << gateway.drop_summary();
  for (size_t k = 0; k < opened.size(); ++k) {
    SCOPED_TRACE("packet " + std::to_string(k));
    expect_core_frame(opened[k], inner[k]);
  }
  uint64_t total = 0;
  for (const TunnelSpec& spec : tunnels) total += gateway.inbound(spec.spi)->counters.packets.load();
  EXPECT_EQ(total, 128u);
  free_all(opened);
}

// --- rekey: two SAs of one tunnel at once ----------------------------------------

TEST_F(EspMixedBurstTest, OldAndNewInboundSaOfOneTunnelBothDecrypt) {
  Gateway gateway;
  TunnelSpec old_sa;
  old_sa.spi = 0x11110005;
  old_sa.algorithm = EspAlgorithm::kAesCbc128HmacSha256;
  old_sa.key_seed = 1;
  TunnelSpec new_sa = old_sa;  // same tunnel, same path and selectors
  new_sa.spi = 0x22220006;
  new_sa.algorithm = EspAlgorithm::kAesGcm256;
  new_sa.key_seed = 2;
  gateway.install(inbound_sa(old_sa));
  gateway.install(inbound_sa(new_sa));
  std::vector<rte_mbuf*> frames;
  std::vector<Bytes> inner;
  for (int k = 0; k < 40; ++k) {
    const TunnelSpec& spec = k % 2 ? new_sa : old_sa;
    Bytes packet = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 60 + k, k);
    // Each SA has its own sequence space.
    frames.push_back(to_mbuf(sealed_frame(ReferenceSa::from(inbound_sa(spec)), spec.path, k / 2 + 1, packet)));
    inner.push_back(packet);
  }
  std::vector<rte_mbuf*> opened = gateway.decapsulate(frames);
  ASSERT_EQ(opened.size(), inner.size()) << gateway.drop_summary();
  for (size_t k = 0; k < opened.size(); ++k) expect_core_frame(opened[k], inner[k]);
  EXPECT_EQ(gateway.inbound(old_sa.spi)->counters.packets.load(), 20u);
  EXPECT_EQ(gateway.inbound(new_sa.spi)->counters.packets.load(), 20u);
  free_all(opened);
}

TEST_F(EspMixedBurstTest, NewestOutboundSaOfTheSameSelectorsCarriesTraffic) {
  Gateway gateway;
  TunnelSpec old_sa;
  old_sa.spi = 0x0000a001;
  TunnelSpec new_sa = old_sa;
  new_sa.spi = 0x0000b002;
  new_sa.key_seed = 9;
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 100, 1);
  gateway.install(outbound_sa(old_sa));
  gateway.install(outbound_sa(new_sa));
  std::vector<rte_mbuf*> sealed = gateway.encapsulate({inner});
  ASSERT_EQ(sealed.size(), 1u);
  expect_opens_to(to_bytes(sealed[0]), ReferenceSa::from(outbound_sa(new_sa)), 1, inner);
  free_all(sealed);
  // Deleting the new SA gives the route back to the old one.
  ASSERT_TRUE(gateway.tables->remove(new_sa.spi, shared::SaDirection::kOutbound).ok());
  sealed = gateway.encapsulate({inner});
  ASSERT_EQ(sealed.size(), 1u);
  expect_opens_to(to_bytes(sealed[0]), ReferenceSa::from(outbound_sa(old_sa)), 1, inner);
  free_all(sealed);
  gateway.tables->reclaim_all();
}

// --- outer source ------------------------------------------------------------------

TEST_F(EspMixedBurstTest, VerifiedPacketFromAnotherSourceIsForwardedAndReported) {
  // DESIGN: a verified packet from another outer address/port is forwarded
  // and counted, never used to move the SA.
  Gateway gateway;
  TunnelSpec spec;
  gateway.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 90, 1);
  shared::PathDescriptor moved_port = spec.path;
  moved_port.local_port = 61001;
  shared::PathDescriptor moved_address = spec.path;
  moved_address.local = address("203.0.113.77");
  std::vector<rte_mbuf*> frames = {to_mbuf(sealed_frame(reference, spec.path, 1, inner)),
                                   to_mbuf(sealed_frame(reference, moved_port, 2, inner)),
                                   to_mbuf(sealed_frame(reference, moved_address, 3, inner))};
  std::vector<rte_mbuf*> opened = gateway.decapsulate(frames);
  ASSERT_EQ(opened.size(), 3u) << gateway.drop_summary();
  EspSa* sa = gateway.inbound(spec.spi);
  EXPECT_EQ(sa->counters.new_source_packets.load(), 2u);
  EXPECT_EQ(sa->tunnel->path.load()->descriptor, inbound_sa(spec).path) << "the path did not move";
  free_all(opened);
}

TEST_F(EspMixedBurstTest, ANewSourceQueuesOneNoticeForTheControlLcorePerSa) {
  // The control lcore raises the new-source event from this notice at
  // once (not at its next counter sweep): one notice per SA until it has
  // looked, however many packets come from the new source.
  Gateway gateway;
  rte_ring* ring = rte_ring_create("test_new_source", 64, SOCKET_ID_ANY, RING_F_SC_DEQ);
  ASSERT_NE(ring, nullptr);
  gateway.ctx.new_source_ring = ring;
  TunnelSpec spec;
  gateway.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 90, 1);
  shared::PathDescriptor moved_port = spec.path;
  moved_port.local_port = 61001;
  std::vector<rte_mbuf*> frames = {to_mbuf(sealed_frame(reference, spec.path, 1, inner)),
                                   to_mbuf(sealed_frame(reference, moved_port, 2, inner)),
                                   to_mbuf(sealed_frame(reference, moved_port, 3, inner))};
  {
    std::vector<rte_mbuf*> opened = gateway.decapsulate(frames);
    free_all(opened);
  }
  void* notices[8];
  ASSERT_EQ(rte_ring_sc_dequeue_burst(ring, notices, 8, nullptr), 1u);
  EXPECT_EQ(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(notices[0])), spec.spi);
  // Once the control lcore has looked (it clears the flag), the next packet
  // from a new source queues a new notice; one from the path does not.
  gateway.inbound(spec.spi)->counters.new_source_queued.store(0);
  frames = {to_mbuf(sealed_frame(reference, spec.path, 4, inner))};
  {
    std::vector<rte_mbuf*> opened = gateway.decapsulate(frames);
    free_all(opened);
  }
  EXPECT_EQ(rte_ring_count(ring), 0u);
  frames = {to_mbuf(sealed_frame(reference, moved_port, 5, inner))};
  {
    std::vector<rte_mbuf*> opened = gateway.decapsulate(frames);
    free_all(opened);
  }
  EXPECT_EQ(rte_ring_count(ring), 1u);
  gateway.ctx.new_source_ring = nullptr;
  rte_ring_free(ring);
}

}  // namespace
}  // namespace segw::dp::testing
