// Intel IPsec-MB glue: per-thread job managers and per-SA expanded keys.
// Keys are expanded once at SA install (STYLE: precompute at setup) and
// zeroised when the SA is freed.
#pragma once

#include <intel-ipsec-mb.h>

#include <cstdint>

#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::dp {

// Expanded key material for one SA, in the layouts IPsec-MB reads.
struct alignas(64) SaKeys {
  union {
    struct gcm_key_data gcm;  // AES-GCM: round keys + GHASH tables
    struct {
      alignas(16) uint32_t encrypt_round_keys[15 * 4];
      alignas(16) uint32_t decrypt_round_keys[15 * 4];
      // HMAC inner/outer states after one block of key^ipad / key^opad.
      alignas(16) uint8_t hmac_ipad_state[32];
      alignas(16) uint8_t hmac_opad_state[32];
    } cbc;
  };
  SaKeys() {}
  // Starts loading the round keys (the first 240 bytes of either layout),
  // which every job reads. Prefetching all ~1 KiB (GHASH powers too) was
  // measured: 2.5% slower with one SA, no gain with a million.
  void prefetch() const {
    const auto* lines = reinterpret_cast<const char*>(this);
    for (size_t offset = 0; offset < 256; offset += 64) __builtin_prefetch(lines + offset);
  }
  ~SaKeys();  // zeroises
  SaKeys(const SaKeys&) = delete;
  SaKeys& operator=(const SaKeys&) = delete;
};

// One IPsec-MB manager. Not thread safe: each worker lcore owns one, the
// control thread owns one for key expansion.
class CryptoManager {
 public:
  CryptoManager();
  ~CryptoManager();
  CryptoManager(const CryptoManager&) = delete;
  CryptoManager& operator=(const CryptoManager&) = delete;

  IMB_MGR* get() const { return manager_; }
  const char* architecture_name() const;

  // Fills `keys` for `descriptor` (lengths already validated by the parser).
  void expand_keys(const shared::SaDescriptor& descriptor, SaKeys& keys) const;

 private:
  IMB_MGR* manager_ = nullptr;
  IMB_ARCH architecture_ = IMB_ARCH_NONE;
};

// Constant-time comparison of ICVs (no early exit on the first difference).
inline bool icv_equal(const uint8_t* a, const uint8_t* b, unsigned length) {
  uint8_t diff = 0;
  for (unsigned i = 0; i < length; ++i) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace segw::dp
