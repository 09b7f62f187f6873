// UdpTransport: IKE over kernel UDP sockets (IKE and NAT-T ports, pktinfo,
// the RFC 3948 non-ESP marker, keepalive and ESP drops).
#include "controlplane/transport/udp_transport.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <system_error>
#include <utility>

#include "shared/wire.h"

namespace segw::cp::transport {

using dp_link::IkeDatagram;
using dp_link::IkeReceiver;
using shared::Error;
using shared::IpAddress;
using shared::IpFamily;
using shared::make_error;
using shared::Result;
using shared::Status;

namespace {

// Tuning constants.
// Datagrams read from one socket per wake-up before the next socket gets its
// turn: enough to empty a burst in one pass, small enough that a flood on
// one port does not starve the other.
constexpr size_t kReceiveBatch = 64;
// Receive buffer: the largest UDP payload there is, so nothing is truncated
// (the marker is inside the payload, 65535 - 8 covers v6 as well).
constexpr size_t kReceiveBufferBytes = 65536;

std::string errno_text(int error) { return std::system_category().message(error); }

// "192.0.2.1:500", "[2001:db8::1]:500".
std::string endpoint_text(const IpAddress& address, uint16_t port) {
  // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on
  // "[" + std::string.
  std::string text;
  if (address.is_ipv6()) text.push_back('[');
  text.append(address.to_string());
  if (address.is_ipv6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(port));
  return text;
}

bool is_unspecified(const IpAddress& address) {
  const uint8_t* bytes = address.bytes();
  return std::all_of(bytes, bytes + address.byte_length(), [](uint8_t b) { return b == 0; });
}

socklen_t to_sockaddr(const IpAddress& address, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (address.is_ipv4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, address.bytes(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, address.bytes(), 16);
  return sizeof(sockaddr_in6);
}

// False for a family we do not listen on (cannot happen on our sockets).
bool from_sockaddr(const sockaddr_storage& in, IpAddress& address, uint16_t& port) {
  if (in.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&in);
    address = IpAddress::from_ipv4_bytes(reinterpret_cast<const uint8_t*>(&sin->sin_addr));
    port = ntohs(sin->sin_port);
    return true;
  }
  if (in.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&in);
    address = IpAddress::from_ipv6_bytes(sin6->sin6_addr.s6_addr);
    port = ntohs(sin6->sin6_port);
    return true;
  }
  return false;
}

uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

Status set_int_option(int fd, int level, int name, int value, const char* option_name,
                      const std::string& where) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return make_error(std::string("cannot set ") + option_name + " on the socket for " + where +
                      ": " + errno_text(errno));
  }
  return Status::success();
}

// Room for whichever pktinfo a socket carries, aligned for cmsghdr.
union ControlBuffer {
  cmsghdr align;
  std::array<uint8_t, CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo))> bytes;
};

}  // namespace

Result<std::unique_ptr<UdpTransport>> UdpTransport::open(const UdpTransportOptions& options) {
  if (options.listen_addresses.empty()) return make_error("UDP transport: no listen address");
  if (options.ike_port != 0 && options.ike_port == options.natt_port) {
    return make_error("UDP transport: IKE port and NAT-T port are both " +
                      std::to_string(options.ike_port) + " (they must differ)");
  }
  if (options.receive_buffer_bytes < 0) {
    return make_error("UDP transport: receive buffer of " +
                      std::to_string(options.receive_buffer_bytes) + " bytes");
  }

  // On any error below, the half-built transport's destructor closes what
  // was opened (no thread runs yet).
  std::unique_ptr<UdpTransport> transport(new UdpTransport());
  transport->own_thread_ = options.own_thread;

  for (const IpAddress& address : options.listen_addresses) {
    for (bool natt : {false, true}) {
      const uint16_t port = natt ? options.natt_port : options.ike_port;
      const std::string where = endpoint_text(address, port);
      const int family = address.is_ipv4() ? AF_INET : AF_INET6;
      int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
      if (fd < 0) {
        return make_error("cannot create a UDP socket for " + where + ": " + errno_text(errno));
      }
      Socket socket;
      socket.fd = fd;
      socket.address = address;
      socket.natt = natt;
      transport->sockets_.push_back(socket);  // closed by the destructor from here on

      Status status;
      if (address.is_ipv6()) {
        // A v6 wildcard must not take v4 too: a v4 listen address gets its
        // own socket, and pktinfo then always comes in the socket's family.
        status = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY", where);
        if (status) {
          status = set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO",
                                  where);
        }
      } else {
        status = set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", where);
      }
      if (status && options.receive_buffer_bytes > 0) {
        status = set_int_option(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer_bytes,
                                "SO_RCVBUF", where);
      }
      if (!status) return make_error(status.error());

      sockaddr_storage bind_address;
      socklen_t bind_length = to_sockaddr(address, port, bind_address);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&bind_address), bind_length) != 0) {
        return make_error("cannot bind " + where + ": " + errno_text(errno));
      }
      sockaddr_storage bound;
      socklen_t bound_length = sizeof(bound);
      IpAddress bound_ip;
      uint16_t bound_port = 0;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0 ||
          !from_sockaddr(bound, bound_ip, bound_port)) {
        return make_error("cannot read the bound address of " + where + ": " +
                          errno_text(errno));
      }
      transport->sockets_.back().port = bound_port;
    }
  }

  if (options.own_thread) {
    transport->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (transport->wake_fd_ < 0) {
      return make_error("UDP transport: cannot create an eventfd: " + errno_text(errno));
    }
    try {
      UdpTransport* self = transport.get();
      transport->thread_ = std::thread([self] { self->receive_loop(); });
    } catch (const std::system_error& e) {
      return make_error(std::string("UDP transport: cannot start the receive thread: ") +
                        e.what());
    }
  } else {
    transport->poll_buffer_.resize(kReceiveBufferBytes);
  }
  return transport;
}

UdpTransport::~UdpTransport() {
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      std::fprintf(stderr, "segw: UdpTransport destroyed from its own receiver\n");
      std::abort();
    }
    stopping_.store(true, std::memory_order_relaxed);  // the eventfd write orders it
    uint64_t one = 1;
    // Cannot fail short of a counter overflow: the thread reads it back.
    [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (const Socket& socket : sockets_) {
    if (socket.fd >= 0) ::close(socket.fd);
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void UdpTransport::receive_loop() {
  std::vector<uint8_t> buffer(kReceiveBufferBytes);
  std::vector<pollfd> fds;
  for (const Socket& socket : sockets_) fds.push_back({socket.fd, POLLIN, 0});
  fds.push_back({wake_fd_, POLLIN, 0});
  while (!stopping_.load(std::memory_order_relaxed)) {
    int ready = ::poll(fds.data(), fds.size(), -1);
    if (ready < 0) continue;  // EINTR; nothing else is expected of poll() here
    if (fds.back().revents != 0) break;  // the destructor's wake-up
    for (size_t i = 0; i < sockets_.size(); ++i) {
      if (fds[i].revents != 0) drain(sockets_[i], buffer);
    }
  }
}

size_t UdpTransport::poll(std::chrono::milliseconds timeout) {
  if (own_thread_) return 0;  // the receive thread services the sockets
  int timeout_ms = timeout.count() < 0 ? -1
                   : timeout.count() > INT_MAX ? INT_MAX
                                               : static_cast<int>(timeout.count());
  std::vector<pollfd> fds;
  fds.reserve(sockets_.size());
  for (const Socket& socket : sockets_) fds.push_back({socket.fd, POLLIN, 0});
  int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  if (ready <= 0) return 0;  // timeout, or EINTR: the caller polls again
  size_t count = 0;
  for (size_t i = 0; i < sockets_.size(); ++i) {
    if (fds[i].revents != 0) count += drain(sockets_[i], poll_buffer_);
  }
  return count;
}

size_t UdpTransport::drain(const Socket& socket, std::vector<uint8_t>& buffer) {
  size_t count = 0;
  while (count < kReceiveBatch) {
    sockaddr_storage source{};
    ControlBuffer control{};
    iovec iov{buffer.data(), buffer.size()};
    msghdr message{};
    message.msg_name = &source;
    message.msg_namelen = sizeof(source);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes.data();
    message.msg_controllen = control.bytes.size();
    ssize_t length = ::recvmsg(socket.fd, &message, MSG_DONTWAIT);
    if (length < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained; anything else: try again on the next wake-up
    }
    const uint64_t arrival_time_ns = monotonic_ns();
    ++count;

    IpAddress remote;
    uint16_t remote_port = 0;
    if (!from_sockaddr(source, remote, remote_port)) continue;
    // The address the peer sent to: from pktinfo, which the kernel always
    // attaches once asked (IP_PKTINFO / IPV6_RECVPKTINFO); the bound
    // address otherwise, which is right unless it is the wildcard.
    IpAddress local = socket.address;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        // ipi_addr: the destination in the IP header (ipi_spec_dst is the
        // routing view, which differs only for broadcast).
        local = IpAddress::from_ipv4_bytes(reinterpret_cast<const uint8_t*>(&info.ipi_addr));
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof(info));
        local = IpAddress::from_ipv6_bytes(info.ipi6_addr.s6_addr);
      }
    }
    handle(socket, buffer.data(), static_cast<size_t>(length), local, remote, remote_port,
           arrival_time_ns);
  }
  return count;
}

void UdpTransport::handle(const Socket& socket, const uint8_t* data, size_t length,
                          const IpAddress& local, const IpAddress& remote, uint16_t remote_port,
                          uint64_t arrival_time_ns) {
  bool marker = false;
  if (socket.natt) {
    // RFC 3948 2.3: a NAT-keepalive is one 0xFF byte; it only keeps the
    // NAT mapping open.
    if (length == 1 && data[0] == shared::kNatKeepaliveByte) {
      counters_.dropped_keepalive.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (length < kNonEspMarkerBytes) {
      counters_.dropped_short.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // RFC 3948 2.2: IKE on 4500 follows four zero bytes, where ESP has its
    // SPI (never zero, RFC 4303 2.1). Anything else is ESP, which belongs to
    // a data plane this mode has not.
    if (data[0] != 0 || data[1] != 0 || data[2] != 0 || data[3] != 0) {
      counters_.dropped_esp.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    data += kNonEspMarkerBytes;
    length -= kNonEspMarkerBytes;
    marker = true;
  }
  if (length < kIkeHeaderBytes) [[unlikely]] {
    counters_.dropped_short.fetch_add(1, std::memory_order_relaxed);
    return;
  }

  std::shared_ptr<const IkeReceiver> receiver;
  {
    std::lock_guard lock(receiver_mutex_);
    receiver = receiver_;
  }
  if (!receiver || !*receiver) {
    counters_.dropped_no_receiver.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  IkeDatagram datagram;
  datagram.local = {local, socket.port};
  datagram.remote = {remote, remote_port};
  datagram.port_id = 0;
  datagram.non_esp_marker = marker;
  datagram.arrival_time_ns = arrival_time_ns;
  datagram.message.assign(data, data + length);
  // Counted before the call, so a receiver that reads stats() sees itself.
  counters_.received.fetch_add(1, std::memory_order_relaxed);
  (*receiver)(datagram);  // no lock held: it may call send() or set_receiver()
}

void UdpTransport::set_receiver(IkeReceiver receiver) {
  std::shared_ptr<const IkeReceiver> next;
  if (receiver) next = std::make_shared<const IkeReceiver>(std::move(receiver));
  std::shared_ptr<const IkeReceiver> previous;
  {
    std::lock_guard lock(receiver_mutex_);
    previous = std::exchange(receiver_, std::move(next));
  }
  // `previous` is released here, outside the lock: destroying a receiver's
  // captures must not run under it.
}

const UdpTransport::Socket* UdpTransport::socket_for(const IkeDatagram& datagram) const {
  const IpAddress& local = datagram.local.address;
  const bool any_local = is_unspecified(local);
  const Socket* wildcard = nullptr;
  const Socket* any = nullptr;
  for (const Socket& socket : sockets_) {
    if (socket.address.family() != local.family() || socket.port != datagram.local.port) continue;
    if (socket.address == local) return &socket;
    if (wildcard == nullptr && is_unspecified(socket.address)) wildcard = &socket;
    if (any == nullptr) any = &socket;
  }
  if (wildcard != nullptr) return wildcard;
  return any_local ? any : nullptr;
}

Status UdpTransport::fail_send(std::string message) {
  counters_.send_errors.fetch_add(1, std::memory_order_relaxed);
  return make_error(std::move(message));
}

Status UdpTransport::send(const IkeDatagram& datagram) {
  const std::string route = endpoint_text(datagram.local.address, datagram.local.port) + " -> " +
                            endpoint_text(datagram.remote.address, datagram.remote.port);
  if (datagram.message.empty()) return fail_send("IKE datagram " + route + ": empty message");
  const size_t payload =
      datagram.message.size() + (datagram.non_esp_marker ? kNonEspMarkerBytes : 0);
  if (payload > kMaxUdpPayloadBytes) {
    return fail_send("IKE datagram " + route + ": UDP payload of " + std::to_string(payload) +
                     " bytes, at most " + std::to_string(kMaxUdpPayloadBytes) +
                     " fit (use IKE fragmentation, RFC 7383)");
  }
  if (datagram.local.address.family() != datagram.remote.address.family()) {
    return fail_send("IKE datagram " + route + ": address families differ");
  }
  if (datagram.remote.port == 0) return fail_send("IKE datagram " + route + ": remote port 0");
  const Socket* socket = socket_for(datagram);
  if (socket == nullptr) {
    return fail_send("IKE datagram " + route + ": no " +
                     shared::to_string(datagram.local.address.family()) +
                     " socket bound to that address and port");
  }
  // RFC 3948 2.2: the marker exactly on the NAT-T port. Without it the peer
  // reads IKE on 4500 as ESP; with it on 500, the IKE SPI as zero.
  if (datagram.non_esp_marker && !socket->natt) {
    return fail_send("IKE datagram " + route +
                     ": non-ESP marker requested on the IKE port (RFC 3948 2.2: NAT-T port only)");
  }
  // The one exception: a NAT keepalive (RFC 3948 4), a single 0xFF byte.
  bool keepalive = datagram.message.size() == 1 && datagram.message[0] == 0xff;
  if (!datagram.non_esp_marker && socket->natt && !keepalive) {
    return fail_send("IKE datagram " + route +
                     ": no non-ESP marker on the NAT-T port"
                     " (RFC 3948 2.2: the peer would read ESP)");
  }

  static constexpr std::array<uint8_t, kNonEspMarkerBytes> kMarker{};
  std::array<iovec, 2> iov{};
  size_t iov_count = 0;
  if (datagram.non_esp_marker) {
    iov[iov_count++] = {const_cast<uint8_t*>(kMarker.data()), kMarker.size()};
  }
  iov[iov_count++] = {const_cast<uint8_t*>(datagram.message.data()), datagram.message.size()};

  sockaddr_storage destination;
  msghdr message{};
  message.msg_name = &destination;
  message.msg_namelen = to_sockaddr(datagram.remote.address, datagram.remote.port, destination);
  message.msg_iov = iov.data();
  message.msg_iovlen = iov_count;

  // The source address: the one the request came to (RFC 7296 2.11), which
  // on a wildcard or multi-homed bind the kernel would not otherwise pick.
  ControlBuffer control{};
  if (!is_unspecified(datagram.local.address)) {
    message.msg_control = control.bytes.data();
    cmsghdr* c;
    if (datagram.local.address.is_ipv4()) {
      message.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      c = CMSG_FIRSTHDR(&message);
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      std::memcpy(&info.ipi_spec_dst, datagram.local.address.bytes(), 4);
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    } else {
      message.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      c = CMSG_FIRSTHDR(&message);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      std::memcpy(&info.ipi6_addr, datagram.local.address.bytes(), 16);
      std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    }
  }

  ssize_t sent;
  do {
    sent = ::sendmsg(socket->fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    return fail_send("cannot send IKE datagram " + route + ": " + errno_text(errno));
  }
  counters_.sent.fetch_add(1, std::memory_order_relaxed);
  return Status::success();
}

uint16_t UdpTransport::bound_port(IpFamily family, bool natt) const {
  for (const Socket& socket : sockets_) {
    if (socket.address.family() == family && socket.natt == natt) return socket.port;
  }
  return 0;
}

UdpTransportStats UdpTransport::stats() const {
  UdpTransportStats s;
  s.received = counters_.received.load(std::memory_order_relaxed);
  s.sent = counters_.sent.load(std::memory_order_relaxed);
  s.dropped_short = counters_.dropped_short.load(std::memory_order_relaxed);
  s.dropped_esp = counters_.dropped_esp.load(std::memory_order_relaxed);
  s.dropped_keepalive = counters_.dropped_keepalive.load(std::memory_order_relaxed);
  s.dropped_no_receiver = counters_.dropped_no_receiver.load(std::memory_order_relaxed);
  s.send_errors = counters_.send_errors.load(std::memory_order_relaxed);
  return s;
}

}  // namespace segw::cp::transport
