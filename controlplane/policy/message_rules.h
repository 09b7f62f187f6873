// Message legality as data (strongSwan encoding/message.c habit): for each
// exchange type and direction, which payloads a message may carry, how
// many, and whether they must be inside SK (RFC 7296 1.2-1.5, 2.21).
//
// Thread safety: the tables are constant; every function is pure and may
// be called from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "controlplane/ike/codec/message.h"
#include "shared/result.h"

namespace segw::cp::policy {

inline constexpr uint8_t kUnlimited = 255;

// One row: a payload type may appear between `min` and `max` times
// (kUnlimited: no upper bound); `encrypted`: only inside SK/SKF.
struct PayloadRule {
  ike::PayloadType type;
  uint8_t min;
  uint8_t max;
  bool encrypted;
};

// The rules of one exchange type and direction.
struct MessageRuleSet {
  ike::ExchangeType exchange;
  bool response;
  // The regular form of the message.
  std::span<const PayloadRule> rules;
  // Responses only: the error form (RFC 7296 2.21, 1.2 COOKIE /
  // INVALID_KE_PAYLOAD): a message that carries nothing but Notify
  // payloads, at least one of them an error notify (or COOKIE in
  // IKE_SA_INIT), is checked against these rules instead. Empty: none.
  std::span<const PayloadRule> error_rules;
};

// Every rule set, for tests and documentation.
std::span<const MessageRuleSet> all_message_rules();
// The rule set of an exchange and direction; nullptr for an unknown exchange.
const MessageRuleSet* find_message_rules(ike::ExchangeType exchange, bool response);

// "Ni"/"Nr" for the Nonce by direction, "N", "D", "V", otherwise the
// codec's name ("SA", "IDi", "CERTREQ"...).
std::string payload_rule_name(ike::PayloadType type, bool response);

// Checks `message` (decoded, direction from its R flag) together with
// `inner`, the payloads decrypted from its SK/SKF (empty for IKE_SA_INIT).
// Errors, each starting with "EXCHANGE request|response: ":
//   unknown exchange type;
//   IKE_SA_INIT: an SK/SKF payload ("SK not allowed");
//   other exchanges: no SK/SKF ("no SK payload"); a payload whose rule
//     says encrypted found outside SK ("IDi outside SK"), or one whose rule
//     says cleartext found inside ("X inside SK");
//   a known payload with no rule ("EAP not allowed");
//   fewer than min ("no KE payload") or more than max ("2 KE payloads,
//     at most 1");
//   an unknown payload marked critical (RFC 7296 2.5).
// Unknown non-critical payloads are ignored; Notify payloads are unlimited.
shared::Status check_message(const ike::Message& message, std::span<const ike::Payload> inner);

// The same with the exchange and direction given, against one rule set
// (the regular or error form is picked as check_message does).
shared::Status check_payloads(ike::ExchangeType exchange, bool response,
                              std::span<const ike::Payload> outer,
                              std::span<const ike::Payload> inner);

}  // namespace segw::cp::policy
