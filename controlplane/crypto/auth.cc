// AUTH payload computation and verification: PSK, RSA, ECDSA, RFC 7427.
#include "controlplane/crypto/auth.h"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <climits>
#include <string>

#include "controlplane/crypto/prf.h"

namespace segw::cp::crypto {

using shared::make_error;

namespace {

// RFC 7296 §2.15: the 17 ASCII octets, no terminating NUL.
constexpr char kKeyPad[] = "Key Pad for IKEv2";
constexpr size_t kKeyPadLength = sizeof(kKeyPad) - 1;

std::string hex(std::span<const uint8_t> bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// Last octet of the NIST hash OIDs 2.16.840.1.101.3.4.2.x.
uint8_t nist_hash_oid_tail(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha256: return 0x01;
    case HashAlgorithm::kSha384: return 0x02;
    case HashAlgorithm::kSha512: return 0x03;
    case HashAlgorithm::kSha1: break;
  }
  return 0;
}

struct EcdsaMethod {
  HashAlgorithm hash;
  int curve_nid;
  size_t width;  // octets of r and of s (RFC 4754 §7)
};

std::optional<EcdsaMethod> ecdsa_method(AuthMethod method) {
  switch (method) {
    case AuthMethod::kEcdsaSha256P256: return EcdsaMethod{HashAlgorithm::kSha256, NID_X9_62_prime256v1, 32};
    case AuthMethod::kEcdsaSha384P384: return EcdsaMethod{HashAlgorithm::kSha384, NID_secp384r1, 48};
    case AuthMethod::kEcdsaSha512P521: return EcdsaMethod{HashAlgorithm::kSha512, NID_secp521r1, 66};
    default: return std::nullopt;
  }
}

bool is_rsa(EVP_PKEY* key) { return EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS"); }
bool is_ec(EVP_PKEY* key) { return EVP_PKEY_is_a(key, "EC"); }

int ec_curve_nid(EVP_PKEY* key) {
  char name[80];
  size_t length = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &length) != 1) return NID_undef;
  int nid = OBJ_sn2nid(name);
  if (nid == NID_undef) nid = EC_curve_nist2nid(name);
  return nid;
}

shared::Status check_key_fits(EVP_PKEY* key, SignatureScheme scheme) {
  if (key == nullptr) return make_error("no key");
  const bool fits = scheme == SignatureScheme::kEcdsa ? is_ec(key) : is_rsa(key);
  if (!fits) {
    return make_error(std::string(to_string(scheme)) + " needs " +
                      (scheme == SignatureScheme::kEcdsa ? "an EC" : "an RSA") + " key, got " +
                      EVP_PKEY_get0_type_name(key));
  }
  return shared::Status::success();
}

// Sets padding on the signing/verifying context for the scheme.
shared::Status configure(EVP_PKEY_CTX* pctx, SignatureAlgorithm algorithm) {
  if (algorithm.scheme == SignatureScheme::kRsaPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, digest_name(algorithm.hash), nullptr) != 1) {
      return openssl_error("configuring RSASSA-PSS");
    }
  } else if (algorithm.scheme == SignatureScheme::kRsaPkcs1v15) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
      return openssl_error("configuring RSASSA-PKCS1-v1_5");
    }
  }
  return shared::Status::success();
}

// The scheme's native signature (ECDSA: DER Ecdsa-Sig-Value).
shared::Result<std::vector<uint8_t>> raw_sign(EVP_PKEY* key, SignatureAlgorithm algorithm,
                                              std::span<const uint8_t> data) {
  if (auto status = check_key_fits(key, algorithm.scheme); !status) {
    return make_error(status.error());
  }
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  if (!md || EVP_DigestSignInit_ex(md.get(), &pctx, digest_name(algorithm.hash), nullptr,
                                   nullptr, key, nullptr) != 1) {
    return openssl_error(std::string(to_string(algorithm.scheme)) + "/" +
                         to_string(algorithm.hash) + " sign init");
  }
  if (auto status = configure(pctx, algorithm); !status) return make_error(status.error());
  size_t length = 0;
  if (EVP_DigestSign(md.get(), nullptr, &length, data.data(), data.size()) != 1) {
    return openssl_error("signing");
  }
  std::vector<uint8_t> signature(length);
  if (EVP_DigestSign(md.get(), signature.data(), &length, data.data(), data.size()) != 1) {
    return openssl_error("signing");
  }
  signature.resize(length);
  return signature;
}

shared::Status raw_verify(EVP_PKEY* key, SignatureAlgorithm algorithm,
                          std::span<const uint8_t> data, std::span<const uint8_t> signature) {
  if (auto status = check_key_fits(key, algorithm.scheme); !status) return status;
  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by md
  if (!md || EVP_DigestVerifyInit_ex(md.get(), &pctx, digest_name(algorithm.hash), nullptr,
                                     nullptr, key, nullptr) != 1) {
    return openssl_error(std::string(to_string(algorithm.scheme)) + "/" +
                         to_string(algorithm.hash) + " verify init");
  }
  if (auto status = configure(pctx, algorithm); !status) return status;
  if (EVP_DigestVerify(md.get(), signature.data(), signature.size(), data.data(), data.size()) !=
      1) {
    drain_openssl_errors();
    return make_error(std::string(to_string(algorithm.scheme)) + "/" + to_string(algorithm.hash) +
                      ": signature verification failed");
  }
  return shared::Status::success();
}

// DER Ecdsa-Sig-Value <-> r | s (RFC 4754 §7).
shared::Result<std::vector<uint8_t>> der_to_fixed(std::span<const uint8_t> der, size_t width) {
  const unsigned char* cursor = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!sig) return openssl_error("decoding ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::vector<uint8_t> out(2 * width);
  if (BN_bn2binpad(r, out.data(), static_cast<int>(width)) < 0 ||
      BN_bn2binpad(s, out.data() + width, static_cast<int>(width)) < 0) {
    return openssl_error("encoding r | s");
  }
  return out;
}

shared::Result<std::vector<uint8_t>> fixed_to_der(std::span<const uint8_t> fixed) {
  const size_t width = fixed.size() / 2;
  BignumPtr r(BN_bin2bn(fixed.data(), static_cast<int>(width), nullptr));
  BignumPtr s(BN_bin2bn(fixed.data() + width, static_cast<int>(width), nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return openssl_error("building ECDSA signature");
  }
  r.release();  // owned by sig now
  s.release();
  unsigned char* raw = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &raw);
  if (length <= 0) return openssl_error("encoding ECDSA signature");
  std::vector<uint8_t> out(raw, raw + length);
  OPENSSL_free(raw);
  return out;
}

bool hash_allowed(HashAlgorithm hash, std::span<const HashAlgorithm> allowed) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), hash) != allowed.end();
}

}  // namespace

shared::Result<std::vector<uint8_t>> build_signed_octets(PrfAlgorithm prf_algorithm,
                                                         std::span<const uint8_t> real_message,
                                                         std::span<const uint8_t> peer_nonce,
                                                         std::span<const uint8_t> sk_p,
                                                         std::span<const uint8_t> id_body) {
  auto maced_id = prf(prf_algorithm, sk_p, {id_body});
  if (!maced_id) return make_error(maced_id.error());
  std::vector<uint8_t> out;
  out.reserve(real_message.size() + peer_nonce.size() + maced_id->size());
  out.insert(out.end(), real_message.begin(), real_message.end());
  out.insert(out.end(), peer_nonce.begin(), peer_nonce.end());
  out.insert(out.end(), maced_id->begin(), maced_id->end());
  return out;
}

shared::Result<SecureBytes> compute_psk_auth(PrfAlgorithm prf_algorithm,
                                             std::span<const uint8_t> psk,
                                             std::span<const uint8_t> signed_octets) {
  const std::span<const uint8_t> pad(reinterpret_cast<const uint8_t*>(kKeyPad), kKeyPadLength);
  auto inner = prf(prf_algorithm, psk, {pad});
  if (!inner) return make_error(inner.error());
  return prf(prf_algorithm, *inner, {signed_octets});
}

shared::Status verify_psk_auth(PrfAlgorithm prf_algorithm, std::span<const uint8_t> psk,
                               std::span<const uint8_t> signed_octets,
                               std::span<const uint8_t> received_auth) {
  auto expected = compute_psk_auth(prf_algorithm, psk, signed_octets);
  if (!expected) return make_error(expected.error());
  if (received_auth.size() != expected->size()) {
    return make_error("PSK AUTH of " + std::to_string(received_auth.size()) +
                      " octets, expected " + std::to_string(expected->size()));
  }
  if (!equal_constant_time(*expected, received_auth)) return make_error("PSK AUTH mismatch");
  return shared::Status::success();
}

shared::Result<std::vector<uint8_t>> encode_algorithm_identifier(SignatureAlgorithm algorithm) {
  const HashAlgorithm hash = algorithm.hash;
  switch (algorithm.scheme) {
    case SignatureScheme::kRsaPkcs1v15: {
      // RFC 7427 A.1: sha{1,256,384,512}WithRSAEncryption, NULL parameters.
      // OID 1.2.840.113549.1.1.{5,11,12,13}.
      uint8_t tail = 0;
      switch (hash) {
        case HashAlgorithm::kSha1: tail = 0x05; break;
        case HashAlgorithm::kSha256: tail = 0x0b; break;
        case HashAlgorithm::kSha384: tail = 0x0c; break;
        case HashAlgorithm::kSha512: tail = 0x0d; break;
      }
      return std::vector<uint8_t>{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                  0x0d, 0x01, 0x01, tail, 0x05, 0x00};
    }
    case SignatureScheme::kEcdsa: {
      // RFC 7427 A.3: ecdsa-with-SHA{256,384,512}, OID 1.2.840.10045.4.3.{2,3,4},
      // no parameters.
      if (hash == HashAlgorithm::kSha1) break;
      const uint8_t tail = static_cast<uint8_t>(nist_hash_oid_tail(hash) + 1);
      return std::vector<uint8_t>{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                  0xce, 0x3d, 0x04, 0x03, tail};
    }
    case SignatureScheme::kRsaPss: {
      // RFC 7427 A.4.3 form: id-RSASSA-PSS (1.2.840.113549.1.1.10) with
      // RSASSA-PSS-params { [0] hashAlgorithm, [1] MGF1 with the same hash,
      // [2] saltLength = hash length }, hash AlgorithmIdentifiers with NULL
      // parameters. trailerField is the default and so absent (DER).
      if (hash == HashAlgorithm::kSha1) break;
      const uint8_t h = nist_hash_oid_tail(hash);
      const uint8_t salt = static_cast<uint8_t>(digest_length(hash));
      return std::vector<uint8_t>{
          0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
          0x30, 0x34,
          0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, h,
          0x05, 0x00,
          0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
          0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, h, 0x05, 0x00,
          0xa2, 0x03, 0x02, 0x01, salt};
    }
  }
  return make_error(std::string("no RFC 7427 AlgorithmIdentifier for ") +
                    to_string(algorithm.scheme) + " with " + to_string(hash));
}

shared::Result<SignatureAlgorithm> parse_algorithm_identifier(std::span<const uint8_t> der) {
  static const SignatureAlgorithm kKnown[] = {
      {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha1},
      {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha256},
      {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha384},
      {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha512},
      {SignatureScheme::kRsaPss, HashAlgorithm::kSha256},
      {SignatureScheme::kRsaPss, HashAlgorithm::kSha384},
      {SignatureScheme::kRsaPss, HashAlgorithm::kSha512},
      {SignatureScheme::kEcdsa, HashAlgorithm::kSha256},
      {SignatureScheme::kEcdsa, HashAlgorithm::kSha384},
      {SignatureScheme::kEcdsa, HashAlgorithm::kSha512},
  };
  for (const SignatureAlgorithm& candidate : kKnown) {
    auto blob = encode_algorithm_identifier(candidate);
    if (blob && std::equal(blob->begin(), blob->end(), der.begin(), der.end())) return candidate;
  }
  return make_error("unsupported RFC 7427 AlgorithmIdentifier " + hex(der));
}

shared::Result<std::vector<uint8_t>> sign_auth(AuthMethod method, EVP_PKEY* key,
                                               std::span<const uint8_t> signed_octets,
                                               std::optional<SignatureAlgorithm> algorithm) {
  if (key == nullptr) return make_error("sign_auth: no private key");
  if (method == AuthMethod::kRsaSignature) {
    return raw_sign(key, {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha1}, signed_octets);
  }
  if (auto ecdsa = ecdsa_method(method)) {
    if (!is_ec(key) || ec_curve_nid(key) != ecdsa->curve_nid) {
      return make_error(std::string(to_string(method)) + " needs an EC key on " +
                        OBJ_nid2sn(ecdsa->curve_nid) + " (RFC 4754)");
    }
    auto der = raw_sign(key, {SignatureScheme::kEcdsa, ecdsa->hash}, signed_octets);
    if (!der) return make_error(der.error());
    return der_to_fixed(*der, ecdsa->width);
  }
  if (method == AuthMethod::kDigitalSignature) {
    if (!algorithm) return make_error("DIGITAL_SIGNATURE needs a signature algorithm");
    auto identifier = encode_algorithm_identifier(*algorithm);
    if (!identifier) return make_error(identifier.error());
    auto signature = raw_sign(key, *algorithm, signed_octets);
    if (!signature) return make_error(signature.error());
    // RFC 7427 §3: one octet ASN.1 length, the AlgorithmIdentifier, then
    // the signature.
    std::vector<uint8_t> out;
    out.push_back(static_cast<uint8_t>(identifier->size()));
    out.insert(out.end(), identifier->begin(), identifier->end());
    out.insert(out.end(), signature->begin(), signature->end());
    return out;
  }
  return make_error(std::string("sign_auth: ") + to_string(method) + " is not a signature method");
}

shared::Status verify_auth(AuthMethod method, EVP_PKEY* public_key,
                           std::span<const uint8_t> signed_octets,
                           std::span<const uint8_t> auth_data,
                           std::span<const HashAlgorithm> allowed_hashes) {
  if (public_key == nullptr) return make_error("verify_auth: no public key");
  if (method == AuthMethod::kRsaSignature) {
    return raw_verify(public_key, {SignatureScheme::kRsaPkcs1v15, HashAlgorithm::kSha1},
                      signed_octets, auth_data);
  }
  if (auto ecdsa = ecdsa_method(method)) {
    if (auth_data.size() != 2 * ecdsa->width) {
      return make_error(std::string(to_string(method)) + ": signature of " +
                        std::to_string(auth_data.size()) + " octets, expected " +
                        std::to_string(2 * ecdsa->width) + " (r | s, RFC 4754 §7)");
    }
    if (!is_ec(public_key) || ec_curve_nid(public_key) != ecdsa->curve_nid) {
      return make_error(std::string(to_string(method)) + " needs a certificate key on " +
                        OBJ_nid2sn(ecdsa->curve_nid));
    }
    auto der = fixed_to_der(auth_data);
    if (!der) return make_error(der.error());
    return raw_verify(public_key, {SignatureScheme::kEcdsa, ecdsa->hash}, signed_octets, *der);
  }
  if (method == AuthMethod::kDigitalSignature) {
    if (auth_data.empty() || auth_data.size() < size_t{1} + auth_data[0] + 1) {
      return make_error("DIGITAL_SIGNATURE: Authentication Data of " +
                        std::to_string(auth_data.size()) + " octets, too short for the " +
                        (auth_data.empty() ? std::string("ASN.1 length octet")
                                           : std::to_string(auth_data[0]) +
                                                 "-octet AlgorithmIdentifier and a signature"));
    }
    auto algorithm = parse_algorithm_identifier(auth_data.subspan(1, auth_data[0]));
    if (!algorithm) return make_error("DIGITAL_SIGNATURE: " + algorithm.error());
    if (!hash_allowed(algorithm->hash, allowed_hashes)) {
      return make_error(std::string("DIGITAL_SIGNATURE: hash ") + to_string(algorithm->hash) +
                        " was not announced in SIGNATURE_HASH_ALGORITHMS");
    }
    return raw_verify(public_key, *algorithm, signed_octets, auth_data.subspan(1 + auth_data[0]));
  }
  return make_error(std::string("verify_auth: ") + to_string(method) +
                    " is not a signature method");
}

}  // namespace segw::cp::crypto
