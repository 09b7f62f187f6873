// DPDK ethdev setup for the access and core ports: one RX and one TX queue
// per worker, RSS where the device offers it. Nothing here depends on the
// driver: PCI NICs, SR-IOV VFs and vdevs (af_packet, pcap, ring, null,
// memif) all come through the same calls.
#pragma once

#include <rte_ethdev.h>

#include <cstdint>
#include <string>

#include "dataplane/config/dataplane_config.h"
#include "shared/result.h"

namespace segw::dp {

struct Port {
  uint16_t id = 0;
  std::string role;
  std::string driver;
  rte_ether_addr mac{};
  bool rss = false;
  uint16_t queues = 0;
};

// Finds the port named by `config`, configures `queues` queue pairs with
// descriptors from `pool`, starts it. Errors name the port and the DPDK call.
shared::Result<Port> open_port(const PortConfig& config, uint16_t queues, rte_mempool* pool,
                               uint32_t mtu);

void close_port(const Port& port);

}  // namespace segw::dp
