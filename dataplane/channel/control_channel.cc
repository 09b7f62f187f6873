// Control-lcore loop of the channel: heartbeat, commands, punt, inject,
// inventory sweeps, RCU reclaim.
#include "dataplane/channel/control_channel.h"

#include <rte_cycles.h>
#include <rte_mbuf_dyn.h>

#include <algorithm>
#include <cstdio>

#include "dataplane/sad/sa_table.h"

namespace segw::dp {

using shared::channel::Command;
using shared::channel::Completion;
using shared::channel::CompletionCode;
using shared::channel::Region;

namespace {
// Tuning constants.
// Slots one poll refreshes: ~4096 * 200 bytes keeps a poll well under
// 100 µs, so commands never wait behind a sweep of a million SAs.
constexpr size_t kRefreshSlotsPerPoll = 4096;
// IKE packets moved per poll each way: IKE is rare next to ESP, and a
// bounded batch keeps commands flowing during an IKE_SA_INIT storm.
constexpr unsigned kIkeBatch = 32;
// How often the control plane's generation and heartbeat are looked at
// (only for the log: nothing installed depends on the control plane).
constexpr uint64_t kLivenessCheckNs = 100'000'000;
constexpr auto kControlPlaneTimeout = std::chrono::seconds(3);
// Failures logged one by one; past that, every kLogEvery-th (a storm of
// bad commands must not flood the log).
constexpr uint64_t kLogFirst = 50;
constexpr uint64_t kLogEvery = 10000;

bool should_log(uint64_t count) { return count <= kLogFirst || count % kLogEvery == 0; }

shared::channel::RegionBacking backing_of(ChannelConfig::Backing backing) {
  switch (backing) {
    case ChannelConfig::Backing::kHugepages: return shared::channel::RegionBacking::kHugepages;
    case ChannelConfig::Backing::kSharedMemory: return shared::channel::RegionBacking::kSharedMemory;
    case ChannelConfig::Backing::kAutomatic: break;
  }
  return shared::channel::RegionBacking::kAutomatic;
}
}  // namespace

shared::Result<std::unique_ptr<ControlChannel>> ControlChannel::create(const ControlChannelSetup& setup) {
  const ChannelConfig& c = setup.config;
  shared::channel::RegionCreateOptions options;
  options.capacities = {c.command_ring, c.completion_ring, c.event_ring, c.punt_ring, c.inject_ring};
  options.backing = backing_of(c.backing);
  // A dead data plane's region is replaced; its generations carry over, so
  // the control plane sees a restart (region.h).
  options.replace = true;
  options.directory = c.directory;
  options.inventory_capacity = c.inventory_capacity;
  auto region = Region::create(c.name, options);
  if (!region) return shared::make_error("[channel] " + region.error());
  // A clean exit leaves nothing in /dev/shm; the control plane sees the
  // name go (superseded()) and waits for the next data plane.
  region->set_unlink_on_close(true);
  std::unique_ptr<ControlChannel> channel(new ControlChannel(setup, std::move(*region)));
  uint64_t now = Region::monotonic_now_ns();
  setup.tables->for_each_sa([&](const EspSa& sa) {
    if (!channel->writer_.has_room()) return;
    channel->writer_.on_install(sa, shared::Lifetime{sa.soft_bytes, sa.hard_bytes, sa.soft_packets, sa.hard_packets},
                                sa.replay.window(), now);
  });
  if (channel->writer_.installed() < setup.tables->inbound_count() + setup.tables->outbound_count())
    return shared::make_error("[channel] inventory_capacity " + std::to_string(c.inventory_capacity) +
                              " cannot list the static SAs of the configuration");
  return channel;
}

ControlChannel::ControlChannel(const ControlChannelSetup& setup, Region region)
    : setup_(setup),
      region_(std::move(region)),
      inventory_(region_.inventory()),
      writer_(inventory_, *setup.tables, setup.config),
      executor_(*setup.tables, writer_),
      batch_(setup.config.command_batch) {
  tsc_hz_ = std::max<uint64_t>(rte_get_tsc_hz(), 1);
  tsc_origin_ = rte_rdtsc();
  monotonic_origin_ns_ = Region::monotonic_now_ns();
  control_generation_seen_ = region_.peer().generation;
}

ControlChannel::~ControlChannel() {
  // The batch may hold install commands (keys) from the last poll.
  for (Command& command : batch_) shared::channel::zeroise_keys(command);
}

uint64_t ControlChannel::tsc_to_monotonic_ns(uint64_t tsc) const {
  if (tsc < tsc_origin_) return monotonic_origin_ns_;
  unsigned __int128 elapsed = static_cast<unsigned __int128>(tsc - tsc_origin_) * 1'000'000'000u / tsc_hz_;
  return monotonic_origin_ns_ + static_cast<uint64_t>(elapsed);
}

bool ControlChannel::poll() {
  uint64_t now = Region::monotonic_now_ns();
  region_.heartbeat_at(now);
  if (now - last_liveness_check_ns_ >= kLivenessCheckNs) {
    last_liveness_check_ns_ = now;
    watch_control_plane();
  }
  bool worked = poll_commands(now);
  worked |= poll_punts();
  worked |= poll_injects();
  auto emit = [this](const shared::channel::Event& event) { return region_.event_ring().try_push(event); };
  if (setup_.new_source_ring != nullptr) {
    void* notices[64];
    unsigned n = rte_ring_sc_dequeue_burst(setup_.new_source_ring, notices, 64, nullptr);
    for (unsigned i = 0; i < n; ++i)
      writer_.on_new_source_notice(static_cast<uint32_t>(reinterpret_cast<uintptr_t>(notices[i])), now, emit);
    worked |= n > 0;
  }
  worked |= writer_.refresh(now, kRefreshSlotsPerPoll, emit) > 0;
  worked |= setup_.tables->reclaim() > 0;
  return worked;
}

void ControlChannel::watch_control_plane() {
  shared::channel::PeerStatus peer = region_.peer();
  if (peer.generation != control_generation_seen_) {
    // A new control plane: it resynchronises from the inventory; nothing
    // here changes (its predecessor's SAs keep forwarding).
    std::printf("segw-dataplane: control plane generation %lu attached (pid %lu); %zu SAs installed, kept\n",
                static_cast<unsigned long>(peer.generation), static_cast<unsigned long>(peer.pid),
                writer_.installed());
    std::fflush(stdout);
    control_generation_seen_ = peer.generation;
  }
  bool alive = region_.peer_alive(kControlPlaneTimeout);
  if (alive != control_alive_) {
    if (!alive) {
      std::printf("segw-dataplane: control plane (generation %lu) gone; forwarding all %zu SAs on\n",
                  static_cast<unsigned long>(peer.generation), writer_.installed());
      std::fflush(stdout);
    }
    control_alive_ = alive;
  }
}

bool ControlChannel::poll_commands(uint64_t now_ns) {
  auto& counters = inventory_.header().counters;
  // Never pop a command whose completion has no room: completions are not
  // dropped, the control plane's own backlog slows it down instead.
  uint64_t room = region_.completion_ring().free_space();
  size_t wanted = static_cast<size_t>(std::min<uint64_t>(room, batch_.size()));
  if (wanted == 0) return false;
  size_t popped = shared::channel::pop_commands(region_.command_ring(), std::span(batch_.data(), wanted));
  if (popped == 0) return false;
  uint64_t generation = region_.peer().generation;
  for (size_t i = 0; i < popped; ++i) {
    Completion completion = executor_.execute(batch_[i], generation, now_ns);  // wipes keys
    if (completion.code != CompletionCode::kOk) {
      uint64_t failed = counters.commands_failed.fetch_add(1, std::memory_order_relaxed) + 1;
      if (should_log(failed)) {
        std::printf("segw-dataplane: channel: %s (failure %lu)\n", executor_.last_error().c_str(),
                    static_cast<unsigned long>(failed));
        std::fflush(stdout);
      }
    }
    if (!region_.completion_ring().try_push(completion))  // cannot happen: room checked
      counters.completions_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  counters.commands.fetch_add(popped, std::memory_order_relaxed);
  return true;
}

bool ControlChannel::poll_punts() {
  auto& counters = inventory_.header().counters;
  rte_mbuf* frames[kIkeBatch];
  unsigned count = rte_ring_dequeue_burst(setup_.punt_ring, reinterpret_cast<void**>(frames), kIkeBatch, nullptr);
  if (count == 0) return false;
  uint64_t now = Region::monotonic_now_ns();
  auto& ring = region_.punt_ring();
  for (unsigned i = 0; i < count; ++i) {
    rte_mbuf* frame = frames[i];
    // Written in place in the ring slot: no 2 KB copy per packet.
    std::span<shared::channel::PuntPacket> slot = ring.claim(1);
    if (slot.empty()) {
      counters.punt_ring_full.fetch_add(1, std::memory_order_relaxed);
      rte_pktmbuf_free(frame);
      continue;
    }
    uint64_t arrival = setup_.punt_time_offset >= 0
                           ? tsc_to_monotonic_ns(*RTE_MBUF_DYNFIELD(frame, setup_.punt_time_offset, uint64_t*))
                           : now;
    PuntResult result = build_punt_packet(frame, arrival, slot[0]);
    rte_pktmbuf_free(frame);
    if (result == PuntResult::kOk) {
      ring.publish(1);
      counters.punted.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters.punt_too_big.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return true;
}

bool ControlChannel::poll_injects() {
  auto& counters = inventory_.header().counters;
  auto& ring = region_.inject_ring();
  bool worked = false;
  for (unsigned i = 0; i < kIkeBatch; ++i) {
    // Leave the packet in the region while worker 0's ring is full.
    if (rte_ring_free_count(setup_.inject_ring) < kMaxInjectFrames) break;
    std::span<shared::channel::InjectPacket> slot = ring.peek(1);
    if (slot.empty()) break;
    worked = true;
    rte_mbuf* frames[kMaxInjectFrames];
    unsigned count = 0;
    InjectResult result = build_inject_frames(slot[0], setup_.inject, ipv4_id_++, frames, &count);
    ring.release(1);
    if (result == InjectResult::kOk &&
        rte_ring_enqueue_bulk(setup_.inject_ring, reinterpret_cast<void**>(frames), count, nullptr) == count) {
      counters.injected.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (count != 0) rte_pktmbuf_free_bulk(frames, count);
    uint64_t errors = counters.inject_errors.fetch_add(1, std::memory_order_relaxed) + 1;
    if (should_log(errors)) {
      std::printf("segw-dataplane: channel: inject refused: %s (error %lu)\n", to_string(result),
                  static_cast<unsigned long>(errors));
      std::fflush(stdout);
    }
  }
  return worked;
}

void ControlChannel::drain() {
  void* frames[64];
  unsigned count;
  while ((count = rte_ring_dequeue_burst(setup_.punt_ring, frames, 64, nullptr)) > 0)
    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(frames), count);
}

}  // namespace segw::dp
