// IPsec-MB manager lifetime and key expansion (AES round keys, GCM tables,
// HMAC ipad/opad precomputes).
#include "dataplane/esp/crypto.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace segw::dp {

SaKeys::~SaKeys() { shared::secure_zero(this, sizeof(*this)); }

CryptoManager::CryptoManager() {
  manager_ = alloc_mb_mgr(0);
  if (manager_ == nullptr) {
    std::fprintf(stderr, "segw: IPsec-MB alloc_mb_mgr failed (out of memory)\n");
    std::abort();
  }
  // Picks the best code path for this CPU (AVX-512/VAES, AVX2, AVX, SSE).
  init_mb_mgr_auto(manager_, &architecture_);
  if (imb_get_errno(manager_) != 0) {
    std::fprintf(stderr, "segw: IPsec-MB init failed: %s\n",
                 imb_get_strerror(imb_get_errno(manager_)));
    std::abort();
  }
}

CryptoManager::~CryptoManager() { free_mb_mgr(manager_); }

const char* CryptoManager::architecture_name() const {
  switch (architecture_) {
    case IMB_ARCH_SSE: return "sse";
    case IMB_ARCH_AVX: return "avx";
    case IMB_ARCH_AVX2: return "avx2";
    case IMB_ARCH_AVX512: return "avx512";
    default: return "none";
  }
}

namespace {
// HMAC (RFC 2104): precompute the compression state after key^ipad and
// key^opad so each packet skips two block computations.
void hmac_precompute(IMB_MGR* manager, shared::EspAlgorithm algorithm, const uint8_t* key,
                     unsigned key_length, uint8_t* ipad_state, uint8_t* opad_state) {
  constexpr unsigned kBlock = 64;  // SHA-1 and SHA-256 block size
  alignas(16) uint8_t ipad[kBlock];
  alignas(16) uint8_t opad[kBlock];
  std::memset(ipad, 0x36, kBlock);
  std::memset(opad, 0x5c, kBlock);
  for (unsigned i = 0; i < key_length; ++i) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
  bool sha1 = algorithm == shared::EspAlgorithm::kAesCbc128HmacSha1 ||
              algorithm == shared::EspAlgorithm::kAesCbc256HmacSha1;
  if (sha1) {
    IMB_SHA1_ONE_BLOCK(manager, ipad, ipad_state);
    IMB_SHA1_ONE_BLOCK(manager, opad, opad_state);
  } else {
    IMB_SHA256_ONE_BLOCK(manager, ipad, ipad_state);
    IMB_SHA256_ONE_BLOCK(manager, opad, opad_state);
  }
  shared::secure_zero(ipad, sizeof(ipad));
  shared::secure_zero(opad, sizeof(opad));
}
}  // namespace

void CryptoManager::expand_keys(const shared::SaDescriptor& d, SaKeys& keys) const {
  const auto& props = shared::properties(d.algorithm);
  switch (d.algorithm) {
    case shared::EspAlgorithm::kAesGcm128:
      IMB_AES128_GCM_PRE(manager_, d.cipher_key.data(), &keys.gcm);
      break;
    case shared::EspAlgorithm::kAesGcm256:
      IMB_AES256_GCM_PRE(manager_, d.cipher_key.data(), &keys.gcm);
      break;
    default:
      if (props.cipher_key_length == 16)
        IMB_AES_KEYEXP_128(manager_, d.cipher_key.data(), keys.cbc.encrypt_round_keys,
                           keys.cbc.decrypt_round_keys);
      else
        IMB_AES_KEYEXP_256(manager_, d.cipher_key.data(), keys.cbc.encrypt_round_keys,
                           keys.cbc.decrypt_round_keys);
      hmac_precompute(manager_, d.algorithm, d.integrity_key.data(), props.integrity_key_length,
                      keys.cbc.hmac_ipad_state, keys.cbc.hmac_opad_state);
      break;
  }
}

}  // namespace segw::dp
