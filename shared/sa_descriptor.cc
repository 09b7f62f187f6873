// Algorithm property table and helpers for the SA descriptor.
#include "shared/sa_descriptor.h"

#include <cstring>
#include <string>

namespace segw::shared {

namespace {
// Indexed by EspAlgorithm. GCM: 8-byte explicit IV (RFC 4106 3.1), 4-byte
// block alignment; CBC: 16-byte IV and block (RFC 3602 2.4).
constexpr EspAlgorithmProperties kProperties[kEspAlgorithmCount] = {
    {"aes-gcm-128", 16, 0, 4, 8, 16, 4, true},
    {"aes-gcm-256", 32, 0, 4, 8, 16, 4, true},
    {"aes-cbc-128-hmac-sha1-96", 16, 20, 0, 16, 12, 16, false},
    {"aes-cbc-256-hmac-sha1-96", 32, 20, 0, 16, 12, 16, false},
    {"aes-cbc-128-hmac-sha256-128", 16, 32, 0, 16, 16, 16, false},
    {"aes-cbc-256-hmac-sha256-128", 32, 32, 0, 16, 16, 16, false},
};
}  // namespace

const EspAlgorithmProperties& properties(EspAlgorithm algorithm) {
  return kProperties[static_cast<int>(algorithm)];
}

const char* to_string(EspAlgorithm algorithm) { return properties(algorithm).name; }

std::optional<EspAlgorithm> parse_esp_algorithm(std::string_view name) {
  for (int i = 0; i < kEspAlgorithmCount; ++i)
    if (name == kProperties[i].name) return static_cast<EspAlgorithm>(i);
  return std::nullopt;
}

const char* to_string(SaDirection direction) {
  return direction == SaDirection::kInbound ? "inbound" : "outbound";
}

TrafficSelector TrafficSelector::from_prefix(const IpPrefix& prefix) {
  TrafficSelector ts;
  ts.start = prefix.address;
  ts.end = prefix.last();
  return ts;
}

bool TrafficSelector::contains_address(const IpAddress& address) const {
  return address.family() == start.family() && !(address < start) && !(end < address);
}

std::string TrafficSelector::to_string() const {
  std::string text = start.to_string() + "-" + end.to_string();
  if (protocol != 0) text += " proto " + std::to_string(protocol);
  if (port_start != 0 || port_end != 65535)
    text += " ports " + std::to_string(port_start) + "-" + std::to_string(port_end);
  return text;
}

std::string_view SaDescriptor::name_view() const {
  return std::string_view(name.data(), strnlen(name.data(), name.size()));
}

void SaDescriptor::set_name(std::string_view text) {
  name.fill(0);
  std::memcpy(name.data(), text.data(), std::min(text.size(), name.size() - 1));
}

void secure_zero(void* data, size_t length) {
  // explicit_bzero is glibc's guaranteed-not-elided memset; it must not see
  // a null pointer, which an empty vector's data() may be.
  if (length == 0) return;
  explicit_bzero(data, length);
}

void secure_zero(SaDescriptor& descriptor) {
  secure_zero(descriptor.cipher_key.data(), descriptor.cipher_key.size());
  secure_zero(descriptor.integrity_key.data(), descriptor.integrity_key.size());
  secure_zero(descriptor.salt.data(), descriptor.salt.size());
}

}  // namespace segw::shared
