// The IKEv2 exchanges (RFC 7296 1.2-1.5): IKE_SA_INIT and IKE_AUTH as
// responder and initiator, CREATE_CHILD_SA (new child, child rekey, IKE SA
// rekey) and INFORMATIONAL (delete, liveness), both ways.
#include <openssl/evp.h>

#include <algorithm>

#include "controlplane/crypto/nat_detection.h"
#include "controlplane/crypto/random.h"
#include "controlplane/ike/engine/engine.h"
#include "controlplane/ike/engine/engine_impl.h"
#include "controlplane/ike/engine/engine_support.h"
#include "controlplane/policy/message_rules.h"

namespace segw::cp::ike {

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;

// Hashes we accept in RFC 7427 signatures, announced in
// SIGNATURE_HASH_ALGORITHMS.
constexpr HashAlgorithm kOurHashes[] = {HashAlgorithm::kSha2_256, HashAlgorithm::kSha2_384,
                                        HashAlgorithm::kSha2_512};
constexpr crypto::HashAlgorithm kOurCryptoHashes[] = {
    crypto::HashAlgorithm::kSha256, crypto::HashAlgorithm::kSha384, crypto::HashAlgorithm::kSha512};

template <typename T>
const T* find_body(std::span<const Payload> payloads, PayloadType type) {
  for (const auto& payload : payloads)
    if (payload.type == type) return payload.get<T>();
  return nullptr;
}

std::vector<uint8_t> spi_bytes(uint32_t spi) {
  return {uint8_t(spi >> 24), uint8_t(spi >> 16), uint8_t(spi >> 8), uint8_t(spi)};
}

uint32_t spi_value(std::span<const uint8_t> bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4 && i < bytes.size(); ++i) value = (value << 8) | bytes[i];
  return value;
}

crypto::PrfAlgorithm prf_of(const policy::SelectedProposal& selected) {
  return static_cast<crypto::PrfAlgorithm>(selected.prf.value_or(PrfId::kHmacSha2_256));
}

std::string id_text(const IdPayload& id) {
  switch (id.type) {
    case IdType::kIpv4Address:
      if (id.data.size() == 4) return shared::IpAddress::from_ipv4_bytes(id.data.data()).to_string();
      break;
    case IdType::kIpv6Address:
      if (id.data.size() == 16) return shared::IpAddress::from_ipv6_bytes(id.data.data()).to_string();
      break;
    case IdType::kFqdn:
    case IdType::kRfc822Address: {
      std::string text;
      for (uint8_t c : id.data) text.push_back(c >= 0x20 && c < 0x7f ? char(c) : '?');
      return text;
    }
    case IdType::kDerAsn1Dn: {
      const unsigned char* p = id.data.data();
      X509_NAME* name = d2i_X509_NAME(nullptr, &p, long(id.data.size()));
      if (name == nullptr) break;
      char buffer[512];
      X509_NAME_oneline(name, buffer, sizeof buffer);
      X509_NAME_free(name);
      return buffer;
    }
    default:
      break;
  }
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (uint8_t c : id.data) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return to_string(id.type) + ":" + hex;
}

shared::TrafficSelector any_of(shared::IpFamily family) {
  return to_shared(make_any_selector(family));
}

shared::TrafficSelector lease_selector(const policy::Lease& lease) {
  shared::IpPrefix prefix{lease.address, lease.prefix_length};
  return shared::TrafficSelector::from_prefix(prefix);
}

}  // namespace

// ------------------------------------------------------------ IKE_SA_INIT

void Engine::Impl::responder_init(const dp_link::IkeDatagram& datagram, const IkeHeader& header) {
  auto half = half_open_.find({header.spi_i, datagram.remote.address, datagram.remote.port});
  if (half != half_open_.end()) {
    IkeSa* sa = find(half->second);
    if (sa && sa->state == IkeSaState::kHalfOpen && sa->init_request == datagram.message) {
      ++stats_.retransmitted_responses;
      if (!transport_.send(datagram.reply_with(sa->init_response))) ++stats_.send_errors;
    } else {
      ++stats_.dropped_unexpected;
    }
    return;
  }
  DecodeFailure failure;
  auto message = decode_message(datagram.message, &failure);
  if (!message) {
    ++stats_.dropped_malformed;
    if (failure.kind == DecodeFailureKind::kUnsupportedCriticalPayload) {
      NotifyPayload notify = make_notify(NotifyType::kUnsupportedCriticalPayload, {failure.payload_type});
      send_unprotected_error(datagram, header, std::move(notify));
    }
    return;
  }
  if (auto legal = policy::check_message(*message, {}); !legal) {
    ++stats_.dropped_invalid;
    return;
  }
  const auto& payloads = message->payloads;
  const auto* sa_payload = find_body<SaPayload>(payloads, PayloadType::kSecurityAssociation);
  const auto* ke = find_body<KePayload>(payloads, PayloadType::kKeyExchange);
  const auto* nonce = find_body<NoncePayload>(payloads, PayloadType::kNonce);
  if (!sa_payload || !ke || !nonce) {
    ++stats_.dropped_invalid;
    return;
  }
  // RFC 4555 3.9: an initiator that allows no NAT names the addresses and
  // ports it sent from and to; if the IP header shows others, a NAT is in
  // between and the exchange ends here (no state kept).
  if (const auto* no_nats = message->find_notify(NotifyType::kNoNatsAllowed);
      no_nats && no_nats->data != no_nats_allowed_data(datagram.remote, datagram.local)) {
    ++stats_.mobike_nat_refused;
    send_unprotected_error(datagram, header, make_notify(NotifyType::kUnexpectedNatDetected));
    return;
  }
  if (sas_.size() >= options_.max_ike_sas) {
    ++stats_.dropped_unexpected;
    return;
  }
  // COOKIE (RFC 7296 2.6): past the threshold of half-open SAs, only a
  // request that proves it can receive at its source address makes state.
  if (half_open_.size() >= options_.cookie_threshold) {
    auto expected = cookie_for(datagram, header.spi_i, nonce->data);
    const auto* cookie = message->find_notify(NotifyType::kCookie);
    if (cookie == nullptr || cookie->data != expected) {
      ++stats_.cookies_sent;
      send_unprotected_error(datagram, header, make_notify(NotifyType::kCookie, expected));
      return;
    }
  }
  RuntimeProfile* profile = init_profile(datagram.local.address);
  if (profile == nullptr) {
    ++stats_.no_proposal_chosen;
    send_unprotected_error(datagram, header, make_notify(NotifyType::kNoProposalChosen));
    return;
  }
  policy::ChooseOptions choose;
  choose.ke_group = ke->group;
  auto chosen = profile->ike->choose(*sa_payload, choose);
  if (!chosen.ok()) {
    if (chosen.outcome == policy::ChooseResult::Outcome::kInvalidKePayload)
      ++stats_.invalid_ke_sent;
    else
      ++stats_.no_proposal_chosen;
    send_unprotected_error(datagram, header, chosen.notify());
    return;
  }
  const auto& selected = chosen.selected;
  auto group = static_cast<crypto::DhGroup>(selected.dh);
  auto dh = crypto::DhKeyPair::generate(group);
  if (!dh) {
    ++stats_.send_errors;
    return;
  }
  auto shared_secret = dh->compute_shared_secret(ke->key_data);
  if (!shared_secret) {
    // A KE value off the curve or out of range: not a request we answer.
    ++stats_.dropped_invalid;
    return;
  }
  auto nonce_r = crypto::make_nonce();
  auto spi = crypto::make_ike_spi();
  if (!nonce_r || !spi) return;
  uint64_t spi_r = spi_from_wire(*spi);
  while (spi_r == 0 || by_local_spi_.count(spi_r)) {
    auto again = crypto::make_ike_spi();
    if (!again) return;
    spi_r = spi_from_wire(*again);
  }
  auto keys = crypto::derive_initial_ike_sa_keys(prf_of(selected), selected.cipher_suite(), shared_secret->span(),
                                                 nonce->data, *nonce_r, spi_to_wire(header.spi_i),
                                                 spi_to_wire(spi_r));
  if (!keys) return;
  auto in = crypto::SkCipher::create(selected.cipher_suite(), keys->sk_ei, keys->sk_ai);
  auto out = crypto::SkCipher::create(selected.cipher_suite(), keys->sk_er, keys->sk_ar);
  if (!in || !out) return;

  // NAT detection (RFC 7296 2.23): the hashes in the request are over
  // SPIi, zero and the addresses the initiator used.
  bool peer_behind_nat = false;
  bool local_behind_nat = false;
  auto sources = notifies_of(payloads, NotifyType::kNatDetectionSourceIp);
  const auto* destination = message->find_notify(NotifyType::kNatDetectionDestinationIp);
  crypto::IkeSpi zero{};
  if (!sources.empty()) {
    auto expected = crypto::nat_detection_hash(spi_to_wire(header.spi_i), zero, datagram.remote.address,
                                               datagram.remote.port);
    peer_behind_nat = true;
    for (const auto* source : sources)
      if (expected && std::equal(expected->begin(), expected->end(), source->data.begin(), source->data.end()))
        peer_behind_nat = false;
  }
  if (destination) {
    auto expected = crypto::nat_detection_hash(spi_to_wire(header.spi_i), zero, datagram.local.address,
                                               datagram.local.port);
    local_behind_nat = !(expected && std::equal(expected->begin(), expected->end(), destination->data.begin(),
                                                destination->data.end()));
  }
  bool force = profile->section->force_encapsulation;

  Message reply;
  reply.header.spi_i = header.spi_i;
  reply.header.spi_r = spi_r;
  reply.header.exchange = ExchangeType::kIkeSaInit;
  reply.header.flags = kFlagResponse;
  reply.header.message_id = 0;
  reply.payloads.push_back(make_payload(SaPayload{{selected.proposal}}));
  reply.payloads.push_back(make_payload(KePayload{selected.dh, dh->public_value()}));
  reply.payloads.push_back(make_payload(NoncePayload{*nonce_r}));
  if (!sources.empty() || destination) {
    auto spi_i_wire = spi_to_wire(header.spi_i);
    auto spi_r_wire = spi_to_wire(spi_r);
    std::vector<uint8_t> source_hash;
    if (force) {
      // Forced encapsulation: a source hash nobody can match makes the peer
      // believe we are behind a NAT, so both sides use ESP-in-UDP.
      auto fake = crypto::random_bytes(20);
      if (fake) source_hash = *fake;
    } else if (auto h = crypto::nat_detection_hash(spi_i_wire, spi_r_wire, datagram.local.address,
                                                   datagram.local.port)) {
      source_hash.assign(h->begin(), h->end());
    }
    auto dest_hash = crypto::nat_detection_hash(spi_i_wire, spi_r_wire, datagram.remote.address,
                                                datagram.remote.port);
    reply.payloads.push_back(make_payload(make_notify(NotifyType::kNatDetectionSourceIp, source_hash)));
    if (dest_hash)
      reply.payloads.push_back(make_payload(
          make_notify(NotifyType::kNatDetectionDestinationIp, {dest_hash->begin(), dest_hash->end()})));
  }
  if (profile->section->remote_auth == config::AuthKind::kPublicKey && profile->section->send_certreq &&
      !profile->ca_hashes.empty())
    reply.payloads.push_back(make_payload(CertReqPayload{CertEncoding::kX509Signature, profile->ca_hashes}));
  std::vector<HashAlgorithm> peer_hashes;
  if (const auto* hashes = message->find_notify(NotifyType::kSignatureHashAlgorithms)) {
    if (auto list = notify_signature_hash_algorithms(*hashes)) peer_hashes = *list;
    reply.payloads.push_back(make_payload(make_signature_hash_algorithms_notify(kOurHashes)));
  }
  // RFC 7383 2.3: answered only to an initiator that announced it.
  const bool fragmentation =
      options_.fragment_size != 0 && message->find_notify(NotifyType::kIkev2FragmentationSupported) != nullptr;
  if (fragmentation) reply.payloads.push_back(make_payload(make_notify(NotifyType::kIkev2FragmentationSupported)));
  auto bytes = encode_message(reply);
  if (!bytes) return;

  IkeSa& sa = create_sa(false);
  sa.state = IkeSaState::kHalfOpen;
  sa.spi_i = header.spi_i;
  sa.spi_r = spi_r;
  sa.local = datagram.local;
  sa.remote = datagram.remote;
  sa.port_id = datagram.port_id;
  sa.profile = profile;
  sa.proposal = selected;
  sa.prf = prf_of(selected);
  sa.sk_d = std::move(keys->sk_d);
  sa.sk_pi = std::move(keys->sk_pi);
  sa.sk_pr = std::move(keys->sk_pr);
  sa.in_cipher = std::move(*in);
  sa.out_cipher = std::move(*out);
  sa.nonce_i = nonce->data;
  sa.nonce_r = std::move(*nonce_r);
  sa.init_request = datagram.message;
  sa.init_response = *bytes;
  sa.peer_behind_nat = peer_behind_nat;
  sa.local_behind_nat = local_behind_nat;
  sa.udp_encapsulation = peer_behind_nat || local_behind_nat || force;
  sa.peer_signature_hashes = std::move(peer_hashes);
  sa.fragmentation = fragmentation;
  sa.expected_request_id = 1;
  by_local_spi_[spi_r] = sa.id;
  sa.init_remote = sa.remote;
  sa.half_open_indexed = true;
  half_open_[{sa.spi_i, sa.remote.address, sa.remote.port}] = sa.id;
  schedule(sa);
  if (!transport_.send(datagram.reply_with(std::move(*bytes)))) ++stats_.send_errors;
}

// ------------------------------------------------------------ authentication

shared::Status Engine::Impl::verify_peer_auth(IkeSa& sa, const IdPayload& peer_id,
                                              const std::vector<Payload>& inner, bool peer_is_initiator) {
  const auto* auth = find_body<AuthPayload>(inner, PayloadType::kAuthentication);
  if (auth == nullptr) return shared::make_error("no AUTH payload");
  auto signed_octets = crypto::build_signed_octets(
      sa.prf, peer_is_initiator ? sa.init_request : sa.init_response,
      peer_is_initiator ? sa.nonce_r : sa.nonce_i, peer_is_initiator ? sa.sk_pi.span() : sa.sk_pr.span(),
      id_payload_body(peer_id));
  if (!signed_octets) return shared::make_error(signed_octets.error());
  const auto& section = *sa.profile->section;
  if (section.remote_auth == config::AuthKind::kPsk) {
    if (auth->method != AuthMethod::kSharedKeyMic)
      return shared::make_error("peer used " + to_string(auth->method) + ", profile wants psk");
    const auto* secret = config_->find_secret(peer_id.type, peer_id.data);
    if (secret == nullptr) return shared::make_error("no PSK for " + id_text(peer_id));
    return crypto::verify_psk_auth(sa.prf, secret->psk.span(), *signed_octets, auth->data);
  }
  if (auth->method == AuthMethod::kSharedKeyMic) return shared::make_error("peer used psk, profile wants pubkey");
  std::vector<crypto::Certificate> certificates;
  for (const auto& payload : inner) {
    const auto* cert = payload.get<CertPayload>();
    if (cert == nullptr || payload.type != PayloadType::kCertificate) continue;
    if (cert->encoding != CertEncoding::kX509Signature) continue;
    auto parsed = crypto::Certificate::from_der(cert->data);
    if (!parsed) return shared::make_error("CERT payload: " + parsed.error());
    certificates.push_back(std::move(*parsed));
  }
  if (certificates.empty()) return shared::make_error("no X.509 CERT payload");
  std::span<const crypto::Certificate> intermediates(certificates.data() + 1, certificates.size() - 1);
  if (auto valid = sa.profile->cas->verify(certificates.front(), intermediates); !valid)
    return shared::make_error("certificate: " + valid.error());
  if (auto match = crypto::match_identity(certificates.front(), static_cast<crypto::IdType>(peer_id.type),
                                          peer_id.data);
      !match)
    return shared::make_error("identity " + id_text(peer_id) + " not in its certificate: " + match.error());
  return crypto::verify_auth(static_cast<crypto::AuthMethod>(auth->method), certificates.front().public_key(),
                             *signed_octets, auth->data, kOurCryptoHashes);
}

shared::Result<std::vector<Payload>> Engine::Impl::own_auth_payloads(IkeSa& sa, bool we_are_initiator) {
  const RuntimeProfile& profile = *sa.profile;
  auto signed_octets = crypto::build_signed_octets(
      sa.prf, we_are_initiator ? sa.init_request : sa.init_response, we_are_initiator ? sa.nonce_r : sa.nonce_i,
      we_are_initiator ? sa.sk_pi.span() : sa.sk_pr.span(), id_payload_body(profile.local_id));
  if (!signed_octets) return shared::make_error(signed_octets.error());
  std::vector<Payload> out;
  if (profile.section->local_auth == config::AuthKind::kPsk) {
    // The PSK shared with this peer: the secret for its identity (what
    // strongSwan's "secrets" with both ids amounts to), else ours.
    const config::SecretSection* secret = nullptr;
    if (!sa.peer_id.data.empty()) secret = config_->find_secret(sa.peer_id.type, sa.peer_id.data);
    if (secret == nullptr) secret = config_->find_secret(profile.local_id.type, profile.local_id.data);
    if (secret == nullptr) return shared::make_error("no PSK for our identity");
    auto auth = crypto::compute_psk_auth(sa.prf, secret->psk.span(), *signed_octets);
    if (!auth) return shared::make_error(auth.error());
    out.push_back(make_payload(AuthPayload{AuthMethod::kSharedKeyMic, {auth->begin(), auth->end()}}));
    return out;
  }
  EVP_PKEY* key = profile.private_key->get();
  crypto::AuthMethod method;
  std::optional<crypto::SignatureAlgorithm> algorithm;
  bool ecdsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
  if (std::find(sa.peer_signature_hashes.begin(), sa.peer_signature_hashes.end(), HashAlgorithm::kSha2_256) !=
      sa.peer_signature_hashes.end()) {
    method = crypto::AuthMethod::kDigitalSignature;
    algorithm = crypto::SignatureAlgorithm{ecdsa ? crypto::SignatureScheme::kEcdsa : crypto::SignatureScheme::kRsaPkcs1v15,
                                           crypto::HashAlgorithm::kSha256};
  } else if (ecdsa) {
    int bits = EVP_PKEY_get_bits(key);
    method = bits <= 256 ? crypto::AuthMethod::kEcdsaSha256P256
                         : bits <= 384 ? crypto::AuthMethod::kEcdsaSha384P384 : crypto::AuthMethod::kEcdsaSha512P521;
  } else {
    method = crypto::AuthMethod::kRsaSignature;
  }
  auto signature = crypto::sign_auth(method, key, *signed_octets, algorithm);
  if (!signature) return shared::make_error(signature.error());
  out.push_back(make_payload(CertPayload{CertEncoding::kX509Signature, profile.certificate->der()}));
  out.push_back(make_payload(AuthPayload{static_cast<AuthMethod>(method), std::move(*signature)}));
  return out;
}

// ------------------------------------------------------------ configuration payload

std::vector<Payload> Engine::Impl::cp_reply(IkeSa& sa, const CpPayload& request, bool* address_failure) {
  const RuntimeProfile& profile = *sa.profile;
  const auto& section = *profile.section;
  CpPayload reply;
  reply.type = CpType::kReply;
  bool asked_address = false;
  bool got_address = false;
  auto add_subnets = [&](shared::IpFamily family) {
    for (const auto& subnet : section.local_subnets) {
      if (subnet.address.family() != family) continue;
      if (family == shared::IpFamily::kIpv4) {
        uint32_t mask = subnet.length == 0 ? 0 : ~uint32_t(0) << (32 - subnet.length);
        reply.attributes.push_back(
            make_cp_ip4_subnet_attribute({subnet.address, shared::IpAddress::from_ipv4(mask)}));
      } else {
        reply.attributes.push_back(
            make_cp_ip6_prefix_attribute(CpAttributeType::kInternalIp6Subnet, {subnet.address, subnet.length}));
      }
    }
  };
  for (const auto& attribute : request.attributes) {
    switch (attribute.type) {
      case CpAttributeType::kInternalIp4Address: {
        asked_address = true;
        if (profile.pool4 == nullptr) break;
        std::optional<shared::IpAddress> wanted;
        if (auto value = cp_attribute_ip4(attribute); value && value->ipv4_host_order() != 0) wanted = *value;
        auto lease = profile.pool4->lease(sa.lease_owner, wanted);
        if (!lease) break;
        sa.lease4 = *lease;
        got_address = true;
        reply.attributes.push_back(make_cp_ip4_attribute(CpAttributeType::kInternalIp4Address, lease->address));
        break;
      }
      case CpAttributeType::kInternalIp6Address: {
        asked_address = true;
        if (profile.pool6 == nullptr) break;
        std::optional<shared::IpAddress> wanted;
        if (auto value = cp_attribute_ip6_prefix(attribute)) {
          static const uint8_t zero[16] = {};
          if (std::memcmp(value->address.bytes(), zero, 16) != 0) wanted = value->address;
        }
        auto lease = profile.pool6->lease(sa.lease_owner, wanted);
        if (!lease) break;
        sa.lease6 = *lease;
        got_address = true;
        reply.attributes.push_back(make_cp_ip6_prefix_attribute(CpAttributeType::kInternalIp6Address,
                                                                {lease->address, lease->prefix_length}));
        break;
      }
      case CpAttributeType::kInternalIp4Dns:
        for (const auto& dns : section.dns)
          if (dns.is_ipv4()) reply.attributes.push_back(make_cp_ip4_attribute(CpAttributeType::kInternalIp4Dns, dns));
        break;
      case CpAttributeType::kInternalIp6Dns:
        for (const auto& dns : section.dns)
          if (dns.is_ipv6()) reply.attributes.push_back(make_cp_ip6_attribute(CpAttributeType::kInternalIp6Dns, dns));
        break;
      case CpAttributeType::kInternalIp4Subnet:
        add_subnets(shared::IpFamily::kIpv4);
        break;
      case CpAttributeType::kInternalIp6Subnet:
        add_subnets(shared::IpFamily::kIpv6);
        break;
      case CpAttributeType::kExternalSourceIp4NatInfo:
        // TS 29.139: the initiator's public IPv4 address and port as we see
        // them, when there is a NAT between us.
        if (section.nat_info && sa.peer_behind_nat && sa.remote.address.is_ipv4())
          reply.attributes.push_back(make_cp_nat_info_attribute({sa.remote.address, sa.remote.port}));
        break;
      default:
        break;  // attributes we do not serve are left out (RFC 7296 3.15.1)
    }
  }
  *address_failure = asked_address && !got_address;
  if (*address_failure) ++stats_.address_failures;
  std::vector<Payload> out;
  if (!reply.attributes.empty()) out.push_back(make_payload(std::move(reply)));
  return out;
}

// ------------------------------------------------------------ IKE_AUTH (responder)

void Engine::Impl::responder_auth(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header,
                                  const std::vector<Payload>& inner) {
  const auto* id_i = find_body<IdPayload>(inner, PayloadType::kIdInitiator);
  if (id_i == nullptr) {
    ++stats_.dropped_invalid;
    return;
  }
  auto fail_auth = [&](const std::string& why) {
    ++stats_.auth_failed;
    send_response(sa, datagram, header, {make_payload(make_notify(NotifyType::kAuthenticationFailed))});
    close_sa(sa, EngineEventKind::kFailed, "authentication of " + id_text(*id_i) + " failed: " + why);
  };
  RuntimeProfile* profile = profile_for(*id_i);
  if (profile == nullptr) return fail_auth("no profile serves this identity");
  // The profile chosen by identity must accept what IKE_SA_INIT negotiated.
  if (profile != sa.profile) {
    SaPayload offered{{sa.proposal->proposal}};
    policy::ChooseOptions options;
    options.ke_group = sa.proposal->dh;
    if (!profile->ike->choose(offered, options).ok())
      return fail_auth("IKE proposal " + describe(*sa.proposal) + " not allowed by profile " + profile->section->name);
  }
  sa.profile = profile;
  sa.peer_id = *id_i;
  sa.peer_id_text = id_text(*id_i);
  if (auto verified = verify_peer_auth(sa, *id_i, inner, true); !verified) return fail_auth(verified.error());
  sa.mobike = find_notify(inner, NotifyType::kMobikeSupported) != nullptr && profile->section->mobike;
  index_peer(sa);
  // Before the CP request is served: the device that started again may ask
  // for the address its old IKE SA still holds.
  if (find_notify(inner, NotifyType::kInitialContact)) replace_older_sas_of_peer(sa);

  auto auth = own_auth_payloads(sa, false);
  if (!auth) return fail_auth("our AUTH: " + auth.error());
  std::vector<Payload> reply;
  reply.push_back(make_id_payload(false, profile->local_id));
  for (auto& payload : *auth) reply.push_back(std::move(payload));

  bool address_failure = false;
  if (const auto* cp = find_body<CpPayload>(inner, PayloadType::kConfiguration); cp && cp->type == CpType::kRequest) {
    for (auto& payload : cp_reply(sa, *cp, &address_failure)) reply.push_back(std::move(payload));
  }
  if (sa.mobike) {
    reply.push_back(make_payload(make_notify(NotifyType::kMobikeSupported)));
    for (auto& payload : own_additional_addresses(sa)) reply.push_back(std::move(payload));
    learn_additional_addresses(sa, inner);
  }
  sa.tunnel_id = next_tunnel_id_++;
  by_tunnel_[sa.tunnel_id] = sa.id;

  // The IKE SA is up; the first child follows or an error notify says why
  // not (RFC 7296 2.21.2: the IKE SA stays).
  auto without_child = [&](NotifyType why, const std::string& text) {
    std::vector<Payload> answer = reply;
    answer.push_back(make_payload(make_notify(why)));
    send_response(sa, datagram, header, answer);
    establish(sa);
    emit(EngineEventKind::kFailed, sa, "first child SA not created: " + text);
  };
  const auto* sa_payload = find_body<SaPayload>(inner, PayloadType::kSecurityAssociation);
  const auto* ts_i = find_body<TsPayload>(inner, PayloadType::kTsInitiator);
  const auto* ts_r = find_body<TsPayload>(inner, PayloadType::kTsResponder);
  if (address_failure) return without_child(NotifyType::kInternalAddressFailure, "address pool exhausted");
  if (!sa_payload || !ts_i || !ts_r) return without_child(NotifyType::kNoProposalChosen, "no SA/TS payloads");
  policy::ChooseOptions options;
  options.ignore_dh = true;
  auto chosen = profile->esp->choose(*sa_payload, options);
  std::optional<shared::EspAlgorithm> algorithm;
  if (chosen.ok()) algorithm = esp_algorithm_for(chosen.selected);
  if (!chosen.ok() || !algorithm) {
    ++stats_.no_proposal_chosen;
    return without_child(NotifyType::kNoProposalChosen, chosen.reason);
  }
  if (find_notify(inner, NotifyType::kUseTransportMode)) {
    ++stats_.no_proposal_chosen;
    return without_child(NotifyType::kNoProposalChosen, "transport mode asked; tunnel mode only");
  }
  // Selectors. The peer's side: its leased addresses when it got any (a
  // device never claims another's), else what it proposed, minus the pools.
  std::vector<shared::TrafficSelector> offered_i;
  for (const auto& selector : ts_i->selectors)
    if (selector.type == TsType::kIpv4AddressRange || selector.type == TsType::kIpv6AddressRange)
      offered_i.push_back(to_shared(selector));
  std::vector<shared::TrafficSelector> remote_ts;
  if (sa.lease4 || sa.lease6) {
    std::vector<shared::TrafficSelector> leased;
    if (sa.lease4) leased.push_back(lease_selector(*sa.lease4));
    if (sa.lease6) leased.push_back(lease_selector(*sa.lease6));
    remote_ts = narrow(offered_i, leased, shared::kMaxSelectors);
  } else {
    for (const auto& selector : offered_i) {
      bool in_pool = false;
      for (const auto& name : profile->section->pools) {
        auto pool = pools_.find(name);
        if (pool != pools_.end() && (pool->second.contains(selector.start) || pool->second.contains(selector.end)))
          in_pool = true;
      }
      if (!in_pool && remote_ts.size() < shared::kMaxSelectors) remote_ts.push_back(selector);
    }
  }
  std::vector<shared::TrafficSelector> offered_r;
  for (const auto& selector : ts_r->selectors)
    if (selector.type == TsType::kIpv4AddressRange || selector.type == TsType::kIpv6AddressRange)
      offered_r.push_back(to_shared(selector));
  auto local_ts = narrow(offered_r, profile->local_ts, shared::kMaxSelectors);
  if (remote_ts.empty() || local_ts.empty()) {
    ++stats_.ts_unacceptable;
    return without_child(NotifyType::kTsUnacceptable, "traffic selectors do not fit the profile");
  }
  ChildSa child;
  child.proposal = chosen.selected;
  child.info.algorithm = *algorithm;
  child.info.esn = chosen.selected.esn == EsnId::kEsn;
  child.info.outbound_spi = spi_value(chosen.selected.proposal.spi);
  child.info.inbound_spi = allocate_inbound_spi();
  child.info.local_ts = local_ts;
  child.info.remote_ts = remote_ts;
  child.info.tunnel_id = sa.tunnel_id;
  auto keys = crypto::derive_child_sa_keys(sa.prf, chosen.selected.cipher_suite(), sa.sk_d.span(), {}, sa.nonce_i,
                                           sa.nonce_r);
  if (!keys) {
    release_inbound_spi(child.info.inbound_spi);
    return without_child(NotifyType::kNoProposalChosen, keys.error());
  }
  auto results = install_child(sa, child, *keys, false);
  if (!results) {
    release_inbound_spi(child.info.inbound_spi);
    ++stats_.install_failures;
    return without_child(NotifyType::kTemporaryFailure, results.error());
  }
  Proposal proposal = chosen.selected.proposal;
  proposal.spi = spi_bytes(child.info.inbound_spi);
  std::vector<Payload> with_child = reply;
  with_child.push_back(make_payload(SaPayload{{proposal}}));
  TsPayload tsi_out, tsr_out;
  for (const auto& selector : remote_ts) tsi_out.selectors.push_back(to_wire(selector));
  for (const auto& selector : local_ts) tsr_out.selectors.push_back(to_wire(selector));
  with_child.push_back(make_ts_payload(true, tsi_out));
  with_child.push_back(make_ts_payload(false, tsr_out));

  child.info.installed = true;  // removal from here on takes it out again
  sa.children.push_back(child);
  sa.state = IkeSaState::kInstalling;
  sa.request_in_progress = true;
  uint64_t id = sa.id;
  uint32_t inbound_spi = child.info.inbound_spi;
  // The answer leaves once the data plane has the SAs: a tunnel is up when
  // the data plane says so, and the peer's first packet finds its SA.
  wait_for(id, std::move(*results),
           [this, id, inbound_spi, datagram, header, with_child, reply](bool ok, const std::string& why) {
             IkeSa* current = find(id);
             if (current == nullptr) return;
             current->request_in_progress = false;
             if (ok) {
               ++stats_.child_sas_installed;
               for (auto& c : current->children)
                 if (c.info.inbound_spi == inbound_spi) c.info.established_ns = now();
               send_response(*current, datagram, header, with_child);
               establish(*current);
               return;
             }
             for (auto it = current->children.begin(); it != current->children.end(); ++it)
               if (it->info.inbound_spi == inbound_spi) {
                 remove_child_from_data_plane(*it);
                 current->children.erase(it);
                 break;
               }
             std::vector<Payload> answer = reply;
             answer.push_back(make_payload(make_notify(NotifyType::kTemporaryFailure)));
             send_response(*current, datagram, header, answer);
             establish(*current);
             emit(EngineEventKind::kFailed, *current, "data plane refused the child SA: " + why);
           });
}

// ------------------------------------------------------------ INFORMATIONAL (responder)

void Engine::Impl::responder_informational(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                           const IkeHeader& header, const std::vector<Payload>& inner) {
  // MOBIKE (RFC 4555): only the original initiator moves the IKE SA.
  if (sa.mobike && !sa.original_initiator && sa.state == IkeSaState::kEstablished && !sa.rekeyed &&
      find_notify(inner, NotifyType::kUpdateSaAddresses))
    return responder_update_addresses(sa, datagram, header, inner);
  if (sa.mobike) learn_additional_addresses(sa, inner);
  bool delete_ike = false;
  std::vector<std::vector<uint8_t>> deleted;
  for (const auto& payload : inner) {
    const auto* del = payload.get<DeletePayload>();
    if (del == nullptr) continue;
    if (del->protocol == ProtocolId::kIke) {
      delete_ike = true;
      continue;
    }
    if (del->protocol != ProtocolId::kEsp) continue;
    for (const auto& spi : del->spis) {
      // The peer names its inbound SPI: our outbound one (RFC 7296 3.11).
      uint32_t value = spi_value(spi);
      for (auto it = sa.children.begin(); it != sa.children.end(); ++it) {
        if (it->info.outbound_spi != value) continue;
        deleted.push_back(spi_bytes(it->info.inbound_spi));
        uint32_t old_inbound = it->info.inbound_spi;
        complete_rekey_outbound(sa, old_inbound);  // may not reallocate: no push_back
        remove_child_from_data_plane(*it);
        sa.children.erase(it);
        ++stats_.child_sas_deleted;
        emit(EngineEventKind::kChildDeleted, sa, "child deleted by the peer");
        break;
      }
    }
  }
  if (delete_ike) {
    send_response(sa, datagram, header, {});
    close_sa(sa, EngineEventKind::kDeleted, sa.rekeyed ? "rekeyed IKE SA deleted by the peer" : "deleted by the peer");
    return;
  }
  std::vector<Payload> reply;
  if (!deleted.empty()) {
    DeletePayload del;
    del.protocol = ProtocolId::kEsp;
    del.spi_size = 4;
    del.spis = std::move(deleted);
    reply.push_back(make_payload(std::move(del)));
  }
  // RFC 4555 4.8: a COOKIE2 is copied into the answer (return routability
  // checks of MOBIKE peers and of our own remap = verify).
  if (const auto* cookie2 = find_notify(inner, NotifyType::kCookie2))
    reply.push_back(make_payload(make_notify(NotifyType::kCookie2, cookie2->data)));
  send_response(sa, datagram, header, reply);
  schedule(sa);
}

// ------------------------------------------------------------ CREATE_CHILD_SA (responder)

void Engine::Impl::responder_create_child(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                          const IkeHeader& header, const std::vector<Payload>& inner) {
  auto refuse = [&](NotifyType type, std::vector<uint8_t> data = {}) {
    send_response(sa, datagram, header, {make_payload(make_notify(type, std::move(data)))});
  };
  if (sa.state != IkeSaState::kEstablished || sa.rekeyed) return refuse(NotifyType::kTemporaryFailure);
  const auto* sa_payload = find_body<SaPayload>(inner, PayloadType::kSecurityAssociation);
  const auto* nonce = find_body<NoncePayload>(inner, PayloadType::kNonce);
  const auto* ke = find_body<KePayload>(inner, PayloadType::kKeyExchange);
  if (!sa_payload || !nonce || sa_payload->proposals.empty()) return refuse(NotifyType::kInvalidSyntax);
  if (sa_payload->proposals.front().protocol == ProtocolId::kIke)
    return responder_rekey_ike(sa, datagram, header, inner, *sa_payload);
  // A collision with a rekey of ours (RFC 7296 2.8.1) is settled by nonces;
  // keeping it simple and safe: while our own exchange runs, we ask the
  // peer to retry.
  if (sa.outstanding && (sa.outstanding->kind == RequestKind::kRekeyChild || sa.outstanding->kind == RequestKind::kRekeyIke))
    return refuse(NotifyType::kTemporaryFailure);
  const ChildSa* old = nullptr;
  if (const auto* rekey = find_notify(inner, NotifyType::kRekeySa)) {
    uint32_t spi = spi_value(rekey->spi);
    for (const auto& child : sa.children)
      if (child.info.outbound_spi == spi || child.info.inbound_spi == spi) old = &child;
    if (old == nullptr) {
      NotifyPayload notify = make_notify(NotifyType::kChildSaNotFound);
      notify.protocol = ProtocolId::kEsp;
      notify.spi = rekey->spi;
      send_response(sa, datagram, header, {make_payload(std::move(notify))});
      return;
    }
  }
  const auto* ts_i = find_body<TsPayload>(inner, PayloadType::kTsInitiator);
  const auto* ts_r = find_body<TsPayload>(inner, PayloadType::kTsResponder);
  if (!ts_i || !ts_r) return refuse(NotifyType::kInvalidSyntax);
  policy::ChooseOptions options;
  if (ke) options.ke_group = ke->group;
  auto chosen = sa.profile->esp->choose(*sa_payload, options);
  std::optional<shared::EspAlgorithm> algorithm;
  if (chosen.ok()) algorithm = esp_algorithm_for(chosen.selected);
  if (!chosen.ok() || !algorithm) {
    ++stats_.no_proposal_chosen;
    send_response(sa, datagram, header,
                  {make_payload(chosen.ok() ? make_notify(NotifyType::kNoProposalChosen) : chosen.notify())});
    return;
  }
  std::optional<crypto::DhKeyPair> dh;
  crypto::SecureBytes pfs_secret;
  if (chosen.selected.dh != DhId::kNone) {
    if (!ke) return refuse(NotifyType::kInvalidSyntax);
    auto pair = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(chosen.selected.dh));
    if (!pair) return refuse(NotifyType::kTemporaryFailure);
    auto secret = pair->compute_shared_secret(ke->key_data);
    if (!secret) return refuse(NotifyType::kInvalidSyntax);
    pfs_secret = std::move(*secret);
    dh = std::move(*pair);
  }
  std::vector<shared::TrafficSelector> offered_i, offered_r;
  for (const auto& s : ts_i->selectors)
    if (s.type == TsType::kIpv4AddressRange || s.type == TsType::kIpv6AddressRange) offered_i.push_back(to_shared(s));
  for (const auto& s : ts_r->selectors)
    if (s.type == TsType::kIpv4AddressRange || s.type == TsType::kIpv6AddressRange) offered_r.push_back(to_shared(s));
  std::vector<shared::TrafficSelector> remote_ts, local_ts;
  if (old) {
    // A rekey keeps what the old child had (narrowed to what is offered).
    remote_ts = narrow(offered_i, old->info.remote_ts, shared::kMaxSelectors);
    local_ts = narrow(offered_r, old->info.local_ts, shared::kMaxSelectors);
  } else {
    std::vector<shared::TrafficSelector> allowed_remote;
    if (sa.lease4) allowed_remote.push_back(lease_selector(*sa.lease4));
    if (sa.lease6) allowed_remote.push_back(lease_selector(*sa.lease6));
    if (allowed_remote.empty())
      for (const auto& child : sa.children)
        allowed_remote.insert(allowed_remote.end(), child.info.remote_ts.begin(), child.info.remote_ts.end());
    remote_ts = narrow(offered_i, allowed_remote, shared::kMaxSelectors);
    local_ts = narrow(offered_r, sa.profile->local_ts, shared::kMaxSelectors);
  }
  if (remote_ts.empty() || local_ts.empty()) {
    ++stats_.ts_unacceptable;
    return refuse(NotifyType::kTsUnacceptable);
  }
  auto nonce_r = crypto::make_nonce();
  if (!nonce_r) return refuse(NotifyType::kTemporaryFailure);
  auto keys = crypto::derive_child_sa_keys(sa.prf, chosen.selected.cipher_suite(), sa.sk_d.span(), pfs_secret.span(),
                                           nonce->data, *nonce_r);
  if (!keys) return refuse(NotifyType::kTemporaryFailure);
  ChildSa child;
  child.proposal = chosen.selected;
  child.info.algorithm = *algorithm;
  child.info.esn = chosen.selected.esn == EsnId::kEsn;
  child.info.outbound_spi = spi_value(chosen.selected.proposal.spi);
  child.info.inbound_spi = allocate_inbound_spi();
  child.info.local_ts = local_ts;
  child.info.remote_ts = remote_ts;
  child.info.tunnel_id = sa.tunnel_id;
  // For this child the peer is the initiator of the exchange: i2r keys are
  // what it sends, so our inbound (install_child with we_are_initiator false).
  // A rekey's outbound SA waits for the old child to go (see ChildSa).
  if (old) {
    child.outbound_installed = false;
    child.pending_keys = *keys;
    child.replaces_inbound_spi = old->info.inbound_spi;
  }
  auto results = install_child(sa, child, *keys, false, old ? Install::kInboundOnly : Install::kBoth);
  if (!results) {
    release_inbound_spi(child.info.inbound_spi);
    ++stats_.install_failures;
    return refuse(NotifyType::kTemporaryFailure);
  }
  Proposal proposal = chosen.selected.proposal;
  proposal.spi = spi_bytes(child.info.inbound_spi);
  std::vector<Payload> reply;
  reply.push_back(make_payload(SaPayload{{proposal}}));
  reply.push_back(make_payload(NoncePayload{*nonce_r}));
  if (dh) reply.push_back(make_payload(KePayload{chosen.selected.dh, dh->public_value()}));
  TsPayload tsi_out, tsr_out;
  for (const auto& s : remote_ts) tsi_out.selectors.push_back(to_wire(s));
  for (const auto& s : local_ts) tsr_out.selectors.push_back(to_wire(s));
  reply.push_back(make_ts_payload(true, tsi_out));
  reply.push_back(make_ts_payload(false, tsr_out));
  uint32_t old_inbound = old ? old->info.inbound_spi : 0;
  child.info.installed = true;
  const auto& section = *sa.profile->section;
  child.info.rekey_at_ns = now() + uint64_t(section.child_lifetime_s) * kNsPerSecond -
                           uint64_t(section.rekey_margin_s) * kNsPerSecond;
  sa.children.push_back(child);
  sa.request_in_progress = true;
  uint64_t id = sa.id;
  uint32_t inbound_spi = child.info.inbound_spi;
  wait_for(id, std::move(*results),
           [this, id, inbound_spi, old_inbound, datagram, header, reply](bool ok, const std::string& why) {
             IkeSa* current = find(id);
             if (current == nullptr) return;
             current->request_in_progress = false;
             if (!ok) {
               for (auto it = current->children.begin(); it != current->children.end(); ++it)
                 if (it->info.inbound_spi == inbound_spi) {
                   remove_child_from_data_plane(*it);
                   current->children.erase(it);
                   break;
                 }
               send_response(*current, datagram, header, {make_payload(make_notify(NotifyType::kTemporaryFailure))});
               emit(EngineEventKind::kFailed, *current, "data plane refused the child SA: " + why);
               return;
             }
             for (auto& c : current->children) {
               if (c.info.inbound_spi == inbound_spi) c.info.established_ns = now();
               if (old_inbound != 0 && c.info.inbound_spi == old_inbound) {
                 // The rekey's initiator deletes the old child (RFC 7296
                 // 2.8); if it never does, we do.
                 c.rekeyed = true;
                 c.info.rekey_at_ns = 0;
                 c.retire_at_ns = now() + 30 * kNsPerSecond;
               }
             }
             if (old_inbound) ++stats_.child_sas_rekeyed;
             ++stats_.child_sas_installed;
             send_response(*current, datagram, header, reply);
             emit(EngineEventKind::kChildInstalled, *current, old_inbound ? "child rekeyed" : "child added");
             schedule(*current);
           });
}

void Engine::Impl::responder_rekey_ike(IkeSa& sa, const dp_link::IkeDatagram& datagram, const IkeHeader& header,
                                       const std::vector<Payload>& inner, const SaPayload& sa_payload) {
  auto refuse = [&](NotifyPayload notify) { send_response(sa, datagram, header, {make_payload(std::move(notify))}); };
  if (sa.outstanding && (sa.outstanding->kind == RequestKind::kRekeyIke || sa.outstanding->kind == RequestKind::kRekeyChild))
    return refuse(make_notify(NotifyType::kTemporaryFailure));
  const auto* nonce = find_body<NoncePayload>(inner, PayloadType::kNonce);
  const auto* ke = find_body<KePayload>(inner, PayloadType::kKeyExchange);
  if (!ke) return refuse(make_notify(NotifyType::kInvalidSyntax));
  policy::ChooseOptions options;
  options.ke_group = ke->group;
  auto chosen = sa.profile->ike->choose(sa_payload, options);
  if (!chosen.ok()) {
    ++stats_.no_proposal_chosen;
    return refuse(chosen.notify());
  }
  const auto& selected = chosen.selected;
  if (selected.proposal.spi.size() != 8) return refuse(make_notify(NotifyType::kInvalidSyntax));
  uint64_t new_spi_i = spi_from_wire(selected.proposal.spi);
  auto dh = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(selected.dh));
  if (!dh) return refuse(make_notify(NotifyType::kTemporaryFailure));
  auto secret = dh->compute_shared_secret(ke->key_data);
  if (!secret) return refuse(make_notify(NotifyType::kInvalidSyntax));
  auto nonce_r = crypto::make_nonce();
  auto spi = crypto::make_ike_spi();
  if (!nonce_r || !spi) return refuse(make_notify(NotifyType::kTemporaryFailure));
  uint64_t new_spi_r = spi_from_wire(*spi);
  auto keys = crypto::derive_rekeyed_ike_sa_keys(sa.prf, sa.sk_d.span(), prf_of(selected), selected.cipher_suite(),
                                                 secret->span(), nonce->data, *nonce_r, spi_to_wire(new_spi_i),
                                                 spi_to_wire(new_spi_r));
  if (!keys) return refuse(make_notify(NotifyType::kTemporaryFailure));
  auto in = crypto::SkCipher::create(selected.cipher_suite(), keys->sk_ei, keys->sk_ai);
  auto out = crypto::SkCipher::create(selected.cipher_suite(), keys->sk_er, keys->sk_ar);
  if (!in || !out) return refuse(make_notify(NotifyType::kTemporaryFailure));
  Proposal proposal = selected.proposal;
  {
    auto wire = spi_to_wire(new_spi_r);
    proposal.spi.assign(wire.begin(), wire.end());
  }
  send_response(sa, datagram, header,
                {make_payload(SaPayload{{proposal}}), make_payload(NoncePayload{*nonce_r}),
                 make_payload(KePayload{selected.dh, dh->public_value()})});
  // The new IKE SA: the rekey's initiator (the peer) is its original
  // initiator (RFC 7296 2.18); children, leases and paths move over.
  uint64_t old_id = sa.id;
  IkeSa& fresh = successor_of(sa, false, new_spi_i, new_spi_r);
  fresh.proposal = selected;
  fresh.prf = prf_of(selected);
  fresh.sk_d = std::move(keys->sk_d);
  fresh.sk_pi = std::move(keys->sk_pi);
  fresh.sk_pr = std::move(keys->sk_pr);
  fresh.in_cipher = std::move(*in);
  fresh.out_cipher = std::move(*out);
  IkeSa* old = find(old_id);
  emit(EngineEventKind::kIkeRekeyed, *old, std::to_string(fresh.id));
  schedule(*old);
  schedule(fresh);
}

// ------------------------------------------------------------ initiator

shared::Result<uint64_t> Engine::Impl::initiate(const InitiateRequest& request) {
  RuntimeProfile* profile = profile_named(request.profile);
  if (profile == nullptr) return shared::make_error("no profile " + request.profile);
  if (request.local.address.family() != request.remote.address.family())
    return shared::make_error("local and remote addresses of different families");
  auto spi = crypto::make_ike_spi();
  if (!spi) return shared::make_error(spi.error());
  IkeSa& sa = create_sa(true);
  sa.state = IkeSaState::kInitSent;
  sa.spi_i = spi_from_wire(*spi);
  sa.local = request.local;
  sa.remote = request.remote;
  sa.profile = profile;
  sa.initiate = request;
  if (profile->section->remote_id.exact) {
    sa.peer_id.type = profile->section->remote_id.exact->type;
    sa.peer_id.data = profile->section->remote_id.exact->data;
  }
  by_local_spi_[sa.spi_i] = sa.id;
  const auto& first = profile->ike->proposals().front();
  auto dh = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(first.dh.front()));
  auto nonce = crypto::make_nonce();
  if (!dh || !nonce) {
    close_sa(sa, EngineEventKind::kFailed, "key generation failed");
    return shared::make_error("key generation failed");
  }
  sa.dh = std::move(*dh);
  sa.nonce_i = std::move(*nonce);
  uint64_t id = sa.id;
  send_ike_sa_init(sa);
  return id;
}

void Engine::Impl::send_ike_sa_init(IkeSa& sa) {
  std::vector<Payload> payloads;
  if (!sa.cookie.empty()) payloads.push_back(make_payload(make_notify(NotifyType::kCookie, sa.cookie)));
  payloads.push_back(make_payload(sa.profile->ike->offer({})));
  payloads.push_back(make_payload(KePayload{static_cast<DhId>(sa.dh->group()), sa.dh->public_value()}));
  payloads.push_back(make_payload(NoncePayload{sa.nonce_i}));
  crypto::IkeSpi zero{};
  auto source = crypto::nat_detection_hash(spi_to_wire(sa.spi_i), zero, sa.local.address, sa.local.port);
  auto destination = crypto::nat_detection_hash(spi_to_wire(sa.spi_i), zero, sa.remote.address, sa.remote.port);
  if (source && destination) {
    std::vector<uint8_t> source_hash(source->begin(), source->end());
    if (sa.profile->section->force_encapsulation) {
      auto fake = crypto::random_bytes(20);
      if (fake) source_hash = *fake;
    }
    payloads.push_back(make_payload(make_notify(NotifyType::kNatDetectionSourceIp, source_hash)));
    payloads.push_back(
        make_payload(make_notify(NotifyType::kNatDetectionDestinationIp, {destination->begin(), destination->end()})));
  }
  if (sa.initiate.no_nats_allowed)
    payloads.push_back(make_payload(make_notify(NotifyType::kNoNatsAllowed, no_nats_allowed_data(sa.local, sa.remote))));
  if (sa.profile->section->local_auth == config::AuthKind::kPublicKey ||
      sa.profile->section->remote_auth == config::AuthKind::kPublicKey)
    payloads.push_back(make_payload(make_signature_hash_algorithms_notify(kOurHashes)));
  // RFC 7383 2.3: we reassemble, and fragment when the responder does too.
  if (options_.fragment_size != 0)
    payloads.push_back(make_payload(make_notify(NotifyType::kIkev2FragmentationSupported)));
  sa.next_request_id = 0;
  sa.outstanding.reset();
  // The message is kept: it is what our AUTH signs (RealMessage1).
  auto sent = send_request(sa, RequestKind::kIkeSaInit, ExchangeType::kIkeSaInit, payloads);
  if (sent && sa.outstanding) sa.init_request = sa.outstanding->datagrams.front();
}

void Engine::Impl::initiator_init_response(const dp_link::IkeDatagram& datagram, const IkeHeader& header) {
  auto it = by_local_spi_.find(header.spi_i);
  IkeSa* sa = it == by_local_spi_.end() ? nullptr : find(it->second);
  if (sa == nullptr || !sa->initiator || sa->state != IkeSaState::kInitSent || !sa->outstanding ||
      sa->outstanding->kind != RequestKind::kIkeSaInit || header.message_id != 0) {
    ++stats_.dropped_unexpected;
    return;
  }
  auto message = decode_message(datagram.message);
  if (!message) {
    ++stats_.dropped_malformed;
    return;
  }
  if (auto legal = policy::check_message(*message, {}); !legal) {
    ++stats_.dropped_invalid;
    return;
  }
  const auto& payloads = message->payloads;
  if (const auto* cookie = message->find_notify(NotifyType::kCookie)) {
    if (auto value = notify_cookie(*cookie)) {
      sa->cookie = *value;
      send_ike_sa_init(*sa);
    }
    return;
  }
  if (const auto* invalid_ke = message->find_notify(NotifyType::kInvalidKePayload)) {
    if (invalid_ke->data.size() == 2) {
      auto group = static_cast<DhId>((invalid_ke->data[0] << 8) | invalid_ke->data[1]);
      bool offered = false;
      for (const auto& spec : sa->profile->ike->proposals())
        offered |= std::find(spec.dh.begin(), spec.dh.end(), group) != spec.dh.end();
      if (offered && static_cast<DhId>(sa->dh->group()) != group) {
        auto dh = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(group));
        if (dh) {
          sa->dh = std::move(*dh);
          send_ike_sa_init(*sa);
          return;
        }
      }
    }
    close_sa(*sa, EngineEventKind::kFailed, "INVALID_KE_PAYLOAD for a group we did not offer");
    return;
  }
  if (const auto* error = first_error_notify(payloads)) {
    close_sa(*sa, EngineEventKind::kFailed, "responder answered " + to_string(error->type));
    return;
  }
  const auto* sa_payload = message->find(PayloadType::kSecurityAssociation);
  const auto* ke = message->find(PayloadType::kKeyExchange);
  const auto* nonce = message->find(PayloadType::kNonce);
  if (!sa_payload || !ke || !nonce) {
    ++stats_.dropped_invalid;
    return;
  }
  auto offered = sa->profile->ike->offer({});
  auto selected = policy::validate_reply(offered, *sa_payload->get<SaPayload>());
  if (!selected) {
    close_sa(*sa, EngineEventKind::kFailed, "responder's IKE proposal: " + selected.error());
    return;
  }
  const auto* ke_body = ke->get<KePayload>();
  if (ke_body->group != static_cast<DhId>(sa->dh->group())) {
    close_sa(*sa, EngineEventKind::kFailed, "responder's KE group differs from ours");
    return;
  }
  auto secret = sa->dh->compute_shared_secret(ke_body->key_data);
  if (!secret) {
    close_sa(*sa, EngineEventKind::kFailed, "responder's KE: " + secret.error());
    return;
  }
  sa->spi_r = header.spi_r;
  sa->nonce_r = nonce->get<NoncePayload>()->data;
  sa->proposal = *selected;
  sa->prf = prf_of(*selected);
  auto keys = crypto::derive_initial_ike_sa_keys(sa->prf, selected->cipher_suite(), secret->span(), sa->nonce_i,
                                                 sa->nonce_r, spi_to_wire(sa->spi_i), spi_to_wire(sa->spi_r));
  if (!keys) {
    close_sa(*sa, EngineEventKind::kFailed, keys.error());
    return;
  }
  auto in = crypto::SkCipher::create(selected->cipher_suite(), keys->sk_er, keys->sk_ar);
  auto out = crypto::SkCipher::create(selected->cipher_suite(), keys->sk_ei, keys->sk_ai);
  if (!in || !out) {
    close_sa(*sa, EngineEventKind::kFailed, "SK cipher set-up failed");
    return;
  }
  sa->sk_d = std::move(keys->sk_d);
  sa->sk_pi = std::move(keys->sk_pi);
  sa->sk_pr = std::move(keys->sk_pr);
  sa->in_cipher = std::move(*in);
  sa->out_cipher = std::move(*out);
  sa->init_response = datagram.message;
  sa->dh.reset();
  // NAT detection from the responder's hashes, over both SPIs.
  auto spi_i = spi_to_wire(sa->spi_i);
  auto spi_r = spi_to_wire(sa->spi_r);
  auto sources = notifies_of(payloads, NotifyType::kNatDetectionSourceIp);
  if (!sources.empty()) {
    auto expected = crypto::nat_detection_hash(spi_i, spi_r, datagram.remote.address, datagram.remote.port);
    sa->peer_behind_nat = true;
    for (const auto* source : sources)
      if (expected && std::equal(expected->begin(), expected->end(), source->data.begin(), source->data.end()))
        sa->peer_behind_nat = false;
  }
  if (const auto* destination = message->find_notify(NotifyType::kNatDetectionDestinationIp)) {
    auto expected = crypto::nat_detection_hash(spi_i, spi_r, datagram.local.address, datagram.local.port);
    sa->local_behind_nat = !(expected && std::equal(expected->begin(), expected->end(), destination->data.begin(),
                                                    destination->data.end()));
  }
  sa->udp_encapsulation =
      sa->peer_behind_nat || sa->local_behind_nat || sa->profile->section->force_encapsulation;
  if (const auto* hashes = message->find_notify(NotifyType::kSignatureHashAlgorithms))
    if (auto list = notify_signature_hash_algorithms(*hashes)) sa->peer_signature_hashes = *list;
  sa->fragmentation = options_.fragment_size != 0 &&
                      message->find_notify(NotifyType::kIkev2FragmentationSupported) != nullptr;
  sa->outstanding.reset();
  sa->last_heard_ns = now();
  // RFC 7296 2.23: with a NAT, move to the NAT-T port from IKE_AUTH on.
  if (sa->udp_encapsulation && sa->local.port != options_.natt_port) {
    sa->local.port = options_.natt_port;
    // The responder's NAT-T port is the standard one whatever ours is.
    sa->remote.port = dp_link::kIkeNatTPort;
  }
  send_ike_auth(*sa);
}

void Engine::Impl::send_ike_auth(IkeSa& sa) {
  const RuntimeProfile& profile = *sa.profile;
  std::vector<Payload> payloads;
  payloads.push_back(make_id_payload(true, profile.local_id));
  auto auth = own_auth_payloads(sa, true);
  if (!auth) {
    close_sa(sa, EngineEventKind::kFailed, "our AUTH: " + auth.error());
    return;
  }
  // CERT goes before AUTH; own_auth_payloads returns them in that order.
  for (auto& payload : *auth)
    if (payload.type == PayloadType::kCertificate) payloads.push_back(payload);
  if (profile.section->remote_auth == config::AuthKind::kPublicKey && !profile.ca_hashes.empty())
    payloads.push_back(make_payload(CertReqPayload{CertEncoding::kX509Signature, profile.ca_hashes}));
  if (!sa.peer_id.data.empty()) payloads.push_back(make_id_payload(false, sa.peer_id));
  for (auto& payload : *auth)
    if (payload.type == PayloadType::kAuthentication) payloads.push_back(payload);
  const auto& request = sa.initiate;
  CpPayload cp;
  cp.type = CpType::kRequest;
  if (request.request_ip4) cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kInternalIp4Address));
  if (request.request_ip6) cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kInternalIp6Address));
  if (request.request_nat_info)
    cp.attributes.push_back(make_cp_request_attribute(CpAttributeType::kExternalSourceIp4NatInfo));
  if (!cp.attributes.empty()) payloads.push_back(make_payload(cp));
  uint32_t inbound_spi = allocate_inbound_spi();
  payloads.push_back(make_payload(profile.esp->offer(spi_bytes(inbound_spi), false)));
  TsPayload ts_i, ts_r;
  auto default_ts = [&](std::vector<shared::TrafficSelector> given) {
    if (!given.empty()) return given;
    std::vector<shared::TrafficSelector> any;
    if (request.request_ip4 || !request.request_ip6) any.push_back(any_of(shared::IpFamily::kIpv4));
    if (request.request_ip6) any.push_back(any_of(shared::IpFamily::kIpv6));
    return any;
  };
  for (const auto& s : default_ts(request.local_ts)) ts_i.selectors.push_back(to_wire(s));
  for (const auto& s : default_ts(request.remote_ts)) ts_r.selectors.push_back(to_wire(s));
  payloads.push_back(make_ts_payload(true, ts_i));
  payloads.push_back(make_ts_payload(false, ts_r));
  if (request.initial_contact) payloads.push_back(make_payload(make_notify(NotifyType::kInitialContact)));
  if (profile.section->mobike) payloads.push_back(make_payload(make_notify(NotifyType::kMobikeSupported)));
  sa.state = IkeSaState::kAuthSent;
  OutstandingRequest extra;
  extra.new_inbound_spi = inbound_spi;
  extra.offered = profile.esp->offer(spi_bytes(inbound_spi), false);
  auto sent = send_request(sa, RequestKind::kIkeAuth, ExchangeType::kIkeAuth, payloads, std::move(extra));
  if (!sent) {
    release_inbound_spi(inbound_spi);
    close_sa(sa, EngineEventKind::kFailed, "IKE_AUTH: " + sent.error());
  }
}

void Engine::Impl::initiator_auth_response(IkeSa& sa, OutstandingRequest& request,
                                           const std::vector<Payload>& inner) {
  const auto* id_r = find_body<IdPayload>(inner, PayloadType::kIdResponder);
  if (id_r == nullptr || find_body<AuthPayload>(inner, PayloadType::kAuthentication) == nullptr) {
    release_inbound_spi(request.new_inbound_spi);
    const auto* error = first_error_notify(inner);
    ++stats_.auth_failed;
    close_sa(sa, EngineEventKind::kFailed,
             "responder answered " + (error ? to_string(error->type) : std::string("without IDr/AUTH")));
    return;
  }
  if (!sa.peer_id.data.empty() && (id_r->type != sa.peer_id.type || id_r->data != sa.peer_id.data)) {
    release_inbound_spi(request.new_inbound_spi);
    ++stats_.auth_failed;
    close_sa(sa, EngineEventKind::kFailed, "responder is " + id_text(*id_r) + ", not " + id_text(sa.peer_id));
    return;
  }
  sa.peer_id = *id_r;
  sa.peer_id_text = id_text(*id_r);
  if (auto verified = verify_peer_auth(sa, *id_r, inner, false); !verified) {
    release_inbound_spi(request.new_inbound_spi);
    ++stats_.auth_failed;
    close_sa(sa, EngineEventKind::kFailed, "responder authentication failed: " + verified.error());
    return;
  }
  sa.mobike = find_notify(inner, NotifyType::kMobikeSupported) != nullptr && sa.profile->section->mobike;
  if (sa.mobike) learn_additional_addresses(sa, inner);
  if (const auto* cp = find_body<CpPayload>(inner, PayloadType::kConfiguration); cp && cp->type == CpType::kReply) {
    for (const auto& attribute : cp->attributes) {
      if (attribute.type == CpAttributeType::kInternalIp4Address) {
        if (auto address = cp_attribute_ip4(attribute)) sa.lease4 = policy::Lease{*address, 32};
      } else if (attribute.type == CpAttributeType::kInternalIp6Address) {
        if (auto value = cp_attribute_ip6_prefix(attribute)) sa.lease6 = policy::Lease{value->address, value->prefix_length};
      } else if (attribute.type == CpAttributeType::kExternalSourceIp4NatInfo) {
        if (auto value = cp_attribute_nat_info(attribute)) sa.nat_info = OuterEndpoint{value->address, value->port};
      }
    }
  }
  sa.tunnel_id = next_tunnel_id_++;
  by_tunnel_[sa.tunnel_id] = sa.id;
  const auto* sa_payload = find_body<SaPayload>(inner, PayloadType::kSecurityAssociation);
  const auto* ts_i = find_body<TsPayload>(inner, PayloadType::kTsInitiator);
  const auto* ts_r = find_body<TsPayload>(inner, PayloadType::kTsResponder);
  auto up_without_child = [&](const std::string& why) {
    release_inbound_spi(request.new_inbound_spi);
    establish(sa);
    emit(EngineEventKind::kFailed, sa, "first child SA not created: " + why);
  };
  if (!sa_payload || !ts_i || !ts_r) {
    const auto* error = first_error_notify(inner);
    return up_without_child(error ? to_string(error->type) : "no SA/TS payloads");
  }
  auto selected = policy::validate_reply(request.offered, *sa_payload, true);
  std::optional<shared::EspAlgorithm> algorithm;
  if (selected) algorithm = esp_algorithm_for(*selected);
  if (!selected || !algorithm) return up_without_child(selected ? "ESP algorithm not run by the data plane" : selected.error());
  ChildSa child;
  child.proposal = *selected;
  child.info.algorithm = *algorithm;
  child.info.esn = selected->esn == EsnId::kEsn;
  child.info.inbound_spi = request.new_inbound_spi;
  child.info.outbound_spi = spi_value(selected->proposal.spi);
  for (const auto& s : ts_i->selectors) child.info.local_ts.push_back(to_shared(s));
  for (const auto& s : ts_r->selectors) child.info.remote_ts.push_back(to_shared(s));
  if (child.info.local_ts.size() > shared::kMaxSelectors) child.info.local_ts.resize(shared::kMaxSelectors);
  if (child.info.remote_ts.size() > shared::kMaxSelectors) child.info.remote_ts.resize(shared::kMaxSelectors);
  child.info.tunnel_id = sa.tunnel_id;
  auto keys = crypto::derive_child_sa_keys(sa.prf, selected->cipher_suite(), sa.sk_d.span(), {}, sa.nonce_i, sa.nonce_r);
  if (!keys) return up_without_child(keys.error());
  if (!sa.initiate.install_children) {
    // Load tools: the child exists in IKE only (its SPI stays reserved).
    child.info.established_ns = now();
    sa.children.push_back(child);
    ++stats_.child_sas_installed;
    establish(sa);
    return;
  }
  auto results = install_child(sa, child, *keys, true);
  if (!results) {
    ++stats_.install_failures;
    return up_without_child(results.error());
  }
  child.info.installed = true;
  sa.children.push_back(child);
  sa.state = IkeSaState::kInstalling;
  uint64_t id = sa.id;
  uint32_t inbound_spi = child.info.inbound_spi;
  wait_for(id, std::move(*results), [this, id, inbound_spi](bool ok, const std::string& why) {
    IkeSa* current = find(id);
    if (current == nullptr) return;
    if (!ok) {
      for (auto it = current->children.begin(); it != current->children.end(); ++it)
        if (it->info.inbound_spi == inbound_spi) {
          remove_child_from_data_plane(*it);
          current->children.erase(it);
          break;
        }
      establish(*current);
      emit(EngineEventKind::kFailed, *current, "data plane refused the child SA: " + why);
      return;
    }
    ++stats_.child_sas_installed;
    for (auto& c : current->children)
      if (c.info.inbound_spi == inbound_spi) c.info.established_ns = now();
    establish(*current);
  });
}

shared::Status Engine::Impl::rekey_child(uint64_t id) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished || sa->rekeyed) return shared::make_error("IKE SA not established");
  if (sa->outstanding || sa->request_in_progress) return shared::make_error("an exchange of this IKE SA is in progress");
  ChildSa* old = nullptr;
  for (auto& child : sa->children)
    if (!child.rekeyed && !child.rekeying) {
      old = &child;
      break;
    }
  if (old == nullptr) return shared::make_error("IKE SA has no child SA to rekey");
  const RuntimeProfile& profile = *sa->profile;
  OutstandingRequest extra;
  extra.child_inbound_spi = old->info.inbound_spi;
  extra.new_inbound_spi = allocate_inbound_spi();
  auto nonce = crypto::make_nonce();
  if (!nonce) return shared::make_error(nonce.error());
  extra.nonce = std::move(*nonce);
  const auto& first = profile.esp->proposals().front();
  bool pfs = !first.dh.empty();
  if (pfs) {
    auto dh = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(first.dh.front()));
    if (!dh) return shared::make_error(dh.error());
    extra.dh = std::move(*dh);
  }
  extra.offered = profile.esp->offer(spi_bytes(extra.new_inbound_spi), pfs);
  NotifyPayload rekey = make_notify(NotifyType::kRekeySa);
  rekey.protocol = ProtocolId::kEsp;
  rekey.spi = spi_bytes(old->info.inbound_spi);
  std::vector<Payload> payloads;
  payloads.push_back(make_payload(std::move(rekey)));
  payloads.push_back(make_payload(extra.offered));
  payloads.push_back(make_payload(NoncePayload{extra.nonce}));
  if (extra.dh) payloads.push_back(make_payload(KePayload{static_cast<DhId>(extra.dh->group()), extra.dh->public_value()}));
  TsPayload ts_i, ts_r;
  for (const auto& s : old->info.local_ts) ts_i.selectors.push_back(to_wire(s));
  for (const auto& s : old->info.remote_ts) ts_r.selectors.push_back(to_wire(s));
  payloads.push_back(make_ts_payload(true, ts_i));
  payloads.push_back(make_ts_payload(false, ts_r));
  uint32_t new_spi = extra.new_inbound_spi;
  ChildSa* rekeyed_child = old;
  auto sent = send_request(*sa, RequestKind::kRekeyChild, ExchangeType::kCreateChildSa, payloads, std::move(extra));
  if (!sent)
    release_inbound_spi(new_spi);
  else
    rekeyed_child->rekeying = true;  // until the new child is in, or the rekey failed
  return sent;
}

void Engine::Impl::initiator_rekey_child_response(IkeSa& sa, OutstandingRequest& request,
                                                  const std::vector<Payload>& inner) {
  auto retry_later = [&](const std::string& why) {
    release_inbound_spi(request.new_inbound_spi);
    for (auto& child : sa.children)
      if (child.info.inbound_spi == request.child_inbound_spi) {
        child.rekeying = false;
        child.info.rekey_at_ns = now() + 10 * kNsPerSecond;
      }
    emit(EngineEventKind::kFailed, sa, "child rekey: " + why);
  };
  ChildSa* old = nullptr;
  for (auto& child : sa.children)
    if (child.info.inbound_spi == request.child_inbound_spi) old = &child;
  if (old == nullptr) return retry_later("the child went away meanwhile");
  if (const auto* error = first_error_notify(inner)) return retry_later("peer answered " + to_string(error->type));
  const auto* sa_payload = find_body<SaPayload>(inner, PayloadType::kSecurityAssociation);
  const auto* nonce = find_body<NoncePayload>(inner, PayloadType::kNonce);
  const auto* ke = find_body<KePayload>(inner, PayloadType::kKeyExchange);
  const auto* ts_i = find_body<TsPayload>(inner, PayloadType::kTsInitiator);
  const auto* ts_r = find_body<TsPayload>(inner, PayloadType::kTsResponder);
  if (!sa_payload || !nonce || !ts_i || !ts_r) return retry_later("answer without SA/Nr/TS");
  auto selected = policy::validate_reply(request.offered, *sa_payload, !request.dh);
  std::optional<shared::EspAlgorithm> algorithm;
  if (selected) algorithm = esp_algorithm_for(*selected);
  if (!selected || !algorithm) return retry_later(selected ? "unsupported ESP algorithm" : selected.error());
  crypto::SecureBytes pfs_secret;
  if (request.dh && selected->dh != DhId::kNone) {
    if (!ke) return retry_later("no KEr with PFS");
    auto secret = request.dh->compute_shared_secret(ke->key_data);
    if (!secret) return retry_later("KEr: " + secret.error());
    pfs_secret = std::move(*secret);
  }
  auto keys = crypto::derive_child_sa_keys(sa.prf, selected->cipher_suite(), sa.sk_d.span(), pfs_secret.span(),
                                           request.nonce, nonce->data);
  if (!keys) return retry_later(keys.error());
  ChildSa child;
  child.proposal = *selected;
  child.info.algorithm = *algorithm;
  child.info.esn = selected->esn == EsnId::kEsn;
  child.info.inbound_spi = request.new_inbound_spi;
  child.info.outbound_spi = spi_value(selected->proposal.spi);
  for (const auto& s : ts_i->selectors) child.info.local_ts.push_back(to_shared(s));
  for (const auto& s : ts_r->selectors) child.info.remote_ts.push_back(to_shared(s));
  if (child.info.local_ts.size() > shared::kMaxSelectors) child.info.local_ts.resize(shared::kMaxSelectors);
  if (child.info.remote_ts.size() > shared::kMaxSelectors) child.info.remote_ts.resize(shared::kMaxSelectors);
  child.info.tunnel_id = sa.tunnel_id;
  bool install = old->info.installed;
  uint32_t old_inbound = old->info.inbound_spi;
  uint32_t old_outbound = old->info.outbound_spi;
  (void)old_outbound;
  const auto& section = *sa.profile->section;
  child.info.rekey_at_ns = now() + uint64_t(section.child_lifetime_s) * kNsPerSecond -
                           uint64_t(section.rekey_margin_s) * kNsPerSecond;
  uint64_t id = sa.id;
  uint32_t inbound_spi = child.info.inbound_spi;
  // Make before break: the new pair is in the data plane (its outbound SA
  // takes the routes over) before the old one is deleted.
  auto finish = [this, id, inbound_spi, old_inbound](bool ok, const std::string& why) {
    IkeSa* current = find(id);
    if (current == nullptr) return;
    if (!ok) {
      for (auto it = current->children.begin(); it != current->children.end(); ++it)
        if (it->info.inbound_spi == inbound_spi) {
          remove_child_from_data_plane(*it);
          current->children.erase(it);
          break;
        }
      for (auto& c : current->children)
        if (c.info.inbound_spi == old_inbound) {
          c.rekeying = false;
          c.info.rekey_at_ns = now() + 10 * kNsPerSecond;
        }
      emit(EngineEventKind::kFailed, *current, "child rekey: data plane refused the new SAs: " + why);
      schedule(*current);
      return;
    }
    ++stats_.child_sas_rekeyed;
    ++stats_.child_sas_installed;
    for (auto& c : current->children) {
      if (c.info.inbound_spi == inbound_spi) c.info.established_ns = now();
      if (c.info.inbound_spi == old_inbound) {
        c.rekeyed = true;
        c.rekeying = false;
        c.info.rekey_at_ns = 0;
        // Deleted by the next poll (or sooner below): the initiator of a
        // rekey deletes the old child (RFC 7296 2.8).
        c.retire_at_ns = now();
      }
    }
    emit(EngineEventKind::kChildInstalled, *current, "child rekeyed");
    schedule(*current);
  };
  if (!install) {
    child.info.established_ns = now();
    sa.children.push_back(child);
    finish(true, "");
    return;
  }
  auto results = install_child(sa, child, *keys, true);
  if (!results) {
    ++stats_.install_failures;
    return retry_later(results.error());
  }
  child.info.installed = true;
  sa.children.push_back(child);
  wait_for(id, std::move(*results), finish);
}

shared::Status Engine::Impl::rekey_ike(uint64_t id) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished || sa->rekeyed) return shared::make_error("IKE SA not established");
  if (sa->outstanding || sa->request_in_progress) return shared::make_error("an exchange of this IKE SA is in progress");
  OutstandingRequest extra;
  auto spi = crypto::make_ike_spi();
  auto nonce = crypto::make_nonce();
  if (!spi || !nonce) return shared::make_error("random failure");
  extra.new_ike_spi = spi_from_wire(*spi);
  extra.nonce = std::move(*nonce);
  // The group negotiated for this IKE SA is the one the peer accepts.
  auto group = sa->proposal ? sa->proposal->dh : sa->profile->ike->proposals().front().dh.front();
  auto dh = crypto::DhKeyPair::generate(static_cast<crypto::DhGroup>(group));
  if (!dh) return shared::make_error(dh.error());
  extra.dh = std::move(*dh);
  auto wire = spi_to_wire(extra.new_ike_spi);
  extra.offered = sa->profile->ike->offer(std::vector<uint8_t>(wire.begin(), wire.end()));
  std::vector<Payload> payloads;
  payloads.push_back(make_payload(extra.offered));
  payloads.push_back(make_payload(NoncePayload{extra.nonce}));
  payloads.push_back(make_payload(KePayload{static_cast<DhId>(extra.dh->group()), extra.dh->public_value()}));
  return send_request(*sa, RequestKind::kRekeyIke, ExchangeType::kCreateChildSa, payloads, std::move(extra));
}

IkeSa& Engine::Impl::successor_of(IkeSa& old_ref, bool initiator, uint64_t spi_i, uint64_t spi_r) {
  uint64_t old_id = old_ref.id;
  IkeSa& fresh = create_sa(initiator);
  IkeSa& old = *find(old_id);
  fresh.lease_owner = old.lease_owner;
  fresh.spi_i = spi_i;
  fresh.spi_r = spi_r;
  fresh.local = old.local;
  fresh.remote = old.remote;
  fresh.port_id = old.port_id;
  fresh.profile = old.profile;
  fresh.peer_behind_nat = old.peer_behind_nat;
  fresh.local_behind_nat = old.local_behind_nat;
  fresh.udp_encapsulation = old.udp_encapsulation;
  fresh.mobike = old.mobike;
  fresh.original_initiator = old.original_initiator;
  fresh.peer_additional_addresses = old.peer_additional_addresses;
  fresh.moves = old.moves;
  // RFC 7383 2.3: the rekeyed IKE SA keeps what IKE_SA_INIT negotiated.
  fresh.fragmentation = old.fragmentation;
  fresh.peer_signature_hashes = old.peer_signature_hashes;
  fresh.peer_id = old.peer_id;
  fresh.peer_id_text = old.peer_id_text;
  index_peer(fresh);
  fresh.children = std::move(old.children);
  old.children.clear();
  fresh.tunnel_id = old.tunnel_id;
  by_tunnel_[fresh.tunnel_id] = fresh.id;
  fresh.lease4 = old.lease4;
  fresh.lease6 = old.lease6;
  fresh.nat_info = old.nat_info;
  fresh.initiate = old.initiate;
  fresh.state = IkeSaState::kEstablished;
  fresh.established_ns = now();
  fresh.last_heard_ns = fresh.established_ns;
  const auto& section = *fresh.profile->section;
  fresh.rekey_at_ns = fresh.established_ns + uint64_t(section.ike_lifetime_s) * kNsPerSecond -
                      uint64_t(section.rekey_margin_s) * kNsPerSecond;
  by_local_spi_[initiator ? spi_i : spi_r] = fresh.id;
  old.rekeyed = true;
  old.retire_at_ns = now() + 30 * kNsPerSecond;
  ++stats_.ike_sas_rekeyed;
  return fresh;
}

void Engine::Impl::initiator_rekey_ike_response(IkeSa& sa, OutstandingRequest& request,
                                                const std::vector<Payload>& inner) {
  auto retry_later = [&](const std::string& why) {
    sa.rekey_at_ns = now() + 10 * kNsPerSecond;
    emit(EngineEventKind::kFailed, sa, "IKE rekey: " + why);
    schedule(sa);
  };
  if (const auto* error = first_error_notify(inner)) return retry_later("peer answered " + to_string(error->type));
  const auto* sa_payload = find_body<SaPayload>(inner, PayloadType::kSecurityAssociation);
  const auto* nonce = find_body<NoncePayload>(inner, PayloadType::kNonce);
  const auto* ke = find_body<KePayload>(inner, PayloadType::kKeyExchange);
  if (!sa_payload || !nonce || !ke) return retry_later("answer without SA/Nr/KEr");
  auto selected = policy::validate_reply(request.offered, *sa_payload);
  if (!selected) return retry_later(selected.error());
  if (selected->proposal.spi.size() != 8) return retry_later("responder SPI not 8 bytes");
  auto secret = request.dh->compute_shared_secret(ke->key_data);
  if (!secret) return retry_later("KEr: " + secret.error());
  uint64_t new_spi_r = spi_from_wire(selected->proposal.spi);
  auto keys = crypto::derive_rekeyed_ike_sa_keys(sa.prf, sa.sk_d.span(), prf_of(*selected), selected->cipher_suite(),
                                                 secret->span(), request.nonce, nonce->data,
                                                 spi_to_wire(request.new_ike_spi), spi_to_wire(new_spi_r));
  if (!keys) return retry_later(keys.error());
  auto in = crypto::SkCipher::create(selected->cipher_suite(), keys->sk_er, keys->sk_ar);
  auto out = crypto::SkCipher::create(selected->cipher_suite(), keys->sk_ei, keys->sk_ai);
  if (!in || !out) return retry_later("SK cipher set-up failed");
  uint64_t old_id = sa.id;
  IkeSa& fresh = successor_of(sa, true, request.new_ike_spi, new_spi_r);
  fresh.proposal = *selected;
  fresh.prf = prf_of(*selected);
  fresh.sk_d = std::move(keys->sk_d);
  fresh.sk_pi = std::move(keys->sk_pi);
  fresh.sk_pr = std::move(keys->sk_pr);
  fresh.in_cipher = std::move(*in);
  fresh.out_cipher = std::move(*out);
  IkeSa& old = *find(old_id);
  emit(EngineEventKind::kIkeRekeyed, old, std::to_string(fresh.id));
  schedule(fresh);
  // The rekey's initiator deletes the old IKE SA (RFC 7296 2.18).
  DeletePayload del;
  del.protocol = ProtocolId::kIke;
  if (send_request(old, RequestKind::kDeleteIke, ExchangeType::kInformational, {make_payload(std::move(del))}))
    old.state = IkeSaState::kDeleting;
  schedule(old);
}

shared::Status Engine::Impl::terminate(uint64_t id) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished) {
    close_sa(*sa, EngineEventKind::kDeleted, "terminated before it was established");
    return {};
  }
  if (sa->outstanding) {
    // The exchange in flight is abandoned: a DELETE supersedes it.
    sa->outstanding.reset();
  }
  DeletePayload del;
  del.protocol = ProtocolId::kIke;
  auto sent = send_request(*sa, RequestKind::kDeleteIke, ExchangeType::kInformational, {make_payload(std::move(del))});
  if (!sent) return sent;
  sa->state = IkeSaState::kDeleting;
  return {};
}

}  // namespace segw::cp::ike
