// Fragmentation: inner IPv4 packets too big for the access MTU are split
// before encryption (each piece a valid IPv4 fragment, all of them
// reassembling to the original); outer fragments of ESP (in UDP or raw) are
// reassembled by the worker before decapsulation, in any order; duplicates,
// overlaps, too many pieces, timeouts and a full flow table end in counted
// drops, and no mbuf stays behind.
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "dataplane/esp/esp_outbound.h"
#include "dataplane/frag/fragment.h"
#include "shared/wire.h"
#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp::testing {
namespace {

using shared::EspAlgorithm;
using shared::load_be16;
using shared::store_be16;

// --- inner fragmentation (before encryption) ----------------------------------

// Reassembles IPv4 fragments by offset (RFC 791 3.2) independently of the
// code under test; checks each one on the way.
struct Reassembled {
  Bytes header;   // of the first fragment, length/flags/checksum as received
  Bytes payload;  // every fragment's data at its offset
  bool complete = false;
};

Reassembled reassemble_ipv4(const std::vector<Bytes>& fragments, uint32_t max_size) {
  Reassembled r;
  std::map<size_t, Bytes> pieces;
  size_t end = 0;
  for (size_t k = 0; k < fragments.size(); ++k) {
    SCOPED_TRACE("fragment " + std::to_string(k));
    const Bytes& f = fragments[k];
    EXPECT_GE(f.size(), 20u);
    if (f.size() < 20) continue;
    size_t header = (f[0] & 0x0fu) * 4u;
    EXPECT_EQ(f[0] >> 4, 4);
    EXPECT_TRUE(ipv4_header_checksum_ok(f.data())) << "header checksum";
    EXPECT_EQ(load_be16(&f[2]), f.size()) << "total length";
    EXPECT_LE(f.size(), max_size) << "fits the space the MTU leaves";
    uint16_t field = load_be16(&f[6]);
    EXPECT_EQ(field & 0x8000, 0) << "reserved flag";
    bool more = field & 0x2000;
    size_t offset = (field & 0x1fffu) * 8u;
    size_t length = f.size() - header;
    if (more) {
      EXPECT_EQ(length % 8, 0u) << "all but the last carry a multiple of 8 bytes";
    }
    if (offset == 0) r.header.assign(f.begin(), f.begin() + static_cast<long>(header));
    pieces[offset] = Bytes(f.begin() + static_cast<long>(header), f.end());
    if (!more) end = offset + length;
  }
  size_t expected_offset = 0;
  for (const auto& [offset, data] : pieces) {
    EXPECT_EQ(offset, expected_offset) << "no gap, no overlap";
    r.payload.insert(r.payload.end(), data.begin(), data.end());
    expected_offset = offset + data.size();
  }
  r.complete = end != 0 && expected_offset == end && !r.header.empty();
  return r;
}

// Opens the ESP packets the gateway sent and returns the inner packets.
std::vector<Bytes> open_all(const std::vector<rte_mbuf*>& sealed, const ReferenceSa& sa, uint64_t first_sequence) {
  std::vector<Bytes> inner;
  for (size_t k = 0; k < sealed.size(); ++k) {
    Bytes esp = esp_of(to_bytes(sealed[k]));
    EXPECT_EQ(shared::load_be32(&esp[4]), first_sequence + k) << "one sequence number per fragment";
    auto plaintext = reference_open(sa, first_sequence + k, esp);
    EXPECT_TRUE(plaintext.has_value()) << "fragment " << k << " does not verify";
    if (!plaintext) continue;
    uint8_t next_header = 0;
    auto payload = strip_trailer(*plaintext, &next_header);
    EXPECT_EQ(next_header, shared::kIpProtocolIpv4);
    if (payload) inner.push_back(*payload);
  }
  return inner;
}

class InnerFragmentationTest : public MbufLeakCheck,
                               public ::testing::WithParamInterface<std::tuple<EspAlgorithm, OuterKind>> {
 protected:
  void SetUp() override {
    MbufLeakCheck::SetUp();
    spec_.algorithm = std::get<0>(GetParam());
    spec_.path = path_a_to_b(std::get<1>(GetParam()));
    gateway_.install(outbound_sa(spec_));
    reference_ = ReferenceSa::from(outbound_sa(spec_));
    EspSa* sa = gateway_.outbound(spec_.spi);
    limit_ = max_inner_size(*sa, *sa->tunnel->path.load(), gateway_.ctx.access_mtu);
  }
  TunnelSpec spec_;
  Gateway gateway_;
  ReferenceSa reference_;
  uint32_t limit_ = 0;
};

TEST_P(InnerFragmentationTest, PiecesAreValidAndReassembleToTheOriginal) {
  uint64_t sequence = 1;
  uint64_t created = 0;
  for (size_t size : {size_t{limit_} + 1, size_t{1480}, size_t{2000}}) {
    SCOPED_TRACE("inner " + std::to_string(size) + " bytes, limit " + std::to_string(limit_));
    Bytes original = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 7, 8, size,
                                   static_cast<uint32_t>(size));
    std::vector<rte_mbuf*> sealed = gateway_.encapsulate({original});
    size_t chunk = (limit_ - 20) & ~size_t{7};
    size_t expected = (size - 20 + chunk - 1) / chunk;
    ASSERT_EQ(sealed.size(), expected) << gateway_.drop_summary();
    for (rte_mbuf* m : sealed) EXPECT_LE(m->pkt_len - 14, gateway_.ctx.access_mtu) << "outer packet fits the MTU";
    std::vector<Bytes> pieces = open_all(sealed, reference_, sequence);
    free_all(sealed);
    sequence += expected;
    created += expected;
    Reassembled r = reassemble_ipv4(pieces, limit_);
    ASSERT_TRUE(r.complete);
    EXPECT_EQ(to_hex(r.payload), to_hex({original.data() + 20, original.size() - 20}));
    // Identification, TTL, protocol and addresses are the original's.
    for (const Bytes& piece : pieces) {
      EXPECT_EQ(load_be16(&piece[4]), load_be16(&original[4])) << "identification";
      EXPECT_EQ(piece[8], original[8]) << "TTL";
      EXPECT_EQ(piece[9], original[9]) << "protocol";
      EXPECT_EQ(0, std::memcmp(&piece[12], &original[12], 8)) << "addresses";
    }
  }
  EXPECT_EQ(gateway_.counters.fragments_created.load(), created);
  EXPECT_EQ(gateway_.outbound(spec_.spi)->counters.packets.load(), created) << "each fragment is one ESP packet";
  EXPECT_EQ(gateway_.total_drops(), 0u) << gateway_.drop_summary();
}

TEST_P(InnerFragmentationTest, FragmentOfAFragmentKeepsItsPlace) {
  // A packet that is already the middle piece of a datagram (offset 800,
  // more to come) is split again; every piece stays a middle piece.
  Bytes original = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 7, 8, 1800, 3);
  store_be16(&original[6], 0x2000 | 100);
  original[10] = original[11] = 0;
  store_be16(&original[10], static_cast<uint16_t>(~fold(ones_sum({original.data(), 20}))));
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({original});
  ASSERT_EQ(sealed.size(), 2u) << gateway_.drop_summary();
  std::vector<Bytes> pieces = open_all(sealed, reference_, 1);
  free_all(sealed);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(load_be16(&pieces[0][6]), 0x2000 | 100);
  size_t first_data = pieces[0].size() - 20;
  EXPECT_EQ(load_be16(&pieces[1][6]), 0x2000 | (100 + first_data / 8)) << "still more fragments after it";
  Bytes data = Bytes(pieces[0].begin() + 20, pieces[0].end());
  data.insert(data.end(), pieces[1].begin() + 20, pieces[1].end());
  EXPECT_EQ(data, Bytes(original.begin() + 20, original.end()));
}

TEST_P(InnerFragmentationTest, HeaderOptionsTravelInEveryPiece) {
  // IHL 7: eight option bytes (seven RFC 791 no-operation options and an
  // end-of-options) that every fragment carries.
  Bytes plain = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 7, 8, 1700, 4);
  Bytes original(plain.size() + 8);
  std::memcpy(original.data(), plain.data(), 20);
  std::memset(original.data() + 20, 1, 7);  // NOP x7
  original[27] = 0;                           // end of options
  std::memcpy(original.data() + 28, plain.data() + 20, plain.size() - 20);
  original[0] = 0x47;
  store_be16(&original[2], static_cast<uint16_t>(original.size()));
  original[10] = original[11] = 0;
  store_be16(&original[10], static_cast<uint16_t>(~fold(ones_sum({original.data(), 28}))));
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({original});
  ASSERT_GE(sealed.size(), 2u) << gateway_.drop_summary();
  std::vector<Bytes> pieces = open_all(sealed, reference_, 1);
  free_all(sealed);
  Reassembled r = reassemble_ipv4(pieces, limit_);
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.payload, Bytes(original.begin() + 28, original.end()));
  for (const Bytes& piece : pieces) EXPECT_EQ(piece[0], 0x47);
}

INSTANTIATE_TEST_SUITE_P(
    SomeAlgorithmsEveryOuterKind, InnerFragmentationTest,
    ::testing::Combine(::testing::Values(EspAlgorithm::kAesGcm128, EspAlgorithm::kAesCbc256HmacSha256),
                       ::testing::Values(OuterKind::kIpv4Udp, OuterKind::kIpv4Raw, OuterKind::kIpv6Udp,
                                         OuterKind::kIpv6Raw)),
    [](const auto& info) {
      std::string name = shared::to_string(std::get<0>(info.param));
      for (char& c : name)
        if (c == '-') c = '_';
      return name + "_over_" + to_string(std::get<1>(info.param));
    });

class FragmentIpv4Test : public MbufLeakCheck {};

TEST_F(FragmentIpv4Test, RefusesWhenTooManyPiecesWouldBeNeededAndTakesNoMbuf) {
  Bytes frame = ethernet(make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 980, 1),
                         RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop);
  rte_mbuf* m = to_mbuf(frame);
  m->l2_len = 14;
  m->packet_type = RTE_PTYPE_L3_IPV4;
  rte_mbuf* pieces[8];
  unsigned in_use = rte_mempool_in_use_count(packet_pool());
  // 960 data bytes in 200-byte pieces (176 data each): six needed.
  EXPECT_EQ(fragment_ipv4(m, 200, packet_pool(), pieces, 5), 0);
  EXPECT_EQ(rte_mempool_in_use_count(packet_pool()), in_use);
  ASSERT_EQ(fragment_ipv4(m, 200, packet_pool(), pieces, 6), 6);
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(pieces[k]->l2_len, 14);
    EXPECT_EQ(0, std::memcmp(rte_pktmbuf_mtod(pieces[k], uint8_t*), frame.data(), 14)) << "same Ethernet header";
    rte_pktmbuf_free(pieces[k]);
  }
  // Exactly divisible: six pieces of 160 data bytes, the last one full.
  ASSERT_EQ(fragment_ipv4(m, 180, packet_pool(), pieces, 8), 6);
  EXPECT_EQ(pieces[5]->pkt_len, 14u + 180);
  for (int k = 0; k < 6; ++k) rte_pktmbuf_free(pieces[k]);
  rte_pktmbuf_free(m);
}

// --- outer reassembly (worker) ---------------------------------------------------

// One fragment of the IP packet in `frame`: its data [offset, offset + length)
// with "more fragments" as given. IPv6 gets a fragment header (RFC 8200 4.5).
Bytes outer_piece(const Bytes& frame, size_t offset, size_t length, bool more, uint32_t identification) {
  bool ipv6 = load_be16(&frame[12]) == RTE_ETHER_TYPE_IPV6;
  size_t header = ipv6 ? 40 : 20;
  const uint8_t* data = frame.data() + 14 + header;
  Bytes piece(frame.begin(), frame.begin() + static_cast<long>(14 + header));
  uint8_t* ip = &piece[14];
  if (!ipv6) {
    store_be16(ip + 2, static_cast<uint16_t>(header + length));
    store_be16(ip + 4, static_cast<uint16_t>(identification));
    store_be16(ip + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | offset / 8));
    store_be16(ip + 10, 0);
    store_be16(ip + 10, static_cast<uint16_t>(~fold(ones_sum({ip, 20}))));
  } else {
    uint8_t fragment_header[8] = {ip[6], 0};
    store_be16(fragment_header + 2, static_cast<uint16_t>(offset | (more ? 1 : 0)));
    shared::store_be32(fragment_header + 4, identification);
    ip[6] = shared::kIpProtocolIpv6Fragment;
    store_be16(ip + 4, static_cast<uint16_t>(8 + length));
    piece.insert(piece.end(), fragment_header, fragment_header + 8);
  }
  piece.insert(piece.end(), data + offset, data + offset + length);
  return piece;
}

// The whole IP packet of `frame` in pieces of `chunk` data bytes.
std::vector<Bytes> outer_fragments(const Bytes& frame, size_t chunk, uint32_t identification) {
  bool ipv6 = load_be16(&frame[12]) == RTE_ETHER_TYPE_IPV6;
  size_t data_length = frame.size() - 14 - (ipv6 ? 40 : 20);
  std::vector<Bytes> pieces;
  for (size_t offset = 0; offset < data_length; offset += chunk) {
    size_t length = std::min(chunk, data_length - offset);
    pieces.push_back(outer_piece(frame, offset, length, offset + length < data_length, identification));
  }
  return pieces;
}

class OuterReassemblyTest : public MbufLeakCheck, public ::testing::WithParamInterface<OuterKind> {
 protected:
  void SetUp() override {
    MbufLeakCheck::SetUp();
    spec_.path = path_a_to_b(GetParam());
    gateway_.install(inbound_sa(spec_));
    reference_ = ReferenceSa::from(inbound_sa(spec_));
  }
  Bytes inner(uint32_t seed, size_t size = 1300) {
    return make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, size, seed);
  }
  Bytes sealed(uint64_t sequence, const Bytes& inner_packet) {
    return sealed_frame(reference_, spec_.path, sequence, inner_packet);
  }
  // Inner packets that came out of the core port, freed.
  static std::vector<Bytes> delivered(WorkerHarness& harness) {
    std::vector<rte_mbuf*> out = harness.sent_to_core();
    std::vector<Bytes> inner;
    for (rte_mbuf* m : out) inner.push_back(inner_of(m));
    free_all(out);
    return inner;
  }
  static void expect_no_drops(const WorkerHarness& harness) {
    EXPECT_EQ(drop_summary(harness.counters()), "");
  }
  TunnelSpec spec_;
  Gateway gateway_;
  ReferenceSa reference_;
};

TEST_P(OuterReassemblyTest, InOrder) {
  WorkerHarness harness(gateway_);
  Bytes packet = inner(1);
  harness.receive_on_access(outer_fragments(sealed(1, packet), 512, 77));
  EXPECT_EQ(delivered(harness), std::vector<Bytes>{packet});
  EXPECT_EQ(harness.counters().fragments_reassembled.load(), 1u);
  EXPECT_EQ(harness.counters().decapsulated.load(), 1u);
  expect_no_drops(harness);
}

TEST_P(OuterReassemblyTest, AnyOrder) {
  WorkerHarness harness(gateway_);
  std::vector<Bytes> expected;
  uint64_t sequence = 0;
  // Reversed, last-first-then-rest, middle first, and two datagrams interleaved.
  const std::vector<std::vector<int>> orders = {{3, 2, 1, 0}, {3, 0, 1, 2}, {1, 2, 0, 3}, {2, 0, 3, 1}};
  for (const auto& order : orders) {
    Bytes packet = inner(static_cast<uint32_t>(++sequence));
    std::vector<Bytes> pieces = outer_fragments(sealed(sequence, packet), 400, static_cast<uint32_t>(1000 + sequence));
    ASSERT_EQ(pieces.size(), 4u);
    std::vector<Bytes> shuffled;
    for (int k : order) shuffled.push_back(pieces[static_cast<size_t>(k)]);
    harness.receive_on_access(shuffled);
    expected.push_back(packet);
  }
  Bytes first = inner(50), second = inner(51);
  std::vector<Bytes> a = outer_fragments(sealed(++sequence, first), 400, 5000);
  std::vector<Bytes> b = outer_fragments(sealed(++sequence, second), 400, 5001);
  harness.receive_on_access({a[0], b[3], a[2], b[0], a[1], b[1], b[2], a[3]});
  expected.push_back(second);  // b completes first
  expected.push_back(first);
  EXPECT_EQ(delivered(harness), expected);
  EXPECT_EQ(harness.counters().fragments_reassembled.load(), 6u);
  expect_no_drops(harness);
}

TEST_P(OuterReassemblyTest, DuplicateFragmentDropsTheDatagramCounted) {
  WorkerHarness harness(gateway_);
  std::vector<Bytes> pieces = outer_fragments(sealed(1, inner(1)), 512, 88);
  ASSERT_EQ(pieces.size(), 3u);
  harness.receive_on_access({pieces[0], pieces[1], pieces[1], pieces[2]});
  EXPECT_TRUE(delivered(harness).empty());
  // Every fragment given up on is counted.
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=4");
}

TEST_P(OuterReassemblyTest, OverlappingFragmentsDropTheDatagramCounted) {
  WorkerHarness harness(gateway_);
  Bytes frame = sealed(1, inner(1));
  size_t data = frame.size() - 14 - (load_be16(&frame[12]) == RTE_ETHER_TYPE_IPV6 ? 40 : 20);
  harness.receive_on_access({outer_piece(frame, 0, 808, true, 99), outer_piece(frame, 800, data - 800, false, 99)});
  EXPECT_TRUE(delivered(harness).empty());
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=2");
}

// Timeouts are short to keep the test fast and the sleeps well past them so
// a loaded machine does not turn "expired" into "not yet".
constexpr uint32_t kShortTimeoutMs = 100;
constexpr auto kPastTheTimeout = std::chrono::milliseconds(160);

TEST_P(OuterReassemblyTest, IncompleteDatagramTimesOutCounted) {
  WorkerHarnessOptions options;
  options.reassembly_timeout_ms = kShortTimeoutMs;
  WorkerHarness harness(gateway_, options);
  std::vector<Bytes> pieces = outer_fragments(sealed(1, inner(1)), 400, 11);
  ASSERT_EQ(pieces.size(), 4u);
  harness.receive_on_access({pieces[0], pieces[1]});
  EXPECT_EQ(drop_summary(harness.counters()), "") << "waiting, not dropped yet";
  std::this_thread::sleep_for(kPastTheTimeout);
  harness.poll();
  // Given back once the timeout passed, though nothing else arrived.
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=2");
  // The rest, late: a new, incomplete datagram, in turn timed out.
  harness.receive_on_access({pieces[2], pieces[3]});
  EXPECT_TRUE(delivered(harness).empty());
  std::this_thread::sleep_for(kPastTheTimeout);
  harness.poll();
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=4");
}

TEST_P(OuterReassemblyTest, LateFragmentReplacesATimedOutDatagram) {
  WorkerHarnessOptions options;
  options.reassembly_timeout_ms = kShortTimeoutMs;
  WorkerHarness harness(gateway_, options);
  Bytes packet = inner(1);
  std::vector<Bytes> pieces = outer_fragments(sealed(1, packet), 400, 12);
  harness.receive_on_access({pieces[0]});
  std::this_thread::sleep_for(kPastTheTimeout);
  // The same datagram again, complete: the stale piece is counted, the new
  // copy reassembles.
  harness.receive_on_access(pieces);
  EXPECT_EQ(delivered(harness), std::vector<Bytes>{packet});
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=1");
}

TEST_P(OuterReassemblyTest, MoreFragmentsThanTheLibraryHoldsAreCounted) {
  // rte_ip_frag keeps RTE_LIBRTE_IP_FRAG_MAX_FRAG (8) pieces per datagram.
  WorkerHarnessOptions options;
  options.reassembly_timeout_ms = kShortTimeoutMs;
  WorkerHarness harness(gateway_, options);
  std::vector<Bytes> pieces = outer_fragments(sealed(1, inner(1, 1000)), 112, 13);
  ASSERT_GT(pieces.size(), 8u);
  harness.receive_on_access(pieces);
  EXPECT_TRUE(delivered(harness).empty());
  std::this_thread::sleep_for(kPastTheTimeout);
  harness.poll();
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=" + std::to_string(pieces.size()));
}

TEST_P(OuterReassemblyTest, FullFlowTableCountsWhatItCannotHold) {
  WorkerHarnessOptions options;
  options.reassembly_flows = 16;  // the smallest table: 16 buckets of 8
  options.reassembly_timeout_ms = 2 * kShortTimeoutMs;
  WorkerHarness harness(gateway_, options);
  std::vector<Bytes> first_pieces;
  Bytes frame = sealed(1, inner(1));
  const size_t datagrams = 300;
  for (uint32_t id = 0; id < datagrams; ++id) first_pieces.push_back(outer_fragments(frame, 512, 20000 + id)[0]);
  harness.receive_on_access(first_pieces);
  uint64_t refused = harness.drops(DropReason::kFragmentError);
  EXPECT_GE(refused, datagrams - 128) << "at most 128 datagrams fit";
  EXPECT_LT(refused, datagrams);
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=" + std::to_string(refused));
  // Once they time out the table takes new datagrams again.
  std::this_thread::sleep_for(2 * kPastTheTimeout);
  harness.poll();
  EXPECT_EQ(harness.drops(DropReason::kFragmentError), datagrams) << "every first piece counted exactly once";
  Bytes packet = inner(2);
  harness.receive_on_access(outer_fragments(sealed(2, packet), 512, 30000));
  EXPECT_EQ(delivered(harness), std::vector<Bytes>{packet});
}

TEST_P(OuterReassemblyTest, ReassembledPacketBiggerThanABufferIsCounted) {
  WorkerHarness harness(gateway_);
  // 3000 bytes inside: reassembles into a chain the ESP code cannot take.
  std::vector<Bytes> pieces = outer_fragments(sealed(1, inner(1, 3000)), 1200, 14);
  harness.receive_on_access(pieces);
  EXPECT_TRUE(delivered(harness).empty());
  EXPECT_EQ(harness.counters().fragments_reassembled.load(), 1u);
  EXPECT_EQ(drop_summary(harness.counters()), "fragment_error=1");
}

TEST_P(OuterReassemblyTest, FragmentsForAnotherAddressAreNotReassembled) {
  WorkerHarness harness(gateway_);
  Bytes frame = sealed(1, inner(1));
  // Rewrite the destination to an address the gateway does not own.
  bool ipv6 = load_be16(&frame[12]) == RTE_ETHER_TYPE_IPV6;
  frame[14 + (ipv6 ? 39 : 19)] ^= 0x01;
  std::vector<Bytes> pieces = outer_fragments(frame, 512, 15);
  harness.receive_on_access(pieces);
  EXPECT_TRUE(delivered(harness).empty());
  EXPECT_EQ(drop_summary(harness.counters()), "not_for_us=" + std::to_string(pieces.size()));
  EXPECT_EQ(harness.counters().fragments_reassembled.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(OuterKinds, OuterReassemblyTest,
                         ::testing::Values(OuterKind::kIpv4Udp, OuterKind::kIpv4Raw, OuterKind::kIpv6Udp,
                                           OuterKind::kIpv6Raw),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace segw::dp::testing
