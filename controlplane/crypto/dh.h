// Diffie-Hellman for IKE: MODP 2048 (group 14, RFC 3526), ECP 256/384
// (groups 19/20, RFC 5903) and Curve25519 (group 31, RFC 8031), with the
// KE payload encoding of each and full validation of the peer's value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/secure_bytes.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// Octets of the KE payload's Key Exchange Data for `group`: 256 (MODP
// 2048, zero-padded to the prime, RFC 7296 §3.4), 64/96 (x | y without the
// point format octet, RFC 5903 §7), 32 (RFC 8031 §3).
size_t dh_public_value_length(DhGroup group);
// Octets of g^ir: 256, 32, 48 (the x coordinate, RFC 5903 §9), 32.
size_t dh_shared_secret_length(DhGroup group);

// An ephemeral key pair. Movable, not copyable; const methods may be called
// from any thread.
class DhKeyPair {
 public:
  // Fresh key pair. Errors: OpenSSL failure only.
  static shared::Result<DhKeyPair> generate(DhGroup group);
  // From a known private value (big-endian scalar/exponent, or the raw
  // X25519 key): for known-answer tests. Errors: value out of range.
  static shared::Result<DhKeyPair> from_private_key(DhGroup group,
                                                    std::span<const uint8_t> private_key);

  DhGroup group() const { return group_; }
  // Key Exchange Data to send (dh_public_value_length(group) octets).
  const std::vector<uint8_t>& public_value() const { return public_value_; }

  // g^ir from the peer's Key Exchange Data (untrusted). Errors, each naming
  // the group: wrong length (expected vs actual); MODP value 0, 1, p-1 or
  // >= p, or outside the prime-order subgroup; ECP point not on the curve;
  // X25519 all-zero result (small-order point, RFC 8031 §2.3); OpenSSL
  // failure. Never aborts on bad input.
  shared::Result<SecureBytes> compute_shared_secret(std::span<const uint8_t> peer_value) const;

  // The OpenSSL key, for cross-checks in tests. Owned by this object.
  EVP_PKEY* pkey() const { return key_.get(); }

 private:
  DhKeyPair(DhGroup group, PkeyPtr key, std::vector<uint8_t> public_value)
      : group_(group), key_(std::move(key)), public_value_(std::move(public_value)) {}

  DhGroup group_;
  PkeyPtr key_;
  std::vector<uint8_t> public_value_;
};

}  // namespace segw::cp::crypto
