// Identities and identity patterns of the control plane's configuration:
// parsing of every type (DNs checked against names OpenSSL builds itself),
// matching (exact, suffix, DN, %any), the score order and the look-ups
// that use it (find_profile, find_secret).
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/crypto/openssl_types.h"

namespace segw::cp::config {
namespace {

std::vector<uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

// A DER Name built with OpenSSL from (type, value) pairs with the given
// string type (`MBSTRING_ASC` lets OpenSSL choose, V_ASN1_... forces one).
std::vector<uint8_t> der_name(const std::vector<std::pair<const char*, const char*>>& rdns,
                              int string_type = MBSTRING_ASC) {
  crypto::X509NamePtr name(X509_NAME_new());
  for (const auto& [type, value] : rdns)
    EXPECT_EQ(X509_NAME_add_entry_by_txt(name.get(), type, string_type,
                                         reinterpret_cast<const unsigned char*>(value), -1, -1, 0),
              1);
  unsigned char* der = nullptr;
  int length = i2d_X509_NAME(name.get(), &der);
  std::vector<uint8_t> out(der, der + std::max(length, 0));
  OPENSSL_free(der);
  return out;
}

// Whether two DER Names are the same name (OpenSSL's canonical comparison).
bool same_name(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const unsigned char* pa = a.data();
  const unsigned char* pb = b.data();
  crypto::X509NamePtr na(d2i_X509_NAME(nullptr, &pa, static_cast<long>(a.size())));
  crypto::X509NamePtr nb(d2i_X509_NAME(nullptr, &pb, static_cast<long>(b.size())));
  return na && nb && X509_NAME_cmp(na.get(), nb.get()) == 0;
}

Identity identity(std::string_view text) {
  auto parsed = parse_identity(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.error();
  return parsed.ok() ? *parsed : Identity{};
}

IdentityPattern pattern(std::string_view text) {
  auto parsed = parse_identity_pattern(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.error();
  return parsed.ok() ? *parsed : IdentityPattern{};
}

// ---------------------------------------------------------------------------
// parse_identity.

TEST(IdentityTest, Fqdn) {
  for (const char* text : {"fqdn:gw.example.net", "gw.example.net", "FQDN:gw.example.net", "  gw.example.net "}) {
    auto id = identity(text);
    EXPECT_EQ(id.type, ike::IdType::kFqdn) << text;
    EXPECT_EQ(id.data, bytes("gw.example.net")) << text;
  }
  EXPECT_EQ(identity("fqdn:gw.example.net").text, "fqdn:gw.example.net");
  // A bare host name without dots is an FQDN too.
  EXPECT_EQ(identity("segw").type, ike::IdType::kFqdn);
}

TEST(IdentityTest, Email) {
  for (const char* text : {"email:dev@example.net", "dev@example.net"}) {
    auto id = identity(text);
    EXPECT_EQ(id.type, ike::IdType::kRfc822Address) << text;
    EXPECT_EQ(id.data, bytes("dev@example.net")) << text;
  }
  // With the prefix, no '@' is needed (strongSwan).
  EXPECT_EQ(identity("email:device-1").type, ike::IdType::kRfc822Address);
}

TEST(IdentityTest, Ipv4AndIpv6) {
  for (const char* text : {"ip:192.0.2.1", "192.0.2.1"}) {
    auto id = identity(text);
    EXPECT_EQ(id.type, ike::IdType::kIpv4Address) << text;
    EXPECT_EQ(id.data, (std::vector<uint8_t>{192, 0, 2, 1})) << text;
  }
  for (const char* text : {"ip:2001:db8::1", "2001:db8::1"}) {
    auto id = identity(text);
    EXPECT_EQ(id.type, ike::IdType::kIpv6Address) << text;
    std::vector<uint8_t> expected(16, 0);
    expected[0] = 0x20;
    expected[1] = 0x01;
    expected[2] = 0x0d;
    expected[3] = 0xb8;
    expected[15] = 1;
    EXPECT_EQ(id.data, expected) << text;
  }
}

TEST(IdentityTest, DistinguishedName) {
  const auto expected = der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "gw"}});
  for (const char* text : {"dn:C=DE, O=Operator, CN=gw", "C=DE, O=Operator, CN=gw", "dn:C=DE,O=Operator,CN=gw",
                           "dn:countryName=DE, organizationName=Operator, commonName=gw",
                           "dn:2.5.4.6=DE, O=Operator, CN=gw"}) {
    auto id = identity(text);
    EXPECT_EQ(id.type, ike::IdType::kDerAsn1Dn) << text;
    EXPECT_TRUE(same_name(id.data, expected)) << text;
  }
  // The order is the DER order, as written: reversed is another name.
  EXPECT_FALSE(same_name(identity("dn:CN=gw, O=Operator, C=DE").data, expected));
  // Escapes keep ',' '+' '=' in values.
  auto escaped = identity("dn:O=Smith\\, Jones \\+ Co, CN=a\\=b");
  EXPECT_TRUE(same_name(escaped.data, der_name({{"O", "Smith, Jones + Co"}, {"CN", "a=b"}})));
  // The encoding is plain DER: one SEQUENCE over the whole data.
  auto id = identity("dn:CN=gw");
  ASSERT_GE(id.data.size(), 2u);
  EXPECT_EQ(id.data[0], 0x30);
  EXPECT_EQ(id.data[1] + 2u, id.data.size());
}

TEST(IdentityTest, KeyId) {
  auto id = identity("keyid:0a0b0c");
  EXPECT_EQ(id.type, ike::IdType::kKeyId);
  EXPECT_EQ(id.data, (std::vector<uint8_t>{0x0a, 0x0b, 0x0c}));
}

TEST(IdentityTest, Errors) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"", "empty identity"},
      {"   ", "empty identity"},
      {"fqdn:", "nothing after the type prefix"},
      {"fqdn:gw example", "not a host name"},
      {"gw.exa*mple", "not a host name"},
      {"foo:bar", "not a host name"},
      {"email:a b@example.net", "not an RFC 822 address"},
      {"ip:192.0.2.300", "not an IPv4 or IPv6 address"},
      {"ip:gw.example", "not an IPv4 or IPv6 address"},
      {"keyid:xyz", "keyid: expects hex bytes"},
      {"keyid:abc", "keyid: expects hex bytes"},
      {"dn:C=DE, XYZZY=1", "unknown DN attribute type 'XYZZY'"},
      {"dn:C=Germany", "DN attribute C='Germany' rejected"},
      {"dn:CN=a+O=b", "multi-valued RDNs"},
      {"dn:C=DE,,CN=x", "empty RDN"},
      {"dn:C=DE, CN", "RDN 'CN' has no '='"},
      {"dn:C=DE, CN=", "has an empty value"},
      {"dn:=x", "has no attribute type"},
      {"dn:CN=x\\", "'\\' at the end"},
      {"dn:CN=*", "'*' is only allowed in patterns"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_identity(c.text);
    ASSERT_FALSE(parsed.ok()) << "accepted '" << c.text << "'";
    EXPECT_NE(parsed.error().find(c.expected), std::string::npos) << c.text << ": " << parsed.error();
  }
}

// ---------------------------------------------------------------------------
// Patterns and match_score.

TEST(IdentityPatternTest, Any) {
  auto p = pattern("%any");
  EXPECT_TRUE(p.any);
  EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("x")), 1);
  EXPECT_EQ(match_score(p, ike::IdType::kKeyId, bytes("\x01")), 1);
  EXPECT_EQ(match_score(p, ike::IdType::kDerAsn1Dn, bytes("garbage")), 1);
}

TEST(IdentityPatternTest, FqdnSuffix) {
  for (const char* text : {"*.fap.example.net", "fqdn:*.fap.example.net"}) {
    auto p = pattern(text);
    EXPECT_FALSE(p.any);
    EXPECT_FALSE(p.exact.has_value());
    EXPECT_EQ(p.type, ike::IdType::kFqdn);
    EXPECT_EQ(p.suffix, ".fap.example.net");
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("cell1.fap.example.net")), 2);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("a.b.fap.example.net")), 2);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("CELL1.FAP.Example.NET")), 2);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("fap.example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes(".fap.example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("evilfap.example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("cell1.fap.example.net.evil")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("cell1.fap.example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, {}), 0);
  }
}

TEST(IdentityPatternTest, EmailSuffix) {
  for (const char* text : {"*@example.net", "email:*@example.net"}) {
    auto p = pattern(text);
    EXPECT_EQ(p.type, ike::IdType::kRfc822Address);
    EXPECT_EQ(p.suffix, "@example.net");
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("dev@example.net")), 2);
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("DEV@EXAMPLE.NET")), 2);
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("@example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("dev@sub.example.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kRfc822Address, bytes("dev@other.net")), 0);
    EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("dev@example.net")), 0);
  }
}

TEST(IdentityPatternTest, DnWithWildcard) {
  auto p = pattern("dn:C=DE, O=Operator, CN=*");
  EXPECT_EQ(p.type, ike::IdType::kDerAsn1Dn);
  EXPECT_FALSE(p.exact.has_value());
  ASSERT_EQ(p.dn_rdns.size(), 3u);
  EXPECT_EQ(p.dn_rdns[0], (std::pair<std::string, std::string>{"C", "DE"}));
  EXPECT_EQ(p.dn_rdns[2], (std::pair<std::string, std::string>{"CN", "*"}));
  EXPECT_EQ(pattern("organizationName=Operator, commonName=*").dn_rdns[0].first, "O");

  const auto dn = ike::IdType::kDerAsn1Dn;
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "fap-1"}})), 2);
  // Any string type, ASCII case ignored.
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "operator"}, {"CN", "x"}}, V_ASN1_PRINTABLESTRING)), 2);
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "x"}}, MBSTRING_UTF8)), 2);
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Other"}, {"CN", "fap-1"}})), 0);
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Operator"}})), 0);
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"OU", "x"}, {"CN", "f"}})), 0);
  EXPECT_EQ(match_score(p, dn, der_name({{"O", "Operator"}, {"C", "DE"}, {"CN", "fap-1"}})), 0);
  EXPECT_EQ(match_score(p, dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"OU", "fap-1"}})), 0);
  // Not a DN at all, or trailing bytes: no match, no crash.
  EXPECT_EQ(match_score(p, dn, bytes("C=DE, O=Operator, CN=x")), 0);
  auto trailing = der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "x"}});
  trailing.push_back(0);
  EXPECT_EQ(match_score(p, dn, trailing), 0);
  EXPECT_EQ(match_score(p, dn, {}), 0);
  EXPECT_EQ(match_score(p, ike::IdType::kFqdn, bytes("fap-1")), 0);
}

TEST(IdentityPatternTest, ExactIdentities) {
  auto fqdn = pattern("gw.example.net");
  ASSERT_TRUE(fqdn.exact.has_value());
  EXPECT_EQ(match_score(fqdn, ike::IdType::kFqdn, bytes("gw.example.net")), 3);
  EXPECT_EQ(match_score(fqdn, ike::IdType::kFqdn, bytes("GW.Example.Net")), 3);
  EXPECT_EQ(match_score(fqdn, ike::IdType::kFqdn, bytes("gw.example.ne")), 0);
  EXPECT_EQ(match_score(fqdn, ike::IdType::kRfc822Address, bytes("gw.example.net")), 0);

  auto email = pattern("dev@example.net");
  EXPECT_EQ(match_score(email, ike::IdType::kRfc822Address, bytes("Dev@Example.net")), 3);

  auto v4 = pattern("192.0.2.1");
  EXPECT_EQ(match_score(v4, ike::IdType::kIpv4Address, std::vector<uint8_t>{192, 0, 2, 1}), 3);
  EXPECT_EQ(match_score(v4, ike::IdType::kIpv4Address, std::vector<uint8_t>{192, 0, 2, 2}), 0);
  EXPECT_EQ(match_score(v4, ike::IdType::kIpv6Address, identity("::c000:201").data), 0);

  auto v6 = pattern("ip:2001:db8::1");
  EXPECT_EQ(match_score(v6, ike::IdType::kIpv6Address, identity("2001:db8::1").data), 3);

  auto key = pattern("keyid:0a0b0c");
  EXPECT_EQ(match_score(key, ike::IdType::kKeyId, std::vector<uint8_t>{0x0a, 0x0b, 0x0c}), 3);
  EXPECT_EQ(match_score(key, ike::IdType::kKeyId, std::vector<uint8_t>{0x0a, 0x0b}), 0);

  // An exact DN compares RDN by RDN: another string type is the same name.
  auto dn = pattern("dn:C=DE, O=Operator, CN=gw");
  ASSERT_TRUE(dn.exact.has_value());
  EXPECT_EQ(dn.type, ike::IdType::kDerAsn1Dn);
  EXPECT_EQ(match_score(dn, ike::IdType::kDerAsn1Dn, dn.exact->data), 3);
  EXPECT_EQ(match_score(dn, ike::IdType::kDerAsn1Dn,
                        der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "gw"}}, V_ASN1_PRINTABLESTRING)),
            3);
  EXPECT_EQ(match_score(dn, ike::IdType::kDerAsn1Dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "gw2"}})), 0);
}

TEST(IdentityPatternTest, Errors) {
  for (const char* text : {"", "*", "*example.net", "a*.example.net", "*.exa*mple.net", "*.", "*@",
                           "fqdn:*@example.net", "email:*.example.net", "dn:C=DE, CN=fap*",
                           "dn:C=DE, XYZZY=*", "*.bad domain"}) {
    auto parsed = parse_identity_pattern(text);
    EXPECT_FALSE(parsed.ok()) << "accepted '" << text << "'";
  }
  auto parsed = parse_identity_pattern("a*.example.net");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("identity pattern 'a*.example.net'"), std::string::npos) << parsed.error();
}

// ---------------------------------------------------------------------------
// Look-ups: best score wins, ties go to the earlier section.

constexpr const char* kProfiles =
    "[secret any]\n"
    "id = %any\n"
    "psk = 0123456789abcdef0123\n"
    "[secret fleet]\n"
    "id = *.fap.example.net\n"
    "psk = fleet-secret-0123456789\n"
    "[secret one]\n"
    "id = fqdn:0042.fap.example.net\n"
    "psk = one-secret-0123456789\n"
    "[profile fallback]\n"
    "local_id = fqdn:gw.example\n"
    "[profile fleet]\n"
    "remote_id = *.fap.example.net\n"
    "local_id = fqdn:gw.example\n"
    "[profile fleet-again]\n"
    "remote_id = *.fap.example.net\n"
    "local_id = fqdn:gw.example\n"
    "[profile one]\n"
    "remote_id = 0042.fap.example.net\n"
    "local_id = fqdn:gw.example\n"
    "[profile operator-dn]\n"
    "remote_id = dn:C=DE, O=Operator, CN=*\n"
    "local_id = fqdn:gw.example\n"
    "[profile core-only]\n"
    "remote_id = *@example.net\n"
    "local_id = fqdn:gw.example\n"
    "local_addresses = 192.0.2.1\n";

TEST(IdentityLookupTest, FindProfileTakesTheMostSpecific) {
  auto config = parse_controlplane_config(kProfiles, "lookup.conf");
  ASSERT_TRUE(config.ok()) << config.error();
  auto find = [&](ike::IdType type, std::vector<uint8_t> data) -> std::string {
    const auto* p = config->find_profile(type, data);
    return p ? p->name : "none";
  };
  EXPECT_EQ(find(ike::IdType::kFqdn, bytes("0042.fap.example.net")), "one");
  EXPECT_EQ(find(ike::IdType::kFqdn, bytes("0043.fap.example.net")), "fleet");  // tie: earlier
  EXPECT_EQ(find(ike::IdType::kFqdn, bytes("other.example.net")), "fallback");
  EXPECT_EQ(find(ike::IdType::kDerAsn1Dn, der_name({{"C", "DE"}, {"O", "Operator"}, {"CN", "fap"}})),
            "operator-dn");
  EXPECT_EQ(find(ike::IdType::kDerAsn1Dn, der_name({{"C", "FR"}, {"O", "Operator"}, {"CN", "fap"}})), "fallback");
  EXPECT_EQ(find(ike::IdType::kRfc822Address, bytes("a@example.net")), "core-only");
}

TEST(IdentityLookupTest, FindProfileByLocalAddress) {
  auto config = parse_controlplane_config(kProfiles, "lookup.conf");
  ASSERT_TRUE(config.ok()) << config.error();
  const auto mail = bytes("a@example.net");
  const auto* p = config->find_profile(ike::IdType::kRfc822Address, mail, *shared::IpAddress::parse("192.0.2.1"));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "core-only");
  p = config->find_profile(ike::IdType::kRfc822Address, mail, *shared::IpAddress::parse("192.0.2.2"));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "fallback");
}

TEST(IdentityLookupTest, NoProfileForAStranger) {
  auto config = parse_controlplane_config(
      "[secret s]\nid = %any\npsk = 0123456789abcdef0123\n"
      "[profile fleet]\nremote_id = *.fap.example.net\nlocal_id = fqdn:gw.example\n",
      "lookup.conf");
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->find_profile(ike::IdType::kFqdn, bytes("intruder.example.org")), nullptr);
  EXPECT_NE(config->find_profile(ike::IdType::kFqdn, bytes("1.fap.example.net")), nullptr);
}

TEST(IdentityLookupTest, FindSecretTakesTheMostSpecific) {
  auto config = parse_controlplane_config(kProfiles, "lookup.conf");
  ASSERT_TRUE(config.ok()) << config.error();
  auto find = [&](ike::IdType type, std::string_view id) -> std::string {
    const auto* s = config->find_secret(type, bytes(id));
    return s ? s->name : "none";
  };
  EXPECT_EQ(find(ike::IdType::kFqdn, "0042.fap.example.net"), "one");
  EXPECT_EQ(find(ike::IdType::kFqdn, "0043.fap.example.net"), "fleet");
  EXPECT_EQ(find(ike::IdType::kFqdn, "gw.example"), "any");
  const auto* s = config->find_secret(ike::IdType::kFqdn, bytes("0042.fap.example.net"));
  ASSERT_NE(s, nullptr);
  const std::string expected = "one-secret-0123456789";
  EXPECT_EQ(s->psk, crypto::SecureBytes(std::span<const uint8_t>(
                        reinterpret_cast<const uint8_t*>(expected.data()), expected.size())));

  auto none = parse_controlplane_config(
      "[secret s]\nid = *.fap.example.net\npsk = 0123456789abcdef0123\n"
      "[profile p]\nlocal_id = fqdn:gw.example\nlocal_auth = psk\n",
      "lookup.conf");
  // local_auth = psk needs a secret for gw.example: refused.
  EXPECT_FALSE(none.ok());
}

}  // namespace
}  // namespace segw::cp::config
