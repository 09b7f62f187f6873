// Names and descriptions of drop reasons (from the X-macro).
#include "dataplane/stats/drop_reason.h"

namespace segw::dp {

namespace {
#define SEGW_DROP_NAME(id, name, description) name,
constexpr const char* kNames[] = {SEGW_DROP_REASONS(SEGW_DROP_NAME)};
#undef SEGW_DROP_NAME
#define SEGW_DROP_DESCRIPTION(id, name, description) description,
constexpr const char* kDescriptions[] = {SEGW_DROP_REASONS(SEGW_DROP_DESCRIPTION)};
#undef SEGW_DROP_DESCRIPTION
}  // namespace

const char* to_string(DropReason reason) {
  auto i = static_cast<int>(reason);
  return i < kDropReasonCount ? kNames[i] : "unknown";
}

const char* describe(DropReason reason) {
  auto i = static_cast<int>(reason);
  return i < kDropReasonCount ? kDescriptions[i] : "unknown";
}

}  // namespace segw::dp
