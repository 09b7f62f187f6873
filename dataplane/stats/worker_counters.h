// Per-worker counters: single writer (the worker), any reader. The worker
// bumps with a relaxed load+store (no locked instruction); readers load
// relaxed and may see a value one burst old, never a torn one.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/stats/drop_reason.h"

namespace segw::dp {

inline void bump(std::atomic<uint64_t>& counter, uint64_t amount = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + amount, std::memory_order_relaxed);
}

struct alignas(64) WorkerCounters {
  std::atomic<uint64_t> access_rx_packets{0};
  std::atomic<uint64_t> access_rx_bytes{0};
  std::atomic<uint64_t> access_tx_packets{0};
  std::atomic<uint64_t> access_tx_bytes{0};
  std::atomic<uint64_t> core_rx_packets{0};
  std::atomic<uint64_t> core_rx_bytes{0};
  std::atomic<uint64_t> core_tx_packets{0};
  std::atomic<uint64_t> core_tx_bytes{0};
  std::atomic<uint64_t> decapsulated{0};
  std::atomic<uint64_t> encapsulated{0};
  std::atomic<uint64_t> ike_punted{0};
  std::atomic<uint64_t> fragments_reassembled{0};
  std::atomic<uint64_t> fragments_created{0};
  std::atomic<uint64_t> icmp_sent{0};
  std::atomic<uint64_t> busy_polls{0};
  std::atomic<uint64_t> idle_polls{0};
  std::atomic<uint64_t> drops[kDropReasonCount] = {};
};

}  // namespace segw::dp
