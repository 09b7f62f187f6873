// SaInstaller: the one interface through which the control plane changes
// SAs in a data plane (install, remove, move a tunnel's path), in the manner
// of strongSwan's kernel_ipsec_t: IKE tasks call it, backends sit behind it.
// Backends: DataPlaneLink (the shared-memory channel to segw-dataplane) and
// RecordingSaInstaller (in memory, for unit tests of whatever drives it).
#pragma once

#include <cstdint>
#include <future>
#include <span>

#include "controlplane/dp_link/command_result.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::cp::dp_link {

class SaInstaller {
 public:
  virtual ~SaInstaller() = default;

  // Each call either fails at once (Result error: nothing was sent, e.g. not
  // attached, too many commands in flight, command ring full past the
  // timeout, invalid arguments) or returns a future that becomes ready
  // exactly once with the command's CommandResult; it never stays unready
  // forever (command timeouts). Any thread.

  // Installs one SA. The descriptor (keys included) is copied; the caller
  // wipes its own copy.
  virtual shared::Result<std::future<CommandResult>> install(const shared::SaDescriptor& sa) = 0;
  virtual shared::Result<std::future<CommandResult>> remove(uint32_t spi,
                                                            shared::SaDirection direction) = 0;
  // Moves every SA of tunnel `tunnel_id` to `path` (one atomic swap in the
  // data plane).
  virtual shared::Result<std::future<CommandResult>> update_path(
      uint32_t tunnel_id, const shared::PathDescriptor& path) = 0;
  // Replaces the traffic selectors of one SA (inbound: what decrypted
  // packets are checked against; outbound: its routes), as one change.
  // Errors at once: more than kMaxSelectors on a side, an outbound SA left
  // without a remote selector.
  virtual shared::Result<std::future<CommandResult>> update_selectors(
      uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
      std::span<const shared::TrafficSelector> remote) = 0;
};

// The payload of an update_selectors call, or an error naming what is wrong
// (shared by every SaInstaller backend, so they refuse the same calls).
shared::Result<shared::channel::UpdateSelectorsPayload> make_update_selectors(
    uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
    std::span<const shared::TrafficSelector> remote);

}  // namespace segw::cp::dp_link
