// SA proposal policy: keyword parsing, validation, the responder's choice
// and the initiator's check of the reply.
#include "controlplane/policy/proposals.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace segw::cp::policy {

using ike::DhId;
using ike::EncrId;
using ike::EsnId;
using ike::IntegId;
using ike::PrfId;
using ike::ProtocolId;
using ike::TransformType;
using shared::make_error;

namespace {

// Keyword tables. Each wire value has exactly one canonical keyword (the
// first entry for it), used by to_string.
struct EncrKeyword { const char* name; EncrSpec spec; };
constexpr std::array kEncrKeywords = {
    EncrKeyword{"aes128", {EncrId::kAesCbc, 128}},
    EncrKeyword{"aes192", {EncrId::kAesCbc, 192}},
    EncrKeyword{"aes256", {EncrId::kAesCbc, 256}},
    EncrKeyword{"aes128gcm16", {EncrId::kAesGcm16, 128}},
    EncrKeyword{"aes192gcm16", {EncrId::kAesGcm16, 192}},
    EncrKeyword{"aes256gcm16", {EncrId::kAesGcm16, 256}},
    EncrKeyword{"aes128gcm128", {EncrId::kAesGcm16, 128}},  // ICV bits, strongSwan alias
    EncrKeyword{"aes192gcm128", {EncrId::kAesGcm16, 192}},
    EncrKeyword{"aes256gcm128", {EncrId::kAesGcm16, 256}},
    EncrKeyword{"aes128gcm", {EncrId::kAesGcm16, 128}},
    EncrKeyword{"aes192gcm", {EncrId::kAesGcm16, 192}},
    EncrKeyword{"aes256gcm", {EncrId::kAesGcm16, 256}},
};
struct IntegKeyword { const char* name; IntegId id; std::optional<PrfId> implied_prf; };
constexpr std::array kIntegKeywords = {
    IntegKeyword{"sha1", IntegId::kHmacSha1_96, std::nullopt},  // PRF_HMAC_SHA1 unsupported
    IntegKeyword{"sha256", IntegId::kHmacSha2_256_128, PrfId::kHmacSha2_256},
    IntegKeyword{"sha384", IntegId::kHmacSha2_384_192, PrfId::kHmacSha2_384},
    IntegKeyword{"sha512", IntegId::kHmacSha2_512_256, PrfId::kHmacSha2_512},
    IntegKeyword{"sha", IntegId::kHmacSha1_96, std::nullopt},
    IntegKeyword{"sha2_256", IntegId::kHmacSha2_256_128, PrfId::kHmacSha2_256},
    IntegKeyword{"sha2_384", IntegId::kHmacSha2_384_192, PrfId::kHmacSha2_384},
    IntegKeyword{"sha2_512", IntegId::kHmacSha2_512_256, PrfId::kHmacSha2_512},
};
struct PrfKeyword { const char* name; PrfId id; };
constexpr std::array kPrfKeywords = {
    PrfKeyword{"prfsha256", PrfId::kHmacSha2_256},
    PrfKeyword{"prfsha384", PrfId::kHmacSha2_384},
    PrfKeyword{"prfsha512", PrfId::kHmacSha2_512},
};
struct DhKeyword { const char* name; DhId id; };
constexpr std::array kDhKeywords = {
    DhKeyword{"modp2048", DhId::kModp2048},
    DhKeyword{"ecp256", DhId::kEcp256},
    DhKeyword{"ecp384", DhId::kEcp384},
    DhKeyword{"curve25519", DhId::kCurve25519},
    DhKeyword{"x25519", DhId::kCurve25519},
};
struct EsnKeyword { const char* name; EsnId id; };
constexpr std::array kEsnKeywords = {
    EsnKeyword{"esn", EsnId::kEsn},
    EsnKeyword{"noesn", EsnId::kNoEsn},
};

bool is_aead_encr(EncrId id) { return id == EncrId::kAesGcm16; }
bool is_supported(EncrSpec e) {
  return (e.id == EncrId::kAesCbc || e.id == EncrId::kAesGcm16) &&
         (e.key_bits == 128 || e.key_bits == 192 || e.key_bits == 256);
}
bool is_supported(PrfId id) {
  return id == PrfId::kHmacSha2_256 || id == PrfId::kHmacSha2_384 || id == PrfId::kHmacSha2_512;
}
bool is_supported(IntegId id) {
  return id == IntegId::kHmacSha1_96 || id == IntegId::kHmacSha2_256_128 ||
         id == IntegId::kHmacSha2_384_192 || id == IntegId::kHmacSha2_512_256;
}
bool is_supported(DhId id) {
  return id == DhId::kModp2048 || id == DhId::kEcp256 || id == DhId::kEcp384 ||
         id == DhId::kCurve25519;
}
bool is_supported(EsnId id) { return id == EsnId::kEsn || id == EsnId::kNoEsn; }

template <typename T>
bool has_duplicates(const std::vector<T>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = i + 1; j < v.size(); ++j)
      if (v[i] == v[j]) return true;
  return false;
}

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string protocol_name(ProtocolId p) { return p == ProtocolId::kEsp ? "ESP" : ike::to_string(p); }

std::string encr_name(EncrSpec e) {
  for (const auto& k : kEncrKeywords)
    if (k.spec == e) return k.name;
  return ike::to_string(e.id) + "/" + std::to_string(e.key_bits);
}
template <typename Table, typename Id>
std::string keyword_of(const Table& table, Id id) {
  for (const auto& k : table)
    if (k.id == id) return k.name;
  return ike::to_string(id);
}

uint8_t type_index(TransformType t) { return static_cast<uint8_t>(t); }
constexpr size_t kTypeSlots = 6;  // transform types 1..5, index 0 unused

// The peer proposal's acceptable transforms, by type, in the peer's order.
struct PeerTransforms {
  std::array<std::vector<const ike::Transform*>, kTypeSlots> by_type;
  std::array<bool, kTypeSlots> present{};  // the type appears at all (acceptable or not)
};

// RFC 7296 3.3.6: a transform with an attribute we do not know is
// unacceptable; Key Length belongs to ENCR only, and AES needs it.
bool transform_acceptable(const ike::Transform& t) {
  for (const auto& a : t.attributes) {
    if (a.type != static_cast<uint16_t>(ike::TransformAttributeType::kKeyLength) || !a.tv ||
        t.type != TransformType::kEncryption)
      return false;
  }
  if (t.type == TransformType::kEncryption) {
    auto key = t.key_length();
    if (!key) return false;
    int count = 0;
    for (const auto& a : t.attributes) count += a.type == static_cast<uint16_t>(ike::TransformAttributeType::kKeyLength);
    if (count != 1) return false;
  }
  return true;
}

bool type_allowed(ProtocolId protocol, TransformType type) {
  switch (type) {
    case TransformType::kEncryption:
    case TransformType::kIntegrity:
    case TransformType::kDiffieHellman: return true;
    case TransformType::kPrf: return protocol == ProtocolId::kIke;
    case TransformType::kEsn: return protocol == ProtocolId::kEsp;
  }
  return false;
}

// Fails (with the reason) when the proposal as a whole is unacceptable.
Result<PeerTransforms> sort_peer_transforms(ProtocolId protocol, const ike::Proposal& p) {
  if (p.protocol != protocol)
    return make_error("protocol " + ike::to_string(p.protocol) + ", expected " + protocol_name(protocol));
  size_t spi = p.spi.size();
  if (protocol == ProtocolId::kEsp ? spi != 4 : (spi != 0 && spi != 8))
    return make_error("SPI size " + std::to_string(spi) + " wrong for " + protocol_name(protocol));
  PeerTransforms out;
  for (const auto& t : p.transforms) {
    auto ti = type_index(t.type);
    if (ti == 0 || ti >= kTypeSlots || !type_allowed(protocol, t.type))
      return make_error("transform type " + ike::to_string(t.type) + " not understood for " +
                        protocol_name(protocol));
    out.present[ti] = true;
    if (transform_acceptable(t)) out.by_type[ti].push_back(&t);
  }
  return out;
}

// Whether a peer transform is the configured algorithm.
bool same(const ike::Transform& t, EncrSpec e) {
  return t.id == static_cast<uint16_t>(e.id) && t.key_length() == e.key_bits;
}
template <typename Id>
bool same(const ike::Transform& t, Id id) {
  return t.id == static_cast<uint16_t>(id);
}

// The common algorithms of `own` and `peer`, in the order that decides.
template <typename T>
std::vector<std::pair<T, const ike::Transform*>> common(const std::vector<T>& own,
                                                        const std::vector<const ike::Transform*>& peer,
                                                        SelectionOrder order) {
  std::vector<std::pair<T, const ike::Transform*>> out;
  if (order == SelectionOrder::kOwn) {
    for (const T& o : own)
      for (const auto* t : peer)
        if (same(*t, o)) {
          out.emplace_back(o, t);
          break;
        }
  } else {
    for (const auto* t : peer)
      for (const T& o : own)
        if (same(*t, o)) {
          bool seen = false;
          for (const auto& [x, _] : out) seen = seen || x == o;
          if (!seen) out.emplace_back(o, t);
          break;
        }
  }
  return out;
}

const ike::Transform* find_id(const std::vector<const ike::Transform*>& v, uint16_t id) {
  for (const auto* t : v)
    if (t->id == id) return t;
  return nullptr;
}

// A matched pair before the KE check.
struct Match {
  SelectedProposal selected;
  std::vector<std::pair<DhId, const ike::Transform*>> groups;  // when D-H is wanted
  const ike::Transform* none_dh = nullptr;                     // the peer's D-H NONE, if sent
};

Result<Match> match(const ProposalSpec& own, const ike::Proposal& peer_proposal,
                    const PeerTransforms& peer, SelectionOrder order, bool ignore_dh) {
  Match m;
  auto& s = m.selected;
  s.proposal.number = peer_proposal.number;
  s.proposal.protocol = peer_proposal.protocol;
  s.proposal.spi = peer_proposal.spi;
  const auto& encr_t = peer.by_type[type_index(TransformType::kEncryption)];
  const auto& integ_t = peer.by_type[type_index(TransformType::kIntegrity)];
  const auto& prf_t = peer.by_type[type_index(TransformType::kPrf)];
  const auto& dh_t = peer.by_type[type_index(TransformType::kDiffieHellman)];
  const auto& esn_t = peer.by_type[type_index(TransformType::kEsn)];

  // ENCR and INTEG together: AEAD needs INTEG absent or NONE (RFC 7296 3.3.2).
  const ike::Transform* encr_pick = nullptr;
  const ike::Transform* integ_pick = nullptr;
  for (const auto& [e, t] : common(own.encr, encr_t, order)) {
    if (is_aead_encr(e.id)) {
      const ike::Transform* none = find_id(integ_t, static_cast<uint16_t>(IntegId::kNone));
      if (peer.present[type_index(TransformType::kIntegrity)] && !none) continue;
      encr_pick = t;
      integ_pick = none;
      s.encr = e;
      s.integ = IntegId::kNone;
      break;
    }
    auto integs = common(own.integ, integ_t, order);
    if (integs.empty()) continue;
    encr_pick = t;
    integ_pick = integs.front().second;
    s.encr = e;
    s.integ = integs.front().first;
    break;
  }
  if (!encr_pick) {
    if (!peer.present[type_index(TransformType::kEncryption)]) return make_error("no ENCR transform");
    return make_error(common(own.encr, encr_t, order).empty() ? "no common ENCR"
                                                              : "no common INTEG");
  }
  s.proposal.transforms.push_back(*encr_pick);

  if (own.protocol == ProtocolId::kIke) {
    auto prfs = common(own.prf, prf_t, order);
    if (prfs.empty()) return make_error("no common PRF");
    s.prf = prfs.front().first;
    s.proposal.transforms.push_back(*prfs.front().second);
  }
  if (integ_pick) s.proposal.transforms.push_back(*integ_pick);

  if (!ignore_dh) {
    m.none_dh = find_id(dh_t, static_cast<uint16_t>(DhId::kNone));
    if (own.dh.empty()) {
      // ESP without PFS: the peer must not insist on a group.
      if (peer.present[type_index(TransformType::kDiffieHellman)] && !m.none_dh)
        return make_error("peer requires PFS, none configured");
    } else {
      m.groups = common(own.dh, dh_t, order);
      if (m.groups.empty()) return make_error("no common D-H group");
    }
  }

  if (own.protocol == ProtocolId::kEsp) {
    auto esns = common(own.esn, esn_t, order);
    if (esns.empty()) return make_error("no common ESN");
    s.esn = esns.front().first;
    m.selected.proposal.transforms.push_back(*esns.front().second);
  }
  return m;
}

// Puts the D-H transform before ESN (RFC 7296 3.3.2 order is not mandated,
// but ours mirrors the offer: ENCR, PRF, INTEG, D-H, ESN).
void insert_dh(ike::Proposal& p, const ike::Transform& dh) {
  auto it = std::find_if(p.transforms.begin(), p.transforms.end(),
                         [](const ike::Transform& t) { return t.type == TransformType::kEsn; });
  p.transforms.insert(it, dh);
}

ike::Transform make_transform(TransformType type, uint16_t id) { return {type, id, {}}; }

}  // namespace

bool ProposalSpec::is_aead() const {
  return !encr.empty() && is_aead_encr(encr.front().id);
}

std::string to_string(const ProposalSpec& spec) {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : "-") + s; };
  for (auto e : spec.encr) add(encr_name(e));
  for (auto i : spec.integ) add(keyword_of(kIntegKeywords, i));
  for (auto p : spec.prf) add(keyword_of(kPrfKeywords, p));
  for (auto d : spec.dh) add(keyword_of(kDhKeywords, d));
  for (auto e : spec.esn) add(keyword_of(kEsnKeywords, e));
  return out;
}

Status validate_proposal(const ProposalSpec& spec) {
  const std::string where = protocol_name(spec.protocol) + " proposal '" + to_string(spec) + "': ";
  if (spec.protocol != ProtocolId::kIke && spec.protocol != ProtocolId::kEsp)
    return make_error(where + "protocol must be IKE or ESP");
  if (spec.encr.empty()) return make_error(where + "no encryption algorithm");
  for (auto e : spec.encr)
    if (!is_supported(e)) return make_error(where + "encryption " + encr_name(e) + " not supported");
  for (auto i : spec.integ)
    if (!is_supported(i)) return make_error(where + "integrity " + ike::to_string(i) + " not supported");
  for (auto p : spec.prf)
    if (!is_supported(p)) return make_error(where + "PRF " + ike::to_string(p) + " not supported");
  for (auto d : spec.dh)
    if (!is_supported(d)) return make_error(where + "D-H group " + ike::to_string(d) + " not supported");
  for (auto e : spec.esn)
    if (!is_supported(e)) return make_error(where + "ESN " + ike::to_string(e) + " not supported");
  if (has_duplicates(spec.encr) || has_duplicates(spec.integ) || has_duplicates(spec.prf) ||
      has_duplicates(spec.dh) || has_duplicates(spec.esn))
    return make_error(where + "an algorithm is listed twice");
  const bool aead = is_aead_encr(spec.encr.front().id);
  for (auto e : spec.encr)
    if (is_aead_encr(e.id) != aead)
      return make_error(where + "AEAD and non-AEAD encryption mixed (RFC 7296 3.3: use two proposals)");
  if (aead && !spec.integ.empty())
    return make_error(where + "AEAD encryption takes no integrity algorithm");
  if (!aead && spec.integ.empty()) return make_error(where + "no integrity algorithm");
  if (spec.protocol == ProtocolId::kIke) {
    if (spec.prf.empty()) return make_error(where + "no PRF");
    if (spec.dh.empty()) return make_error(where + "no D-H group");
    if (!spec.esn.empty()) return make_error(where + "ESN is for ESP only");
  } else {
    if (!spec.prf.empty()) return make_error(where + "PRF is for IKE only");
    if (spec.esn.empty()) return make_error(where + "no ESN choice");
  }
  return Status::success();
}

Result<ProposalSpec> parse_proposal(ProtocolId protocol, std::string_view text) {
  const std::string where = protocol_name(protocol) + " proposal '" + std::string(text) + "': ";
  if (protocol != ProtocolId::kIke && protocol != ProtocolId::kEsp)
    return make_error(where + "protocol must be IKE or ESP");
  ProposalSpec spec;
  spec.protocol = protocol;
  std::vector<PrfId> implied_prf;
  bool sha1_seen = false;
  size_t start = 0;
  while (true) {
    size_t dash = text.find('-', start);
    std::string word(text.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start));
    for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!word.empty() && std::isspace(static_cast<unsigned char>(word.front()))) word.erase(0, 1);
    while (!word.empty() && std::isspace(static_cast<unsigned char>(word.back()))) word.pop_back();
    if (word.empty()) return make_error(where + "empty keyword");
    bool found = false;
    for (const auto& k : kEncrKeywords)
      if (word == k.name) { spec.encr.push_back(k.spec); found = true; break; }
    if (!found)
      for (const auto& k : kIntegKeywords)
        if (word == k.name) {
          spec.integ.push_back(k.id);
          if (k.implied_prf) implied_prf.push_back(*k.implied_prf);
          else sha1_seen = true;
          found = true;
          break;
        }
    if (!found)
      for (const auto& k : kPrfKeywords)
        if (word == k.name) {
          if (protocol != ProtocolId::kIke) return make_error(where + "'" + word + "' is a PRF: IKE only");
          spec.prf.push_back(k.id);
          found = true;
          break;
        }
    if (!found && word == "prfsha1")
      return make_error(where + "'prfsha1': PRF_HMAC_SHA1 is not supported");
    if (!found)
      for (const auto& k : kDhKeywords)
        if (word == k.name) { spec.dh.push_back(k.id); found = true; break; }
    if (!found)
      for (const auto& k : kEsnKeywords)
        if (word == k.name) {
          if (protocol != ProtocolId::kEsp) return make_error(where + "'" + word + "' is for ESP only");
          spec.esn.push_back(k.id);
          found = true;
          break;
        }
    if (!found) return make_error(where + "unknown keyword '" + word + "'");
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  if (protocol == ProtocolId::kIke && spec.prf.empty()) {
    // strongSwan: without a PRF keyword the integrity keywords name it.
    for (auto p : implied_prf)
      if (!contains(spec.prf, p)) spec.prf.push_back(p);
    if (spec.prf.empty() && sha1_seen)
      return make_error(where + "'sha1' implies PRF_HMAC_SHA1, which is not supported: add prfsha256");
  }
  if (protocol == ProtocolId::kEsp && spec.esn.empty()) spec.esn.push_back(EsnId::kNoEsn);
  if (auto st = validate_proposal(spec); !st) return make_error(st.error());
  return spec;
}

Result<std::vector<ProposalSpec>> parse_proposal_list(ProtocolId protocol, std::string_view text) {
  std::vector<ProposalSpec> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    auto one = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto parsed = parse_proposal(protocol, one);
    if (!parsed) return make_error(parsed.error());
    out.push_back(std::move(parsed).value());
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

const char* to_string(SelectionOrder order) {
  switch (order) {
    case SelectionOrder::kOwn: return "own";
    case SelectionOrder::kPeer: return "peer";
  }
  return "unknown";
}

const char* to_string(ChooseResult::Outcome outcome) {
  switch (outcome) {
    case ChooseResult::Outcome::kSelected: return "selected";
    case ChooseResult::Outcome::kNoProposalChosen: return "NO_PROPOSAL_CHOSEN";
    case ChooseResult::Outcome::kInvalidKePayload: return "INVALID_KE_PAYLOAD";
  }
  return "unknown";
}

crypto::CipherSuite SelectedProposal::cipher_suite() const {
  // The crypto enums carry the IANA values (algorithms.h).
  return {static_cast<crypto::EncrAlgorithm>(encr.id), encr.key_bits,
          static_cast<crypto::IntegAlgorithm>(integ)};
}

ike::NotifyPayload ChooseResult::notify() const {
  if (outcome == Outcome::kInvalidKePayload) {
    auto g = static_cast<uint16_t>(wanted_group);
    return ike::make_notify(ike::NotifyType::kInvalidKePayload,
                            {static_cast<uint8_t>(g >> 8), static_cast<uint8_t>(g)});
  }
  return ike::make_notify(ike::NotifyType::kNoProposalChosen);
}

Result<ProposalPolicy> ProposalPolicy::create(ProtocolId protocol, std::vector<ProposalSpec> proposals,
                                              SelectionOrder order, bool accept_peer_ke_group) {
  if (protocol != ProtocolId::kIke && protocol != ProtocolId::kEsp)
    return make_error("proposal policy: protocol must be IKE or ESP, got " + ike::to_string(protocol));
  if (proposals.empty()) return make_error("proposal policy " + protocol_name(protocol) + ": no proposal");
  for (const auto& p : proposals) {
    if (p.protocol != protocol)
      return make_error("proposal policy " + protocol_name(protocol) + ": proposal '" + to_string(p) +
                        "' is for " + protocol_name(p.protocol));
    if (auto st = validate_proposal(p); !st) return make_error(st.error());
  }
  ProposalPolicy policy;
  policy.protocol_ = protocol;
  policy.proposals_ = std::move(proposals);
  policy.order_ = order;
  policy.accept_peer_ke_group_ = accept_peer_ke_group;
  return policy;
}

Result<ProposalPolicy> ProposalPolicy::parse(ProtocolId protocol, std::string_view text,
                                             SelectionOrder order, bool accept_peer_ke_group) {
  auto list = parse_proposal_list(protocol, text);
  if (!list) return make_error(list.error());
  return create(protocol, std::move(list).value(), order, accept_peer_ke_group);
}

ike::SaPayload ProposalPolicy::offer(std::span<const uint8_t> spi, bool include_dh) const {
  ike::SaPayload sa;
  uint8_t number = 1;
  for (const auto& spec : proposals_) {
    ike::Proposal p;
    p.number = number++;
    p.protocol = protocol_;
    p.spi.assign(spi.begin(), spi.end());
    for (auto e : spec.encr)
      p.transforms.push_back({TransformType::kEncryption, static_cast<uint16_t>(e.id),
                              {ike::TransformAttribute::key_length(e.key_bits)}});
    for (auto x : spec.prf) p.transforms.push_back(make_transform(TransformType::kPrf, static_cast<uint16_t>(x)));
    for (auto x : spec.integ)
      p.transforms.push_back(make_transform(TransformType::kIntegrity, static_cast<uint16_t>(x)));
    if (include_dh)
      for (auto x : spec.dh)
        p.transforms.push_back(make_transform(TransformType::kDiffieHellman, static_cast<uint16_t>(x)));
    for (auto x : spec.esn) p.transforms.push_back(make_transform(TransformType::kEsn, static_cast<uint16_t>(x)));
    sa.proposals.push_back(std::move(p));
  }
  return sa;
}

ChooseResult ProposalPolicy::choose(const ike::SaPayload& received, const ChooseOptions& options) const {
  ChooseResult result;
  // Sort every peer proposal once; unacceptable ones keep their reason.
  std::vector<Result<PeerTransforms>> peers;
  peers.reserve(received.proposals.size());
  for (const auto& p : received.proposals) peers.push_back(sort_peer_transforms(protocol_, p));

  std::vector<std::string> reasons(received.proposals.size());
  std::optional<Match> found;
  auto try_pair = [&](size_t own_index, size_t peer_index) {
    if (!peers[peer_index]) return false;
    auto m = match(proposals_[own_index], received.proposals[peer_index], *peers[peer_index], order_,
                   options.ignore_dh);
    if (!m) {
      if (!reasons[peer_index].empty()) reasons[peer_index] += ", ";
      reasons[peer_index] += "vs '" + to_string(proposals_[own_index]) + "': " + m.error();
      return false;
    }
    found = std::move(m).value();
    return true;
  };
  if (order_ == SelectionOrder::kOwn) {
    for (size_t o = 0; o < proposals_.size() && !found; ++o)
      for (size_t p = 0; p < received.proposals.size() && !found; ++p) try_pair(o, p);
  } else {
    for (size_t p = 0; p < received.proposals.size() && !found; ++p)
      for (size_t o = 0; o < proposals_.size() && !found; ++o) try_pair(o, p);
  }

  if (!found) {
    result.outcome = ChooseResult::Outcome::kNoProposalChosen;
    if (received.proposals.empty()) result.reason = "no proposal received";
    for (size_t p = 0; p < received.proposals.size(); ++p) {
      if (!result.reason.empty()) result.reason += "; ";
      result.reason += "proposal #" + std::to_string(received.proposals[p].number) + ": " +
                       (peers[p] ? reasons[p] : peers[p].error());
    }
    return result;
  }

  Match& m = *found;
  if (!m.groups.empty()) {
    // RFC 7296 1.2 / 1.3: the KE payload must be of the selected group.
    const std::pair<DhId, const ike::Transform*>* ke = nullptr;
    if (options.ke_group)
      for (const auto& g : m.groups)
        if (g.first == *options.ke_group) {
          ke = &g;
          break;
        }
    const bool usable = ke && (accept_peer_ke_group_ || ke == &m.groups.front());
    if (!usable) {
      result.outcome = ChooseResult::Outcome::kInvalidKePayload;
      result.wanted_group = m.groups.front().first;
      result.reason = "proposal #" + std::to_string(m.selected.proposal.number) + " acceptable with " +
                      ike::to_string(result.wanted_group) + ", KE payload " +
                      (options.ke_group ? "of group " + ike::to_string(*options.ke_group) : "missing");
      return result;
    }
    m.selected.dh = ke->first;
    insert_dh(m.selected.proposal, *ke->second);
  } else if (m.none_dh) {
    insert_dh(m.selected.proposal, *m.none_dh);  // echo the peer's NONE
  }
  result.outcome = ChooseResult::Outcome::kSelected;
  result.selected = std::move(m.selected);
  return result;
}

Result<SelectedProposal> validate_reply(const ike::SaPayload& offered, const ike::SaPayload& reply,
                                        bool ignore_dh) {
  const std::string where = "SA reply: ";
  if (reply.proposals.size() != 1)
    return make_error(where + std::to_string(reply.proposals.size()) + " proposals, expected exactly 1");
  const ike::Proposal& r = reply.proposals.front();
  const ike::Proposal* o = nullptr;
  for (const auto& p : offered.proposals)
    if (p.number == r.number) o = &p;
  if (!o) return make_error(where + "proposal #" + std::to_string(r.number) + " was not offered");
  if (r.protocol != o->protocol)
    return make_error(where + "protocol " + ike::to_string(r.protocol) + ", offered " +
                      ike::to_string(o->protocol));
  if (r.spi.size() != o->spi.size())
    return make_error(where + "SPI size " + std::to_string(r.spi.size()) + ", expected " +
                      std::to_string(o->spi.size()));

  std::array<const ike::Transform*, kTypeSlots> chosen{};
  std::array<bool, kTypeSlots> offered_type{};
  for (const auto& t : o->transforms) {
    auto ti = type_index(t.type);
    if (ti > 0 && ti < kTypeSlots) offered_type[ti] = true;
  }
  for (const auto& t : r.transforms) {
    auto ti = type_index(t.type);
    if (ti == 0 || ti >= kTypeSlots)
      return make_error(where + "unknown transform type " + ike::to_string(t.type));
    if (chosen[ti]) return make_error(where + "more than one " + ike::to_string(t.type) + " transform");
    if (!offered_type[ti]) return make_error(where + ike::to_string(t.type) + " was not offered");
    if (std::find(o->transforms.begin(), o->transforms.end(), t) == o->transforms.end())
      return make_error(where + ike::to_string(t.type) + " " + ike::transform_id_to_string(t.type, t.id) +
                        (t.key_length() ? "/" + std::to_string(*t.key_length()) : std::string()) +
                        " was not offered in proposal #" + std::to_string(r.number));
    chosen[ti] = &t;
  }

  SelectedProposal s;
  s.proposal = r;
  const auto* encr = chosen[type_index(TransformType::kEncryption)];
  if (!encr) return make_error(where + "no ENCR transform");
  s.encr = {static_cast<EncrId>(encr->id), encr->key_length().value_or(0)};
  const bool aead = is_aead_encr(s.encr.id);
  if (const auto* integ = chosen[type_index(TransformType::kIntegrity)]) {
    s.integ = static_cast<IntegId>(integ->id);
    if (aead && s.integ != IntegId::kNone)
      return make_error(where + "AEAD " + ike::to_string(s.encr.id) + " with integrity " + ike::to_string(s.integ));
  }
  if (!aead && (s.integ == IntegId::kNone) && offered_type[type_index(TransformType::kIntegrity)])
    return make_error(where + "no INTEG transform");
  if (const auto* prf = chosen[type_index(TransformType::kPrf)]) s.prf = static_cast<PrfId>(prf->id);
  else if (offered_type[type_index(TransformType::kPrf)]) return make_error(where + "no PRF transform");
  if (const auto* dh = chosen[type_index(TransformType::kDiffieHellman)]) {
    s.dh = static_cast<DhId>(dh->id);
  } else if (offered_type[type_index(TransformType::kDiffieHellman)] && !ignore_dh) {
    bool offered_none = false;
    for (const auto& t : o->transforms)
      offered_none = offered_none || (t.type == TransformType::kDiffieHellman && t.id == 0);
    if (!offered_none) return make_error(where + "no D-H transform");
  }
  if (const auto* esn = chosen[type_index(TransformType::kEsn)]) s.esn = static_cast<EsnId>(esn->id);
  else if (offered_type[type_index(TransformType::kEsn)]) return make_error(where + "no ESN transform");
  return s;
}

}  // namespace segw::cp::policy
