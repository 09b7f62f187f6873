// The messages that cross the shared-memory channel, one type per ring:
// Command (control -> data), Completion and Event (data -> control),
// PuntPacket (data -> control) and InjectPacket (control -> data).
//
// Every message is trivially copyable, has a fixed size pinned by a
// static_assert and starts with a 16-bit format version. Changing a message's
// size or field order changes the region layout: bump kLayoutVersion
// (region.h) so that a process built from older sources refuses to attach.
// kMessageVersion lets a consumer refuse one message it does not understand
// (CompletionCode::kUnsupportedVersion) without refusing the whole region.
//
// Key material and who wipes it:
//   - Only Command{kInstallSa} carries keys (InstallSaPayload::sa).
//   - The control plane builds the Command in its own memory, pushes it, and
//     wipes its copy with zeroise_keys(Command&) at once.
//   - The data plane pops install commands with pop_commands(), which wipes
//     each ring slot after copying it out and before handing the slot back,
//     so keys never linger in shared memory; a data plane that reads slots in
//     place (peek()) calls zeroise_keys() on each slot before release().
//   - The data plane wipes its own copies (the Command, the decoded
//     InstallSaPayload) with zeroise_keys() once the keys are expanded into
//     its crypto contexts.
//   - Region destruction by the data plane also wipes the command ring's
//     slots (region.h), for commands it never consumed.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "shared/channel/spsc_ring.h"
#include "shared/ip_address.h"
#include "shared/sa_descriptor.h"

namespace segw::shared::channel {

// Version of the message formats below; a consumer answers a Command of any
// other version with kUnsupportedVersion and ignores other messages of it.
inline constexpr uint16_t kMessageVersion = 1;

// ------------------------------------------------------------------ commands

#define SEGW_COMMAND_KINDS(X)                                                            \
  X(kInstallSa, 1, "install_sa", "install one inbound or outbound SA")                   \
  X(kRemoveSa, 2, "remove_sa", "remove the SA with this SPI and direction")              \
  X(kUpdatePath, 3, "update_path", "publish a new outer path for every SA of a tunnel")  \
  X(kUpdateSelectors, 4, "update_selectors", "replace an SA's traffic selectors (routes)") \
  X(kBarrier, 5, "barrier", "no effect: its completion says every earlier command is done")

// Numbered explicitly: the value crosses the channel.
enum class CommandKind : uint16_t {
#define SEGW_COMMAND_ENUM(id, value, name, description) id = value,
  SEGW_COMMAND_KINDS(SEGW_COMMAND_ENUM)
#undef SEGW_COMMAND_ENUM
};

// "unknown" for a value no build of ours sends (it came from elsewhere).
const char* to_string(CommandKind kind);
const char* describe(CommandKind kind);

// Payloads: one per CommandKind, each names its kind.
struct InstallSaPayload {
  static constexpr CommandKind kKind = CommandKind::kInstallSa;
  SaDescriptor sa;  // holds keys: see "Key material" above
};

struct RemoveSaPayload {
  static constexpr CommandKind kKind = CommandKind::kRemoveSa;
  uint32_t spi = 0;
  SaDirection direction = SaDirection::kInbound;
};

struct UpdatePathPayload {
  static constexpr CommandKind kKind = CommandKind::kUpdatePath;
  uint32_t tunnel_id = 0;
  // Chosen by the control plane, strictly increasing per tunnel: the data
  // plane refuses an update not newer than the path it has (kStalePath), so
  // a late duplicate can never move a tunnel back; tests check publication
  // order with it.
  uint64_t path_generation = 0;
  PathDescriptor path;
};

struct UpdateSelectorsPayload {
  static constexpr CommandKind kKind = CommandKind::kUpdateSelectors;
  uint32_t spi = 0;
  SaDirection direction = SaDirection::kOutbound;
  uint8_t local_selector_count = 0;
  uint8_t remote_selector_count = 0;
  std::array<TrafficSelector, kMaxSelectors> local_selectors{};
  std::array<TrafficSelector, kMaxSelectors> remote_selectors{};
};

struct BarrierPayload {
  static constexpr CommandKind kKind = CommandKind::kBarrier;
};

// Room for the largest payload (InstallSaPayload), a multiple of 8.
inline constexpr size_t kCommandPayloadBytes = (sizeof(InstallSaPayload) + 7) / 8 * 8;

template <typename P>
concept CommandPayload = std::is_trivially_copyable_v<P> && sizeof(P) <= kCommandPayloadBytes &&
                         requires {
                           { P::kKind } -> std::convertible_to<CommandKind>;
                         };

// One request from the control plane. The payload is stored as bytes and
// copied in and out with memcpy (make_command / decode_payload), which is
// defined for any trivially copyable payload whichever process wrote it.
struct Command {
  uint16_t version = kMessageVersion;
  CommandKind kind = CommandKind::kBarrier;
  uint32_t reserved = 0;
  uint64_t request_id = 0;          // chosen by the control plane, echoed in the Completion
  // The sender's control-plane generation in the region (Region::own_generation()).
  // The data plane answers kStaleGeneration to a command from an earlier
  // control plane that was left in the ring, so it can never take effect.
  uint64_t control_generation = 0;
  alignas(8) std::array<std::byte, kCommandPayloadBytes> payload{};
};

template <CommandPayload P>
Command make_command(uint64_t request_id, uint64_t control_generation, const P& payload) {
  Command command;
  command.kind = P::kKind;
  command.request_id = request_id;
  command.control_generation = control_generation;
  std::memcpy(command.payload.data(), &payload, sizeof(P));
  return command;
}

// Copies the payload out when the command is of P's kind; false (and `out`
// untouched) otherwise. The version is the caller's to check first.
template <CommandPayload P>
bool decode_payload(const Command& command, P& out) {
  if (command.kind != P::kKind) return false;
  std::memcpy(static_cast<void*>(&out), command.payload.data(), sizeof(P));
  return true;
}

// Wipes the key material of an install command (the whole payload, in a way
// the compiler may not elide); other kinds carry no keys and are left as
// they are, so wiping is free for path updates.
void zeroise_keys(Command& command);
void zeroise_keys(InstallSaPayload& payload);

// Consumer side of the command ring (data plane only): pops up to
// out.size() commands, oldest first, wiping each install command's slot in
// the ring after copying it out and before giving the slot back. Returns the
// number popped. The caller still owns and wipes the copies in `out`.
size_t pop_commands(SpscRing<Command>& ring, std::span<Command> out);

// --------------------------------------------------------------- completions

#define SEGW_COMPLETION_CODES(X)                                                            \
  X(kOk, 0, "ok", "done")                                                                   \
  X(kBadParameters, 1, "bad_parameters", "a field is out of range or inconsistent")        \
  X(kDuplicateSpi, 2, "duplicate_spi", "an SA with this SPI and direction already exists") \
  X(kTableFull, 3, "table_full", "no room for another SA, tunnel or route")                \
  X(kUnknownSa, 4, "unknown_sa", "no SA with this SPI and direction")                      \
  X(kUnknownTunnel, 5, "unknown_tunnel", "no tunnel with this id")                         \
  X(kUnsupportedVersion, 6, "unsupported_version", "message version not understood")       \
  X(kUnknownCommand, 7, "unknown_command", "command kind not understood")                  \
  X(kStaleGeneration, 8, "stale_generation",                                                \
    "sent by an earlier control plane generation: ignored")                                 \
  X(kStalePath, 9, "stale_path", "path generation not newer than the tunnel's current path") \
  X(kInternalError, 10, "internal_error", "the data plane failed; see its log")

enum class CompletionCode : uint16_t {
#define SEGW_COMPLETION_ENUM(id, value, name, description) id = value,
  SEGW_COMPLETION_CODES(SEGW_COMPLETION_ENUM)
#undef SEGW_COMPLETION_ENUM
};

const char* to_string(CompletionCode code);
const char* describe(CompletionCode code);

// The data plane's answer to one Command. A command that fails changes
// nothing (issue 3): the code says why.
struct Completion {
  uint16_t version = kMessageVersion;
  CommandKind kind = CommandKind::kBarrier;  // echo of the command's kind
  CompletionCode code = CompletionCode::kOk;
  uint16_t reserved = 0;
  // Code-specific: for kOk on install, the SA's table index; for
  // kTableFull, the table's capacity; otherwise 0.
  uint32_t detail = 0;
  uint32_t reserved2 = 0;
  uint64_t request_id = 0;          // echo
  uint64_t control_generation = 0;  // echo
};

Completion make_completion(const Command& command, CompletionCode code, uint32_t detail = 0);

// ------------------------------------------------------------------- events

#define SEGW_EVENT_KINDS(X)                                                                   \
  X(kNewSourceAddress, 1, "new_source_address",                                                \
    "inbound packet passed ICV and replay checks from an outer address/port that is not the " \
    "SA's path (the data plane does not move the SA)")                                         \
  X(kSoftLifetime, 2, "soft_lifetime", "soft byte or packet lifetime reached: rekey")          \
  X(kHardLifetime, 3, "hard_lifetime", "hard byte or packet lifetime reached: SA stopped")     \
  X(kSequenceNearExhaustion, 4, "sequence_near_exhaustion",                                    \
    "outbound sequence number close to its limit: rekey")                                      \
  X(kSaIdle, 5, "sa_idle", "no inbound packet for the configured idle time")                   \
  X(kError, 6, "error", "data plane fault; see DataPlaneError")

enum class EventKind : uint16_t {
#define SEGW_EVENT_ENUM(id, value, name, description) id = value,
  SEGW_EVENT_KINDS(SEGW_EVENT_ENUM)
#undef SEGW_EVENT_ENUM
};

const char* to_string(EventKind kind);
const char* describe(EventKind kind);

#define SEGW_DATA_PLANE_ERRORS(X)                                                      \
  X(kNone, 0, "none", "no error")                                                      \
  X(kMbufPoolExhausted, 1, "mbuf_pool_exhausted", "no packet buffers left")           \
  X(kPuntRingFull, 2, "punt_ring_full", "IKE packets dropped: punt ring full")        \
  X(kCryptoFailure, 3, "crypto_failure", "crypto library failed an SA's jobs")        \
  X(kPortDown, 4, "port_down", "a port lost its link")                                 \
  X(kInternal, 5, "internal", "unexpected fault; see the data plane log")

enum class DataPlaneError : uint16_t {
#define SEGW_DATA_PLANE_ERROR_ENUM(id, value, name, description) id = value,
  SEGW_DATA_PLANE_ERRORS(SEGW_DATA_PLANE_ERROR_ENUM)
#undef SEGW_DATA_PLANE_ERROR_ENUM
};

const char* to_string(DataPlaneError error);
const char* describe(DataPlaneError error);

// An outer address and UDP port.
struct OuterEndpoint {
  IpAddress address;
  uint16_t port = 0;
  friend bool operator==(const OuterEndpoint&, const OuterEndpoint&) = default;
};

// Something the control plane must know about an SA. Rate-limited per SA
// and kind by the data plane; `suppressed` counts what it held back.
// Fields beyond the common ones are meaningful for the kinds named beside
// them and zero otherwise.
struct Event {
  uint16_t version = kMessageVersion;
  EventKind kind = EventKind::kError;
  SaDirection direction = SaDirection::kInbound;
  uint8_t reserved = 0;
  DataPlaneError error = DataPlaneError::kNone;  // kError
  uint32_t spi = 0;                 // 0 for errors not tied to an SA
  uint32_t tunnel_id = 0;
  uint64_t timestamp_ns = 0;        // CLOCK_MONOTONIC when seen: one clock for both processes
  uint64_t suppressed = 0;          // same kind, same SA, held back since the previous event
  OuterEndpoint current_remote;     // kNewSourceAddress: the SA's path now
  OuterEndpoint new_remote;         // kNewSourceAddress: where the packet came from
  uint64_t bytes = 0;               // lifetimes, idle: SA byte count when raised
  uint64_t packets = 0;             // lifetimes, idle: SA packet count when raised
  uint64_t sequence_number = 0;     // kSequenceNearExhaustion: last one used
  uint64_t idle_ns = 0;             // kSaIdle: time since the last inbound packet
  uint64_t error_detail = 0;        // kError: error-specific (e.g. port id)
};

// ------------------------------------------------------------- IKE packets

// Largest IKE message carried in one slot. Bigger messages are what IKE
// fragmentation (RFC 7383) exists for; the data plane drops and counts
// anything larger instead of truncating it.
inline constexpr size_t kMaxIkePacketBytes = 2048;

// An IKE packet the data plane received (UDP/500, or UDP/4500 with the
// non-ESP marker), for the control plane.
struct PuntPacket {
  uint16_t version = kMessageVersion;
  uint16_t port_id = 0;          // DPDK port it arrived on
  uint16_t length = 0;           // bytes used in `bytes`
  uint16_t reserved = 0;
  OuterEndpoint source;          // the peer as seen here (after any NAT)
  OuterEndpoint destination;     // our address and port (500 or 4500)
  uint64_t arrival_time_ns = 0;  // CLOCK_MONOTONIC at receive
  // The IKE message from its header on: the RFC 3948 2.2 non-ESP marker of a
  // 4500 packet is removed (destination.port says it was there).
  std::array<uint8_t, kMaxIkePacketBytes> bytes{};

  // Copies `message` in; false (nothing changed) when it does not fit.
  bool assign(std::span<const uint8_t> message);
  // The used bytes; never past the array, whatever `length` says.
  std::span<const uint8_t> message() const;
};

// An IKE packet the control plane wants sent out of an access port. The
// data plane builds the outer IP and UDP headers from these fields.
struct InjectPacket {
  uint16_t version = kMessageVersion;
  uint16_t port_id = 0;          // DPDK port to send from (the access port)
  uint16_t length = 0;           // bytes used in `bytes`
  // RFC 3948 2.2: IKE on UDP/4500 starts with four zero bytes so the receiver
  // tells it from ESP. True: the data plane prepends them.
  bool non_esp_marker = false;
  uint8_t reserved = 0;
  OuterEndpoint source;          // our address and port
  OuterEndpoint destination;     // the peer's (NAT-translated) address and port
  std::array<uint8_t, kMaxIkePacketBytes> bytes{};  // the IKE message, without marker

  bool assign(std::span<const uint8_t> message);
  std::span<const uint8_t> message() const;
};

// Sizes are part of the layout (kLayoutVersion): a change here must be a
// conscious one.
static_assert(sizeof(SaDescriptor) == 832, "SaDescriptor changed: bump kLayoutVersion");
static_assert(kCommandPayloadBytes == 832);
static_assert(sizeof(Command) == 856, "Command changed: bump kLayoutVersion");
static_assert(sizeof(Completion) == 32, "Completion changed: bump kLayoutVersion");
static_assert(sizeof(Event) == 112, "Event changed: bump kLayoutVersion");
static_assert(sizeof(PuntPacket) == 2104, "PuntPacket changed: bump kLayoutVersion");
static_assert(sizeof(InjectPacket) == 2096, "InjectPacket changed: bump kLayoutVersion");
static_assert(RingMessage<Command> && RingMessage<Completion> && RingMessage<Event> &&
              RingMessage<PuntPacket> && RingMessage<InjectPacket>);
static_assert(CommandPayload<InstallSaPayload> && CommandPayload<RemoveSaPayload> &&
              CommandPayload<UpdatePathPayload> && CommandPayload<UpdateSelectorsPayload> &&
              CommandPayload<BarrierPayload>);

}  // namespace segw::shared::channel
