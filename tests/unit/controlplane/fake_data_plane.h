// FakeDataPlane: the data-plane side of a channel region, in the test
// process, without DPDK: creates the region (in a scratch directory), and a
// thread that heartbeats, drains commands and answers each with a
// completion the way the real control lcore would (duplicate SPI, unknown
// SA/tunnel, stale path generation), keeping the SAs it "installed" (keys
// included, wiped at destruction) and the SA inventory up to date. The test
// thread produces events and punts and consumes injects directly on region().
// Knobs: stop consuming (fill the command ring), hold completions (commands
// in flight), never answer (timeouts), a decide hook (any code per command).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shared/channel/messages.h"
#include "shared/channel/region.h"

namespace segw::cp::dp_link::testing {

namespace channel = shared::channel;

struct FakeDataPlaneOptions {
  std::string directory;
  std::string name = "segw-test";
  // Fewer command slots than completion slots, so a full command ring is
  // reachable before the in-flight limit (the completion ring's capacity).
  channel::RingCapacities capacities{32, 64, 64, 8, 8};
  uint32_t inventory_capacity = 256;
  bool replace = false;  // a restarted data plane replacing its predecessor's region
};

class FakeDataPlane {
 public:
  struct SeenCommand {
    channel::CommandKind kind;
    uint64_t request_id;
    uint64_t control_generation;
    uint32_t spi;            // install/remove
    shared::SaDirection direction;
    uint32_t tunnel_id;      // update_path, install
    uint64_t path_generation;  // update_path
    shared::PathDescriptor path;  // update_path, install
  };

  static shared::Result<std::unique_ptr<FakeDataPlane>> start(const FakeDataPlaneOptions& options) {
    channel::RegionCreateOptions create;
    create.directory = options.directory;
    create.capacities = options.capacities;
    create.inventory_capacity = options.inventory_capacity;
    create.replace = options.replace;
    auto region = channel::Region::create(options.name, create);
    if (!region) return shared::make_error(region.error());
    std::unique_ptr<FakeDataPlane> fake(new FakeDataPlane(std::move(*region)));
    fake->thread_ = std::thread([raw = fake.get()] { raw->run(); });
    return shared::Result<std::unique_ptr<FakeDataPlane>>(std::move(fake));
  }

  ~FakeDataPlane() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& [key, sa] : installed_) shared::secure_zero(sa);
  }

  channel::Region& region() { return region_; }

  void set_consuming(bool consuming) { consuming_ = consuming; }
  void set_answering(bool answering) { answering_ = answering; }
  void set_heartbeating(bool heartbeating) { heartbeating_ = heartbeating; }
  // Completions are kept until release_held() instead of being pushed.
  void hold_completions(bool hold) {
    std::lock_guard lock(mutex_);
    hold_ = hold;
  }
  void release_held(bool reverse_order = false) {
    std::lock_guard lock(mutex_);
    if (reverse_order) std::reverse(held_.begin(), held_.end());
    for (const channel::Completion& completion : held_) push_completion(completion);
    held_.clear();
  }
  size_t held_count() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  // Overrides the code for commands it returns a value for.
  void set_decide(std::function<std::optional<channel::CompletionCode>(const channel::Command&)> decide) {
    std::lock_guard lock(mutex_);
    decide_ = std::move(decide);
  }

  std::vector<SeenCommand> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  size_t installed_count() {
    std::lock_guard lock(mutex_);
    return installed_.size();
  }
  std::optional<shared::SaDescriptor> installed(uint32_t spi, shared::SaDirection direction) {
    std::lock_guard lock(mutex_);
    auto found = installed_.find({spi, direction});
    if (found == installed_.end()) return std::nullopt;
    return found->second;
  }

  // Waits until `count` commands were seen (or 5 s).
  bool wait_seen(size_t count) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (seen_.size() >= count) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

 private:
  using Key = std::pair<uint32_t, shared::SaDirection>;

  explicit FakeDataPlane(channel::Region region) : region_(std::move(region)) {}

  void run() {
    std::vector<channel::Command> commands(16);
    while (!stop_) {
      if (heartbeating_) region_.heartbeat();
      if (consuming_) {
        size_t count = channel::pop_commands(region_.command_ring(), commands);
        for (size_t i = 0; i < count; ++i) {
          handle(commands[i]);
          channel::zeroise_keys(commands[i]);
        }
        if (count != 0) continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  void push_completion(const channel::Completion& completion) {
    // Only this thread (or the test under mutex_, while this one waits on
    // it) produces completions; a full ring is a test bug: spin briefly.
    for (int attempt = 0; attempt < 100000 && !region_.completion_ring().try_push(completion);
         ++attempt) {
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    }
  }

  void handle(const channel::Command& command) {
    std::lock_guard lock(mutex_);
    SeenCommand seen{command.kind, command.request_id, command.control_generation, 0,
                     shared::SaDirection::kInbound, 0, 0, {}};
    channel::CompletionCode code = channel::CompletionCode::kOk;
    uint32_t detail = 0;
    std::optional<channel::CompletionCode> forced;
    if (decide_) forced = decide_(command);
    if (command.control_generation != region_.peer().generation) {
      code = channel::CompletionCode::kStaleGeneration;
    } else if (command.kind == channel::CommandKind::kInstallSa) {
      channel::InstallSaPayload payload;
      channel::decode_payload(command, payload);
      seen.spi = payload.sa.spi;
      seen.direction = payload.sa.direction;
      seen.tunnel_id = payload.sa.tunnel_id;
      seen.path = payload.sa.path;
      Key key{payload.sa.spi, payload.sa.direction};
      if (forced) {
        code = *forced;
      } else if (installed_.contains(key)) {
        code = channel::CompletionCode::kDuplicateSpi;
      } else {
        installed_[key] = payload.sa;
        detail = write_inventory(payload.sa);
      }
      channel::zeroise_keys(payload);
    } else if (command.kind == channel::CommandKind::kRemoveSa) {
      channel::RemoveSaPayload payload;
      channel::decode_payload(command, payload);
      seen.spi = payload.spi;
      seen.direction = payload.direction;
      Key key{payload.spi, payload.direction};
      auto found = installed_.find(key);
      if (forced) {
        code = *forced;
      } else if (found == installed_.end()) {
        code = channel::CompletionCode::kUnknownSa;
      } else {
        shared::secure_zero(found->second);
        installed_.erase(found);
        clear_inventory(key);
      }
    } else if (command.kind == channel::CommandKind::kUpdatePath) {
      channel::UpdatePathPayload payload;
      channel::decode_payload(command, payload);
      seen.tunnel_id = payload.tunnel_id;
      seen.path_generation = payload.path_generation;
      seen.path = payload.path;
      bool known = false;
      for (auto& [key, sa] : installed_) known = known || sa.tunnel_id == payload.tunnel_id;
      uint64_t& last = path_generations_[payload.tunnel_id];
      if (forced) {
        code = *forced;
      } else if (!known) {
        code = channel::CompletionCode::kUnknownTunnel;
      } else if (payload.path_generation <= last) {
        code = channel::CompletionCode::kStalePath;
      } else {
        last = payload.path_generation;
        for (auto& [key, sa] : installed_) {
          if (sa.tunnel_id == payload.tunnel_id) {
            sa.path = payload.path;
            write_inventory(sa, payload.path_generation);
          }
        }
      }
    } else if (command.kind == channel::CommandKind::kUpdateSelectors) {
      channel::UpdateSelectorsPayload payload;
      channel::decode_payload(command, payload);
      auto found = installed_.find({payload.spi, payload.direction});
      if (forced) {
        code = *forced;
      } else if (found == installed_.end()) {
        code = channel::CompletionCode::kUnknownSa;
      } else {
        found->second.local_selector_count = payload.local_selector_count;
        found->second.remote_selector_count = payload.remote_selector_count;
        found->second.local_selectors = payload.local_selectors;
        found->second.remote_selectors = payload.remote_selectors;
      }
    } else if (forced) {
      code = *forced;
    }
    seen_.push_back(seen);
    if (!answering_) return;
    channel::Completion completion = channel::make_completion(command, code, detail);
    if (hold_) {
      held_.push_back(completion);
    } else {
      push_completion(completion);
    }
  }

  uint32_t write_inventory(const shared::SaDescriptor& sa, uint64_t path_generation = 0) {
    Key key{sa.spi, sa.direction};
    auto slot = slots_.find(key);
    uint32_t index;
    if (slot == slots_.end()) {
      index = next_slot_++;
      slots_[key] = index;
    } else {
      index = slot->second;
    }
    channel::SaInventory inventory = region_.inventory();
    if (index >= inventory.capacity()) return index;
    channel::SaInventoryRecord record;
    record.spi = sa.spi;
    record.direction = sa.direction;
    record.algorithm = sa.algorithm;
    record.tunnel_id = sa.tunnel_id;
    record.path = sa.path;
    record.path_generation = path_generation;
    record.packets = 7;
    record.bytes = 700;
    record.name = sa.name;
    channel::write_inventory_entry(inventory.entry(index), record);
    return index;
  }

  void clear_inventory(const Key& key) {
    auto slot = slots_.find(key);
    if (slot == slots_.end()) return;
    channel::SaInventory inventory = region_.inventory();
    if (slot->second < inventory.capacity()) channel::clear_inventory_entry(inventory.entry(slot->second));
  }

  channel::Region region_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> consuming_{true};
  std::atomic<bool> answering_{true};
  std::atomic<bool> heartbeating_{true};
  std::mutex mutex_;
  bool hold_ = false;
  std::vector<channel::Completion> held_;
  std::function<std::optional<channel::CompletionCode>(const channel::Command&)> decide_;
  std::vector<SeenCommand> seen_;
  std::map<Key, shared::SaDescriptor> installed_;
  std::map<Key, uint32_t> slots_;
  uint32_t next_slot_ = 0;
  std::map<uint32_t, uint64_t> path_generations_;
};

}  // namespace segw::cp::dp_link::testing
