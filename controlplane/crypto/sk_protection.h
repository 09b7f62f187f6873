// Encrypted payload protection: SK {...} (RFC 7296 §3.14) and SKF {...}
// (RFC 7383 §2.5) with AES-CBC + HMAC, or AES-GCM-16 (RFC 5282).
//
// The protected body is what follows the payload's generic header (and,
// for SKF, the Fragment Number / Total Fragments fields):
//   IV | Ciphertext(inner payloads | Padding | Pad Length) | ICV
// The caller passes the AAD: every octet of the message before the body
// (IKE header, any cleartext payloads, the SK/SKF header) with the length
// fields already set for the final message; protected_length() tells
// how long the body will be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// One direction of an IKE SA's SK processing: SK_ei/SK_ai for messages the
// initiator sends, SK_er/SK_ar for the responder's. Not thread-safe (the
// GCM IV counter); owned by the control thread that owns the IKE SA.
class SkCipher {
 public:
  // encr_key: encr_key_length(suite) octets (AES key, then the 4-octet salt
  // for GCM); integ_key: integ_key_length(suite.integ) octets (empty for
  // GCM). Errors: invalid suite, wrong key lengths (expected vs actual).
  static shared::Result<SkCipher> create(const CipherSuite& suite, SecureBytes encr_key,
                                         SecureBytes integ_key);

  const CipherSuite& suite() const { return suite_; }
  size_t iv_length() const;     // 16 (CBC) or 8 (GCM)
  size_t icv_length() const;    // truncated HMAC length, or 16 (GCM)
  size_t block_size() const;    // padding alignment: 16 (CBC), 1 (GCM)

  // The smallest Padding length for `plaintext_length` inner octets.
  size_t minimal_pad_length(size_t plaintext_length) const;
  // Octets of the protected body for that plaintext and padding length.
  size_t protected_length(size_t plaintext_length, std::optional<uint8_t> pad_length = {}) const;

  // Encrypts `plaintext` (the inner payloads) and returns the body. A fresh
  // IV: random for CBC (RFC 7296 §3.14 wants it unpredictable), a 64-bit
  // counter for GCM (RFC 5282 §3.1 wants it unique per key). pad_length:
  // Padding octets (zeros); default minimal. Errors: pad_length does not
  // align to block_size(), GCM IV counter exhausted, OpenSSL failure.
  shared::Result<std::vector<uint8_t>> protect(std::span<const uint8_t> aad,
                                               std::span<const uint8_t> plaintext,
                                               std::optional<uint8_t> pad_length = {});
  // Same with a caller-chosen IV (known-answer tests); iv: iv_length() octets.
  shared::Result<std::vector<uint8_t>> protect_with_iv(std::span<const uint8_t> aad,
                                                       std::span<const uint8_t> plaintext,
                                                       std::span<const uint8_t> iv,
                                                       std::optional<uint8_t> pad_length = {}) const;

  // Checks the ICV (constant time, before any decryption for CBC), decrypts
  // and strips Padding and Pad Length, returning the inner payloads.
  // Errors: body too short or ciphertext not block aligned, ICV mismatch,
  // Pad Length larger than the decrypted data.
  shared::Result<SecureBytes> unprotect(std::span<const uint8_t> aad,
                                        std::span<const uint8_t> body) const;

 private:
  SkCipher(const CipherSuite& suite, SecureBytes encr_key, SecureBytes integ_key)
      : suite_(suite), encr_key_(std::move(encr_key)), integ_key_(std::move(integ_key)) {}

  CipherSuite suite_;
  SecureBytes encr_key_;   // AES key | salt (GCM)
  SecureBytes integ_key_;  // empty for GCM
  uint64_t next_gcm_iv_ = 1;
};

}  // namespace segw::cp::crypto
