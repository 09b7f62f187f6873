// RAND_bytes wrappers for nonces and SPIs.
#include "controlplane/crypto/random.h"

#include <openssl/rand.h>

#include <climits>
#include <string>

#include "controlplane/crypto/openssl_types.h"

namespace segw::cp::crypto {

using shared::make_error;

shared::Status random_fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const size_t chunk = std::min<size_t>(out.size() - done, INT_MAX);
    if (RAND_bytes(out.data() + done, static_cast<int>(chunk)) != 1) {
      return openssl_error("RAND_bytes failed");
    }
    done += chunk;
  }
  return shared::Status::success();
}

shared::Result<std::vector<uint8_t>> random_bytes(size_t length) {
  std::vector<uint8_t> out(length);
  if (auto status = random_fill(out); !status) return make_error(status.error());
  return out;
}

shared::Result<std::vector<uint8_t>> make_nonce(size_t length) {
  if (length < 16 || length > 256) {
    return make_error("nonce length " + std::to_string(length) +
                      " out of range, expected 16..256 (RFC 7296 §3.9)");
  }
  return random_bytes(length);
}

shared::Result<IkeSpi> make_ike_spi() {
  IkeSpi spi{};
  do {
    if (auto status = random_fill(spi); !status) return make_error(status.error());
  } while (spi == IkeSpi{});
  return spi;
}

shared::Result<uint32_t> make_esp_spi() {
  uint32_t spi = 0;
  do {
    uint8_t bytes[4];
    if (auto status = random_fill(bytes); !status) return make_error(status.error());
    spi = (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
          bytes[3];
  } while (spi < 256);
  return spi;
}

}  // namespace segw::cp::crypto
