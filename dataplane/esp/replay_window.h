// Anti-replay window (RFC 4303 3.4.3 and Appendix A), ESN capable, lock-free
// so several workers may receive on one SA without a lock.
//
// The window is a ring of 64-bit slots; each slot covers 32 consecutive
// sequence numbers and holds [block tag (seq >> 5, low 32 bits) | 32-bit
// bitmap]. A slot is marked with one CAS; a slot whose tag is older than the
// block being marked is stale and is taken over (its sequence numbers are all
// behind the window), a slot whose tag is newer means the sequence number is
// behind the window. With at least window/32 + 1 slots, two blocks that are
// both inside the window never share a slot, so tags decide everything and no
// worker ever has to clear bits for another.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace segw::dp {

enum class ReplayVerdict : uint8_t { kAccept, kDuplicate, kTooOld };
const char* to_string(ReplayVerdict verdict);

class ReplayWindow {
 public:
  // Slots needed for `window` packets: a power of two >= window/32 + 1.
  static uint32_t slot_count_for(uint32_t window);

  // `slots` must hold slot_count_for(window) zeroed atomics and outlive this.
  // `enforced` false: the receiver has not enabled anti-replay (RFC 4303
  // 3.4.3); the window is still kept (ESN inference) but callers accept
  // packets whatever it says. For benchmarks that loop a finite capture.
  void init(uint32_t window, bool esn, std::atomic<uint64_t>* slots, bool enforced = true);

  // RFC 4303 A2.2: the full 64-bit sequence number for a received low
  // 32 bits, guessing the high half from the window position. Without ESN it
  // returns `low`.
  uint64_t infer_sequence(uint32_t low) const;

  // Starts loading the slot a packet's sequence number falls in. The slot
  // index needs only the low 32 bits (the slot ring is far smaller than
  // 2^32 / 32), so this can run before infer_sequence().
  void prefetch_slot(uint32_t low) const {
    __builtin_prefetch(&slots_[(low / kBitsPerSlot) & slot_mask_]);
  }

  // Before crypto: is `sequence` acceptable right now? (Read only.)
  ReplayVerdict check(uint64_t sequence) const;

  // After the ICV verified (RFC 4303 3.4.3: the window moves only then):
  // marks `sequence` and advances the top. Exactly one of several concurrent
  // callers with the same sequence number gets kAccept.
  ReplayVerdict update(uint64_t sequence);

  uint64_t top() const { return top_.load(std::memory_order_acquire); }
  uint32_t window() const { return window_; }
  bool enforced() const { return enforced_; }

 private:
  static constexpr uint32_t kBitsPerSlot = 32;

  // Highest sequence number accepted so far. acquire/release pairs with the
  // slot CAS so a reader that sees the new top also sees its mark.
  std::atomic<uint64_t> top_{0};
  std::atomic<uint64_t>* slots_ = nullptr;
  uint32_t window_ = 0;
  uint32_t slot_mask_ = 0;
  bool esn_ = false;
  bool enforced_ = true;
};

}  // namespace segw::dp
