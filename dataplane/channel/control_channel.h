// The data plane's end of the shared-memory channel (DESIGN.md), run by the
// control lcore (the main lcore): creates the region, beats the heartbeat,
// drains commands in bounded batches into SaTables (CommandExecutor) and
// answers each with a Completion, keeps the SA inventory and its counters
// (SaInventoryWriter), raises events, moves punted IKE from the workers'
// rte_ring to the region's punt ring and the control plane's InjectPacket
// to worker 0 as ready frames, and reclaims RCU-deferred objects.
//
// It never stalls a worker: workers only see SaTables' atomic pointers and
// two rte_rings. A control plane restart (a new control generation) changes
// nothing installed: the data plane keeps forwarding every SA.
//
// Thread: everything on the control lcore, except counters() (any thread).
#pragma once

#include <rte_ether.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/channel/command_executor.h"
#include "dataplane/channel/ike_bridge.h"
#include "dataplane/channel/sa_inventory_writer.h"
#include "dataplane/config/dataplane_config.h"
#include "shared/channel/region.h"
#include "shared/result.h"

namespace segw::dp {

class SaTables;

struct ControlChannelSetup {
  ChannelConfig config;
  SaTables* tables = nullptr;
  InjectFrameSetup inject;        // pool, access port and its MACs, MTU
  rte_ring* punt_ring = nullptr;  // workers -> control lcore: IKE frames (mbufs)
  rte_ring* inject_ring = nullptr;  // control lcore -> worker 0: frames to send
  int punt_time_offset = -1;      // mbuf dynfield holding the worker's arrival TSC
  rte_ring* new_source_ring = nullptr;  // workers -> control lcore: inbound SPIs (EspContext)
};

class ControlChannel {
 public:
  // Creates (replacing a dead data plane's) region and lists every SA
  // already in `tables` (static SAs from the configuration) in its
  // inventory. Errors: region creation (name, backing, room).
  static shared::Result<std::unique_ptr<ControlChannel>> create(const ControlChannelSetup& setup);
  ~ControlChannel();

  // One control-lcore iteration. Returns true when it did any work (the
  // caller sleeps [channel] idle_sleep_us otherwise).
  bool poll();

  // Shutdown: frees the punted mbufs still queued (workers stopped first).
  void drain();

  const shared::channel::Region& region() const { return region_; }
  // Where the control lcore publishes the data plane's statistics.
  shared::channel::DataPlaneStatistics& statistics() { return region_.statistics(); }
  const shared::channel::SaInventoryCounters& counters() const { return inventory_.header().counters; }

 private:
  ControlChannel(const ControlChannelSetup& setup, shared::channel::Region region);
  bool poll_commands(uint64_t now_ns);
  bool poll_punts();
  bool poll_injects();
  void watch_control_plane();
  uint64_t tsc_to_monotonic_ns(uint64_t tsc) const;

  ControlChannelSetup setup_;
  shared::channel::Region region_;
  shared::channel::SaInventory inventory_;
  SaInventoryWriter writer_;
  CommandExecutor executor_;
  std::vector<shared::channel::Command> batch_;
  uint64_t control_generation_seen_ = 0;
  bool control_alive_ = false;
  uint64_t last_liveness_check_ns_ = 0;
  uint16_t ipv4_id_ = 0;
  // TSC <-> CLOCK_MONOTONIC at start, for punt arrival stamps.
  uint64_t tsc_origin_ = 0;
  uint64_t monotonic_origin_ns_ = 0;
  uint64_t tsc_hz_ = 1;
};

}  // namespace segw::dp
