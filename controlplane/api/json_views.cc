// JSON views of IKE SAs, child SAs, engine counters and events (REST API).
#include "controlplane/api/json_views.h"

#include <ctime>

#include "shared/sa_descriptor.h"

namespace segw::cp::api {

using nlohmann::json;

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;

json address_or_null(const std::optional<shared::IpAddress>& address) {
  return address ? json(address->to_string()) : json(nullptr);
}

json selector_view(const shared::TrafficSelector& ts) {
  json view;
  view["start"] = ts.start.to_string();
  view["end"] = ts.end.to_string();
  view["protocol"] = ts.protocol;
  view["port_start"] = ts.port_start;
  view["port_end"] = ts.port_end;
  return view;
}

json selectors_view(const std::vector<shared::TrafficSelector>& selectors) {
  json list = json::array();
  for (const auto& ts : selectors) list.push_back(selector_view(ts));
  return list;
}

// Seconds since `at_ns`; null when it never happened (0).
json age_s(uint64_t at_ns, uint64_t now_ns) {
  if (at_ns == 0) return nullptr;
  return now_ns > at_ns ? (now_ns - at_ns) / kNsPerSecond : 0;
}

// Seconds until `at_ns`; null when nothing is scheduled (0), 0 when due.
json due_in_s(uint64_t at_ns, uint64_t now_ns) {
  if (at_ns == 0) return nullptr;
  return at_ns > now_ns ? (at_ns - now_ns) / kNsPerSecond : 0;
}

}  // namespace

std::string spi_hex(uint64_t spi, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(size_t(digits), '0');
  for (int i = digits - 1; i >= 0 && spi != 0; --i, spi >>= 4) text[size_t(i)] = kHex[spi & 0xf];
  return text;
}

json endpoint_view(const ike::OuterEndpoint& endpoint) {
  json view;
  view["address"] = endpoint.address.to_string();
  view["port"] = endpoint.port;
  return view;
}

json child_sa_view(const ike::ChildSaInfo& child, uint64_t now_ns) {
  json view;
  view["inbound_spi"] = spi_hex(child.inbound_spi, 8);
  view["outbound_spi"] = spi_hex(child.outbound_spi, 8);
  view["algorithm"] = shared::to_string(child.algorithm);
  view["esn"] = child.esn;
  view["local_ts"] = selectors_view(child.local_ts);
  view["remote_ts"] = selectors_view(child.remote_ts);
  view["tunnel_id"] = child.tunnel_id;
  view["installed"] = child.installed;
  view["established_age_s"] = age_s(child.established_ns, now_ns);
  view["rekey_in_s"] = due_in_s(child.rekey_at_ns, now_ns);
  return view;
}

json ike_sa_view(const ike::IkeSaInfo& sa, uint64_t now_ns) {
  json view;
  view["id"] = sa.id;
  view["state"] = ike::to_string(sa.state);
  view["initiator"] = sa.initiator;
  view["spi_i"] = spi_hex(sa.spi_i, 16);
  view["spi_r"] = spi_hex(sa.spi_r, 16);
  view["local"] = endpoint_view(sa.local);
  view["remote"] = endpoint_view(sa.remote);
  view["peer_id"] = sa.peer_id;
  view["profile"] = sa.profile;
  view["nat"] = json{{"peer_behind_nat", sa.peer_behind_nat}, {"local_behind_nat", sa.local_behind_nat}};
  view["udp_encapsulation"] = sa.udp_encapsulation;
  view["mobike"] = sa.mobike_supported;
  json additional = json::array();
  for (const auto& address : sa.peer_additional_addresses) additional.push_back(address.to_string());
  view["peer_additional_addresses"] = std::move(additional);
  view["moves"] = sa.moves;
  view["fragmentation"] = sa.fragmentation;
  view["inner_ipv4"] = address_or_null(sa.internal_ip4);
  view["inner_ipv6"] = address_or_null(sa.internal_ip6);
  view["tunnel_id"] = sa.tunnel_id;
  view["ike_algorithms"] = sa.ike_algorithms;
  view["established_age_s"] = age_s(sa.established_ns, now_ns);
  view["rekey_in_s"] = due_in_s(sa.rekey_at_ns, now_ns);
  view["nat_info"] = sa.nat_info ? endpoint_view(*sa.nat_info) : json(nullptr);
  json children = json::array();
  for (const auto& child : sa.children) children.push_back(child_sa_view(child, now_ns));
  view["children"] = std::move(children);
  return view;
}

json stats_view(const ike::EngineStats& stats) {
  json view = json::object();
#define SEGW_API_COUNTER(name) view[#name] = stats.name;
  SEGW_ENGINE_COUNTERS(SEGW_API_COUNTER)
#undef SEGW_API_COUNTER
  view["gauges"] = json{{"half_open", stats.half_open},
                        {"established", stats.established},
                        {"fragment_collections", stats.fragment_collections},
                        {"fragment_bytes", stats.fragment_bytes}};
  return view;
}

json pool_view(const ike::PoolInfo& pool) {
  return json{{"name", pool.name},
              {"family", pool.family == shared::IpFamily::kIpv4 ? "ipv4" : "ipv6"},
              {"range", pool.range},
              {"lease_prefix_length", pool.lease_prefix_length},
              {"size", pool.stats.size},
              {"in_use", pool.stats.in_use},
              {"never_used", pool.stats.never_used},
              {"excluded", pool.stats.excluded}};
}

json lease_view(const ike::LeaseInfo& lease) {
  return json{{"address", lease.address.to_string()},
              {"prefix_length", lease.prefix_length},
              {"ike_sa", lease.ike_sa},
              {"peer_id", lease.peer_id}};
}

json dataplane_view(const shared::channel::DataPlaneStatisticsSnapshot& statistics, uint64_t now_ns) {
  json view;
  view["alive"] = statistics.data_plane_alive;
  view["published"] = statistics.published;
  view["refreshed_age_ms"] = statistics.published && now_ns >= statistics.refreshed_ns
                                 ? json((now_ns - statistics.refreshed_ns) / 1000000)
                                 : json(nullptr);
  json ports = json::array();
  for (const auto& p : statistics.ports)
    ports.push_back({{"name", p.name},
                     {"rx_packets", p.rx_packets},
                     {"rx_bytes", p.rx_bytes},
                     {"tx_packets", p.tx_packets},
                     {"tx_bytes", p.tx_bytes},
                     {"rx_missed", p.rx_missed},
                     {"rx_errors", p.rx_errors},
                     {"tx_errors", p.tx_errors},
                     {"rx_packets_per_second", p.rx_packets_per_second},
                     {"tx_packets_per_second", p.tx_packets_per_second}});
  view["ports"] = std::move(ports);
  json workers = json::array();
  for (const auto& w : statistics.workers)
    workers.push_back({{"index", w.index},
                       {"lcore", w.lcore},
                       {"rx_packets", w.rx_packets},
                       {"decapsulated", w.decapsulated},
                       {"encapsulated", w.encapsulated},
                       {"drops", w.drops},
                       {"busy_polls", w.busy_polls},
                       {"idle_polls", w.idle_polls},
                       {"rx_packets_per_second", w.rx_packets_per_second}});
  view["workers"] = std::move(workers);
  json drops = json::object();
  for (const auto& d : statistics.drop_reasons) drops[d.name] = d.packets;
  view["drops"] = std::move(drops);
  json queues = json::array();
  for (const auto& q : statistics.queues)
    queues.push_back({{"name", q.name}, {"depth", q.depth}, {"capacity", q.capacity}});
  view["queues"] = std::move(queues);
  json channel = json::object();
  for (const auto& [name, value] : statistics.channel_counters) channel[name] = value;
  view["channel"] = std::move(channel);
  return view;
}

void append_dataplane_metrics(std::string& out, const shared::channel::DataPlaneStatisticsSnapshot& statistics) {
  auto metric = [&out](const char* name, const char* type, const char* help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  };
  auto sample = [&out](const char* name, const std::string& labels, uint64_t value) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(value)).append("\n");
  };
  auto label = [](const char* key, const std::string& value) {
    std::string text(key);
    text.append("=\"").append(value).append("\"");
    return text;
  };
  metric("segw_dataplane_up", "gauge", "1 while segw-dataplane's heartbeat is fresh");
  sample("segw_dataplane_up", "", statistics.data_plane_alive ? 1 : 0);
  if (!statistics.ports.empty()) {
    using Port = shared::channel::DataPlaneStatisticsSnapshot::Port;
    struct PortFamily {
      const char* name;
      const char* type;
      const char* help;
      uint64_t Port::*field;
    };
    static const PortFamily kPortFamilies[] = {
        {"segw_dataplane_port_rx_packets_total", "counter", "packets received per port", &Port::rx_packets},
        {"segw_dataplane_port_rx_bytes_total", "counter", "bytes received per port", &Port::rx_bytes},
        {"segw_dataplane_port_tx_packets_total", "counter", "packets sent per port", &Port::tx_packets},
        {"segw_dataplane_port_tx_bytes_total", "counter", "bytes sent per port", &Port::tx_bytes},
        {"segw_dataplane_port_rx_missed_total", "counter", "packets the NIC dropped: no descriptor (imissed)",
         &Port::rx_missed},
        {"segw_dataplane_port_rx_errors_total", "counter", "receive errors per port (ierrors)", &Port::rx_errors},
        {"segw_dataplane_port_tx_errors_total", "counter", "transmit errors per port (oerrors)", &Port::tx_errors},
        {"segw_dataplane_port_rx_packets_per_second", "gauge",
         "receive rate per port over the data plane's last refresh interval", &Port::rx_packets_per_second},
        {"segw_dataplane_port_tx_packets_per_second", "gauge",
         "transmit rate per port over the data plane's last refresh interval", &Port::tx_packets_per_second},
    };
    for (const auto& family : kPortFamilies) {
      metric(family.name, family.type, family.help);
      for (const auto& port : statistics.ports) sample(family.name, label("port", port.name), port.*family.field);
    }
  }
  if (!statistics.workers.empty()) {
    using Worker = shared::channel::DataPlaneStatisticsSnapshot::Worker;
    struct WorkerFamily {
      const char* name;
      const char* type;
      const char* help;
      uint64_t Worker::*field;
    };
    static const WorkerFamily kWorkerFamilies[] = {
        {"segw_dataplane_worker_rx_packets_total", "counter", "packets received per worker lcore",
         &Worker::rx_packets},
        {"segw_dataplane_worker_decapsulated_total", "counter", "ESP packets decapsulated per worker",
         &Worker::decapsulated},
        {"segw_dataplane_worker_encapsulated_total", "counter", "packets encapsulated per worker",
         &Worker::encapsulated},
        {"segw_dataplane_worker_drops_total", "counter", "packets dropped per worker, every reason", &Worker::drops},
        {"segw_dataplane_worker_busy_polls_total", "counter", "polls that found packets", &Worker::busy_polls},
        {"segw_dataplane_worker_idle_polls_total", "counter", "polls that found nothing", &Worker::idle_polls},
        {"segw_dataplane_worker_rx_packets_per_second", "gauge",
         "receive rate per worker over the data plane's last refresh interval", &Worker::rx_packets_per_second},
    };
    for (const auto& family : kWorkerFamilies) {
      metric(family.name, family.type, family.help);
      for (const auto& worker : statistics.workers) {
        std::string labels = label("worker", std::to_string(worker.index));
        labels.append(",").append(label("lcore", std::to_string(worker.lcore)));
        sample(family.name, labels, worker.*family.field);
      }
    }
  }
  if (!statistics.drop_reasons.empty()) {
    metric("segw_dataplane_drops_total", "counter", "packets the data plane did not forward, by reason");
    for (const auto& drop : statistics.drop_reasons)
      sample("segw_dataplane_drops_total", label("reason", drop.name), drop.packets);
  }
  if (!statistics.queues.empty()) {
    metric("segw_dataplane_queue_depth", "gauge",
           "entries in a queue now: the data plane's mbuf pool (in use) and internal rings, and the channel's rings");
    for (const auto& queue : statistics.queues) sample("segw_dataplane_queue_depth", label("queue", queue.name), queue.depth);
    metric("segw_dataplane_queue_capacity", "gauge", "capacity of each queue");
    for (const auto& queue : statistics.queues)
      sample("segw_dataplane_queue_capacity", label("queue", queue.name), queue.capacity);
  }
  if (!statistics.channel_counters.empty()) {
    metric("segw_dataplane_channel_total", "counter",
           "the shared-memory channel's counters kept by the data plane (commands, events, punted and injected IKE)");
    for (const auto& [name, value] : statistics.channel_counters)
      sample("segw_dataplane_channel_total", label("counter", name), value);
  }
}

std::string rfc3339_utc(uint64_t unix_ms) {
  time_t seconds = time_t(unix_ms / 1000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(text + n, sizeof text - n, ".%03uZ", unsigned(unix_ms % 1000));
  return text;
}

json event_view(const ike::EngineEvent& event, const std::optional<ike::IkeSaInfo>& sa, uint64_t now_ns,
                uint64_t unix_ms) {
  json view;
  view["kind"] = ike::to_string(event.kind);
  view["ike_sa"] = event.ike_sa;
  view["detail"] = event.detail;
  view["inner_ipv4"] = address_or_null(event.internal_ip4);
  view["remote"] = endpoint_view(event.remote);
  view["time"] = rfc3339_utc(unix_ms);
  if (sa) view["sa"] = ike_sa_view(*sa, now_ns);
  return view;
}

}  // namespace segw::cp::api
