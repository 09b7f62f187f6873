// The data plane's end of the shared-memory channel, end to end: starts the
// real segw-dataplane (net_pcap ports, no hugepages, its own file prefix and
// region directory), attaches to its region with shared/channel as the
// control plane would, and checks commands and completions, the SA
// inventory, punt, inject, new-source events, a kill -9 of the control side
// and a clean exit with every mbuf back in the pool.
//
// Usage: channel_dataplane_test --dataplane PATH --pcapgen PATH
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shared/channel/region.h"

namespace segw::shared::channel {
namespace {

using namespace std::chrono_literals;

std::string dataplane_binary;
std::string pcapgen_binary;

constexpr const char* kGateway = "192.0.2.1";
constexpr const char* kPeer = "198.51.100.10";       // the static SA's path
constexpr uint16_t kPeerNewPort = 4501;              // where its ESP comes from instead
constexpr const char* kIkePeer = "198.51.100.20";
constexpr uint8_t kAccessNextHop[6] = {0x02, 0, 0, 0, 0x0a, 0x01};
constexpr uint32_t kStaticInboundSpi = 0x00010001;

// ------------------------------------------------------------------ pcaps

struct PcapRecord {
  std::vector<uint8_t> frame;
};

void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
  std::ofstream out(path, std::ios::binary);
  uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  for (const auto& frame : frames) {
    uint32_t record[4] = {0, 0, uint32_t(frame.size()), uint32_t(frame.size())};
    out.write(reinterpret_cast<const char*>(record), sizeof(record));
    out.write(reinterpret_cast<const char*>(frame.data()), std::streamsize(frame.size()));
  }
}

std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
  std::vector<std::vector<uint8_t>> frames;
  std::ifstream in(path, std::ios::binary);
  uint32_t header[6];
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) return frames;
  uint32_t record[4];
  while (in.read(reinterpret_cast<char*>(record), sizeof(record))) {
    std::vector<uint8_t> frame(record[2]);
    if (!in.read(reinterpret_cast<char*>(frame.data()), std::streamsize(frame.size()))) break;
    frames.push_back(std::move(frame));
  }
  return frames;
}

uint16_t ipv4_checksum(const uint8_t* header, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i < length; i += 2) sum += uint32_t(header[i]) << 8 | header[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// Ethernet + IPv4 + UDP from `source`:sport to the gateway:dport carrying
// `payload` (an IKE message, with the marker already in it for 4500).
std::vector<uint8_t> udp_frame(const char* source, uint16_t source_port, uint16_t destination_port,
                               const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload.size());
  const uint8_t segw_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
  std::memcpy(&f[0], segw_mac, 6);
  std::memcpy(&f[6], kAccessNextHop, 6);
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  uint16_t total = uint16_t(20 + 8 + payload.size());
  ip[2] = uint8_t(total >> 8);
  ip[3] = uint8_t(total);
  ip[8] = 64;
  ip[9] = 17;
  std::memcpy(ip + 12, IpAddress::parse(source)->bytes(), 4);
  std::memcpy(ip + 16, IpAddress::parse(kGateway)->bytes(), 4);
  uint16_t checksum = ipv4_checksum(ip, 20);
  ip[10] = uint8_t(checksum >> 8);
  ip[11] = uint8_t(checksum);
  uint8_t* udp = ip + 20;
  udp[0] = uint8_t(source_port >> 8);
  udp[1] = uint8_t(source_port);
  udp[2] = uint8_t(destination_port >> 8);
  udp[3] = uint8_t(destination_port);
  uint16_t udp_length = uint16_t(8 + payload.size());
  udp[4] = uint8_t(udp_length >> 8);
  udp[5] = uint8_t(udp_length);
  std::memcpy(udp + 8, payload.data(), payload.size());
  return f;
}

std::vector<uint8_t> ike_message(uint8_t tag, size_t length) {
  std::vector<uint8_t> message(length);
  for (size_t i = 0; i < length; ++i) message[i] = uint8_t(tag + i);
  message[0] = 0x11;  // not zero: a 4500 payload must not look like a second marker
  return message;
}

// ---------------------------------------------------------------- process

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int run_command(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

// ------------------------------------------------------------ control side

SaDescriptor make_sa(uint32_t spi, SaDirection direction, uint32_t tunnel_id) {
  SaDescriptor sa;
  sa.spi = spi;
  sa.direction = direction;
  sa.algorithm = EspAlgorithm::kAesGcm128;
  sa.tunnel_id = tunnel_id;
  for (size_t i = 0; i < 16; ++i) sa.cipher_key[i] = uint8_t(0xa0 + i);
  sa.salt = {1, 2, 3, 4};
  sa.path.local = *IpAddress::parse(kGateway);
  sa.path.remote = *IpAddress::parse("203.0.113.7");
  sa.path.remote_port = 33000;
  sa.local_selectors[0] = TrafficSelector::from_prefix(*IpPrefix::parse("10.1.0.0/16"));
  sa.remote_selectors[0] = TrafficSelector::from_prefix(*IpPrefix::parse("172.20.0.1/32"));
  sa.local_selector_count = 1;
  sa.remote_selector_count = 1;
  sa.lifetime.soft_packets = 1000;
  sa.lifetime.hard_packets = 2000;
  sa.set_name("channel-test");
  return sa;
}

// Sends one command and waits for its completion.
Completion call(Region& region, Command command, uint64_t request_id) {
  command.request_id = request_id;
  EXPECT_TRUE(wait_for([&] { return region.command_ring().try_push(command); }, 5s)) << "command ring full";
  Completion completion{};
  bool answered = wait_for([&] { return region.completion_ring().try_pop(completion); }, 5s);
  EXPECT_TRUE(answered) << "no completion for request " << request_id;
  EXPECT_EQ(completion.request_id, request_id);
  return completion;
}

template <CommandPayload P>
Completion call(Region& region, const P& payload, uint64_t request_id) {
  return call(region, make_command(request_id, region.own_generation(), payload), request_id);
}

size_t installed(const Region& region) {
  size_t count = 0;
  region.inventory().for_each_installed([&](uint32_t, const SaInventoryRecord&) { ++count; });
  return count;
}

Result<Region> attach(const std::string& name, const std::string& directory) {
  Result<Region> region = make_error("not tried");
  wait_for(
      [&] {
        region = Region::attach(name, {directory});
        return region.ok();
      },
      20s);
  return region;
}

class ChannelDataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/segw-channel-dp-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    name_ = "segw-test-" + std::to_string(getpid());
  }
  void TearDown() override {
    if (dataplane_ > 0) {
      kill(dataplane_, SIGKILL);
      waitpid(dataplane_, nullptr, 0);
    }
    if (getenv("SEGW_TEST_VERBOSE") != nullptr)
      std::printf("data plane log:\n%s\n", read_file(dir_ + "/dataplane.log").c_str());
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
    else std::printf("kept %s for inspection; data plane log:\n%s\n", dir_.c_str(), read_file(dir_ + "/dataplane.log").c_str());
  }

  // `lifetimes`: the inbound SA's soft and hard packet limits are 1, so its
  // one packet raises both lifetime events (the data plane's copy only).
  std::string sa_sections(uint16_t remote_port, bool lifetimes) const {
    std::ostringstream text;
    text << "[sa static-in]\ndirection = inbound\nspi = 0x00010001\nalgorithm = aes-gcm-128\n"
         << (lifetimes ? "lifetime_soft_packets = 1\nlifetime_hard_packets = 1\n" : "")
         << "encryption_key = 00112233445566778899aabbccddeeff\nsalt = 01020304\n"
         << "local_address = " << kGateway << "\nremote_address = " << kPeer << "\nremote_port = " << remote_port
         << "\nlocal_selector = 10.0.0.0/8\nremote_selector = 172.16.0.1/32\ntunnel = static\n\n"
         << "[sa static-out]\ndirection = outbound\nspi = 0x00020001\nalgorithm = aes-gcm-128\n"
         << "encryption_key = ffeeddccbbaa99887766554433221100\nsalt = 05060708\n"
         << "local_address = " << kGateway << "\nremote_address = " << kPeer << "\nremote_port = " << remote_port
         << "\nlocal_selector = 10.0.0.0/8\nremote_selector = 172.16.0.1/32\ntunnel = static\n";
    return text.str();
  }

  // Input: two IKE packets (500, and 4500 with the marker) and one ESP
  // packet of the static inbound SA from a NAT-moved source port.
  void write_inputs() {
    std::ofstream(dir_ + "/peer.conf") << sa_sections(kPeerNewPort, false);
    int rc = run_command({pcapgen_binary, "--config", dir_ + "/peer.conf", "--direction", "inbound", "--output",
                          dir_ + "/esp.pcap", "--sa", "static-in", "--", "-l", "0", "--no-huge", "-m", "512",
                          "--no-shconf", "--log-level=error", "--file-prefix", name_ + "-gen"},
                         dir_ + "/pcapgen.log");
    ASSERT_EQ(rc, 0) << read_file(dir_ + "/pcapgen.log");
    auto esp = read_pcap(dir_ + "/esp.pcap");
    ASSERT_EQ(esp.size(), 1u);
    std::vector<uint8_t> with_marker = {0, 0, 0, 0};
    auto ike4500 = ike_message(0x40, 60);
    with_marker.insert(with_marker.end(), ike4500.begin(), ike4500.end());
    write_pcap(dir_ + "/access_in.pcap",
               {udp_frame(kIkePeer, 500, 500, ike_message(0x20, 48)), udp_frame(kIkePeer, 4500, 4500, with_marker),
                esp[0]});
    write_pcap(dir_ + "/core_in.pcap", {});
  }

  void start_dataplane() {
    std::ostringstream config;
    config << "[dataplane]\nstats_interval = 0\nsa_capacity = 1024\n\n"
           << "[port access]\ndevice = net_pcap0,rx_pcap=" << dir_ << "/access_in.pcap,tx_pcap=" << dir_
           << "/access_out.pcap\nnext_hop_mac = 02:00:00:00:0a:01\naddress = " << kGateway << "\n\n"
           << "[port core]\ndevice = net_pcap1,rx_pcap=" << dir_ << "/core_in.pcap,tx_pcap=" << dir_
           << "/core_out.pcap\nnext_hop_mac = 02:00:00:00:0c:01\naddress = 10.0.0.1\n\n"
           << "[channel]\nname = " << name_ << "\ndirectory = " << dir_ << "\ncounters_refresh_ms = 20\n"
           << "event_interval_ms = 100\ncommand_ring = 64\ncompletion_ring = 64\nidle_sleep_us = 20\n"
           // Every non-ESN outbound SA is "near exhaustion" at once; idle
           // after 300 ms without packets.
           << "sequence_margin = 4294967295\nidle_timeout_ms = 300\n\n"
           << sa_sections(4500, true);
    std::ofstream(dir_ + "/segw.conf") << config.str();
    ASSERT_EQ(run_command({dataplane_binary, "-c", dir_ + "/segw.conf", "--check-config"}, dir_ + "/check.log"), 0)
        << read_file(dir_ + "/check.log");
    dataplane_ = fork();
    if (dataplane_ == 0) {
      int fd = ::open((dir_ + "/dataplane.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::string config_path = dir_ + "/segw.conf", stats = dir_ + "/stats.json", prefix = name_ + "-dp";
      execl(dataplane_binary.c_str(), dataplane_binary.c_str(), "-c", config_path.c_str(), "--stats-json",
            stats.c_str(), "--", "--no-huge", "-m", "512", "--no-shconf", "-l", "0,1", "--file-prefix",
            prefix.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  bool dataplane_running() { return dataplane_ > 0 && waitpid(dataplane_, nullptr, WNOHANG) == 0; }

  std::string dir_;
  std::string name_;
  pid_t dataplane_ = -1;
};

TEST_F(ChannelDataplaneTest, ControlPlaneDrivesTheRealDataPlane) {
  ASSERT_NO_FATAL_FAILURE(write_inputs());
  ASSERT_NO_FATAL_FAILURE(start_dataplane());
  auto attached = attach(name_, dir_);
  ASSERT_TRUE(attached.ok()) << attached.error() << "\n" << read_file(dir_ + "/dataplane.log");
  std::optional<Region> region(std::move(*attached));
  ASSERT_TRUE(region->inventory().present());
  EXPECT_TRUE(region->peer_alive(2s));
  uint64_t request = 1;

  // --- static SAs are in the inventory from the start
  SaInventoryRecord record;
  ASSERT_TRUE(wait_for([&] { return installed(*region) == 2; }, 5s));
  ASSERT_TRUE(region->inventory().find(kStaticInboundSpi, SaDirection::kInbound, record));
  EXPECT_EQ(record.path.remote, *IpAddress::parse(kPeer));
  EXPECT_EQ(record.path.remote_port, 4500);
  EXPECT_EQ(record.path_generation, 0u);
  EXPECT_EQ(std::string(record.name.data()), "static-in");
  uint32_t static_tunnel = record.tunnel_id;

  // --- punt: both IKE packets, marker removed, metadata right
  PuntPacket punt;
  std::vector<PuntPacket> punts;
  wait_for(
      [&] {
        while (region->punt_ring().try_pop(punt)) punts.push_back(punt);
        return punts.size() >= 2;
      },
      10s);
  ASSERT_EQ(punts.size(), 2u) << read_file(dir_ + "/dataplane.log");
  uint64_t now = Region::monotonic_now_ns();
  for (const PuntPacket& p : punts) {
    EXPECT_EQ(p.source.address, *IpAddress::parse(kIkePeer));
    EXPECT_EQ(p.destination.address, *IpAddress::parse(kGateway));
    EXPECT_EQ(p.source.port, p.destination.port);
    EXPECT_GT(p.arrival_time_ns, 0u);
    EXPECT_LE(p.arrival_time_ns, now);
    std::vector<uint8_t> expected = p.destination.port == 500 ? ike_message(0x20, 48) : ike_message(0x40, 60);
    EXPECT_EQ(std::vector<uint8_t>(p.message().begin(), p.message().end()), expected)
        << "port " << p.destination.port;
  }

  // --- events: new source (the verified ESP came from port 4501, the path
  // says 4500), soft and hard lifetime of the same SA, sequence near
  // exhaustion of the outbound one, then idle of the inbound one.
  std::vector<Event> events;
  auto find_event = [&](EventKind kind, uint32_t spi) -> const Event* {
    for (const Event& e : events)
      if (e.kind == kind && e.spi == spi) return &e;
    return nullptr;
  };
  constexpr uint32_t kStaticOutboundSpi = 0x00020001;
  bool all_events = wait_for(
      [&] {
        Event e{};
        while (region->event_ring().try_pop(e)) events.push_back(e);
        return find_event(EventKind::kNewSourceAddress, kStaticInboundSpi) &&
               find_event(EventKind::kSoftLifetime, kStaticInboundSpi) &&
               find_event(EventKind::kHardLifetime, kStaticInboundSpi) &&
               find_event(EventKind::kSequenceNearExhaustion, kStaticOutboundSpi) &&
               find_event(EventKind::kSaIdle, kStaticInboundSpi);
      },
      10s);
  std::string seen;
  for (const Event& e : events) seen += std::string(to_string(e.kind)) + " " + std::to_string(e.spi) + "; ";
  ASSERT_TRUE(all_events) << "events seen: " << seen << "\n" << read_file(dir_ + "/dataplane.log");
  const Event& event = *find_event(EventKind::kNewSourceAddress, kStaticInboundSpi);
  EXPECT_EQ(event.tunnel_id, static_tunnel);
  EXPECT_EQ(event.current_remote.address, *IpAddress::parse(kPeer));
  EXPECT_EQ(event.current_remote.port, 4500);
  EXPECT_EQ(event.new_remote.address, *IpAddress::parse(kPeer));
  EXPECT_EQ(event.new_remote.port, kPeerNewPort);
  EXPECT_EQ(find_event(EventKind::kHardLifetime, kStaticInboundSpi)->packets, 1u);
  EXPECT_EQ(find_event(EventKind::kSequenceNearExhaustion, kStaticOutboundSpi)->sequence_number, 0u);
  EXPECT_GE(find_event(EventKind::kSaIdle, kStaticInboundSpi)->idle_ns, 300'000'000u);
  // One-shot conditions are reported once, however many sweeps see them.
  size_t soft_events = 0;
  for (const Event& e : events) soft_events += e.kind == EventKind::kSoftLifetime;
  EXPECT_EQ(soft_events, 1u);
  ASSERT_TRUE(wait_for(
      [&] {
        return region->inventory().find(kStaticInboundSpi, SaDirection::kInbound, record) && record.packets == 1;
      },
      5s));
  EXPECT_EQ(record.new_source_packets, 1u);
  EXPECT_EQ(record.path.remote_port, 4500) << "the data plane never moves an SA itself";
  EXPECT_EQ(record.flags & (kSaFlagSoftLifetimeReached | kSaFlagHardLifetimeReached | kSaFlagIdle),
            kSaFlagSoftLifetimeReached | kSaFlagHardLifetimeReached | kSaFlagIdle);

  // --- install in/out
  constexpr uint32_t kTunnel = 100;
  SaDescriptor inbound = make_sa(0x00300005, SaDirection::kInbound, kTunnel);
  SaDescriptor outbound = make_sa(0x7700aa01, SaDirection::kOutbound, kTunnel);
  Completion done = call(*region, InstallSaPayload{inbound}, request++);
  EXPECT_EQ(done.code, CompletionCode::kOk) << to_string(done.code);
  EXPECT_EQ(done.kind, CommandKind::kInstallSa);
  done = call(*region, InstallSaPayload{outbound}, request++);
  EXPECT_EQ(done.code, CompletionCode::kOk) << to_string(done.code);
  ASSERT_EQ(installed(*region), 4u);
  ASSERT_TRUE(region->inventory().find(inbound.spi, SaDirection::kInbound, record));
  EXPECT_EQ(record.tunnel_id, kTunnel);
  EXPECT_EQ(record.path, inbound.path);
  EXPECT_EQ(record.replay_window, inbound.replay_window);
  EXPECT_EQ(record.lifetime.hard_packets, 2000u);
  EXPECT_EQ(record.algorithm, EspAlgorithm::kAesGcm128);
  ASSERT_TRUE(region->inventory().find(outbound.spi, SaDirection::kOutbound, record));
  EXPECT_EQ(record.remote_selector_count, 1);

  // --- duplicate SPI: refused, nothing changed
  SaDescriptor duplicate = inbound;
  duplicate.tunnel_id = 555;
  done = call(*region, InstallSaPayload{duplicate}, request++);
  EXPECT_EQ(done.code, CompletionCode::kDuplicateSpi) << to_string(done.code);
  EXPECT_EQ(installed(*region), 4u);
  ASSERT_TRUE(region->inventory().find(inbound.spi, SaDirection::kInbound, record));
  EXPECT_EQ(record.tunnel_id, kTunnel);

  // --- remove unknown
  done = call(*region, RemoveSaPayload{0x00abcdef, SaDirection::kInbound}, request++);
  EXPECT_EQ(done.code, CompletionCode::kUnknownSa) << to_string(done.code);

  // --- path update: numbered, then stale, then unknown tunnel
  UpdatePathPayload move;
  move.tunnel_id = kTunnel;
  move.path_generation = 5;
  move.path = inbound.path;
  move.path.remote = *IpAddress::parse("203.0.113.99");
  move.path.remote_port = 34567;
  done = call(*region, move, request++);
  EXPECT_EQ(done.code, CompletionCode::kOk) << to_string(done.code);
  for (auto [spi, direction] : {std::pair{inbound.spi, SaDirection::kInbound}, {outbound.spi, SaDirection::kOutbound}}) {
    ASSERT_TRUE(region->inventory().find(spi, direction, record));
    EXPECT_EQ(record.path, move.path);
    EXPECT_EQ(record.path_generation, 5u);
  }
  UpdatePathPayload late = move;
  late.path_generation = 3;
  late.path.remote_port = 1111;
  done = call(*region, late, request++);
  EXPECT_EQ(done.code, CompletionCode::kStalePath) << to_string(done.code);
  ASSERT_TRUE(region->inventory().find(inbound.spi, SaDirection::kInbound, record));
  EXPECT_EQ(record.path.remote_port, 34567) << "a stale update changes nothing";
  UpdatePathPayload nowhere = move;
  nowhere.tunnel_id = 4242;
  nowhere.path_generation = 9;
  done = call(*region, nowhere, request++);
  EXPECT_EQ(done.code, CompletionCode::kUnknownTunnel) << to_string(done.code);

  // --- malformed commands: clear codes, nothing changed
  uint64_t changes = region->inventory().header().changes.load();
  Command bad_kind = make_command(0, region->own_generation(), BarrierPayload{});
  bad_kind.kind = static_cast<CommandKind>(99);
  EXPECT_EQ(call(*region, bad_kind, request++).code, CompletionCode::kUnknownCommand);
  Command bad_version = make_command(0, region->own_generation(), InstallSaPayload{make_sa(0x00400006, SaDirection::kInbound, 7)});
  bad_version.version = 42;
  EXPECT_EQ(call(*region, bad_version, request++).code, CompletionCode::kUnsupportedVersion);
  SaDescriptor reserved_spi = make_sa(0x00000005, SaDirection::kInbound, 7);
  EXPECT_EQ(call(*region, InstallSaPayload{reserved_spi}, request++).code, CompletionCode::kBadParameters);
  SaDescriptor bad_algorithm = make_sa(0x00400006, SaDirection::kInbound, 7);
  bad_algorithm.algorithm = static_cast<EspAlgorithm>(200);
  EXPECT_EQ(call(*region, InstallSaPayload{bad_algorithm}, request++).code, CompletionCode::kBadParameters);
  SaDescriptor bad_direction = make_sa(0x00400006, static_cast<SaDirection>(9), 7);
  EXPECT_EQ(call(*region, InstallSaPayload{bad_direction}, request++).code, CompletionCode::kBadParameters);
  SaDescriptor mixed_families = make_sa(0x00400006, SaDirection::kInbound, 7);
  mixed_families.path.remote = *IpAddress::parse("2001:db8::7");
  EXPECT_EQ(call(*region, InstallSaPayload{mixed_families}, request++).code, CompletionCode::kBadParameters);
  SaDescriptor other_path = make_sa(0x00400006, SaDirection::kInbound, kTunnel);  // tunnel is elsewhere now
  EXPECT_EQ(call(*region, InstallSaPayload{other_path}, request++).code, CompletionCode::kBadParameters);
  UpdateSelectorsPayload no_route;  // an outbound SA needs a remote selector
  no_route.spi = outbound.spi;
  no_route.direction = SaDirection::kOutbound;
  EXPECT_EQ(call(*region, no_route, request++).code, CompletionCode::kBadParameters);
  UpdateSelectorsPayload backwards = no_route;
  backwards.remote_selector_count = 1;
  backwards.remote_selectors[0].start = *IpAddress::parse("172.20.0.9");
  backwards.remote_selectors[0].end = *IpAddress::parse("172.20.0.1");
  EXPECT_EQ(call(*region, backwards, request++).code, CompletionCode::kBadParameters);
  UpdateSelectorsPayload too_many = backwards;
  too_many.remote_selectors[0] = TrafficSelector::from_prefix(*IpPrefix::parse("172.20.0.0/24"));
  too_many.local_selector_count = shared::kMaxSelectors + 1;
  EXPECT_EQ(call(*region, too_many, request++).code, CompletionCode::kBadParameters);
  UpdateSelectorsPayload unknown = too_many;
  unknown.local_selector_count = 0;
  unknown.spi = 0x7700aa99;
  EXPECT_EQ(call(*region, unknown, request++).code, CompletionCode::kUnknownSa);
  // A command of an earlier control generation.
  Command stale = make_command(0, region->own_generation() - 1, RemoveSaPayload{inbound.spi, SaDirection::kInbound});
  EXPECT_EQ(call(*region, stale, request++).code, CompletionCode::kStaleGeneration);
  EXPECT_EQ(installed(*region), 4u);
  EXPECT_EQ(region->inventory().header().changes.load(), changes) << "no failed command touched the inventory";
  EXPECT_EQ(call(*region, BarrierPayload{}, request++).code, CompletionCode::kOk);

  // --- selectors of installed SAs replaced (the routes and checks that
  // follow are proven in dataplane_table_tests): the inventory follows.
  UpdateSelectorsPayload wider = unknown;
  wider.spi = outbound.spi;
  wider.remote_selector_count = 2;
  wider.remote_selectors[1] = TrafficSelector::from_prefix(*IpPrefix::parse("172.21.0.0/16"));
  EXPECT_EQ(call(*region, wider, request++).code, CompletionCode::kOk);
  UpdateSelectorsPayload inbound_selectors;
  inbound_selectors.spi = inbound.spi;
  inbound_selectors.direction = SaDirection::kInbound;
  inbound_selectors.local_selector_count = 3;
  for (int i = 0; i < 3; ++i)
    inbound_selectors.local_selectors[i] = TrafficSelector::from_prefix(
        *IpPrefix::parse("10." + std::to_string(10 + i) + ".0.0/16"));
  inbound_selectors.remote_selector_count = 1;
  inbound_selectors.remote_selectors[0] = TrafficSelector::from_prefix(*IpPrefix::parse("172.20.0.0/24"));
  EXPECT_EQ(call(*region, inbound_selectors, request++).code, CompletionCode::kOk);
  ASSERT_TRUE(region->inventory().find(outbound.spi, SaDirection::kOutbound, record));
  EXPECT_EQ(record.remote_selector_count, 2);
  EXPECT_EQ(record.local_selector_count, 0) << "an outbound SA may leave its local side open";
  ASSERT_TRUE(region->inventory().find(inbound.spi, SaDirection::kInbound, record));
  EXPECT_EQ(record.local_selector_count, 3);
  EXPECT_EQ(record.remote_selector_count, 1);
  EXPECT_GT(region->inventory().header().changes.load(), changes);

  // --- inject: two IKE packets out of the access port
  InjectPacket plain;
  plain.port_id = 0xffff;
  plain.source = {*IpAddress::parse(kGateway), 500};
  plain.destination = {*IpAddress::parse(kIkePeer), 500};
  ASSERT_TRUE(plain.assign(ike_message(0x60, 80)));
  InjectPacket natted = plain;
  natted.source.port = 4500;
  natted.destination.port = 61000;
  natted.non_esp_marker = true;
  ASSERT_TRUE(natted.assign(ike_message(0x70, 100)));
  InjectPacket broken = plain;
  broken.destination.address = *IpAddress::parse("2001:db8::9");
  ASSERT_TRUE(region->inject_ring().try_push(plain));
  ASSERT_TRUE(region->inject_ring().try_push(natted));
  ASSERT_TRUE(region->inject_ring().try_push(broken));
  const auto& counters = region->inventory().header().counters;
  EXPECT_TRUE(wait_for([&] { return counters.injected.load() == 2 && counters.inject_errors.load() == 1; }, 5s))
      << counters.injected.load() << " injected, " << counters.inject_errors.load() << " errors";

  // --- the control side dies (kill -9); the data plane keeps everything
  uint64_t generation_before = region->own_generation();
  region.reset();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    auto child_region = Region::attach(name_, {dir_});
    char result = 'x';
    if (child_region.ok()) {
      Command install = make_command(900, child_region->own_generation(),
                                     InstallSaPayload{make_sa(0x00500007, SaDirection::kInbound, 200)});
      Completion completion{};
      if (child_region->command_ring().try_push(install) &&
          wait_for([&] { return child_region->completion_ring().try_pop(completion); }, 5s))
        result = completion.code == CompletionCode::kOk ? 'k' : 'f';
    }
    (void)!write(ready[1], &result, 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char child_result = 0;
  ASSERT_EQ(read(ready[0], &child_result, 1), 1);
  close(ready[0]);
  EXPECT_EQ(child_result, 'k') << "the child control plane's install";
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(dataplane_running());

  auto again = attach(name_, dir_);
  ASSERT_TRUE(again.ok()) << again.error();
  region.emplace(std::move(*again));
  EXPECT_EQ(region->own_generation(), generation_before + 2) << "the child and now us";
  EXPECT_EQ(installed(*region), 5u) << "nothing removed when a control plane dies";
  EXPECT_TRUE(region->inventory().find(0x00500007, SaDirection::kInbound, record));
  EXPECT_TRUE(region->inventory().find(outbound.spi, SaDirection::kOutbound, record));
  EXPECT_EQ(record.path_generation, 5u);
  EXPECT_TRUE(region->peer_alive(2s)) << "the data plane still beats";
  Command from_dead = make_command(0, generation_before + 1, BarrierPayload{});
  EXPECT_EQ(call(*region, from_dead, request++).code, CompletionCode::kStaleGeneration);

  // --- remove: gone from the inventory
  done = call(*region, RemoveSaPayload{inbound.spi, SaDirection::kInbound}, request++);
  EXPECT_EQ(done.code, CompletionCode::kOk) << to_string(done.code);
  EXPECT_FALSE(region->inventory().find(inbound.spi, SaDirection::kInbound, record));
  EXPECT_EQ(installed(*region), 4u);

  // --- pipelined bulk: 1000 installs then 1000 removes through 64-slot
  // rings (the data plane takes a command only when its completion fits).
  auto pipeline = [&](const std::function<Command(uint32_t)>& build, uint32_t count) {
    uint32_t sent = 0, answered = 0, ok = 0;
    uint64_t first_request = request;
    bool finished = wait_for(
        [&] {
          while (sent < count) {
            Command command = build(sent);
            command.request_id = request;
            if (!region->command_ring().try_push(command)) break;
            ++request;
            ++sent;
          }
          Completion completion{};
          while (region->completion_ring().try_pop(completion)) {
            EXPECT_EQ(completion.request_id, first_request + answered) << "completions in command order";
            ++answered;
            ok += completion.code == CompletionCode::kOk;
          }
          return answered == count;
        },
        30s);
    EXPECT_TRUE(finished) << answered << " of " << count << " answered";
    return ok;
  };
  size_t before_bulk = installed(*region);
  auto bulk_spi = [](uint32_t i) { return 0x0a000000u | (16 + i); };  // table indexes 16..1015: free
  EXPECT_EQ(pipeline(
                [&](uint32_t i) {
                  return make_command(0, region->own_generation(),
                                      InstallSaPayload{make_sa(bulk_spi(i), SaDirection::kInbound, 1000 + i)});
                },
                1000),
            1000u);
  EXPECT_EQ(installed(*region), before_bulk + 1000);
  EXPECT_TRUE(region->inventory().find(bulk_spi(999), SaDirection::kInbound, record));
  EXPECT_EQ(record.tunnel_id, 1999u);
  EXPECT_EQ(pipeline(
                [&](uint32_t i) {
                  return make_command(0, region->own_generation(), RemoveSaPayload{bulk_spi(i), SaDirection::kInbound});
                },
                1000),
            1000u);
  EXPECT_EQ(installed(*region), before_bulk);
  EXPECT_EQ(region->inventory().header().installed.load(), before_bulk);

  // --- clean exit: every mbuf back, region removed
  std::string region_path = region->path();
  region.reset();
  kill(dataplane_, SIGINT);
  int status = 0;
  ASSERT_TRUE(wait_for([&] { return waitpid(dataplane_, &status, WNOHANG) == dataplane_; }, 20s));
  dataplane_ = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_file(dir_ + "/dataplane.log");
  std::string stats = read_file(dir_ + "/stats.json");
  EXPECT_NE(stats.find("\"mempool_in_use_at_exit\":0,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"punted\":2,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"injected\":2,"), std::string::npos) << stats;
  EXPECT_FALSE(std::filesystem::exists(region_path)) << "a clean exit removes the region";

  // --- the injected frames, as they left the access port
  auto sent = read_pcap(dir_ + "/access_out.pcap");
  ASSERT_EQ(sent.size(), 2u);
  for (const auto& frame : sent) {
    ASSERT_GE(frame.size(), 14u + 20 + 8);
    EXPECT_EQ(std::memcmp(frame.data(), kAccessNextHop, 6), 0) << "to the access next hop";
    EXPECT_EQ(frame[12], 0x08);
    EXPECT_EQ(frame[13], 0x00);
    const uint8_t* ip = frame.data() + 14;
    EXPECT_EQ(ip[0], 0x45);
    EXPECT_EQ(ip[9], 17);
    EXPECT_EQ(ipv4_checksum(ip, 20), 0) << "IPv4 header checksum";
    EXPECT_EQ(std::memcmp(ip + 12, IpAddress::parse(kGateway)->bytes(), 4), 0);
    EXPECT_EQ(std::memcmp(ip + 16, IpAddress::parse(kIkePeer)->bytes(), 4), 0);
    EXPECT_EQ(size_t(ip[2] << 8 | ip[3]), frame.size() - 14);
    const uint8_t* udp = ip + 20;
    uint16_t source_port = uint16_t(udp[0] << 8 | udp[1]);
    uint16_t destination_port = uint16_t(udp[2] << 8 | udp[3]);
    std::vector<uint8_t> payload(udp + 8, frame.data() + frame.size());
    if (source_port == 500) {
      EXPECT_EQ(destination_port, 500);
      EXPECT_EQ(payload, ike_message(0x60, 80));
    } else {
      EXPECT_EQ(source_port, 4500);
      EXPECT_EQ(destination_port, 61000);
      std::vector<uint8_t> expected = {0, 0, 0, 0};
      auto message = ike_message(0x70, 100);
      expected.insert(expected.end(), message.begin(), message.end());
      EXPECT_EQ(payload, expected) << "RFC 3948 non-ESP marker, then the message";
    }
  }
  // The ESP packet from the new source was still forwarded to the core.
  EXPECT_EQ(read_pcap(dir_ + "/core_out.pcap").size(), 1u);
}

// A data plane killed with -9 leaves its region behind; the next one
// replaces it (generations carried over, a fresh inventory of the static
// SAs), and a control plane still mapping the old one sees it superseded.
TEST_F(ChannelDataplaneTest, RestartedDataPlaneReplacesItsRegion) {
  ASSERT_NO_FATAL_FAILURE(write_inputs());
  ASSERT_NO_FATAL_FAILURE(start_dataplane());
  auto first = attach(name_, dir_);
  ASSERT_TRUE(first.ok()) << first.error();
  uint64_t data_generation = first->peer().generation;
  Completion done = call(*first, InstallSaPayload{make_sa(0x00300005, SaDirection::kInbound, 100)}, 1);
  EXPECT_EQ(done.code, CompletionCode::kOk);
  EXPECT_EQ(installed(*first), 3u);

  kill(dataplane_, SIGKILL);
  waitpid(dataplane_, nullptr, 0);
  dataplane_ = -1;
  EXPECT_TRUE(std::filesystem::exists(first->path())) << "a killed data plane cannot clean up";
  EXPECT_FALSE(*first->superseded());

  ASSERT_NO_FATAL_FAILURE(start_dataplane());
  ASSERT_TRUE(wait_for([&] { return first->superseded().ok() && *first->superseded(); }, 20s))
      << read_file(dir_ + "/dataplane.log");
  uint64_t control_generation = first->own_generation();
  first = make_error("closed");  // drop the old mapping (and the control-plane lock)
  auto second = attach(name_, dir_);
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(second->peer().generation, data_generation + 1) << "data-plane generation carried over";
  EXPECT_EQ(second->own_generation(), control_generation + 1);
  EXPECT_TRUE(wait_for([&] { return installed(*second) == 2; }, 5s)) << "the static SAs, ready to be re-pushed";
  SaInventoryRecord record;
  EXPECT_FALSE(second->inventory().find(0x00300005, SaDirection::kInbound, record));
  done = call(*second, InstallSaPayload{make_sa(0x00300005, SaDirection::kInbound, 100)}, 2);
  EXPECT_EQ(done.code, CompletionCode::kOk) << "re-pushed";

  std::string region_path = second->path();
  second = make_error("closed");
  kill(dataplane_, SIGINT);
  int status = 0;
  ASSERT_TRUE(wait_for([&] { return waitpid(dataplane_, &status, WNOHANG) == dataplane_; }, 20s));
  dataplane_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir_ + "/dataplane.log");
  EXPECT_FALSE(std::filesystem::exists(region_path));
}

}  // namespace
}  // namespace segw::shared::channel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--dataplane") segw::shared::channel::dataplane_binary = argv[i + 1];
    if (std::string(argv[i]) == "--pcapgen") segw::shared::channel::pcapgen_binary = argv[i + 1];
  }
  if (segw::shared::channel::dataplane_binary.empty() || segw::shared::channel::pcapgen_binary.empty()) {
    std::fprintf(stderr, "usage: %s --dataplane PATH --pcapgen PATH\n", argv[0]);
    return 2;
  }
  return RUN_ALL_TESTS();
}
