// Message rules: every row of every table is probed against an independent
// copy of the RFC 7296 payload lists written here, so dropping or loosening
// a row in message_rules.cc fails a test: the minimum (one fewer is an
// error naming the payload), the maximum (one more is an error), the
// allowance (a known type outside the list is "not allowed"), and the SK
// placement ("outside SK").
#include "controlplane/policy/message_rules.h"

#include <gtest/gtest.h>

#include <map>

namespace segw::cp::policy {
namespace {

using ike::ExchangeType;
using ike::NotifyType;
using ike::Payload;
using ike::PayloadType;

struct Expected {
  PayloadType type;
  unsigned min;
  unsigned max;  // kUnlimited = no bound
};

struct ExpectedSet {
  ExchangeType exchange;
  bool response;
  std::vector<Expected> rows;
};

constexpr unsigned U = kUnlimited;
// RFC 7296 1.2-1.5 as the brief lists them.
const std::vector<ExpectedSet>& expected_sets() {
  static const std::vector<ExpectedSet> sets = {
      {ExchangeType::kIkeSaInit, false,
       {{PayloadType::kSecurityAssociation, 1, 1}, {PayloadType::kKeyExchange, 1, 1},
        {PayloadType::kNonce, 1, 1}, {PayloadType::kNotify, 0, U}, {PayloadType::kVendorId, 0, U}}},
      {ExchangeType::kIkeSaInit, true,
       {{PayloadType::kSecurityAssociation, 1, 1}, {PayloadType::kKeyExchange, 1, 1},
        {PayloadType::kNonce, 1, 1}, {PayloadType::kCertificateRequest, 0, U},
        {PayloadType::kNotify, 0, U}, {PayloadType::kVendorId, 0, U}}},
      {ExchangeType::kIkeAuth, false,
       {{PayloadType::kIdInitiator, 1, 1}, {PayloadType::kCertificate, 0, U},
        {PayloadType::kCertificateRequest, 0, U}, {PayloadType::kIdResponder, 0, 1},
        {PayloadType::kAuthentication, 1, 1}, {PayloadType::kConfiguration, 0, 1},
        {PayloadType::kSecurityAssociation, 0, 1}, {PayloadType::kTsInitiator, 0, 1},
        {PayloadType::kTsResponder, 0, 1}, {PayloadType::kNotify, 0, U},
        {PayloadType::kVendorId, 0, U}}},
      {ExchangeType::kIkeAuth, true,
       {{PayloadType::kIdResponder, 1, 1}, {PayloadType::kCertificate, 0, U},
        {PayloadType::kAuthentication, 1, 1}, {PayloadType::kConfiguration, 0, 1},
        {PayloadType::kSecurityAssociation, 0, 1}, {PayloadType::kTsInitiator, 0, 1},
        {PayloadType::kTsResponder, 0, 1}, {PayloadType::kNotify, 0, U}}},
      {ExchangeType::kCreateChildSa, false,
       {{PayloadType::kSecurityAssociation, 1, 1}, {PayloadType::kNonce, 1, 1},
        {PayloadType::kKeyExchange, 0, 1}, {PayloadType::kTsInitiator, 0, 1},
        {PayloadType::kTsResponder, 0, 1}, {PayloadType::kNotify, 0, U}}},
      {ExchangeType::kCreateChildSa, true,
       {{PayloadType::kSecurityAssociation, 1, 1}, {PayloadType::kNonce, 1, 1},
        {PayloadType::kKeyExchange, 0, 1}, {PayloadType::kTsInitiator, 0, 1},
        {PayloadType::kTsResponder, 0, 1}, {PayloadType::kNotify, 0, U}}},
      {ExchangeType::kInformational, false,
       {{PayloadType::kNotify, 0, U}, {PayloadType::kDelete, 0, U}, {PayloadType::kConfiguration, 0, 1}}},
      {ExchangeType::kInformational, true,
       {{PayloadType::kNotify, 0, U}, {PayloadType::kDelete, 0, U}, {PayloadType::kConfiguration, 0, 1}}},
  };
  return sets;
}

// A payload of `type` with a body of the right kind (the rules look at
// types, and at notify types for the error form).
Payload payload(PayloadType type) {
  Payload p;
  p.type = type;
  switch (type) {
    case PayloadType::kSecurityAssociation: p.body = ike::SaPayload{}; break;
    case PayloadType::kKeyExchange: p.body = ike::KePayload{}; break;
    case PayloadType::kIdInitiator:
    case PayloadType::kIdResponder: p.body = ike::IdPayload{}; break;
    case PayloadType::kCertificate: p.body = ike::CertPayload{}; break;
    case PayloadType::kCertificateRequest: p.body = ike::CertReqPayload{}; break;
    case PayloadType::kAuthentication: p.body = ike::AuthPayload{}; break;
    case PayloadType::kNonce: p.body = ike::NoncePayload{}; break;
    case PayloadType::kNotify: p.body = ike::make_notify(NotifyType::kInitialContact); break;
    case PayloadType::kDelete: p.body = ike::DeletePayload{}; break;
    case PayloadType::kVendorId: p.body = ike::VendorIdPayload{}; break;
    case PayloadType::kTsInitiator:
    case PayloadType::kTsResponder: p.body = ike::TsPayload{}; break;
    case PayloadType::kEncrypted: p.body = ike::EncryptedPayload{}; break;
    case PayloadType::kConfiguration: p.body = ike::CpPayload{}; break;
    case PayloadType::kEap: p.body = ike::EapPayload{}; break;
    case PayloadType::kEncryptedFragment: p.body = ike::EncryptedFragmentPayload{}; break;
    default: p.body = ike::UnknownPayload{}; break;
  }
  return p;
}

Payload notify(NotifyType type) {
  Payload p = payload(PayloadType::kNotify);
  p.body = ike::make_notify(type);
  return p;
}

const std::vector<PayloadType> kKnownTypes = {
    PayloadType::kSecurityAssociation, PayloadType::kKeyExchange, PayloadType::kIdInitiator,
    PayloadType::kIdResponder, PayloadType::kCertificate, PayloadType::kCertificateRequest,
    PayloadType::kAuthentication, PayloadType::kNonce, PayloadType::kNotify, PayloadType::kDelete,
    PayloadType::kVendorId, PayloadType::kTsInitiator, PayloadType::kTsResponder,
    PayloadType::kConfiguration, PayloadType::kEap};

// Checks `payloads` as the message body: cleartext for IKE_SA_INIT, inside
// SK otherwise.
shared::Status check(ExchangeType exchange, bool response, const std::vector<Payload>& payloads) {
  if (exchange == ExchangeType::kIkeSaInit) return check_payloads(exchange, response, payloads, {});
  std::vector<Payload> outer = {payload(PayloadType::kEncrypted)};
  return check_payloads(exchange, response, outer, payloads);
}

// The minimal legal body of a set, with `type` appearing `count` times.
std::vector<Payload> body_with(const ExpectedSet& set, PayloadType type, unsigned count) {
  std::vector<Payload> out;
  for (const auto& row : set.rows) {
    unsigned n = row.type == type ? count : row.min;
    for (unsigned i = 0; i < n; ++i) out.push_back(payload(row.type));
  }
  return out;
}

std::string label(const ExpectedSet& set) {
  return ike::to_string(set.exchange) + (set.response ? " response" : " request");
}

TEST(MessageRulesTest, TablesMatchTheRfcLists) {
  for (const auto& set : expected_sets()) {
    const auto* rules = find_message_rules(set.exchange, set.response);
    ASSERT_NE(rules, nullptr) << label(set);
    ASSERT_EQ(rules->rules.size(), set.rows.size()) << label(set);
    for (const auto& row : set.rows) {
      bool found = false;
      for (const auto& r : rules->rules)
        if (r.type == row.type) {
          found = true;
          EXPECT_EQ(r.min, row.min) << label(set) << " " << ike::to_string(row.type);
          EXPECT_EQ(r.max, row.max) << label(set) << " " << ike::to_string(row.type);
          EXPECT_EQ(r.encrypted, set.exchange != ExchangeType::kIkeSaInit);
        }
      EXPECT_TRUE(found) << label(set) << " " << ike::to_string(row.type);
    }
  }
  EXPECT_EQ(all_message_rules().size(), expected_sets().size());
}

// Behaviour, independent of the table's layout.
TEST(MessageRulesTest, EveryRowIsEnforced) {
  for (const auto& set : expected_sets()) {
    SCOPED_TRACE(label(set));
    // The minimal message is legal.
    auto minimal = check(set.exchange, set.response, body_with(set, PayloadType::kNone, 0));
    EXPECT_TRUE(minimal.ok()) << minimal.error();
    for (const auto& row : set.rows) {
      const std::string name = payload_rule_name(row.type, set.response);
      SCOPED_TRACE(name);
      // Each allowed payload up to its maximum (5 for unlimited) is legal.
      unsigned upto = row.max == U ? 5 : row.max;
      auto at_max = check(set.exchange, set.response, body_with(set, row.type, upto));
      EXPECT_TRUE(at_max.ok()) << at_max.error();
      // One fewer than the minimum.
      if (row.min > 0) {
        auto missing = check(set.exchange, set.response, body_with(set, row.type, row.min - 1));
        ASSERT_FALSE(missing.ok());
        EXPECT_EQ(missing.error(), label(set) + ": no " + name + " payload");
      }
      // One more than the maximum.
      if (row.max != U) {
        auto extra = check(set.exchange, set.response, body_with(set, row.type, row.max + 1));
        ASSERT_FALSE(extra.ok());
        EXPECT_EQ(extra.error(), label(set) + ": " + std::to_string(row.max + 1) + " " + name +
                                     " payloads, at most " + std::to_string(row.max));
      }
      // Outside SK (all but IKE_SA_INIT).
      if (set.exchange != ExchangeType::kIkeSaInit) {
        auto inner = body_with(set, PayloadType::kNone, 0);
        std::vector<Payload> outer = {payload(row.type), payload(PayloadType::kEncrypted)};
        auto outside = check_payloads(set.exchange, set.response, outer, inner);
        ASSERT_FALSE(outside.ok());
        EXPECT_EQ(outside.error(), label(set) + ": " + name + " outside SK");
      }
    }
    // Known payloads outside the list are not allowed.
    for (PayloadType type : kKnownTypes) {
      bool listed = false;
      for (const auto& row : set.rows) listed = listed || row.type == type;
      if (listed) continue;
      auto body = body_with(set, PayloadType::kNone, 0);
      body.push_back(payload(type));
      auto st = check(set.exchange, set.response, body);
      ASSERT_FALSE(st.ok()) << ike::to_string(type);
      EXPECT_EQ(st.error(), label(set) + ": " + payload_rule_name(type, set.response) + " not allowed");
    }
  }
}

TEST(MessageRulesTest, NamedErrorsFromTheBrief) {
  std::vector<Payload> init = {payload(PayloadType::kSecurityAssociation), payload(PayloadType::kNonce)};
  auto st = check(ExchangeType::kIkeSaInit, false, init);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "IKE_SA_INIT request: no KE payload");

  std::vector<Payload> outer = {payload(PayloadType::kIdInitiator), payload(PayloadType::kEncrypted)};
  std::vector<Payload> inner = {payload(PayloadType::kAuthentication)};
  auto st2 = check_payloads(ExchangeType::kIkeAuth, false, outer, inner);
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error(), "IKE_AUTH request: IDi outside SK");
  EXPECT_EQ(payload_rule_name(PayloadType::kNonce, true), "Nr");
  EXPECT_EQ(payload_rule_name(PayloadType::kNonce, false), "Ni");
}

TEST(MessageRulesTest, CheckMessageUsesHeader) {
  ike::Message m;
  m.header.exchange = ExchangeType::kIkeAuth;
  m.header.flags = ike::kFlagResponse;
  m.payloads = {payload(PayloadType::kEncrypted)};
  std::vector<Payload> inner = {payload(PayloadType::kIdResponder), payload(PayloadType::kAuthentication)};
  EXPECT_TRUE(check_message(m, inner).ok());
  m.header.flags = ike::kFlagInitiator;  // now a request: IDr alone is not enough
  auto st = check_message(m, inner);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "IKE_AUTH request: no IDi payload");
  m.header.exchange = static_cast<ExchangeType>(40);
  EXPECT_FALSE(check_message(m, inner).ok());
}

TEST(MessageRulesTest, SkPlacement) {
  // IKE_SA_INIT: no SK at all.
  std::vector<Payload> init = {payload(PayloadType::kSecurityAssociation), payload(PayloadType::kKeyExchange),
                               payload(PayloadType::kNonce), payload(PayloadType::kEncrypted)};
  auto st = check_payloads(ExchangeType::kIkeSaInit, false, init, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "IKE_SA_INIT request: SK not allowed");
  // Others: SK (or SKF) required.
  auto st2 = check_payloads(ExchangeType::kInformational, false, {}, {});
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error(), "INFORMATIONAL request: no SK payload");
  std::vector<Payload> skf = {payload(PayloadType::kEncryptedFragment)};
  EXPECT_TRUE(check_payloads(ExchangeType::kInformational, false, skf, {}).ok());
  // SK inside SK.
  std::vector<Payload> sk = {payload(PayloadType::kEncrypted)};
  std::vector<Payload> nested = {payload(PayloadType::kEncrypted)};
  auto st3 = check_payloads(ExchangeType::kInformational, true, sk, nested);
  ASSERT_FALSE(st3.ok());
  EXPECT_EQ(st3.error(), "INFORMATIONAL response: SK inside SK");
}

TEST(MessageRulesTest, UnknownPayloadsIgnoredUnlessCritical) {
  Payload unknown;
  unknown.type = static_cast<PayloadType>(200);
  unknown.body = ike::UnknownPayload{{1, 2, 3}};
  std::vector<Payload> init = {payload(PayloadType::kSecurityAssociation), payload(PayloadType::kKeyExchange),
                               payload(PayloadType::kNonce), unknown};
  EXPECT_TRUE(check_payloads(ExchangeType::kIkeSaInit, false, init, {}).ok());
  std::vector<Payload> sk = {unknown, payload(PayloadType::kEncrypted)};
  EXPECT_TRUE(check_payloads(ExchangeType::kInformational, false, sk, {}).ok());
  init.back().critical = true;
  auto st = check_payloads(ExchangeType::kIkeSaInit, false, init, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "IKE_SA_INIT request: unsupported critical payload unknown(200)");
}

TEST(MessageRulesTest, LoneNotifyResponses) {
  // IKE_SA_INIT: COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN alone.
  for (NotifyType t : {NotifyType::kCookie, NotifyType::kInvalidKePayload, NotifyType::kNoProposalChosen}) {
    std::vector<Payload> body = {notify(t)};
    auto st = check_payloads(ExchangeType::kIkeSaInit, true, body, {});
    EXPECT_TRUE(st.ok()) << ike::to_string(t) << ": " << st.error();
  }
  // A lone status notify other than COOKIE is not an answer.
  std::vector<Payload> status = {notify(NotifyType::kNatDetectionSourceIp)};
  auto st = check_payloads(ExchangeType::kIkeSaInit, true, status, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), "IKE_SA_INIT response: no SA payload");
  // COOKIE with anything else: the regular form applies.
  std::vector<Payload> mixed = {notify(NotifyType::kCookie), payload(PayloadType::kCertificateRequest)};
  EXPECT_FALSE(check_payloads(ExchangeType::kIkeSaInit, true, mixed, {}).ok());
  // Requests have no error form.
  std::vector<Payload> req = {notify(NotifyType::kCookie)};
  EXPECT_FALSE(check_payloads(ExchangeType::kIkeSaInit, false, req, {}).ok());
  // IKE_AUTH and CREATE_CHILD_SA responses: an error notify alone in SK.
  std::vector<Payload> sk = {payload(PayloadType::kEncrypted)};
  std::vector<Payload> auth_failed = {notify(NotifyType::kAuthenticationFailed)};
  EXPECT_TRUE(check_payloads(ExchangeType::kIkeAuth, true, sk, auth_failed).ok());
  std::vector<Payload> no_prop = {notify(NotifyType::kNoProposalChosen)};
  EXPECT_TRUE(check_payloads(ExchangeType::kCreateChildSa, true, sk, no_prop).ok());
  // ... but not a COOKIE, and not outside SK.
  std::vector<Payload> cookie = {notify(NotifyType::kCookie)};
  EXPECT_FALSE(check_payloads(ExchangeType::kIkeAuth, true, sk, cookie).ok());
  std::vector<Payload> outside = {notify(NotifyType::kAuthenticationFailed), payload(PayloadType::kEncrypted)};
  auto st2 = check_payloads(ExchangeType::kIkeAuth, true, outside, {});
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.error(), "IKE_AUTH response: N outside SK");
}

}  // namespace
}  // namespace segw::cp::policy
