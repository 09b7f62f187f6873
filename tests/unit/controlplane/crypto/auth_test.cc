// AUTH: signed octets, PSK AUTH (independent value), and signatures for
// methods 1, 9/10/11 and 14 with keys made at run time.
#include <gtest/gtest.h>

#include "controlplane/crypto/auth.h"
#include "controlplane/crypto/prf.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::crypto {
namespace {

using test::bytes_of;
using test::CertSpec;
using test::from_hex;
using test::to_hex;

// Expected values from gen_independent_vectors.py (Python hmac).
TEST(PskAuthTest, MatchesIndependentComputation) {
  std::vector<uint8_t> id_body{2, 0, 0, 0};  // ID_FQDN | RESERVED
  const auto fqdn = bytes_of("gw.example.com");
  id_body.insert(id_body.end(), fqdn.begin(), fqdn.end());
  auto octets = build_signed_octets(PrfAlgorithm::kHmacSha2_256, bytes_of("RealMessage1"),
                                    std::vector<uint8_t>(32, 0x77),
                                    std::vector<uint8_t>(32, 0x88), id_body);
  ASSERT_TRUE(octets.ok());
  EXPECT_EQ(to_hex(*octets),
            "5265616c4d657373616765317777777777777777777777777777777777777777777777777777777777777"
            "777e71109f95f27df9bb43b52794755d73f6ac6c8593df8b9c11449e642b791d91a");
  const auto psk = bytes_of("correct horse battery staple");
  auto auth = compute_psk_auth(PrfAlgorithm::kHmacSha2_256, psk, *octets);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(to_hex(*auth), "43e8e3c67d1914ad3daf6640b377923cb3372aadab93dd30546d8b0eb115f0f6");
  EXPECT_TRUE(verify_psk_auth(PrfAlgorithm::kHmacSha2_256, psk, *octets, *auth).ok());
  auto wrong = std::vector<uint8_t>(auth->begin(), auth->end());
  wrong[0] ^= 1;
  EXPECT_FALSE(verify_psk_auth(PrfAlgorithm::kHmacSha2_256, psk, *octets, wrong).ok());
  EXPECT_FALSE(verify_psk_auth(PrfAlgorithm::kHmacSha2_256, bytes_of("other"), *octets, *auth).ok());
  EXPECT_FALSE(verify_psk_auth(PrfAlgorithm::kHmacSha2_256, psk, *octets,
                               std::span(*auth).first(31)).ok());
}

// RFC 7427 Appendix A blobs, as printed there (A.1, A.3, A.4.3).
TEST(AlgorithmIdentifierTest, MatchesRfc7427Appendix) {
  EXPECT_EQ(to_hex(*encode_algorithm_identifier({SignatureScheme::kRsaPkcs1v15,
                                                 HashAlgorithm::kSha256})),
            "300d06092a864886f70d01010b0500");
  EXPECT_EQ(to_hex(*encode_algorithm_identifier({SignatureScheme::kRsaPkcs1v15,
                                                 HashAlgorithm::kSha512})),
            "300d06092a864886f70d01010d0500");
  EXPECT_EQ(to_hex(*encode_algorithm_identifier({SignatureScheme::kEcdsa, HashAlgorithm::kSha256})),
            "300a06082a8648ce3d040302");
  EXPECT_EQ(to_hex(*encode_algorithm_identifier({SignatureScheme::kEcdsa, HashAlgorithm::kSha384})),
            "300a06082a8648ce3d040303");
  EXPECT_EQ(to_hex(*encode_algorithm_identifier({SignatureScheme::kRsaPss, HashAlgorithm::kSha256})),
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f7"
            "0d010108300d06096086480165030402010500a203020120");
  EXPECT_FALSE(encode_algorithm_identifier({SignatureScheme::kEcdsa, HashAlgorithm::kSha1}).ok());
  for (auto scheme : {SignatureScheme::kRsaPkcs1v15, SignatureScheme::kRsaPss,
                      SignatureScheme::kEcdsa}) {
    for (auto hash : {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
      auto blob = encode_algorithm_identifier({scheme, hash});
      ASSERT_TRUE(blob.ok());
      // Each blob is one well-formed DER SEQUENCE that OpenSSL parses.
      const unsigned char* cursor = blob->data();
      X509AlgorPtr algor(d2i_X509_ALGOR(nullptr, &cursor, static_cast<long>(blob->size())));
      ASSERT_TRUE(algor) << to_hex(*blob);
      EXPECT_EQ(cursor, blob->data() + blob->size());
      auto parsed = parse_algorithm_identifier(*blob);
      ASSERT_TRUE(parsed.ok());
      EXPECT_EQ(*parsed, (SignatureAlgorithm{scheme, hash}));
    }
  }
  EXPECT_FALSE(parse_algorithm_identifier(from_hex("300a06082a8648ce3d040399")).ok());
}

class SignatureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = test::make_rsa_key(2048).release();
    p256_ = test::make_ec_key("P-256").release();
    p384_ = test::make_ec_key("P-384").release();
    p521_ = test::make_ec_key("P-521").release();
  }
  static void TearDownTestSuite() {
    for (EVP_PKEY* key : {rsa_, p256_, p384_, p521_}) EVP_PKEY_free(key);
  }
  // The verifier only sees a certificate's public key.
  static Certificate cert_for(EVP_PKEY* key) {
    return test::make_cert(CertSpec().cn("signer"), key, nullptr, nullptr);
  }
  static inline EVP_PKEY* rsa_ = nullptr;
  static inline EVP_PKEY* p256_ = nullptr;
  static inline EVP_PKEY* p384_ = nullptr;
  static inline EVP_PKEY* p521_ = nullptr;
  const std::vector<uint8_t> octets_ = bytes_of("IKE_SA_INIT message | nonce | prf(SK_p, ID)");
};

void expect_sign_verify(AuthMethod method, EVP_PKEY* key, const Certificate& cert,
                        std::span<const uint8_t> octets,
                        std::optional<SignatureAlgorithm> algorithm = {}) {
  auto auth = sign_auth(method, key, octets, algorithm);
  ASSERT_TRUE(auth.ok()) << auth.error();
  auto status = verify_auth(method, cert.public_key(), octets, *auth);
  EXPECT_TRUE(status.ok()) << status.error();
  std::vector<uint8_t> other(octets.begin(), octets.end());
  other[3] ^= 1;
  auto bad = verify_auth(method, cert.public_key(), other, *auth);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("verification failed"), std::string::npos) << bad.error();
  auto flipped = *auth;
  flipped.back() ^= 1;
  EXPECT_FALSE(verify_auth(method, cert.public_key(), octets, flipped).ok());
}

TEST_F(SignatureTest, RsaPkcs1Method1) {
  expect_sign_verify(AuthMethod::kRsaSignature, rsa_, cert_for(rsa_), octets_);
}

TEST_F(SignatureTest, EcdsaMethods9To11FixedWidth) {
  const struct {
    AuthMethod method;
    EVP_PKEY* key;
    size_t length;
  } cases[] = {{AuthMethod::kEcdsaSha256P256, p256_, 64},
               {AuthMethod::kEcdsaSha384P384, p384_, 96},
               {AuthMethod::kEcdsaSha512P521, p521_, 132}};
  for (const auto& c : cases) {
    SCOPED_TRACE(to_string(c.method));
    for (int i = 0; i < 8; ++i) {  // several signatures: r or s with leading zeros
      auto auth = sign_auth(c.method, c.key, octets_);
      ASSERT_TRUE(auth.ok()) << auth.error();
      EXPECT_EQ(auth->size(), c.length);
    }
    expect_sign_verify(c.method, c.key, cert_for(c.key), octets_);
  }
  // Wrong curve for the method, wrong signature length.
  EXPECT_FALSE(sign_auth(AuthMethod::kEcdsaSha256P256, p384_, octets_).ok());
  EXPECT_FALSE(sign_auth(AuthMethod::kEcdsaSha256P256, rsa_, octets_).ok());
  auto auth = sign_auth(AuthMethod::kEcdsaSha256P256, p256_, octets_);
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE(verify_auth(AuthMethod::kEcdsaSha256P256, cert_for(p256_).public_key(), octets_,
                           std::span(*auth).first(63)).ok());
  EXPECT_FALSE(verify_auth(AuthMethod::kEcdsaSha256P256, cert_for(p384_).public_key(), octets_,
                           *auth).ok());
}

TEST_F(SignatureTest, DigitalSignatureMethod14) {
  const Certificate rsa_cert = cert_for(rsa_);
  for (auto hash : {HashAlgorithm::kSha256, HashAlgorithm::kSha384, HashAlgorithm::kSha512}) {
    SCOPED_TRACE(to_string(hash));
    expect_sign_verify(AuthMethod::kDigitalSignature, rsa_, rsa_cert, octets_,
                       SignatureAlgorithm{SignatureScheme::kRsaPkcs1v15, hash});
    expect_sign_verify(AuthMethod::kDigitalSignature, rsa_, rsa_cert, octets_,
                       SignatureAlgorithm{SignatureScheme::kRsaPss, hash});
    expect_sign_verify(AuthMethod::kDigitalSignature, p256_, cert_for(p256_), octets_,
                       SignatureAlgorithm{SignatureScheme::kEcdsa, hash});
    expect_sign_verify(AuthMethod::kDigitalSignature, p384_, cert_for(p384_), octets_,
                       SignatureAlgorithm{SignatureScheme::kEcdsa, hash});
  }
  // Layout: ASN.1 length | AlgorithmIdentifier | signature.
  auto auth = sign_auth(AuthMethod::kDigitalSignature, rsa_, octets_,
                        SignatureAlgorithm{SignatureScheme::kRsaPss, HashAlgorithm::kSha256});
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ((*auth)[0], 0x43);
  EXPECT_EQ(auth->size(), 1u + 0x43 + 256);
  // A PSS signature relabelled as PKCS#1 v1.5 fails.
  auto relabelled = *auth;
  const auto pkcs1 = *encode_algorithm_identifier({SignatureScheme::kRsaPkcs1v15,
                                                   HashAlgorithm::kSha256});
  relabelled.erase(relabelled.begin(), relabelled.begin() + 1 + 0x43);
  relabelled.insert(relabelled.begin(), pkcs1.begin(), pkcs1.end());
  relabelled.insert(relabelled.begin(), static_cast<uint8_t>(pkcs1.size()));
  EXPECT_FALSE(verify_auth(AuthMethod::kDigitalSignature, rsa_cert.public_key(), octets_,
                           relabelled).ok());
  // Hash not announced.
  const HashAlgorithm only_512[] = {HashAlgorithm::kSha512};
  auto status = verify_auth(AuthMethod::kDigitalSignature, rsa_cert.public_key(), octets_, *auth,
                            only_512);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().find("SIGNATURE_HASH_ALGORITHMS"), std::string::npos);
  // Key type mismatch and truncated data.
  EXPECT_FALSE(sign_auth(AuthMethod::kDigitalSignature, p256_, octets_,
                         SignatureAlgorithm{SignatureScheme::kRsaPss, HashAlgorithm::kSha256})
                   .ok());
  EXPECT_FALSE(verify_auth(AuthMethod::kDigitalSignature, cert_for(p256_).public_key(), octets_,
                           *auth).ok());
  for (size_t length : {size_t{0}, size_t{1}, size_t{0x43}, size_t{0x44}}) {
    EXPECT_FALSE(verify_auth(AuthMethod::kDigitalSignature, rsa_cert.public_key(), octets_,
                             std::span(*auth).first(length)).ok())
        << length;
  }
  EXPECT_FALSE(sign_auth(AuthMethod::kDigitalSignature, rsa_, octets_).ok());
  EXPECT_FALSE(sign_auth(AuthMethod::kSharedKeyMic, rsa_, octets_).ok());
}

}  // namespace
}  // namespace segw::cp::crypto
