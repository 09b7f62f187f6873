// Internal state of the IKEv2 engine (engine.h): runtime profiles, IKE SAs,
// child SAs and requests in flight. Only engine*.cc include this.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "controlplane/crypto/auth.h"
#include "controlplane/crypto/dh.h"
#include "controlplane/crypto/key_derivation.h"
#include "controlplane/crypto/sk_protection.h"
#include "controlplane/crypto/x509.h"
#include "controlplane/ike/codec/message.h"
#include "controlplane/ike/engine/engine.h"
#include "controlplane/policy/pool.h"
#include "controlplane/policy/proposals.h"

namespace segw::cp::ike {

// A [profile] made ready to use: parsed proposals, loaded keys, CA store.
struct RuntimeProfile {
  const config::ProfileSection* section = nullptr;
  std::optional<policy::ProposalPolicy> ike;
  std::optional<policy::ProposalPolicy> esp;
  std::optional<crypto::Certificate> certificate;
  std::optional<crypto::PrivateKey> private_key;
  std::optional<crypto::CertificateStore> cas;
  std::vector<uint8_t> ca_hashes;  // CERTREQ: SHA-1 of each CA's SubjectPublicKeyInfo
  policy::AddressPool* pool4 = nullptr;
  policy::AddressPool* pool6 = nullptr;
  std::vector<shared::TrafficSelector> local_ts;
  IdPayload local_id;
};

enum class RequestKind : uint8_t {
  kIkeSaInit,
  kIkeAuth,
  kLiveness,
  kDeleteIke,
  kDeleteChild,
  kRekeyChild,
  kRekeyIke,
  kRemapCheck,  // liveness request to a candidate endpoint (remap = verify)
  kMobikeUpdate,  // our UPDATE_SA_ADDRESSES (MOBIKE initiator)
};

struct ChildSa {
  ChildSaInfo info;
  std::optional<policy::SelectedProposal> proposal;
  bool rekeyed = false;        // a newer child replaced it; deleted soon
  bool rekeying = false;       // our rekey of it is under way (exchange or install)
  uint64_t retire_at_ns = 0;   // rekeyed: delete it ourselves if the peer has not
  // Responder of a child rekey: the new outbound SA waits (keys kept here)
  // until the old child goes, because the initiator installs its new
  // inbound SA only when our answer arrives: sending on the new SA earlier
  // would lose packets (strongSwan does the same).
  bool outbound_installed = true;
  std::optional<crypto::ChildSaKeys> pending_keys;
  uint32_t replaces_inbound_spi = 0;  // the child this one rekeyed
};

// A message as it goes on the wire: one datagram, or its SKF fragments
// (RFC 7383 2.5) in order. Retransmissions resend all of them.
using Datagrams = std::vector<std::vector<uint8_t>>;

// A request of ours waiting for its response (window size 1).
struct OutstandingRequest {
  RequestKind kind = RequestKind::kLiveness;
  uint32_t message_id = 0;
  Datagrams datagrams;
  uint64_t next_send_ns = 0;
  uint64_t first_sent_ns = 0;
  // kRemapCheck: sent to, and answered only from, this endpoint.
  std::optional<OuterEndpoint> destination;
  std::vector<uint8_t> cookie2;
  // kRemapCheck after a MOBIKE update: the path the peer asked for (local
  // address it reached, UDP encapsulation from its NAT-D) applied with the
  // move.
  std::optional<OuterEndpoint> new_local;
  std::optional<bool> new_encapsulation;
  // kMobikeUpdate: peer addresses not tried yet (path probing).
  std::vector<shared::IpAddress> probe_addresses;
  uint32_t tries = 0;
  // Per kind: the child concerned (inbound SPI), a rekey's new SPIs, nonce,
  // D-H key and the SA payload offered.
  uint32_t child_inbound_spi = 0;
  uint32_t new_inbound_spi = 0;
  uint64_t new_ike_spi = 0;
  std::vector<uint8_t> nonce;
  std::optional<crypto::DhKeyPair> dh;
  SaPayload offered;
};

// One message being reassembled from SKF fragments (RFC 7383 2.6). Each
// piece is stored decrypted, after its own ICV held.
struct FragmentCollection {
  uint32_t message_id = 0;
  uint16_t total = 0;                       // Total Fragments of this collection
  PayloadType first_inner = PayloadType::kNone;  // from fragment 1
  std::vector<crypto::SecureBytes> pieces;  // index: Fragment Number - 1
  std::vector<bool> have;
  uint16_t received = 0;
  size_t bytes = 0;
  uint64_t started_ns = 0;
};

struct PendingInstall {
  uint64_t ike_sa = 0;
  std::vector<std::future<dp_link::CommandResult>> results;
  std::function<void(bool ok, const std::string& why)> done;
};

struct IkeSa {
  uint64_t id = 0;
  uint64_t lease_owner = 0;   // stays the same across IKE rekeys
  bool initiator = false;     // original initiator of this IKE SA is us
  IkeSaState state = IkeSaState::kHalfOpen;
  uint64_t spi_i = 0;
  uint64_t spi_r = 0;
  OuterEndpoint local;
  OuterEndpoint remote;
  // Responder: where the IKE_SA_INIT came from, the half-open index's key
  // (the peer moves to 4500 at IKE_AUTH, `remote` follows it).
  OuterEndpoint init_remote;
  bool half_open_indexed = false;
  uint16_t port_id = 0;
  RuntimeProfile* profile = nullptr;
  std::optional<policy::SelectedProposal> proposal;
  crypto::PrfAlgorithm prf = crypto::PrfAlgorithm::kHmacSha2_256;
  crypto::SecureBytes sk_d;
  crypto::SecureBytes sk_pi;
  crypto::SecureBytes sk_pr;
  std::optional<crypto::SkCipher> in_cipher;
  std::optional<crypto::SkCipher> out_cipher;
  std::vector<uint8_t> nonce_i;
  std::vector<uint8_t> nonce_r;
  std::vector<uint8_t> init_request;   // the initiator's IKE_SA_INIT message
  std::vector<uint8_t> init_response;  // the responder's
  std::optional<crypto::DhKeyPair> dh;  // initiator, until the IKE_SA_INIT response
  std::vector<uint8_t> cookie;          // initiator: echoed COOKIE
  bool peer_behind_nat = false;
  bool local_behind_nat = false;
  bool udp_encapsulation = false;
  bool mobike = false;
  // MOBIKE roles stay with the original initiator across IKE rekeys (RFC
  // 4555 3.1): only it sends UPDATE_SA_ADDRESSES.
  bool original_initiator = false;
  std::vector<shared::IpAddress> peer_additional_addresses;
  bool have_update_id = false;
  uint32_t latest_update_id = 0;  // the newest UPDATE_SA_ADDRESSES processed
  std::optional<OuterEndpoint> pending_local_update;  // initiator: waits for the window
  uint32_t moves = 0;
  // Both ends sent IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (RFC 7383 2.3).
  bool fragmentation = false;
  std::vector<HashAlgorithm> peer_signature_hashes;
  IdPayload peer_id;
  std::string peer_id_text;
  bool peer_indexed = false;  // in Impl::by_peer_ (authenticated identity)
  uint64_t last_remap_check_ns = 0;
  // Responder side of the window: the last request answered and its answer.
  uint32_t expected_request_id = 0;
  bool have_last_response = false;
  uint32_t last_response_id = 0;
  Datagrams last_response;
  // SKF reassembly: the peer's request, and the response to ours. At most
  // one each (the window is 1); a newer message ID replaces it.
  std::optional<FragmentCollection> request_fragments;
  std::optional<FragmentCollection> response_fragments;
  bool request_in_progress = false;  // an answer waits for the data plane
  // Requester side.
  uint32_t next_request_id = 0;
  std::optional<OutstandingRequest> outstanding;
  std::vector<ChildSa> children;
  uint32_t tunnel_id = 0;
  std::optional<policy::Lease> lease4;
  std::optional<policy::Lease> lease6;
  uint64_t created_ns = 0;
  uint64_t established_ns = 0;
  uint64_t last_heard_ns = 0;
  uint64_t last_sent_ns = 0;  // anything of ours to the peer (NAT keepalive timing)
  uint64_t rekey_at_ns = 0;
  uint64_t retire_at_ns = 0;  // rekeyed or deleting: gone by then whatever the peer does
  uint64_t armed_ns = 0;      // the deadline in the timer queue
  InitiateRequest initiate;   // initiator: what was asked
  bool rekeyed = false;       // replaced by a newer IKE SA (children moved)
  std::optional<OuterEndpoint> nat_info;  // initiator: EXTERNAL_SOURCE_IP4_NAT_INFO received
};

class Engine::Impl {
 public:
  Impl(const config::ControlPlaneConfig& config, const EngineOptions& options,
       dp_link::IkeTransport& transport, dp_link::SaInstaller& installer, Clock clock);
  shared::Status load();
  std::vector<PoolInfo> pools() const;
  IkeSaPage ike_sas(const IkeSaQuery& query) const;
  std::optional<LeasePage> pool_leases(std::string_view name, const LeaseQuery& query) const;
  shared::Result<ReloadReport> reload(std::shared_ptr<const config::ControlPlaneConfig> config);

  void handle_datagram(const dp_link::IkeDatagram& datagram);
  void poll();
  uint64_t next_deadline_ns() const;
  shared::Result<uint64_t> initiate(const InitiateRequest& request);
  shared::Status terminate(uint64_t id);
  shared::Status rekey_child(uint64_t id);
  shared::Status rekey_ike(uint64_t id);
  shared::Status check_liveness(uint64_t id);
  void on_sa_condition(uint32_t spi, shared::SaDirection direction, Engine::SaCondition condition,
                       uint32_t tunnel_id);
  void on_new_source(uint32_t inbound_spi, const OuterEndpoint& from, uint32_t tunnel_id);
  shared::Status move(uint64_t id, const OuterEndpoint& to);
  shared::Status update_local_address(uint64_t id, const OuterEndpoint& new_local);
  std::vector<IkeSaInfo> ike_sas() const;
  size_t ike_sa_count() const { return sas_.size(); }
  std::optional<IkeSaInfo> ike_sa(uint64_t id) const;
  const EngineStats& stats() const { return stats_; }
  const config::ControlPlaneConfig& config() const { return *config_; }
  void set_event_handler(std::function<void(const EngineEvent&)> handler) {
    event_handler_ = std::move(handler);
  }

 private:
  // Receiving.
  void responder_init(const dp_link::IkeDatagram& datagram, const IkeHeader& header);
  void initiator_init_response(const dp_link::IkeDatagram& datagram, const IkeHeader& header);
  void handle_request(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header);
  void handle_response(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header);
  void responder_auth(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header,
                      const std::vector<Payload>& inner);
  void responder_informational(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                               const IkeHeader& header, const std::vector<Payload>& inner);
  void responder_create_child(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                              const IkeHeader& header, const std::vector<Payload>& inner);
  void responder_rekey_ike(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                           const IkeHeader& header, const std::vector<Payload>& inner,
                           const SaPayload& sa_payload);
  void initiator_auth_response(IkeSa& sa, OutstandingRequest& request, const std::vector<Payload>& inner);
  // The inner payloads of a protected message: SK opened here, SKF stored
  // until its message is complete (then reassembled and decoded).
  enum class Opened : uint8_t {
    kInner,      // `inner` holds the message's payloads
    kWaiting,    // a fragment stored (or dropped and counted): nothing more to do
    kIcvFailed,  // not the peer's: no answer, no state change
    kMalformed,  // authenticated but undecodable
  };
  Opened open_protected(IkeSa& sa, const dp_link::IkeDatagram& datagram, const Message& message,
                        bool response, std::vector<Payload>& inner);
  Opened collect_fragment(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header,
                          const EncryptedFragmentPayload& skf, bool response, std::vector<Payload>& inner);
  void drop_fragments(std::optional<FragmentCollection>& collection);
  void initiator_rekey_child_response(IkeSa& sa, OutstandingRequest& request,
                                      const std::vector<Payload>& inner);
  void initiator_rekey_ike_response(IkeSa& sa, OutstandingRequest& request,
                                    const std::vector<Payload>& inner);

  // Sending.
  void send_response(IkeSa& sa, const dp_link::IkeDatagram& request, const IkeHeader& header,
                     const std::vector<Payload>& payloads);
  void send_unprotected_error(const dp_link::IkeDatagram& request, const IkeHeader& header,
                              NotifyPayload notify);
  shared::Status send_request(IkeSa& sa, RequestKind kind, ExchangeType exchange,
                              const std::vector<Payload>& payloads, OutstandingRequest extra = {});
  // The datagrams of a protected message: one SK, or SKF fragments when
  // fragmentation was negotiated and the whole would exceed the limit.
  shared::Result<Datagrams> protect(IkeSa& sa, const IkeHeader& header, const std::vector<Payload>& payloads,
                                    const OuterEndpoint& remote, bool non_esp_marker);
  void transmit(IkeSa& sa, const Datagrams& datagrams);
  void send_all(const dp_link::IkeDatagram& request, const Datagrams& datagrams);
  void send_ike_auth(IkeSa& sa);
  void send_ike_sa_init(IkeSa& sa);

  // Authentication.
  shared::Status verify_peer_auth(IkeSa& sa, const IdPayload& peer_id,
                                  const std::vector<Payload>& inner, bool peer_is_initiator);
  shared::Result<std::vector<Payload>> own_auth_payloads(IkeSa& sa, bool we_are_initiator);

  // Child SAs.
  uint32_t allocate_inbound_spi();
  void release_inbound_spi(uint32_t spi);
  // `directions`: both, or inbound only (a rekey's responder, see ChildSa)
  // or outbound only (its deferred half).
  enum class Install : uint8_t { kBoth, kInboundOnly, kOutboundOnly };
  shared::Result<std::vector<std::future<dp_link::CommandResult>>> install_child(
      IkeSa& sa, ChildSa& child, const crypto::ChildSaKeys& keys, bool we_are_initiator,
      Install directions = Install::kBoth);
  // Installs the deferred outbound SA of the child that replaces `old_inbound_spi`.
  void complete_rekey_outbound(IkeSa& sa, uint32_t old_inbound_spi);
  void remove_child_from_data_plane(const ChildSa& child);
  shared::PathDescriptor path_of(const IkeSa& sa) const;
  void wait_for(uint64_t ike_sa, std::vector<std::future<dp_link::CommandResult>> results,
                std::function<void(bool ok, const std::string& why)> done);
  std::vector<Payload> cp_reply(IkeSa& sa, const CpPayload& request, bool* address_failure);

  // Life cycle.
  IkeSa& create_sa(bool initiator);
  // The index of authenticated peer identities (INITIAL_CONTACT).
  static std::string peer_key(const IdPayload& id);
  void index_peer(IkeSa& sa);
  void unindex_peer(IkeSa& sa);
  // Deletes (locally) every other IKE SA of `sa`'s peer identity.
  void replace_older_sas_of_peer(IkeSa& sa);
  // NAT remaps (RFC 7296 2.23): the policy, and the move itself.
  void remap_signal(IkeSa& sa, const OuterEndpoint& from, const char* source);
  void move_sa(IkeSa& sa, const OuterEndpoint& to, const std::string& how);
  // Puts the IKE SA and its children on a new path (one data-plane path
  // update when anything changed) and records it.
  void apply_path(IkeSa& sa, const OuterEndpoint& local, const OuterEndpoint& remote, bool encapsulation,
                  const std::string& how, bool force = false);
  // Starts (or re-aims) the return routability check of remap = verify.
  void start_remap_check(IkeSa& sa, const OuterEndpoint& to, std::optional<OuterEndpoint> new_local,
                         std::optional<bool> new_encapsulation);
  // MOBIKE (engine_mobike.cc).
  void responder_update_addresses(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header,
                                  const std::vector<Payload>& inner);
  void initiator_update_response(IkeSa& sa, const dp_link::IkeDatagram& datagram, OutstandingRequest& request,
                                 const std::vector<Payload>& inner);
  shared::Status send_update_addresses(IkeSa& sa);
  std::vector<Payload> nat_detection_notifies(const IkeSa& sa, const OuterEndpoint& local,
                                              const OuterEndpoint& remote) const;
  void learn_additional_addresses(IkeSa& sa, const std::vector<Payload>& inner);
  std::vector<Payload> own_additional_addresses(const IkeSa& sa) const;
  void leave_half_open(IkeSa& sa);
  // The IKE SA that replaces `old` after a rekey: children, leases, path and
  // identity move over; `old` keeps nothing but its keys (for its DELETE).
  IkeSa& successor_of(IkeSa& old, bool initiator, uint64_t spi_i, uint64_t spi_r);
  void establish(IkeSa& sa);
  void close_sa(IkeSa& sa, EngineEventKind kind, const std::string& why);
  void schedule(IkeSa& sa);
  void on_timer(IkeSa& sa);
  void emit(EngineEventKind kind, const IkeSa& sa, const std::string& detail);
  IkeSa* find(uint64_t id);
  const IkeSa* find(uint64_t id) const;
  // A [profile] made ready, its pools found by `pool_named`.
  shared::Result<std::unique_ptr<RuntimeProfile>> build_profile(
      const config::ProfileSection& section, const std::function<policy::AddressPool*(const std::string&)>& pool_named);
  RuntimeProfile* init_profile(const shared::IpAddress& local);
  RuntimeProfile* profile_named(const std::string& name);
  RuntimeProfile* profile_for(const IdPayload& id);
  std::vector<uint8_t> cookie_for(const dp_link::IkeDatagram& datagram, uint64_t spi_i,
                                  std::span<const uint8_t> nonce) const;
  IkeSaInfo info_of(const IkeSa& sa) const;
  uint64_t now() const { return clock_(); }

  // The configuration in force: the one given at creation, then the last
  // reloaded one. Reloaded ones are kept for the life of the engine:
  // retired profiles point into them (reloads are rare and small).
  const config::ControlPlaneConfig* config_;
  std::vector<std::shared_ptr<const config::ControlPlaneConfig>> reloaded_configs_;
  EngineOptions options_;
  dp_link::IkeTransport& transport_;
  dp_link::SaInstaller& installer_;
  Clock clock_;
  std::function<void(const EngineEvent&)> event_handler_;
  EngineStats stats_;

  std::vector<std::unique_ptr<RuntimeProfile>> profiles_;
  // Profiles a reload removed while IKE SAs still used them.
  std::vector<std::unique_ptr<RuntimeProfile>> retired_profiles_;
  std::map<std::string, policy::AddressPool, std::less<>> pools_;
  std::vector<uint8_t> cookie_secret_;

  uint64_t next_id_ = 1;
  uint32_t next_tunnel_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<IkeSa>> sas_;
  std::unordered_map<uint64_t, uint64_t> by_local_spi_;
  std::unordered_multimap<std::string, uint64_t> by_peer_;
  // The live IKE SA of each tunnel (data-plane events name the tunnel; an
  // IKE rekey hands it to the successor). Mass remaps deliver one event per
  // tunnel: a scan of every IKE SA for each would be quadratic.
  std::unordered_map<uint32_t, uint64_t> by_tunnel_;
  // The IKE SA of a data-plane event's child SA: by tunnel when the event
  // names one, else by a scan; nullptr when none (rekeyed IKE SAs excluded).
  IkeSa* sa_of_child(uint32_t spi, shared::SaDirection direction, uint32_t tunnel_id);
  // Half-open responder SAs by (SPIi, peer address, peer port): a repeated
  // IKE_SA_INIT finds its answer, a new one from elsewhere gets a new SA.
  std::map<std::tuple<uint64_t, shared::IpAddress, uint16_t>, uint64_t> half_open_;
  std::unordered_set<uint32_t> inbound_indices_;
  std::priority_queue<std::pair<uint64_t, uint64_t>, std::vector<std::pair<uint64_t, uint64_t>>,
                      std::greater<>>
      timers_;
  std::deque<PendingInstall> pending_;
  std::deque<std::future<dp_link::CommandResult>> removals_;
};

}  // namespace segw::cp::ike
