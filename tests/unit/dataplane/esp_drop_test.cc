// Hostile and malformed input: each packet the gateway refuses is counted
// under exactly its named drop reason (worker and, where known, SA), nothing
// else moves, and every mbuf goes back to the pool (MbufLeakCheck). Inbound
// frames go through the real worker loop (classification included) via
// WorkerHarness; outbound cases drive esp_outbound_burst directly where they
// need hand-made mbufs.
#include <rte_mempool.h>

#include <string>
#include <tuple>
#include <vector>

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

std::string test_name(EspAlgorithm algorithm) {
  std::string name = shared::to_string(algorithm);
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

uint64_t drop_count(const std::atomic<uint64_t> (&drops)[kDropReasonCount], DropReason reason) {
  return drops[static_cast<int>(reason)].load(std::memory_order_relaxed);
}
uint64_t drop_total(const std::atomic<uint64_t> (&drops)[kDropReasonCount]) {
  uint64_t total = 0;
  for (const auto& d : drops) total += d.load(std::memory_order_relaxed);
  return total;
}

// Exactly `count` drops, all of them `reason`.
void expect_only_drops(const WorkerCounters& counters, DropReason reason, uint64_t count) {
  EXPECT_EQ(drop_count(counters.drops, reason), count) << "worker drops: " << drop_summary(counters);
  EXPECT_EQ(drop_total(counters.drops), count) << "worker drops: " << drop_summary(counters);
}
void expect_only_sa_drops(const EspSa* sa, DropReason reason, uint64_t count) {
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(drop_count(sa->counters.drops, reason), count) << "SA drops: " << drop_summary(sa->counters);
  EXPECT_EQ(drop_total(sa->counters.drops), count) << "SA drops: " << drop_summary(sa->counters);
}

Bytes inner_ipv4(size_t size = 100, uint32_t seed = 1) {
  return make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 5000, 6000, size, seed);
}
Bytes inner_ipv6(size_t size = 100, uint32_t seed = 1) {
  return make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 5000, 6000, size, seed);
}

// inner || 1, 2, ..., pad || pad length || next header with `pad` bytes of
// padding (the caller keeps the total aligned).
Bytes plaintext_with_pad(const Bytes& inner, size_t pad, uint8_t next_header) {
  Bytes p = inner;
  for (size_t i = 0; i < pad; ++i) p.push_back(static_cast<uint8_t>(i + 1));
  p.push_back(static_cast<uint8_t>(pad));
  p.push_back(next_header);
  return p;
}

// An access frame carrying `plaintext` (trailer included, aligned) with a
// valid ICV: whatever is wrong with it is wrong inside the encryption.
Bytes frame_of_plaintext(const ReferenceSa& sa, const shared::PathDescriptor& path, uint64_t sequence,
                         const Bytes& plaintext) {
  return outer_frame(path, reference_seal(sa, sequence, pattern_iv(sa, sequence), plaintext));
}

// Rewrites the IP (and UDP) lengths of an access frame after its ESP part was
// cut to `esp_length` bytes, so only the ESP layer is short.
Bytes cut_esp(const Bytes& frame, const shared::PathDescriptor& path, size_t esp_length) {
  size_t ip_header = path.local.is_ipv4() ? 20 : 40;
  size_t esp_offset = 14 + ip_header + (path.udp_encapsulation ? 8 : 0);
  Bytes cut(frame.begin(), frame.begin() + static_cast<long>(esp_offset + esp_length));
  uint8_t* ip = &cut[14];
  size_t ip_length = cut.size() - 14;
  if (path.local.is_ipv4()) {
    shared::store_be16(ip + 2, static_cast<uint16_t>(ip_length));
    shared::store_be16(ip + 10, 0);
    shared::store_be16(ip + 10, static_cast<uint16_t>(~fold(ones_sum({ip, 20}))));
  } else {
    shared::store_be16(ip + 4, static_cast<uint16_t>(ip_length - 40));
  }
  if (path.udp_encapsulation) {
    uint8_t* udp = ip + ip_header;
    const uint32_t udp_length = static_cast<uint32_t>(ip_length - ip_header);
    shared::store_be16(udp + 4, static_cast<uint16_t>(udp_length));
    shared::store_be16(udp + 6, 0);  // RFC 3948 2.1 over IPv4
    if (!path.local.is_ipv4()) {
      // RFC 8200 8.1 pseudo-header: addresses, length, next header.
      uint32_t sum = ones_sum({ip + 8, 32}) + (udp_length >> 16) + (udp_length & 0xffff) + shared::kIpProtocolUdp;
      uint16_t checksum = static_cast<uint16_t>(~fold(ones_sum({udp, udp_length}, sum)));
      shared::store_be16(udp + 6, checksum == 0 ? 0xffff : checksum);
    }
  }
  return cut;
}

// ---------------------------------------------------------------------------
// Inbound, per algorithm.

class InboundDropTest : public MbufLeakCheck, public ::testing::WithParamInterface<EspAlgorithm> {
 protected:
  void SetUp() override {
    MbufLeakCheck::SetUp();
    spec_.spi = 0x5eed0042;
    spec_.algorithm = GetParam();
    spec_.path = path_a_to_b(OuterKind::kIpv4Udp);
    gateway_.install(inbound_sa(spec_));
    reference_ = ReferenceSa::from(inbound_sa(spec_));
    block_ = shared::properties(spec_.algorithm).block_size;
  }
  EspSa* sa() { return gateway_.inbound(spec_.spi); }
  // Runs `frames` through a fresh worker; returns how many reached the core.
  size_t deliver(const std::vector<Bytes>& frames, std::vector<Bytes>* delivered = nullptr) {
    WorkerHarness harness(gateway_);
    harness.receive_on_access(frames);
    std::vector<rte_mbuf*> out = harness.sent_to_core();
    if (delivered)
      for (rte_mbuf* m : out) delivered->push_back(inner_of(m));
    size_t n = out.size();
    free_all(out);
    last_summary_ = drop_summary(harness.counters());
    for (int i = 0; i < kDropReasonCount; ++i)
      worker_drops_[i] = harness.counters().drops[i].load(std::memory_order_relaxed);
    return n;
  }
  void expect_only(DropReason reason, uint64_t count, bool on_sa = true) {
    uint64_t total = 0;
    for (uint64_t d : worker_drops_) total += d;
    EXPECT_EQ(worker_drops_[static_cast<int>(reason)], count) << "worker drops: " << last_summary_;
    EXPECT_EQ(total, count) << "worker drops: " << last_summary_;
    if (on_sa) expect_only_sa_drops(sa(), reason, count);
    else expect_only_sa_drops(sa(), reason, 0);
  }
  // Padding that keeps inner || padding || trailer aligned, at least `at_least`.
  size_t pad_for(size_t inner_size, size_t at_least) const {
    size_t pad = at_least;
    while ((inner_size + pad + 2) % block_ != 0) ++pad;
    return pad;
  }

  TunnelSpec spec_;
  Gateway gateway_;
  ReferenceSa reference_;
  unsigned block_ = 0;
  uint64_t worker_drops_[kDropReasonCount] = {};
  std::string last_summary_;
};

TEST_P(InboundDropTest, UnknownSpi) {
  Bytes inner = inner_ipv4();
  ReferenceSa other = reference_;
  std::vector<Bytes> frames;
  // No SA at this index at all.
  other.spi = 0x5eed0043;
  frames.push_back(sealed_frame(other, spec_.path, 1, inner));
  // Same table index (low bits), different random bits: the entry is ours,
  // the SPI is not.
  for (uint32_t high_bit = 10; high_bit < 32; ++high_bit) {
    other.spi = spec_.spi ^ (1u << high_bit);
    frames.push_back(sealed_frame(other, spec_.path, 1, inner));
  }
  EXPECT_EQ(deliver(frames), 0u);
  // An unknown SPI has no SA to charge.
  expect_only(DropReason::kUnknownSpi, frames.size(), false);

  // A removed SA is unknown from then on.
  ASSERT_TRUE(gateway_.tables->remove(spec_.spi, shared::SaDirection::kInbound).ok());
  gateway_.tables->reclaim_all();
  EXPECT_EQ(deliver({sealed_frame(reference_, spec_.path, 1, inner)}), 0u);
  EXPECT_EQ(worker_drops_[static_cast<int>(DropReason::kUnknownSpi)], 1u) << last_summary_;
}

TEST_P(InboundDropTest, EveryCorruptedByteAfterTheSpiFailsTheIcv) {
  Bytes inner = inner_ipv4(61);
  const uint64_t sequence = 0x12345678;
  Bytes good = sealed_frame(reference_, spec_.path, sequence, inner);
  const size_t esp_offset = 14 + 20 + 8;
  std::vector<Bytes> frames;
  // Sequence number, IV, ciphertext (inner, padding, trailer) and ICV.
  for (size_t at = esp_offset + 4; at < good.size(); ++at) {
    Bytes bad = good;
    bad[at] ^= static_cast<uint8_t>(1u << (at % 8));
    frames.push_back(bad);
  }
  EXPECT_EQ(deliver(frames), 0u);
  expect_only(DropReason::kIcvFailure, frames.size());
  EXPECT_EQ(sa()->replay.top(), 0u) << "failed packets never move the window";
  EXPECT_EQ(sa()->counters.packets.load(), 0u);

  // The genuine packet still gets through afterwards.
  std::vector<Bytes> delivered;
  EXPECT_EQ(deliver({good}, &delivered), 1u);
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0], inner);
}

TEST_P(InboundDropTest, EveryFlippedSpiBitIsAnUnknownSpi) {
  Bytes good = sealed_frame(reference_, spec_.path, 1, inner_ipv4());
  std::vector<Bytes> frames;
  for (int bit = 0; bit < 32; ++bit) {
    Bytes bad = good;
    bad[14 + 20 + 8 + bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    frames.push_back(bad);
  }
  EXPECT_EQ(deliver(frames), 0u);
  expect_only(DropReason::kUnknownSpi, 32, false);
}

TEST_P(InboundDropTest, TruncatedEspAtEveryLength) {
  const auto& props = shared::properties(spec_.algorithm);
  const size_t overhead = 8u + props.iv_length + props.icv_length;
  for (OuterKind kind : {OuterKind::kIpv4Udp, OuterKind::kIpv4Raw, OuterKind::kIpv6Udp, OuterKind::kIpv6Raw}) {
    SCOPED_TRACE(to_string(kind));
    shared::PathDescriptor path = path_a_to_b(kind);
    Bytes good = sealed_frame(reference_, path, 1, inner_ipv4(40));
    size_t full = esp_of(good).size();
    uint64_t malformed = 0, truncated = 0, icv = 0;
    std::vector<Bytes> frames;
    for (size_t length = 0; length < full; ++length) {
      frames.push_back(cut_esp(good, path, length));
      if (length < 8 && path.udp_encapsulation) {
        ++malformed;  // RFC 3948 2.2: too short to be ESP on port 4500
      } else if (length < overhead + 2 || (length - overhead) % props.block_size != 0) {
        ++truncated;
      } else {
        ++icv;  // whole blocks, but not the packet that was sealed
      }
    }
    WorkerHarness harness(gateway_);
    harness.receive_on_access(frames);
    EXPECT_TRUE(harness.sent_to_core().empty());
    EXPECT_EQ(harness.drops(DropReason::kMalformed), malformed) << drop_summary(harness.counters());
    EXPECT_EQ(harness.drops(DropReason::kTruncated), truncated) << drop_summary(harness.counters());
    EXPECT_EQ(harness.drops(DropReason::kIcvFailure), icv) << drop_summary(harness.counters());
    EXPECT_EQ(drop_total(harness.counters().drops), full) << drop_summary(harness.counters());
  }
}

TEST_P(InboundDropTest, FrameCutInsideItsHeadersIsMalformed) {
  // The IP header claims more than arrived: never passed on as ESP.
  for (OuterKind kind : {OuterKind::kIpv4Udp, OuterKind::kIpv4Raw, OuterKind::kIpv6Udp, OuterKind::kIpv6Raw}) {
    SCOPED_TRACE(to_string(kind));
    shared::PathDescriptor path = path_a_to_b(kind);
    Bytes good = sealed_frame(reference_, path, 1, inner_ipv4(40));
    size_t headers = good.size() - esp_of(good).size() + 8;  // through the ESP header
    std::vector<Bytes> frames;
    for (size_t length = 0; length < headers; ++length)
      frames.push_back(Bytes(good.begin(), good.begin() + static_cast<long>(length)));
    WorkerHarness harness(gateway_);
    harness.receive_on_access(frames);
    EXPECT_TRUE(harness.sent_to_core().empty());
    expect_only_drops(harness.counters(), DropReason::kMalformed, frames.size());
  }
}

TEST_P(InboundDropTest, WrongPaddingBytesUnderAValidIcv) {
  Bytes inner = inner_ipv4(45);
  size_t pad = pad_for(inner.size(), 7);
  std::vector<Bytes> frames;
  for (size_t wrong = 0; wrong < pad; ++wrong) {
    Bytes plaintext = plaintext_with_pad(inner, pad, shared::kIpProtocolIpv4);
    plaintext[inner.size() + wrong] ^= 0x40;
    frames.push_back(frame_of_plaintext(reference_, spec_.path, wrong + 1, plaintext));
  }
  // Pad length pointing before the start of the payload.
  Bytes too_long = plaintext_with_pad(inner, pad, shared::kIpProtocolIpv4);
  too_long[too_long.size() - 2] = 255;
  frames.push_back(frame_of_plaintext(reference_, spec_.path, pad + 1, too_long));
  EXPECT_EQ(deliver(frames), 0u);
  expect_only(DropReason::kBadPadding, frames.size());

  // Control: the same construction with the right bytes is delivered,
  // padding longer than the minimum included (RFC 4303 2.4 allows 255).
  std::vector<Bytes> delivered;
  EXPECT_EQ(deliver({frame_of_plaintext(reference_, spec_.path, 100,
                                        plaintext_with_pad(inner, pad, shared::kIpProtocolIpv4))},
                    &delivered),
            1u);
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0], inner);
}

TEST_P(InboundDropTest, NextHeaderOtherThanIpv4OrIpv6) {
  Bytes inner = inner_ipv4(46);
  size_t pad = pad_for(inner.size(), 0);
  std::vector<Bytes> frames;
  uint64_t sequence = 0;
  for (uint8_t next_header : {0, 6, 17, 50, 58, 255})
    frames.push_back(frame_of_plaintext(reference_, spec_.path, ++sequence, plaintext_with_pad(inner, pad, next_header)));
  EXPECT_EQ(deliver(frames), 0u);
  expect_only(DropReason::kBadNextHeader, frames.size());
}

TEST_P(InboundDropTest, DummyPacketIsDiscarded) {
  // RFC 4303 2.6: next header 59 marks a traffic-flow-confidentiality dummy.
  Bytes filler(30, 0xab);
  size_t pad = pad_for(filler.size(), 0);
  EXPECT_EQ(deliver({frame_of_plaintext(reference_, spec_.path, 1,
                                        plaintext_with_pad(filler, pad, shared::kIpProtocolNoNext))}),
            0u);
  expect_only(DropReason::kDummyPacket, 1);
  EXPECT_EQ(sa()->replay.top(), 1u) << "a verified dummy still moves the window";
}

TEST_P(InboundDropTest, InvalidInnerPackets) {
  std::vector<Bytes> payloads;
  std::vector<uint8_t> next_headers;
  auto add = [&](Bytes payload, uint8_t next_header) {
    payloads.push_back(std::move(payload));
    next_headers.push_back(next_header);
  };
  const uint8_t v4 = shared::kIpProtocolIpv4;
  const uint8_t v6 = shared::kIpProtocolIpv6;
  const Bytes whole_ipv4 = inner_ipv4(40);
  const Bytes whole_ipv6 = inner_ipv6(60);
  add({}, v4);                                     // nothing at all
  add(Bytes(whole_ipv4.begin(), whole_ipv4.begin() + 19), v4);  // 19 bytes
  add(inner_ipv6(60), v4);                         // next header says IPv4, version 6
  Bytes ihl_four = inner_ipv4(60);
  ihl_four[0] = 0x44;
  add(ihl_four, v4);
  Bytes total_too_long = inner_ipv4(60);
  shared::store_be16(&total_too_long[2], 61);
  add(total_too_long, v4);
  Bytes total_below_header = inner_ipv4(60);
  shared::store_be16(&total_below_header[2], 19);
  add(total_below_header, v4);
  Bytes options_past_total = inner_ipv4(60);
  options_past_total[0] = 0x4f;  // 60-byte header in a 40-byte packet
  shared::store_be16(&options_past_total[2], 40);
  add(options_past_total, v4);
  add(inner_ipv4(60), v6);                         // next header says IPv6, version 4
  add(Bytes(whole_ipv6.begin(), whole_ipv6.begin() + 39), v6);  // 39 bytes
  Bytes payload_too_long = inner_ipv6(60);
  shared::store_be16(&payload_too_long[4], 21);
  add(payload_too_long, v6);
  std::vector<Bytes> frames;
  for (size_t k = 0; k < payloads.size(); ++k) {
    SCOPED_TRACE("case " + std::to_string(k));
    size_t pad = pad_for(payloads[k].size(), 0);
    frames.push_back(frame_of_plaintext(reference_, spec_.path, k + 1,
                                        plaintext_with_pad(payloads[k], pad, next_headers[k])));
  }
  EXPECT_EQ(deliver(frames), 0u);
  expect_only(DropReason::kBadInnerPacket, frames.size());
}

TEST_P(InboundDropTest, ReplayedAndStalePackets) {
  Bytes inner = inner_ipv4();
  std::vector<Bytes> delivered;
  // 2000 arrives first; 2000 - 1024 is the last number the window excludes.
  EXPECT_EQ(deliver({sealed_frame(reference_, spec_.path, 2000, inner),
                     sealed_frame(reference_, spec_.path, 977, inner),     // inside the window, new
                     sealed_frame(reference_, spec_.path, 2000, inner),    // duplicate
                     sealed_frame(reference_, spec_.path, 977, inner),     // duplicate
                     sealed_frame(reference_, spec_.path, 976, inner),     // behind the window
                     sealed_frame(reference_, spec_.path, 1, inner),       // far behind
                     sealed_frame(reference_, spec_.path, 0, inner)},      // never sent (RFC 4303 2.2)
                    &delivered),
            2u);
  expect_only(DropReason::kReplay, 5);
  EXPECT_EQ(sa()->replay.top(), 2000u);
}

TEST_P(InboundDropTest, DuplicateInsideOneBurstIsDroppedOnce) {
  // Both copies pass the pre-crypto check; the window update after the ICV
  // lets exactly one through (RFC 4303 3.4.3).
  Bytes frame = sealed_frame(reference_, spec_.path, 5, inner_ipv4());
  EXPECT_EQ(deliver({frame, frame, frame}), 1u);
  expect_only(DropReason::kReplay, 2);
}

TEST_P(InboundDropTest, HardPacketLifetime) {
  TunnelSpec limited = spec_;
  limited.spi = 0x5eed0077;
  limited.tunnel_id = 3;
  limited.lifetime.soft_packets = 2;
  limited.lifetime.hard_packets = 3;
  gateway_.install(inbound_sa(limited));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(limited));
  std::vector<Bytes> frames;
  for (uint64_t s = 1; s <= 5; ++s) frames.push_back(sealed_frame(reference, limited.path, s, inner_ipv4()));
  EXPECT_EQ(deliver(frames), 3u);
  EspSa* limited_sa = gateway_.inbound(limited.spi);
  EXPECT_EQ(worker_drops_[static_cast<int>(DropReason::kLifetimeExpired)], 2u) << last_summary_;
  expect_only_sa_drops(limited_sa, DropReason::kLifetimeExpired, 2);
  EXPECT_TRUE(limited_sa->counters.soft_lifetime_reached.load());
  EXPECT_TRUE(limited_sa->counters.hard_lifetime_reached.load());
}

TEST_P(InboundDropTest, HardByteLifetime) {
  TunnelSpec limited = spec_;
  limited.spi = 0x5eed0078;
  limited.tunnel_id = 3;
  limited.lifetime.soft_bytes = 150;
  limited.lifetime.hard_bytes = 250;
  gateway_.install(inbound_sa(limited));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(limited));
  std::vector<Bytes> frames;
  for (uint64_t s = 1; s <= 4; ++s) frames.push_back(sealed_frame(reference, limited.path, s, inner_ipv4(100)));
  // 100, 200, 300 bytes: the third reaches the hard limit; the fourth finds
  // it reached (RFC 4301 4.4.2.1: a hard lifetime ends the SA's use).
  EXPECT_EQ(deliver(frames), 3u);
  EspSa* limited_sa = gateway_.inbound(limited.spi);
  EXPECT_TRUE(limited_sa->counters.hard_lifetime_reached.load());
  expect_only_sa_drops(limited_sa, DropReason::kLifetimeExpired, 1);
}

TEST_P(InboundDropTest, BadPacketsLeaveTheirBurstNeighboursAlone) {
  Bytes inner = inner_ipv4(70);
  std::vector<Bytes> frames;
  std::vector<Bytes> expected;
  ReferenceSa stranger = reference_;
  stranger.spi = 0x0bad0001;
  for (uint64_t s = 1; s <= 30; ++s) {
    Bytes frame = sealed_frame(reference_, spec_.path, s, inner_ipv4(40 + s, static_cast<uint32_t>(s)));
    switch (s % 5) {
      case 1: frame[frame.size() - 1] ^= 1; break;  // ICV
      case 3: frame = sealed_frame(stranger, spec_.path, s, inner); break;
      default: expected.push_back(inner_ipv4(40 + s, static_cast<uint32_t>(s)));
    }
    frames.push_back(frame);
  }
  std::vector<Bytes> delivered;
  EXPECT_EQ(deliver(frames, &delivered), expected.size());
  EXPECT_EQ(delivered, expected) << "the good packets, in order";
  EXPECT_EQ(worker_drops_[static_cast<int>(DropReason::kIcvFailure)], 6u) << last_summary_;
  EXPECT_EQ(worker_drops_[static_cast<int>(DropReason::kUnknownSpi)], 6u) << last_summary_;
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, InboundDropTest, ::testing::ValuesIn(kAllAlgorithms),
                         [](const auto& info) { return test_name(info.param); });

// ---------------------------------------------------------------------------
// Inbound selectors (RFC 4301 5.2): one algorithm is enough, the check runs
// after decryption whatever the transform.

class SelectorDropTest : public MbufLeakCheck {
 protected:
  // Installs an inbound SA whose peer side is `sources` and ours `destinations`.
  void install(std::vector<shared::TrafficSelector> sources, std::vector<shared::TrafficSelector> destinations) {
    spec_.sources = std::move(sources);
    spec_.destinations = std::move(destinations);
    gateway_.install(inbound_sa(spec_));
    reference_ = ReferenceSa::from(inbound_sa(spec_));
  }
  // Delivers `inner` packets; returns how many came out.
  size_t deliver(const std::vector<Bytes>& inner) {
    std::vector<Bytes> frames;
    for (const Bytes& packet : inner) frames.push_back(sealed_frame(reference_, spec_.path, ++sequence_, packet));
    WorkerHarness harness(gateway_);
    harness.receive_on_access(frames);
    std::vector<rte_mbuf*> out = harness.sent_to_core();
    size_t n = out.size();
    free_all(out);
    mismatches_ = harness.drops(DropReason::kSelectorMismatch);
    other_drops_ = drop_total(harness.counters().drops) - mismatches_;
    return n;
  }
  TunnelSpec spec_;
  Gateway gateway_;
  ReferenceSa reference_;
  uint64_t sequence_ = 0;
  uint64_t mismatches_ = 0;
  uint64_t other_drops_ = 0;
};

TEST_F(SelectorDropTest, InnerAddressesOutsideTheSelectors) {
  install({selector("10.1.0.0/16"), selector("fd00:1::/48")}, {selector("10.2.0.0/16"), selector("fd00:2::/48")});
  std::vector<Bytes> bad = {
      make_ipv4_udp(address("10.9.0.5"), Endpoints::inner_b_ipv4(), 1, 2, 60, 1),    // source outside
      make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.3.0.1"), 1, 2, 60, 2),    // destination outside
      make_ipv4_udp(address("10.2.0.1"), address("10.1.0.1"), 1, 2, 60, 3),          // ends swapped
      make_ipv4_udp(address("10.0.255.255"), Endpoints::inner_b_ipv4(), 1, 2, 60, 4),  // just below the range
      make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.3.0.0"), 1, 2, 60, 5),    // just above
      make_ipv6_udp(address("fd00:9::1"), Endpoints::inner_b_ipv6(), 1, 2, 60, 6),
      make_ipv6_udp(Endpoints::inner_a_ipv6(), address("fd00:2:0:1::"), 1, 2, 60, 7),  // inside /48: fine below
      make_ipv6_udp(Endpoints::inner_a_ipv6(), address("fd00:3::1"), 1, 2, 60, 8),
  };
  EXPECT_EQ(deliver(bad), 1u) << "only fd00:2:0:1:: is inside fd00:2::/48";
  EXPECT_EQ(mismatches_, bad.size() - 1);
  EXPECT_EQ(other_drops_, 0u);
  EXPECT_EQ(drop_count(gateway_.inbound(spec_.spi)->counters.drops, DropReason::kSelectorMismatch), bad.size() - 1);
  // Edges of the ranges are inside.
  EXPECT_EQ(deliver({make_ipv4_udp(address("10.1.0.0"), address("10.2.255.255"), 1, 2, 60, 9),
                     make_ipv4_udp(address("10.1.255.255"), address("10.2.0.0"), 1, 2, 60, 10)}),
            2u);
}

TEST_F(SelectorDropTest, FamilyWithoutSelectorsIsRefused) {
  install({selector("10.1.0.0/16")}, {selector("10.2.0.0/16")});
  EXPECT_EQ(deliver({inner_ipv6(), inner_ipv4()}), 1u);
  EXPECT_EQ(mismatches_, 1u);
  EXPECT_EQ(other_drops_, 0u);
}

TEST_F(SelectorDropTest, ProtocolAndPortSelectors) {
  shared::TrafficSelector udp_to_6000 = selector("10.2.0.0/16");
  udp_to_6000.protocol = shared::kIpProtocolUdp;
  udp_to_6000.port_start = 6000;
  udp_to_6000.port_end = 6010;
  shared::TrafficSelector from_low_ports = selector("10.1.0.0/16");
  from_low_ports.port_start = 1000;
  from_low_ports.port_end = 5000;
  install({from_low_ports}, {udp_to_6000});
  Bytes good = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 5000, 6010, 60, 1);
  Bytes wrong_destination_port = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 5000, 6011, 60, 2);
  Bytes wrong_source_port = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 5001, 6000, 60, 3);
  Bytes tcp = good;
  tcp[9] = shared::kIpProtocolTcp;  // ports in the same place, wrong protocol
  tcp[10] = tcp[11] = 0;
  shared::store_be16(&tcp[10], static_cast<uint16_t>(~fold(ones_sum({tcp.data(), 20}))));
  // RFC 4301 7: a non-first fragment carries no ports, so a port-constrained
  // selector cannot admit it.
  Bytes later_fragment = good;
  shared::store_be16(&later_fragment[6], 0x0010);
  later_fragment[10] = later_fragment[11] = 0;
  shared::store_be16(&later_fragment[10], static_cast<uint16_t>(~fold(ones_sum({later_fragment.data(), 20}))));
  EXPECT_EQ(deliver({good, wrong_destination_port, wrong_source_port, tcp, later_fragment}), 1u);
  EXPECT_EQ(mismatches_, 4u);
  EXPECT_EQ(other_drops_, 0u);
}

TEST_F(SelectorDropTest, LaterFragmentPassesUnconstrainedSelectors) {
  install({selector("10.1.0.0/16")}, {selector("10.2.0.0/16")});
  Bytes later_fragment = inner_ipv4(60);
  shared::store_be16(&later_fragment[6], 0x0010);
  later_fragment[10] = later_fragment[11] = 0;
  shared::store_be16(&later_fragment[10], static_cast<uint16_t>(~fold(ones_sum({later_fragment.data(), 20}))));
  EXPECT_EQ(deliver({later_fragment}), 1u);
  EXPECT_EQ(mismatches_ + other_drops_, 0u);
}

// ---------------------------------------------------------------------------
// Outbound.

class OutboundDropTest : public MbufLeakCheck {
 protected:
  void SetUp() override {
    MbufLeakCheck::SetUp();
    spec_.spi = 0x0000c0de;
    gateway_.install(outbound_sa(spec_));
  }
  EspSa* sa() { return gateway_.outbound(spec_.spi); }
  uint32_t limit() { return max_inner_size(*sa(), *sa()->tunnel->path.load(), gateway_.ctx.access_mtu); }
  TunnelSpec spec_;
  Gateway gateway_;
};

TEST_F(OutboundDropTest, NoRouteForTheInnerDestination) {
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({
      make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.3.0.1"), 1, 2, 60, 1),
      make_ipv6_udp(Endpoints::inner_a_ipv6(), address("fd00:3::1"), 1, 2, 60, 2),
      make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.1.9.9"), 1, 2, 60, 3),  // a source prefix
  });
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kNoRoute, 3);
  expect_only_sa_drops(sa(), DropReason::kNoRoute, 0);
}

TEST_F(OutboundDropTest, RouteToAnEmptySlotIsNoSa) {
  // What a worker sees if it reads the FIB just before the control thread
  // removes the route of an SA it is deleting.
  ASSERT_EQ(rte_fib_add(gateway_.tables->ipv4_routes(), RTE_IPV4(10, 7, 0, 0), 16, 1000 + 1), 0);
  std::vector<rte_mbuf*> sealed =
      gateway_.encapsulate({make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.7.0.1"), 1, 2, 60, 1)});
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kNoSa, 1);
}

TEST_F(OutboundDropTest, SequenceNumberExhaustionWithoutEsn) {
  sa()->sequence.store(0xfffffffeull);
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv4(), inner_ipv4(), inner_ipv4()});
  EXPECT_EQ(sealed.size(), 1u) << "0xffffffff is the last number (RFC 4303 3.3.3)";
  free_all(sealed);
  expect_only_drops(gateway_.counters, DropReason::kSequenceOverflow, 2);
  expect_only_sa_drops(sa(), DropReason::kSequenceOverflow, 2);
}

TEST_F(OutboundDropTest, HardPacketAndByteLifetimes) {
  TunnelSpec by_packets = spec_;
  by_packets.spi = 0x0000c0df;
  by_packets.tunnel_id = 5;
  by_packets.destinations = {selector("10.5.0.0/16")};
  by_packets.lifetime.soft_packets = 1;
  by_packets.lifetime.hard_packets = 2;
  TunnelSpec by_bytes = by_packets;
  by_bytes.spi = 0x0000c0e0;
  by_bytes.tunnel_id = 6;
  by_bytes.destinations = {selector("10.6.0.0/16")};
  by_bytes.lifetime = {};
  by_bytes.lifetime.hard_bytes = 150;
  gateway_.install(outbound_sa(by_packets));
  gateway_.install(outbound_sa(by_bytes));
  std::vector<Bytes> inner;
  for (int k = 0; k < 4; ++k) {
    inner.push_back(make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.5.0.1"), 1, 2, 100, k));
    inner.push_back(make_ipv4_udp(Endpoints::inner_a_ipv4(), address("10.6.0.1"), 1, 2, 100, k));
  }
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate(inner, nullptr, 1);
  EXPECT_EQ(sealed.size(), 4u) << gateway_.drop_summary();
  free_all(sealed);
  EspSa* packets_sa = gateway_.outbound(by_packets.spi);
  EspSa* bytes_sa = gateway_.outbound(by_bytes.spi);
  EXPECT_TRUE(packets_sa->counters.soft_lifetime_reached.load());
  EXPECT_TRUE(packets_sa->counters.hard_lifetime_reached.load());
  EXPECT_TRUE(bytes_sa->counters.hard_lifetime_reached.load());
  expect_only_sa_drops(packets_sa, DropReason::kLifetimeExpired, 2);
  expect_only_sa_drops(bytes_sa, DropReason::kLifetimeExpired, 2);
  expect_only_drops(gateway_.counters, DropReason::kLifetimeExpired, 4);
}

// ICMP "fragmentation needed" (RFC 792, RFC 1191) for an IPv4 packet with DF.
void expect_fragmentation_needed(const rte_mbuf* m, const Bytes& offending, uint32_t mtu) {
  Bytes frame = to_bytes(m);
  ASSERT_GE(frame.size(), 14u + 20 + 8 + 28);
  EXPECT_EQ(0, std::memcmp(&frame[0], kCoreNextHop.addr_bytes, 6));
  EXPECT_EQ(0, std::memcmp(&frame[6], kCoreMac.addr_bytes, 6));
  EXPECT_EQ(load_be16(&frame[12]), RTE_ETHER_TYPE_IPV4);
  const uint8_t* ip = &frame[14];
  EXPECT_TRUE(ipv4_header_checksum_ok(ip));
  EXPECT_EQ(load_be16(ip + 2), frame.size() - 14);
  EXPECT_EQ(ip[9], shared::kIpProtocolIcmp);
  EXPECT_EQ(0, std::memcmp(ip + 12, address("10.255.0.1").bytes(), 4)) << "from the gateway's core address";
  EXPECT_EQ(0, std::memcmp(ip + 16, &offending[12], 4)) << "to the offending packet's source";
  const uint8_t* icmp = ip + 20;
  size_t icmp_length = frame.size() - 14 - 20;
  EXPECT_EQ(icmp[0], 3);
  EXPECT_EQ(icmp[1], 4);
  EXPECT_EQ(load_be16(icmp + 6), mtu) << "next-hop MTU";
  EXPECT_EQ(fold(ones_sum({icmp, icmp_length})), 0xffff) << "ICMP checksum";
  size_t quoted = std::min<size_t>(offending.size(), 548);
  ASSERT_EQ(icmp_length, 8 + quoted);
  EXPECT_EQ(0, std::memcmp(icmp + 8, offending.data(), quoted)) << "quotes the offending packet";
}

TEST_F(OutboundDropTest, DontFragmentPacketTooBigGetsIcmpFragmentationNeeded) {
  Bytes too_big = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, limit() + 1, 1, true);
  Bytes fits = make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, limit(), 2, true);
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({too_big, fits}, &to_core);
  EXPECT_EQ(sealed.size(), 1u);
  free_all(sealed);
  ASSERT_EQ(to_core.size(), 1u);
  expect_fragmentation_needed(to_core[0], too_big, limit());
  free_all(to_core);
  expect_only_drops(gateway_.counters, DropReason::kMtuExceeded, 1);
  expect_only_sa_drops(sa(), DropReason::kMtuExceeded, 1);
  EXPECT_EQ(gateway_.counters.icmp_sent.load(), 1u);
  EXPECT_EQ(gateway_.counters.fragments_created.load(), 0u);
}

TEST_F(OutboundDropTest, Ipv6PacketTooBigGetsIcmpv6PacketTooBig) {
  Bytes too_big = make_ipv6_udp(Endpoints::inner_a_ipv6(), Endpoints::inner_b_ipv6(), 1, 2, 1450, 1);
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({too_big}, &to_core);
  EXPECT_TRUE(sealed.empty());
  ASSERT_EQ(to_core.size(), 1u);
  Bytes frame = to_bytes(to_core[0]);
  free_all(to_core);
  ASSERT_EQ(frame.size(), 14u + 40 + 8 + 1232) << "RFC 4443 3.2: as much as fits in 1280";
  EXPECT_EQ(load_be16(&frame[12]), RTE_ETHER_TYPE_IPV6);
  const uint8_t* ip = &frame[14];
  EXPECT_EQ(ip[6], shared::kIpProtocolIcmpv6);
  EXPECT_EQ(load_be16(ip + 4), 8u + 1232);
  EXPECT_EQ(0, std::memcmp(ip + 8, address("fd00:ff::1").bytes(), 16));
  EXPECT_EQ(0, std::memcmp(ip + 24, Endpoints::inner_a_ipv6().bytes(), 16));
  EXPECT_EQ(ip[40], 2) << "packet too big";
  EXPECT_EQ(ip[41], 0);
  EXPECT_EQ(load_be32(ip + 44), limit());
  EXPECT_TRUE(ipv6_l4_checksum_ok(ip)) << "ICMPv6 checksum";
  EXPECT_EQ(0, std::memcmp(ip + 48, too_big.data(), 1232));
  expect_only_drops(gateway_.counters, DropReason::kMtuExceeded, 1);
}

TEST_F(OutboundDropTest, Ipv6TooBigNeverReportsLessThan1280) {
  // RFC 8201 5: an MTU below the IPv6 minimum is not reported.
  gateway_.ctx.access_mtu = 1200;
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv6(1200)}, &to_core);
  EXPECT_TRUE(sealed.empty());
  ASSERT_EQ(to_core.size(), 1u);
  Bytes frame = to_bytes(to_core[0]);
  free_all(to_core);
  EXPECT_EQ(load_be32(&frame[14 + 40 + 4]), 1280u);
  expect_only_drops(gateway_.counters, DropReason::kMtuExceeded, 1);
}

TEST_F(OutboundDropTest, NoIcmpWithoutACoreAddressButStillCounted) {
  gateway_.ctx.have_core_ipv4 = false;
  gateway_.ctx.have_core_ipv6 = false;
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate(
      {make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 1480, 1, true), inner_ipv6(1480)},
      &to_core);
  EXPECT_TRUE(sealed.empty());
  EXPECT_TRUE(to_core.empty());
  expect_only_drops(gateway_.counters, DropReason::kMtuExceeded, 2);
  EXPECT_EQ(gateway_.counters.icmp_sent.load(), 0u);
}

TEST_F(OutboundDropTest, DontFragmentClearIsFragmentedNotDropped) {
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv4(1480)}, &to_core);
  EXPECT_EQ(sealed.size(), 2u);
  EXPECT_TRUE(to_core.empty());
  free_all(sealed);
  EXPECT_EQ(gateway_.total_drops(), 0u) << gateway_.drop_summary();
  EXPECT_EQ(gateway_.counters.fragments_created.load(), 2u);
}

TEST_F(OutboundDropTest, IgnorePolicyFragmentsDespiteDontFragment) {
  gateway_.ctx.df_policy = DfPolicy::kIgnore;
  std::vector<rte_mbuf*> to_core;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate(
      {make_ipv4_udp(Endpoints::inner_a_ipv4(), Endpoints::inner_b_ipv4(), 1, 2, 1480, 1, true), inner_ipv6(1480)},
      &to_core);
  EXPECT_EQ(sealed.size(), 2u) << "the IPv4 packet in two fragments";
  free_all(sealed);
  ASSERT_EQ(to_core.size(), 1u) << "IPv6 is never fragmented by a router";
  free_all(to_core);
  expect_only_drops(gateway_.counters, DropReason::kMtuExceeded, 1);
}

TEST_F(OutboundDropTest, TooManyFragmentsIsAFragmentError) {
  gateway_.ctx.access_mtu = 200;  // 1400 bytes would need more than kMaxFragmentsPerPacket
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv4(1400)});
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kFragmentError, 1);
  expect_only_sa_drops(sa(), DropReason::kFragmentError, 1);
}

TEST_F(OutboundDropTest, MtuTooSmallForAnyFragmentIsAFragmentError) {
  gateway_.ctx.access_mtu = 80;  // room for the IPv4 header and not 8 bytes more
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv4(100)});
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kFragmentError, 1);
}

TEST_F(OutboundDropTest, FragmentPoolExhaustedIsAFragmentError) {
  // A pool with room for one fragment of the two needed: the one taken is
  // given back, the packet is counted.
  rte_mempool* tiny = rte_pktmbuf_pool_create("dp_test_tiny_pool", 1, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  ASSERT_NE(tiny, nullptr);
  gateway_.ctx.pool = tiny;
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate({inner_ipv4(1480)});
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kFragmentError, 1);
  EXPECT_EQ(rte_mempool_in_use_count(tiny), 0u);
  rte_mempool_free(tiny);
}

TEST_F(OutboundDropTest, NoHeadroomOrTailroomIsNoBuffer) {
  Bytes frame = ethernet(inner_ipv4(200), RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop);
  // Data at the very start of the buffer: nowhere to put the outer headers.
  rte_mbuf* no_headroom = rte_pktmbuf_alloc(packet_pool());
  ASSERT_NE(no_headroom, nullptr);
  no_headroom->data_off = 0;
  std::memcpy(rte_pktmbuf_append(no_headroom, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
  // Data at the very end: nowhere to put padding, trailer and ICV.
  rte_mbuf* no_tailroom = rte_pktmbuf_alloc(packet_pool());
  ASSERT_NE(no_tailroom, nullptr);
  no_tailroom->data_off = static_cast<uint16_t>(no_tailroom->buf_len - frame.size());
  std::memcpy(rte_pktmbuf_append(no_tailroom, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate_frames({no_headroom, no_tailroom});
  EXPECT_TRUE(sealed.empty());
  expect_only_drops(gateway_.counters, DropReason::kNoBuffer, 2);
  expect_only_sa_drops(sa(), DropReason::kNoBuffer, 2);
}

TEST_F(OutboundDropTest, MultiSegmentFramesAreLinearizedBothWays) {
  // classify_access / classify_core promise single-segment frames to the
  // ESP code: chains that fit one buffer are copied together.
  TunnelSpec peer = spec_;
  peer.tunnel_id = 9;
  gateway_.install(inbound_sa(peer));
  Bytes inner = inner_ipv4(700);
  rte_mbuf* chained_plain =
      to_chained_mbuf(ethernet(inner, RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop), 100);
  ASSERT_NE(chained_plain, nullptr);
  ASSERT_GT(chained_plain->nb_segs, 1);
  std::vector<rte_mbuf*> sealed = gateway_.encapsulate_frames({chained_plain});
  ASSERT_EQ(sealed.size(), 1u) << gateway_.drop_summary();
  Bytes sealed_frame_bytes = to_bytes(sealed[0]);
  free_all(sealed);
  rte_mbuf* chained_esp = to_chained_mbuf(sealed_frame_bytes, 64);
  ASSERT_GT(chained_esp->nb_segs, 1);
  std::vector<rte_mbuf*> opened = gateway_.decapsulate({chained_esp});
  ASSERT_EQ(opened.size(), 1u) << gateway_.drop_summary();
  EXPECT_EQ(inner_of(opened[0]), inner);
  free_all(opened);
}

TEST_F(OutboundDropTest, ChainTooLongForOneBufferIsMalformed) {
  Bytes big = ethernet(inner_ipv4(1500), RTE_ETHER_TYPE_IPV4, kCoreMac, kCoreNextHop);
  Bytes jumbo = big;
  jumbo.insert(jumbo.end(), big.begin(), big.end());  // 3028 bytes: two buffers' worth
  rte_mbuf* chain = to_chained_mbuf(jumbo, 1500);
  ASSERT_NE(chain, nullptr);
  DropReason reason = DropReason::kCount;
  EXPECT_FALSE(classify_core(chain, &reason));
  EXPECT_EQ(reason, DropReason::kMalformed);
  rte_pktmbuf_free(chain);
}

// ---------------------------------------------------------------------------
// IPsec-MB refusing a burst. The ESP code never builds an invalid job, so the
// fault is injected: an SA whose key length the library rejects. Every packet
// of the burst is counted and freed, and the next burst works.

class CryptoRefusalTest : public MbufLeakCheck {};

TEST_F(CryptoRefusalTest, RefusedInboundBurstIsCountedAndTheManagerRecovers) {
  Gateway gateway;
  TunnelSpec spec;
  gateway.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  EspSa* sa = gateway.inbound(spec.spi);
  const uint8_t key_length = sa->cipher_key_length;
  sa->cipher_key_length = 7;
  std::vector<rte_mbuf*> frames;
  for (uint64_t s = 1; s <= 3; ++s) frames.push_back(to_mbuf(sealed_frame(reference, spec.path, s, inner_ipv4())));
  EXPECT_TRUE(gateway.decapsulate(frames).empty());
  expect_only_drops(gateway.counters, DropReason::kCryptoError, 3);
  expect_only_sa_drops(sa, DropReason::kCryptoError, 3);
  EXPECT_EQ(sa->replay.top(), 0u);
  sa->cipher_key_length = key_length;
  std::vector<rte_mbuf*> opened = gateway.decapsulate({to_mbuf(sealed_frame(reference, spec.path, 4, inner_ipv4()))});
  EXPECT_EQ(opened.size(), 1u) << gateway.drop_summary();
  free_all(opened);
}

TEST_F(CryptoRefusalTest, RefusedOutboundBurstIsCountedAndTheManagerRecovers) {
  Gateway gateway;
  TunnelSpec spec;
  gateway.install(outbound_sa(spec));
  EspSa* sa = gateway.outbound(spec.spi);
  const uint8_t key_length = sa->cipher_key_length;
  sa->cipher_key_length = 7;
  EXPECT_TRUE(gateway.encapsulate({inner_ipv4(), inner_ipv6(), inner_ipv4()}).empty());
  expect_only_drops(gateway.counters, DropReason::kCryptoError, 3);
  expect_only_sa_drops(sa, DropReason::kCryptoError, 3);
  sa->cipher_key_length = key_length;
  std::vector<rte_mbuf*> sealed = gateway.encapsulate({inner_ipv4()});
  ASSERT_EQ(sealed.size(), 1u) << gateway.drop_summary();
  EXPECT_TRUE(reference_open(ReferenceSa::from(outbound_sa(spec)), 4, esp_of(to_bytes(sealed[0]))).has_value())
      << "sequence numbers of refused packets are not reused";
  free_all(sealed);
}

// ---------------------------------------------------------------------------
// The worker's own drops: keepalives, a full punt ring, a full transmit ring.

class WorkerDropTest : public MbufLeakCheck {
 protected:
  Gateway gateway_;
};

TEST_F(WorkerDropTest, KeepalivesAreCountedAndDropped) {
  WorkerHarness harness(gateway_);
  const uint8_t keepalive[] = {shared::kNatKeepaliveByte};
  harness.receive_on_access({udp_frame(Endpoints::a_ipv4(), Endpoints::b_ipv4(), 61000, 4500, keepalive),
                             udp_frame(Endpoints::a_ipv6(), Endpoints::b_ipv6(), 61000, 4500, keepalive)});
  EXPECT_TRUE(harness.sent_to_core().empty());
  EXPECT_TRUE(harness.punted().empty());
  expect_only_drops(harness.counters(), DropReason::kNatKeepalive, 2);
}

TEST_F(WorkerDropTest, PuntRingFullDropsIke) {
  WorkerHarnessOptions options;
  options.punt_ring_size = 4;  // three entries
  WorkerHarness harness(gateway_, options);
  Bytes ike(40, 0x21);
  std::vector<Bytes> frames;
  for (int k = 0; k < 5; ++k) frames.push_back(udp_frame(Endpoints::a_ipv4(), Endpoints::b_ipv4(), 500, 500, ike));
  harness.receive_on_access(frames);
  std::vector<rte_mbuf*> punted = harness.punted();
  EXPECT_EQ(punted.size(), 3u);
  free_all(punted);
  EXPECT_EQ(harness.counters().ike_punted.load(), 3u);
  expect_only_drops(harness.counters(), DropReason::kPuntQueueFull, 2);
}

TEST_F(WorkerDropTest, TransmitRingFullIsTxFull) {
  TunnelSpec spec;
  gateway_.install(inbound_sa(spec));
  ReferenceSa reference = ReferenceSa::from(inbound_sa(spec));
  WorkerHarness harness(gateway_);
  harness.leave_core_transmit_room(1);
  harness.receive_on_access({sealed_frame(reference, spec.path, 1, inner_ipv4()),
                             sealed_frame(reference, spec.path, 2, inner_ipv4()),
                             sealed_frame(reference, spec.path, 3, inner_ipv4())});
  std::vector<rte_mbuf*> sent = harness.sent_to_core();  // placeholders and the one that fitted
  free_all(sent);
  EXPECT_EQ(harness.counters().core_tx_packets.load(), 1u);
  expect_only_drops(harness.counters(), DropReason::kTxFull, 2);
}

}  // namespace
}  // namespace segw::dp::testing
