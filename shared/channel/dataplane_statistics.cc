#include "shared/channel/dataplane_statistics.h"

#include <algorithm>
#include <cstring>

namespace segw::shared::channel {

namespace {

std::string name_of(const StatisticsName& name) {
  return std::string(name.data(), strnlen(name.data(), name.size()));
}

uint64_t get(const std::atomic<uint64_t>& value) { return value.load(std::memory_order_relaxed); }

}  // namespace

DataPlaneStatisticsSnapshot read_dataplane_statistics(const DataPlaneStatistics& statistics) {
  DataPlaneStatisticsSnapshot snapshot;
  if (statistics.layout_published.load(std::memory_order_acquire) != 1) return snapshot;
  snapshot.published = true;
  snapshot.refreshed_ns = get(statistics.refreshed_ns);
  // Counts come from another process: never trust them past the arrays.
  uint32_t ports = std::min(statistics.port_count, kStatisticsMaxPorts);
  for (uint32_t i = 0; i < ports; ++i) {
    const PortStatistics& p = statistics.ports[i];
    snapshot.ports.push_back({name_of(p.name), get(p.rx_packets), get(p.rx_bytes), get(p.tx_packets),
                              get(p.tx_bytes), get(p.rx_missed), get(p.rx_errors), get(p.tx_errors),
                              get(p.rx_packets_per_second), get(p.tx_packets_per_second)});
  }
  uint32_t workers = std::min(statistics.worker_count, kStatisticsMaxWorkers);
  for (uint32_t i = 0; i < workers; ++i) {
    const WorkerStatistics& w = statistics.workers[i];
    snapshot.workers.push_back({i, get(w.lcore), get(w.rx_packets), get(w.decapsulated), get(w.encapsulated),
                                get(w.drops), get(w.busy_polls), get(w.idle_polls),
                                get(w.rx_packets_per_second)});
  }
  uint32_t reasons = std::min(statistics.drop_reason_count, kStatisticsMaxDropReasons);
  for (uint32_t i = 0; i < reasons; ++i) {
    const DropReasonStatistics& d = statistics.drop_reasons[i];
    snapshot.drop_reasons.push_back({name_of(d.name), get(d.packets)});
  }
  uint32_t queues = std::min(statistics.queue_count, kStatisticsMaxQueues);
  for (uint32_t i = 0; i < queues; ++i) {
    const QueueStatistics& q = statistics.queues[i];
    snapshot.queues.push_back({name_of(q.name), get(q.depth), get(q.capacity)});
  }
  return snapshot;
}

}  // namespace segw::shared::channel
