// IkeTransport: how the IKE engine receives and sends IKE datagrams. The
// gateway owns no UDP socket for IKE: the data plane punts IKE packets it
// receives (UDP/500, and UDP/4500 with the RFC 3948 2.2 non-ESP marker) and
// sends what the control plane injects, building the outer IP/UDP headers.
// DataPlaneLink implements it over the punt and inject rings; tests can
// implement it with a pair of queues.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "shared/channel/messages.h"
#include "shared/result.h"

namespace segw::cp::dp_link {

inline constexpr uint16_t kIkePort = 500;       // RFC 7296 2
inline constexpr uint16_t kIkeNatTPort = 4500;  // RFC 3948 2.2 / RFC 7296 2.23

// One IKE message with its outer addressing, from the gateway's view.
struct IkeDatagram {
  shared::channel::OuterEndpoint local;   // the gateway's address and port (500 or 4500)
  shared::channel::OuterEndpoint remote;  // the peer as seen here (after any NAT)
  uint16_t port_id = 0;                   // data plane port it came in on / leaves by
  // Received: it came on 4500 behind the non-ESP marker (removed from
  // `message`). Sent: the data plane prepends the marker (RFC 3948 2.2).
  bool non_esp_marker = false;
  uint64_t arrival_time_ns = 0;           // received only: CLOCK_MONOTONIC
  std::vector<uint8_t> message;           // the IKE message from its header on

  // A reply goes back the way the request came: same port, swapped ends,
  // same encapsulation (RFC 7296 2.11: respond to the address and port the
  // request came from).
  IkeDatagram reply_with(std::vector<uint8_t> reply_message) const;
};

// Called on the thread that drains the punt ring.
using IkeReceiver = std::function<void(const IkeDatagram&)>;

class IkeTransport {
 public:
  virtual ~IkeTransport() = default;
  // Queues `datagram` for sending. Errors (nothing sent): message larger
  // than one inject slot (kMaxIkePacketBytes; IKE fragmentation, RFC 7383,
  // is the answer), local and remote of different families, inject ring
  // full (IKE retransmits: the caller drops it rather than wait), not
  // attached. Any thread.
  virtual shared::Status send(const IkeDatagram& datagram) = 0;
  // Replaces the receiver of punted datagrams; an empty function drops them
  // (counted). Any thread.
  virtual void set_receiver(IkeReceiver receiver) = 0;
};

// The datagram a punted packet carries, and the inject slot for a datagram
// (`out` untouched on error). Shared by every ring-backed transport.
IkeDatagram datagram_from_punt(const shared::channel::PuntPacket& packet);
shared::Status fill_inject_packet(const IkeDatagram& datagram,
                                  shared::channel::InjectPacket& out);

}  // namespace segw::cp::dp_link
