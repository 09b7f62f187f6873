// Moving IKE SAs between paths: MOBIKE (RFC 4555) as responder and as
// initiator, the return routability check shared with NAT remaps (RFC 7296
// 2.23, remap = verify), external moves, and the one function that puts an
// IKE SA and all its child SAs on a new path.
//
// A move is always one data-plane path update for the IKE SA's tunnel: the
// children share it, so no packet sees some of them on the new path and
// some on the old one, and sequence numbers and replay windows stay.
#include <algorithm>
#include <optional>
#include <string>

#include "controlplane/crypto/nat_detection.h"
#include "controlplane/crypto/random.h"
#include "controlplane/ike/engine/engine_impl.h"
#include "controlplane/ike/engine/engine_support.h"

namespace segw::cp::ike {

namespace {

constexpr uint64_t kNsPerMs = 1'000'000;
// A remap check is sent once and answered within this (or the configured
// retransmission timeout when longer); also the least time between two
// checks of one IKE SA.
constexpr uint64_t kRemapCheckIntervalNs = 1'000'000'000;

std::string text(const OuterEndpoint& e) {
  std::string out;
  if (e.address.is_ipv6()) out.push_back('[');
  out.append(e.address.to_string());
  if (e.address.is_ipv6()) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(e.port));
  return out;
}

bool hash_matches(const shared::Result<crypto::NatDetectionHash>& expected, const NotifyPayload& notify) {
  return expected && std::equal(expected->begin(), expected->end(), notify.data.begin(), notify.data.end());
}

// NAT detection over an established IKE SA's SPIs and this message's
// addresses (RFC 4555 3.5). nullopt when the message carries no NAT-D pair:
// the earlier decision stands.
struct NatState {
  bool peer_behind_nat;
  bool local_behind_nat;
};
std::optional<NatState> detect_nat(uint64_t spi_i, uint64_t spi_r, const dp_link::IkeDatagram& datagram,
                                   const std::vector<Payload>& inner) {
  auto sources = notifies_of(inner, NotifyType::kNatDetectionSourceIp);
  const auto* destination = find_notify(inner, NotifyType::kNatDetectionDestinationIp);
  if (sources.empty() || destination == nullptr) return std::nullopt;
  auto i = spi_to_wire(spi_i);
  auto r = spi_to_wire(spi_r);
  auto expected_source = crypto::nat_detection_hash(i, r, datagram.remote.address, datagram.remote.port);
  auto expected_destination = crypto::nat_detection_hash(i, r, datagram.local.address, datagram.local.port);
  NatState state;
  state.peer_behind_nat = std::none_of(sources.begin(), sources.end(),
                                       [&](const NotifyPayload* n) { return hash_matches(expected_source, *n); });
  state.local_behind_nat = !hash_matches(expected_destination, *destination);
  return state;
}

// RFC 4555 4.6: the addresses and ports the sender used must be what the
// IP header shows, or a NAT sits in between.
bool no_nats_allowed_met(const NotifyPayload& notify, const dp_link::IkeDatagram& datagram) {
  return notify.data == no_nats_allowed_data(datagram.remote, datagram.local);
}

}  // namespace

// ------------------------------------------------------------ paths

void Engine::Impl::apply_path(IkeSa& sa, const OuterEndpoint& local, const OuterEndpoint& remote,
                              bool encapsulation, const std::string& how, bool force) {
  OuterEndpoint from = sa.remote;
  bool changed = force || sa.local != local || sa.remote != remote || sa.udp_encapsulation != encapsulation;
  sa.local = local;
  sa.remote = remote;
  sa.udp_encapsulation = encapsulation;
  if (!changed) return;
  ++sa.moves;
  // All children of the IKE SA share one tunnel: one path update moves
  // them together, keeping sequence numbers and replay windows.
  bool installed = std::any_of(sa.children.begin(), sa.children.end(),
                               [](const ChildSa& c) { return c.info.installed; });
  if (installed) {
    if (auto moved = installer_.update_path(sa.tunnel_id, path_of(sa)))
      removals_.push_back(std::move(*moved));
    else
      ++stats_.install_failures;
  }
  std::string detail = how;
  detail.append(": ").append(text(from)).append(" -> ").append(text(remote));
  if (!encapsulation) detail.append(" (UDP encapsulation off)");
  emit(EngineEventKind::kMoved, sa, detail);
}

void Engine::Impl::move_sa(IkeSa& sa, const OuterEndpoint& to, const std::string& how) {
  apply_path(sa, sa.local, to, sa.udp_encapsulation, how);
}

void Engine::Impl::start_remap_check(IkeSa& sa, const OuterEndpoint& to, std::optional<OuterEndpoint> new_local,
                                     std::optional<bool> new_encapsulation) {
  // One check at a time and at most one a second per IKE SA: replayed
  // packets from many spoofed sources cannot make us a packet cannon.
  uint64_t t = now();
  if (sa.last_remap_check_ns != 0 && t - sa.last_remap_check_ns < kRemapCheckIntervalNs) {
    ++stats_.remap_checks_rate_limited;
    return;
  }
  if (sa.outstanding) {
    // A liveness check (or an older remap check) still in flight would
    // hold the window for up to dpd_timeout_s while the peer is no longer
    // where it went: re-aim it at the candidate instead. Its authenticated
    // answer from there, to this message ID, is the proof we need. Any
    // other exchange keeps the window; the next signal retries.
    auto& request = *sa.outstanding;
    if (request.kind != RequestKind::kLiveness && request.kind != RequestKind::kRemapCheck) {
      ++stats_.remap_checks_rate_limited;
      return;
    }
    sa.last_remap_check_ns = t;
    request.kind = RequestKind::kRemapCheck;
    request.destination = to;
    request.new_local = new_local;
    request.new_encapsulation = new_encapsulation;
    request.tries = 0;
    request.first_sent_ns = t;
    request.next_send_ns = t + std::max(kRemapCheckIntervalNs, uint64_t(options_.retransmit_timeout_ms) * kNsPerMs);
    ++stats_.remap_checks_sent;
    transmit(sa, request.datagrams);
    schedule(sa);
    return;
  }
  auto cookie = crypto::random_bytes(16);
  if (!cookie) return;
  sa.last_remap_check_ns = t;
  OutstandingRequest extra;
  extra.destination = to;
  extra.cookie2 = *cookie;
  extra.new_local = new_local;
  extra.new_encapsulation = new_encapsulation;
  // Sent from the address the peer reached us at (MOBIKE may have changed
  // it); the IKE SA itself moves only with the answer.
  OuterEndpoint current_local = sa.local;
  if (new_local) sa.local = *new_local;
  auto sent = send_request(sa, RequestKind::kRemapCheck, ExchangeType::kInformational,
                           {make_payload(make_notify(NotifyType::kCookie2, *cookie))}, std::move(extra));
  sa.local = current_local;
  if (!sent) return;
  ++stats_.remap_checks_sent;
  sa.outstanding->next_send_ns =
      t + std::max(kRemapCheckIntervalNs, uint64_t(options_.retransmit_timeout_ms) * kNsPerMs);
  schedule(sa);
}

void Engine::Impl::remap_signal(IkeSa& sa, const OuterEndpoint& from, const char* source) {
  if (from == sa.remote) return;
  if (sa.state != IkeSaState::kEstablished || sa.profile == nullptr) {
    ++stats_.remaps_ignored;
    return;
  }
  switch (sa.profile->section->remap) {
    case config::RemapPolicy::kOff:
      ++stats_.remaps_ignored;
      return;
    case config::RemapPolicy::kFollow:
      ++stats_.remaps_followed;
      move_sa(sa, from, std::string("followed ") + source);
      return;
    case config::RemapPolicy::kVerify:
      break;
  }
  start_remap_check(sa, from, std::nullopt, std::nullopt);
}

shared::Status Engine::Impl::move(uint64_t id, const OuterEndpoint& to) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished || sa->rekeyed)
    return shared::make_error("IKE SA " + std::to_string(id) + " is " + to_string(sa->state) +
                              (sa->rekeyed ? " (rekeyed)" : "") + ", not established");
  if (to.address.is_ipv4() != sa->local.address.is_ipv4())
    return shared::make_error("address family of " + to.address.to_string() + " differs from the IKE SA's (" +
                              sa->local.address.to_string() + ")");
  if (to.port == 0) return shared::make_error("port 0");
  ++stats_.external_moves;
  // An operator's decision: the IKE SA follows too, so liveness checks and
  // rekeys go where the tunnel now is.
  move_sa(*sa, to, "external");
  schedule(*sa);
  return {};
}

// ------------------------------------------------------------ MOBIKE, common

std::vector<Payload> Engine::Impl::nat_detection_notifies(const IkeSa& sa, const OuterEndpoint& local,
                                                          const OuterEndpoint& remote) const {
  std::vector<Payload> out;
  auto spi_i = spi_to_wire(sa.spi_i);
  auto spi_r = spi_to_wire(sa.spi_r);
  auto source = crypto::nat_detection_hash(spi_i, spi_r, local.address, local.port);
  auto destination = crypto::nat_detection_hash(spi_i, spi_r, remote.address, remote.port);
  if (!source || !destination) return out;
  std::vector<uint8_t> source_hash(source->begin(), source->end());
  if (sa.profile && sa.profile->section->force_encapsulation) {
    // As in IKE_SA_INIT: a hash nobody can match keeps ESP in UDP.
    if (auto fake = crypto::random_bytes(kNatDetectionHashLength)) source_hash = *fake;
  }
  out.push_back(make_payload(make_notify(NotifyType::kNatDetectionSourceIp, std::move(source_hash))));
  out.push_back(make_payload(
      make_notify(NotifyType::kNatDetectionDestinationIp, {destination->begin(), destination->end()})));
  return out;
}

void Engine::Impl::learn_additional_addresses(IkeSa& sa, const std::vector<Payload>& inner) {
  if (find_notify(inner, NotifyType::kNoAdditionalAddresses)) {
    sa.peer_additional_addresses.clear();
    return;
  }
  std::vector<shared::IpAddress> found;
  for (const auto& payload : inner) {
    const auto* notify = payload.get<NotifyPayload>();
    if (notify == nullptr || (notify->type != NotifyType::kAdditionalIp4Address &&
                              notify->type != NotifyType::kAdditionalIp6Address))
      continue;
    if (auto address = notify_additional_address(*notify)) found.push_back(*address);
    if (found.size() >= 16) break;  // a peer's list, bounded
  }
  // RFC 4555 3.6: a message with ADDITIONAL_* replaces the whole list.
  if (!found.empty()) sa.peer_additional_addresses = std::move(found);
}

std::vector<Payload> Engine::Impl::own_additional_addresses(const IkeSa& sa) const {
  std::vector<Payload> out;
  if (sa.profile)
    for (const auto& address : sa.profile->section->additional_addresses)
      if (address != sa.local.address) out.push_back(make_payload(make_additional_address_notify(address)));
  if (out.empty()) out.push_back(make_payload(make_notify(NotifyType::kNoAdditionalAddresses)));
  return out;
}

// ------------------------------------------------------------ MOBIKE, responder

void Engine::Impl::responder_update_addresses(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                              const IkeHeader& header, const std::vector<Payload>& inner) {
  ++stats_.mobike_updates_received;
  learn_additional_addresses(sa, inner);
  auto answer = [&](std::vector<Payload> payloads) {
    if (const auto* cookie2 = find_notify(inner, NotifyType::kCookie2))
      payloads.push_back(make_payload(make_notify(NotifyType::kCookie2, cookie2->data)));
    send_response(sa, datagram, header, payloads);
    schedule(sa);
  };
  auto refuse = [&](NotifyType why) { answer({make_payload(make_notify(why))}); };
  // RFC 4555 3.5: an update older than one already processed changes
  // nothing (its path is stale); it is still answered.
  if (sa.have_update_id && header.message_id < sa.latest_update_id) {
    ++stats_.mobike_updates_stale;
    return answer({});
  }
  if (const auto* no_nats = find_notify(inner, NotifyType::kNoNatsAllowed);
      no_nats && !no_nats_allowed_met(*no_nats, datagram)) {
    ++stats_.mobike_nat_refused;
    return refuse(NotifyType::kUnexpectedNatDetected);
  }
  const auto& allowed = sa.profile->section->mobike_allowed_networks;
  if (std::none_of(allowed.begin(), allowed.end(),
                   [&](const shared::IpPrefix& p) { return p.contains(datagram.remote.address); })) {
    ++stats_.mobike_unacceptable;
    return refuse(NotifyType::kUnacceptableAddresses);
  }
  sa.have_update_id = true;
  sa.latest_update_id = header.message_id;

  // NAT detection over this message's addresses (RFC 4555 3.5): it decides
  // whether the children keep UDP encapsulation on the new path. Without
  // NAT-D payloads the old decision stands.
  bool encapsulation = sa.udp_encapsulation;
  if (auto nat = detect_nat(sa.spi_i, sa.spi_r, datagram, inner)) {
    sa.peer_behind_nat = nat->peer_behind_nat;
    sa.local_behind_nat = nat->local_behind_nat;
    encapsulation = nat->peer_behind_nat || nat->local_behind_nat || sa.profile->section->force_encapsulation;
  }
  std::vector<Payload> reply;
  if (find_notify(inner, NotifyType::kNatDetectionSourceIp) || find_notify(inner, NotifyType::kNatDetectionDestinationIp))
    reply = nat_detection_notifies(sa, datagram.local, datagram.remote);
  answer(std::move(reply));

  OuterEndpoint local = datagram.local;
  if (datagram.remote == sa.remote && local == sa.local) {
    // Same path (a NAT-D refresh, or encapsulation switched): no check needed.
    apply_path(sa, local, datagram.remote, encapsulation, "MOBIKE");
    return;
  }
  // The update is authenticated and numbered, but where it came from is not:
  // an on-path attacker can hold the device's update back and send it on
  // from its own address. Under verify the tunnel moves only once the new
  // address answers our own check (RFC 4555 5.2 return routability).
  if (sa.profile->section->remap == config::RemapPolicy::kVerify) {
    sa.last_remap_check_ns = 0;  // an explicit request from the peer: not rate-limited
    start_remap_check(sa, datagram.remote, local, encapsulation);
    return;
  }
  apply_path(sa, local, datagram.remote, encapsulation, "MOBIKE");
}

// ------------------------------------------------------------ MOBIKE, initiator

shared::Status Engine::Impl::update_local_address(uint64_t id, const OuterEndpoint& new_local) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished || sa->rekeyed)
    return shared::make_error("IKE SA " + std::to_string(id) + " is not established");
  if (!sa->mobike) return shared::make_error("MOBIKE was not negotiated for IKE SA " + std::to_string(id));
  if (!sa->original_initiator)
    return shared::make_error("only the original initiator sends UPDATE_SA_ADDRESSES (RFC 4555 3.1)");
  // Our old address is gone: whatever is in flight goes from the new one.
  sa->local = new_local;
  sa->pending_local_update = new_local;
  if (sa->outstanding) {
    if (sa->outstanding->kind == RequestKind::kMobikeUpdate) sa->outstanding.reset();  // superseded
    else transmit(*sa, sa->outstanding->datagrams);
  }
  if (!sa->outstanding) return send_update_addresses(*sa);
  return {};  // sent once the window is free (on_timer / handle_response)
}

shared::Status Engine::Impl::send_update_addresses(IkeSa& sa) {
  sa.pending_local_update.reset();
  auto cookie = crypto::random_bytes(16);
  if (!cookie) return shared::make_error("no random bytes");
  std::vector<Payload> payloads;
  payloads.push_back(make_payload(make_notify(NotifyType::kUpdateSaAddresses)));
  for (auto& p : nat_detection_notifies(sa, sa.local, sa.remote)) payloads.push_back(std::move(p));
  if (sa.initiate.no_nats_allowed)
    payloads.push_back(make_payload(make_notify(NotifyType::kNoNatsAllowed, no_nats_allowed_data(sa.local, sa.remote))));
  payloads.push_back(make_payload(make_notify(NotifyType::kCookie2, *cookie)));
  OutstandingRequest extra;
  extra.cookie2 = *cookie;
  extra.new_local = sa.local;
  // Path probing (RFC 4555 3.5): if the current peer address does not
  // answer, the update goes to its other addresses in turn.
  for (const auto& address : sa.peer_additional_addresses)
    if (address != sa.remote.address && address.is_ipv4() == sa.local.address.is_ipv4())
      extra.probe_addresses.push_back(address);
  auto sent = send_request(sa, RequestKind::kMobikeUpdate, ExchangeType::kInformational, payloads, std::move(extra));
  if (sent) ++stats_.mobike_updates_sent;
  return sent;
}

void Engine::Impl::initiator_update_response(IkeSa& sa, const dp_link::IkeDatagram& datagram,
                                             OutstandingRequest& request, const std::vector<Payload>& inner) {
  for (NotifyType refusal : {NotifyType::kUnexpectedNatDetected, NotifyType::kUnacceptableAddresses}) {
    if (find_notify(inner, refusal)) {
      ++stats_.mobike_updates_refused;
      emit(EngineEventKind::kMoveRefused, sa, std::string("peer answered ") + to_string(refusal));
      return;
    }
  }
  // RFC 4555 3.5: the responder MUST echo COOKIE2; a reply without it (or
  // with another) does not prove the path.
  const NotifyPayload* echoed = find_notify(inner, NotifyType::kCookie2);
  if (echoed == nullptr || echoed->data != request.cookie2) {
    ++stats_.mobike_updates_refused;
    emit(EngineEventKind::kMoveRefused, sa, "COOKIE2 not echoed");
    return;
  }
  learn_additional_addresses(sa, inner);
  bool encapsulation = sa.udp_encapsulation;
  if (auto nat = detect_nat(sa.spi_i, sa.spi_r, datagram, inner)) {
    sa.peer_behind_nat = nat->peer_behind_nat;
    sa.local_behind_nat = nat->local_behind_nat;
    encapsulation = nat->peer_behind_nat || nat->local_behind_nat || sa.profile->section->force_encapsulation;
  }
  // The path that answered: our new address, and the peer address the
  // update reached (another one after path probing). The data plane still
  // has our old address even when sa.local already shows the new one.
  apply_path(sa, datagram.local, datagram.remote, encapsulation, "MOBIKE update", true);
}

shared::Status Engine::Impl::check_liveness(uint64_t id) {
  IkeSa* sa = find(id);
  if (sa == nullptr) return shared::make_error("no IKE SA " + std::to_string(id));
  if (sa->state != IkeSaState::kEstablished || sa->rekeyed)
    return shared::make_error("IKE SA " + std::to_string(id) + " is not established");
  return send_request(*sa, RequestKind::kLiveness, ExchangeType::kInformational, {});
}

// ------------------------------------------------------------ Engine

shared::Status Engine::check_liveness(uint64_t ike_sa_id) { return impl_->check_liveness(ike_sa_id); }

shared::Status Engine::move(uint64_t ike_sa_id, const OuterEndpoint& to) { return impl_->move(ike_sa_id, to); }
shared::Status Engine::update_local_address(uint64_t ike_sa_id, const OuterEndpoint& new_local) {
  return impl_->update_local_address(ike_sa_id, new_local);
}

}  // namespace segw::cp::ike
