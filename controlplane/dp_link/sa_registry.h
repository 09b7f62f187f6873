// SaRegistry: the SAs a control plane owns in the data plane, keys
// included, so that a restarted data plane can be given every one of them
// again (issue 3, Restarts). Descriptors live in slots that are never
// handed back to the allocator while the registry lives: a removed SA's
// slot is wiped at once (secure_zero of the whole descriptor) and reused,
// and destruction wipes every slot, so key bytes never linger in freed heap.
//
// Not thread-safe: DataPlaneLink guards it with its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "shared/channel/messages.h"
#include "shared/sa_descriptor.h"

namespace segw::cp::dp_link {

struct SaKey {
  uint32_t spi = 0;
  shared::SaDirection direction = shared::SaDirection::kInbound;
  friend bool operator==(const SaKey&, const SaKey&) = default;
};

struct SaKeyHash {
  size_t operator()(const SaKey& key) const {
    return std::hash<uint64_t>()((uint64_t{key.spi} << 1) | uint64_t(key.direction));
  }
};

class SaRegistry {
 public:
  SaRegistry() = default;
  ~SaRegistry();
  SaRegistry(const SaRegistry&) = delete;
  SaRegistry& operator=(const SaRegistry&) = delete;

  // Copies `sa` in. False (nothing changed) when an SA with its SPI and
  // direction is already owned.
  bool add(const shared::SaDescriptor& sa);
  // Wipes and forgets the SA. False when it was not owned.
  bool remove(const SaKey& key);
  const shared::SaDescriptor* find(const SaKey& key) const;
  bool contains(const SaKey& key) const { return index_.contains(key); }

  // Sets the path of every owned SA of the tunnel; returns how many.
  size_t set_tunnel_path(uint32_t tunnel_id, const shared::PathDescriptor& path);
  // The path of the tunnel's SAs (they share one), if any SA of it is owned.
  std::optional<shared::PathDescriptor> tunnel_path(uint32_t tunnel_id) const;
  // Replaces an owned SA's selectors; returns the ones it had (nullopt: not owned).
  std::optional<shared::channel::UpdateSelectorsPayload> set_selectors(
      const SaKey& key, const shared::channel::UpdateSelectorsPayload& selectors);

  size_t size() const { return index_.size(); }
  // Visits every owned SA, in slot order. The callback must not add or remove.
  void for_each(const std::function<void(const shared::SaDescriptor&)>& visit) const;
  // Wipes and forgets everything.
  void clear();

  // For tests that check wiping: the slot an owned SA occupies, and the raw
  // bytes of any slot (valid for the registry's lifetime: slots never move).
  std::optional<size_t> slot_of(const SaKey& key) const;
  std::span<const std::byte> slot_bytes(size_t slot) const;
  size_t slot_count() const { return slots_.size(); }

 private:
  // A deque never moves its elements when it grows: slot addresses are stable.
  std::deque<shared::SaDescriptor> slots_;
  std::vector<uint32_t> free_slots_;
  std::unordered_map<SaKey, uint32_t, SaKeyHash> index_;
  // Path updates address tunnels: their SAs without a scan of every slot.
  std::unordered_map<uint32_t, std::vector<uint32_t>> tunnel_slots_;
};

}  // namespace segw::cp::dp_link
