// The shared-memory region: choosing the backing, building and publishing
// it, validating what an attacher maps, side locks, generations, heartbeats.
#include "shared/channel/region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <utility>
#include <vector>

namespace segw::shared::channel {

namespace {

// statfs f_type of hugetlbfs (linux/magic.h, not included to keep to libc).
constexpr int64_t kHugetlbfsMagic = 0x958458f6;
constexpr size_t kMaxNameLength = 200;

std::string errno_text(int error) { return std::system_category().message(error); }

std::string hex(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof(text), "0x%016llx", static_cast<unsigned long long>(value));
  return text;
}

Status validate_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return make_error("region name '" + std::string(name) + "' must be 1 to " +
                      std::to_string(kMaxNameLength) + " characters");
  }
  // Leading '.' is reserved for the temporary names create() builds under.
  if (name.front() == '.') {
    return make_error("region name '" + std::string(name) + "' must not start with '.'");
  }
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-';
    if (!allowed) {
      return make_error("region name '" + std::string(name) +
                        "' may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::success();
}

bool is_hugetlbfs(const std::string& directory) {
  struct statfs info {};
  return statfs(directory.c_str(), &info) == 0 &&
         static_cast<int64_t>(info.f_type) == kHugetlbfsMagic;
}

// Where attach() and remove() look, in order. The hugepage directory is
// skipped when nothing is mounted there (it would be plain /dev).
std::vector<std::string> lookup_directories(const std::string& override_directory) {
  if (!override_directory.empty()) return {override_directory};
  std::vector<std::string> directories;
  if (is_hugetlbfs(kHugepageDirectory)) directories.emplace_back(kHugepageDirectory);
  directories.emplace_back(kSharedMemoryDirectory);
  return directories;
}

std::string joined(const std::vector<std::string>& directories) {
  std::string text;
  for (const std::string& directory : directories) {
    if (!text.empty()) text += " or ";
    text += directory;
  }
  return text;
}

// Lock byte per side: an open-file-description lock is per open(), not per
// process (two Regions in one process conflict too), and dies with the
// process, so a crashed side never blocks its successor.
off_t lock_offset(RegionSide side) { return side == RegionSide::kDataPlane ? 0 : 1; }

// 0 on success, else errno (EAGAIN/EACCES: held by someone else).
int lock_side(int fd, RegionSide side) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = lock_offset(side);
  lock.l_len = 1;
  return fcntl(fd, F_OFD_SETLK, &lock) == 0 ? 0 : errno;
}

bool side_locked_by_other(int fd, RegionSide side) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = lock_offset(side);
  lock.l_len = 1;
  return fcntl(fd, F_OFD_GETLK, &lock) == 0 && lock.l_type != F_UNLCK;
}

// A file and its mapping, released on every error path.
struct Mapping {
  int fd = -1;
  void* base = nullptr;
  uint64_t bytes = 0;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& other) noexcept
      : fd(std::exchange(other.fd, -1)),
        base(std::exchange(other.base, nullptr)),
        bytes(std::exchange(other.bytes, 0)) {}
  ~Mapping() {
    if (base != nullptr) munmap(base, bytes);
    if (fd >= 0) ::close(fd);
  }
};

struct RingPlan {
  std::array<RingDescriptor, kRingCount> rings{};
  InventoryDescriptor inventory{};
  uint64_t bytes = 0;  // header page, rings and inventory, before page rounding
};

// The largest inventory a region may hold (2^24 entries, about 3.9 GB):
// keeps offset arithmetic far from overflow for any value a header holds.
constexpr uint32_t kMaxInventoryCapacity = 1u << 24;

template <typename T>
Status plan_ring(RingPlan& plan, RingId id, uint32_t capacity, uint64_t& offset) {
  if (capacity == 0 || !std::has_single_bit(capacity) || capacity > kMaxRingCapacity) {
    return make_error(std::string(to_string(id)) + " ring capacity " + std::to_string(capacity) +
                      " is not a power of two between 1 and " + std::to_string(kMaxRingCapacity));
  }
  RingDescriptor& ring = plan.rings[static_cast<int>(id)];
  ring.offset = offset;
  ring.bytes = SpscRing<T>::bytes_for(capacity);
  ring.capacity = capacity;
  ring.slot_size = sizeof(T);
  offset += ring.bytes;  // bytes_for() keeps the next ring on its own lines
  return Status::success();
}

Result<RingPlan> plan_rings(const RingCapacities& capacities, uint32_t inventory_capacity) {
  RingPlan plan;
  uint64_t offset = kHeaderBytes;
  Status status = plan_ring<Command>(plan, RingId::kCommand, capacities.command, offset);
  if (status) status = plan_ring<Completion>(plan, RingId::kCompletion, capacities.completion, offset);
  if (status) status = plan_ring<Event>(plan, RingId::kEvent, capacities.event, offset);
  if (status) status = plan_ring<PuntPacket>(plan, RingId::kPunt, capacities.punt, offset);
  if (status) status = plan_ring<InjectPacket>(plan, RingId::kInject, capacities.inject, offset);
  if (!status) return make_error(status.error());
  if (inventory_capacity > kMaxInventoryCapacity) {
    return make_error("inventory capacity " + std::to_string(inventory_capacity) + " exceeds " +
                      std::to_string(kMaxInventoryCapacity));
  }
  if (inventory_capacity > 0) {
    plan.inventory.offset = offset;  // ring ends keep kFalseSharingRange alignment
    plan.inventory.bytes = sa_inventory_bytes(inventory_capacity);
    plan.inventory.capacity = inventory_capacity;
    plan.inventory.entry_bytes = sizeof(SaInventoryEntry);
    offset += (plan.inventory.bytes + kFalseSharingRange - 1) / kFalseSharingRange * kFalseSharingRange;
  }
  plan.bytes = offset;
  return plan;
}

// The generations a replaced region had, read with pread (hugetlbfs allows
// read() but mapping less than a huge page is refused); zeros when the file
// is not a region of this layout.
struct Generations {
  uint64_t data_plane = 0;
  uint64_t control_plane = 0;
};

Generations read_generations(int fd) {
  alignas(RegionHeader) unsigned char bytes[sizeof(RegionHeader)];
  if (pread(fd, bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) return {};
  auto field = [&](size_t offset) {
    uint64_t value;
    std::memcpy(&value, bytes + offset, sizeof(value));
    return value;
  };
  if (field(offsetof(RegionHeader, magic)) != kRegionMagic) return {};
  uint32_t version;
  std::memcpy(&version, bytes + offsetof(RegionHeader, layout_version), sizeof(version));
  if (version != kLayoutVersion) return {};
  return {field(offsetof(RegionHeader, data_plane) + offsetof(SideState, generation)),
          field(offsetof(RegionHeader, control_plane) + offsetof(SideState, generation))};
}

uint64_t random_instance_id() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

uint64_t realtime_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return uint64_t(now.tv_sec) * 1'000'000'000u + uint64_t(now.tv_nsec);
}

// Builds the region in a temporary file of `directory`: sized to whole
// pages of the backing, memory reserved (fallocate: a full hugetlbfs or
// tmpfs fails here, not with SIGBUS later), mapped and prefaulted, header and
// rings initialised, the data-plane lock taken. Not yet visible under the
// name.
Result<Mapping> build_region(const std::string& directory, const std::string& temp_path,
                             const RingPlan& plan, const RegionCreateOptions& options,
                             const Generations& previous) {
  struct statfs filesystem {};
  if (statfs(directory.c_str(), &filesystem) != 0) {
    return make_error(directory + ": " + errno_text(errno));
  }
  bool hugetlbfs = static_cast<int64_t>(filesystem.f_type) == kHugetlbfsMagic;
  uint64_t page = hugetlbfs ? uint64_t(filesystem.f_bsize) : uint64_t(sysconf(_SC_PAGESIZE));
  uint64_t bytes = (plan.bytes + page - 1) / page * page;

  Mapping mapping;
  // A leftover of an earlier process that had our pid and died mid-create.
  ::unlink(temp_path.c_str());
  mapping.fd = ::open(temp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, options.file_mode);
  if (mapping.fd < 0) return make_error("cannot create " + temp_path + ": " + errno_text(errno));
  struct Unlinker {  // the temporary name goes on any failure below
    const std::string& path;
    bool armed = true;
    ~Unlinker() {
      if (armed) ::unlink(path.c_str());
    }
  } unlinker{temp_path};

  // The umask must not widen or narrow what the caller asked for.
  if (fchmod(mapping.fd, options.file_mode) != 0) {
    return make_error("cannot set mode of " + temp_path + ": " + errno_text(errno));
  }
  if (ftruncate(mapping.fd, static_cast<off_t>(bytes)) != 0) {
    return make_error("cannot size " + temp_path + " to " + std::to_string(bytes) +
                      " bytes: " + errno_text(errno));
  }
  if (fallocate(mapping.fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    return make_error("no room for " + std::to_string(bytes) + " bytes in " + directory + ": " +
                      errno_text(errno));
  }
  // MAP_POPULATE: fault every page in now, not on the data plane's first
  // touch of a ring in the middle of a burst.
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mapping.fd, 0);
  if (base == MAP_FAILED) {
    return make_error("cannot map " + std::to_string(bytes) + " bytes of " + temp_path + ": " +
                      errno_text(errno));
  }
  mapping.base = base;
  mapping.bytes = bytes;

  auto* header = new (base) RegionHeader();
  header->layout_version = kLayoutVersion;
  header->header_bytes = sizeof(RegionHeader);
  header->region_bytes = plan.bytes;
  header->instance_id = random_instance_id();
  header->created_realtime_ns = realtime_now_ns();
  header->rings = plan.rings;
  header->inventory = plan.inventory;

  auto* memory = static_cast<std::byte*>(base);
  new (memory + kStatisticsOffset) DataPlaneStatistics();
  auto construct = [&]<typename T>(RingId id, T*) -> Status {
    const RingDescriptor& ring = plan.rings[static_cast<int>(id)];
    auto created = SpscRing<T>::create_at(memory + ring.offset, ring.bytes, ring.capacity);
    if (!created) return make_error(std::string(to_string(id)) + " ring: " + created.error());
    return Status::success();
  };
  Status status = construct(RingId::kCommand, static_cast<Command*>(nullptr));
  if (status) status = construct(RingId::kCompletion, static_cast<Completion*>(nullptr));
  if (status) status = construct(RingId::kEvent, static_cast<Event*>(nullptr));
  if (status) status = construct(RingId::kPunt, static_cast<PuntPacket*>(nullptr));
  if (status) status = construct(RingId::kInject, static_cast<InjectPacket*>(nullptr));
  if (!status) return make_error(status.error());
  if (plan.inventory.capacity > 0) {
    // The file is fresh (zero-filled), so every entry starts free; the header
    // is constructed to set the atomics' lifetimes in this process.
    auto* inventory = new (memory + plan.inventory.offset) SaInventoryHeader();
    inventory->capacity = plan.inventory.capacity;
    inventory->entry_bytes = sizeof(SaInventoryEntry);
    auto* entries = reinterpret_cast<SaInventoryEntry*>(inventory + 1);
    for (uint32_t i = 0; i < plan.inventory.capacity; ++i) new (entries + i) SaInventoryEntry();
  }

  // Generations never go back across a replacement (region.h).
  header->data_plane.generation.store(previous.data_plane + 1, std::memory_order_relaxed);
  header->control_plane.generation.store(previous.control_plane, std::memory_order_relaxed);
  header->data_plane.pid.store(uint64_t(getpid()), std::memory_order_relaxed);
  header->data_plane.heartbeat_ns.store(Region::monotonic_now_ns(), std::memory_order_relaxed);

  int lock_error = lock_side(mapping.fd, RegionSide::kDataPlane);
  if (lock_error != 0) {
    return make_error("cannot lock " + temp_path + ": " + errno_text(lock_error));
  }
  // Last: everything above is visible to whoever loads the magic with
  // acquire (the link/rename that publishes the file orders it too; the
  // magic also covers a reader of a file published some other way).
  header->magic.store(kRegionMagic, std::memory_order_release);
  unlinker.armed = false;
  return mapping;
}

template <typename T>
Result<SpscRing<T>*> open_ring(std::byte* base, const RegionHeader& header, RingId id,
                               uint64_t region_bytes) {
  const RingDescriptor& ring = header.rings[static_cast<int>(id)];
  std::string name = std::string(to_string(id)) + " ring";
  if (ring.slot_size != sizeof(T)) {
    return make_error(name + " slot size " + std::to_string(ring.slot_size) + ", expected " +
                      std::to_string(sizeof(T)) + " (message formats of another build)");
  }
  if (ring.capacity == 0 || !std::has_single_bit(ring.capacity) ||
      ring.capacity > kMaxRingCapacity) {
    return make_error(name + " capacity " + std::to_string(ring.capacity) +
                      " is not a power of two between 1 and " + std::to_string(kMaxRingCapacity));
  }
  if (ring.bytes != SpscRing<T>::bytes_for(ring.capacity)) {
    return make_error(name + " of " + std::to_string(ring.bytes) + " bytes, expected " +
                      std::to_string(SpscRing<T>::bytes_for(ring.capacity)));
  }
  if (ring.offset < kHeaderBytes || ring.offset % kFalseSharingRange != 0 ||
      ring.offset > region_bytes || ring.bytes > region_bytes - ring.offset) {
    return make_error(name + " at offset " + std::to_string(ring.offset) + " (+" +
                      std::to_string(ring.bytes) + " bytes) lies outside the region's " +
                      std::to_string(region_bytes) + " bytes");
  }
  auto opened = SpscRing<T>::open_at(base + ring.offset, ring.bytes, ring.capacity);
  if (!opened) return make_error(name + ": " + opened.error());
  return *opened;
}

}  // namespace

const char* to_string(RingId ring) {
  switch (ring) {
    case RingId::kCommand: return "command";
    case RingId::kCompletion: return "completion";
    case RingId::kEvent: return "event";
    case RingId::kPunt: return "punt";
    case RingId::kInject: return "inject";
  }
  return "unknown";
}

const char* to_string(RegionSide side) {
  return side == RegionSide::kDataPlane ? "data plane" : "control plane";
}

uint64_t Region::monotonic_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1'000'000'000u + uint64_t(now.tv_nsec);
}

Result<Region> Region::create(std::string_view name, const RegionCreateOptions& options) {
  if (Status valid = validate_name(name); !valid) return make_error(valid.error());
  auto plan = plan_rings(options.capacities, options.inventory_capacity);
  if (!plan) return make_error(plan.error());

  // One name, one region, whichever directory holds it: look in all of them.
  std::vector<std::string> directories = lookup_directories(options.directory);
  std::string existing_path;
  Generations previous;
  for (const std::string& directory : directories) {
    std::string path = directory + "/" + std::string(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      return make_error("cannot check for an existing region " + path + ": " + errno_text(errno));
    }
    bool in_use = side_locked_by_other(fd, RegionSide::kDataPlane);
    Generations found = read_generations(fd);
    ::close(fd);
    if (in_use) {
      return make_error("region " + path + " is in use by a running data plane");
    }
    if (!options.replace) {
      return make_error("region " + path +
                        " already exists (a data plane that did not clean up?): remove it, or "
                        "create with replace");
    }
    existing_path = path;
    previous = found;
    break;
  }

  // Where to build: the override, or the backing's directories in order.
  std::vector<std::string> candidates;
  if (!options.directory.empty()) {
    candidates.push_back(options.directory);
  } else {
    bool hugepages_mounted = is_hugetlbfs(kHugepageDirectory);
    if (options.backing == RegionBacking::kHugepages && !hugepages_mounted) {
      return make_error(std::string("hugepages requested but no hugetlbfs is mounted at ") +
                        kHugepageDirectory);
    }
    if (options.backing != RegionBacking::kSharedMemory && hugepages_mounted) {
      candidates.emplace_back(kHugepageDirectory);
    }
    if (options.backing != RegionBacking::kHugepages) {
      candidates.emplace_back(kSharedMemoryDirectory);
    }
  }

  std::string failures;
  for (const std::string& directory : candidates) {
    std::string final_path = directory + "/" + std::string(name);
    std::string temp_path =
        directory + "/." + std::string(name) + ".creating." + std::to_string(getpid());
    auto built = build_region(directory, temp_path, *plan, options, previous);
    if (!built) {
      failures += (failures.empty() ? "" : "; ") + built.error();
      continue;  // e.g. hugetlbfs out of pages: the next directory may do
    }
    // Publish atomically: rename() replaces the old region in one step;
    // link() fails if someone published the name since we looked.
    if (existing_path == final_path) {
      if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        int error = errno;
        ::unlink(temp_path.c_str());
        return make_error("cannot replace " + final_path + ": " + errno_text(error));
      }
    } else {
      if (::link(temp_path.c_str(), final_path.c_str()) != 0) {
        int error = errno;
        ::unlink(temp_path.c_str());
        if (error == EEXIST) {
          return make_error("region " + final_path + " already exists (created concurrently)");
        }
        return make_error("cannot publish " + final_path + ": " + errno_text(error));
      }
      ::unlink(temp_path.c_str());
      // The replaced region lived in the other directory: retire its name
      // so attach() cannot find the dead one first.
      if (!existing_path.empty()) ::unlink(existing_path.c_str());
    }

    Region region;
    region.side_ = RegionSide::kDataPlane;
    region.path_ = final_path;
    region.on_hugepages_ = is_hugetlbfs(directory);
    region.fd_ = std::exchange(built->fd, -1);
    region.base_ = std::exchange(built->base, nullptr);
    region.mapped_bytes_ = std::exchange(built->bytes, 0);
    region.header_ = std::launder(static_cast<RegionHeader*>(region.base_));
    if (Status rings = region.open_rings(); !rings) {
      region.unlink_on_close_ = true;  // never leave a broken region under the name
      return make_error("region " + final_path + " built inconsistently: " + rings.error());
    }
    return region;
  }
  return make_error("cannot create region '" + std::string(name) + "': " + failures);
}

Result<Region> Region::attach(std::string_view name, const RegionAttachOptions& options) {
  if (Status valid = validate_name(name); !valid) return make_error(valid.error());
  std::vector<std::string> directories = lookup_directories(options.directory);
  Mapping mapping;
  std::string path;
  for (const std::string& directory : directories) {
    std::string candidate = directory + "/" + std::string(name);
    int fd = ::open(candidate.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      mapping.fd = fd;
      path = candidate;
      break;
    }
    if (errno != ENOENT) return make_error("cannot open " + candidate + ": " + errno_text(errno));
  }
  if (mapping.fd < 0) {
    return make_error("no segw region named '" + std::string(name) + "' in " +
                      joined(directories) + " (is the data plane running?)");
  }

  struct stat file {};
  if (fstat(mapping.fd, &file) != 0) return make_error("cannot stat " + path + ": " + errno_text(errno));
  uint64_t file_bytes = uint64_t(file.st_size);
  if (file_bytes < sizeof(RegionHeader)) {
    return make_error(path + " is truncated: " + std::to_string(file_bytes) +
                      " bytes, a region header needs " + std::to_string(sizeof(RegionHeader)));
  }
  void* base = mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mapping.fd, 0);
  if (base == MAP_FAILED) {
    return make_error("cannot map " + std::to_string(file_bytes) + " bytes of " + path + ": " +
                      errno_text(errno));
  }
  mapping.base = base;
  mapping.bytes = file_bytes;

  auto* header = std::launder(static_cast<RegionHeader*>(base));
  uint64_t magic = header->magic.load(std::memory_order_acquire);  // pairs with create's release
  if (magic != kRegionMagic) {
    return make_error(path + " is not a segw region (magic " + hex(magic) + ", expected " +
                      hex(kRegionMagic) + ")");
  }
  if (header->layout_version != kLayoutVersion) {
    return make_error(path + ": layout version " + std::to_string(header->layout_version) +
                      ", expected " + std::to_string(kLayoutVersion) +
                      " (data plane and control plane built from different sources)");
  }
  if (header->header_bytes != sizeof(RegionHeader)) {
    return make_error(path + ": header of " + std::to_string(header->header_bytes) +
                      " bytes, expected " + std::to_string(sizeof(RegionHeader)));
  }
  if (header->region_bytes > file_bytes) {
    return make_error(path + " is truncated: its header lays out " +
                      std::to_string(header->region_bytes) + " bytes, the file has " +
                      std::to_string(file_bytes));
  }

  Region region;
  region.side_ = RegionSide::kControlPlane;
  region.path_ = path;
  region.on_hugepages_ = is_hugetlbfs(path.substr(0, path.rfind('/')));
  region.header_ = header;
  region.base_ = std::exchange(mapping.base, nullptr);
  region.mapped_bytes_ = std::exchange(mapping.bytes, 0);
  region.fd_ = std::exchange(mapping.fd, -1);
  if (Status rings = region.open_rings(); !rings) {
    region.header_ = nullptr;  // not ours to touch on close: nothing attached yet
    return make_error(path + ": " + rings.error());
  }
  int lock_error = lock_side(region.fd_, RegionSide::kControlPlane);
  if (lock_error != 0) {
    uint64_t holder = header->control_plane.pid.load(std::memory_order_relaxed);
    region.header_ = nullptr;
    if (lock_error == EAGAIN || lock_error == EACCES) {
      return make_error("another control plane (pid " + std::to_string(holder) +
                        ") is attached to " + path);
    }
    return make_error("cannot lock " + path + ": " + errno_text(lock_error));
  }
  SideState& own = header->control_plane;
  // acq_rel: a data plane that sees the new generation also sees the pid and
  // everything this process wrote before attaching.
  own.generation.fetch_add(1, std::memory_order_acq_rel);
  own.pid.store(uint64_t(getpid()), std::memory_order_relaxed);
  region.heartbeat();
  return region;
}

Status Region::remove(std::string_view name, const RegionAttachOptions& options) {
  if (Status valid = validate_name(name); !valid) return valid;
  std::vector<std::string> directories = lookup_directories(options.directory);
  for (const std::string& directory : directories) {
    std::string path = directory + "/" + std::string(name);
    if (::unlink(path.c_str()) == 0) return Status::success();
    if (errno != ENOENT) return make_error("cannot remove " + path + ": " + errno_text(errno));
  }
  return make_error("no segw region named '" + std::string(name) + "' in " + joined(directories));
}

Status Region::open_rings() {
  auto* base = static_cast<std::byte*>(base_);
  uint64_t bytes = header_->region_bytes;
  if (bytes < kHeaderBytes) {
    return make_error("region of " + std::to_string(bytes) + " bytes is smaller than its header");
  }
  auto command = open_ring<Command>(base, *header_, RingId::kCommand, bytes);
  if (!command) return make_error(command.error());
  auto completion = open_ring<Completion>(base, *header_, RingId::kCompletion, bytes);
  if (!completion) return make_error(completion.error());
  auto event = open_ring<Event>(base, *header_, RingId::kEvent, bytes);
  if (!event) return make_error(event.error());
  auto punt = open_ring<PuntPacket>(base, *header_, RingId::kPunt, bytes);
  if (!punt) return make_error(punt.error());
  auto inject = open_ring<InjectPacket>(base, *header_, RingId::kInject, bytes);
  if (!inject) return make_error(inject.error());
  // No two rings may share bytes: each would corrupt the other.
  for (int i = 0; i < kRingCount; ++i) {
    for (int j = i + 1; j < kRingCount; ++j) {
      const RingDescriptor& a = header_->rings[i];
      const RingDescriptor& b = header_->rings[j];
      if (a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes) {
        return make_error(std::string(to_string(RingId(i))) + " and " + to_string(RingId(j)) +
                          " rings overlap");
      }
    }
  }
  const InventoryDescriptor& inventory = header_->inventory;
  SaInventory inventory_view;
  if (inventory.capacity > 0) {
    if (inventory.capacity > kMaxInventoryCapacity) {
      return make_error("SA inventory capacity " + std::to_string(inventory.capacity) + " exceeds " +
                        std::to_string(kMaxInventoryCapacity));
    }
    if (inventory.entry_bytes != sizeof(SaInventoryEntry)) {
      return make_error("SA inventory entries of " + std::to_string(inventory.entry_bytes) +
                        " bytes, expected " + std::to_string(sizeof(SaInventoryEntry)) +
                        " (another build)");
    }
    if (inventory.bytes != sa_inventory_bytes(inventory.capacity)) {
      return make_error("SA inventory of " + std::to_string(inventory.bytes) + " bytes, expected " +
                        std::to_string(sa_inventory_bytes(inventory.capacity)));
    }
    if (inventory.offset < kHeaderBytes || inventory.offset % 8 != 0 || inventory.offset > bytes ||
        inventory.bytes > bytes - inventory.offset) {
      return make_error("SA inventory at offset " + std::to_string(inventory.offset) + " (+" +
                        std::to_string(inventory.bytes) + " bytes) lies outside the region's " +
                        std::to_string(bytes) + " bytes");
    }
    for (int i = 0; i < kRingCount; ++i) {
      const RingDescriptor& ring = header_->rings[i];
      if (inventory.offset < ring.offset + ring.bytes && ring.offset < inventory.offset + inventory.bytes) {
        return make_error(std::string("SA inventory overlaps the ") + to_string(RingId(i)) + " ring");
      }
    }
    auto* inventory_header = std::launder(reinterpret_cast<SaInventoryHeader*>(base + inventory.offset));
    if (inventory_header->capacity != inventory.capacity ||
        inventory_header->entry_bytes != sizeof(SaInventoryEntry)) {
      return make_error("SA inventory header disagrees with the region header");
    }
    inventory_view = SaInventory(inventory_header,
                                 std::launder(reinterpret_cast<SaInventoryEntry*>(inventory_header + 1)));
  }
  inventory_ = inventory_view;
  command_ring_ = *command;
  completion_ring_ = *completion;
  event_ring_ = *event;
  punt_ring_ = *punt;
  inject_ring_ = *inject;
  return Status::success();
}

DataPlaneStatistics& Region::statistics() {
  return *std::launder(reinterpret_cast<DataPlaneStatistics*>(static_cast<std::byte*>(base_) + kStatisticsOffset));
}

const DataPlaneStatistics& Region::statistics() const {
  return *std::launder(
      reinterpret_cast<const DataPlaneStatistics*>(static_cast<const std::byte*>(base_) + kStatisticsOffset));
}

Region::Region(Region&& other) noexcept { *this = std::move(other); }

Region& Region::operator=(Region&& other) noexcept {
  if (this != &other) {
    close_now();
    side_ = other.side_;
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    base_ = std::exchange(other.base_, nullptr);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    on_hugepages_ = other.on_hugepages_;
    unlink_on_close_ = std::exchange(other.unlink_on_close_, false);
    header_ = std::exchange(other.header_, nullptr);
    command_ring_ = std::exchange(other.command_ring_, nullptr);
    completion_ring_ = std::exchange(other.completion_ring_, nullptr);
    event_ring_ = std::exchange(other.event_ring_, nullptr);
    punt_ring_ = std::exchange(other.punt_ring_, nullptr);
    inject_ring_ = std::exchange(other.inject_ring_, nullptr);
    inventory_ = std::exchange(other.inventory_, SaInventory{});
  }
  return *this;
}

Region::~Region() { close_now(); }

void Region::close_now() {
  if (header_ != nullptr) {
    // A clean close: the peer sees "not attached" at once instead of waiting
    // for the heartbeat timeout.
    own_state().heartbeat_ns.store(0, std::memory_order_release);
    if (side_ == RegionSide::kDataPlane && command_ring_ != nullptr) {
      // Install commands never consumed still hold keys (messages.h).
      const RingDescriptor& ring = header_->rings[static_cast<int>(RingId::kCommand)];
      secure_zero(static_cast<std::byte*>(base_) + ring.offset + sizeof(SpscRing<Command>),
                  uint64_t(ring.capacity) * sizeof(Command));
    }
  }
  if (unlink_on_close_ && !path_.empty()) (void)unlink();
  if (base_ != nullptr) munmap(base_, mapped_bytes_);
  if (fd_ >= 0) ::close(fd_);  // drops this side's lock
  fd_ = -1;
  base_ = nullptr;
  header_ = nullptr;
  command_ring_ = nullptr;
  completion_ring_ = nullptr;
  event_ring_ = nullptr;
  punt_ring_ = nullptr;
  inject_ring_ = nullptr;
  inventory_ = SaInventory{};
  unlink_on_close_ = false;
}

SideState& Region::own_state() {
  return side_ == RegionSide::kDataPlane ? header_->data_plane : header_->control_plane;
}

const SideState& Region::peer_state() const {
  return side_ == RegionSide::kDataPlane ? header_->control_plane : header_->data_plane;
}

uint64_t Region::own_generation() const {
  const SideState& own =
      side_ == RegionSide::kDataPlane ? header_->data_plane : header_->control_plane;
  return own.generation.load(std::memory_order_acquire);
}

PeerStatus Region::peer() const {
  const SideState& peer = peer_state();
  return {peer.generation.load(std::memory_order_acquire),
          peer.heartbeat_ns.load(std::memory_order_acquire),
          peer.pid.load(std::memory_order_relaxed)};
}

void Region::heartbeat() { heartbeat_at(monotonic_now_ns()); }

void Region::heartbeat_at(uint64_t monotonic_ns) {
  // release: a peer that reads this heartbeat also sees the generation and
  // pid this side stored when it attached.
  own_state().heartbeat_ns.store(monotonic_ns, std::memory_order_release);
}

bool Region::peer_alive(std::chrono::nanoseconds timeout) const {
  return peer_alive_at(timeout, monotonic_now_ns());
}

bool Region::peer_alive_at(std::chrono::nanoseconds timeout, uint64_t now_ns) const {
  uint64_t beat = peer_state().heartbeat_ns.load(std::memory_order_acquire);
  if (beat == 0) return false;  // never attached, or closed cleanly
  // A beat "in the future" is one stored between our clock read and our
  // load: alive.
  if (beat >= now_ns) return true;
  return now_ns - beat <= static_cast<uint64_t>(timeout.count());
}

Result<bool> Region::superseded() const {
  struct stat by_name {};
  if (::stat(path_.c_str(), &by_name) != 0) {
    if (errno == ENOENT) return true;
    return make_error("cannot check " + path_ + ": " + errno_text(errno));
  }
  struct stat mapped {};
  if (fstat(fd_, &mapped) != 0) return make_error("cannot stat mapped " + path_ + ": " + errno_text(errno));
  return by_name.st_dev != mapped.st_dev || by_name.st_ino != mapped.st_ino;
}

Status Region::unlink() {
  auto gone = superseded();
  if (!gone) return make_error(gone.error());
  // Never remove a successor's region that took over the name.
  if (*gone) return make_error(path_ + " no longer refers to this region");
  if (::unlink(path_.c_str()) != 0) return make_error("cannot remove " + path_ + ": " + errno_text(errno));
  return Status::success();
}

}  // namespace segw::shared::channel
