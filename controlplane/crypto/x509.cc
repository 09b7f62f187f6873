// Certificates, private keys, chain validation and identity matching.
#include "controlplane/crypto/x509.h"

#include <openssl/pem.h>

#include <climits>
#include <string>

namespace segw::cp::crypto {

using shared::make_error;

namespace {

shared::Result<BioPtr> open_file(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return openssl_error("cannot open " + path);
  return bio;
}

BioPtr memory_bio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

shared::Result<std::vector<Certificate>> read_all(BIO* bio, const std::string& what) {
  std::vector<Certificate> certs;
  while (X509* raw = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509Ptr cert(raw);
    certs.push_back(Certificate::share(cert.get()));
  }
  drain_openssl_errors();  // the read that ended the loop leaves "no start line"
  if (certs.empty()) return make_error(what + ": no PEM certificate found");
  return certs;
}

shared::Result<PrivateKey> read_key(BIO* bio, const std::string& passphrase,
                                    const std::string& what) {
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio, nullptr, nullptr,
                                          const_cast<char*>(passphrase.c_str()));
  if (raw == nullptr) return openssl_error(what + ": no usable PEM private key");
  return PrivateKey::adopt(PkeyPtr(raw));
}

// RFC 4945 §5.1.3.12 / §5.1.3.2 checks on the end-entity certificate.
shared::Status check_peer_purpose(X509* cert) {
  if (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) {
    ExtKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(
        X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
    bool allowed = false;
    std::string seen;
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      const int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i));
      if (nid == NID_server_auth || nid == NID_client_auth || nid == NID_ipsec_IKE ||
          nid == NID_anyExtendedKeyUsage) {
        allowed = true;
      }
      if (!seen.empty()) seen += ",";
      seen += nid == NID_undef ? "unknown" : OBJ_nid2sn(nid);
    }
    if (!allowed) {
      return make_error("certificate extended key usage (" + seen +
                        ") allows none of serverAuth, clientAuth, ipsecIKE, "
                        "anyExtendedKeyUsage (RFC 4945 §5.1.3.12)");
    }
  }
  const uint32_t key_usage = X509_get_key_usage(cert);
  if (key_usage != UINT32_MAX && !(key_usage & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION))) {
    return make_error("certificate key usage allows neither digitalSignature nor "
                      "nonRepudiation (RFC 4945 §5.1.3.2)");
  }
  return shared::Status::success();
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace

// ---- Certificate ----

Certificate Certificate::share(X509* cert) {
  X509_up_ref(cert);
  return Certificate(X509Ptr(cert));
}

shared::Result<Certificate> Certificate::load_pem_file(const std::string& path) {
  auto all = load_pem_file_all(path);
  if (!all) return make_error(all.error());
  return (*all)[0];
}

shared::Result<std::vector<Certificate>> Certificate::load_pem_file_all(const std::string& path) {
  auto bio = open_file(path);
  if (!bio) return make_error(bio.error());
  return read_all(bio->get(), path);
}

shared::Result<Certificate> Certificate::from_pem(std::string_view pem) {
  BioPtr bio = memory_bio(pem);
  if (!bio) return openssl_error("BIO_new_mem_buf");
  auto all = read_all(bio.get(), "PEM text");
  if (!all) return make_error(all.error());
  return (*all)[0];
}

shared::Result<Certificate> Certificate::from_der(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > LONG_MAX) return make_error("DER certificate is empty");
  const unsigned char* cursor = der.data();
  X509Ptr cert(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
  if (!cert) return openssl_error("DER certificate does not parse");
  if (cursor != der.data() + der.size()) {
    return make_error("DER certificate followed by " +
                      std::to_string(der.data() + der.size() - cursor) + " trailing octets");
  }
  return Certificate(std::move(cert));
}

EVP_PKEY* Certificate::public_key() const { return X509_get0_pubkey(cert_.get()); }

std::vector<uint8_t> Certificate::der() const {
  unsigned char* raw = nullptr;
  const int length = i2d_X509(cert_.get(), &raw);
  if (length <= 0) return {};
  std::vector<uint8_t> out(raw, raw + length);
  OPENSSL_free(raw);
  return out;
}

std::vector<uint8_t> Certificate::subject_der() const {
  unsigned char* raw = nullptr;
  const int length = i2d_X509_NAME(X509_get_subject_name(cert_.get()), &raw);
  if (length <= 0) return {};
  std::vector<uint8_t> out(raw, raw + length);
  OPENSSL_free(raw);
  return out;
}

std::string Certificate::subject() const { return name_text(X509_get_subject_name(cert_.get())); }

// ---- PrivateKey ----

shared::Result<PrivateKey> PrivateKey::load_pem_file(const std::string& path,
                                                     const std::string& passphrase) {
  auto bio = open_file(path);
  if (!bio) return make_error(bio.error());
  return read_key(bio->get(), passphrase, path);
}

shared::Result<PrivateKey> PrivateKey::from_pem(std::string_view pem,
                                                const std::string& passphrase) {
  BioPtr bio = memory_bio(pem);
  if (!bio) return openssl_error("BIO_new_mem_buf");
  return read_key(bio.get(), passphrase, "PEM text");
}

// ---- CertificateStore ----

shared::Result<CertificateStore> CertificateStore::create() {
  X509StorePtr store(X509_STORE_new());
  if (!store) return openssl_error("X509_STORE_new");
  return CertificateStore(std::move(store));
}

shared::Status CertificateStore::add_ca(const Certificate& ca) {
  if (X509_STORE_add_cert(store_.get(), ca.get()) != 1) {
    return openssl_error("adding CA " + ca.subject());
  }
  return shared::Status::success();
}

shared::Status CertificateStore::add_ca_file(const std::string& path) {
  auto all = Certificate::load_pem_file_all(path);
  if (!all) return make_error(all.error());
  for (const Certificate& ca : *all) {
    if (auto status = add_ca(ca); !status) return status;
  }
  return shared::Status::success();
}

shared::Status CertificateStore::verify(const Certificate& leaf,
                                        std::span<const Certificate> intermediates,
                                        std::optional<time_t> at) const {
  X509StackPtr untrusted(sk_X509_new_null());
  if (!untrusted) return openssl_error("sk_X509_new_null");
  for (const Certificate& cert : intermediates) {
    if (!X509_add_cert(untrusted.get(), cert.get(), X509_ADD_FLAG_UP_REF)) {
      return openssl_error("collecting intermediates");
    }
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), leaf.get(), untrusted.get()) != 1) {
    return openssl_error("X509_STORE_CTX_init");
  }
  if (at) X509_STORE_CTX_set_time(ctx.get(), 0, *at);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    X509* failing = X509_STORE_CTX_get_current_cert(ctx.get());
    drain_openssl_errors();
    return make_error("certificate chain of " + leaf.subject() + " rejected: " +
                      X509_verify_cert_error_string(error) + " (depth " + std::to_string(depth) +
                      (failing ? ", " + name_text(X509_get_subject_name(failing)) : "") + ")");
  }
  if (auto status = check_peer_purpose(leaf.get()); !status) {
    return make_error(leaf.subject() + ": " + status.error());
  }
  return shared::Status::success();
}

// ---- identity ----

shared::Status match_identity(const Certificate& cert, IdType type,
                              std::span<const uint8_t> identity) {
  const char* text = reinterpret_cast<const char*>(identity.data());
  const std::string shown(text, identity.size());
  int result = 0;
  // NEVER_CHECK_SUBJECT: only subjectAltName counts (RFC 4945 §5.1.2.1);
  // the CN is no identity.
  const unsigned flags = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS;
  switch (type) {
    case IdType::kFqdn:
      if (identity.empty()) return make_error("empty ID_FQDN");
      result = X509_check_host(cert.get(), text, identity.size(), flags, nullptr);
      break;
    case IdType::kRfc822Addr:
      if (identity.empty()) return make_error("empty ID_RFC822_ADDR");
      result = X509_check_email(cert.get(), text, identity.size(), flags);
      break;
    case IdType::kIpv4Addr:
    case IdType::kIpv6Addr: {
      const size_t expected = type == IdType::kIpv4Addr ? 4 : 16;
      if (identity.size() != expected) {
        return make_error(std::string(to_string(type)) + " of " +
                          std::to_string(identity.size()) + " octets, expected " +
                          std::to_string(expected));
      }
      result = X509_check_ip(cert.get(), identity.data(), identity.size(), 0);
      break;
    }
    case IdType::kDerAsn1Dn: {
      const unsigned char* cursor = identity.data();
      X509NamePtr name(d2i_X509_NAME(nullptr, &cursor, static_cast<long>(identity.size())));
      if (!name || cursor != identity.data() + identity.size()) {
        drain_openssl_errors();
        return make_error("ID_DER_ASN1_DN is not one DER Name");
      }
      if (X509_NAME_cmp(name.get(), X509_get_subject_name(cert.get())) == 0) {
        return shared::Status::success();
      }
      return make_error("ID_DER_ASN1_DN " + name_text(name.get()) +
                        " does not match the certificate subject " + cert.subject());
    }
    default:
      return make_error("ID type " + std::to_string(static_cast<unsigned>(type)) +
                        " cannot be matched against a certificate");
  }
  if (result == 1) return shared::Status::success();
  drain_openssl_errors();
  const std::string value = (type == IdType::kIpv4Addr || type == IdType::kIpv6Addr)
                                ? std::string("address")
                                : "\"" + shown + "\"";
  return make_error(std::string(to_string(type)) + " " + value +
                    (result < 0 ? " could not be checked" : " matches no subjectAltName of ") +
                    (result < 0 ? "" : cert.subject()));
}

}  // namespace segw::cp::crypto
