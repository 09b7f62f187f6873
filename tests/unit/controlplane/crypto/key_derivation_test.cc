// IKE SA keys, rekey SKEYSEED and child KEYMAT against values computed
// independently with Python hmac (tests/vectors/ike_crypto/).
#include <gtest/gtest.h>

#include "controlplane/crypto/key_derivation.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::crypto {
namespace {

using test::to_hex;

const std::vector<uint8_t> kNi(32, 0x11);
const std::vector<uint8_t> kNr(32, 0x22);
const std::vector<uint8_t> kGir(256, 0x33);
const IkeSpi kSpiI{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
const IkeSpi kSpiR{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};

TEST(KeyDerivationTest, IkeSaKeysCbc) {
  auto seed = compute_skeyseed(PrfAlgorithm::kHmacSha2_256, kNi, kNr, kGir);
  ASSERT_TRUE(seed.ok());
  EXPECT_EQ(to_hex(*seed), "9ddd0ec3e4acc545b4d2b1855d813499b176d38a3ce6964b0b67a66b63edc4dc");
  auto keys = derive_initial_ike_sa_keys(
      PrfAlgorithm::kHmacSha2_256,
      {EncrAlgorithm::kAesCbc, 256, IntegAlgorithm::kHmacSha2_256_128}, kGir, kNi, kNr, kSpiI,
      kSpiR);
  ASSERT_TRUE(keys.ok()) << keys.error();
  EXPECT_EQ(to_hex(keys->sk_d), "f82d1c8eaab2429370ff168adf24d33692dfeb0f1cc2cb42372999b465e27146");
  EXPECT_EQ(to_hex(keys->sk_ai), "98f4c4c3becf394de925b5a52a44ede935d84dbd0a8497ac8ba6e301acd31230");
  EXPECT_EQ(to_hex(keys->sk_ar), "c2dead86ff0773234982a945baf55780794a902ea1e565b4240835c09272c052");
  EXPECT_EQ(to_hex(keys->sk_ei), "9ebedf9cd89bb52c523967cc46ab19d40cf66be0440012913e1d5c6c7b2f4c88");
  EXPECT_EQ(to_hex(keys->sk_er), "9eb7d15249239aeaf58258bb5e183a319d8216da078acc4a0207c6b1b6c7b784");
  EXPECT_EQ(to_hex(keys->sk_pi), "8ea5e2b955ee3a1f4ee0de121271ebb004c3866f6cc2ea7bc2e0cbe1ad975686");
  EXPECT_EQ(to_hex(keys->sk_pr), "aa8a722d9f579ade4b2b0f69494e71a27592c6211e939cce5d97441c2e22a45c");
}

TEST(KeyDerivationTest, IkeSaKeysGcmCarrySaltAndNoIntegrityKeys) {
  auto keys = derive_initial_ike_sa_keys(PrfAlgorithm::kHmacSha2_384,
                                         {EncrAlgorithm::kAesGcm16, 128, IntegAlgorithm::kNone},
                                         kGir, kNi, kNr, kSpiI, kSpiR);
  ASSERT_TRUE(keys.ok()) << keys.error();
  EXPECT_TRUE(keys->sk_ai.empty());
  EXPECT_TRUE(keys->sk_ar.empty());
  EXPECT_EQ(to_hex(keys->sk_d),
            "d2e8cb428d3875c88e886c7687d31c3ae4a27bcfa602cd2743d26d1d8f2ad74f5a127a96db0b391e2cc1d"
            "37eee60d95a");
  EXPECT_EQ(to_hex(keys->sk_ei), "c62f99907c3dc119b9aaf89080a50ee25af41f0b");
  EXPECT_EQ(to_hex(keys->sk_er), "43d05bc623949da7c6aa36b29320437b8cf54c5d");
  EXPECT_EQ(to_hex(keys->sk_pi),
            "56996e333b19270f48451980f5fd6bcbe5557e1dda55c38e19fe7dc449b49f58b481f52803be6172fa6e4"
            "616a28a3cbd");
  EXPECT_EQ(to_hex(keys->sk_pr),
            "232c71369c8131ef4f2c280a8a1424aff48f40349ddbedac43a33d8d01c493def3695080cf82d20cd4112"
            "921afa29c81");
}

TEST(KeyDerivationTest, RekeySkeyseedUsesOldSkD) {
  auto old_keys = derive_initial_ike_sa_keys(
      PrfAlgorithm::kHmacSha2_256,
      {EncrAlgorithm::kAesCbc, 256, IntegAlgorithm::kHmacSha2_256_128}, kGir, kNi, kNr, kSpiI,
      kSpiR);
  ASSERT_TRUE(old_keys.ok());
  const std::vector<uint8_t> gir_new(32, 0x44), ni2(32, 0x55), nr2(32, 0x66);
  auto seed = compute_rekey_skeyseed(PrfAlgorithm::kHmacSha2_256, old_keys->sk_d, gir_new, ni2,
                                     nr2);
  ASSERT_TRUE(seed.ok());
  EXPECT_EQ(to_hex(*seed), "191f918a2482a2b6ecb823f8a3764bc289e31cfeae9b7b9ce0cb8d12a0f06eea");
  // The new SA's keys come from that SKEYSEED with the new PRF and SPIs.
  const IkeSpi new_i{9, 9, 9, 9, 9, 9, 9, 9}, new_r{8, 8, 8, 8, 8, 8, 8, 8};
  const CipherSuite suite{EncrAlgorithm::kAesGcm16, 256, IntegAlgorithm::kNone};
  auto rekeyed = derive_rekeyed_ike_sa_keys(PrfAlgorithm::kHmacSha2_256, old_keys->sk_d,
                                            PrfAlgorithm::kHmacSha2_512, suite, gir_new, ni2, nr2,
                                            new_i, new_r);
  auto direct = derive_ike_sa_keys(PrfAlgorithm::kHmacSha2_512, suite, *seed, ni2, nr2, new_i,
                                   new_r);
  ASSERT_TRUE(rekeyed.ok() && direct.ok());
  EXPECT_TRUE(rekeyed->sk_d == direct->sk_d);
  EXPECT_TRUE(rekeyed->sk_er == direct->sk_er);
  EXPECT_EQ(rekeyed->sk_d.size(), 64u);
  EXPECT_EQ(rekeyed->sk_ei.size(), 36u);
}

TEST(KeyDerivationTest, ChildKeymatSplitWithAndWithoutPfs) {
  auto old_keys = derive_initial_ike_sa_keys(
      PrfAlgorithm::kHmacSha2_256,
      {EncrAlgorithm::kAesCbc, 256, IntegAlgorithm::kHmacSha2_256_128}, kGir, kNi, kNr, kSpiI,
      kSpiR);
  ASSERT_TRUE(old_keys.ok());
  const std::vector<uint8_t> gir_new(32, 0x44), ni2(32, 0x55), nr2(32, 0x66);
  const CipherSuite suite{EncrAlgorithm::kAesCbc, 128, IntegAlgorithm::kHmacSha2_256_128};
  const std::string nopfs =
      "cd4fff69176454f55b69210bcf06fc6d8c631d2b85812709b5c8824a4417fbbb27ecdcf102813fbb3d7ba942ef"
      "852b5d85bb28b90e8a4b211ba96856d8668bd959aeb83574d0a37026aa09aa254506abfc8ea1669ac34d714bdc"
      "c25c7f5af136";
  const std::string pfs =
      "0fdd2c0de378a47e5677358e70dc9dd311e1a7204357270894f9cd133144b641a973cb84c00f24e43924e43be0"
      "3388fb66d62e5cd8c896b47f4e934628d9c6e6436da968ea32fa04d78191f2b2c19c42712a60ba78b7684df073"
      "1e2bfc0045f5";
  for (const auto& [secret, keymat] :
       {std::pair{std::vector<uint8_t>{}, nopfs}, std::pair{gir_new, pfs}}) {
    auto keys = derive_child_sa_keys(PrfAlgorithm::kHmacSha2_256, suite, old_keys->sk_d, secret,
                                     ni2, nr2);
    ASSERT_TRUE(keys.ok()) << keys.error();
    // encr_i2r (16) | integ_i2r (32) | encr_r2i (16) | integ_r2i (32).
    EXPECT_EQ(to_hex(keys->encr_i2r), keymat.substr(0, 32));
    EXPECT_EQ(to_hex(keys->integ_i2r), keymat.substr(32, 64));
    EXPECT_EQ(to_hex(keys->encr_r2i), keymat.substr(96, 32));
    EXPECT_EQ(to_hex(keys->integ_r2i), keymat.substr(128, 64));
  }
  // GCM child SA: key + 4-octet salt per direction, no integrity keys.
  auto gcm = derive_child_sa_keys(PrfAlgorithm::kHmacSha2_256,
                                  {EncrAlgorithm::kAesGcm16, 128, IntegAlgorithm::kNone},
                                  old_keys->sk_d, {}, ni2, nr2);
  ASSERT_TRUE(gcm.ok());
  EXPECT_EQ(to_hex(gcm->encr_i2r), nopfs.substr(0, 40));
  EXPECT_EQ(to_hex(gcm->encr_r2i), nopfs.substr(40, 40));
  EXPECT_TRUE(gcm->integ_i2r.empty() && gcm->integ_r2i.empty());
}

TEST(KeyDerivationTest, RejectsInvalidSuites) {
  EXPECT_FALSE(derive_initial_ike_sa_keys(PrfAlgorithm::kHmacSha2_256,
                                          {EncrAlgorithm::kAesGcm16, 128,
                                           IntegAlgorithm::kHmacSha1_96},
                                          kGir, kNi, kNr, kSpiI, kSpiR)
                   .ok());
  EXPECT_FALSE(derive_child_sa_keys(PrfAlgorithm::kHmacSha2_256,
                                    {EncrAlgorithm::kAesCbc, 64, IntegAlgorithm::kHmacSha1_96},
                                    kNi, {}, kNi, kNr)
                   .ok());
}

}  // namespace
}  // namespace segw::cp::crypto
