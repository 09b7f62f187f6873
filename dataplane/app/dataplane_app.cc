// segw-dataplane process: set-up, main-lcore loop, shutdown, statistics.
#include "dataplane/app/dataplane_app.h"

#include <sys/prctl.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "dataplane/channel/control_channel.h"
#include "dataplane/config/dataplane_config.h"
#include "dataplane/port/port.h"
#include "dataplane/sad/sa_table.h"
#include "dataplane/worker/worker.h"

namespace segw::dp {

namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested.store(true); }

const char kEmbeddedConfig[] = R"(# segw-dataplane embedded default: two null vdevs, one demo tunnel.
[dataplane]
stats_interval = 1

[port access]
device = net_null0,no-rx=1
next_hop_mac = 02:00:00:00:00:01
address = 192.0.2.1

[port core]
device = net_null1,no-rx=1
next_hop_mac = 02:00:00:00:00:02
address = 10.0.0.1

[sa demo-in]
direction = inbound
spi = 0x00010001
algorithm = aes-gcm-128
encryption_key = 00112233445566778899aabbccddeeff
salt = 01020304
local_address = 192.0.2.1
remote_address = 198.51.100.10
remote_port = 4500
local_selector = 10.0.0.0/8
remote_selector = 172.16.0.1/32
tunnel = demo

[sa demo-out]
direction = outbound
spi = 0x00020001
algorithm = aes-gcm-128
encryption_key = ffeeddccbbaa99887766554433221100
salt = 05060708
local_address = 192.0.2.1
remote_address = 198.51.100.10
remote_port = 4500
local_selector = 10.0.0.0/8
remote_selector = 172.16.0.1/32
tunnel = demo
)";

struct Totals {
  uint64_t access_rx_packets = 0, access_rx_bytes = 0, access_tx_packets = 0, access_tx_bytes = 0;
  uint64_t core_rx_packets = 0, core_rx_bytes = 0, core_tx_packets = 0, core_tx_bytes = 0;
  uint64_t decapsulated = 0, encapsulated = 0, ike_punted = 0, fragments_reassembled = 0;
  uint64_t fragments_created = 0, icmp_sent = 0;
  uint64_t drops[kDropReasonCount] = {};
  uint64_t total_drops() const {
    uint64_t n = 0;
    for (auto d : drops) n += d;
    return n;
  }
};

struct App {
  DataplaneConfig config;
  rte_mempool* pool = nullptr;
  std::unique_ptr<SaTables> tables;
  Port access, core;
  bool access_open = false, core_open = false;
  rte_ring* punt_ring = nullptr;
  rte_ring* inject_ring = nullptr;                 // [channel] only: frames for worker 0
  rte_ring* new_source_ring = nullptr;             // [channel] only: workers' new-source notices
  std::unique_ptr<ControlChannel> channel;         // [channel] only
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<unsigned> worker_lcores;
  std::atomic<bool> stop_workers{false};
  uint64_t ike_drained = 0;
  unsigned initial_pool_in_use = 0;

  Totals totals() const {
    Totals t;
    for (const auto& w : workers) {
      const auto& c = w->counters();
      auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
      t.access_rx_packets += get(c.access_rx_packets);
      t.access_rx_bytes += get(c.access_rx_bytes);
      t.access_tx_packets += get(c.access_tx_packets);
      t.access_tx_bytes += get(c.access_tx_bytes);
      t.core_rx_packets += get(c.core_rx_packets);
      t.core_rx_bytes += get(c.core_rx_bytes);
      t.core_tx_packets += get(c.core_tx_packets);
      t.core_tx_bytes += get(c.core_tx_bytes);
      t.decapsulated += get(c.decapsulated);
      t.encapsulated += get(c.encapsulated);
      t.ike_punted += get(c.ike_punted);
      t.fragments_reassembled += get(c.fragments_reassembled);
      t.fragments_created += get(c.fragments_created);
      t.icmp_sent += get(c.icmp_sent);
      for (int r = 0; r < kDropReasonCount; ++r) t.drops[r] += get(c.drops[r]);
    }
    return t;
  }
};

App* telemetry_app = nullptr;  // read by telemetry callbacks (their own thread)

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", v);
  return text;
}

int telemetry_ports(const char*, const char*, rte_tel_data* d) {
  if (!telemetry_app) return -1;
  Totals t = telemetry_app->totals();
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "access_port_id", telemetry_app->access.id);
  rte_tel_data_add_dict_u64(d, "access_rx_packets", t.access_rx_packets);
  rte_tel_data_add_dict_u64(d, "access_rx_bytes", t.access_rx_bytes);
  rte_tel_data_add_dict_u64(d, "access_tx_packets", t.access_tx_packets);
  rte_tel_data_add_dict_u64(d, "access_tx_bytes", t.access_tx_bytes);
  rte_tel_data_add_dict_u64(d, "core_port_id", telemetry_app->core.id);
  rte_tel_data_add_dict_u64(d, "core_rx_packets", t.core_rx_packets);
  rte_tel_data_add_dict_u64(d, "core_rx_bytes", t.core_rx_bytes);
  rte_tel_data_add_dict_u64(d, "core_tx_packets", t.core_tx_packets);
  rte_tel_data_add_dict_u64(d, "core_tx_bytes", t.core_tx_bytes);
  return 0;
}

int telemetry_drops(const char*, const char*, rte_tel_data* d) {
  if (!telemetry_app) return -1;
  Totals t = telemetry_app->totals();
  rte_tel_data_start_dict(d);
  for (int r = 0; r < kDropReasonCount; ++r)
    rte_tel_data_add_dict_u64(d, to_string(static_cast<DropReason>(r)), t.drops[r]);
  return 0;
}

int telemetry_workers(const char*, const char*, rte_tel_data* d) {
  if (!telemetry_app) return -1;
  rte_tel_data_start_dict(d);
  for (size_t i = 0; i < telemetry_app->workers.size(); ++i) {
    const auto& c = telemetry_app->workers[i]->counters();
    std::string prefix = "worker" + std::to_string(i) + "_";
    rte_tel_data_add_dict_u64(d, (prefix + "lcore").c_str(), telemetry_app->worker_lcores[i]);
    rte_tel_data_add_dict_u64(d, (prefix + "decapsulated").c_str(), c.decapsulated.load());
    rte_tel_data_add_dict_u64(d, (prefix + "encapsulated").c_str(), c.encapsulated.load());
    rte_tel_data_add_dict_u64(d, (prefix + "busy_polls").c_str(), c.busy_polls.load());
    rte_tel_data_add_dict_u64(d, (prefix + "idle_polls").c_str(), c.idle_polls.load());
  }
  return 0;
}

// /segw/sas[,SPI]: without a parameter the counts; with one, that SA's
// counters (inbound first). Never any key material.
int telemetry_sas(const char*, const char* params, rte_tel_data* d) {
  if (!telemetry_app) return -1;
  SaTables& tables = *telemetry_app->tables;
  rte_tel_data_start_dict(d);
  if (params == nullptr || *params == '\0') {
    rte_tel_data_add_dict_u64(d, "inbound", tables.inbound_count());
    rte_tel_data_add_dict_u64(d, "outbound", tables.outbound_count());
    rte_tel_data_add_dict_u64(d, "capacity", tables.capacity());
    rte_tel_data_add_dict_u64(d, "arena_reserved_bytes", tables.arena_reserved_bytes());
    return 0;
  }
  auto spi = shared::parse_integer(params);
  if (!spi) return -1;
  EspSa* sa = tables.find(static_cast<uint32_t>(*spi), shared::SaDirection::kInbound);
  if (!sa) sa = tables.find(static_cast<uint32_t>(*spi), shared::SaDirection::kOutbound);
  if (!sa) return -1;
  rte_tel_data_add_dict_string(d, "name", sa->name);
  rte_tel_data_add_dict_string(d, "direction", shared::to_string(sa->direction));
  rte_tel_data_add_dict_string(d, "algorithm", shared::to_string(sa->algorithm));
  rte_tel_data_add_dict_u64(d, "packets", sa->counters.packets.load());
  rte_tel_data_add_dict_u64(d, "bytes", sa->counters.bytes.load());
  rte_tel_data_add_dict_u64(d, "new_source_packets", sa->counters.new_source_packets.load());
  for (int r = 0; r < kDropReasonCount; ++r)
    if (uint64_t n = sa->counters.drops[r].load())
      rte_tel_data_add_dict_u64(d, to_string(static_cast<DropReason>(r)), n);
  return 0;
}

// /segw/channel: the shared-memory channel's counters and peer state
// (absent without [channel]).
int telemetry_channel(const char*, const char*, rte_tel_data* d) {
  if (!telemetry_app || !telemetry_app->channel) return -1;
  const ControlChannel& channel = *telemetry_app->channel;
  const auto& c = channel.counters();
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "region", channel.region().path().c_str());
  rte_tel_data_add_dict_u64(d, "data_plane_generation", channel.region().own_generation());
  rte_tel_data_add_dict_u64(d, "control_plane_generation", channel.region().peer().generation);
  rte_tel_data_add_dict_u64(d, "control_plane_alive", channel.region().peer_alive(std::chrono::seconds(3)));
  rte_tel_data_add_dict_u64(d, "inventory_installed", channel.region().inventory().header().installed.load());
  rte_tel_data_add_dict_u64(d, "commands", c.commands.load());
  rte_tel_data_add_dict_u64(d, "commands_failed", c.commands_failed.load());
  rte_tel_data_add_dict_u64(d, "events", c.events.load());
  rte_tel_data_add_dict_u64(d, "events_suppressed", c.events_suppressed.load());
  rte_tel_data_add_dict_u64(d, "events_dropped", c.events_dropped.load());
  rte_tel_data_add_dict_u64(d, "punted", c.punted.load());
  rte_tel_data_add_dict_u64(d, "punt_ring_full", c.punt_ring_full.load());
  rte_tel_data_add_dict_u64(d, "punt_too_big", c.punt_too_big.load());
  rte_tel_data_add_dict_u64(d, "injected", c.injected.load());
  rte_tel_data_add_dict_u64(d, "inject_errors", c.inject_errors.load());
  return 0;
}

void register_telemetry(App& app) {
  telemetry_app = &app;
  rte_telemetry_register_cmd("/segw/ports", telemetry_ports, "segw port counters. No parameters");
  rte_telemetry_register_cmd("/segw/drops", telemetry_drops, "segw drops by reason. No parameters");
  rte_telemetry_register_cmd("/segw/workers", telemetry_workers, "segw per-worker counters. No parameters");
  rte_telemetry_register_cmd("/segw/channel", telemetry_channel, "segw channel counters and peer. No parameters");
  rte_telemetry_register_cmd("/segw/sas", telemetry_sas, "segw SA counts, or one SA's counters. Parameter: SPI");
}

// The region's statistics block (shared/channel/dataplane_statistics.h):
// names and counts once, then every [channel] counters_refresh_ms the
// counters, with rates over the interval since the previous refresh.
class StatisticsPublisher {
 public:
  void publish(const App& app, shared::channel::DataPlaneStatistics& out, uint64_t now_ns) {
    using namespace shared::channel;
    auto put = [](std::atomic<uint64_t>& field, uint64_t value) { field.store(value, std::memory_order_relaxed); };
    const Port* ports[] = {&app.access, &app.core};
    if (!layout_published_) {
      out.port_count = 2;
      for (uint32_t i = 0; i < 2; ++i) set_statistics_name(out.ports[i].name, ports[i]->role);
      out.worker_count = static_cast<uint32_t>(std::min<size_t>(app.workers.size(), kStatisticsMaxWorkers));
      out.drop_reason_count = std::min<uint32_t>(kDropReasonCount, kStatisticsMaxDropReasons);
      for (uint32_t r = 0; r < out.drop_reason_count; ++r)
        set_statistics_name(out.drop_reasons[r].name, to_string(static_cast<DropReason>(r)));
      const char* queue_names[] = {"mbuf_pool", "punt", "inject", "new_source"};
      out.queue_count = 4;
      for (uint32_t q = 0; q < out.queue_count; ++q) set_statistics_name(out.queues[q].name, queue_names[q]);
      out.layout_published.store(1, std::memory_order_release);
      layout_published_ = true;
    }
    double seconds = previous_ns_ ? double(now_ns - previous_ns_) / 1e9 : 0;
    auto rate = [seconds](uint64_t now, uint64_t before) -> uint64_t {
      return seconds > 0 && now >= before ? uint64_t(double(now - before) / seconds) : 0;
    };
    Totals t = app.totals();
    uint64_t port_rx[2] = {t.access_rx_packets, t.core_rx_packets};
    uint64_t port_tx[2] = {t.access_tx_packets, t.core_tx_packets};
    uint64_t port_rx_bytes[2] = {t.access_rx_bytes, t.core_rx_bytes};
    uint64_t port_tx_bytes[2] = {t.access_tx_bytes, t.core_tx_bytes};
    for (uint32_t i = 0; i < 2; ++i) {
      PortStatistics& p = out.ports[i];
      put(p.rx_packets, port_rx[i]);
      put(p.tx_packets, port_tx[i]);
      put(p.rx_bytes, port_rx_bytes[i]);
      put(p.tx_bytes, port_tx_bytes[i]);
      rte_eth_stats nic{};
      if (rte_eth_stats_get(ports[i]->id, &nic) == 0) {
        put(p.rx_missed, nic.imissed);
        put(p.rx_errors, nic.ierrors);
        put(p.tx_errors, nic.oerrors);
      }
      put(p.rx_packets_per_second, rate(port_rx[i], previous_port_rx_[i]));
      put(p.tx_packets_per_second, rate(port_tx[i], previous_port_tx_[i]));
      previous_port_rx_[i] = port_rx[i];
      previous_port_tx_[i] = port_tx[i];
    }
    previous_worker_rx_.resize(out.worker_count, 0);
    for (uint32_t w = 0; w < out.worker_count; ++w) {
      const WorkerCounters& c = app.workers[w]->counters();
      auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
      uint64_t rx = get(c.access_rx_packets) + get(c.core_rx_packets);
      uint64_t drops = 0;
      for (int r = 0; r < kDropReasonCount; ++r) drops += get(c.drops[r]);
      WorkerStatistics& ws = out.workers[w];
      put(ws.lcore, app.worker_lcores[w]);
      put(ws.rx_packets, rx);
      put(ws.decapsulated, get(c.decapsulated));
      put(ws.encapsulated, get(c.encapsulated));
      put(ws.drops, drops);
      put(ws.busy_polls, get(c.busy_polls));
      put(ws.idle_polls, get(c.idle_polls));
      put(ws.rx_packets_per_second, rate(rx, previous_worker_rx_[w]));
      previous_worker_rx_[w] = rx;
    }
    for (uint32_t r = 0; r < out.drop_reason_count; ++r) put(out.drop_reasons[r].packets, t.drops[r]);
    auto ring = [&](uint32_t q, const rte_ring* r) {
      put(out.queues[q].depth, r ? rte_ring_count(r) : 0);
      put(out.queues[q].capacity, r ? rte_ring_get_capacity(r) : 0);
    };
    put(out.queues[0].depth, rte_mempool_in_use_count(app.pool));
    put(out.queues[0].capacity, app.pool->size);
    ring(1, app.punt_ring);
    ring(2, app.inject_ring);
    ring(3, app.new_source_ring);
    put(out.refreshed_ns, now_ns);
    previous_ns_ = now_ns;
  }

 private:
  bool layout_published_ = false;
  uint64_t previous_ns_ = 0;
  uint64_t previous_port_rx_[2] = {}, previous_port_tx_[2] = {};
  std::vector<uint64_t> previous_worker_rx_;
};

double mpps(uint64_t packets, double seconds) { return seconds > 0 ? packets / seconds / 1e6 : 0; }
double gbps(uint64_t bytes, double seconds) { return seconds > 0 ? bytes * 8 / seconds / 1e9 : 0; }

struct SaSnapshot {
  uint64_t packets = 0;
};

void print_stats_line(App& app, const Totals& now, const Totals& before, double seconds,
                      std::map<std::pair<uint32_t, int>, SaSnapshot>& sa_before, double uptime) {
  uint64_t drops = now.total_drops() - before.total_drops();
  std::printf("[%7.1fs] access rx %7.3f Mpps %6.2f Gb/s tx %7.3f Mpps %6.2f Gb/s | "
              "core rx %7.3f Mpps %6.2f Gb/s tx %7.3f Mpps %6.2f Gb/s | drops %lu/s ike %lu\n",
              uptime, mpps(now.access_rx_packets - before.access_rx_packets, seconds),
              gbps(now.access_rx_bytes - before.access_rx_bytes, seconds),
              mpps(now.access_tx_packets - before.access_tx_packets, seconds),
              gbps(now.access_tx_bytes - before.access_tx_bytes, seconds),
              mpps(now.core_rx_packets - before.core_rx_packets, seconds),
              gbps(now.core_rx_bytes - before.core_rx_bytes, seconds),
              mpps(now.core_tx_packets - before.core_tx_packets, seconds),
              gbps(now.core_tx_bytes - before.core_tx_bytes, seconds),
              static_cast<unsigned long>(seconds > 0 ? drops / seconds : 0),
              static_cast<unsigned long>(now.ike_punted));
  for (int r = 0; r < kDropReasonCount; ++r)
    if (uint64_t n = now.drops[r] - before.drops[r])
      std::printf("           drop %-18s %lu\n", to_string(static_cast<DropReason>(r)), static_cast<unsigned long>(n));
  // Per-SA rates; with many SAs only the busiest few.
  struct Row {
    const EspSa* sa;
    uint64_t delta;
  };
  std::vector<Row> rows;
  app.tables->for_each_sa([&](const EspSa& sa) {
    auto key = std::make_pair(sa.spi, static_cast<int>(sa.direction));
    uint64_t packets = sa.counters.packets.load(std::memory_order_relaxed);
    auto& snapshot = sa_before[key];
    uint64_t delta = packets - snapshot.packets;
    snapshot.packets = packets;
    if (delta) rows.push_back({&sa, delta});
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.delta > b.delta; });
  size_t shown = std::min<size_t>(rows.size(), 8);
  for (size_t i = 0; i < shown; ++i) {
    const EspSa& sa = *rows[i].sa;
    std::printf("           sa %-8s %s %-20s %10.3f kpps  packets %lu\n", shared::to_string(sa.direction),
                hex32(sa.spi).c_str(), sa.name, rows[i].delta / seconds / 1e3,
                static_cast<unsigned long>(sa.counters.packets.load()));
  }
  if (rows.size() > shown) std::printf("           ... %zu more active SAs\n", rows.size() - shown);
  std::fflush(stdout);
}

void write_json(App& app, const AppOptions& options, const Totals& t, const Totals& at_warmup,
                double elapsed, double measured, unsigned pool_in_use) {
  std::ostringstream j;
  auto field = [&](const char* name, uint64_t v, bool comma = true) {
    j << "\"" << name << "\":" << v << (comma ? "," : "");
  };
  j << "{";
  j << "\"elapsed_s\":" << elapsed << ",\"measured_s\":" << measured << ",";
  j << "\"workers\":" << app.worker_lcores.size() << ",";
  j << "\"ports\":{\"access\":{\"driver\":\"" << app.access.driver << "\",";
  field("rx_packets", t.access_rx_packets);
  field("rx_bytes", t.access_rx_bytes);
  field("tx_packets", t.access_tx_packets);
  field("tx_bytes", t.access_tx_bytes, false);
  j << "},\"core\":{\"driver\":\"" << app.core.driver << "\",";
  field("rx_packets", t.core_rx_packets);
  field("rx_bytes", t.core_rx_bytes);
  field("tx_packets", t.core_tx_packets);
  field("tx_bytes", t.core_tx_bytes, false);
  j << "}},";
  field("decapsulated", t.decapsulated);
  field("encapsulated", t.encapsulated);
  field("ike_punted", t.ike_punted);
  field("ike_drained", app.ike_drained);
  field("fragments_reassembled", t.fragments_reassembled);
  field("fragments_created", t.fragments_created);
  field("icmp_sent", t.icmp_sent);
  j << "\"rates\":{";
  j << "\"decap_mpps\":" << mpps(t.decapsulated - at_warmup.decapsulated, measured) << ",";
  j << "\"encap_mpps\":" << mpps(t.encapsulated - at_warmup.encapsulated, measured) << ",";
  j << "\"access_rx_mpps\":" << mpps(t.access_rx_packets - at_warmup.access_rx_packets, measured) << ",";
  j << "\"core_rx_mpps\":" << mpps(t.core_rx_packets - at_warmup.core_rx_packets, measured) << ",";
  j << "\"core_tx_gbps\":" << gbps(t.core_tx_bytes - at_warmup.core_tx_bytes, measured) << ",";
  j << "\"access_tx_gbps\":" << gbps(t.access_tx_bytes - at_warmup.access_tx_bytes, measured);
  j << "},\"drops\":{";
  for (int r = 0; r < kDropReasonCount; ++r)
    j << (r ? "," : "") << "\"" << to_string(static_cast<DropReason>(r)) << "\":" << t.drops[r];
  j << "},";
  if (app.channel) {
    const auto& cc = app.channel->counters();
    j << "\"channel\":{";
    field("commands", cc.commands.load());
    field("commands_failed", cc.commands_failed.load());
    field("events", cc.events.load());
    field("events_suppressed", cc.events_suppressed.load());
    field("events_dropped", cc.events_dropped.load());
    field("punted", cc.punted.load());
    field("punt_ring_full", cc.punt_ring_full.load());
    field("punt_too_big", cc.punt_too_big.load());
    field("injected", cc.injected.load());
    field("inject_errors", cc.inject_errors.load(), false);
    j << "},";
  }
  field("mempool_in_use_at_exit", pool_in_use);
  field("mempool_in_use_at_start", app.initial_pool_in_use);
  field("sa_inbound", app.tables->inbound_count());
  field("sa_outbound", app.tables->outbound_count());
  field("sa_arena_reserved_bytes", app.tables->arena_reserved_bytes());
  field("sa_arena_objects_in_use", app.tables->arena_objects_in_use());
  j << "\"sa_footprint_bytes\":{\"inbound\":" << SaTables::sa_footprint(shared::kDefaultReplayWindow, true)
    << ",\"outbound\":" << SaTables::sa_footprint(0, false) << "},";
  j << "\"sas\":[";
  uint32_t listed = 0;
  bool first = true;
  app.tables->for_each_sa([&](const EspSa& sa) {
    if (listed++ >= options.stats_sa_limit) return;
    j << (first ? "" : ",") << "{\"spi\":" << sa.spi << ",\"name\":\"" << sa.name << "\",\"direction\":\""
      << shared::to_string(sa.direction) << "\",\"algorithm\":\"" << shared::to_string(sa.algorithm)
      << "\",\"packets\":" << sa.counters.packets.load() << ",\"bytes\":" << sa.counters.bytes.load()
      << ",\"new_source_packets\":" << sa.counters.new_source_packets.load()
      << ",\"soft_lifetime_reached\":" << (sa.counters.soft_lifetime_reached.load() ? "true" : "false")
      << ",\"hard_lifetime_reached\":" << (sa.counters.hard_lifetime_reached.load() ? "true" : "false")
      << ",\"drops\":{";
    bool first_drop = true;
    for (int r = 0; r < kDropReasonCount; ++r)
      if (uint64_t n = sa.counters.drops[r].load()) {
        j << (first_drop ? "" : ",") << "\"" << to_string(static_cast<DropReason>(r)) << "\":" << n;
        first_drop = false;
      }
    j << "}}";
    first = false;
  });
  j << "]}";
  std::ofstream out(options.stats_json_path);
  out << j.str() << "\n";
}

bool has_option(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (const auto& a : args)
    for (const char* n : names)
      if (a == n || a.rfind(std::string(n) + "=", 0) == 0) return true;
  return false;
}

}  // namespace

const char* embedded_default_config() { return kEmbeddedConfig; }

int run_dataplane(const AppOptions& options) {
  auto file = options.config_path.empty()
                  ? shared::ConfigFile::parse_text(kEmbeddedConfig, "<embedded>")
                  : shared::ConfigFile::load(options.config_path);
  if (!file) {
    std::fprintf(stderr, "segw-dataplane: %s\n", file.error().c_str());
    return 2;
  }
  auto config = DataplaneConfig::from_file(*file);
  if (!config) {
    std::fprintf(stderr, "segw-dataplane: %s\n", config.error().c_str());
    return 2;
  }
  if (options.check_config_only) {
    std::printf("configuration ok: access %s, core %s, %lu static SAs\n", config->access.device.c_str(),
                config->core.device.c_str(), static_cast<unsigned long>(config->sas.total()));
    if (config->channel.enabled)
      std::printf("channel: region '%s', inventory of %u SAs\n", config->channel.name.c_str(),
                  config->channel.inventory_capacity);
    else
      std::printf("channel: off (no [channel] section)\n");
    return 0;
  }

  App app;
  app.config = std::move(*config);
  std::vector<std::string> eal = {"segw-dataplane"};
  eal.insert(eal.end(), options.eal_arguments.begin(), options.eal_arguments.end());
  if (!has_option(options.eal_arguments, {"-l", "-c", "--lcores"})) eal.push_back("-l0,1");
  // Without a PCI port, keep EAL away from the host's PCI devices.
  if (!app.config.access.is_pci() && !app.config.core.is_pci() &&
      !has_option(options.eal_arguments, {"-a", "--allow", "-b", "--block", "--no-pci"}))
    eal.push_back("--no-pci");
  for (const PortConfig* port : {&app.config.access, &app.config.core}) {
    if (port->is_vdev()) eal.push_back("--vdev=" + port->device);
    else if (port->is_pci()) eal.push_back("-a" + port->device);
  }
  std::vector<char*> argv;
  for (auto& a : eal) argv.push_back(a.data());
  int consumed = rte_eal_init(static_cast<int>(argv.size()), argv.data());
  if (consumed < 0) {
    std::fprintf(stderr, "segw-dataplane: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  int exit_code = 0;
  do {
    unsigned worker_count = rte_lcore_count() - 1;
    if (worker_count == 0) {
      std::fprintf(stderr, "segw-dataplane: need at least two lcores (main + one worker), e.g. -l 0,1\n");
      exit_code = 2;
      break;
    }
    DataplaneConfig& c = app.config;
    uint32_t mbufs = c.mbufs;
    if (mbufs == 0) {
      mbufs = worker_count * (c.access.rx_descriptors + c.access.tx_descriptors + c.core.rx_descriptors +
                              c.core.tx_descriptors + 4 * kMaxEspBurst + c.mbuf_cache) +
              c.punt_ring_size + c.reassembly_flows * 2 + 4096 +
              (c.channel.enabled ? c.channel.inject_ring : 0);
    }
    app.pool = rte_pktmbuf_pool_create("segw_mbufs", mbufs, c.mbuf_cache, 0,
                                       static_cast<uint16_t>(c.mbuf_data_room), static_cast<int>(rte_socket_id()));
    if (!app.pool) {
      std::fprintf(stderr, "segw-dataplane: cannot create %u mbufs of %u bytes: %s (more hugepages, or [dataplane] mbufs)\n",
                   mbufs, c.mbuf_data_room, rte_strerror(rte_errno));
      exit_code = 1;
      break;
    }
    SaTableConfig table_config;
    table_config.capacity = c.sa_capacity;
    table_config.ipv4_tbl8_groups = c.ipv4_route_groups;
    table_config.ipv6_tbl8_groups = c.ipv6_route_groups;
    table_config.max_routes = c.max_routes ? c.max_routes : c.sa_capacity + 1024;
    table_config.max_workers = worker_count;
    table_config.anti_replay = c.anti_replay;
    if (!c.anti_replay)
      std::printf("segw-dataplane: anti_replay = no: replayed ESP is accepted (benchmarks only)\n");
    table_config.socket_id = static_cast<int>(rte_socket_id());
    auto tables = SaTables::create(table_config);
    if (!tables) {
      std::fprintf(stderr, "segw-dataplane: %s\n", tables.error().c_str());
      exit_code = 1;
      break;
    }
    app.tables = std::move(*tables);
    auto install_started = std::chrono::steady_clock::now();
    bool install_failed = false;
    for (const auto& t : c.sas.templates) {
      for (uint32_t i = 0; i < t.count && !install_failed; ++i) {
        auto sa = t.expand(i);
        auto status = app.tables->install(sa);
        shared::secure_zero(sa);
        if (!status) {
          std::fprintf(stderr, "segw-dataplane: [sa %s]: %s\n", t.base.name_view().data(), status.error().c_str());
          install_failed = true;
        }
      }
    }
    if (install_failed) {
      exit_code = 2;
      break;
    }
    double install_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - install_started).count();
    std::printf("segw-dataplane: %zu inbound + %zu outbound SAs installed in %.2f s (%zu + %zu bytes each)\n",
                app.tables->inbound_count(), app.tables->outbound_count(), install_seconds,
                SaTables::sa_footprint(shared::kDefaultReplayWindow, true), SaTables::sa_footprint(0, false));

    auto access = open_port(c.access, static_cast<uint16_t>(worker_count), app.pool, c.access_mtu);
    if (!access) {
      std::fprintf(stderr, "segw-dataplane: %s\n", access.error().c_str());
      exit_code = 1;
      break;
    }
    app.access = *access;
    app.access_open = true;
    auto core = open_port(c.core, static_cast<uint16_t>(worker_count), app.pool, 9000);
    if (!core) {
      std::fprintf(stderr, "segw-dataplane: %s\n", core.error().c_str());
      exit_code = 1;
      break;
    }
    app.core = *core;
    app.core_open = true;
    app.punt_ring = rte_ring_create("segw_ike_punt", c.punt_ring_size, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
    if (!app.punt_ring) {
      std::fprintf(stderr, "segw-dataplane: cannot create the IKE punt ring: %s\n", rte_strerror(rte_errno));
      exit_code = 1;
      break;
    }

    int punt_time_offset = -1;
    if (c.channel.enabled) {
      // Worker 0 sends the control plane's IKE: single producer (this
      // lcore), single consumer (that worker).
      app.inject_ring = rte_ring_create("segw_ike_inject", c.channel.inject_ring, static_cast<int>(rte_socket_id()),
                                        RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!app.inject_ring) {
        std::fprintf(stderr, "segw-dataplane: cannot create the IKE inject ring: %s\n", rte_strerror(rte_errno));
        exit_code = 1;
        break;
      }
      // Workers stamp each punted frame's arrival TSC here; PuntPacket
      // carries it as CLOCK_MONOTONIC.
      static const rte_mbuf_dynfield punt_time_field = {"segw_punt_arrival_tsc", sizeof(uint64_t),
                                                        alignof(uint64_t), 0};
      punt_time_offset = rte_mbuf_dynfield_register(&punt_time_field);
      if (punt_time_offset < 0)
        std::printf("segw-dataplane: no mbuf field for punt arrival times (%s): stamped when drained\n",
                    rte_strerror(rte_errno));
      ControlChannelSetup channel_setup;
      channel_setup.config = c.channel;
      channel_setup.tables = app.tables.get();
      channel_setup.inject.pool = app.pool;
      channel_setup.inject.access_port = app.access.id;
      channel_setup.inject.access_mac = app.access.mac;
      channel_setup.inject.next_hop_mac = c.access.next_hop_mac;
      channel_setup.inject.access_mtu = c.access_mtu;
      channel_setup.punt_ring = app.punt_ring;
      channel_setup.inject_ring = app.inject_ring;
      channel_setup.punt_time_offset = punt_time_offset;
      // Every worker enqueues, the control lcore dequeues; one notice per SA
      // at a time, so 4096 covers a mass remap between two control loops
      // (an overflow is picked up by the counter sweep).
      app.new_source_ring = rte_ring_create("segw_new_source", 4096, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
      if (!app.new_source_ring) {
        std::fprintf(stderr, "segw-dataplane: cannot create the new-source ring: %s\n", rte_strerror(rte_errno));
        exit_code = 1;
        break;
      }
      channel_setup.new_source_ring = app.new_source_ring;
      auto channel = ControlChannel::create(channel_setup);
      if (!channel) {
        std::fprintf(stderr, "segw-dataplane: %s\n", channel.error().c_str());
        exit_code = 1;
        break;
      }
      app.channel = std::move(*channel);
      std::printf("segw-dataplane: channel region %s (%s, %lu bytes, generation %lu), inventory of %u SAs\n",
                  app.channel->region().path().c_str(), app.channel->region().on_hugepages() ? "hugepages" : "shm",
                  static_cast<unsigned long>(app.channel->region().mapped_bytes()),
                  static_cast<unsigned long>(app.channel->region().own_generation()), c.channel.inventory_capacity);
    }

    WorkerSetup setup;
    setup.access_port = app.access.id;
    setup.core_port = app.core.id;
    setup.burst = c.burst;
    setup.punt_ring = app.punt_ring;
    setup.punt_time_offset = punt_time_offset;
    setup.reassembly_flows = c.reassembly_flows;
    setup.reassembly_timeout_ms = c.reassembly_timeout_ms;
    for (const auto& a : c.access.addresses) {
      auto& aa = setup.access_addresses;
      if (a.is_ipv4()) std::memcpy(&aa.ipv4_be[aa.ipv4_count++], a.bytes(), 4);
      else std::memcpy(aa.ipv6[aa.ipv6_count++], a.bytes(), 16);
    }
    setup.esp.tables = app.tables.get();
    setup.esp.pool = app.pool;
    setup.esp.access_mac = app.access.mac;
    setup.esp.access_next_hop = c.access.next_hop_mac;
    setup.esp.core_mac = app.core.mac;
    setup.esp.core_next_hop = c.core.next_hop_mac;
    setup.esp.access_mtu = static_cast<uint16_t>(c.access_mtu);
    setup.esp.df_policy = c.df_policy;
    setup.esp.new_source_ring = app.new_source_ring;
    for (const auto& a : c.core.addresses) {
      if (a.is_ipv4() && !setup.esp.have_core_ipv4) setup.esp.core_ipv4 = a, setup.esp.have_core_ipv4 = true;
      if (a.is_ipv6() && !setup.esp.have_core_ipv6) setup.esp.core_ipv6 = a, setup.esp.have_core_ipv6 = true;
    }
    unsigned lcore;
    uint16_t queue = 0;
    RTE_LCORE_FOREACH_WORKER(lcore) {
      setup.queue = queue;
      setup.rcu_thread_id = queue;
      setup.inject_ring = queue == 0 ? app.inject_ring : nullptr;
      app.workers.push_back(std::make_unique<Worker>(setup));
      app.worker_lcores.push_back(lcore);
      ++queue;
    }
    app.initial_pool_in_use = rte_mempool_in_use_count(app.pool);
    register_telemetry(app);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    for (size_t i = 0; i < app.workers.size(); ++i) {
      rte_eal_remote_launch(
          [](void* arg) -> int {
            auto* pair = static_cast<std::pair<Worker*, std::atomic<bool>*>*>(arg);
            pair->first->run(*pair->second);
            delete pair;
            return 0;
          },
          new std::pair<Worker*, std::atomic<bool>*>(app.workers[i].get(), &app.stop_workers), app.worker_lcores[i]);
    }
    std::printf("segw-dataplane: %zu worker(s); access %s (%s, rss %s), core %s (%s, rss %s)\n", app.workers.size(),
                c.access.port_name().c_str(), app.access.driver.c_str(), app.access.rss ? "on" : "off",
                c.core.port_name().c_str(), app.core.driver.c_str(), app.core.rss ? "on" : "off");
    std::fflush(stdout);

    // Main lcore = control lcore: with [channel], the channel's loop
    // (commands, punt/inject, inventory, RCU reclaim) polled without sleeping
    // while it finds work; without, drain the punt ring and reclaim. Both
    // print the stats line.
    auto started = std::chrono::steady_clock::now();
    auto last_print = started;
    Totals previous{}, at_warmup{};
    bool warmed = options.warmup_seconds <= 0;
    auto warmup_time = started;
    std::map<std::pair<uint32_t, int>, SaSnapshot> sa_snapshots;
    // Sleeps of idle_sleep_us mean that, not that plus the default 50 us of
    // timer slack (which doubled the command latency of an idle gateway:
    // bench/channel p50 114 -> 66 us). A spinning phase after each command
    // was tried and dropped: where the control process shares this core it
    // kept that process off it for a scheduler tick (p99 over 4 ms).
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    StatisticsPublisher statistics_publisher;
    uint64_t statistics_published_ns = 0;
    while (!stop_requested.load()) {
      if (app.channel) {
        if (!app.channel->poll() && c.channel.idle_sleep_us)
          std::this_thread::sleep_for(std::chrono::microseconds(c.channel.idle_sleep_us));
        uint64_t now_ns = shared::channel::Region::monotonic_now_ns();
        if (now_ns - statistics_published_ns >= uint64_t(c.channel.counters_refresh_ms) * 1000000) {
          statistics_publisher.publish(app, app.channel->statistics(), now_ns);
          statistics_published_ns = now_ns;
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        void* drained[64];
        unsigned n;
        while ((n = rte_ring_dequeue_burst(app.punt_ring, drained, 64, nullptr)) > 0) {
          app.ike_drained += n;
          rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(drained), n);
        }
        app.tables->reclaim();
      }
      auto now = std::chrono::steady_clock::now();
      double uptime = std::chrono::duration<double>(now - started).count();
      if (!warmed && uptime >= options.warmup_seconds) {
        at_warmup = app.totals();
        warmup_time = now;
        warmed = true;
      }
      double since_print = std::chrono::duration<double>(now - last_print).count();
      if (c.stats_interval && since_print >= c.stats_interval) {
        Totals current = app.totals();
        print_stats_line(app, current, previous, since_print, sa_snapshots, uptime);
        previous = current;
        last_print = now;
      }
      if (options.duration_seconds > 0 && uptime >= options.duration_seconds) break;
    }
    Totals final_totals = app.totals();
    auto ended = std::chrono::steady_clock::now();
    app.stop_workers.store(true);
    rte_eal_mp_wait_lcore();
    final_totals = app.totals();
    double elapsed = std::chrono::duration<double>(ended - started).count();
    double measured = std::chrono::duration<double>(ended - warmup_time).count();
    void* drained[64];
    unsigned n;
    if (app.channel) app.channel->drain();
    while (app.inject_ring && (n = rte_ring_dequeue_burst(app.inject_ring, drained, 64, nullptr)) > 0)
      rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(drained), n);
    while ((n = rte_ring_dequeue_burst(app.punt_ring, drained, 64, nullptr)) > 0) {
      app.ike_drained += n;
      rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(drained), n);
    }
    telemetry_app = nullptr;
    app.workers.clear();  // frees reassembly tables and what they held
    close_port(app.access);
    close_port(app.core);
    app.access_open = app.core_open = false;
    unsigned in_use = rte_mempool_in_use_count(app.pool);
    std::printf("segw-dataplane: stopped after %.1f s: decapsulated %lu, encapsulated %lu, drops %lu, mbufs in use %u\n",
                elapsed, static_cast<unsigned long>(final_totals.decapsulated),
                static_cast<unsigned long>(final_totals.encapsulated),
                static_cast<unsigned long>(final_totals.total_drops()), in_use);
    if (app.channel) {
      const auto& cc = app.channel->counters();
      std::printf("segw-dataplane: channel: commands %lu (failed %lu), events %lu (suppressed %lu, dropped %lu), "
                  "punted %lu (ring full %lu), injected %lu (errors %lu)\n",
                  static_cast<unsigned long>(cc.commands.load()), static_cast<unsigned long>(cc.commands_failed.load()),
                  static_cast<unsigned long>(cc.events.load()), static_cast<unsigned long>(cc.events_suppressed.load()),
                  static_cast<unsigned long>(cc.events_dropped.load()), static_cast<unsigned long>(cc.punted.load()),
                  static_cast<unsigned long>(cc.punt_ring_full.load()), static_cast<unsigned long>(cc.injected.load()),
                  static_cast<unsigned long>(cc.inject_errors.load()));
    }
    if (!options.stats_json_path.empty())
      write_json(app, options, final_totals, at_warmup, elapsed, measured, in_use);
  } while (false);

  app.channel.reset();  // before the tables its inventory points into
  app.workers.clear();
  if (app.access_open) close_port(app.access);
  if (app.core_open) close_port(app.core);
  app.tables.reset();
  rte_ring_free(app.punt_ring);
  rte_ring_free(app.inject_ring);
  rte_ring_free(app.new_source_ring);
  rte_mempool_free(app.pool);
  rte_eal_cleanup();
  return exit_code;
}

}  // namespace segw::dp
