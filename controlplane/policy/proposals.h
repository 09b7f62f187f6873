// SA proposal policy (RFC 7296 2.7, 3.3): configured proposals for the IKE
// SA and for ESP child SAs, parsed from strongSwan-style strings; the
// responder's choice among received proposals and the initiator's check of
// the responder's reply.
//
// Thread safety: a ProposalPolicy is immutable after create(); its const
// members may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/ike/codec/notify_payload.h"
#include "controlplane/ike/codec/sa_payload.h"
#include "shared/result.h"

namespace segw::cp::policy {

using shared::Result;
using shared::Status;

// An encryption algorithm with its key size (the Key Length attribute,
// RFC 7296 3.3.5: mandatory for AES).
struct EncrSpec {
  ike::EncrId id = ike::EncrId::kAesCbc;
  uint16_t key_bits = 128;
  friend bool operator==(const EncrSpec&, const EncrSpec&) = default;
};

// One configured proposal: for each transform type the accepted
// algorithms, most preferred first.
struct ProposalSpec {
  ike::ProtocolId protocol = ike::ProtocolId::kIke;
  std::vector<EncrSpec> encr;
  std::vector<ike::PrfId> prf;      // IKE only
  std::vector<ike::IntegId> integ;  // empty with AEAD encryption
  std::vector<ike::DhId> dh;        // IKE: at least one; ESP: empty = no PFS
  std::vector<ike::EsnId> esn;      // ESP only; at least one

  bool is_aead() const;
  friend bool operator==(const ProposalSpec&, const ProposalSpec&) = default;
};

// strongSwan keyword form, e.g. "aes128gcm16-prfsha256-ecp256".
std::string to_string(const ProposalSpec& spec);

// Checks a proposal: protocol IKE or ESP; at least one ENCR; only supported
// algorithms (AES-CBC and AES-GCM-16 with 128/192/256-bit keys, PRF
// HMAC-SHA2-256/384/512, INTEG HMAC-SHA1-96 / SHA2-256-128 / 384-192 /
// 512-256, D-H 14/19/20/31, ESN 0/1); AEAD and non-AEAD encryption not
// mixed (RFC 7296 3.3: separate proposals); integrity present exactly when
// the encryption is not AEAD; IKE: a PRF and a D-H group, no ESN; ESP: no
// PRF, an ESN choice. No algorithm listed twice.
Status validate_proposal(const ProposalSpec& spec);

// Parses one strongSwan-style proposal: keywords joined by '-'.
//   ENCR  aes128 aes192 aes256 (CBC); aes128gcm16 aes192gcm16 aes256gcm16
//         (also spelled aesNNNgcm128 or aesNNNgcm)
//   INTEG sha1 sha256 sha384 sha512 (also sha2_256 ...)
//   PRF   prfsha256 prfsha384 prfsha512 (IKE only). Without one, an IKE
//         proposal takes the PRFs matching its integrity keywords, as
//         strongSwan does (sha256 -> prfsha256; sha1 implies PRF_HMAC_SHA1,
//         which is not supported).
//   DH    modp2048 ecp256 ecp384 curve25519 (x25519). ESP: D-H groups are
//         PFS for CREATE_CHILD_SA; none means no PFS.
//   ESN   esn noesn (ESP only; default noesn)
// Errors name the keyword and the proposal: unknown keyword, empty keyword,
// a keyword of the wrong protocol, and every validate_proposal error.
Result<ProposalSpec> parse_proposal(ike::ProtocolId protocol, std::string_view text);
// Comma-separated proposals, most preferred first ("a-b-c, d-e-f").
Result<std::vector<ProposalSpec>> parse_proposal_list(ike::ProtocolId protocol,
                                                      std::string_view text);

// Whose preference order decides among acceptable proposals and transforms.
enum class SelectionOrder : uint8_t {
  kOwn,   // ours (strongSwan default): first own proposal the peer offered
  kPeer,  // the peer's: first peer proposal we accept
};
const char* to_string(SelectionOrder order);

// The negotiated algorithms, and the single proposal to send back.
struct SelectedProposal {
  // The reply proposal (RFC 7296 3.3.6): the peer's proposal number,
  // protocol and SPI (for the initiator: the responder's), exactly one
  // transform of each negotiated type with its attributes unmodified.
  ike::Proposal proposal;
  EncrSpec encr;
  std::optional<ike::PrfId> prf;             // IKE
  ike::IntegId integ = ike::IntegId::kNone;  // kNone with AEAD
  ike::DhId dh = ike::DhId::kNone;           // kNone: no D-H (ESP without PFS, IKE_AUTH)
  std::optional<ike::EsnId> esn;             // ESP

  // The cipher suite for the crypto layer (SK or the ESP SA).
  crypto::CipherSuite cipher_suite() const;
};

// What the responder answers a received SA payload with.
struct [[nodiscard]] ChooseResult {
  enum class Outcome : uint8_t { kSelected, kNoProposalChosen, kInvalidKePayload };
  Outcome outcome = Outcome::kNoProposalChosen;
  SelectedProposal selected;             // kSelected only
  ike::DhId wanted_group = ike::DhId::kNone;  // kInvalidKePayload: the group to ask for
  // Why: for the log, one clause per rejected proposal, or the KE mismatch.
  std::string reason;

  bool ok() const { return outcome == Outcome::kSelected; }
  // The error notify to answer with: NO_PROPOSAL_CHOSEN (no data) or
  // INVALID_KE_PAYLOAD with the 2-byte group (RFC 7296 1.2, 3.10.1).
  // Precondition: !ok().
  ike::NotifyPayload notify() const;
};
const char* to_string(ChooseResult::Outcome outcome);

struct ChooseOptions {
  // The group of the KE payload that came with the SA payload; nullopt when
  // the message has no KE payload (CREATE_CHILD_SA without PFS).
  std::optional<ike::DhId> ke_group;
  // IKE_AUTH: the first child SA has no KE exchange, so D-H transforms are
  // ignored and left out of the reply (RFC 7296 1.2).
  bool ignore_dh = false;
};

class ProposalPolicy {
 public:
  // Errors: no proposal; a proposal of another protocol than `protocol`
  // (IKE or ESP); any validate_proposal error (naming the proposal).
  // `accept_peer_ke_group`: when the peer's KE group is acceptable in the
  // selected proposal but not our first choice, use it rather than costing
  // a round trip with INVALID_KE_PAYLOAD (strongSwan's behaviour).
  static Result<ProposalPolicy> create(ike::ProtocolId protocol, std::vector<ProposalSpec> proposals,
                                       SelectionOrder order = SelectionOrder::kOwn,
                                       bool accept_peer_ke_group = true);
  // parse_proposal_list + create.
  static Result<ProposalPolicy> parse(ike::ProtocolId protocol, std::string_view text,
                                      SelectionOrder order = SelectionOrder::kOwn,
                                      bool accept_peer_ke_group = true);

  ike::ProtocolId protocol() const { return protocol_; }
  const std::vector<ProposalSpec>& proposals() const { return proposals_; }

  // The SA payload an initiator sends: proposals numbered from 1 in order,
  // each with `spi` (empty for IKE_SA_INIT, 8 bytes for an IKE rekey, 4 for
  // ESP), ENCR with Key Length, PRF, INTEG, D-H (unless `include_dh` is
  // false: IKE_AUTH), ESN.
  ike::SaPayload offer(std::span<const uint8_t> spi, bool include_dh = true) const;

  // Responder (RFC 7296 2.7, 3.3.6). Takes the first acceptable pair in
  // the configured order (own or peer); within it, one transform of each
  // type in the same order. A peer proposal is unacceptable when it is of
  // another protocol, has an SPI of the wrong size, a transform type we do
  // not know (RFC 7296 3.3.6: the others are still processed) or for this
  // protocol, or lacks a mandatory type; a transform is unacceptable when
  // its ID is not one we accept, it carries an attribute we do not know, or
  // (AES) lacks its Key Length. With AEAD encryption the peer's INTEG must
  // be absent or NONE. The D-H group: if the KE payload's group is
  // acceptable in the selected proposal (and accept_peer_ke_group, or it
  // is our first choice) it is taken; otherwise kInvalidKePayload names
  // our preferred common group. A proposal with no common group is not
  // acceptable at all (kNoProposalChosen).
  ChooseResult choose(const ike::SaPayload& received, const ChooseOptions& options = {}) const;

 private:
  ProposalPolicy() = default;
  ike::ProtocolId protocol_ = ike::ProtocolId::kIke;
  std::vector<ProposalSpec> proposals_;
  SelectionOrder order_ = SelectionOrder::kOwn;
  bool accept_peer_ke_group_ = true;
};

// Initiator: checks the responder's SA payload against the one we sent
// (RFC 7296 3.3.6: "consistent with one of its proposals"). Errors: not
// exactly one proposal; a proposal number we did not send; protocol or
// SPI size differing from that proposal's; an unknown transform type; two
// transforms of one type; a type we did not offer; a type we offered
// missing (INTEG may be missing or NONE with AEAD; D-H may be missing or
// NONE where we offered NONE, or when `ignore_dh`); a transform (ID and
// attributes) not in that proposal; AEAD with an integrity algorithm.
Result<SelectedProposal> validate_reply(const ike::SaPayload& offered, const ike::SaPayload& reply,
                                        bool ignore_dh = false);

}  // namespace segw::cp::policy
