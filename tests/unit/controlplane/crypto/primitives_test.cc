// Known-answer tests of the primitives: HMAC (RFC 4231), PRFs (RFC 4868),
// prf+ (independent Python values), AES-GCM (McGrew-Viega), AES-CBC
// (RFC 3602), SecureBytes, randomness, NAT-D.
#include <gtest/gtest.h>

#include <set>

#include "controlplane/crypto/cipher.h"
#include "controlplane/crypto/nat_detection.h"
#include "controlplane/crypto/prf.h"
#include "controlplane/crypto/random.h"
#include "controlplane/crypto/secure_bytes.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::crypto {
namespace {

using test::bytes_of;
using test::from_hex;
using test::to_hex;

TEST(SecureBytesTest, ResizeCopyCompare) {
  SecureBytes a{1, 2, 3, 4};
  SecureBytes b = a;
  EXPECT_TRUE(a == b);
  b.resize(2);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_FALSE(a == b);
  b.append(std::vector<uint8_t>{3, 4});
  EXPECT_TRUE(a == b);
  // Growing back after a shrink must not resurrect the cut-off bytes.
  SecureBytes c{9, 9, 9, 9};
  c.resize(1);
  c.resize(4);
  EXPECT_EQ(to_hex(c), "09000000");
  EXPECT_TRUE(equal_constant_time(a, b));
  EXPECT_FALSE(equal_constant_time(a, c));
  SecureBytes moved = std::move(a);
  EXPECT_EQ(moved.size(), 4u);
  EXPECT_EQ(to_hex(moved.slice(1, 2)), "0203");
}

// RFC 4231 §4.2 (test case 1) and §4.3 (test case 2). Values also
// recomputed with Python hmac (tests/vectors/ike_crypto).
TEST(HmacTest, Rfc4231Vectors) {
  const auto key1 = std::vector<uint8_t>(20, 0x0b);
  const auto data1 = bytes_of("Hi There");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha256, key1, {data1})),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha384, key1, {data1})),
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
            "faea9ea9076ede7f4af152e8b2fa9cb6");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha512, key1, {data1})),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
  const auto key2 = bytes_of("Jefe");
  const auto data2 = bytes_of("what do ya want for nothing?");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha256, key2, {data2})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha384, key2, {data2})),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
            "8e2240ca5e69e2c78b3239ecfab21649");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha512, key2, {data2})),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  // Split input gives the same tag as the whole.
  const auto half1 = bytes_of("what do ya want ");
  const auto half2 = bytes_of("for nothing?");
  EXPECT_EQ(to_hex(*hmac(HashAlgorithm::kSha256, key2, {half1, half2})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4868 §2.7.1, PRF test case 1 for each PRF (key length = output length).
TEST(PrfTest, Rfc4868Vectors) {
  const auto data = bytes_of("Hi There");
  EXPECT_EQ(to_hex(*prf(PrfAlgorithm::kHmacSha2_256, std::vector<uint8_t>(32, 0x0b), {data})),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
  EXPECT_EQ(to_hex(*prf(PrfAlgorithm::kHmacSha2_384, std::vector<uint8_t>(48, 0x0b), {data})),
            "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc"
            "4c5df61d5b3297b4fb68dab9f1b582c2");
  EXPECT_EQ(to_hex(*prf(PrfAlgorithm::kHmacSha2_512, std::vector<uint8_t>(64, 0x0b), {data})),
            "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"
            "ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b");
  // RFC 4868 §2.7.2.1 AUTH256-1: the truncated integrity tag is a prefix.
  EXPECT_EQ(integ_icv_length(IntegAlgorithm::kHmacSha2_256_128), 16u);
  EXPECT_EQ(integ_key_length(IntegAlgorithm::kHmacSha2_512_256), 64u);
}

// prf+ against tests/vectors/ike_crypto/gen_independent_vectors.py (Python
// hmac/hashlib): K = 00..1f, S = "IKEv2 prf+ seed" | 00..3f, 200 octets.
TEST(PrfTest, PrfPlusMatchesIndependentComputation) {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i);
  auto seed = bytes_of("IKEv2 prf+ seed");
  for (int i = 0; i < 64; ++i) seed.push_back(static_cast<uint8_t>(i));
  EXPECT_EQ(to_hex(*prf_plus(PrfAlgorithm::kHmacSha2_256, key, seed, 200)),
            "5f2fe1583e281643ebf683fbe707badc0bca5c64a7f047a4b7a79a0ee59b45df2d61376f09adc127"
            "e5ac31a5004045cc33662720b2652add68b5bad9e8e83e7a540e404f629577ba83e8c66ae888f20d"
            "a77d0c0e46f4c6805334a5ecbb05d28f679bb75695dea50d3a957ae933b07c9d88ab66c35ea66894"
            "d70b3be8d243fc01def4b582d7cfa00719a28b912a170e61eb4a51059e52bb508e7d3c12aec96470"
            "42e30f506a63a19aa43ca9cab295509f1a797261859949b70a9515246cb4948652a9233795458968");
  EXPECT_EQ(to_hex(*prf_plus(PrfAlgorithm::kHmacSha2_384, key, seed, 200)),
            "1479e27c416d80a48b6987b89ca15f7b944103284945187f6d4c8fa77300f4384bc3170afd8dbb5e"
            "fefa46d9fafc6a6ac77e2cf8cee6bab3be834fa4b6d74fedaaa97fa45d3e2c67a9d0b2364d81d037"
            "829d2f2a944eb9a3a7fdcd307e1fbdd5dfadfe34b96da86168df37201fb845feff4f0d8e8b5648f6"
            "c9633bef888bf37e369bf0f2a61d9b33cd0a9a38c3a8c75509bc7133fc7d80f42b2084abcb4e4671"
            "c209834c950e6b8fa6298744e4d3e3ba3aaaf8a40ed5e06614814d7ca452e685c82a33ce78c92045");
  EXPECT_EQ(to_hex(*prf_plus(PrfAlgorithm::kHmacSha2_512, key, seed, 200)),
            "3b161c1e038fd2f3b404cbe775647c148c1ca5aadb35d62791c18eba83bd3618e73fc2c7fe259155"
            "266ddb3c7acc92f2dc9a322c034acd78baf244f0d3d78efbac438a3c8684e03ea269b8de3f60d743"
            "00083284267b6507c77ac340d13a53dfe3b9b3fc2d1cb6ecfc38b9e8cfb0d0ddf578b66ab9c734a3"
            "07d0a1872b767c4901f0c103a9cad949ed9340b79b4de0625f5613d34aabb7aeafe24e0fa29e9cab"
            "3d8add9760a1909ea6e1b9790e0ab92be82a254e9cdfbdc9407041c06e60719dd2b238014819965a");
  // A prefix of a longer output is the shorter output.
  auto short_out = prf_plus(PrfAlgorithm::kHmacSha2_256, key, seed, 17);
  ASSERT_TRUE(short_out.ok());
  EXPECT_EQ(to_hex(*short_out), "5f2fe1583e281643ebf683fbe707badc0b");
}

TEST(PrfTest, PrfPlusRefusesMoreThan255Blocks) {
  const std::vector<uint8_t> key(32, 1);
  EXPECT_TRUE(prf_plus(PrfAlgorithm::kHmacSha2_256, key, {}, 255 * 32).ok());
  auto too_long = prf_plus(PrfAlgorithm::kHmacSha2_256, key, {}, 255 * 32 + 1);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().find("§2.13"), std::string::npos) << too_long.error();
}

struct GcmCase {
  const char* name;
  const char* key;
  const char* plaintext;
  const char* aad;
  const char* ciphertext_and_tag;
};

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 3, 4
// (AES-128) and 16 (AES-256); IV cafebabefacedbaddecaf888.
const GcmCase kGcmCases[] = {
    {"TC3", "feffe9928665731c6d6a8f9467308308",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"TC4", "feffe9928665731c6d6a8f9467308308",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"TC16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(CipherTest, GcmMcGrewViegaVectors) {
  const auto nonce = from_hex("cafebabefacedbaddecaf888");
  for (const GcmCase& c : kGcmCases) {
    SCOPED_TRACE(c.name);
    const auto key = from_hex(c.key);
    const auto plaintext = from_hex(c.plaintext);
    const auto aad = from_hex(c.aad);
    auto sealed = aes_gcm_seal(key, nonce, aad, plaintext);
    ASSERT_TRUE(sealed.ok()) << sealed.error();
    EXPECT_EQ(to_hex(*sealed), c.ciphertext_and_tag);
    auto opened = aes_gcm_open(key, nonce, aad, *sealed);
    ASSERT_TRUE(opened.ok()) << opened.error();
    EXPECT_EQ(to_hex(*opened), c.plaintext);
    auto tampered = *sealed;
    tampered.back() ^= 1;
    auto rejected = aes_gcm_open(key, nonce, aad, tampered);
    ASSERT_FALSE(rejected.ok());
    EXPECT_NE(rejected.error().find("ICV mismatch"), std::string::npos);
  }
}

// RFC 3602 §4, cases #1 and #2.
TEST(CipherTest, CbcRfc3602Vectors) {
  auto c1 = aes_cbc_encrypt(from_hex("06a9214036b8a15b512e03d534120006"),
                            from_hex("3dafba429d9eb430b422da802c9fac41"),
                            bytes_of("Single block msg"));
  ASSERT_TRUE(c1.ok()) << c1.error();
  EXPECT_EQ(to_hex(*c1), "e353779c1079aeb82708942dbe77181a");
  std::vector<uint8_t> p2(32);
  for (size_t i = 0; i < p2.size(); ++i) p2[i] = static_cast<uint8_t>(i);
  const auto key2 = from_hex("c286696d887c9aa0611bbb3e2025a45a");
  const auto iv2 = from_hex("562e17996d093d28ddb3ba695a2e6f58");
  auto c2 = aes_cbc_encrypt(key2, iv2, p2);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(to_hex(*c2), "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1");
  auto d2 = aes_cbc_decrypt(key2, iv2, *c2);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(to_hex(*d2), to_hex(p2));
}

TEST(CipherTest, RejectsBadSizes) {
  const std::vector<uint8_t> key(16), iv(16), nonce(12);
  EXPECT_FALSE(aes_cbc_encrypt(std::vector<uint8_t>(15), iv, std::vector<uint8_t>(16)).ok());
  EXPECT_FALSE(aes_cbc_encrypt(key, std::vector<uint8_t>(8), std::vector<uint8_t>(16)).ok());
  EXPECT_FALSE(aes_cbc_decrypt(key, iv, std::vector<uint8_t>(17)).ok());
  EXPECT_FALSE(aes_gcm_seal(key, std::vector<uint8_t>(8), {}, {}).ok());
  EXPECT_FALSE(aes_gcm_open(key, nonce, {}, std::vector<uint8_t>(15)).ok());
}

TEST(RandomTest, NoncesAndSpis) {
  auto a = make_nonce();
  auto b = make_nonce();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(make_nonce(15).ok());
  EXPECT_FALSE(make_nonce(257).ok());
  EXPECT_TRUE(make_nonce(16).ok());
  std::set<IkeSpi> spis;
  for (int i = 0; i < 64; ++i) {
    auto spi = make_ike_spi();
    ASSERT_TRUE(spi.ok());
    EXPECT_NE(*spi, IkeSpi{});
    spis.insert(*spi);
    auto esp = make_esp_spi();
    ASSERT_TRUE(esp.ok());
    EXPECT_GE(*esp, 256u);
  }
  EXPECT_EQ(spis.size(), 64u);
}

// Expected values: Python hashlib.sha1 (gen_independent_vectors.py).
TEST(NatDetectionTest, HashesMatchIndependentComputation) {
  const IkeSpi spi_i{1, 2, 3, 4, 5, 6, 7, 8};
  const IkeSpi spi_r{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
  auto v4 = nat_detection_hash(spi_i, spi_r, *shared::IpAddress::parse("192.0.2.1"), 500);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(to_hex(*v4), "d798d986143f878f70765e0e869c80bbc375f701");
  auto v6 = nat_detection_hash(spi_i, IkeSpi{}, *shared::IpAddress::parse("2001:db8::1"), 4500);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(to_hex(*v6), "98c75483db80168697635aa7844504963e87de33");
}

TEST(AlgorithmsTest, NamesAndWireChecks) {
  EXPECT_STREQ(to_string(DhGroup::kCurve25519), "CURVE25519");
  EXPECT_STREQ(to_string(IntegAlgorithm::kHmacSha2_384_192), "AUTH_HMAC_SHA2_384_192");
  EXPECT_FALSE(dh_group_from_wire(2).ok());
  EXPECT_EQ(*prf_from_wire(7), PrfAlgorithm::kHmacSha2_512);
  EXPECT_FALSE(encr_from_wire(3).ok());
  EXPECT_FALSE(validate_cipher_suite({EncrAlgorithm::kAesGcm16, 128,
                                      IntegAlgorithm::kHmacSha2_256_128}).ok());
  EXPECT_FALSE(validate_cipher_suite({EncrAlgorithm::kAesCbc, 128, IntegAlgorithm::kNone}).ok());
  EXPECT_FALSE(validate_cipher_suite({EncrAlgorithm::kAesCbc, 100,
                                      IntegAlgorithm::kHmacSha1_96}).ok());
  EXPECT_EQ(encr_key_length({EncrAlgorithm::kAesGcm16, 256, IntegAlgorithm::kNone}), 36u);
}

}  // namespace
}  // namespace segw::cp::crypto
