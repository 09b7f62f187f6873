// Random values for IKE: nonces, IKE and ESP SPIs, IVs (RAND_bytes, the
// default DRBG of OpenSSL 3, thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "shared/result.h"

namespace segw::cp::crypto {

// Fills `out`. Error only if the DRBG cannot be seeded. Any thread.
shared::Status random_fill(std::span<uint8_t> out);
shared::Result<std::vector<uint8_t>> random_bytes(size_t length);

// A nonce of `length` octets. RFC 7296 §2.10/§3.9: 16..256 octets and at
// least half the PRF key size; 32 covers every PRF here. Errors: length out
// of 16..256, DRBG failure.
shared::Result<std::vector<uint8_t>> make_nonce(size_t length = 32);

// A non-zero IKE SPI (RFC 7296 §3.1: zero means "not yet known").
shared::Result<IkeSpi> make_ike_spi();

// An ESP SPI in 256..2^32-1 (RFC 4303 §2.1 reserves 1..255, 0 is invalid).
shared::Result<uint32_t> make_esp_spi();

}  // namespace segw::cp::crypto
