// Tests of the segwctl-dp binary (path in $SEGWCTL_DP): argument errors and
// their exit codes and messages, then every command against a FakeDataPlane
// region in a scratch directory (install from a static SA file, dump without
// keys, move, remove, events, wait-ready, refusal while another control
// plane is attached).
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "controlplane/dp_link/data_plane_link.h"
#include "tests/unit/controlplane/fake_data_plane.h"
#include "tests/unit/shared/channel_test_support.h"

namespace segw::cp::dp_link {
namespace {

using shared::SaDirection;
using testing::FakeDataPlane;
using testing::FakeDataPlaneOptions;
using ScratchDirectory = shared::channel::testing::ScratchDirectory;

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

ToolRun run(const std::string& arguments) {
  const char* binary = std::getenv("SEGWCTL_DP");
  ToolRun result;
  if (binary == nullptr) {
    ADD_FAILURE() << "SEGWCTL_DP is not set (meson sets it)";
    return result;
  }
  std::string command = std::string(binary) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed";
    return result;
  }
  char buffer[4096];
  size_t read;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, read);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(SegwctlDpArgumentsTest, UsageErrorsExitTwoWithAMessage) {
  ToolRun none = run("");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_TRUE(contains(none.output, "no command given")) << none.output;

  ToolRun unknown = run("frobnicate");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_TRUE(contains(unknown.output, "unknown command 'frobnicate'")) << unknown.output;

  ToolRun missing = run("remove --spi 0x10");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.output, "direction")) << missing.output;

  ToolRun bad_spi = run("remove --spi nope --direction in");
  EXPECT_EQ(bad_spi.exit_code, 2);
  EXPECT_TRUE(contains(bad_spi.output, "--spi 'nope'")) << bad_spi.output;

  ToolRun bad_direction = run("remove --spi 5 --direction sideways");
  EXPECT_EQ(bad_direction.exit_code, 2);
  EXPECT_TRUE(contains(bad_direction.output, "must be in or out")) << bad_direction.output;

  ToolRun bad_remote = run("move --tunnel 1 --local 192.0.2.1 --remote 198.51.100.1:99999");
  EXPECT_EQ(bad_remote.exit_code, 2);
  EXPECT_TRUE(contains(bad_remote.output, "--remote")) << bad_remote.output;

  ToolRun unknown_option = run("dump --bogus");
  EXPECT_EQ(unknown_option.exit_code, 2) << unknown_option.output;
}

TEST(SegwctlDpArgumentsTest, HelpDocumentsCommandsAndExitCodes) {
  ToolRun help = run("--help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* part : {"install --config FILE", "remove --spi SPI --direction in|out",
                           "move --tunnel ID", "dump", "events [--count N]", "wait-ready",
                           "Exit codes", "--channel", "--directory"}) {
    EXPECT_TRUE(contains(help.output, part)) << part << " missing from\n" << help.output;
  }
  ToolRun install_help = run("install --help");
  EXPECT_EQ(install_help.exit_code, 0);
  EXPECT_TRUE(contains(install_help.output, "--config")) << install_help.output;
}

TEST(SegwctlDpArgumentsTest, MissingRegionSaysWhatToCheck) {
  ScratchDirectory scratch;
  ToolRun dump = run("--directory " + scratch.path() + " --channel segw dump");
  EXPECT_EQ(dump.exit_code, 3);
  EXPECT_TRUE(contains(dump.output, "no segw region 'segw' in " + scratch.path() +
                                        ": is segw-dataplane running with a [channel] section?"))
      << dump.output;
  ToolRun remove = run("--directory " + scratch.path() + " remove --spi 1 --direction out");
  EXPECT_EQ(remove.exit_code, 3) << remove.output;
  ToolRun wait = run("--directory " + scratch.path() + " wait-ready --wait 50");
  EXPECT_EQ(wait.exit_code, 4) << wait.output;
  ToolRun config = run("--directory " + scratch.path() + " install --config " + scratch.path() + "/none");
  EXPECT_EQ(config.exit_code, 5) << config.output;

  // A file of that name that is no region: a channel error at once, not a wait.
  std::ofstream(scratch.path() + "/garbage") << "not a region";
  ToolRun garbage = run("--directory " + scratch.path() + " --channel garbage wait-ready --wait 60000");
  EXPECT_EQ(garbage.exit_code, 3) << garbage.output;
  EXPECT_TRUE(contains(garbage.output, "truncated")) << garbage.output;
  ToolRun garbage_dump = run("--directory " + scratch.path() + " --channel garbage dump");
  EXPECT_EQ(garbage_dump.exit_code, 3) << garbage_dump.output;
}

class SegwctlDpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeDataPlaneOptions options;
    options.directory = scratch_.path();
    options.name = "segw-cli";
    auto fake = FakeDataPlane::start(options);
    ASSERT_TRUE(fake.ok()) << fake.error();
    fake_ = std::move(*fake);
    config_ = scratch_.path() + "/sas.conf";
    std::ofstream file(config_);
    file << "[sa fap1-in]\n"
            "direction = inbound\n"
            "spi = 0x5a000001\n"
            "algorithm = aes-gcm-128\n"
            "encryption_key = 000102030405060708090a0b0c0d0e0f\n"
            "salt = 0a0b0c0d\n"
            "local_address = 192.0.2.1\n"
            "remote_address = 198.51.100.10\n"
            "remote_port = 31000\n"
            "local_selector = 10.0.0.0/8\n"
            "remote_selector = 172.16.0.1/32\n"
            "tunnel = fap1\n"
            "\n"
            "[sa fap1-out]\n"
            "direction = outbound\n"
            "spi = 0xc1000001\n"
            "algorithm = aes-gcm-128\n"
            "encryption_key = 202122232425262728292a2b2c2d2e2f\n"
            "salt = 2a2b2c2d\n"
            "local_address = 192.0.2.1\n"
            "remote_address = 198.51.100.10\n"
            "remote_port = 31000\n"
            "local_selector = 10.0.0.0/8\n"
            "remote_selector = 172.16.0.1/32\n"
            "tunnel = fap1\n";
  }

  std::string global() const { return "--directory " + scratch_.path() + " --channel segw-cli "; }

  ScratchDirectory scratch_;
  std::unique_ptr<FakeDataPlane> fake_;
  std::string config_;
};

TEST_F(SegwctlDpTest, InstallDumpMoveRemoveThroughTheChannel) {
  ToolRun ready = run(global() + "wait-ready --wait 2000");
  EXPECT_EQ(ready.exit_code, 0) << ready.output;

  ToolRun install = run(global() + "install --config " + config_);
  ASSERT_EQ(install.exit_code, 0) << install.output;
  EXPECT_TRUE(contains(install.output, "installed 2 of 2 SAs")) << install.output;
  auto inbound = fake_->installed(0x5a000001, SaDirection::kInbound);
  ASSERT_TRUE(inbound);
  EXPECT_EQ(inbound->cipher_key[1], 0x01);
  ASSERT_TRUE(fake_->installed(0xc1000001, SaDirection::kOutbound));

  ToolRun again = run(global() + "install --config " + config_ + " --sa fap1-out");
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_TRUE(contains(again.output, "duplicate_spi")) << again.output;
  ToolRun no_section = run(global() + "install --config " + config_ + " --sa nope");
  EXPECT_EQ(no_section.exit_code, 5) << no_section.output;
  EXPECT_TRUE(contains(no_section.output, "no [sa nope] section")) << no_section.output;

  uint32_t tunnel = inbound->tunnel_id;
  ToolRun move = run(global() + "move --tunnel " + std::to_string(tunnel) +
                 " --local 192.0.2.1 --remote 203.0.113.9:40000");
  ASSERT_EQ(move.exit_code, 0) << move.output;
  EXPECT_EQ(fake_->installed(0xc1000001, SaDirection::kOutbound)->path.remote_port, 40000);
  ToolRun move_unknown = run(global() + "move --tunnel 999 --local 192.0.2.1 --remote 203.0.113.9");
  EXPECT_EQ(move_unknown.exit_code, 1);
  EXPECT_TRUE(contains(move_unknown.output, "unknown_tunnel")) << move_unknown.output;

  ToolRun dump = run(global() + "dump");
  ASSERT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_TRUE(contains(dump.output, "2 SAs")) << dump.output;
  EXPECT_TRUE(contains(dump.output, "spi 0x5a000001 inbound")) << dump.output;
  EXPECT_TRUE(contains(dump.output, "203.0.113.9:40000")) << dump.output;
  EXPECT_FALSE(contains(dump.output, "0001020304")) << "no key bytes: " << dump.output;
  EXPECT_FALSE(contains(dump.output, "0a0b0c0d")) << "no salt: " << dump.output;

  ToolRun remove = run(global() + "remove --spi 0x5a000001 --direction in");
  EXPECT_EQ(remove.exit_code, 0) << remove.output;
  EXPECT_FALSE(fake_->installed(0x5a000001, SaDirection::kInbound));
  ToolRun remove_again = run(global() + "remove --spi 0x5a000001 --direction in");
  EXPECT_EQ(remove_again.exit_code, 1);
  EXPECT_TRUE(contains(remove_again.output, "unknown_sa")) << remove_again.output;
}

TEST_F(SegwctlDpTest, EventsArePrintedOnePerLine) {
  shared::channel::Event event;
  event.kind = shared::channel::EventKind::kNewSourceAddress;
  event.spi = 0x5a000001;
  event.tunnel_id = 4;
  event.current_remote = {*shared::IpAddress::parse("198.51.100.10"), 31000};
  event.new_remote = {*shared::IpAddress::parse("198.51.100.10"), 31001};
  ASSERT_TRUE(fake_->region().event_ring().try_push(event));
  ToolRun events = run(global() + "events --count 1");
  EXPECT_EQ(events.exit_code, 0) << events.output;
  EXPECT_TRUE(contains(events.output,
                       "new_source_address spi=0x5a000001 inbound tunnel=4 "
                       "current=198.51.100.10:31000 new=198.51.100.10:31001"))
      << events.output;
}

TEST_F(SegwctlDpTest, RefusedWhileAnotherControlPlaneIsAttached) {
  DataPlaneLinkOptions options;
  options.region_name = "segw-cli";
  options.directory = scratch_.path();
  auto daemon = DataPlaneLink::attach(options);
  ASSERT_TRUE(daemon.ok()) << daemon.error();
  ToolRun install = run(global() + "install --config " + config_);
  EXPECT_EQ(install.exit_code, 3) << install.output;
  EXPECT_TRUE(contains(install.output, "another control plane (pid " + std::to_string(getpid())))
      << install.output;
  // Observing still works beside it.
  ToolRun dump = run(global() + "dump");
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_TRUE(contains(dump.output, "attached (pid " + std::to_string(getpid()))) << dump.output;
}

}  // namespace
}  // namespace segw::cp::dp_link
