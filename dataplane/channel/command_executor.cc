// Command execution: validation first, then one change, then the inventory.
#include "dataplane/channel/command_executor.h"

#include <cstdio>

#include "dataplane/sad/sa_table.h"
#include "shared/wire.h"

namespace segw::dp {

using shared::SaDescriptor;
using shared::SaDirection;
using shared::channel::Command;
using shared::channel::CommandKind;
using shared::channel::Completion;
using shared::channel::CompletionCode;

namespace {

std::string hex_spi(uint32_t spi) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", spi);
  return text;
}

bool valid_direction(SaDirection direction) {
  return direction == SaDirection::kInbound || direction == SaDirection::kOutbound;
}

// The bytes come from another process: an IpAddress is only trusted once its
// family is one of ours and an IPv4 one keeps its unused bytes zero (the
// form every comparison in the data plane assumes).
bool valid_address(const shared::IpAddress& address) {
  if (address.is_ipv6()) return true;
  if (!address.is_ipv4()) return false;
  for (int i = 4; i < 16; ++i)
    if (address.bytes()[i] != 0) return false;
  return true;
}

std::string validate_selector(const shared::TrafficSelector& selector) {
  if (!valid_address(selector.start) || !valid_address(selector.end)) return "selector address of no known family";
  if (selector.start.family() != selector.end.family()) return "selector range mixes IPv4 and IPv6";
  if (selector.end < selector.start) return "selector range ends before it starts";
  if (selector.port_end < selector.port_start) return "selector port range ends before it starts";
  return {};
}

}  // namespace

std::string validate_path(const shared::PathDescriptor& path) {
  if (!valid_address(path.local) || !valid_address(path.remote)) return "path address of no known family";
  if (path.local.family() != path.remote.family()) return "path addresses of different families";
  if (path.udp_encapsulation && (path.local_port == 0 || path.remote_port == 0))
    return "UDP-encapsulated path with port 0";
  return {};
}

std::string validate_sa_descriptor(const SaDescriptor& d) {
  if (!valid_direction(d.direction)) return "direction " + std::to_string(int(d.direction)) + " unknown";
  if (static_cast<int>(d.algorithm) >= shared::kEspAlgorithmCount)
    return "algorithm " + std::to_string(int(d.algorithm)) + " unknown";
  if (d.spi < shared::kMinimumSpi) return "SPI " + hex_spi(d.spi) + " is reserved (< 256, RFC 4303 2.1)";
  if (d.direction == SaDirection::kInbound &&
      (d.replay_window < shared::kMinReplayWindow || d.replay_window > shared::kMaxReplayWindow))
    return "replay_window " + std::to_string(d.replay_window) + " outside [" +
           std::to_string(shared::kMinReplayWindow) + ", " + std::to_string(shared::kMaxReplayWindow) + "]";
  if (d.local_selector_count > shared::kMaxSelectors || d.remote_selector_count > shared::kMaxSelectors)
    return "more than " + std::to_string(shared::kMaxSelectors) + " selectors";
  if (d.direction == SaDirection::kOutbound && d.remote_selector_count == 0)
    return "outbound SA without remote selectors has no route";
  for (int i = 0; i < d.local_selector_count; ++i)
    if (auto why = validate_selector(d.local_selectors[i]); !why.empty()) return "local " + why;
  for (int i = 0; i < d.remote_selector_count; ++i)
    if (auto why = validate_selector(d.remote_selectors[i]); !why.empty()) return "remote " + why;
  if (auto why = validate_path(d.path); !why.empty()) return why;
  const auto& lifetime = d.lifetime;
  if ((lifetime.hard_bytes && lifetime.soft_bytes > lifetime.hard_bytes) ||
      (lifetime.hard_packets && lifetime.soft_packets > lifetime.hard_packets))
    return "soft lifetime beyond the hard one";
  return {};
}

Completion CommandExecutor::fail(const Command& command, CompletionCode code, std::string why, uint32_t detail) {
  last_error_ = std::string(shared::channel::to_string(command.kind)) + " request " +
                std::to_string(command.request_id) + ": " + shared::channel::to_string(code) + ": " + why;
  return shared::channel::make_completion(command, code, detail);
}

Completion CommandExecutor::execute(Command& command, uint64_t control_generation, uint64_t now_ns) {
  // Whatever happens below, no key outlives this call in the Command.
  struct Wipe {
    Command& command;
    ~Wipe() { shared::channel::zeroise_keys(command); }
  } wipe{command};
  if (command.version != shared::channel::kMessageVersion)
    return fail(command, CompletionCode::kUnsupportedVersion,
                "message version " + std::to_string(command.version) + ", expected " +
                    std::to_string(shared::channel::kMessageVersion));
  if (command.control_generation != control_generation)
    return fail(command, CompletionCode::kStaleGeneration,
                "sent by control generation " + std::to_string(command.control_generation) + ", attached is " +
                    std::to_string(control_generation));
  switch (command.kind) {
    case CommandKind::kInstallSa: return install(command, now_ns);
    case CommandKind::kRemoveSa: return remove(command);
    case CommandKind::kUpdatePath: return update_path(command, now_ns);
    case CommandKind::kUpdateSelectors: return update_selectors(command);
    case CommandKind::kBarrier: return shared::channel::make_completion(command, CompletionCode::kOk);
  }
  return fail(command, CompletionCode::kUnknownCommand, "kind " + std::to_string(int(command.kind)) + " unknown");
}

Completion CommandExecutor::install(Command& command, uint64_t now_ns) {
  shared::channel::InstallSaPayload payload;
  (void)shared::channel::decode_payload(command, payload);
  shared::channel::zeroise_keys(command);  // the copy in `payload` is the only one now
  struct Wipe {
    shared::channel::InstallSaPayload& payload;
    ~Wipe() { shared::channel::zeroise_keys(payload); }
  } wipe{payload};
  SaDescriptor& d = payload.sa;
  d.name.back() = '\0';  // untrusted label: always terminated
  if (auto why = validate_sa_descriptor(d); !why.empty())
    return fail(command, CompletionCode::kBadParameters, "SA " + hex_spi(d.spi) + ": " + why);
  if (tables_.find(d.spi, d.direction) != nullptr)
    return fail(command, CompletionCode::kDuplicateSpi,
                std::string(shared::to_string(d.direction)) + " SPI " + hex_spi(d.spi) + " is installed");
  if (!inventory_.has_room())
    return fail(command, CompletionCode::kTableFull, "SA inventory full", tables_.capacity());
  if (d.direction == SaDirection::kInbound) {
    if (const auto* slot = tables_.inbound_slot(d.spi); slot->load(std::memory_order_relaxed) != nullptr)
      return fail(command, CompletionCode::kBadParameters,
                  "inbound SPI " + hex_spi(d.spi) + ": its table index (low " + std::to_string(tables_.index_bits()) +
                      " bits) is taken by another SPI");
  } else if (tables_.outbound_count() >= tables_.capacity()) {
    return fail(command, CompletionCode::kTableFull, "outbound SA table full", tables_.capacity());
  }
  if (const Tunnel* tunnel = tables_.tunnel(d.tunnel_id)) {
    if (!(tunnel->path.load(std::memory_order_relaxed)->descriptor == d.path))
      return fail(command, CompletionCode::kBadParameters,
                  "tunnel " + std::to_string(d.tunnel_id) + " already has another path (move it with update_path)");
  }
  shared::Status status = tables_.install(d);
  if (!status) {
    // Left: memory and route-table exhaustion (the checks above cover the rest).
    return fail(command, CompletionCode::kTableFull, status.error(), tables_.capacity());
  }
  const EspSa* sa = tables_.find(d.spi, d.direction);
  inventory_.on_install(*sa, d.lifetime, d.replay_window, now_ns);
  return shared::channel::make_completion(command, CompletionCode::kOk, sa->table_index);
}

Completion CommandExecutor::remove(const Command& command) {
  shared::channel::RemoveSaPayload payload;
  (void)shared::channel::decode_payload(command, payload);
  if (!valid_direction(payload.direction))
    return fail(command, CompletionCode::kBadParameters, "direction " + std::to_string(int(payload.direction)) + " unknown");
  if (tables_.find(payload.spi, payload.direction) == nullptr)
    return fail(command, CompletionCode::kUnknownSa,
                std::string("no ") + shared::to_string(payload.direction) + " SA with SPI " + hex_spi(payload.spi));
  shared::Status status = tables_.remove(payload.spi, payload.direction);
  if (!status) return fail(command, CompletionCode::kInternalError, status.error());
  inventory_.on_remove(payload.spi, payload.direction);
  return shared::channel::make_completion(command, CompletionCode::kOk);
}

Completion CommandExecutor::update_path(const Command& command, uint64_t now_ns) {
  shared::channel::UpdatePathPayload payload;
  (void)shared::channel::decode_payload(command, payload);
  if (auto why = validate_path(payload.path); !why.empty())
    return fail(command, CompletionCode::kBadParameters, "tunnel " + std::to_string(payload.tunnel_id) + ": " + why);
  if (tables_.tunnel(payload.tunnel_id) == nullptr)
    return fail(command, CompletionCode::kUnknownTunnel, "no tunnel " + std::to_string(payload.tunnel_id));
  uint64_t current = inventory_.path_generation(payload.tunnel_id);
  if (payload.path_generation != 0 && payload.path_generation <= current)
    return fail(command, CompletionCode::kStalePath,
                "tunnel " + std::to_string(payload.tunnel_id) + ": path generation " +
                    std::to_string(payload.path_generation) + " is not above " + std::to_string(current));
  shared::Status status = tables_.path_update(payload.tunnel_id, payload.path);
  if (!status) return fail(command, CompletionCode::kTableFull, status.error());
  inventory_.on_path_update(payload.tunnel_id, payload.path_generation != 0 ? payload.path_generation : current + 1,
                            now_ns);
  return shared::channel::make_completion(command, CompletionCode::kOk);
}

Completion CommandExecutor::update_selectors(const Command& command) {
  shared::channel::UpdateSelectorsPayload payload;
  (void)shared::channel::decode_payload(command, payload);
  if (!valid_direction(payload.direction))
    return fail(command, CompletionCode::kBadParameters, "direction " + std::to_string(int(payload.direction)) + " unknown");
  if (payload.local_selector_count > shared::kMaxSelectors || payload.remote_selector_count > shared::kMaxSelectors)
    return fail(command, CompletionCode::kBadParameters,
                "SA " + hex_spi(payload.spi) + ": more than " + std::to_string(shared::kMaxSelectors) + " selectors");
  if (payload.direction == SaDirection::kOutbound && payload.remote_selector_count == 0)
    return fail(command, CompletionCode::kBadParameters,
                "SA " + hex_spi(payload.spi) + ": outbound SA without remote selectors has no route");
  for (int i = 0; i < payload.local_selector_count; ++i)
    if (auto why = validate_selector(payload.local_selectors[i]); !why.empty())
      return fail(command, CompletionCode::kBadParameters, "SA " + hex_spi(payload.spi) + ": local " + why);
  for (int i = 0; i < payload.remote_selector_count; ++i)
    if (auto why = validate_selector(payload.remote_selectors[i]); !why.empty())
      return fail(command, CompletionCode::kBadParameters, "SA " + hex_spi(payload.spi) + ": remote " + why);
  if (tables_.find(payload.spi, payload.direction) == nullptr)
    return fail(command, CompletionCode::kUnknownSa,
                std::string("no ") + shared::to_string(payload.direction) + " SA with SPI " + hex_spi(payload.spi));
  shared::Status status =
      tables_.update_selectors(payload.spi, payload.direction, payload.local_selectors.data(),
                               payload.local_selector_count, payload.remote_selectors.data(),
                               payload.remote_selector_count);
  if (!status) return fail(command, CompletionCode::kTableFull, status.error());
  inventory_.on_selectors_update(payload.spi, payload.direction);
  return shared::channel::make_completion(command, CompletionCode::kOk);
}

}  // namespace segw::dp
