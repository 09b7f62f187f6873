// SA inventory slots, counter sweeps and per-SA events.
#include "dataplane/channel/sa_inventory_writer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "dataplane/sad/sa_table.h"

namespace segw::dp {

using shared::SaDirection;
using shared::channel::Event;
using shared::channel::EventKind;
using shared::channel::SaInventoryRecord;

SaInventoryWriter::SaInventoryWriter(shared::channel::SaInventory inventory, SaTables& tables,
                                     const ChannelConfig& config)
    : inventory_(inventory),
      tables_(tables),
      event_interval_ns_(uint64_t(config.event_interval_ms) * 1'000'000),
      idle_timeout_ns_(uint64_t(config.idle_timeout_ms) * 1'000'000),
      sequence_margin_(config.sequence_margin),
      refresh_interval_ns_(uint64_t(config.counters_refresh_ms) * 1'000'000) {}

void SaInventoryWriter::publish(uint32_t slot) {
  write_inventory_entry(inventory_.entry(slot), slots_[slot].record);
}

void SaInventoryWriter::on_install(const EspSa& sa, const shared::Lifetime& lifetime, uint32_t replay_window,
                                   uint64_t now_ns) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = next_slot_++;
    slots_.emplace_back();
  }
  SlotState& state = slots_[slot];
  state = SlotState{};
  state.sa = &sa;
  TunnelState& tunnel = tunnels_[sa.tunnel->id];
  tunnel.slots.push_back(slot);

  SaInventoryRecord& r = state.record;
  r.spi = sa.spi;
  r.direction = sa.direction;
  r.algorithm = sa.algorithm;
  r.flags = sa.esn ? shared::channel::kSaFlagEsn : 0;
  const SelectorSet* selectors = sa.selectors.load(std::memory_order_relaxed);
  r.local_selector_count = selectors->local_count;
  r.remote_selector_count = selectors->remote_count;
  r.tunnel_id = sa.tunnel->id;
  r.replay_window = sa.direction == SaDirection::kInbound ? replay_window : 0;
  r.path = sa.tunnel->path.load(std::memory_order_relaxed)->descriptor;
  r.path_generation = tunnel.path_generation;
  r.installed_ns = now_ns;
  r.path_updated_ns = now_ns;
  r.counters_refreshed_ns = now_ns;
  r.last_packet_ns = now_ns;
  r.lifetime = lifetime;
  std::memcpy(r.name.data(), sa.name, std::min(sizeof(sa.name), r.name.size() - 1));
  r.name.back() = '\0';
  // Counters start where the SA's are (0 for a fresh SA).
  r.packets = sa.counters.packets.load(std::memory_order_relaxed);
  r.bytes = sa.counters.bytes.load(std::memory_order_relaxed);
  state.reported_new_source_packets = sa.counters.new_source_packets.load(std::memory_order_relaxed);

  by_key_[key(sa.spi, sa.direction)] = slot;
  publish(slot);
  auto& header = inventory_.header();
  header.installed.store(by_key_.size(), std::memory_order_relaxed);
  header.changes.fetch_add(1, std::memory_order_release);
}

void SaInventoryWriter::on_remove(uint32_t spi, SaDirection direction) {
  auto it = by_key_.find(key(spi, direction));
  if (it == by_key_.end()) return;
  uint32_t slot = it->second;
  by_key_.erase(it);
  SlotState& state = slots_[slot];
  auto tunnel = tunnels_.find(state.record.tunnel_id);
  if (tunnel != tunnels_.end()) {
    std::erase(tunnel->second.slots, slot);
    // The tunnel is gone from SaTables with its last SA: a later tunnel of
    // that id starts at generation 0 again, like a fresh install.
    if (tunnel->second.slots.empty()) tunnels_.erase(tunnel);
  }
  state = SlotState{};
  clear_inventory_entry(inventory_.entry(slot));
  free_slots_.push_back(slot);
  auto& header = inventory_.header();
  header.installed.store(by_key_.size(), std::memory_order_relaxed);
  header.changes.fetch_add(1, std::memory_order_release);
  if (by_key_.empty() && slots_.size() > kKeepSlotsWhenEmpty) {
    // The last SA went (a mass removal): give the bookkeeping of up to a
    // few million slots back rather than keep it for SAs that may never
    // come. Every region entry is clear, so numbering starts over.
    std::vector<SlotState>().swap(slots_);
    std::vector<uint32_t>().swap(free_slots_);
    std::unordered_map<uint64_t, uint32_t>().swap(by_key_);
    std::unordered_map<uint32_t, TunnelState>().swap(tunnels_);
    next_slot_ = 0;
    sweep_cursor_ = 0;
    sweeping_ = false;
  }
}

void SaInventoryWriter::on_path_update(uint32_t tunnel_id, uint64_t path_generation, uint64_t now_ns) {
  auto it = tunnels_.find(tunnel_id);
  if (it == tunnels_.end()) return;
  it->second.path_generation = path_generation;
  const Tunnel* tunnel = tables_.tunnel(tunnel_id);
  for (uint32_t slot : it->second.slots) {
    SlotState& state = slots_[slot];
    if (tunnel != nullptr) state.record.path = tunnel->path.load(std::memory_order_relaxed)->descriptor;
    state.record.path_generation = path_generation;
    state.record.path_updated_ns = now_ns;
    // A moved SA's earlier new-source reports are about the old path.
    state.reported_new_source_packets = state.sa->counters.new_source_packets.load(std::memory_order_relaxed);
    publish(slot);
  }
  inventory_.header().changes.fetch_add(1, std::memory_order_release);
}

void SaInventoryWriter::on_new_source_notice(uint32_t spi, uint64_t now_ns, const EmitEvent& emit) {
  auto it = by_key_.find(key(spi, SaDirection::kInbound));
  if (it == by_key_.end()) return;
  SlotState& state = slots_[it->second];
  // Cleared first: a packet from yet another source after this point
  // queues a fresh notice rather than being missed.
  state.sa->counters.new_source_queued.store(0, std::memory_order_release);
  refresh_slot(it->second, now_ns, emit);
  publish(it->second);
}

void SaInventoryWriter::on_selectors_update(uint32_t spi, shared::SaDirection direction) {
  auto it = by_key_.find(key(spi, direction));
  if (it == by_key_.end()) return;
  SlotState& state = slots_[it->second];
  const SelectorSet* selectors = state.sa->selectors.load(std::memory_order_relaxed);
  state.record.local_selector_count = selectors->local_count;
  state.record.remote_selector_count = selectors->remote_count;
  publish(it->second);
  inventory_.header().changes.fetch_add(1, std::memory_order_release);
}

uint64_t SaInventoryWriter::path_generation(uint32_t tunnel_id) const {
  auto it = tunnels_.find(tunnel_id);
  return it == tunnels_.end() ? 0 : it->second.path_generation;
}

size_t SaInventoryWriter::refresh(uint64_t now_ns, size_t max_slots, const EmitEvent& emit) {
  if (!sweeping_) {
    if (now_ns < next_sweep_ns_) return 0;
    sweeping_ = true;
    sweep_cursor_ = 0;
    sweep_started_ns_ = now_ns;
  }
  size_t visited = 0;
  while (sweep_cursor_ < next_slot_ && visited < max_slots) {
    if (slots_[sweep_cursor_].sa != nullptr) refresh_slot(sweep_cursor_, now_ns, emit);
    ++sweep_cursor_;
    ++visited;
  }
  if (sweep_cursor_ >= next_slot_) {
    sweeping_ = false;
    next_sweep_ns_ = sweep_started_ns_ + refresh_interval_ns_;
    inventory_.header().counters_refreshed_ns.store(now_ns, std::memory_order_release);
  }
  return std::max<size_t>(visited, 1);
}

bool SaInventoryWriter::may_raise(SlotState& state, EventKind kind, uint64_t now_ns, Event& event) {
  int k = static_cast<int>(kind);
  uint64_t last = state.last_event_ns[k];
  if (last != 0 && now_ns - last < event_interval_ns_) {
    ++state.suppressed[k];
    inventory_.header().counters.events_suppressed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  event.suppressed = state.suppressed[k];
  return true;
}

Event SaInventoryWriter::make_event(const SlotState& state, EventKind kind, uint64_t now_ns) const {
  Event event;
  event.kind = kind;
  event.direction = state.record.direction;
  event.spi = state.record.spi;
  event.tunnel_id = state.record.tunnel_id;
  event.timestamp_ns = now_ns;
  event.bytes = state.record.bytes;
  event.packets = state.record.packets;
  return event;
}

bool SaInventoryWriter::raise(SlotState& state, Event& event, const EmitEvent& emit, uint64_t now_ns) {
  auto& counters = inventory_.header().counters;
  if (!emit(event)) {
    counters.events_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  int k = static_cast<int>(event.kind);
  state.last_event_ns[k] = now_ns;
  state.suppressed[k] = 0;
  counters.events.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void SaInventoryWriter::refresh_slot(uint32_t slot, uint64_t now_ns, const EmitEvent& emit) {
  SlotState& state = slots_[slot];
  const EspSa& sa = *state.sa;
  SaInventoryRecord& r = state.record;
  const SaCounters& c = sa.counters;
  uint64_t packets = c.packets.load(std::memory_order_relaxed);
  if (packets != r.packets) {
    r.last_packet_ns = now_ns;
    if (state.idle_reported) {  // traffic again: the next idle period is news
      state.idle_reported = false;
      r.flags &= static_cast<uint8_t>(~shared::channel::kSaFlagIdle);
    }
  }
  r.packets = packets;
  r.bytes = c.bytes.load(std::memory_order_relaxed);
  uint64_t drops = 0;
  for (const auto& d : c.drops) drops += d.load(std::memory_order_relaxed);
  r.drops = drops;
  r.new_source_packets = c.new_source_packets.load(std::memory_order_relaxed);
  r.sequence_number = sa.direction == SaDirection::kOutbound ? sa.sequence.load(std::memory_order_relaxed) : 0;
  r.counters_refreshed_ns = now_ns;

  // New source (inbound): verified packets from an address/port other than
  // the path; the data plane reports, the control plane decides (DESIGN.md).
  if (r.new_source_packets != state.reported_new_source_packets) {
    Event event = make_event(state, EventKind::kNewSourceAddress, now_ns);
    if (may_raise(state, EventKind::kNewSourceAddress, now_ns, event)) {
      uint32_t endpoint = c.new_source_endpoint.load(std::memory_order_acquire);
      uint8_t address[16];
      uint64_t words[2] = {c.new_source_address[0].load(std::memory_order_relaxed),
                           c.new_source_address[1].load(std::memory_order_relaxed)};
      std::memcpy(address, words, 16);
      bool ipv6 = (endpoint >> 16) == 6;
      event.new_remote.address = ipv6 ? shared::IpAddress::from_ipv6_bytes(address)
                                      : shared::IpAddress::from_ipv4_bytes(address);
      event.new_remote.port = static_cast<uint16_t>(endpoint & 0xffff);
      event.current_remote.address = r.path.remote;
      event.current_remote.port = r.path.udp_encapsulation ? r.path.remote_port : 0;
      if (raise(state, event, emit, now_ns)) state.reported_new_source_packets = r.new_source_packets;
    } else {
      // Held back: what arrived so far is covered by `suppressed`.
      state.reported_new_source_packets = r.new_source_packets;
    }
  }

  // One-shot events: retried on the next sweep when held back or dropped.
  if (c.soft_lifetime_reached.load(std::memory_order_relaxed)) {
    r.flags |= shared::channel::kSaFlagSoftLifetimeReached;
    if (!state.soft_reported) {
      Event event = make_event(state, EventKind::kSoftLifetime, now_ns);
      if (may_raise(state, EventKind::kSoftLifetime, now_ns, event))
        state.soft_reported = raise(state, event, emit, now_ns);
    }
  }
  if (c.hard_lifetime_reached.load(std::memory_order_relaxed)) {
    r.flags |= shared::channel::kSaFlagHardLifetimeReached;
    if (!state.hard_reported) {
      Event event = make_event(state, EventKind::kHardLifetime, now_ns);
      if (may_raise(state, EventKind::kHardLifetime, now_ns, event))
        state.hard_reported = raise(state, event, emit, now_ns);
    }
  }
  if (sa.direction == SaDirection::kOutbound) {
    // RFC 4303 2.2/3.3.3: the counter must not cycle; the peer needs time to
    // rekey, hence the margin.
    uint64_t limit = sa.esn ? std::numeric_limits<uint64_t>::max() : std::numeric_limits<uint32_t>::max();
    if (r.sequence_number >= limit || limit - r.sequence_number <= sequence_margin_) {
      r.flags |= shared::channel::kSaFlagSequenceNearExhaustion;
      if (!state.sequence_reported) {
        Event event = make_event(state, EventKind::kSequenceNearExhaustion, now_ns);
        event.sequence_number = r.sequence_number;
        if (may_raise(state, EventKind::kSequenceNearExhaustion, now_ns, event))
          state.sequence_reported = raise(state, event, emit, now_ns);
      }
    }
  }
  if (idle_timeout_ns_ != 0 && sa.direction == SaDirection::kInbound && !state.idle_reported &&
      now_ns - r.last_packet_ns >= idle_timeout_ns_) {
    r.flags |= shared::channel::kSaFlagIdle;
    Event event = make_event(state, EventKind::kSaIdle, now_ns);
    event.idle_ns = now_ns - r.last_packet_ns;
    if (may_raise(state, EventKind::kSaIdle, now_ns, event)) state.idle_reported = raise(state, event, emit, now_ns);
  }
  publish(slot);
}

}  // namespace segw::dp
