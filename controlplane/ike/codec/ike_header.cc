// IKE header codec (RFC 7296 3.1).
#include "controlplane/ike/codec/ike_header.h"

#include <cstdio>

namespace segw::cp::ike {

std::string to_string(const IkeHeader& header) {
  char spis[64];
  std::snprintf(spis, sizeof(spis), "spi_i=%016llx spi_r=%016llx",
                static_cast<unsigned long long>(header.spi_i),
                static_cast<unsigned long long>(header.spi_r));
  return to_string(header.exchange) + (header.is_response() ? " response" : " request") +
         " #" + std::to_string(header.message_id) + " " + spis +
         " flags=" + flags_to_string(header.flags) + " next=" + to_string(header.next_payload) +
         " version=" + std::to_string(header.major_version) + "." +
         std::to_string(header.minor_version) + " length=" + std::to_string(header.length);
}

Result<IkeHeader> decode_ike_header(std::span<const uint8_t> datagram, DecodeFailure* failure) {
  auto fail = [failure](DecodeFailureKind kind, std::string message) {
    if (failure != nullptr) *failure = DecodeFailure{kind, 0};
    return make_error(std::move(message));
  };
  if (datagram.size() < kIkeHeaderSize) {
    return fail(DecodeFailureKind::kMalformed,
                "IKE message of " + std::to_string(datagram.size()) +
                    " bytes, shorter than the " + std::to_string(kIkeHeaderSize) +
                    "-byte IKE header");
  }
  IkeHeader header;
  header.spi_i = read_be64(datagram, 0);
  header.spi_r = read_be64(datagram, 8);
  header.next_payload = static_cast<PayloadType>(datagram[16]);
  header.major_version = datagram[17] >> 4;
  header.minor_version = datagram[17] & 0x0f;
  header.exchange = static_cast<ExchangeType>(datagram[18]);
  header.flags = datagram[19];
  header.message_id = read_be32(datagram, 20);
  header.length = read_be32(datagram, 24);
  if (header.length != datagram.size()) {
    return fail(DecodeFailureKind::kMalformed,
                "IKE header Length " + std::to_string(header.length) +
                    ", expected the datagram size " + std::to_string(datagram.size()));
  }
  // RFC 7296 2.5: a higher major version is answered with INVALID_MAJOR_VERSION.
  if (header.major_version != kIkeMajorVersion) {
    return fail(DecodeFailureKind::kInvalidMajorVersion,
                "IKE major version " + std::to_string(header.major_version) + ", expected " +
                    std::to_string(kIkeMajorVersion));
  }
  return header;
}

void encode_ike_header(const IkeHeader& header, ByteWriter& out) {
  out.u64(header.spi_i);
  out.u64(header.spi_r);
  out.u8(static_cast<uint8_t>(header.next_payload));
  out.u8(static_cast<uint8_t>((header.major_version << 4) | (header.minor_version & 0x0f)));
  out.u8(static_cast<uint8_t>(header.exchange));
  out.u8(header.flags);
  out.u32(header.message_id);
  out.u32(header.length);
}

}  // namespace segw::cp::ike
