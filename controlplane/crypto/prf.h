// HMAC (incremental, over several parts), the IKEv2 PRFs and prf+
// (RFC 7296 §2.13).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

using ByteView = std::span<const uint8_t>;

// An HMAC keyed once, fed in parts. One object per thread (not shared).
class Hmac {
 public:
  // Errors: OpenSSL cannot fetch or key the MAC. Any key length, empty too.
  static shared::Result<Hmac> create(HashAlgorithm hash, ByteView key);

  shared::Status update(ByteView data);
  // Full-length tag; the object is then re-keyed (same key) for reuse.
  shared::Result<SecureBytes> finish();
  size_t output_length() const { return length_; }

 private:
  Hmac(MacCtxPtr ctx, size_t length) : ctx_(std::move(ctx)), length_(length) {}
  MacCtxPtr ctx_;
  size_t length_;
};

// HMAC-<hash>(key, part1 | part2 | ...). Errors: OpenSSL failure only.
shared::Result<SecureBytes> hmac(HashAlgorithm hash, ByteView key,
                                 std::initializer_list<ByteView> parts);

// prf(key, data) of RFC 7296 §2.13: the full HMAC output.
shared::Result<SecureBytes> prf(PrfAlgorithm algorithm, ByteView key,
                                std::initializer_list<ByteView> data);

// prf+(K, S) = T1 | T2 | ..., T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n),
// truncated to `length`. Errors: length needs more than 255 blocks (the
// counter is one octet, §2.13), OpenSSL failure.
shared::Result<SecureBytes> prf_plus(PrfAlgorithm algorithm, ByteView key, ByteView seed,
                                     size_t length);

}  // namespace segw::cp::crypto
