// Reading a pcap file into memory for segw-trafficgen (libpcap, offline).
#include "tools/trafficgen/pcap_source.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace segw::trafficgen {

using shared::make_error;

namespace {

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

}  // namespace

shared::Result<PcapSource> PcapSource::load(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, PcapCloser> handle(pcap_open_offline(path.c_str(), error));
  if (!handle) {
    // libpcap names the file itself when it cannot open it, not when the
    // contents are wrong ("unknown file format").
    std::string message = error;
    if (message.find(path) == std::string::npos) message = path + ": " + message;
    return make_error(std::move(message));
  }
  if (int link = pcap_datalink(handle.get()); link != DLT_EN10MB) {
    std::string message = path;
    message.append(": link type ").append(pcap_datalink_val_to_name(link) ? pcap_datalink_val_to_name(link) : "?");
    message.append(" (").append(std::to_string(link)).append("), expected EN10MB (Ethernet)");
    return make_error(std::move(message));
  }
  PcapSource source;
  pcap_pkthdr* header = nullptr;
  const u_char* bytes = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(handle.get(), &header, &bytes)) == 1) {
    size_t index = source.frames_.size() + 1;
    auto bad = [&](const char* what, uint32_t actual, uint32_t expected) {
      std::string message = path;
      message.append(": frame ").append(std::to_string(index)).append(": ").append(what);
      message.append(" (").append(std::to_string(actual)).append(" bytes, ");
      message.append(std::to_string(expected)).append(" expected)");
      return make_error(std::move(message));
    };
    if (header->caplen < header->len) return bad("truncated by the capture's snap length", header->caplen, header->len);
    if (header->caplen < kMinFrameLength) return bad("shorter than an Ethernet header", header->caplen, kMinFrameLength);
    if (header->caplen > kMaxFrameLength) return bad("longer than the largest frame sent", header->caplen, kMaxFrameLength);
    source.frames_.push_back({source.arena_.size(), header->caplen});
    source.arena_.insert(source.arena_.end(), bytes, bytes + header->caplen);
    source.max_length_ = std::max(source.max_length_, header->caplen);
  }
  if (rc == PCAP_ERROR) {
    std::string message = path;
    message.append(": ").append(pcap_geterr(handle.get()));
    return make_error(std::move(message));
  }
  if (source.frames_.empty()) {
    std::string message = path;
    message.append(": no packets in the capture");
    return make_error(std::move(message));
  }
  return source;
}

void PcapSource::rewrite_destination(const uint8_t mac[6]) {
  for (const Frame& f : frames_) std::memcpy(arena_.data() + f.offset, mac, 6);
}

}  // namespace segw::trafficgen
