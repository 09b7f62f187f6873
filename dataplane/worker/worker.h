// A worker lcore: run-to-completion over one RX/TX queue pair of each port.
// Access RX -> classify -> ESP decap -> core TX; core RX -> ESP encap ->
// access TX; IKE to the punt ring; fragments reassembled first.
#pragma once

#include <rte_ip_frag.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

#include "dataplane/esp/esp_context.h"
#include "dataplane/worker/classify.h"

namespace segw::dp {

struct WorkerSetup {
  uint16_t queue = 0;
  uint16_t access_port = 0;
  uint16_t core_port = 0;
  uint32_t burst = 32;
  uint32_t rcu_thread_id = 0;
  rte_ring* punt_ring = nullptr;   // IKE packets for the control plane
  // Byte offset of the mbuf dynamic field where a punted packet's arrival
  // TSC is stamped (the control lcore turns it into CLOCK_MONOTONIC); < 0:
  // not stamped.
  int punt_time_offset = -1;
  // Frames the control lcore built from the control plane's InjectPacket
  // (Ethernet onwards), sent out of the access port on this worker's queue.
  // Given to one worker only (single consumer); nullptr for the others.
  rte_ring* inject_ring = nullptr;
  AccessAddresses access_addresses;
  EspContext esp;                  // counters/crypto filled in by the worker
  uint32_t reassembly_flows = 4096;
  uint32_t reassembly_timeout_ms = 2000;
};

class Worker {
 public:
  explicit Worker(const WorkerSetup& setup);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Polls until `stop` becomes true. Runs on its own lcore.
  void run(const std::atomic<bool>& stop);

  // One iteration (both directions once); returns packets received. Tests
  // and benchmarks drive this directly.
  uint32_t poll_once();

  const WorkerCounters& counters() const { return counters_; }
  uint16_t queue() const { return setup_.queue; }

 private:
  void handle_access(rte_mbuf** packets, uint16_t count);
  void handle_core(rte_mbuf** packets, uint16_t count);
  void transmit(uint16_t port, rte_mbuf** packets, uint16_t count, bool to_access);
  rte_mbuf* reassemble(rte_mbuf* m, uint64_t now);
  // Counts what reached the death row since it held `doomed_before` mbufs.
  void count_fragment_drops(uint32_t doomed_before);

  WorkerSetup setup_;
  WorkerCounters counters_;
  CryptoManager crypto_;
  rte_ip_frag_tbl* fragments_ = nullptr;
  rte_ip_frag_death_row death_row_{};
};

}  // namespace segw::dp
