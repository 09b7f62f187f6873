// IKEv2 authentication: the signed octets (RFC 7296 §2.15), PSK AUTH,
// signatures for auth methods 1 (RSA PKCS#1 v1.5), 9/10/11 (ECDSA, RFC
// 4754) and 14 (Digital Signature, RFC 7427, with its AlgorithmIdentifiers).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// <InitiatorSignedOctets> = RealMessage1 | NonceRData | MACedIDForI, and
// the responder's mirror (RFC 7296 §2.15):
//   real_message: the sender's first message (IKE_SA_INIT), all of it;
//   peer_nonce:   the other side's Nonce Data;
//   sk_p:         SK_pi for the initiator, SK_pr for the responder;
//   id_body:      the sender's ID payload after its generic header
//                 (ID Type | RESERVED | Identification Data).
shared::Result<std::vector<uint8_t>> build_signed_octets(PrfAlgorithm prf,
                                                         std::span<const uint8_t> real_message,
                                                         std::span<const uint8_t> peer_nonce,
                                                         std::span<const uint8_t> sk_p,
                                                         std::span<const uint8_t> id_body);

// AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
// (RFC 7296 §2.15).
shared::Result<SecureBytes> compute_psk_auth(PrfAlgorithm prf, std::span<const uint8_t> psk,
                                             std::span<const uint8_t> signed_octets);
// Constant-time check of a received PSK AUTH. Error: "AUTH mismatch".
shared::Status verify_psk_auth(PrfAlgorithm prf, std::span<const uint8_t> psk,
                               std::span<const uint8_t> signed_octets,
                               std::span<const uint8_t> received_auth);

// Scheme and hash of an RFC 7427 signature.
struct SignatureAlgorithm {
  SignatureScheme scheme = SignatureScheme::kRsaPkcs1v15;
  HashAlgorithm hash = HashAlgorithm::kSha256;
  friend bool operator==(const SignatureAlgorithm&, const SignatureAlgorithm&) = default;
};

// The DER AlgorithmIdentifier of RFC 7427 Appendix A for `algorithm`
// (sha*WithRSAEncryption, RSASSA-PSS with MGF1 and salt = hash length,
// ecdsa-with-SHA*). Error: no such blob (e.g. PSS or ECDSA with SHA-1).
shared::Result<std::vector<uint8_t>> encode_algorithm_identifier(SignatureAlgorithm algorithm);
// Matches a received AlgorithmIdentifier against those blobs (exact DER).
// Error names the unknown identifier in hex.
shared::Result<SignatureAlgorithm> parse_algorithm_identifier(std::span<const uint8_t> der);

// The AUTH payload's Authentication Data for `method` signing
// `signed_octets` with `key`:
//   kRsaSignature:     RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8);
//   kEcdsaSha*P*:      r | s, fixed width, key on the matching curve (RFC 4754 §7);
//   kDigitalSignature: ASN.1 length | AlgorithmIdentifier | signature (RFC 7427 §3),
//                      with `algorithm` (required for this method only).
// Errors: key type does not fit the method or algorithm, unsupported
// method, OpenSSL failure. Any thread.
shared::Result<std::vector<uint8_t>> sign_auth(AuthMethod method, EVP_PKEY* key,
                                               std::span<const uint8_t> signed_octets,
                                               std::optional<SignatureAlgorithm> algorithm = {});

// Verifies received Authentication Data with the peer certificate's public
// key. For kDigitalSignature the scheme and hash come from the received
// AlgorithmIdentifier; `allowed_hashes`, when given, lists the hashes this
// side announced in SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4).
// Errors: malformed data (lengths logged), key type mismatch, hash not
// allowed, "signature verification failed".
shared::Status verify_auth(AuthMethod method, EVP_PKEY* public_key,
                           std::span<const uint8_t> signed_octets,
                           std::span<const uint8_t> auth_data,
                           std::span<const HashAlgorithm> allowed_hashes = {});

}  // namespace segw::cp::crypto
