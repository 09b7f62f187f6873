// Frame classification: every access-side class (ESP in UDP, raw ESP, IKE on
// 500, IKE on 4500 behind the non-ESP marker, NAT-T keepalive, fragments,
// other traffic, bad lengths) for IPv4 and IPv6, the core side, and what the
// worker loop then does with each class.
#include <string>
#include <vector>

#include "shared/wire.h"
#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp::testing {
namespace {

using shared::IpAddress;
using shared::load_be16;
using shared::store_be16;

struct Family {
  const char* name;
  IpAddress peer;  // sender
  IpAddress ours;  // an access address of the gateway
  IpAddress stranger;
  size_t ip_header;
};

void PrintTo(const Family& family, std::ostream* os) { *os << family.name; }

const Family kIpv4{"ipv4", Endpoints::a_ipv4(), Endpoints::b_ipv4(), IpAddress::from_ipv4(0xc6336409), 20};
const Family kIpv6{"ipv6", Endpoints::a_ipv6(), Endpoints::b_ipv6(), *IpAddress::parse("2001:db8:9::9"), 40};

AccessAddresses ours() {
  AccessAddresses a;
  std::memcpy(&a.ipv4_be[a.ipv4_count++], Endpoints::b_ipv4().bytes(), 4);
  std::memcpy(a.ipv6[a.ipv6_count++], Endpoints::b_ipv6().bytes(), 16);
  return a;
}

struct Classified {
  AccessClass kind;
  DropReason reason;  // kCount unless kind is kDrop
  uint16_t l2_len, l3_len, l4_len;
  uint32_t packet_type;
  uint32_t pkt_len;
  uint16_t segments;
};

Classified classify(rte_mbuf* m) {
  DropReason reason = DropReason::kCount;
  AccessClass kind = classify_access(m, ours(), &reason);
  Classified c{kind,
               kind == AccessClass::kDrop ? reason : DropReason::kCount,
               static_cast<uint16_t>(m->l2_len),
               static_cast<uint16_t>(m->l3_len),
               static_cast<uint16_t>(m->l4_len),
               m->packet_type,
               m->pkt_len,
               m->nb_segs};
  rte_pktmbuf_free(m);
  return c;
}

Classified classify(const Bytes& frame) {
  rte_mbuf* m = to_mbuf(frame);
  if (m == nullptr) return {AccessClass::kDrop, DropReason::kNoBuffer, 0, 0, 0, 0, 0, 0};
  return classify(m);
}

Bytes udp(const Family& f, uint16_t source_port, uint16_t destination_port, const Bytes& payload) {
  return udp_frame(f.peer, f.ours, source_port, destination_port, payload);
}

// A UDP payload that starts like ESP (non-zero SPI) for as long as it is.
Bytes esp_payload(size_t length) {
  Bytes esp(length, 0x33);
  if (length >= 4) shared::store_be32(esp.data(), 0x00001001);
  return esp;
}

// An IP frame with any protocol and payload, lengths valid.
Bytes ip_packet(const Family& f, uint8_t protocol, const Bytes& payload, const IpAddress* destination = nullptr) {
  shared::PathDescriptor path;
  path.local = f.peer;
  path.remote = destination ? *destination : f.ours;
  path.udp_encapsulation = false;
  Bytes frame = outer_frame(path, payload);  // protocol 50 ...
  frame[14 + (f.ip_header == 20 ? 9 : 6)] = protocol;  // ... rewritten
  if (f.ip_header == 20) {
    store_be16(&frame[14 + 10], 0);
    store_be16(&frame[14 + 10], static_cast<uint16_t>(~fold(ones_sum({&frame[14], 20}))));
  }
  return frame;
}

// Header checksum over the header the IHL claims, or what there is of it.
void refresh_ipv4_checksum(Bytes& frame) {
  size_t header = std::min<size_t>((frame[14] & 0x0fu) * 4u, frame.size() - 14);
  store_be16(&frame[14 + 10], 0);
  store_be16(&frame[14 + 10], static_cast<uint16_t>(~fold(ones_sum({&frame[14], header}))));
}

class AccessClassifyTest : public MbufLeakCheck, public ::testing::WithParamInterface<Family> {};

TEST_P(AccessClassifyTest, EspInUdpOn4500) {
  const Family& f = GetParam();
  for (size_t length : {8, 9, 100, 1400}) {
    Classified c = classify(udp(f, 61000, 4500, esp_payload(length)));
    EXPECT_EQ(c.kind, AccessClass::kEsp) << length << "-byte ESP";
    EXPECT_EQ(c.l2_len, 14);
    EXPECT_EQ(c.l3_len, f.ip_header);
    EXPECT_EQ(c.l4_len, 8);
    EXPECT_EQ(c.packet_type & RTE_PTYPE_L3_MASK, f.ip_header == 20 ? RTE_PTYPE_L3_IPV4 : RTE_PTYPE_L3_IPV6);
    EXPECT_EQ(c.pkt_len, 14 + f.ip_header + 8 + length);
  }
  // Any source port: NAT devices pick them (RFC 3948 2.1).
  EXPECT_EQ(classify(udp(f, 1, 4500, esp_payload(20))).kind, AccessClass::kEsp);
}

TEST_P(AccessClassifyTest, RawEspIsProtocol50) {
  const Family& f = GetParam();
  Classified c = classify(ip_packet(f, shared::kIpProtocolEsp, esp_payload(64)));
  EXPECT_EQ(c.kind, AccessClass::kEsp);
  EXPECT_EQ(c.l3_len, f.ip_header);
  EXPECT_EQ(c.l4_len, 0) << "the ESP header follows the IP header";
  // Raw ESP of any length is ESP; the inbound burst judges the length.
  EXPECT_EQ(classify(ip_packet(f, shared::kIpProtocolEsp, {})).kind, AccessClass::kEsp);
}

TEST_P(AccessClassifyTest, IkeOnPort500WhateverItCarries) {
  const Family& f = GetParam();
  for (size_t length : {0, 1, 4, 28, 500}) {
    Classified c = classify(udp(f, 500, 500, Bytes(length, 0x21)));
    EXPECT_EQ(c.kind, AccessClass::kIke) << length << "-byte payload";
    EXPECT_EQ(c.l4_len, 8);
  }
  // Port 500 never carries ESP: even a non-zero first word is IKE.
  EXPECT_EQ(classify(udp(f, 500, 500, esp_payload(40))).kind, AccessClass::kIke);
}

TEST_P(AccessClassifyTest, IkeOnPort4500BehindTheNonEspMarker) {
  const Family& f = GetParam();
  for (size_t length : {4, 5, 8, 36, 300}) {
    Bytes payload(length, 0x21);
    std::fill(payload.begin(), payload.begin() + 4, 0);  // RFC 3948 2.2 non-ESP marker
    EXPECT_EQ(classify(udp(f, 4500, 4500, payload)).kind, AccessClass::kIke) << length << "-byte payload";
  }
  // Three zero bytes and a non-zero one is an SPI, not the marker.
  Bytes almost(40, 0);
  almost[3] = 1;
  EXPECT_EQ(classify(udp(f, 4500, 4500, almost)).kind, AccessClass::kEsp);
}

TEST_P(AccessClassifyTest, NatKeepaliveIsOneByteFF) {
  const Family& f = GetParam();
  EXPECT_EQ(classify(udp(f, 61000, 4500, {0xff})).kind, AccessClass::kKeepalive);
  // On the wire the frame is padded to 60 bytes; the padding is not payload.
  Bytes padded = udp(f, 61000, 4500, {0xff});
  padded.resize(std::max<size_t>(padded.size(), 60), 0);
  Classified c = classify(padded);
  EXPECT_EQ(c.kind, AccessClass::kKeepalive);
  EXPECT_EQ(c.pkt_len, 14 + f.ip_header + 8 + 1) << "link padding trimmed";
  // Not keepalives: another single byte, 0xFF with more bytes, on port 500.
  Classified other_byte = classify(udp(f, 61000, 4500, {0xfe}));
  EXPECT_EQ(other_byte.kind, AccessClass::kDrop);
  EXPECT_EQ(other_byte.reason, DropReason::kMalformed);
  EXPECT_EQ(classify(udp(f, 61000, 4500, {0xff, 0xff})).reason, DropReason::kMalformed);
  EXPECT_EQ(classify(udp(f, 500, 500, {0xff})).kind, AccessClass::kIke);
}

TEST_P(AccessClassifyTest, Port4500PayloadTooShortForEspIsMalformed) {
  const Family& f = GetParam();
  for (size_t length : {0, 2, 3, 4, 7}) {
    Classified c = classify(udp(f, 61000, 4500, esp_payload(length)));
    EXPECT_EQ(c.kind, AccessClass::kDrop) << length;
    EXPECT_EQ(c.reason, DropReason::kMalformed) << length;
  }
}

TEST_P(AccessClassifyTest, EverythingElseIsNotForUs) {
  const Family& f = GetParam();
  struct Case {
    const char* what;
    Bytes frame;
  };
  std::vector<Case> cases = {
      {"UDP to another port", udp(f, 4500, 53, esp_payload(20))},
      {"UDP from 4500 to another port", udp(f, 4500, 4501, esp_payload(20))},
      {"TCP", ip_packet(f, shared::kIpProtocolTcp, Bytes(20, 0))},
      {"ICMP", ip_packet(f, f.ip_header == 20 ? shared::kIpProtocolIcmp : shared::kIpProtocolIcmpv6, Bytes(8, 0))},
      {"AH", ip_packet(f, 51, Bytes(24, 0))},
      {"ESP to another address", udp_frame(f.peer, f.stranger, 61000, 4500, esp_payload(40))},
      {"raw ESP to another address", ip_packet(f, shared::kIpProtocolEsp, esp_payload(40), &f.stranger)},
      {"IKE to another address", udp_frame(f.peer, f.stranger, 500, 500, Bytes(40, 0))},
  };
  for (const Case& c : cases) {
    Classified result = classify(c.frame);
    EXPECT_EQ(result.kind, AccessClass::kDrop) << c.what;
    EXPECT_EQ(result.reason, DropReason::kNotForUs) << c.what;
  }
}

TEST_P(AccessClassifyTest, MultiSegmentFrameBecomesOneSegment) {
  const Family& f = GetParam();
  rte_mbuf* chain = to_chained_mbuf(udp(f, 61000, 4500, esp_payload(600)), 90);
  ASSERT_NE(chain, nullptr);
  ASSERT_GT(chain->nb_segs, 1);
  Classified c = classify(chain);
  EXPECT_EQ(c.kind, AccessClass::kEsp);
  EXPECT_EQ(c.segments, 1) << "the ESP code works in place on one segment";
}

TEST_P(AccessClassifyTest, TruncatedFramesAreMalformed) {
  const Family& f = GetParam();
  Bytes good = udp(f, 61000, 4500, esp_payload(40));
  // Every cut that ends inside Ethernet, IP or UDP, or loses payload the IP
  // header claims.
  for (size_t length = 0; length < good.size(); ++length) {
    Classified c = classify(Bytes(good.begin(), good.begin() + static_cast<long>(length)));
    EXPECT_EQ(c.kind, AccessClass::kDrop) << "cut to " << length;
    EXPECT_EQ(c.reason, DropReason::kMalformed) << "cut to " << length;
  }
}

TEST_P(AccessClassifyTest, UdpLengthMustMatchTheIpPayload) {
  const Family& f = GetParam();
  for (int delta : {-30, -1, 1, 100}) {
    Bytes frame = udp(f, 61000, 4500, esp_payload(40));
    size_t udp_at = 14 + f.ip_header;
    store_be16(&frame[udp_at + 4], static_cast<uint16_t>(load_be16(&frame[udp_at + 4]) + delta));
    Classified c = classify(frame);
    EXPECT_EQ(c.reason, DropReason::kMalformed) << "UDP length off by " << delta;
  }
  for (uint16_t length : {0, 7}) {
    Bytes frame = udp(f, 61000, 4500, esp_payload(40));
    store_be16(&frame[14 + f.ip_header + 4], length);
    EXPECT_EQ(classify(frame).reason, DropReason::kMalformed) << "UDP length " << length;
  }
  // An IP payload too short for the UDP header.
  Bytes short_udp = ip_packet(f, shared::kIpProtocolUdp, Bytes(7, 0x11));
  EXPECT_EQ(classify(short_udp).reason, DropReason::kMalformed);
}

TEST_P(AccessClassifyTest, OtherEtherTypesAreUnsupported) {
  const Family& f = GetParam();
  Bytes frame = udp(f, 61000, 4500, esp_payload(40));
  for (uint16_t ether_type : {0x0806 /* ARP */, 0x8100 /* 802.1Q VLAN: not supported */, 0x88a8 /* QinQ */,
                              0x88cc /* LLDP */}) {
    Bytes other = frame;
    store_be16(&other[12], ether_type);
    Classified c = classify(other);
    EXPECT_EQ(c.kind, AccessClass::kDrop) << std::hex << ether_type;
    EXPECT_EQ(c.reason, DropReason::kUnsupportedEthertype) << std::hex << ether_type;
  }
  // The IP version must agree with the EtherType.
  Bytes mismatched = frame;
  store_be16(&mismatched[12], f.ip_header == 20 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
  EXPECT_EQ(classify(mismatched).reason, DropReason::kMalformed);
}

INSTANTIATE_TEST_SUITE_P(Families, AccessClassifyTest, ::testing::Values(kIpv4, kIpv6),
                         [](const auto& info) { return std::string(info.param.name); });

// --- IPv4 header ------------------------------------------------------------------

class Ipv4HeaderClassifyTest : public MbufLeakCheck {};

TEST_F(Ipv4HeaderClassifyTest, BadVersionIhlOrTotalLengthIsMalformed) {
  const Bytes good = udp(kIpv4, 61000, 4500, esp_payload(8));  // total length 36
  auto with_byte = [&](size_t offset, uint8_t value) {
    Bytes f = good;
    f[offset] = value;
    refresh_ipv4_checksum(f);
    return f;
  };
  auto with_total = [&](uint16_t total) {
    Bytes f = good;
    store_be16(&f[14 + 2], total);
    refresh_ipv4_checksum(f);
    return f;
  };
  const uint16_t total = load_be16(&good[14 + 2]);
  std::vector<std::pair<std::string, Bytes>> cases = {
      {"version 6 in an IPv4 frame", with_byte(14, 0x65)},
      {"version 0", with_byte(14, 0x05)},
      {"IHL 4", with_byte(14, 0x44)},
      {"IHL 0", with_byte(14, 0x40)},
      {"IHL 15 beyond the total length", with_byte(14, 0x4f)},
      {"total below the header", with_total(19)},
      {"total one past the frame", with_total(static_cast<uint16_t>(total + 1))},
      {"total 65535", with_total(65535)},
  };
  for (const auto& [what, frame] : cases) {
    Classified c = classify(frame);
    EXPECT_EQ(c.kind, AccessClass::kDrop) << what;
    EXPECT_EQ(c.reason, DropReason::kMalformed) << what;
  }
}

TEST_F(Ipv4HeaderClassifyTest, OptionsMoveTheUdpHeader) {
  // IHL 6: a four-byte option (NOP NOP NOP EOL) between IP and UDP.
  Bytes base = udp(kIpv4, 61000, 4500, esp_payload(40));
  Bytes frame(base.size() + 4);
  std::memcpy(frame.data(), base.data(), 34);
  const uint8_t options[] = {1, 1, 1, 0};
  std::memcpy(frame.data() + 34, options, 4);
  std::memcpy(frame.data() + 38, base.data() + 34, base.size() - 34);
  frame[14] = 0x46;
  store_be16(&frame[14 + 2], static_cast<uint16_t>(frame.size() - 14));
  refresh_ipv4_checksum(frame);
  Classified c = classify(frame);
  EXPECT_EQ(c.kind, AccessClass::kEsp);
  EXPECT_EQ(c.l3_len, 24);
  EXPECT_EQ(c.l4_len, 8);
}

TEST_F(Ipv4HeaderClassifyTest, LinkPaddingIsTrimmedToTheTotalLength) {
  Bytes frame = udp(kIpv4, 61000, 4500, esp_payload(8));
  size_t real = frame.size();
  frame.resize(real + 30, 0xee);
  Classified c = classify(frame);
  EXPECT_EQ(c.kind, AccessClass::kEsp);
  EXPECT_EQ(c.pkt_len, real);
}

// --- fragments ----------------------------------------------------------------------

class FragmentClassifyTest : public MbufLeakCheck {};

TEST_F(FragmentClassifyTest, Ipv4FragmentsGoToReassemblyBeforeAnyUdpCheck) {
  Bytes frame = udp(kIpv4, 61000, 4500, esp_payload(40));
  for (uint16_t field : {0x2000 /* MF, first */, 0x0005 /* last, offset 40 */, 0x2003 /* middle */}) {
    Bytes fragment = frame;
    store_be16(&fragment[14 + 6], field);
    refresh_ipv4_checksum(fragment);
    EXPECT_EQ(classify(fragment).kind, AccessClass::kFragment) << std::hex << field;
  }
  // DF alone is not a fragment.
  Bytes dont_fragment = frame;
  store_be16(&dont_fragment[14 + 6], 0x4000);
  refresh_ipv4_checksum(dont_fragment);
  EXPECT_EQ(classify(dont_fragment).kind, AccessClass::kEsp);
  // A later fragment (no UDP header in it) to another address is not ours.
  Bytes stranger = udp_frame(kIpv4.peer, kIpv4.stranger, 61000, 4500, esp_payload(40));
  store_be16(&stranger[14 + 6], 0x0005);
  refresh_ipv4_checksum(stranger);
  EXPECT_EQ(classify(stranger).reason, DropReason::kNotForUs);
}

TEST_F(FragmentClassifyTest, Ipv6FragmentHeader) {
  Bytes fragment_header = {shared::kIpProtocolUdp, 0, 0x00, 0x01, 0, 0, 0, 42};  // offset 0, M=1
  Bytes payload = fragment_header;
  payload.resize(8 + 48, 0x55);
  EXPECT_EQ(classify(ip_packet(kIpv6, shared::kIpProtocolIpv6Fragment, payload)).kind, AccessClass::kFragment);
  // Shorter than the fragment header itself.
  Classified short_fragment_header = classify(ip_packet(kIpv6, shared::kIpProtocolIpv6Fragment, Bytes(7, 0)));
  EXPECT_EQ(short_fragment_header.kind, AccessClass::kDrop);
  EXPECT_EQ(short_fragment_header.reason, DropReason::kMalformed);
}

TEST_F(FragmentClassifyTest, Ipv6OtherExtensionHeadersAreNotHandled) {
  // Only a fragment header directly after the fixed header is understood;
  // hop-by-hop, routing or destination options in front of UDP or ESP make
  // the packet "not for us" (documented limitation, counted, never parsed).
  for (uint8_t extension : {0 /* hop-by-hop */, 43 /* routing */, 60 /* destination options */}) {
    Bytes payload = {shared::kIpProtocolUdp, 0, 1, 4, 0, 0, 0, 0};  // 8-byte header, PadN
    Bytes udp_part = udp(kIpv6, 61000, 4500, esp_payload(40));
    payload.insert(payload.end(), udp_part.begin() + 54, udp_part.end());
    Classified c = classify(ip_packet(kIpv6, extension, payload));
    EXPECT_EQ(c.kind, AccessClass::kDrop) << int{extension};
    EXPECT_EQ(c.reason, DropReason::kNotForUs) << int{extension};
  }
}

// --- core side ----------------------------------------------------------------------

class CoreClassifyTest : public MbufLeakCheck {};

bool classify_core_frame(const Bytes& frame, DropReason* reason, uint32_t* pkt_len = nullptr,
                         uint32_t* packet_type = nullptr) {
  rte_mbuf* m = to_mbuf(frame);
  bool ok = classify_core(m, reason);
  if (ok) {
    EXPECT_EQ(m->l2_len, 14);
    if (pkt_len) *pkt_len = m->pkt_len;
    if (packet_type) *packet_type = m->packet_type;
  }
  rte_pktmbuf_free(m);
  return ok;
}

TEST_F(CoreClassifyTest, PlainIpv4AndIpv6AreAccepted) {
  Bytes v4 = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 100, 1);
  Bytes v6 = make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, 100, 1);
  DropReason reason = DropReason::kCount;
  uint32_t length = 0, type = 0;
  ASSERT_TRUE(classify_core_frame(ethernet(v4, RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop), &reason, &length, &type));
  EXPECT_EQ(type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV4);
  EXPECT_EQ(length, 114u);
  ASSERT_TRUE(classify_core_frame(ethernet(v6, RTE_ETHER_TYPE_IPV6, kCoreMac, kCoreNextHop), &reason, &length, &type));
  EXPECT_EQ(type & RTE_PTYPE_L3_MASK, RTE_PTYPE_L3_IPV6);
  // Any protocol and any address: the outbound SA lookup decides.
  Bytes icmp = v4;
  icmp[9] = shared::kIpProtocolIcmp;
  EXPECT_TRUE(classify_core_frame(ethernet(icmp, RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop), &reason));
  // Minimum-size frames carry link padding; it is trimmed.
  Bytes small = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 28, 1);
  Bytes padded = ethernet(small, RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop);
  padded.resize(60, 0);
  ASSERT_TRUE(classify_core_frame(padded, &reason, &length));
  EXPECT_EQ(length, 14u + 28);
}

TEST_F(CoreClassifyTest, NonIpAndBrokenHeadersAreRefused) {
  Bytes v4 = ethernet(make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 100, 1),
                      RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop);
  Bytes v6 = ethernet(make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, 100, 1),
                      RTE_ETHER_TYPE_IPV6, kCoreMac, kCoreNextHop);
  DropReason reason = DropReason::kCount;
  for (uint16_t ether_type : {0x0806, 0x8100}) {
    Bytes other = v4;
    store_be16(&other[12], ether_type);
    EXPECT_FALSE(classify_core_frame(other, &reason));
    EXPECT_EQ(reason, DropReason::kUnsupportedEthertype) << std::hex << ether_type;
  }
  for (size_t length : {0, 13, 14, 33}) {
    EXPECT_FALSE(classify_core_frame(Bytes(v4.begin(), v4.begin() + static_cast<long>(length)), &reason));
    EXPECT_EQ(reason, DropReason::kMalformed) << "IPv4 cut to " << length;
  }
  for (size_t length : {53, 113}) {
    EXPECT_FALSE(classify_core_frame(Bytes(v6.begin(), v6.begin() + static_cast<long>(length)), &reason));
    EXPECT_EQ(reason, DropReason::kMalformed) << "IPv6 cut to " << length;
  }
  Bytes bad_ihl = v4;
  bad_ihl[14] = 0x43;
  EXPECT_FALSE(classify_core_frame(bad_ihl, &reason));
  EXPECT_EQ(reason, DropReason::kMalformed);
  Bytes bad_version = v6;
  bad_version[14] = 0x40;
  EXPECT_FALSE(classify_core_frame(bad_version, &reason));
  EXPECT_EQ(reason, DropReason::kMalformed);
}

// --- what the worker does with each class --------------------------------------------

class WorkerClassTest : public MbufLeakCheck {};

TEST_F(WorkerClassTest, EachAccessClassTakesItsPath) {
  Gateway gateway;
  TunnelSpec spec;
  gateway.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 80, 1);
  Bytes ike_500 = udp_frame(Endpoints::a_ipv4(), Endpoints::b_ipv4(), 500, 500, Bytes(36, 0x21));
  Bytes marked(40, 0x21);
  std::fill(marked.begin(), marked.begin() + 4, 0);
  Bytes ike_4500 = udp_frame(Endpoints::a_ipv6(), Endpoints::b_ipv6(), 4500, 4500, marked);
  WorkerHarness harness(gateway);
  harness.receive_on_access({
      sealed_frame(reference, spec.path, 1, inner),                                          // ESP
      ike_500,                                                                                // IKE
      udp_frame(Endpoints::a_ipv4(), Endpoints::b_ipv4(), 61000, 4500, Bytes{0xff}),         // keepalive
      ike_4500,                                                                               // IKE
      udp_frame(Endpoints::a_ipv4(), Endpoints::b_ipv4(), 1, 53, Bytes(20, 0)),              // not for us
      Bytes(10, 0),                                                                           // malformed
  });
  std::vector<rte_mbuf*> decapsulated = harness.sent_to_core();
  ASSERT_EQ(decapsulated.size(), 1u);
  EXPECT_EQ(inner_of(decapsulated[0]), inner);
  free_all(decapsulated);
  // IKE reaches the control plane untouched: the whole frame, marker included.
  std::vector<rte_mbuf*> punted = harness.punted();
  ASSERT_EQ(punted.size(), 2u);
  EXPECT_EQ(to_bytes(punted[0]), ike_500);
  EXPECT_EQ(to_bytes(punted[1]), ike_4500);
  EXPECT_EQ(punted[1]->l4_len, 8);
  free_all(punted);
  const WorkerCounters& c = harness.counters();
  EXPECT_EQ(c.ike_punted.load(), 2u);
  EXPECT_EQ(c.decapsulated.load(), 1u);
  EXPECT_EQ(c.access_rx_packets.load(), 6u);
  EXPECT_EQ(harness.drops(DropReason::kNatKeepalive), 1u);
  EXPECT_EQ(harness.drops(DropReason::kNotForUs), 1u);
  EXPECT_EQ(harness.drops(DropReason::kMalformed), 1u);
  EXPECT_EQ(drop_summary(c), "malformed=1 not_for_us=1 nat_keepalive=1");
  EXPECT_TRUE(harness.sent_to_access().empty());
}

TEST_F(WorkerClassTest, CoreFramesAreEncapsulatedOrCounted) {
  Gateway gateway;
  TunnelSpec spec;
  gateway.install(outbound_sa(spec));
  Bytes inner = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 80, 1);
  Bytes arp = ethernet(Bytes(28, 0), 0x0806, kCoreMac, kCoreNextHop);
  WorkerHarness harness(gateway);
  harness.receive_on_core({ethernet(inner, RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop), arp});
  std::vector<rte_mbuf*> sealed = harness.sent_to_access();
  ASSERT_EQ(sealed.size(), 1u);
  auto opened = reference_open(ReferenceSa::from(outbound_sa(spec)), 1, esp_of(to_bytes(sealed[0])));
  ASSERT_TRUE(opened.has_value());
  uint8_t next_header = 0;
  auto payload = strip_trailer(*opened, &next_header);
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(*payload, inner);
  free_all(sealed);
  EXPECT_EQ(harness.counters().access_tx_packets.load(), 1u);
  EXPECT_EQ(drop_summary(harness.counters()), "unsupported_ethertype=1");
}

}  // namespace
}  // namespace segw::dp::testing
