// The segw configuration file format: INI-like sections of `key = value`
// lines, with file:line in every error. Used by the data plane's config and
// by the static SA format (so segwctl and tests read the same files).
//
//   # comment
//   [section]            type only
//   [sa to-fap-1]        type and name
//   key = value          value runs to end of line; surrounding spaces trimmed
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "shared/ip_address.h"
#include "shared/result.h"

namespace segw::shared {

struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0;
};

struct ConfigSection {
  std::string type;
  std::string name;
  int line = 0;
  std::vector<ConfigEntry> entries;
};

struct ConfigFile {
  std::string path;
  std::vector<ConfigSection> sections;

  static Result<ConfigFile> parse_text(std::string_view text, std::string path);
  static Result<ConfigFile> load(const std::string& path);
};

// Typed access to one section. Each getter records the key as known;
// finish() then rejects keys nobody asked for (typos must not pass silently).
// The first error sticks; later calls return defaults.
class SectionReader {
 public:
  SectionReader(const ConfigFile& file, const ConfigSection& section);

  bool has(std::string_view key) const;
  std::optional<std::string> text(std::string_view key);
  std::string text_or(std::string_view key, std::string fallback);
  std::string required_text(std::string_view key);
  // Integers accept decimal or 0x-prefixed hex; range checked.
  uint64_t integer_or(std::string_view key, uint64_t fallback, uint64_t min, uint64_t max);
  uint64_t required_integer(std::string_view key, uint64_t min, uint64_t max);
  bool boolean_or(std::string_view key, bool fallback);
  std::optional<IpAddress> address(std::string_view key);
  IpAddress required_address(std::string_view key);
  // Hex string (optional 0x, optional ':' separators) of exactly `length` bytes.
  std::vector<uint8_t> hex_bytes(std::string_view key, size_t length);

  // Records an error about `key` (the caller's own validation).
  void fail(std::string_view key, const std::string& what);
  Status finish();
  bool ok() const { return error_.empty(); }
  std::string where(std::string_view key) const;  // "file:line: [sa x] key"

 private:
  const ConfigEntry* find(std::string_view key);

  const ConfigFile& file_;
  const ConfigSection& section_;
  std::set<std::string, std::less<>> known_;
  std::string error_;
};

std::optional<std::vector<uint8_t>> parse_hex(std::string_view text);
std::optional<uint64_t> parse_integer(std::string_view text);

}  // namespace segw::shared
