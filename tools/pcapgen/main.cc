// segw-pcapgen: pcap files of Ethernet frames for the SAs of a segw
// configuration: valid ESP as the peers send it (inbound), or plain IP as the
// core sends it (outbound). Input for the pipeline benchmark, pktgen replay
// and the demo. Command line: Boost.Program_options; EAL arguments after "--".
#include <pcap/pcap.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "shared/config_file.h"
#include "shared/static_sa.h"
#include "tools/pcapgen/packet_builder.h"
#include "tools/pcapgen/peer_encryptor.h"

namespace po = boost::program_options;
using segw::shared::SaDescriptor;
using segw::shared::SaDirection;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

const char kDefaultEal[] = "-l 0 --no-huge -m 512 --no-shconf --log-level=error";

struct Options {
  std::string config_path;
  std::string direction;
  std::string output_path;
  uint32_t size = 512;
  uint64_t packets = 0;  // 0: one per SA
  std::string destination_mac = "02:00:00:00:00:01";
  std::string source_mac = "02:00:00:00:00:02";
  std::vector<std::string> sa_names;
  std::vector<std::string> eal_arguments;
};

// Writes frames in file order, with timestamps 1 us apart (tcpreplay and
// pktgen ignore them when told to send at a fixed rate).
class PcapWriter {
 public:
  bool open(const std::string& path) {
    handle_ = pcap_open_dead(DLT_EN10MB, 65535);
    if (!handle_) return false;
    dumper_ = pcap_dump_open(handle_, path.c_str());
    if (!dumper_) {
      error_ = pcap_geterr(handle_);
      return false;
    }
    // Large stdio buffer: a million frames are written in one go.
    setvbuf(pcap_dump_file(dumper_), nullptr, _IOFBF, 1 << 22);
    start_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
    return true;
  }
  void write(const uint8_t* frame, uint32_t length) {
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<time_t>(start_ + written_ / 1000000);
    header.ts.tv_usec = static_cast<suseconds_t>(written_ % 1000000);
    header.caplen = length;
    header.len = length;
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, frame);
    ++written_;
    bytes_ += length;
    min_frame_ = std::min(min_frame_, length);
    max_frame_ = std::max(max_frame_, length);
  }
  bool close() {
    bool ok = true;
    if (dumper_) {
      ok = pcap_dump_flush(dumper_) == 0 && !ferror(pcap_dump_file(dumper_));
      pcap_dump_close(dumper_);
    }
    if (handle_) pcap_close(handle_);
    dumper_ = nullptr;
    handle_ = nullptr;
    return ok;
  }
  ~PcapWriter() { close(); }
  const std::string& error() const { return error_; }
  uint64_t written() const { return written_; }
  uint64_t bytes() const { return bytes_; }
  uint32_t min_frame() const { return written_ ? min_frame_ : 0; }
  uint32_t max_frame() const { return max_frame_; }

 private:
  pcap_t* handle_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::string error_;
  int64_t start_ = 0;
  uint64_t written_ = 0;
  uint64_t bytes_ = 0;
  uint32_t min_frame_ = UINT32_MAX;
  uint32_t max_frame_ = 0;
};

// Visits every SA of the chosen direction (and names), in configuration
// order, expanding `count` sections lazily (a million SAs are never held).
template <typename Visit>
bool for_each_sa(const segw::shared::StaticSaSet& set, SaDirection direction, const std::set<std::string>& names,
                 Visit&& visit) {
  for (const auto& t : set.templates) {
    if (t.base.direction != direction) continue;
    if (!names.empty() && !names.count(std::string(t.base.name_view()))) continue;
    for (uint32_t i = 0; i < t.count; ++i) {
      SaDescriptor sa = t.expand(i);
      bool go_on = visit(sa);
      segw::shared::secure_zero(sa);
      if (!go_on) return false;
    }
  }
  return true;
}

std::string where(const SaDescriptor& sa) {
  char spi[16];
  std::snprintf(spi, sizeof(spi), "0x%08x", sa.spi);
  return "[sa " + std::string(sa.name_view()) + "] (SPI " + spi + ")";
}

// Plain packets toward each outbound SA's first remote address, round robin.
int write_outbound(const Options& o, const segw::shared::StaticSaSet& set, const std::set<std::string>& names,
                   const uint8_t dst_mac[6], const uint8_t src_mac[6], PcapWriter& out) {
  struct Flow {
    segw::pcapgen::UdpEndpoints endpoints;
  };
  std::vector<Flow> flows;
  bool ok = for_each_sa(set, SaDirection::kOutbound, names, [&](const SaDescriptor& sa) {
    auto addresses = segw::pcapgen::inner_addresses(sa);
    if (!addresses) {
      std::fprintf(stderr, "segw-pcapgen: %s: %s\n", where(sa).c_str(), addresses.error().c_str());
      return false;
    }
    flows.push_back({{addresses->local, addresses->remote, segw::pcapgen::kCoreSidePort,
                      segw::pcapgen::kPeerSidePort}});
    return true;
  });
  if (!ok) return kExitUsage;
  if (flows.empty()) {
    std::fprintf(stderr, "segw-pcapgen: no outbound SAs in %s%s\n", o.config_path.c_str(),
                 names.empty() ? "" : " with the given --sa names");
    return kExitUsage;
  }
  uint64_t packets = o.packets ? o.packets : flows.size();
  std::vector<uint8_t> frame(segw::pcapgen::kEthernetHeaderLength + segw::pcapgen::kMaxInnerPacket);
  for (uint64_t p = 0; p < packets; ++p) {
    const Flow& f = flows[p % flows.size()];
    bool ipv6 = f.endpoints.destination.is_ipv6();
    segw::pcapgen::write_ethernet_header(frame.data(), dst_mac, src_mac, ipv6);
    auto status = segw::pcapgen::build_udp_packet(f.endpoints, o.size, static_cast<uint16_t>(p),
                                                  frame.data() + segw::pcapgen::kEthernetHeaderLength);
    if (!status) {
      std::fprintf(stderr, "segw-pcapgen: outbound SA #%lu: %s\n", static_cast<unsigned long>(p % flows.size()),
                   status.error().c_str());
      return kExitUsage;
    }
    out.write(frame.data(), segw::pcapgen::kEthernetHeaderLength + o.size);
  }
  return kExitOk;
}

// ESP as the peers send it, round robin over the inbound SAs: packet p goes
// to SA p % S with that SA's next sequence number.
int write_inbound(const Options& o, const segw::shared::StaticSaSet& set, const std::set<std::string>& names,
                  const uint8_t dst_mac[6], const uint8_t src_mac[6], PcapWriter& out) {
  uint64_t sa_total = 0;
  for_each_sa(set, SaDirection::kInbound, names, [&](const SaDescriptor&) {
    ++sa_total;
    return true;
  });
  if (sa_total == 0) {
    std::fprintf(stderr, "segw-pcapgen: no inbound SAs in %s%s\n", o.config_path.c_str(),
                 names.empty() ? "" : " with the given --sa names");
    return kExitUsage;
  }
  uint64_t packets = o.packets ? o.packets : sa_total;

  std::vector<std::string> eal = {"segw-pcapgen"};
  std::vector<std::string> given = o.eal_arguments;
  if (given.empty()) {
    std::string defaults = kDefaultEal;
    size_t start = 0;
    while (start < defaults.size()) {
      size_t space = defaults.find(' ', start);
      if (space == std::string::npos) space = defaults.size();
      given.push_back(defaults.substr(start, space - start));
      start = space + 1;
    }
  }
  auto has = [&](std::initializer_list<const char*> keys) {
    for (const auto& a : given)
      for (const char* k : keys)
        if (a == k || a.rfind(std::string(k) + "=", 0) == 0 || (a.size() > 2 && a.rfind(k, 0) == 0 && k[1] != '-'))
          return true;
    return false;
  };
  eal.insert(eal.end(), given.begin(), given.end());
  if (!has({"-l", "-c", "--lcores"})) eal.push_back("-l0");
  if (!has({"-a", "--allow", "-b", "--block", "--no-pci"})) eal.push_back("--no-pci");
  std::vector<char*> argv;
  for (auto& a : eal) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    std::fprintf(stderr, "segw-pcapgen: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return kExitRuntime;
  }
  int code = kExitOk;
  {
    segw::pcapgen::PeerEncryptor::Options encryptor_options;
    std::memcpy(encryptor_options.destination_mac, dst_mac, 6);
    std::memcpy(encryptor_options.source_mac, src_mac, 6);
    auto encryptor = segw::pcapgen::PeerEncryptor::create(encryptor_options);
    if (!encryptor) {
      std::fprintf(stderr, "segw-pcapgen: %s\n", encryptor.error().c_str());
      rte_eal_cleanup();
      return kExitRuntime;
    }
    // SA s sends packets_for(s) packets. With at most one each, frames go
    // to the file as they are made; otherwise each SA's frames are kept
    // (one fixed-size frame per packet) and interleaved at the end.
    uint64_t per_sa = packets / sa_total, extra = packets % sa_total;
    bool streaming = per_sa == 0 || (per_sa == 1 && extra == 0);
    struct Stored {
      uint64_t offset;
      uint32_t frame_length;
      uint32_t count;
    };
    std::vector<Stored> stored;
    std::vector<uint8_t> arena;
    std::vector<uint8_t> inner(segw::pcapgen::kMaxInnerPacket);
    uint64_t s = 0;
    for_each_sa(set, SaDirection::kInbound, names, [&](const SaDescriptor& sa) {
      uint64_t count = per_sa + (s < extra ? 1 : 0);
      if (count == 0) return false;  // SAs from here on get nothing
      ++s;
      auto addresses = segw::pcapgen::inner_addresses(sa);
      if (!addresses) {
        std::fprintf(stderr, "segw-pcapgen: %s: %s\n", where(sa).c_str(), addresses.error().c_str());
        code = kExitUsage;
        return false;
      }
      segw::pcapgen::UdpEndpoints endpoints{addresses->remote, addresses->local, segw::pcapgen::kPeerSidePort,
                                            segw::pcapgen::kCoreSidePort};
      auto built = segw::pcapgen::build_udp_packet(endpoints, o.size, static_cast<uint16_t>(s), inner.data());
      if (!built) {
        std::fprintf(stderr, "segw-pcapgen: %s: %s\n", where(sa).c_str(), built.error().c_str());
        code = kExitUsage;
        return false;
      }
      Stored entry{arena.size(), 0, 0};
      auto status = (*encryptor)->encrypt(sa, inner.data(), o.size, count, [&](const uint8_t* frame, uint32_t length) {
        if (streaming) {
          out.write(frame, length);
          return;
        }
        entry.frame_length = length;
        ++entry.count;
        arena.insert(arena.end(), frame, frame + length);
      });
      if (!status) {
        std::fprintf(stderr, "segw-pcapgen: %s: %s\n", where(sa).c_str(), status.error().c_str());
        code = kExitRuntime;
        return false;
      }
      if (!streaming) stored.push_back(entry);
      return true;
    });
    if (code == kExitOk && !streaming) {
      for (uint64_t round = 0; round <= per_sa; ++round)
        for (const auto& e : stored)
          if (round < e.count) out.write(arena.data() + e.offset + round * e.frame_length, e.frame_length);
    }
  }
  rte_eal_cleanup();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  int split = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      split = i;
      break;
    }
  for (int i = split + 1; i < argc; ++i) o.eal_arguments.emplace_back(argv[i]);

  po::options_description described(
      "segw-pcapgen: writes a pcap of Ethernet frames for the SAs of a segw configuration, for\n"
      "pktgen/tcpreplay replay, the pipeline benchmark (bench/pipeline) and the demo.\n\n"
      "Usage: segw-pcapgen --config FILE --direction inbound|outbound --output FILE [options]\n"
      "                    [-- EAL arguments]\n\n"
      "  inbound:  valid ESP as each inbound SA's peer sends it to the gateway: ESP in UDP or raw\n"
      "            ESP as the SA's path says; outer source = the path's remote address:port,\n"
      "            outer destination = its local address:port; inner UDP from the first address\n"
      "            of the SA's remote selector to the first address of its local selector (same\n"
      "            family). Encrypted by segw's own outbound code (SaTables + esp_outbound_burst)\n"
      "            with the SA mirrored to the peer's side; each SA's packets carry sequence\n"
      "            numbers 1, 2, 3, ...\n"
      "  outbound: plain IPv4/IPv6 UDP as the core sends it, from the first address of each\n"
      "            outbound SA's local selector to the first address of its remote selector.\n\n"
      "Packets go round robin over the SAs (packet p to SA p % S), in configuration order;\n"
      "1,000,000 packets over 1,000,000 SAs is one each. Inner UDP ports: peer side 40000,\n"
      "core side 5001. Only [sa] sections are read (configs/README.md); other sections are\n"
      "ignored, so a segw-dataplane configuration works as it is.\n\n"
      "EAL arguments (after --, inbound only: encryption runs inside an EAL without ports)\n"
      "default to \"-l 0 --no-huge -m 512 --no-shconf --log-level=error\"; --no-pci and -l0 are\n"
      "added when absent. EAL needs about 200 MB (two FIB tables) plus a small mbuf pool.\n\n"
      "Exit status: 0 written, 1 runtime failure (EAL, memory, file), 2 bad configuration or\n"
      "command line.\n\nOptions");
  described.add_options()
      ("help,h", "print this help and exit")
      ("config,c", po::value<std::string>(&o.config_path), "segw configuration with [sa NAME] sections (required)")
      ("direction,d", po::value<std::string>(&o.direction),
       "inbound (ESP toward the gateway's access port) or outbound (plain IP toward its core port) (required)")
      ("output,o", po::value<std::string>(&o.output_path), "pcap file to write (required)")
      ("size,s", po::value<uint32_t>(&o.size)->default_value(512),
       "inner IP packet size in bytes, IP header included (IPv4 >= 28, IPv6 >= 48, <= 9000); the "
       "frame is 14 bytes more (outbound) or adds the ESP, outer IP and UDP overhead (inbound)")
      ("packets,n", po::value<uint64_t>(&o.packets)->default_value(0),
       "total packets, spread round robin over the SAs (0: one per SA)")
      ("dst-mac", po::value<std::string>(&o.destination_mac)->default_value(o.destination_mac),
       "Ethernet destination: the gateway port the frames are sent to (segw runs its ports "
       "promiscuous, so any address works on a direct cable)")
      ("src-mac", po::value<std::string>(&o.source_mac)->default_value(o.source_mac), "Ethernet source")
      ("sa", po::value<std::vector<std::string>>(&o.sa_names)->composing(),
       "only the [sa NAME] sections named (repeatable; a section with count = N counts as all its SAs)");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(split, argv).options(described).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "segw-pcapgen: %s (see --help)\n", e.what());
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << described << "\n";
    return kExitOk;
  }
  for (const char* required : {"config", "direction", "output"})
    if (!vm.count(required)) {
      std::fprintf(stderr, "segw-pcapgen: --%s is required (see --help)\n", required);
      return kExitUsage;
    }
  if (o.direction != "inbound" && o.direction != "outbound") {
    std::fprintf(stderr, "segw-pcapgen: --direction must be inbound or outbound, got '%s'\n", o.direction.c_str());
    return kExitUsage;
  }
  uint8_t dst_mac[6], src_mac[6];
  if (!segw::pcapgen::parse_mac(o.destination_mac, dst_mac) || !segw::pcapgen::parse_mac(o.source_mac, src_mac)) {
    std::fprintf(stderr, "segw-pcapgen: --dst-mac/--src-mac: expected a MAC address like 02:00:00:00:00:01\n");
    return kExitUsage;
  }
  if (o.size < segw::pcapgen::kMinIpv4UdpPacket || o.size > segw::pcapgen::kMaxInnerPacket) {
    std::fprintf(stderr, "segw-pcapgen: --size %u outside [%u, %u]\n", o.size, segw::pcapgen::kMinIpv4UdpPacket,
                 segw::pcapgen::kMaxInnerPacket);
    return kExitUsage;
  }
  auto file = segw::shared::ConfigFile::load(o.config_path);
  if (!file) {
    std::fprintf(stderr, "segw-pcapgen: %s\n", file.error().c_str());
    return kExitUsage;
  }
  auto set = segw::shared::parse_static_sas(*file);
  if (!set) {
    std::fprintf(stderr, "segw-pcapgen: %s\n", set.error().c_str());
    return kExitUsage;
  }
  std::set<std::string> names(o.sa_names.begin(), o.sa_names.end());
  for (const auto& name : names) {
    bool found = false;
    for (const auto& t : set->templates) found = found || t.base.name_view() == name;
    if (!found) {
      std::fprintf(stderr, "segw-pcapgen: --sa %s: no such [sa] section in %s\n", name.c_str(), o.config_path.c_str());
      return kExitUsage;
    }
  }

  auto started = std::chrono::steady_clock::now();
  PcapWriter out;
  if (!out.open(o.output_path)) {
    std::fprintf(stderr, "segw-pcapgen: cannot write %s: %s\n", o.output_path.c_str(), out.error().c_str());
    return kExitRuntime;
  }
  int code = o.direction == "inbound" ? write_inbound(o, *set, names, dst_mac, src_mac, out)
                                      : write_outbound(o, *set, names, dst_mac, src_mac, out);
  if (!out.close() && code == kExitOk) {
    std::fprintf(stderr, "segw-pcapgen: writing %s failed\n", o.output_path.c_str());
    code = kExitRuntime;
  }
  if (code != kExitOk) {
    std::remove(o.output_path.c_str());
    return code;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("segw-pcapgen: %lu %s packets (inner %u bytes, frames %u..%u bytes, %.1f MB) written to %s in %.2f s\n",
              static_cast<unsigned long>(out.written()), o.direction == "inbound" ? "ESP" : "plain", o.size,
              out.min_frame(), out.max_frame(), out.bytes() / 1e6, o.output_path.c_str(), seconds);
  return kExitOk;
}
