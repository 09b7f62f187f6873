// segw-trafficgen's send/receive loop: replays a PcapSource on one TX queue
// at a paced rate while it drains and counts one or two RX queues.
#pragma once

#include <rte_mempool.h>

#include <atomic>
#include <cstdint>

#include "tools/trafficgen/pcap_source.h"

namespace segw::trafficgen {

// Tuning constants of the loop, in one place.
inline constexpr uint16_t kBurst = 32;             // frames per rte_eth_tx_burst / rx_burst
inline constexpr uint32_t kReportIntervalMs = 1000;  // one progress line on stderr per interval

struct GeneratorPorts {
  uint16_t tx = 0;
  uint16_t rx = 0;  // == tx when one port does both
};

struct GeneratorLimits {
  uint64_t pps = 0;        // 0: as fast as the TX queue takes frames
  double seconds = 0;      // 0: no time limit
  uint64_t count = 0;      // 0: no packet limit; otherwise frames offered to the TX queue
  uint32_t drain_ms = 500; // RX keeps counting this long after the last frame was offered
  bool progress = true;    // the per-second line on stderr
};

struct GeneratorCounters {
  uint64_t tx_packets = 0;  // taken by the TX queue
  uint64_t tx_bytes = 0;    // their frame bytes (no FCS)
  uint64_t tx_dropped = 0;  // refused by the TX queue (freed, not retried)
  uint64_t rx_packets = 0;  // received on the RX port
  uint64_t rx_bytes = 0;
  uint64_t tx_port_rx_packets = 0;  // received on the TX port when it is not the RX port
  uint64_t tx_port_rx_bytes = 0;
  double seconds = 0;       // from the first frame offered to the last (or to the stop signal)
};

// Runs on the calling (main) lcore until a limit is reached and the drain
// time has passed, or `stop` becomes true (then at once, without draining).
// Both ports must be started with queue 0 set up; `pool` feeds the copies
// of the frames (each frame is copied into a fresh mbuf: no mbuf is shared
// with the driver). Frames the pool cannot supply at a given moment are sent
// later, not counted as dropped. `stop` is read with relaxed ordering: it is
// a flag set by a signal handler, nothing is published through it.
GeneratorCounters run_generator(const PcapSource& source, rte_mempool* pool, const GeneratorPorts& ports,
                                const GeneratorLimits& limits, const std::atomic<bool>& stop);

}  // namespace segw::trafficgen
