// Worker loop: RX bursts, classification, ESP bursts, TX, RCU quiescence.
// rte_ip_frag_table_del_expired_entries is still marked experimental in
// DPDK 22.11; it is the only way to expire fragments nothing else looks up.
#define ALLOW_EXPERIMENTAL_API
#include "dataplane/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf_dyn.h>
#include <rte_rcu_qsbr.h>

#include <cstdio>
#include <cstdlib>

#include "dataplane/esp/esp_inbound.h"
#include "dataplane/esp/esp_outbound.h"

namespace segw::dp {

Worker::Worker(const WorkerSetup& setup) : setup_(setup) {
  setup_.esp.crypto = crypto_.get();
  setup_.esp.counters = &counters_;
  uint64_t timeout_cycles = rte_get_tsc_hz() / 1000 * setup_.reassembly_timeout_ms;
  // Buckets of 8 entries (the library's maximum associativity is 16).
  uint32_t buckets = std::max<uint32_t>(16, setup_.reassembly_flows / 8);
  fragments_ = rte_ip_frag_table_create(buckets, 8, buckets * 8, timeout_cycles,
                                        static_cast<int>(rte_socket_id()));
  if (fragments_ == nullptr) {
    std::fprintf(stderr, "segw: worker %u: cannot create the reassembly table\n", setup_.queue);
    std::abort();
  }
}

Worker::~Worker() {
  rte_ip_frag_free_death_row(&death_row_, 0);
  rte_ip_frag_table_destroy(fragments_);
}

void Worker::run(const std::atomic<bool>& stop) {
  rte_rcu_qsbr* rcu = setup_.esp.tables->rcu();
  rte_rcu_qsbr_thread_register(rcu, setup_.rcu_thread_id);
  rte_rcu_qsbr_thread_online(rcu, setup_.rcu_thread_id);
  while (!stop.load(std::memory_order_relaxed)) {
    uint32_t received = poll_once();
    // Between bursts this worker holds no SA or Path pointer.
    rte_rcu_qsbr_quiescent(rcu, setup_.rcu_thread_id);
    bump(received ? counters_.busy_polls : counters_.idle_polls);
  }
  rte_rcu_qsbr_thread_offline(rcu, setup_.rcu_thread_id);
  rte_rcu_qsbr_thread_unregister(rcu, setup_.rcu_thread_id);
}

uint32_t Worker::poll_once() {
  rte_mbuf* packets[kMaxEspBurst];
  uint16_t burst = static_cast<uint16_t>(setup_.burst);
  uint16_t from_access = rte_eth_rx_burst(setup_.access_port, setup_.queue, packets, burst);
  if (from_access) handle_access(packets, from_access);
  uint16_t from_core = rte_eth_rx_burst(setup_.core_port, setup_.queue, packets, burst);
  if (from_core) handle_core(packets, from_core);
  // IKE from the control plane: rare, so one cheap ring check per poll.
  if (setup_.inject_ring != nullptr) {
    unsigned injected = rte_ring_dequeue_burst(setup_.inject_ring, reinterpret_cast<void**>(packets), burst, nullptr);
    if (injected) transmit(setup_.access_port, packets, static_cast<uint16_t>(injected), true);
  }
  // The library frees a timed-out datagram only when a lookup lands on its
  // entry; without this sweep its fragments would stay (uncounted) until then.
  uint32_t doomed_before = death_row_.cnt;
  rte_ip_frag_table_del_expired_entries(fragments_, &death_row_, rte_rdtsc());
  count_fragment_drops(doomed_before);
  if (death_row_.cnt) rte_ip_frag_free_death_row(&death_row_, 3);
  return from_access + from_core;
}

void Worker::count_fragment_drops(uint32_t doomed_before) {
  // Every fragment the library gives up on (table full, timed out,
  // duplicate, overlapping, too many pieces) goes to the death row.
  if (death_row_.cnt > doomed_before)
    bump(counters_.drops[static_cast<int>(DropReason::kFragmentError)], death_row_.cnt - doomed_before);
}

rte_mbuf* Worker::reassemble(rte_mbuf* m, uint64_t now) {
  uint32_t doomed_before = death_row_.cnt;
  rte_mbuf* whole;
  if (RTE_ETH_IS_IPV4_HDR(m->packet_type)) {
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, m->l2_len);
    whole = rte_ipv4_frag_reassemble_packet(fragments_, &death_row_, m, now, ip);
  } else {
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, m->l2_len);
    auto* fragment_header = rte_ipv6_frag_get_ipv6_fragment_header(ip);
    if (fragment_header == nullptr) {
      bump(counters_.drops[static_cast<int>(DropReason::kFragmentError)]);
      rte_pktmbuf_free(m);
      return nullptr;
    }
    m->l3_len = sizeof(rte_ipv6_hdr) + sizeof(rte_ipv6_fragment_ext);
    whole = rte_ipv6_frag_reassemble_packet(fragments_, &death_row_, m, now, ip, fragment_header);
  }
  count_fragment_drops(doomed_before);
  if (whole == nullptr) return nullptr;  // kept until the rest arrives, or counted above
  bump(counters_.fragments_reassembled);
  if (whole->nb_segs == 1) return whole;
  // The ESP code works in place on one segment: copy the chain out.
  rte_mbuf* flat = rte_pktmbuf_alloc(setup_.esp.pool);
  if (flat == nullptr || whole->pkt_len > rte_pktmbuf_tailroom(flat)) {
    bump(counters_.drops[static_cast<int>(flat ? DropReason::kFragmentError : DropReason::kNoBuffer)]);
    rte_pktmbuf_free(flat);
    rte_pktmbuf_free(whole);
    return nullptr;
  }
  auto* data = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(flat, static_cast<uint16_t>(whole->pkt_len)));
  rte_pktmbuf_read(whole, 0, whole->pkt_len, data);
  flat->port = whole->port;
  rte_pktmbuf_free(whole);
  return flat;
}

void Worker::handle_access(rte_mbuf** packets, uint16_t count) {
  rte_mbuf* esp[kMaxEspBurst];
  rte_mbuf* decapsulated[kMaxEspBurst];
  uint16_t esp_count = 0;
  uint64_t bytes = 0;
  uint64_t now = 0;
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    bytes += m->pkt_len;
    DropReason reason = DropReason::kMalformed;
    AccessClass kind = classify_access(m, setup_.access_addresses, &reason);
    if (kind == AccessClass::kFragment) [[unlikely]] {
      if (now == 0) now = rte_rdtsc();
      m = reassemble(m, now);
      if (m == nullptr) continue;
      m->l2_len = sizeof(rte_ether_hdr);
      kind = classify_access(m, setup_.access_addresses, &reason);
      if (kind == AccessClass::kFragment) {  // fragment of a fragment: give up
        kind = AccessClass::kDrop;
        reason = DropReason::kFragmentError;
      }
    }
    switch (kind) {
      case AccessClass::kEsp:
        esp[esp_count++] = m;
        break;
      case AccessClass::kIke:
        if (setup_.punt_time_offset >= 0) {
          if (now == 0) now = rte_rdtsc();
          *RTE_MBUF_DYNFIELD(m, setup_.punt_time_offset, uint64_t*) = now;
        }
        if (rte_ring_enqueue(setup_.punt_ring, m) == 0) {
          bump(counters_.ike_punted);
        } else {
          bump(counters_.drops[static_cast<int>(DropReason::kPuntQueueFull)]);
          rte_pktmbuf_free(m);
        }
        break;
      case AccessClass::kKeepalive:
        bump(counters_.drops[static_cast<int>(DropReason::kNatKeepalive)]);
        rte_pktmbuf_free(m);
        break;
      default:
        bump(counters_.drops[static_cast<int>(reason)]);
        rte_pktmbuf_free(m);
        break;
    }
  }
  bump(counters_.access_rx_packets, count);
  bump(counters_.access_rx_bytes, bytes);
  if (esp_count == 0) return;
  uint16_t good = esp_inbound_burst(setup_.esp, esp, esp_count, decapsulated);
  transmit(setup_.core_port, decapsulated, good, false);
}

void Worker::handle_core(rte_mbuf** packets, uint16_t count) {
  rte_mbuf* plain[kMaxEspBurst];
  rte_mbuf* encapsulated[kMaxEspBurst];
  rte_mbuf* errors[kMaxEspBurst];
  uint16_t plain_count = 0;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < count; ++i) {
    rte_mbuf* m = packets[i];
    bytes += m->pkt_len;
    DropReason reason;
    if (classify_core(m, &reason)) [[likely]] {
      plain[plain_count++] = m;
    } else {
      bump(counters_.drops[static_cast<int>(reason)]);
      rte_pktmbuf_free(m);
    }
  }
  bump(counters_.core_rx_packets, count);
  bump(counters_.core_rx_bytes, bytes);
  if (plain_count == 0) return;
  uint16_t error_count = 0;
  uint16_t good = esp_outbound_burst(setup_.esp, plain, plain_count, encapsulated, errors, &error_count);
  transmit(setup_.access_port, encapsulated, good, true);
  if (error_count) transmit(setup_.core_port, errors, error_count, false);
}

void Worker::transmit(uint16_t port, rte_mbuf** packets, uint16_t count, bool to_access) {
  if (count == 0) return;
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < count; ++i) bytes += packets[i]->pkt_len;
  uint16_t sent = rte_eth_tx_burst(port, setup_.queue, packets, count);
  for (uint16_t i = sent; i < count; ++i) {
    bytes -= packets[i]->pkt_len;
    rte_pktmbuf_free(packets[i]);
  }
  if (sent < count) bump(counters_.drops[static_cast<int>(DropReason::kTxFull)], count - sent);
  if (to_access) {
    bump(counters_.access_tx_packets, sent);
    bump(counters_.access_tx_bytes, bytes);
  } else {
    bump(counters_.core_tx_packets, sent);
    bump(counters_.core_tx_bytes, bytes);
  }
}

}  // namespace segw::dp
