// SA inventory scans (from an attached Region or a read-only observer) and
// their printable form.
#include "controlplane/dp_link/sa_inventory_reader.h"

#include <cstdio>
#include <cstring>
#include <atomic>

namespace segw::cp::dp_link {

using shared::make_error;
using shared::Result;
namespace channel = shared::channel;

namespace {

std::string endpoint(const shared::IpAddress& address, uint16_t port) {
  // Appended piecewise: GCC 12 reports a false -Wrestrict for "[" + string.
  std::string text;
  if (address.is_ipv6()) text += '[';
  text += address.to_string();
  if (address.is_ipv6()) text += ']';
  text += ':';
  text += std::to_string(port);
  return text;
}

}  // namespace

Result<std::vector<InventoryEntry>> read_sa_inventory(const channel::SaInventory& inventory) {
  if (!inventory.present()) {
    return make_error("the region has no SA inventory (segw-dataplane created it without one)");
  }
  std::vector<InventoryEntry> entries;
  uint32_t busy = inventory.for_each_installed(
      [&](uint32_t slot, const channel::SaInventoryRecord& record) {
        entries.push_back({slot, record});
      });
  if (busy != 0) {
    return make_error(std::to_string(busy) +
                      " SA inventory entries were being rewritten throughout the scan: try again");
  }
  return entries;
}

namespace {

// The inventory in a read-only mapping, after the checks Region::open_rings
// makes against what we mapped.
Result<channel::SaInventory> inventory_of(const RegionObserver& observer) {
  const channel::InventoryDescriptor& descriptor = observer.header().inventory;
  if (descriptor.capacity == 0) {
    return make_error("the region has no SA inventory (segw-dataplane created it without one)");
  }
  if (descriptor.entry_bytes != sizeof(channel::SaInventoryEntry) ||
      descriptor.bytes != channel::sa_inventory_bytes(descriptor.capacity) ||
      descriptor.offset < channel::kHeaderBytes || descriptor.offset % 8 != 0 ||
      descriptor.offset > observer.mapped_bytes() ||
      descriptor.bytes > observer.mapped_bytes() - descriptor.offset) {
    return make_error(observer.path() + ": SA inventory descriptor (offset " +
                      std::to_string(descriptor.offset) + ", " + std::to_string(descriptor.bytes) +
                      " bytes, entries of " + std::to_string(descriptor.entry_bytes) +
                      ") does not fit the region or this build");
  }
  // SaInventory's pointers are not const because the writer uses it too;
  // the reader functions only load, and the mapping is read-only anyway.
  auto* header = reinterpret_cast<channel::SaInventoryHeader*>(
      const_cast<std::byte*>(observer.base()) + descriptor.offset);
  if (header->capacity != descriptor.capacity) {
    return make_error(observer.path() + ": SA inventory header disagrees with the region header");
  }
  auto* entries = reinterpret_cast<channel::SaInventoryEntry*>(header + 1);
  return channel::SaInventory(header, entries);
}

}  // namespace

Result<std::vector<InventoryEntry>> read_sa_inventory(const RegionObserver& observer) {
  auto inventory = inventory_of(observer);
  if (!inventory) return make_error(inventory.error());
  return read_sa_inventory(*inventory);
}

Result<std::string> describe_channel_counters(const RegionObserver& observer) {
  auto inventory = inventory_of(observer);
  if (!inventory) return make_error(inventory.error());
  const channel::SaInventoryHeader& header = inventory->header();
  const channel::SaInventoryCounters& counters = header.counters;
  auto value = [](const std::atomic<uint64_t>& counter) {
    return std::to_string(counter.load(std::memory_order_relaxed));
  };
  return "channel: installed " + value(header.installed) + " changes " + value(header.changes) +
         " commands " + value(counters.commands) + " (failed " + value(counters.commands_failed) +
         ") completions_dropped " + value(counters.completions_dropped) + " events " +
         value(counters.events) + " (suppressed " + value(counters.events_suppressed) +
         ", dropped " + value(counters.events_dropped) + ") punted " + value(counters.punted) +
         " (ring_full " + value(counters.punt_ring_full) + ", too_big " +
         value(counters.punt_too_big) + ") injected " + value(counters.injected) +
         " (errors " + value(counters.inject_errors) + ")";
}

std::string describe(const InventoryEntry& entry) {
  const channel::SaInventoryRecord& sa = entry.record;
  char spi[16];
  std::snprintf(spi, sizeof(spi), "0x%08x", sa.spi);
  std::string name(sa.name.data(), strnlen(sa.name.data(), sa.name.size()));
  std::string text = std::string("spi ") + spi + " " + shared::to_string(sa.direction) +
                     " tunnel " + std::to_string(sa.tunnel_id) + " " +
                     shared::to_string(sa.algorithm) + " path " +
                     endpoint(sa.path.local, sa.path.local_port) + " -> " +
                     endpoint(sa.path.remote, sa.path.remote_port) +
                     (sa.path.udp_encapsulation ? " udp" : " esp") + " path_generation " +
                     std::to_string(sa.path_generation) + " packets " +
                     std::to_string(sa.packets) + " bytes " + std::to_string(sa.bytes) +
                     " drops " + std::to_string(sa.drops);
  if (sa.direction == shared::SaDirection::kInbound) {
    text += " new_source_packets " + std::to_string(sa.new_source_packets);
  } else {
    text += " sequence " + std::to_string(sa.sequence_number);
  }
  if (sa.flags & channel::kSaFlagEsn) text += " esn";
  if (sa.flags & channel::kSaFlagSoftLifetimeReached) text += " soft_lifetime";
  if (sa.flags & channel::kSaFlagHardLifetimeReached) text += " hard_lifetime";
  if (sa.flags & channel::kSaFlagSequenceNearExhaustion) text += " sequence_near_exhaustion";
  if (sa.flags & channel::kSaFlagIdle) text += " idle";
  if (!name.empty()) text += " name " + name;
  return text;
}

}  // namespace segw::cp::dp_link
