// Path-update storms through the real channel, with real processes and real
// traffic both ways (issue 3, "Tests (real processes)"):
//
//   this test (peers and core hosts)          segw-dataplane (af_packet on veth)
//     raw socket on sa1  <-- ESP in UDP ----   sa0  (access)
//                        --- ESP in UDP --->
//     raw socket on sc1  --- plain IPv4 --->   sc0  (core)
//                        <-- plain IPv4 ----
//   control child (this binary, --control): DataPlaneLink, installs the SAs
//   and moves every tunnel's path over and over.
//
// Every tunnel t has paths j = 0, 1, 2, ... (remote UDP port 1024 + j); the
// control child records in a shared file the highest j it has published
// (submitted) and acknowledged (completed ok) per tunnel. Each downlink
// packet the test sends for tunnel t notes the acknowledged j at that moment;
// its ESP sequence number tells which packet an encapsulated one is. Each
// output packet must then carry exactly path j of its tunnel with
//   noted j <= j <= published j,   j never lower than the previous packet's,
// and nothing may be lost in either direction. Scenarios: a plain storm, the
// control child killed with -9 in the middle (a new one resumes from the
// inventory), the data plane killed with -9 in the middle (the control child
// re-pushes every SA; paths after recovery are the latest).
//
// Run inside run_in_netns.sh (it creates sa0/sa1 and sc0/sc1).
// Usage: path_storm_test --dataplane PATH --pcapgen PATH [gtest flags]
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/dp_link/data_plane_link.h"
#include "controlplane/dp_link/region_observer.h"
#include "controlplane/dp_link/sa_inventory_reader.h"
#include "shared/config_file.h"
#include "shared/static_sa.h"

namespace {

using namespace std::chrono_literals;
using segw::shared::IpAddress;
using segw::shared::PathDescriptor;
using segw::shared::SaDescriptor;
using segw::shared::SaDirection;
namespace dp_link = segw::cp::dp_link;

std::string dataplane_binary;
std::string pcapgen_binary;
std::string self_binary;

constexpr uint32_t kTunnels = 1000;
constexpr uint32_t kInboundSpiBase = 0x10000001;
constexpr uint32_t kOutboundSpiBase = 0x20000001;
constexpr uint32_t kGateway = 0xc0000201;     // 192.0.2.1
constexpr uint32_t kPeerBase = 0xc6120000;    // 198.18.0.0 + t: tunnel t's peer
constexpr uint32_t kPeerInnerBase = 0x0a400001;  // 10.64.0.1 + t: behind tunnel t
constexpr uint32_t kCoreHost = 0xac100001;    // 172.16.0.1
constexpr uint16_t kFirstPort = 1024;         // path j: remote port 1024 + j
constexpr uint32_t kMaxPath = 60000;
constexpr uint32_t kUplinkPerSa = 400;
constexpr uint32_t kDownlinkPerTunnel = 1500;  // per data plane life
constexpr uint64_t kWindow = 192;              // packets outstanding per direction

// ------------------------------------------------------------ shared state

// Written by the control child, read by the test: one file both map.
struct StormState {
  std::atomic<uint32_t> published[kTunnels];  // highest path j submitted
  std::atomic<uint32_t> acknowledged[kTunnels];  // highest path j completed ok
  std::atomic<uint64_t> submitted;
  std::atomic<uint64_t> completed_ok;
  std::atomic<uint64_t> refused;  // completed with another code than ok
  std::atomic<uint64_t> not_completed;  // timed out, data plane restarted
  std::atomic<uint64_t> resyncs;
  std::atomic<uint32_t> phase;  // 1: SAs in place (installed or resumed); 2: storm done
  std::atomic<uint32_t> adopted;
};
static_assert(std::atomic<uint32_t>::is_always_lock_free && std::atomic<uint64_t>::is_always_lock_free,
              "shared across processes: must be address-free");

StormState* map_state(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0600);
  if (fd < 0) return nullptr;
  if (create && ftruncate(fd, sizeof(StormState)) != 0) return nullptr;
  void* memory = mmap(nullptr, sizeof(StormState), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  return memory == MAP_FAILED ? nullptr : static_cast<StormState*>(memory);
}

PathDescriptor path_for(uint32_t tunnel, uint32_t j) {
  PathDescriptor path;
  path.local = IpAddress::from_ipv4(kGateway);
  path.remote = IpAddress::from_ipv4(kPeerBase + tunnel);
  path.local_port = 4500;
  path.remote_port = static_cast<uint16_t>(kFirstPort + j);
  path.udp_encapsulation = true;
  return path;
}

std::string ipv4_text(uint32_t host_order) {
  return IpAddress::from_ipv4(host_order).to_string();
}

// Tunnel t of the SA file: both SAs, ids 1..kTunnels (tunnel "t").
std::string sa_file() {
  std::ostringstream text;
  text << "[sa in]\ndirection = inbound\nspi = " << kInboundSpiBase << "\ncount = " << kTunnels
       << "\nalgorithm = aes-gcm-128\nencryption_key = 00112233445566778899aabbccddeeff\nsalt = 01020304\n"
       << "local_address = " << ipv4_text(kGateway) << "\nremote_address = " << ipv4_text(kPeerBase)
       << "\nremote_address_step = 1\nremote_port = " << kFirstPort << "\nreplay_window = 1024\n"
       << "local_selector = " << ipv4_text(kCoreHost) << "/32\nremote_selector = " << ipv4_text(kPeerInnerBase)
       << "/32\ntunnel = t\n\n"
       << "[sa out]\ndirection = outbound\nspi = " << kOutboundSpiBase << "\ncount = " << kTunnels
       << "\nalgorithm = aes-gcm-128\nencryption_key = ffeeddccbbaa99887766554433221100\nsalt = 05060708\n"
       << "local_address = " << ipv4_text(kGateway) << "\nremote_address = " << ipv4_text(kPeerBase)
       << "\nremote_address_step = 1\nremote_port = " << kFirstPort << "\n"
       << "local_selector = " << ipv4_text(kCoreHost) << "/32\nremote_selector = " << ipv4_text(kPeerInnerBase)
       << "/32\ntunnel = t\n";
  return text.str();
}

segw::shared::Result<std::vector<SaDescriptor>> load_sas(const std::string& path) {
  auto file = segw::shared::ConfigFile::load(path);
  if (!file) return segw::shared::make_error(file.error());
  auto set = segw::shared::parse_static_sas(*file);
  if (!set) return segw::shared::make_error(set.error());
  std::vector<SaDescriptor> sas;
  for (const auto& t : set->templates)
    for (uint32_t i = 0; i < t.count; ++i) sas.push_back(t.expand(i));
  return sas;
}

// ------------------------------------------------------- the control child

// --control DIR NAME install|resume ROUNDS: attaches, installs (or resumes
// from the inventory), then runs ROUNDS rounds of one path update per tunnel,
// waits for every completion and exits 0. Exit 3: setup failed.
int control_main(int argc, char** argv) {
  if (argc < 6) return 2;
  std::string dir = argv[2], name = argv[3], mode = argv[4];
  uint64_t rounds = std::strtoull(argv[5], nullptr, 10);
  StormState* state = map_state(dir + "/storm.state", false);
  if (!state) return 3;
  auto sas = load_sas(dir + "/sas.conf");
  if (!sas) {
    std::fprintf(stderr, "control: %s\n", sas.error().c_str());
    return 3;
  }
  dp_link::DataPlaneLinkOptions options;
  options.region_name = name;
  options.directory = dir;
  options.submit_timeout = 20000ms;
  options.command_timeout = 20000ms;
  options.data_plane_timeout = 500ms;
  options.idle_sleep = 20us;
  std::unique_ptr<dp_link::DataPlaneLink> link;
  for (int attempt = 0; attempt < 200 && !link; ++attempt) {
    auto attached = dp_link::DataPlaneLink::attach(options);
    if (attached) link = std::move(*attached);
    else std::this_thread::sleep_for(50ms);  // the region may not exist yet
  }
  if (!link || !link->wait_for_state(dp_link::LinkState::kAttached, 10000ms)) {
    std::fprintf(stderr, "control: not attached\n");
    return 3;
  }
  link->set_resync_observer([state](const dp_link::ResyncReport& report) {
    std::fprintf(stderr, "control: resync of %zu SAs: %zu installed, %zu failed in %.3f s\n", report.sa_count,
                 report.installed, report.failed, std::chrono::duration<double>(report.duration).count());
    state->resyncs.fetch_add(1);
  });
  if (mode == "install") {
    std::atomic<uint64_t> done{0}, bad{0};
    for (const SaDescriptor& sa : *sas) {
      auto status = link->install(sa, [&](const dp_link::CommandResult& result) {
        if (!result.ok()) bad.fetch_add(1);
        done.fetch_add(1);
      });
      if (!status) {
        std::fprintf(stderr, "control: install: %s\n", status.error().c_str());
        return 3;
      }
    }
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (done.load() < sas->size() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    if (done.load() != sas->size() || bad.load() != 0) {
      std::fprintf(stderr, "control: %lu of %zu installs completed, %lu refused\n", done.load(), sas->size(),
                   bad.load());
      return 3;
    }
  } else {
    std::map<std::pair<uint32_t, SaDirection>, SaDescriptor> by_key;
    for (const SaDescriptor& sa : *sas) by_key[{sa.spi, sa.direction}] = sa;
    auto report = link->resume([&](const segw::shared::channel::SaInventoryRecord& record) -> std::optional<SaDescriptor> {
      auto found = by_key.find({record.spi, record.direction});
      if (found == by_key.end()) return std::nullopt;
      return found->second;
    });
    if (!report || !report->orphans.empty()) {
      std::fprintf(stderr, "control: resume: %s\n", report ? "orphans" : report.error().c_str());
      return 3;
    }
    state->adopted.store(static_cast<uint32_t>(report->adopted));
  }
  state->phase.store(1);

  std::atomic<uint64_t> outstanding{0};
  for (uint64_t round = 0; round < rounds; ++round) {
    for (uint32_t t = 0; t < kTunnels; ++t) {
      uint32_t j = state->published[t].load() + 1;
      if (j > kMaxPath) return 4;
      // Published before it is sent: an output packet may carry it from
      // the moment the data plane takes the command.
      state->published[t].store(j);
      outstanding.fetch_add(1);
      auto done = [state, t, j, &outstanding](const dp_link::CommandResult& result) {
        if (result.ok()) {
          uint32_t seen = state->acknowledged[t].load();
          while (seen < j && !state->acknowledged[t].compare_exchange_weak(seen, j)) {
          }
          state->completed_ok.fetch_add(1);
        } else if (result.outcome == dp_link::LinkOutcome::kCompleted) {
          state->refused.fetch_add(1);
          std::fprintf(stderr, "control: refused: %s\n", result.to_string().c_str());
        } else {
          state->not_completed.fetch_add(1);
        }
        outstanding.fetch_sub(1);
      };
      // A data plane that is down refuses submissions: try again.
      while (true) {
        auto status = link->update_path(t + 1, path_for(t, j), done);
        if (status) break;
        std::this_thread::sleep_for(2ms);
      }
      state->submitted.fetch_add(1);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (outstanding.load() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  auto barrier = link->barrier();
  if (!barrier || barrier->wait_for(30s) != std::future_status::ready || !barrier->get().ok()) return 5;
  state->phase.store(2);
  return outstanding.load() == 0 ? 0 : 6;
}

// ------------------------------------------------------------------ frames

uint16_t ipv4_checksum(const uint8_t* header) {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += uint32_t(header[i] << 8 | header[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
void put32(uint8_t* p, uint32_t v) { put16(p, uint16_t(v >> 16)), put16(p + 2, uint16_t(v)); }
uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) { return uint32_t(get16(p)) << 16 | get16(p + 2); }

std::vector<uint8_t> read_mac(const std::string& device) {
  std::ifstream in("/sys/class/net/" + device + "/address");
  std::string text;
  in >> text;
  std::vector<uint8_t> mac(6);
  if (std::sscanf(text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                  &mac[5]) != 6)
    mac.clear();
  return mac;
}

std::string mac_text(const std::vector<uint8_t>& mac) {
  char text[32];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return text;
}

std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::vector<uint8_t>> frames;
  char header[24];
  if (!in.read(header, 24)) return frames;
  while (true) {
    uint32_t record[4];
    if (!in.read(reinterpret_cast<char*>(record), 16)) break;
    std::vector<uint8_t> frame(record[2]);
    if (!in.read(reinterpret_cast<char*>(frame.data()), record[2])) break;
    frames.push_back(std::move(frame));
  }
  return frames;
}

int packet_socket(const std::string& device) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) return -1;
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  address.sll_ifindex = static_cast<int>(if_nametoindex(device.c_str()));
  int one = 1;
  int buffer = 64 << 20;
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof(buffer));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof(buffer));
  if (address.sll_ifindex == 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// -------------------------------------------------------------- traffic

// Sends and receives both directions from one thread, at most kWindow
// packets outstanding per direction (the veths and the af_packet rings then
// never overflow: a loss is the data plane's), and checks every packet.
class Traffic {
 public:
  Traffic(StormState* state, std::vector<std::vector<uint8_t>> uplink, std::vector<uint8_t> access_mac,
          std::vector<uint8_t> core_mac, std::vector<uint8_t> core_peer_mac)
      : state_(state),
        uplink_(std::move(uplink)),
        core_mac_(std::move(core_mac)),
        core_peer_mac_(std::move(core_peer_mac)),
        noted_(size_t{kTunnels} * kDownlinkPerTunnel) {
    (void)access_mac;
    access_fd_ = packet_socket("sa1");
    core_fd_ = packet_socket("sc1");
    reset_epoch();
  }
  ~Traffic() {
    stop();
    if (access_fd_ >= 0) ::close(access_fd_);
    if (core_fd_ >= 0) ::close(core_fd_);
  }
  bool ready() const { return access_fd_ >= 0 && core_fd_ >= 0; }

  void start() {
    running_ = true;
    sending_ = true;
    thread_ = std::thread([this] { loop(); });
  }
  void stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }
  void set_sending(bool sending) { sending_ = sending; }
  // Waits until everything sent has come back (or `timeout`).
  bool drain(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (downlink_received_ == downlink_sent_ && uplink_received_ == uplink_sent_) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  // A new data plane: its outbound SAs start at sequence number 1 again,
  // and what was in flight when the old one died is gone. Call while not
  // sending and after the old data plane is dead.
  void new_data_plane_epoch() {
    std::lock_guard lock(mutex_);
    lost_to_restart_ += (downlink_sent_ - downlink_received_) + (uplink_sent_ - uplink_received_);
    downlink_received_ = downlink_sent_.load();
    uplink_received_ = uplink_sent_.load();
    reset_epoch();
  }

  uint64_t downlink_sent() const { return downlink_sent_; }
  uint64_t downlink_received() const { return downlink_received_; }
  uint64_t uplink_sent() const { return uplink_sent_; }
  uint64_t uplink_received() const { return uplink_received_; }
  uint64_t lost_to_restart() const { return lost_to_restart_; }
  uint64_t violations() const { return violations_; }
  std::vector<std::string> first_violations() const {
    std::lock_guard lock(violations_mutex_);
    return first_violations_;
  }
  bool uplink_exhausted() const { return uplink_next_ >= uplink_.size(); }

 private:
  void reset_epoch() {
    next_k_.assign(kTunnels, 0);
    last_sequence_.assign(kTunnels, 0);
    last_path_.assign(kTunnels, 0);
    downlink_turn_ = 0;
  }

  void violation(const std::string& what) {
    ++violations_;
    std::lock_guard lock(violations_mutex_);
    if (first_violations_.size() < 12) first_violations_.push_back(what);
  }

  void loop() {
    while (running_) {
      bool busy = false;
      if (sending_) busy |= send_downlink() | send_uplink();
      busy |= receive(access_fd_, true) | receive(core_fd_, false);
      if (!busy) std::this_thread::sleep_for(30us);
    }
  }

  bool send_downlink() {
    bool sent = false;
    for (int burst = 0; burst < 16 && downlink_sent_ - downlink_received_ < kWindow; ++burst) {
      uint32_t t = downlink_turn_++ % kTunnels;
      uint32_t k = next_k_[t];
      if (k >= kDownlinkPerTunnel) return sent;
      // The acknowledged path as of now: this packet may not go out older.
      noted_[size_t{t} * kDownlinkPerTunnel + k].store(state_->acknowledged[t].load(std::memory_order_acquire),
                                                       std::memory_order_relaxed);
      uint8_t frame[14 + 20 + 8 + 8] = {};
      std::memcpy(frame, core_mac_.data(), 6);
      std::memcpy(frame + 6, core_peer_mac_.data(), 6);
      put16(frame + 12, 0x0800);
      uint8_t* ip = frame + 14;
      ip[0] = 0x45;
      put16(ip + 2, 20 + 8 + 8);
      ip[8] = 64;
      ip[9] = 17;
      put32(ip + 12, kCoreHost);
      put32(ip + 16, kPeerInnerBase + t);
      put16(ip + 10, ipv4_checksum(ip));
      uint8_t* udp = ip + 20;
      put16(udp, 5001);
      put16(udp + 2, 40000);
      put16(udp + 4, 8 + 8);
      put32(udp + 8, t);
      put32(udp + 12, k);
      if (::send(core_fd_, frame, sizeof(frame), 0) != static_cast<ssize_t>(sizeof(frame))) return sent;
      ++next_k_[t];
      ++downlink_sent_;
      sent = true;
    }
    return sent;
  }

  bool send_uplink() {
    bool sent = false;
    for (int burst = 0; burst < 16 && uplink_sent_ - uplink_received_ < kWindow && uplink_next_ < uplink_.size();
         ++burst) {
      const auto& frame = uplink_[uplink_next_];
      if (::send(access_fd_, frame.data(), frame.size(), 0) != static_cast<ssize_t>(frame.size())) return sent;
      ++uplink_next_;
      ++uplink_sent_;
      sent = true;
    }
    return sent;
  }

  bool receive(int fd, bool access) {
    bool any = false;
    uint8_t frame[2048];
    for (int i = 0; i < 64; ++i) {
      ssize_t length = ::recv(fd, frame, sizeof(frame), MSG_DONTWAIT);
      if (length <= 0) break;
      any = true;
      std::lock_guard lock(mutex_);
      if (access) check_encapsulated(frame, static_cast<size_t>(length));
      else check_decapsulated(frame, static_cast<size_t>(length));
    }
    return any;
  }

  // Out of the access port: ESP in UDP of one of our tunnels.
  void check_encapsulated(const uint8_t* frame, size_t length) {
    if (length < 14 + 20 + 8 + 8 || get16(frame + 12) != 0x0800 || frame[14 + 9] != 17) {
      violation("access port: a frame that is not ESP in UDP/IPv4 (" + std::to_string(length) + " bytes)");
      return;
    }
    const uint8_t* ip = frame + 14;
    const uint8_t* udp = ip + (ip[0] & 0x0f) * 4;
    uint32_t spi = get32(udp + 8), sequence = get32(udp + 12);
    uint32_t t = spi - kOutboundSpiBase;
    if (t >= kTunnels) {
      violation("access port: unknown SPI " + std::to_string(spi));
      return;
    }
    ++downlink_received_;
    uint32_t j = get16(udp + 2) - kFirstPort;
    std::string where = "tunnel " + std::to_string(t) + " sequence " + std::to_string(sequence) + ": ";
    PathDescriptor expected = path_for(t, j);
    if (get32(ip + 12) != kGateway || get16(udp) != expected.local_port ||
        get32(ip + 16) != expected.remote.ipv4_host_order() || get16(udp + 2) < kFirstPort)
      violation(where + "outer header is no path of this tunnel");
    if (sequence != last_sequence_[t] + 1)
      violation(where + "expected sequence " + std::to_string(last_sequence_[t] + 1) + " (lost or reordered)");
    last_sequence_[t] = sequence;
    uint32_t published = state_->published[t].load(std::memory_order_acquire);
    if (j > published)
      violation(where + "path " + std::to_string(j) + " was never published (latest " + std::to_string(published) + ")");
    if (j < last_path_[t])
      violation(where + "path " + std::to_string(j) + " after path " + std::to_string(last_path_[t]) +
                " (publication order)");
    last_path_[t] = std::max(last_path_[t], j);
    if (sequence == 0 || sequence > kDownlinkPerTunnel) return;
    uint32_t noted = noted_[size_t{t} * kDownlinkPerTunnel + (sequence - 1)].load(std::memory_order_relaxed);
    if (j < noted)
      violation(where + "path " + std::to_string(j) + " is older than path " + std::to_string(noted) +
                ", acknowledged before the packet was sent");
  }

  // Out of the core port: the inner packet of an uplink ESP packet.
  void check_decapsulated(const uint8_t* frame, size_t length) {
    if (length < 14 + 20 + 8 || get16(frame + 12) != 0x0800) {
      violation("core port: a frame that is not IPv4 (" + std::to_string(length) + " bytes)");
      return;
    }
    const uint8_t* ip = frame + 14;
    uint32_t source = get32(ip + 12), destination = get32(ip + 16);
    if (source - kPeerInnerBase >= kTunnels || destination != kCoreHost)
      violation("core port: inner packet " + ipv4_text(source) + " -> " + ipv4_text(destination) +
                " belongs to no tunnel");
    ++uplink_received_;
  }

  StormState* state_;
  std::vector<std::vector<uint8_t>> uplink_;
  std::vector<uint8_t> core_mac_, core_peer_mac_;
  int access_fd_ = -1, core_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> running_{false}, sending_{false};
  std::mutex mutex_;  // receive checks vs epoch resets
  mutable std::mutex violations_mutex_;
  std::vector<std::atomic<uint32_t>> noted_;
  std::vector<uint32_t> next_k_, last_sequence_, last_path_;
  uint32_t downlink_turn_ = 0;
  size_t uplink_next_ = 0;
  std::atomic<uint64_t> downlink_sent_{0}, downlink_received_{0}, uplink_sent_{0}, uplink_received_{0};
  std::atomic<uint64_t> lost_to_restart_{0}, violations_{0};
  std::vector<std::string> first_violations_;
};

// ----------------------------------------------------------------- fixture

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  if (!wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout)) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class PathStormTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char scratch[] = "/tmp/segw-storm-XXXXXX";
    ASSERT_NE(mkdtemp(scratch), nullptr);
    dir_ = scratch;
    name_ = "storm-" + std::to_string(getpid());
    access_mac_ = read_mac("sa0");
    access_peer_mac_ = read_mac("sa1");
    core_mac_ = read_mac("sc0");
    core_peer_mac_ = read_mac("sc1");
    ASSERT_FALSE(access_mac_.empty() || core_mac_.empty() || access_peer_mac_.empty() || core_peer_mac_.empty())
        << "run inside tests/integration/path_storm/run_in_netns.sh (no sa0/sa1/sc0/sc1 here)";
    std::ofstream(dir_ + "/sas.conf") << sa_file();
    std::ostringstream config;
    config << "[dataplane]\nstats_interval = 0\nsa_capacity = 4096\nmbufs = 16384\n\n"
           << "[port access]\ndevice = net_af_packet0,iface=sa0,qpairs=1\nnext_hop_mac = " << mac_text(access_peer_mac_)
           << "\naddress = " << ipv4_text(kGateway) << "\n\n"
           << "[port core]\ndevice = net_af_packet1,iface=sc0,qpairs=1\nnext_hop_mac = " << mac_text(core_peer_mac_)
           << "\naddress = 172.16.0.254\n\n"
           << "[channel]\nname = " << name_ << "\ndirectory = " << dir_
           << "\ninventory_capacity = 8192\ncounters_refresh_ms = 200\nidle_sleep_us = 20\n";
    std::ofstream(dir_ + "/segw.conf") << config.str();
    // Uplink: kUplinkPerSa ESP packets per inbound SA, sequence 1, 2, ...
    pid_t generator = spawn({pcapgen_binary, "--config", dir_ + "/sas.conf", "--direction", "inbound", "--output",
                             dir_ + "/uplink.pcap", "--packets", std::to_string(kTunnels * kUplinkPerSa), "--size",
                             "64", "--dst-mac", mac_text(access_mac_), "--src-mac", mac_text(access_peer_mac_),
                             "--", "-l", "0", "--no-huge", "-m", "512", "--no-shconf", "--log-level=error",
                             "--file-prefix", name_ + "-gen"},
                            dir_ + "/pcapgen.log");
    ASSERT_EQ(wait_exit(generator, 120s), 0) << read_file(dir_ + "/pcapgen.log");
    uplink_ = read_pcap(dir_ + "/uplink.pcap");
    ASSERT_EQ(uplink_.size(), size_t{kTunnels} * kUplinkPerSa);
    state_ = map_state(dir_ + "/storm.state", true);
    ASSERT_NE(state_, nullptr);
    new (state_) StormState{};
  }

  void TearDown() override {
    traffic_.reset();
    for (pid_t pid : {control_, dataplane_})
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    if (state_) munmap(state_, sizeof(StormState));
    if (!::testing::Test::HasFailure()) {
      std::filesystem::remove_all(dir_);
    } else {
      std::printf("kept %s; data plane log:\n%s\ncontrol log:\n%s\n", dir_.c_str(),
                  read_file(dir_ + "/dataplane.log").c_str(), read_file(dir_ + "/control.log").c_str());
    }
  }

  void start_dataplane() {
    ++dataplane_starts_;
    std::string prefix = name_ + "-dp" + std::to_string(dataplane_starts_);
    dataplane_ = spawn({dataplane_binary, "-c", dir_ + "/segw.conf", "--stats-json", dir_ + "/stats.json", "--",
                        "--no-huge", "-m", "1024", "--no-shconf", "-l", "0,1", "--file-prefix", prefix},
                       dir_ + "/dataplane.log");
  }

  // Stops the data plane cleanly; its statistics must show every mbuf back.
  void stop_dataplane() {
    kill(dataplane_, SIGINT);
    EXPECT_EQ(wait_exit(dataplane_, 30s), 0) << read_file(dir_ + "/dataplane.log");
    dataplane_ = -1;
    std::string stats = read_file(dir_ + "/stats.json");
    EXPECT_NE(stats.find("\"mempool_in_use_at_exit\":0,"), std::string::npos) << "mbuf leak: " << stats;
  }

  void start_control(const std::string& mode, uint64_t rounds) {
    control_ = spawn({self_binary, "--control", dir_, name_, mode, std::to_string(rounds)}, dir_ + "/control.log");
  }

  void start_traffic() {
    traffic_ = std::make_unique<Traffic>(state_, uplink_, access_mac_, core_mac_, core_peer_mac_);
    ASSERT_TRUE(traffic_->ready()) << "raw sockets on sa1/sc1: " << std::strerror(errno);
    traffic_->start();
  }

  // The inventory as the data plane publishes it: tunnel -> path j, and SAs.
  struct InventoryView {
    size_t sas = 0;
    std::vector<int64_t> path_of_tunnel = std::vector<int64_t>(kTunnels, -1);
  };
  InventoryView inventory() {
    InventoryView view;
    auto observer = dp_link::RegionObserver::open(name_, dir_);
    EXPECT_TRUE(observer.ok()) << observer.error();
    if (!observer) return view;
    auto entries = dp_link::read_sa_inventory(*observer);
    EXPECT_TRUE(entries.ok()) << entries.error();
    if (!entries) return view;
    for (const auto& entry : *entries) {
      ++view.sas;
      uint32_t t = entry.record.tunnel_id - 1;
      if (t < kTunnels) view.path_of_tunnel[t] = int64_t(entry.record.path.remote_port) - kFirstPort;
    }
    return view;
  }

  void expect_clean_traffic(bool nothing_lost) {
    ASSERT_TRUE(traffic_);
    traffic_->set_sending(false);
    bool drained = traffic_->drain(10s);
    traffic_->stop();
    EXPECT_EQ(traffic_->violations(), 0u) << [&] {
      std::string all;
      for (const auto& v : traffic_->first_violations()) all += "\n  " + v;
      return all;
    }();
    if (nothing_lost) {
      EXPECT_TRUE(drained);
      EXPECT_EQ(traffic_->downlink_received(), traffic_->downlink_sent()) << "downlink packets lost";
      EXPECT_EQ(traffic_->uplink_received(), traffic_->uplink_sent()) << "uplink packets lost";
    }
    std::printf("traffic: downlink %lu sent / %lu received, uplink %lu / %lu, lost to a data plane restart %lu\n",
                traffic_->downlink_sent(), traffic_->downlink_received(), traffic_->uplink_sent(),
                traffic_->uplink_received(), traffic_->lost_to_restart());
  }

  std::string dir_, name_;
  std::vector<uint8_t> access_mac_, access_peer_mac_, core_mac_, core_peer_mac_;
  std::vector<std::vector<uint8_t>> uplink_;
  StormState* state_ = nullptr;
  pid_t dataplane_ = -1, control_ = -1;
  int dataplane_starts_ = 0;
  std::unique_ptr<Traffic> traffic_;
};

// A million path updates (1000 rounds over 1000 tunnels) while traffic flows
// both ways; every packet checked, nothing lost, every mbuf back.
TEST_F(PathStormTest, AMillionPathUpdatesUnderTrafficKeepEveryHeaderInOrder) {
  start_dataplane();
  start_control("install", 1000);
  ASSERT_TRUE(wait_for([&] { return state_->phase.load() >= 1 || waitpid(control_, nullptr, WNOHANG) != 0; }, 90s));
  ASSERT_EQ(state_->phase.load(), 1u) << read_file(dir_ + "/control.log");
  start_traffic();
  auto start = std::chrono::steady_clock::now();
  uint64_t downlink_at_start = traffic_->downlink_received(), uplink_at_start = traffic_->uplink_received();
  int rc = wait_exit(control_, 300s);
  control_ = -1;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(rc, 0) << read_file(dir_ + "/control.log");
  uint64_t downlink_during = traffic_->downlink_received() - downlink_at_start;
  uint64_t uplink_during = traffic_->uplink_received() - uplink_at_start;
  std::printf("storm: %lu path updates in %.2f s (%.0f/s) under traffic: %lu downlink and %lu uplink packets "
              "forwarded meanwhile\n",
              state_->completed_ok.load(), seconds, state_->completed_ok.load() / seconds, downlink_during,
              uplink_during);
  EXPECT_EQ(state_->completed_ok.load(), uint64_t{kTunnels} * 1000);
  EXPECT_EQ(state_->refused.load() + state_->not_completed.load(), 0u);
  EXPECT_GT(downlink_during, 10000u) << "traffic must flow during the storm";
  EXPECT_GT(uplink_during, 10000u);
  expect_clean_traffic(true);
  InventoryView view = inventory();
  EXPECT_EQ(view.sas, size_t{kTunnels} * 2);
  for (uint32_t t = 0; t < kTunnels; ++t)
    ASSERT_EQ(view.path_of_tunnel[t], int64_t(state_->published[t].load())) << "tunnel " << t << ": not the last path";
  stop_dataplane();
}

// The control plane killed with -9 in the middle of a storm: the data plane
// keeps forwarding every SA (nothing lost), a new control plane resumes from
// the inventory (every SA adopted, each tunnel on a path between the last
// acknowledged and the last published one) and carries on moving paths.
TEST_F(PathStormTest, ControlPlaneKilledMidStormIsResumedWithoutLossOrStalePaths) {
  start_dataplane();
  start_control("install", 100000);  // more than it will get to do
  ASSERT_TRUE(wait_for([&] { return state_->phase.load() >= 1 || waitpid(control_, nullptr, WNOHANG) != 0; }, 90s));
  ASSERT_EQ(state_->phase.load(), 1u) << read_file(dir_ + "/control.log");
  start_traffic();
  ASSERT_TRUE(wait_for([&] { return state_->completed_ok.load() >= 200000; }, 120s));
  kill(control_, SIGKILL);
  waitpid(control_, nullptr, 0);
  control_ = -1;
  std::vector<uint32_t> acknowledged(kTunnels), published(kTunnels);
  for (uint32_t t = 0; t < kTunnels; ++t) {
    acknowledged[t] = state_->acknowledged[t].load();
    published[t] = state_->published[t].load();
  }
  uint64_t downlink_before = traffic_->downlink_received();
  std::this_thread::sleep_for(1s);  // no control plane at all
  EXPECT_GT(traffic_->downlink_received(), downlink_before + 1000) << "forwarding went on";
  InventoryView view = inventory();
  EXPECT_EQ(view.sas, size_t{kTunnels} * 2) << "every SA still installed";
  for (uint32_t t = 0; t < kTunnels; ++t) {
    EXPECT_GE(view.path_of_tunnel[t], int64_t(acknowledged[t])) << "tunnel " << t << ": older than acknowledged";
    EXPECT_LE(view.path_of_tunnel[t], int64_t(published[t])) << "tunnel " << t << ": never published";
  }
  state_->phase.store(0);
  start_control("resume", 200);
  ASSERT_TRUE(wait_for([&] { return state_->phase.load() >= 1 || waitpid(control_, nullptr, WNOHANG) != 0; }, 60s));
  ASSERT_EQ(state_->phase.load(), 1u) << read_file(dir_ + "/control.log");
  EXPECT_EQ(state_->adopted.load(), kTunnels * 2);
  ASSERT_EQ(wait_exit(control_, 300s), 0) << read_file(dir_ + "/control.log");
  control_ = -1;
  EXPECT_EQ(state_->refused.load(), 0u) << "the new control plane's updates are newer than the old one's";
  expect_clean_traffic(true);
  view = inventory();
  for (uint32_t t = 0; t < kTunnels; ++t)
    ASSERT_EQ(view.path_of_tunnel[t], int64_t(state_->published[t].load())) << "tunnel " << t;
  stop_dataplane();
}

// The data plane killed with -9 in the middle of a storm and started again:
// the control plane re-pushes every SA it owns with the latest path it
// published and goes on; every packet after the restart carries a current
// path, and when the storm ends each tunnel is on its last published path.
TEST_F(PathStormTest, DataPlaneKilledMidStormGetsEverySaBackOnItsLatestPath) {
  start_dataplane();
  start_control("install", 600);
  ASSERT_TRUE(wait_for([&] { return state_->phase.load() >= 1 || waitpid(control_, nullptr, WNOHANG) != 0; }, 90s));
  ASSERT_EQ(state_->phase.load(), 1u) << read_file(dir_ + "/control.log");
  start_traffic();
  ASSERT_TRUE(wait_for([&] { return state_->completed_ok.load() >= 200000; }, 120s));
  traffic_->set_sending(false);
  traffic_->drain(2s);
  kill(dataplane_, SIGKILL);
  waitpid(dataplane_, nullptr, 0);
  dataplane_ = -1;
  traffic_->new_data_plane_epoch();
  start_dataplane();
  ASSERT_TRUE(wait_for([&] { return state_->resyncs.load() >= 1; }, 60s)) << read_file(dir_ + "/control.log");
  uint64_t downlink_at_restart = traffic_->downlink_received(), uplink_at_restart = traffic_->uplink_received();
  uint64_t updates_at_restart = state_->completed_ok.load();
  traffic_->set_sending(true);
  ASSERT_EQ(wait_exit(control_, 300s), 0) << read_file(dir_ + "/control.log");
  control_ = -1;
  EXPECT_EQ(state_->refused.load(), 0u);
  EXPECT_GT(state_->completed_ok.load(), updates_at_restart + 100000) << "the storm went on after the restart";
  EXPECT_GT(traffic_->downlink_received(), downlink_at_restart + 5000) << "traffic after the restart";
  EXPECT_GT(traffic_->uplink_received(), uplink_at_restart + 5000);
  std::printf("control log:\n%s", read_file(dir_ + "/control.log").c_str());
  expect_clean_traffic(true);
  InventoryView view = inventory();
  EXPECT_EQ(view.sas, size_t{kTunnels} * 2) << "no SA lost";
  for (uint32_t t = 0; t < kTunnels; ++t)
    ASSERT_EQ(view.path_of_tunnel[t], int64_t(state_->published[t].load())) << "tunnel " << t << ": stale path";
  stop_dataplane();
}

}  // namespace

int main(int argc, char** argv) {
  self_binary = std::filesystem::canonical("/proc/self/exe").string();
  if (argc > 1 && std::string(argv[1]) == "--control") return control_main(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i + 1 < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--dataplane") dataplane_binary = argv[++i];
    else if (arg == "--pcapgen") pcapgen_binary = argv[++i];
  }
  if (dataplane_binary.empty() || pcapgen_binary.empty()) {
    std::fprintf(stderr, "usage: %s --dataplane PATH --pcapgen PATH\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  return RUN_ALL_TESTS();
}
