// The data plane's own figures (ports, workers, drop reasons, internal
// queues), published in the region's header page so the control plane can
// serve them (REST /metrics, /v1/dataplane) without asking the data plane
// anything: a dead or busy data plane cannot hold up a scrape, and a scrape
// costs the data plane nothing but the periodic copy.
//
// Writer: the data plane's control lcore, every [channel] counters_refresh_ms.
// It fills the names and counts once (publish_layout), then only counters.
// Readers: anyone (read_dataplane_statistics). Every figure is a relaxed
// 64-bit atomic, exact on its own; a set of them may straddle one refresh.
// Names are plain bytes, written before `layout_published` is released and
// never again, so a reader that acquired it reads them race-free.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace segw::shared::channel {

inline constexpr uint32_t kStatisticsMaxPorts = 8;
inline constexpr uint32_t kStatisticsMaxWorkers = 128;
inline constexpr uint32_t kStatisticsMaxDropReasons = 48;
inline constexpr uint32_t kStatisticsMaxQueues = 8;

// A NUL-terminated label ("access", "icv_failure", "punt").
using StatisticsName = std::array<char, 24>;

struct PortStatistics {
  StatisticsName name{};
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> tx_packets{0};
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> rx_missed{0};   // the NIC had no descriptor (rte_eth_stats imissed)
  std::atomic<uint64_t> rx_errors{0};   // ierrors
  std::atomic<uint64_t> tx_errors{0};   // oerrors
  // Over the last refresh interval, in packets per second.
  std::atomic<uint64_t> rx_packets_per_second{0};
  std::atomic<uint64_t> tx_packets_per_second{0};
};

struct WorkerStatistics {
  std::atomic<uint64_t> lcore{0};
  std::atomic<uint64_t> rx_packets{0};   // from both ports
  std::atomic<uint64_t> decapsulated{0};
  std::atomic<uint64_t> encapsulated{0};
  std::atomic<uint64_t> drops{0};        // every reason
  std::atomic<uint64_t> busy_polls{0};   // polls that found packets
  std::atomic<uint64_t> idle_polls{0};
  std::atomic<uint64_t> rx_packets_per_second{0};  // over the last refresh interval
};

struct DropReasonStatistics {
  StatisticsName name{};
  std::atomic<uint64_t> packets{0};
};

// A queue inside the data plane (not one of the region's rings, which the
// control plane measures itself): depth now, capacity fixed.
struct QueueStatistics {
  StatisticsName name{};
  std::atomic<uint64_t> depth{0};
  std::atomic<uint64_t> capacity{0};
};

struct DataPlaneStatistics {
  std::atomic<uint64_t> layout_published{0};  // 1: the counts and names below are set
  std::atomic<uint64_t> refreshed_ns{0};      // CLOCK_MONOTONIC of the last refresh
  uint32_t port_count = 0;
  uint32_t worker_count = 0;
  uint32_t drop_reason_count = 0;
  uint32_t queue_count = 0;
  std::array<PortStatistics, kStatisticsMaxPorts> ports{};
  std::array<WorkerStatistics, kStatisticsMaxWorkers> workers{};
  std::array<DropReasonStatistics, kStatisticsMaxDropReasons> drop_reasons{};
  std::array<QueueStatistics, kStatisticsMaxQueues> queues{};
};
static_assert(std::is_standard_layout_v<DataPlaneStatistics>);
static_assert(sizeof(DataPlaneStatistics) == 10848, "DataPlaneStatistics changed: bump kLayoutVersion");

// Copies `text` into `name`, cut to fit, NUL-terminated.
inline void set_statistics_name(StatisticsName& name, std::string_view text) {
  name.fill('\0');
  for (size_t i = 0; i < text.size() && i + 1 < name.size(); ++i) name[i] = text[i];
}

// A reader's copy, in plain types.
struct DataPlaneStatisticsSnapshot {
  struct Port {
    std::string name;
    uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
    uint64_t rx_missed = 0, rx_errors = 0, tx_errors = 0;
    uint64_t rx_packets_per_second = 0, tx_packets_per_second = 0;
  };
  struct Worker {
    uint32_t index = 0;
    uint64_t lcore = 0, rx_packets = 0, decapsulated = 0, encapsulated = 0, drops = 0;
    uint64_t busy_polls = 0, idle_polls = 0, rx_packets_per_second = 0;
  };
  struct DropReason {
    std::string name;
    uint64_t packets = 0;
  };
  struct Queue {
    std::string name;
    uint64_t depth = 0, capacity = 0;
  };
  bool published = false;    // false: the data plane has not filled the block yet
  uint64_t refreshed_ns = 0;
  std::vector<Port> ports;
  std::vector<Worker> workers;
  std::vector<DropReason> drop_reasons;
  std::vector<Queue> queues;   // the data plane's internal queues and the region's rings
  // The channel's counters (SaInventoryCounters), by name; the control
  // plane's reader adds them.
  std::vector<std::pair<std::string, uint64_t>> channel_counters;
  bool data_plane_alive = false;  // the reader's view of the data plane's heartbeat
};

DataPlaneStatisticsSnapshot read_dataplane_statistics(const DataPlaneStatistics& statistics);

}  // namespace segw::shared::channel
