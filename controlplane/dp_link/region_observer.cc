// Read-only region mapping: lookup, header validation, liveness queries.
#include "controlplane/dp_link/region_observer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace segw::cp::dp_link {

using shared::make_error;
using shared::Result;
namespace channel = shared::channel;

namespace {

// statfs f_type of hugetlbfs (linux/magic.h), as region.cc uses it.
constexpr int64_t kHugetlbfsMagic = 0x958458f6;

std::string errno_text(int error) { return std::system_category().message(error); }

bool is_hugetlbfs(const char* directory) {
  struct statfs info {};
  return statfs(directory, &info) == 0 && static_cast<int64_t>(info.f_type) == kHugetlbfsMagic;
}

channel::PeerStatus status_of(const channel::SideState& side) {
  return {side.generation.load(std::memory_order_acquire),
          side.heartbeat_ns.load(std::memory_order_acquire),
          side.pid.load(std::memory_order_relaxed)};
}

}  // namespace

std::vector<std::string> region_directories(const std::string& directory) {
  if (!directory.empty()) return {directory};
  std::vector<std::string> directories;
  if (is_hugetlbfs(channel::kHugepageDirectory)) directories.emplace_back(channel::kHugepageDirectory);
  directories.emplace_back(channel::kSharedMemoryDirectory);
  return directories;
}

std::string no_region_message(std::string_view name, const std::string& directory) {
  // Name both standard places even when hugetlbfs is not mounted: the
  // operator wants to know where a data plane would have put it.
  std::string where = directory.empty() ? std::string(channel::kHugepageDirectory) + " or " +
                                              channel::kSharedMemoryDirectory
                                        : directory;
  return "no segw region '" + std::string(name) + "' in " + where +
         ": is segw-dataplane running with a [channel] section?";
}

Result<RegionObserver> RegionObserver::open(std::string_view name, const std::string& directory) {
  if (name.empty() || name.find('/') != std::string_view::npos || name.front() == '.') {
    return make_error("invalid region name '" + std::string(name) + "'");
  }
  RegionObserver observer;
  for (const std::string& candidate : region_directories(directory)) {
    std::string path = candidate + "/" + std::string(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      observer.fd_ = fd;
      observer.path_ = path;
      break;
    }
    if (errno != ENOENT) return make_error("cannot open " + path + ": " + errno_text(errno));
  }
  if (observer.fd_ < 0) return make_error(no_region_message(name, directory));

  struct stat file {};
  if (fstat(observer.fd_, &file) != 0) {
    return make_error("cannot stat " + observer.path_ + ": " + errno_text(errno));
  }
  uint64_t file_bytes = uint64_t(file.st_size);
  if (file_bytes < sizeof(channel::RegionHeader)) {
    return make_error(observer.path_ + " is truncated: " + std::to_string(file_bytes) +
                      " bytes, a region header needs " +
                      std::to_string(sizeof(channel::RegionHeader)));
  }
  // The whole file: hugetlbfs refuses mappings of less than a huge page.
  void* base = mmap(nullptr, file_bytes, PROT_READ, MAP_SHARED, observer.fd_, 0);
  if (base == MAP_FAILED) {
    return make_error("cannot map " + observer.path_ + ": " + errno_text(errno));
  }
  observer.base_ = base;
  observer.mapped_bytes_ = file_bytes;
  const auto* header = static_cast<const channel::RegionHeader*>(base);
  // acquire: pairs with the creator's release store of the magic, after
  // which the rest of the header is complete.
  if (header->magic.load(std::memory_order_acquire) != channel::kRegionMagic) {
    return make_error(observer.path_ + " is not a segw region (bad magic)");
  }
  if (header->layout_version != channel::kLayoutVersion) {
    return make_error(observer.path_ + ": layout version " +
                      std::to_string(header->layout_version) + ", expected " +
                      std::to_string(channel::kLayoutVersion) +
                      " (segw-dataplane and segwctl-dp built from different sources)");
  }
  if (header->header_bytes != sizeof(channel::RegionHeader) ||
      header->region_bytes > file_bytes) {
    return make_error(observer.path_ + " is truncated or of another build (header " +
                      std::to_string(header->header_bytes) + " bytes, lays out " +
                      std::to_string(header->region_bytes) + " of " +
                      std::to_string(file_bytes) + ")");
  }
  observer.header_ = header;
  return observer;
}

RegionObserver::RegionObserver(RegionObserver&& other) noexcept { *this = std::move(other); }

RegionObserver& RegionObserver::operator=(RegionObserver&& other) noexcept {
  if (this != &other) {
    close_now();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    base_ = std::exchange(other.base_, nullptr);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    header_ = std::exchange(other.header_, nullptr);
  }
  return *this;
}

RegionObserver::~RegionObserver() { close_now(); }

void RegionObserver::close_now() {
  if (base_ != nullptr) munmap(base_, mapped_bytes_);
  if (fd_ >= 0) ::close(fd_);
  base_ = nullptr;
  fd_ = -1;
  header_ = nullptr;
}

channel::PeerStatus RegionObserver::data_plane() const { return status_of(header_->data_plane); }
channel::PeerStatus RegionObserver::control_plane() const {
  return status_of(header_->control_plane);
}

bool RegionObserver::data_plane_alive(std::chrono::nanoseconds timeout) const {
  uint64_t beat = header_->data_plane.heartbeat_ns.load(std::memory_order_acquire);
  if (beat == 0) return false;
  uint64_t now = channel::Region::monotonic_now_ns();
  return beat >= now || now - beat <= static_cast<uint64_t>(timeout.count());
}

bool RegionObserver::control_plane_attached() const {
  // Byte 1 is the control plane's side lock (region.cc). F_OFD_GETLK
  // reports a conflicting lock without taking one.
  struct flock lock {};
  // A read lock is what a read-only descriptor may ask about; the control
  // plane's write lock conflicts with it, so GETLK reports the holder.
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 1;
  lock.l_len = 1;
  return fcntl(fd_, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
}

bool RegionObserver::superseded() const {
  struct stat by_name {};
  if (::stat(path_.c_str(), &by_name) != 0) return true;
  struct stat mapped {};
  if (fstat(fd_, &mapped) != 0) return true;
  return by_name.st_dev != mapped.st_dev || by_name.st_ino != mapped.st_ino;
}

}  // namespace segw::cp::dp_link
