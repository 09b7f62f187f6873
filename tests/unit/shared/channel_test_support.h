// Helpers for the channel tests: ring memory outside any region, a private
// directory per test for region files, and a cheap deterministic payload
// pattern with its checksum.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "shared/channel/spsc_ring.h"

namespace segw::shared::channel::testing {

// Heap memory aligned like a ring in a region, holding one ring of T.
template <typename T>
class RingMemory {
 public:
  explicit RingMemory(uint64_t capacity, uint64_t first_index = 0)
      : bytes_(SpscRing<T>::bytes_for(capacity)),
        memory_(static_cast<std::byte*>(std::aligned_alloc(kFalseSharingRange, bytes_))) {
    auto created = SpscRing<T>::create_at(memory_.get(), bytes_, capacity, first_index);
    // A test asking for an impossible ring is a broken test, not a result.
    if (!created.ok()) {
      std::fprintf(stderr, "RingMemory: %s\n", created.error().c_str());
      std::abort();
    }
    ring_ = *created;
  }
  SpscRing<T>& ring() { return *ring_; }
  std::byte* bytes() { return memory_.get(); }
  uint64_t size() const { return bytes_; }

 private:
  struct Free {
    void operator()(std::byte* memory) const { std::free(memory); }
  };
  uint64_t bytes_;
  std::unique_ptr<std::byte, Free> memory_;
  SpscRing<T>* ring_ = nullptr;
};

// A fresh directory under the system temporary directory, removed with
// everything in it at the end of the test: region files of one test never
// meet another's (or a real segw's in /dev/shm).
class ScratchDirectory {
 public:
  ScratchDirectory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "segw-channel-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// splitmix64: one well-mixed word per (sequence, word index), so a slot
// holding another message's bytes, or bytes of two messages, is caught.
inline uint64_t pattern_word(uint64_t sequence, uint64_t word) {
  uint64_t z = sequence * 0x9e3779b97f4a7c15u + word + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

}  // namespace segw::shared::channel::testing
