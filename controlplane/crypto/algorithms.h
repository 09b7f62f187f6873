// IKEv2 transform and method identifiers the crypto layer implements (IANA
// "IKEv2 Parameters" registry values), their names and their sizes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "shared/result.h"

namespace segw::cp::crypto {

// IKE SPIs are opaque 8-octet values (RFC 7296 §3.1), kept in wire order.
using IkeSpi = std::array<uint8_t, 8>;

// Transform Type 2 (PRF). RFC 4868 §2.1 for the SHA-2 ones.
enum class PrfAlgorithm : uint16_t {
  kHmacSha2_256 = 5,  // PRF_HMAC_SHA2_256
  kHmacSha2_384 = 6,  // PRF_HMAC_SHA2_384
  kHmacSha2_512 = 7,  // PRF_HMAC_SHA2_512
};

// Transform Type 1 (ENCR). Key size comes from the Key Length attribute.
enum class EncrAlgorithm : uint16_t {
  kAesCbc = 12,    // ENCR_AES_CBC (RFC 3602)
  kAesGcm16 = 20,  // ENCR_AES_GCM_16 (RFC 5282 / RFC 4106: 16-octet ICV)
};

// Transform Type 3 (INTEG).
enum class IntegAlgorithm : uint16_t {
  kNone = 0,              // NONE: with AEAD ciphers
  kHmacSha1_96 = 2,       // AUTH_HMAC_SHA1_96 (RFC 2404)
  kHmacSha2_256_128 = 12, // AUTH_HMAC_SHA2_256_128 (RFC 4868)
  kHmacSha2_384_192 = 13, // AUTH_HMAC_SHA2_384_192 (RFC 4868)
  kHmacSha2_512_256 = 14, // AUTH_HMAC_SHA2_512_256 (RFC 4868)
};

// Transform Type 4 (D-H group).
enum class DhGroup : uint16_t {
  kModp2048 = 14,     // RFC 3526 §3
  kEcp256 = 19,       // RFC 5903 (NIST P-256)
  kEcp384 = 20,       // RFC 5903 (NIST P-384)
  kCurve25519 = 31,   // RFC 8031
};

// AUTH payload Auth Method (RFC 7296 §3.8, RFC 4754, RFC 7427).
enum class AuthMethod : uint8_t {
  kRsaSignature = 1,       // RSASSA-PKCS1-v1_5 with SHA-1
  kSharedKeyMic = 2,       // PSK
  kEcdsaSha256P256 = 9,    // RFC 4754
  kEcdsaSha384P384 = 10,   // RFC 4754
  kEcdsaSha512P521 = 11,   // RFC 4754
  kDigitalSignature = 14,  // RFC 7427
};

// Hash algorithms, numbered as in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
enum class HashAlgorithm : uint16_t {
  kSha1 = 1,
  kSha256 = 2,
  kSha384 = 3,
  kSha512 = 4,
};

// Signature schemes usable with AuthMethod::kDigitalSignature.
enum class SignatureScheme : uint8_t {
  kRsaPkcs1v15,
  kRsaPss,   // MGF1 with the same hash, salt length = hash length
  kEcdsa,    // DER Ecdsa-Sig-Value
};

// Identification payload ID Type (RFC 7296 §3.5) the X.509 layer matches.
enum class IdType : uint8_t {
  kIpv4Addr = 1,
  kFqdn = 2,
  kRfc822Addr = 3,
  kIpv6Addr = 5,
  kDerAsn1Dn = 9,
};

const char* to_string(PrfAlgorithm value);
const char* to_string(EncrAlgorithm value);
const char* to_string(IntegAlgorithm value);
const char* to_string(DhGroup value);
const char* to_string(AuthMethod value);
const char* to_string(HashAlgorithm value);
const char* to_string(SignatureScheme value);
const char* to_string(IdType value);

// OpenSSL digest names ("SHA256", ...).
const char* digest_name(HashAlgorithm hash);
size_t digest_length(HashAlgorithm hash);

// The hash behind an HMAC PRF, and its output (= preferred key) length.
HashAlgorithm prf_hash(PrfAlgorithm prf);
size_t prf_output_length(PrfAlgorithm prf);

// Integrity: hash, key length (= hash output, RFC 4868 §2.1.1) and the
// truncated ICV length. kNone: 0 for all three lengths.
HashAlgorithm integ_hash(IntegAlgorithm integ);
size_t integ_key_length(IntegAlgorithm integ);
size_t integ_icv_length(IntegAlgorithm integ);

// Checked conversions from wire values (untrusted input).
shared::Result<PrfAlgorithm> prf_from_wire(uint16_t id);
shared::Result<EncrAlgorithm> encr_from_wire(uint16_t id);
shared::Result<IntegAlgorithm> integ_from_wire(uint16_t id);
shared::Result<DhGroup> dh_group_from_wire(uint16_t id);

// A negotiated cipher suite for an SK payload (IKE SA) or an ESP child SA:
// encryption transform, its key size in bits (128, 192 or 256) and the
// integrity transform (kNone exactly when encr is AEAD).
struct CipherSuite {
  EncrAlgorithm encr = EncrAlgorithm::kAesCbc;
  uint16_t key_bits = 128;
  IntegAlgorithm integ = IntegAlgorithm::kHmacSha2_256_128;

  friend bool operator==(const CipherSuite&, const CipherSuite&) = default;
};

// Errors: key size not 128/192/256; AEAD with an integrity transform; CBC
// without one.
shared::Status validate_cipher_suite(const CipherSuite& suite);

bool is_aead(EncrAlgorithm encr);
// Encryption key length as keying material is taken: AES key, plus the
// 4-octet salt for GCM (RFC 5282 §7.1, RFC 4106 §8.1).
size_t encr_key_length(const CipherSuite& suite);
inline constexpr size_t kGcmSaltLength = 4;
inline constexpr size_t kGcmIvLength = 8;    // explicit IV, RFC 5282 §3.1
inline constexpr size_t kGcmIcvLength = 16;  // ENCR_AES_GCM_16
inline constexpr size_t kAesBlockSize = 16;

}  // namespace segw::cp::crypto
