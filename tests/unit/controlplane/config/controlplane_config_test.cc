// segw-controlplane's configuration file: every key, every error with its
// file:line, PSK secrecy in errors, files (certificates, keys, CAs) made at
// run time, the embedded default and the shipped example.
#include "controlplane/config/controlplane_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/unit/controlplane/config/test_pki.h"

namespace segw::cp::config {
namespace {

using shared::IpAddress;
using shared::IpPrefix;

// A PSK secret and a minimal profile, appended to configurations whose
// point is elsewhere.
constexpr const char* kSecret =
    "[secret s]\n"
    "id = %any\n"
    "psk = 0123456789abcdef0123\n";
constexpr const char* kProfile =
    "[profile p]\n"
    "local_id = fqdn:gw.example\n";

shared::Result<ControlPlaneConfig> parse(const std::string& text) {
  return parse_controlplane_config(text, "test.conf");
}

// The load fails and the error contains every one of `parts`.
void expect_error(const std::string& text, std::initializer_list<std::string> parts) {
  auto config = parse(text);
  ASSERT_FALSE(config.ok()) << "accepted:\n" << text;
  for (const auto& part : parts)
    EXPECT_NE(config.error().find(part), std::string::npos)
        << "error: " << config.error() << "\nexpected to contain: " << part;
}

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
IpPrefix prefix(const char* text) { return *IpPrefix::parse(text); }

std::string source_root() {
  const char* root = std::getenv("SEGW_SOURCE_ROOT");
  return root ? root : ".";
}

// ---------------------------------------------------------------------------
// Defaults and every key.

TEST(ControlPlaneConfigTest, MinimalConfigTakesTheDefaults) {
  auto config = parse(std::string(kSecret) + kProfile);
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->path, "test.conf");
  const DaemonSection& d = config->daemon;
  EXPECT_EQ(d.transport, TransportKind::kDataPlane);
  EXPECT_EQ(d.channel, "segw");
  EXPECT_EQ(d.channel_directory, "");
  EXPECT_TRUE(d.listen.empty());
  EXPECT_EQ(d.ike_port, 500);
  EXPECT_EQ(d.natt_port, 4500);
  EXPECT_EQ(d.cookie_threshold, 1000u);
  EXPECT_EQ(d.half_open_timeout_s, 30u);
  EXPECT_EQ(d.retransmit_timeout_ms, 1000u);
  EXPECT_DOUBLE_EQ(d.retransmit_base, 1.8);
  EXPECT_EQ(d.retransmit_tries, 5u);
  EXPECT_EQ(d.fragment_size, 1280u);
  EXPECT_EQ(d.max_ike_sas, 1048576u);
  EXPECT_EQ(d.log_level, "info");

  ASSERT_EQ(config->profiles.size(), 1u);
  const ProfileSection& p = config->profiles[0];
  EXPECT_EQ(p.name, "p");
  EXPECT_EQ(p.line, 4);
  EXPECT_TRUE(p.remote_id.any);
  EXPECT_EQ(p.local_id.type, ike::IdType::kFqdn);
  EXPECT_EQ(p.local_id.text, "fqdn:gw.example");
  EXPECT_EQ(p.local_auth, AuthKind::kPsk);
  EXPECT_EQ(p.remote_auth, AuthKind::kPsk);
  EXPECT_TRUE(p.certificate_file.empty());
  EXPECT_TRUE(p.private_key_file.empty());
  EXPECT_TRUE(p.ca_files.empty());
  EXPECT_TRUE(p.send_certreq);
  EXPECT_EQ(p.ike_proposals, ProfileSection{}.ike_proposals);
  EXPECT_EQ(p.esp_proposals, ProfileSection{}.esp_proposals);
  EXPECT_TRUE(p.pools.empty());
  EXPECT_TRUE(p.dns.empty());
  EXPECT_EQ(p.local_subnets, (std::vector<IpPrefix>{prefix("0.0.0.0/0"), prefix("::/0")}));
  EXPECT_TRUE(p.nat_info);
  EXPECT_FALSE(p.force_encapsulation);
  EXPECT_TRUE(p.mobike);
  EXPECT_EQ(p.remap, RemapPolicy::kVerify);
  EXPECT_EQ(p.nat_keepalive_s, 20u);
  EXPECT_EQ(p.ike_lifetime_s, 14400u);
  EXPECT_EQ(p.child_lifetime_s, 3600u);
  EXPECT_EQ(p.rekey_margin_s, 540u);
  EXPECT_EQ(p.rekey_jitter_s, 180u);
  EXPECT_EQ(p.child_lifetime_bytes, 0u);
  EXPECT_EQ(p.child_lifetime_packets, 0u);
  EXPECT_FALSE(p.reauthenticate);
  EXPECT_EQ(p.dpd_interval_s, 30u);
  EXPECT_EQ(p.dpd_timeout_s, 150u);
  EXPECT_EQ(p.replay_window, 128u);
  EXPECT_TRUE(p.local_addresses.empty());

  ASSERT_EQ(config->secrets.size(), 1u);
  EXPECT_EQ(config->secrets[0].name, "s");
  EXPECT_EQ(config->secrets[0].line, 1);
  EXPECT_TRUE(config->secrets[0].identity.any);
}

TEST(ControlPlaneConfigTest, EveryDaemonPoolAndSecretKeyIsParsed) {
  auto config = parse(
      "[controlplane]\n"
      "transport = udp\n"
      "channel = segw-2\n"
      "channel_directory = /run/segw\n"
      "listen = 192.0.2.1, 2001:db8::1\n"
      "ike_port = 1500\n"
      "natt_port = 14500\n"
      "cookie_threshold = 0\n"
      "half_open_timeout_s = 10\n"
      "retransmit_timeout_ms = 500\n"
      "retransmit_base = 2.5\n"
      "retransmit_tries = 7\n"
      "fragment_size = 0\n"
      "max_ike_sas = 2000\n"
      "log_level = debug\n"
      "[pool v4]\n"
      "range = 10.1.0.10-10.1.0.200\n"
      "excluded = 10.1.0.53, 10.1.0.54\n"
      "exclude_network_and_broadcast = no\n"
      "lease_prefix_length = 32\n"
      "[pool v6]\n"
      "range = 2001:db8:1::/48\n"
      "lease_prefix_length = 64\n"
      "[secret hex]\n"
      "id = *@example.net\n"
      "psk = 0x000102030405060708090a0b0c0d0e0f10\n"
      "[secret text]\n"
      "id = fqdn:gw.example\n"
      "psk = a text secret of some length\n"
      "[secret quoted]\n"
      "id = 192.0.2.77\n"
      "psk = \"0x is text here, inside quotes\"\n" +
      std::string(kProfile));
  ASSERT_TRUE(config.ok()) << config.error();
  const DaemonSection& d = config->daemon;
  EXPECT_EQ(d.transport, TransportKind::kUdp);
  EXPECT_EQ(d.channel, "segw-2");
  EXPECT_EQ(d.channel_directory, "/run/segw");
  EXPECT_EQ(d.listen, (std::vector<IpAddress>{ip("192.0.2.1"), ip("2001:db8::1")}));
  EXPECT_EQ(d.ike_port, 1500);
  EXPECT_EQ(d.natt_port, 14500);
  EXPECT_EQ(d.cookie_threshold, 0u);
  EXPECT_EQ(d.half_open_timeout_s, 10u);
  EXPECT_EQ(d.retransmit_timeout_ms, 500u);
  EXPECT_DOUBLE_EQ(d.retransmit_base, 2.5);
  EXPECT_EQ(d.retransmit_tries, 7u);
  EXPECT_EQ(d.fragment_size, 0u);
  EXPECT_EQ(d.max_ike_sas, 2000u);
  EXPECT_EQ(d.log_level, "debug");

  ASSERT_EQ(config->pools.size(), 2u);
  const auto* v4 = config->find_pool("v4");
  ASSERT_NE(v4, nullptr);
  EXPECT_EQ(v4->line, 16);
  EXPECT_EQ(v4->pool.name, "v4");
  EXPECT_EQ(v4->pool.range, "10.1.0.10-10.1.0.200");
  EXPECT_EQ(v4->pool.excluded, (std::vector<IpAddress>{ip("10.1.0.53"), ip("10.1.0.54")}));
  EXPECT_FALSE(v4->pool.exclude_network_and_broadcast);
  EXPECT_EQ(v4->pool.lease_prefix_length, 32);
  const auto* v6 = config->find_pool("v6");
  ASSERT_NE(v6, nullptr);
  EXPECT_EQ(v6->pool.range, "2001:db8:1::/48");
  EXPECT_TRUE(v6->pool.exclude_network_and_broadcast);
  EXPECT_EQ(v6->pool.lease_prefix_length, 64);
  EXPECT_EQ(config->find_pool("v5"), nullptr);

  ASSERT_EQ(config->secrets.size(), 3u);
  const auto& hex = config->secrets[0];
  EXPECT_EQ(hex.name, "hex");
  EXPECT_EQ(hex.identity.suffix, "@example.net");
  ASSERT_EQ(hex.psk.size(), 17u);
  for (size_t i = 0; i < hex.psk.size(); ++i) EXPECT_EQ(hex.psk[i], i);
  const auto& text = config->secrets[1];
  EXPECT_EQ(text.psk, crypto::SecureBytes(std::span<const uint8_t>(
                          reinterpret_cast<const uint8_t*>("a text secret of some length"), 28)));
  const auto& quoted = config->secrets[2];
  const std::string quoted_text = "0x is text here, inside quotes";
  EXPECT_EQ(quoted.psk, crypto::SecureBytes(std::span<const uint8_t>(
                            reinterpret_cast<const uint8_t*>(quoted_text.data()), quoted_text.size())));
  ASSERT_TRUE(quoted.identity.exact.has_value());
  EXPECT_EQ(quoted.identity.exact->type, ike::IdType::kIpv4Address);
}

TEST(ControlPlaneConfigTest, EveryProfileKeyIsParsed) {
  test::TempDirectory dir;
  test::make_pki(dir, "DNS:gw.example");
  const std::string text =
      "[pool v4]\n"
      "range = 10.2.0.0/16\n"
      "excluded = 10.2.0.53\n"
      "[pool v6]\n"
      "range = fd00:2::/64\n"
      "excluded = fd00:2::53\n"
      "[profile full]\n"
      "remote_id = *.fap.example.net\n"
      "local_id = fqdn:gw.example\n"
      "local_auth = pubkey\n"
      "remote_auth = pubkey\n"
      "certificate_file = certs/segw.pem\n"
      "private_key_file = " + dir.file("certs/segw.key") + "\n"
      "ca_files = certs/ca.pem, certs/ca2.pem\n"
      "send_certreq = no\n"
      "ike_proposals = aes128-sha256-modp2048\n"
      "esp_proposals = aes256gcm16-esn\n"
      "pools = v4, v6\n"
      "dns = 10.2.0.53, fd00:2::53\n"
      "local_subnets = 10.0.0.0/8, 2001:db8:c::/48\n"
      "nat_info = no\n"
      "force_encapsulation = yes\n"
      "mobike = no\n"
      "remap = follow\n"
      "nat_keepalive_s = 0\n"
      "ike_lifetime_s = 7200\n"
      "child_lifetime_s = 1800\n"
      "rekey_margin_s = 300\n"
      "rekey_jitter_s = 300\n"
      "child_lifetime_bytes = 0x100000000\n"
      "child_lifetime_packets = 1000000\n"
      "reauthenticate = yes\n"
      "dpd_interval_s = 0\n"
      "dpd_timeout_s = 60\n"
      "replay_window = 4096\n"
      "local_addresses = 192.0.2.1, 2001:db8:a::1\n";
  dir.write("segw.conf", text);
  auto config = load_controlplane_config(dir.file("segw.conf"));
  ASSERT_TRUE(config.ok()) << config.error();
  ASSERT_EQ(config->profiles.size(), 1u);
  const ProfileSection& p = config->profiles[0];
  EXPECT_EQ(p.name, "full");
  EXPECT_EQ(p.line, 7);
  EXPECT_FALSE(p.remote_id.any);
  EXPECT_EQ(p.remote_id.type, ike::IdType::kFqdn);
  EXPECT_EQ(p.remote_id.suffix, ".fap.example.net");
  EXPECT_EQ(p.local_id.type, ike::IdType::kFqdn);
  EXPECT_EQ(p.local_id.data, (std::vector<uint8_t>{'g', 'w', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'}));
  EXPECT_EQ(p.local_auth, AuthKind::kPublicKey);
  EXPECT_EQ(p.remote_auth, AuthKind::kPublicKey);
  // Relative paths are resolved against the file's directory.
  EXPECT_EQ(p.certificate_file, dir.file("certs/segw.pem"));
  EXPECT_EQ(p.private_key_file, dir.file("certs/segw.key"));
  EXPECT_EQ(p.ca_files, (std::vector<std::string>{dir.file("certs/ca.pem"), dir.file("certs/ca2.pem")}));
  EXPECT_FALSE(p.send_certreq);
  EXPECT_EQ(p.ike_proposals, "aes128-sha256-modp2048");
  EXPECT_EQ(p.esp_proposals, "aes256gcm16-esn");
  EXPECT_EQ(p.pools, (std::vector<std::string>{"v4", "v6"}));
  EXPECT_EQ(p.dns, (std::vector<IpAddress>{ip("10.2.0.53"), ip("fd00:2::53")}));
  EXPECT_EQ(p.local_subnets, (std::vector<IpPrefix>{prefix("10.0.0.0/8"), prefix("2001:db8:c::/48")}));
  EXPECT_FALSE(p.nat_info);
  EXPECT_TRUE(p.force_encapsulation);
  EXPECT_FALSE(p.mobike);
  EXPECT_EQ(p.remap, RemapPolicy::kFollow);
  EXPECT_EQ(p.nat_keepalive_s, 0u);
  EXPECT_EQ(p.ike_lifetime_s, 7200u);
  EXPECT_EQ(p.child_lifetime_s, 1800u);
  EXPECT_EQ(p.rekey_margin_s, 300u);
  EXPECT_EQ(p.rekey_jitter_s, 300u);
  EXPECT_EQ(p.child_lifetime_bytes, uint64_t{1} << 32);
  EXPECT_EQ(p.child_lifetime_packets, 1000000u);
  EXPECT_TRUE(p.reauthenticate);
  EXPECT_EQ(p.dpd_interval_s, 0u);
  EXPECT_EQ(p.dpd_timeout_s, 60u);
  EXPECT_EQ(p.replay_window, 4096u);
  EXPECT_EQ(p.local_addresses, (std::vector<IpAddress>{ip("192.0.2.1"), ip("2001:db8:a::1")}));
  // No [secret] is needed when neither side uses a PSK.
  EXPECT_TRUE(config->secrets.empty());
}

TEST(ControlPlaneConfigTest, EnumsPrintByName) {
  EXPECT_STREQ(to_string(TransportKind::kDataPlane), "dataplane");
  EXPECT_STREQ(to_string(TransportKind::kUdp), "udp");
  EXPECT_STREQ(to_string(RemapPolicy::kVerify), "verify");
  EXPECT_STREQ(to_string(RemapPolicy::kFollow), "follow");
  EXPECT_STREQ(to_string(RemapPolicy::kOff), "off");
  EXPECT_STREQ(to_string(AuthKind::kPsk), "psk");
  EXPECT_STREQ(to_string(AuthKind::kPublicKey), "pubkey");
}

TEST(ControlPlaneConfigTest, RemapAndAuthAcceptEachName) {
  for (const auto& [name, policy] : {std::pair{"verify", RemapPolicy::kVerify},
                                     std::pair{"follow", RemapPolicy::kFollow},
                                     std::pair{"off", RemapPolicy::kOff}}) {
    auto config = parse(std::string(kSecret) + kProfile + "remap = " + name + "\n");
    ASSERT_TRUE(config.ok()) << config.error();
    EXPECT_EQ(config->profiles[0].remap, policy);
  }
}

// ---------------------------------------------------------------------------
// Structure errors.

TEST(ControlPlaneConfigErrorTest, UnknownSectionType) {
  expect_error("[foo]\n" + std::string(kSecret) + kProfile,
               {"test.conf:1: [foo]: unknown section type 'foo'"});
  expect_error(std::string(kSecret) + kProfile + "[peer x]\n",
               {"test.conf:6: [peer x]: unknown section type 'peer'"});
}

TEST(ControlPlaneConfigErrorTest, UnknownKeys) {
  expect_error("[controlplane]\nbogus = 1\n" + std::string(kSecret) + kProfile,
               {"test.conf:2: [controlplane] bogus: unknown key"});
  expect_error(std::string(kSecret) + kProfile + "ike_lifetime = 100\n",
               {"test.conf:6: [profile p] ike_lifetime: unknown key"});
  expect_error("[pool a]\nrange = 10.0.0.0/24\nranges = 1\n" + std::string(kSecret) + kProfile,
               {"test.conf:3: [pool a] ranges: unknown key"});
  expect_error("[secret t]\nid = %any\npsk = 0123456789abcdef0123\nidentity = x\n" + std::string(kProfile),
               {"test.conf:4: [secret t] identity: unknown key"});
}

TEST(ControlPlaneConfigErrorTest, DuplicateSections) {
  expect_error(std::string(kSecret) + kProfile + kProfile,
               {"test.conf:6: [profile p]: duplicate [profile p] (first at line 4)"});
  expect_error("[pool a]\nrange = 10.0.0.0/24\n[pool a]\nrange = 10.1.0.0/24\n" + std::string(kSecret) +
                   kProfile,
               {"test.conf:3: [pool a]: duplicate [pool a] (first at line 1)"});
  expect_error(std::string(kSecret) + kSecret + kProfile,
               {"test.conf:4: [secret s]: duplicate [secret s] (first at line 1)"});
  expect_error("[controlplane]\n[controlplane]\n" + std::string(kSecret) + kProfile,
               {"test.conf:2: [controlplane]: second [controlplane] section (first at line 1)"});
}

TEST(ControlPlaneConfigErrorTest, SectionNames) {
  expect_error("[controlplane main]\n" + std::string(kSecret) + kProfile,
               {"test.conf:1: [controlplane main]: [controlplane] takes no name"});
  expect_error("[pool]\nrange = 10.0.0.0/24\n" + std::string(kSecret) + kProfile,
               {"test.conf:1: [pool]: needs a name"});
  expect_error(std::string(kSecret) + "[profile]\nlocal_id = gw\n", {"test.conf:4: [profile]: needs a name"});
  expect_error("[pool a,b]\nrange = 10.0.0.0/24\n" + std::string(kSecret) + kProfile,
               {"test.conf:1: [pool a,b]: name 'a,b' must be"});
}

TEST(ControlPlaneConfigErrorTest, NoProfile) {
  expect_error(kSecret, {"test.conf: no [profile] section"});
  expect_error("", {"test.conf: no [profile] section"});
}

TEST(ControlPlaneConfigErrorTest, MissingRequiredKeys) {
  expect_error(std::string(kSecret) + "[profile p]\nremote_id = %any\n",
               {"test.conf:4: [profile p] local_id: required key is missing"});
  expect_error("[pool a]\nexcluded = 10.0.0.1\n" + std::string(kSecret) + kProfile,
               {"test.conf:1: [pool a] range: required key is missing"});
  expect_error("[secret t]\npsk = 0123456789abcdef0123\n" + std::string(kProfile),
               {"test.conf:1: [secret t] id: required key is missing"});
  expect_error("[secret t]\nid = %any\n" + std::string(kProfile),
               {"test.conf:1: [secret t] psk: required key is missing"});
}

TEST(ControlPlaneConfigErrorTest, SyntaxErrorsOfTheSharedParser) {
  expect_error(std::string(kSecret) + kProfile + "mobike\n", {"test.conf:6: expected 'key = value'"});
  expect_error(std::string(kSecret) + kProfile + "mobike = yes\nmobike = no\n",
               {"test.conf:7: key 'mobike' repeated (first at line 6)"});
}

TEST(ControlPlaneConfigErrorTest, CannotOpen) {
  auto config = load_controlplane_config("/nonexistent/segw/controlplane.conf");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().find("/nonexistent/segw/controlplane.conf: cannot open"), std::string::npos)
      << config.error();
}

// ---------------------------------------------------------------------------
// [controlplane] values.

TEST(ControlPlaneConfigErrorTest, DaemonValues) {
  auto daemon = [](const std::string& lines) {
    return "[controlplane]\n" + lines + std::string(kSecret) + kProfile;
  };
  expect_error(daemon("transport = kernel\n"),
               {"test.conf:2: [controlplane] transport: expected dataplane | udp, got 'kernel'"});
  expect_error(daemon("transport = udp\n"),
               {"test.conf:2: [controlplane] transport: transport = udp needs listen"});
  expect_error(daemon("listen = 192.0.2.1, 192.0.2.300\n"),
               {"test.conf:2: [controlplane] listen: expected an IPv4 or IPv6 address, got '192.0.2.300'"});
  expect_error(daemon("listen = 192.0.2.1,\n"), {"test.conf:2: [controlplane] listen: empty item"});
  expect_error(daemon("listen = 192.0.2.1, 192.0.2.1\n"),
               {"test.conf:2: [controlplane] listen: address 192.0.2.1 listed twice"});
  expect_error(daemon("channel = ../etc\n"), {"test.conf:2: [controlplane] channel: expected 1 to 200"});
  expect_error(daemon("channel_directory = run/segw\n"),
               {"test.conf:2: [controlplane] channel_directory: expected an absolute path"});
  expect_error(daemon("ike_port = 0\n"), {"test.conf:2: [controlplane] ike_port: value 0 out of range"});
  expect_error(daemon("natt_port = 70000\n"), {"test.conf:2: [controlplane] natt_port: value 70000 out of range"});
  expect_error(daemon("ike_port = 4500\n"), {"test.conf:1: [controlplane] natt_port: must differ from ike_port"});
  expect_error(daemon("cookie_threshold = -1\n"), {"test.conf:2: [controlplane] cookie_threshold: expected an integer"});
  expect_error(daemon("half_open_timeout_s = 0\n"), {"test.conf:2: [controlplane] half_open_timeout_s: value 0 out of range"});
  expect_error(daemon("retransmit_timeout_ms = 50\n"), {"test.conf:2: [controlplane] retransmit_timeout_ms: value 50 out of range"});
  expect_error(daemon("retransmit_base = 5\n"),
               {"test.conf:2: [controlplane] retransmit_base: value 5 out of range [1.0, 4.0]"});
  expect_error(daemon("retransmit_base = 0.9\n"), {"test.conf:2: [controlplane] retransmit_base: value 0.9 out of range"});
  expect_error(daemon("retransmit_base = fast\n"),
               {"test.conf:2: [controlplane] retransmit_base: expected a number, got 'fast'"});
  expect_error(daemon("retransmit_tries = 0\n"), {"test.conf:2: [controlplane] retransmit_tries: value 0 out of range"});
  expect_error(daemon("fragment_size = 100\n"), {"test.conf:2: [controlplane] fragment_size: value 100 below 576"});
  expect_error(daemon("max_ike_sas = 0\n"), {"test.conf:2: [controlplane] max_ike_sas: value 0 out of range"});
  expect_error(daemon("log_level = verbose\n"),
               {"test.conf:2: [controlplane] log_level: expected error | warning | info | debug, got 'verbose'"});
}

TEST(ControlPlaneConfigTest, UdpTransportWithListenIsAccepted) {
  auto config = parse("[controlplane]\ntransport = udp\nlisten = 127.0.0.1\n" + std::string(kSecret) + kProfile);
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->daemon.transport, TransportKind::kUdp);
  EXPECT_EQ(config->daemon.listen, (std::vector<IpAddress>{ip("127.0.0.1")}));
}

// ---------------------------------------------------------------------------
// Pools.

TEST(ControlPlaneConfigErrorTest, PoolValues) {
  auto pool = [](const std::string& lines) { return "[pool a]\n" + lines + std::string(kSecret) + kProfile; };
  expect_error(pool("range = 10.0.0.0/33\n"), {"test.conf:2: [pool a] range: "});
  expect_error(pool("range = 10.0.0.9-10.0.0.1\n"), {"test.conf:2: [pool a] range: "});
  expect_error(pool("range = 10.0.0.0/24\nlease_prefix_length = 24\n"), {"test.conf:2: [pool a] range: "});
  expect_error(pool("range = 10.0.0.0/24\nlease_prefix_length = 129\n"),
               {"test.conf:3: [pool a] lease_prefix_length: value 129 out of range"});
  expect_error(pool("range = 10.0.0.0/24\nexcluded = 10.0.0.1, nope\n"),
               {"test.conf:3: [pool a] excluded: expected an IPv4 or IPv6 address, got 'nope'"});
  expect_error(pool("range = 10.0.0.0/24\nexclude_network_and_broadcast = maybe\n"),
               {"test.conf:3: [pool a] exclude_network_and_broadcast: expected yes/no"});
}

TEST(ControlPlaneConfigErrorTest, PoolsMustNotOverlap) {
  expect_error("[pool a]\nrange = 10.0.0.0/16\n[pool b]\nrange = 10.0.200.1-10.1.0.5\n" +
                   std::string(kSecret) + kProfile,
               {"test.conf:4: [pool b] range: 10.0.200.1-10.1.0.5 overlaps [pool a] 10.0.0.0/16 (line 1)"});
  expect_error("[pool a]\nrange = 2001:db8::/48\n[pool b]\nrange = 2001:db8:0:5::/64\n" +
                   std::string(kSecret) + kProfile,
               {"test.conf:4: [pool b] range: 2001:db8:0:5::/64 overlaps [pool a]"});
  // Adjacent ranges and different families do not overlap.
  auto config = parse("[pool a]\nrange = 10.0.0.0/24\n[pool b]\nrange = 10.0.1.0/24\n"
                      "[pool c]\nrange = ::ffff:10.0.0.0/120\n" +
                      std::string(kSecret) + kProfile);
  EXPECT_TRUE(config.ok()) << config.error();
}

TEST(ControlPlaneConfigErrorTest, ProfilePools) {
  const std::string pools =
      "[pool a]\nrange = 10.0.0.0/24\n"
      "[pool b]\nrange = 10.0.1.0/24\n"
      "[pool c]\nrange = fd00::/64\nexcluded = fd00::53\n";
  // Profile p begins on line 11, pools = on line 13.
  expect_error(pools + kSecret + kProfile + "pools = a, z\n", {"test.conf:13: [profile p] pools: no [pool z] section"});
  expect_error(pools + kSecret + kProfile + "pools = a, b\n",
               {"test.conf:13: [profile p] pools: pools 'a' and 'b' are both IPv4"});
  expect_error(pools + kSecret + kProfile + "pools = a, a\n",
               {"test.conf:13: [profile p] pools: pool 'a' listed twice"});
  expect_error(pools + kSecret + kProfile + "pools = a,,c\n", {"test.conf:13: [profile p] pools: empty item"});
  expect_error(pools + kSecret + kProfile + "pools = a, c\ndns = 10.0.0.53\n",
               {"test.conf:14: [profile p] dns: 10.0.0.53 lies inside [pool a] and is not excluded"});
  auto config = parse(pools + kSecret + kProfile + "pools = a, c\ndns = fd00::53, 10.9.9.9\n");
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->profiles[0].pools, (std::vector<std::string>{"a", "c"}));
}

// ---------------------------------------------------------------------------
// Secrets: never shown.

TEST(ControlPlaneConfigErrorTest, BadSecretsAreNotShown) {
  struct Case {
    std::string psk_line;
    std::string secret_text;
    std::string expected;
  };
  const Case cases[] = {
      {"psk = shortsecret1", "shortsecret1", "test.conf:3: [secret t] psk: 12 bytes, expected 16 to 1024"},
      {"psk = 0xdeadbeefcafe", "deadbeefcafe", "test.conf:3: [secret t] psk: 6 bytes, expected 16"},
      {"psk = 0xdeadbeefcafebabeZZ00112233445566", "deadbeefcafebabe",
       "test.conf:3: [secret t] psk: starts with 0x but is not valid hex"},
      {"psk = 0xabcdefabcdefabcdefabcdefabcdefabc", "abcdefabcdefabcdef",
       "test.conf:3: [secret t] psk: starts with 0x but is not valid hex"},
      {"psk = \"quoted-short\"", "quoted-short", "test.conf:3: [secret t] psk: 12 bytes"},
      // A PSK line that lost its "psk =": the shared parser would quote it.
      {"verysecretpassphrase-without-key", "verysecretpassphrase",
       "test.conf:3: [secret t]: expected 'key = value' (the line is not shown"},
  };
  for (const auto& c : cases) {
    const std::string text = "[secret t]\nid = %any\n" + c.psk_line + "\n" + kProfile;
    auto config = parse(text);
    ASSERT_FALSE(config.ok()) << c.psk_line;
    EXPECT_NE(config.error().find(c.expected), std::string::npos) << config.error();
    EXPECT_EQ(config.error().find(c.secret_text), std::string::npos)
        << "the error shows the secret: " << config.error();
  }
}

TEST(ControlPlaneConfigErrorTest, SecretIds) {
  expect_error("[secret t]\nid = *foo\npsk = 0123456789abcdef0123\n" + std::string(kProfile),
               {"test.conf:2: [secret t] id: identity pattern '*foo'"});
  expect_error(std::string(kSecret) + "[secret u]\nid = %any\npsk = 0123456789abcdef0123\n" + kProfile,
               {"test.conf:5: [secret u] id: same id as [secret s] (line 1)"});
}

// ---------------------------------------------------------------------------
// Profiles: identities, proposals, numbers.

TEST(ControlPlaneConfigErrorTest, ProfileIdentities) {
  expect_error(std::string(kSecret) + "[profile p]\nlocal_id = fqdn:bad name\n",
               {"test.conf:5: [profile p] local_id: identity 'fqdn:bad name'"});
  expect_error(std::string(kSecret) + "[profile p]\nlocal_id = dn:C=DE, XYZZY=1\n",
               {"test.conf:5: [profile p] local_id: ", "unknown DN attribute type 'XYZZY'"});
  expect_error(std::string(kSecret) + kProfile + "remote_id = a*b.example\n",
               {"test.conf:6: [profile p] remote_id: identity pattern 'a*b.example'"});
}

TEST(ControlPlaneConfigErrorTest, Proposals) {
  expect_error(std::string(kSecret) + kProfile + "ike_proposals = aes256-sha256-bogus\n",
               {"test.conf:6: [profile p] ike_proposals: ", "bogus"});
  expect_error(std::string(kSecret) + kProfile + "esp_proposals = aes128gcm16-prfsha256\n",
               {"test.conf:6: [profile p] esp_proposals: ", "prfsha256"});
  expect_error(std::string(kSecret) + kProfile + "ike_proposals =\n", {"test.conf:6: [profile p] ike_proposals: "});
}

TEST(ControlPlaneConfigErrorTest, ProfileValues) {
  auto profile = [](const std::string& lines) { return std::string(kSecret) + kProfile + lines; };
  expect_error(profile("local_auth = cert\n"),
               {"test.conf:6: [profile p] local_auth: expected psk | pubkey, got 'cert'"});
  expect_error(profile("remote_auth = eap\n"),
               {"test.conf:6: [profile p] remote_auth: expected psk | pubkey, got 'eap'"});
  expect_error(profile("remap = sometimes\n"),
               {"test.conf:6: [profile p] remap: expected verify | follow | off, got 'sometimes'"});
  expect_error(profile("mobike = perhaps\n"), {"test.conf:6: [profile p] mobike: expected yes/no"});
  expect_error(profile("send_certreq = 2\n"), {"test.conf:6: [profile p] send_certreq: expected yes/no"});
  expect_error(profile("nat_info = x\n"), {"test.conf:6: [profile p] nat_info: expected yes/no"});
  expect_error(profile("force_encapsulation = x\n"), {"test.conf:6: [profile p] force_encapsulation: expected yes/no"});
  expect_error(profile("reauthenticate = x\n"), {"test.conf:6: [profile p] reauthenticate: expected yes/no"});
  expect_error(profile("dns = 10.0.0.1, dns.example\n"),
               {"test.conf:6: [profile p] dns: expected an IPv4 or IPv6 address, got 'dns.example'"});
  expect_error(profile("local_addresses = here\n"),
               {"test.conf:6: [profile p] local_addresses: expected an IPv4 or IPv6 address, got 'here'"});
  expect_error(profile("local_subnets = 10.0.0.0/8, 10.1.2.3\n"),
               {"test.conf:6: [profile p] local_subnets: expected an address prefix", "'10.1.2.3'"});
  expect_error(profile("local_subnets = 10.0.0.0/33\n"), {"test.conf:6: [profile p] local_subnets: expected an address prefix"});
  expect_error(profile("local_subnets = 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16, 10.4.0.0/16, 10.5.0.0/16, "
                       "10.6.0.0/16, 10.7.0.0/16, 10.8.0.0/16, 10.9.0.0/16\n"),
               {"test.conf:6: [profile p] local_subnets: 9 prefixes, at most 8"});
  expect_error(profile("nat_keepalive_s = 3601\n"), {"test.conf:6: [profile p] nat_keepalive_s: value 3601 out of range"});
  expect_error(profile("ike_lifetime_s = 59\n"), {"test.conf:6: [profile p] ike_lifetime_s: value 59 out of range"});
  expect_error(profile("child_lifetime_s = 2592001\n"),
               {"test.conf:6: [profile p] child_lifetime_s: value 2592001 out of range"});
  expect_error(profile("rekey_margin_s = 3600\n"),
               {"test.conf:6: [profile p] rekey_margin_s: 3600 must be less than ike_lifetime_s (14400) and "
                "child_lifetime_s (3600)"});
  expect_error(profile("ike_lifetime_s = 500\n"), {"test.conf:4: [profile p] rekey_margin_s: 540 must be less"});
  expect_error(profile("rekey_jitter_s = 541\n"),
               {"test.conf:6: [profile p] rekey_jitter_s: 541 exceeds rekey_margin_s (540)"});
  expect_error(profile("rekey_margin_s = 100\n"), {"test.conf:4: [profile p] rekey_jitter_s: 180 exceeds"});
  expect_error(profile("child_lifetime_bytes = lots\n"),
               {"test.conf:6: [profile p] child_lifetime_bytes: expected an integer"});
  expect_error(profile("child_lifetime_packets = -5\n"),
               {"test.conf:6: [profile p] child_lifetime_packets: expected an integer"});
  expect_error(profile("dpd_interval_s = 86401\n"), {"test.conf:6: [profile p] dpd_interval_s: value 86401 out of range"});
  expect_error(profile("dpd_timeout_s = 0\n"), {"test.conf:6: [profile p] dpd_timeout_s: value 0 out of range"});
  expect_error(profile("replay_window = 63\n"), {"test.conf:6: [profile p] replay_window: value 63 out of range"});
  expect_error(profile("replay_window = 32769\n"), {"test.conf:6: [profile p] replay_window: value 32769 out of range"});
}

// ---------------------------------------------------------------------------
// Authentication: secrets and files.

TEST(ControlPlaneConfigErrorTest, PskNeedsSecrets) {
  // Local PSK: a secret for our own identity (or %any).
  expect_error("[secret t]\nid = fqdn:other.example\npsk = 0123456789abcdef0123\n"
               "[profile p]\nlocal_id = fqdn:gw.example\nlocal_auth = psk\n",
               {"test.conf:6: [profile p] local_auth: local_auth = psk needs a [secret] whose id matches "
                "local_id 'fqdn:gw.example'"});
  auto config = parse("[secret t]\nid = *.example\npsk = 0123456789abcdef0123\n" + std::string(kProfile));
  EXPECT_TRUE(config.ok()) << config.error();
  // No secret at all.
  expect_error(kProfile, {"test.conf:", "[profile p]", "needs a [secret]"});
}

class ControlPlaneConfigFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { test::make_pki(dir_, "DNS:gw.example,IP:192.0.2.1"); }

  // A pubkey profile; `lines` replace or add keys (later lines win only
  // if the key is new: each key is written once by the caller).
  std::string profile(const std::string& lines) const {
    return "[profile p]\n"
           "local_id = fqdn:gw.example\n" +
           lines;
  }
  shared::Result<ControlPlaneConfig> load(const std::string& text) const {
    dir_.write("segw.conf", text);
    return load_controlplane_config(dir_.file("segw.conf"));
  }
  void expect_load_error(const std::string& text, std::initializer_list<std::string> parts) const {
    auto config = load(text);
    ASSERT_FALSE(config.ok()) << "accepted:\n" << text;
    for (const auto& part : parts)
      EXPECT_NE(config.error().find(part), std::string::npos)
          << "error: " << config.error() << "\nexpected to contain: " << part;
  }
  std::string at(int line) const { return dir_.file("segw.conf") + ":" + std::to_string(line) + ": "; }

  test::TempDirectory dir_;
};

TEST_F(ControlPlaneConfigFilesTest, PubkeyBothWays) {
  auto config = load(profile(
      "local_auth = pubkey\nremote_auth = pubkey\ncertificate_file = certs/segw.pem\n"
      "private_key_file = certs/segw.key\nca_files = certs/ca.pem\n"));
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->profiles[0].certificate_file, dir_.file("certs/segw.pem"));
}

TEST_F(ControlPlaneConfigFilesTest, LocalIdMayBeAnyIdentityOfTheCertificate) {
  for (const char* id : {"ip:192.0.2.1", "dn:C=DE, O=segw test, CN=segw"}) {
    auto config = load("[profile p]\nlocal_id = " + std::string(id) +
                       "\nlocal_auth = pubkey\nremote_auth = pubkey\ncertificate_file = certs/segw.pem\n"
                       "private_key_file = certs/segw.key\nca_files = certs/ca.pem\n");
    EXPECT_TRUE(config.ok()) << id << ": " << config.error();
  }
  expect_load_error("[profile p]\nlocal_id = fqdn:other.example\nlocal_auth = pubkey\nremote_auth = pubkey\n"
                    "certificate_file = certs/segw.pem\nprivate_key_file = certs/segw.key\nca_files = certs/ca.pem\n",
                    {at(2) + "[profile p] local_id: 'fqdn:other.example' is not in certificate"});
  expect_load_error("[profile p]\nlocal_id = keyid:0102\nlocal_auth = pubkey\nremote_auth = pubkey\n"
                    "certificate_file = certs/segw.pem\nprivate_key_file = certs/segw.key\nca_files = certs/ca.pem\n",
                    {at(2) + "[profile p] local_id: a keyid cannot be vouched for"});
}

TEST_F(ControlPlaneConfigFilesTest, LocalPubkeyNeedsLoadableFiles) {
  const std::string remote = "remote_auth = pubkey\nca_files = certs/ca.pem\n";
  expect_load_error(profile("local_auth = pubkey\n" + remote),
                    {at(3) + "[profile p] local_auth: local_auth = pubkey needs certificate_file"});
  expect_load_error(profile("local_auth = pubkey\ncertificate_file = certs/segw.pem\n" + remote),
                    {at(3) + "[profile p] local_auth: local_auth = pubkey needs private_key_file"});
  expect_load_error(
      profile("local_auth = pubkey\ncertificate_file = certs/missing.pem\nprivate_key_file = certs/segw.key\n" +
              remote),
      {at(4) + "[profile p] certificate_file: cannot load certificate '" + dir_.file("certs/missing.pem") + "'"});
  expect_load_error(
      profile("local_auth = pubkey\ncertificate_file = certs/garbage.pem\nprivate_key_file = certs/segw.key\n" +
              remote),
      {at(4) + "[profile p] certificate_file: cannot load certificate '" + dir_.file("certs/garbage.pem") + "'"});
  expect_load_error(
      profile("local_auth = pubkey\ncertificate_file = certs/segw.pem\nprivate_key_file = certs/nokey.pem\n" +
              remote),
      {at(5) + "[profile p] private_key_file: cannot load private key '" + dir_.file("certs/nokey.pem") + "'"});
  expect_load_error(
      profile("local_auth = pubkey\ncertificate_file = certs/segw.pem\nprivate_key_file = certs/other.key\n" +
              remote),
      {at(5) + "[profile p] private_key_file: the key in '" + dir_.file("certs/other.key") +
       "' does not belong to the certificate"});
}

TEST_F(ControlPlaneConfigFilesTest, RemotePubkeyNeedsLoadableCas) {
  const std::string local = "[secret s]\nid = %any\npsk = 0123456789abcdef0123\n";
  expect_load_error(local + profile("remote_auth = pubkey\n"),
                    {at(6) + "[profile p] remote_auth: remote_auth = pubkey needs ca_files"});
  expect_load_error(local + profile("remote_auth = pubkey\nca_files = certs/ca.pem, certs/absent.pem\n"),
                    {at(7) + "[profile p] ca_files: cannot load CA file '" + dir_.file("certs/absent.pem") + "'"});
  expect_load_error(local + profile("remote_auth = pubkey\nca_files = certs/garbage.pem\n"),
                    {at(7) + "[profile p] ca_files: cannot load CA file '" + dir_.file("certs/garbage.pem") + "'"});
  auto config = load(local + profile("remote_auth = pubkey\nca_files = certs/ca.pem, " + dir_.file("certs/ca2.pem") + "\n"));
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->profiles[0].ca_files,
            (std::vector<std::string>{dir_.file("certs/ca.pem"), dir_.file("certs/ca2.pem")}));
}

TEST_F(ControlPlaneConfigFilesTest, FilesWithPskAreMistakes) {
  const std::string secret = "[secret s]\nid = %any\npsk = 0123456789abcdef0123\n";
  expect_load_error(secret + profile("certificate_file = certs/segw.pem\n"),
                    {at(6) + "[profile p] certificate_file: set, but local_auth is psk"});
  expect_load_error(secret + profile("private_key_file = certs/segw.key\n"),
                    {at(6) + "[profile p] private_key_file: set, but local_auth is psk"});
  expect_load_error(secret + profile("ca_files = certs/ca.pem\n"),
                    {at(6) + "[profile p] ca_files: set, but remote_auth is psk"});
}

TEST_F(ControlPlaneConfigFilesTest, RemotePskNeedsSomeSecret) {
  expect_load_error(profile("local_auth = pubkey\ncertificate_file = certs/segw.pem\n"
                            "private_key_file = certs/segw.key\nremote_auth = psk\n"),
                    {at(6) + "[profile p] remote_auth: remote_auth = psk needs at least one [secret]"});
}

// ---------------------------------------------------------------------------
// The shipped files.

TEST(ControlPlaneConfigShippedTest, EmbeddedDefaultParses) {
  auto config = parse_controlplane_config(embedded_default_config(), "<embedded>");
  ASSERT_TRUE(config.ok()) << config.error();
  EXPECT_EQ(config->daemon.transport, TransportKind::kDataPlane);
  EXPECT_EQ(config->daemon.channel, "segw");
  ASSERT_EQ(config->profiles.size(), 1u);
  const auto& p = config->profiles[0];
  EXPECT_TRUE(p.remote_id.any);
  EXPECT_EQ(p.local_id.text, "fqdn:segw.example");
  EXPECT_EQ(p.local_auth, AuthKind::kPsk);
  EXPECT_EQ(p.remote_auth, AuthKind::kPsk);
  EXPECT_EQ(p.dns, (std::vector<IpAddress>{ip("10.64.0.1")}));
  ASSERT_EQ(p.pools.size(), 2u);
  const auto* v4 = config->find_pool(p.pools[0]);
  const auto* v6 = config->find_pool(p.pools[1]);
  ASSERT_TRUE(v4 && v6);
  EXPECT_EQ(v4->pool.range, "10.64.0.0/16");
  EXPECT_EQ(v4->pool.excluded, (std::vector<IpAddress>{ip("10.64.0.1")}));
  EXPECT_EQ(v6->pool.range, "fd00:64::/64");
  ASSERT_EQ(config->secrets.size(), 1u);
  EXPECT_TRUE(config->secrets[0].identity.any);
  // Any peer finds the profile and the secret.
  const std::vector<uint8_t> peer = {'f', 'a', 'p'};
  EXPECT_EQ(config->find_profile(ike::IdType::kFqdn, peer), &p);
  EXPECT_EQ(config->find_secret(ike::IdType::kFqdn, peer), &config->secrets[0]);
}

TEST(ControlPlaneConfigShippedTest, EmbeddedDefaultIsTheDefaultFile) {
  const std::string path = source_root() + "/configs/controlplane-default.conf";
  const std::string file = test::read_text(path);
  ASSERT_FALSE(file.empty()) << "cannot read " << path;
  EXPECT_EQ(file, std::string(embedded_default_config()));
  auto config = load_controlplane_config(path);
  EXPECT_TRUE(config.ok()) << config.error();
}

TEST(ControlPlaneConfigShippedTest, ExampleParses) {
  // The example names certs/ relative to itself: a copy next to a
  // throw-away PKI with those names.
  test::TempDirectory dir;
  test::make_pki(dir, "DNS:segw.operator.example");
  std::filesystem::copy_file(dir.file("certs/ca.pem"), dir.file("certs/femto-ca.pem"));
  std::filesystem::copy_file(dir.file("certs/ca2.pem"), dir.file("certs/femto-ca-2023.pem"));
  const std::string example = test::read_text(source_root() + "/configs/controlplane-example.conf");
  ASSERT_FALSE(example.empty());
  dir.write("controlplane.conf", example);
  auto config = load_controlplane_config(dir.file("controlplane.conf"));
  ASSERT_TRUE(config.ok()) << config.error();

  EXPECT_EQ(config->pools.size(), 3u);
  EXPECT_EQ(config->secrets.size(), 2u);
  ASSERT_EQ(config->profiles.size(), 3u);
  EXPECT_EQ(config->daemon.cookie_threshold, 5000u);
  // Profile selection: the lab FAP gets its override, the fleet its
  // profile, the partner's cells theirs, strangers nothing.
  auto find = [&](ike::IdType type, std::string_view id) -> std::string {
    std::vector<uint8_t> data(id.begin(), id.end());
    const auto* p = config->find_profile(type, data);
    return p ? p->name : "none";
  };
  EXPECT_EQ(find(ike::IdType::kFqdn, "0042.fap.operator.example"), "femto-lab-0042");
  EXPECT_EQ(find(ike::IdType::kFqdn, "0043.FAP.operator.example"), "femto");
  EXPECT_EQ(find(ike::IdType::kRfc822Address, "cell7@cells.partner.example"), "partner");
  EXPECT_EQ(find(ike::IdType::kFqdn, "cells.partner.example"), "none");
  // Secrets: the partner's for its cells, ours for our own id.
  const std::vector<uint8_t> cell = {'c', '@', 'c', 'e', 'l', 'l', 's', '.', 'p', 'a', 'r', 't', 'n', 'e', 'r',
                                     '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'};
  const auto* secret = config->find_secret(ike::IdType::kRfc822Address, cell);
  ASSERT_NE(secret, nullptr);
  EXPECT_EQ(secret->name, "partner");
  EXPECT_EQ(secret->psk.size(), 32u);
  const auto& own = config->profiles[2].local_id;
  secret = config->find_secret(own.type, own.data);
  ASSERT_NE(secret, nullptr);
  EXPECT_EQ(secret->name, "gateway");
}

}  // namespace
}  // namespace segw::cp::config
