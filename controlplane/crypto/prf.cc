// HMAC over EVP_MAC, the IKEv2 PRFs and prf+.
#include "controlplane/crypto/prf.h"

#include <openssl/core_names.h>

#include <string>

namespace segw::cp::crypto {

using shared::make_error;

namespace {

// EVP_MAC_fetch walks the provider tables; fetch once (thread-safe static
// init; EVP_MAC objects are reference counted and shareable).
EVP_MAC* hmac_mac() {
  static const MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  return mac.get();
}

}  // namespace

shared::Result<Hmac> Hmac::create(HashAlgorithm hash, ByteView key) {
  EVP_MAC* mac = hmac_mac();
  if (mac == nullptr) return openssl_error("EVP_MAC_fetch(HMAC)");
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  if (!ctx) return openssl_error("EVP_MAC_CTX_new");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                       const_cast<char*>(digest_name(hash)), 0),
      OSSL_PARAM_construct_end(),
  };
  // A null key pointer means "keep the previous key" to EVP_MAC_init; give
  // an empty key a real (unused) address.
  static const uint8_t kEmpty = 0;
  const uint8_t* key_data = key.empty() ? &kEmpty : key.data();
  if (EVP_MAC_init(ctx.get(), key_data, key.size(), params) != 1) {
    return openssl_error(std::string("HMAC-") + digest_name(hash) + " init");
  }
  return Hmac(std::move(ctx), digest_length(hash));
}

shared::Status Hmac::update(ByteView data) {
  if (data.empty()) return shared::Status::success();
  if (EVP_MAC_update(ctx_.get(), data.data(), data.size()) != 1) {
    return openssl_error("HMAC update");
  }
  return shared::Status::success();
}

shared::Result<SecureBytes> Hmac::finish() {
  SecureBytes out(length_);
  size_t written = 0;
  if (EVP_MAC_final(ctx_.get(), out.data(), &written, out.size()) != 1 || written != length_) {
    return openssl_error("HMAC final");
  }
  if (EVP_MAC_init(ctx_.get(), nullptr, 0, nullptr) != 1) return openssl_error("HMAC re-init");
  return out;
}

shared::Result<SecureBytes> hmac(HashAlgorithm hash, ByteView key,
                                 std::initializer_list<ByteView> parts) {
  auto mac = Hmac::create(hash, key);
  if (!mac) return make_error(mac.error());
  for (ByteView part : parts) {
    if (auto status = mac->update(part); !status) return make_error(status.error());
  }
  return mac->finish();
}

shared::Result<SecureBytes> prf(PrfAlgorithm algorithm, ByteView key,
                                std::initializer_list<ByteView> data) {
  return hmac(prf_hash(algorithm), key, data);
}

shared::Result<SecureBytes> prf_plus(PrfAlgorithm algorithm, ByteView key, ByteView seed,
                                     size_t length) {
  const size_t block = prf_output_length(algorithm);
  const size_t blocks = (length + block - 1) / block;
  if (blocks > 255) {
    return make_error("prf+ asked for " + std::to_string(length) + " octets, at most " +
                      std::to_string(255 * block) + " with " + to_string(algorithm) +
                      " (RFC 7296 §2.13)");
  }
  auto mac = Hmac::create(prf_hash(algorithm), key);
  if (!mac) return make_error(mac.error());
  SecureBytes out;
  out.reserve(blocks * block);
  SecureBytes previous;
  for (size_t n = 1; n <= blocks; ++n) {
    const uint8_t counter = static_cast<uint8_t>(n);
    for (ByteView part : {previous.span(), seed, ByteView(&counter, 1)}) {
      if (auto status = mac->update(part); !status) return make_error(status.error());
    }
    auto t = mac->finish();
    if (!t) return make_error(t.error());
    out.append(t->span());
    previous = std::move(*t);
  }
  out.resize(length);
  return out;
}

}  // namespace segw::cp::crypto
