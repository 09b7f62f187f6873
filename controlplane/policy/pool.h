// Address pools for configuration payloads (RFC 7296 3.15: INTERNAL_IP4_ADDRESS,
// INTERNAL_IP6_ADDRESS): IPv4 and IPv6 pools leased per IKE SA.
//
// Thread safety: an AddressPool is not synchronised. It belongs to the IKE
// engine thread; every member function must be called from that thread
// only (the REST endpoint reads statistics through the engine).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shared/ip_address.h"
#include "shared/result.h"

namespace segw::cp::policy {

using shared::Error;
using shared::IpAddress;
using shared::make_error;
using shared::Result;
using shared::Status;

// Tuning constants of the pool.
// The slot space of one pool is capped at 2^32 leases: an IPv6 /64 handing
// out /128s would otherwise have 2^64 slots, far beyond any real need
// (the design target is 1,000,000 leases); the first 2^32 slots are used.
inline constexpr uint64_t kMaxPoolSlots = uint64_t{1} << 32;
// The pool's bitmaps are made of chunks of 2^16 slots (8 KiB each),
// allocated the first time a slot in them is touched, so a huge pool that
// is barely used costs only its chunk directory (8 bytes per 2^16 slots).
inline constexpr unsigned kPoolChunkShift = 16;

struct PoolConfig {
  std::string name;
  // "10.0.0.0/16", "10.0.0.10-10.0.0.200", "2001:db8::/48",
  // "2001:db8::100-2001:db8::1ff".
  std::string range;
  // Never leased: the gateway's own addresses, DNS servers... An excluded
  // address outside the pool is ignored. With /64 leases an excluded
  // address removes the whole /64 that holds it.
  std::vector<IpAddress> excluded;
  // IPv4 prefixes up to /30: the network and broadcast addresses are
  // excluded too; IPv6 prefixes up to /126 with host leases: the
  // Subnet-Router anycast address (the prefix itself). Ranges never exclude
  // anything implicitly.
  bool exclude_network_and_broadcast = true;
  // Prefix length of one lease: 0 picks a host (32 for IPv4, 128 for IPv6).
  // IPv6 also supports 64 (one /64 per device). Must not be shorter than
  // the pool's own prefix.
  uint8_t lease_prefix_length = 0;
  friend bool operator==(const PoolConfig&, const PoolConfig&) = default;
};

// One lease: the first address of the leased prefix and its length (32 or
// 128 for a host; 64 for an IPv6 /64 lease), as INTERNAL_IP6_ADDRESS
// carries it.
struct Lease {
  IpAddress address;
  uint8_t prefix_length = 32;
  friend bool operator==(const Lease&, const Lease&) = default;
};

struct PoolStats {
  uint64_t size = 0;        // leasable slots (excluded ones not counted)
  uint64_t in_use = 0;      // current leases
  uint64_t never_used = 0;  // leasable slots never handed out yet
  uint64_t excluded = 0;    // slots removed by `excluded` / network+broadcast
};

namespace detail {

// A bitmap over up to 2^32 slots, allocated chunk by chunk on first write.
class SlotBitmap {
 public:
  SlotBitmap() = default;
  explicit SlotBitmap(uint64_t slots);

  bool test(uint32_t slot) const;
  void set(uint32_t slot);
  void clear(uint32_t slot);
  // First clear bit in [from, limit); `limit` when there is none.
  uint64_t find_clear(uint64_t from, uint64_t limit) const;

 private:
  static constexpr uint64_t kChunkSlots = uint64_t{1} << kPoolChunkShift;
  static constexpr uint64_t kChunkWords = kChunkSlots / 64;
  std::vector<std::unique_ptr<uint64_t[]>> chunks_;
};

}  // namespace detail

class AddressPool {
 public:
  // Errors: empty name; range not parseable (names the text); a range whose
  // first address is above its last, or whose ends differ in family; a lease
  // prefix length other than 32 (IPv4) or 64/128 (IPv6), or shorter than
  // the pool prefix; a pool left with no leasable address.
  static Result<AddressPool> create(const PoolConfig& config);

  AddressPool(AddressPool&&) = default;
  AddressPool& operator=(AddressPool&&) = default;

  // Leases a slot to `owner` (the IKE SA id). The same owner asking again
  // gets its existing lease whatever it requests (idempotent). A requested
  // address inside the pool, not excluded and not leased (never used or
  // released) is honoured; otherwise (RFC 7296 3.15.3: the responder may
  // hand out another address) the pool picks: never-used slots first in
  // address order, then released ones oldest release first, so a device
  // that reconnects soon tends to find its old address still free.
  // Error: "pool NAME exhausted (N of N in use)"; the pool is unchanged.
  // O(1) amortised.
  Result<Lease> lease(uint64_t owner, std::optional<IpAddress> requested = std::nullopt);

  // Ends the owner's lease; returns it, or nullopt when the owner has none.
  std::optional<Lease> release(uint64_t owner);

  // Whose lease covers `address` (any address inside a leased /64).
  std::optional<uint64_t> owner_of(const IpAddress& address) const;
  std::optional<Lease> lease_of(uint64_t owner) const;
  // Whether `address` lies inside the pool's range (excluded or not).
  bool contains(const IpAddress& address) const;

  PoolStats stats() const;
  // Every current lease with its owner, in address order.
  std::vector<std::pair<uint64_t, Lease>> leases() const;
  // What the pool was created from (a reload compares it).
  const PoolConfig& config() const { return config_; }
  const std::string& name() const { return name_; }
  shared::IpFamily family() const { return base_.family(); }
  uint8_t lease_prefix_length() const { return lease_length_; }

 private:
  AddressPool() = default;
  std::optional<uint32_t> slot_of(const IpAddress& address) const;
  IpAddress address_of(uint32_t slot) const;
  bool is_excluded(uint32_t slot) const;
  Lease take(uint32_t slot, uint64_t owner);

  std::string name_;
  PoolConfig config_;
  IpAddress base_;           // first address of slot 0
  uint8_t lease_length_ = 32;
  unsigned host_bits_ = 0;   // address bits inside one slot (0, or 64 for /64 leases)
  uint64_t slot_count_ = 0;
  std::vector<uint32_t> excluded_;  // sorted slots

  // `ever_`: the slot was leased at least once, or is excluded. Slots below
  // `next_fresh_` all have it set, so the next never-used slot is found by
  // scanning forward from there (amortised O(1): the cursor only advances).
  detail::SlotBitmap ever_;
  uint64_t next_fresh_ = 0;
  uint64_t fresh_left_ = 0;
  // Released slots, oldest first. `queued_` marks slots in the queue so each
  // appears at most once; a slot leased again by request stays queued and is
  // skipped when it comes up (lazy deletion).
  std::deque<uint32_t> released_;
  detail::SlotBitmap queued_;

  std::unordered_map<uint64_t, uint32_t> by_owner_;
  std::unordered_map<uint32_t, uint64_t> by_slot_;
};

}  // namespace segw::cp::policy
