// Names of link outcomes and the printable form of a command's result.
#include "controlplane/dp_link/command_result.h"

namespace segw::cp::dp_link {

const char* to_string(LinkOutcome outcome) {
  switch (outcome) {
#define SEGW_LINK_OUTCOME_NAME(id, name, description) \
  case LinkOutcome::id:                               \
    return name;
    SEGW_LINK_OUTCOMES(SEGW_LINK_OUTCOME_NAME)
#undef SEGW_LINK_OUTCOME_NAME
  }
  return "unknown";
}

const char* describe(LinkOutcome outcome) {
  switch (outcome) {
#define SEGW_LINK_OUTCOME_DESCRIPTION(id, name, description) \
  case LinkOutcome::id:                                      \
    return description;
    SEGW_LINK_OUTCOMES(SEGW_LINK_OUTCOME_DESCRIPTION)
#undef SEGW_LINK_OUTCOME_DESCRIPTION
  }
  return "not a link outcome of this build";
}

std::string CommandResult::to_string() const {
  if (outcome != LinkOutcome::kCompleted) {
    return std::string(dp_link::to_string(outcome)) + " (" + describe(outcome) + ")";
  }
  std::string text = shared::channel::to_string(completion.code);
  if (completion.code != shared::channel::CompletionCode::kOk) {
    text += std::string(" (") + shared::channel::describe(completion.code) + ")";
  }
  return text;
}

}  // namespace segw::cp::dp_link
