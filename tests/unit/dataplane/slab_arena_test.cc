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
  std::vector<void*> first;
  for (int i = 0; i < 5000; ++i) first.push_back(arena.allocate(kBytes));
  size_t reserved = arena.reserved_bytes();
  std::set<void*> first_set(first.begin(), first.end());
  for (void* memory : first) arena.release(memory, kBytes);
  EXPECT_EQ(arena.objects_in_use(), 0u);
  for (int i = 0; i < 5000; ++i) EXPECT_TRUE(first_set.count(arena.allocate(kBytes)));
  EXPECT_EQ(arena.reserved_bytes(), reserved);
  EXPECT_EQ(arena.objects_in_use(), 5000u);
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
