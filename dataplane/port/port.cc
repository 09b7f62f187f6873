// Port discovery, queue setup and RSS.
#include "dataplane/port/port.h"

#include <rte_errno.h>

namespace segw::dp {

using shared::make_error;

shared::Result<Port> open_port(const PortConfig& config, uint16_t queues, rte_mempool* pool,
                               uint32_t mtu) {
  Port port;
  port.role = config.role;
  std::string name = config.port_name();
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port.id) != 0)
    return make_error("[port " + config.role + "] device '" + name +
                      "': no such DPDK port (bound to a DPDK driver? vdev spelled right?)");
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port.id, &info); rc != 0)
    return make_error("[port " + config.role + "] rte_eth_dev_info_get: " + rte_strerror(-rc));
  port.driver = info.driver_name ? info.driver_name : "unknown";
  if (queues > info.max_rx_queues || queues > info.max_tx_queues)
    return make_error("[port " + config.role + "] " + name + " (" + port.driver + ") has " +
                      std::to_string(info.max_rx_queues) + " RX / " + std::to_string(info.max_tx_queues) +
                      " TX queues, " + std::to_string(queues) + " workers need one each");
  rte_eth_conf conf{};
  // Spread flows over workers by outer addresses and UDP ports: each NATed
  // peer has its own public address:port, so its tunnel stays on one worker.
  uint64_t wanted = RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
  if (queues > 1 && (info.flow_type_rss_offloads & wanted) != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & wanted;
    port.rss = true;
  }
  if (int rc = rte_eth_dev_configure(port.id, queues, queues, &conf); rc != 0)
    return make_error("[port " + config.role + "] rte_eth_dev_configure: " + rte_strerror(-rc));
  uint16_t rx_descriptors = config.rx_descriptors, tx_descriptors = config.tx_descriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(port.id, &rx_descriptors, &tx_descriptors);
  int socket = rte_eth_dev_socket_id(port.id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port.id, q, rx_descriptors, socket, nullptr, pool); rc != 0)
      return make_error("[port " + config.role + "] rx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    if (int rc = rte_eth_tx_queue_setup(port.id, q, tx_descriptors, socket, nullptr); rc != 0)
      return make_error("[port " + config.role + "] tx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
  }
  // Best effort: many vdevs do not implement MTU changes.
  (void)rte_eth_dev_set_mtu(port.id, static_cast<uint16_t>(mtu));
  if (int rc = rte_eth_dev_start(port.id); rc != 0)
    return make_error("[port " + config.role + "] rte_eth_dev_start: " + rte_strerror(-rc));
  (void)rte_eth_promiscuous_enable(port.id);
  rte_eth_macaddr_get(port.id, &port.mac);
  port.queues = queues;
  return port;
}

void close_port(const Port& port) {
  (void)rte_eth_dev_stop(port.id);
  (void)rte_eth_dev_close(port.id);
}

}  // namespace segw::dp
