// UdpTransport: an IkeTransport over kernel UDP sockets, for the IKEv2
// daemon when it runs without the DPDK data plane (development, tests, the
// IKE benchmark). The gateway proper receives IKE as punted packets
// (dp_link::DataPlaneLink); this one opens the sockets itself:
//   - per listen address, one socket on the IKE port (RFC 7296 2) and one on
//     the NAT-T port (RFC 3948 2.2 / RFC 7296 2.23), IPV6_V6ONLY on v6;
//   - receives with IP_PKTINFO / IPV6_RECVPKTINFO, so IkeDatagram::local is
//     the address the peer sent to even on a wildcard bind, and sends with
//     the datagram's local address as the source (IP_PKTINFO / IPV6_PKTINFO),
//     so a reply leaves from the address the request came to;
//   - on the NAT-T port, keeps only IKE behind the non-ESP marker (stripped
//     on receive, prepended on send); NAT-keepalives and ESP are dropped and
//     counted: ESP belongs to the data plane, which this mode has not.
//
// Threads: every public function may be called from any thread, except
// poll(), which is for the one thread that services the sockets when the
// transport was opened without its own thread. The receiver runs on the
// servicing thread, never under a lock of the transport: it may call send()
// and set_receiver(). Nothing here throws.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/dp_link/ike_transport.h"
#include "shared/ip_address.h"
#include "shared/result.h"

namespace segw::cp::transport {

// Largest UDP payload in one IPv4 datagram (65535 - 20 IPv4 - 8 UDP). Used
// for IPv6 as well, so both families accept the same messages.
inline constexpr size_t kMaxUdpPayloadBytes = 65507;
// Smallest IKE message: the fixed header (RFC 7296 3.1).
inline constexpr size_t kIkeHeaderBytes = 28;
// RFC 3948 2.2: four zero bytes where ESP has its (never zero) SPI.
inline constexpr size_t kNonEspMarkerBytes = 4;

struct UdpTransportOptions {
  // Each one IPv4 or IPv6; the wildcards 0.0.0.0 and :: are allowed. At
  // least one; a v4 and a v6 wildcard together are fine (IPV6_V6ONLY).
  std::vector<shared::IpAddress> listen_addresses;
  // 0 on either: an ephemeral port, chosen per socket (tests; read it back
  // with bound_port()). Nonzero ports must differ.
  uint16_t ike_port = dp_link::kIkePort;
  uint16_t natt_port = dp_link::kIkeNatTPort;
  // SO_RCVBUF of every socket; 0 leaves the kernel default. The kernel caps
  // it at net.core.rmem_max. A responder under an IKE_SA_INIT flood wants
  // room for a burst while the receiver computes DH.
  int receive_buffer_bytes = 1 << 20;
  // Start a receive thread (else the owner calls poll()).
  bool own_thread = true;
};

// Datagrams read off the sockets: `received` were handed to a receiver,
// each of the others was dropped for the reason it names. Sends: `sent`
// succeeded, `send_errors` counts every send() that returned an error.
struct UdpTransportStats {
  uint64_t received = 0;
  uint64_t sent = 0;
  uint64_t dropped_short = 0;        // shorter than an IKE header (marker removed)
  uint64_t dropped_esp = 0;          // on the NAT-T port without the marker
  uint64_t dropped_keepalive = 0;    // NAT-keepalive, 1 byte 0xFF (RFC 3948 2.3)
  uint64_t dropped_no_receiver = 0;  // IKE, but no receiver set
  uint64_t send_errors = 0;
};

class UdpTransport final : public dp_link::IkeTransport {
 public:
  // Binds every socket (and starts the receive thread when asked). Errors:
  // no listen address, equal nonzero ports, socket options refused, a bind
  // that fails ("cannot bind 192.0.2.1:500: Address already in use"), the
  // thread or its wake-up eventfd not created. Nothing stays open on error.
  static shared::Result<std::unique_ptr<UdpTransport>> open(const UdpTransportOptions& options);

  // Stops the receive thread (waiting for a receiver call in progress) and
  // closes the sockets. Not from the receiver itself.
  ~UdpTransport() override;

  UdpTransport(const UdpTransport&) = delete;
  UdpTransport& operator=(const UdpTransport&) = delete;

  // Sends `datagram.message` to `datagram.remote` from the socket bound to
  // `datagram.local.port` of the remote's family (a socket bound to
  // `local.address` itself, else a wildcard one), with `local.address` as
  // the source address unless it is the unspecified address (then the
  // kernel chooses). Errors (nothing sent): empty message, message (with
  // the marker) larger than kMaxUdpPayloadBytes, local and remote of
  // different families, remote port 0, the marker asked for on the IKE port
  // or left out on the NAT-T port (the peer would read IKE as ESP, RFC 3948
  // 2.2), no socket for that port, family and address, sendmsg failure
  // (EAGAIN included: the caller drops the message, IKE retransmits). Any
  // thread, the receiver included.
  shared::Status send(const dp_link::IkeDatagram& datagram) override;

  // Replaces the receiver; an empty function drops IKE datagrams (counted
  // in dropped_no_receiver). A call of the previous receiver already under
  // way may still be running when this returns. Any thread, the receiver
  // included.
  void set_receiver(dp_link::IkeReceiver receiver) override;

  // Only when opened with own_thread = false, on one thread at a time:
  // waits up to `timeout` (negative: without limit) for datagrams, then
  // reads every one that is waiting (a bounded batch per socket) and
  // delivers or drops each. Returns how many it read off the sockets.
  size_t poll(std::chrono::milliseconds timeout);

  // The port the first socket of `family` for the IKE (natt = false) or
  // NAT-T (natt = true) role is bound to; 0 when no listen address is of
  // that family. Differs from the options only where they said 0. Any thread.
  uint16_t bound_port(shared::IpFamily family, bool natt) const;

  // A snapshot of the counters (each read on its own). Any thread.
  UdpTransportStats stats() const;

 private:
  struct Socket {
    int fd = -1;
    shared::IpAddress address;  // as bound: may be the wildcard
    uint16_t port = 0;          // as bound: never 0
    bool natt = false;          // the NAT-T port: marker, keepalives, ESP
  };

  struct Counters {
    std::atomic<uint64_t> received{0};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> dropped_short{0};
    std::atomic<uint64_t> dropped_esp{0};
    std::atomic<uint64_t> dropped_keepalive{0};
    std::atomic<uint64_t> dropped_no_receiver{0};
    std::atomic<uint64_t> send_errors{0};
  };

  UdpTransport() = default;
  void receive_loop();
  size_t service(int timeout_ms);
  size_t drain(const Socket& socket, std::vector<uint8_t>& buffer);
  void handle(const Socket& socket, const uint8_t* data, size_t length,
              const shared::IpAddress& local, const shared::IpAddress& remote,
              uint16_t remote_port, uint64_t arrival_time_ns);
  const Socket* socket_for(const dp_link::IkeDatagram& datagram) const;
  shared::Status fail_send(std::string message);

  std::vector<Socket> sockets_;  // fixed after open(): read without a lock
  int wake_fd_ = -1;             // eventfd: the destructor wakes the thread with it
  bool own_thread_ = true;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // The receiver is held by shared_ptr so that the servicing thread can take
  // a reference under the lock and call it outside, while set_receiver()
  // swaps the pointer.
  mutable std::mutex receiver_mutex_;
  std::shared_ptr<const dp_link::IkeReceiver> receiver_;

  // The buffer poll() reads into when the owner services the sockets.
  std::vector<uint8_t> poll_buffer_;

  Counters counters_;
};

}  // namespace segw::cp::transport
