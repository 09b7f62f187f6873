// The IKEv2 engine: set-up, dispatch, sending, timers and the public face.
// The exchanges themselves are in engine_exchanges.cc.
#include "controlplane/ike/engine/engine.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "controlplane/crypto/prf.h"
#include "controlplane/crypto/random.h"
#include "controlplane/ike/engine/engine_impl.h"
#include "controlplane/ike/engine/engine_support.h"
#include "controlplane/policy/message_rules.h"

namespace segw::cp::ike {

namespace {

constexpr uint64_t kNsPerMs = 1'000'000;
constexpr uint64_t kNsPerSecond = 1'000'000'000;
// A rekeyed child or IKE SA the peer does not delete is deleted by us after
// this long (the peer had every chance to move its traffic).
constexpr uint64_t kRetireAfterNs = 30 * kNsPerSecond;

// SKF reassembly limits (RFC 7383 2.6 leaves them to us): per message, at
// most this many fragments and this many decrypted bytes; a message still
// incomplete after kFragmentTimeoutNs is forgotten (the peer retransmits
// all of it anyway, RFC 7383 2.6.1).
constexpr uint16_t kMaxFragments = 64;
constexpr size_t kMaxFragmentedMessageBytes = 64 * 1024;
constexpr uint64_t kFragmentTimeoutNs = 30 * kNsPerSecond;
// RFC 7383 2.5.1: fragment_size counts the IP and UDP headers.
constexpr size_t kIpv4HeaderBytes = 20;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr size_t kUdpHeaderBytes = 8;
constexpr size_t kNonEspMarkerBytes = 4;  // RFC 3948 2.2, on port 4500

uint64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * kNsPerSecond + uint64_t(ts.tv_nsec);
}

uint64_t random_below(uint64_t bound) {
  if (bound == 0) return 0;
  uint64_t value = 0;
  (void)crypto::random_fill(std::span(reinterpret_cast<uint8_t*>(&value), sizeof value));
  return value % bound;
}

}  // namespace

const char* to_string(IkeSaState state) {
  switch (state) {
    case IkeSaState::kInitSent: return "init_sent";
    case IkeSaState::kHalfOpen: return "half_open";
    case IkeSaState::kAuthSent: return "auth_sent";
    case IkeSaState::kInstalling: return "installing";
    case IkeSaState::kEstablished: return "established";
    case IkeSaState::kDeleting: return "deleting";
    case IkeSaState::kClosed: return "closed";
  }
  return "unknown";
}

const char* to_string(EngineEventKind kind) {
  switch (kind) {
    case EngineEventKind::kEstablished: return "established";
    case EngineEventKind::kFailed: return "failed";
    case EngineEventKind::kChildInstalled: return "child_installed";
    case EngineEventKind::kChildDeleted: return "child_deleted";
    case EngineEventKind::kIkeRekeyed: return "ike_rekeyed";
    case EngineEventKind::kDeleted: return "deleted";
    case EngineEventKind::kMoved: return "moved";
    case EngineEventKind::kMoveRefused: return "move_refused";
  }
  return "unknown";
}

EngineOptions EngineOptions::from(const config::DaemonSection& daemon) {
  EngineOptions options;
  options.cookie_threshold = daemon.cookie_threshold;
  options.half_open_timeout_s = daemon.half_open_timeout_s;
  options.retransmit_timeout_ms = daemon.retransmit_timeout_ms;
  options.retransmit_base = daemon.retransmit_base;
  options.retransmit_tries = daemon.retransmit_tries;
  options.max_ike_sas = daemon.max_ike_sas;
  options.natt_port = daemon.natt_port;
  options.inbound_spi_index_bits = daemon.dataplane_sa_index_bits;
  options.fragment_size = daemon.fragment_size;
  return options;
}

// ---------------------------------------------------------------- set-up

Engine::Impl::Impl(const config::ControlPlaneConfig& config, const EngineOptions& options,
                   dp_link::IkeTransport& transport, dp_link::SaInstaller& installer, Clock clock)
    : config_(&config),
      options_(options),
      transport_(transport),
      installer_(installer),
      clock_(clock ? std::move(clock) : Clock(monotonic_now_ns)) {}

shared::Status Engine::Impl::load() {
  auto secret = crypto::random_bytes(32);
  if (!secret) return shared::make_error(secret.error());
  cookie_secret_ = std::move(*secret);

  for (const auto& section : config_->pools) {
    auto pool = policy::AddressPool::create(section.pool);
    if (!pool) return shared::make_error("pool " + section.pool.name + ": " + pool.error());
    pools_.emplace(section.pool.name, std::move(*pool));
  }
  auto pool_named = [this](const std::string& name) -> policy::AddressPool* {
    auto it = pools_.find(name);
    return it == pools_.end() ? nullptr : &it->second;
  };
  for (const auto& section : config_->profiles) {
    auto profile = build_profile(section, pool_named);
    if (!profile) return shared::make_error(profile.error());
    profiles_.push_back(std::move(*profile));
  }
  if (profiles_.empty()) return shared::make_error("no profile");
  return {};
}

shared::Result<std::unique_ptr<RuntimeProfile>> Engine::Impl::build_profile(
    const config::ProfileSection& section, const std::function<policy::AddressPool*(const std::string&)>& pool_named) {
  auto profile = std::make_unique<RuntimeProfile>();
  profile->section = &section;
  std::string where = "profile " + section.name + ": ";
  auto ike = policy::ProposalPolicy::parse(ProtocolId::kIke, section.ike_proposals);
  if (!ike) return shared::make_error(where + "ike_proposals: " + ike.error());
  auto esp = policy::ProposalPolicy::parse(ProtocolId::kEsp, section.esp_proposals);
  if (!esp) return shared::make_error(where + "esp_proposals: " + esp.error());
  for (const auto& spec : esp->proposals())
    if (!data_plane_runs(spec))
      return shared::make_error(where + "esp_proposals: " + policy::to_string(spec) +
                                ": segw-dataplane runs AES-GCM-16 128/256 and AES-CBC "
                                "128/256 with HMAC-SHA1-96 or HMAC-SHA2-256-128 only");
  profile->ike = std::move(*ike);
  profile->esp = std::move(*esp);
  if (section.local_auth == config::AuthKind::kPublicKey) {
    auto cert = crypto::Certificate::load_pem_file(section.certificate_file);
    if (!cert) return shared::make_error(where + "certificate_file: " + cert.error());
    auto key = crypto::PrivateKey::load_pem_file(section.private_key_file);
    if (!key) return shared::make_error(where + "private_key_file: " + key.error());
    profile->certificate = std::move(*cert);
    profile->private_key = std::move(*key);
  }
  if (section.remote_auth == config::AuthKind::kPublicKey) {
    auto store = crypto::CertificateStore::create();
    if (!store) return shared::make_error(where + store.error());
    for (const auto& file : section.ca_files) {
      auto added = store->add_ca_file(file);
      if (!added) return shared::make_error(where + "ca_files: " + added.error());
      auto cas = crypto::Certificate::load_pem_file_all(file);
      if (!cas) return shared::make_error(where + "ca_files: " + cas.error());
      for (const auto& ca : *cas) {
        // CERTREQ names a CA by the SHA-1 of its SubjectPublicKeyInfo
        // (RFC 7296 3.7).
        unsigned char* der = nullptr;
        int length = i2d_PUBKEY(ca.public_key(), &der);
        if (length <= 0) continue;
        unsigned char hash[20];
        unsigned int hash_length = 0;
        EVP_Digest(der, size_t(length), hash, &hash_length, EVP_sha1(), nullptr);
        OPENSSL_free(der);
        profile->ca_hashes.insert(profile->ca_hashes.end(), hash, hash + hash_length);
      }
    }
    profile->cas = std::move(*store);
  }
  for (const auto& name : section.pools) {
    policy::AddressPool* pool = pool_named(name);
    if (pool == nullptr) return shared::make_error(where + "no pool " + name);
    if (pool->family() == shared::IpFamily::kIpv4)
      profile->pool4 = pool;
    else
      profile->pool6 = pool;
  }
  for (const auto& subnet : section.local_subnets)
    profile->local_ts.push_back(shared::TrafficSelector::from_prefix(subnet));
  if (profile->local_ts.empty()) {
    profile->local_ts.push_back(to_shared(make_any_selector(shared::IpFamily::kIpv4)));
    profile->local_ts.push_back(to_shared(make_any_selector(shared::IpFamily::kIpv6)));
  }
  profile->local_id.type = section.local_id.type;
  profile->local_id.data = section.local_id.data;
  return profile;
}

RuntimeProfile* Engine::Impl::init_profile(const shared::IpAddress& local) {
  for (auto& profile : profiles_) {
    const auto& addresses = profile->section->local_addresses;
    if (addresses.empty() || std::find(addresses.begin(), addresses.end(), local) != addresses.end())
      return profile.get();
  }
  return nullptr;
}

RuntimeProfile* Engine::Impl::profile_named(const std::string& name) {
  for (auto& profile : profiles_)
    if (profile->section->name == name) return profile.get();
  return nullptr;
}

RuntimeProfile* Engine::Impl::profile_for(const IdPayload& id) {
  const config::ProfileSection* section = config_->find_profile(id.type, id.data);
  if (section == nullptr) return nullptr;
  for (auto& profile : profiles_)
    if (profile->section == section) return profile.get();
  return nullptr;
}

std::vector<uint8_t> Engine::Impl::cookie_for(const dp_link::IkeDatagram& datagram, uint64_t spi_i,
                                              std::span<const uint8_t> nonce) const {
  // RFC 7296 2.6: Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>).
  auto spi = spi_to_wire(spi_i);
  auto mac = crypto::hmac(crypto::HashAlgorithm::kSha256, cookie_secret_,
                          {nonce, std::span(datagram.remote.address.bytes(),
                                            datagram.remote.address.byte_length()),
                           std::span<const uint8_t>(spi.data(), spi.size())});
  std::vector<uint8_t> cookie(17, 0);
  cookie[0] = 1;  // version of the secret
  if (mac) std::copy_n(mac->begin(), 16, cookie.begin() + 1);
  return cookie;
}

// ---------------------------------------------------------------- dispatch

void Engine::Impl::handle_datagram(const dp_link::IkeDatagram& datagram) {
  ++stats_.datagrams;
  DecodeFailure failure;
  auto header = decode_ike_header(datagram.message, &failure);
  if (!header) {
    ++stats_.dropped_malformed;
    return;
  }
  if (header->exchange == ExchangeType::kIkeSaInit) {
    if (!header->is_response() && header->spi_r == 0 && header->message_id == 0)
      responder_init(datagram, *header);
    else if (header->is_response())
      initiator_init_response(datagram, *header);
    else
      ++stats_.dropped_unexpected;
    return;
  }
  // The sender's I flag says who started the IKE SA, so which SPI is ours.
  uint64_t local_spi = header->is_initiator() ? header->spi_r : header->spi_i;
  auto it = by_local_spi_.find(local_spi);
  IkeSa* sa = it == by_local_spi_.end() ? nullptr : find(it->second);
  if (sa == nullptr || sa->spi_i != header->spi_i || sa->spi_r != header->spi_r ||
      sa->initiator == header->is_initiator()) {
    ++stats_.dropped_unknown_spi;
    return;
  }
  if (header->is_response())
    handle_response(*sa, datagram, *header);
  else
    handle_request(*sa, datagram, *header);
}

void Engine::Impl::handle_request(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                  const IkeHeader& header) {
  if (sa.have_last_response && header.message_id == sa.last_response_id) {
    // A retransmitted request: the same answer again, nothing re-done
    // (RFC 7296 2.1). Only once its bytes prove it the same request would be
    // stricter; the answer carries nothing the peer does not have. A
    // fragmented request is answered once, on its fragment 1 (RFC 7383
    // 2.6.1), not once per fragment.
    if (header.next_payload == PayloadType::kEncryptedFragment) {
      ++stats_.fragments_received;
      auto message = decode_message(datagram.message);
      const EncryptedFragmentPayload* skf =
          message && !message->payloads.empty() ? message->payloads.back().get<EncryptedFragmentPayload>() : nullptr;
      if (skf == nullptr || skf->fragment_number != 1) {
        ++stats_.fragments_dropped;
        return;
      }
    }
    ++stats_.retransmitted_responses;
    send_all(datagram, sa.last_response);
    // From a new endpoint (a remap, or a MOBIKE update whose first copy an
    // attacker relayed from elsewhere): the same signal as a new request.
    if (sa.state == IkeSaState::kEstablished && datagram.remote != sa.remote)
      remap_signal(sa, datagram.remote, "IKE request");
    return;
  }
  if (header.message_id != sa.expected_request_id) {
    ++stats_.dropped_message_id;
    return;
  }
  if (sa.request_in_progress) return;  // its answer waits for the data plane
  if (sa.state == IkeSaState::kHalfOpen && header.exchange != ExchangeType::kIkeAuth) {
    ++stats_.dropped_unexpected;
    return;
  }
  DecodeFailure failure;
  auto message = decode_message(datagram.message, &failure);
  if (!message) {
    ++stats_.dropped_malformed;
    return;
  }
  std::vector<Payload> opened;
  switch (open_protected(sa, datagram, *message, false, opened)) {
    case Opened::kInner:
      break;
    case Opened::kWaiting:
      return;
    case Opened::kIcvFailed:
      // A failed ICV is not the peer's message: no answer, no state change.
      ++stats_.dropped_icv;
      return;
    case Opened::kMalformed:
      if (sa.state == IkeSaState::kHalfOpen) {
        ++stats_.dropped_malformed;
      } else {
        ++stats_.invalid_syntax_sent;
        send_response(sa, datagram, header, {make_payload(make_notify(NotifyType::kInvalidSyntax))});
      }
      return;
  }
  const std::vector<Payload>* inner = &opened;
  auto legal = policy::check_message(*message, *inner);
  if (!legal) {
    ++stats_.dropped_invalid;
    // Authenticated (the ICV held): tell the peer (RFC 7296 2.21.2).
    bool critical = false;
    for (const auto& payload : *inner)
      if (payload.critical && std::holds_alternative<UnknownPayload>(payload.body)) critical = true;
    ++stats_.invalid_syntax_sent;
    NotifyPayload notify = make_notify(critical ? NotifyType::kUnsupportedCriticalPayload
                                                : NotifyType::kInvalidSyntax);
    send_response(sa, datagram, header, {make_payload(std::move(notify))});
    if (sa.state == IkeSaState::kHalfOpen) close_sa(sa, EngineEventKind::kFailed, legal.error());
    return;
  }
  sa.last_heard_ns = now();
  // NAT-T float (RFC 7296 2.23): the peer moves to 4500 after IKE_SA_INIT.
  // Moves of an established SA are the remap logic's decision, not this.
  if (sa.state == IkeSaState::kHalfOpen) {
    sa.local = datagram.local;
    sa.remote = datagram.remote;
    sa.port_id = datagram.port_id;
  } else if (datagram.remote != sa.remote &&
             !(sa.mobike && header.exchange == ExchangeType::kInformational &&
               find_notify(*inner, NotifyType::kUpdateSaAddresses))) {
    // A MOBIKE update names its own new path: handled with the exchange.
    remap_signal(sa, datagram.remote, "IKE request");
  }
  switch (header.exchange) {
    case ExchangeType::kIkeAuth:
      if (sa.state != IkeSaState::kHalfOpen || sa.initiator) {
        ++stats_.dropped_unexpected;
        return;
      }
      responder_auth(sa, datagram, header, *inner);
      return;
    case ExchangeType::kInformational:
      responder_informational(sa, datagram, header, *inner);
      return;
    case ExchangeType::kCreateChildSa:
      responder_create_child(sa, datagram, header, *inner);
      return;
    default:
      ++stats_.dropped_unexpected;
      return;
  }
}

void Engine::Impl::handle_response(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                   const IkeHeader& header) {
  if (!sa.outstanding || header.message_id != sa.outstanding->message_id) {
    ++stats_.dropped_message_id;
    return;
  }
  // The answer to a remap check counts only from the endpoint it went to:
  // one relayed from elsewhere (or the old path) proves nothing about it.
  if (sa.outstanding->destination && datagram.remote != *sa.outstanding->destination) {
    ++stats_.remap_answers_wrong_source;
    return;
  }
  auto message = decode_message(datagram.message);
  if (!message) {
    ++stats_.dropped_malformed;
    return;
  }
  std::vector<Payload> opened;
  switch (open_protected(sa, datagram, *message, true, opened)) {
    case Opened::kInner:
      break;
    case Opened::kWaiting:
      return;
    case Opened::kIcvFailed:
      ++stats_.dropped_icv;
      return;
    case Opened::kMalformed:
      ++stats_.dropped_malformed;
      return;
  }
  const std::vector<Payload>* inner = &opened;
  auto legal = policy::check_message(*message, *inner);
  if (!legal) {
    ++stats_.dropped_invalid;
    return;
  }
  sa.last_heard_ns = now();
  // The handlers below may close (free) the SA: only its id is used after.
  const uint64_t id = sa.id;
  OutstandingRequest request = std::move(*sa.outstanding);
  sa.outstanding.reset();
  switch (request.kind) {
    case RequestKind::kIkeAuth:
      initiator_auth_response(sa, request, *inner);
      break;
    case RequestKind::kLiveness:
      break;
    case RequestKind::kDeleteIke:
      close_sa(sa, EngineEventKind::kDeleted, "deleted by us");
      return;
    case RequestKind::kDeleteChild: {
      auto& children = sa.children;
      for (auto it = children.begin(); it != children.end(); ++it) {
        if (it->info.inbound_spi != request.child_inbound_spi) continue;
        remove_child_from_data_plane(*it);
        children.erase(it);
        ++stats_.child_sas_deleted;
        emit(EngineEventKind::kChildDeleted, sa, "child deleted by us");
        break;
      }
      break;
    }
    case RequestKind::kRekeyChild:
      initiator_rekey_child_response(sa, request, *inner);
      break;
    case RequestKind::kRekeyIke:
      initiator_rekey_ike_response(sa, request, *inner);
      return;  // sa may be retired; schedule() done there
    case RequestKind::kIkeSaInit:
      break;
    case RequestKind::kRemapCheck: {
      // RFC 4555 3.6's return routability applied to RFC 7296 2.23: an
      // authenticated answer from the candidate to this very request (its
      // message ID; COOKIE2 echoed when the peer echoes at all).
      const NotifyPayload* echoed = find_notify(*inner, NotifyType::kCookie2);
      if (echoed && echoed->data != request.cookie2) {
        ++stats_.remap_checks_failed;
        break;
      }
      ++stats_.remaps_verified;
      apply_path(sa, request.new_local.value_or(sa.local), *request.destination,
                 request.new_encapsulation.value_or(sa.udp_encapsulation),
                 request.new_local ? "MOBIKE, verified" : "verified");
      break;
    }
    case RequestKind::kMobikeUpdate:
      initiator_update_response(sa, datagram, request, *inner);
      break;
  }
  if (IkeSa* still = find(id)) {
    if (!still->outstanding && still->pending_local_update && still->state == IkeSaState::kEstablished)
      (void)send_update_addresses(*still);
    schedule(*still);
  }
}

// ---------------------------------------------------------------- SK and SKF

Engine::Impl::Opened Engine::Impl::open_protected(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                                  const Message& message, bool response,
                                                  std::vector<Payload>& inner) {
  if (!message.payloads.empty())
    if (const auto* skf = message.payloads.back().get<EncryptedFragmentPayload>())
      return collect_fragment(sa, datagram, message.header, *skf, response, inner);
  bool icv_failed = false;
  auto opened = open_message(datagram.message, message, *sa.in_cipher, &icv_failed);
  if (!opened) return icv_failed ? Opened::kIcvFailed : Opened::kMalformed;
  // The unfragmented form completed first: its fragments are moot (RFC
  // 7383 2.6.1 lets the sender switch between the forms).
  auto& collection = response ? sa.response_fragments : sa.request_fragments;
  if (collection && collection->message_id <= message.header.message_id) drop_fragments(collection);
  inner = std::move(*opened);
  return Opened::kInner;
}

Engine::Impl::Opened Engine::Impl::collect_fragment(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                                    const IkeHeader& header, const EncryptedFragmentPayload& skf,
                                                    bool response, std::vector<Payload>& inner) {
  ++stats_.fragments_received;
  // RFC 7383 2.3: fragments only once both ends announced support.
  if (!sa.fragmentation) {
    ++stats_.fragments_dropped;
    return Opened::kWaiting;
  }
  auto& collection = response ? sa.response_fragments : sa.request_fragments;
  if (collection && now() >= collection->started_ns + kFragmentTimeoutNs) drop_fragments(collection);
  const uint32_t id = header.message_id;
  if (skf.total_fragments > kMaxFragments) {
    ++stats_.fragments_dropped;
    return Opened::kWaiting;
  }
  // Cheap checks before the ICV: an older message, a duplicate, fewer
  // fragments than the collection has (RFC 7383 2.6.1: only a larger Total
  // Fragments restarts it, the sender having lowered its fragment size).
  if (collection && id < collection->message_id) {
    ++stats_.fragments_dropped;
    return Opened::kWaiting;
  }
  if (collection && id == collection->message_id) {
    if (skf.total_fragments < collection->total ||
        (skf.total_fragments == collection->total && collection->have[skf.fragment_number - 1])) {
      ++stats_.fragments_dropped;
      return Opened::kWaiting;
    }
  }
  const EncryptedLayout& layout = skf.layout;
  if (layout.body_offset + layout.body_length > datagram.message.size()) {
    ++stats_.fragments_dropped;
    return Opened::kWaiting;
  }
  // Each fragment carries its own ICV over its own header (RFC 7383 2.5):
  // verified now, so nothing unauthenticated is ever stored.
  std::span<const uint8_t> bytes(datagram.message);
  auto plain = sa.in_cipher->unprotect(bytes.subspan(0, layout.body_offset),
                                       bytes.subspan(layout.body_offset, layout.body_length));
  if (!plain) {
    ++stats_.fragments_dropped;
    return Opened::kIcvFailed;
  }
  if (!collection || collection->message_id != id || skf.total_fragments > collection->total) {
    // A newer message, or the same one cut into more fragments: start over.
    if (collection) drop_fragments(collection);
    collection.emplace();
    collection->message_id = id;
    collection->total = skf.total_fragments;
    collection->pieces.resize(skf.total_fragments);
    collection->have.assign(skf.total_fragments, false);
    collection->started_ns = now();
    ++stats_.fragment_collections;
    schedule(sa);
  }
  if (collection->bytes + plain->size() > kMaxFragmentedMessageBytes) {
    ++stats_.fragments_dropped;
    drop_fragments(collection);
    return Opened::kWaiting;
  }
  const size_t index = skf.fragment_number - 1;
  if (skf.fragment_number == 1) collection->first_inner = skf.first_inner;
  collection->bytes += plain->size();
  stats_.fragment_bytes += plain->size();
  collection->pieces[index] = std::move(*plain);
  collection->have[index] = true;
  if (++collection->received < collection->total) return Opened::kWaiting;

  crypto::SecureBytes whole(collection->bytes);
  size_t at = 0;
  for (const auto& piece : collection->pieces) {
    std::copy(piece.begin(), piece.end(), whole.begin() + at);
    at += piece.size();
  }
  PayloadType first = collection->first_inner;
  drop_fragments(collection);
  ++stats_.fragmented_messages_reassembled;
  auto decoded = decode_payload_chain(first, whole.span());
  if (!decoded) return Opened::kMalformed;
  inner = std::move(*decoded);
  return Opened::kInner;
}

void Engine::Impl::drop_fragments(std::optional<FragmentCollection>& collection) {
  if (!collection) return;
  --stats_.fragment_collections;
  stats_.fragment_bytes -= collection->bytes;
  collection.reset();
}

// ---------------------------------------------------------------- sending

void Engine::Impl::transmit(IkeSa& sa, const Datagrams& datagrams) {
  dp_link::IkeDatagram out;
  out.local = sa.local;
  out.remote = sa.remote;
  // A remap check goes to the candidate endpoint, not the current path.
  if (sa.outstanding && sa.outstanding->destination && &datagrams == &sa.outstanding->datagrams)
    out.remote = *sa.outstanding->destination;
  out.port_id = sa.port_id;
  out.non_esp_marker = sa.local.port == options_.natt_port;
  sa.last_sent_ns = now();
  for (const auto& bytes : datagrams) {
    out.message = bytes;
    if (datagrams.size() > 1) ++stats_.fragments_sent;
    if (!transport_.send(out)) ++stats_.send_errors;
  }
}

void Engine::Impl::send_all(const dp_link::IkeDatagram& request, const Datagrams& datagrams) {
  for (const auto& bytes : datagrams) {
    if (datagrams.size() > 1) ++stats_.fragments_sent;
    if (!transport_.send(request.reply_with(bytes))) ++stats_.send_errors;
  }
}

shared::Result<Datagrams> Engine::Impl::protect(IkeSa& sa, const IkeHeader& header,
                                                const std::vector<Payload>& payloads,
                                                const OuterEndpoint& remote, bool non_esp_marker) {
  crypto::SkCipher& cipher = *sa.out_cipher;
  auto plain = encode_payload_chain(payloads);
  if (!plain) return shared::make_error(plain.error());
  const PayloadType first = payloads.empty() ? PayloadType::kNone : payloads.front().type;
  // RFC 7383 2.5.1: the limit covers the IP and UDP headers (and the
  // non-ESP marker, which travels in the UDP payload).
  size_t overhead = (remote.address.is_ipv4() ? kIpv4HeaderBytes : kIpv6HeaderBytes) + kUdpHeaderBytes +
                    (non_esp_marker ? kNonEspMarkerBytes : 0);
  size_t limit = options_.fragment_size > overhead ? options_.fragment_size - overhead : 0;
  constexpr size_t kSkPrefixBytes = kIkeHeaderSize + kGenericPayloadHeaderSize;
  size_t whole = kSkPrefixBytes + cipher.protected_length(plain->size());
  if (!sa.fragmentation || options_.fragment_size == 0 || whole <= limit) {
    auto prefix = build_sk_prefix(header, first, cipher.protected_length(plain->size()));
    if (!prefix) return shared::make_error(prefix.error());
    auto body = cipher.protect(*prefix, *plain);
    if (!body) return shared::make_error(body.error());
    std::vector<uint8_t> datagram = std::move(*prefix);
    datagram.insert(datagram.end(), body->begin(), body->end());
    return Datagrams{std::move(datagram)};
  }
  // RFC 7383 2.5: each fragment is a message of its own (same header and
  // message ID, Fragment Number 1..N), encrypted separately; only fragment
  // 1 names the first inner payload. The largest plaintext piece whose
  // fragment fits:
  constexpr size_t kSkfPrefixBytes = kSkPrefixBytes + kSkfFieldsSize;
  size_t fixed = kSkfPrefixBytes + cipher.iv_length() + cipher.icv_length() + 1;  // + Pad Length
  if (limit <= fixed + cipher.block_size())
    return shared::make_error("fragment_size " + std::to_string(options_.fragment_size) + " leaves no room for data");
  size_t piece = limit - fixed;
  while (piece > 0 && kSkfPrefixBytes + cipher.protected_length(piece) > limit) --piece;
  if (piece == 0) return shared::make_error("fragment_size leaves no room for data");
  size_t count = (plain->size() + piece - 1) / piece;
  if (count > 0xffff) return shared::make_error("message too large for 65535 fragments");
  Datagrams out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    std::span<const uint8_t> chunk(plain->data() + i * piece, std::min(piece, plain->size() - i * piece));
    auto prefix = build_skf_prefix(header, i == 0 ? first : PayloadType::kNone, uint16_t(i + 1), uint16_t(count),
                                   cipher.protected_length(chunk.size()));
    if (!prefix) return shared::make_error(prefix.error());
    // AAD: this fragment's own header bytes (RFC 7383 2.5).
    auto body = cipher.protect(*prefix, chunk);
    if (!body) return shared::make_error(body.error());
    std::vector<uint8_t> datagram = std::move(*prefix);
    datagram.insert(datagram.end(), body->begin(), body->end());
    out.push_back(std::move(datagram));
  }
  return out;
}

void Engine::Impl::send_response(IkeSa& sa, const dp_link::IkeDatagram& request,
                                 const IkeHeader& header, const std::vector<Payload>& payloads) {
  IkeHeader out;
  out.spi_i = sa.spi_i;
  out.spi_r = sa.spi_r;
  out.exchange = header.exchange;
  out.flags = kFlagResponse | (sa.initiator ? kFlagInitiator : 0);
  out.message_id = header.message_id;
  auto datagrams = protect(sa, out, payloads, request.remote, request.non_esp_marker);
  if (!datagrams) {
    ++stats_.send_errors;
    return;
  }
  sa.last_response = std::move(*datagrams);
  sa.last_response_id = header.message_id;
  sa.have_last_response = true;
  sa.expected_request_id = header.message_id + 1;
  sa.last_sent_ns = now();
  send_all(request, sa.last_response);
}

void Engine::Impl::send_unprotected_error(const dp_link::IkeDatagram& request,
                                          const IkeHeader& header, NotifyPayload notify) {
  Message reply;
  reply.header.spi_i = header.spi_i;
  reply.header.spi_r = 0;
  reply.header.exchange = header.exchange;
  reply.header.flags = kFlagResponse;
  reply.header.message_id = header.message_id;
  reply.payloads.push_back(make_payload(std::move(notify)));
  auto bytes = encode_message(reply);
  if (!bytes || !transport_.send(request.reply_with(std::move(*bytes)))) ++stats_.send_errors;
}

shared::Status Engine::Impl::send_request(IkeSa& sa, RequestKind kind, ExchangeType exchange,
                                          const std::vector<Payload>& payloads,
                                          OutstandingRequest extra) {
  if (sa.outstanding) return shared::make_error("an exchange of this IKE SA is in progress");
  IkeHeader header;
  header.spi_i = sa.spi_i;
  header.spi_r = sa.spi_r;
  header.exchange = exchange;
  header.flags = sa.initiator ? kFlagInitiator : 0;
  header.message_id = sa.next_request_id;
  shared::Result<Datagrams> datagrams = Datagrams{};
  if (exchange == ExchangeType::kIkeSaInit) {
    Message message;
    message.header = header;
    message.payloads = payloads;
    auto bytes = encode_message(message);
    if (!bytes) return shared::make_error(bytes.error());
    datagrams = Datagrams{std::move(*bytes)};
  } else {
    datagrams = protect(sa, header, payloads, sa.remote, sa.local.port == options_.natt_port);
  }
  if (!datagrams) return shared::make_error(datagrams.error());
  ++sa.next_request_id;
  extra.kind = kind;
  extra.message_id = header.message_id;
  extra.datagrams = std::move(*datagrams);
  extra.tries = 0;
  extra.first_sent_ns = now();
  extra.next_send_ns = now() + uint64_t(options_.retransmit_timeout_ms) * kNsPerMs;
  sa.outstanding = std::move(extra);
  transmit(sa, sa.outstanding->datagrams);
  schedule(sa);
  return {};
}

// ---------------------------------------------------------------- timers

void Engine::Impl::schedule(IkeSa& sa) {
  uint64_t deadline = 0;
  auto consider = [&deadline](uint64_t at) {
    if (at != 0 && (deadline == 0 || at < deadline)) deadline = at;
  };
  if (sa.outstanding) consider(sa.outstanding->next_send_ns);
  consider(sa.retire_at_ns);
  if (sa.request_fragments) consider(sa.request_fragments->started_ns + kFragmentTimeoutNs);
  if (sa.response_fragments) consider(sa.response_fragments->started_ns + kFragmentTimeoutNs);
  if (sa.state == IkeSaState::kHalfOpen || sa.state == IkeSaState::kInitSent ||
      sa.state == IkeSaState::kAuthSent)
    consider(sa.created_ns + uint64_t(options_.half_open_timeout_s) * kNsPerSecond);
  if (sa.state == IkeSaState::kEstablished && sa.profile) {
    const auto& section = *sa.profile->section;
    if (!sa.outstanding) {
      if (section.dpd_interval_s)
        consider(sa.last_heard_ns + uint64_t(section.dpd_interval_s) * kNsPerSecond);
      if (section.nat_keepalive_s && sa.local_behind_nat)
        consider(sa.last_sent_ns + uint64_t(section.nat_keepalive_s) * kNsPerSecond);
      consider(sa.rekey_at_ns);
      for (const auto& child : sa.children) {
        consider(child.info.rekey_at_ns);
        consider(child.retire_at_ns);
      }
    }
  }
  if (deadline != 0 && deadline != sa.armed_ns) {
    sa.armed_ns = deadline;
    timers_.emplace(deadline, sa.id);
  }
}

void Engine::Impl::on_timer(IkeSa& sa) {
  uint64_t t = now();
  const uint64_t id = sa.id;  // the SA may be closed (freed) below
  sa.armed_ns = 0;
  for (auto* collection : {&sa.request_fragments, &sa.response_fragments})
    if (*collection && t >= (*collection)->started_ns + kFragmentTimeoutNs) drop_fragments(*collection);
  if (sa.retire_at_ns != 0 && t >= sa.retire_at_ns) {
    close_sa(sa, EngineEventKind::kDeleted,
             sa.rekeyed ? "rekeyed IKE SA retired" : "no answer to our DELETE");
    return;
  }
  if (sa.outstanding && t >= sa.outstanding->next_send_ns) {
    auto& request = *sa.outstanding;
    // A liveness check is retransmitted until the profile's dpd_timeout_s
    // has passed unanswered; other requests get retransmit_tries.
    bool liveness_check = request.kind == RequestKind::kLiveness && sa.profile;
    uint64_t dead_at = liveness_check
                           ? request.first_sent_ns + uint64_t(sa.profile->section->dpd_timeout_s) * kNsPerSecond
                           : 0;
    bool exhausted = liveness_check ? t >= dead_at : request.tries + 1 >= options_.retransmit_tries + 1;
    if (request.kind == RequestKind::kMobikeUpdate && exhausted && !request.probe_addresses.empty()) {
      // Path probing (RFC 4555 3.5): the peer's next address.
      ++stats_.mobike_paths_probed;
      sa.remote.address = request.probe_addresses.front();
      request.probe_addresses.erase(request.probe_addresses.begin());
      request.tries = 0;
      request.next_send_ns = t + uint64_t(options_.retransmit_timeout_ms) * kNsPerMs;
      transmit(sa, request.datagrams);
      schedule(sa);
      return;
    }
    if (request.kind == RequestKind::kRemapCheck) {
      // The candidate never answered (a check is sent once: a real device's
      // traffic brings the next signal; an attacker's gets one datagram a
      // second at most): traffic stays on the current path.
      // The request's message ID is spent, though, and the peer may never
      // have seen it: it becomes a liveness check on the current path, so
      // the window moves on (or the peer is found dead there).
      ++stats_.remap_checks_failed;
      request.kind = RequestKind::kLiveness;
      request.destination.reset();
      request.new_local.reset();
      request.new_encapsulation.reset();
      request.tries = 0;
      request.first_sent_ns = t;
      request.next_send_ns = t + uint64_t(options_.retransmit_timeout_ms) * kNsPerMs;
      transmit(sa, request.datagrams);
      schedule(sa);
      return;
    }
    if (exhausted) {
      bool liveness = request.kind == RequestKind::kLiveness;
      if (liveness) ++stats_.liveness_failures;
      bool setup = request.kind == RequestKind::kIkeSaInit || request.kind == RequestKind::kIkeAuth;
      close_sa(sa, setup ? EngineEventKind::kFailed : EngineEventKind::kDeleted,
               liveness ? "peer dead (no answer to liveness checks)"
                        : "no answer after " + std::to_string(request.tries + 1) + " transmissions");
      return;
    }
    ++request.tries;
    ++stats_.retransmitted_requests;
    double delay = double(options_.retransmit_timeout_ms) * std::pow(options_.retransmit_base, request.tries);
    request.next_send_ns = t + uint64_t(delay) * kNsPerMs;
    if (liveness_check && request.next_send_ns > dead_at) request.next_send_ns = dead_at;
    transmit(sa, request.datagrams);
  }
  if ((sa.state == IkeSaState::kHalfOpen || sa.state == IkeSaState::kInitSent ||
       sa.state == IkeSaState::kAuthSent) &&
      t >= sa.created_ns + uint64_t(options_.half_open_timeout_s) * kNsPerSecond) {
    ++stats_.half_open_expired;
    close_sa(sa, EngineEventKind::kFailed, "half-open IKE SA timed out");
    return;
  }
  if (sa.state == IkeSaState::kEstablished && sa.profile && !sa.outstanding && sa.pending_local_update)
    (void)send_update_addresses(sa);
  if (sa.state == IkeSaState::kEstablished && sa.profile && !sa.outstanding) {
    const auto& section = *sa.profile->section;
    // Rekeyed children the peer did not delete: we do.
    for (auto& child : sa.children) {
      if (child.retire_at_ns != 0 && t >= child.retire_at_ns && !sa.outstanding) {
        child.retire_at_ns = 0;
        complete_rekey_outbound(sa, child.info.inbound_spi);
        DeletePayload del;
        del.protocol = ProtocolId::kEsp;
        del.spi_size = 4;
        uint32_t spi = child.info.inbound_spi;
        del.spis.push_back({uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)});
        OutstandingRequest extra;
        extra.child_inbound_spi = spi;
        (void)send_request(sa, RequestKind::kDeleteChild, ExchangeType::kInformational,
                           {make_payload(std::move(del))}, std::move(extra));
      }
    }
    if (!sa.outstanding && sa.rekey_at_ns != 0 && t >= sa.rekey_at_ns) {
      sa.rekey_at_ns = 0;
      if (section.reauthenticate)
        (void)terminate(sa.id);
      else
        (void)rekey_ike(sa.id);
    }
    if (!sa.outstanding) {
      for (auto& child : sa.children) {
        if (child.info.rekey_at_ns != 0 && t >= child.info.rekey_at_ns && !child.rekeyed && !child.rekeying) {
          child.info.rekey_at_ns = 0;
          // rekey_child takes the first live child; move this one first.
          std::swap(child, sa.children.front());
          (void)rekey_child(sa.id);
          break;
        }
      }
    }
    // RFC 3948 4: behind a NAT, a quiet IKE SA keeps its mapping open with
    // one-byte 0xFF datagrams to the peer's NAT-T port (no marker).
    if (section.nat_keepalive_s && sa.local_behind_nat &&
        t >= sa.last_sent_ns + uint64_t(section.nat_keepalive_s) * kNsPerSecond) {
      dp_link::IkeDatagram keepalive;
      keepalive.local = sa.local;
      keepalive.remote = sa.remote;
      keepalive.port_id = sa.port_id;
      keepalive.non_esp_marker = false;
      keepalive.message = {0xff};
      sa.last_sent_ns = t;
      ++stats_.nat_keepalives_sent;
      if (!transport_.send(keepalive)) ++stats_.send_errors;
    }
    if (!sa.outstanding && section.dpd_interval_s &&
        t >= sa.last_heard_ns + uint64_t(section.dpd_interval_s) * kNsPerSecond)
      (void)send_request(sa, RequestKind::kLiveness, ExchangeType::kInformational, {});
  }
  if (IkeSa* still = find(id)) schedule(*still);
}

void Engine::Impl::poll() {
  // Data-plane completions first: an answer that waits for one goes out now.
  for (size_t n = pending_.size(); n > 0; --n) {
    PendingInstall pending = std::move(pending_.front());
    pending_.pop_front();
    bool ready = std::all_of(pending.results.begin(), pending.results.end(), [](auto& f) {
      return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
    if (!ready) {
      pending_.push_back(std::move(pending));
      continue;
    }
    bool ok = true;
    std::string why;
    for (auto& future : pending.results) {
      auto result = future.get();
      if (!result.ok() && ok) {
        ok = false;
        why = result.to_string();
      }
    }
    if (!ok) ++stats_.install_failures;
    pending.done(ok, why);
  }
  stats_.half_open = half_open_.size();
  stats_.established = sas_.size() - half_open_.size();
  while (!removals_.empty() &&
         removals_.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready)
    removals_.pop_front();
  uint64_t t = now();
  while (!timers_.empty() && timers_.top().first <= t) {
    auto [deadline, id] = timers_.top();
    timers_.pop();
    IkeSa* sa = find(id);
    if (sa == nullptr || sa->armed_ns != deadline) continue;
    on_timer(*sa);
  }
}

uint64_t Engine::Impl::next_deadline_ns() const {
  return timers_.empty() ? 0 : timers_.top().first;
}

// ---------------------------------------------------------------- life cycle

IkeSa& Engine::Impl::create_sa(bool initiator) {
  auto sa = std::make_unique<IkeSa>();
  sa->id = next_id_++;
  sa->lease_owner = sa->id;
  sa->initiator = initiator;
  sa->original_initiator = initiator;
  sa->created_ns = now();
  sa->last_heard_ns = sa->created_ns;
  IkeSa& ref = *sa;
  sas_.emplace(ref.id, std::move(sa));
  return ref;
}

IkeSa* Engine::Impl::find(uint64_t id) {
  auto it = sas_.find(id);
  return it == sas_.end() ? nullptr : it->second.get();
}

const IkeSa* Engine::Impl::find(uint64_t id) const {
  auto it = sas_.find(id);
  return it == sas_.end() ? nullptr : it->second.get();
}

std::string Engine::Impl::peer_key(const IdPayload& id) {
  std::string key(1, char(id.type));
  key.append(id.data.begin(), id.data.end());
  return key;
}

void Engine::Impl::index_peer(IkeSa& sa) {
  if (sa.peer_indexed || sa.peer_id.data.empty()) return;
  by_peer_.emplace(peer_key(sa.peer_id), sa.id);
  sa.peer_indexed = true;
}

void Engine::Impl::unindex_peer(IkeSa& sa) {
  if (!sa.peer_indexed) return;
  auto [first, last] = by_peer_.equal_range(peer_key(sa.peer_id));
  for (auto it = first; it != last; ++it)
    if (it->second == sa.id) {
      by_peer_.erase(it);
      break;
    }
  sa.peer_indexed = false;
}

void Engine::Impl::replace_older_sas_of_peer(IkeSa& sa) {
  // RFC 7296 2.4: a peer that sends INITIAL_CONTACT has no other IKE SA
  // with us: what we still hold for its identity (a device that rebooted
  // behind its NAT) goes now, children and leases with it, rather than
  // when liveness finally notices.
  std::vector<uint64_t> older;
  auto [first, last] = by_peer_.equal_range(peer_key(sa.peer_id));
  for (auto it = first; it != last; ++it)
    if (it->second != sa.id) older.push_back(it->second);
  for (uint64_t id : older) {
    IkeSa* old = find(id);
    if (old == nullptr || old->profile != sa.profile) continue;
    ++stats_.initial_contact_replaced;
    close_sa(*old, EngineEventKind::kDeleted, "replaced: the peer started again (INITIAL_CONTACT)");
  }
}

void Engine::Impl::establish(IkeSa& sa) {
  sa.state = IkeSaState::kEstablished;
  sa.established_ns = now();
  ++stats_.ike_sas_established;
  const auto& section = *sa.profile->section;
  uint64_t margin = uint64_t(section.rekey_margin_s) * kNsPerSecond;
  uint64_t jitter = random_below(uint64_t(section.rekey_jitter_s) * kNsPerSecond + 1);
  sa.rekey_at_ns = sa.established_ns + uint64_t(section.ike_lifetime_s) * kNsPerSecond - margin - jitter;
  for (auto& child : sa.children)
    if (child.info.rekey_at_ns == 0 && !child.rekeyed)
      child.info.rekey_at_ns = sa.established_ns + uint64_t(section.child_lifetime_s) * kNsPerSecond -
                               margin - random_below(uint64_t(section.rekey_jitter_s) * kNsPerSecond + 1);
  leave_half_open(sa);
  emit(EngineEventKind::kEstablished, sa, sa.peer_id_text);
  schedule(sa);
}

void Engine::Impl::leave_half_open(IkeSa& sa) {
  if (!sa.half_open_indexed) return;
  half_open_.erase({sa.spi_i, sa.init_remote.address, sa.init_remote.port});
  sa.half_open_indexed = false;
}

void Engine::Impl::close_sa(IkeSa& sa, EngineEventKind kind, const std::string& why) {
  if (sa.state == IkeSaState::kEstablished || sa.state == IkeSaState::kDeleting)
    ++stats_.ike_sas_deleted;
  else if (kind == EngineEventKind::kFailed)
    ++stats_.ike_sas_failed;
  for (const auto& child : sa.children) {
    remove_child_from_data_plane(child);
    ++stats_.child_sas_deleted;
  }
  sa.children.clear();
  if (!sa.rekeyed && sa.profile) {
    if (sa.profile->pool4) sa.profile->pool4->release(sa.lease_owner);
    if (sa.profile->pool6) sa.profile->pool6->release(sa.lease_owner);
  }
  drop_fragments(sa.request_fragments);
  drop_fragments(sa.response_fragments);
  sa.state = IkeSaState::kClosed;
  emit(kind, sa, why);
  leave_half_open(sa);
  unindex_peer(sa);
  if (auto t = by_tunnel_.find(sa.tunnel_id); t != by_tunnel_.end() && t->second == sa.id) by_tunnel_.erase(t);
  by_local_spi_.erase(sa.initiator ? sa.spi_i : sa.spi_r);
  sas_.erase(sa.id);  // sa is gone from here on
}

void Engine::Impl::emit(EngineEventKind kind, const IkeSa& sa, const std::string& detail) {
  if (!event_handler_) return;
  EngineEvent event;
  event.kind = kind;
  event.ike_sa = sa.id;
  event.detail = detail;
  if (sa.lease4) event.internal_ip4 = sa.lease4->address;
  event.remote = sa.remote;
  event_handler_(event);
}

// ---------------------------------------------------------------- child SAs

uint32_t Engine::Impl::allocate_inbound_spi() {
  uint32_t mask = options_.inbound_spi_index_bits >= 32 ? 0xffffffffu
                                                        : (1u << options_.inbound_spi_index_bits) - 1;
  for (int attempt = 0; attempt < 1024; ++attempt) {
    auto spi = crypto::make_esp_spi();
    if (!spi) continue;
    uint32_t index = *spi & mask;
    if (inbound_indices_.count(index)) continue;
    inbound_indices_.insert(index);
    return *spi;
  }
  // A nearly full index space: take the first free index with random high bits.
  for (uint32_t index = 0; index <= mask; ++index) {
    if (inbound_indices_.count(index)) continue;
    uint32_t high = uint32_t(random_below(uint64_t(1) << 32)) & ~mask;
    uint32_t spi = high | index;
    if (spi < 256) spi |= (mask + 1) != 0 ? (mask + 1) : 256;
    inbound_indices_.insert(index);
    return spi;
  }
  return 0;
}

void Engine::Impl::release_inbound_spi(uint32_t spi) {
  uint32_t mask = options_.inbound_spi_index_bits >= 32 ? 0xffffffffu
                                                        : (1u << options_.inbound_spi_index_bits) - 1;
  inbound_indices_.erase(spi & mask);
}

shared::PathDescriptor Engine::Impl::path_of(const IkeSa& sa) const {
  shared::PathDescriptor path;
  path.local = sa.local.address;
  path.remote = sa.remote.address;
  path.local_port = options_.natt_port;
  path.remote_port = sa.remote.port;
  path.udp_encapsulation = sa.udp_encapsulation;
  return path;
}

shared::Result<std::vector<std::future<dp_link::CommandResult>>> Engine::Impl::install_child(
    IkeSa& sa, ChildSa& child, const crypto::ChildSaKeys& keys, bool we_are_initiator, Install directions) {
  const auto& section = *sa.profile->section;
  const auto& properties = shared::properties(child.info.algorithm);
  auto fill = [&](shared::SaDescriptor& d, uint32_t spi, shared::SaDirection direction,
                  const crypto::SecureBytes& encr, const crypto::SecureBytes& integ) -> shared::Status {
    d.spi = spi;
    d.direction = direction;
    d.algorithm = child.info.algorithm;
    d.esn = child.info.esn;
    d.replay_window = section.replay_window;
    d.tunnel_id = sa.tunnel_id;
    if (encr.size() != size_t(properties.cipher_key_length) + properties.salt_length ||
        integ.size() < properties.integrity_key_length)
      return shared::make_error("child SA key material of the wrong size");
    std::copy_n(encr.begin(), properties.cipher_key_length, d.cipher_key.begin());
    std::copy_n(encr.begin() + properties.cipher_key_length, properties.salt_length, d.salt.begin());
    std::copy_n(integ.begin(), properties.integrity_key_length, d.integrity_key.begin());
    d.path = path_of(sa);
    d.local_selector_count = uint8_t(std::min<size_t>(child.info.local_ts.size(), shared::kMaxSelectors));
    d.remote_selector_count = uint8_t(std::min<size_t>(child.info.remote_ts.size(), shared::kMaxSelectors));
    std::copy_n(child.info.local_ts.begin(), d.local_selector_count, d.local_selectors.begin());
    std::copy_n(child.info.remote_ts.begin(), d.remote_selector_count, d.remote_selectors.begin());
    if (section.child_lifetime_bytes) {
      d.lifetime.hard_bytes = section.child_lifetime_bytes;
      d.lifetime.soft_bytes = section.child_lifetime_bytes / 10 * 9;
    }
    if (section.child_lifetime_packets) {
      d.lifetime.hard_packets = section.child_lifetime_packets;
      d.lifetime.soft_packets = section.child_lifetime_packets / 10 * 9;
    }
    d.set_name(section.name);
    return {};
  };
  // i2r keys protect what the initiator sends: the responder's inbound SA.
  const auto& in_encr = we_are_initiator ? keys.encr_r2i : keys.encr_i2r;
  const auto& in_integ = we_are_initiator ? keys.integ_r2i : keys.integ_i2r;
  const auto& out_encr = we_are_initiator ? keys.encr_i2r : keys.encr_r2i;
  const auto& out_integ = we_are_initiator ? keys.integ_i2r : keys.integ_r2i;
  shared::SaDescriptor inbound{};
  shared::SaDescriptor outbound{};
  auto filled_in = fill(inbound, child.info.inbound_spi, shared::SaDirection::kInbound, in_encr, in_integ);
  auto filled_out = fill(outbound, child.info.outbound_spi, shared::SaDirection::kOutbound, out_encr, out_integ);
  if (!filled_in || !filled_out) {
    shared::secure_zero(inbound);
    shared::secure_zero(outbound);
    return shared::make_error(!filled_in ? filled_in.error() : filled_out.error());
  }
  std::vector<std::future<dp_link::CommandResult>> results;
  if (directions == Install::kOutboundOnly) {
    shared::secure_zero(inbound);
    auto only = installer_.install(outbound);
    shared::secure_zero(outbound);
    if (!only) return shared::make_error("install outbound SA: " + only.error());
    results.push_back(std::move(*only));
    return results;
  }
  auto first = installer_.install(inbound);
  shared::secure_zero(inbound);
  if (!first) {
    shared::secure_zero(outbound);
    return shared::make_error("install inbound SA: " + first.error());
  }
  results.push_back(std::move(*first));
  if (directions == Install::kInboundOnly) {
    shared::secure_zero(outbound);
    return results;
  }
  auto second = installer_.install(outbound);
  shared::secure_zero(outbound);
  if (!second) {
    // The inbound one may land: take it out again.
    removals_.push_back(std::move(results.front()));
    if (auto removed = installer_.remove(child.info.inbound_spi, shared::SaDirection::kInbound))
      removals_.push_back(std::move(*removed));
    return shared::make_error("install outbound SA: " + second.error());
  }
  results.push_back(std::move(*second));
  return results;
}

void Engine::Impl::remove_child_from_data_plane(const ChildSa& child) {
  if (child.info.installed) {
    if (auto removed = installer_.remove(child.info.inbound_spi, shared::SaDirection::kInbound))
      removals_.push_back(std::move(*removed));
    if (child.outbound_installed)
      if (auto removed = installer_.remove(child.info.outbound_spi, shared::SaDirection::kOutbound))
        removals_.push_back(std::move(*removed));
  }
  release_inbound_spi(child.info.inbound_spi);
}

void Engine::Impl::complete_rekey_outbound(IkeSa& sa, uint32_t old_inbound_spi) {
  for (auto& child : sa.children) {
    if (child.replaces_inbound_spi != old_inbound_spi || child.outbound_installed || !child.pending_keys) continue;
    // Sent before the old SA's removal: the data plane handles commands in
    // order, so the tunnel always has an outbound SA.
    auto results = install_child(sa, child, *child.pending_keys, false, Install::kOutboundOnly);
    child.pending_keys.reset();
    child.outbound_installed = true;
    if (!results) {
      ++stats_.install_failures;
      emit(EngineEventKind::kFailed, sa, "rekeyed child's outbound SA: " + results.error());
      continue;
    }
    for (auto& result : *results) removals_.push_back(std::move(result));
  }
}

void Engine::Impl::wait_for(uint64_t ike_sa, std::vector<std::future<dp_link::CommandResult>> results,
                            std::function<void(bool ok, const std::string& why)> done) {
  PendingInstall pending;
  pending.ike_sa = ike_sa;
  pending.results = std::move(results);
  pending.done = std::move(done);
  pending_.push_back(std::move(pending));
}

IkeSa* Engine::Impl::sa_of_child(uint32_t spi, shared::SaDirection direction, uint32_t tunnel_id) {
  auto owns = [&](const IkeSa& sa) {
    if (sa.rekeyed) return false;
    for (const auto& child : sa.children)
      if ((direction == shared::SaDirection::kInbound ? child.info.inbound_spi : child.info.outbound_spi) == spi)
        return true;
    return false;
  };
  if (tunnel_id != 0) {
    auto it = by_tunnel_.find(tunnel_id);
    IkeSa* sa = it == by_tunnel_.end() ? nullptr : find(it->second);
    return sa && owns(*sa) ? sa : nullptr;
  }
  // Without a tunnel id (tests, older callers): a scan.
  for (auto& [id, sa] : sas_)
    if (owns(*sa)) return sa.get();
  return nullptr;
}

void Engine::Impl::on_sa_condition(uint32_t spi, shared::SaDirection direction, Engine::SaCondition condition,
                                   uint32_t tunnel_id) {
  if (IkeSa* sa = sa_of_child(spi, direction, tunnel_id); sa && sa->state == IkeSaState::kEstablished) {
    for (auto& child : sa->children) {
      uint32_t mine = direction == shared::SaDirection::kInbound ? child.info.inbound_spi : child.info.outbound_spi;
      if (mine != spi || !child.info.installed) continue;
      if (child.rekeyed || child.rekeying) return;  // replaced, or being replaced
      if (condition == Engine::SaCondition::kRekeyWanted) {
        ++stats_.data_plane_rekeys;
        child.info.rekey_at_ns = now();
      } else {
        ++stats_.data_plane_expiries;
        child.rekeyed = true;  // nothing to rekey any more: it is stopped
        child.info.rekey_at_ns = 0;
        child.retire_at_ns = now();
      }
      sa->armed_ns = 0;
      schedule(*sa);
      return;
    }
  }
  ++stats_.unknown_sa_conditions;
}

void Engine::Impl::on_new_source(uint32_t inbound_spi, const OuterEndpoint& from, uint32_t tunnel_id) {
  if (IkeSa* sa = sa_of_child(inbound_spi, shared::SaDirection::kInbound, tunnel_id)) {
    remap_signal(*sa, from, "ESP");
    return;
  }
  ++stats_.unknown_sa_conditions;
}

// ---------------------------------------------------------------- observation

IkeSaInfo Engine::Impl::info_of(const IkeSa& sa) const {
  IkeSaInfo info;
  info.id = sa.id;
  info.spi_i = sa.spi_i;
  info.spi_r = sa.spi_r;
  info.initiator = sa.initiator;
  info.state = sa.state;
  info.local = sa.local;
  info.remote = sa.remote;
  info.peer_id = sa.peer_id_text;
  info.profile = sa.profile ? sa.profile->section->name : "";
  info.peer_behind_nat = sa.peer_behind_nat;
  info.local_behind_nat = sa.local_behind_nat;
  info.udp_encapsulation = sa.udp_encapsulation;
  info.mobike_supported = sa.mobike;
  info.peer_additional_addresses = sa.peer_additional_addresses;
  info.moves = sa.moves;
  info.fragmentation = sa.fragmentation;
  if (sa.lease4) info.internal_ip4 = sa.lease4->address;
  if (sa.lease6) info.internal_ip6 = sa.lease6->address;
  info.tunnel_id = sa.tunnel_id;
  if (sa.proposal) info.ike_algorithms = describe(*sa.proposal);
  info.established_ns = sa.established_ns;
  info.rekey_at_ns = sa.rekey_at_ns;
  info.nat_info = sa.nat_info;
  for (const auto& child : sa.children) info.children.push_back(child.info);
  return info;
}

std::vector<IkeSaInfo> Engine::Impl::ike_sas() const {
  std::vector<IkeSaInfo> out;
  out.reserve(sas_.size());
  for (const auto& [id, sa] : sas_) out.push_back(info_of(*sa));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::optional<IkeSaInfo> Engine::Impl::ike_sa(uint64_t id) const {
  const IkeSa* sa = find(id);
  if (sa == nullptr) return std::nullopt;
  return info_of(*sa);
}

// ---------------------------------------------------------------- Engine

shared::Result<std::unique_ptr<Engine>> Engine::create(const config::ControlPlaneConfig& config,
                                                       const EngineOptions& options,
                                                       dp_link::IkeTransport& transport,
                                                       dp_link::SaInstaller& installer, Clock clock) {
  auto impl = std::make_unique<Impl>(config, options, transport, installer, std::move(clock));
  auto loaded = impl->load();
  if (!loaded) return shared::make_error(loaded.error());
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
void Engine::handle_datagram(const dp_link::IkeDatagram& datagram) { impl_->handle_datagram(datagram); }
void Engine::poll() { impl_->poll(); }
uint64_t Engine::next_deadline_ns() const { return impl_->next_deadline_ns(); }
shared::Result<uint64_t> Engine::initiate(const InitiateRequest& request) { return impl_->initiate(request); }
shared::Status Engine::terminate(uint64_t id) { return impl_->terminate(id); }
shared::Status Engine::rekey_child(uint64_t id) { return impl_->rekey_child(id); }
shared::Status Engine::rekey_ike(uint64_t id) { return impl_->rekey_ike(id); }
std::vector<IkeSaInfo> Engine::ike_sas() const { return impl_->ike_sas(); }
size_t Engine::ike_sa_count() const { return impl_->ike_sa_count(); }
void Engine::on_new_source(uint32_t inbound_spi, const OuterEndpoint& from, uint32_t tunnel_id) {
  impl_->on_new_source(inbound_spi, from, tunnel_id);
}
void Engine::on_sa_condition(uint32_t spi, shared::SaDirection direction, SaCondition condition,
                             uint32_t tunnel_id) {
  impl_->on_sa_condition(spi, direction, condition, tunnel_id);
}
std::optional<IkeSaInfo> Engine::ike_sa(uint64_t id) const { return impl_->ike_sa(id); }
const EngineStats& Engine::stats() const { return impl_->stats(); }
const config::ControlPlaneConfig& Engine::config() const { return impl_->config(); }
void Engine::set_event_handler(std::function<void(const EngineEvent&)> handler) {
  impl_->set_event_handler(std::move(handler));
}

}  // namespace segw::cp::ike
