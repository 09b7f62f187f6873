// The payload rule tables of every exchange and the checker that applies
// them to a decoded message and its decrypted inner payloads.
#include "controlplane/policy/message_rules.h"

#include <array>

namespace segw::cp::policy {

using ike::ExchangeType;
using ike::PayloadType;
using shared::make_error;
using shared::Status;

namespace {

constexpr uint8_t U = kUnlimited;
constexpr bool kClear = false;
constexpr bool kSk = true;

// RFC 7296 1.2: IKE_SA_INIT is all cleartext.
constexpr PayloadRule kIkeSaInitRequest[] = {
    {PayloadType::kSecurityAssociation, 1, 1, kClear},
    {PayloadType::kKeyExchange, 1, 1, kClear},
    {PayloadType::kNonce, 1, 1, kClear},
    {PayloadType::kNotify, 0, U, kClear},
    {PayloadType::kVendorId, 0, U, kClear},
};
constexpr PayloadRule kIkeSaInitResponse[] = {
    {PayloadType::kSecurityAssociation, 1, 1, kClear},
    {PayloadType::kKeyExchange, 1, 1, kClear},
    {PayloadType::kNonce, 1, 1, kClear},
    {PayloadType::kCertificateRequest, 0, U, kClear},
    {PayloadType::kNotify, 0, U, kClear},
    {PayloadType::kVendorId, 0, U, kClear},
};
// RFC 7296 1.2 (COOKIE, INVALID_KE_PAYLOAD), 2.21.1: a lone Notify.
constexpr PayloadRule kIkeSaInitResponseError[] = {
    {PayloadType::kNotify, 1, U, kClear},
};
// RFC 7296 1.2, 2.15-2.17: IKE_AUTH inside SK.
constexpr PayloadRule kIkeAuthRequest[] = {
    {PayloadType::kIdInitiator, 1, 1, kSk},
    {PayloadType::kCertificate, 0, U, kSk},
    {PayloadType::kCertificateRequest, 0, U, kSk},
    {PayloadType::kIdResponder, 0, 1, kSk},
    {PayloadType::kAuthentication, 1, 1, kSk},
    {PayloadType::kConfiguration, 0, 1, kSk},
    {PayloadType::kSecurityAssociation, 0, 1, kSk},
    {PayloadType::kTsInitiator, 0, 1, kSk},
    {PayloadType::kTsResponder, 0, 1, kSk},
    {PayloadType::kNotify, 0, U, kSk},
    {PayloadType::kVendorId, 0, U, kSk},
};
constexpr PayloadRule kIkeAuthResponse[] = {
    {PayloadType::kIdResponder, 1, 1, kSk},
    {PayloadType::kCertificate, 0, U, kSk},
    {PayloadType::kAuthentication, 1, 1, kSk},
    {PayloadType::kConfiguration, 0, 1, kSk},
    {PayloadType::kSecurityAssociation, 0, 1, kSk},
    {PayloadType::kTsInitiator, 0, 1, kSk},
    {PayloadType::kTsResponder, 0, 1, kSk},
    {PayloadType::kNotify, 0, U, kSk},
};
// RFC 7296 2.21.2: AUTHENTICATION_FAILED and friends, alone in SK.
constexpr PayloadRule kEncryptedResponseError[] = {
    {PayloadType::kNotify, 1, U, kSk},
};
// RFC 7296 1.3: Ni in the request, Nr in the response; KE for PFS or IKE
// rekey; TS absent for an IKE SA rekey.
constexpr PayloadRule kCreateChildSa[] = {
    {PayloadType::kSecurityAssociation, 1, 1, kSk},
    {PayloadType::kNonce, 1, 1, kSk},
    {PayloadType::kKeyExchange, 0, 1, kSk},
    {PayloadType::kTsInitiator, 0, 1, kSk},
    {PayloadType::kTsResponder, 0, 1, kSk},
    {PayloadType::kNotify, 0, U, kSk},
};
// RFC 7296 1.4: possibly empty (liveness check).
constexpr PayloadRule kInformational[] = {
    {PayloadType::kNotify, 0, U, kSk},
    {PayloadType::kDelete, 0, U, kSk},
    {PayloadType::kConfiguration, 0, 1, kSk},
};

constexpr MessageRuleSet kRuleSets[] = {
    {ExchangeType::kIkeSaInit, false, kIkeSaInitRequest, {}},
    {ExchangeType::kIkeSaInit, true, kIkeSaInitResponse, kIkeSaInitResponseError},
    {ExchangeType::kIkeAuth, false, kIkeAuthRequest, {}},
    {ExchangeType::kIkeAuth, true, kIkeAuthResponse, kEncryptedResponseError},
    {ExchangeType::kCreateChildSa, false, kCreateChildSa, {}},
    {ExchangeType::kCreateChildSa, true, kCreateChildSa, kEncryptedResponseError},
    {ExchangeType::kInformational, false, kInformational, {}},
    {ExchangeType::kInformational, true, kInformational, {}},
};

bool is_encrypted_type(PayloadType t) {
  return t == PayloadType::kEncrypted || t == PayloadType::kEncryptedFragment;
}

bool is_unknown(const ike::Payload& p) {
  return !ike::is_known_payload_type(p.type) || p.get<ike::UnknownPayload>() != nullptr;
}

const PayloadRule* find_rule(std::span<const PayloadRule> rules, PayloadType type) {
  for (const auto& r : rules)
    if (r.type == type) return &r;
  return nullptr;
}

// Nothing but Notify payloads (unknown non-critical ones aside), with an
// error notify among them, or COOKIE for IKE_SA_INIT.
bool is_error_form(ExchangeType exchange, std::span<const ike::Payload> payloads) {
  bool error = false;
  for (const auto& p : payloads) {
    if (is_unknown(p) && !p.critical) continue;
    const auto* n = p.get<ike::NotifyPayload>();
    if (p.type != PayloadType::kNotify || !n) return false;
    error = error || ike::is_error_notify(n->type) ||
            (exchange == ExchangeType::kIkeSaInit && n->type == ike::NotifyType::kCookie);
  }
  return error;
}

}  // namespace

std::span<const MessageRuleSet> all_message_rules() { return kRuleSets; }

const MessageRuleSet* find_message_rules(ExchangeType exchange, bool response) {
  for (const auto& set : kRuleSets)
    if (set.exchange == exchange && set.response == response) return &set;
  return nullptr;
}

std::string payload_rule_name(PayloadType type, bool response) {
  switch (type) {
    case PayloadType::kNonce: return response ? "Nr" : "Ni";
    case PayloadType::kNotify: return "N";
    case PayloadType::kDelete: return "D";
    case PayloadType::kVendorId: return "V";
    default: return ike::to_string(type);
  }
}

Status check_payloads(ExchangeType exchange, bool response, std::span<const ike::Payload> outer,
                      std::span<const ike::Payload> inner) {
  const std::string where = ike::to_string(exchange) + (response ? " response: " : " request: ");
  const MessageRuleSet* set = find_message_rules(exchange, response);
  if (!set) return make_error(where + "exchange type not supported");
  const bool cleartext_exchange = exchange == ExchangeType::kIkeSaInit;

  // The payloads that the rules count: the cleartext ones except SK/SKF,
  // and the decrypted ones.
  size_t sk_count = 0;
  for (const auto& p : outer) sk_count += is_encrypted_type(p.type);
  if (cleartext_exchange && (sk_count > 0 || !inner.empty()))
    return make_error(where + "SK not allowed");
  if (!cleartext_exchange && sk_count == 0) return make_error(where + "no SK payload");

  // The error form applies to what the peer put where its payloads go.
  std::span<const ike::Payload> body = cleartext_exchange ? outer : inner;
  std::span<const PayloadRule> rules = set->rules;
  if (!set->error_rules.empty() && is_error_form(exchange, body)) rules = set->error_rules;

  std::array<unsigned, 256> counts{};
  auto visit = [&](const ike::Payload& p, bool inside) -> Status {
    if (is_encrypted_type(p.type)) {
      if (inside) return make_error(where + ike::to_string(p.type) + " inside SK");
      return Status::success();
    }
    if (is_unknown(p)) {
      // RFC 7296 2.5: skip unknown payloads unless marked critical.
      if (p.critical)
        return make_error(where + "unsupported critical payload " + ike::to_string(p.type));
      return Status::success();
    }
    const PayloadRule* rule = find_rule(rules, p.type);
    const std::string name = payload_rule_name(p.type, response);
    if (!rule) return make_error(where + name + " not allowed");
    if (rule->encrypted && !inside) return make_error(where + name + " outside SK");
    if (!rule->encrypted && inside) return make_error(where + name + " inside SK");
    ++counts[static_cast<uint8_t>(p.type)];
    return Status::success();
  };
  for (const auto& p : outer)
    if (auto st = visit(p, false); !st) return st;
  for (const auto& p : inner)
    if (auto st = visit(p, true); !st) return st;

  for (const auto& rule : rules) {
    unsigned n = counts[static_cast<uint8_t>(rule.type)];
    const std::string name = payload_rule_name(rule.type, response);
    if (n < rule.min) {
      if (n == 0) return make_error(where + "no " + name + " payload");
      return make_error(where + std::to_string(n) + " " + name + " payloads, at least " +
                        std::to_string(rule.min));
    }
    if (rule.max != kUnlimited && n > rule.max)
      return make_error(where + std::to_string(n) + " " + name + " payloads, at most " +
                        std::to_string(rule.max));
  }
  return Status::success();
}

Status check_message(const ike::Message& message, std::span<const ike::Payload> inner) {
  return check_payloads(message.header.exchange, message.header.is_response(), message.payloads, inner);
}

}  // namespace segw::cp::policy
