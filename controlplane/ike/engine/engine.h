// The IKEv2 engine (RFC 7296): IKE SAs and their child SAs, the exchanges
// that make, rekey and delete them, as responder and as initiator. It owns
// no socket and no thread: datagrams come in through handle_datagram(),
// replies and requests leave through an IkeTransport, child SAs go to the
// data plane through an SaInstaller, and poll() drives completions and
// timers (retransmissions, half-open expiry, liveness, rekeying). Encrypted
// messages larger than EngineOptions::fragment_size go out as RFC 7383
// fragments when both ends announced support, and fragments coming in are
// verified one by one and reassembled.
//
// Threads: one. Every member function must be called from the thread that
// owns the engine (segw-controlplane's engine thread; the tests' own).
//
// Habits taken from strongSwan and OpenBSD iked: message legality is data
// (policy/message_rules.h), every exchange ends in exactly one of "answered",
// "answered with an error notify" or "dropped and counted", and nothing a
// peer sends before it is authenticated can allocate more than one bounded
// half-open IKE SA (COOKIEs beyond cookie_threshold).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/config/controlplane_config.h"
#include "controlplane/dp_link/ike_transport.h"
#include "controlplane/dp_link/sa_installer.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::cp::ike {

using shared::channel::OuterEndpoint;

struct EngineOptions {
  uint32_t cookie_threshold = 1000;
  uint32_t half_open_timeout_s = 30;
  uint32_t retransmit_timeout_ms = 1000;
  double retransmit_base = 1.8;
  uint32_t retransmit_tries = 5;
  uint32_t max_ike_sas = 1048576;
  uint16_t natt_port = 4500;
  // Inbound SPIs carry the data plane's SA table index in their low bits
  // (dataplane/sad/sa_table.h): log2 of segw-dataplane's sa_capacity.
  unsigned inbound_spi_index_bits = 18;
  // RFC 7383: an encrypted message larger than this (IP and UDP headers
  // and the non-ESP marker included, RFC 7383 2.5.1) leaves as SKF
  // fragments when both ends announced IKEV2_FRAGMENTATION_SUPPORTED; 0:
  // never fragment, and do not announce it.
  uint32_t fragment_size = 1280;

  static EngineOptions from(const config::DaemonSection& daemon);
};

// CLOCK_MONOTONIC nanoseconds; tests substitute their own.
using Clock = std::function<uint64_t()>;

enum class IkeSaState : uint8_t {
  kInitSent,      // initiator: IKE_SA_INIT request out
  kHalfOpen,      // responder: IKE_SA_INIT answered, IKE_AUTH awaited
  kAuthSent,      // initiator: IKE_AUTH request out
  kInstalling,    // authenticated; child SAs being installed in the data plane
  kEstablished,
  kDeleting,      // our DELETE is out
  kClosed,        // gone (kept only in events)
};
const char* to_string(IkeSaState state);

struct ChildSaInfo {
  uint32_t inbound_spi = 0;
  uint32_t outbound_spi = 0;
  shared::EspAlgorithm algorithm = shared::EspAlgorithm::kAesGcm128;
  bool esn = false;
  std::vector<shared::TrafficSelector> local_ts;   // the gateway's side (TSr as responder)
  std::vector<shared::TrafficSelector> remote_ts;  // the peer's side
  uint32_t tunnel_id = 0;
  bool installed = false;
  uint64_t established_ns = 0;
  uint64_t rekey_at_ns = 0;   // 0: not scheduled by us
};

// An address pool as the engine has it (GET /v1/pools).
struct PoolInfo {
  std::string name;
  std::string range;                 // as configured
  shared::IpFamily family = shared::IpFamily::kIpv4;
  uint8_t lease_prefix_length = 32;  // of one lease
  policy::PoolStats stats;
};

// One lease of a pool and the IKE SA holding it (GET /v1/pools/{name}).
struct LeaseInfo {
  shared::IpAddress address;
  uint8_t prefix_length = 32;
  uint64_t ike_sa = 0;   // 0: no live IKE SA holds it (cannot happen; shown rather than hidden)
  std::string peer_id;
};

// One page of a pool's leases, in address order (GET /v1/pools/{name}).
struct LeaseQuery {
  std::optional<shared::IpAddress> after;  // leases above this address (the previous page's last)
  size_t limit = SIZE_MAX;
};
struct LeasePage {
  std::vector<LeaseInfo> leases;                 // address order
  std::optional<shared::IpAddress> next_after;   // more after this page: pass it as `after`
};

// What a configuration reload changed (Engine::reload).
struct ReloadReport {
  size_t profiles = 0;         // in the new configuration
  size_t secrets = 0;
  size_t pools = 0;
  size_t pools_rebuilt = 0;    // changed pools (not new ones), their leases carried over
  size_t ike_sas = 0;          // IKE SAs kept (all of them)
  size_t ike_sas_on_retired_profiles = 0;  // their profile is gone: they keep its old policy
};
// "2 profile(s), 3 pool(s) (1 rebuilt), 1 secret(s); 40 IKE SA(s) kept":
// what the daemon logs for a reload, however it was asked for.
std::string to_string(const ReloadReport& report);

struct IkeSaInfo {
  uint64_t id = 0;            // engine-wide, never reused
  uint64_t spi_i = 0;
  uint64_t spi_r = 0;
  bool initiator = false;     // our role in this IKE SA
  IkeSaState state = IkeSaState::kHalfOpen;
  OuterEndpoint local;
  OuterEndpoint remote;       // the peer as seen here (NAT-translated)
  std::string peer_id;        // IDi/IDr text, after authentication
  std::string profile;
  bool peer_behind_nat = false;
  bool local_behind_nat = false;
  bool udp_encapsulation = false;
  bool mobike_supported = false;
  // MOBIKE: the peer's other addresses (ADDITIONAL_IP4/6_ADDRESS), and how
  // often this IKE SA moved (MOBIKE, remap, external).
  std::vector<shared::IpAddress> peer_additional_addresses;
  uint32_t moves = 0;
  bool fragmentation = false;  // both ends announced RFC 7383 support
  std::optional<shared::IpAddress> internal_ip4;
  std::optional<shared::IpAddress> internal_ip6;
  uint32_t tunnel_id = 0;
  std::string ike_algorithms;  // "aes256gcm16-prfsha256-ecp256"
  uint64_t established_ns = 0;
  uint64_t rekey_at_ns = 0;
  // Initiator: the public address and port the responder reported for us
  // (EXTERNAL_SOURCE_IP4_NAT_INFO).
  std::optional<OuterEndpoint> nat_info;
  std::vector<ChildSaInfo> children;
};

// A filtered, paged listing of IKE SAs (GET /v1/ike-sas): only the page is
// copied, so a listing of a large fleet holds the engine thread for a scan
// of ids and a few comparisons per IKE SA, not for copying every one.
struct IkeSaQuery {
  std::optional<std::string> identity;          // the peer's identity text, exactly
  std::optional<shared::IpAddress> inner;       // an assigned inner address
  std::optional<shared::IpAddress> public_address;  // the peer's outer address now
  uint64_t after = 0;                           // ids above this (the previous page's last)
  size_t limit = SIZE_MAX;
};
struct IkeSaPage {
  std::vector<IkeSaInfo> sas;           // id order
  size_t matched = 0;                   // IKE SAs matching the filters, all pages
  std::optional<uint64_t> next_after;   // more after this page: pass it as `after`
};

// What an initiator asks for (segw as initiator: site-to-site, tests, the
// load tool).
struct InitiateRequest {
  std::string profile;            // a [profile]: local_id, auth, proposals
  OuterEndpoint local;            // our address and port (500)
  OuterEndpoint remote;           // the responder
  bool request_ip4 = true;        // CP: INTERNAL_IP4_ADDRESS
  bool request_ip6 = false;       // CP: INTERNAL_IP6_ADDRESS
  bool request_nat_info = false;  // CP: EXTERNAL_SOURCE_IP4_NAT_INFO (attribute 23)
  std::vector<shared::TrafficSelector> local_ts;   // default: any (per requested family)
  std::vector<shared::TrafficSelector> remote_ts;  // default: any
  bool install_children = true;   // false: load tools that carry no traffic
  // INITIAL_CONTACT: "no other IKE SA of mine exists" (the responder deletes
  // any it still has for our identity). Load tools opening many IKE SAs
  // with one identity turn it off.
  bool initial_contact = true;
  // RFC 4555 3.9: NO_NATS_ALLOWED in IKE_SA_INIT and in our MOBIKE
  // updates (a NAT on the path fails the exchange with
  // UNEXPECTED_NAT_DETECTED).
  bool no_nats_allowed = false;
};

enum class EngineEventKind : uint8_t {
  kEstablished,     // IKE SA authenticated and its first child installed
  kFailed,          // an IKE SA did not come up (reason in detail)
  kChildInstalled,  // an additional or rekeyed child SA is up
  kChildDeleted,
  kIkeRekeyed,      // detail: the new IKE SA id
  kDeleted,         // IKE SA gone (peer DELETE, our DELETE, liveness, expiry)
  kMoved,           // IKE SA and its children moved to a new peer endpoint (detail: how)
  kMoveRefused,     // a MOBIKE update of ours was refused (detail: the notify)
};
const char* to_string(EngineEventKind kind);

struct EngineEvent {
  EngineEventKind kind = EngineEventKind::kEstablished;
  uint64_t ike_sa = 0;
  std::string detail;
  // EXTERNAL_SOURCE_IP4_NAT_INFO-style mapping at the time of the event.
  std::optional<shared::IpAddress> internal_ip4;
  OuterEndpoint remote;
};

#define SEGW_ENGINE_COUNTERS(X)                                                       \
  X(datagrams)                /* every datagram handed to the engine */               \
  X(dropped_malformed)        /* did not decode (before authentication: dropped) */   \
  X(dropped_unknown_spi)      /* no IKE SA for the SPIs */                            \
  X(dropped_message_id)       /* outside the window */                                \
  X(dropped_icv)              /* SK payload failed its integrity check */             \
  X(dropped_invalid)          /* decoded but not a legal message for its exchange */  \
  X(dropped_unexpected)       /* a response to nothing, or in the wrong state */      \
  X(retransmitted_responses)  /* cached response re-sent for a repeated request */   \
  X(retransmitted_requests)                                                           \
  X(cookies_sent)                                                                     \
  X(invalid_ke_sent)                                                                  \
  X(no_proposal_chosen)                                                               \
  X(auth_failed)                                                                      \
  X(ts_unacceptable)                                                                  \
  X(address_failures)         /* pools exhausted */                                   \
  X(invalid_syntax_sent)                                                              \
  X(ike_sas_established)                                                              \
  X(ike_sas_failed)                                                                   \
  X(ike_sas_deleted)                                                                  \
  X(ike_sas_rekeyed)                                                                  \
  X(child_sas_installed)                                                              \
  X(child_sas_rekeyed)                                                                \
  X(child_sas_deleted)                                                                \
  X(install_failures)                                                                 \
  X(half_open_expired)                                                                \
  X(liveness_failures)                                                                \
  X(initial_contact_replaced) /* old IKE SAs of a peer that said INITIAL_CONTACT */   \
  X(remaps_followed)          /* moved at once (remap = follow) */                    \
  X(remaps_verified)          /* moved after an authenticated answer from there */    \
  X(remaps_ignored)           /* remap = off, or the SA not established */            \
  X(remap_checks_sent)                                                                \
  X(remap_checks_rate_limited)                                                        \
  X(remap_checks_failed)      /* no authenticated answer from the candidate */        \
  X(remap_answers_wrong_source) /* an answer to a check from elsewhere: ignored */    \
  X(mobike_updates_received)  /* UPDATE_SA_ADDRESSES from a peer */                  \
  X(mobike_updates_stale)     /* older than one already processed: ignored */         \
  X(mobike_nat_refused)       /* NO_NATS_ALLOWED not met: UNEXPECTED_NAT_DETECTED */  \
  X(mobike_unacceptable)      /* UNACCEPTABLE_ADDRESSES sent */                      \
  X(mobike_updates_sent)      /* our UPDATE_SA_ADDRESSES (initiator) */               \
  X(mobike_updates_refused)   /* answered with an error, or COOKIE2 not echoed */     \
  X(mobike_paths_probed)      /* update re-sent to another peer address */            \
  X(external_moves)                                                                   \
  X(nat_keepalives_sent)      /* RFC 3948 4: we are behind a NAT and were quiet */   \
  X(data_plane_rekeys)        /* rekeys asked for by data plane events */             \
  X(data_plane_expiries)                                                              \
  X(unknown_sa_conditions)                                                            \
  X(send_errors)                                                                      \
  X(fragments_sent)           /* SKF datagrams sent, retransmissions included */      \
  X(fragments_received)       /* SKF datagrams received for a known IKE SA */         \
  X(fragmented_messages_reassembled)                                                  \
  X(fragments_dropped)        /* not negotiated, ICV, duplicate, totals, limits */

struct EngineStats {
#define SEGW_ENGINE_COUNTER_FIELD(name) uint64_t name = 0;
  SEGW_ENGINE_COUNTERS(SEGW_ENGINE_COUNTER_FIELD)
#undef SEGW_ENGINE_COUNTER_FIELD
  uint64_t half_open = 0;    // gauges
  uint64_t established = 0;
  uint64_t fragment_collections = 0;  // messages being reassembled, all IKE SAs
  uint64_t fragment_bytes = 0;        // decrypted fragment bytes they hold
};

class Engine {
 public:
  // Builds the runtime policy from the configuration: proposal policies,
  // certificates, private keys, CA stores and pools. Errors: a file that
  // does not load, an ESP proposal the data plane cannot run.
  static shared::Result<std::unique_ptr<Engine>> create(const config::ControlPlaneConfig& config,
                                                        const EngineOptions& options,
                                                        dp_link::IkeTransport& transport,
                                                        dp_link::SaInstaller& installer,
                                                        Clock clock = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One received IKE datagram (marker already stripped). Never throws.
  void handle_datagram(const dp_link::IkeDatagram& datagram);
  // Data-plane completions and due timers. Call often (each loop).
  void poll();
  // The next time poll() has a timer to run (CLOCK_MONOTONIC ns); 0: none.
  uint64_t next_deadline_ns() const;

  // Starts an IKE SA as initiator; returns its id. It comes up (or fails)
  // through later handle_datagram()/poll() calls: see events.
  shared::Result<uint64_t> initiate(const InitiateRequest& request);
  // Sends a DELETE for the IKE SA (its children go with it).
  shared::Status terminate(uint64_t ike_sa_id);
  // Rekeys the IKE SA's first child SA now (CREATE_CHILD_SA with REKEY_SA).
  shared::Status rekey_child(uint64_t ike_sa_id);
  // Rekeys the IKE SA itself now.
  shared::Status rekey_ike(uint64_t ike_sa_id);
  // Sends a liveness check (empty INFORMATIONAL) now. Errors: unknown id,
  // not established, an exchange in flight.
  shared::Status check_liveness(uint64_t ike_sa_id);

  // The data plane reports a child SA's condition (channel events):
  // kRekeyWanted (soft lifetime, sequence numbers near exhaustion) rekeys
  // the child now; kExpired (hard lifetime: the data plane stopped it)
  // deletes it. Unknown SPIs are ignored (counted).
  // `tunnel_id` (the data plane event's; 0: unknown) finds the IKE SA
  // without a scan.
  enum class SaCondition : uint8_t { kRekeyWanted, kExpired };
  void on_sa_condition(uint32_t spi, shared::SaDirection direction, SaCondition condition,
                       uint32_t tunnel_id = 0);

  // The data plane accepted an ESP packet of inbound child SA `inbound_spi`
  // (ICV and replay checks passed) from `from`, which is not the tunnel's
  // path: a NAT remap, or a replayed/relayed packet. The profile's `remap`
  // policy decides (RFC 7296 2.23): follow moves the IKE SA and all its
  // children at once; verify first sends an authenticated INFORMATIONAL
  // request (with a fresh COOKIE2) to `from` and moves only on its
  // authenticated answer from there (one check per IKE SA at a time, at
  // most one per second); off never moves. An authenticated IKE request
  // from a new endpoint is the same signal.
  void on_new_source(uint32_t inbound_spi, const OuterEndpoint& from, uint32_t tunnel_id = 0);

  // External move (seed 002, the DSMIPv6 K-bit case): an operator or
  // another network function puts the IKE SA and all its child SAs on a
  // new peer address/port at once, like a MOBIKE update (one path update
  // on the data plane; sequence numbers and replay windows kept). UDP
  // encapsulation is kept as negotiated. Errors: unknown id, not
  // established, an address of the other family than the SA's local one.
  shared::Status move(uint64_t ike_sa_id, const OuterEndpoint& to);

  // MOBIKE as initiator (RFC 4555 3.5, 3.6): our own address changed (or a
  // test moves us): send UPDATE_SA_ADDRESSES (NAT-D for the new path,
  // COOKIE2) from `new_local`; the IKE SA and its children move when the
  // authenticated answer arrives there. Errors: unknown id, MOBIKE not
  // negotiated, a request already outstanding.
  shared::Status update_local_address(uint64_t ike_sa_id, const OuterEndpoint& new_local);

  // Address pools, and the leases of one (nullopt: no such pool).
  std::vector<PoolInfo> pools() const;
  std::optional<std::vector<LeaseInfo>> pool_leases(std::string_view name) const;
  std::optional<LeasePage> pool_leases(std::string_view name, const LeaseQuery& query) const;

  // Applies a new configuration without touching any established tunnel:
  // new IKE SAs use the new profiles, secrets and pools; existing IKE SAs
  // follow their profile by name (rekeys, liveness and remap policy from
  // then on) or keep the old one when it is gone. A changed pool is rebuilt
  // with every current lease carried over. Refused, with nothing changed:
  // a changed [controlplane] section (restart for that), a profile that
  // does not load, a removed pool with leases, a changed pool that cannot
  // keep every current lease at its address.
  shared::Result<ReloadReport> reload(std::shared_ptr<const config::ControlPlaneConfig> config);
  // The configuration in force: the one given at creation, then the last
  // one reloaded. It (and every earlier one) lives as long as the engine, so
  // pointers into it stay valid; its address changes with each reload.
  const config::ControlPlaneConfig& config() const;

  std::vector<IkeSaInfo> ike_sas() const;
  IkeSaPage ike_sas(const IkeSaQuery& query) const;
  // How many IKE SAs the engine holds, in any state (without copying them).
  size_t ike_sa_count() const;
  std::optional<IkeSaInfo> ike_sa(uint64_t id) const;
  const EngineStats& stats() const;
  void set_event_handler(std::function<void(const EngineEvent&)> handler);

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace segw::cp::ike
