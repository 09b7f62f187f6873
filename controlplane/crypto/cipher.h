// Symmetric primitives under the SK payload: AES-CBC without padding and
// AES-GCM seal/open with a 16-octet tag. Any thread; no shared state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// AES-CBC over whole blocks (the caller pads, RFC 7296 §3.14). key: 16, 24
// or 32 octets; iv: 16 octets; input length a multiple of 16. Errors: any
// of those violated, OpenSSL failure.
shared::Result<std::vector<uint8_t>> aes_cbc_encrypt(std::span<const uint8_t> key,
                                                     std::span<const uint8_t> iv,
                                                     std::span<const uint8_t> plaintext);
shared::Result<SecureBytes> aes_cbc_decrypt(std::span<const uint8_t> key,
                                            std::span<const uint8_t> iv,
                                            std::span<const uint8_t> ciphertext);

// AES-GCM with a 12-octet nonce: returns ciphertext || 16-octet tag. key:
// 16, 24 or 32 octets.
shared::Result<std::vector<uint8_t>> aes_gcm_seal(std::span<const uint8_t> key,
                                                  std::span<const uint8_t> nonce,
                                                  std::span<const uint8_t> aad,
                                                  std::span<const uint8_t> plaintext);
// Reverse of aes_gcm_seal; errors: input shorter than the tag, wrong key or
// nonce size, "ICV mismatch" (tag check in OpenSSL is constant time).
shared::Result<SecureBytes> aes_gcm_open(std::span<const uint8_t> key,
                                         std::span<const uint8_t> nonce,
                                         std::span<const uint8_t> aad,
                                         std::span<const uint8_t> ciphertext_and_tag);

}  // namespace segw::cp::crypto
