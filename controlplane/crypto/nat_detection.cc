// NAT-D hashes.
#include "controlplane/crypto/nat_detection.h"

#include "controlplane/crypto/openssl_types.h"

namespace segw::cp::crypto {

shared::Result<NatDetectionHash> nat_detection_hash(const IkeSpi& spi_i, const IkeSpi& spi_r,
                                                    const shared::IpAddress& address,
                                                    uint16_t port) {
  const uint8_t port_bytes[2] = {static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port)};
  MdCtxPtr md(EVP_MD_CTX_new());
  NatDetectionHash out{};
  unsigned int length = 0;
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha1(), nullptr) != 1 ||
      EVP_DigestUpdate(md.get(), spi_i.data(), spi_i.size()) != 1 ||
      EVP_DigestUpdate(md.get(), spi_r.data(), spi_r.size()) != 1 ||
      EVP_DigestUpdate(md.get(), address.bytes(), address.byte_length()) != 1 ||
      EVP_DigestUpdate(md.get(), port_bytes, sizeof(port_bytes)) != 1 ||
      EVP_DigestFinal_ex(md.get(), out.data(), &length) != 1 || length != out.size()) {
    return openssl_error("NAT-D SHA-1");
  }
  return out;
}

}  // namespace segw::cp::crypto
