// segw-dataplane configuration: [dataplane], [port access], [port core],
// [channel] (the shared-memory link to the control plane) and the static [sa] sections (shared/static_sa.h). Every key is documented in
// configs/README.md; every error names file:line, the key and what is wrong.
#pragma once

#include <rte_ether.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/esp/esp_context.h"
#include "shared/config_file.h"
#include "shared/ip_address.h"
#include "shared/result.h"
#include "shared/static_sa.h"

namespace segw::dp {

struct PortConfig {
  std::string role;            // "access" or "core"
  std::string device;          // vdev spec ("net_pcap0,rx_pcap=..."), PCI address, or port name
  rte_ether_addr next_hop_mac{};
  std::vector<shared::IpAddress> addresses;
  uint16_t rx_descriptors = 1024;
  uint16_t tx_descriptors = 1024;

  // DPDK name of the port (the vdev name before the first comma).
  std::string port_name() const;
  bool is_vdev() const;
  bool is_pci() const;
};

// [channel]: the shared-memory region the control plane attaches to
// (DESIGN.md, Shared-memory channel). Absent section: no region, as before
// the channel existed (static SAs only).
struct ChannelConfig {
  bool enabled = false;
  std::string name = "segw";          // region file name
  std::string directory;              // non-empty: create the region here (tests)
  enum class Backing : uint8_t { kAutomatic, kHugepages, kSharedMemory } backing = Backing::kAutomatic;
  uint32_t command_ring = 4096;       // slots, powers of two
  uint32_t completion_ring = 4096;
  uint32_t event_ring = 4096;
  uint32_t punt_ring = 1024;
  uint32_t inject_ring = 1024;
  uint32_t inventory_capacity = 0;    // 0: 2 * [dataplane] sa_capacity (both directions)
  uint32_t command_batch = 256;       // commands per control-lcore loop
  uint32_t event_interval_ms = 1000;  // at most one event per SA and kind per interval
  uint32_t idle_timeout_ms = 0;       // 0: no idle events
  uint64_t sequence_margin = 1u << 24;  // outbound: event when fewer sequence numbers remain
  uint32_t counters_refresh_ms = 1000;  // inventory counters (and new-source/idle checks)
  uint32_t idle_sleep_us = 50;        // control lcore sleep when it found no work; 0 = spin
};

struct DataplaneConfig {
  uint32_t burst = 32;
  uint32_t mbufs = 0;              // 0: sized from ports, queues and workers
  uint32_t mbuf_data_room = 2048 + 128;
  uint32_t mbuf_cache = 256;
  uint32_t sa_capacity = 1u << 18;
  uint32_t max_routes = 0;         // 0: sa_capacity + 1024
  uint32_t ipv4_route_groups = 1u << 14;
  uint32_t ipv6_route_groups = 1u << 14;
  uint32_t stats_interval = 1;     // seconds; 0 = no periodic line
  uint32_t access_mtu = 1500;
  DfPolicy df_policy = DfPolicy::kHonour;
  uint32_t punt_ring_size = 1024;
  uint32_t reassembly_flows = 4096;
  uint32_t reassembly_timeout_ms = 2000;
  bool anti_replay = true;         // false only for benchmarks that loop a capture
  PortConfig access;
  PortConfig core;
  ChannelConfig channel;
  shared::StaticSaSet sas;

  static shared::Result<DataplaneConfig> from_file(const shared::ConfigFile& file);
};

}  // namespace segw::dp
