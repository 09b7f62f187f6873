// Helpers for the crypto tests: hex conversion and a small runtime PKI
// (keys and certificates made with the OpenSSL API for each test run).
#pragma once

#include <cstdint>
#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/secure_bytes.h"
#include "controlplane/crypto/x509.h"

namespace segw::cp::crypto::test {

// Hex (any case, spaces ignored) to bytes; aborts the test binary on bad
// input (test constants only).
std::vector<uint8_t> from_hex(std::string_view text);
std::string to_hex(std::span<const uint8_t> bytes);
inline std::vector<uint8_t> bytes_of(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

// Fresh keys: RSA (bits), EC on a named curve ("P-256", "P-384", "P-521").
PkeyPtr make_rsa_key(unsigned bits = 2048);
PkeyPtr make_ec_key(const char* curve);

struct CertSpec {
  std::string common_name;
  bool is_ca = false;
  long not_before_offset_s = -3600;   // relative to now
  long not_after_offset_s = 86400;
  std::string subject_alt_names;      // e.g. "DNS:gw.example.com,IP:192.0.2.1"
  std::string extended_key_usage;     // e.g. "serverAuth"; empty: none
  std::string key_usage;              // e.g. "digitalSignature"; empty: none

  // Chained setters (designated initializers trip -Wmissing-field-initializers).
  CertSpec& cn(std::string value) { common_name = std::move(value); return *this; }
  CertSpec& ca() { is_ca = true; return *this; }
  CertSpec& validity(long not_before, long not_after) {
    not_before_offset_s = not_before;
    not_after_offset_s = not_after;
    return *this;
  }
  CertSpec& san(std::string value) { subject_alt_names = std::move(value); return *this; }
  CertSpec& eku(std::string value) { extended_key_usage = std::move(value); return *this; }
  CertSpec& ku(std::string value) { key_usage = std::move(value); return *this; }
};

// A certificate for `key`, signed by `issuer_key` (self-signed when
// issuer is null). Subject "C=DE, O=segw test, CN=<common_name>".
Certificate make_cert(const CertSpec& spec, EVP_PKEY* key, const Certificate* issuer,
                      EVP_PKEY* issuer_key);

}  // namespace segw::cp::crypto::test
