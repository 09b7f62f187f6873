// Unit tests for shared/channel/spsc_ring.h on one thread: empty, full,
// wrap-around (of the slot array and of the 64-bit indexes), bursts, the
// zero-copy claim/peek spans, capacity edges and open_at validation.
#include "shared/channel/spsc_ring.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/unit/shared/channel_test_support.h"

namespace segw::shared::channel {
namespace {

using testing::RingMemory;

struct Message {
  uint64_t sequence = 0;
  uint32_t check = 0;
  uint32_t padding = 0;
};

Message message(uint64_t sequence) {
  return {sequence, static_cast<uint32_t>(sequence * 2654435761u), 0};
}

void expect_message(const Message& got, uint64_t sequence) {
  EXPECT_EQ(got.sequence, sequence);
  EXPECT_EQ(got.check, static_cast<uint32_t>(sequence * 2654435761u)) << "sequence " << sequence;
}

TEST(SpscRingTest, LayoutKeepsTheTwoIndexesApart) {
  // The ring header is three 128-byte blocks: read-only layout, producer's
  // line, consumer's line; slots start right after.
  EXPECT_EQ(sizeof(SpscRing<Message>), 3 * kFalseSharingRange);
  EXPECT_EQ(alignof(SpscRing<Message>), kFalseSharingRange);
  EXPECT_EQ(SpscRing<Message>::bytes_for(8), 3 * kFalseSharingRange + 128);
  EXPECT_EQ(SpscRing<Message>::bytes_for(1) % kFalseSharingRange, 0u);
}

TEST(SpscRingTest, EmptyRing) {
  RingMemory<Message> memory(8);
  auto& ring = memory.ring();
  EXPECT_EQ(ring.capacity(), 8u);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.free_space(), 8u);
  Message out;
  EXPECT_FALSE(ring.try_pop(out));
  std::array<Message, 4> burst{};
  EXPECT_EQ(ring.pop_burst(burst), 0u);
  EXPECT_TRUE(ring.peek(4).empty());
  ring.release(0);  // a no-op, not a corruption
  EXPECT_EQ(ring.released_count(), 0u);
}

TEST(SpscRingTest, FillsToCapacityThenRefusesWithoutBlocking) {
  RingMemory<Message> memory(4);
  auto& ring = memory.ring();
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(ring.try_push(message(i)));
  EXPECT_EQ(ring.size(), 4u);
  EXPECT_EQ(ring.free_space(), 0u);
  EXPECT_FALSE(ring.try_push(message(99)));
  EXPECT_TRUE(ring.claim(1).empty());
  std::array<Message, 2> more{message(100), message(101)};
  EXPECT_EQ(ring.push_burst(more), 0u);
  // The refused pushes left the contents alone.
  for (uint64_t i = 0; i < 4; ++i) {
    Message out;
    ASSERT_TRUE(ring.try_pop(out));
    expect_message(out, i);
  }
  EXPECT_TRUE(ring.empty());
}

TEST(SpscRingTest, WrapsAroundTheSlotArrayManyTimesInOrder) {
  RingMemory<Message> memory(8);
  auto& ring = memory.ring();
  uint64_t next_push = 0;
  uint64_t next_pop = 0;
  // Uneven push/pop counts move the wrap point around every slot.
  for (int round = 0; round < 200; ++round) {
    int pushes = 1 + round % 7;
    for (int i = 0; i < pushes && ring.try_push(message(next_push)); ++i) ++next_push;
    int pops = 1 + (round * 3) % 5;
    for (int i = 0; i < pops; ++i) {
      Message out;
      if (!ring.try_pop(out)) break;
      expect_message(out, next_pop++);
    }
    ASSERT_EQ(ring.size(), next_push - next_pop);
    ASSERT_LE(ring.size(), 8u);
  }
  Message out;
  while (ring.try_pop(out)) expect_message(out, next_pop++);
  EXPECT_EQ(next_pop, next_push);
  EXPECT_GT(next_push, 8u * 20);
}

TEST(SpscRingTest, IndexesCrossTheSixtyFourBitWrap) {
  // Start 5 slots before 2^64: head - tail and i & mask must stay right
  // when the counters overflow.
  RingMemory<Message> memory(4, std::numeric_limits<uint64_t>::max() - 4);
  auto& ring = memory.ring();
  uint64_t next_push = 0;
  uint64_t next_pop = 0;
  for (int round = 0; round < 20; ++round) {
    while (ring.try_push(message(next_push))) ++next_push;
    EXPECT_EQ(ring.size(), 4u);
    EXPECT_EQ(ring.free_space(), 0u);
    Message out;
    ASSERT_TRUE(ring.try_pop(out));
    expect_message(out, next_pop++);
    ASSERT_TRUE(ring.try_pop(out));
    expect_message(out, next_pop++);
    EXPECT_EQ(ring.size(), 2u);
  }
  EXPECT_LT(ring.published_count(), 100u) << "the head index should have wrapped past zero";
}

TEST(SpscRingTest, BurstsTakeWhatFitsAndKeepOrder) {
  RingMemory<Message> memory(8);
  auto& ring = memory.ring();
  std::vector<Message> batch;
  for (uint64_t i = 0; i < 11; ++i) batch.push_back(message(i));
  EXPECT_EQ(ring.push_burst(batch), 8u);  // a prefix: the first 8
  EXPECT_EQ(ring.push_burst(std::span<const Message>(batch).subspan(8)), 0u);

  std::array<Message, 3> out{};
  EXPECT_EQ(ring.pop_burst(out), 3u);
  for (uint64_t i = 0; i < 3; ++i) expect_message(out[i], i);
  // The remaining 3 go in across the end of the slot array.
  EXPECT_EQ(ring.push_burst(std::span<const Message>(batch).subspan(8)), 3u);
  std::array<Message, 16> rest{};
  EXPECT_EQ(ring.pop_burst(rest), 8u);
  for (uint64_t i = 0; i < 8; ++i) expect_message(rest[i], i + 3);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.pop_burst(rest), 0u);
  EXPECT_EQ(ring.push_burst({}), 0u);
}

TEST(SpscRingTest, ClaimAndPeekSpansStopAtTheEndOfTheSlotArray) {
  RingMemory<Message> memory(8);
  auto& ring = memory.ring();
  // Move both indexes to slot 6.
  for (uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(ring.try_push(message(i)));
  std::array<Message, 6> drained{};
  ASSERT_EQ(ring.pop_burst(drained), 6u);

  std::span<Message> first = ring.claim(5);
  ASSERT_EQ(first.size(), 2u);  // slots 6 and 7, contiguous
  first[0] = message(100);
  first[1] = message(101);
  EXPECT_EQ(ring.size(), 0u) << "claimed slots are not visible before publish";
  ring.publish(2);
  std::span<Message> second = ring.claim(5);
  ASSERT_EQ(second.size(), 5u);  // slots 0..4 after the wrap
  for (uint64_t i = 0; i < 3; ++i) second[i] = message(102 + i);
  ring.publish(3);  // publish fewer than claimed
  EXPECT_EQ(ring.size(), 5u);

  std::span<Message> readable = ring.peek(8);
  ASSERT_EQ(readable.size(), 2u);  // up to the end of the array
  expect_message(readable[0], 100);
  expect_message(readable[1], 101);
  ring.release(1);  // release fewer than peeked: the other stays
  readable = ring.peek(8);
  ASSERT_EQ(readable.size(), 1u);
  expect_message(readable[0], 101);
  ring.release(1);
  readable = ring.peek(8);
  ASSERT_EQ(readable.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) expect_message(readable[i], 102 + i);
  ring.release(3);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.published_count(), 11u);
  EXPECT_EQ(ring.released_count(), 11u);
}

TEST(SpscRingTest, CapacityOneWorks) {
  RingMemory<Message> memory(1);
  auto& ring = memory.ring();
  for (uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(ring.try_push(message(i)));
    EXPECT_FALSE(ring.try_push(message(i + 1000)));
    Message out;
    ASSERT_TRUE(ring.try_pop(out));
    expect_message(out, i);
    EXPECT_FALSE(ring.try_pop(out));
  }
}

TEST(SpscRingTest, CreateRejectsBadCapacitiesAndMemory) {
  alignas(kFalseSharingRange) static std::byte memory[4096];
  for (uint64_t capacity : {uint64_t{0}, uint64_t{3}, uint64_t{6}, uint64_t{1000}, kMaxRingCapacity * 2}) {
    auto created = SpscRing<Message>::create_at(memory, sizeof(memory), capacity);
    ASSERT_FALSE(created.ok()) << capacity;
    EXPECT_NE(created.error().find("not a power of two"), std::string::npos) << created.error();
  }
  auto too_small = SpscRing<Message>::create_at(memory, sizeof(memory), 1024);
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.error().find("needs"), std::string::npos) << too_small.error();
  auto misaligned = SpscRing<Message>::create_at(memory + 8, sizeof(memory) - 8, 4);
  ASSERT_FALSE(misaligned.ok());
  EXPECT_NE(misaligned.error().find("aligned"), std::string::npos) << misaligned.error();
}

TEST(SpscRingTest, OpenFindsTheRingAndItsContents) {
  RingMemory<Message> memory(16);
  ASSERT_TRUE(memory.ring().try_push(message(7)));
  auto opened = SpscRing<Message>::open_at(memory.bytes(), memory.size(), 16);
  ASSERT_TRUE(opened.ok()) << opened.error();
  Message out;
  ASSERT_TRUE((*opened)->try_pop(out));
  expect_message(out, 7);
}

TEST(SpscRingTest, OpenRejectsWhatIsNotTheExpectedRing) {
  RingMemory<Message> memory(16);
  auto wrong_capacity = SpscRing<Message>::open_at(memory.bytes(), memory.size(), 32);
  ASSERT_FALSE(wrong_capacity.ok());
  EXPECT_NE(wrong_capacity.error().find("capacity 16, expected 32"), std::string::npos)
      << wrong_capacity.error();

  struct Bigger {
    std::array<uint64_t, 4> words;
  };
  auto wrong_slot = SpscRing<Bigger>::open_at(memory.bytes(), memory.size(), 16);
  ASSERT_FALSE(wrong_slot.ok());
  EXPECT_NE(wrong_slot.error().find("slot size 16, expected 32"), std::string::npos)
      << wrong_slot.error();

  auto truncated = SpscRing<Message>::open_at(memory.bytes(), memory.size() - 128, 16);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.error().find("needs"), std::string::npos) << truncated.error();

  alignas(kFalseSharingRange) std::array<std::byte, 1024> zeros{};
  auto nothing = SpscRing<Message>::open_at(zeros.data(), zeros.size(), 16);
  ASSERT_FALSE(nothing.ok());
  EXPECT_NE(nothing.error().find("bad mark"), std::string::npos) << nothing.error();
}

TEST(SpscRingTest, OpenRejectsIndexesFurtherApartThanTheCapacity) {
  RingMemory<Message> memory(4);
  // The head index sits at the start of the producer's block (offset 128).
  uint64_t impossible_head = 5;
  std::memcpy(memory.bytes() + kFalseSharingRange, &impossible_head, sizeof(impossible_head));
  auto opened = SpscRing<Message>::open_at(memory.bytes(), memory.size(), 4);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().find("inconsistent"), std::string::npos) << opened.error();
}

}  // namespace
}  // namespace segw::shared::channel
