#include "dataplane/sad/slab_arena.h"

#include <sys/mman.h>

#include <vector>

namespace segw::dp {

SlabArena::~SlabArena() {
  for (const Chunk& chunk : chunks_) munmap(chunk.base, chunk.bytes);
}

bool SlabArena::grow(SizeClass& size_class, size_t object_bytes) {
  // Big objects (replay windows of 32768 packets) get chunks of several
  // huge pages; the rest share one.
  size_t wanted = object_bytes * 16 > kChunkBytes ? object_bytes * 16 : kChunkBytes;
  wanted = (wanted + kChunkBytes - 1) & ~(kChunkBytes - 1);
  // Over-map by one huge page and trim so the chunk starts on a 2 MiB
  // boundary: only aligned ranges can be backed by huge pages.
  size_t mapped = wanted + kChunkBytes;
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return false;
  auto start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + kChunkBytes - 1) & ~uintptr_t{kChunkBytes - 1};
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t tail = aligned + wanted;
  uintptr_t mapped_end = start + mapped;
  if (mapped_end > tail) munmap(reinterpret_cast<void*>(tail), mapped_end - tail);
  auto* base = reinterpret_cast<uint8_t*>(aligned);
  madvise(base, wanted, MADV_HUGEPAGE);
  // Secrets live here: keep them out of core dumps.
  madvise(base, wanted, MADV_DONTDUMP);
  chunks_.push_back({base, wanted, object_bytes});
  reserved_bytes_ += wanted;
  size_class.next = base;
  size_class.end = base + wanted;
  return true;
}

void* SlabArena::allocate(size_t bytes) {
  size_t object_bytes = class_size(bytes == 0 ? 1 : bytes);
  SizeClass& size_class = classes_[object_bytes];
  void* memory = nullptr;
  if (!size_class.free_objects.empty()) {
    memory = size_class.free_objects.back();
    size_class.free_objects.pop_back();
  } else {
    if (static_cast<size_t>(size_class.end - size_class.next) < object_bytes &&
        !grow(size_class, object_bytes))
      return nullptr;
    memory = size_class.next;
    size_class.next += object_bytes;
  }
  ++objects_in_use_;
  ++size_class.in_use;
  return memory;
}

void SlabArena::release(void* memory, size_t bytes) {
  if (memory == nullptr) return;
  size_t object_bytes = class_size(bytes == 0 ? 1 : bytes);
  SizeClass& size_class = classes_[object_bytes];
  size_class.free_objects.push_back(memory);
  --objects_in_use_;
  if (--size_class.in_use == 0) give_back(size_class, object_bytes);
}

void SlabArena::give_back(SizeClass& size_class, size_t object_bytes) {
  // Nothing of this size is in use (a million SAs removed, say): every
  // chunk of the class goes back to the kernel but the newest, whose pages
  // are dropped too (MADV_DONTNEED: zero-filled when touched again) so that
  // one install/remove at a time does not map and unmap a chunk per call.
  size_class.free_objects.clear();
  size_class.free_objects.shrink_to_fit();
  Chunk* kept = nullptr;
  for (auto it = chunks_.rbegin(); it != chunks_.rend(); ++it) {
    if (it->object_bytes == object_bytes) {
      kept = &*it;
      break;
    }
  }
  if (kept == nullptr) return;
  Chunk keep = *kept;
  std::erase_if(chunks_, [&](const Chunk& chunk) {
    if (chunk.object_bytes != object_bytes || chunk.base == keep.base) return false;
    munmap(chunk.base, chunk.bytes);
    reserved_bytes_ -= chunk.bytes;
    return true;
  });
  madvise(keep.base, keep.bytes, MADV_DONTNEED);
  size_class.next = static_cast<uint8_t*>(keep.base);
  size_class.end = size_class.next + keep.bytes;
}

}  // namespace segw::dp
