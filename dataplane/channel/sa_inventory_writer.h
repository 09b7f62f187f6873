// The data plane's side of the SA inventory (shared/channel/sa_inventory.h):
// one slot per installed SA kept in step with SaTables on every install,
// remove and path update, counters refreshed in bounded sweeps, and the
// per-SA events those sweeps detect (new source address, soft/hard
// lifetime, sequence near exhaustion, idle), rate-limited per SA and kind.
//
// Thread: the control lcore only (the one writer of the inventory and the
// one caller of SaTables' control functions). Never touches key material.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "dataplane/config/dataplane_config.h"
#include "dataplane/esp/runtime_sa.h"
#include "shared/channel/messages.h"
#include "shared/channel/sa_inventory.h"

namespace segw::dp {

class SaTables;

class SaInventoryWriter {
 public:
  // Pushes one event; false when the event ring is full.
  using EmitEvent = std::function<bool(const shared::channel::Event&)>;

  // `inventory` must be present(); `tables` outlives this object.
  SaInventoryWriter(shared::channel::SaInventory inventory, SaTables& tables, const ChannelConfig& config);

  // True when one more SA fits in the inventory.
  bool has_room() const { return !free_slots_.empty() || next_slot_ < inventory_.capacity(); }

  // Records an SA SaTables just installed (found by spi/direction). Its
  // tunnel's path generation stays what it was (0 for a new tunnel).
  // Precondition: has_room().
  void on_install(const EspSa& sa, const shared::Lifetime& lifetime, uint32_t replay_window, uint64_t now_ns);
  // Clears the SA's slot (before SaTables frees it: called right after remove).
  void on_remove(uint32_t spi, shared::SaDirection direction);
  // Rewrites every slot of the tunnel with its new path and generation.
  void on_path_update(uint32_t tunnel_id, uint64_t path_generation, uint64_t now_ns);
  // Rewrites the SA's slot after SaTables replaced its selectors.
  void on_selectors_update(uint32_t spi, shared::SaDirection direction);
  // The tunnel's path generation (the control plane's numbering); 0 when
  // unknown or never updated.
  uint64_t path_generation(uint32_t tunnel_id) const;

  // Work for one control-lcore loop: when a sweep is due (every
  // counters_refresh_ms), refreshes up to `max_slots` slots' counters and
  // raises their events. Returns the slots visited (0: nothing was due).
  size_t refresh(uint64_t now_ns, size_t max_slots, const EmitEvent& emit);
  // A worker's notice (EspContext::new_source_ring): inbound SA `spi` saw a
  // verified packet from a new source. Refreshes that slot now (its
  // new-source event, rate-limited like every event) and lets the SA
  // queue its next notice. Unknown SPIs (removed since) are ignored.
  void on_new_source_notice(uint32_t spi, uint64_t now_ns, const EmitEvent& emit);

  size_t installed() const { return by_key_.size(); }
  shared::channel::SaInventoryCounters& counters() { return inventory_.header().counters; }

 private:
  static constexpr int kEventKinds = 7;  // EventKind values 1..6, indexed by value
  struct SlotState {
    const EspSa* sa = nullptr;  // nullptr: free
    shared::channel::SaInventoryRecord record;
    uint64_t reported_new_source_packets = 0;
    uint64_t last_event_ns[kEventKinds] = {};
    uint64_t suppressed[kEventKinds] = {};
    bool soft_reported = false;
    bool hard_reported = false;
    bool sequence_reported = false;
    bool idle_reported = false;
  };
  struct TunnelState {
    uint64_t path_generation = 0;
    std::vector<uint32_t> slots;
  };

  static uint64_t key(uint32_t spi, shared::SaDirection direction) {
    return uint64_t(spi) << 1 | (direction == shared::SaDirection::kOutbound ? 1 : 0);
  }
  void publish(uint32_t slot);
  void refresh_slot(uint32_t slot, uint64_t now_ns, const EmitEvent& emit);
  // Rate limit: true (and `event.suppressed` filled) when `kind` may be
  // raised for this SA now; else counts one more held-back event.
  bool may_raise(SlotState& state, shared::channel::EventKind kind, uint64_t now_ns,
                 shared::channel::Event& event);
  shared::channel::Event make_event(const SlotState& state, shared::channel::EventKind kind,
                                    uint64_t now_ns) const;
  bool raise(SlotState& state, shared::channel::Event& event, const EmitEvent& emit, uint64_t now_ns);

  shared::channel::SaInventory inventory_;
  SaTables& tables_;
  uint64_t event_interval_ns_;
  uint64_t idle_timeout_ns_;
  uint64_t sequence_margin_;
  uint64_t refresh_interval_ns_;
  static constexpr size_t kKeepSlotsWhenEmpty = 4096;
  std::vector<SlotState> slots_;  // grows with next_slot_
  std::vector<uint32_t> free_slots_;
  uint32_t next_slot_ = 0;
  std::unordered_map<uint64_t, uint32_t> by_key_;
  std::unordered_map<uint32_t, TunnelState> tunnels_;
  uint64_t next_sweep_ns_ = 0;
  uint64_t sweep_started_ns_ = 0;
  uint32_t sweep_cursor_ = 0;
  bool sweeping_ = false;
};

}  // namespace segw::dp
