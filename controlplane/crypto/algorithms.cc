// Names, sizes and wire-value checks of the supported IKEv2 transforms.
#include "controlplane/crypto/algorithms.h"

#include <string>

namespace segw::cp::crypto {

using shared::make_error;

const char* to_string(PrfAlgorithm value) {
  switch (value) {
    case PrfAlgorithm::kHmacSha2_256: return "PRF_HMAC_SHA2_256";
    case PrfAlgorithm::kHmacSha2_384: return "PRF_HMAC_SHA2_384";
    case PrfAlgorithm::kHmacSha2_512: return "PRF_HMAC_SHA2_512";
  }
  return "PRF_UNKNOWN";
}

const char* to_string(EncrAlgorithm value) {
  switch (value) {
    case EncrAlgorithm::kAesCbc: return "ENCR_AES_CBC";
    case EncrAlgorithm::kAesGcm16: return "ENCR_AES_GCM_16";
  }
  return "ENCR_UNKNOWN";
}

const char* to_string(IntegAlgorithm value) {
  switch (value) {
    case IntegAlgorithm::kNone: return "NONE";
    case IntegAlgorithm::kHmacSha1_96: return "AUTH_HMAC_SHA1_96";
    case IntegAlgorithm::kHmacSha2_256_128: return "AUTH_HMAC_SHA2_256_128";
    case IntegAlgorithm::kHmacSha2_384_192: return "AUTH_HMAC_SHA2_384_192";
    case IntegAlgorithm::kHmacSha2_512_256: return "AUTH_HMAC_SHA2_512_256";
  }
  return "AUTH_UNKNOWN";
}

const char* to_string(DhGroup value) {
  switch (value) {
    case DhGroup::kModp2048: return "MODP_2048";
    case DhGroup::kEcp256: return "ECP_256";
    case DhGroup::kEcp384: return "ECP_384";
    case DhGroup::kCurve25519: return "CURVE25519";
  }
  return "DH_UNKNOWN";
}

const char* to_string(AuthMethod value) {
  switch (value) {
    case AuthMethod::kRsaSignature: return "RSA_DIGITAL_SIGNATURE";
    case AuthMethod::kSharedKeyMic: return "SHARED_KEY_MIC";
    case AuthMethod::kEcdsaSha256P256: return "ECDSA_SHA256_P256";
    case AuthMethod::kEcdsaSha384P384: return "ECDSA_SHA384_P384";
    case AuthMethod::kEcdsaSha512P521: return "ECDSA_SHA512_P521";
    case AuthMethod::kDigitalSignature: return "DIGITAL_SIGNATURE";
  }
  return "AUTH_METHOD_UNKNOWN";
}

const char* to_string(HashAlgorithm value) {
  switch (value) {
    case HashAlgorithm::kSha1: return "SHA1";
    case HashAlgorithm::kSha256: return "SHA2_256";
    case HashAlgorithm::kSha384: return "SHA2_384";
    case HashAlgorithm::kSha512: return "SHA2_512";
  }
  return "HASH_UNKNOWN";
}

const char* to_string(SignatureScheme value) {
  switch (value) {
    case SignatureScheme::kRsaPkcs1v15: return "RSASSA-PKCS1-v1_5";
    case SignatureScheme::kRsaPss: return "RSASSA-PSS";
    case SignatureScheme::kEcdsa: return "ECDSA";
  }
  return "SIGNATURE_SCHEME_UNKNOWN";
}

const char* to_string(IdType value) {
  switch (value) {
    case IdType::kIpv4Addr: return "ID_IPV4_ADDR";
    case IdType::kFqdn: return "ID_FQDN";
    case IdType::kRfc822Addr: return "ID_RFC822_ADDR";
    case IdType::kIpv6Addr: return "ID_IPV6_ADDR";
    case IdType::kDerAsn1Dn: return "ID_DER_ASN1_DN";
  }
  return "ID_UNKNOWN";
}

const char* digest_name(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha1: return "SHA1";
    case HashAlgorithm::kSha256: return "SHA256";
    case HashAlgorithm::kSha384: return "SHA384";
    case HashAlgorithm::kSha512: return "SHA512";
  }
  return "SHA256";
}

size_t digest_length(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha1: return 20;
    case HashAlgorithm::kSha256: return 32;
    case HashAlgorithm::kSha384: return 48;
    case HashAlgorithm::kSha512: return 64;
  }
  return 0;
}

HashAlgorithm prf_hash(PrfAlgorithm prf) {
  switch (prf) {
    case PrfAlgorithm::kHmacSha2_256: return HashAlgorithm::kSha256;
    case PrfAlgorithm::kHmacSha2_384: return HashAlgorithm::kSha384;
    case PrfAlgorithm::kHmacSha2_512: return HashAlgorithm::kSha512;
  }
  return HashAlgorithm::kSha256;
}

size_t prf_output_length(PrfAlgorithm prf) { return digest_length(prf_hash(prf)); }

HashAlgorithm integ_hash(IntegAlgorithm integ) {
  switch (integ) {
    case IntegAlgorithm::kHmacSha1_96: return HashAlgorithm::kSha1;
    case IntegAlgorithm::kHmacSha2_384_192: return HashAlgorithm::kSha384;
    case IntegAlgorithm::kHmacSha2_512_256: return HashAlgorithm::kSha512;
    case IntegAlgorithm::kNone:
    case IntegAlgorithm::kHmacSha2_256_128: break;
  }
  return HashAlgorithm::kSha256;
}

size_t integ_key_length(IntegAlgorithm integ) {
  return integ == IntegAlgorithm::kNone ? 0 : digest_length(integ_hash(integ));
}

size_t integ_icv_length(IntegAlgorithm integ) {
  switch (integ) {
    case IntegAlgorithm::kNone: return 0;
    case IntegAlgorithm::kHmacSha1_96: return 12;
    case IntegAlgorithm::kHmacSha2_256_128: return 16;
    case IntegAlgorithm::kHmacSha2_384_192: return 24;
    case IntegAlgorithm::kHmacSha2_512_256: return 32;
  }
  return 0;
}

shared::Result<PrfAlgorithm> prf_from_wire(uint16_t id) {
  switch (id) {
    case 5: case 6: case 7: return static_cast<PrfAlgorithm>(id);
    default: return make_error("unsupported PRF transform id " + std::to_string(id) +
                               " (expected 5, 6 or 7)");
  }
}

shared::Result<EncrAlgorithm> encr_from_wire(uint16_t id) {
  switch (id) {
    case 12: case 20: return static_cast<EncrAlgorithm>(id);
    default: return make_error("unsupported ENCR transform id " + std::to_string(id) +
                               " (expected 12 or 20)");
  }
}

shared::Result<IntegAlgorithm> integ_from_wire(uint16_t id) {
  switch (id) {
    case 0: case 2: case 12: case 13: case 14: return static_cast<IntegAlgorithm>(id);
    default: return make_error("unsupported INTEG transform id " + std::to_string(id) +
                               " (expected 0, 2, 12, 13 or 14)");
  }
}

shared::Result<DhGroup> dh_group_from_wire(uint16_t id) {
  switch (id) {
    case 14: case 19: case 20: case 31: return static_cast<DhGroup>(id);
    default: return make_error("unsupported D-H group " + std::to_string(id) +
                               " (expected 14, 19, 20 or 31)");
  }
}

bool is_aead(EncrAlgorithm encr) { return encr == EncrAlgorithm::kAesGcm16; }

shared::Status validate_cipher_suite(const CipherSuite& suite) {
  if (suite.key_bits != 128 && suite.key_bits != 192 && suite.key_bits != 256) {
    return make_error(std::string(to_string(suite.encr)) + ": key length " +
                      std::to_string(suite.key_bits) + " bits, expected 128, 192 or 256");
  }
  if (is_aead(suite.encr) && suite.integ != IntegAlgorithm::kNone) {
    return make_error(std::string(to_string(suite.encr)) + " is AEAD: integrity must be NONE, got " +
                      to_string(suite.integ) + " (RFC 5282 §8)");
  }
  if (!is_aead(suite.encr) && suite.integ == IntegAlgorithm::kNone) {
    return make_error(std::string(to_string(suite.encr)) + " needs an integrity transform");
  }
  return shared::Status::success();
}

size_t encr_key_length(const CipherSuite& suite) {
  return suite.key_bits / 8 + (is_aead(suite.encr) ? kGcmSaltLength : 0);
}

}  // namespace segw::cp::crypto
