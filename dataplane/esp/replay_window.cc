// Lock-free anti-replay window: ESN inference, check and update.
#include "dataplane/esp/replay_window.h"

#include <bit>

namespace segw::dp {

const char* to_string(ReplayVerdict verdict) {
  switch (verdict) {
    case ReplayVerdict::kAccept: return "accept";
    case ReplayVerdict::kDuplicate: return "duplicate";
    case ReplayVerdict::kTooOld: return "too_old";
  }
  return "unknown";
}

uint32_t ReplayWindow::slot_count_for(uint32_t window) {
  return std::bit_ceil(window / kBitsPerSlot + 2);
}

void ReplayWindow::init(uint32_t window, bool esn, std::atomic<uint64_t>* slots, bool enforced) {
  enforced_ = enforced;
  window_ = window;
  esn_ = esn;
  slots_ = slots;
  slot_mask_ = slot_count_for(window) - 1;
  top_.store(0, std::memory_order_relaxed);
}

uint64_t ReplayWindow::infer_sequence(uint32_t low) const {
  if (!esn_) return low;
  uint64_t top = top_.load(std::memory_order_relaxed);
  uint32_t top_low = static_cast<uint32_t>(top);
  uint32_t top_high = static_cast<uint32_t>(top >> 32);
  uint32_t bottom_low = top_low - window_ + 1;  // wraps in case B
  uint32_t high = top_high;
  if (top_low >= window_ - 1) {
    // Case A: window inside one 2^32 subspace; a low value below the
    // window's bottom belongs to the next subspace.
    if (low < bottom_low) high = top_high + 1;
  } else if (top_high != 0) {
    // Case B: window spans two subspaces; a low value at or above the
    // (wrapped) bottom belongs to the previous one.
    if (low >= bottom_low) high = top_high - 1;
  }
  return (uint64_t{high} << 32) | low;
}

ReplayVerdict ReplayWindow::check(uint64_t sequence) const {
  // Sequence number 0 is never sent (RFC 4303 2.2: the first packet is 1).
  if (sequence == 0) return ReplayVerdict::kTooOld;
  uint64_t top = top_.load(std::memory_order_acquire);
  if (sequence > top) return ReplayVerdict::kAccept;
  if (sequence + window_ <= top) return ReplayVerdict::kTooOld;
  uint64_t block = sequence / kBitsPerSlot;
  uint64_t slot = slots_[block & slot_mask_].load(std::memory_order_acquire);
  uint32_t tag = static_cast<uint32_t>(slot >> 32);
  uint32_t bit = uint32_t{1} << (sequence % kBitsPerSlot);
  if (tag == static_cast<uint32_t>(block) && (slot & bit)) return ReplayVerdict::kDuplicate;
  return ReplayVerdict::kAccept;
}

ReplayVerdict ReplayWindow::update(uint64_t sequence) {
  if (sequence == 0) return ReplayVerdict::kTooOld;
  uint64_t top = top_.load(std::memory_order_acquire);
  if (sequence + window_ <= top) return ReplayVerdict::kTooOld;
  uint64_t block = sequence / kBitsPerSlot;
  uint32_t block_tag = static_cast<uint32_t>(block);
  uint32_t bit = uint32_t{1} << (sequence % kBitsPerSlot);
  std::atomic<uint64_t>& slot = slots_[block & slot_mask_];
  uint64_t old_value = slot.load(std::memory_order_acquire);
  for (;;) {
    uint32_t tag = static_cast<uint32_t>(old_value >> 32);
    uint64_t new_value;
    if (tag == block_tag) {
      if (old_value & bit) return ReplayVerdict::kDuplicate;
      new_value = old_value | bit;
    } else if (static_cast<int32_t>(tag - block_tag) > 0) {
      // The slot already serves a newer block: this one is behind the window.
      return ReplayVerdict::kTooOld;
    } else {
      // Stale slot from an older block, all of which is behind the window.
      new_value = (uint64_t{block_tag} << 32) | bit;
    }
    // acq_rel: the mark is published before any top that covers it, and a
    // failed CAS re-reads the newest slot value.
    if (slot.compare_exchange_weak(old_value, new_value, std::memory_order_acq_rel,
                                   std::memory_order_acquire))
      break;
  }
  while (sequence > top &&
         !top_.compare_exchange_weak(top, sequence, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
  }
  return ReplayVerdict::kAccept;
}

}  // namespace segw::dp
