// Unit tests for RecordingSaInstaller, the in-memory SaInstaller backend:
// call log, the installed-SA model, scripted refusals, held completions.
#include "controlplane/dp_link/recording_sa_installer.h"

#include <gtest/gtest.h>

#include <chrono>

namespace segw::cp::dp_link {
namespace {

using namespace std::chrono_literals;
using shared::SaDescriptor;
using shared::SaDirection;
using shared::channel::CommandKind;
using shared::channel::CompletionCode;

SaDescriptor make_sa(uint32_t spi, uint32_t tunnel) {
  SaDescriptor sa;
  sa.spi = spi;
  sa.direction = SaDirection::kOutbound;
  sa.tunnel_id = tunnel;
  sa.cipher_key.fill(0x11);
  return sa;
}

CommandResult get(shared::Result<std::future<CommandResult>> submitted) {
  EXPECT_TRUE(submitted.ok()) << submitted.error();
  if (!submitted.ok()) return {};
  EXPECT_EQ(submitted->wait_for(1s), std::future_status::ready);
  return submitted->get();
}

TEST(RecordingSaInstallerTest, RecordsCallsInOrderAndModelsTheInstalledSet) {
  RecordingSaInstaller recorder;
  SaInstaller& installer = recorder;
  EXPECT_TRUE(get(installer.install(make_sa(1, 5))).ok());
  EXPECT_TRUE(get(installer.install(make_sa(2, 6))).ok());
  shared::PathDescriptor path;
  path.remote = *shared::IpAddress::parse("203.0.113.1");
  EXPECT_TRUE(get(installer.update_path(5, path)).ok());
  EXPECT_TRUE(get(installer.remove(2, SaDirection::kOutbound)).ok());

  auto calls = recorder.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].kind, CommandKind::kInstallSa);
  EXPECT_EQ(calls[0].sa.cipher_key[0], 0x11) << "keys kept for comparison";
  EXPECT_EQ(calls[2].kind, CommandKind::kUpdatePath);
  EXPECT_EQ(calls[2].tunnel_id, 5u);
  EXPECT_EQ(calls[2].path, path);
  EXPECT_EQ(calls[3].kind, CommandKind::kRemoveSa);
  EXPECT_EQ(calls[3].spi, 2u);
  EXPECT_EQ(calls[3].request_id, 4u);

  auto installed = recorder.installed();
  ASSERT_EQ(installed.size(), 1u);
  EXPECT_EQ(installed[0].spi, 1u);
  EXPECT_EQ(installed[0].path, path) << "update_path applied to the tunnel's SAs";
  recorder.clear();
  EXPECT_EQ(recorder.call_count(), 0u);
  EXPECT_TRUE(recorder.installed().empty());
}

TEST(RecordingSaInstallerTest, SelectorUpdatesAreRecordedCheckedAndApplied) {
  RecordingSaInstaller recorder;
  SaInstaller& installer = recorder;
  EXPECT_TRUE(get(installer.install(make_sa(1, 5))).ok());
  auto wide = shared::TrafficSelector::from_prefix(*shared::IpPrefix::parse("10.60.0.0/16"));
  std::vector<shared::TrafficSelector> remote = {wide, wide};
  EXPECT_TRUE(get(installer.update_selectors(1, SaDirection::kOutbound, {}, remote)).ok());
  EXPECT_FALSE(installer.update_selectors(1, SaDirection::kOutbound, remote, {}).ok()) << "no route left";
  recorder.fail_next(CommandKind::kUpdateSelectors, CompletionCode::kTableFull);
  EXPECT_EQ(get(installer.update_selectors(1, SaDirection::kOutbound, {}, std::span(remote).first(1))).completion.code,
            CompletionCode::kTableFull);
  auto calls = recorder.calls();
  ASSERT_EQ(calls.size(), 3u) << "the call refused before sending is not recorded";
  EXPECT_EQ(calls[1].kind, CommandKind::kUpdateSelectors);
  EXPECT_EQ(calls[1].selectors.remote_selector_count, 2);
  auto installed = recorder.installed();
  ASSERT_EQ(installed.size(), 1u);
  EXPECT_EQ(installed[0].remote_selector_count, 2) << "the refused update changed nothing";
  EXPECT_EQ(installed[0].remote_selectors[1], wide);
}

TEST(RecordingSaInstallerTest, ScriptedRefusalsChangeNothing) {
  RecordingSaInstaller recorder;
  recorder.fail_next(CommandKind::kInstallSa, CompletionCode::kTableFull);
  CommandResult refused = get(recorder.install(make_sa(1, 5)));
  EXPECT_EQ(refused.completion.code, CompletionCode::kTableFull);
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(recorder.installed().empty());
  EXPECT_TRUE(get(recorder.install(make_sa(1, 5))).ok()) << "fail_next is one call only";

  recorder.fail_all(CommandKind::kRemoveSa, CompletionCode::kUnknownSa);
  EXPECT_EQ(get(recorder.remove(1, SaDirection::kOutbound)).completion.code, CompletionCode::kUnknownSa);
  EXPECT_EQ(get(recorder.remove(1, SaDirection::kOutbound)).completion.code, CompletionCode::kUnknownSa);
  EXPECT_EQ(recorder.installed().size(), 1u);
  recorder.fail_all(CommandKind::kRemoveSa, std::nullopt);
  EXPECT_TRUE(get(recorder.remove(1, SaDirection::kOutbound)).ok());
  EXPECT_EQ(recorder.call_count(), 5u);

  recorder.refuse_submissions("not attached");
  auto not_sent = recorder.install(make_sa(9, 9));
  ASSERT_FALSE(not_sent.ok());
  EXPECT_EQ(not_sent.error(), "not attached");
  EXPECT_EQ(recorder.call_count(), 5u) << "refused submissions are not recorded";
}

TEST(RecordingSaInstallerTest, HeldCompletionsWaitForRelease) {
  RecordingSaInstaller recorder;
  recorder.hold_completions(true);
  auto first = recorder.install(make_sa(1, 1));
  auto second = recorder.install(make_sa(2, 2));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->wait_for(10ms), std::future_status::timeout);
  EXPECT_EQ(recorder.held_count(), 2u);
  EXPECT_EQ(recorder.release_held(1), 1u);
  EXPECT_EQ(first->wait_for(1s), std::future_status::ready);
  EXPECT_EQ(second->wait_for(10ms), std::future_status::timeout);
  EXPECT_TRUE(first->get().ok());
  {
    // Destroying the recorder completes what it still holds.
    RecordingSaInstaller short_lived;
    short_lived.hold_completions(true);
    auto orphan = short_lived.remove(3, SaDirection::kInbound);
    ASSERT_TRUE(orphan.ok());
    first = std::move(orphan);
  }
  ASSERT_EQ(first->wait_for(1s), std::future_status::ready);
  EXPECT_EQ(first->get().outcome, LinkOutcome::kLinkClosed);
  EXPECT_EQ(recorder.release_held(), 1u);
  EXPECT_TRUE(second->get().ok());
}

}  // namespace
}  // namespace segw::cp::dp_link
