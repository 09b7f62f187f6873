// X.509: PEM loading, chain validation (success, wrong CA, expired, not yet
// valid, purpose) and identity matching for each ID type.
#include <gtest/gtest.h>

#include <openssl/pem.h>

#include <cstdio>
#include <filesystem>

#include "controlplane/crypto/x509.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::crypto {
namespace {

using test::bytes_of;
using test::CertSpec;
using test::from_hex;

class X509Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_key_ = test::make_ec_key("P-256").release();
    other_root_key_ = test::make_ec_key("P-256").release();
    inter_key_ = test::make_ec_key("P-256").release();
    leaf_key_ = test::make_rsa_key(2048).release();
  }
  static void TearDownTestSuite() {
    for (EVP_PKEY* key : {root_key_, other_root_key_, inter_key_, leaf_key_}) EVP_PKEY_free(key);
  }
  void SetUp() override {
    root_.emplace(test::make_cert(CertSpec().cn("segw root").ca(), root_key_,
                                  nullptr, nullptr));
    other_root_.emplace(test::make_cert(CertSpec().cn("other root").ca(),
                                        other_root_key_, nullptr, nullptr));
    inter_.emplace(test::make_cert(CertSpec().cn("segw intermediate").ca(),
                                   inter_key_, &*root_, root_key_));
  }
  Certificate leaf(CertSpec spec) {
    if (spec.common_name.empty()) spec.common_name = "gw.example.com";
    if (spec.subject_alt_names.empty()) {
      spec.subject_alt_names =
          "DNS:gw.example.com,DNS:alt.example.net,email:ipsec@example.com,IP:192.0.2.1,"
          "IP:2001:db8::1";
    }
    return test::make_cert(spec, leaf_key_, &*inter_, inter_key_);
  }
  CertificateStore store_of(const Certificate& ca) {
    auto store = CertificateStore::create();
    EXPECT_TRUE(store.ok());
    EXPECT_TRUE(store->add_ca(ca).ok());
    return std::move(store).value();
  }

  static inline EVP_PKEY* root_key_ = nullptr;
  static inline EVP_PKEY* other_root_key_ = nullptr;
  static inline EVP_PKEY* inter_key_ = nullptr;
  static inline EVP_PKEY* leaf_key_ = nullptr;
  std::optional<Certificate> root_, other_root_, inter_;
};

TEST_F(X509Test, ChainValidatesWithIntermediateFromPeer) {
  const Certificate cert = leaf(CertSpec());
  CertificateStore store = store_of(*root_);
  const Certificate intermediates[] = {*inter_};
  auto status = store.verify(cert, intermediates);
  EXPECT_TRUE(status.ok()) << status.error();
  // Without the intermediate the chain is incomplete.
  auto missing = store.verify(cert, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("unable to get local issuer certificate"), std::string::npos)
      << missing.error();
}

TEST_F(X509Test, WrongCaIsRejected) {
  CertificateStore store = store_of(*other_root_);
  const Certificate intermediates[] = {*inter_};
  auto status = store.verify(leaf(CertSpec()), intermediates);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().find("issuer certificate"), std::string::npos) << status.error();
}

TEST_F(X509Test, ExpiredAndNotYetValidAreRejected) {
  CertificateStore store = store_of(*root_);
  const Certificate intermediates[] = {*inter_};
  auto expired = store.verify(
      leaf(CertSpec().validity(-7200, -3600)), intermediates);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.error().find("certificate has expired"), std::string::npos)
      << expired.error();
  auto future = store.verify(leaf(CertSpec().validity(3600, 7200)),
                             intermediates);
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.error().find("not yet valid"), std::string::npos) << future.error();
  // Validation at an explicit time: the same certificate is fine then.
  const Certificate later = leaf(CertSpec().validity(3600, 7200));
  EXPECT_TRUE(store.verify(later, intermediates, time(nullptr) + 5400).ok());
}

TEST_F(X509Test, PurposeChecks) {
  CertificateStore store = store_of(*root_);
  const Certificate intermediates[] = {*inter_};
  EXPECT_TRUE(store.verify(leaf(CertSpec().eku("serverAuth,clientAuth")), intermediates)
                  .ok());
  EXPECT_TRUE(store.verify(leaf(CertSpec().eku("1.3.6.1.5.5.7.3.17")), intermediates)
                  .ok());
  auto code_signing = store.verify(leaf(CertSpec().eku("codeSigning")), intermediates);
  ASSERT_FALSE(code_signing.ok());
  EXPECT_NE(code_signing.error().find("extended key usage"), std::string::npos)
      << code_signing.error();
  EXPECT_TRUE(store.verify(leaf(CertSpec().ku("critical,digitalSignature")), intermediates).ok());
  EXPECT_FALSE(store.verify(leaf(CertSpec().ku("critical,keyEncipherment")), intermediates).ok());
  // A leaf signed by a non-CA certificate is no chain.
  const Certificate not_ca = leaf(CertSpec().cn("not a ca"));
  const Certificate below = test::make_cert(CertSpec().cn("below"), root_key_, &not_ca,
                                            leaf_key_);
  const Certificate chain[] = {not_ca, *inter_};
  EXPECT_FALSE(store.verify(below, chain).ok());
}

TEST_F(X509Test, IdentityMatching) {
  const Certificate cert = leaf(CertSpec());
  EXPECT_TRUE(match_identity(cert, IdType::kFqdn, bytes_of("gw.example.com")).ok());
  EXPECT_TRUE(match_identity(cert, IdType::kFqdn, bytes_of("GW.Example.COM")).ok());
  EXPECT_TRUE(match_identity(cert, IdType::kFqdn, bytes_of("alt.example.net")).ok());
  auto wrong_fqdn = match_identity(cert, IdType::kFqdn, bytes_of("evil.example.com"));
  ASSERT_FALSE(wrong_fqdn.ok());
  EXPECT_NE(wrong_fqdn.error().find("evil.example.com"), std::string::npos);
  EXPECT_FALSE(match_identity(cert, IdType::kFqdn, bytes_of("example.com")).ok());
  EXPECT_FALSE(match_identity(cert, IdType::kFqdn, {}).ok());

  EXPECT_TRUE(match_identity(cert, IdType::kRfc822Addr, bytes_of("ipsec@example.com")).ok());
  EXPECT_FALSE(match_identity(cert, IdType::kRfc822Addr, bytes_of("root@example.com")).ok());

  EXPECT_TRUE(match_identity(cert, IdType::kIpv4Addr, from_hex("c0000201")).ok());
  EXPECT_FALSE(match_identity(cert, IdType::kIpv4Addr, from_hex("c0000202")).ok());
  EXPECT_FALSE(match_identity(cert, IdType::kIpv4Addr, from_hex("c00002")).ok());
  EXPECT_TRUE(match_identity(cert, IdType::kIpv6Addr,
                             from_hex("20010db8000000000000000000000001")).ok());
  EXPECT_FALSE(match_identity(cert, IdType::kIpv6Addr,
                              from_hex("20010db8000000000000000000000002")).ok());
  // An IPv4 identity never matches an IPv6 SAN and vice versa.
  EXPECT_FALSE(match_identity(cert, IdType::kIpv6Addr, from_hex("c0000201")).ok());

  // The CN alone is no FQDN identity (subjectAltName only).
  const Certificate cn_only = leaf(CertSpec().cn("cn-only.example.com").san("DNS:other.example.com"));
  EXPECT_FALSE(match_identity(cn_only, IdType::kFqdn, bytes_of("cn-only.example.com")).ok());
}

TEST_F(X509Test, DerDnMatchingUsesCanonicalForm) {
  const Certificate cert = leaf(CertSpec());
  EXPECT_TRUE(match_identity(cert, IdType::kDerAsn1Dn, cert.subject_der()).ok());
  // Same DN encoded differently (UTF8String instead of PrintableString,
  // different case): canonical comparison still matches.
  X509NamePtr name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "C", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("de"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("SEGW  Test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("GW.example.com"), -1, -1, 0);
  unsigned char* raw = nullptr;
  const int length = i2d_X509_NAME(name.get(), &raw);
  ASSERT_GT(length, 0);
  std::vector<uint8_t> variant(raw, raw + length);
  OPENSSL_free(raw);
  EXPECT_NE(variant, cert.subject_der());
  auto status = match_identity(cert, IdType::kDerAsn1Dn, variant);
  EXPECT_TRUE(status.ok()) << status.error();
  // Another DN, a truncated DN, trailing garbage.
  EXPECT_FALSE(match_identity(cert, IdType::kDerAsn1Dn, root_->subject_der()).ok());
  auto der = cert.subject_der();
  EXPECT_FALSE(match_identity(cert, IdType::kDerAsn1Dn, std::span(der).first(der.size() - 1)).ok());
  der.push_back(0);
  EXPECT_FALSE(match_identity(cert, IdType::kDerAsn1Dn, der).ok());
}

TEST_F(X509Test, PemFilesAndDer) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("segw_crypto_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string ca_path = (dir / "ca.pem").string();
  const std::string key_path = (dir / "key.pem").string();
  {
    BioPtr out(BIO_new_file(ca_path.c_str(), "w"));
    ASSERT_TRUE(out);
    PEM_write_bio_X509(out.get(), root_->get());
    PEM_write_bio_X509(out.get(), inter_->get());
    BioPtr key_out(BIO_new_file(key_path.c_str(), "w"));
    PEM_write_bio_PrivateKey(key_out.get(), leaf_key_, nullptr, nullptr, 0, nullptr, nullptr);
  }
  auto all = Certificate::load_pem_file_all(ca_path);
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].der(), root_->der());
  auto store = CertificateStore::create();
  ASSERT_TRUE(store->add_ca_file(ca_path).ok());
  EXPECT_TRUE(store->verify(leaf(CertSpec()), {}).ok());  // intermediate trusted from the file

  auto key = PrivateKey::load_pem_file(key_path);
  ASSERT_TRUE(key.ok()) << key.error();
  EXPECT_EQ(EVP_PKEY_eq(key->get(), leaf_key_), 1);

  auto from_der = Certificate::from_der(leaf(CertSpec()).der());
  ASSERT_TRUE(from_der.ok());
  auto der = leaf(CertSpec()).der();
  der.push_back(0);
  EXPECT_FALSE(Certificate::from_der(der).ok());
  EXPECT_FALSE(Certificate::from_der(std::span(der).first(100)).ok());
  EXPECT_FALSE(Certificate::load_pem_file((dir / "missing.pem").string()).ok());
  EXPECT_FALSE(PrivateKey::load_pem_file(ca_path).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace segw::cp::crypto
