// DataPlaneLink: command submission with room and deadlines, completion
// matching, event/punt delivery, heartbeats, restart detection and resync.
#include "controlplane/dp_link/data_plane_link.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "controlplane/dp_link/region_observer.h"

namespace segw::cp::dp_link {

using shared::make_error;
using shared::PathDescriptor;
using shared::Result;
using shared::SaDescriptor;
using shared::SaDirection;
using shared::Status;
using shared::channel::Command;
using shared::channel::CommandKind;
using shared::channel::Completion;
using shared::channel::CompletionCode;
using shared::channel::Event;
using shared::channel::EventKind;
using shared::channel::InjectPacket;
using shared::channel::PuntPacket;
using shared::channel::Region;
using Clock = std::chrono::steady_clock;

namespace {

// Items taken from a ring per lock hold: enough to amortise the lock, few
// enough that a submitter waits at most a few microseconds for it.
constexpr size_t kDrainBurst = 64;
// Path generations: the control generation in the high bits, a counter in
// the low 40 (10^12 updates per attach) so a successor's always compare
// newer than its predecessor's.
constexpr int kPathGenerationCounterBits = 40;

std::string hex_spi(uint32_t spi) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", spi);
  return text;
}

std::string sa_name(const SaKey& key) {
  return "SA spi " + hex_spi(key.spi) + " " + shared::to_string(key.direction);
}

CommandResult outcome_for(CommandKind kind, uint64_t request_id, LinkOutcome outcome) {
  CommandResult result;
  result.outcome = outcome;
  result.completion.kind = kind;
  result.completion.request_id = request_id;
  return result;
}

}  // namespace

const char* to_string(LinkState state) {
  switch (state) {
#define SEGW_LINK_STATE_NAME(id, name, description) \
  case LinkState::id:                               \
    return name;
    SEGW_LINK_STATES(SEGW_LINK_STATE_NAME)
#undef SEGW_LINK_STATE_NAME
  }
  return "unknown";
}

// ------------------------------------------------------------------ attach

Result<std::unique_ptr<DataPlaneLink>> DataPlaneLink::attach(const DataPlaneLinkOptions& options) {
  if (options.max_in_flight == 0) return make_error("max_in_flight must be at least 1");
  shared::channel::RegionAttachOptions attach_options;
  attach_options.directory = options.directory;
  auto region = Region::attach(options.region_name, attach_options);
  if (!region) {
    // Say which of the common cases it is, in the operator's words; the
    // observer maps read-only and changes nothing.
    auto observer = RegionObserver::open(options.region_name, options.directory);
    if (!observer) return make_error(observer.error());
    if (observer->control_plane_attached()) {
      return make_error("cannot attach to " + observer->path() +
                        " as its control plane: another control plane (pid " +
                        std::to_string(observer->control_plane().pid) +
                        ") is attached, and a region has one control side at a time "
                        "(is segw-controlplane or another segwctl-dp running?)");
    }
    return make_error("cannot attach to region '" + options.region_name + "': " + region.error());
  }
  std::unique_ptr<DataPlaneLink> link(new DataPlaneLink(options, std::move(*region)));
  if (options.service_thread) {
    try {
      link->service_thread_ = std::thread([raw = link.get()] { raw->service_loop(); });
    } catch (const std::system_error& error) {  // no exception leaves the library
      return make_error(std::string("cannot start the link's service thread: ") + error.what());
    }
  }
  return Result<std::unique_ptr<DataPlaneLink>>(std::move(link));
}

DataPlaneLink::DataPlaneLink(const DataPlaneLinkOptions& options, Region region)
    : options_(options), region_(std::make_unique<Region>(std::move(region))) {
  path_generation_base_ = region_->own_generation() << kPathGenerationCounterBits;
  max_in_flight_ = in_flight_limit();
  attached_data_plane_generation_ = region_->peer().generation;
  state_ = region_->peer_alive(options_.data_plane_timeout) ? LinkState::kAttached
                                                            : LinkState::kDataPlaneDown;
  next_check_ = Clock::now();
}

DataPlaneLink::~DataPlaneLink() {
  stop_.store(true, std::memory_order_relaxed);
  if (service_thread_.joinable()) service_thread_.join();
  std::vector<Delivery> deliveries;
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
    state_ = LinkState::kClosed;
    for (auto& [request_id, pending] : pending_) {
      if (pending.done) {
        deliveries.emplace_back(std::move(pending.done),
                                outcome_for(pending.kind, request_id, LinkOutcome::kLinkClosed));
      }
    }
    pending_.clear();
    for (auto& [key, done] : rebound_installs_) {
      deliveries.emplace_back(std::move(done),
                              outcome_for(CommandKind::kInstallSa, 0, LinkOutcome::kLinkClosed));
    }
    rebound_installs_.clear();
    registry_.clear();  // wiped now; the destructor wipes again, harmlessly
  }
  changed_.notify_all();
  deliver(deliveries);
}

// ------------------------------------------------------------- submission

Status DataPlaneLink::submit(Command command,
                             const std::function<Status(Pending&, Command&)>& prepare,
                             CompletionCallback done) {
  // This copy of an install's keys goes on every path out, sent or not.
  struct WipeOnExit {
    Command& command;
    ~WipeOnExit() { shared::channel::zeroise_keys(command); }
  } wipe_on_exit{command};
  std::unique_lock lock(mutex_);
  const auto deadline = Clock::now() + options_.submit_timeout;
  for (;;) {
    if (closing_ || state_ == LinkState::kClosed) return make_error("link to the data plane is closed");
    bool ready = state_ == LinkState::kAttached;
    bool room = pending_.size() < max_in_flight_;
    bool ring_room = ready && region_->command_ring().free_space() > 0;
    if (ready && room && ring_room) break;
    if (Clock::now() >= deadline) {
      std::string timeout = std::to_string(options_.submit_timeout.count()) + " ms";
      if (!ready) {
        return make_error(std::string("data plane not ready (") + to_string(state_) +
                          ") after waiting " + timeout +
                          (last_error_.empty() ? std::string() : ": " + last_error_));
      }
      if (!room) {
        return make_error(std::to_string(pending_.size()) +
                          " commands in flight (the limit) and none completed within " + timeout);
      }
      return make_error("command ring full (" +
                        std::to_string(region_->command_ring().capacity()) +
                        " slots) for " + timeout + ": the data plane is not draining commands");
    }
    if (ready && room) {
      // Ring full: only the data plane consuming frees slots, and it does
      // not tell us; look again shortly, without the lock.
      lock.unlock();
      std::this_thread::sleep_for(options_.idle_sleep);
      lock.lock();
    } else {
      // Completions and state changes notify; the bound keeps a missed
      // wake-up from costing more than a moment.
      changed_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(5)));
    }
  }

  Pending pending;
  pending.kind = command.kind;
  if (prepare) {
    if (Status prepared = prepare(pending, command); !prepared) return prepared;
  }
  uint64_t request_id = next_request_id_++;
  command.request_id = request_id;
  command.control_generation = region_->own_generation();
  // Cannot fail: we are the one producer (under the lock) and saw room.
  bool pushed = region_->command_ring().try_push(command);
  shared::channel::zeroise_keys(command);  // our copy of the keys goes now (messages.h)
  if (!pushed) {
    if (pending.added_to_registry) registry_.remove(pending.sa);
    return make_error("command ring full");
  }
  pending.deadline = Clock::now() + options_.command_timeout;
  pending.done = std::move(done);
  pending_.emplace(request_id, std::move(pending));
  ++statistics_.commands_sent;
  return Status::success();
}

Result<std::future<CommandResult>> DataPlaneLink::with_future(
    const std::function<Status(CompletionCallback)>& send) {
  auto promise = std::make_shared<std::promise<CommandResult>>();
  std::future<CommandResult> future = promise->get_future();
  Status sent = send([promise](const CommandResult& result) { promise->set_value(result); });
  if (!sent) return make_error(sent.error());
  return Result<std::future<CommandResult>>(std::move(future));
}

Status DataPlaneLink::install(const SaDescriptor& sa, CompletionCallback done) {
  if (sa.spi == 0) return make_error("SPI 0 is reserved (RFC 4303 2.1)");
  if (sa.direction != SaDirection::kInbound && sa.direction != SaDirection::kOutbound) {
    return make_error("SA with an invalid direction");
  }
  shared::channel::InstallSaPayload payload;
  payload.sa = sa;
  Command command = shared::channel::make_command(0, 0, payload);
  shared::channel::zeroise_keys(payload);
  SaKey key{sa.spi, sa.direction};
  // submit() takes (and wipes) its own copy; this one is wiped below.
  Status submitted = submit(
      command,
      [this, key, &sa](Pending& pending, Command&) -> Status {
        pending.sa = key;
        if (!registry_.add(sa)) {
          return make_error(sa_name(key) + " is already owned by this link: remove it first");
        }
        pending.added_to_registry = true;
        return Status::success();
      },
      std::move(done));
  shared::channel::zeroise_keys(command);
  return submitted;
}

Status DataPlaneLink::remove(uint32_t spi, SaDirection direction, CompletionCallback done) {
  if (spi == 0) return make_error("SPI 0 is reserved (RFC 4303 2.1)");
  shared::channel::RemoveSaPayload payload;
  payload.spi = spi;
  payload.direction = direction;
  SaKey key{spi, direction};
  return submit(
      shared::channel::make_command(0, 0, payload),
      [this, key](Pending& pending, Command&) -> Status {
        pending.sa = key;
        // Forgotten (and wiped) at once: whatever the data plane answers,
        // the control plane no longer wants this SA, so it must not come
        // back in a resync.
        registry_.remove(key);
        return Status::success();
      },
      std::move(done));
}

Status DataPlaneLink::update_path(uint32_t tunnel_id, const PathDescriptor& path,
                                  CompletionCallback done) {
  if (path.local.family() != path.remote.family()) {
    return make_error("path " + path.local.to_string() + " -> " + path.remote.to_string() +
                      ": address families differ");
  }
  if (path.udp_encapsulation && (path.local_port == 0 || path.remote_port == 0)) {
    return make_error("UDP-encapsulated path with port 0");
  }
  shared::channel::UpdatePathPayload payload;
  payload.tunnel_id = tunnel_id;
  payload.path = path;
  return submit(
      shared::channel::make_command(0, 0, payload),
      [this, tunnel_id, &path](Pending& pending, Command& command) -> Status {
        pending.tunnel_id = tunnel_id;
        pending.new_path = path;
        pending.previous_path = registry_.tunnel_path(tunnel_id);
        registry_.set_tunnel_path(tunnel_id, path);
        // The generation is taken under the lock, right before the push, so
        // generations reach the ring in increasing order.
        shared::channel::UpdatePathPayload filled;
        shared::channel::decode_payload(command, filled);
        filled.path_generation = next_path_generation_locked();
        std::memcpy(command.payload.data(), &filled, sizeof(filled));
        return Status::success();
      },
      std::move(done));
}

Status DataPlaneLink::update_selectors(uint32_t spi, SaDirection direction,
                                       std::span<const shared::TrafficSelector> local,
                                       std::span<const shared::TrafficSelector> remote, CompletionCallback done) {
  auto payload = make_update_selectors(spi, direction, local, remote);
  if (!payload) return make_error(payload.error());
  SaKey key{spi, direction};
  return submit(
      shared::channel::make_command(0, 0, *payload),
      [this, key, &payload](Pending& pending, Command&) -> Status {
        pending.sa = key;
        pending.new_selectors = *payload;
        pending.previous_selectors = registry_.set_selectors(key, *payload);
        return Status::success();
      },
      std::move(done));
}

Status DataPlaneLink::barrier(CompletionCallback done) {
  return submit(shared::channel::make_command(0, 0, shared::channel::BarrierPayload{}), nullptr,
                std::move(done));
}

Result<std::future<CommandResult>> DataPlaneLink::install(const SaDescriptor& sa) {
  return with_future([&](CompletionCallback done) { return install(sa, std::move(done)); });
}
Result<std::future<CommandResult>> DataPlaneLink::remove(uint32_t spi, SaDirection direction) {
  return with_future(
      [&](CompletionCallback done) { return remove(spi, direction, std::move(done)); });
}
Result<std::future<CommandResult>> DataPlaneLink::update_path(uint32_t tunnel_id,
                                                              const PathDescriptor& path) {
  return with_future(
      [&](CompletionCallback done) { return update_path(tunnel_id, path, std::move(done)); });
}
Result<std::future<CommandResult>> DataPlaneLink::update_selectors(
    uint32_t spi, SaDirection direction, std::span<const shared::TrafficSelector> local,
    std::span<const shared::TrafficSelector> remote) {
  return with_future([&](CompletionCallback done) {
    return update_selectors(spi, direction, local, remote, std::move(done));
  });
}
Result<std::future<CommandResult>> DataPlaneLink::barrier() {
  return with_future([&](CompletionCallback done) { return barrier(std::move(done)); });
}

Status DataPlaneLink::adopt(const SaDescriptor& sa) {
  std::lock_guard lock(mutex_);
  if (!registry_.add(sa)) {
    return make_error(sa_name({sa.spi, sa.direction}) + " is already owned by this link");
  }
  return Status::success();
}

Result<std::vector<InventoryEntry>> DataPlaneLink::read_inventory() const {
  std::lock_guard lock(mutex_);
  return read_sa_inventory(region_->inventory());
}

shared::channel::DataPlaneStatisticsSnapshot DataPlaneLink::dataplane_statistics() const {
  using shared::channel::RingId;
  std::lock_guard lock(mutex_);
  auto snapshot = shared::channel::read_dataplane_statistics(region_->statistics());
  snapshot.data_plane_alive = region_->peer_alive(options_.data_plane_timeout);
  auto ring = [&](RingId id, uint64_t depth, uint64_t capacity) {
    std::string name = shared::channel::to_string(id);
    name.append("_ring");
    snapshot.queues.push_back({std::move(name), depth, capacity});
  };
  ring(RingId::kCommand, region_->command_ring().size(), region_->command_ring().capacity());
  ring(RingId::kCompletion, region_->completion_ring().size(), region_->completion_ring().capacity());
  ring(RingId::kEvent, region_->event_ring().size(), region_->event_ring().capacity());
  ring(RingId::kPunt, region_->punt_ring().size(), region_->punt_ring().capacity());
  ring(RingId::kInject, region_->inject_ring().size(), region_->inject_ring().capacity());
  if (region_->inventory().present()) {
    const auto& c = region_->inventory().header().counters;
    auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    snapshot.channel_counters = {{"commands", get(c.commands)},
                                 {"commands_failed", get(c.commands_failed)},
                                 {"completions_dropped", get(c.completions_dropped)},
                                 {"events", get(c.events)},
                                 {"events_suppressed", get(c.events_suppressed)},
                                 {"events_dropped", get(c.events_dropped)},
                                 {"punted", get(c.punted)},
                                 {"punt_ring_full", get(c.punt_ring_full)},
                                 {"punt_too_big", get(c.punt_too_big)},
                                 {"injected", get(c.injected)},
                                 {"inject_errors", get(c.inject_errors)}};
  }
  return snapshot;
}

Result<DataPlaneLink::ResumeReport> DataPlaneLink::resume(
    const std::function<std::optional<SaDescriptor>(const shared::channel::SaInventoryRecord&)>&
        restore) {
  auto inventory = read_inventory();
  if (!inventory) return make_error(inventory.error());
  ResumeReport report;
  for (const InventoryEntry& entry : *inventory) {
    std::optional<SaDescriptor> sa = restore(entry.record);
    if (!sa || sa->spi != entry.record.spi || sa->direction != entry.record.direction) {
      report.orphans.push_back({entry.record.spi, entry.record.direction});
      if (sa) shared::secure_zero(*sa);
      continue;
    }
    sa->path = entry.record.path;  // where the data plane sends now
    sa->tunnel_id = entry.record.tunnel_id;
    Status adopted = adopt(*sa);
    shared::secure_zero(*sa);
    if (adopted) ++report.adopted;  // else already owned: nothing to do
  }
  return report;
}

size_t DataPlaneLink::in_flight_limit() const {
  // Never more outstanding than the completion ring holds: the data plane
  // drops a completion that finds it full, and that command would only
  // time out.
  return std::min<size_t>(options_.max_in_flight, region_->completion_ring().capacity());
}

uint64_t DataPlaneLink::next_path_generation_locked() {
  return path_generation_base_ + ++path_updates_sent_;
}

// ------------------------------------------------------- settling results

void DataPlaneLink::settle_locked(Pending& pending, const CommandResult& result) {
  // Only a refusal by the data plane undoes the registry change; a timeout
  // or restart leaves the intent in place (a resync pushes it).
  bool refused = result.outcome == LinkOutcome::kCompleted &&
                 result.completion.code != CompletionCode::kOk;
  if (!refused) return;
  if (pending.kind == CommandKind::kInstallSa && pending.added_to_registry) {
    registry_.remove(pending.sa);
  } else if (pending.kind == CommandKind::kUpdatePath && pending.previous_path) {
    // Restore only if no later update replaced ours meanwhile.
    auto current = registry_.tunnel_path(pending.tunnel_id);
    if (current && *current == pending.new_path) {
      registry_.set_tunnel_path(pending.tunnel_id, *pending.previous_path);
    }
  } else if (pending.kind == CommandKind::kUpdateSelectors && pending.previous_selectors) {
    const SaDescriptor* owned = registry_.find(pending.sa);
    const auto& ours = pending.new_selectors;
    if (owned && owned->local_selector_count == ours.local_selector_count &&
        owned->remote_selector_count == ours.remote_selector_count &&
        owned->local_selectors == ours.local_selectors && owned->remote_selectors == ours.remote_selectors) {
      registry_.set_selectors(pending.sa, *pending.previous_selectors);
    }
  }
}

void DataPlaneLink::deliver(std::vector<Delivery>& deliveries) {
  for (auto& [done, result] : deliveries) {
    if (done) done(result);
  }
  deliveries.clear();
}

// ---------------------------------------------------------------- service

size_t DataPlaneLink::drain_completions() {
  std::vector<Delivery> deliveries;
  size_t handled = 0;
  {
    std::lock_guard lock(mutex_);
    if (!region_) return 0;
    std::array<Completion, kDrainBurst> completions;
    size_t count = region_->completion_ring().pop_burst(completions);
    handled = count;
    uint64_t generation = region_->own_generation();
    for (size_t i = 0; i < count; ++i) {
      const Completion& completion = completions[i];
      if (completion.control_generation != generation) {
        ++statistics_.stale_completions;  // answers to a predecessor's commands
        continue;
      }
      auto found = pending_.find(completion.request_id);
      if (found == pending_.end()) {
        ++statistics_.unmatched_completions;
        continue;
      }
      ++statistics_.completions;
      Pending pending = std::move(found->second);
      pending_.erase(found);
      CommandResult result;
      result.completion = completion;
      settle_locked(pending, result);
      if (pending.resync) {
        --resync_outstanding_;
        if (completion.code == CompletionCode::kOk) {
          ++resync_report_.installed;
        } else if (completion.code == CompletionCode::kDuplicateSpi) {
          ++resync_report_.already_present;
        } else {
          ++resync_report_.failed;
          if (resync_report_.first_failure.empty()) {
            resync_report_.first_failure = sa_name(pending.sa) + ": " + result.to_string();
          }
        }
      }
      if (pending.done) deliveries.emplace_back(std::move(pending.done), result);
    }
    if (state_ == LinkState::kResyncing && resync_position_ == resync_queue_.size() &&
        resync_outstanding_ == 0) {
      finish_resync_locked(deliveries);
    }
  }
  if (handled != 0) changed_.notify_all();
  deliver(deliveries);
  return handled;
}

size_t DataPlaneLink::drain_events() {
  std::array<Event, kDrainBurst> events;
  size_t count;
  std::shared_ptr<const SubscriberList> subscribers;
  {
    std::lock_guard lock(mutex_);
    if (!region_) return 0;
    count = region_->event_ring().pop_burst(events);
    statistics_.events += count;
    subscribers = subscribers_;
  }
  for (size_t i = 0; i < count; ++i) {
    // A format this build does not know is ignored, not misread (messages.h).
    if (events[i].version != shared::channel::kMessageVersion) continue;
    for (const Subscriber& subscriber : *subscribers) {
      if (!subscriber.kind || *subscriber.kind == events[i].kind) subscriber.callback(events[i]);
    }
  }
  return count;
}

size_t DataPlaneLink::drain_punts() {
  // Punted packets are 2 KB each: a few per lock hold.
  constexpr size_t kPuntBurst = 8;
  std::vector<IkeDatagram> datagrams;
  IkeReceiver receiver;
  {
    std::lock_guard lock(mutex_);
    if (!region_) return 0;
    auto& ring = region_->punt_ring();
    std::span<PuntPacket> packets = ring.peek(kPuntBurst);
    for (const PuntPacket& packet : packets) {
      if (packet.version != shared::channel::kMessageVersion) continue;
      datagrams.push_back(datagram_from_punt(packet));
    }
    ring.release(packets.size());
    statistics_.punts += packets.size();
    if (!receiver_) {
      statistics_.punts_dropped += datagrams.size();
      return packets.size();
    }
    receiver = receiver_;
  }
  for (const IkeDatagram& datagram : datagrams) receiver(datagram);
  return datagrams.size();
}

void DataPlaneLink::periodic_checks() {
  std::vector<Delivery> deliveries;
  bool state_changed = false;
  {
    std::lock_guard lock(mutex_);
    if (closing_) return;
    region_->heartbeat();
    // A restarted data plane publishes a new file under the name (region.h).
    auto superseded = region_->superseded();
    bool replaced = superseded.ok() && *superseded;
    if (replaced && options_.follow_restarts) {
      shared::channel::RegionAttachOptions attach_options;
      attach_options.directory = options_.directory;
      auto fresh = Region::attach(options_.region_name, attach_options);
      if (fresh) {
        last_error_.clear();
        region_ = std::make_unique<Region>(std::move(*fresh));
        path_generation_base_ = region_->own_generation() << kPathGenerationCounterBits;
        path_updates_sent_ = 0;
        max_in_flight_ = in_flight_limit();
        begin_resync_locked(deliveries);
        state_changed = true;
      } else {
        // Not there yet (or of another build): keep looking every check.
        last_error_ = fresh.error();
        if (state_ != LinkState::kDataPlaneDown) {
          state_ = LinkState::kDataPlaneDown;
          state_changed = true;
        }
      }
    } else if (region_->peer().generation != attached_data_plane_generation_ &&
               options_.follow_restarts) {
      // Same file, new data plane generation: a data plane that re-created
      // its state in place. Same remedy.
      begin_resync_locked(deliveries);
      state_changed = true;
    } else if (state_ != LinkState::kResyncing) {
      bool alive = !replaced && region_->peer_alive(options_.data_plane_timeout);
      LinkState wanted = alive ? LinkState::kAttached : LinkState::kDataPlaneDown;
      if (wanted != state_) {
        state_ = wanted;
        state_changed = true;
      }
    }
  }
  if (state_changed) changed_.notify_all();
  deliver(deliveries);
  expire_deadlines();
}

void DataPlaneLink::begin_resync_locked(std::vector<Delivery>& deliveries) {
  attached_data_plane_generation_ = region_->peer().generation;
  ++statistics_.resyncs;
  // What was outstanding went to the old data plane and is lost with it.
  // Installs: their SA is in the registry and the resync sends it again;
  // their callback waits for that. Removes and path updates: their effect
  // is already in the registry the resync pushes.
  for (auto& [request_id, pending] : pending_) {
    // Installs (a user's, or an unfinished earlier resync's carrying a
    // user's callback) whose SA is still owned.
    if (pending.kind == CommandKind::kInstallSa && registry_.contains(pending.sa)) {
      if (pending.done) rebound_installs_[pending.sa] = std::move(pending.done);
      continue;
    }
    if (pending.done) {
      deliveries.emplace_back(std::move(pending.done),
                              outcome_for(pending.kind, request_id,
                                          LinkOutcome::kDataPlaneRestarted));
    }
  }
  pending_.clear();
  resync_queue_.clear();
  resync_queue_.reserve(registry_.size());
  registry_.for_each([this](const SaDescriptor& sa) {
    resync_queue_.push_back({sa.spi, sa.direction});
  });
  resync_position_ = 0;
  resync_outstanding_ = 0;
  resync_report_ = ResyncReport{};
  resync_report_.data_plane_generation = attached_data_plane_generation_;
  resync_report_.sa_count = resync_queue_.size();
  resync_started_ = Clock::now();
  state_ = LinkState::kResyncing;
}

size_t DataPlaneLink::continue_resync() {
  std::vector<Delivery> deliveries;
  size_t pushed = 0;
  {
    std::lock_guard lock(mutex_);
    if (state_ != LinkState::kResyncing) return 0;
    // A data plane that is not up yet would leave them in its ring; wait
    // for its heartbeat (it beats as soon as it created the region).
    if (!region_->peer_alive(options_.data_plane_timeout)) return 0;
    auto& ring = region_->command_ring();
    uint64_t generation = region_->own_generation();
    while (resync_position_ < resync_queue_.size() &&
           resync_outstanding_ < max_in_flight_ && pushed < kDrainBurst) {
      SaKey key = resync_queue_[resync_position_];
      const SaDescriptor* sa = registry_.find(key);
      if (sa == nullptr) {  // removed since the queue was built
        ++resync_position_;
        continue;
      }
      shared::channel::InstallSaPayload payload;
      payload.sa = *sa;
      Command command = shared::channel::make_command(next_request_id_, generation, payload);
      shared::channel::zeroise_keys(payload);
      bool ok = ring.try_push(command);
      shared::channel::zeroise_keys(command);
      if (!ok) break;  // ring full: the next pass continues
      Pending pending;
      pending.kind = CommandKind::kInstallSa;
      pending.sa = key;
      pending.resync = true;
      pending.deadline = Clock::now() + options_.command_timeout;
      if (auto rebound = rebound_installs_.find(key); rebound != rebound_installs_.end()) {
        pending.done = std::move(rebound->second);
        rebound_installs_.erase(rebound);
      }
      pending_.emplace(next_request_id_++, std::move(pending));
      ++statistics_.commands_sent;
      ++resync_outstanding_;
      ++resync_position_;
      ++pushed;
    }
    if (resync_position_ == resync_queue_.size() && resync_outstanding_ == 0) {
      finish_resync_locked(deliveries);
    }
  }
  deliver(deliveries);
  return pushed;
}

void DataPlaneLink::finish_resync_locked(std::vector<Delivery>& deliveries) {
  resync_report_.duration = Clock::now() - resync_started_;
  last_resync_ = resync_report_;
  resync_queue_.clear();
  resync_queue_.shrink_to_fit();
  resync_position_ = 0;
  // Installs whose SA was removed meanwhile: nothing was resent for them.
  for (auto& [key, done] : rebound_installs_) {
    deliveries.emplace_back(std::move(done),
                            outcome_for(CommandKind::kInstallSa, 0,
                                        LinkOutcome::kDataPlaneRestarted));
  }
  rebound_installs_.clear();
  state_ = LinkState::kAttached;
  if (resync_observer_) {
    // The observer runs like a completion callback: outside the lock.
    auto observer = resync_observer_;
    ResyncReport report = resync_report_;
    deliveries.emplace_back([observer, report](const CommandResult&) { observer(report); },
                            CommandResult{});
  }
  changed_.notify_all();
}

void DataPlaneLink::expire_deadlines() {
  std::vector<Delivery> deliveries;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      ++statistics_.timeouts;
      CommandResult result = outcome_for(it->second.kind, it->first, LinkOutcome::kTimedOut);
      if (it->second.resync) {
        --resync_outstanding_;
        ++resync_report_.failed;
        if (resync_report_.first_failure.empty()) {
          resync_report_.first_failure = sa_name(it->second.sa) + ": " + result.to_string();
        }
      }
      if (it->second.done) deliveries.emplace_back(std::move(it->second.done), result);
      it = pending_.erase(it);
    }
    if (state_ == LinkState::kResyncing && resync_position_ == resync_queue_.size() &&
        resync_outstanding_ == 0) {
      finish_resync_locked(deliveries);
    }
  }
  if (!deliveries.empty()) changed_.notify_all();
  deliver(deliveries);
}

size_t DataPlaneLink::poll() {
  std::unique_lock poll_lock(poll_mutex_, std::try_to_lock);
  if (!poll_lock.owns_lock()) return 0;
  size_t work = drain_completions();
  work += drain_events();
  work += drain_punts();
  auto now = Clock::now();
  if (now >= next_check_) {
    next_check_ = now + options_.check_interval;
    periodic_checks();
  }
  work += continue_resync();
  return work;
}

void DataPlaneLink::service_loop() {
  while (!stop_.load(std::memory_order_relaxed)) {
    if (poll() == 0) std::this_thread::sleep_for(options_.idle_sleep);
  }
}

// ----------------------------------------------------------------- events

uint64_t DataPlaneLink::subscribe(EventKind kind, EventCallback callback) {
  std::lock_guard lock(mutex_);
  auto list = std::make_shared<SubscriberList>(*subscribers_);
  uint64_t id = next_subscription_++;
  list->push_back({id, kind, std::move(callback)});
  subscribers_ = std::move(list);  // copy on write: a drain in progress keeps its snapshot
  return id;
}

uint64_t DataPlaneLink::subscribe_all(EventCallback callback) {
  std::lock_guard lock(mutex_);
  auto list = std::make_shared<SubscriberList>(*subscribers_);
  uint64_t id = next_subscription_++;
  list->push_back({id, std::nullopt, std::move(callback)});
  subscribers_ = std::move(list);
  return id;
}

void DataPlaneLink::unsubscribe(uint64_t subscription) {
  std::lock_guard lock(mutex_);
  auto list = std::make_shared<SubscriberList>(*subscribers_);
  std::erase_if(*list, [subscription](const Subscriber& s) { return s.id == subscription; });
  subscribers_ = std::move(list);
}

// ---------------------------------------------------------- IKE transport

Status DataPlaneLink::send(const IkeDatagram& datagram) {
  InjectPacket packet;
  if (Status filled = fill_inject_packet(datagram, packet); !filled) return filled;
  std::lock_guard lock(mutex_);
  if (closing_) return make_error("link to the data plane is closed");
  if (state_ == LinkState::kDataPlaneDown) return make_error("data plane down: IKE packet not sent");
  if (!region_->inject_ring().try_push(packet)) {
    ++statistics_.inject_ring_full;
    return make_error("inject ring full (" + std::to_string(region_->inject_ring().capacity()) +
                      " packets): IKE packet not sent");
  }
  ++statistics_.injects;
  return Status::success();
}

void DataPlaneLink::set_receiver(IkeReceiver receiver) {
  std::lock_guard lock(mutex_);
  receiver_ = std::move(receiver);
}

// ---------------------------------------------------------------- queries

bool DataPlaneLink::wait_for_state(LinkState state, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  auto deadline = Clock::now() + timeout;
  while (state_ != state) {
    if (Clock::now() >= deadline) return false;
    changed_.wait_until(lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(5)));
  }
  return true;
}

void DataPlaneLink::set_resync_observer(std::function<void(const ResyncReport&)> observer) {
  std::lock_guard lock(mutex_);
  resync_observer_ = std::move(observer);
}

std::optional<ResyncReport> DataPlaneLink::last_resync() const {
  std::lock_guard lock(mutex_);
  return last_resync_;
}

LinkState DataPlaneLink::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::string DataPlaneLink::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

LinkStatistics DataPlaneLink::statistics() const {
  std::lock_guard lock(mutex_);
  return statistics_;
}

uint64_t DataPlaneLink::control_generation() const {
  std::lock_guard lock(mutex_);
  return region_->own_generation();
}

uint64_t DataPlaneLink::data_plane_generation() const {
  std::lock_guard lock(mutex_);
  return region_->peer().generation;
}

std::string DataPlaneLink::region_path() const {
  std::lock_guard lock(mutex_);
  return region_->path();
}

size_t DataPlaneLink::in_flight() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

size_t DataPlaneLink::owned_sa_count() const {
  std::lock_guard lock(mutex_);
  return registry_.size();
}

std::optional<size_t> DataPlaneLink::owned_sa_slot(uint32_t spi, SaDirection direction) const {
  std::lock_guard lock(mutex_);
  return registry_.slot_of({spi, direction});
}

std::vector<std::byte> DataPlaneLink::registry_slot_bytes(size_t slot) const {
  std::lock_guard lock(mutex_);
  auto bytes = registry_.slot_bytes(slot);
  return {bytes.begin(), bytes.end()};
}

}  // namespace segw::cp::dp_link
