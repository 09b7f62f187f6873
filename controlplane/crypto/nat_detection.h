// NAT_DETECTION_*_IP notification data (RFC 7296 §2.23).
#pragma once

#include <array>
#include <cstdint>

#include "controlplane/crypto/algorithms.h"
#include "shared/ip_address.h"
#include "shared/result.h"

namespace segw::cp::crypto {

using NatDetectionHash = std::array<uint8_t, 20>;

// SHA-1(SPIi | SPIr | IP address | port), address in network order (4 or
// 16 octets), port in network order; `port` given in host order. spi_r is
// zero in the IKE_SA_INIT request. Error: OpenSSL failure only.
shared::Result<NatDetectionHash> nat_detection_hash(const IkeSpi& spi_i, const IkeSpi& spi_r,
                                                    const shared::IpAddress& address,
                                                    uint16_t port);

}  // namespace segw::cp::crypto
