// Proposal policy: strongSwan-style strings, the responder's choice (own
// and peer order, NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, AEAD, key
// lengths, unknown transforms) and the initiator's check of the reply.
#include "controlplane/policy/proposals.h"

#include <gtest/gtest.h>

namespace segw::cp::policy {
namespace {

using ike::DhId;
using ike::EncrId;
using ike::EsnId;
using ike::IntegId;
using ike::PrfId;
using ike::ProtocolId;
using ike::TransformType;

ike::Transform encr(EncrId id, uint16_t bits) {
  return {TransformType::kEncryption, static_cast<uint16_t>(id), {ike::TransformAttribute::key_length(bits)}};
}
ike::Transform tf(TransformType type, uint16_t id) { return {type, id, {}}; }
ike::Transform prf(PrfId id) { return tf(TransformType::kPrf, static_cast<uint16_t>(id)); }
ike::Transform integ(IntegId id) { return tf(TransformType::kIntegrity, static_cast<uint16_t>(id)); }
ike::Transform dh(DhId id) { return tf(TransformType::kDiffieHellman, static_cast<uint16_t>(id)); }
ike::Transform esn(EsnId id) { return tf(TransformType::kEsn, static_cast<uint16_t>(id)); }

ike::Proposal ike_proposal(uint8_t number, std::vector<ike::Transform> transforms) {
  return {number, ProtocolId::kIke, {}, std::move(transforms)};
}
ike::Proposal esp_proposal(uint8_t number, std::vector<ike::Transform> transforms) {
  return {number, ProtocolId::kEsp, {0xc0, 0xff, 0xee, number}, std::move(transforms)};
}

ProposalPolicy policy(ProtocolId protocol, const char* text, SelectionOrder order = SelectionOrder::kOwn,
                      bool accept_peer_ke = true) {
  auto p = ProposalPolicy::parse(protocol, text, order, accept_peer_ke);
  EXPECT_TRUE(p.ok()) << p.error();
  return std::move(p).value();
}

// --- parsing ---------------------------------------------------------------

TEST(ProposalParseTest, IkeAeadWithPrf) {
  auto p = parse_proposal(ProtocolId::kIke, "aes128gcm16-prfsha256-ecp256");
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->encr, (std::vector<EncrSpec>{{EncrId::kAesGcm16, 128}}));
  EXPECT_EQ(p->prf, std::vector<PrfId>{PrfId::kHmacSha2_256});
  EXPECT_TRUE(p->integ.empty());
  EXPECT_EQ(p->dh, std::vector<DhId>{DhId::kEcp256});
  EXPECT_TRUE(p->esn.empty());
  EXPECT_TRUE(p->is_aead());
  EXPECT_EQ(to_string(*p), "aes128gcm16-prfsha256-ecp256");
}

TEST(ProposalParseTest, IkeCbcPrfImpliedByIntegrity) {
  auto p = parse_proposal(ProtocolId::kIke, "aes256-sha256-modp2048");
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->encr, (std::vector<EncrSpec>{{EncrId::kAesCbc, 256}}));
  EXPECT_EQ(p->integ, std::vector<IntegId>{IntegId::kHmacSha2_256_128});
  EXPECT_EQ(p->prf, std::vector<PrfId>{PrfId::kHmacSha2_256});
  EXPECT_EQ(p->dh, std::vector<DhId>{DhId::kModp2048});
  auto many = parse_proposal(ProtocolId::kIke, "AES128-aes256-sha384-sha512-ecp384-curve25519");
  ASSERT_TRUE(many.ok()) << many.error();
  EXPECT_EQ(many->prf, (std::vector<PrfId>{PrfId::kHmacSha2_384, PrfId::kHmacSha2_512}));
  EXPECT_EQ(many->dh, (std::vector<DhId>{DhId::kEcp384, DhId::kCurve25519}));
}

TEST(ProposalParseTest, EspForms) {
  auto gcm = parse_proposal(ProtocolId::kEsp, "aes128gcm16-esn-noesn");
  ASSERT_TRUE(gcm.ok()) << gcm.error();
  EXPECT_EQ(gcm->esn, (std::vector<EsnId>{EsnId::kEsn, EsnId::kNoEsn}));
  EXPECT_TRUE(gcm->dh.empty());
  EXPECT_TRUE(gcm->prf.empty());
  auto pfs = parse_proposal(ProtocolId::kEsp, "aes128-sha1-modp2048");
  ASSERT_TRUE(pfs.ok()) << pfs.error();
  EXPECT_EQ(pfs->integ, std::vector<IntegId>{IntegId::kHmacSha1_96});
  EXPECT_EQ(pfs->dh, std::vector<DhId>{DhId::kModp2048});
  EXPECT_EQ(pfs->esn, std::vector<EsnId>{EsnId::kNoEsn});  // default
  auto list = parse_proposal_list(ProtocolId::kEsp, "aes256gcm16, aes128-sha256");
  ASSERT_TRUE(list.ok()) << list.error();
  EXPECT_EQ(list->size(), 2u);
}

TEST(ProposalParseTest, ClearErrors) {
  auto expect_error = [](ProtocolId protocol, const char* text, const char* needle) {
    auto p = parse_proposal(protocol, text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.error().find(needle), std::string::npos) << text << " -> " << p.error();
  };
  expect_error(ProtocolId::kIke, "aes999-sha256-modp2048", "unknown keyword 'aes999'");
  expect_error(ProtocolId::kIke, "aes128--modp2048", "empty keyword");
  expect_error(ProtocolId::kIke, "aes128gcm16-ecp256", "no PRF");
  expect_error(ProtocolId::kIke, "aes128-sha1-modp2048", "PRF_HMAC_SHA1");
  expect_error(ProtocolId::kIke, "aes128-sha256", "no D-H group");
  expect_error(ProtocolId::kIke, "aes128gcm16-sha256-prfsha256-ecp256", "AEAD");
  expect_error(ProtocolId::kIke, "aes128-aes128gcm16-sha256-ecp256", "mixed");
  expect_error(ProtocolId::kIke, "aes128-prfsha256-ecp256", "no integrity");
  expect_error(ProtocolId::kIke, "aes128-sha256-modp2048-esn", "ESP only");
  expect_error(ProtocolId::kIke, "aes128-sha256-sha256-modp2048", "listed twice");
  expect_error(ProtocolId::kEsp, "aes128gcm16-prfsha256", "IKE only");
  expect_error(ProtocolId::kEsp, "aes128", "no integrity");
  expect_error(ProtocolId::kAh, "aes128-sha256", "IKE or ESP");
  auto list = parse_proposal_list(ProtocolId::kIke, "aes128-sha256-ecp256,bogus");
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.error().find("'bogus'"), std::string::npos) << list.error();
}

TEST(ProposalPolicyTest, CreateChecksProtocol) {
  auto spec = parse_proposal(ProtocolId::kEsp, "aes128gcm16");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(ProposalPolicy::create(ProtocolId::kIke, {*spec}).ok());
  EXPECT_FALSE(ProposalPolicy::create(ProtocolId::kEsp, {}).ok());
  ProposalSpec bad = *spec;
  bad.encr = {{EncrId::kAesCbc, 100}};
  bad.integ = {IntegId::kHmacSha1_96};
  EXPECT_FALSE(ProposalPolicy::create(ProtocolId::kEsp, {bad}).ok());
}

// --- responder choice --------------------------------------------------------

TEST(ProposalChooseTest, OwnPreferenceWins) {
  auto p = policy(ProtocolId::kIke, "aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048");
  ike::SaPayload sa{{
      ike_proposal(1, {encr(EncrId::kAesCbc, 128), prf(PrfId::kHmacSha2_256),
                       integ(IntegId::kHmacSha2_256_128), dh(DhId::kModp2048)}),
      ike_proposal(2, {encr(EncrId::kAesGcm16, 256), prf(PrfId::kHmacSha2_384), dh(DhId::kEcp384)}),
  }};
  auto r = p.choose(sa, {DhId::kEcp384, false});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.proposal.number, 2);
  EXPECT_EQ(r.selected.encr, (EncrSpec{EncrId::kAesGcm16, 256}));
  EXPECT_EQ(r.selected.prf, PrfId::kHmacSha2_384);
  EXPECT_EQ(r.selected.integ, IntegId::kNone);
  EXPECT_EQ(r.selected.dh, DhId::kEcp384);
  EXPECT_EQ(r.selected.proposal, sa.proposals[1]);  // all single: echoed as is
  EXPECT_EQ(r.selected.cipher_suite(),
            (crypto::CipherSuite{crypto::EncrAlgorithm::kAesGcm16, 256, crypto::IntegAlgorithm::kNone}));

  auto peer_first = policy(ProtocolId::kIke, "aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048",
                           SelectionOrder::kPeer);
  auto r2 = peer_first.choose(sa, {DhId::kModp2048, false});
  ASSERT_TRUE(r2.ok()) << r2.reason;
  EXPECT_EQ(r2.selected.proposal.number, 1);
  EXPECT_EQ(r2.selected.encr, (EncrSpec{EncrId::kAesCbc, 128}));
  EXPECT_EQ(r2.selected.integ, IntegId::kHmacSha2_256_128);
  EXPECT_EQ(r2.selected.prf, PrfId::kHmacSha2_256);
}

TEST(ProposalChooseTest, OneTransformPerTypeInPreferenceOrder) {
  ike::SaPayload sa{{ike_proposal(
      1, {encr(EncrId::kAesCbc, 128), encr(EncrId::kAesCbc, 256), prf(PrfId::kHmacSha2_256),
          prf(PrfId::kHmacSha2_512), integ(IntegId::kHmacSha1_96), integ(IntegId::kHmacSha2_512_256),
          dh(DhId::kEcp256), dh(DhId::kCurve25519)})}};
  auto own = policy(ProtocolId::kIke, "aes256-aes128-sha512-sha1-prfsha512-prfsha256-curve25519-ecp256");
  auto r = own.choose(sa, {DhId::kCurve25519, false});
  ASSERT_TRUE(r.ok()) << r.reason;
  const ike::Proposal expected = ike_proposal(
      1, {encr(EncrId::kAesCbc, 256), prf(PrfId::kHmacSha2_512), integ(IntegId::kHmacSha2_512_256),
          dh(DhId::kCurve25519)});
  EXPECT_EQ(r.selected.proposal, expected);

  auto peer = policy(ProtocolId::kIke, "aes256-aes128-sha512-sha1-prfsha512-prfsha256-curve25519-ecp256",
                     SelectionOrder::kPeer);
  auto r2 = peer.choose(sa, {DhId::kEcp256, false});
  ASSERT_TRUE(r2.ok()) << r2.reason;
  EXPECT_EQ(r2.selected.proposal,
            ike_proposal(1, {encr(EncrId::kAesCbc, 128), prf(PrfId::kHmacSha2_256),
                             integ(IntegId::kHmacSha1_96), dh(DhId::kEcp256)}));
}

TEST(ProposalChooseTest, NoProposalChosen) {
  auto p = policy(ProtocolId::kIke, "aes256gcm16-prfsha384-ecp384");
  ike::SaPayload sa{{ike_proposal(1, {encr(EncrId::kAesCbc, 128), prf(PrfId::kHmacSha2_256),
                                      integ(IntegId::kHmacSha2_256_128), dh(DhId::kModp2048)})}};
  auto r = p.choose(sa, {DhId::kModp2048, false});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.outcome, ChooseResult::Outcome::kNoProposalChosen);
  EXPECT_NE(r.reason.find("proposal #1"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("no common ENCR"), std::string::npos) << r.reason;
  auto n = r.notify();
  EXPECT_EQ(n.type, ike::NotifyType::kNoProposalChosen);
  EXPECT_TRUE(n.data.empty());
  // No common D-H group at all: NO_PROPOSAL_CHOSEN too, not INVALID_KE.
  ike::SaPayload sa2{{ike_proposal(1, {encr(EncrId::kAesGcm16, 256), prf(PrfId::kHmacSha2_384),
                                       dh(DhId::kModp2048)})}};
  auto r2 = p.choose(sa2, {DhId::kModp2048, false});
  EXPECT_EQ(r2.outcome, ChooseResult::Outcome::kNoProposalChosen);
  EXPECT_NE(r2.reason.find("no common D-H group"), std::string::npos) << r2.reason;
  // Empty SA payload.
  EXPECT_EQ(p.choose(ike::SaPayload{}, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
  // Wrong protocol / SPI size.
  ike::SaPayload esp{{esp_proposal(1, {encr(EncrId::kAesGcm16, 256), esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(p.choose(esp, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
  ike::SaPayload spi3{{ike_proposal(1, {encr(EncrId::kAesGcm16, 256), prf(PrfId::kHmacSha2_384),
                                        dh(DhId::kEcp384)})}};
  spi3.proposals[0].spi = {1, 2, 3};
  auto r3 = p.choose(spi3, {DhId::kEcp384, false});
  EXPECT_EQ(r3.outcome, ChooseResult::Outcome::kNoProposalChosen);
  EXPECT_NE(r3.reason.find("SPI size 3"), std::string::npos) << r3.reason;
  // A missing mandatory type (PRF).
  ike::SaPayload no_prf{{ike_proposal(1, {encr(EncrId::kAesGcm16, 256), dh(DhId::kEcp384)})}};
  EXPECT_EQ(p.choose(no_prf, {DhId::kEcp384, false}).outcome, ChooseResult::Outcome::kNoProposalChosen);
}

TEST(ProposalChooseTest, InvalidKePayloadNamesTheWantedGroup) {
  auto p = policy(ProtocolId::kIke, "aes128gcm16-prfsha256-ecp256-modp2048");
  ike::SaPayload sa{{ike_proposal(1, {encr(EncrId::kAesGcm16, 128), prf(PrfId::kHmacSha2_256),
                                      dh(DhId::kCurve25519), dh(DhId::kEcp256)})}};
  // KE of a group the proposal has, but we do not accept.
  auto r = p.choose(sa, {DhId::kCurve25519, false});
  ASSERT_EQ(r.outcome, ChooseResult::Outcome::kInvalidKePayload) << r.reason;
  EXPECT_EQ(r.wanted_group, DhId::kEcp256);
  auto n = r.notify();
  EXPECT_EQ(n.type, ike::NotifyType::kInvalidKePayload);
  EXPECT_EQ(n.data, (std::vector<uint8_t>{0, 19}));
  // KE payload missing.
  EXPECT_EQ(p.choose(sa, {}).outcome, ChooseResult::Outcome::kInvalidKePayload);
  // The right group: selected.
  auto ok = p.choose(sa, {DhId::kEcp256, false});
  ASSERT_TRUE(ok.ok()) << ok.reason;
  EXPECT_EQ(ok.selected.dh, DhId::kEcp256);
  // Only one D-H transform in the reply.
  int dh_count = 0;
  for (const auto& t : ok.selected.proposal.transforms) dh_count += t.type == TransformType::kDiffieHellman;
  EXPECT_EQ(dh_count, 1);
}

TEST(ProposalChooseTest, PeerKeGroupAcceptedUnlessStrict) {
  ike::SaPayload sa{{ike_proposal(1, {encr(EncrId::kAesGcm16, 128), prf(PrfId::kHmacSha2_256),
                                      dh(DhId::kEcp256), dh(DhId::kModp2048)})}};
  auto lenient = policy(ProtocolId::kIke, "aes128gcm16-prfsha256-ecp256-modp2048");
  auto r = lenient.choose(sa, {DhId::kModp2048, false});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.dh, DhId::kModp2048);
  auto strict = policy(ProtocolId::kIke, "aes128gcm16-prfsha256-ecp256-modp2048", SelectionOrder::kOwn, false);
  auto r2 = strict.choose(sa, {DhId::kModp2048, false});
  ASSERT_EQ(r2.outcome, ChooseResult::Outcome::kInvalidKePayload);
  EXPECT_EQ(r2.wanted_group, DhId::kEcp256);
}

TEST(ProposalChooseTest, GcmWithoutIntegOrWithNone) {
  auto p = policy(ProtocolId::kEsp, "aes256gcm16");
  ike::SaPayload without{{esp_proposal(1, {encr(EncrId::kAesGcm16, 256), esn(EsnId::kNoEsn)})}};
  auto r = p.choose(without, {});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.integ, IntegId::kNone);
  EXPECT_EQ(r.selected.esn, EsnId::kNoEsn);
  EXPECT_EQ(r.selected.proposal, without.proposals[0]);  // SPI echoed
  ike::SaPayload with_none{{esp_proposal(2, {encr(EncrId::kAesGcm16, 256), integ(IntegId::kNone),
                                             esn(EsnId::kNoEsn)})}};
  auto r2 = p.choose(with_none, {});
  ASSERT_TRUE(r2.ok()) << r2.reason;
  EXPECT_EQ(r2.selected.proposal, with_none.proposals[0]);
  // GCM offered with a real integrity algorithm only: not acceptable.
  ike::SaPayload with_sha{{esp_proposal(3, {encr(EncrId::kAesGcm16, 256),
                                            integ(IntegId::kHmacSha2_256_128), esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(p.choose(with_sha, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
}

TEST(ProposalChooseTest, KeyLengthAttributesRespected) {
  auto p = policy(ProtocolId::kEsp, "aes256-sha256");
  ike::SaPayload sa128{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), integ(IntegId::kHmacSha2_256_128),
                                         esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(p.choose(sa128, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
  // No Key Length: unacceptable transform for AES (RFC 7296 3.3.5).
  ike::SaPayload nokey{{esp_proposal(1, {tf(TransformType::kEncryption, 12),
                                         integ(IntegId::kHmacSha2_256_128), esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(p.choose(nokey, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
  // 128 and 256 offered: 256 picked, its attribute returned.
  ike::SaPayload both{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), encr(EncrId::kAesCbc, 256),
                                        integ(IntegId::kHmacSha2_256_128), esn(EsnId::kNoEsn)})}};
  auto r = p.choose(both, {});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.encr.key_bits, 256);
  EXPECT_EQ(r.selected.proposal.transforms[0], encr(EncrId::kAesCbc, 256));
  EXPECT_EQ(r.selected.cipher_suite().key_bits, 256);
}

TEST(ProposalChooseTest, UnknownTransformsAndAttributes) {
  auto p = policy(ProtocolId::kEsp, "aes128gcm16");
  // Proposal 1 has a transform type we do not know (type 6): unacceptable
  // as a whole; proposal 2 is still processed (RFC 7296 3.3.6).
  ike::SaPayload sa{{
      esp_proposal(1, {encr(EncrId::kAesGcm16, 128), esn(EsnId::kNoEsn),
                       {static_cast<TransformType>(6), 37, {}}}),
      esp_proposal(2, {encr(EncrId::kAesGcm16, 128), esn(EsnId::kNoEsn)}),
  }};
  auto r = p.choose(sa, {});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.proposal.number, 2);
  // Alone, it is NO_PROPOSAL_CHOSEN.
  ike::SaPayload only{{sa.proposals[0]}};
  auto r2 = p.choose(only, {});
  EXPECT_EQ(r2.outcome, ChooseResult::Outcome::kNoProposalChosen);
  EXPECT_NE(r2.reason.find("not understood"), std::string::npos) << r2.reason;
  // An unknown transform ID or attribute only removes that transform.
  ike::Transform odd_attr = encr(EncrId::kAesGcm16, 128);
  odd_attr.attributes.push_back({99, true, 1, {}});
  ike::SaPayload attrs{{esp_proposal(1, {odd_attr, tf(TransformType::kEncryption, 0x4242),
                                         encr(EncrId::kAesGcm16, 128), esn(EsnId::kNoEsn)})}};
  auto r3 = p.choose(attrs, {});
  ASSERT_TRUE(r3.ok()) << r3.reason;
  EXPECT_EQ(r3.selected.proposal.transforms[0], encr(EncrId::kAesGcm16, 128));
  // A PRF in an ESP proposal is a type not understood for ESP.
  ike::SaPayload prf_in_esp{{esp_proposal(1, {encr(EncrId::kAesGcm16, 128), prf(PrfId::kHmacSha2_256),
                                              esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(p.choose(prf_in_esp, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
}

TEST(ProposalChooseTest, EspPfsAndEsn) {
  auto pfs = policy(ProtocolId::kEsp, "aes128-sha1-modp2048");
  ike::SaPayload sa{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), integ(IntegId::kHmacSha1_96),
                                      dh(DhId::kModp2048), esn(EsnId::kEsn), esn(EsnId::kNoEsn)})}};
  auto r = pfs.choose(sa, {DhId::kModp2048, false});
  ASSERT_TRUE(r.ok()) << r.reason;
  EXPECT_EQ(r.selected.dh, DhId::kModp2048);
  EXPECT_EQ(r.selected.esn, EsnId::kNoEsn);
  EXPECT_EQ(r.selected.proposal.transforms.back(), esn(EsnId::kNoEsn));
  // IKE_AUTH: D-H ignored and left out of the reply.
  auto r2 = pfs.choose(sa, {std::nullopt, true});
  ASSERT_TRUE(r2.ok()) << r2.reason;
  EXPECT_EQ(r2.selected.dh, DhId::kNone);
  for (const auto& t : r2.selected.proposal.transforms) EXPECT_NE(t.type, TransformType::kDiffieHellman);
  // A peer without PFS against a PFS policy: no KE, asked for our group.
  ike::SaPayload no_pfs{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), integ(IntegId::kHmacSha1_96),
                                          esn(EsnId::kNoEsn)})}};
  EXPECT_EQ(pfs.choose(no_pfs, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
  // A policy without PFS accepts a peer offering NONE, not one insisting.
  auto plain = policy(ProtocolId::kEsp, "aes128-sha1-esn");
  ike::SaPayload with_none{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), integ(IntegId::kHmacSha1_96),
                                             dh(DhId::kNone), dh(DhId::kModp2048), esn(EsnId::kEsn)})}};
  auto r3 = plain.choose(with_none, {});
  ASSERT_TRUE(r3.ok()) << r3.reason;
  EXPECT_EQ(r3.selected.dh, DhId::kNone);
  EXPECT_EQ(r3.selected.esn, EsnId::kEsn);
  ike::SaPayload insisting{{esp_proposal(1, {encr(EncrId::kAesCbc, 128), integ(IntegId::kHmacSha1_96),
                                             dh(DhId::kModp2048), esn(EsnId::kEsn)})}};
  EXPECT_EQ(plain.choose(insisting, {DhId::kModp2048, false}).outcome,
            ChooseResult::Outcome::kNoProposalChosen);
  // ESN mismatch.
  EXPECT_EQ(plain.choose(no_pfs, {}).outcome, ChooseResult::Outcome::kNoProposalChosen);
}

// --- initiator: validating the reply -------------------------------------

TEST(ProposalReplyTest, OfferAndValidRoundTrip) {
  auto ours = policy(ProtocolId::kIke, "aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048");
  auto peer = policy(ProtocolId::kIke, "aes128-sha256-modp2048");
  const auto offered = ours.offer({});
  ASSERT_EQ(offered.proposals.size(), 2u);
  EXPECT_EQ(offered.proposals[1].number, 2);
  EXPECT_EQ(offered.proposals[0].transforms[0], encr(EncrId::kAesGcm16, 256));
  auto chosen = peer.choose(offered, {DhId::kModp2048, false});
  ASSERT_TRUE(chosen.ok()) << chosen.reason;
  auto reply = validate_reply(offered, ike::SaPayload{{chosen.selected.proposal}});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_EQ(reply->encr, (EncrSpec{EncrId::kAesCbc, 128}));
  EXPECT_EQ(reply->prf, PrfId::kHmacSha2_256);
  EXPECT_EQ(reply->integ, IntegId::kHmacSha2_256_128);
  EXPECT_EQ(reply->dh, DhId::kModp2048);

  auto esp = policy(ProtocolId::kEsp, "aes128gcm16-esn-noesn");
  const std::vector<uint8_t> spi = {1, 2, 3, 4};
  const auto esp_offer = esp.offer(spi);
  auto esp_chosen = esp.choose(esp_offer, {});
  ASSERT_TRUE(esp_chosen.ok()) << esp_chosen.reason;
  esp_chosen.selected.proposal.spi = {9, 9, 9, 9};  // the responder's SPI
  auto esp_reply = validate_reply(esp_offer, ike::SaPayload{{esp_chosen.selected.proposal}});
  ASSERT_TRUE(esp_reply.ok()) << esp_reply.error();
  EXPECT_EQ(esp_reply->esn, EsnId::kEsn);
}

TEST(ProposalReplyTest, RejectsWhatWasNotOffered) {
  auto ours = policy(ProtocolId::kIke, "aes128-aes256-sha256-modp2048-ecp256");
  const auto offered = ours.offer({});
  const ike::Proposal good = ike_proposal(1, {encr(EncrId::kAesCbc, 256), prf(PrfId::kHmacSha2_256),
                                              integ(IntegId::kHmacSha2_256_128), dh(DhId::kEcp256)});
  ASSERT_TRUE(validate_reply(offered, {{good}}).ok());
  auto expect_error = [&](ike::SaPayload reply, const char* needle) {
    auto r = validate_reply(offered, reply);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.error().find(needle), std::string::npos) << r.error();
  };
  expect_error({{good, good}}, "expected exactly 1");
  expect_error({}, "expected exactly 1");
  auto p = good;
  p.number = 2;
  expect_error({{p}}, "not offered");
  p = good;
  p.protocol = ProtocolId::kEsp;
  expect_error({{p}}, "protocol");
  p = good;
  p.spi = {1, 2, 3, 4, 5, 6, 7, 8};
  expect_error({{p}}, "SPI size");
  p = good;
  p.transforms[0] = encr(EncrId::kAesCbc, 192);  // key length not offered
  expect_error({{p}}, "was not offered");
  p = good;
  p.transforms.push_back(dh(DhId::kModp2048));  // two D-H
  expect_error({{p}}, "more than one");
  p = good;
  p.transforms.pop_back();  // D-H missing
  expect_error({{p}}, "no D-H");
  p = good;
  p.transforms.erase(p.transforms.begin() + 2);  // INTEG missing with CBC
  expect_error({{p}}, "no INTEG");
  p = good;
  p.transforms.erase(p.transforms.begin() + 1);
  expect_error({{p}}, "no PRF");
  p = good;
  p.transforms.push_back(esn(EsnId::kNoEsn));
  expect_error({{p}}, "ESN was not offered");
  p = good;
  p.transforms.push_back({static_cast<TransformType>(9), 1, {}});
  expect_error({{p}}, "unknown transform type");

  // AEAD with an integrity algorithm, where the offer mixed (a peer's offer).
  ike::SaPayload mixed{{ike_proposal(1, {encr(EncrId::kAesGcm16, 128), prf(PrfId::kHmacSha2_256),
                                         integ(IntegId::kHmacSha1_96), dh(DhId::kEcp256)})}};
  auto r = validate_reply(mixed, mixed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("AEAD"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace segw::cp::policy
