// Integration: the control plane's link and segwctl-dp against a real
// segw-dataplane process (net_null ports, no hugepages, region in a scratch
// directory). Paths of the binaries come in $SEGW_DATAPLANE and $SEGWCTL_DP.
//   - segwctl-dp wait-ready / install / dump / move / remove / dump;
//   - DataPlaneLink installs SAs, the data plane is killed with SIGKILL and
//     started again: every owned SA is re-pushed (the time is printed), the
//     inventory lists them, commands flow again;
//   - the control plane "restarts" (a new link): it reads the inventory,
//     adopts, and its path updates are accepted (newer generations).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/dp_link/data_plane_link.h"
#include "controlplane/dp_link/region_observer.h"
#include "shared/config_file.h"
#include "shared/static_sa.h"
#include "tests/unit/shared/channel_test_support.h"

namespace segw::cp::dp_link {
namespace {

using namespace std::chrono_literals;
using ScratchDirectory = shared::channel::testing::ScratchDirectory;

constexpr const char* kRegionName = "segw-link-it";

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// One segw-dataplane process; killed (SIGKILL) at destruction if still running.
class DataPlaneProcess {
 public:
  DataPlaneProcess(const std::string& config, const std::string& log, int run) {
    std::string binary = environment("SEGW_DATAPLANE");
    std::string prefix = "segw-cpit-" + std::to_string(getpid()) + "-" + std::to_string(run);
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      // --duration: never outlives a test that died without killing it.
      execl(binary.c_str(), binary.c_str(), "-c", config.c_str(), "--duration", "300", "--",
            "--no-huge", "-m", "1024", "--no-shconf", "-l", "0,1", "--file-prefix", prefix.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~DataPlaneProcess() { kill_now(); }

  pid_t pid() const { return pid_; }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  bool running() {
    if (pid_ <= 0) return false;
    int status;
    return waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

struct ToolRun {
  int exit_code = -1;
  std::string output;
};

ToolRun segwctl(const std::string& directory, const std::string& arguments) {
  std::string command = environment("SEGWCTL_DP") + " --channel " + kRegionName + " --directory " +
                        directory + " " + arguments + " 2>&1";
  ToolRun result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t read;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, read);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool wait_for_condition(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

class ControlPlaneLinkIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (environment("SEGW_DATAPLANE").empty() || environment("SEGWCTL_DP").empty()) {
      GTEST_FAIL() << "SEGW_DATAPLANE and SEGWCTL_DP must be set (meson sets them)";
    }
    region_directory_ = scratch_.path() + "/region";
    ASSERT_EQ(::mkdir(region_directory_.c_str(), 0700), 0);
    config_ = scratch_.path() + "/dataplane.conf";
    log_ = scratch_.path() + "/dataplane.log";
  }

  void write_config(uint32_t sa_capacity) {
    std::ofstream file(config_);
    file << "[dataplane]\nstats_interval = 0\nsa_capacity = " << sa_capacity << "\n\n"
         << "[port access]\ndevice = net_null0\nnext_hop_mac = 02:00:00:00:0a:01\n"
            "address = 192.0.2.1\n\n"
         << "[port core]\ndevice = net_null1\nnext_hop_mac = 02:00:00:00:0c:01\n"
            "address = 10.0.0.1\n\n"
         << "[channel]\nname = " << kRegionName << "\ndirectory = " << region_directory_ << "\n";
  }

  // Starts a data plane and waits until its region is there with a live
  // heartbeat from this very process.
  std::unique_ptr<DataPlaneProcess> start_data_plane() {
    auto process = std::make_unique<DataPlaneProcess>(config_, log_, ++runs_);
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process->running()) {
        ADD_FAILURE() << "segw-dataplane exited:\n" << read_file(log_);
        return nullptr;
      }
      auto observer = RegionObserver::open(kRegionName, region_directory_);
      if (observer && observer->data_plane().pid == uint64_t(process->pid()) &&
          observer->data_plane_alive(1s)) {
        return process;
      }
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "segw-dataplane not ready in 60 s:\n" << read_file(log_);
    return nullptr;
  }

  DataPlaneLinkOptions link_options() const {
    DataPlaneLinkOptions options;
    options.region_name = kRegionName;
    options.directory = region_directory_;
    options.submit_timeout = 30000ms;
    options.command_timeout = 30000ms;
    return options;
  }

  // `count` tunnels, each an inbound and an outbound SA.
  static std::vector<shared::SaDescriptor> tunnels(uint32_t count) {
    std::string text =
        "[sa t-in]\ndirection = inbound\nspi = 0x51000000\ncount = " + std::to_string(count) +
        "\nalgorithm = aes-gcm-128\nencryption_key = 000102030405060708090a0b0c0d0e0f\n"
        "salt = 0a0b0c0d\nlocal_address = 192.0.2.1\nremote_address = 198.51.100.1\n"
        "remote_address_step = 1\nremote_port = 31000\nlocal_selector = 10.0.0.0/8\n"
        "remote_selector = 172.16.0.0/32\ntunnel = t\n\n"
        "[sa t-out]\ndirection = outbound\nspi = 0xa2000000\ncount = " + std::to_string(count) +
        "\nalgorithm = aes-gcm-128\nencryption_key = 202122232425262728292a2b2c2d2e2f\n"
        "salt = 2a2b2c2d\nlocal_address = 192.0.2.1\nremote_address = 198.51.100.1\n"
        "remote_address_step = 1\nremote_port = 31000\nlocal_selector = 10.0.0.0/8\n"
        "remote_selector = 172.16.0.0/32\ntunnel = t\n";
    auto file = shared::ConfigFile::parse_text(text, "generated");
    EXPECT_TRUE(file.ok()) << file.error();
    auto set = shared::parse_static_sas(*file);
    EXPECT_TRUE(set.ok()) << set.error();
    std::vector<shared::SaDescriptor> sas;
    for (const auto& sa_template : set->templates) {
      for (uint32_t i = 0; i < sa_template.count; ++i) sas.push_back(sa_template.expand(i));
    }
    return sas;
  }

  ScratchDirectory scratch_;
  std::string region_directory_;
  std::string config_;
  std::string log_;
  int runs_ = 0;
};

TEST_F(ControlPlaneLinkIntegrationTest, SegwctlDpInstallsMovesDumpsAndRemoves) {
  write_config(1024);
  auto data_plane = start_data_plane();
  ASSERT_NE(data_plane, nullptr);
  std::string sas = scratch_.path() + "/sas.conf";
  {
    std::ofstream file(sas);
    file << "[sa fap1-in]\ndirection = inbound\nspi = 0x5a000001\nalgorithm = aes-gcm-128\n"
            "encryption_key = 000102030405060708090a0b0c0d0e0f\nsalt = 0a0b0c0d\n"
            "local_address = 192.0.2.1\nremote_address = 198.51.100.10\nremote_port = 31000\n"
            "local_selector = 10.0.0.0/8\nremote_selector = 172.16.0.1/32\ntunnel = fap1\n\n"
            "[sa fap1-out]\ndirection = outbound\nspi = 0xc1000001\nalgorithm = aes-gcm-128\n"
            "encryption_key = 202122232425262728292a2b2c2d2e2f\nsalt = 2a2b2c2d\n"
            "local_address = 192.0.2.1\nremote_address = 198.51.100.10\nremote_port = 31000\n"
            "local_selector = 10.0.0.0/8\nremote_selector = 172.16.0.1/32\ntunnel = fap1\n";
  }
  ToolRun ready = segwctl(region_directory_, "wait-ready --wait 10000");
  ASSERT_EQ(ready.exit_code, 0) << ready.output;
  ToolRun install = segwctl(region_directory_, "install --config " + sas);
  ASSERT_EQ(install.exit_code, 0) << install.output << read_file(log_);
  ToolRun dump = segwctl(region_directory_, "dump");
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("2 SAs"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("channel: installed 2"), std::string::npos) << dump.output;
  EXPECT_EQ(dump.output.find("000102030405"), std::string::npos) << "no keys: " << dump.output;
  ToolRun move = segwctl(region_directory_, "move --tunnel 1 --local 192.0.2.1 --remote 203.0.113.9:40000");
  ASSERT_EQ(move.exit_code, 0) << move.output << read_file(log_);
  dump = segwctl(region_directory_, "dump");
  EXPECT_NE(dump.output.find("spi 0xc1000001 outbound tunnel 1 aes-gcm-128 path 192.0.2.1:4500 -> "
                             "203.0.113.9:40000"),
            std::string::npos)
      << dump.output;
  ToolRun remove = segwctl(region_directory_, "remove --spi 0x5a000001 --direction in");
  EXPECT_EQ(remove.exit_code, 0) << remove.output;
  ToolRun again = segwctl(region_directory_, "remove --spi 0x5a000001 --direction in");
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("unknown_sa"), std::string::npos) << again.output;
  dump = segwctl(region_directory_, "dump");
  EXPECT_NE(dump.output.find("1 SAs"), std::string::npos) << dump.output;
  EXPECT_TRUE(data_plane->running()) << read_file(log_);
}

TEST_F(ControlPlaneLinkIntegrationTest, DataPlaneKilledAndRestartedGetsEveryOwnedSaBack) {
  // 50,000 tunnels = 100,000 SAs (issue 3: "report how long 100k SAs take").
  constexpr uint32_t kTunnels = 50'000;
  write_config(65536);
  auto data_plane = start_data_plane();
  ASSERT_NE(data_plane, nullptr);
  auto attached = DataPlaneLink::attach(link_options());
  ASSERT_TRUE(attached.ok()) << attached.error();
  std::unique_ptr<DataPlaneLink> link = std::move(*attached);
  std::promise<ResyncReport> resynced;
  link->set_resync_observer([&](const ResyncReport& report) { resynced.set_value(report); });

  std::vector<shared::SaDescriptor> sas = tunnels(kTunnels);
  ASSERT_EQ(sas.size(), 2u * kTunnels);
  std::atomic<uint32_t> installed{0};
  std::atomic<uint32_t> refused{0};
  std::string first_refusal;
  std::mutex mutex;
  auto started = std::chrono::steady_clock::now();
  for (shared::SaDescriptor& sa : sas) {
    auto sent = link->install(sa, [&](const CommandResult& result) {
      if (result.ok()) {
        installed.fetch_add(1);
      } else if (refused.fetch_add(1) == 0) {
        std::lock_guard lock(mutex);
        first_refusal = result.to_string();
      }
    });
    shared::secure_zero(sa);
    ASSERT_TRUE(sent.ok()) << sent.error();
  }
  auto barrier = link->barrier();
  ASSERT_TRUE(barrier.ok()) << barrier.error();
  ASSERT_EQ(barrier->wait_for(120s), std::future_status::ready);
  double install_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(installed.load(), 2 * kTunnels) << refused.load() << " refused, first: " << first_refusal
                                              << "\n" << read_file(log_);
  }
  std::printf("installed %u SAs through the channel in %.2f s\n", 2 * kTunnels, install_s);

  // kill -9, then a new data plane replaces the region.
  data_plane->kill_now();
  data_plane = start_data_plane();
  ASSERT_NE(data_plane, nullptr);
  auto report_future = resynced.get_future();
  ASSERT_EQ(report_future.wait_for(120s), std::future_status::ready) << read_file(log_);
  ResyncReport report = report_future.get();
  EXPECT_EQ(report.sa_count, 2u * kTunnels);
  EXPECT_EQ(report.installed, 2u * kTunnels) << report.first_failure;
  EXPECT_EQ(report.failed, 0u) << report.first_failure;
  std::printf("data plane restart: %zu SAs re-pushed in %.1f ms\n", report.sa_count,
              std::chrono::duration<double, std::milli>(report.duration).count());
  ::testing::Test::RecordProperty("resync_100k_ms",
                                  std::to_string(std::chrono::duration<double, std::milli>(report.duration).count()));

  auto inventory = link->read_inventory();
  ASSERT_TRUE(inventory.ok()) << inventory.error();
  EXPECT_EQ(inventory->size(), 2u * kTunnels);

  shared::PathDescriptor moved;
  moved.local = *shared::IpAddress::parse("192.0.2.1");
  moved.remote = *shared::IpAddress::parse("203.0.113.50");
  moved.remote_port = 50000;
  auto update = link->update_path(1, moved);
  ASSERT_TRUE(update.ok()) << update.error();
  ASSERT_EQ(update->wait_for(30s), std::future_status::ready);
  CommandResult update_result = update->get();
  EXPECT_TRUE(update_result.ok()) << update_result.to_string() << "\n" << read_file(log_);

  // Control plane restart: the data plane keeps everything; a new link
  // reads the inventory and adopts, and its path updates are newer.
  uint64_t old_generation = link->control_generation();
  link.reset();
  auto second = DataPlaneLink::attach(link_options());
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_GT((*second)->control_generation(), old_generation);
  auto listed = (*second)->read_inventory();
  ASSERT_TRUE(listed.ok()) << listed.error();
  EXPECT_EQ(listed->size(), 2u * kTunnels) << "the data plane kept every SA";
  // The daemon's own state supplies the keys (here: the same generated SAs).
  std::vector<shared::SaDescriptor> restored = tunnels(kTunnels);
  std::map<std::pair<uint32_t, shared::SaDirection>, size_t> by_key;
  for (size_t i = 0; i < restored.size(); ++i) by_key[{restored[i].spi, restored[i].direction}] = i;
  auto resumed = (*second)->resume([&](const shared::channel::SaInventoryRecord& record)
                                       -> std::optional<shared::SaDescriptor> {
    auto found = by_key.find({record.spi, record.direction});
    if (found == by_key.end()) return std::nullopt;
    return restored[found->second];
  });
  for (shared::SaDescriptor& sa : restored) shared::secure_zero(sa);
  ASSERT_TRUE(resumed.ok()) << resumed.error();
  EXPECT_EQ(resumed->adopted, 2u * kTunnels);
  EXPECT_TRUE(resumed->orphans.empty());
  uint64_t tunnel1_generation = 0;
  for (const InventoryEntry& entry : *listed) {
    if (entry.record.tunnel_id == 1) {
      tunnel1_generation = entry.record.path_generation;
      EXPECT_EQ(entry.record.path.remote, moved.remote);
    }
  }
  EXPECT_NE(tunnel1_generation, 0u);
  moved.remote_port = 50001;
  auto second_update = (*second)->update_path(1, moved);
  ASSERT_TRUE(second_update.ok()) << second_update.error();
  ASSERT_EQ(second_update->wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(second_update->get().ok()) << "newer generation accepted";
  EXPECT_TRUE(data_plane->running()) << read_file(log_);
}

// Anonymous resident memory of a process (the SA arena, heaps, EAL's
// --no-huge memory; not the region file, which is shared).
size_t resident_anonymous_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::strtoull(line.c_str() + 8, nullptr, 10) * 1024;
  }
  return 0;
}

// Issue 3: install 1,000,000 SAs through the channel, remove them, and the
// data plane's memory is back where it started (within 10% of what the SAs
// took: EAL's route-table pages and hash buckets stay).
TEST_F(ControlPlaneLinkIntegrationTest, AMillionSasInstalledAndRemovedGiveTheirMemoryBack) {
  constexpr uint32_t kTunnels = 500'000;  // an inbound and an outbound SA each
  {
    std::ofstream file(config_);
    file << "[dataplane]\nstats_interval = 0\nsa_capacity = 1048576\nmax_routes = 520000\n"
         << "ipv4_route_groups = 4096\nipv6_route_groups = 256\n\n"
         << "[port access]\ndevice = net_null0\nnext_hop_mac = 02:00:00:00:0a:01\naddress = 192.0.2.1\n\n"
         << "[port core]\ndevice = net_null1\nnext_hop_mac = 02:00:00:00:0c:01\naddress = 10.0.0.1\n\n"
         << "[channel]\nname = " << kRegionName << "\ndirectory = " << region_directory_
         << "\ninventory_capacity = 1048576\n";
  }
  auto data_plane = start_data_plane();
  ASSERT_NE(data_plane, nullptr);
  auto attached = DataPlaneLink::attach(link_options());
  ASSERT_TRUE(attached.ok()) << attached.error();
  std::unique_ptr<DataPlaneLink> link = std::move(*attached);
  std::this_thread::sleep_for(500ms);  // settled after start-up
  size_t before = resident_anonymous_bytes(data_plane->pid());
  ASSERT_GT(before, 0u);

  std::vector<shared::SaDescriptor> sas = tunnels(kTunnels);
  std::atomic<uint32_t> done{0}, refused{0};
  auto count = [&](const CommandResult& result) {
    if (!result.ok()) refused.fetch_add(1);
    done.fetch_add(1);
  };
  auto started = std::chrono::steady_clock::now();
  for (shared::SaDescriptor& sa : sas) {
    auto sent = link->install(sa, count);
    ASSERT_TRUE(sent.ok()) << sent.error();
  }
  auto barrier = link->barrier();
  ASSERT_TRUE(barrier.ok()) << barrier.error();
  ASSERT_EQ(barrier->wait_for(300s), std::future_status::ready);
  double install_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(done.load(), 2 * kTunnels);
  ASSERT_EQ(refused.load(), 0u) << read_file(log_);
  auto inventory = link->read_inventory();
  ASSERT_TRUE(inventory.ok()) << inventory.error();
  EXPECT_EQ(inventory->size(), 2u * kTunnels);
  size_t installed = resident_anonymous_bytes(data_plane->pid());
  EXPECT_GT(installed, before + size_t{2} * kTunnels * 1024) << "a million SAs take memory";

  done = 0;
  started = std::chrono::steady_clock::now();
  for (const shared::SaDescriptor& sa : sas) {
    auto sent = link->remove(sa.spi, sa.direction, count);
    ASSERT_TRUE(sent.ok()) << sent.error();
  }
  barrier = link->barrier();
  ASSERT_TRUE(barrier.ok()) << barrier.error();
  ASSERT_EQ(barrier->wait_for(300s), std::future_status::ready);
  double remove_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(done.load(), 2 * kTunnels);
  ASSERT_EQ(refused.load(), 0u) << read_file(log_);
  for (shared::SaDescriptor& sa : sas) shared::secure_zero(sa);
  inventory = link->read_inventory();
  ASSERT_TRUE(inventory.ok()) << inventory.error();
  EXPECT_EQ(inventory->size(), 0u);
  // The workers' grace period passes and the control lcore frees (RCU).
  size_t after = 0;
  EXPECT_TRUE(wait_for_condition([&] {
    after = resident_anonymous_bytes(data_plane->pid());
    return after < before + (installed - before) / 10;
  }, 30s)) << "resident (anonymous): " << (before >> 20) << " MB before, " << (installed >> 20)
           << " MB with the SAs, " << (after >> 20) << " MB after removing them";
  std::printf("1,000,000 SAs through the channel: installed in %.2f s, removed in %.2f s; resident %zu MB -> %zu MB -> "
              "%zu MB\n",
              install_s, remove_s, before >> 20, installed >> 20, after >> 20);
  ::testing::Test::RecordProperty("install_1m_s", std::to_string(install_s));
  EXPECT_TRUE(data_plane->running()) << read_file(log_);
}

}  // namespace
}  // namespace segw::cp::dp_link
