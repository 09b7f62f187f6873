// Packet and byte counts of a run of packets of one SA, added to the SA's
// shared counters with one atomic add per counter per run instead of one
// per packet. Bursts mostly carry runs of one SA (one flow, one femtocell),
// and the locked adds were a tenth of the per-packet cost of a 64-byte
// packet. Limits stay exact to the packet: the checks below count what is
// still pending.
#pragma once

#include <atomic>
#include <cstdint>

#include "dataplane/esp/runtime_sa.h"

namespace segw::dp {

class SaCounterRun {
 public:
  SaCounterRun() = default;
  SaCounterRun(const SaCounterRun&) = delete;
  SaCounterRun& operator=(const SaCounterRun&) = delete;
  ~SaCounterRun() { flush(); }

  void add(EspSa* sa, uint64_t bytes) {
    if (sa != sa_) {
      flush();
      sa_ = sa;
    }
    ++packets_;
    bytes_ += bytes;
  }

  // The SA's counters as if the pending run were already added.
  uint64_t packets(const EspSa* sa) const {
    return sa->counters.packets.load(std::memory_order_relaxed) + (sa == sa_ ? packets_ : 0);
  }
  uint64_t bytes(const EspSa* sa) const {
    return sa->counters.bytes.load(std::memory_order_relaxed) + (sa == sa_ ? bytes_ : 0);
  }
  // RFC 4301 4.4.2.1: past its hard lifetime an SA carries nothing more.
  bool hard_limit_reached(const EspSa* sa) const {
    return (sa->hard_packets != 0 && packets(sa) >= sa->hard_packets) ||
           (sa->hard_bytes != 0 && bytes(sa) >= sa->hard_bytes);
  }

  void flush() {
    if (sa_ == nullptr) return;
    uint64_t packets_after = sa_->counters.packets.fetch_add(packets_, std::memory_order_relaxed) + packets_;
    uint64_t bytes_after = sa_->counters.bytes.fetch_add(bytes_, std::memory_order_relaxed) + bytes_;
    if ((sa_->soft_packets && packets_after >= sa_->soft_packets) ||
        (sa_->soft_bytes && bytes_after >= sa_->soft_bytes)) [[unlikely]]
      sa_->counters.soft_lifetime_reached.store(true, std::memory_order_relaxed);
    if ((sa_->hard_packets && packets_after >= sa_->hard_packets) ||
        (sa_->hard_bytes && bytes_after >= sa_->hard_bytes)) [[unlikely]]
      sa_->counters.hard_lifetime_reached.store(true, std::memory_order_relaxed);
    sa_ = nullptr;
    packets_ = 0;
    bytes_ = 0;
  }

 private:
  EspSa* sa_ = nullptr;
  uint64_t packets_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace segw::dp
