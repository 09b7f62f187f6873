#include "controlplane/ike/engine/engine_support.h"

#include <algorithm>

namespace segw::cp::ike {

crypto::IkeSpi spi_to_wire(uint64_t spi) {
  crypto::IkeSpi out{};
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(spi >> (56 - 8 * i));
  return out;
}

uint64_t spi_from_wire(std::span<const uint8_t> bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) value = (value << 8) | bytes[i];
  return value;
}

shared::TrafficSelector to_shared(const TrafficSelector& selector) {
  shared::TrafficSelector out;
  out.start = selector.start_address;
  out.end = selector.end_address;
  out.protocol = selector.ip_protocol;
  out.port_start = selector.start_port;
  out.port_end = selector.end_port;
  return out;
}

TrafficSelector to_wire(const shared::TrafficSelector& selector) {
  TrafficSelector out;
  out.type = selector.start.is_ipv4() ? TsType::kIpv4AddressRange : TsType::kIpv6AddressRange;
  out.ip_protocol = selector.protocol;
  out.start_port = selector.port_start;
  out.end_port = selector.port_end;
  out.start_address = selector.start;
  out.end_address = selector.end;
  return out;
}

std::optional<shared::TrafficSelector> intersect(const shared::TrafficSelector& a,
                                                 const shared::TrafficSelector& b) {
  if (a.start.family() != b.start.family()) return std::nullopt;
  shared::TrafficSelector out;
  out.start = std::max(a.start, b.start);
  out.end = std::min(a.end, b.end);
  if (out.end < out.start) return std::nullopt;
  if (a.protocol != 0 && b.protocol != 0 && a.protocol != b.protocol) return std::nullopt;
  out.protocol = a.protocol != 0 ? a.protocol : b.protocol;
  out.port_start = std::max(a.port_start, b.port_start);
  out.port_end = std::min(a.port_end, b.port_end);
  if (out.port_end < out.port_start) return std::nullopt;
  return out;
}

bool overlaps(const shared::TrafficSelector& a, const shared::TrafficSelector& b) {
  return a.start.family() == b.start.family() && !(a.end < b.start) && !(b.end < a.start);
}

std::vector<shared::TrafficSelector> narrow(std::span<const shared::TrafficSelector> offered,
                                            std::span<const shared::TrafficSelector> allowed,
                                            size_t limit) {
  std::vector<shared::TrafficSelector> out;
  for (const auto& o : offered) {
    for (const auto& a : allowed) {
      auto both = intersect(o, a);
      if (!both || std::find(out.begin(), out.end(), *both) != out.end()) continue;
      if (out.size() == limit) return out;
      out.push_back(*both);
    }
  }
  return out;
}

shared::Result<std::vector<uint8_t>> seal_message(const IkeHeader& header,
                                                  std::span<const Payload> inner,
                                                  crypto::SkCipher& cipher) {
  auto plain = encode_payload_chain(inner);
  if (!plain) return shared::make_error(plain.error());
  PayloadType first = inner.empty() ? PayloadType::kNone : inner.front().type;
  size_t body_length = cipher.protected_length(plain->size());
  auto prefix = build_sk_prefix(header, first, body_length);
  if (!prefix) return shared::make_error(prefix.error());
  auto body = cipher.protect(*prefix, *plain);
  if (!body) return shared::make_error(body.error());
  std::vector<uint8_t> out = std::move(*prefix);
  out.insert(out.end(), body->begin(), body->end());
  return out;
}

shared::Result<std::vector<Payload>> open_message(std::span<const uint8_t> datagram,
                                                  const Message& message,
                                                  const crypto::SkCipher& cipher, bool* icv_failed) {
  if (icv_failed) *icv_failed = false;
  if (message.payloads.empty()) return shared::make_error("no SK payload");
  const auto* sk = message.payloads.back().get<EncryptedPayload>();
  if (sk == nullptr) {
    if (message.payloads.back().get<EncryptedFragmentPayload>())
      return shared::make_error("IKE fragments (SKF) are not supported");
    return shared::make_error("no SK payload");
  }
  const EncryptedLayout& layout = sk->layout;
  if (layout.body_offset + layout.body_length > datagram.size())
    return shared::make_error("SK payload beyond the datagram");
  auto plain = cipher.unprotect(datagram.subspan(0, layout.body_offset),
                                datagram.subspan(layout.body_offset, layout.body_length));
  if (!plain) {
    if (icv_failed) *icv_failed = true;
    return shared::make_error("SK payload: " + plain.error());
  }
  auto inner = decode_payload_chain(sk->first_inner, plain->span());
  if (!inner) return shared::make_error("SK contents: " + inner.error());
  return std::move(*inner);
}

std::optional<shared::EspAlgorithm> esp_algorithm_for(const policy::SelectedProposal& selected) {
  using shared::EspAlgorithm;
  if (selected.encr.id == EncrId::kAesGcm16) {
    if (selected.encr.key_bits == 128) return EspAlgorithm::kAesGcm128;
    if (selected.encr.key_bits == 256) return EspAlgorithm::kAesGcm256;
    return std::nullopt;
  }
  if (selected.encr.id != EncrId::kAesCbc) return std::nullopt;
  if (selected.encr.key_bits != 128 && selected.encr.key_bits != 256) return std::nullopt;
  bool wide = selected.encr.key_bits == 256;
  if (selected.integ == IntegId::kHmacSha1_96)
    return wide ? EspAlgorithm::kAesCbc256HmacSha1 : EspAlgorithm::kAesCbc128HmacSha1;
  if (selected.integ == IntegId::kHmacSha2_256_128)
    return wide ? EspAlgorithm::kAesCbc256HmacSha256 : EspAlgorithm::kAesCbc128HmacSha256;
  return std::nullopt;
}

bool data_plane_runs(const policy::ProposalSpec& spec) {
  for (const auto& encr : spec.encr) {
    if (encr.key_bits != 128 && encr.key_bits != 256) return false;
    if (encr.id != EncrId::kAesGcm16 && encr.id != EncrId::kAesCbc) return false;
  }
  for (auto integ : spec.integ)
    if (integ != IntegId::kHmacSha1_96 && integ != IntegId::kHmacSha2_256_128) return false;
  return true;
}

std::vector<uint8_t> id_payload_body(const IdPayload& id) {
  std::vector<uint8_t> out;
  ByteWriter writer(out);
  encode_id_body(id, writer);
  return out;
}

std::string describe(const policy::SelectedProposal& selected) {
  policy::ProposalSpec spec;
  spec.protocol = selected.proposal.protocol;
  spec.encr = {selected.encr};
  if (selected.prf) spec.prf = {*selected.prf};
  if (selected.integ != IntegId::kNone) spec.integ = {selected.integ};
  if (selected.dh != DhId::kNone) spec.dh = {selected.dh};
  if (selected.esn) spec.esn = {*selected.esn};
  return policy::to_string(spec);
}



const NotifyPayload* first_error_notify(std::span<const Payload> payloads) {
  for (const auto& payload : payloads) {
    const auto* notify = payload.get<NotifyPayload>();
    if (notify && is_error_notify(notify->type)) return notify;
  }
  return nullptr;
}

std::vector<const NotifyPayload*> notifies_of(std::span<const Payload> payloads, NotifyType type) {
  std::vector<const NotifyPayload*> out;
  for (const auto& payload : payloads) {
    const auto* notify = payload.get<NotifyPayload>();
    if (notify && notify->type == type) out.push_back(notify);
  }
  return out;
}

std::vector<uint8_t> no_nats_allowed_data(const shared::channel::OuterEndpoint& source,
                                          const shared::channel::OuterEndpoint& destination) {
  // IPv4: 4 + 4 + 2 + 2 octets, IPv6: 16 + 16 + 2 + 2.
  std::vector<uint8_t> out;
  for (const auto* endpoint : {&source, &destination})
    out.insert(out.end(), endpoint->address.bytes(), endpoint->address.bytes() + endpoint->address.byte_length());
  for (uint16_t port : {source.port, destination.port}) {
    out.push_back(uint8_t(port >> 8));
    out.push_back(uint8_t(port));
  }
  return out;
}

}  // namespace segw::cp::ike
