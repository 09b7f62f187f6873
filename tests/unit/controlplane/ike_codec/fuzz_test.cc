// Fuzz-style robustness: random bytes and random mutations/truncations of
// valid messages never crash and never read out of bounds (this file is
// also built with -fsanitize=address,undefined). Whatever decodes must
// re-encode and decode to the same message. Fixed seeds: reproducible.
#include <gtest/gtest.h>

#include <random>

#include "tests/unit/controlplane/ike_codec/test_util.h"

namespace segw::cp::ike::test {
namespace {

constexpr int kIterations = 100000;

void set_length(Bytes& b) {
  if (b.size() < 28) return;
  const auto n = static_cast<uint32_t>(b.size());
  b[24] = static_cast<uint8_t>(n >> 24);
  b[25] = static_cast<uint8_t>(n >> 16);
  b[26] = static_cast<uint8_t>(n >> 8);
  b[27] = static_cast<uint8_t>(n);
}

// The property for anything that decoded: encode succeeds and is stable.
void check_decoded(const Message& m) {
  auto bytes = encode_message(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  auto again = decode_message(*bytes);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->payloads, m.payloads);
  EXPECT_EQ(*encode_message(*again), *bytes);
}

void check_chain(PayloadType first, const Bytes& bytes) {
  auto payloads = decode_payload_chain(first, bytes);
  if (!payloads) return;
  auto encoded = encode_payload_chain(*payloads);
  ASSERT_TRUE(encoded.ok()) << encoded.error();
  auto again = decode_payload_chain(first, *encoded);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(*again, *payloads);
}

Bytes mutate(std::mt19937& rng, Bytes b) {
  std::uniform_int_distribution<int> op(0, 5);
  std::uniform_int_distribution<int> byte(0, 255);
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds && !b.empty(); ++r) {
    const size_t at = rng() % b.size();
    switch (op(rng)) {
      case 0: b[at] = static_cast<uint8_t>(byte(rng)); break;                  // replace
      case 1: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;          // bit flip
      case 2: b.resize(at); break;                                              // truncate
      case 3: b.insert(b.begin() + static_cast<long>(at), static_cast<uint8_t>(byte(rng))); break;
      case 4: b.erase(b.begin() + static_cast<long>(at)); break;
      case 5: b[at] = static_cast<uint8_t>(rng() % 2 ? 0 : 0xff); break;       // extremes
    }
  }
  return b;
}

std::vector<Bytes> seeds() {
  std::vector<Bytes> out{sample_ike_sa_init_request(), sample_skf_message()};
  Message auth = sample_ike_auth_inner();
  auth.header.exchange = ExchangeType::kIkeAuth;
  // The inner chain sent in cleartext gives the mutator every payload type.
  auth.payloads.push_back(make_payload(DeletePayload{ProtocolId::kEsp, 4, {{1, 2, 3, 4}}}));
  auth.payloads.push_back(make_payload(CertPayload{CertEncoding::kX509Signature, filled(20, 3)}));
  auth.payloads.push_back(make_payload(CertReqPayload{CertEncoding::kX509Signature, filled(20, 4)}));
  auth.payloads.push_back(make_payload(EapPayload{{2, 1, 0, 5, 1}}));
  auth.payloads.push_back(make_payload(make_notify(NotifyType::kCookie2, filled(8, 2))));
  out.push_back(*encode_message(auth));
  Message sk;
  sk.payloads.push_back(make_payload(EncryptedPayload{PayloadType::kIdInitiator, filled(40, 9), {}}));
  out.push_back(*encode_message(sk));
  return out;
}

TEST(IkeCodecFuzz, RandomBytes) {
  std::mt19937 rng(7296);
  for (int i = 0; i < kIterations; ++i) {
    Bytes b(rng() % 200);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (i % 2 == 0 && b.size() >= 28) {
      // Get past the header checks: version 2, correct Length, a real first payload.
      b[17] = 0x20;
      b[16] = static_cast<uint8_t>(33 + rng() % 21);
      set_length(b);
    }
    auto m = decode_message(b);
    if (m) check_decoded(*m);
    check_chain(static_cast<PayloadType>(rng() % 64), b);
  }
}

TEST(IkeCodecFuzz, MutatedValidMessages) {
  std::mt19937 rng(7383);
  const auto corpus = seeds();
  for (const auto& seed : corpus) ASSERT_TRUE(decode_message(seed).ok());
  int decoded = 0;
  for (int i = 0; i < kIterations; ++i) {
    Bytes b = mutate(rng, corpus[i % corpus.size()]);
    if (rng() % 4 != 0) set_length(b);  // mostly reach the payload checks
    auto m = decode_message(b);
    if (m) {
      ++decoded;
      check_decoded(*m);
    }
    if (b.size() > 28) {
      check_chain(static_cast<PayloadType>(b[16]), Bytes(b.begin() + 28, b.end()));
    }
  }
  // Sanity: the mutator does not only produce garbage the header rejects.
  EXPECT_GT(decoded, kIterations / 50);
}

TEST(IkeCodecFuzz, EveryTruncationOfEverySeed) {
  for (const auto& seed : seeds()) {
    for (size_t n = 0; n <= seed.size(); ++n) {
      Bytes b(seed.begin(), seed.begin() + static_cast<long>(n));
      auto raw = decode_message(b);
      if (n < seed.size()) {
        EXPECT_FALSE(raw.ok()) << n;  // Length disagrees
      }
      set_length(b);
      auto m = decode_message(b);
      if (m) check_decoded(*m);
    }
  }
}

}  // namespace
}  // namespace segw::cp::ike::test
