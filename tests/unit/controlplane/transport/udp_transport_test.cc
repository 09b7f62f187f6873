// UdpTransport on loopback: IKE and NAT-T ports in both families, pktinfo on
// wildcard binds, the RFC 3948 marker, keepalive/ESP/short drops, replies
// sent from the receiver, receiver swaps under traffic, destruction under
// traffic, and the errors of open() and send().
#include "controlplane/transport/udp_transport.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace segw::cp::transport {
namespace {

using dp_link::IkeDatagram;
using dp_link::IkeReceiver;
using shared::IpAddress;
using shared::IpFamily;
using namespace std::chrono_literals;

IpAddress ip(const char* text) { return IpAddress::parse(text).value(); }

uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

// An IKE-looking message: a nonzero initiator SPI first (so it is never
// taken for a marker), a sequence number in bytes 8..11, a pattern after.
std::vector<uint8_t> ike_message(size_t length, uint32_t sequence = 0) {
  std::vector<uint8_t> m(length);
  for (size_t i = 0; i < length; ++i) m[i] = static_cast<uint8_t>(0x11 + i * 7);
  if (length >= 12) {
    m[8] = static_cast<uint8_t>(sequence >> 24);
    m[9] = static_cast<uint8_t>(sequence >> 16);
    m[10] = static_cast<uint8_t>(sequence >> 8);
    m[11] = static_cast<uint8_t>(sequence);
  }
  return m;
}

uint32_t sequence_of(const std::vector<uint8_t>& m) {
  return (uint32_t{m[8]} << 24) | (uint32_t{m[9]} << 16) | (uint32_t{m[10]} << 8) | m[11];
}

std::vector<uint8_t> with_marker(const std::vector<uint8_t>& m) {
  std::vector<uint8_t> out(4 + m.size(), 0);
  std::copy(m.begin(), m.end(), out.begin() + 4);
  return out;
}

// A plain UDP socket playing the peer.
class PeerSocket {
 public:
  // Bound to `address` with `port` (0: ephemeral); null when it cannot be.
  static std::unique_ptr<PeerSocket> open(const IpAddress& address, uint16_t port = 0) {
    int family = address.is_ipv4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    std::unique_ptr<PeerSocket> s(new PeerSocket(fd, address));
    sockaddr_storage sa;
    socklen_t len = to_sockaddr(address, port, sa);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) return nullptr;
    len = sizeof(sa);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    s->port_ = ntohs(address.is_ipv4() ? reinterpret_cast<sockaddr_in*>(&sa)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port);
    return s;
  }
  ~PeerSocket() { ::close(fd_); }

  uint16_t port() const { return port_; }
  const IpAddress& address() const { return address_; }

  bool send_to(const IpAddress& to, uint16_t to_port, std::span<const uint8_t> bytes) {
    sockaddr_storage sa;
    socklen_t len = to_sockaddr(to, to_port, sa);
    return ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&sa), len) ==
           static_cast<ssize_t>(bytes.size());
  }

  struct Received {
    std::vector<uint8_t> bytes;
    IpAddress source;
    uint16_t source_port = 0;
  };
  std::optional<Received> receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::vector<uint8_t> buffer(65536);
    sockaddr_storage sa{};
    socklen_t len = sizeof(sa);
    ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                           &len);
    if (n < 0) return std::nullopt;
    buffer.resize(static_cast<size_t>(n));
    Received r;
    r.bytes = std::move(buffer);
    if (sa.ss_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&sa);
      r.source = IpAddress::from_ipv4_bytes(reinterpret_cast<uint8_t*>(&sin->sin_addr));
      r.source_port = ntohs(sin->sin_port);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&sa);
      r.source = IpAddress::from_ipv6_bytes(sin6->sin6_addr.s6_addr);
      r.source_port = ntohs(sin6->sin6_port);
    }
    return r;
  }

 private:
  PeerSocket(int fd, IpAddress address) : fd_(fd), address_(address) {}
  static socklen_t to_sockaddr(const IpAddress& address, uint16_t port, sockaddr_storage& out) {
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

  int fd_;
  IpAddress address_;
  uint16_t port_ = 0;
};

// Collects what a receiver is given, for the test thread to wait on.
class Collector {
 public:
  IkeReceiver receiver() {
    return [this](const IkeDatagram& d) {
      std::lock_guard lock(mutex_);
      got_.push_back(d);
      changed_.notify_all();
    };
  }
  bool wait_for(size_t count, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return got_.size() >= count; });
  }
  std::vector<IkeDatagram> got() {
    std::lock_guard lock(mutex_);
    return got_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<IkeDatagram> got_;
};

// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

bool ipv6_loopback_available() { return PeerSocket::open(ip("::1")) != nullptr; }

UdpTransportOptions loopback_options(std::vector<IpAddress> addresses, bool own_thread = true) {
  UdpTransportOptions options;
  options.listen_addresses = std::move(addresses);
  options.ike_port = 0;
  options.natt_port = 0;
  options.own_thread = own_thread;
  return options;
}

std::unique_ptr<UdpTransport> open_or_fail(const UdpTransportOptions& options) {
  auto opened = UdpTransport::open(options);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error());
  if (!opened.ok()) return nullptr;
  return std::move(opened).value();
}

// ------------------------------------------------------------- receiving

class UdpTransportFamilyTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    address_ = ip(GetParam());
    // IPv6 is part of what is tested: a machine without ::1 fails, it does not skip.
    if (address_.is_ipv6()) {
      ASSERT_TRUE(ipv6_loopback_available()) << "no ::1 (net.ipv6.conf.lo.disable_ipv6=1?)";
    }
  }
  IpAddress address_;
};

TEST_P(UdpTransportFamilyTest, ReceivesIkeOnTheIkePortAsIs) {
  auto transport = open_or_fail(loopback_options({address_}));
  ASSERT_TRUE(transport);
  Collector collector;
  transport->set_receiver(collector.receiver());
  auto peer = PeerSocket::open(address_);
  ASSERT_TRUE(peer);
  const uint16_t ike_port = transport->bound_port(address_.family(), false);
  ASSERT_NE(ike_port, 0);
  EXPECT_NE(ike_port, transport->bound_port(address_.family(), true));

  auto message = ike_message(100);
  const uint64_t before = monotonic_ns();
  ASSERT_TRUE(peer->send_to(address_, ike_port, message));
  ASSERT_TRUE(collector.wait_for(1));
  const uint64_t after = monotonic_ns();

  IkeDatagram d = collector.got()[0];
  EXPECT_EQ(d.local.address, address_);
  EXPECT_EQ(d.local.port, ike_port);
  EXPECT_EQ(d.remote.address, address_);
  EXPECT_EQ(d.remote.port, peer->port());
  EXPECT_EQ(d.port_id, 0);
  EXPECT_FALSE(d.non_esp_marker);
  EXPECT_EQ(d.message, message);
  EXPECT_GE(d.arrival_time_ns, before);
  EXPECT_LE(d.arrival_time_ns, after);
  EXPECT_EQ(transport->stats().received, 1u);
}

TEST_P(UdpTransportFamilyTest, StripsTheNonEspMarkerOnTheNatTPort) {
  auto transport = open_or_fail(loopback_options({address_}));
  ASSERT_TRUE(transport);
  Collector collector;
  transport->set_receiver(collector.receiver());
  auto peer = PeerSocket::open(address_);
  ASSERT_TRUE(peer);
  const uint16_t natt_port = transport->bound_port(address_.family(), true);

  auto message = ike_message(80);
  ASSERT_TRUE(peer->send_to(address_, natt_port, with_marker(message)));
  ASSERT_TRUE(collector.wait_for(1));
  IkeDatagram d = collector.got()[0];
  EXPECT_TRUE(d.non_esp_marker);
  EXPECT_EQ(d.message, message);  // the four zero bytes are gone
  EXPECT_EQ(d.local.address, address_);
  EXPECT_EQ(d.local.port, natt_port);
  EXPECT_EQ(d.remote.port, peer->port());
}

// The receiver answers from inside the call (send() on the receive thread),
// as the IKE engine does; the peer sees the reply's bytes from the port the
// request went to, with the marker exactly on the NAT-T port.
TEST_P(UdpTransportFamilyTest, RepliesFromTheReceiverGoBackTheWayTheRequestCame) {
  auto transport = open_or_fail(loopback_options({address_}));
  ASSERT_TRUE(transport);
  UdpTransport* t = transport.get();
  std::mutex mutex;
  std::vector<std::string> errors;
  transport->set_receiver([&, t](const IkeDatagram& request) {
    auto reply = request.message;
    std::reverse(reply.begin(), reply.end());
    auto status = t->send(request.reply_with(reply));
    if (!status) {
      std::lock_guard lock(mutex);
      errors.push_back(status.error());
    }
  });
  auto peer = PeerSocket::open(address_);
  ASSERT_TRUE(peer);

  for (bool natt : {false, true}) {
    SCOPED_TRACE(natt ? "NAT-T port" : "IKE port");
    const uint16_t port = transport->bound_port(address_.family(), natt);
    auto request = ike_message(64, natt ? 2 : 1);
    ASSERT_TRUE(peer->send_to(address_, port, natt ? with_marker(request) : request));
    auto reply = peer->receive(5000ms);
    ASSERT_TRUE(reply.has_value());
    auto expected = request;
    std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(reply->bytes, natt ? with_marker(expected) : expected);
    EXPECT_EQ(reply->source, address_);
    EXPECT_EQ(reply->source_port, port);
  }
  // The peer can hold the reply before send() has returned and counted it.
  EXPECT_TRUE(eventually([&] { return transport->stats().sent == 2; }))
      << "sent " << transport->stats().sent;
  std::lock_guard lock(mutex);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(transport->stats().send_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Families, UdpTransportFamilyTest, ::testing::Values("127.0.0.1", "::1"),
                         [](const auto& info) {
                           return std::string(info.param[0] == ':' ? "Ipv6" : "Ipv4");
                         });

// On a wildcard bind, `local` is the address the peer sent to (pktinfo),
// not 0.0.0.0, and the reply leaves from it (IP_PKTINFO on send): the peer
// sent to 127.0.0.2 and must see the answer come from 127.0.0.2.
TEST(UdpTransportTest, WildcardBindReportsAndRepliesFromTheRealDestinationIpv4) {
  auto transport = open_or_fail(loopback_options({ip("0.0.0.0")}));
  ASSERT_TRUE(transport);
  UdpTransport* t = transport.get();
  Collector collector;
  auto collect = collector.receiver();
  transport->set_receiver([&, t](const IkeDatagram& d) {
    collect(d);
    (void)t->send(d.reply_with(d.message));
  });
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t port = transport->bound_port(IpFamily::kIpv4, false);

  for (const char* destination : {"127.0.0.2", "127.0.0.1"}) {
    SCOPED_TRACE(destination);
    size_t before = collector.got().size();
    auto message = ike_message(40);
    ASSERT_TRUE(peer->send_to(ip(destination), port, message));
    ASSERT_TRUE(collector.wait_for(before + 1));
    EXPECT_EQ(collector.got().back().local.address, ip(destination));
    auto reply = peer->receive(5000ms);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->source, ip(destination));
    EXPECT_EQ(reply->source_port, port);
    EXPECT_EQ(reply->bytes, message);
  }
}

TEST(UdpTransportTest, WildcardBindReportsTheRealDestinationIpv6) {
  ASSERT_TRUE(ipv6_loopback_available()) << "no ::1 (net.ipv6.conf.lo.disable_ipv6=1?)";
  // Both wildcards at once: V6ONLY keeps them apart.
  auto transport = open_or_fail(loopback_options({ip("::"), ip("0.0.0.0")}));
  ASSERT_TRUE(transport);
  Collector collector;
  transport->set_receiver(collector.receiver());
  auto peer6 = PeerSocket::open(ip("::1"));
  auto peer4 = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer6 && peer4);
  ASSERT_TRUE(peer6->send_to(ip("::1"), transport->bound_port(IpFamily::kIpv6, true),
                             with_marker(ike_message(30))));
  ASSERT_TRUE(collector.wait_for(1));
  ASSERT_TRUE(peer4->send_to(ip("127.0.0.1"), transport->bound_port(IpFamily::kIpv4, true),
                             with_marker(ike_message(30))));
  ASSERT_TRUE(collector.wait_for(2));
  auto got = collector.got();
  EXPECT_EQ(got[0].local.address, ip("::1"));
  EXPECT_EQ(got[0].remote.address, ip("::1"));
  EXPECT_EQ(got[1].local.address, ip("127.0.0.1"));
  EXPECT_EQ(got[1].remote.address, ip("127.0.0.1"));
}

// ----------------------------------------------------------------- drops

// What is not IKE never reaches the receiver and is counted by reason. All
// drops go to one socket before the sentinel, so they are counted by the
// time the sentinel arrives (one socket is read in order).
TEST(UdpTransportTest, DropsKeepalivesEspAndShortDatagramsOnTheNatTPort) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  Collector collector;
  transport->set_receiver(collector.receiver());
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t natt = transport->bound_port(IpFamily::kIpv4, true);
  auto to_natt = [&](std::vector<uint8_t> bytes) {
    ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), natt, bytes));
  };

  to_natt({0xFF});                                  // NAT-keepalive
  auto esp = ike_message(60);                       // SPI 0x11..: ESP
  to_natt(esp);
  to_natt({0x00, 0x00, 0x00, 0x00, 0x12, 0x34});    // a marker and 2 bytes: short
  to_natt(with_marker(ike_message(27)));            // one byte short of an IKE header
  to_natt({0x00, 0x00, 0x00, 0x00});                // the marker alone
  to_natt({0x01, 0x02});                            // too short to classify
  to_natt({0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
           0x00});                                  // SPI 1: ESP
  auto sentinel = ike_message(28, 99);              // exactly an IKE header: kept
  to_natt(with_marker(sentinel));

  ASSERT_TRUE(collector.wait_for(1));
  auto got = collector.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message, sentinel);
  EXPECT_TRUE(got[0].non_esp_marker);
  auto stats = transport->stats();
  EXPECT_EQ(stats.received, 1u);
  EXPECT_EQ(stats.dropped_keepalive, 1u);
  EXPECT_EQ(stats.dropped_esp, 2u);
  EXPECT_EQ(stats.dropped_short, 4u);
  EXPECT_EQ(stats.dropped_no_receiver, 0u);
}

// On the IKE port nothing is stripped or taken for a keepalive: a leading
// zero word is part of the message, 0xFF is merely short.
TEST(UdpTransportTest, TheIkePortTakesDatagramsAsIs) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  Collector collector;
  transport->set_receiver(collector.receiver());
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t port = transport->bound_port(IpFamily::kIpv4, false);

  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, std::vector<uint8_t>{0xFF}));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, ike_message(27)));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, std::vector<uint8_t>{}));
  auto zero_first = with_marker(ike_message(28));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, zero_first));

  ASSERT_TRUE(collector.wait_for(1));
  auto got = collector.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].message, zero_first);
  EXPECT_FALSE(got[0].non_esp_marker);
  auto stats = transport->stats();
  EXPECT_EQ(stats.dropped_short, 3u);
  EXPECT_EQ(stats.dropped_keepalive, 0u);
  EXPECT_EQ(stats.dropped_esp, 0u);
}

TEST(UdpTransportTest, WithoutAReceiverIkeIsDroppedAndCounted) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), transport->bound_port(IpFamily::kIpv4, false),
                            ike_message(40)));
  ASSERT_TRUE(eventually([&] { return transport->stats().dropped_no_receiver == 1; }));
  // An empty function is "no receiver" too.
  transport->set_receiver(IkeReceiver{});
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), transport->bound_port(IpFamily::kIpv4, true),
                            with_marker(ike_message(40))));
  ASSERT_TRUE(eventually([&] { return transport->stats().dropped_no_receiver == 2; }));
  EXPECT_EQ(transport->stats().received, 0u);
}

// ----------------------------------------------------------------- sending

class UdpTransportSendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<IpAddress> addresses{ip("127.0.0.1")};
    transport_ = open_or_fail(loopback_options(addresses, /*own_thread=*/false));
    ASSERT_TRUE(transport_);
    peer_ = PeerSocket::open(ip("127.0.0.1"));
    ASSERT_TRUE(peer_);
  }
  IkeDatagram datagram(size_t length, bool natt) {
    IkeDatagram d;
    d.local = {ip("127.0.0.1"), transport_->bound_port(IpFamily::kIpv4, natt)};
    d.remote = {ip("127.0.0.1"), peer_->port()};
    d.non_esp_marker = natt;
    d.message = ike_message(length);
    return d;
  }
  // Expects send() to fail with `part` in its message and nothing to arrive.
  void expect_send_error(const IkeDatagram& d, const std::string& part) {
    auto before = transport_->stats();
    auto status = transport_->send(d);
    ASSERT_FALSE(status.ok()) << "sent although: " << part;
    EXPECT_NE(status.error().find(part), std::string::npos) << status.error();
    EXPECT_EQ(transport_->stats().send_errors, before.send_errors + 1);
    EXPECT_EQ(transport_->stats().sent, before.sent);
  }
  std::unique_ptr<UdpTransport> transport_;
  std::unique_ptr<PeerSocket> peer_;
};

TEST_F(UdpTransportSendTest, SendsTheLargestUdpPayloadAndRefusesOneByteMore) {
  auto d = datagram(kMaxUdpPayloadBytes, false);
  ASSERT_TRUE(transport_->send(d).ok());
  auto got = peer_->receive(5000ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->bytes, d.message);

  expect_send_error(datagram(kMaxUdpPayloadBytes + 1, false), "65508 bytes");
  // The marker counts: 65504 + 4 is one too many.
  expect_send_error(datagram(kMaxUdpPayloadBytes - 3, true), "65508 bytes");
  auto fits = datagram(kMaxUdpPayloadBytes - 4, true);
  ASSERT_TRUE(transport_->send(fits).ok());
  got = peer_->receive(5000ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->bytes, with_marker(fits.message));
  EXPECT_EQ(transport_->stats().sent, 2u);
}

TEST_F(UdpTransportSendTest, RefusesWhatCannotBeSentAsAsked) {
  auto d = datagram(40, false);
  d.local.port = 1;  // no socket on it
  expect_send_error(d, "no ipv4 socket bound to that address and port");

  d = datagram(40, false);
  d.local.address = ip("127.0.0.9");  // bound to 127.0.0.1 only
  expect_send_error(d, "no ipv4 socket");

  d = datagram(40, false);
  d.remote.address = ip("::1");
  expect_send_error(d, "address families differ");

  d = datagram(40, false);
  d.local.address = ip("::1");
  d.remote.address = ip("::1");
  expect_send_error(d, "no ipv6 socket");

  d = datagram(40, false);
  d.non_esp_marker = true;
  expect_send_error(d, "non-ESP marker requested on the IKE port");

  d = datagram(40, true);
  d.non_esp_marker = false;
  expect_send_error(d, "no non-ESP marker on the NAT-T port");

  d = datagram(40, false);
  d.message.clear();
  expect_send_error(d, "empty message");

  d = datagram(40, false);
  d.remote.port = 0;
  expect_send_error(d, "remote port 0");

  EXPECT_FALSE(peer_->receive(50ms).has_value());
}

TEST_F(UdpTransportSendTest, AnUnspecifiedLocalAddressLetsTheKernelChoose) {
  auto d = datagram(40, false);
  d.local.address = ip("0.0.0.0");
  ASSERT_TRUE(transport_->send(d).ok());
  auto got = peer_->receive(5000ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->source, ip("127.0.0.1"));
  EXPECT_EQ(got->source_port, transport_->bound_port(IpFamily::kIpv4, false));
}

TEST_F(UdpTransportSendTest, ReportsTheKernelsRefusal) {
  // Broadcast without SO_BROADCAST: sendmsg fails (EACCES) on any host.
  auto d = datagram(40, false);
  d.remote.address = ip("255.255.255.255");
  auto before = transport_->stats().send_errors;
  auto status = transport_->send(d);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error(),
            "cannot send IKE datagram 127.0.0.1:" +
                std::to_string(transport_->bound_port(IpFamily::kIpv4, false)) +
                " -> 255.255.255.255:" +
                std::to_string(peer_->port()) + ": Permission denied");
  EXPECT_EQ(transport_->stats().send_errors, before + 1);
}

// ---------------------------------------------------------- owner polling

TEST(UdpTransportTest, WithoutItsOwnThreadTheOwnerPolls) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}, /*own_thread=*/false));
  ASSERT_TRUE(transport);
  std::thread::id called_on;
  size_t calls = 0;
  transport->set_receiver([&](const IkeDatagram&) {
    called_on = std::this_thread::get_id();
    ++calls;
  });
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(transport->poll(50ms), 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);

  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t port = transport->bound_port(IpFamily::kIpv4, false);
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, ike_message(40)));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, ike_message(40)));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, std::vector<uint8_t>{1, 2, 3}));
  size_t read = 0;
  for (int i = 0; i < 100 && read < 3; ++i) read += transport->poll(100ms);
  EXPECT_EQ(read, 3u);
  EXPECT_EQ(calls, 2u);
  EXPECT_EQ(called_on, std::this_thread::get_id());
  EXPECT_EQ(transport->stats().dropped_short, 1u);
}

// -------------------------------------------------------------- threading

// Receivers are swapped (A, B, none) while a peer sends: every datagram
// goes to exactly one of them or is counted as dropped, none twice. The
// sender waits for the transport to catch up so the kernel never drops.
TEST(UdpTransportTest, ReceiverSwapsWhileTrafficFlows) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t port = transport->bound_port(IpFamily::kIpv4, false);
  constexpr uint32_t kCount = 5000;

  std::mutex mutex;
  std::vector<uint32_t> seen_a;
  std::vector<uint32_t> seen_b;
  auto receiver_for = [&](std::vector<uint32_t>& seen) {
    return [&](const IkeDatagram& d) {
      std::lock_guard lock(mutex);
      seen.push_back(sequence_of(d.message));
    };
  };
  auto handled = [&] {
    auto s = transport->stats();
    return s.received + s.dropped_no_receiver;
  };

  std::atomic<bool> done{false};
  std::atomic<int> swaps{0};
  std::thread sender([&] {
    int swaps_seen = 0;
    for (uint32_t i = 0; i < kCount; ++i) {
      while (i - handled() > 64) std::this_thread::yield();
      // Every 100 datagrams, wait for the next swap, so that swaps happen
      // during the traffic however the two threads are scheduled.
      if (i % 100 == 0) {
        while (swaps == swaps_seen) std::this_thread::yield();
        swaps_seen = swaps;
      }
      peer->send_to(ip("127.0.0.1"), port, ike_message(48, i));
    }
    done = true;
  });
  while (!done) {
    switch (swaps % 3) {
      case 0: transport->set_receiver(receiver_for(seen_a)); break;
      case 1: transport->set_receiver(receiver_for(seen_b)); break;
      default: transport->set_receiver({}); break;
    }
    ++swaps;
    std::this_thread::sleep_for(200us);
  }
  sender.join();
  ASSERT_TRUE(eventually([&] { return handled() == kCount; }))
      << "handled " << handled() << " of " << kCount;
  transport->set_receiver({});

  std::lock_guard lock(mutex);
  std::set<uint32_t> all(seen_a.begin(), seen_a.end());
  all.insert(seen_b.begin(), seen_b.end());
  EXPECT_EQ(all.size(), seen_a.size() + seen_b.size()) << "a datagram was delivered twice";
  auto stats = transport->stats();
  EXPECT_EQ(stats.received, seen_a.size() + seen_b.size());
  EXPECT_EQ(stats.received + stats.dropped_no_receiver, kCount);
  EXPECT_GT(seen_a.size(), 0u);
  EXPECT_GT(seen_b.size(), 0u);
  EXPECT_GE(swaps.load(), 50);
}

// A receiver may replace itself from inside its own call.
TEST(UdpTransportTest, TheReceiverMayReplaceItself) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  UdpTransport* t = transport.get();
  Collector second;
  std::atomic<int> first_calls{0};
  transport->set_receiver([&, t](const IkeDatagram&) {
    ++first_calls;
    t->set_receiver(second.receiver());  // destroys this closure's holder: must stay safe
  });
  auto peer = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(peer);
  const uint16_t port = transport->bound_port(IpFamily::kIpv4, false);
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, ike_message(40, 1)));
  ASSERT_TRUE(peer->send_to(ip("127.0.0.1"), port, ike_message(40, 2)));
  ASSERT_TRUE(second.wait_for(1));
  EXPECT_EQ(first_calls.load(), 1);
  EXPECT_EQ(sequence_of(second.got()[0].message), 2u);
}

// Destroying the transport while datagrams pour in returns promptly, and
// the receiver is never called after that.
TEST(UdpTransportTest, DestructionWhileReceiving) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
    ASSERT_TRUE(transport);
    UdpTransport* t = transport.get();
    std::atomic<uint64_t> calls{0};
    transport->set_receiver([&, t](const IkeDatagram& d) {
      ++calls;
      (void)t->send(d.reply_with(d.message));  // replies keep the peer socket busy too
      std::this_thread::sleep_for(20us);
    });
    auto peer = PeerSocket::open(ip("127.0.0.1"));
    ASSERT_TRUE(peer);
    const uint16_t ike = transport->bound_port(IpFamily::kIpv4, false);
    const uint16_t natt = transport->bound_port(IpFamily::kIpv4, true);
    std::atomic<bool> stop{false};
    std::thread sender([&] {
      for (uint32_t i = 0; !stop; ++i) {
        peer->send_to(ip("127.0.0.1"), (i & 1) ? natt : ike,
                      (i & 1) ? with_marker(ike_message(40, i)) : ike_message(40, i));
      }
    });
    ASSERT_TRUE(eventually([&] { return calls > 100; }));
    auto start = std::chrono::steady_clock::now();
    transport.reset();
    auto took = std::chrono::steady_clock::now() - start;
    const uint64_t calls_at_destruction = calls;
    std::this_thread::sleep_for(20ms);
    stop = true;
    sender.join();
    EXPECT_LT(took, 1s);
    EXPECT_EQ(calls.load(), calls_at_destruction);
  }
}

TEST(UdpTransportTest, DestructionOfAnIdleTransportIsPrompt) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}));
  ASSERT_TRUE(transport);
  std::this_thread::sleep_for(10ms);  // the thread is asleep in poll()
  auto start = std::chrono::steady_clock::now();
  transport.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// ------------------------------------------------------------------ open

TEST(UdpTransportTest, BindErrorsNameTheAddressAndTheReason) {
  auto taken = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(taken);
  UdpTransportOptions options = loopback_options({ip("127.0.0.1")});
  options.ike_port = taken->port();
  auto opened = UdpTransport::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error(),
            "cannot bind 127.0.0.1:" + std::to_string(taken->port()) + ": Address already in use");

  if (ipv6_loopback_available()) {
    auto taken6 = PeerSocket::open(ip("::1"));
    ASSERT_TRUE(taken6);
    options = loopback_options({ip("::1")});
    options.natt_port = taken6->port();
    opened = UdpTransport::open(options);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error(),
              "cannot bind [::1]:" + std::to_string(taken6->port()) + ": Address already in use");
  }

  options = loopback_options({ip("192.0.2.1")});  // TEST-NET-1: not ours
  opened = UdpTransport::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error(), "cannot bind 192.0.2.1:0: Cannot assign requested address");
}

// A failed open() leaves nothing bound: the IKE socket it had already bound
// is closed when the NAT-T bind fails.
TEST(UdpTransportTest, AFailedOpenReleasesWhatItBound) {
  auto probe = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(probe);
  const uint16_t free_port = probe->port();
  probe.reset();  // free again (UDP: no TIME_WAIT)
  auto taken = PeerSocket::open(ip("127.0.0.1"));
  ASSERT_TRUE(taken);
  ASSERT_NE(taken->port(), free_port);

  UdpTransportOptions options = loopback_options({ip("127.0.0.1")});
  options.ike_port = free_port;
  options.natt_port = taken->port();
  auto opened = UdpTransport::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().find(std::to_string(taken->port())), std::string::npos);
  EXPECT_TRUE(PeerSocket::open(ip("127.0.0.1"), free_port) != nullptr)
      << "port " << free_port << " still bound after the failed open()";
}

TEST(UdpTransportTest, RefusesOptionsThatCannotWork) {
  UdpTransportOptions options;
  auto opened = UdpTransport::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error(), "UDP transport: no listen address");

  options.listen_addresses = {ip("127.0.0.1")};
  options.ike_port = 4500;
  options.natt_port = 4500;
  opened = UdpTransport::open(options);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().find("both 4500"), std::string::npos) << opened.error();
}

TEST(UdpTransportTest, BoundPortIsZeroForAFamilyNotListenedOn) {
  auto transport = open_or_fail(loopback_options({ip("127.0.0.1")}, false));
  ASSERT_TRUE(transport);
  EXPECT_EQ(transport->bound_port(IpFamily::kIpv6, false), 0);
  EXPECT_EQ(transport->bound_port(IpFamily::kIpv6, true), 0);
  EXPECT_NE(transport->bound_port(IpFamily::kIpv4, false), 0);
  EXPECT_NE(transport->bound_port(IpFamily::kIpv4, true), 0);
}

}  // namespace
}  // namespace segw::cp::transport
