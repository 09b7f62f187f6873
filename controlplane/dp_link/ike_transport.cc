// Conversions between IKE datagrams and the punt/inject ring slots.
#include "controlplane/dp_link/ike_transport.h"

#include <string>
#include <utility>

namespace segw::cp::dp_link {

using shared::make_error;
using shared::Status;
using shared::channel::InjectPacket;
using shared::channel::PuntPacket;

IkeDatagram IkeDatagram::reply_with(std::vector<uint8_t> reply_message) const {
  IkeDatagram reply;
  reply.local = local;
  reply.remote = remote;
  reply.port_id = port_id;
  reply.non_esp_marker = non_esp_marker;
  reply.message = std::move(reply_message);
  return reply;
}

IkeDatagram datagram_from_punt(const PuntPacket& packet) {
  IkeDatagram datagram;
  datagram.local = packet.destination;
  datagram.remote = packet.source;
  datagram.port_id = packet.port_id;
  // The data plane punts 4500 traffic only when the marker was there
  // (messages.h): the port says so.
  datagram.non_esp_marker = packet.destination.port == kIkeNatTPort;
  datagram.arrival_time_ns = packet.arrival_time_ns;
  auto message = packet.message();  // bounded by the slot, whatever `length` says
  datagram.message.assign(message.begin(), message.end());
  return datagram;
}

Status fill_inject_packet(const IkeDatagram& datagram, InjectPacket& out) {
  if (datagram.message.size() > shared::channel::kMaxIkePacketBytes) {
    return make_error("IKE message of " + std::to_string(datagram.message.size()) +
                      " bytes does not fit one inject slot of " +
                      std::to_string(shared::channel::kMaxIkePacketBytes) +
                      " (use IKE fragmentation, RFC 7383)");
  }
  if (datagram.message.empty()) return make_error("empty IKE message");
  if (datagram.local.address.family() != datagram.remote.address.family()) {
    return make_error("IKE datagram from " + datagram.local.address.to_string() + " to " +
                      datagram.remote.address.to_string() + ": address families differ");
  }
  if (datagram.local.port == 0 || datagram.remote.port == 0) {
    return make_error("IKE datagram with UDP port 0");
  }
  // RFC 3948 2.2: on 500 there is no marker; a marker there would make the
  // peer read the first four IKE SPI bytes as zero.
  if (datagram.non_esp_marker && datagram.local.port == kIkePort) {
    return make_error("non-ESP marker requested on UDP/500 (RFC 3948 2.2: 4500 only)");
  }
  InjectPacket packet;
  packet.port_id = datagram.port_id;
  packet.non_esp_marker = datagram.non_esp_marker;
  packet.source = datagram.local;
  packet.destination = datagram.remote;
  if (!packet.assign(datagram.message)) return make_error("IKE message does not fit");
  out = packet;
  return Status::success();
}

}  // namespace segw::cp::dp_link
