// Hex helpers and the runtime test PKI.
#include "tests/unit/controlplane/crypto/test_support.h"

#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace segw::cp::crypto::test {

std::vector<uint8_t> from_hex(std::string_view text) {
  std::vector<uint8_t> out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else if (c == ' ' || c == '\n') continue;
    else { std::fprintf(stderr, "bad hex constant\n"); std::abort(); }
    if (high < 0) { high = v; } else { out.push_back(static_cast<uint8_t>(high << 4 | v)); high = -1; }
  }
  if (high >= 0) { std::fprintf(stderr, "odd hex constant\n"); std::abort(); }
  return out;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

PkeyPtr make_rsa_key(unsigned bits) {
  return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
}

PkeyPtr make_ec_key(const char* curve) {
  return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
}

namespace {
void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  if (value.empty()) return;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) { std::fprintf(stderr, "bad extension %s\n", value.c_str()); std::abort(); }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}
}  // namespace

Certificate make_cert(const CertSpec& spec, EVP_PKEY* key, const Certificate* issuer,
                      EVP_PKEY* issuer_key) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before_offset_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after_offset_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("DE"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("segw test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                             -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->get() : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert));
  add_extension(cert.get(), issuer_cert, NID_basic_constraints,
                spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  add_extension(cert.get(), issuer_cert, NID_key_usage,
                spec.is_ca ? "critical,keyCertSign,cRLSign" : spec.key_usage);
  add_extension(cert.get(), issuer_cert, NID_ext_key_usage, spec.extended_key_usage);
  add_extension(cert.get(), issuer_cert, NID_subject_alt_name, spec.subject_alt_names);
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
    std::fprintf(stderr, "X509_sign failed\n");
    std::abort();
  }
  return Certificate::share(cert.get());
}

}  // namespace segw::cp::crypto::test
