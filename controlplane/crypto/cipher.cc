// AES-CBC and AES-GCM over EVP_CIPHER_CTX.
#include "controlplane/crypto/cipher.h"

#include <algorithm>
#include <climits>
#include <string>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/openssl_types.h"

namespace segw::cp::crypto {

using shared::make_error;

namespace {

const EVP_CIPHER* cbc_cipher(size_t key_length) {
  switch (key_length) {
    case 16: return EVP_aes_128_cbc();
    case 24: return EVP_aes_192_cbc();
    case 32: return EVP_aes_256_cbc();
    default: return nullptr;
  }
}

const EVP_CIPHER* gcm_cipher(size_t key_length) {
  switch (key_length) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return nullptr;
  }
}

shared::Error bad_key(const char* mode, size_t length) {
  return make_error(std::string(mode) + ": key of " + std::to_string(length) +
                    " octets, expected 16, 24 or 32");
}

// CBC in either direction over whole blocks; `out` must hold input.size().
shared::Status cbc_run(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                       std::span<const uint8_t> in, uint8_t* out, bool encrypt) {
  const EVP_CIPHER* cipher = cbc_cipher(key.size());
  if (cipher == nullptr) return bad_key("AES-CBC", key.size());
  if (iv.size() != kAesBlockSize) {
    return make_error("AES-CBC: IV of " + std::to_string(iv.size()) + " octets, expected 16");
  }
  if (in.size() % kAesBlockSize != 0 || in.size() > INT_MAX) {
    return make_error("AES-CBC: input of " + std::to_string(in.size()) +
                      " octets is not a multiple of the 16-octet block");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new");
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key.data(), iv.data(), encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return openssl_error("AES-CBC init");
  }
  int written = 0;
  int final_written = 0;
  if (EVP_CipherUpdate(ctx.get(), out, &written, in.data(), static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out + written, &final_written) != 1 ||
      static_cast<size_t>(written + final_written) != in.size()) {
    return openssl_error("AES-CBC");
  }
  return shared::Status::success();
}

shared::Status gcm_check(std::span<const uint8_t> key, std::span<const uint8_t> nonce,
                         std::span<const uint8_t> aad, size_t length) {
  if (gcm_cipher(key.size()) == nullptr) return bad_key("AES-GCM", key.size());
  if (nonce.size() != kGcmSaltLength + kGcmIvLength) {
    return make_error("AES-GCM: nonce of " + std::to_string(nonce.size()) +
                      " octets, expected 12");
  }
  if (aad.size() > INT_MAX || length > INT_MAX) return make_error("AES-GCM: input too long");
  return shared::Status::success();
}

}  // namespace

shared::Result<std::vector<uint8_t>> aes_cbc_encrypt(std::span<const uint8_t> key,
                                                     std::span<const uint8_t> iv,
                                                     std::span<const uint8_t> plaintext) {
  std::vector<uint8_t> out(plaintext.size());
  if (auto status = cbc_run(key, iv, plaintext, out.data(), true); !status) {
    return make_error(status.error());
  }
  return out;
}

shared::Result<SecureBytes> aes_cbc_decrypt(std::span<const uint8_t> key,
                                            std::span<const uint8_t> iv,
                                            std::span<const uint8_t> ciphertext) {
  SecureBytes out(ciphertext.size());
  if (auto status = cbc_run(key, iv, ciphertext, out.data(), false); !status) {
    return make_error(status.error());
  }
  return out;
}

shared::Result<std::vector<uint8_t>> aes_gcm_seal(std::span<const uint8_t> key,
                                                  std::span<const uint8_t> nonce,
                                                  std::span<const uint8_t> aad,
                                                  std::span<const uint8_t> plaintext) {
  if (auto status = gcm_check(key, nonce, aad, plaintext.size()); !status) {
    return make_error(status.error());
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new");
  std::vector<uint8_t> out(plaintext.size() + kGcmIcvLength);
  int written = 0;
  int final_written = 0;
  if (EVP_EncryptInit_ex(ctx.get(), gcm_cipher(key.size()), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) != 1) {
    return openssl_error("AES-GCM init");
  }
  int aad_written = 0;
  if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &aad_written, aad.data(),
                                        static_cast<int>(aad.size())) != 1) {
    return openssl_error("AES-GCM AAD");
  }
  if (EVP_EncryptUpdate(ctx.get(), out.data(), &written, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + written, &final_written) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmIcvLength),
                          out.data() + plaintext.size()) != 1) {
    return openssl_error("AES-GCM encrypt");
  }
  return out;
}

shared::Result<SecureBytes> aes_gcm_open(std::span<const uint8_t> key,
                                         std::span<const uint8_t> nonce,
                                         std::span<const uint8_t> aad,
                                         std::span<const uint8_t> ciphertext_and_tag) {
  if (ciphertext_and_tag.size() < kGcmIcvLength) {
    return make_error("AES-GCM: input of " + std::to_string(ciphertext_and_tag.size()) +
                      " octets is shorter than the 16-octet ICV");
  }
  const size_t length = ciphertext_and_tag.size() - kGcmIcvLength;
  if (auto status = gcm_check(key, nonce, aad, length); !status) return make_error(status.error());
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new");
  SecureBytes out(length);
  // EVP wants a mutable tag buffer.
  uint8_t tag[kGcmIcvLength];
  std::copy_n(ciphertext_and_tag.data() + length, kGcmIcvLength, tag);
  int written = 0;
  int final_written = 0;
  if (EVP_DecryptInit_ex(ctx.get(), gcm_cipher(key.size()), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) != 1) {
    return openssl_error("AES-GCM init");
  }
  int aad_written = 0;
  if (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &aad_written, aad.data(),
                                        static_cast<int>(aad.size())) != 1) {
    return openssl_error("AES-GCM AAD");
  }
  if (EVP_DecryptUpdate(ctx.get(), out.data(), &written, ciphertext_and_tag.data(),
                        static_cast<int>(length)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmIcvLength),
                          tag) != 1) {
    return openssl_error("AES-GCM decrypt");
  }
  // The tag comparison inside EVP_DecryptFinal_ex is CRYPTO_memcmp.
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + written, &final_written) != 1) {
    drain_openssl_errors();
    return make_error("AES-GCM: ICV mismatch");
  }
  return out;
}

}  // namespace segw::cp::crypto
