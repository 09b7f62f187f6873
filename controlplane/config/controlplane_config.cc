// segw-controlplane's configuration file: identities and identity patterns
// (DNs through OpenSSL), the [controlplane] / [pool] / [secret] / [profile]
// sections, and the cross-checks made at load time (proposals, pools,
// secrets, certificate and key files).
#include "controlplane/config/controlplane_config.h"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "controlplane/crypto/openssl_types.h"
#include "controlplane/crypto/x509.h"
#include "controlplane/policy/proposals.h"
#include "shared/config_file.h"
#include "shared/sa_descriptor.h"

namespace segw::cp::config {

using shared::ConfigFile;
using shared::ConfigSection;
using shared::IpAddress;
using shared::IpPrefix;
using shared::make_error;
using shared::Result;
using shared::SectionReader;
using shared::Status;

const char* to_string(TransportKind kind) {
  switch (kind) {
    case TransportKind::kDataPlane: return "dataplane";
    case TransportKind::kUdp: return "udp";
  }
  return "unknown";
}

const char* to_string(RemapPolicy policy) {
  switch (policy) {
    case RemapPolicy::kVerify: return "verify";
    case RemapPolicy::kFollow: return "follow";
    case RemapPolicy::kOff: return "off";
  }
  return "unknown";
}

const char* to_string(AuthKind kind) {
  switch (kind) {
    case AuthKind::kPsk: return "psk";
    case AuthKind::kPublicKey: return "pubkey";
  }
  return "unknown";
}

namespace {

// ---------------------------------------------------------------------------
// Text helpers.

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view as_text(std::span<const uint8_t> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// Comma-separated list, items trimmed. nullopt: an empty item ("a,,b", "a,").
std::optional<std::vector<std::string>> split_list(std::string_view text) {
  std::vector<std::string> items;
  text = trim(text);
  if (text.empty()) return items;
  while (true) {
    auto comma = text.find(',');
    auto item = trim(text.substr(0, comma));
    if (item.empty()) return std::nullopt;
    items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

// Section and pool names: they appear in `pools = a, b`, logs and the API.
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

// Host names as identities: letters, digits, '-', '_' and '.' (RFC 1123
// plus the '_' some operators use in device names).
bool valid_fqdn(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

bool valid_email(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '*' || c == ',') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Distinguished names. The text form is strongSwan's: RDNs in DER order,
// outermost first ("C=DE, O=Operator, CN=gw"), separated by ','. (RFC 4514
// and OpenSSL's "/C=DE/O=..." are other forms, not accepted: one form
// only.) A '\' escapes the next character (\, \= \+ \\). Attribute types
// are OpenSSL's short or long names or dotted OIDs, normalised to the
// short name ("commonName" -> "CN").

using Rdns = std::vector<std::pair<std::string, std::string>>;

using Asn1ObjectPtr = crypto::OpenSslPtr<ASN1_OBJECT, ASN1_OBJECT_free>;

// The printable name of an attribute type: OpenSSL's short name, or the
// dotted OID for types OpenSSL does not know.
std::string object_name(const ASN1_OBJECT* object) {
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) {
    const char* sn = OBJ_nid2sn(nid);
    if (sn) return sn;
  }
  char buffer[128];
  int length = OBJ_obj2txt(buffer, sizeof(buffer), object, 1);
  if (length <= 0 || static_cast<size_t>(length) >= sizeof(buffer)) return "?";
  return std::string(buffer, static_cast<size_t>(length));
}

Result<Asn1ObjectPtr> attribute_type(const std::string& type) {
  Asn1ObjectPtr object(OBJ_txt2obj(type.c_str(), 0));
  if (!object) {
    crypto::drain_openssl_errors();
    return make_error("unknown DN attribute type '" + type + "'");
  }
  return object;
}

// Splits DN text into (type, value) pairs; types normalised.
Result<Rdns> parse_dn_text(std::string_view text) {
  Rdns rdns;
  std::string type;
  std::string value;
  bool in_value = false;
  bool escaped_tail = false;  // the value's last character came from an escape
  auto flush = [&]() -> shared::Status {
    auto t = std::string(trim(type));
    std::string v = value;
    // Trim the value, but keep an escaped trailing space.
    size_t start = 0;
    while (start < v.size() && std::isspace(static_cast<unsigned char>(v[start]))) ++start;
    v.erase(0, start);
    if (!escaped_tail)
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    if (!in_value) {
      if (t.empty()) return make_error("empty RDN (two ',' in a row, or a ',' at an end)");
      return make_error("RDN '" + t + "' has no '='");
    }
    if (t.empty()) return make_error("RDN '=" + v + "' has no attribute type");
    if (v.empty()) return make_error("RDN '" + t + "=' has an empty value");
    auto object = attribute_type(t);
    if (!object) return make_error(object.error());
    rdns.emplace_back(object_name(object->get()), std::move(v));
    type.clear();
    value.clear();
    in_value = false;
    escaped_tail = false;
    return {};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 == text.size()) return make_error("'\\' at the end of the DN");
      char next = text[++i];
      (in_value ? value : type).push_back(next);
      escaped_tail = in_value;
      continue;
    }
    if (c == ',') {
      auto status = flush();
      if (!status) return make_error(status.error());
      continue;
    }
    if (c == '+')
      return make_error("multi-valued RDNs ('+') are not supported; escape a literal '+' as '\\+'");
    if (c == '=' && !in_value) {
      in_value = true;
      continue;
    }
    (in_value ? value : type).push_back(c);
    if (in_value && !std::isspace(static_cast<unsigned char>(c))) escaped_tail = false;
  }
  auto status = flush();
  if (!status) return make_error(status.error());
  return rdns;
}

Result<std::vector<uint8_t>> dn_to_der(const Rdns& rdns) {
  crypto::X509NamePtr name(X509_NAME_new());
  if (!name) return crypto::openssl_error("X509_NAME_new");
  for (const auto& [type, value] : rdns) {
    auto object = attribute_type(type);
    if (!object) return make_error(object.error());
    // MBSTRING_UTF8: OpenSSL picks the string type the attribute wants
    // (PrintableString for C, UTF8String for most others) and enforces
    // its size limits (C is two letters).
    if (X509_NAME_add_entry_by_OBJ(name.get(), object->get(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1)
      return crypto::openssl_error("DN attribute " + type + "='" + value + "' rejected");
  }
  unsigned char* der = nullptr;
  int length = i2d_X509_NAME(name.get(), &der);
  if (length <= 0) return crypto::openssl_error("i2d_X509_NAME");
  std::vector<uint8_t> out(der, der + length);
  OPENSSL_free(der);
  return out;
}

// The RDNs of a peer's ID_DER_ASN1_DN (untrusted): nullopt unless the data
// is exactly one DER Name.
std::optional<Rdns> decode_dn(std::span<const uint8_t> der) {
  if (der.empty() || der.size() > 65535) return std::nullopt;
  const unsigned char* cursor = der.data();
  crypto::X509NamePtr name(d2i_X509_NAME(nullptr, &cursor, static_cast<long>(der.size())));
  if (!name || cursor != der.data() + der.size()) {
    crypto::drain_openssl_errors();
    return std::nullopt;
  }
  Rdns rdns;
  int count = X509_NAME_entry_count(name.get());
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name.get(), i);
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (length < 0) {
      crypto::drain_openssl_errors();
      return std::nullopt;
    }
    std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
    OPENSSL_free(utf8);
    rdns.emplace_back(object_name(X509_NAME_ENTRY_get_object(entry)), std::move(value));
  }
  return rdns;
}

// RDN by RDN, in order: same type, and the value equal (ASCII case
// ignored, as X509_NAME_cmp's canonical form does) or the pattern's "*".
bool dn_matches(const Rdns& pattern, const Rdns& peer) {
  if (pattern.size() != peer.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i].first != peer[i].first) return false;
    if (pattern[i].second != "*" && !iequals(pattern[i].second, peer[i].second)) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Identities.

Result<Identity> parse_identity(std::string_view input) {
  std::string_view text = trim(input);
  Identity identity;
  identity.text = std::string(text);
  if (text.empty()) return make_error("empty identity");
  auto fail = [&](const std::string& why) {
    return make_error("identity '" + identity.text + "': " + why);
  };

  enum class Kind { kGuess, kFqdn, kEmail, kIp, kDn, kKeyId } kind = Kind::kGuess;
  std::string_view body = text;
  static constexpr std::pair<std::string_view, Kind> kPrefixes[] = {
      {"fqdn:", Kind::kFqdn}, {"email:", Kind::kEmail}, {"ip:", Kind::kIp},
      {"dn:", Kind::kDn},     {"keyid:", Kind::kKeyId},
  };
  for (const auto& [prefix, k] : kPrefixes) {
    if (text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix)) {
      kind = k;
      body = trim(text.substr(prefix.size()));
      break;
    }
  }
  if (body.empty()) return fail("nothing after the type prefix");
  if (kind == Kind::kGuess) {
    // strongSwan's rules for identities without a type prefix.
    if (IpAddress::parse(body)) kind = Kind::kIp;
    else if (body.find('=') != std::string_view::npos) kind = Kind::kDn;
    else if (body.find('@') != std::string_view::npos) kind = Kind::kEmail;
    else kind = Kind::kFqdn;
  }
  switch (kind) {
    case Kind::kGuess:
    case Kind::kFqdn:
      if (!valid_fqdn(body))
        return fail("not a host name (letters, digits, '-', '_', '.'; at most 255)");
      identity.type = ike::IdType::kFqdn;
      identity.data.assign(body.begin(), body.end());
      break;
    case Kind::kEmail:
      if (!valid_email(body)) return fail("not an RFC 822 address (no spaces, ',' or '*')");
      identity.type = ike::IdType::kRfc822Address;
      identity.data.assign(body.begin(), body.end());
      break;
    case Kind::kIp: {
      auto address = IpAddress::parse(body);
      if (!address) return fail("not an IPv4 or IPv6 address");
      identity.type = address->is_ipv4() ? ike::IdType::kIpv4Address : ike::IdType::kIpv6Address;
      identity.data.assign(address->bytes(), address->bytes() + address->byte_length());
      break;
    }
    case Kind::kDn: {
      if (body.find('*') != std::string_view::npos)
        return fail("'*' is only allowed in patterns (remote_id, [secret] id)");
      auto rdns = parse_dn_text(body);
      if (!rdns) return fail(rdns.error());
      auto der = dn_to_der(*rdns);
      if (!der) return fail(der.error());
      identity.type = ike::IdType::kDerAsn1Dn;
      identity.data = std::move(*der);
      break;
    }
    case Kind::kKeyId: {
      auto bytes = shared::parse_hex(body);
      if (!bytes || bytes->empty()) return fail("keyid: expects hex bytes");
      identity.type = ike::IdType::kKeyId;
      identity.data = std::move(*bytes);
      break;
    }
  }
  return identity;
}

Result<IdentityPattern> parse_identity_pattern(std::string_view input) {
  std::string_view text = trim(input);
  IdentityPattern pattern;
  pattern.text = std::string(text);
  if (text.empty()) return make_error("empty identity pattern");
  if (text == "%any") {
    pattern.any = true;
    return pattern;
  }
  auto fail = [&](const std::string& why) {
    return make_error("identity pattern '" + pattern.text + "': " + why);
  };
  if (text.find('*') == std::string_view::npos) {
    auto exact = parse_identity(text);
    if (!exact) return make_error(exact.error());
    pattern.type = exact->type;
    if (exact->type == ike::IdType::kDerAsn1Dn) {
      // Matched RDN by RDN too: a peer's DER may use other string types
      // (PrintableString vs UTF8String) for the same name.
      std::string_view body = text;
      if (body.size() >= 3 && iequals(body.substr(0, 3), "dn:")) body = trim(body.substr(3));
      auto rdns = parse_dn_text(body);
      if (!rdns) return fail(rdns.error());
      pattern.dn_rdns = std::move(*rdns);
    }
    pattern.exact = std::move(*exact);
    return pattern;
  }

  // Wildcards: "*@domain", "*.domain" (optionally with email:/fqdn:), or
  // a DN with "*" values.
  std::string_view body = text;
  enum class Hint { kNone, kFqdn, kEmail, kDn } hint = Hint::kNone;
  if (body.size() >= 5 && iequals(body.substr(0, 5), "fqdn:")) {
    hint = Hint::kFqdn;
    body = trim(body.substr(5));
  } else if (body.size() >= 6 && iequals(body.substr(0, 6), "email:")) {
    hint = Hint::kEmail;
    body = trim(body.substr(6));
  } else if (body.size() >= 3 && iequals(body.substr(0, 3), "dn:")) {
    hint = Hint::kDn;
    body = trim(body.substr(3));
  }
  if (hint == Hint::kDn || (hint == Hint::kNone && body.find('=') != std::string_view::npos)) {
    auto rdns = parse_dn_text(body);
    if (!rdns) return fail(rdns.error());
    for (const auto& [type, value] : *rdns)
      if (value != "*" && value.find('*') != std::string::npos)
        return fail("a DN wildcard is a whole RDN value ('CN=*'), not '" + type + "=" + value + "'");
    pattern.type = ike::IdType::kDerAsn1Dn;
    pattern.dn_rdns = std::move(*rdns);
    return pattern;
  }
  if (body.size() < 3 || body.front() != '*' || body.find('*', 1) != std::string_view::npos)
    return fail("wildcards are '*@domain', '*.domain', a DN value '*' or %any");
  std::string_view suffix = body.substr(1);
  if (suffix.front() == '@' && hint != Hint::kFqdn) {
    if (!valid_email(suffix.substr(1)) || suffix.find('@', 1) != std::string_view::npos)
      return fail("'" + std::string(suffix.substr(1)) + "' is not a mail domain");
    pattern.type = ike::IdType::kRfc822Address;
  } else if (suffix.front() == '.' && hint != Hint::kEmail) {
    if (!valid_fqdn(suffix.substr(1))) return fail("'" + std::string(suffix.substr(1)) + "' is not a domain");
    pattern.type = ike::IdType::kFqdn;
  } else {
    return fail("wildcards are '*@domain', '*.domain', a DN value '*' or %any");
  }
  pattern.suffix = std::string(suffix);
  return pattern;
}

int match_score(const IdentityPattern& pattern, ike::IdType type, std::span<const uint8_t> data) {
  if (pattern.any) return 1;
  if (pattern.exact) {
    const Identity& exact = *pattern.exact;
    if (type != exact.type) return 0;
    switch (type) {
      case ike::IdType::kDerAsn1Dn: {
        auto peer = decode_dn(data);
        return peer && dn_matches(pattern.dn_rdns, *peer) ? 3 : 0;
      }
      case ike::IdType::kFqdn:
      case ike::IdType::kRfc822Address:
        // DNS names are case-insensitive; mail addresses are treated so too.
        return iequals(as_text(data), as_text(exact.data)) ? 3 : 0;
      default:
        return data.size() == exact.data.size() &&
                       std::equal(data.begin(), data.end(), exact.data.begin())
                   ? 3
                   : 0;
    }
  }
  if (type != pattern.type) return 0;
  if (type == ike::IdType::kDerAsn1Dn) {
    auto peer = decode_dn(data);
    return peer && dn_matches(pattern.dn_rdns, *peer) ? 2 : 0;
  }
  if (pattern.suffix.empty()) return 0;
  // The '*' stands for at least one character.
  std::string_view peer = as_text(data);
  if (peer.size() <= pattern.suffix.size()) return 0;
  return iequals(peer.substr(peer.size() - pattern.suffix.size()), pattern.suffix) ? 2 : 0;
}

// ---------------------------------------------------------------------------
// Look-ups.

const PoolSection* ControlPlaneConfig::find_pool(std::string_view name) const {
  for (const auto& pool : pools)
    if (pool.pool.name == name) return &pool;
  return nullptr;
}

const ProfileSection* ControlPlaneConfig::find_profile(ike::IdType type,
                                                       std::span<const uint8_t> data) const {
  const ProfileSection* best = nullptr;
  int best_score = 0;
  for (const auto& profile : profiles) {
    int score = match_score(profile.remote_id, type, data);
    if (score > best_score) {
      best = &profile;
      best_score = score;
    }
  }
  return best;
}

const ProfileSection* ControlPlaneConfig::find_profile(ike::IdType type,
                                                       std::span<const uint8_t> data,
                                                       const IpAddress& local_address) const {
  const ProfileSection* best = nullptr;
  int best_score = 0;
  for (const auto& profile : profiles) {
    if (!profile.local_addresses.empty() &&
        std::find(profile.local_addresses.begin(), profile.local_addresses.end(), local_address) ==
            profile.local_addresses.end())
      continue;
    int score = match_score(profile.remote_id, type, data);
    if (score > best_score) {
      best = &profile;
      best_score = score;
    }
  }
  return best;
}

const SecretSection* ControlPlaneConfig::find_secret(ike::IdType type,
                                                     std::span<const uint8_t> data) const {
  const SecretSection* best = nullptr;
  int best_score = 0;
  for (const auto& secret : secrets) {
    int score = match_score(secret.identity, type, data);
    if (score > best_score) {
      best = &secret;
      best_score = score;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Loading.

namespace {

// Tuning constants: the ranges the header documents, in one place.
inline constexpr uint32_t kMaxUint32 = 0xffffffffu;
inline constexpr uint32_t kMinLifetimeS = 60;
inline constexpr uint32_t kMaxLifetimeS = 2592000;     // 30 days
inline constexpr uint32_t kMaxNatKeepaliveS = 3600;
inline constexpr uint32_t kMaxDpdS = 86400;
inline constexpr uint32_t kMaxHalfOpenTimeoutS = 3600;
inline constexpr uint32_t kMinRetransmitTimeoutMs = 100;
inline constexpr uint32_t kMaxRetransmitTimeoutMs = 60000;
inline constexpr uint32_t kMaxRetransmitTries = 20;
// RFC 7383 2.5.1: fragments must fit the smallest path MTU one may assume;
// 576 is IPv4's minimum reassembly size. 0 = never fragment.
inline constexpr uint32_t kMinFragmentSize = 576;
inline constexpr uint32_t kMaxFragmentSize = 65535;
inline constexpr size_t kMaxApiTokenLength = 4096;  // bearer tokens are short; a file this long is the wrong file
inline constexpr size_t kMinPskBytes = 16;
inline constexpr size_t kMaxPskBytes = 1024;
inline constexpr const char* kSectionTypes = "controlplane, pool, secret, profile";

// The shared parser quotes a line without '=' in its error. Inside a
// [secret] such a line may be a PSK missing its "psk =": refuse it here
// first, without showing it.
Status check_secret_lines(std::string_view text, const std::string& path) {
  std::string section_type;
  std::string section_name;
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
    if (!line.empty()) {
      if (line.front() == '[') {
        auto inner = trim(line.substr(1, line.back() == ']' ? line.size() - 2 : line.size() - 1));
        auto space = inner.find_first_of(" \t");
        section_type = std::string(inner.substr(0, space));
        section_name = space == std::string_view::npos ? "" : std::string(trim(inner.substr(space)));
      } else if (line.find('=') == std::string_view::npos && section_type == "secret") {
        return make_error(path + ":" + std::to_string(line_number) + ": [secret " + section_name +
                          "]: expected 'key = value' (the line is not shown: it may hold a secret)");
      }
    }
    if (end == text.size()) break;
  }
  return {};
}

std::string resolve_path(const std::string& base_directory, const std::string& path) {
  if (path.empty() || path.front() == '/' || base_directory.empty()) return path;
  return (std::filesystem::path(base_directory) / path).string();
}

// One of `names`, by index; fails with the list of names otherwise.
template <typename Enum, size_t N>
Enum choice(SectionReader& r, std::string_view key, Enum fallback,
            const std::pair<const char*, Enum> (&names)[N]) {
  auto value = r.text(key);
  if (!value) return fallback;
  std::string expected;
  for (const auto& [name, e] : names) {
    if (*value == name) return e;
    expected += (expected.empty() ? "" : " | ") + std::string(name);
  }
  r.fail(key, "expected " + expected + ", got '" + *value + "'");
  return fallback;
}

std::vector<std::string> text_list(SectionReader& r, std::string_view key) {
  auto value = r.text(key);
  if (!value) return {};
  auto items = split_list(*value);
  if (!items) {
    r.fail(key, "empty item in the comma-separated list '" + *value + "'");
    return {};
  }
  return *items;
}

std::vector<IpAddress> address_list(SectionReader& r, std::string_view key) {
  std::vector<IpAddress> out;
  for (const auto& item : text_list(r, key)) {
    auto address = IpAddress::parse(item);
    if (!address) {
      r.fail(key, "expected an IPv4 or IPv6 address, got '" + item + "'");
      return {};
    }
    if (std::find(out.begin(), out.end(), *address) != out.end()) {
      r.fail(key, "address " + item + " listed twice");
      return {};
    }
    out.push_back(*address);
  }
  return out;
}

std::vector<IpPrefix> prefix_list(SectionReader& r, std::string_view key) {
  std::vector<IpPrefix> out;
  for (const auto& item : text_list(r, key)) {
    auto prefix = IpPrefix::parse(item);
    if (!prefix || item.find('/') == std::string::npos) {
      r.fail(key, "expected an address prefix (10.0.0.0/8, 2001:db8::/32), got '" + item + "'");
      return {};
    }
    out.push_back(*prefix);
  }
  return out;
}

uint32_t u32(SectionReader& r, std::string_view key, uint32_t fallback, uint32_t min, uint32_t max) {
  return static_cast<uint32_t>(r.integer_or(key, fallback, min, max));
}

// [first, last] of a pool's range (already accepted by AddressPool::create).
std::optional<std::pair<IpAddress, IpAddress>> range_bounds(std::string_view range) {
  range = trim(range);
  if (range.find('/') != std::string_view::npos) {
    auto prefix = IpPrefix::parse(range);
    if (!prefix) return std::nullopt;
    return std::pair{prefix->address, prefix->last()};
  }
  auto dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first = IpAddress::parse(trim(range.substr(0, dash)));
  auto last = IpAddress::parse(trim(range.substr(dash + 1)));
  if (!first || !last || first->family() != last->family()) return std::nullopt;
  return std::pair{*first, *last};
}

struct Loader {
  const ConfigFile& file;
  ControlPlaneConfig& config;
  std::string base_directory;
  // The pools, created to validate them (and to check DNS exclusions).
  std::map<std::string, policy::AddressPool, std::less<>> pools;

  std::string at(const ConfigSection& section) const {
    std::string header = section.type + (section.name.empty() ? "" : " " + section.name);
    return file.path + ":" + std::to_string(section.line) + ": [" + header + "]";
  }

  Status read_daemon(const ConfigSection& section);
  void read_api(SectionReader& r, DaemonSection& d);
  Status read_pool(const ConfigSection& section);
  Status read_secret(const ConfigSection& section);
  Status read_profile(const ConfigSection& section);
  void check_auth(SectionReader& r, ProfileSection& profile);
  void check_pools(SectionReader& r, ProfileSection& profile);
};

Status Loader::read_daemon(const ConfigSection& section) {
  SectionReader r(file, section);
  DaemonSection& d = config.daemon;
  d.transport = choice(r, "transport", TransportKind::kDataPlane,
                       {{"dataplane", TransportKind::kDataPlane}, {"udp", TransportKind::kUdp}});
  d.channel = r.text_or("channel", "segw");
  // The data plane's rule for region names (dataplane/config).
  bool name_ok = !d.channel.empty() && d.channel.size() <= 200 && d.channel.front() != '.';
  for (char c : d.channel)
    name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!name_ok)
    r.fail("channel", "expected 1 to 200 letters, digits, '.', '_' or '-' (not starting with '.'), got '" +
                          d.channel + "'");
  d.channel_directory = r.text_or("channel_directory", "");
  if (!d.channel_directory.empty() && d.channel_directory.front() != '/')
    r.fail("channel_directory", "expected an absolute path, got '" + d.channel_directory + "'");
  d.listen = address_list(r, "listen");
  if (d.transport == TransportKind::kUdp && d.listen.empty())
    r.fail(r.has("listen") ? "listen" : "transport",
           "transport = udp needs listen (the addresses to bind on)");
  d.ike_port = static_cast<uint16_t>(r.integer_or("ike_port", 500, 1, 65535));
  d.natt_port = static_cast<uint16_t>(r.integer_or("natt_port", 4500, 1, 65535));
  if (d.ike_port == d.natt_port)
    r.fail("natt_port", "must differ from ike_port (" + std::to_string(d.ike_port) + ")");
  d.cookie_threshold = u32(r, "cookie_threshold", 1000, 0, kMaxUint32);
  d.half_open_timeout_s = u32(r, "half_open_timeout_s", 30, 1, kMaxHalfOpenTimeoutS);
  d.retransmit_timeout_ms =
      u32(r, "retransmit_timeout_ms", 1000, kMinRetransmitTimeoutMs, kMaxRetransmitTimeoutMs);
  if (auto base = r.text("retransmit_base")) {
    double value = 0;
    auto [end, ec] = std::from_chars(base->data(), base->data() + base->size(), value);
    if (base->empty() || ec != std::errc() || end != base->data() + base->size())
      r.fail("retransmit_base", "expected a number, got '" + *base + "'");
    else if (!(value >= 1.0 && value <= 4.0))
      r.fail("retransmit_base", "value " + *base + " out of range [1.0, 4.0]");
    else
      d.retransmit_base = value;
  }
  d.retransmit_tries = u32(r, "retransmit_tries", 5, 1, kMaxRetransmitTries);
  d.fragment_size = u32(r, "fragment_size", 1280, 0, kMaxFragmentSize);
  if (d.fragment_size != 0 && d.fragment_size < kMinFragmentSize)
    r.fail("fragment_size", "value " + std::to_string(d.fragment_size) + " below " +
                                std::to_string(kMinFragmentSize) + " (0 turns fragmentation off)");
  d.max_ike_sas = u32(r, "max_ike_sas", 1048576, 1, kMaxUint32);
  d.dataplane_sa_index_bits = u32(r, "dataplane_sa_index_bits", 18, 1, 32);
  d.log_level = r.text_or("log_level", "info");
  if (d.log_level != "error" && d.log_level != "warning" && d.log_level != "info" &&
      d.log_level != "debug")
    r.fail("log_level", "expected error | warning | info | debug, got '" + d.log_level + "'");
  read_api(r, d);
  return r.finish();
}

// The REST API keys of [controlplane]. The token file is read here, so a
// missing or empty one is a configuration error with file:line; its content
// never appears in a message.
void Loader::read_api(SectionReader& r, DaemonSection& d) {
  d.api = r.boolean_or("api", true);
  if (auto listen = r.address("api_listen")) d.api_listen = *listen;
  d.api_port = static_cast<uint16_t>(r.integer_or("api_port", kDefaultApiPort, 1, 65535));
  d.api_token_file = resolve_path(base_directory, r.text_or("api_token_file", ""));
  if (r.has("api_token_file")) {
    std::ifstream in(d.api_token_file, std::ios::binary);
    if (!in) {
      r.fail("api_token_file", "cannot open '" + d.api_token_file + "': " + std::strerror(errno));
    } else {
      std::stringstream buffer;
      buffer << in.rdbuf();
      std::string token = buffer.str();
      size_t first = token.find_first_not_of(" \t\r\n");
      size_t last = token.find_last_not_of(" \t\r\n");
      d.api_token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
      OPENSSL_cleanse(token.data(), token.size());
      bool visible = !d.api_token.empty() && d.api_token.size() <= kMaxApiTokenLength;
      for (char c : d.api_token) visible = visible && c > 0x20 && c < 0x7f;
      if (!visible) {
        OPENSSL_cleanse(d.api_token.data(), d.api_token.size());
        d.api_token.clear();
        r.fail("api_token_file", "'" + d.api_token_file + "' must hold one token of 1 to " +
                                     std::to_string(kMaxApiTokenLength) +
                                     " visible ASCII characters (no spaces inside)");
      }
    }
  }
  bool loopback = d.api_listen.is_ipv4() ? (d.api_listen.ipv4_host_order() >> 24) == 127
                                         : d.api_listen == *IpAddress::parse("::1");
  if (d.api && r.ok() && d.api_token.empty() && !loopback)
    r.fail(r.has("api_listen") ? "api_listen" : "api",
           "the API on a non-loopback address (" + d.api_listen.to_string() +
               ") needs api_token_file (without a token it is served on loopback only)");
  d.api_tls_certificate = resolve_path(base_directory, r.text_or("api_tls_certificate", ""));
  d.api_tls_private_key = resolve_path(base_directory, r.text_or("api_tls_private_key", ""));
  if (d.api_tls_certificate.empty() != d.api_tls_private_key.empty()) {
    r.fail(d.api_tls_certificate.empty() ? "api_tls_private_key" : "api_tls_certificate",
           "api_tls_certificate and api_tls_private_key go together (HTTPS needs both)");
  } else if (!d.api_tls_certificate.empty()) {
    auto cert = crypto::Certificate::load_pem_file(d.api_tls_certificate);
    if (!cert)
      r.fail("api_tls_certificate", "cannot load certificate '" + d.api_tls_certificate + "': " + cert.error());
    auto key = crypto::PrivateKey::load_pem_file(d.api_tls_private_key);
    if (!key)
      r.fail("api_tls_private_key", "cannot load private key '" + d.api_tls_private_key + "': " + key.error());
  }
  d.api_tls_client_ca = resolve_path(base_directory, r.text_or("api_tls_client_ca", ""));
  if (!d.api_tls_client_ca.empty()) {
    if (d.api_tls_certificate.empty()) {
      r.fail("api_tls_client_ca", "client certificates (mTLS) need HTTPS: set api_tls_certificate and "
                                  "api_tls_private_key too");
    } else if (auto cas = crypto::Certificate::load_pem_file_all(d.api_tls_client_ca); !cas || cas->empty()) {
      r.fail("api_tls_client_ca", "cannot load CA certificates from '" + d.api_tls_client_ca + "'" +
                                      (cas ? std::string(": no certificate in it") : ": " + cas.error()));
    }
  }
}

Status Loader::read_pool(const ConfigSection& section) {
  SectionReader r(file, section);
  PoolSection pool;
  pool.line = section.line;
  pool.pool.name = section.name;
  pool.pool.range = r.required_text("range");
  pool.pool.excluded = address_list(r, "excluded");
  pool.pool.exclude_network_and_broadcast = r.boolean_or("exclude_network_and_broadcast", true);
  pool.pool.lease_prefix_length = static_cast<uint8_t>(r.integer_or("lease_prefix_length", 0, 0, 128));
  if (r.ok()) {
    auto created = policy::AddressPool::create(pool.pool);
    if (!created) {
      r.fail("range", created.error());
    } else {
      auto bounds = range_bounds(pool.pool.range);
      for (const auto& other : config.pools) {
        auto other_bounds = range_bounds(other.pool.range);
        if (!bounds || !other_bounds || bounds->first.family() != other_bounds->first.family())
          continue;
        if (bounds->first <= other_bounds->second && other_bounds->first <= bounds->second) {
          r.fail("range", pool.pool.range + " overlaps [pool " + other.pool.name + "] " +
                              other.pool.range + " (line " + std::to_string(other.line) + ")");
          break;
        }
      }
      pools.emplace(pool.pool.name, std::move(*created));
    }
  }
  auto status = r.finish();
  if (!status) return status;
  config.pools.push_back(std::move(pool));
  return {};
}

Status Loader::read_secret(const ConfigSection& section) {
  SectionReader r(file, section);
  SecretSection secret;
  secret.name = section.name;
  secret.line = section.line;
  auto id = r.required_text("id");
  if (r.ok()) {
    auto pattern = parse_identity_pattern(id);
    if (!pattern) r.fail("id", pattern.error());
    else secret.identity = std::move(*pattern);
    for (const auto& other : config.secrets)
      if (r.ok() && other.identity.text == secret.identity.text)
        r.fail("id", "same id as [secret " + other.name + "] (line " + std::to_string(other.line) +
                         "): which one would apply?");
  }
  // Never quote the value: errors about it say what is wrong, not what it is.
  auto psk = r.text("psk");
  if (!psk || psk->empty()) {
    r.fail("psk", "required key is missing");
  } else {
    std::string_view value = *psk;
    if (value.starts_with("0x") || value.starts_with("0X")) {
      auto bytes = shared::parse_hex(value);
      if (!bytes) r.fail("psk", "starts with 0x but is not valid hex (value not shown)");
      else secret.psk = crypto::SecureBytes(std::span<const uint8_t>(*bytes));
      if (bytes) OPENSSL_cleanse(bytes->data(), bytes->size());
    } else {
      // A double-quoted value is the text inside the quotes (so a text PSK
      // may start with "0x" or end with a space).
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      secret.psk = crypto::SecureBytes(std::span<const uint8_t>(
          reinterpret_cast<const uint8_t*>(value.data()), value.size()));
    }
    if (r.ok() && (secret.psk.size() < kMinPskBytes || secret.psk.size() > kMaxPskBytes))
      r.fail("psk", std::to_string(secret.psk.size()) + " bytes, expected " +
                        std::to_string(kMinPskBytes) + " to " + std::to_string(kMaxPskBytes) +
                        " (value not shown)");
    OPENSSL_cleanse(psk->data(), psk->size());
  }
  auto status = r.finish();
  if (!status) return status;
  config.secrets.push_back(std::move(secret));
  return {};
}

void Loader::check_auth(SectionReader& r, ProfileSection& profile) {
  if (!r.ok()) return;
  if (profile.local_auth == AuthKind::kPublicKey) {
    if (profile.certificate_file.empty()) {
      r.fail(r.has("certificate_file") ? "certificate_file" : "local_auth",
             "local_auth = pubkey needs certificate_file");
      return;
    }
    if (profile.private_key_file.empty()) {
      r.fail(r.has("private_key_file") ? "private_key_file" : "local_auth",
             "local_auth = pubkey needs private_key_file");
      return;
    }
    auto cert = crypto::Certificate::load_pem_file(profile.certificate_file);
    if (!cert) {
      r.fail("certificate_file", "cannot load certificate '" + profile.certificate_file + "': " +
                                     cert.error());
      return;
    }
    auto key = crypto::PrivateKey::load_pem_file(profile.private_key_file);
    if (!key) {
      // The loader's message names the file and OpenSSL's reason, not the key.
      r.fail("private_key_file", "cannot load private key '" + profile.private_key_file + "': " +
                                     key.error());
      return;
    }
    if (EVP_PKEY_eq(cert->public_key(), key->get()) != 1) {
      crypto::drain_openssl_errors();
      r.fail("private_key_file", "the key in '" + profile.private_key_file +
                                     "' does not belong to the certificate in '" +
                                     profile.certificate_file + "' (" + cert->subject() + ")");
      return;
    }
    // The peer checks our ID against our certificate (RFC 4945 3.1,
    // 5.1.2): a mismatch here would fail every IKE_AUTH.
    if (profile.local_id.type == ike::IdType::kKeyId) {
      r.fail("local_id", "a keyid cannot be vouched for by a certificate; use the certificate's "
                         "subject (dn:) or one of its subjectAltNames");
      return;
    }
    auto matched = crypto::match_identity(*cert, static_cast<crypto::IdType>(profile.local_id.type),
                                          profile.local_id.data);
    if (!matched) {
      r.fail("local_id", "'" + profile.local_id.text + "' is not in certificate '" +
                             profile.certificate_file + "': " + matched.error());
      return;
    }
  } else {
    if (!profile.certificate_file.empty()) {
      r.fail("certificate_file", "set, but local_auth is psk");
      return;
    }
    if (!profile.private_key_file.empty()) {
      r.fail("private_key_file", "set, but local_auth is psk");
      return;
    }
    bool found = false;
    for (const auto& secret : config.secrets)
      found = found || match_score(secret.identity, profile.local_id.type, profile.local_id.data) > 0;
    if (!found) {
      r.fail(r.has("local_auth") ? "local_auth" : "local_id",
             "local_auth = psk needs a [secret] whose id matches local_id '" + profile.local_id.text +
                 "' (or id = %any)");
      return;
    }
  }
  if (profile.remote_auth == AuthKind::kPublicKey) {
    if (profile.ca_files.empty()) {
      r.fail(r.has("ca_files") ? "ca_files" : "remote_auth", "remote_auth = pubkey needs ca_files");
      return;
    }
    auto store = crypto::CertificateStore::create();
    if (!store) {
      r.fail("ca_files", store.error());
      return;
    }
    for (const auto& ca : profile.ca_files) {
      auto added = store->add_ca_file(ca);
      if (!added) {
        r.fail("ca_files", "cannot load CA file '" + ca + "': " + added.error());
        return;
      }
    }
  } else {
    if (!profile.ca_files.empty()) {
      r.fail("ca_files", "set, but remote_auth is psk");
      return;
    }
    // The peer's identity is only known in IKE_AUTH: any secret may be it.
    if (config.secrets.empty())
      r.fail(r.has("remote_auth") ? "remote_auth" : "local_id",
             "remote_auth = psk needs at least one [secret]");
  }
}

void Loader::check_pools(SectionReader& r, ProfileSection& profile) {
  if (!r.ok()) return;
  const std::string* v4 = nullptr;
  const std::string* v6 = nullptr;
  for (size_t i = 0; i < profile.pools.size(); ++i) {
    const std::string& name = profile.pools[i];
    for (size_t j = 0; j < i; ++j)
      if (profile.pools[j] == name) return r.fail("pools", "pool '" + name + "' listed twice");
    auto it = pools.find(name);
    if (it == pools.end()) return r.fail("pools", "no [pool " + name + "] section");
    const std::string*& slot = it->second.family() == shared::IpFamily::kIpv4 ? v4 : v6;
    if (slot)
      return r.fail("pools", "pools '" + *slot + "' and '" + name + "' are both " +
                                 (it->second.family() == shared::IpFamily::kIpv4 ? "IPv4" : "IPv6") +
                                 ": at most one IPv4 and one IPv6 pool per profile");
    slot = &name;
  }
  // A DNS server handed out as a client address would be a silent outage:
  // inside a pool it must be excluded.
  for (const auto& dns : profile.dns) {
    for (const auto& name : profile.pools) {
      auto& pool = pools.find(name)->second;
      if (!pool.contains(dns)) continue;
      constexpr uint64_t kProbeOwner = 1;
      auto lease = pool.lease(kProbeOwner, dns);
      bool leasable = lease && IpPrefix{lease->address, lease->prefix_length}.contains(dns);
      (void)pool.release(kProbeOwner);
      if (leasable)
        return r.fail("dns", dns.to_string() + " lies inside [pool " + name +
                                 "] and is not excluded from it (add it to the pool's excluded)");
    }
  }
}

Status Loader::read_profile(const ConfigSection& section) {
  SectionReader r(file, section);
  ProfileSection p;
  p.name = section.name;
  p.line = section.line;

  auto remote_id = r.text_or("remote_id", "%any");
  if (auto pattern = parse_identity_pattern(remote_id)) p.remote_id = std::move(*pattern);
  else r.fail("remote_id", pattern.error());
  auto local_id = r.required_text("local_id");
  if (r.ok()) {
    if (auto identity = parse_identity(local_id)) p.local_id = std::move(*identity);
    else r.fail("local_id", identity.error());
  }
  static constexpr std::pair<const char*, AuthKind> kAuth[] = {{"psk", AuthKind::kPsk},
                                                               {"pubkey", AuthKind::kPublicKey}};
  p.local_auth = choice(r, "local_auth", AuthKind::kPsk, kAuth);
  p.remote_auth = choice(r, "remote_auth", AuthKind::kPsk, kAuth);
  p.certificate_file = resolve_path(base_directory, r.text_or("certificate_file", ""));
  p.private_key_file = resolve_path(base_directory, r.text_or("private_key_file", ""));
  for (const auto& ca : text_list(r, "ca_files")) p.ca_files.push_back(resolve_path(base_directory, ca));
  p.send_certreq = r.boolean_or("send_certreq", true);

  p.ike_proposals = r.text_or("ike_proposals", p.ike_proposals);
  if (auto ike = policy::ProposalPolicy::parse(ike::ProtocolId::kIke, p.ike_proposals); !ike)
    r.fail("ike_proposals", ike.error());
  p.esp_proposals = r.text_or("esp_proposals", p.esp_proposals);
  if (auto esp = policy::ProposalPolicy::parse(ike::ProtocolId::kEsp, p.esp_proposals); !esp)
    r.fail("esp_proposals", esp.error());

  p.pools = text_list(r, "pools");
  p.dns = address_list(r, "dns");
  if (r.has("local_subnets")) {
    p.local_subnets = prefix_list(r, "local_subnets");
    if (r.ok() && p.local_subnets.empty()) r.fail("local_subnets", "empty list");
  } else {
    p.local_subnets = {*IpPrefix::parse("0.0.0.0/0"), *IpPrefix::parse("::/0")};
  }
  if (p.local_subnets.size() > static_cast<size_t>(shared::kMaxSelectors))
    r.fail("local_subnets", std::to_string(p.local_subnets.size()) + " prefixes, at most " +
                                std::to_string(shared::kMaxSelectors) + " (traffic selectors per SA)");
  p.nat_info = r.boolean_or("nat_info", true);

  p.force_encapsulation = r.boolean_or("force_encapsulation", false);
  p.mobike = r.boolean_or("mobike", true);
  p.remap = choice(r, "remap", RemapPolicy::kVerify,
                   {{"verify", RemapPolicy::kVerify}, {"follow", RemapPolicy::kFollow},
                    {"off", RemapPolicy::kOff}});
  p.nat_keepalive_s = u32(r, "nat_keepalive_s", 20, 0, kMaxNatKeepaliveS);
  if (r.has("mobike_allowed_networks")) {
    p.mobike_allowed_networks = prefix_list(r, "mobike_allowed_networks");
    if (r.ok() && p.mobike_allowed_networks.empty()) r.fail("mobike_allowed_networks", "empty list");
  } else {
    p.mobike_allowed_networks = {*IpPrefix::parse("0.0.0.0/0"), *IpPrefix::parse("::/0")};
  }
  p.additional_addresses = address_list(r, "additional_addresses");

  p.ike_lifetime_s = u32(r, "ike_lifetime_s", 14400, kMinLifetimeS, kMaxLifetimeS);
  p.child_lifetime_s = u32(r, "child_lifetime_s", 3600, kMinLifetimeS, kMaxLifetimeS);
  p.rekey_margin_s = u32(r, "rekey_margin_s", 540, 0, kMaxLifetimeS);
  p.rekey_jitter_s = u32(r, "rekey_jitter_s", 180, 0, kMaxLifetimeS);
  if (r.ok() && (p.rekey_margin_s >= p.ike_lifetime_s || p.rekey_margin_s >= p.child_lifetime_s))
    r.fail("rekey_margin_s", std::to_string(p.rekey_margin_s) +
                                 " must be less than ike_lifetime_s (" +
                                 std::to_string(p.ike_lifetime_s) + ") and child_lifetime_s (" +
                                 std::to_string(p.child_lifetime_s) + ")");
  if (r.ok() && p.rekey_jitter_s > p.rekey_margin_s)
    r.fail("rekey_jitter_s", std::to_string(p.rekey_jitter_s) + " exceeds rekey_margin_s (" +
                                 std::to_string(p.rekey_margin_s) + ")");
  p.child_lifetime_bytes = r.integer_or("child_lifetime_bytes", 0, 0, UINT64_MAX);
  p.child_lifetime_packets = r.integer_or("child_lifetime_packets", 0, 0, UINT64_MAX);
  p.reauthenticate = r.boolean_or("reauthenticate", false);

  p.dpd_interval_s = u32(r, "dpd_interval_s", 30, 0, kMaxDpdS);
  p.dpd_timeout_s = u32(r, "dpd_timeout_s", 150, 1, kMaxDpdS);
  p.replay_window =
      u32(r, "replay_window", shared::kDefaultReplayWindow, shared::kMinReplayWindow, shared::kMaxReplayWindow);
  p.local_addresses = address_list(r, "local_addresses");
  p.connect = r.address("connect");
  p.connect_port = static_cast<uint16_t>(r.integer_or("connect_port", 500, 1, 65535));
  p.connect_from = r.address("connect_from");
  p.remote_subnets = prefix_list(r, "remote_subnets");
  if (p.remote_subnets.size() > static_cast<size_t>(shared::kMaxSelectors))
    r.fail("remote_subnets", std::to_string(p.remote_subnets.size()) + " prefixes, at most " +
                                 std::to_string(shared::kMaxSelectors));
  p.request_address = r.boolean_or("request_address", false);
  p.reconnect_delay_s = u32(r, "reconnect_delay_s", 5, 1, 3600);
  if (r.ok() && p.connect) {
    if (!p.connect_from)
      r.fail("connect", "needs connect_from (the local address to initiate from)");
    else if (p.connect_from->family() != p.connect->family())
      r.fail("connect_from", "not of the same address family as connect");
    else if (!p.remote_id.exact)
      r.fail("connect", "needs an exact remote_id (the identity the peer must prove)");
  }
  if (r.ok() && !p.connect && (r.has("connect_from") || r.has("remote_subnets")))
    r.fail(r.has("connect_from") ? "connect_from" : "remote_subnets", "only meaningful with connect");

  check_pools(r, p);
  check_auth(r, p);
  auto status = r.finish();
  if (!status) return status;
  config.profiles.push_back(std::move(p));
  return {};
}

}  // namespace

Result<ControlPlaneConfig> parse_controlplane_config(std::string_view text, const std::string& path) {
  if (auto lines = check_secret_lines(text, path); !lines) return make_error(lines.error());
  auto file = ConfigFile::parse_text(text, path);
  if (!file) return make_error(file.error());

  ControlPlaneConfig config;
  config.path = path;
  Loader loader{*file, config, std::filesystem::path(path).parent_path().string(), {}};

  // Structure first (types, names, duplicates), in file order.
  const ConfigSection* daemon = nullptr;
  std::map<std::pair<std::string, std::string>, int> seen;
  for (const auto& section : file->sections) {
    const std::string where = loader.at(section);
    if (section.type == "controlplane") {
      if (!section.name.empty()) return make_error(where + ": [controlplane] takes no name");
      if (daemon)
        return make_error(where + ": second [controlplane] section (first at line " +
                          std::to_string(daemon->line) + ")");
      daemon = &section;
      continue;
    }
    if (section.type != "pool" && section.type != "secret" && section.type != "profile")
      return make_error(where + ": unknown section type '" + section.type + "' (expected " +
                        kSectionTypes + ")");
    if (section.name.empty()) return make_error(where + ": needs a name ([" + section.type + " NAME])");
    if (!valid_name(section.name))
      return make_error(where + ": name '" + section.name +
                        "' must be 1 to 64 letters, digits, '.', '_' or '-'");
    auto [it, inserted] = seen.emplace(std::pair{section.type, section.name}, section.line);
    if (!inserted)
      return make_error(where + ": duplicate [" + section.type + " " + section.name +
                        "] (first at line " + std::to_string(it->second) + ")");
  }

  // Then content: pools and secrets before the profiles that refer to them.
  if (daemon) {
    if (auto status = loader.read_daemon(*daemon); !status) return make_error(status.error());
  }
  for (const char* type : {"pool", "secret", "profile"}) {
    for (const auto& section : file->sections) {
      if (section.type != type) continue;
      Status status;
      if (section.type == "pool") status = loader.read_pool(section);
      else if (section.type == "secret") status = loader.read_secret(section);
      else status = loader.read_profile(section);
      if (!status) return make_error(status.error());
    }
  }
  if (config.profiles.empty()) return make_error(path + ": no [profile] section (at least one is needed)");
  return config;
}

Result<ControlPlaneConfig> load_controlplane_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + ": cannot open: " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  auto config = parse_controlplane_config(text, path);
  // The text held the PSKs.
  OPENSSL_cleanse(text.data(), text.size());
  return config;
}

std::string_view embedded_default_config() {
  // Kept identical to configs/controlplane-default.conf (a unit test
  // compares the two).
  static constexpr std::string_view kText = R"conf(# segw-controlplane's built-in configuration: what the daemon runs when it is
# started without -c. It is the demo's: the IKE traffic comes through
# segw-dataplane's punt/inject rings (channel "segw"), every peer
# authenticates with one pre-shared key, and gets an address from
# 10.64.0.0/16 and fd00:64::/64. configs/controlplane.md documents every key.
#
# The PSK below is public (it is in the source): a demo key, never for a
# real deployment.

[controlplane]
transport = dataplane
channel = segw

[pool v4]
range = 10.64.0.0/16
excluded = 10.64.0.1            # the DNS server handed out below

[pool v6]
range = fd00:64::/64
lease_prefix_length = 128

[secret default]
id = %any
psk = segw-demo-psk-do-not-deploy

[profile default]
remote_id = %any
local_id = fqdn:segw.example
local_auth = psk
remote_auth = psk
pools = v4, v6
dns = 10.64.0.1
)conf";
  return kText;
}

}  // namespace segw::cp::config
