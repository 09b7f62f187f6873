// SA payload codec: proposals, transforms and attributes, each length checked
// against its container before it is interpreted (RFC 7296 3.3).
#include "controlplane/ike/codec/sa_payload.h"

#include <limits>
#include <string>

namespace segw::cp::ike {
namespace {

// RFC 7296 3.3.1 / 3.3.2: Last Substruc values.
constexpr uint8_t kLastSubstruc = 0;
constexpr uint8_t kMoreProposals = 2;
constexpr uint8_t kMoreTransforms = 3;
constexpr size_t kProposalHeaderSize = 8;
constexpr size_t kTransformHeaderSize = 8;
constexpr size_t kAttributeHeaderSize = 4;

std::string n(size_t v) { return std::to_string(v); }

Result<std::vector<TransformAttribute>> decode_attributes(std::span<const uint8_t> data,
                                                          const std::string& where) {
  std::vector<TransformAttribute> attributes;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < kAttributeHeaderSize) {
      return make_error(where + ": transform attribute needs " + n(kAttributeHeaderSize) +
                        " bytes, only " + n(left) + " left");
    }
    const uint16_t raw_type = read_be16(data, pos);
    TransformAttribute attribute;
    attribute.type = raw_type & static_cast<uint16_t>(~kAttributeFormatTv);
    attribute.tv = (raw_type & kAttributeFormatTv) != 0;
    if (attribute.tv) {
      attribute.tv_value = read_be16(data, pos + 2);
      pos += kAttributeHeaderSize;
    } else {
      const size_t length = read_be16(data, pos + 2);
      if (length > left - kAttributeHeaderSize) {
        return make_error(where + ": TLV transform attribute " + n(attribute.type) +
                          " length " + n(length) + " exceeds the " +
                          n(left - kAttributeHeaderSize) + " bytes left in the transform");
      }
      const auto value = data.subspan(pos + kAttributeHeaderSize, length);
      attribute.tlv_value.assign(value.begin(), value.end());
      pos += kAttributeHeaderSize + length;
    }
    // RFC 7296 3.3.5: Key Length is a TV attribute.
    if (attribute.type == static_cast<uint16_t>(TransformAttributeType::kKeyLength) &&
        !attribute.tv) {
      return make_error(where + ": KEY_LENGTH attribute in TLV format, expected TV");
    }
    attributes.push_back(std::move(attribute));
  }
  return attributes;
}

Result<Transform> decode_transform(std::span<const uint8_t> data, const std::string& where) {
  Transform transform;
  transform.type = static_cast<TransformType>(data[4]);
  transform.id = read_be16(data, 6);
  auto attributes = decode_attributes(data.subspan(kTransformHeaderSize),
                                      where + " " + to_string(transform.type));
  if (!attributes) return Error{attributes.error()};
  transform.attributes = std::move(*attributes);
  return transform;
}

Result<Proposal> decode_proposal(std::span<const uint8_t> data, const std::string& where) {
  Proposal proposal;
  proposal.number = data[4];
  proposal.protocol = static_cast<ProtocolId>(data[5]);
  const size_t spi_size = data[6];
  const size_t transform_count = data[7];
  if (spi_size > data.size() - kProposalHeaderSize) {
    return make_error(where + ": SPI size " + n(spi_size) + " exceeds the " +
                      n(data.size() - kProposalHeaderSize) + " bytes after the proposal header");
  }
  // RFC 7296 3.3.1: IKE SPIs are 0 (IKE_SA_INIT) or 8 (rekey), AH/ESP SPIs 4.
  if (proposal.protocol == ProtocolId::kIke && spi_size != 0 && spi_size != 8) {
    return make_error(where + ": SPI size " + n(spi_size) + " for IKE, expected 0 or 8");
  }
  if ((proposal.protocol == ProtocolId::kEsp || proposal.protocol == ProtocolId::kAh) &&
      spi_size != 4) {
    return make_error(where + ": SPI size " + n(spi_size) + " for " +
                      to_string(proposal.protocol) + ", expected 4");
  }
  const auto spi = data.subspan(kProposalHeaderSize, spi_size);
  proposal.spi.assign(spi.begin(), spi.end());

  size_t pos = kProposalHeaderSize + spi_size;
  for (size_t i = 0; i < transform_count; ++i) {
    const std::string twhere = where + " transform " + n(i + 1);
    const size_t left = data.size() - pos;
    if (left < kTransformHeaderSize) {
      return make_error(twhere + " of " + n(transform_count) + ": needs " +
                        n(kTransformHeaderSize) + " bytes, only " + n(left) +
                        " left in the proposal");
    }
    const uint8_t last = data[pos];
    const size_t length = read_be16(data, pos + 2);
    if (length < kTransformHeaderSize) {
      return make_error(twhere + ": transform length " + n(length) + ", minimum " +
                        n(kTransformHeaderSize));
    }
    if (length > left) {
      return make_error(twhere + ": transform length " + n(length) + " exceeds the " +
                        n(left) + " bytes left in the proposal");
    }
    const bool is_last = i + 1 == transform_count;
    const uint8_t expected_last = is_last ? kLastSubstruc : kMoreTransforms;
    if (last != expected_last) {
      return make_error(twhere + " of " + n(transform_count) + ": Last Substruc " + n(last) +
                        ", expected " + n(expected_last));
    }
    auto transform = decode_transform(data.subspan(pos, length), twhere);
    if (!transform) return Error{transform.error()};
    proposal.transforms.push_back(std::move(*transform));
    pos += length;
  }
  if (pos != data.size()) {
    return make_error(where + ": " + n(transform_count) + " transforms end at byte " + n(pos) +
                      " of a " + n(data.size()) + "-byte proposal");
  }
  return proposal;
}

}  // namespace

std::optional<uint16_t> Transform::key_length() const {
  for (const auto& attribute : attributes) {
    if (attribute.type == static_cast<uint16_t>(TransformAttributeType::kKeyLength) &&
        attribute.tv) {
      return attribute.tv_value;
    }
  }
  return std::nullopt;
}

Result<SaPayload> decode_sa_body(std::span<const uint8_t> body) {
  SaPayload sa;
  if (body.empty()) return make_error("SA payload without proposals, expected at least one");
  size_t pos = 0;
  while (pos < body.size()) {
    const std::string where = "SA proposal " + n(sa.proposals.size() + 1);
    const size_t left = body.size() - pos;
    if (left < kProposalHeaderSize) {
      return make_error(where + ": needs " + n(kProposalHeaderSize) + " bytes, only " +
                        n(left) + " left in the SA payload");
    }
    const uint8_t last = body[pos];
    const size_t length = read_be16(body, pos + 2);
    if (last != kLastSubstruc && last != kMoreProposals) {
      return make_error(where + ": Last Substruc " + n(last) + ", expected 0 or 2");
    }
    if (length < kProposalHeaderSize) {
      return make_error(where + ": proposal length " + n(length) + ", minimum " +
                        n(kProposalHeaderSize));
    }
    if (length > left) {
      return make_error(where + ": proposal length " + n(length) + " exceeds the " + n(left) +
                        " bytes left in the SA payload");
    }
    const bool ends_payload = length == left;
    if (last == kLastSubstruc && !ends_payload) {
      return make_error(where + ": Last Substruc 0 but " + n(left - length) +
                        " bytes follow in the SA payload");
    }
    if (last == kMoreProposals && ends_payload) {
      return make_error(where + ": Last Substruc 2 but no proposal follows");
    }
    auto proposal = decode_proposal(body.subspan(pos, length), where);
    if (!proposal) return Error{proposal.error()};
    sa.proposals.push_back(std::move(*proposal));
    pos += length;
  }
  return sa;
}

Status encode_sa_body(const SaPayload& sa, ByteWriter& out) {
  constexpr size_t kMax16 = std::numeric_limits<uint16_t>::max();
  if (sa.proposals.empty()) return make_error("SA payload without proposals, expected at least one");
  for (size_t p = 0; p < sa.proposals.size(); ++p) {
    const Proposal& proposal = sa.proposals[p];
    if (proposal.spi.size() > 255 || proposal.transforms.size() > 255) {
      return make_error("SA proposal " + n(p + 1) + ": " + n(proposal.spi.size()) +
                        "-byte SPI and " + n(proposal.transforms.size()) +
                        " transforms, at most 255 each");
    }
    const size_t proposal_start = out.size();
    out.u8(p + 1 == sa.proposals.size() ? kLastSubstruc : kMoreProposals);
    out.u8(0);
    out.u16(0);  // length, patched below
    out.u8(proposal.number);
    out.u8(static_cast<uint8_t>(proposal.protocol));
    out.u8(static_cast<uint8_t>(proposal.spi.size()));
    out.u8(static_cast<uint8_t>(proposal.transforms.size()));
    out.bytes(proposal.spi);
    for (size_t t = 0; t < proposal.transforms.size(); ++t) {
      const Transform& transform = proposal.transforms[t];
      const size_t transform_start = out.size();
      out.u8(t + 1 == proposal.transforms.size() ? kLastSubstruc : kMoreTransforms);
      out.u8(0);
      out.u16(0);
      out.u8(static_cast<uint8_t>(transform.type));
      out.u8(0);
      out.u16(transform.id);
      for (const auto& attribute : transform.attributes) {
        const uint16_t type = attribute.type & static_cast<uint16_t>(~kAttributeFormatTv);
        if (attribute.tv) {
          out.u16(type | kAttributeFormatTv);
          out.u16(attribute.tv_value);
        } else {
          if (attribute.tlv_value.size() > kMax16) {
            return make_error("SA transform attribute " + n(type) + " value of " +
                              n(attribute.tlv_value.size()) + " bytes, at most 65535");
          }
          out.u16(type);
          out.u16(static_cast<uint16_t>(attribute.tlv_value.size()));
          out.bytes(attribute.tlv_value);
        }
      }
      const size_t transform_length = out.size() - transform_start;
      if (transform_length > kMax16) {
        return make_error("SA transform of " + n(transform_length) + " bytes, at most 65535");
      }
      out.patch_u16(transform_start + 2, static_cast<uint16_t>(transform_length));
    }
    const size_t proposal_length = out.size() - proposal_start;
    if (proposal_length > kMax16) {
      return make_error("SA proposal of " + n(proposal_length) + " bytes, at most 65535");
    }
    out.patch_u16(proposal_start + 2, static_cast<uint16_t>(proposal_length));
  }
  return Status::success();
}

}  // namespace segw::cp::ike
