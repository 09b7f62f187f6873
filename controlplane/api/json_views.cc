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
