// CommandResult: how one SA command sent to the data plane ended. Either the
// data plane answered (its Completion), or the link gave up waiting for an
// answer and says why; a caller never waits forever.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "shared/channel/messages.h"

namespace segw::cp::dp_link {

#define SEGW_LINK_OUTCOMES(X)                                                               \
  X(kCompleted, "completed", "the data plane answered: see the completion code")          \
  X(kTimedOut, "timed_out", "no completion within the command timeout (data plane stuck?)") \
  X(kDataPlaneRestarted, "data_plane_restarted",                                            \
    "the data plane restarted before answering; the link re-pushed the SAs it owns, so "    \
    "the command's effect is in the re-pushed state")                                      \
  X(kLinkClosed, "link_closed", "the link was closed before the data plane answered")

enum class LinkOutcome : uint8_t {
#define SEGW_LINK_OUTCOME_ENUM(id, name, description) id,
  SEGW_LINK_OUTCOMES(SEGW_LINK_OUTCOME_ENUM)
#undef SEGW_LINK_OUTCOME_ENUM
};

const char* to_string(LinkOutcome outcome);
const char* describe(LinkOutcome outcome);

struct CommandResult {
  LinkOutcome outcome = LinkOutcome::kCompleted;
  // Meaningful when outcome == kCompleted; otherwise kind and request id are
  // still those of the command.
  shared::channel::Completion completion;

  bool ok() const {
    return outcome == LinkOutcome::kCompleted &&
           completion.code == shared::channel::CompletionCode::kOk;
  }
  // "ok", "duplicate_spi (an SA with this SPI and direction already
  // exists)", "timed_out (...)": for logs and CLI messages.
  std::string to_string() const;
};

// Called once per command, on the thread that drains completions (the
// link's service thread, or whoever calls DataPlaneLink::poll()), or on the
// submitting thread for outcomes decided at once (recording backend). Must
// not block for long: it holds up every later completion.
using CompletionCallback = std::function<void(const CommandResult&)>;

}  // namespace segw::cp::dp_link
