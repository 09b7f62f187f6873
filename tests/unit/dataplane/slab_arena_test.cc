// SlabArena: aligned objects, reuse of released ones, chunk growth, counts
// back to zero after everything is released.
#include "dataplane/sad/slab_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

namespace segw::dp {
namespace {

TEST(SlabArena, ObjectsAreAlignedDistinctAndWritable) {
  SlabArena arena;
  std::set<uintptr_t> seen;
  std::vector<void*> objects;
  for (size_t bytes : {1u, 63u, 64u, 65u, 2368u, 2304u, 128u}) {
    for (int i = 0; i < 100; ++i) {
      void* memory = arena.allocate(bytes);
      ASSERT_NE(memory, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(memory) % SlabArena::kAlignment, 0u);
      EXPECT_TRUE(seen.insert(reinterpret_cast<uintptr_t>(memory)).second);
      std::memset(memory, 0xa5, bytes);  // faults if the memory is not ours
      objects.push_back(memory);
    }
  }
  EXPECT_EQ(arena.objects_in_use(), objects.size());
  // Chunks are whole 2 MiB huge pages.
  EXPECT_GT(arena.reserved_bytes(), 0u);
  EXPECT_EQ(arena.reserved_bytes() % SlabArena::kChunkBytes, 0u);
}

TEST(SlabArena, ReleasedObjectsAreReusedWithoutNewChunks) {
  SlabArena arena;
  constexpr size_t kBytes = 2368;
  void* anchor = arena.allocate(kBytes);  // keeps the class in use
  std::vector<void*> first;
  for (int i = 0; i < 5000; ++i) first.push_back(arena.allocate(kBytes));
  size_t reserved = arena.reserved_bytes();
  std::set<void*> first_set(first.begin(), first.end());
  for (void* memory : first) arena.release(memory, kBytes);
  EXPECT_EQ(arena.objects_in_use(), 1u);
  EXPECT_EQ(arena.reserved_bytes(), reserved) << "the class is still in use: its chunks stay";
  for (int i = 0; i < 5000; ++i) EXPECT_TRUE(first_set.count(arena.allocate(kBytes)));
  EXPECT_EQ(arena.reserved_bytes(), reserved);
  EXPECT_EQ(arena.objects_in_use(), 5001u);
  EXPECT_FALSE(first_set.count(anchor));
}

TEST(SlabArena, AnEmptiedSizeClassGivesItsChunksBack) {
  SlabArena arena;
  constexpr size_t kBytes = 2368, kOther = 128;
  void* other = arena.allocate(kOther);  // another class, untouched by what follows
  std::memset(other, 0x5a, kOther);
  size_t start = arena.reserved_bytes();
  std::vector<void*> objects;
  for (int i = 0; i < 20000; ++i) {  // about 23 chunks
    objects.push_back(arena.allocate(kBytes));
    std::memset(objects.back(), 0xa5, kBytes);
  }
  EXPECT_GE(arena.reserved_bytes(), start + 20 * SlabArena::kChunkBytes);
  for (size_t i = 0; i + 1 < objects.size(); ++i) arena.release(objects[i], kBytes);
  EXPECT_GE(arena.reserved_bytes(), start + 20 * SlabArena::kChunkBytes) << "one object left: nothing given back";
  arena.release(objects.back(), kBytes);
  EXPECT_EQ(arena.reserved_bytes(), start + SlabArena::kChunkBytes) << "all but one chunk of the class unmapped";
  EXPECT_EQ(arena.objects_in_use(), 1u);
  EXPECT_EQ(static_cast<uint8_t*>(other)[kOther - 1], 0x5a) << "the other class keeps its memory";
  // The kept chunk serves again, zero-filled (its pages were dropped), and
  // the class grows as before.
  for (int i = 0; i < 20000; ++i) {
    void* memory = arena.allocate(kBytes);
    ASSERT_NE(memory, nullptr);
    if (i == 0) {
      EXPECT_EQ(static_cast<uint8_t*>(memory)[0], 0) << "pages dropped";
    }
    std::memset(memory, 0x11, kBytes);
  }
  EXPECT_GE(arena.reserved_bytes(), start + 20 * SlabArena::kChunkBytes);
  EXPECT_EQ(arena.objects_in_use(), 20001u);
}

TEST(SlabArena, SizeClassesDoNotShareObjects) {
  SlabArena arena;
  void* small = arena.allocate(64);
  arena.release(small, 64);
  // A released 64-byte object must not come back for a bigger request.
  void* big = arena.allocate(4096);
  EXPECT_NE(big, small);
  EXPECT_EQ(arena.allocate(64), small);
}

TEST(SlabArena, ObjectsLargerThanAChunkGetTheirOwn) {
  SlabArena arena;
  size_t bytes = SlabArena::kChunkBytes / 4 + 64;  // replay windows of 32768 are far smaller
  void* a = arena.allocate(bytes);
  void* b = arena.allocate(bytes);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::memset(a, 1, bytes);
  std::memset(b, 2, bytes);
  EXPECT_EQ(static_cast<uint8_t*>(a)[bytes - 1], 1);
  EXPECT_EQ(arena.objects_in_use(), 2u);
}

}  // namespace
}  // namespace segw::dp
