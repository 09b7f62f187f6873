// Parser for [sa] sections: keys, algorithms, paths, selectors, expansion.
#include "shared/static_sa.h"

#include <cstring>
#include <map>

#include "shared/wire.h"

namespace segw::shared {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Size of a selector's address range as a 128-bit count; 0 means the whole
// address space (2^128, or 2^32 for IPv4 "any"), which never shifts.
unsigned __int128 selector_span(const TrafficSelector& ts) {
  unsigned __int128 lo = 0, hi = 0;
  for (size_t i = 0; i < ts.start.byte_length(); ++i) {
    lo = lo << 8 | ts.start.bytes()[i];
    hi = hi << 8 | ts.end.bytes()[i];
  }
  unsigned __int128 span = hi - lo + 1;  // wraps to 0 for ::/0
  if (ts.start.is_ipv4() && span == (static_cast<unsigned __int128>(1) << 32)) return 0;
  return span;
}

// address + offset, as a big-endian integer of the address's width (wraps).
IpAddress add_offset(const IpAddress& address, unsigned __int128 offset) {
  uint8_t bytes[16] = {};
  size_t n = address.byte_length();
  std::memcpy(bytes, address.bytes(), n);
  unsigned carry = 0;
  for (size_t i = n; i-- > 0;) {
    unsigned sum = bytes[i] + static_cast<unsigned>(offset & 0xff) + carry;
    bytes[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
    offset >>= 8;
  }
  return address.is_ipv4() ? IpAddress::from_ipv4_bytes(bytes) : IpAddress::from_ipv6_bytes(bytes);
}
}  // namespace

Result<std::vector<TrafficSelector>> parse_selector_list(std::string_view text) {
  std::vector<TrafficSelector> selectors;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = trim(text.substr(0, comma));
    bool more = comma != std::string_view::npos;
    text = more ? text.substr(comma + 1) : std::string_view{};
    if (item.empty() || (more && trim(text).empty())) return make_error("empty selector in list");
    if (item == "any") {
      selectors.push_back(TrafficSelector::from_prefix(*IpPrefix::parse("0.0.0.0/0")));
      selectors.push_back(TrafficSelector::from_prefix(*IpPrefix::parse("::/0")));
      continue;
    }
    auto dash = item.find('-');
    if (dash != std::string_view::npos) {
      auto start = IpAddress::parse(trim(item.substr(0, dash)));
      auto end = IpAddress::parse(trim(item.substr(dash + 1)));
      if (!start || !end || start->family() != end->family() || *end < *start)
        return make_error("bad address range '" + std::string(item) + "'");
      TrafficSelector ts;
      ts.start = *start;
      ts.end = *end;
      selectors.push_back(ts);
      continue;
    }
    auto prefix = IpPrefix::parse(item);
    if (!prefix) return make_error("bad prefix '" + std::string(item) + "'");
    selectors.push_back(TrafficSelector::from_prefix(*prefix));
  }
  if (selectors.empty()) return make_error("no selectors");
  if (selectors.size() > kMaxSelectors)
    return make_error("at most " + std::to_string(kMaxSelectors) + " selectors");
  return selectors;
}

SaDescriptor StaticSaTemplate::expand(uint32_t index) const {
  SaDescriptor sa = base;
  if (index == 0) return sa;
  sa.spi = base.spi + index;
  sa.tunnel_id = base.tunnel_id + index;
  for (int i = 0; i < sa.remote_selector_count; ++i) {
    auto& ts = sa.remote_selectors[i];
    unsigned __int128 span = selector_span(ts);
    if (span == 0) continue;  // "any" stays any
    ts.start = add_offset(ts.start, span * index);
    ts.end = add_offset(ts.end, span * index);
  }
  sa.path.remote = base.path.remote.plus(remote_address_step * index);
  if (remote_port_step != 0) {
    uint64_t offset = (uint64_t{base.path.remote_port} - 1024 + uint64_t{remote_port_step} * index) % 64512;
    sa.path.remote_port = static_cast<uint16_t>(1024 + offset);
  }
  std::string label = std::string(base.name_view()) + "#" + std::to_string(index);
  sa.set_name(label);
  return sa;
}

uint64_t StaticSaSet::total() const {
  uint64_t n = 0;
  for (const auto& t : templates) n += t.count;
  return n;
}

Result<StaticSaSet> parse_static_sas(const ConfigFile& file) {
  StaticSaSet set;
  std::map<std::string, uint32_t> tunnel_ids;     // name -> first id
  std::map<std::string, uint32_t> tunnel_counts;  // name -> count of its SAs' template
  std::map<std::string, PathDescriptor> tunnel_paths;
  std::map<std::string, std::pair<uint64_t, uint32_t>> tunnel_steps;
  uint32_t next_tunnel_id = 1;
  for (const auto& section : file.sections) {
    if (section.type != "sa") continue;
    SectionReader r(file, section);
    if (section.name.empty()) r.fail("name", "an [sa NAME] section needs a name");
    StaticSaTemplate t;
    SaDescriptor& sa = t.base;
    sa.set_name(section.name);

    auto direction = r.required_text("direction");
    if (direction == "inbound") sa.direction = SaDirection::kInbound;
    else if (direction == "outbound") sa.direction = SaDirection::kOutbound;
    else if (!direction.empty()) r.fail("direction", "expected inbound or outbound, got '" + direction + "'");

    sa.spi = static_cast<uint32_t>(r.required_integer("spi", kMinimumSpi, 0xffffffff));
    t.count = static_cast<uint32_t>(r.integer_or("count", 1, 1, 1u << 24));
    if (uint64_t{sa.spi} + t.count - 1 > 0xffffffff) r.fail("count", "SPI range passes 0xffffffff");

    auto algorithm_name = r.text_or("algorithm", "aes-gcm-128");
    auto algorithm = parse_esp_algorithm(algorithm_name);
    if (!algorithm) {
      std::string names;
      for (int i = 0; i < kEspAlgorithmCount; ++i)
        names += std::string(i ? ", " : "") + to_string(static_cast<EspAlgorithm>(i));
      r.fail("algorithm", "unknown algorithm '" + algorithm_name + "' (known: " + names + ")");
      algorithm = EspAlgorithm::kAesGcm128;
    }
    sa.algorithm = *algorithm;
    const auto& props = properties(sa.algorithm);
    auto key = r.hex_bytes("encryption_key", props.cipher_key_length);
    std::copy(key.begin(), key.end(), sa.cipher_key.begin());
    secure_zero(key.data(), key.size());
    if (props.integrity_key_length) {
      auto ikey = r.hex_bytes("integrity_key", props.integrity_key_length);
      std::copy(ikey.begin(), ikey.end(), sa.integrity_key.begin());
      secure_zero(ikey.data(), ikey.size());
    } else if (r.has("integrity_key")) {
      r.fail("integrity_key", std::string("not used by ") + props.name + " (AEAD)");
    }
    if (props.salt_length) {
      auto salt = r.hex_bytes("salt", props.salt_length);
      std::copy(salt.begin(), salt.end(), sa.salt.begin());
      secure_zero(salt.data(), salt.size());
    } else if (r.has("salt")) {
      r.fail("salt", std::string("not used by ") + props.name);
    }

    sa.esn = r.boolean_or("esn", false);
    sa.replay_window = static_cast<uint32_t>(
        r.integer_or("replay_window", kDefaultReplayWindow, kMinReplayWindow, kMaxReplayWindow));
    if (sa.direction == SaDirection::kOutbound && r.has("replay_window"))
      r.fail("replay_window", "only inbound SAs have a replay window");

    sa.path.local = r.required_address("local_address");
    sa.path.remote = r.required_address("remote_address");
    if (r.ok() && sa.path.local.family() != sa.path.remote.family())
      r.fail("remote_address", "local_address and remote_address are of different families");
    sa.path.local_port = static_cast<uint16_t>(r.integer_or("local_port", kNatTraversalPort, 1, 65535));
    sa.path.remote_port = static_cast<uint16_t>(r.integer_or("remote_port", kNatTraversalPort, 1, 65535));
    sa.path.udp_encapsulation = r.boolean_or("udp_encapsulation", true);
    t.remote_address_step = r.integer_or("remote_address_step", 0, 0, 1ull << 32);
    t.remote_port_step = static_cast<uint32_t>(r.integer_or("remote_port_step", 0, 0, 65535));

    auto parse_list = [&](const char* key, const char* fallback,
                          std::array<TrafficSelector, kMaxSelectors>& out, uint8_t& count) {
      auto text = r.text_or(key, fallback);
      auto list = parse_selector_list(text);
      if (!list) {
        r.fail(key, list.error());
        return;
      }
      count = static_cast<uint8_t>(list->size());
      std::copy(list->begin(), list->end(), out.begin());
    };
    parse_list("local_selector", "any", sa.local_selectors, sa.local_selector_count);
    if (sa.direction == SaDirection::kOutbound && !r.has("remote_selector"))
      r.fail("remote_selector", "required for outbound SAs: it is the route to the tunnel");
    parse_list("remote_selector", "any", sa.remote_selectors, sa.remote_selector_count);

    sa.lifetime.soft_bytes = r.integer_or("lifetime_soft_bytes", 0, 0, UINT64_MAX);
    sa.lifetime.hard_bytes = r.integer_or("lifetime_hard_bytes", 0, 0, UINT64_MAX);
    sa.lifetime.soft_packets = r.integer_or("lifetime_soft_packets", 0, 0, UINT64_MAX);
    sa.lifetime.hard_packets = r.integer_or("lifetime_hard_packets", 0, 0, UINT64_MAX);

    t.tunnel_name = r.text_or("tunnel", section.name);
    auto status = r.finish();
    if (!status) return make_error(status.error());

    // SAs naming one tunnel share its id range and must agree on the path.
    auto [it, inserted] = tunnel_ids.try_emplace(t.tunnel_name, next_tunnel_id);
    if (inserted) {
      next_tunnel_id += t.count;
      tunnel_counts[t.tunnel_name] = t.count;
      tunnel_paths[t.tunnel_name] = sa.path;
      tunnel_steps[t.tunnel_name] = {t.remote_address_step, t.remote_port_step};
    } else {
      SectionReader again(file, section);
      if (tunnel_counts[t.tunnel_name] != t.count)
        return make_error(again.where("count") + ": SAs of tunnel '" + t.tunnel_name +
                          "' must have the same count");
      if (!(tunnel_paths[t.tunnel_name] == sa.path))
        return make_error(again.where("remote_address") + ": SAs of tunnel '" + t.tunnel_name +
                          "' must have the same path (addresses, ports, udp_encapsulation)");
      if (tunnel_steps[t.tunnel_name] != std::make_pair(t.remote_address_step, t.remote_port_step))
        return make_error(again.where("remote_address_step") + ": SAs of tunnel '" + t.tunnel_name +
                          "' must have the same remote_address_step and remote_port_step");
    }
    sa.tunnel_id = it->second;
    set.templates.push_back(t);
    secure_zero(sa);
  }
  return set;
}

}  // namespace segw::shared
