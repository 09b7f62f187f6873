// Unit tests for shared/channel/messages.h: every payload survives a trip
// through a ring, kinds do not cross, names exist for every value, and
// install commands leave no key bytes behind in the ring or in copies.
#include "shared/channel/messages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/shared/channel_test_support.h"
#include "tests/unit/shared/test_printers.h"

namespace segw::shared::channel {
namespace {

using shared::testing::address;
using testing::RingMemory;

SaDescriptor sample_sa() {
  SaDescriptor sa;
  sa.spi = 0x1000'0001;
  sa.direction = SaDirection::kOutbound;
  sa.algorithm = EspAlgorithm::kAesCbc256HmacSha256;
  sa.esn = true;
  sa.replay_window = 1024;
  sa.tunnel_id = 77;
  for (size_t i = 0; i < sa.cipher_key.size(); ++i) sa.cipher_key[i] = uint8_t(0xa0 + i);
  for (size_t i = 0; i < sa.integrity_key.size(); ++i) sa.integrity_key[i] = uint8_t(0x50 + i);
  sa.salt = {0xde, 0xad, 0xbe, 0xef};
  sa.path.local = address("192.0.2.1");
  sa.path.remote = address("2001:db8::77");
  sa.path.local_port = 4500;
  sa.path.remote_port = 61000;
  sa.local_selectors[0] = TrafficSelector::from_prefix(shared::testing::prefix("10.0.0.0/8"));
  sa.remote_selectors[0] = TrafficSelector::from_prefix(shared::testing::prefix("172.16.5.0/24"));
  sa.local_selector_count = 1;
  sa.remote_selector_count = 1;
  sa.lifetime.soft_bytes = 1u << 30;
  sa.lifetime.hard_bytes = 1u << 31;
  sa.set_name("femto-17");
  return sa;
}

// True when `needle` (the key) occurs anywhere in `haystack`.
bool contains_bytes(const std::byte* haystack, size_t length, const uint8_t* needle,
                    size_t needle_length) {
  auto* begin = reinterpret_cast<const uint8_t*>(haystack);
  return std::search(begin, begin + length, needle, needle + needle_length) != begin + length;
}

TEST(ChannelMessagesTest, EveryMessageIsTriviallyCopyableAndVersioned) {
  static_assert(std::is_trivially_copyable_v<Command>);
  static_assert(std::is_trivially_copyable_v<Completion>);
  static_assert(std::is_trivially_copyable_v<Event>);
  static_assert(std::is_trivially_copyable_v<PuntPacket>);
  static_assert(std::is_trivially_copyable_v<InjectPacket>);
  EXPECT_EQ(Command{}.version, kMessageVersion);
  EXPECT_EQ(Completion{}.version, kMessageVersion);
  EXPECT_EQ(Event{}.version, kMessageVersion);
  EXPECT_EQ(PuntPacket{}.version, kMessageVersion);
  EXPECT_EQ(InjectPacket{}.version, kMessageVersion);
  // The version is the first field of each, so a reader can check it before
  // trusting anything else.
  EXPECT_EQ(offsetof(Command, version), 0u);
  EXPECT_EQ(offsetof(Completion, version), 0u);
  EXPECT_EQ(offsetof(Event, version), 0u);
  EXPECT_EQ(offsetof(PuntPacket, version), 0u);
  EXPECT_EQ(offsetof(InjectPacket, version), 0u);
}

TEST(ChannelMessagesTest, InstallSaRoundTripsThroughARing) {
  RingMemory<Command> memory(4);
  SaDescriptor sa = sample_sa();
  Command sent = make_command(41, 3, InstallSaPayload{sa});
  ASSERT_TRUE(memory.ring().try_push(sent));
  Command received;
  ASSERT_TRUE(memory.ring().try_pop(received));
  EXPECT_EQ(received.version, kMessageVersion);
  EXPECT_EQ(received.kind, CommandKind::kInstallSa);
  EXPECT_EQ(received.request_id, 41u);
  EXPECT_EQ(received.control_generation, 3u);
  InstallSaPayload payload;
  ASSERT_TRUE(decode_payload(received, payload));
  EXPECT_EQ(payload.sa.spi, sa.spi);
  EXPECT_EQ(payload.sa.direction, sa.direction);
  EXPECT_EQ(payload.sa.algorithm, sa.algorithm);
  EXPECT_EQ(payload.sa.esn, sa.esn);
  EXPECT_EQ(payload.sa.replay_window, sa.replay_window);
  EXPECT_EQ(payload.sa.tunnel_id, sa.tunnel_id);
  EXPECT_EQ(payload.sa.cipher_key, sa.cipher_key);
  EXPECT_EQ(payload.sa.integrity_key, sa.integrity_key);
  EXPECT_EQ(payload.sa.salt, sa.salt);
  EXPECT_EQ(payload.sa.path, sa.path);
  EXPECT_EQ(payload.sa.local_selectors, sa.local_selectors);
  EXPECT_EQ(payload.sa.remote_selectors, sa.remote_selectors);
  EXPECT_EQ(payload.sa.local_selector_count, 1);
  EXPECT_EQ(payload.sa.lifetime.hard_bytes, sa.lifetime.hard_bytes);
  EXPECT_EQ(payload.sa.name_view(), "femto-17");
  // A payload of another kind does not decode, and leaves `out` alone.
  RemoveSaPayload remove{};
  remove.spi = 12345;
  EXPECT_FALSE(decode_payload(received, remove));
  EXPECT_EQ(remove.spi, 12345u);
}

TEST(ChannelMessagesTest, RemovePathAndSelectorCommandsRoundTrip) {
  RingMemory<Command> memory(4);
  RemoveSaPayload remove;
  remove.spi = 0xabcdef;
  remove.direction = SaDirection::kOutbound;
  UpdatePathPayload path_update;
  path_update.tunnel_id = 9;
  path_update.path_generation = 123456789012ull;
  path_update.path.local = address("198.51.100.1");
  path_update.path.remote = address("203.0.113.9");
  path_update.path.remote_port = 33333;
  path_update.path.udp_encapsulation = false;
  UpdateSelectorsPayload selectors;
  selectors.spi = 0x2222;
  selectors.local_selector_count = 2;
  selectors.local_selectors[1] = TrafficSelector::from_prefix(shared::testing::prefix("fd00::/64"));
  selectors.local_selectors[1].protocol = 17;
  selectors.local_selectors[1].port_start = 2152;
  selectors.local_selectors[1].port_end = 2152;

  std::array<Command, 4> batch{make_command(1, 5, remove), make_command(2, 5, path_update),
                               make_command(3, 5, selectors), make_command(4, 5, BarrierPayload{})};
  ASSERT_EQ(memory.ring().push_burst(batch), 4u);
  std::array<Command, 4> out{};
  ASSERT_EQ(memory.ring().pop_burst(out), 4u);

  RemoveSaPayload got_remove;
  ASSERT_TRUE(decode_payload(out[0], got_remove));
  EXPECT_EQ(got_remove.spi, remove.spi);
  EXPECT_EQ(got_remove.direction, SaDirection::kOutbound);
  UpdatePathPayload got_path;
  ASSERT_TRUE(decode_payload(out[1], got_path));
  EXPECT_EQ(got_path.tunnel_id, 9u);
  EXPECT_EQ(got_path.path_generation, 123456789012ull);
  EXPECT_EQ(got_path.path, path_update.path);
  UpdateSelectorsPayload got_selectors;
  ASSERT_TRUE(decode_payload(out[2], got_selectors));
  EXPECT_EQ(got_selectors.local_selectors, selectors.local_selectors);
  EXPECT_EQ(got_selectors.local_selector_count, 2);
  BarrierPayload barrier;
  EXPECT_TRUE(decode_payload(out[3], barrier));
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(out[i].request_id, i + 1);
}

TEST(ChannelMessagesTest, CompletionEchoesTheCommand) {
  Command command = make_command(0xfeedull, 12, RemoveSaPayload{});
  Completion completion = make_completion(command, CompletionCode::kUnknownSa, 7);
  EXPECT_EQ(completion.request_id, 0xfeedull);
  EXPECT_EQ(completion.control_generation, 12u);
  EXPECT_EQ(completion.kind, CommandKind::kRemoveSa);
  EXPECT_EQ(completion.code, CompletionCode::kUnknownSa);
  EXPECT_EQ(completion.detail, 7u);

  RingMemory<Completion> memory(2);
  ASSERT_TRUE(memory.ring().try_push(completion));
  Completion received;
  ASSERT_TRUE(memory.ring().try_pop(received));
  EXPECT_EQ(std::memcmp(&received, &completion, sizeof(Completion)), 0);
}

TEST(ChannelMessagesTest, EventsAndPacketsRoundTrip) {
  Event event;
  event.kind = EventKind::kNewSourceAddress;
  event.spi = 0x4242;
  event.tunnel_id = 5;
  event.timestamp_ns = 987654321;
  event.current_remote = {address("203.0.113.1"), 4500};
  event.new_remote = {address("203.0.113.1"), 1031};
  event.suppressed = 3;
  RingMemory<Event> events(2);
  ASSERT_TRUE(events.ring().try_push(event));
  Event got_event;
  ASSERT_TRUE(events.ring().try_pop(got_event));
  EXPECT_EQ(got_event.kind, EventKind::kNewSourceAddress);
  EXPECT_EQ(got_event.current_remote, event.current_remote);
  EXPECT_EQ(got_event.new_remote, event.new_remote);
  EXPECT_EQ(got_event.suppressed, 3u);
  EXPECT_EQ(got_event.timestamp_ns, 987654321u);

  std::vector<uint8_t> ike(300);
  for (size_t i = 0; i < ike.size(); ++i) ike[i] = uint8_t(i * 7);
  PuntPacket punt;
  punt.port_id = 1;
  punt.source = {address("203.0.113.1"), 1031};
  punt.destination = {address("192.0.2.1"), 4500};
  punt.arrival_time_ns = 55;
  ASSERT_TRUE(punt.assign(ike));
  RingMemory<PuntPacket> punts(2);
  ASSERT_TRUE(punts.ring().try_push(punt));
  PuntPacket got_punt;
  ASSERT_TRUE(punts.ring().try_pop(got_punt));
  EXPECT_EQ(got_punt.source, punt.source);
  EXPECT_EQ(got_punt.destination, punt.destination);
  EXPECT_EQ(got_punt.arrival_time_ns, 55u);
  EXPECT_TRUE(std::ranges::equal(got_punt.message(), ike));

  InjectPacket inject;
  inject.non_esp_marker = true;
  inject.source = {address("192.0.2.1"), 4500};
  inject.destination = {address("203.0.113.1"), 1031};
  ASSERT_TRUE(inject.assign(ike));
  RingMemory<InjectPacket> injects(2);
  ASSERT_TRUE(injects.ring().try_push(inject));
  InjectPacket got_inject;
  ASSERT_TRUE(injects.ring().try_pop(got_inject));
  EXPECT_TRUE(got_inject.non_esp_marker);
  EXPECT_EQ(got_inject.destination, inject.destination);
  EXPECT_TRUE(std::ranges::equal(got_inject.message(), ike));
}

TEST(ChannelMessagesTest, PacketsRefuseOversizeMessagesAndNeverReadPastTheArray) {
  std::vector<uint8_t> too_big(kMaxIkePacketBytes + 1, 0x11);
  PuntPacket punt;
  ASSERT_TRUE(punt.assign(std::vector<uint8_t>(10, 0x22)));
  EXPECT_FALSE(punt.assign(too_big));
  EXPECT_EQ(punt.message().size(), 10u) << "a refused assign changes nothing";
  EXPECT_TRUE(punt.assign(std::vector<uint8_t>(kMaxIkePacketBytes, 0x33)));
  EXPECT_EQ(punt.message().size(), kMaxIkePacketBytes);
  // A length from a confused peer is clamped.
  punt.length = 60000;
  EXPECT_EQ(punt.message().size(), kMaxIkePacketBytes);
  InjectPacket inject;
  EXPECT_FALSE(inject.assign(too_big));
  inject.length = 65535;
  EXPECT_EQ(inject.message().size(), kMaxIkePacketBytes);
}

TEST(ChannelMessagesTest, EveryValueHasAUniqueNameAndADescription) {
  std::set<std::string> names;
#define SEGW_CHECK_COMMAND(id, value, name, description)                    \
  EXPECT_STREQ(to_string(CommandKind::id), name);                          \
  EXPECT_STRNE(describe(CommandKind::id), "not a command kind of this build"); \
  EXPECT_TRUE(names.insert(std::string("command:") + name).second);
  SEGW_COMMAND_KINDS(SEGW_CHECK_COMMAND)
#undef SEGW_CHECK_COMMAND
#define SEGW_CHECK_CODE(id, value, name, description) \
  EXPECT_STREQ(to_string(CompletionCode::id), name);  \
  EXPECT_TRUE(names.insert(std::string("code:") + name).second);
  SEGW_COMPLETION_CODES(SEGW_CHECK_CODE)
#undef SEGW_CHECK_CODE
#define SEGW_CHECK_EVENT(id, value, name, description) \
  EXPECT_STREQ(to_string(EventKind::id), name);        \
  EXPECT_TRUE(names.insert(std::string("event:") + name).second);
  SEGW_EVENT_KINDS(SEGW_CHECK_EVENT)
#undef SEGW_CHECK_EVENT
#define SEGW_CHECK_ERROR(id, value, name, description) \
  EXPECT_STREQ(to_string(DataPlaneError::id), name);   \
  EXPECT_TRUE(names.insert(std::string("error:") + name).second);
  SEGW_DATA_PLANE_ERRORS(SEGW_CHECK_ERROR)
#undef SEGW_CHECK_ERROR
  EXPECT_STREQ(to_string(CompletionCode::kDuplicateSpi), "duplicate_spi");
  EXPECT_STREQ(describe(CompletionCode::kTableFull), "no room for another SA, tunnel or route");
  // Values from elsewhere print as such instead of as a bare number.
  EXPECT_STREQ(to_string(static_cast<CommandKind>(999)), "unknown");
  EXPECT_STREQ(to_string(static_cast<CompletionCode>(999)), "unknown");
  EXPECT_STREQ(to_string(static_cast<EventKind>(999)), "unknown");
  EXPECT_STREQ(to_string(static_cast<DataPlaneError>(999)), "unknown");
}

TEST(ChannelMessagesTest, ZeroiseKeysWipesInstallCommandsOnly) {
  SaDescriptor sa = sample_sa();
  Command install = make_command(1, 1, InstallSaPayload{sa});
  zeroise_keys(install);
  EXPECT_TRUE(std::all_of(install.payload.begin(), install.payload.end(),
                          [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(install.request_id, 1u) << "the envelope stays readable";

  UpdatePathPayload path_update;
  path_update.tunnel_id = 3;
  Command update = make_command(2, 1, path_update);
  Command before = update;
  zeroise_keys(update);
  EXPECT_EQ(std::memcmp(&update, &before, sizeof(Command)), 0);

  InstallSaPayload payload{sa};
  zeroise_keys(payload);
  EXPECT_EQ(payload.sa.cipher_key, (std::array<uint8_t, kMaxKeyLength>{}));
  EXPECT_EQ(payload.sa.integrity_key, (std::array<uint8_t, kMaxKeyLength>{}));
  EXPECT_EQ(payload.sa.salt, (std::array<uint8_t, 4>{}));
}

TEST(ChannelMessagesTest, PopCommandsLeavesNoKeyBytesInTheRing) {
  RingMemory<Command> memory(4);
  auto& ring = memory.ring();
  SaDescriptor sa = sample_sa();
  // Six commands through four slots: the pops cross the end of the array.
  std::array<Command, 3> first{make_command(1, 1, InstallSaPayload{sa}),
                               make_command(2, 1, InstallSaPayload{sa}),
                               make_command(3, 1, BarrierPayload{})};
  ASSERT_EQ(ring.push_burst(first), 3u);
  std::array<Command, 3> out{};
  ASSERT_EQ(pop_commands(ring, out), 3u);
  std::array<Command, 3> second{make_command(4, 1, InstallSaPayload{sa}),
                                make_command(5, 1, BarrierPayload{}),
                                make_command(6, 1, InstallSaPayload{sa})};
  ASSERT_EQ(ring.push_burst(second), 3u);
  std::array<Command, 8> out2{};
  ASSERT_EQ(pop_commands(ring, out2), 3u);
  EXPECT_TRUE(ring.empty());

  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(out[i].request_id, i + 1);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(out2[i].request_id, i + 4);
  InstallSaPayload copy;
  ASSERT_TRUE(decode_payload(out2[2], copy));
  EXPECT_EQ(copy.sa.cipher_key, sa.cipher_key) << "the consumer's copy keeps the keys";
  zeroise_keys(copy);

  // The ring memory itself holds neither key any more.
  EXPECT_FALSE(contains_bytes(memory.bytes(), memory.size(), sa.cipher_key.data(), 16));
  EXPECT_FALSE(contains_bytes(memory.bytes(), memory.size(), sa.integrity_key.data(), 16));
  // Whereas a plain pop_burst would have left them there.
  ASSERT_TRUE(ring.try_push(make_command(7, 1, InstallSaPayload{sa})));
  Command plain;
  ASSERT_TRUE(ring.try_pop(plain));
  EXPECT_TRUE(contains_bytes(memory.bytes(), memory.size(), sa.cipher_key.data(), 16));
  zeroise_keys(plain);
  secure_zero(sa);
}

}  // namespace
}  // namespace segw::shared::channel
