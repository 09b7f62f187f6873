// The static SA file format (documented in configs/README.md): `[sa NAME]`
// sections describing ESP SAs with their keys, path and selectors. Used by
// segw-dataplane standalone, by tests and benchmarks, and later by segwctl.
// A section with `count = N` stands for N SAs (scale tests, benchmarks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/config_file.h"
#include "shared/sa_descriptor.h"

namespace segw::shared {

// One [sa] section. expand(i) yields its i-th SA (0 <= i < count):
//   spi + i, remote selectors shifted by i prefixes of their own size,
//   remote address + i * remote_address_step, remote port + i * remote_port_step
//   (kept within 1024..65535), tunnel id + i.
struct StaticSaTemplate {
  SaDescriptor base;
  uint32_t count = 1;
  uint64_t remote_address_step = 0;
  uint32_t remote_port_step = 0;
  std::string tunnel_name;

  SaDescriptor expand(uint32_t index) const;
  ~StaticSaTemplate() { secure_zero(base); }
  StaticSaTemplate() = default;
  StaticSaTemplate(const StaticSaTemplate&) = default;
  StaticSaTemplate& operator=(const StaticSaTemplate&) = default;
};

struct StaticSaSet {
  std::vector<StaticSaTemplate> templates;
  uint64_t total() const;
};

// Reads every [sa ...] section of `file`; other sections are ignored.
// Errors name file:line, the section, the key and what is wrong.
Result<StaticSaSet> parse_static_sas(const ConfigFile& file);

// "10.0.0.0/24, 10.1.0.1-10.1.0.9" -> selectors; "any" -> 0.0.0.0/0 and ::/0.
Result<std::vector<TrafficSelector>> parse_selector_list(std::string_view text);

}  // namespace segw::shared
