// SK / SKF payload protection: padding, IV, encryption, ICV.
#include "controlplane/crypto/sk_protection.h"

#include <algorithm>
#include <string>

#include "controlplane/crypto/cipher.h"
#include "controlplane/crypto/prf.h"
#include "controlplane/crypto/random.h"

namespace segw::cp::crypto {

using shared::make_error;

shared::Result<SkCipher> SkCipher::create(const CipherSuite& suite, SecureBytes encr_key,
                                          SecureBytes integ_key) {
  if (auto status = validate_cipher_suite(suite); !status) return make_error(status.error());
  if (encr_key.size() != encr_key_length(suite)) {
    return make_error(std::string(to_string(suite.encr)) + "-" + std::to_string(suite.key_bits) +
                      ": encryption key of " + std::to_string(encr_key.size()) +
                      " octets, expected " + std::to_string(encr_key_length(suite)));
  }
  if (integ_key.size() != integ_key_length(suite.integ)) {
    return make_error(std::string(to_string(suite.integ)) + ": integrity key of " +
                      std::to_string(integ_key.size()) + " octets, expected " +
                      std::to_string(integ_key_length(suite.integ)));
  }
  return SkCipher(suite, std::move(encr_key), std::move(integ_key));
}

size_t SkCipher::iv_length() const { return is_aead(suite_.encr) ? kGcmIvLength : kAesBlockSize; }

size_t SkCipher::icv_length() const {
  return is_aead(suite_.encr) ? kGcmIcvLength : integ_icv_length(suite_.integ);
}

// RFC 5282 §3: with GCM the ciphertext need not be block aligned.
size_t SkCipher::block_size() const { return is_aead(suite_.encr) ? 1 : kAesBlockSize; }

size_t SkCipher::minimal_pad_length(size_t plaintext_length) const {
  const size_t b = block_size();
  return (b - (plaintext_length + 1) % b) % b;  // +1: the Pad Length octet
}

size_t SkCipher::protected_length(size_t plaintext_length,
                                  std::optional<uint8_t> pad_length) const {
  const size_t pad = pad_length ? *pad_length : minimal_pad_length(plaintext_length);
  return iv_length() + plaintext_length + pad + 1 + icv_length();
}

shared::Result<std::vector<uint8_t>> SkCipher::protect(std::span<const uint8_t> aad,
                                                       std::span<const uint8_t> plaintext,
                                                       std::optional<uint8_t> pad_length) {
  std::vector<uint8_t> iv(iv_length());
  if (is_aead(suite_.encr)) {
    if (next_gcm_iv_ == 0) return make_error("AES-GCM IV counter exhausted: rekey the IKE SA");
    for (size_t i = 0; i < kGcmIvLength; ++i) {
      iv[i] = static_cast<uint8_t>(next_gcm_iv_ >> (8 * (kGcmIvLength - 1 - i)));
    }
    ++next_gcm_iv_;
  } else if (auto status = random_fill(iv); !status) {
    return make_error(status.error());
  }
  return protect_with_iv(aad, plaintext, iv, pad_length);
}

shared::Result<std::vector<uint8_t>> SkCipher::protect_with_iv(
    std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
    std::span<const uint8_t> iv, std::optional<uint8_t> pad_length) const {
  if (iv.size() != iv_length()) {
    return make_error("SK: IV of " + std::to_string(iv.size()) + " octets, expected " +
                      std::to_string(iv_length()));
  }
  const size_t pad = pad_length ? *pad_length : minimal_pad_length(plaintext.size());
  if ((plaintext.size() + pad + 1) % block_size() != 0) {
    return make_error("SK: padding of " + std::to_string(pad) + " octets leaves " +
                      std::to_string(plaintext.size()) + "+pad+1 unaligned to the " +
                      std::to_string(block_size()) + "-octet block (RFC 7296 §3.14)");
  }
  // Inner plaintext | Padding (zeros, any value is allowed) | Pad Length.
  SecureBytes padded;
  padded.reserve(plaintext.size() + pad + 1);
  padded.append(plaintext);
  padded.resize(plaintext.size() + pad);
  padded.push_back(static_cast<uint8_t>(pad));

  std::vector<uint8_t> body(iv.begin(), iv.end());
  body.reserve(protected_length(plaintext.size(), static_cast<uint8_t>(pad)));
  if (is_aead(suite_.encr)) {
    // RFC 5282 §4: nonce = salt (last 4 octets of the key material) | IV.
    const size_t key_length = suite_.key_bits / 8;
    uint8_t nonce[kGcmSaltLength + kGcmIvLength];
    std::copy_n(encr_key_.data() + key_length, kGcmSaltLength, nonce);
    std::copy(iv.begin(), iv.end(), nonce + kGcmSaltLength);
    auto sealed = aes_gcm_seal(encr_key_.span().first(key_length), nonce, aad, padded);
    if (!sealed) return make_error("SK: " + sealed.error());
    body.insert(body.end(), sealed->begin(), sealed->end());
    return body;
  }
  auto ciphertext = aes_cbc_encrypt(encr_key_, iv, padded);
  if (!ciphertext) return make_error("SK: " + ciphertext.error());
  body.insert(body.end(), ciphertext->begin(), ciphertext->end());
  // RFC 7296 §3.14: the checksum covers the message from the IKE header
  // through the Pad Length, i.e. AAD | IV | ciphertext.
  auto icv = hmac(integ_hash(suite_.integ), integ_key_, {aad, body});
  if (!icv) return make_error("SK: " + icv.error());
  body.insert(body.end(), icv->begin(), icv->begin() + icv_length());
  return body;
}

shared::Result<SecureBytes> SkCipher::unprotect(std::span<const uint8_t> aad,
                                                std::span<const uint8_t> body) const {
  const size_t minimum = iv_length() + block_size() + icv_length();
  if (body.size() < minimum) {
    return make_error("SK: protected body of " + std::to_string(body.size()) +
                      " octets, expected at least " + std::to_string(minimum));
  }
  const auto iv = body.first(iv_length());
  const size_t ciphertext_length = body.size() - iv_length() - icv_length();
  const auto ciphertext = body.subspan(iv_length(), ciphertext_length);
  const auto icv = body.last(icv_length());

  shared::Result<SecureBytes> padded = SecureBytes();
  if (is_aead(suite_.encr)) {
    const size_t key_length = suite_.key_bits / 8;
    uint8_t nonce[kGcmSaltLength + kGcmIvLength];
    std::copy_n(encr_key_.data() + key_length, kGcmSaltLength, nonce);
    std::copy(iv.begin(), iv.end(), nonce + kGcmSaltLength);
    padded = aes_gcm_open(encr_key_.span().first(key_length), nonce, aad,
                          body.subspan(iv_length()));
    if (!padded) return make_error("SK: " + padded.error());
  } else {
    if (ciphertext_length % kAesBlockSize != 0) {
      return make_error("SK: ciphertext of " + std::to_string(ciphertext_length) +
                        " octets is not a multiple of the 16-octet block");
    }
    // Verify before decrypting: nothing of an unauthenticated ciphertext is
    // interpreted (no padding oracle).
    auto expected = hmac(integ_hash(suite_.integ), integ_key_,
                         {aad, body.first(iv_length() + ciphertext_length)});
    if (!expected) return make_error("SK: " + expected.error());
    if (!equal_constant_time(expected->span().first(icv_length()), icv)) {
      return make_error(std::string("SK: ICV mismatch (") + to_string(suite_.integ) + ")");
    }
    padded = aes_cbc_decrypt(encr_key_, iv, ciphertext);
    if (!padded) return make_error("SK: " + padded.error());
  }
  SecureBytes& plain = *padded;
  const size_t pad = plain[plain.size() - 1];
  if (pad + 1 > plain.size()) {
    return make_error("SK: Pad Length " + std::to_string(pad) + " exceeds the " +
                      std::to_string(plain.size() - 1) + " decrypted octets before it");
  }
  plain.resize(plain.size() - pad - 1);
  return std::move(plain);
}

}  // namespace segw::cp::crypto
