// The recording SaInstaller: call log, scripted answers, held completions.
#include "controlplane/dp_link/recording_sa_installer.h"

#include <algorithm>
#include <utility>

namespace segw::cp::dp_link {

using shared::make_error;
using shared::Result;
using shared::channel::CommandKind;
using shared::channel::CompletionCode;

namespace {
void wipe(std::vector<RecordedCall>& calls) {
  for (RecordedCall& call : calls) shared::secure_zero(call.sa);
}
void wipe(std::vector<shared::SaDescriptor>& sas) {
  for (shared::SaDescriptor& sa : sas) shared::secure_zero(sa);
}
}  // namespace

RecordingSaInstaller::~RecordingSaInstaller() {
  std::lock_guard lock(mutex_);
  wipe(calls_);
  wipe(installed_);
  // Held answers still complete: a future must never stay unready forever.
  for (Held& held : held_) {
    held.result.outcome = LinkOutcome::kLinkClosed;
    held.promise->set_value(held.result);
  }
}

Result<std::future<CommandResult>> RecordingSaInstaller::install(const shared::SaDescriptor& sa) {
  RecordedCall call;
  call.kind = CommandKind::kInstallSa;
  call.sa = sa;
  call.spi = sa.spi;
  call.direction = sa.direction;
  call.tunnel_id = sa.tunnel_id;
  auto result = record(call);
  shared::secure_zero(call.sa);
  return result;
}

Result<std::future<CommandResult>> RecordingSaInstaller::remove(uint32_t spi,
                                                                shared::SaDirection direction) {
  RecordedCall call;
  call.kind = CommandKind::kRemoveSa;
  call.spi = spi;
  call.direction = direction;
  return record(call);
}

Result<std::future<CommandResult>> RecordingSaInstaller::update_path(
    uint32_t tunnel_id, const shared::PathDescriptor& path) {
  RecordedCall call;
  call.kind = CommandKind::kUpdatePath;
  call.tunnel_id = tunnel_id;
  call.path = path;
  return record(call);
}

Result<std::future<CommandResult>> RecordingSaInstaller::update_selectors(
    uint32_t spi, shared::SaDirection direction, std::span<const shared::TrafficSelector> local,
    std::span<const shared::TrafficSelector> remote) {
  auto payload = make_update_selectors(spi, direction, local, remote);
  if (!payload) return make_error(payload.error());
  RecordedCall call;
  call.kind = CommandKind::kUpdateSelectors;
  call.spi = spi;
  call.direction = direction;
  call.selectors = *payload;
  return record(call);
}

Result<std::future<CommandResult>> RecordingSaInstaller::record(RecordedCall call) {
  struct WipeOnExit {  // this copy of an install's keys, on every path out
    RecordedCall& call;
    ~WipeOnExit() { shared::secure_zero(call.sa); }
  } wipe_on_exit{call};
  auto promise = std::make_shared<std::promise<CommandResult>>();
  std::future<CommandResult> future = promise->get_future();
  CommandResult result;
  {
    std::lock_guard lock(mutex_);
    if (!refusal_.empty()) return make_error(refusal_);
    call.request_id = next_request_id_++;
    CompletionCode code = answer_for_locked(call.kind);
    apply_locked(call, code);
    calls_.push_back(call);
    result.completion.kind = call.kind;
    result.completion.code = code;
    result.completion.request_id = call.request_id;
    if (hold_) {
      held_.push_back({promise, result});
      return Result<std::future<CommandResult>>(std::move(future));
    }
  }
  promise->set_value(result);
  return Result<std::future<CommandResult>>(std::move(future));
}

CompletionCode RecordingSaInstaller::answer_for_locked(CommandKind kind) {
  auto next = std::find_if(next_failures_.begin(), next_failures_.end(),
                           [kind](const auto& failure) { return failure.first == kind; });
  if (next != next_failures_.end()) {
    CompletionCode code = next->second;
    next_failures_.erase(next);
    return code;
  }
  for (const auto& [failing_kind, code] : all_failures_) {
    if (failing_kind == kind) return code;
  }
  return CompletionCode::kOk;
}

void RecordingSaInstaller::apply_locked(const RecordedCall& call, CompletionCode code) {
  if (code != CompletionCode::kOk) return;  // a refused command changes nothing
  switch (call.kind) {
    case CommandKind::kInstallSa:
      installed_.push_back(call.sa);
      break;
    case CommandKind::kRemoveSa: {
      auto gone = std::find_if(installed_.begin(), installed_.end(), [&](const auto& sa) {
        return sa.spi == call.spi && sa.direction == call.direction;
      });
      if (gone != installed_.end()) {
        shared::secure_zero(*gone);
        installed_.erase(gone);
      }
      break;
    }
    case CommandKind::kUpdatePath:
      for (shared::SaDescriptor& sa : installed_) {
        if (sa.tunnel_id == call.tunnel_id) sa.path = call.path;
      }
      break;
    case CommandKind::kUpdateSelectors:
      for (shared::SaDescriptor& sa : installed_) {
        if (sa.spi != call.spi || sa.direction != call.direction) continue;
        sa.local_selector_count = call.selectors.local_selector_count;
        sa.remote_selector_count = call.selectors.remote_selector_count;
        sa.local_selectors = call.selectors.local_selectors;
        sa.remote_selectors = call.selectors.remote_selectors;
      }
      break;
    default:
      break;
  }
}

void RecordingSaInstaller::fail_next(CommandKind kind, CompletionCode code) {
  std::lock_guard lock(mutex_);
  next_failures_.emplace_back(kind, code);
}

void RecordingSaInstaller::fail_all(CommandKind kind, std::optional<CompletionCode> code) {
  std::lock_guard lock(mutex_);
  std::erase_if(all_failures_, [kind](const auto& failure) { return failure.first == kind; });
  if (code) all_failures_.emplace_back(kind, *code);
}

void RecordingSaInstaller::refuse_submissions(std::string message) {
  std::lock_guard lock(mutex_);
  refusal_ = std::move(message);
}

void RecordingSaInstaller::hold_completions(bool hold) {
  std::lock_guard lock(mutex_);
  hold_ = hold;
}

size_t RecordingSaInstaller::release_held(size_t count) {
  std::vector<Held> released;
  {
    std::lock_guard lock(mutex_);
    size_t n = std::min(count, held_.size());
    released.assign(std::make_move_iterator(held_.begin()),
                    std::make_move_iterator(held_.begin() + std::ptrdiff_t(n)));
    held_.erase(held_.begin(), held_.begin() + std::ptrdiff_t(n));
  }
  for (Held& held : released) held.promise->set_value(held.result);
  return released.size();
}

size_t RecordingSaInstaller::held_count() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

std::vector<RecordedCall> RecordingSaInstaller::calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

size_t RecordingSaInstaller::call_count() const {
  std::lock_guard lock(mutex_);
  return calls_.size();
}

std::vector<shared::SaDescriptor> RecordingSaInstaller::installed() const {
  std::lock_guard lock(mutex_);
  return installed_;
}

void RecordingSaInstaller::clear() {
  std::lock_guard lock(mutex_);
  wipe(calls_);
  wipe(installed_);
  calls_.clear();
  installed_.clear();
  next_failures_.clear();
  all_failures_.clear();
  refusal_.clear();
}

}  // namespace segw::cp::dp_link
