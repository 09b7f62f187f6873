// Reading and validating the segw-dataplane configuration.
#include "dataplane/config/dataplane_config.h"

#include <bit>
#include <cctype>
#include <regex>

namespace segw::dp {

using shared::make_error;
using shared::SectionReader;

std::string PortConfig::port_name() const { return device.substr(0, device.find(',')); }

bool PortConfig::is_vdev() const { return device.rfind("net_", 0) == 0 || device.rfind("eth_", 0) == 0; }

bool PortConfig::is_pci() const {
  static const std::regex pci(R"(^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$)");
  return std::regex_match(port_name(), pci);
}

namespace {

shared::Status read_port(const shared::ConfigFile& file, const shared::ConfigSection& section,
                         PortConfig& port) {
  SectionReader r(file, section);
  port.role = section.name;
  port.device = r.required_text("device");
  auto mac_text = r.required_text("next_hop_mac");
  if (!mac_text.empty() && rte_ether_unformat_addr(mac_text.c_str(), &port.next_hop_mac) != 0)
    r.fail("next_hop_mac", "expected a MAC address like 02:00:00:00:00:01, got '" + mac_text + "'");
  auto addresses = r.text("address");
  if (addresses) {
    std::string_view rest = *addresses;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      auto parsed = shared::IpAddress::parse(item);
      if (!parsed) {
        r.fail("address", "not an IPv4 or IPv6 address: '" + std::string(item) + "'");
        break;
      }
      port.addresses.push_back(*parsed);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  if (port.role == "access" && port.addresses.empty())
    r.fail("address", "the access port needs at least one address (ESP and IKE are addressed to it)");
  if (port.addresses.size() > 8) r.fail("address", "at most 8 addresses");
  auto rx = r.integer_or("rx_descriptors", 1024, 64, 16384);
  auto tx = r.integer_or("tx_descriptors", 1024, 64, 16384);
  if (r.ok() && !std::has_single_bit(rx)) r.fail("rx_descriptors", "must be a power of two");
  if (r.ok() && !std::has_single_bit(tx)) r.fail("tx_descriptors", "must be a power of two");
  port.rx_descriptors = static_cast<uint16_t>(rx);
  port.tx_descriptors = static_cast<uint16_t>(tx);
  return r.finish();
}

shared::Status read_channel(const shared::ConfigFile& file, const shared::ConfigSection& section,
                            ChannelConfig& channel) {
  SectionReader r(file, section);
  channel.enabled = r.boolean_or("enabled", true);
  channel.name = r.text_or("name", "segw");
  // Region::create checks again; here so --check-config catches it.
  bool name_ok = !channel.name.empty() && channel.name.size() <= 200 && channel.name.front() != '.';
  for (char c : channel.name)
    name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!name_ok)
    r.fail("name", "expected 1 to 200 letters, digits, '.', '_' or '-' (not starting with '.'), got '" +
                       channel.name + "'");
  channel.directory = r.text_or("directory", "");
  if (!channel.directory.empty() && channel.directory.front() != '/')
    r.fail("directory", "expected an absolute path, got '" + channel.directory + "'");
  auto backing = r.text_or("backing", "auto");
  if (backing == "auto") channel.backing = ChannelConfig::Backing::kAutomatic;
  else if (backing == "hugepages") channel.backing = ChannelConfig::Backing::kHugepages;
  else if (backing == "shm") channel.backing = ChannelConfig::Backing::kSharedMemory;
  else r.fail("backing", "expected auto, hugepages or shm, got '" + backing + "'");
  auto ring = [&](const char* key, uint32_t fallback, uint32_t& out) {
    out = static_cast<uint32_t>(r.integer_or(key, fallback, 2, 1u << 20));
    if (r.ok() && !std::has_single_bit(out)) r.fail(key, "must be a power of two, got " + std::to_string(out));
  };
  ring("command_ring", 4096, channel.command_ring);
  ring("completion_ring", 4096, channel.completion_ring);
  ring("event_ring", 4096, channel.event_ring);
  ring("punt_ring", 1024, channel.punt_ring);
  ring("inject_ring", 1024, channel.inject_ring);
  channel.inventory_capacity = static_cast<uint32_t>(r.integer_or("inventory_capacity", 0, 0, 1u << 24));
  channel.command_batch = static_cast<uint32_t>(r.integer_or("command_batch", 256, 1, 65536));
  channel.event_interval_ms = static_cast<uint32_t>(r.integer_or("event_interval_ms", 1000, 0, 3600000));
  channel.idle_timeout_ms = static_cast<uint32_t>(r.integer_or("idle_timeout_ms", 0, 0, 86400000));
  channel.sequence_margin = r.integer_or("sequence_margin", 1u << 24, 1, 1ull << 63);
  channel.counters_refresh_ms = static_cast<uint32_t>(r.integer_or("counters_refresh_ms", 1000, 10, 3600000));
  channel.idle_sleep_us = static_cast<uint32_t>(r.integer_or("idle_sleep_us", 50, 0, 100000));
  return r.finish();
}

}  // namespace

shared::Result<DataplaneConfig> DataplaneConfig::from_file(const shared::ConfigFile& file) {
  DataplaneConfig config;
  bool have_access = false, have_core = false, have_channel = false;
  for (const auto& section : file.sections) {
    if (section.type == "sa") continue;
    if (section.type == "dataplane") {
      SectionReader r(file, section);
      config.burst = static_cast<uint32_t>(r.integer_or("burst", 32, 1, kMaxEspBurst / 2));
      config.mbufs = static_cast<uint32_t>(r.integer_or("mbufs", 0, 0, 1u << 26));
      config.mbuf_data_room = static_cast<uint32_t>(r.integer_or("mbuf_data_room", 2048 + 128, 512 + 128, 65535));
      config.mbuf_cache = static_cast<uint32_t>(r.integer_or("mbuf_cache", 256, 0, 512));
      config.sa_capacity = static_cast<uint32_t>(r.integer_or("sa_capacity", 1u << 18, 2, 1u << 24));
      config.max_routes = static_cast<uint32_t>(r.integer_or("max_routes", 0, 0, 1u << 26));
      if (r.ok() && !std::has_single_bit(config.sa_capacity))
        r.fail("sa_capacity", "must be a power of two (inbound SPIs carry log2(sa_capacity) index bits)");
      config.ipv4_route_groups = static_cast<uint32_t>(r.integer_or("ipv4_route_groups", 1u << 14, 1, 1u << 24));
      config.ipv6_route_groups = static_cast<uint32_t>(r.integer_or("ipv6_route_groups", 1u << 14, 1, 1u << 24));
      config.stats_interval = static_cast<uint32_t>(r.integer_or("stats_interval", 1, 0, 3600));
      config.access_mtu = static_cast<uint32_t>(r.integer_or("access_mtu", 1500, 576, 9000));
      auto policy = r.text_or("df_policy", "honour");
      if (policy == "honour") config.df_policy = DfPolicy::kHonour;
      else if (policy == "ignore") config.df_policy = DfPolicy::kIgnore;
      else r.fail("df_policy", "expected honour or ignore, got '" + policy + "'");
      config.punt_ring_size = static_cast<uint32_t>(r.integer_or("punt_ring_size", 1024, 64, 1u << 20));
      if (r.ok() && !std::has_single_bit(config.punt_ring_size))
        r.fail("punt_ring_size", "must be a power of two");
      config.reassembly_flows = static_cast<uint32_t>(r.integer_or("reassembly_flows", 4096, 16, 1u << 20));
      config.reassembly_timeout_ms = static_cast<uint32_t>(r.integer_or("reassembly_timeout_ms", 2000, 1, 60000));
      config.anti_replay = r.boolean_or("anti_replay", true);
      auto status = r.finish();
      if (!status) return make_error(status.error());
    } else if (section.type == "port") {
      PortConfig* port;
      if (section.name == "access") {
        if (have_access) return make_error(file.path + ":" + std::to_string(section.line) + ": [port access] repeated");
        port = &config.access;
        have_access = true;
      } else if (section.name == "core") {
        if (have_core) return make_error(file.path + ":" + std::to_string(section.line) + ": [port core] repeated");
        port = &config.core;
        have_core = true;
      } else {
        return make_error(file.path + ":" + std::to_string(section.line) + ": [port " + section.name +
                          "]: expected [port access] or [port core]");
      }
      auto status = read_port(file, section, *port);
      if (!status) return make_error(status.error());
    } else if (section.type == "channel") {
      if (have_channel) return make_error(file.path + ":" + std::to_string(section.line) + ": [channel] repeated");
      have_channel = true;
      auto status = read_channel(file, section, config.channel);
      if (!status) return make_error(status.error());
    } else {
      return make_error(file.path + ":" + std::to_string(section.line) + ": unknown section [" + section.type +
                        "] (known: dataplane, port access, port core, channel, sa)");
    }
  }
  if (!have_access) return make_error(file.path + ": missing section [port access]");
  if (!have_core) return make_error(file.path + ": missing section [port core]");
  if (config.access.port_name() == config.core.port_name())
    return make_error(file.path + ": [port access] and [port core] name the same device");
  if (config.channel.enabled) {
    uint64_t inventory = config.channel.inventory_capacity ? config.channel.inventory_capacity
                                                           : 2ull * config.sa_capacity;
    if (inventory > (1u << 24))
      return make_error(file.path + ": [channel] inventory_capacity: 2 * sa_capacity = " + std::to_string(inventory) +
                        " exceeds 16777216; set inventory_capacity");
    config.channel.inventory_capacity = static_cast<uint32_t>(inventory);
  }
  auto sas = shared::parse_static_sas(file);
  if (!sas) return make_error(sas.error());
  config.sas = std::move(*sas);
  return config;
}

}  // namespace segw::dp
