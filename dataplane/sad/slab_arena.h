// Memory for the objects workers chase on every packet (SAs, tunnels,
// paths), carved from 2 MiB-aligned chunks the kernel backs with
// transparent huge pages. With a million SAs on the general heap every
// packet paid a TLB miss and a page walk per object on top of the cache
// misses; from huge pages the whole table needs a few thousand TLB entries.
//
// Control thread only (no locking). Freed objects go to a free list of their
// size class and are reused. When nothing of a size class is in use any more
// its chunks go back to the kernel (all but one, whose pages are dropped);
// the rest when the arena is destroyed. Callers zeroise secrets before release.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace segw::dp {

class SlabArena {
 public:
  static constexpr size_t kChunkBytes = size_t{2} << 20;
  static constexpr size_t kAlignment = 64;

  SlabArena() = default;
  ~SlabArena();
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // 64-byte aligned, uninitialised; nullptr when the kernel refuses memory.
  void* allocate(size_t bytes);
  // `bytes` must be what allocate() was given for `memory`.
  void release(void* memory, size_t bytes);

  // Bytes mapped for chunks (whether touched or not), and objects handed out.
  size_t reserved_bytes() const { return reserved_bytes_; }
  size_t objects_in_use() const { return objects_in_use_; }

 private:
  struct SizeClass {
    std::vector<void*> free_objects;
    uint8_t* next = nullptr;  // bump pointer into the newest chunk
    uint8_t* end = nullptr;
    size_t in_use = 0;
  };
  static size_t class_size(size_t bytes) { return (bytes + kAlignment - 1) & ~(kAlignment - 1); }
  bool grow(SizeClass& size_class, size_t object_bytes);
  void give_back(SizeClass& size_class, size_t object_bytes);

  std::map<size_t, SizeClass> classes_;
  struct Chunk {
    void* base;
    size_t bytes;
    size_t object_bytes;  // the size class it serves
  };
  std::vector<Chunk> chunks_;
  size_t reserved_bytes_ = 0;
  size_t objects_in_use_ = 0;
};

}  // namespace segw::dp
