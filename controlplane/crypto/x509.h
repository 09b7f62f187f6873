// X.509 for IKE: certificates and private keys from PEM/DER, chain
// validation against configured CAs (RFC 4945 §5), and matching an IKE
// identity (RFC 7296 §3.5) against a certificate.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/openssl_types.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// A certificate (shared, reference-counted X509; copies are cheap). Const
// methods may be called from any thread.
class Certificate {
 public:
  // Errors: unreadable file, no certificate in it, bad PEM/DER.
  static shared::Result<Certificate> load_pem_file(const std::string& path);
  // Every certificate of a PEM bundle (at least one).
  static shared::Result<std::vector<Certificate>> load_pem_file_all(const std::string& path);
  static shared::Result<Certificate> from_pem(std::string_view pem);
  // From a CERT payload's X.509 Certificate - Signature data (untrusted):
  // the whole input must be one DER certificate.
  static shared::Result<Certificate> from_der(std::span<const uint8_t> der);
  // Takes a reference of `cert` (not its ownership).
  static Certificate share(X509* cert);

  X509* get() const { return cert_.get(); }
  // The certificate's public key (owned by the certificate).
  EVP_PKEY* public_key() const;
  std::vector<uint8_t> der() const;
  std::vector<uint8_t> subject_der() const;
  std::string subject() const;  // RFC 2253 text, for logs

 private:
  explicit Certificate(X509Ptr cert) : cert_(std::move(cert)) {}
  // shared_ptr over X509_up_ref'd pointers keeps copies cheap and safe.
  std::shared_ptr<X509> cert_;
};

// A private key (RSA or EC). Movable; const methods from any thread.
class PrivateKey {
 public:
  // PEM (PKCS#8 or traditional), optionally encrypted with `passphrase`.
  static shared::Result<PrivateKey> load_pem_file(const std::string& path,
                                                  const std::string& passphrase = "");
  static shared::Result<PrivateKey> from_pem(std::string_view pem,
                                             const std::string& passphrase = "");
  static PrivateKey adopt(PkeyPtr key) { return PrivateKey(std::move(key)); }
  EVP_PKEY* get() const { return key_.get(); }

 private:
  explicit PrivateKey(PkeyPtr key) : key_(std::move(key)) {}
  PkeyPtr key_;
};

// Trust anchors and chain validation. Build it at configuration time, then
// verify from any thread (verify() only reads the store).
class CertificateStore {
 public:
  static shared::Result<CertificateStore> create();

  shared::Status add_ca(const Certificate& ca);
  // Every certificate of a PEM file as a trust anchor.
  shared::Status add_ca_file(const std::string& path);

  // Validates `leaf` up to a configured CA, using `intermediates` (from the
  // peer's CERT payloads) as untrusted helpers. Checks signatures, validity
  // period (now, or `at`), CA basic constraints / path length, and the
  // purpose an IKE peer certificate may have (RFC 4945 §5.1.3.12: an
  // extended key usage, when present, must allow serverAuth, clientAuth,
  // ipsecIKE or anyExtendedKeyUsage; key usage, when present,
  // digitalSignature or nonRepudiation). Errors carry OpenSSL's verify
  // result text, the depth and the subject of the failing certificate.
  shared::Status verify(const Certificate& leaf, std::span<const Certificate> intermediates,
                        std::optional<time_t> at = std::nullopt) const;

 private:
  explicit CertificateStore(X509StorePtr store) : store_(std::move(store)) {}
  X509StorePtr store_;
};

// Does `cert` vouch for the IKE identity (type, ID payload Identification
// Data)? FQDN: a subjectAltName dNSName (case-insensitive, no wildcards);
// RFC822: an rfc822Name; IPv4/IPv6: an iPAddress (4/16 octets); DER_ASN1_DN:
// the subject, compared in canonical DER form (X509_NAME_cmp). Errors say
// why not (no match, malformed identity data); an error is a mismatch.
shared::Status match_identity(const Certificate& cert, IdType type,
                              std::span<const uint8_t> identity);

}  // namespace segw::cp::crypto
