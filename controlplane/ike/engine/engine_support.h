// Pieces of the IKEv2 engine that do not need an IKE SA: SPI and traffic
// selector conversions, selector narrowing, SK sealing/opening of whole
// messages, the ESP algorithm the data plane runs for a negotiated suite,
// and the COOKIE (RFC 7296 2.6) computation. Pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "controlplane/crypto/algorithms.h"
#include "controlplane/crypto/sk_protection.h"
#include "controlplane/ike/codec/message.h"
#include "controlplane/policy/proposals.h"
#include "shared/channel/messages.h"
#include "shared/result.h"
#include "shared/sa_descriptor.h"

namespace segw::cp::ike {

crypto::IkeSpi spi_to_wire(uint64_t spi);
uint64_t spi_from_wire(std::span<const uint8_t> bytes);  // 8 bytes

shared::TrafficSelector to_shared(const TrafficSelector& selector);
TrafficSelector to_wire(const shared::TrafficSelector& selector);

// The intersection of two selectors (same family, overlapping addresses,
// compatible protocol and ports); nullopt when they do not overlap.
std::optional<shared::TrafficSelector> intersect(const shared::TrafficSelector& a,
                                                 const shared::TrafficSelector& b);
// Every non-empty pairwise intersection, at most `limit`, duplicates removed.
std::vector<shared::TrafficSelector> narrow(std::span<const shared::TrafficSelector> offered,
                                            std::span<const shared::TrafficSelector> allowed,
                                            size_t limit);
bool overlaps(const shared::TrafficSelector& a, const shared::TrafficSelector& b);

// A protected message: the header as given (next payload and length
// computed), SK { inner }. Errors: encoding, crypto.
shared::Result<std::vector<uint8_t>> seal_message(const IkeHeader& header,
                                                  std::span<const Payload> inner,
                                                  crypto::SkCipher& cipher);
// The inner payloads of a decoded message whose last payload is SK.
// Errors: no SK (SKF fragments are reassembled by the engine, not here), ICV failure
// (the error says "ICV"), inner chain malformed.
shared::Result<std::vector<Payload>> open_message(std::span<const uint8_t> datagram,
                                                  const Message& message,
                                                  const crypto::SkCipher& cipher,
                                                  bool* icv_failed = nullptr);

// The data plane's ESP algorithm for a negotiated ESP proposal; nullopt when
// segw-dataplane does not run it (e.g. AES-192, HMAC-SHA2-384).
std::optional<shared::EspAlgorithm> esp_algorithm_for(const policy::SelectedProposal& selected);
bool data_plane_runs(const policy::ProposalSpec& spec);

// The encoded body of an ID payload (ID Type | RESERVED | data), as the
// AUTH computation signs it (RFC 7296 2.15).
std::vector<uint8_t> id_payload_body(const IdPayload& id);

// "aes256gcm16-prfsha256-ecp256" for a selected IKE proposal.
std::string describe(const policy::SelectedProposal& selected);

const NotifyPayload* first_error_notify(std::span<const Payload> payloads);
// Every notify of `type`, in order.
std::vector<const NotifyPayload*> notifies_of(std::span<const Payload> payloads, NotifyType type);

// RFC 4555 4.6: NO_NATS_ALLOWED data (source and destination address and
// port as sent), and whether a received one matches the datagram's header.
std::vector<uint8_t> no_nats_allowed_data(const shared::channel::OuterEndpoint& source,
                                          const shared::channel::OuterEndpoint& destination);

}  // namespace segw::cp::ike
