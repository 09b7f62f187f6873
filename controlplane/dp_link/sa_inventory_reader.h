// Reading the data plane's SA inventory (shared/channel/sa_inventory.h):
// what is installed, with paths and counters, straight from the region and
// without messages. Used by a restarted control plane to resume (which SAs
// exist, at which path generation) and by `segwctl-dp dump`. The inventory
// never holds keys, so nothing read here can print one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controlplane/dp_link/region_observer.h"
#include "shared/channel/sa_inventory.h"
#include "shared/result.h"

namespace segw::cp::dp_link {

struct InventoryEntry {
  uint32_t slot = 0;  // the data plane's slot: may be reused after a remove
  shared::channel::SaInventoryRecord record;
};

// A consistent copy of every installed entry, in slot order. Errors: the
// region has no inventory (created without one), the inventory does not fit
// the mapping, or entries stayed busy (the writer kept rewriting them; try
// again).
shared::Result<std::vector<InventoryEntry>> read_sa_inventory(
    const shared::channel::SaInventory& inventory);
shared::Result<std::vector<InventoryEntry>> read_sa_inventory(const RegionObserver& observer);

// The data plane's channel counters (SaInventoryCounters), as one line for
// dump: "commands 12 (failed 1) completions_dropped 0 events 3 ...".
// Errors as read_sa_inventory.
shared::Result<std::string> describe_channel_counters(const RegionObserver& observer);

// One line, for dump: "spi 0x00001001 inbound  tunnel 1 aes-gcm-128 path
// 192.0.2.1:4500 -> 198.51.100.7:4500 udp gen 0 packets 10 bytes 1400 drops
// 0 ...".
std::string describe(const InventoryEntry& entry);

}  // namespace segw::cp::dp_link
