// The frames segw-trafficgen sends: a pcap file read once into one
// contiguous arena, optionally with the Ethernet destination rewritten, so
// the send loop only copies bytes. Std-only apart from libpcap in the .cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/result.h"

namespace segw::trafficgen {

// Frames larger than this are refused when the file is read: the mbuf pool
// is sized for the largest frame, and jumbo frames beyond 9000 bytes of IP
// (segw-pcapgen's limit) plus Ethernet and ESP overhead are not ours.
inline constexpr uint32_t kMaxFrameLength = 9600;
// Ethernet header without VLAN tag: the least a frame must carry.
inline constexpr uint32_t kMinFrameLength = 14;

class PcapSource {
 public:
  struct Frame {
    uint64_t offset;  // into the arena
    uint32_t length;
  };

  // Reads every frame of the Ethernet (DLT_EN10MB) capture at `path`.
  // Errors (the caller treats all of them as bad input): the file cannot be
  // opened or is no pcap, another link type, a frame truncated by the
  // capture's snap length (caplen < len), a frame shorter than an Ethernet
  // header or longer than kMaxFrameLength, no frame at all. Each message
  // names the file and, for a bad frame, its 1-based index.
  [[nodiscard]] static shared::Result<PcapSource> load(const std::string& path);

  // Writes `mac` over the destination address of every frame (setup only).
  void rewrite_destination(const uint8_t mac[6]);

  size_t size() const { return frames_.size(); }
  const Frame& frame(size_t i) const { return frames_[i]; }
  const uint8_t* data(const Frame& f) const { return arena_.data() + f.offset; }
  uint32_t max_length() const { return max_length_; }
  uint64_t total_bytes() const { return arena_.size(); }

 private:
  std::vector<uint8_t> arena_;
  std::vector<Frame> frames_;
  uint32_t max_length_ = 0;
};

}  // namespace segw::trafficgen
