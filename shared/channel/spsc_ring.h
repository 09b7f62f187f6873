// SpscRing<T>: the single-producer/single-consumer ring of fixed-size slots
// that lives inside the shared-memory region (DESIGN.md, Shared-memory
// channel). One process pushes, another pops, each mapping the region at its
// own address.
//
// Position independent: the ring holds no pointers, only two monotonically
// increasing 64-bit indexes and the slots that follow it in memory; every
// address is computed from `this`. It is placement-constructed once by the
// region's creator (create_at) and found again by whoever maps the region
// (open_at, which validates what it finds).
//
// Who may call what (nothing here blocks, allocates or throws):
//   producer only: try_push, push_burst, claim, publish, free_space
//   consumer only: try_pop, pop_burst, peek, release, size, empty
//   anyone:        capacity, and size/free_space as estimates (see there)
// "Producer" is one thread of one process at a time. A producer that dies
// may be replaced by a new one (a restarted control plane): all producer
// state is in the region, so the successor resumes from the published index.
//
// ------------------------------------------------------------------------
// Why it is correct (the argument that tests/model/spsc_ring.pml checks)
//
// Indexes: head_ counts slots ever published by the producer, tail_ counts
// slots ever released by the consumer; slot i lives at i & mask. Only the
// producer writes head_, only the consumer writes tail_, each index only
// grows, and 0 <= head_ - tail_ <= capacity holds at every instant (the
// producer never publishes past tail_ + capacity of a tail_ value it has
// read; the consumer never releases past a head_ value it has read).
// Unsigned 64-bit subtraction keeps this exact across the 2^64 wrap.
//
// 1. No slot is read before it is fully written. The producer copies the
//    slot, then stores head_ with memory_order_release; the consumer loads
//    head_ with memory_order_acquire before it touches the slot. Release/
//    acquire on the same atomic makes every write before the store visible
//    to every read after the load that observes it, so a consumer that sees
//    head_ > i sees all of slot i. Without release the index could become
//    visible before the copy; without acquire the consumer's slot reads
//    could be performed before its index load. (The model's RELAXED_*
//    variants make exactly those reorderings and spin finds the torn read.)
// 2. No slot is overwritten before it is read. Symmetric: the consumer
//    copies the slot out, then stores tail_ with release; the producer loads
//    tail_ with acquire before it writes slot i + capacity. So the read of
//    slot i happens-before its next write.
// 3. Cached indexes only ever lag. The producer keeps cached_tail_, a copy
//    of a tail_ value it once loaded; tail_ only grows, so cached_tail_ <=
//    tail_ and the space computed from it is never more than the real space.
//    It reloads (acquire) only when the cached space is not enough, so the
//    consumer's cache line is read once per burst of fills, not per slot.
//    The same holds for cached_head_ on the consumer side.
// 4. Own index loads are relaxed: only this side writes it (a restarted
//    successor is ordered after its predecessor's death by the operating
//    system: attach happens after the old process has exited).
// 5. Cross-process: the indexes are std::atomic<uint64_t>, statically
//    required to be always lock-free. Lock-free atomics are address-free
//    ([atomics.lockfree]: they communicate through memory mapped at several
//    addresses), so two mappings of one region synchronise like two threads.
// ------------------------------------------------------------------------
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <type_traits>

#include "shared/result.h"

namespace segw::shared::channel {

// Tuning constants.
// Two indexes written by different cores must not share a cache line, and on
// x86 the adjacent-line prefetcher pulls lines in 128-byte pairs: a producer
// write would still drag the consumer's line with it at 64 bytes apart. The
// same figure is folly's hardware_destructive_interference_size on x86.
inline constexpr size_t kFalseSharingRange = 128;
// The largest ring the region accepts: 2^24 slots keeps every byte count in
// 64 bits for any slot size we use and is far beyond what a channel needs.
inline constexpr uint64_t kMaxRingCapacity = uint64_t{1} << 24;

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "ring indexes must be lock-free to be shared between processes");
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t),
              "an index must occupy exactly its 8 bytes of the region");

// What may travel through a ring: copied with memcpy into and out of shared
// memory that another process reads, so no pointers, no destructors, and an
// alignment the slot array can honour.
template <typename T>
concept RingMessage = std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T> &&
                      alignof(T) <= kFalseSharingRange && sizeof(T) > 0;

template <RingMessage T>
class SpscRing {
 public:
  // Bytes a ring of `capacity` slots occupies (header plus slots), rounded to
  // kFalseSharingRange so that rings placed back to back do not share lines.
  static constexpr uint64_t bytes_for(uint64_t capacity) {
    uint64_t bytes = sizeof(SpscRing) + capacity * sizeof(T);
    return (bytes + kFalseSharingRange - 1) / kFalseSharingRange * kFalseSharingRange;
  }

  // Placement-constructs an empty ring at `memory` (creator only, before any
  // other process can see the memory). `memory` must be aligned to
  // kFalseSharingRange and hold bytes_for(capacity) bytes. `first_index`
  // starts both indexes somewhere other than 0: tests use it to cross the
  // 2^64 wrap. Errors: capacity not a power of two or out of range, memory
  // misaligned or too small.
  static Result<SpscRing*> create_at(void* memory, uint64_t available_bytes, uint64_t capacity,
                                     uint64_t first_index = 0) {
    if (capacity == 0 || !std::has_single_bit(capacity) || capacity > kMaxRingCapacity) {
      return make_error("ring capacity " + std::to_string(capacity) +
                        " is not a power of two between 1 and " +
                        std::to_string(kMaxRingCapacity));
    }
    if (reinterpret_cast<uintptr_t>(memory) % kFalseSharingRange != 0) {
      return make_error("ring memory is not aligned to " + std::to_string(kFalseSharingRange) +
                        " bytes");
    }
    if (available_bytes < bytes_for(capacity)) {
      return make_error("ring of " + std::to_string(capacity) + " slots needs " +
                        std::to_string(bytes_for(capacity)) + " bytes, " +
                        std::to_string(available_bytes) + " available");
    }
    auto* ring = new (memory) SpscRing(capacity, first_index);
    // Start the slots' lifetimes here, in the creator; the other process
    // only ever copies whole slots in and out.
    T* slots = ring->slots();
    for (uint64_t i = 0; i < capacity; ++i) new (&slots[i]) T();
    return ring;
  }

  // Finds the ring another process constructed at `memory` and checks that
  // it is one: the layout mark, the slot size of this build's T, the
  // capacity the caller expects (from the region header), the size, and the
  // index invariant 0 <= head - tail <= capacity. Errors name what differs.
  static Result<SpscRing*> open_at(void* memory, uint64_t available_bytes,
                                   uint64_t expected_capacity) {
    if (reinterpret_cast<uintptr_t>(memory) % kFalseSharingRange != 0) {
      return make_error("ring memory is not aligned to " + std::to_string(kFalseSharingRange) +
                        " bytes");
    }
    if (available_bytes < sizeof(SpscRing)) {
      return make_error("ring header needs " + std::to_string(sizeof(SpscRing)) + " bytes, " +
                        std::to_string(available_bytes) + " available");
    }
    auto* ring = std::launder(reinterpret_cast<SpscRing*>(memory));
    const Layout& layout = ring->layout_;
    if (layout.mark != kLayoutMark) return make_error("no ring at this offset (bad mark)");
    if (layout.slot_size != sizeof(T)) {
      return make_error("ring slot size " + std::to_string(layout.slot_size) + ", expected " +
                        std::to_string(sizeof(T)));
    }
    if (layout.capacity != expected_capacity || layout.mask != expected_capacity - 1 ||
        !std::has_single_bit(expected_capacity) || expected_capacity > kMaxRingCapacity) {
      return make_error("ring capacity " + std::to_string(layout.capacity) + ", expected " +
                        std::to_string(expected_capacity));
    }
    if (available_bytes < bytes_for(layout.capacity)) {
      return make_error("ring of " + std::to_string(layout.capacity) + " slots needs " +
                        std::to_string(bytes_for(layout.capacity)) + " bytes, " +
                        std::to_string(available_bytes) + " available");
    }
    uint64_t tail = ring->tail_.load(std::memory_order_acquire);
    uint64_t head = ring->head_.load(std::memory_order_acquire);
    if (head - tail > layout.capacity) {
      return make_error("ring indexes inconsistent: head " + std::to_string(head) + ", tail " +
                        std::to_string(tail) + ", capacity " + std::to_string(layout.capacity));
    }
    return ring;
  }

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  uint64_t capacity() const { return layout_.capacity; }

  // ---------------------------------------------------------- producer side

  // Copies `message` into the next slot. False when the ring is full; never
  // waits. Producer only.
  bool try_push(const T& message) {
    uint64_t head = head_.load(std::memory_order_relaxed);  // only we write it
    if (producer_space(head, 1) == 0) return false;
    std::memcpy(static_cast<void*>(&slots()[head & layout_.mask]), &message, sizeof(T));
    head_.store(head + 1, std::memory_order_release);  // publishes the copy (argument 1)
    return true;
  }

  // Copies as many of `messages` as fit, in order, and publishes them with
  // one index store. Returns how many went in (0 when full). Producer only.
  size_t push_burst(std::span<const T> messages) {
    uint64_t head = head_.load(std::memory_order_relaxed);
    uint64_t count = producer_space(head, messages.size());
    count = std::min<uint64_t>(count, messages.size());
    T* slots = this->slots();
    for (uint64_t i = 0; i < count; ++i) {
      std::memcpy(static_cast<void*>(&slots[(head + i) & layout_.mask]), &messages[i], sizeof(T));
    }
    if (count != 0) head_.store(head + count, std::memory_order_release);
    return count;
  }

  // Zero-copy production: up to `max_count` free slots, contiguous in memory
  // (so possibly fewer than are free when the free space wraps), to fill in
  // place and then hand over with publish(). Large messages (punt/inject
  // packets) are written straight into the region this way. Producer only.
  std::span<T> claim(size_t max_count) {
    uint64_t head = head_.load(std::memory_order_relaxed);
    uint64_t count = std::min<uint64_t>(producer_space(head, max_count), max_count);
    uint64_t first = head & layout_.mask;
    count = std::min(count, layout_.capacity - first);
    return {slots() + first, static_cast<size_t>(count)};
  }

  // Hands over the first `count` slots of the last claim() (count <= its
  // size). Producer only.
  void publish(size_t count) {
    if (count == 0) return;
    uint64_t head = head_.load(std::memory_order_relaxed);
    head_.store(head + count, std::memory_order_release);  // publishes the slot writes
  }

  // Free slots. Exact lower bound for the producer (the consumer may free
  // more meanwhile); an estimate for anyone else. Producer, or anyone.
  uint64_t free_space() const {
    // head before tail: tail can only have grown since head was read, so
    // `used` can come out too small (even wrapped below zero when the
    // consumer caught up meanwhile), never too large; the clamp reads a
    // wrapped value as "all free". The producer's head is exact, so for it
    // the result is exact at the tail load and a lower bound afterwards.
    uint64_t head = head_.load(std::memory_order_acquire);
    uint64_t tail = tail_.load(std::memory_order_acquire);
    uint64_t used = head - tail;
    return used > layout_.capacity ? layout_.capacity : layout_.capacity - used;
  }

  // ---------------------------------------------------------- consumer side

  // Copies the oldest message out. False when empty; never waits. Consumer
  // only.
  bool try_pop(T& message) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);  // only we write it
    if (consumer_available(tail, 1) == 0) return false;
    std::memcpy(static_cast<void*>(&message), &slots()[tail & layout_.mask], sizeof(T));
    tail_.store(tail + 1, std::memory_order_release);  // frees the slot after the copy (argument 2)
    return true;
  }

  // Copies up to out.size() messages, oldest first, and frees them with one
  // index store. Returns how many (0 when empty). Consumer only.
  size_t pop_burst(std::span<T> out) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    uint64_t count = std::min<uint64_t>(consumer_available(tail, out.size()), out.size());
    const T* slots = this->slots();
    for (uint64_t i = 0; i < count; ++i) {
      std::memcpy(static_cast<void*>(&out[i]), &slots[(tail + i) & layout_.mask], sizeof(T));
    }
    if (count != 0) tail_.store(tail + count, std::memory_order_release);
    return count;
  }

  // Zero-copy consumption: up to `max_count` published slots, contiguous in
  // memory (possibly fewer than are available when they wrap), to read, or
  // wipe, in place before release(). Mutable so the consumer can zeroise key
  // material before the slot goes back to the producer. Consumer only.
  std::span<T> peek(size_t max_count) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    uint64_t count = std::min<uint64_t>(consumer_available(tail, max_count), max_count);
    uint64_t first = tail & layout_.mask;
    count = std::min(count, layout_.capacity - first);
    return {slots() + first, static_cast<size_t>(count)};
  }

  // Gives the first `count` slots of the last peek() back to the producer
  // (count <= its size). Consumer only.
  void release(size_t count) {
    if (count == 0) return;
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    tail_.store(tail + count, std::memory_order_release);  // after our reads of those slots
  }

  // Messages waiting. Exact lower bound for the consumer (the producer may
  // add more meanwhile); an estimate for anyone else. Consumer, or anyone.
  uint64_t size() const {
    // tail read first: the later head can only be larger, so the difference
    // is never negative; clamp a head that ran a whole capacity ahead of the
    // tail we read.
    uint64_t tail = tail_.load(std::memory_order_acquire);
    uint64_t head = head_.load(std::memory_order_acquire);
    return std::min(head - tail, layout_.capacity);
  }
  bool empty() const { return size() == 0; }

  // Raw index values, for diagnostics and tests (e.g. "nothing was left
  // behind"). Anyone.
  uint64_t published_count() const { return head_.load(std::memory_order_acquire); }
  uint64_t released_count() const { return tail_.load(std::memory_order_acquire); }

 private:
  // "SPSCRNG1": tells open_at that a ring was constructed here.
  static constexpr uint64_t kLayoutMark = 0x31474e5243535053;

  // Written once by create_at, read-only afterwards: shared by both sides
  // without contention.
  struct Layout {
    uint64_t mark;
    uint64_t capacity;
    uint64_t mask;       // capacity - 1: slot of index i is i & mask
    uint64_t slot_size;  // sizeof(T) in the creator's build
  };

  SpscRing(uint64_t capacity, uint64_t first_index)
      : layout_{kLayoutMark, capacity, capacity - 1, sizeof(T)},
        head_(first_index),
        cached_tail_(first_index),
        tail_(first_index),
        cached_head_(first_index) {}

  // Free slots as the producer may assume them, reloading the consumer's
  // index only when the cached one does not show `wanted` (argument 3).
  uint64_t producer_space(uint64_t head, uint64_t wanted) {
    uint64_t free = layout_.capacity - (head - cached_tail_);
    if (free < wanted) {
      // acquire: the consumer's reads of the slots it released happen before
      // our writes to them (argument 2).
      cached_tail_ = tail_.load(std::memory_order_acquire);
      free = layout_.capacity - (head - cached_tail_);
    }
    return free;
  }

  // Published slots as the consumer may assume them; reloads the producer's
  // index only when the cached one does not show `wanted`.
  uint64_t consumer_available(uint64_t tail, uint64_t wanted) {
    uint64_t available = cached_head_ - tail;
    if (available < wanted) {
      // acquire: the producer's slot writes before its release store are
      // visible to our reads that follow (argument 1).
      cached_head_ = head_.load(std::memory_order_acquire);
      available = cached_head_ - tail;
    }
    return available;
  }

  T* slots() { return reinterpret_cast<T*>(reinterpret_cast<std::byte*>(this) + sizeof(SpscRing)); }
  const T* slots() const {
    return reinterpret_cast<const T*>(reinterpret_cast<const std::byte*>(this) +
                                      sizeof(SpscRing));
  }

  alignas(kFalseSharingRange) Layout layout_;
  // Producer's line: written by the producer only, read by the consumer when
  // its cached head runs out.
  alignas(kFalseSharingRange) std::atomic<uint64_t> head_;
  uint64_t cached_tail_;  // producer-private copy of tail_ (argument 3)
  // Consumer's line: written by the consumer only.
  alignas(kFalseSharingRange) std::atomic<uint64_t> tail_;
  uint64_t cached_head_;  // consumer-private copy of head_
  // Slots follow at offset sizeof(SpscRing), a multiple of kFalseSharingRange.
};

}  // namespace segw::shared::channel
