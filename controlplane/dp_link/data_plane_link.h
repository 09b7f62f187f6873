// DataPlaneLink: the control plane's end of the shared-memory channel to
// segw-dataplane (DESIGN.md, Shared-memory channel; issue 3, Control plane
// side). It attaches to the data plane's region as its one control side and
//   - sends SA commands (install, remove, update_path, barrier), each with a
//     request id, and completes a future or callback per command when the
//     matching completion comes back, or when the command times out; at most
//     `max_in_flight` commands are outstanding, and a submit that finds no
//     room (in flight, or in the command ring) waits at most
//     `submit_timeout`, then fails with a message saying which;
//   - drains events and hands them to subscribers (per EventKind, or all);
//   - is an IkeTransport: punted IKE packets go to the receiver, send()
//     queues injected ones;
//   - heartbeats the control side of the region;
//   - owns the SAs it installed (SaRegistry, keys included, wiped on removal
//     and at destruction) and re-pushes all of them when the data plane
//     restarts (the region name points at a new file, or the data plane's
//     generation changes), reporting how long that took (ResyncReport);
//   - can adopt SAs a predecessor installed (after a control plane restart:
//     the SA inventory in the region says which exist).
//
// Threads: every public function may be called from any thread, except that
// poll() is for the one thread that services the link when it was attached
// without a service thread. Callbacks (completions, events, IKE receiver,
// resync observer) run on the servicing thread, never under the link's
// lock: they may call back into the link, but a callback that blocks holds
// up everything behind it. Nothing here throws.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "controlplane/dp_link/command_result.h"
#include "controlplane/dp_link/ike_transport.h"
#include "controlplane/dp_link/sa_installer.h"
#include "controlplane/dp_link/sa_inventory_reader.h"
#include "controlplane/dp_link/sa_registry.h"
#include "shared/channel/region.h"
#include "shared/result.h"

namespace segw::cp::dp_link {

// Tuning constants, with the reasons for their defaults.
struct DataPlaneLinkOptions {
  std::string region_name = "segw";
  std::string directory;  // empty: /dev/hugepages, then /dev/shm
  // Outstanding commands; the link lowers it to the completion ring's
  // capacity (4096 by default), since the data plane drops completions that
  // find that ring full.
  size_t max_in_flight = 4096;
  // How long a submit waits for room (in flight or in the command ring)
  // before it fails instead of hanging its caller.
  std::chrono::milliseconds submit_timeout{2000};
  // How long a command may wait for its completion. The control lcore
  // answers in microseconds; seconds mean it is stuck or gone.
  std::chrono::milliseconds command_timeout{5000};
  // Heartbeat period, and how often the data plane's liveness and the region
  // name are checked (one stat() each time).
  std::chrono::milliseconds check_interval{10};
  // A data plane heartbeat older than this counts as "data plane down".
  std::chrono::milliseconds data_plane_timeout{1000};
  // The service thread sleeps this long when a pass found nothing to do:
  // short enough to keep completion latency low, long enough to leave a core.
  std::chrono::microseconds idle_sleep{100};
  // Start a service thread (else the owner calls poll()).
  bool service_thread = true;
  // Follow data plane restarts: reattach and re-push every owned SA.
  bool follow_restarts = true;
};

#define SEGW_LINK_STATES(X)                                                                   \
  X(kAttached, "attached", "data plane alive; commands flow")                                \
  X(kDataPlaneDown, "data_plane_down",                                                        \
    "no data plane heartbeat, or its region is gone and no new one is there yet")           \
  X(kResyncing, "resyncing", "a restarted data plane is being given every owned SA again") \
  X(kClosed, "closed", "the link was closed")

enum class LinkState : uint8_t {
#define SEGW_LINK_STATE_ENUM(id, name, description) id,
  SEGW_LINK_STATES(SEGW_LINK_STATE_ENUM)
#undef SEGW_LINK_STATE_ENUM
};
const char* to_string(LinkState state);

// One re-push of the owned SAs to a restarted data plane.
struct ResyncReport {
  uint64_t data_plane_generation = 0;  // of the data plane that received them
  size_t sa_count = 0;                 // owned SAs at the start
  size_t installed = 0;                // completed kOk
  size_t already_present = 0;          // kDuplicateSpi (e.g. from its static config)
  size_t failed = 0;                   // any other outcome
  std::chrono::nanoseconds duration{0};  // restart noticed -> last completion
  std::string first_failure;           // "spi 0x... inbound: table_full (...)"
};

struct LinkStatistics {
  uint64_t commands_sent = 0;
  uint64_t completions = 0;
  uint64_t stale_completions = 0;      // another control generation's (a predecessor's)
  uint64_t unmatched_completions = 0;  // no such request outstanding (timed out before)
  uint64_t timeouts = 0;
  uint64_t events = 0;
  uint64_t punts = 0;
  uint64_t punts_dropped = 0;          // no receiver set
  uint64_t injects = 0;
  uint64_t inject_ring_full = 0;
  uint64_t resyncs = 0;
};

using EventCallback = std::function<void(const shared::channel::Event&)>;

class DataPlaneLink final : public SaInstaller, public IkeTransport {
 public:
  // Attaches to region `options.region_name` as its control plane. Errors:
  // "no segw region 'segw' in /dev/hugepages or /dev/shm: is segw-dataplane
  // running with a [channel] section?", "another control plane (pid N) is
  // attached ...", layout version or build mismatches (region.h). The data
  // plane need not be alive yet (state() says kDataPlaneDown until it is).
  static shared::Result<std::unique_ptr<DataPlaneLink>> attach(const DataPlaneLinkOptions& options);

  // Stops the service thread, completes every outstanding command with
  // kLinkClosed, wipes the registry, detaches (clearing the heartbeat).
  ~DataPlaneLink() override;
  DataPlaneLink(const DataPlaneLink&) = delete;
  DataPlaneLink& operator=(const DataPlaneLink&) = delete;

  // ------------------------------------------------ SA commands (SaInstaller)

  // Future forms: see SaInstaller. install() errors also: SPI 0, or an SA
  // with this SPI and direction already owned by this link.
  shared::Result<std::future<CommandResult>> install(const shared::SaDescriptor& sa) override;
  shared::Result<std::future<CommandResult>> remove(uint32_t spi,
                                                    shared::SaDirection direction) override;
  shared::Result<std::future<CommandResult>> update_path(
      uint32_t tunnel_id, const shared::PathDescriptor& path) override;
  // An owned SA's registry copy follows (re-pushed with the new selectors);
  // restored when the data plane refuses the change.
  shared::Result<std::future<CommandResult>> update_selectors(
      uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
      std::span<const shared::TrafficSelector> remote) override;
  // Completes when every command sent before it has been handled.
  shared::Result<std::future<CommandResult>> barrier();

  // Callback forms: same errors; `done` runs exactly once when the Status
  // is ok, never when it is not.
  shared::Status install(const shared::SaDescriptor& sa, CompletionCallback done);
  shared::Status remove(uint32_t spi, shared::SaDirection direction, CompletionCallback done);
  shared::Status update_path(uint32_t tunnel_id, const shared::PathDescriptor& path,
                             CompletionCallback done);
  shared::Status update_selectors(uint32_t spi, shared::SaDirection direction,
                                  std::span<const shared::TrafficSelector> local,
                                  std::span<const shared::TrafficSelector> remote, CompletionCallback done);
  shared::Status barrier(CompletionCallback done);

  // Takes `sa` into the registry without sending it: the data plane already
  // has it (installed by a predecessor of this control plane). It is then
  // owned like any other: re-pushed after a data plane restart. Error when
  // already owned.
  shared::Status adopt(const shared::SaDescriptor& sa);

  // Resuming after a control plane restart, in one call: reads the
  // inventory and, for every installed SA, asks `restore` for its full
  // descriptor (keys from the daemon's own state); a returned descriptor is
  // adopted with the data plane's current path (the inventory's, which may
  // have moved since the daemon saved it). SAs `restore` does not know are
  // listed as orphans (the caller decides: remove them, or leave them).
  struct ResumeReport {
    size_t adopted = 0;
    std::vector<SaKey> orphans;
  };
  shared::Result<ResumeReport> resume(
      const std::function<std::optional<shared::SaDescriptor>(
          const shared::channel::SaInventoryRecord&)>& restore);

  // What the data plane has installed now (its SA inventory in the region,
  // no keys): after a control plane restart, the SAs to resume; adopt() the
  // ones this control plane still wants. Errors: see read_sa_inventory.
  shared::Result<std::vector<InventoryEntry>> read_inventory() const;
  // The data plane's statistics block, the depths of the region's five
  // rings (as queues "<ring>_ring") and the channel's counters. Any thread;
  // reads shared memory only.
  shared::channel::DataPlaneStatisticsSnapshot dataplane_statistics() const;

  // -------------------------------------------------------------- events

  // Returns an id for unsubscribe(). Any number of subscribers per kind.
  uint64_t subscribe(shared::channel::EventKind kind, EventCallback callback);
  uint64_t subscribe_all(EventCallback callback);
  void unsubscribe(uint64_t subscription);

  // ------------------------------------------------ IKE transport (punt/inject)

  shared::Status send(const IkeDatagram& datagram) override;
  void set_receiver(IkeReceiver receiver) override;

  // ------------------------------------------------------------- service

  // One pass over the rings: completions, events, punts; then, every
  // check_interval, heartbeat, restart detection and command deadlines; and
  // the next part of a resync. Returns how many items it handled (0: idle).
  // For links attached without a service thread; one thread at a time
  // (a concurrent call returns 0 at once).
  size_t poll();

  // Waits until state() is `state` or `timeout` passes; true if it is.
  bool wait_for_state(LinkState state, std::chrono::milliseconds timeout) const;
  // Called on the servicing thread at the end of every resync.
  void set_resync_observer(std::function<void(const ResyncReport&)> observer);
  std::optional<ResyncReport> last_resync() const;

  LinkState state() const;
  // Why the link is not attached, when it is not: the last reattach error
  // ("layout version 3, expected 2", ...), or empty.
  std::string last_error() const;
  LinkStatistics statistics() const;
  // The control-plane generation commands carry now (changes on reattach).
  uint64_t control_generation() const;
  uint64_t data_plane_generation() const;
  std::string region_path() const;
  size_t in_flight() const;
  size_t owned_sa_count() const;
  const DataPlaneLinkOptions& options() const { return options_; }

  // For tests that check wiping: the registry slot an owned SA occupies, and
  // a copy of a slot's bytes now.
  std::optional<size_t> owned_sa_slot(uint32_t spi, shared::SaDirection direction) const;
  std::vector<std::byte> registry_slot_bytes(size_t slot) const;

 private:
  struct Pending {
    shared::channel::CommandKind kind = shared::channel::CommandKind::kBarrier;
    SaKey sa;                   // install/remove
    uint32_t tunnel_id = 0;     // update_path
    // install: this command put the SA into the registry (taken out again
    // if the data plane refuses it).
    bool added_to_registry = false;
    // update_path: the registry path before, restored on refusal.
    std::optional<shared::PathDescriptor> previous_path;
    shared::PathDescriptor new_path;
    // update_selectors: the registry selectors before (sa says whose), and
    // ours, so a refusal restores only what no later update replaced.
    std::optional<shared::channel::UpdateSelectorsPayload> previous_selectors;
    shared::channel::UpdateSelectorsPayload new_selectors;
    bool resync = false;        // an install of a resync, counted in its report
    std::chrono::steady_clock::time_point deadline;
    CompletionCallback done;
  };
  struct Subscriber {
    uint64_t id = 0;
    std::optional<shared::channel::EventKind> kind;  // none: all kinds
    EventCallback callback;
  };
  using SubscriberList = std::vector<Subscriber>;
  // A completed callback waiting to run outside the lock.
  using Delivery = std::pair<CompletionCallback, CommandResult>;

  DataPlaneLink(const DataPlaneLinkOptions& options, shared::channel::Region region);

  // Sends `command` (request id and generation filled in here) once there
  // is room; `prepare` runs under the lock right before the push and may
  // refuse (its error is returned, nothing sent), fill `pending` and finish
  // the command (fields that must be taken in ring order).
  shared::Status submit(shared::channel::Command command,
                        const std::function<shared::Status(Pending&, shared::channel::Command&)>& prepare,
                        CompletionCallback done);
  shared::Result<std::future<CommandResult>> with_future(
      const std::function<shared::Status(CompletionCallback)>& send);

  size_t drain_completions();
  size_t drain_events();
  size_t drain_punts();
  void periodic_checks();
  // Under the lock: a new data plane (region or generation) was found.
  void begin_resync_locked(std::vector<Delivery>& deliveries);
  size_t continue_resync();
  void finish_resync_locked(std::vector<Delivery>& deliveries);
  // Under the lock: the registry effects of a command's final result.
  void settle_locked(Pending& pending, const CommandResult& result);
  void expire_deadlines();
  void service_loop();
  static void deliver(std::vector<Delivery>& deliveries);
  uint64_t next_path_generation_locked();
  size_t in_flight_limit() const;

  const DataPlaneLinkOptions options_;

  mutable std::mutex mutex_;  // everything below, unless marked otherwise
  mutable std::condition_variable changed_;  // room in flight, state changes
  std::unique_ptr<shared::channel::Region> region_;
  LinkState state_ = LinkState::kAttached;
  std::string last_error_;
  bool closing_ = false;
  uint64_t next_request_id_ = 1;
  size_t max_in_flight_ = 1;  // options_.max_in_flight, at most the completion ring's capacity
  // Strictly increasing across this link's lifetime and its successors':
  // (control generation << 40) + count (messages.h, UpdatePathPayload).
  uint64_t path_generation_base_ = 0;
  uint64_t path_updates_sent_ = 0;
  uint64_t attached_data_plane_generation_ = 0;
  std::unordered_map<uint64_t, Pending> pending_;
  SaRegistry registry_;
  LinkStatistics statistics_;
  IkeReceiver receiver_;
  std::shared_ptr<const SubscriberList> subscribers_ = std::make_shared<SubscriberList>();
  uint64_t next_subscription_ = 1;
  std::function<void(const ResyncReport&)> resync_observer_;
  std::optional<ResyncReport> last_resync_;
  // Resync in progress: the keys still to push (wiped descriptors are read
  // from the registry when pushed, so keys are not copied here), the
  // callbacks of installs that were outstanding when the restart came, and
  // the report being built.
  std::vector<SaKey> resync_queue_;
  size_t resync_position_ = 0;
  size_t resync_outstanding_ = 0;
  std::unordered_map<SaKey, CompletionCallback, SaKeyHash> rebound_installs_;
  ResyncReport resync_report_;
  std::chrono::steady_clock::time_point resync_started_;
  std::chrono::steady_clock::time_point next_check_;

  std::mutex poll_mutex_;  // one poller at a time; taken before mutex_
  std::atomic<bool> stop_{false};
  std::thread service_thread_;
};

}  // namespace segw::cp::dp_link
