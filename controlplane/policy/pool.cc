// Address pools: slot arithmetic over 128-bit addresses, chunked bitmaps,
// the never-used cursor and the released-slot queue.
#include "controlplane/policy/pool.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

namespace segw::cp::policy {

namespace {

// GCC/Clang extension; __extension__ keeps -Wpedantic quiet.
__extension__ using Uint128 = unsigned __int128;

Uint128 to_u128(const IpAddress& address) {
  Uint128 v = 0;
  const uint8_t* b = address.bytes();
  for (size_t i = 0; i < address.byte_length(); ++i) v = (v << 8) | b[i];
  return v;
}

IpAddress from_u128(shared::IpFamily family, Uint128 v) {
  uint8_t bytes[16] = {};
  size_t length = family == shared::IpFamily::kIpv4 ? 4 : 16;
  for (size_t i = length; i-- > 0;) {
    bytes[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
  return family == shared::IpFamily::kIpv4 ? IpAddress::from_ipv4_bytes(bytes)
                                            : IpAddress::from_ipv6_bytes(bytes);
}

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

namespace detail {

SlotBitmap::SlotBitmap(uint64_t slots)
    : chunks_(static_cast<size_t>((slots + kChunkSlots - 1) / kChunkSlots)) {}

bool SlotBitmap::test(uint32_t slot) const {
  const auto& chunk = chunks_[slot >> kPoolChunkShift];
  if (!chunk) return false;
  uint32_t bit = slot & (kChunkSlots - 1);
  return (chunk[bit / 64] >> (bit % 64)) & 1;
}

void SlotBitmap::set(uint32_t slot) {
  auto& chunk = chunks_[slot >> kPoolChunkShift];
  if (!chunk) chunk = std::make_unique<uint64_t[]>(kChunkWords);  // zeroed
  uint32_t bit = slot & (kChunkSlots - 1);
  chunk[bit / 64] |= uint64_t{1} << (bit % 64);
}

void SlotBitmap::clear(uint32_t slot) {
  auto& chunk = chunks_[slot >> kPoolChunkShift];
  if (!chunk) return;
  uint32_t bit = slot & (kChunkSlots - 1);
  chunk[bit / 64] &= ~(uint64_t{1} << (bit % 64));
}

uint64_t SlotBitmap::find_clear(uint64_t from, uint64_t limit) const {
  while (from < limit) {
    const auto& chunk = chunks_[from >> kPoolChunkShift];
    if (!chunk) return from;  // an untouched chunk is all clear
    uint64_t bit = from & (kChunkSlots - 1);
    uint64_t word = chunk[bit / 64] | ((uint64_t{1} << (bit % 64)) - 1);  // ignore bits below
    if (word != ~uint64_t{0}) {
      uint64_t found = (from - bit % 64) + static_cast<uint64_t>(std::countr_one(word));
      return std::min(found, limit);
    }
    from = from - bit % 64 + 64;
  }
  return limit;
}

}  // namespace detail

Result<AddressPool> AddressPool::create(const PoolConfig& config) {
  if (config.name.empty()) return make_error("address pool: empty name");
  const std::string where = "address pool " + config.name + ": ";

  // The range: a prefix or "first-last".
  IpAddress first;
  IpAddress last;
  std::optional<shared::IpPrefix> prefix;
  auto dash = config.range.find('-');
  if (dash == std::string::npos) {
    prefix = shared::IpPrefix::parse(trim(config.range));
    if (!prefix) return make_error(where + "range '" + config.range + "' is not a prefix or first-last");
    first = prefix->address;
    last = prefix->last();
  } else {
    auto a = IpAddress::parse(trim(std::string_view(config.range).substr(0, dash)));
    auto b = IpAddress::parse(trim(std::string_view(config.range).substr(dash + 1)));
    if (!a || !b) return make_error(where + "range '" + config.range + "' is not first-last");
    if (a->family() != b->family())
      return make_error(where + "range '" + config.range + "' mixes IPv4 and IPv6");
    if (*b < *a) return make_error(where + "range '" + config.range + "': first above last");
    first = *a;
    last = *b;
  }

  const bool ipv4 = first.is_ipv4();
  const unsigned width = ipv4 ? 32 : 128;
  unsigned lease_length = config.lease_prefix_length == 0 ? width : config.lease_prefix_length;
  if (ipv4 ? lease_length != 32 : (lease_length != 128 && lease_length != 64))
    return make_error(where + "lease prefix length /" + std::to_string(lease_length) +
                      " not supported (IPv4: /32; IPv6: /128 or /64)");
  if (prefix && prefix->length > lease_length)
    return make_error(where + "lease prefix length /" + std::to_string(lease_length) +
                      " is shorter than the pool prefix /" + std::to_string(prefix->length));

  AddressPool pool;
  pool.name_ = config.name;
  pool.config_ = config;
  pool.lease_length_ = static_cast<uint8_t>(lease_length);
  pool.host_bits_ = width - lease_length;
  const Uint128 first_unit = to_u128(first) >> pool.host_bits_;
  const Uint128 last_unit = to_u128(last) >> pool.host_bits_;
  // span + 1 would wrap for ::/0 with /128 leases; the cap comes first.
  const Uint128 span = last_unit - first_unit;
  pool.slot_count_ = span >= kMaxPoolSlots - 1 ? kMaxPoolSlots : static_cast<uint64_t>(span) + 1;
  pool.base_ = from_u128(first.family(), first_unit << pool.host_bits_);
  pool.ever_ = detail::SlotBitmap(pool.slot_count_);
  pool.queued_ = detail::SlotBitmap(pool.slot_count_);

  std::vector<uint32_t> excluded;
  for (const auto& address : config.excluded) {
    if (auto slot = pool.slot_of(address)) excluded.push_back(*slot);
  }
  if (ipv4 && prefix && prefix->length <= 30 && config.exclude_network_and_broadcast) {
    excluded.push_back(0);
    excluded.push_back(static_cast<uint32_t>(pool.slot_count_ - 1));
  }
  // IPv6 host leases from a prefix: the all-zero interface identifier is the
  // Subnet-Router anycast address (RFC 4291 2.6.1), no device's to have.
  if (!ipv4 && prefix && prefix->length <= 126 && pool.lease_length_ == 128 &&
      config.exclude_network_and_broadcast)
    excluded.push_back(0);
  std::sort(excluded.begin(), excluded.end());
  excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
  for (uint32_t slot : excluded) pool.ever_.set(slot);
  pool.excluded_ = std::move(excluded);
  pool.fresh_left_ = pool.slot_count_ - pool.excluded_.size();
  if (pool.fresh_left_ == 0) return make_error(where + "no leasable address left after exclusions");
  return pool;
}

std::optional<uint32_t> AddressPool::slot_of(const IpAddress& address) const {
  if (address.family() != base_.family()) return std::nullopt;
  Uint128 unit = to_u128(address) >> host_bits_;
  Uint128 base_unit = to_u128(base_) >> host_bits_;
  if (unit < base_unit || unit - base_unit >= slot_count_) return std::nullopt;
  return static_cast<uint32_t>(unit - base_unit);
}

IpAddress AddressPool::address_of(uint32_t slot) const {
  return from_u128(base_.family(), to_u128(base_) + (Uint128{slot} << host_bits_));
}

bool AddressPool::is_excluded(uint32_t slot) const {
  return std::binary_search(excluded_.begin(), excluded_.end(), slot);
}

bool AddressPool::contains(const IpAddress& address) const { return slot_of(address).has_value(); }

Lease AddressPool::take(uint32_t slot, uint64_t owner) {
  assert(!by_slot_.contains(slot) && !is_excluded(slot));
  if (!ever_.test(slot)) {
    ever_.set(slot);
    --fresh_left_;
  }
  by_owner_.emplace(owner, slot);
  by_slot_.emplace(slot, owner);
  return Lease{address_of(slot), lease_length_};
}

Result<Lease> AddressPool::lease(uint64_t owner, std::optional<IpAddress> requested) {
  if (auto it = by_owner_.find(owner); it != by_owner_.end())
    return Lease{address_of(it->second), lease_length_};

  if (requested) {
    auto slot = slot_of(*requested);
    if (slot && !is_excluded(*slot) && !by_slot_.contains(*slot)) return take(*slot, owner);
  }
  if (fresh_left_ > 0) {
    next_fresh_ = ever_.find_clear(next_fresh_, slot_count_);
    assert(next_fresh_ < slot_count_);
    return take(static_cast<uint32_t>(next_fresh_), owner);
  }
  // Oldest release first; entries leased again by request are skipped.
  while (!released_.empty()) {
    uint32_t slot = released_.front();
    released_.pop_front();
    queued_.clear(slot);
    if (!by_slot_.contains(slot)) return take(slot, owner);
  }
  return make_error("pool " + name_ + " exhausted (" + std::to_string(by_slot_.size()) + " of " +
                    std::to_string(slot_count_ - excluded_.size()) + " in use)");
}

std::optional<Lease> AddressPool::release(uint64_t owner) {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return std::nullopt;
  uint32_t slot = it->second;
  by_owner_.erase(it);
  by_slot_.erase(slot);
  if (!queued_.test(slot)) {
    queued_.set(slot);
    released_.push_back(slot);
  }
  return Lease{address_of(slot), lease_length_};
}

std::optional<uint64_t> AddressPool::owner_of(const IpAddress& address) const {
  auto slot = slot_of(address);
  if (!slot) return std::nullopt;
  auto it = by_slot_.find(*slot);
  if (it == by_slot_.end()) return std::nullopt;
  return it->second;
}

std::optional<Lease> AddressPool::lease_of(uint64_t owner) const {
  auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return std::nullopt;
  return Lease{address_of(it->second), lease_length_};
}

PoolStats AddressPool::stats() const {
  PoolStats s;
  s.excluded = excluded_.size();
  s.size = slot_count_ - s.excluded;
  s.in_use = by_slot_.size();
  s.never_used = fresh_left_;
  return s;
}

std::vector<std::pair<uint64_t, Lease>> AddressPool::leases() const {
  std::vector<std::pair<uint32_t, uint64_t>> slots(by_slot_.begin(), by_slot_.end());
  std::sort(slots.begin(), slots.end());
  std::vector<std::pair<uint64_t, Lease>> out;
  out.reserve(slots.size());
  for (const auto& [slot, owner] : slots) out.push_back({owner, Lease{address_of(slot), lease_length_}});
  return out;
}

}  // namespace segw::cp::policy
