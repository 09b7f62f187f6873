// Shared pieces of the IKEv2 codec: why a decode failed (so the engine can
// pick the right notify), big-endian readers over spans and a byte writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "controlplane/ike/codec/ike_constants.h"
#include "shared/result.h"
#include "shared/wire.h"

namespace segw::cp::ike {

using shared::Error;
using shared::make_error;
using shared::Result;
using shared::Status;

// What the engine answers a request that failed to decode with (RFC 7296
// 2.21.1 / 3.10.1). Every decode error is also a readable message.
enum class DecodeFailureKind : uint8_t {
  kNone = 0,
  kMalformed,                   // INVALID_SYNTAX (or silent drop before auth)
  kInvalidMajorVersion,         // INVALID_MAJOR_VERSION
  kUnsupportedCriticalPayload,  // UNSUPPORTED_CRITICAL_PAYLOAD, data = payload type
};

std::string to_string(DecodeFailureKind kind);

struct DecodeFailure {
  DecodeFailureKind kind = DecodeFailureKind::kNone;
  // For kUnsupportedCriticalPayload: the payload type to put into the notify.
  uint8_t payload_type = 0;
};

// Big-endian loads from a span the caller has already length-checked.
// Reading past the end is a bug of the caller: the span's own bounds are
// not re-checked here (the decoder checks lengths before interpreting).
inline uint16_t read_be16(std::span<const uint8_t> data, size_t offset) {
  return shared::load_be16(data.data() + offset);
}
inline uint32_t read_be32(std::span<const uint8_t> data, size_t offset) {
  return shared::load_be32(data.data() + offset);
}
inline uint64_t read_be64(std::span<const uint8_t> data, size_t offset) {
  return (uint64_t{read_be32(data, offset)} << 32) | read_be32(data, offset + 4);
}

// Appends big-endian fields to a byte vector; patches lengths afterwards.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>& out) : out_(out) {}

  size_t size() const { return out_.size(); }
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void bytes(std::span<const uint8_t> data) { out_.insert(out_.end(), data.begin(), data.end()); }
  void zeros(size_t count) { out_.insert(out_.end(), count, 0); }
  void patch_u16(size_t offset, uint16_t v) {
    out_[offset] = static_cast<uint8_t>(v >> 8);
    out_[offset + 1] = static_cast<uint8_t>(v);
  }
  void patch_u32(size_t offset, uint32_t v) {
    patch_u16(offset, static_cast<uint16_t>(v >> 16));
    patch_u16(offset + 2, static_cast<uint16_t>(v));
  }

 private:
  std::vector<uint8_t>& out_;
};

inline std::vector<uint8_t> to_vector(std::span<const uint8_t> data) {
  return {data.begin(), data.end()};
}

}  // namespace segw::cp::ike
