// RegionObserver: a read-only view of a data plane's region, for tools that
// must not become its control plane: `segwctl-dp wait-ready` and `dump`
// (the SA inventory and counters are readable without messages), and for
// clear errors before attaching ("no region", "a daemon is attached").
// Maps the file PROT_READ and takes no side lock: any number of observers,
// next to the one control plane, change nothing in the region.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/channel/region.h"
#include "shared/result.h"

namespace segw::cp::dp_link {

// Where Region::attach looks for region `name`: `directory` when given, else
// /dev/hugepages (when hugetlbfs is mounted there) then /dev/shm.
std::vector<std::string> region_directories(const std::string& directory);

// "no segw region 'segw' in /dev/hugepages or /dev/shm: is segw-dataplane
// running with a [channel] section?"
std::string no_region_message(std::string_view name, const std::string& directory);

class RegionObserver {
 public:
  // Maps region `name` read-only and validates its header (magic, layout
  // version, sizes). Errors: no such region (no_region_message), not a
  // segw region, another layout version, truncated.
  static shared::Result<RegionObserver> open(std::string_view name,
                                             const std::string& directory = {});

  RegionObserver(RegionObserver&& other) noexcept;
  RegionObserver& operator=(RegionObserver&& other) noexcept;
  RegionObserver(const RegionObserver&) = delete;
  RegionObserver& operator=(const RegionObserver&) = delete;
  ~RegionObserver();

  const std::string& path() const { return path_; }
  const shared::channel::RegionHeader& header() const { return *header_; }
  // The whole mapping, for layouts found through the header (inventory).
  const std::byte* base() const { return static_cast<const std::byte*>(base_); }
  uint64_t mapped_bytes() const { return mapped_bytes_; }

  shared::channel::PeerStatus data_plane() const;
  shared::channel::PeerStatus control_plane() const;
  // Heartbeat within `timeout` of now (region.h's rule for peer_alive).
  bool data_plane_alive(std::chrono::nanoseconds timeout) const;
  // True when some process holds the control-plane side lock right now
  // (the kernel's word, not a heartbeat's).
  bool control_plane_attached() const;
  // True when the name no longer refers to the mapped file (the data plane
  // restarted or went away).
  bool superseded() const;

 private:
  RegionObserver() = default;
  void close_now();

  std::string path_;
  int fd_ = -1;
  void* base_ = nullptr;
  uint64_t mapped_bytes_ = 0;
  const shared::channel::RegionHeader* header_ = nullptr;
};

}  // namespace segw::cp::dp_link
