// segw-controlplane's configuration file: what the IKEv2 daemon listens
// on, how it reaches the data plane, its address pools, its PSK secrets and
// its profiles (one profile serves many peers: thousands of femtocells that
// share one CA and one policy; a profile with an exact remote identity is a
// per-peer override). Same INI-like format as the data plane's
// (shared/config_file.h); every error says file:line, section and key.
//
// Loading validates everything that can be checked without the network:
// proposal strings parse (policy::ProposalPolicy), pools are well-formed
// and do not overlap, files named exist and load (certificates, keys, CAs),
// identities parse, profiles name pools that exist, numbers are in range.
// Secrets (PSKs) are kept in SecureBytes and never appear in errors.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "controlplane/crypto/secure_bytes.h"
#include "controlplane/ike/codec/ike_constants.h"
#include "controlplane/policy/pool.h"
#include "shared/ip_address.h"
#include "shared/result.h"

namespace segw::cp::config {

// How IKE datagrams come and go.
enum class TransportKind : uint8_t {
  kDataPlane,  // punt/inject rings of segw-dataplane (production)
  kUdp,        // kernel UDP sockets on 500/4500 (no DPDK: development, tests)
};

// What the gateway does when an authenticated packet of an established
// tunnel arrives from a new outer address/port (RFC 7296 2.23; NAT-remap
// issue). Parsed and validated now; acted on by the remap logic.
enum class RemapPolicy : uint8_t { kVerify, kFollow, kOff };

const char* to_string(TransportKind kind);
const char* to_string(RemapPolicy policy);

// An IKE identity (RFC 7296 3.5) as written in the file:
//   "fqdn:gw.example.net", "email:dev@example.net", "ip:192.0.2.1",
//   "ip:2001:db8::1", "dn:C=DE, O=Operator, CN=gw", "keyid:0a0b0c" (hex),
//   or without prefix: an IP address -> ip, contains '=' -> dn,
//   contains '@' -> email, otherwise fqdn (strongSwan's rules).
struct Identity {
  ike::IdType type = ike::IdType::kFqdn;
  std::vector<uint8_t> data;  // Identification Data as on the wire (DN: DER)
  std::string text;           // as written, for logs and the API
  friend bool operator==(const Identity&, const Identity&) = default;
};
shared::Result<Identity> parse_identity(std::string_view text);

// Which peers a profile serves, matched against the peer's IDi:
//   "%any"                     every identity
//   "*@example.net"            RFC822 names ending in "@example.net"
//   "*.fap.example.net"        FQDNs ending in ".fap.example.net"
//   "dn:C=DE, O=Operator, CN=*" DNs whose RDNs match in order, "*" a whole RDN value
//   anything else              exactly that identity (parse_identity)
struct IdentityPattern {
  std::string text;
  bool any = false;
  std::optional<Identity> exact;   // set for an exact match
  ike::IdType type = ike::IdType::kFqdn;
  std::string suffix;              // "*@..." and "*.": the part after '*'
  // DN patterns: the RDNs "TYPE=value" in order, value "*" matching any.
  std::vector<std::pair<std::string, std::string>> dn_rdns;
};
shared::Result<IdentityPattern> parse_identity_pattern(std::string_view text);
// Does `peer` (type and Identification Data from IDi) match? A more specific
// pattern scores higher: exact 3, DN or suffix 2, %any 1; 0 = no match.
int match_score(const IdentityPattern& pattern, ike::IdType type,
                std::span<const uint8_t> data);

enum class AuthKind : uint8_t { kPsk, kPublicKey };
const char* to_string(AuthKind kind);

// [pool NAME]: an address pool for INTERNAL_IP4_ADDRESS / INTERNAL_IP6_ADDRESS.
struct PoolSection {
  policy::PoolConfig pool;  // name, range, excluded, lease_prefix_length
  int line = 0;
};

// [secret NAME]: a PSK for one identity or a pattern of them ("%any" = the
// default). The most specific matching secret wins.
struct SecretSection {
  std::string name;
  IdentityPattern identity;
  crypto::SecureBytes psk;  // "0x..." hex or the literal text; >= 16 bytes
  int line = 0;
};

// [profile NAME]: the policy for a class of peers.
struct ProfileSection {
  std::string name;
  int line = 0;
  IdentityPattern remote_id;            // remote_id, default %any
  Identity local_id;                    // local_id (required)
  AuthKind local_auth = AuthKind::kPsk; // local_auth = psk | pubkey
  AuthKind remote_auth = AuthKind::kPsk;
  // pubkey: our certificate (PEM) and its private key; the peer is checked
  // against ca_files (one or more PEM files, comma-separated). A relative
  // path is resolved against the configuration file's directory; these
  // members hold the resolved paths.
  std::string certificate_file;
  std::string private_key_file;
  std::vector<std::string> ca_files;
  bool send_certreq = true;
  // strongSwan-style proposal lists (policy::parse_proposal_list); checked.
  std::string ike_proposals = "aes256gcm16-prfsha256-ecp256, aes128-sha256-ecp256-modp2048";
  std::string esp_proposals = "aes256gcm16-esn-noesn, aes128gcm16-esn-noesn, aes128-sha256-esn-noesn";
  // Configuration payloads.
  std::vector<std::string> pools;              // names of [pool] sections (v4 and/or v6)
  std::vector<shared::IpAddress> dns;          // INTERNAL_IP4_DNS / INTERNAL_IP6_DNS
  std::vector<shared::IpPrefix> local_subnets; // TSr and INTERNAL_IP4/6_SUBNET; default 0.0.0.0/0, ::/0 (filled in); at most 8
  bool nat_info = true;                        // answer EXTERNAL_SOURCE_IP4_NAT_INFO (attr 23)
  // NAT-T and mobility.
  bool force_encapsulation = false;  // fake a NAT (RFC 7296 2.23 "forced UDP encapsulation")
  bool mobike = true;                // answer MOBIKE_SUPPORTED
  RemapPolicy remap = RemapPolicy::kVerify;
  // MOBIKE (RFC 4555): peer addresses an UPDATE_SA_ADDRESSES may move a
  // tunnel to (others: UNACCEPTABLE_ADDRESSES); default any. And the
  // gateway's own other addresses, announced as ADDITIONAL_IP4/6_ADDRESS
  // (none: NO_ADDITIONAL_ADDRESSES).
  std::vector<shared::IpPrefix> mobike_allowed_networks;
  std::vector<shared::IpAddress> additional_addresses;
  uint32_t nat_keepalive_s = 20;     // 0..3600; keepalives are the peer's job, this is our side
  // Lifetimes (seconds) and rekeying.
  uint32_t ike_lifetime_s = 14400;   // IKE SA rekeyed before this (60..2592000)
  uint32_t child_lifetime_s = 3600;  // child SA rekeyed before this (60..2592000)
  uint32_t rekey_margin_s = 540;     // rekey this long before the lifetime (< lifetime)
  uint32_t rekey_jitter_s = 180;     // minus a random 0..jitter (<= margin)
  uint64_t child_lifetime_bytes = 0;    // hard byte limit of child SAs; 0 = none
  uint64_t child_lifetime_packets = 0;  // hard packet limit; 0 = none
  bool reauthenticate = false;       // IKE SA expiry: rekey (no) or re-authenticate (yes; we delete)
  // Liveness (dead peer detection).
  uint32_t dpd_interval_s = 30;      // INFORMATIONAL after this long without inbound traffic; 0 = off
  uint32_t dpd_timeout_s = 150;      // peer declared dead when unanswered this long
  uint32_t replay_window = 128;      // ESP replay window (64..32768)
  // Local addresses this profile applies to (empty: any).
  std::vector<shared::IpAddress> local_addresses;
  // Site-to-site: segw-controlplane initiates this profile's IKE SA to
  // `connect` (port `connect_port`) from `connect_from` at start, and again
  // `reconnect_delay_s` after it goes down. remote_id must then be exact.
  std::optional<shared::IpAddress> connect;
  uint16_t connect_port = 500;
  std::optional<shared::IpAddress> connect_from;
  std::vector<shared::IpPrefix> remote_subnets;  // TSr we ask for; default any
  bool request_address = false;                  // CP request for an inner address
  uint32_t reconnect_delay_s = 5;
};

// The REST API's TCP port when api_port is not set (segwctl's default too).
inline constexpr uint16_t kDefaultApiPort = 8443;

// [controlplane]
struct DaemonSection {
  TransportKind transport = TransportKind::kDataPlane;
  // transport = dataplane
  std::string channel = "segw";     // region name ([channel] name of segw-dataplane)
  std::string channel_directory;    // empty: /dev/hugepages then /dev/shm
  // transport = udp: addresses to bind on (ports 500 and 4500 unless set)
  std::vector<shared::IpAddress> listen;
  uint16_t ike_port = 500;
  uint16_t natt_port = 4500;
  // IKE engine.
  uint32_t cookie_threshold = 1000;      // half-open IKE SAs before COOKIEs are demanded; 0 = always
  uint32_t half_open_timeout_s = 30;     // a half-open IKE SA is dropped after this
  uint32_t retransmit_timeout_ms = 1000; // first retransmission of a request
  double retransmit_base = 1.8;          // back-off factor (1.0..4.0)
  uint32_t retransmit_tries = 5;         // then the exchange (and the IKE SA) fails
  uint32_t fragment_size = 1280;         // RFC 7383 fragments at most this (incl. IP/UDP); 0 = never fragment
  uint32_t max_ike_sas = 1048576;        // refuse new IKE SAs beyond this (TEMPORARY_FAILURE / drop)
  // log2 of segw-dataplane's sa_capacity: inbound SPIs carry the data
  // plane's table index in this many low bits, so ours never collide there.
  uint32_t dataplane_sa_index_bits = 18;
  std::string log_level = "info";        // error | warning | info | debug
  // REST API (controlplane/api/openapi.yaml; configs/controlplane.md).
  bool api = true;                       // api = on | off
  shared::IpAddress api_listen = shared::IpAddress::from_ipv4(0x7f000001);  // 127.0.0.1
  uint16_t api_port = kDefaultApiPort;
  // The bearer token file (resolved path) and its content (surrounding
  // whitespace removed). A secret: never logged, never in an error. Empty
  // (no api_token_file): no authentication, accepted only when api_listen
  // is a loopback address.
  std::string api_token_file;
  std::string api_token;
  // HTTPS: both or neither (resolved paths); both load at configuration time.
  std::string api_tls_certificate;
  std::string api_tls_private_key;
  // mTLS: clients must present a certificate issued by one of these CAs
  // (resolved path; empty: no client certificate asked for).
  std::string api_tls_client_ca;
  friend bool operator==(const DaemonSection&, const DaemonSection&) = default;
};

struct ControlPlaneConfig {
  std::string path;
  DaemonSection daemon;
  std::vector<PoolSection> pools;
  std::vector<SecretSection> secrets;
  std::vector<ProfileSection> profiles;  // at least one

  const PoolSection* find_pool(std::string_view name) const;
  // The profile for a peer identity: the best match_score; ties go to the
  // earlier profile. nullptr: no profile serves it.
  const ProfileSection* find_profile(ike::IdType type, std::span<const uint8_t> data) const;
  // The same, among the profiles that apply to `local_address` (the
  // address the peer's IKE_SA_INIT came to): a profile with an empty
  // local_addresses applies to every address.
  const ProfileSection* find_profile(ike::IdType type, std::span<const uint8_t> data,
                                     const shared::IpAddress& local_address) const;
  // The PSK for a peer identity: the best-matching [secret]; ties go to the
  // earlier secret. nullptr: none.
  const SecretSection* find_secret(ike::IdType type, std::span<const uint8_t> data) const;
};

// Errors: "FILE:LINE: [section NAME] key: what is wrong" (or FILE: for
// whole-file problems such as "no [profile] section").
shared::Result<ControlPlaneConfig> parse_controlplane_config(std::string_view text,
                                                             const std::string& path);
shared::Result<ControlPlaneConfig> load_controlplane_config(const std::string& path);

// The configuration the daemon runs when started without -c: UDP transport
// on 127.0.0.1 is NOT it; it is the demo's: transport dataplane, channel
// "segw", one PSK profile for %any with pools 10.64.0.0/16 and
// fd00:64::/64 (see configs/controlplane-default.conf).
std::string_view embedded_default_config();

}  // namespace segw::cp::config
