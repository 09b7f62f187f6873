// Channel messages: names of every kind and code, key wiping, packet copies.
#include "shared/channel/messages.h"

#include <algorithm>

namespace segw::shared::channel {

const char* to_string(CommandKind kind) {
  switch (kind) {
#define SEGW_COMMAND_NAME(id, value, name, description) \
  case CommandKind::id:                                 \
    return name;
    SEGW_COMMAND_KINDS(SEGW_COMMAND_NAME)
#undef SEGW_COMMAND_NAME
  }
  return "unknown";
}

const char* describe(CommandKind kind) {
  switch (kind) {
#define SEGW_COMMAND_DESCRIPTION(id, value, name, description) \
  case CommandKind::id:                                        \
    return description;
    SEGW_COMMAND_KINDS(SEGW_COMMAND_DESCRIPTION)
#undef SEGW_COMMAND_DESCRIPTION
  }
  return "not a command kind of this build";
}

const char* to_string(CompletionCode code) {
  switch (code) {
#define SEGW_COMPLETION_NAME(id, value, name, description) \
  case CompletionCode::id:                                 \
    return name;
    SEGW_COMPLETION_CODES(SEGW_COMPLETION_NAME)
#undef SEGW_COMPLETION_NAME
  }
  return "unknown";
}

const char* describe(CompletionCode code) {
  switch (code) {
#define SEGW_COMPLETION_DESCRIPTION(id, value, name, description) \
  case CompletionCode::id:                                        \
    return description;
    SEGW_COMPLETION_CODES(SEGW_COMPLETION_DESCRIPTION)
#undef SEGW_COMPLETION_DESCRIPTION
  }
  return "not a completion code of this build";
}

const char* to_string(EventKind kind) {
  switch (kind) {
#define SEGW_EVENT_NAME(id, value, name, description) \
  case EventKind::id:                                 \
    return name;
    SEGW_EVENT_KINDS(SEGW_EVENT_NAME)
#undef SEGW_EVENT_NAME
  }
  return "unknown";
}

const char* describe(EventKind kind) {
  switch (kind) {
#define SEGW_EVENT_DESCRIPTION(id, value, name, description) \
  case EventKind::id:                                        \
    return description;
    SEGW_EVENT_KINDS(SEGW_EVENT_DESCRIPTION)
#undef SEGW_EVENT_DESCRIPTION
  }
  return "not an event kind of this build";
}

const char* to_string(DataPlaneError error) {
  switch (error) {
#define SEGW_DATA_PLANE_ERROR_NAME(id, value, name, description) \
  case DataPlaneError::id:                                       \
    return name;
    SEGW_DATA_PLANE_ERRORS(SEGW_DATA_PLANE_ERROR_NAME)
#undef SEGW_DATA_PLANE_ERROR_NAME
  }
  return "unknown";
}

const char* describe(DataPlaneError error) {
  switch (error) {
#define SEGW_DATA_PLANE_ERROR_DESCRIPTION(id, value, name, description) \
  case DataPlaneError::id:                                              \
    return description;
    SEGW_DATA_PLANE_ERRORS(SEGW_DATA_PLANE_ERROR_DESCRIPTION)
#undef SEGW_DATA_PLANE_ERROR_DESCRIPTION
  }
  return "not a data plane error of this build";
}

void zeroise_keys(Command& command) {
  if (command.kind != CommandKind::kInstallSa) return;
  // The whole payload, not just the key fields: a sender with a different
  // idea of the layout (caught by the version checks, but still) cannot
  // leave key bytes behind.
  secure_zero(command.payload.data(), command.payload.size());
}

void zeroise_keys(InstallSaPayload& payload) { secure_zero(payload.sa); }

size_t pop_commands(SpscRing<Command>& ring, std::span<Command> out) {
  size_t popped = 0;
  // Two rounds at most: peek() stops at the end of the slot array.
  while (popped < out.size()) {
    std::span<Command> slots = ring.peek(out.size() - popped);
    if (slots.empty()) break;
    for (Command& slot : slots) {
      out[popped++] = slot;
      zeroise_keys(slot);  // before release(): the producer may reuse the slot after it
    }
    ring.release(slots.size());
  }
  return popped;
}

Completion make_completion(const Command& command, CompletionCode code, uint32_t detail) {
  Completion completion;
  completion.kind = command.kind;
  completion.code = code;
  completion.detail = detail;
  completion.request_id = command.request_id;
  completion.control_generation = command.control_generation;
  return completion;
}

namespace {

template <typename Packet>
bool assign_message(Packet& packet, std::span<const uint8_t> message) {
  if (message.size() > packet.bytes.size()) return false;
  std::copy(message.begin(), message.end(), packet.bytes.begin());
  packet.length = static_cast<uint16_t>(message.size());
  return true;
}

template <typename Packet>
std::span<const uint8_t> message_of(const Packet& packet) {
  // `length` came from the other process: never trust it past the array.
  return {packet.bytes.data(), std::min<size_t>(packet.length, packet.bytes.size())};
}

}  // namespace

bool PuntPacket::assign(std::span<const uint8_t> message) { return assign_message(*this, message); }
std::span<const uint8_t> PuntPacket::message() const { return message_of(*this); }
bool InjectPacket::assign(std::span<const uint8_t> message) {
  return assign_message(*this, message);
}
std::span<const uint8_t> InjectPacket::message() const { return message_of(*this); }

}  // namespace segw::shared::channel
