// The paced TX loop and RX counting of segw-trafficgen.
#include "tools/trafficgen/generator.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace segw::trafficgen {

namespace {

// Receives one burst, counts it and gives the mbufs back.
inline void drain_rx(uint16_t port, uint64_t& packets, uint64_t& bytes) {
  rte_mbuf* burst[kBurst];
  uint16_t n = rte_eth_rx_burst(port, 0, burst, kBurst);
  if (n == 0) return;
  packets += n;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(burst[i]);
  rte_pktmbuf_free_bulk(burst, n);
}

double mpps(uint64_t packets, double seconds) { return seconds > 0 ? packets / seconds / 1e6 : 0.0; }

void report(const GeneratorCounters& now, const GeneratorCounters& before, double elapsed, double interval,
            bool two_ports) {
  uint64_t tx = now.tx_packets - before.tx_packets, rx = now.rx_packets - before.rx_packets;
  double tx_gbps = interval > 0 ? (now.tx_bytes - before.tx_bytes) * 8 / interval / 1e9 : 0.0;
  char tx_port_rx[64] = "";
  if (two_ports)
    std::snprintf(tx_port_rx, sizeof(tx_port_rx), ", tx port rx %lu",
                  static_cast<unsigned long>(now.tx_port_rx_packets));
  std::fprintf(stderr,
               "segw-trafficgen: %6.1f s  tx %lu (%.3f Mpps, %.3f Gbit/s, refused %lu)  rx %lu (%.3f Mpps)%s\n",
               elapsed, static_cast<unsigned long>(now.tx_packets), mpps(tx, interval), tx_gbps,
               static_cast<unsigned long>(now.tx_dropped), static_cast<unsigned long>(now.rx_packets),
               mpps(rx, interval), tx_port_rx);
}

}  // namespace

GeneratorCounters run_generator(const PcapSource& source, rte_mempool* pool, const GeneratorPorts& ports,
                                const GeneratorLimits& limits, const std::atomic<bool>& stop) {
  GeneratorCounters c, last_report;
  const bool two_ports = ports.rx != ports.tx;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t start = rte_rdtsc();
  // With a rate and a duration the run offers exactly pps x seconds frames
  // (a clock check would lose the last one to rounding), so the frame
  // count ends it; the clock ends only unpaced runs.
  uint64_t count = limits.count;
  uint64_t end = UINT64_MAX;
  if (limits.seconds > 0 && limits.pps) {
    auto paced = static_cast<uint64_t>(limits.seconds * static_cast<double>(limits.pps) + 0.5);
    count = count ? std::min(count, paced) : paced;
  } else if (limits.seconds > 0) {
    end = start + static_cast<uint64_t>(limits.seconds * static_cast<double>(hz));
  }
  const uint64_t report_every = hz / 1000 * kReportIntervalMs;
  uint64_t next_report = start + report_every, last_report_tsc = start;
  uint64_t offered = 0, tx_end = 0, drain_end = 0;
  size_t position = 0;
  bool sending = true;
  rte_mbuf* burst[kBurst];

  while (!stop.load(std::memory_order_relaxed)) {
    uint64_t now = rte_rdtsc();
    if (sending && (now >= end || (count && offered >= count))) {
      sending = false;
      tx_end = now;
      drain_end = now + hz / 1000 * limits.drain_ms;
    }
    if (sending) {
      uint64_t want = kBurst;
      if (count) want = std::min(want, count - offered);
      if (limits.pps) {
        // Frames due by now since the start (a double: tsc ticks x pps can
        // exceed 64 bits in a long run); a late loop catches up one burst
        // at a time.
        auto due = static_cast<uint64_t>(static_cast<double>(now - start) / static_cast<double>(hz) *
                                         static_cast<double>(limits.pps));
        want = due > offered ? std::min(want, due - offered) : 0;
      }
      if (want && rte_pktmbuf_alloc_bulk(pool, burst, static_cast<unsigned>(want)) == 0) {
        uint64_t bytes[kBurst];
        for (uint64_t i = 0; i < want; ++i) {
          const PcapSource::Frame& f = source.frame(position);
          if (++position == source.size()) position = 0;
          std::memcpy(rte_pktmbuf_mtod(burst[i], void*), source.data(f), f.length);
          burst[i]->data_len = static_cast<uint16_t>(f.length);
          burst[i]->pkt_len = f.length;
          bytes[i] = f.length;
        }
        uint16_t sent = rte_eth_tx_burst(ports.tx, 0, burst, static_cast<uint16_t>(want));
        c.tx_packets += sent;
        for (uint16_t i = 0; i < sent; ++i) c.tx_bytes += bytes[i];
        if (sent < want) [[unlikely]] {
          c.tx_dropped += want - sent;
          rte_pktmbuf_free_bulk(burst + sent, static_cast<unsigned>(want - sent));
        }
        offered += want;
      }
    } else if (now >= drain_end) {
      break;
    }
    drain_rx(ports.rx, c.rx_packets, c.rx_bytes);
    if (two_ports) drain_rx(ports.tx, c.tx_port_rx_packets, c.tx_port_rx_bytes);
    if (now >= next_report) [[unlikely]] {
      if (limits.progress)
        report(c, last_report, static_cast<double>(now - start) / hz,
               static_cast<double>(now - last_report_tsc) / hz, two_ports);
      last_report = c;
      last_report_tsc = now;
      next_report += report_every;
    }
  }
  if (sending) tx_end = rte_rdtsc();  // stopped by a signal
  c.seconds = static_cast<double>(tx_end - start) / hz;
  return c;
}

}  // namespace segw::trafficgen
