// RecordingSaInstaller: the in-memory SaInstaller backend for unit tests of
// whatever drives SAs (IKE tasks, policy). Records every call in order,
// answers each with a completion at once (kOk unless told otherwise), and can
// be told to refuse submissions outright or to hold answers back until the
// test releases them (to test code that waits on installs).
// Recorded install descriptors keep their keys (tests compare them); they
// are wiped when the recorder is cleared or destroyed. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controlplane/dp_link/sa_installer.h"

namespace segw::cp::dp_link {

struct RecordedCall {
  shared::channel::CommandKind kind = shared::channel::CommandKind::kBarrier;
  shared::SaDescriptor sa;        // install
  uint32_t spi = 0;               // install/remove
  shared::SaDirection direction = shared::SaDirection::kInbound;
  uint32_t tunnel_id = 0;         // update_path (and install: the SA's)
  shared::PathDescriptor path;    // update_path
  shared::channel::UpdateSelectorsPayload selectors;  // update_selectors (spi, direction too)
  uint64_t request_id = 0;        // 1, 2, ... in call order
};

class RecordingSaInstaller final : public SaInstaller {
 public:
  RecordingSaInstaller() = default;
  ~RecordingSaInstaller() override;

  shared::Result<std::future<CommandResult>> install(const shared::SaDescriptor& sa) override;
  shared::Result<std::future<CommandResult>> remove(uint32_t spi,
                                                    shared::SaDirection direction) override;
  shared::Result<std::future<CommandResult>> update_path(
      uint32_t tunnel_id, const shared::PathDescriptor& path) override;
  shared::Result<std::future<CommandResult>> update_selectors(
      uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
      std::span<const shared::TrafficSelector> remote) override;

  // Scripting. Answers are chosen at the time of the call:
  // the next call of `kind` completes with `code` (queued: one per call).
  void fail_next(shared::channel::CommandKind kind, shared::channel::CompletionCode code);
  // Every call of `kind` completes with `code` until cleared (std::nullopt).
  void fail_all(shared::channel::CommandKind kind,
                std::optional<shared::channel::CompletionCode> code);
  // Calls fail before anything is recorded, with this message (as a link
  // that is not attached would); empty: they do not.
  void refuse_submissions(std::string message);
  // Holding: answers are kept until release_held() (in call order);
  // release_held() completes up to `count` of them and returns how many.
  void hold_completions(bool hold);
  size_t release_held(size_t count = SIZE_MAX);
  size_t held_count() const;

  // What happened.
  std::vector<RecordedCall> calls() const;
  size_t call_count() const;
  // The SAs installed and not removed since (kOk answers only), as the data
  // plane would hold them: the model a test compares against.
  std::vector<shared::SaDescriptor> installed() const;
  void clear();  // forgets calls, scripts and installed SAs (wiped)

 private:
  struct Held {
    std::shared_ptr<std::promise<CommandResult>> promise;
    CommandResult result;
  };

  shared::Result<std::future<CommandResult>> record(RecordedCall call);
  shared::channel::CompletionCode answer_for_locked(shared::channel::CommandKind kind);
  void apply_locked(const RecordedCall& call, shared::channel::CompletionCode code);

  mutable std::mutex mutex_;
  std::vector<RecordedCall> calls_;
  std::vector<shared::SaDescriptor> installed_;
  std::vector<std::pair<shared::channel::CommandKind, shared::channel::CompletionCode>> next_failures_;
  std::vector<std::pair<shared::channel::CommandKind, shared::channel::CompletionCode>> all_failures_;
  std::string refusal_;
  bool hold_ = false;
  std::vector<Held> held_;
  uint64_t next_request_id_ = 1;
};

}  // namespace segw::cp::dp_link
