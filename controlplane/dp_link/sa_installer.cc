// Argument checks every SaInstaller backend shares.
#include "controlplane/dp_link/sa_installer.h"

#include <algorithm>
#include <string>

namespace segw::cp::dp_link {

shared::Result<shared::channel::UpdateSelectorsPayload> make_update_selectors(
    uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
    std::span<const shared::TrafficSelector> remote) {
  if (spi == 0) return shared::make_error("SPI 0 is reserved (RFC 4303 2.1)");
  if (direction != shared::SaDirection::kInbound && direction != shared::SaDirection::kOutbound)
    return shared::make_error("SA with an invalid direction");
  if (local.size() > size_t(shared::kMaxSelectors) || remote.size() > size_t(shared::kMaxSelectors))
    return shared::make_error(std::to_string(local.size()) + " local and " + std::to_string(remote.size()) +
                              " remote selectors: at most " + std::to_string(shared::kMaxSelectors) + " each");
  if (direction == shared::SaDirection::kOutbound && remote.empty())
    return shared::make_error("an outbound SA needs a remote selector (its route)");
  shared::channel::UpdateSelectorsPayload payload;
  payload.spi = spi;
  payload.direction = direction;
  payload.local_selector_count = static_cast<uint8_t>(local.size());
  payload.remote_selector_count = static_cast<uint8_t>(remote.size());
  std::copy(local.begin(), local.end(), payload.local_selectors.begin());
  std::copy(remote.begin(), remote.end(), payload.remote_selectors.begin());
  return payload;
}

}  // namespace segw::cp::dp_link
