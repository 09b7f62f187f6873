// ThreadSanitizer stress of the SPSC ring: a producer thread and a consumer
// thread on one ring, every API pair (single, burst, zero-copy), plus the
// command consumer that wipes keys in place, plus a ring inside a real
// region. Built with -fsanitize=thread (tests/unit/shared/meson.build): a
// missing or too weak memory order shows up as a reported data race on the
// slot bytes, which fails the test.
//
// Why threads and not processes: TSan tracks one address space; two
// processes mapping one region are invisible to it. The ring's code is the
// same in both cases (position independent, address-free atomics), so the
// threads exercise exactly the orderings the processes rely on; the
// two-process test (channel_stress_test.cc) covers the mapping itself.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "shared/channel/messages.h"
#include "shared/channel/region.h"
#include "shared/channel/spsc_ring.h"
#include "tests/unit/shared/channel_test_support.h"

namespace segw::shared::channel {
namespace {

using testing::pattern_word;
using testing::RingMemory;

// Several words, so a torn read (part old, part new) is detectable even
// where TSan would not run.
struct Message {
  uint64_t sequence = 0;
  std::array<uint64_t, 7> words{};
};

Message message_for(uint64_t sequence) {
  Message message;
  message.sequence = sequence;
  for (size_t w = 0; w < message.words.size(); ++w) message.words[w] = pattern_word(sequence, w);
  return message;
}

bool intact(const Message& message, uint64_t sequence) {
  if (message.sequence != sequence) return false;
  for (size_t w = 0; w < message.words.size(); ++w) {
    if (message.words[w] != pattern_word(sequence, w)) return false;
  }
  return true;
}

// Under TSan each access costs ~10x: enough messages to wrap a small ring
// tens of thousands of times, few enough to finish in seconds.
constexpr uint64_t kMessages = 300'000;

// Producer: cycles through try_push, push_burst and claim/publish.
void produce(SpscRing<Message>& ring, uint64_t count) {
  uint64_t next = 0;
  std::array<Message, 8> burst;
  while (next < count) {
    bool progressed = false;
    switch (next % 3) {
      case 0:
        if (ring.try_push(message_for(next))) {
          ++next;
          progressed = true;
        }
        break;
      case 1: {
        size_t want = std::min<uint64_t>(burst.size(), count - next);
        for (size_t i = 0; i < want; ++i) burst[i] = message_for(next + i);
        size_t pushed = ring.push_burst(std::span<const Message>(burst.data(), want));
        next += pushed;
        progressed = pushed != 0;
        break;
      }
      default: {
        std::span<Message> slots = ring.claim(std::min<uint64_t>(5, count - next));
        for (size_t i = 0; i < slots.size(); ++i) slots[i] = message_for(next + i);
        ring.publish(slots.size());
        next += slots.size();
        progressed = !slots.empty();
        break;
      }
    }
    if (!progressed) std::this_thread::yield();
  }
}

// Consumer: cycles through try_pop, pop_burst and peek/release. Returns the
// first problem, or an empty string.
std::string consume(SpscRing<Message>& ring, uint64_t count) {
  uint64_t next = 0;
  std::array<Message, 6> burst;
  while (next < count) {
    bool progressed = false;
    switch (next % 3) {
      case 0: {
        Message message;
        if (ring.try_pop(message)) {
          if (!intact(message, next)) return "try_pop: message " + std::to_string(next);
          ++next;
          progressed = true;
        }
        break;
      }
      case 1: {
        size_t popped = ring.pop_burst(burst);
        for (size_t i = 0; i < popped; ++i) {
          if (!intact(burst[i], next + i)) return "pop_burst: message " + std::to_string(next + i);
        }
        next += popped;
        progressed = popped != 0;
        break;
      }
      default: {
        std::span<Message> slots = ring.peek(7);
        for (size_t i = 0; i < slots.size(); ++i) {
          if (!intact(slots[i], next + i)) return "peek: message " + std::to_string(next + i);
        }
        ring.release(slots.size());
        next += slots.size();
        progressed = !slots.empty();
        break;
      }
    }
    if (!progressed) std::this_thread::yield();
  }
  if (!ring.empty()) return "ring not empty at the end";
  return {};
}

TEST(SpscRingThreadTest, EveryProducerAndConsumerCallPairsUp) {
  for (uint64_t capacity : {uint64_t{1}, uint64_t{16}, uint64_t{64}}) {
    RingMemory<Message> memory(capacity);
    std::string problem;
    std::thread consumer([&] { problem = consume(memory.ring(), kMessages / 3); });
    produce(memory.ring(), kMessages / 3);
    consumer.join();
    EXPECT_TRUE(problem.empty()) << "capacity " << capacity << ": " << problem;
  }
}

TEST(SpscRingThreadTest, IndexesWrapPastTwoToTheSixtyFour) {
  RingMemory<Message> memory(8, ~uint64_t{0} - 1000);
  std::string problem;
  std::thread consumer([&] { problem = consume(memory.ring(), 20'000); });
  produce(memory.ring(), 20'000);
  consumer.join();
  EXPECT_TRUE(problem.empty()) << problem;
}

TEST(SpscRingThreadTest, CommandConsumerWipesSlotsWhileTheProducerRefillsThem) {
  // The wipe happens in the slot before release(): TSan would flag it if the
  // producer could already be writing the same slot.
  RingMemory<Command> memory(8);
  constexpr uint64_t kCommands = 20'000;
  SaDescriptor sa;
  sa.cipher_key.fill(0x5a);
  std::string problem;
  std::thread consumer([&] {
    std::array<Command, 5> out;
    uint64_t next = 0;
    while (next < kCommands && problem.empty()) {
      size_t popped = pop_commands(memory.ring(), out);
      for (size_t i = 0; i < popped; ++i, ++next) {
        InstallSaPayload payload;
        if (out[i].request_id != next || !decode_payload(out[i], payload) ||
            payload.sa.spi != uint32_t(next) || payload.sa.cipher_key[31] != 0x5a) {
          problem = "command " + std::to_string(next);
        }
        zeroise_keys(out[i]);
      }
      if (popped == 0) std::this_thread::yield();
    }
  });
  for (uint64_t next = 0; next < kCommands;) {
    sa.spi = uint32_t(next);
    if (memory.ring().try_push(make_command(next, 1, InstallSaPayload{sa}))) {
      ++next;
    } else {
      std::this_thread::yield();
    }
  }
  consumer.join();
  EXPECT_TRUE(problem.empty()) << problem;
}

TEST(SpscRingThreadTest, RingsInsideARegion) {
  testing::ScratchDirectory scratch;
  RegionCreateOptions options;
  options.directory = scratch.path();
  options.capacities = {16, 32, 16, 4, 4};
  auto region = Region::create("segw-tsan", options);
  ASSERT_TRUE(region.ok()) << region.error();
  constexpr uint64_t kCompletions = 50'000;
  std::string problem;
  std::thread control_plane([&] {
    Completion completion;
    for (uint64_t next = 0; next < kCompletions;) {
      if (!region->completion_ring().try_pop(completion)) {
        std::this_thread::yield();
        continue;
      }
      if (completion.request_id != next || completion.detail != uint32_t(next * 3)) {
        problem = "completion " + std::to_string(next);
        return;
      }
      ++next;
    }
  });
  Completion completion;
  for (uint64_t next = 0; next < kCompletions;) {
    completion.request_id = next;
    completion.detail = uint32_t(next * 3);
    if (region->completion_ring().try_push(completion)) {
      ++next;
      if (next % 1024 == 0) region->heartbeat();
    } else {
      std::this_thread::yield();
    }
  }
  control_plane.join();
  EXPECT_TRUE(problem.empty()) << problem;
}

}  // namespace
}  // namespace segw::shared::channel
