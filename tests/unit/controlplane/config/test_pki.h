// A throw-away PKI on disk for the configuration tests: a temporary
// directory holding a CA, a gateway certificate and its key as PEM files
// (made with the crypto tests' runtime PKI), removed with the object.
#pragma once

#include <openssl/pem.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/x509.h"
#include "tests/unit/controlplane/crypto/test_support.h"

namespace segw::cp::config::test {

class TempDirectory {
 public:
  TempDirectory() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("segw_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    std::filesystem::create_directories((path_ / name).parent_path());
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
  }

 private:
  std::filesystem::path path_;
};

inline bool write_cert(const std::string& path, const crypto::Certificate& cert) {
  crypto::BioPtr bio(BIO_new_file(path.c_str(), "w"));
  return bio && PEM_write_bio_X509(bio.get(), cert.get()) == 1;
}

inline bool write_key(const std::string& path, EVP_PKEY* key) {
  crypto::BioPtr bio(BIO_new_file(path.c_str(), "w"));
  return bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Under `dir`: certs/ca.pem (a CA), certs/ca2.pem (another CA),
// certs/segw.pem (subject C=DE, O=segw test, CN=segw; subjectAltName
// `san`, signed by the CA), certs/segw.key (its key), certs/other.key (a
// key of no certificate), certs/garbage.pem (not PEM).
inline void make_pki(const TempDirectory& dir, const std::string& san) {
  std::filesystem::create_directories(dir.path() / "certs");
  auto ca_key = crypto::test::make_ec_key("P-256");
  auto ca = crypto::test::make_cert(crypto::test::CertSpec().cn("segw test CA").ca(), ca_key.get(),
                                    nullptr, nullptr);
  auto ca2_key = crypto::test::make_ec_key("P-256");
  auto ca2 = crypto::test::make_cert(crypto::test::CertSpec().cn("segw test CA 2").ca(),
                                     ca2_key.get(), nullptr, nullptr);
  auto key = crypto::test::make_ec_key("P-256");
  auto cert = crypto::test::make_cert(crypto::test::CertSpec().cn("segw").san(san), key.get(), &ca,
                                      ca_key.get());
  auto other = crypto::test::make_ec_key("P-256");
  write_cert(dir.file("certs/ca.pem"), ca);
  write_cert(dir.file("certs/ca2.pem"), ca2);
  write_cert(dir.file("certs/segw.pem"), cert);
  write_key(dir.file("certs/segw.key"), key.get());
  write_key(dir.file("certs/other.key"), other.get());
  dir.write("certs/garbage.pem", "this is not a certificate\n");
}

}  // namespace segw::cp::config::test
