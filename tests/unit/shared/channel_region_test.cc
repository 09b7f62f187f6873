// Unit tests for shared/channel/region: create/attach in a scratch
// directory, the two mappings sharing rings, every validation error of
// attach, name clashes and replacement, side locks, generations, heartbeats,
// a crashed data plane (fork + _exit), and the hugepage/shm backings.
#include "shared/channel/region.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <string>

#include "tests/unit/shared/channel_test_support.h"

namespace segw::shared::channel {
namespace {

using namespace std::chrono_literals;
using testing::ScratchDirectory;

RegionCreateOptions small_options(const ScratchDirectory& scratch) {
  RegionCreateOptions options;
  options.directory = scratch.path();
  options.capacities = {16, 16, 16, 4, 4};
  return options;
}

RegionAttachOptions attach_options(const ScratchDirectory& scratch) {
  return {scratch.path()};
}

::testing::AssertionResult error_contains(const std::string& error, const std::string& part) {
  if (error.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error '" << error << "' lacks '" << part << "'";
}

// Overwrites `value` at `offset` of the region file, as a stale or foreign
// writer would have left it.
template <typename T>
void poke(const std::string& path, size_t offset, T value) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, &value, sizeof(value), off_t(offset)), ssize_t(sizeof(value)));
  ::close(fd);
}

TEST(RegionTest, CreateAndAttachShareTheRingsAtDifferentAddresses) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();

  EXPECT_EQ(data_plane->side(), RegionSide::kDataPlane);
  EXPECT_EQ(control_plane->side(), RegionSide::kControlPlane);
  EXPECT_EQ(data_plane->path(), scratch.path() + "/segw-test");
  EXPECT_EQ(control_plane->path(), data_plane->path());
  EXPECT_NE(&data_plane->header(), &control_plane->header()) << "two mappings, two addresses";

  const RegionHeader& header = control_plane->header();
  EXPECT_EQ(header.magic.load(), kRegionMagic);
  EXPECT_EQ(header.layout_version, kLayoutVersion);
  EXPECT_EQ(header.header_bytes, sizeof(RegionHeader));
  EXPECT_LE(header.region_bytes, control_plane->mapped_bytes());
  EXPECT_EQ(header.rings[int(RingId::kCommand)].capacity, 16u);
  EXPECT_EQ(header.rings[int(RingId::kPunt)].capacity, 4u);
  EXPECT_EQ(header.rings[int(RingId::kCommand)].offset, kHeaderBytes);
  EXPECT_EQ(control_plane->command_ring().capacity(), 16u);
  EXPECT_EQ(control_plane->inject_ring().capacity(), 4u);

  struct stat file {};
  ASSERT_EQ(stat(data_plane->path().c_str(), &file), 0);
  EXPECT_EQ(file.st_mode & 0777, 0600u) << "commands carry keys: owner only";
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(scratch.path()),
                          std::filesystem::directory_iterator()),
            1);

  // Control -> data and data -> control, each through its own mapping.
  Command command = make_command(7, control_plane->own_generation(), BarrierPayload{});
  ASSERT_TRUE(control_plane->command_ring().try_push(command));
  Command received;
  ASSERT_TRUE(data_plane->command_ring().try_pop(received));
  EXPECT_EQ(received.request_id, 7u);
  EXPECT_EQ(received.control_generation, 1u);
  ASSERT_TRUE(data_plane->completion_ring().try_push(make_completion(received, CompletionCode::kOk)));
  Completion completion;
  ASSERT_TRUE(control_plane->completion_ring().try_pop(completion));
  EXPECT_EQ(completion.request_id, 7u);

  Event event;
  event.kind = EventKind::kSaIdle;
  ASSERT_TRUE(data_plane->event_ring().try_push(event));
  EXPECT_EQ(control_plane->event_ring().size(), 1u);
  ASSERT_TRUE(data_plane->punt_ring().try_push(PuntPacket{}));
  EXPECT_EQ(control_plane->punt_ring().size(), 1u);
  ASSERT_TRUE(control_plane->inject_ring().try_push(InjectPacket{}));
  EXPECT_EQ(data_plane->inject_ring().size(), 1u);
}

TEST(RegionTest, GenerationsCountAttachmentsAndSurviveReplacement) {
  ScratchDirectory scratch;
  {
    auto data_plane = Region::create("segw-test", small_options(scratch));
    ASSERT_TRUE(data_plane.ok()) << data_plane.error();
    EXPECT_EQ(data_plane->own_generation(), 1u);
    EXPECT_EQ(data_plane->peer().generation, 0u) << "no control plane yet";
    for (uint64_t expected = 1; expected <= 3; ++expected) {
      auto control_plane = Region::attach("segw-test", attach_options(scratch));
      ASSERT_TRUE(control_plane.ok()) << control_plane.error();
      EXPECT_EQ(control_plane->own_generation(), expected);
      EXPECT_EQ(data_plane->peer().generation, expected);
      EXPECT_EQ(data_plane->peer().pid, uint64_t(getpid()));
      EXPECT_EQ(control_plane->peer().generation, 1u);
    }
  }
  // The data plane restarts and replaces its region: neither generation
  // goes back, so the control plane can tell the restart from a hiccup.
  RegionCreateOptions options = small_options(scratch);
  options.replace = true;
  auto restarted = Region::create("segw-test", options);
  ASSERT_TRUE(restarted.ok()) << restarted.error();
  EXPECT_EQ(restarted->own_generation(), 2u);
  EXPECT_EQ(restarted->peer().generation, 3u);
  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();
  EXPECT_EQ(control_plane->own_generation(), 4u);
}

TEST(RegionTest, AnExistingNameIsAnErrorUnlessReplacing) {
  ScratchDirectory scratch;
  auto first = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(first.ok()) << first.error();
  uint64_t first_instance = first->header().instance_id;

  // Even with replace, a live data plane's region is not taken away.
  RegionCreateOptions replace = small_options(scratch);
  replace.replace = true;
  auto while_running = Region::create("segw-test", replace);
  ASSERT_FALSE(while_running.ok());
  EXPECT_TRUE(error_contains(while_running.error(), "in use by a running data plane"));

  first = make_error("closed");  // the data plane exits without removing its region
  auto again = Region::create("segw-test", small_options(scratch));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(error_contains(again.error(), "already exists"));
  EXPECT_TRUE(error_contains(again.error(), scratch.path() + "/segw-test"));

  auto replaced = Region::create("segw-test", replace);
  ASSERT_TRUE(replaced.ok()) << replaced.error();
  EXPECT_NE(replaced->header().instance_id, first_instance);
}

TEST(RegionTest, AttachFailsClearlyWhenThereIsNoRegion) {
  ScratchDirectory scratch;
  auto missing = Region::attach("segw-none", attach_options(scratch));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(error_contains(missing.error(), "no segw region named 'segw-none' in " + scratch.path()));
}

TEST(RegionTest, AttachRejectsAFileThatIsNotARegion) {
  ScratchDirectory scratch;
  {
    auto data_plane = Region::create("segw-test", small_options(scratch));
    ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  }
  poke<uint64_t>(scratch.path() + "/segw-test", offsetof(RegionHeader, magic), 0x1122334455667788);
  auto attached = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(attached.ok());
  EXPECT_TRUE(error_contains(attached.error(), "is not a segw region"));
  EXPECT_TRUE(error_contains(attached.error(), "0x1122334455667788"));
}

TEST(RegionTest, AttachRejectsAnotherLayoutVersion) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  poke<uint32_t>(data_plane->path(), offsetof(RegionHeader, layout_version), kLayoutVersion + 1);
  auto attached = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(attached.ok());
  EXPECT_TRUE(error_contains(attached.error(), "layout version " + std::to_string(kLayoutVersion + 1) + ", expected " + std::to_string(kLayoutVersion)));
}

TEST(RegionTest, AttachRejectsTruncatedFiles) {
  ScratchDirectory scratch;
  std::string path;
  {
    auto data_plane = Region::create("segw-test", small_options(scratch));
    ASSERT_TRUE(data_plane.ok()) << data_plane.error();
    path = data_plane->path();
  }
  // Cut inside the rings: the header is intact but promises more.
  ASSERT_EQ(truncate(path.c_str(), off_t(kHeaderBytes + 128)), 0);
  auto cut_rings = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(cut_rings.ok());
  EXPECT_TRUE(error_contains(cut_rings.error(), "is truncated: its header lays out"));
  // Cut inside the header.
  ASSERT_EQ(truncate(path.c_str(), 100), 0);
  auto cut_header = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(cut_header.ok());
  EXPECT_TRUE(error_contains(cut_header.error(), "is truncated: 100 bytes"));
  // Empty (a data plane that died between open and ftruncate).
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  auto empty = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(error_contains(empty.error(), "is truncated: 0 bytes"));
}

TEST(RegionTest, AttachRejectsARingTableThatDoesNotFit) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  size_t punt = offsetof(RegionHeader, rings) + sizeof(RingDescriptor) * int(RingId::kPunt);

  poke<uint32_t>(data_plane->path(), punt + offsetof(RingDescriptor, slot_size), 2000);
  auto wrong_slot = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(wrong_slot.ok());
  EXPECT_TRUE(error_contains(wrong_slot.error(), "punt ring slot size 2000, expected " +
                                                     std::to_string(sizeof(PuntPacket))));
  poke<uint32_t>(data_plane->path(), punt + offsetof(RingDescriptor, slot_size), sizeof(PuntPacket));

  poke<uint64_t>(data_plane->path(), punt + offsetof(RingDescriptor, offset), 1ull << 40);
  auto outside = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(outside.ok());
  EXPECT_TRUE(error_contains(outside.error(), "lies outside the region"));

  // Pointing the punt ring at the command ring's bytes.
  poke<uint64_t>(data_plane->path(), punt + offsetof(RingDescriptor, offset), kHeaderBytes);
  auto overlapping = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(overlapping.ok());
  EXPECT_TRUE(error_contains(overlapping.error(), "punt ring"));
}

TEST(RegionTest, OneControlPlaneAtATime) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  auto first = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(first.ok()) << first.error();
  auto second = Region::attach("segw-test", attach_options(scratch));
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(error_contains(second.error(), "another control plane (pid " +
                                                 std::to_string(getpid()) + ") is attached"));
  EXPECT_EQ(data_plane->peer().generation, 1u) << "a refused attach changes nothing";
  first = make_error("closed");
  auto third = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(third.ok()) << third.error();
  EXPECT_EQ(third->own_generation(), 2u);
}

TEST(RegionTest, HeartbeatsTellALivePeerFromAGoneOne) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  EXPECT_FALSE(data_plane->peer_alive(1h)) << "no control plane attached yet";
  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();
  EXPECT_TRUE(data_plane->peer_alive(10s)) << "attach beats once";
  EXPECT_TRUE(control_plane->peer_alive(10s)) << "create beats once";

  data_plane->heartbeat_at(1'000'000);
  EXPECT_TRUE(control_plane->peer_alive_at(100us, 1'050'000));
  EXPECT_TRUE(control_plane->peer_alive_at(100us, 1'100'000));
  EXPECT_FALSE(control_plane->peer_alive_at(100us, 1'100'001));
  EXPECT_TRUE(control_plane->peer_alive_at(100us, 900'000)) << "a beat after our clock read";
  EXPECT_EQ(control_plane->peer().heartbeat_ns, 1'000'000u);
  data_plane->heartbeat();
  EXPECT_TRUE(control_plane->peer_alive(1s));

  // A clean close is seen at once, whatever the timeout.
  control_plane = make_error("closed");
  EXPECT_FALSE(data_plane->peer_alive(1h));
  EXPECT_EQ(data_plane->peer().heartbeat_ns, 0u);
}

TEST(RegionTest, ACrashedDataPlaneLeavesAStaleHeartbeatAndCanBeReplaced) {
  ScratchDirectory scratch;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The data plane: create, beat, and die without any cleanup (kill -9).
    auto created = Region::create("segw-test", small_options(scratch));
    _exit(created.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();
  EXPECT_EQ(control_plane->peer().pid, uint64_t(child));
  EXPECT_NE(control_plane->peer().heartbeat_ns, 0u) << "nobody cleared it";
  uint64_t later = control_plane->peer().heartbeat_ns + 2'000'000'000ull;
  EXPECT_FALSE(control_plane->peer_alive_at(1s, later));
  EXPECT_EQ(control_plane->superseded().value(), false);

  // The kernel dropped the dead process's lock: a new data plane replaces
  // the region without being told "in use".
  RegionCreateOptions replace = small_options(scratch);
  replace.replace = true;
  auto restarted = Region::create("segw-test", replace);
  ASSERT_TRUE(restarted.ok()) << restarted.error();
  EXPECT_EQ(restarted->own_generation(), 2u);
  auto superseded = control_plane->superseded();
  ASSERT_TRUE(superseded.ok()) << superseded.error();
  EXPECT_TRUE(*superseded) << "the control plane learns to attach afresh";
  auto reattached = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(reattached.ok()) << reattached.error();
  EXPECT_EQ(reattached->peer().generation, 2u);
  EXPECT_EQ(reattached->own_generation(), 2u);
}

TEST(RegionTest, UnlinkOnlyRemovesItsOwnName) {
  ScratchDirectory scratch;
  std::string path;
  {
    auto data_plane = Region::create("segw-test", small_options(scratch));
    ASSERT_TRUE(data_plane.ok()) << data_plane.error();
    path = data_plane->path();
    data_plane->set_unlink_on_close(true);
  }
  EXPECT_FALSE(std::filesystem::exists(path));

  auto old_region = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(old_region.ok()) << old_region.error();
  ASSERT_TRUE(old_region->unlink().ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  auto newer = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(newer.ok()) << newer.error();
  Status refused = old_region->unlink();
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(error_contains(refused.error(), "no longer refers to this region"));
  old_region->set_unlink_on_close(true);
  old_region = make_error("closed");
  EXPECT_TRUE(std::filesystem::exists(path)) << "the newer region keeps its name";

  ASSERT_TRUE(Region::remove("segw-test", attach_options(scratch)).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  Status again = Region::remove("segw-test", attach_options(scratch));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(error_contains(again.error(), "no segw region named"));
}

TEST(RegionTest, DataPlaneCloseWipesUnconsumedCommands) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();
  SaDescriptor sa;
  sa.cipher_key.fill(0xc7);
  Command install = make_command(1, 1, InstallSaPayload{sa});
  ASSERT_TRUE(control_plane->command_ring().try_push(install));
  zeroise_keys(install);
  data_plane = make_error("closed");  // exits before consuming it

  const auto& ring = control_plane->header().rings[int(RingId::kCommand)];
  auto* bytes = reinterpret_cast<const uint8_t*>(&control_plane->header()) + ring.offset;
  std::array<uint8_t, 16> key_part;
  key_part.fill(0xc7);
  EXPECT_EQ(std::search(bytes, bytes + ring.bytes, key_part.begin(), key_part.end()),
            bytes + ring.bytes);
}

TEST(RegionTest, NamesAndCapacitiesAreValidated) {
  ScratchDirectory scratch;
  for (const char* name : {"", ".hidden", "a/b", "../escape", "sp ace"}) {
    auto created = Region::create(name, small_options(scratch));
    ASSERT_FALSE(created.ok()) << name;
    EXPECT_TRUE(error_contains(created.error(), "region name")) << name;
    auto attached = Region::attach(name, attach_options(scratch));
    EXPECT_FALSE(attached.ok()) << name;
  }
  EXPECT_FALSE(Region::create(std::string(201, 'x'), small_options(scratch)).ok());

  RegionCreateOptions odd = small_options(scratch);
  odd.capacities.event = 1000;
  auto created = Region::create("segw-test", odd);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(error_contains(created.error(), "event ring capacity 1000 is not a power of two"));
  EXPECT_FALSE(std::filesystem::exists(scratch.path() + "/segw-test"));
}

TEST(RegionTest, AutomaticBackingPrefersMountedHugepages) {
  std::string name = "segw-unit-" + std::to_string(getpid());
  RegionCreateOptions options;
  options.capacities = {16, 16, 16, 4, 4};
  auto data_plane = Region::create(name, options);
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  data_plane->set_unlink_on_close(true);
  bool in_hugepages = data_plane->path().starts_with(std::string(kHugepageDirectory) + "/");
  RecordProperty("region_path", data_plane->path());
  EXPECT_EQ(data_plane->on_hugepages(), in_hugepages);
  if (!in_hugepages) {
    EXPECT_EQ(data_plane->path(), std::string(kSharedMemoryDirectory) + "/" + name);
  } else {
    EXPECT_EQ(data_plane->mapped_bytes() % (2u << 20), 0u) << "whole huge pages";
  }
  auto control_plane = Region::attach(name);  // finds it wherever it is
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();
  EXPECT_EQ(control_plane->path(), data_plane->path());
  EXPECT_EQ(control_plane->on_hugepages(), in_hugepages);

  // The same name in the other backing is the same region: refused.
  RegionCreateOptions other = options;
  other.backing = in_hugepages ? RegionBacking::kSharedMemory : RegionBacking::kAutomatic;
  auto clash = Region::create(name, other);
  EXPECT_FALSE(clash.ok());
}

TEST(RegionTest, SharedMemoryBackingOnRequest) {
  std::string name = "segw-unit-shm-" + std::to_string(getpid());
  RegionCreateOptions options;
  options.capacities = {16, 16, 16, 4, 4};
  options.backing = RegionBacking::kSharedMemory;
  auto data_plane = Region::create(name, options);
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  data_plane->set_unlink_on_close(true);
  EXPECT_EQ(data_plane->path(), std::string(kSharedMemoryDirectory) + "/" + name);
  EXPECT_FALSE(data_plane->on_hugepages());
}

// The SA inventory: laid out after the rings, empty at create, written by
// the data-plane mapping and read consistently through the control plane's.
TEST(RegionTest, SaInventoryIsSharedAndSeqlocked) {
  ScratchDirectory scratch;
  RegionCreateOptions options = small_options(scratch);
  options.inventory_capacity = 8;
  auto data_plane = Region::create("segw-inventory", options);
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  auto control_plane = Region::attach("segw-inventory", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();

  SaInventory writer = data_plane->inventory();
  SaInventory reader = control_plane->inventory();
  ASSERT_TRUE(writer.present());
  ASSERT_TRUE(reader.present());
  EXPECT_EQ(reader.capacity(), 8u);
  const InventoryDescriptor& layout = control_plane->header().inventory;
  EXPECT_EQ(layout.bytes, sa_inventory_bytes(8));
  for (const RingDescriptor& ring : control_plane->header().rings)
    EXPECT_GE(layout.offset, ring.offset + ring.bytes) << "after every ring";
  EXPECT_EQ(reader.for_each_installed([](uint32_t, const SaInventoryRecord&) { ADD_FAILURE(); }), 0u);

  SaInventoryRecord record;
  record.spi = 0x1234;
  record.direction = SaDirection::kOutbound;
  record.tunnel_id = 7;
  record.path.remote = *IpAddress::parse("198.51.100.9");
  record.path.remote_port = 40000;
  record.path_generation = 3;
  record.packets = 42;
  write_inventory_entry(writer.entry(5), record);
  SaInventoryRecord found;
  ASSERT_TRUE(reader.find(0x1234, SaDirection::kOutbound, found));
  EXPECT_EQ(found.tunnel_id, 7u);
  EXPECT_EQ(found.path, record.path);
  EXPECT_EQ(found.path_generation, 3u);
  EXPECT_EQ(found.packets, 42u);
  EXPECT_FALSE(reader.find(0x1234, SaDirection::kInbound, found));

  clear_inventory_entry(writer.entry(5));
  EXPECT_EQ(read_inventory_entry(reader.entry(5), found), InventoryRead::kFree);
  EXPECT_EQ(read_inventory_entry(reader.entry(4), found), InventoryRead::kFree);
  // A writer caught mid-update (odd sequence) is never read as consistent.
  reader.entry(4).sequence.store(1);
  EXPECT_EQ(read_inventory_entry(reader.entry(4), found, 3), InventoryRead::kBusy);
}

TEST(RegionTest, NoInventoryWhenCapacityZero) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-no-inventory", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  EXPECT_FALSE(data_plane->inventory().present());
  EXPECT_EQ(data_plane->header().inventory.capacity, 0u);
}

// The data plane's statistics block: what the data plane writes into its
// mapping, the control plane reads from its own, names and all; nothing
// before the layout is published; counts from the other process are never
// trusted past the arrays.
TEST(RegionTest, DataPlaneStatisticsReachTheOtherSide) {
  ScratchDirectory scratch;
  auto data_plane = Region::create("segw-test", small_options(scratch));
  ASSERT_TRUE(data_plane.ok()) << data_plane.error();
  auto control_plane = Region::attach("segw-test", attach_options(scratch));
  ASSERT_TRUE(control_plane.ok()) << control_plane.error();

  EXPECT_FALSE(read_dataplane_statistics(control_plane->statistics()).published);

  DataPlaneStatistics& out = data_plane->statistics();
  out.port_count = 2;
  set_statistics_name(out.ports[0].name, "access");
  set_statistics_name(out.ports[1].name, "a-port-name-longer-than-the-field");
  out.worker_count = 1;
  out.drop_reason_count = 1;
  set_statistics_name(out.drop_reasons[0].name, "icv_failure");
  out.queue_count = 1;
  set_statistics_name(out.queues[0].name, "punt");
  out.layout_published.store(1, std::memory_order_release);
  out.ports[0].rx_packets.store(1234);
  out.ports[1].tx_bytes.store(99);
  out.workers[0].lcore.store(3);
  out.workers[0].decapsulated.store(77);
  out.drop_reasons[0].packets.store(5);
  out.queues[0].depth.store(12);
  out.queues[0].capacity.store(1024);
  out.refreshed_ns.store(42);

  auto snapshot = read_dataplane_statistics(control_plane->statistics());
  ASSERT_TRUE(snapshot.published);
  EXPECT_EQ(snapshot.refreshed_ns, 42u);
  ASSERT_EQ(snapshot.ports.size(), 2u);
  EXPECT_EQ(snapshot.ports[0].name, "access");
  EXPECT_EQ(snapshot.ports[0].rx_packets, 1234u);
  EXPECT_EQ(snapshot.ports[1].name, std::string("a-port-name-longer-than-the-field").substr(0, 23));
  EXPECT_EQ(snapshot.ports[1].tx_bytes, 99u);
  ASSERT_EQ(snapshot.workers.size(), 1u);
  EXPECT_EQ(snapshot.workers[0].lcore, 3u);
  EXPECT_EQ(snapshot.workers[0].decapsulated, 77u);
  ASSERT_EQ(snapshot.drop_reasons.size(), 1u);
  EXPECT_EQ(snapshot.drop_reasons[0].name, "icv_failure");
  EXPECT_EQ(snapshot.drop_reasons[0].packets, 5u);
  ASSERT_EQ(snapshot.queues.size(), 1u);
  EXPECT_EQ(snapshot.queues[0].name, "punt");
  EXPECT_EQ(snapshot.queues[0].depth, 12u);
  EXPECT_EQ(snapshot.queues[0].capacity, 1024u);

  out.worker_count = 100000;  // a corrupt count
  out.port_count = 100000;
  snapshot = read_dataplane_statistics(control_plane->statistics());
  EXPECT_EQ(snapshot.workers.size(), kStatisticsMaxWorkers);
  EXPECT_EQ(snapshot.ports.size(), kStatisticsMaxPorts);
}

}  // namespace
}  // namespace segw::shared::channel
