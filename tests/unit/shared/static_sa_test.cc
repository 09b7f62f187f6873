// Unit tests for shared/static_sa: the [sa NAME] file format, selector lists,
// count expansion and tunnel ids.
#include "shared/static_sa.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/wire.h"
#include "tests/unit/shared/test_printers.h"

namespace segw::shared {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::address;
using testing::prefix;

// Key material: byte i of a key is `first + i`, so a shifted or truncated copy
// shows up.
std::string hex_key(size_t length, uint8_t first) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "0x";
  for (size_t i = 0; i < length; ++i) {
    uint8_t b = static_cast<uint8_t>(first + i);
    text += kDigits[b >> 4];
    text += kDigits[b & 0xf];
  }
  return text;
}

std::array<uint8_t, kMaxKeyLength> key_bytes(size_t length, uint8_t first) {
  std::array<uint8_t, kMaxKeyLength> bytes{};
  for (size_t i = 0; i < length; ++i) bytes[i] = static_cast<uint8_t>(first + i);
  return bytes;
}

// One [sa NAME] section as ordered key = value lines; tests change one key
// from a valid inbound AES-GCM-128 SA. The header is line 1 of the section.
struct SaSection {
  std::string header = "[sa peer]";
  std::vector<std::pair<std::string, std::string>> keys = {
      {"direction", "inbound"},
      {"spi", "0x1000"},
      {"algorithm", "aes-gcm-128"},
      {"encryption_key", hex_key(16, 0x00)},
      {"salt", "0xa1b2c3d4"},
      {"local_address", "192.0.2.1"},
      {"remote_address", "198.51.100.7"},
  };

  SaSection& named(std::string_view name) {
    header = "[sa " + std::string(name) + "]";
    return *this;
  }
  SaSection& set(const std::string& key, const std::string& value) {
    for (auto& [k, v] : keys)
      if (k == key) {
        v = value;
        return *this;
      }
    keys.emplace_back(key, value);
    return *this;
  }
  SaSection& erase(const std::string& key) {
    std::erase_if(keys, [&](const auto& kv) { return kv.first == key; });
    return *this;
  }
  SaSection& outbound() { return set("direction", "outbound").set("remote_selector", "10.1.0.0/24"); }
  // 1-based line of `key` when this section starts the file.
  int line_of(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i].first == key) return static_cast<int>(i) + 2;
    return 1;
  }
  std::string text() const {
    std::string out = header + "\n";
    for (const auto& [k, v] : keys) out += k + " = " + v + "\n";
    return out;
  }
};

Result<StaticSaSet> parse_sas(std::string_view text) {
  auto file = ConfigFile::parse_text(text, "sas.conf");
  if (!file) return make_error("config: " + file.error());
  return parse_static_sas(*file);
}

StaticSaSet parse_sas_ok(std::string_view text) {
  auto set = parse_sas(text);
  if (!set) {
    ADD_FAILURE() << "unexpected error: " << set.error() << "\nfor:\n" << text;
    return {};
  }
  return std::move(set).value();
}

std::string parse_sas_error(std::string_view text) {
  auto set = parse_sas(text);
  if (set) {
    ADD_FAILURE() << "expected an error for:\n" << text;
    return {};
  }
  return set.error();
}

// ------------------------------------------------------ parse_selector_list

TEST(ParseSelectorListTest, SinglePrefix) {
  auto list = parse_selector_list("10.1.0.0/16");
  ASSERT_TRUE(list.ok()) << list.error();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0], TrafficSelector::from_prefix(prefix("10.1.0.0/16")));
}

TEST(ParseSelectorListTest, CommaSeparatedPrefixesRangesAndHosts) {
  auto list = parse_selector_list(" 10.1.0.0/16 ,10.2.0.1 - 10.2.0.9,\t2001:db8::/64, 192.0.2.7");
  ASSERT_TRUE(list.ok()) << list.error();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].start, address("10.1.0.0"));
  EXPECT_EQ((*list)[0].end, address("10.1.255.255"));
  EXPECT_EQ((*list)[1].start, address("10.2.0.1"));
  EXPECT_EQ((*list)[1].end, address("10.2.0.9"));
  EXPECT_EQ((*list)[2].start, address("2001:db8::"));
  EXPECT_EQ((*list)[2].end, address("2001:db8::ffff:ffff:ffff:ffff"));
  EXPECT_EQ((*list)[3].start, address("192.0.2.7"));
  EXPECT_EQ((*list)[3].end, address("192.0.2.7"));
  for (const auto& ts : *list) {
    EXPECT_EQ(ts.protocol, 0);
    EXPECT_EQ(ts.port_start, 0);
    EXPECT_EQ(ts.port_end, 65535);
  }
}

TEST(ParseSelectorListTest, Ipv6RangeAndSingleAddressRange) {
  auto list = parse_selector_list("2001:db8::1-2001:db8::ff, 10.0.0.5-10.0.0.5");
  ASSERT_TRUE(list.ok()) << list.error();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].start, address("2001:db8::1"));
  EXPECT_EQ((*list)[0].end, address("2001:db8::ff"));
  EXPECT_EQ((*list)[1].start, (*list)[1].end);
}

TEST(ParseSelectorListTest, AnyMeansBothFamilies) {
  auto list = parse_selector_list("any");
  ASSERT_TRUE(list.ok()) << list.error();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0], TrafficSelector::from_prefix(prefix("0.0.0.0/0")));
  EXPECT_EQ((*list)[1], TrafficSelector::from_prefix(prefix("::/0")));
  auto mixed = parse_selector_list("10.0.0.0/8, any");
  ASSERT_TRUE(mixed.ok()) << mixed.error();
  EXPECT_EQ(mixed->size(), 3u);
}

TEST(ParseSelectorListTest, AtMostEightSelectors) {
  EXPECT_TRUE(parse_selector_list("10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,"
                                  "10.0.0.8")
                  .ok());
  auto nine = parse_selector_list(
      "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,10.0.0.8,10.0.0.9");
  ASSERT_FALSE(nine.ok());
  EXPECT_THAT(nine.error(), HasSubstr("8"));
  EXPECT_FALSE(parse_selector_list("any, any, any, any, any").ok());  // 10 selectors
}

TEST(ParseSelectorListTest, RejectsMalformedLists) {
  for (std::string_view text :
       {"", "   ", ",", "10.0.0.0/8,,10.1.0.0/16", ",10.0.0.0/8", "10.0.0.0/33", "10.0.0.0/8 x",
        "bogus", "ANY", "10.0.0.9-10.0.0.1", "10.0.0.1-2001:db8::1", "10.0.0.1-", "-10.0.0.1",
        "10.0.0.1-bogus", "10.0.0.0/8-10.0.0.9"}) {
    EXPECT_FALSE(parse_selector_list(text).ok()) << "'" << text << "'";
  }
}

TEST(ParseSelectorListTest, ErrorsQuoteTheBadItem) {
  EXPECT_THAT(parse_selector_list("10.0.0.0/8, 10.0.0.0/40").error(), HasSubstr("'10.0.0.0/40'"));
  EXPECT_THAT(parse_selector_list("10.0.0.9-10.0.0.1").error(), HasSubstr("'10.0.0.9-10.0.0.1'"));
}

// BUG (static_sa.cc:36-40): the loop stops as soon as the remaining text is
// empty, so a trailing comma ("10.0.0.0/8,") is accepted while a leading or
// doubled one is rejected as "empty selector in list". A trailing comma is
// the same typo (a selector was lost) and should be rejected too.
// Fails until parse_selector_list treats a trailing comma as an empty item.
TEST(ParseSelectorListTest, RejectsTrailingComma) {
  EXPECT_FALSE(parse_selector_list("10.0.0.0/8,").ok());
  EXPECT_FALSE(parse_selector_list("10.0.0.0/8, 10.1.0.0/16 ,  ").ok());
}

// ---------------------------------------------------------- parse_static_sas

constexpr std::string_view kGcmPair =
    "# A tunnel to one peer: one SA each way.\n"
    "[dataplane]\n"
    "cores = 4            # other sections are not ours to check\n"
    "\n"
    "[sa to-peer]\n"
    "direction = outbound\n"
    "spi = 0x1000\n"
    "algorithm = aes-gcm-256\n"
    "encryption_key = 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "salt = 0xa1b2c3d4\n"
    "local_address = 192.0.2.1\n"
    "remote_address = 198.51.100.7\n"
    "local_port = 4500\n"
    "remote_port = 31000\n"
    "local_selector = 10.0.0.0/24\n"
    "remote_selector = 10.1.0.0/24, 10.2.0.0/24\n"
    "lifetime_soft_bytes = 1000000\n"
    "lifetime_hard_bytes = 2000000\n"
    "lifetime_soft_packets = 1000\n"
    "lifetime_hard_packets = 0x7d0\n"
    "tunnel = peer\n"
    "\n"
    "[sa from-peer]\n"
    "direction = inbound\n"
    "spi = 4097\n"
    "algorithm = aes-gcm-256\n"
    "encryption_key = 20:21:22:23:24:25:26:27:28:29:2a:2b:2c:2d:2e:2f:"
    "30:31:32:33:34:35:36:37:38:39:3a:3b:3c:3d:3e:3f\n"
    "salt = 01020304\n"
    "esn = yes\n"
    "replay_window = 1024\n"
    "local_address = 192.0.2.1\n"
    "remote_address = 198.51.100.7\n"
    "remote_port = 31000\n"
    "local_selector = 10.0.0.0/24\n"
    "remote_selector = 10.1.0.0/24, 10.2.0.0/24\n"
    "tunnel = peer\n";

TEST(ParseStaticSasTest, FullGcmPair) {
  auto set = parse_sas_ok(kGcmPair);
  ASSERT_EQ(set.templates.size(), 2u);
  EXPECT_EQ(set.total(), 2u);

  const auto& out = set.templates[0];
  EXPECT_EQ(out.count, 1u);
  EXPECT_EQ(out.tunnel_name, "peer");
  EXPECT_EQ(out.remote_address_step, 0u);
  EXPECT_EQ(out.remote_port_step, 0u);
  const auto& o = out.base;
  EXPECT_EQ(o.name_view(), "to-peer");
  EXPECT_EQ(o.direction, SaDirection::kOutbound);
  EXPECT_EQ(o.spi, 0x1000u);
  EXPECT_EQ(o.algorithm, EspAlgorithm::kAesGcm256);
  EXPECT_EQ(o.cipher_key, key_bytes(32, 0x00));
  EXPECT_EQ(o.integrity_key, key_bytes(0, 0));
  EXPECT_EQ(o.salt, (std::array<uint8_t, 4>{0xa1, 0xb2, 0xc3, 0xd4}));
  EXPECT_FALSE(o.esn);
  EXPECT_EQ(o.path.local, address("192.0.2.1"));
  EXPECT_EQ(o.path.remote, address("198.51.100.7"));
  EXPECT_EQ(o.path.local_port, 4500);
  EXPECT_EQ(o.path.remote_port, 31000);
  EXPECT_TRUE(o.path.udp_encapsulation);
  ASSERT_EQ(o.local_selector_count, 1);
  EXPECT_EQ(o.local_selectors[0], TrafficSelector::from_prefix(prefix("10.0.0.0/24")));
  ASSERT_EQ(o.remote_selector_count, 2);
  EXPECT_EQ(o.remote_selectors[0], TrafficSelector::from_prefix(prefix("10.1.0.0/24")));
  EXPECT_EQ(o.remote_selectors[1], TrafficSelector::from_prefix(prefix("10.2.0.0/24")));
  EXPECT_EQ(o.lifetime.soft_bytes, 1000000u);
  EXPECT_EQ(o.lifetime.hard_bytes, 2000000u);
  EXPECT_EQ(o.lifetime.soft_packets, 1000u);
  EXPECT_EQ(o.lifetime.hard_packets, 2000u);

  const auto& i = set.templates[1].base;
  EXPECT_EQ(i.name_view(), "from-peer");
  EXPECT_EQ(i.direction, SaDirection::kInbound);
  EXPECT_EQ(i.spi, 4097u);
  EXPECT_EQ(i.cipher_key, key_bytes(32, 0x20));
  EXPECT_EQ(i.salt, (std::array<uint8_t, 4>{1, 2, 3, 4}));
  EXPECT_TRUE(i.esn);
  EXPECT_EQ(i.replay_window, 1024u);
  EXPECT_EQ(i.path.local_port, kNatTraversalPort);  // default
  EXPECT_EQ(i.path, o.path);
  EXPECT_EQ(i.lifetime.hard_bytes, 0u);  // 0 = no limit, the default

  // Both directions name tunnel "peer": one tunnel id.
  EXPECT_EQ(i.tunnel_id, o.tunnel_id);
  EXPECT_EQ(set.templates[1].tunnel_name, "peer");
}

TEST(ParseStaticSasTest, DefaultsOfAMinimalInboundSa) {
  auto set = parse_sas_ok(SaSection{}.erase("algorithm").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.count, 1u);
  EXPECT_EQ(t.tunnel_name, "peer");  // defaults to the section name
  const auto& sa = t.base;
  EXPECT_EQ(sa.algorithm, EspAlgorithm::kAesGcm128);
  EXPECT_EQ(sa.cipher_key, key_bytes(16, 0x00));
  EXPECT_FALSE(sa.esn);
  EXPECT_EQ(sa.replay_window, kDefaultReplayWindow);
  EXPECT_EQ(sa.path.local_port, kNatTraversalPort);
  EXPECT_EQ(sa.path.remote_port, kNatTraversalPort);
  EXPECT_TRUE(sa.path.udp_encapsulation);
  // Inbound selectors default to "any": both families, both sides.
  ASSERT_EQ(sa.local_selector_count, 2);
  ASSERT_EQ(sa.remote_selector_count, 2);
  EXPECT_EQ(sa.remote_selectors[0], TrafficSelector::from_prefix(prefix("0.0.0.0/0")));
  EXPECT_EQ(sa.remote_selectors[1], TrafficSelector::from_prefix(prefix("::/0")));
  EXPECT_EQ(sa.local_selectors[1], TrafficSelector::from_prefix(prefix("::/0")));
  EXPECT_EQ(sa.lifetime.soft_bytes, 0u);
  EXPECT_EQ(sa.lifetime.hard_packets, 0u);
}

TEST(ParseStaticSasTest, FileWithoutSaSectionsIsAnEmptySet) {
  auto set = parse_sas_ok("[dataplane]\nanything = goes\n");
  EXPECT_TRUE(set.templates.empty());
  EXPECT_EQ(set.total(), 0u);
}

TEST(ParseStaticSasTest, Ipv6Path) {
  auto set = parse_sas_ok(SaSection{}
                              .set("local_address", "2001:db8::1")
                              .set("remote_address", "2001:db8:ffff::7")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].base.path.local, address("2001:db8::1"));
  EXPECT_EQ(set.templates[0].base.path.remote, address("2001:db8:ffff::7"));
}

TEST(ParseStaticSasTest, RawEspAndOptionsInOtherSpellings) {
  auto set = parse_sas_ok(SaSection{}
                              .set("udp_encapsulation", "no")
                              .set("esn", "on")
                              .set("replay_window", "0x40")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_FALSE(set.templates[0].base.path.udp_encapsulation);
  EXPECT_TRUE(set.templates[0].base.esn);
  EXPECT_EQ(set.templates[0].base.replay_window, 64u);
}

TEST(ParseStaticSasTest, CbcHmacSha256WithIntegrityKey) {
  auto set = parse_sas_ok(SaSection{}
                              .set("algorithm", "aes-cbc-256-hmac-sha256-128")
                              .set("encryption_key", hex_key(32, 0x40))
                              .set("integrity_key", hex_key(32, 0x80))
                              .erase("salt")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& sa = set.templates[0].base;
  EXPECT_EQ(sa.algorithm, EspAlgorithm::kAesCbc256HmacSha256);
  EXPECT_EQ(sa.cipher_key, key_bytes(32, 0x40));
  EXPECT_EQ(sa.integrity_key, key_bytes(32, 0x80));
  EXPECT_EQ(sa.salt, (std::array<uint8_t, 4>{}));
}

TEST(ParseStaticSasTest, CbcHmacSha1WithIntegrityKey) {
  auto set = parse_sas_ok(SaSection{}
                              .set("algorithm", "aes-cbc-128-hmac-sha1-96")
                              .set("encryption_key", hex_key(16, 0x40))
                              .set("integrity_key", hex_key(20, 0x80))
                              .erase("salt")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& sa = set.templates[0].base;
  EXPECT_EQ(sa.algorithm, EspAlgorithm::kAesCbc128HmacSha1);
  EXPECT_EQ(sa.cipher_key, key_bytes(16, 0x40));
  EXPECT_EQ(sa.integrity_key, key_bytes(20, 0x80));  // bytes 20..31 stay zero
}

// Every algorithm parses when given keys of exactly its lengths.
TEST(ParseStaticSasTest, EveryAlgorithmAcceptsItsKeyLengths) {
  for (int a = 0; a < kEspAlgorithmCount; ++a) {
    const auto& props = properties(static_cast<EspAlgorithm>(a));
    SCOPED_TRACE(props.name);
    SaSection section;
    section.set("algorithm", props.name).set("encryption_key", hex_key(props.cipher_key_length, 1));
    if (props.integrity_key_length) section.set("integrity_key", hex_key(props.integrity_key_length, 2));
    if (!props.salt_length) section.erase("salt");
    auto set = parse_sas_ok(section.text());
    ASSERT_EQ(set.templates.size(), 1u);
    EXPECT_EQ(set.templates[0].base.algorithm, static_cast<EspAlgorithm>(a));
  }
}

TEST(ParseStaticSasTest, ErrorsCarryFileLineSectionAndKey) {
  SaSection section;
  section.set("spi", "255");
  auto error = parse_sas_error(section.text());
  EXPECT_THAT(error, StartsWith("sas.conf:" + std::to_string(section.line_of("spi")) +
                                ": [sa peer] spi: "));
  EXPECT_THAT(error, HasSubstr("255"));
  EXPECT_THAT(error, HasSubstr("out of range"));
}

TEST(ParseStaticSasTest, ErrorInALaterSectionNamesThatSection) {
  std::string text = SaSection{}.text() + "\n" + SaSection{}.named("second").set("spi", "12").text();
  auto error = parse_sas_error(text);
  // First section: 8 lines, then a blank line; [sa second] is line 10, spi line 12.
  EXPECT_THAT(error, StartsWith("sas.conf:12: [sa second] spi: "));
}

TEST(ParseStaticSasTest, SpiRange) {
  EXPECT_TRUE(parse_sas(SaSection{}.set("spi", "256").text()).ok());
  EXPECT_TRUE(parse_sas(SaSection{}.set("spi", "0xffffffff").text()).ok());
  EXPECT_FALSE(parse_sas(SaSection{}.set("spi", "0").text()).ok());
  EXPECT_FALSE(parse_sas(SaSection{}.set("spi", "255").text()).ok());  // RFC 4303 2.1: reserved
  EXPECT_FALSE(parse_sas(SaSection{}.set("spi", "0x100000000").text()).ok());
  EXPECT_FALSE(parse_sas(SaSection{}.set("spi", "many").text()).ok());
}

TEST(ParseStaticSasTest, MissingRequiredKeys) {
  for (const char* key : {"direction", "spi", "encryption_key", "salt", "local_address",
                          "remote_address"}) {
    SCOPED_TRACE(key);
    auto error = parse_sas_error(SaSection{}.erase(key).text());
    EXPECT_THAT(error, StartsWith("sas.conf:1: [sa peer] " + std::string(key) + ": "));
    EXPECT_THAT(error, HasSubstr("missing"));
  }
}

TEST(ParseStaticSasTest, SectionNeedsAName) {
  auto error = parse_sas_error(SaSection{}.named("").text());
  // "[sa ]" trims to a section of type "sa" without a name.
  EXPECT_THAT(error, HasSubstr("needs a name"));
  EXPECT_THAT(parse_sas_error("[sa]\n" + SaSection{}.text().substr(10)), HasSubstr("needs a name"));
}

TEST(ParseStaticSasTest, BadDirection) {
  auto error = parse_sas_error(SaSection{}.set("direction", "both").text());
  EXPECT_THAT(error, HasSubstr("[sa peer] direction"));
  EXPECT_THAT(error, HasSubstr("'both'"));
}

TEST(ParseStaticSasTest, MissingEncryptionKeySaysHowLong) {
  auto error = parse_sas_error(SaSection{}.set("algorithm", "aes-gcm-256").erase("encryption_key").text());
  EXPECT_THAT(error, HasSubstr("[sa peer] encryption_key"));
  EXPECT_THAT(error, HasSubstr("32 bytes"));
}

TEST(ParseStaticSasTest, WrongEncryptionKeyLength) {
  SaSection short_key;
  short_key.set("encryption_key", hex_key(15, 0));
  EXPECT_THAT(parse_sas_error(short_key.text()),
              AllOf(StartsWith("sas.conf:" + std::to_string(short_key.line_of("encryption_key")) +
                               ": [sa peer] encryption_key: "),
                    HasSubstr("expected 16 bytes, got 15")));
  // A 128-bit key for AES-256.
  EXPECT_THAT(parse_sas_error(SaSection{}.set("algorithm", "aes-gcm-256").text()),
              HasSubstr("expected 32 bytes, got 16"));
  // A 256-bit key for AES-128.
  EXPECT_THAT(parse_sas_error(SaSection{}.set("encryption_key", hex_key(32, 0)).text()),
              HasSubstr("expected 16 bytes, got 32"));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("encryption_key", "0x0g").text()),
              HasSubstr("not a hex string"));
}

TEST(ParseStaticSasTest, WrongSaltLength) {
  EXPECT_THAT(parse_sas_error(SaSection{}.set("salt", "0xa1b2c3").text()),
              AllOf(HasSubstr("[sa peer] salt"), HasSubstr("expected 4 bytes, got 3")));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("salt", "0xa1b2c3d4e5").text()),
              HasSubstr("expected 4 bytes, got 5"));
}

TEST(ParseStaticSasTest, CbcNeedsAnIntegrityKeyOfItsLength) {
  SaSection cbc;
  cbc.set("algorithm", "aes-cbc-128-hmac-sha1-96").set("encryption_key", hex_key(16, 0)).erase("salt");
  EXPECT_THAT(parse_sas_error(cbc.text()),
              AllOf(HasSubstr("[sa peer] integrity_key"), HasSubstr("missing"), HasSubstr("20 bytes")));
  // A SHA-256 sized key for HMAC-SHA1-96 (RFC 2404 wants 160 bits).
  cbc.set("integrity_key", hex_key(32, 0));
  EXPECT_THAT(parse_sas_error(cbc.text()),
              AllOf(HasSubstr("[sa peer] integrity_key"), HasSubstr("expected 20 bytes, got 32")));
  // And the reverse for HMAC-SHA-256-128 (RFC 4868 wants 256 bits).
  cbc.set("algorithm", "aes-cbc-128-hmac-sha256-128").set("integrity_key", hex_key(20, 0));
  EXPECT_THAT(parse_sas_error(cbc.text()), HasSubstr("expected 32 bytes, got 20"));
}

TEST(ParseStaticSasTest, SaltOnCbcIsRejected) {
  SaSection cbc;
  cbc.set("algorithm", "aes-cbc-128-hmac-sha256-128")
      .set("encryption_key", hex_key(16, 0))
      .set("integrity_key", hex_key(32, 0));  // salt stays from the GCM default
  auto error = parse_sas_error(cbc.text());
  EXPECT_THAT(error, StartsWith("sas.conf:" + std::to_string(cbc.line_of("salt")) +
                                ": [sa peer] salt: "));
  EXPECT_THAT(error, HasSubstr("not used by aes-cbc-128-hmac-sha256-128"));
}

TEST(ParseStaticSasTest, IntegrityKeyOnGcmIsRejected) {
  auto error = parse_sas_error(SaSection{}.set("integrity_key", hex_key(20, 0)).text());
  EXPECT_THAT(error, HasSubstr("[sa peer] integrity_key"));
  EXPECT_THAT(error, HasSubstr("not used by aes-gcm-128"));
}

TEST(ParseStaticSasTest, UnknownAlgorithmListsTheKnownNames) {
  auto error = parse_sas_error(SaSection{}.set("algorithm", "aes-ccm-128").text());
  EXPECT_THAT(error, HasSubstr("[sa peer] algorithm"));
  EXPECT_THAT(error, HasSubstr("'aes-ccm-128'"));
  for (int a = 0; a < kEspAlgorithmCount; ++a)
    EXPECT_THAT(error, HasSubstr(to_string(static_cast<EspAlgorithm>(a))));
}

TEST(ParseStaticSasTest, OutboundNeedsARemoteSelector) {
  EXPECT_TRUE(parse_sas(SaSection{}.outbound().text()).ok());
  auto error = parse_sas_error(SaSection{}.outbound().erase("remote_selector").text());
  EXPECT_THAT(error, StartsWith("sas.conf:1: [sa peer] remote_selector: "));
  EXPECT_THAT(error, HasSubstr("outbound"));
  // Saying "any" explicitly is a choice, not an omission.
  EXPECT_TRUE(parse_sas(SaSection{}.outbound().set("remote_selector", "any").text()).ok());
}

TEST(ParseStaticSasTest, ReplayWindowIsInboundOnlyAndBounded) {
  EXPECT_TRUE(parse_sas(SaSection{}.set("replay_window", "64").text()).ok());
  EXPECT_TRUE(parse_sas(SaSection{}.set("replay_window", "32768").text()).ok());
  EXPECT_THAT(parse_sas_error(SaSection{}.set("replay_window", "32").text()),
              AllOf(HasSubstr("[sa peer] replay_window"), HasSubstr("[64, 32768]")));
  EXPECT_FALSE(parse_sas(SaSection{}.set("replay_window", "65536").text()).ok());
  EXPECT_THAT(parse_sas_error(SaSection{}.outbound().set("replay_window", "64").text()),
              AllOf(HasSubstr("[sa peer] replay_window"), HasSubstr("inbound")));
}

TEST(ParseStaticSasTest, AddressesMustBeValidAndOfOneFamily) {
  EXPECT_THAT(parse_sas_error(SaSection{}.set("remote_address", "198.51.100.300").text()),
              AllOf(HasSubstr("[sa peer] remote_address"), HasSubstr("'198.51.100.300'")));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("remote_address", "2001:db8::7").text()),
              AllOf(HasSubstr("[sa peer] remote_address"), HasSubstr("famil")));
}

TEST(ParseStaticSasTest, PortsAreBounded) {
  EXPECT_TRUE(parse_sas(SaSection{}.set("local_port", "1").set("remote_port", "65535").text()).ok());
  EXPECT_THAT(parse_sas_error(SaSection{}.set("local_port", "0").text()), HasSubstr("local_port"));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("remote_port", "65536").text()),
              HasSubstr("remote_port"));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("remote_port_step", "65536").text()),
              HasSubstr("remote_port_step"));
}

TEST(ParseStaticSasTest, BadSelectorNamesTheKey) {
  auto error = parse_sas_error(SaSection{}.set("local_selector", "10.0.0.0/8, 10.1.0.0/99").text());
  EXPECT_THAT(error, HasSubstr("[sa peer] local_selector"));
  EXPECT_THAT(error, HasSubstr("'10.1.0.0/99'"));
  EXPECT_THAT(parse_sas_error(SaSection{}.outbound().set("remote_selector", "").text()),
              HasSubstr("remote_selector"));
}

TEST(ParseStaticSasTest, BadBooleanAndLifetime) {
  EXPECT_THAT(parse_sas_error(SaSection{}.set("esn", "sometimes").text()), HasSubstr("[sa peer] esn"));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("udp_encapsulation", "2").text()),
              HasSubstr("udp_encapsulation"));
  EXPECT_THAT(parse_sas_error(SaSection{}.set("lifetime_hard_bytes", "-1").text()),
              HasSubstr("lifetime_hard_bytes"));
  auto set = parse_sas_ok(SaSection{}.set("lifetime_hard_bytes", "18446744073709551615").text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].base.lifetime.hard_bytes, UINT64_MAX);
}

TEST(ParseStaticSasTest, UnknownKeyIsRejectedWithItsLine) {
  SaSection section;
  section.set("replay_windw", "64");  // typo
  auto error = parse_sas_error(section.text());
  EXPECT_THAT(error, StartsWith("sas.conf:" + std::to_string(section.line_of("replay_windw")) +
                                ": [sa peer] replay_windw: "));
  EXPECT_THAT(error, HasSubstr("unknown key"));
}

TEST(ParseStaticSasTest, CountBounds) {
  EXPECT_THAT(parse_sas_error(SaSection{}.set("count", "0").text()), HasSubstr("[sa peer] count"));
  EXPECT_TRUE(parse_sas(SaSection{}.set("count", "16777216").text()).ok());  // 2^24
  EXPECT_FALSE(parse_sas(SaSection{}.set("count", "16777217").text()).ok());
}

TEST(ParseStaticSasTest, CountMustNotRunPastTheLastSpi) {
  EXPECT_TRUE(parse_sas(SaSection{}.set("spi", "0xfffffffe").set("count", "2").text()).ok());
  auto error = parse_sas_error(SaSection{}.set("spi", "0xffffffff").set("count", "2").text());
  EXPECT_THAT(error, HasSubstr("[sa peer] count"));
  EXPECT_THAT(error, HasSubstr("0xffffffff"));
}

// ------------------------------------------------------------- expansion

TEST(StaticSaExpandTest, IndexZeroIsTheBase) {
  auto set = parse_sas_ok(SaSection{}.outbound().set("count", "3").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  auto first = t.expand(0);
  EXPECT_EQ(first.spi, t.base.spi);
  EXPECT_EQ(first.tunnel_id, t.base.tunnel_id);
  EXPECT_EQ(first.name_view(), "peer");
  EXPECT_EQ(first.path, t.base.path);
  EXPECT_EQ(first.remote_selectors[0], t.base.remote_selectors[0]);
}

TEST(StaticSaExpandTest, SpiTunnelIdAndNameFollowTheIndex) {
  auto set = parse_sas_ok(SaSection{}.outbound().set("spi", "0x1000").set("count", "4").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.count, 4u);
  EXPECT_EQ(set.total(), 4u);
  for (uint32_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    auto sa = t.expand(i);
    EXPECT_EQ(sa.spi, 0x1000u + i);
    EXPECT_EQ(sa.tunnel_id, t.base.tunnel_id + i);
    EXPECT_EQ(sa.direction, SaDirection::kOutbound);
    EXPECT_EQ(sa.cipher_key, t.base.cipher_key);
    EXPECT_EQ(sa.salt, t.base.salt);
    EXPECT_EQ(sa.local_selectors, t.base.local_selectors);  // only remote ones move
    if (i > 0) {
      EXPECT_EQ(sa.name_view(), "peer#" + std::to_string(i));
    }
  }
}

TEST(StaticSaExpandTest, RemoteSelectorsShiftByTheirOwnSize) {
  auto set = parse_sas_ok(SaSection{}
                              .outbound()
                              .set("count", "3")
                              .set("remote_selector", "10.1.0.0/24, 10.2.0.0/28, 10.3.0.1-10.3.0.4")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  auto sa = set.templates[0].expand(2);
  ASSERT_EQ(sa.remote_selector_count, 3);
  EXPECT_EQ(sa.remote_selectors[0], TrafficSelector::from_prefix(prefix("10.1.2.0/24")));
  EXPECT_EQ(sa.remote_selectors[1], TrafficSelector::from_prefix(prefix("10.2.0.32/28")));
  EXPECT_EQ(sa.remote_selectors[2].start, address("10.3.0.9"));  // a range of 4 moves by 4
  EXPECT_EQ(sa.remote_selectors[2].end, address("10.3.0.12"));
}

TEST(StaticSaExpandTest, RemoteSelectorsCarryAcrossOctets) {
  auto set = parse_sas_ok(
      SaSection{}.outbound().set("count", "300").set("remote_selector", "10.0.0.0/16").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.expand(3).remote_selectors[0], TrafficSelector::from_prefix(prefix("10.3.0.0/16")));
  EXPECT_EQ(t.expand(256).remote_selectors[0], TrafficSelector::from_prefix(prefix("11.0.0.0/16")));
}

TEST(StaticSaExpandTest, ShiftedSelectorsDoNotOverlap) {
  auto set = parse_sas_ok(
      SaSection{}.outbound().set("count", "64").set("remote_selector", "172.16.0.0/26").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  for (uint32_t i = 1; i < 64; ++i) {
    auto previous = t.expand(i - 1).remote_selectors[0];
    auto current = t.expand(i).remote_selectors[0];
    EXPECT_EQ(previous.end.plus(1), current.start) << "index " << i;
  }
}

TEST(StaticSaExpandTest, Ipv4AnyStaysAny) {
  auto set = parse_sas_ok(SaSection{}.set("count", "3").set("remote_selector", "0.0.0.0/0").text());
  ASSERT_EQ(set.templates.size(), 1u);
  for (uint32_t i = 0; i < 3; ++i)
    EXPECT_EQ(set.templates[0].expand(i).remote_selectors[0],
              TrafficSelector::from_prefix(prefix("0.0.0.0/0")))
        << "index " << i;
}

TEST(StaticSaExpandTest, Ipv6PrefixesLongerThan64BitsShift) {
  auto set = parse_sas_ok(
      SaSection{}.outbound().set("count", "3").set("remote_selector", "2001:db8::/120").text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(2).remote_selectors[0],
            TrafficSelector::from_prefix(prefix("2001:db8::200/120")));
}

// BUG (static_sa.cc:30, selector_span): for an IPv6 /64 the span is
// hi - lo + 1 = 0xffffffffffffffff - 0 + 1, which wraps to 0, so every
// expanded SA keeps the same /64 (overlapping routes) instead of moving to
// the next /64. /64 is the usual size of an IPv6 subnet. Expected for index 1:
// 2001:db8:0:1::/64; actual: 2001:db8::/64. Fails until fixed.
TEST(StaticSaExpandTest, Ipv6Slash64Shifts) {
  auto set = parse_sas_ok(
      SaSection{}.outbound().set("count", "3").set("remote_selector", "2001:db8::/64").text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(1).remote_selectors[0],
            TrafficSelector::from_prefix(prefix("2001:db8:0:1::/64")));
  EXPECT_EQ(set.templates[0].expand(2).remote_selectors[0],
            TrafficSelector::from_prefix(prefix("2001:db8:0:2::/64")));
}

// BUG (static_sa.cc:23-24, selector_span, and expand at :75-77): a
// selector wider than 2^64 addresses gets span 2^63, so a /48 moves by 2^63
// (half of a /64) instead of by 2^80: index 1 becomes
// 2001:db8::8000:0:0:0-2001:db8:1:0:7fff:ffff:ffff:ffff, which is not a
// /48 and overlaps index 0; index 2 (2 * 2^63 = 0 mod 2^64) does not move.
// Expected: 2001:db8:1::/48, 2001:db8:2::/48. Fails until the shift is done
// in 128-bit arithmetic (or such selectors are rejected with count > 1).
TEST(StaticSaExpandTest, Ipv6PrefixesShorterThan64BitsShift) {
  auto set = parse_sas_ok(
      SaSection{}.outbound().set("count", "3").set("remote_selector", "2001:db8::/48").text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(1).remote_selectors[0],
            TrafficSelector::from_prefix(prefix("2001:db8:1::/48")));
  EXPECT_EQ(set.templates[0].expand(2).remote_selectors[0],
            TrafficSelector::from_prefix(prefix("2001:db8:2::/48")));
}

// BUG (same cause): an inbound SA's remote_selector defaults to "any", i.e.
// 0.0.0.0/0 and ::/0. Shifting ::/0 by its own size must leave it ::/0 (as
// 0.0.0.0/0 is left, see Ipv4AnyStaysAny), but with count > 1 index 1 gets
// start ::8000:0:0:0 and end ::7fff:ffff:ffff:ffff: end < start, an empty
// selector, so IPv6 traffic of every odd-indexed SA is dropped.
// Fails until fixed.
TEST(StaticSaExpandTest, DefaultAnySelectorsStayAnyAndNonEmpty) {
  auto set = parse_sas_ok(SaSection{}.set("count", "4").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  for (uint32_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    auto sa = t.expand(i);
    ASSERT_EQ(sa.remote_selector_count, 2);
    for (int s = 0; s < sa.remote_selector_count; ++s)
      EXPECT_FALSE(sa.remote_selectors[s].end < sa.remote_selectors[s].start)
          << "selector " << s << " is empty";
    EXPECT_EQ(sa.remote_selectors[0], TrafficSelector::from_prefix(prefix("0.0.0.0/0")));
    EXPECT_EQ(sa.remote_selectors[1], TrafficSelector::from_prefix(prefix("::/0")));
  }
}

TEST(StaticSaExpandTest, RemoteAddressStep) {
  auto set = parse_sas_ok(SaSection{}.set("count", "300").set("remote_address_step", "1").text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.remote_address_step, 1u);
  EXPECT_EQ(t.expand(0).path.remote, address("198.51.100.7"));
  EXPECT_EQ(t.expand(1).path.remote, address("198.51.100.8"));
  EXPECT_EQ(t.expand(249).path.remote, address("198.51.101.0"));  // carries
  // The gateway's own side never moves.
  EXPECT_EQ(t.expand(249).path.local, address("192.0.2.1"));
}

TEST(StaticSaExpandTest, RemoteAddressStepLargerThanOne) {
  auto set = parse_sas_ok(SaSection{}
                              .set("count", "4")
                              .set("remote_address", "10.0.0.1")
                              .set("remote_address_step", "0x10000")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(3).path.remote, address("10.3.0.1"));
}

TEST(StaticSaExpandTest, RemoteAddressStepOnIpv6) {
  auto set = parse_sas_ok(SaSection{}
                              .set("count", "3")
                              .set("local_address", "2001:db8::1")
                              .set("remote_address", "2001:db8:1::ffff")
                              .set("remote_address_step", "1")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(2).path.remote, address("2001:db8:1::1:1"));
}

TEST(StaticSaExpandTest, WithoutStepsThePathIsShared) {
  auto set = parse_sas_ok(SaSection{}.set("count", "5").text());
  ASSERT_EQ(set.templates.size(), 1u);
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(set.templates[0].expand(i).path, set.templates[0].base.path);
}

TEST(StaticSaExpandTest, RemotePortStep) {
  auto set = parse_sas_ok(SaSection{}
                              .set("count", "10")
                              .set("remote_port", "4500")
                              .set("remote_port_step", "10")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.remote_port_step, 10u);
  EXPECT_EQ(t.expand(0).path.remote_port, 4500);
  EXPECT_EQ(t.expand(1).path.remote_port, 4510);
  EXPECT_EQ(t.expand(3).path.remote_port, 4530);
  EXPECT_EQ(t.expand(3).path.local_port, 4500);  // our own port never moves
}

TEST(StaticSaExpandTest, RemotePortStepWrapsTo1024) {
  auto set = parse_sas_ok(SaSection{}
                              .set("count", "3")
                              .set("remote_port", "65535")
                              .set("remote_port_step", "1")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  EXPECT_EQ(t.expand(1).path.remote_port, 1024);
  EXPECT_EQ(t.expand(2).path.remote_port, 1025);

  auto big = parse_sas_ok(SaSection{}
                              .set("count", "2")
                              .set("remote_port", "65000")
                              .set("remote_port_step", "1000")
                              .text());
  ASSERT_EQ(big.templates.size(), 1u);
  // 65000 + 1000 = 66000, which is 64976 past 1024; 64976 mod 64512 = 464.
  EXPECT_EQ(big.templates[0].expand(1).path.remote_port, 1024 + 464);
}

TEST(StaticSaExpandTest, RemotePortStepStaysInTheUnprivilegedRange) {
  auto set = parse_sas_ok(SaSection{}
                              .set("count", "100000")
                              .set("remote_port", "1024")
                              .set("remote_port_step", "65535")
                              .text());
  ASSERT_EQ(set.templates.size(), 1u);
  const auto& t = set.templates[0];
  std::set<uint16_t> seen;
  for (uint32_t i = 0; i < t.count; i += 97) {
    uint16_t port = t.expand(i).path.remote_port;
    EXPECT_GE(port, 1024) << "index " << i;
    seen.insert(port);
  }
  EXPECT_GT(seen.size(), 100u);
  // A step of 64512 (the size of 1024..65535) comes back to the same port.
  auto period = parse_sas_ok(SaSection{}
                                 .set("count", "3")
                                 .set("remote_port", "31000")
                                 .set("remote_port_step", "64512")
                                 .text());
  ASSERT_EQ(period.templates.size(), 1u);
  EXPECT_EQ(period.templates[0].expand(2).path.remote_port, 31000);
}

TEST(StaticSaExpandTest, WithoutPortStepThePortStays) {
  auto set = parse_sas_ok(SaSection{}.set("count", "3").set("remote_port", "500").text());
  ASSERT_EQ(set.templates.size(), 1u);
  EXPECT_EQ(set.templates[0].expand(2).path.remote_port, 500);
}

TEST(StaticSaSetTest, TotalSumsCounts) {
  auto set = parse_sas_ok(SaSection{}.named("a").set("count", "3").text() +
                          SaSection{}.named("b").set("spi", "0x2000").text() +
                          SaSection{}.named("c").set("spi", "0x3000").set("count", "10").text());
  ASSERT_EQ(set.templates.size(), 3u);
  EXPECT_EQ(set.total(), 14u);
}

// ------------------------------------------------------------- tunnel ids

TEST(TunnelIdTest, SasNamingOneTunnelShareItsId) {
  auto set = parse_sas_ok(SaSection{}.named("in").set("tunnel", "t").text() +
                          SaSection{}.named("out").outbound().set("spi", "0x2000").set("tunnel", "t").text());
  ASSERT_EQ(set.templates.size(), 2u);
  EXPECT_EQ(set.templates[0].base.tunnel_id, set.templates[1].base.tunnel_id);
}

TEST(TunnelIdTest, DistinctTunnelsGetDistinctIds) {
  // Without a tunnel key each SA is its own tunnel, named after the section.
  auto set = parse_sas_ok(SaSection{}.named("a").text() +
                          SaSection{}.named("b").set("spi", "0x2000").text() +
                          SaSection{}.named("c").set("spi", "0x3000").set("tunnel", "x").text());
  ASSERT_EQ(set.templates.size(), 3u);
  EXPECT_EQ(set.templates[0].tunnel_name, "a");
  EXPECT_EQ(set.templates[1].tunnel_name, "b");
  EXPECT_EQ(set.templates[2].tunnel_name, "x");
  std::set<uint32_t> ids;
  for (const auto& t : set.templates) ids.insert(t.base.tunnel_id);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(TunnelIdTest, ExpandedTunnelsKeepPairsTogetherAndApart) {
  // Tunnel "big" (in+out, 3 each) and tunnel "small" (in only, 2): every
  // expanded in/out pair of "big" shares an id; no id is used by both tunnels.
  auto set = parse_sas_ok(
      SaSection{}.named("big-in").set("count", "3").set("tunnel", "big").text() +
      SaSection{}.named("small").set("spi", "0x5000").set("count", "2").text() +
      SaSection{}.named("big-out").outbound().set("spi", "0x2000").set("count", "3").set("tunnel", "big").text());
  ASSERT_EQ(set.templates.size(), 3u);
  const auto& big_in = set.templates[0];
  const auto& small = set.templates[1];
  const auto& big_out = set.templates[2];

  std::map<uint32_t, std::string> owner;
  auto claim = [&](const StaticSaTemplate& t) {
    for (uint32_t i = 0; i < t.count; ++i) {
      uint32_t id = t.expand(i).tunnel_id;
      auto [it, inserted] = owner.emplace(id, t.tunnel_name);
      EXPECT_EQ(it->second, t.tunnel_name) << "tunnel id " << id << " used by two tunnels";
    }
  };
  claim(big_in);
  claim(small);
  claim(big_out);
  EXPECT_EQ(owner.size(), 5u);  // 3 ids for "big", 2 for "small"
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(big_in.expand(i).tunnel_id, big_out.expand(i).tunnel_id) << "index " << i;
    EXPECT_EQ(big_in.expand(i).path, big_out.expand(i).path) << "index " << i;
  }
}

TEST(TunnelIdTest, MismatchedPathsWithinATunnelAreRejected) {
  struct Case {
    const char* key;
    const char* value;
  };
  for (auto [key, value] : {Case{"remote_address", "198.51.100.8"}, Case{"local_address", "192.0.2.2"},
                            Case{"remote_port", "4501"}, Case{"local_port", "4501"},
                            Case{"udp_encapsulation", "no"}}) {
    SCOPED_TRACE(key);
    SaSection first;
    first.named("in").set("tunnel", "t");
    SaSection second;
    second.named("out").outbound().set("spi", "0x2000").set("tunnel", "t").set(key, value);
    auto error = parse_sas_error(first.text() + second.text());
    // The error points into the second section: it is the one that disagrees.
    EXPECT_THAT(error, StartsWith("sas.conf:"));
    EXPECT_THAT(error, HasSubstr("[sa out]"));
    EXPECT_THAT(error, HasSubstr("'t'"));
    EXPECT_THAT(error, HasSubstr("same path"));
  }
}

TEST(TunnelIdTest, MismatchedPathErrorCarriesTheLine) {
  SaSection first;
  first.named("in").set("tunnel", "t");
  SaSection second;
  second.named("out").outbound().set("spi", "0x2000").set("tunnel", "t").set("remote_port", "9");
  auto error = parse_sas_error(first.text() + second.text());
  int line = static_cast<int>(first.keys.size()) + 1 + second.line_of("remote_address");
  EXPECT_THAT(error, StartsWith("sas.conf:" + std::to_string(line) + ": [sa out] remote_address: "));
}

TEST(TunnelIdTest, MismatchedCountsWithinATunnelAreRejected) {
  auto error = parse_sas_error(
      SaSection{}.named("in").set("tunnel", "t").set("count", "2").text() +
      SaSection{}.named("out").outbound().set("spi", "0x2000").set("tunnel", "t").set("count", "3").text());
  EXPECT_THAT(error, HasSubstr("[sa out] count"));
  EXPECT_THAT(error, HasSubstr("'t'"));
  EXPECT_THAT(error, HasSubstr("same count"));
}

// BUG (static_sa.cc:198 with expand at :79-83): SAs of one tunnel must
// agree on the path (sa_descriptor.h: "SAs of one tunnel share one path"),
// but the check compares only the base paths, not remote_address_step or
// remote_port_step. Here "in" steps its remote address and "out" does not, so
// the expanded SAs with tunnel id base+1 have remote 198.51.100.8 (inbound)
// and 198.51.100.7 (outbound). Expected: the file is rejected ("must have the
// same path"), or at least expanded SAs sharing a tunnel id share the path.
// Actual: accepted, paths differ. Fails until fixed.
TEST(TunnelIdTest, MismatchedStepsWithinATunnelCannotSplitItsPath) {
  for (const char* step_key : {"remote_address_step", "remote_port_step"}) {
    SCOPED_TRACE(step_key);
    auto set = parse_sas(
        SaSection{}.named("in").set("tunnel", "t").set("count", "2").set(step_key, "1").text() +
        SaSection{}.named("out").outbound().set("spi", "0x2000").set("tunnel", "t").set("count", "2").text());
    if (!set) continue;  // rejecting the file is a correct answer
    ASSERT_EQ(set->templates.size(), 2u);
    for (uint32_t i = 0; i < 2; ++i) {
      auto in = set->templates[0].expand(i);
      auto out = set->templates[1].expand(i);
      ASSERT_EQ(in.tunnel_id, out.tunnel_id);
      EXPECT_EQ(in.path, out.path) << "tunnel id " << in.tunnel_id << " has two paths";
    }
  }
}

// ------------------------------------------------------------ key hygiene

TEST(StaticSaKeysTest, ParsedKeysSurviveInTheSet) {
  // parse_static_sas zeroises its working copy; the set must keep its own.
  auto set = parse_sas_ok(SaSection{}.named("a").text() +
                          SaSection{}.named("b").set("spi", "0x2000").set("encryption_key", hex_key(16, 0x70)).text());
  ASSERT_EQ(set.templates.size(), 2u);
  EXPECT_EQ(set.templates[0].base.cipher_key, key_bytes(16, 0x00));
  EXPECT_EQ(set.templates[1].base.cipher_key, key_bytes(16, 0x70));
  EXPECT_EQ(set.templates[0].base.salt, (std::array<uint8_t, 4>{0xa1, 0xb2, 0xc3, 0xd4}));
}

TEST(StaticSaKeysTest, TemplateDestructorZeroisesKeys) {
  alignas(StaticSaTemplate) unsigned char storage[sizeof(StaticSaTemplate)];
  auto* t = new (storage) StaticSaTemplate;
  t->base.cipher_key.fill(0x11);
  t->base.integrity_key.fill(0x22);
  t->base.salt.fill(0x33);
  auto offset_of = [&](const void* p) {
    return static_cast<size_t>(static_cast<const unsigned char*>(p) - storage);
  };
  size_t cipher = offset_of(t->base.cipher_key.data());
  size_t integrity = offset_of(t->base.integrity_key.data());
  size_t salt = offset_of(t->base.salt.data());
  t->~StaticSaTemplate();
  // The storage outlives the object; secure_zero must have reached it.
  for (size_t i = 0; i < kMaxKeyLength; ++i) {
    EXPECT_EQ(storage[cipher + i], 0) << "cipher key byte " << i;
    EXPECT_EQ(storage[integrity + i], 0) << "integrity key byte " << i;
  }
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(storage[salt + i], 0) << "salt byte " << i;
}

}  // namespace
}  // namespace segw::shared
