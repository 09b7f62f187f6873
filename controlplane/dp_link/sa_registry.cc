// The owned-SA registry: stable wiped slots, SPI index, tunnel index.
#include "controlplane/dp_link/sa_registry.h"

#include <algorithm>

namespace segw::cp::dp_link {

namespace {
// The whole descriptor, not just the key fields: nothing of a removed SA
// (addresses, selectors, name) needs to outlive it either.
void wipe(shared::SaDescriptor& slot) { shared::secure_zero(&slot, sizeof(slot)); }
}  // namespace

SaRegistry::~SaRegistry() {
  for (shared::SaDescriptor& slot : slots_) wipe(slot);
}

bool SaRegistry::add(const shared::SaDescriptor& sa) {
  SaKey key{sa.spi, sa.direction};
  if (index_.contains(key)) return false;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = sa;
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(sa);
  }
  index_.emplace(key, slot);
  tunnel_slots_[sa.tunnel_id].push_back(slot);
  return true;
}

bool SaRegistry::remove(const SaKey& key) {
  auto found = index_.find(key);
  if (found == index_.end()) return false;
  uint32_t slot = found->second;
  index_.erase(found);
  auto tunnel = tunnel_slots_.find(slots_[slot].tunnel_id);
  if (tunnel != tunnel_slots_.end()) {
    std::vector<uint32_t>& tunnel_slots = tunnel->second;
    auto position = std::find(tunnel_slots.begin(), tunnel_slots.end(), slot);
    if (position != tunnel_slots.end()) {
      *position = tunnel_slots.back();
      tunnel_slots.pop_back();
    }
    if (tunnel_slots.empty()) tunnel_slots_.erase(tunnel);
  }
  wipe(slots_[slot]);
  free_slots_.push_back(slot);
  return true;
}

const shared::SaDescriptor* SaRegistry::find(const SaKey& key) const {
  auto found = index_.find(key);
  return found == index_.end() ? nullptr : &slots_[found->second];
}

size_t SaRegistry::set_tunnel_path(uint32_t tunnel_id, const shared::PathDescriptor& path) {
  auto tunnel = tunnel_slots_.find(tunnel_id);
  if (tunnel == tunnel_slots_.end()) return 0;
  for (uint32_t slot : tunnel->second) slots_[slot].path = path;
  return tunnel->second.size();
}

std::optional<shared::PathDescriptor> SaRegistry::tunnel_path(uint32_t tunnel_id) const {
  auto tunnel = tunnel_slots_.find(tunnel_id);
  if (tunnel == tunnel_slots_.end() || tunnel->second.empty()) return std::nullopt;
  return slots_[tunnel->second.front()].path;
}

std::optional<shared::channel::UpdateSelectorsPayload> SaRegistry::set_selectors(
    const SaKey& key, const shared::channel::UpdateSelectorsPayload& selectors) {
  auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  shared::SaDescriptor& sa = slots_[found->second];
  shared::channel::UpdateSelectorsPayload previous;
  previous.spi = key.spi;
  previous.direction = key.direction;
  previous.local_selector_count = sa.local_selector_count;
  previous.remote_selector_count = sa.remote_selector_count;
  previous.local_selectors = sa.local_selectors;
  previous.remote_selectors = sa.remote_selectors;
  sa.local_selector_count = selectors.local_selector_count;
  sa.remote_selector_count = selectors.remote_selector_count;
  sa.local_selectors = selectors.local_selectors;
  sa.remote_selectors = selectors.remote_selectors;
  return previous;
}

void SaRegistry::for_each(const std::function<void(const shared::SaDescriptor&)>& visit) const {
  // Slot order, skipping free slots: the index says which are in use.
  std::vector<bool> used(slots_.size(), false);
  for (const auto& [key, slot] : index_) used[slot] = true;
  for (size_t slot = 0; slot < slots_.size(); ++slot) {
    if (used[slot]) visit(slots_[slot]);
  }
}

void SaRegistry::clear() {
  for (shared::SaDescriptor& slot : slots_) wipe(slot);
  free_slots_.clear();
  for (size_t slot = slots_.size(); slot > 0; --slot) free_slots_.push_back(uint32_t(slot - 1));
  index_.clear();
  tunnel_slots_.clear();
}

std::optional<size_t> SaRegistry::slot_of(const SaKey& key) const {
  auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  return found->second;
}

std::span<const std::byte> SaRegistry::slot_bytes(size_t slot) const {
  if (slot >= slots_.size()) return {};
  return {reinterpret_cast<const std::byte*>(&slots_[slot]), sizeof(shared::SaDescriptor)};
}

}  // namespace segw::cp::dp_link
