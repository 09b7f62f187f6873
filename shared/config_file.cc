// Parser for the INI-like configuration format, with file:line errors.
#include "shared/config_file.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace segw::shared {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
}  // namespace

Result<ConfigFile> ConfigFile::parse_text(std::string_view text, std::string path) {
  ConfigFile file;
  file.path = std::move(path);
  int line_number = 0;
  size_t position = 0;
  while (position <= text.size()) {
    size_t end = text.find('\n', position);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(position, end - position);
    position = end + 1;
    ++line_number;
    auto hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) {
      if (end == text.size()) break;
      continue;
    }
    auto where = file.path + ":" + std::to_string(line_number) + ": ";
    if (line.front() == '[') {
      if (line.back() != ']') return make_error(where + "section header must end with ']'");
      auto inner = trim(line.substr(1, line.size() - 2));
      if (inner.empty()) return make_error(where + "empty section header");
      ConfigSection section;
      section.line = line_number;
      auto space = inner.find_first_of(" \t");
      section.type = std::string(inner.substr(0, space));
      if (space != std::string_view::npos) section.name = std::string(trim(inner.substr(space)));
      file.sections.push_back(std::move(section));
      continue;
    }
    auto equals = line.find('=');
    if (equals == std::string_view::npos)
      return make_error(where + "expected 'key = value', got '" + std::string(line) + "'");
    if (file.sections.empty()) return make_error(where + "key outside any [section]");
    ConfigEntry entry{std::string(trim(line.substr(0, equals))),
                      std::string(trim(line.substr(equals + 1))), line_number};
    if (entry.key.empty()) return make_error(where + "empty key");
    for (const auto& existing : file.sections.back().entries)
      if (existing.key == entry.key)
        return make_error(where + "key '" + entry.key + "' repeated (first at line " +
                          std::to_string(existing.line) + ")");
    file.sections.back().entries.push_back(std::move(entry));
    if (end == text.size()) break;
  }
  return file;
}

Result<ConfigFile> ConfigFile::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_text(buffer.str(), path);
}

std::optional<std::vector<uint8_t>> parse_hex(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  std::vector<uint8_t> bytes;
  int high = -1;
  for (char c : text) {
    if (c == ':' || c == ' ') continue;
    int nibble;
    if (c >= '0' && c <= '9') nibble = c - '0';
    else if (c >= 'a' && c <= 'f') nibble = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') nibble = c - 'A' + 10;
    else return std::nullopt;
    if (high < 0) {
      high = nibble;
    } else {
      bytes.push_back(static_cast<uint8_t>(high << 4 | nibble));
      high = -1;
    }
  }
  if (high >= 0) return std::nullopt;
  return bytes;
}

std::optional<uint64_t> parse_integer(std::string_view text) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    base = 16;
    text.remove_prefix(2);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

SectionReader::SectionReader(const ConfigFile& file, const ConfigSection& section)
    : file_(file), section_(section) {}

std::string SectionReader::where(std::string_view key) const {
  int line = section_.line;
  for (const auto& e : section_.entries)
    if (e.key == key) line = e.line;
  std::string header = section_.type + (section_.name.empty() ? "" : " " + section_.name);
  return file_.path + ":" + std::to_string(line) + ": [" + header + "] " + std::string(key);
}

const ConfigEntry* SectionReader::find(std::string_view key) {
  known_.emplace(key);
  for (const auto& e : section_.entries)
    if (e.key == key) return &e;
  return nullptr;
}

bool SectionReader::has(std::string_view key) const {
  for (const auto& e : section_.entries)
    if (e.key == key) return true;
  return false;
}

void SectionReader::fail(std::string_view key, const std::string& what) {
  if (error_.empty()) error_ = where(key) + ": " + what;
}

std::optional<std::string> SectionReader::text(std::string_view key) {
  const auto* e = find(key);
  if (!e) return std::nullopt;
  return e->value;
}

std::string SectionReader::text_or(std::string_view key, std::string fallback) {
  auto v = text(key);
  return v ? *v : std::move(fallback);
}

std::string SectionReader::required_text(std::string_view key) {
  auto v = text(key);
  if (!v || v->empty()) {
    fail(key, "required key is missing");
    return {};
  }
  return *v;
}

uint64_t SectionReader::integer_or(std::string_view key, uint64_t fallback, uint64_t min,
                                   uint64_t max) {
  auto v = text(key);
  if (!v) return fallback;
  auto parsed = parse_integer(*v);
  if (!parsed) {
    fail(key, "expected an integer, got '" + *v + "'");
    return fallback;
  }
  if (*parsed < min || *parsed > max) {
    fail(key, "value " + *v + " out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]");
    return fallback;
  }
  return *parsed;
}

uint64_t SectionReader::required_integer(std::string_view key, uint64_t min, uint64_t max) {
  if (!has(key)) {
    find(key);
    fail(key, "required key is missing");
    return min;
  }
  return integer_or(key, min, min, max);
}

bool SectionReader::boolean_or(std::string_view key, bool fallback) {
  auto v = text(key);
  if (!v) return fallback;
  if (*v == "yes" || *v == "true" || *v == "on" || *v == "1") return true;
  if (*v == "no" || *v == "false" || *v == "off" || *v == "0") return false;
  fail(key, "expected yes/no, got '" + *v + "'");
  return fallback;
}

std::optional<IpAddress> SectionReader::address(std::string_view key) {
  auto v = text(key);
  if (!v) return std::nullopt;
  auto parsed = IpAddress::parse(*v);
  if (!parsed) fail(key, "expected an IPv4 or IPv6 address, got '" + *v + "'");
  return parsed;
}

IpAddress SectionReader::required_address(std::string_view key) {
  if (!has(key)) {
    find(key);
    fail(key, "required key is missing");
    return {};
  }
  auto a = address(key);
  return a ? *a : IpAddress{};
}

std::vector<uint8_t> SectionReader::hex_bytes(std::string_view key, size_t length) {
  auto v = text(key);
  if (!v) {
    fail(key, "required key is missing (" + std::to_string(length) + " bytes of hex)");
    return {};
  }
  auto bytes = parse_hex(*v);
  if (!bytes) {
    fail(key, "not a hex string");
    return {};
  }
  if (bytes->size() != length) {
    fail(key, "expected " + std::to_string(length) + " bytes, got " + std::to_string(bytes->size()));
    return {};
  }
  return *bytes;
}

Status SectionReader::finish() {
  if (!error_.empty()) return make_error(error_);
  for (const auto& e : section_.entries)
    if (!known_.contains(e.key))
      return make_error(where(e.key) + ": unknown key");
  return {};
}

}  // namespace segw::shared
