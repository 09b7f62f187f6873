// Carries out one channel Command against SaTables and the SA inventory and
// says how it went in a Completion (shared/channel/messages.h). A command
// that fails changes nothing: every check that can fail runs before the
// first change, and SaTables itself undoes a failed install.
//
// Thread: the control lcore only. Key material: the install payload is
// wiped from the Command and from every local copy before execute() returns,
// whatever the outcome; keys are never logged.
#pragma once

#include <cstdint>
#include <string>

#include "dataplane/channel/sa_inventory_writer.h"
#include "shared/channel/messages.h"

namespace segw::dp {

class SaTables;

class CommandExecutor {
 public:
  CommandExecutor(SaTables& tables, SaInventoryWriter& inventory) : tables_(tables), inventory_(inventory) {}

  // Checks, in order: message version (kUnsupportedVersion), the sender's
  // control generation against `control_generation`, the control plane now
  // attached (kStaleGeneration), the kind (kUnknownCommand), then the
  // kind's own checks:
  //   install_sa:  kBadParameters (descriptor out of range or inconsistent,
  //                tunnel already on another path, inbound index taken by
  //                another SPI), kDuplicateSpi, kTableFull (detail: capacity);
  //                kOk detail: the SA's table index
  //   remove_sa:   kBadParameters (direction), kUnknownSa
  //   update_path: kBadParameters (path), kUnknownTunnel, kStalePath (a
  //                non-zero path_generation not above the tunnel's), kTableFull
  //                (no memory for the path). path_generation 0: "unnumbered",
  //                the data plane numbers it current + 1.
  //   update_selectors: kUnknownCommand with detail 1 (the kind is known;
  //                SaTables cannot swap selectors in place yet: remove and
  //                install the SA instead)
  //   barrier:     kOk
  // `last_error` describes the last failure (for the log; never key bytes).
  shared::channel::Completion execute(shared::channel::Command& command, uint64_t control_generation,
                                      uint64_t now_ns);

  const std::string& last_error() const { return last_error_; }

 private:
  shared::channel::Completion install(shared::channel::Command& command, uint64_t now_ns);
  shared::channel::Completion remove(const shared::channel::Command& command);
  shared::channel::Completion update_path(const shared::channel::Command& command, uint64_t now_ns);
  shared::channel::Completion update_selectors(const shared::channel::Command& command);
  shared::channel::Completion fail(const shared::channel::Command& command, shared::channel::CompletionCode code,
                                   std::string why, uint32_t detail = 0);

  SaTables& tables_;
  SaInventoryWriter& inventory_;
  std::string last_error_;
};

// Descriptor checks shared by install (exposed for tests): empty when the
// descriptor is acceptable, else what is wrong.
std::string validate_sa_descriptor(const shared::SaDescriptor& descriptor);
std::string validate_path(const shared::PathDescriptor& path);

}  // namespace segw::dp
