// D-H groups 14, 19, 20, 31: RFC 5903 §8 and RFC 7748 §6.1 known answers,
// MODP-14 cross-checked with an independent BN_mod_exp, and rejection of
// invalid peer values.
#include <gtest/gtest.h>

#include <openssl/core_names.h>

#include "controlplane/crypto/dh.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::crypto {
namespace {

using test::from_hex;
using test::to_hex;

struct EcpVector {
  DhGroup group;
  const char* i;
  const char* gix_giy;
  const char* r;
  const char* grx_gry;
  const char* girx;
};

// RFC 5903 §8.1 (256-bit) and §8.2 (384-bit).
const EcpVector kEcpVectors[] = {
    {DhGroup::kEcp256,
     "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
     "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180"
     "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
     "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
     "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63"
     "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
     "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE"},
    {DhGroup::kEcp384,
     "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655"
     "E35B5380 41E649EE 3FAEF896 783AB194",
     "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6"
     "DE3AC808 ACB4BDB4 C88732AE E95F41AA"
     "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E"
     "EB9FCFF3 C2C947DA E69B4C63 4573A81C",
     "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942"
     "E0308312 916B8ED2 960E4BD5 5A7448FC",
     "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D"
     "0D1AC43A 0336DEF9 6FDA41D0 774A3571"
     "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF"
     "F83FA401 42209DFF 5EAAD96D B9E6386C",
     "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4"
     "D6031355 69B9E9D0 9CF5D4A2 70F59746"},
};

TEST(DhTest, Rfc5903EcpVectors) {
  for (const EcpVector& v : kEcpVectors) {
    SCOPED_TRACE(to_string(v.group));
    auto initiator = DhKeyPair::from_private_key(v.group, from_hex(v.i));
    auto responder = DhKeyPair::from_private_key(v.group, from_hex(v.r));
    ASSERT_TRUE(initiator.ok()) << initiator.error();
    ASSERT_TRUE(responder.ok()) << responder.error();
    // KE payload data: x | y without the 04 octet (RFC 5903 §7).
    EXPECT_EQ(to_hex(initiator->public_value()), to_hex(from_hex(v.gix_giy)));
    EXPECT_EQ(to_hex(responder->public_value()), to_hex(from_hex(v.grx_gry)));
    auto ir = initiator->compute_shared_secret(from_hex(v.grx_gry));
    auto ri = responder->compute_shared_secret(from_hex(v.gix_giy));
    ASSERT_TRUE(ir.ok()) << ir.error();
    ASSERT_TRUE(ri.ok()) << ri.error();
    EXPECT_EQ(to_hex(*ir), to_hex(from_hex(v.girx)));
    EXPECT_EQ(to_hex(*ri), to_hex(from_hex(v.girx)));
  }
}

// RFC 7748 §6.1.
TEST(DhTest, Rfc7748X25519Vector) {
  auto alice = DhKeyPair::from_private_key(
      DhGroup::kCurve25519,
      from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
  auto bob = DhKeyPair::from_private_key(
      DhGroup::kCurve25519,
      from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_EQ(to_hex(alice->public_value()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(to_hex(bob->public_value()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const char* k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  EXPECT_EQ(to_hex(*alice->compute_shared_secret(bob->public_value())), k);
  EXPECT_EQ(to_hex(*bob->compute_shared_secret(alice->public_value())), k);
}

TEST(DhTest, GeneratedPairsAgreeInEveryGroup) {
  for (DhGroup group : {DhGroup::kModp2048, DhGroup::kEcp256, DhGroup::kEcp384,
                        DhGroup::kCurve25519}) {
    SCOPED_TRACE(to_string(group));
    auto a = DhKeyPair::generate(group);
    auto b = DhKeyPair::generate(group);
    ASSERT_TRUE(a.ok()) << a.error();
    ASSERT_TRUE(b.ok()) << b.error();
    EXPECT_EQ(a->public_value().size(), dh_public_value_length(group));
    auto ab = a->compute_shared_secret(b->public_value());
    auto ba = b->compute_shared_secret(a->public_value());
    ASSERT_TRUE(ab.ok()) << ab.error();
    ASSERT_TRUE(ba.ok()) << ba.error();
    EXPECT_EQ(ab->size(), dh_shared_secret_length(group));
    EXPECT_TRUE(*ab == *ba);
  }
}

// MODP 2048: both directions agree, and equal y^x mod p computed directly
// with BN_mod_exp from the exported private exponent (not through the
// EVP derive path the implementation uses).
TEST(DhTest, Modp2048CrossCheckedWithBnModExp) {
  auto a = DhKeyPair::generate(DhGroup::kModp2048);
  auto b = DhKeyPair::generate(DhGroup::kModp2048);
  ASSERT_TRUE(a.ok() && b.ok());
  auto ab = a->compute_shared_secret(b->public_value());
  auto ba = b->compute_shared_secret(a->public_value());
  ASSERT_TRUE(ab.ok() && ba.ok());
  EXPECT_TRUE(*ab == *ba);

  BIGNUM* raw_x = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(a->pkey(), OSSL_PKEY_PARAM_PRIV_KEY, &raw_x), 1);
  BignumPtr x(raw_x);
  BignumPtr p(BN_get_rfc3526_prime_2048(nullptr));
  BignumPtr y(BN_bin2bn(b->public_value().data(), 256, nullptr));
  BignumPtr k(BN_new());
  BnCtxPtr ctx(BN_CTX_new());
  ASSERT_EQ(BN_mod_exp(k.get(), y.get(), x.get(), p.get(), ctx.get()), 1);
  std::vector<uint8_t> expected(256);
  ASSERT_EQ(BN_bn2binpad(k.get(), expected.data(), 256), 256);
  EXPECT_EQ(to_hex(*ab), to_hex(expected));

  // And a known private exponent gives public value 2^x mod p.
  auto two = DhKeyPair::from_private_key(DhGroup::kModp2048, from_hex("01"));
  ASSERT_TRUE(two.ok()) << two.error();
  std::vector<uint8_t> expected_two(256);
  expected_two[255] = 2;
  EXPECT_EQ(two->public_value(), expected_two);
}

TEST(DhTest, RejectsWrongLengths) {
  for (DhGroup group : {DhGroup::kModp2048, DhGroup::kEcp256, DhGroup::kEcp384,
                        DhGroup::kCurve25519}) {
    SCOPED_TRACE(to_string(group));
    auto pair = DhKeyPair::generate(group);
    ASSERT_TRUE(pair.ok());
    const size_t n = dh_public_value_length(group);
    for (size_t length : {size_t{0}, n - 1, n + 1, 2 * n}) {
      auto result = pair->compute_shared_secret(std::vector<uint8_t>(length, 7));
      ASSERT_FALSE(result.ok());
      EXPECT_NE(result.error().find("expected " + std::to_string(n)), std::string::npos)
          << result.error();
    }
  }
}

TEST(DhTest, RejectsInvalidModpValues) {
  auto pair = DhKeyPair::generate(DhGroup::kModp2048);
  ASSERT_TRUE(pair.ok());
  BignumPtr p(BN_get_rfc3526_prime_2048(nullptr));
  auto encode = [](const BIGNUM* value) {
    std::vector<uint8_t> out(256);
    BN_bn2binpad(value, out.data(), 256);
    return out;
  };
  std::vector<uint8_t> zero(256), one(256);
  one[255] = 1;
  BignumPtr p_minus_1(BN_dup(p.get()));
  BN_sub_word(p_minus_1.get(), 1);
  BignumPtr p_plus_1(BN_dup(p.get()));
  BN_add_word(p_plus_1.get(), 1);
  const std::vector<uint8_t> all_ff(256, 0xff);
  for (const auto& bad : {zero, one, encode(p.get()), encode(p_minus_1.get()),
                          encode(p_plus_1.get()), all_ff}) {
    auto result = pair->compute_shared_secret(bad);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("MODP_2048"), std::string::npos) << result.error();
  }
  // In range but outside the order-q subgroup of the safe prime p = 2q+1:
  // 2 generates that subgroup (valid), p-2 = -2 does not (q is odd), and
  // OpenSSL's public check (y^q mod p == 1) rejects it.
  std::vector<uint8_t> two(256);
  two[255] = 2;
  EXPECT_TRUE(pair->compute_shared_secret(two).ok());
  BignumPtr p_minus_2(BN_dup(p.get()));
  BN_sub_word(p_minus_2.get(), 2);
  EXPECT_FALSE(pair->compute_shared_secret(encode(p_minus_2.get())).ok());
}

TEST(DhTest, RejectsPointsOffTheCurve) {
  for (const EcpVector& v : kEcpVectors) {
    SCOPED_TRACE(to_string(v.group));
    auto pair = DhKeyPair::generate(v.group);
    ASSERT_TRUE(pair.ok());
    auto point = from_hex(v.grx_gry);
    point.back() ^= 1;  // y off by one: not on the curve
    auto result = pair->compute_shared_secret(point);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("not a point on"), std::string::npos) << result.error();
    std::vector<uint8_t> zeros(point.size());
    EXPECT_FALSE(pair->compute_shared_secret(zeros).ok());
    std::vector<uint8_t> ones(point.size(), 0xff);  // coordinates >= p
    EXPECT_FALSE(pair->compute_shared_secret(ones).ok());
  }
}

TEST(DhTest, RejectsSmallOrderX25519Points) {
  auto pair = DhKeyPair::generate(DhGroup::kCurve25519);
  ASSERT_TRUE(pair.ok());
  // u = 0 and u = 1 (order 1 and 4), and the order-8 point of RFC 7748
  // discussions, all give an all-zero result.
  const std::vector<std::vector<uint8_t>> small_order = {
      std::vector<uint8_t>(32, 0),
      from_hex("0100000000000000000000000000000000000000000000000000000000000000"),
      from_hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
      from_hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
      from_hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
  };
  for (const auto& point : small_order) {
    auto result = pair->compute_shared_secret(point);
    ASSERT_FALSE(result.ok()) << to_hex(point);
    EXPECT_NE(result.error().find("small"), std::string::npos) << result.error();
  }
}

}  // namespace
}  // namespace segw::cp::crypto
