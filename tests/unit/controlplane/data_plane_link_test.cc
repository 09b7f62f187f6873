// Unit tests for DataPlaneLink against a FakeDataPlane in the same process:
// commands complete with the data plane's codes and matching request ids,
// room limits (ring full, in flight) fail clearly and never hang, command
// timeouts, events to subscribers, punt/inject as an IKE transport, data
// plane restart (region replaced) with every owned SA re-pushed, keys wiped
// from the registry, a control plane restart that reads the inventory and
// adopts, stale completions of a predecessor ignored, one control side only.
#include "controlplane/dp_link/data_plane_link.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <future>
#include <thread>

#include "tests/unit/controlplane/fake_data_plane.h"
#include "tests/unit/shared/channel_test_support.h"

namespace segw::cp::dp_link {
namespace {

using namespace std::chrono_literals;
using shared::channel::CommandKind;
using shared::channel::CompletionCode;
using shared::channel::Event;
using shared::channel::EventKind;
using shared::channel::InjectPacket;
using shared::channel::PuntPacket;
using shared::SaDescriptor;
using shared::SaDirection;
using testing::FakeDataPlane;
using testing::FakeDataPlaneOptions;
using ScratchDirectory = shared::channel::testing::ScratchDirectory;

shared::IpAddress address(const char* text) { return *shared::IpAddress::parse(text); }

SaDescriptor make_sa(uint32_t spi, SaDirection direction, uint32_t tunnel, uint8_t key_byte = 0xa5) {
  SaDescriptor sa;
  sa.spi = spi;
  sa.direction = direction;
  sa.tunnel_id = tunnel;
  sa.cipher_key.fill(key_byte);
  sa.salt.fill(key_byte);
  sa.path.local = address("192.0.2.1");
  sa.path.remote = address("198.51.100.7");
  sa.set_name("test-sa");
  return sa;
}

shared::PathDescriptor make_path(const char* remote, uint16_t port) {
  shared::PathDescriptor path;
  path.local = address("192.0.2.1");
  path.remote = address(remote);
  path.remote_port = port;
  return path;
}

class DataPlaneLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_options_.directory = scratch_.path();
    auto fake = FakeDataPlane::start(fake_options_);
    ASSERT_TRUE(fake.ok()) << fake.error();
    fake_ = std::move(*fake);
  }

  DataPlaneLinkOptions link_options() const {
    DataPlaneLinkOptions options;
    options.region_name = fake_options_.name;
    options.directory = scratch_.path();
    options.check_interval = 2ms;
    options.data_plane_timeout = 300ms;
    options.submit_timeout = 2000ms;
    options.command_timeout = 3000ms;
    return options;
  }

  std::unique_ptr<DataPlaneLink> attach(const DataPlaneLinkOptions& options) {
    auto link = DataPlaneLink::attach(options);
    EXPECT_TRUE(link.ok()) << link.error();
    if (!link.ok()) return nullptr;
    EXPECT_TRUE((*link)->wait_for_state(LinkState::kAttached, 2000ms));
    return std::move(*link);
  }
  std::unique_ptr<DataPlaneLink> attach() { return attach(link_options()); }

  // Replaces the data plane as a restart does: the old one dies (its lock
  // goes, its region file stays), a new one replaces the file.
  void restart_data_plane() {
    fake_.reset();
    FakeDataPlaneOptions options = fake_options_;
    options.replace = true;
    auto fake = FakeDataPlane::start(options);
    ASSERT_TRUE(fake.ok()) << fake.error();
    fake_ = std::move(*fake);
  }

  static CommandResult get(shared::Result<std::future<CommandResult>>& submitted) {
    EXPECT_TRUE(submitted.ok()) << submitted.error();
    if (!submitted.ok()) return {};
    EXPECT_EQ(submitted->wait_for(10s), std::future_status::ready);
    return submitted->get();
  }

  ScratchDirectory scratch_;
  FakeDataPlaneOptions fake_options_;
  std::unique_ptr<FakeDataPlane> fake_;
};

TEST_F(DataPlaneLinkTest, CommandsCompleteWithTheDataPlanesCodes) {
  auto link = attach();
  ASSERT_NE(link, nullptr);

  auto installed = link->install(make_sa(0x1001, SaDirection::kInbound, 1));
  CommandResult install_result = get(installed);
  EXPECT_TRUE(install_result.ok()) << install_result.to_string();
  EXPECT_EQ(install_result.completion.kind, CommandKind::kInstallSa);

  auto moved = link->update_path(1, make_path("203.0.113.9", 1024));
  EXPECT_TRUE(get(moved).ok());
  auto unknown_tunnel = link->update_path(99, make_path("203.0.113.9", 1024));
  EXPECT_EQ(get(unknown_tunnel).completion.code, CompletionCode::kUnknownTunnel);

  auto removed = link->remove(0x1001, SaDirection::kInbound);
  EXPECT_TRUE(get(removed).ok());
  auto removed_again = link->remove(0x1001, SaDirection::kInbound);
  CommandResult unknown = get(removed_again);
  EXPECT_EQ(unknown.outcome, LinkOutcome::kCompleted);
  EXPECT_EQ(unknown.completion.code, CompletionCode::kUnknownSa);
  EXPECT_NE(unknown.to_string().find("unknown_sa"), std::string::npos) << unknown.to_string();

  auto barrier = link->barrier();
  EXPECT_TRUE(get(barrier).ok());

  // Every command carried this link's generation and a distinct request id.
  auto seen = fake_->seen();
  ASSERT_EQ(seen.size(), 6u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].control_generation, link->control_generation());
    if (i > 0) {
      EXPECT_GT(seen[i].request_id, seen[i - 1].request_id);
    }
  }
  EXPECT_EQ(seen[1].path.remote, address("203.0.113.9"));
  EXPECT_EQ(fake_->installed_count(), 0u);
  EXPECT_EQ(link->in_flight(), 0u);
  EXPECT_EQ(link->statistics().completions, 6u);
}

TEST_F(DataPlaneLinkTest, RequestIdsMatchCompletionsThatComeBackOutOfOrder) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  // Even SPIs are refused: each future must get its own SA's answer.
  fake_->set_decide([](const shared::channel::Command& command) -> std::optional<CompletionCode> {
    shared::channel::InstallSaPayload payload;
    if (!shared::channel::decode_payload(command, payload)) return std::nullopt;
    bool even = payload.sa.spi % 2 == 0;
    shared::channel::zeroise_keys(payload);
    if (even) return CompletionCode::kTableFull;
    return std::nullopt;
  });
  fake_->hold_completions(true);
  std::vector<std::future<CommandResult>> futures;
  for (uint32_t spi = 0x100; spi < 0x120; ++spi) {
    auto submitted = link->install(make_sa(spi, SaDirection::kOutbound, spi));
    ASSERT_TRUE(submitted.ok()) << submitted.error();
    futures.push_back(std::move(*submitted));
  }
  ASSERT_TRUE(fake_->wait_seen(32));
  fake_->release_held(/*reverse_order=*/true);
  for (uint32_t i = 0; i < futures.size(); ++i) {
    ASSERT_EQ(futures[i].wait_for(5s), std::future_status::ready);
    CommandResult result = futures[i].get();
    uint32_t spi = 0x100 + i;
    EXPECT_EQ(result.completion.code, spi % 2 == 0 ? CompletionCode::kTableFull : CompletionCode::kOk)
        << "spi " << spi;
  }
  // Refused installs left the registry; accepted ones are owned.
  EXPECT_EQ(link->owned_sa_count(), 16u);
  EXPECT_FALSE(link->owned_sa_slot(0x100, SaDirection::kOutbound).has_value());
  EXPECT_TRUE(link->owned_sa_slot(0x101, SaDirection::kOutbound).has_value());
}

TEST_F(DataPlaneLinkTest, FullCommandRingFailsClearlyAfterTheTimeoutAndWaitsWithinIt) {
  DataPlaneLinkOptions options = link_options();
  options.submit_timeout = 50ms;
  auto link = attach(options);
  ASSERT_NE(link, nullptr);
  fake_->set_consuming(false);
  std::vector<std::future<CommandResult>> futures;
  size_t capacity = fake_options_.capacities.command;
  for (uint32_t i = 0; i < capacity; ++i) {
    auto submitted = link->install(make_sa(0x2000 + i, SaDirection::kInbound, 1));
    ASSERT_TRUE(submitted.ok()) << i << ": " << submitted.error();
    futures.push_back(std::move(*submitted));
  }
  auto started = std::chrono::steady_clock::now();
  auto refused = link->install(make_sa(0x3000, SaDirection::kInbound, 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("command ring full"), std::string::npos) << refused.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "never stuck";
  EXPECT_FALSE(link->owned_sa_slot(0x3000, SaDirection::kInbound)) << "a refused submit owns nothing";

  // Within the timeout, a consumer that resumes lets the submit through.
  std::thread resume([this] {
    std::this_thread::sleep_for(20ms);
    fake_->set_consuming(true);
  });
  auto waited = std::async(std::launch::async, [&] {
    // submit_timeout is 50 ms; the consumer resumes after 20.
    return link->install(make_sa(0x3001, SaDirection::kInbound, 1));
  });
  auto late = waited.get();
  resume.join();
  EXPECT_TRUE(get(late).ok());
  for (auto& future : futures) {
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(future.get().ok());
  }
}

TEST_F(DataPlaneLinkTest, InFlightLimitRefusesWithAClearMessage) {
  DataPlaneLinkOptions options = link_options();
  options.max_in_flight = 4;
  options.submit_timeout = 30ms;
  auto link = attach(options);
  ASSERT_NE(link, nullptr);
  fake_->hold_completions(true);
  std::vector<std::future<CommandResult>> futures;
  for (uint32_t i = 0; i < 4; ++i) {
    auto submitted = link->install(make_sa(0x4000 + i, SaDirection::kInbound, 1));
    ASSERT_TRUE(submitted.ok()) << submitted.error();
    futures.push_back(std::move(*submitted));
  }
  auto refused = link->remove(0x4000, SaDirection::kInbound);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("4 commands in flight"), std::string::npos) << refused.error();
  EXPECT_TRUE(link->owned_sa_slot(0x4000, SaDirection::kInbound)) << "refused remove changed nothing";
  ASSERT_TRUE(fake_->wait_seen(4));
  fake_->release_held();
  for (auto& future : futures) {
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(future.get().ok());
  }
}

TEST_F(DataPlaneLinkTest, InFlightLimitNeverExceedsTheCompletionRing) {
  DataPlaneLinkOptions options = link_options();
  options.max_in_flight = 100'000;
  options.submit_timeout = 30ms;
  auto link = attach(options);
  ASSERT_NE(link, nullptr);
  fake_->hold_completions(true);
  size_t completion_slots = fake_options_.capacities.completion;
  std::vector<std::future<CommandResult>> futures;
  for (size_t i = 0; i < completion_slots; ++i) {
    auto submitted = link->barrier();
    ASSERT_TRUE(submitted.ok()) << i << ": " << submitted.error();
    futures.push_back(std::move(*submitted));
  }
  auto refused = link->barrier();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find(std::to_string(completion_slots) + " commands in flight"),
            std::string::npos)
      << refused.error();
  ASSERT_TRUE(fake_->wait_seen(completion_slots));
  fake_->release_held();
  for (auto& future : futures) {
    ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(future.get().ok());
  }
}

TEST_F(DataPlaneLinkTest, UnansweredCommandTimesOutInsteadOfHanging) {
  DataPlaneLinkOptions options = link_options();
  options.command_timeout = 50ms;
  auto link = attach(options);
  ASSERT_NE(link, nullptr);
  fake_->set_answering(false);
  auto submitted = link->update_path(1, make_path("203.0.113.1", 4500));
  CommandResult result = get(submitted);
  EXPECT_EQ(result.outcome, LinkOutcome::kTimedOut);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(link->statistics().timeouts, 1u);
  EXPECT_EQ(link->in_flight(), 0u);
}

TEST_F(DataPlaneLinkTest, EventsReachTheirSubscribers) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  std::mutex mutex;
  std::vector<Event> new_source;
  std::vector<Event> everything;
  link->subscribe(EventKind::kNewSourceAddress, [&](const Event& event) {
    std::lock_guard lock(mutex);
    new_source.push_back(event);
  });
  uint64_t all = link->subscribe_all([&](const Event& event) {
    std::lock_guard lock(mutex);
    everything.push_back(event);
  });

  Event moved;
  moved.kind = EventKind::kNewSourceAddress;
  moved.spi = 0x1234;
  moved.tunnel_id = 3;
  moved.new_remote = {address("203.0.113.50"), 40000};
  Event soft;
  soft.kind = EventKind::kSoftLifetime;
  soft.spi = 0x1235;
  soft.bytes = 1u << 30;
  ASSERT_TRUE(fake_->region().event_ring().try_push(moved));
  ASSERT_TRUE(fake_->region().event_ring().try_push(soft));

  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (everything.size() == 2 || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(everything.size(), 2u);
    ASSERT_EQ(new_source.size(), 1u);
    EXPECT_EQ(new_source[0].spi, 0x1234u);
    EXPECT_EQ(new_source[0].new_remote.port, 40000);
    EXPECT_EQ(everything[1].kind, EventKind::kSoftLifetime);
  }
  link->unsubscribe(all);
  ASSERT_TRUE(fake_->region().event_ring().try_push(moved));
  auto barrier = link->barrier();  // a round trip: the event was drained by then
  EXPECT_TRUE(get(barrier).ok());
  std::this_thread::sleep_for(20ms);
  std::lock_guard lock(mutex);
  EXPECT_EQ(everything.size(), 2u) << "unsubscribed";
  EXPECT_EQ(new_source.size(), 2u);
}

TEST_F(DataPlaneLinkTest, PuntedIkeReachesTheReceiverAndRepliesLandInTheInjectRing) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  IkeTransport& transport = *link;
  std::promise<IkeDatagram> received;
  transport.set_receiver([&](const IkeDatagram& datagram) { received.set_value(datagram); });

  PuntPacket punt;
  punt.port_id = 0;
  punt.source = {address("198.51.100.7"), 61000};
  punt.destination = {address("192.0.2.1"), kIkeNatTPort};
  punt.arrival_time_ns = 12345;
  std::vector<uint8_t> request(300, 0x2e);
  ASSERT_TRUE(punt.assign(request));
  ASSERT_TRUE(fake_->region().punt_ring().try_push(punt));

  auto future = received.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  IkeDatagram datagram = future.get();
  EXPECT_EQ(datagram.remote, punt.source);
  EXPECT_EQ(datagram.local, punt.destination);
  EXPECT_TRUE(datagram.non_esp_marker);
  EXPECT_EQ(datagram.arrival_time_ns, 12345u);
  EXPECT_EQ(datagram.message, request);

  std::vector<uint8_t> response(200, 0x2f);
  ASSERT_TRUE(transport.send(datagram.reply_with(response)).ok());
  InjectPacket injected;
  ASSERT_TRUE(fake_->region().inject_ring().try_pop(injected));
  EXPECT_EQ(injected.source, punt.destination);
  EXPECT_EQ(injected.destination, punt.source);
  EXPECT_TRUE(injected.non_esp_marker);
  EXPECT_EQ(injected.version, shared::channel::kMessageVersion);
  auto message = injected.message();
  EXPECT_EQ(std::vector<uint8_t>(message.begin(), message.end()), response);

  // On 500 there is no marker (RFC 3948 2.2); oversized messages do not fit.
  IkeDatagram on_500 = datagram.reply_with(response);
  on_500.local.port = kIkePort;
  auto marker_refused = transport.send(on_500);
  EXPECT_FALSE(marker_refused.ok());
  on_500.non_esp_marker = false;
  EXPECT_TRUE(transport.send(on_500).ok());
  ASSERT_TRUE(fake_->region().inject_ring().try_pop(injected));
  EXPECT_FALSE(injected.non_esp_marker);
  EXPECT_EQ(injected.source.port, kIkePort);
  auto too_big = transport.send(datagram.reply_with(std::vector<uint8_t>(5000, 1)));
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.error().find("RFC 7383"), std::string::npos) << too_big.error();

  // Inject ring full: refused at once, counted.
  size_t sent = 0;
  while (transport.send(on_500).ok()) ++sent;
  EXPECT_EQ(sent, fake_options_.capacities.inject);
  EXPECT_EQ(link->statistics().inject_ring_full, 1u);
}

TEST_F(DataPlaneLinkTest, DataPlaneRestartRePushesEveryOwnedSa) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  std::promise<ResyncReport> resynced;
  link->set_resync_observer([&](const ResyncReport& report) { resynced.set_value(report); });
  std::vector<std::future<CommandResult>> futures;
  for (uint32_t i = 0; i < 100; ++i) {
    auto submitted = link->install(make_sa(0x5000 + i, i % 2 ? SaDirection::kOutbound : SaDirection::kInbound,
                                           10 + i / 2, uint8_t(i)));
    ASSERT_TRUE(submitted.ok()) << submitted.error();
    futures.push_back(std::move(*submitted));
  }
  for (auto& future : futures) EXPECT_TRUE(future.get().ok());
  auto removed = link->remove(0x5000, SaDirection::kInbound);
  EXPECT_TRUE(get(removed).ok());
  auto moved = link->update_path(11, make_path("203.0.113.77", 33333));
  EXPECT_TRUE(get(moved).ok());
  // One install outstanding when the data plane dies: it must complete
  // with the restarted data plane's answer.
  fake_->hold_completions(true);
  auto outstanding = link->install(make_sa(0x6000, SaDirection::kInbound, 99, 0x66));
  ASSERT_TRUE(outstanding.ok());
  ASSERT_TRUE(fake_->wait_seen(103));
  uint64_t old_generation = link->data_plane_generation();

  restart_data_plane();
  auto report_future = resynced.get_future();
  ASSERT_EQ(report_future.wait_for(10s), std::future_status::ready);
  ResyncReport report = report_future.get();
  EXPECT_EQ(report.sa_count, 100u);  // 100 installed - 1 removed + the outstanding one
  EXPECT_EQ(report.installed, 100u);
  EXPECT_EQ(report.failed, 0u) << report.first_failure;
  EXPECT_GT(report.data_plane_generation, old_generation);
  EXPECT_GT(report.duration.count(), 0);
  EXPECT_EQ(link->state(), LinkState::kAttached);
  EXPECT_EQ(link->statistics().resyncs, 1u);

  CommandResult outstanding_result = get(outstanding);
  EXPECT_TRUE(outstanding_result.ok()) << outstanding_result.to_string();

  EXPECT_EQ(fake_->installed_count(), 100u);
  EXPECT_FALSE(fake_->installed(0x5000, SaDirection::kInbound)) << "removed: not re-pushed";
  for (uint32_t i = 1; i < 100; ++i) {
    SaDirection direction = i % 2 ? SaDirection::kOutbound : SaDirection::kInbound;
    auto sa = fake_->installed(0x5000 + i, direction);
    ASSERT_TRUE(sa) << i;
    EXPECT_EQ(sa->cipher_key[0], uint8_t(i)) << "keys re-pushed";
    if (sa->tunnel_id == 11) {
      EXPECT_EQ(sa->path.remote, address("203.0.113.77")) << "the moved path, not the installed one";
      EXPECT_EQ(sa->path.remote_port, 33333);
    }
  }
  // Commands keep flowing to the new data plane, with a newer generation.
  auto after = link->update_path(11, make_path("203.0.113.78", 4500));
  EXPECT_TRUE(get(after).ok());
  auto seen = fake_->seen();
  EXPECT_EQ(seen.back().control_generation, link->control_generation());
}

TEST_F(DataPlaneLinkTest, SelectorUpdatesFollowTheSaIntoResyncsAndRefusalsRestoreThem) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  std::promise<ResyncReport> resynced;
  link->set_resync_observer([&](const ResyncReport& report) { resynced.set_value(report); });
  auto installed = link->install(make_sa(0x7001, SaDirection::kOutbound, 5, 1));
  ASSERT_TRUE(get(installed).ok());
  auto kept = link->install(make_sa(0x7002, SaDirection::kInbound, 5, 2));
  ASSERT_TRUE(get(kept).ok());
  std::vector<shared::TrafficSelector> remote = {
      shared::TrafficSelector::from_prefix(*shared::IpPrefix::parse("10.50.0.0/16")),
      shared::TrafficSelector::from_prefix(*shared::IpPrefix::parse("10.51.0.0/16"))};
  auto updated = link->update_selectors(0x7001, SaDirection::kOutbound, {}, remote);
  ASSERT_TRUE(get(updated).ok());
  ASSERT_EQ(fake_->installed(0x7001, SaDirection::kOutbound)->remote_selector_count, 2);
  // Refused by the data plane: the registry keeps what the data plane has.
  fake_->set_decide([](const shared::channel::Command& command) -> std::optional<CompletionCode> {
    if (command.kind == CommandKind::kUpdateSelectors) return CompletionCode::kTableFull;
    return std::nullopt;
  });
  std::vector<shared::TrafficSelector> refused = {
      shared::TrafficSelector::from_prefix(*shared::IpPrefix::parse("10.99.0.0/16"))};
  auto refusal = link->update_selectors(0x7002, SaDirection::kInbound, refused, refused);
  EXPECT_EQ(get(refusal).completion.code, CompletionCode::kTableFull);
  fake_->set_decide(nullptr);
  // Refused before sending: what no data plane could accept.
  EXPECT_FALSE(link->update_selectors(0x7001, SaDirection::kOutbound, remote, {}).ok()) << "no route left";
  std::vector<shared::TrafficSelector> nine(shared::kMaxSelectors + 1, remote[0]);
  EXPECT_FALSE(link->update_selectors(0x7002, SaDirection::kInbound, nine, remote).ok());

  restart_data_plane();
  auto report = resynced.get_future();
  ASSERT_EQ(report.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(report.get().installed, 2u);
  auto outbound = fake_->installed(0x7001, SaDirection::kOutbound);
  ASSERT_TRUE(outbound);
  ASSERT_EQ(outbound->remote_selector_count, 2) << "re-pushed with the updated selectors";
  EXPECT_EQ(outbound->remote_selectors[1], remote[1]);
  auto inbound = fake_->installed(0x7002, SaDirection::kInbound);
  ASSERT_TRUE(inbound);
  EXPECT_EQ(inbound->local_selector_count, make_sa(0x7002, SaDirection::kInbound, 5, 2).local_selector_count)
      << "the refused update was rolled back in the registry";
  EXPECT_EQ(inbound->local_selectors[0], make_sa(0x7002, SaDirection::kInbound, 5, 2).local_selectors[0]);
}

// Issue 3 asks how long re-pushing 100k SAs takes. Against the fake data
// plane this measures the link's side (registry walk, ring pushes,
// completion matching), not the real SA table; the figure is printed, never
// asserted (timings belong to benchmarks).
TEST(DataPlaneLinkScaleTest, ResyncOfOneHundredThousandSasIsReported) {
  constexpr uint32_t kSaCount = 100'000;
  ScratchDirectory scratch;
  FakeDataPlaneOptions fake_options;
  fake_options.directory = scratch.path();
  fake_options.capacities = {4096, 4096, 64, 8, 8};
  auto fake = FakeDataPlane::start(fake_options);
  ASSERT_TRUE(fake.ok()) << fake.error();
  DataPlaneLinkOptions options;
  options.region_name = fake_options.name;
  options.directory = scratch.path();
  options.check_interval = 2ms;
  options.command_timeout = 60000ms;
  options.submit_timeout = 60000ms;
  auto link = DataPlaneLink::attach(options);
  ASSERT_TRUE(link.ok()) << link.error();
  std::atomic<uint32_t> installed{0};
  for (uint32_t i = 0; i < kSaCount; ++i) {
    ASSERT_TRUE((*link)->install(make_sa(0x100000 + i, SaDirection::kInbound, i + 1),
                                 [&](const CommandResult& result) {
                                   if (result.ok()) installed.fetch_add(1);
                                 }).ok());
  }
  auto barrier = (*link)->barrier();
  ASSERT_TRUE(barrier.ok());
  ASSERT_EQ(barrier->wait_for(60s), std::future_status::ready);
  ASSERT_EQ(installed.load(), kSaCount);

  std::promise<ResyncReport> resynced;
  (*link)->set_resync_observer([&](const ResyncReport& report) { resynced.set_value(report); });
  fake.value().reset();
  fake_options.replace = true;
  auto restarted = FakeDataPlane::start(fake_options);
  ASSERT_TRUE(restarted.ok()) << restarted.error();
  auto report_future = resynced.get_future();
  ASSERT_EQ(report_future.wait_for(60s), std::future_status::ready);
  ResyncReport report = report_future.get();
  EXPECT_EQ(report.installed, kSaCount) << report.first_failure;
  EXPECT_EQ((*restarted)->installed_count(), kSaCount);
  double ms = std::chrono::duration<double, std::milli>(report.duration).count();
  std::printf("resync of %u SAs to a restarted (fake) data plane: %.1f ms\n", kSaCount, ms);
  ::testing::Test::RecordProperty("resync_100k_ms", std::to_string(ms));
}

TEST_F(DataPlaneLinkTest, DataPlaneGoneAndBackWithoutRestartIsNoResync) {
  DataPlaneLinkOptions options = link_options();
  options.submit_timeout = 500ms;
  auto link = attach(options);
  ASSERT_NE(link, nullptr);
  fake_->set_heartbeating(false);
  EXPECT_TRUE(link->wait_for_state(LinkState::kDataPlaneDown, 3000ms));
  // Submits wait for the data plane (up to submit_timeout): one that comes
  // back within it lets them through, with no resync (nothing was lost).
  std::thread back([this] {
    std::this_thread::sleep_for(30ms);
    fake_->set_heartbeating(true);
  });
  auto waited = link->install(make_sa(0x7000, SaDirection::kInbound, 1));
  back.join();
  ASSERT_TRUE(waited.ok()) << waited.error();
  EXPECT_TRUE(get(waited).ok());
  EXPECT_EQ(link->statistics().resyncs, 0u);

  // One that does not come back: the submit fails after the timeout, saying why.
  fake_->set_heartbeating(false);
  EXPECT_TRUE(link->wait_for_state(LinkState::kDataPlaneDown, 3000ms));
  auto refused = link->remove(0x7000, SaDirection::kInbound);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("data plane not ready (data_plane_down)"), std::string::npos)
      << refused.error();
}

TEST_F(DataPlaneLinkTest, RemovalAndRefusalWipeTheRegistrysKeyMemory) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  auto installed = link->install(make_sa(0x8000, SaDirection::kInbound, 1, 0xc3));
  EXPECT_TRUE(get(installed).ok());
  auto slot = link->owned_sa_slot(0x8000, SaDirection::kInbound);
  ASSERT_TRUE(slot);
  auto holds_key = [](const std::vector<std::byte>& bytes) {
    return std::count(bytes.begin(), bytes.end(), std::byte{0xc3}) >= 32;
  };
  EXPECT_TRUE(holds_key(link->registry_slot_bytes(*slot)));

  auto removed = link->remove(0x8000, SaDirection::kInbound);
  EXPECT_TRUE(get(removed).ok());
  std::vector<std::byte> wiped = link->registry_slot_bytes(*slot);
  ASSERT_EQ(wiped.size(), sizeof(SaDescriptor));
  EXPECT_TRUE(std::all_of(wiped.begin(), wiped.end(), [](std::byte b) { return b == std::byte{0}; }))
      << "the removed SA's slot is all zeros";

  fake_->set_decide([](const shared::channel::Command&) { return CompletionCode::kBadParameters; });
  auto refused = link->install(make_sa(0x8001, SaDirection::kInbound, 1, 0xc3));
  EXPECT_EQ(get(refused).completion.code, CompletionCode::kBadParameters);
  for (size_t i = 0; i < 2; ++i) {
    auto bytes = link->registry_slot_bytes(i);
    EXPECT_FALSE(holds_key(bytes)) << "slot " << i;
  }
  EXPECT_EQ(link->owned_sa_count(), 0u);
}

TEST_F(DataPlaneLinkTest, HeartbeatsTheControlSideAndClosesCleanly) {
  {
    auto link = attach();
    ASSERT_NE(link, nullptr);
    uint64_t first = fake_->region().peer().heartbeat_ns;
    std::this_thread::sleep_for(30ms);  // several check intervals
    EXPECT_GT(fake_->region().peer().heartbeat_ns, first) << "the link keeps beating";
    EXPECT_TRUE(fake_->region().peer_alive(1s));
    EXPECT_EQ(fake_->region().peer().pid, uint64_t(getpid()));

    // Punts with no receiver are counted, not kept.
    PuntPacket punt;
    punt.source = {address("198.51.100.7"), 500};
    punt.destination = {address("192.0.2.1"), 500};
    ASSERT_TRUE(punt.assign(std::vector<uint8_t>(40, 1)));
    ASSERT_TRUE(fake_->region().punt_ring().try_push(punt));
    auto barrier = link->barrier();
    EXPECT_TRUE(get(barrier).ok());
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (link->statistics().punts_dropped == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(link->statistics().punts_dropped, 1u);
  }
  EXPECT_FALSE(fake_->region().peer_alive(1s)) << "a closed link is not alive at once";
}

TEST_F(DataPlaneLinkTest, SecondControlPlaneIsRefusedClearly) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  auto second = DataPlaneLink::attach(link_options());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find("another control plane (pid"), std::string::npos) << second.error();
}

TEST_F(DataPlaneLinkTest, MissingRegionErrorSaysWhatToCheck) {
  DataPlaneLinkOptions options = link_options();
  options.region_name = "no-such-region";
  auto link = DataPlaneLink::attach(options);
  ASSERT_FALSE(link.ok());
  EXPECT_NE(link.error().find("no segw region 'no-such-region' in " + scratch_.path()),
            std::string::npos)
      << link.error();
  EXPECT_NE(link.error().find("[channel] section"), std::string::npos) << link.error();
}

TEST_F(DataPlaneLinkTest, RestartedControlPlaneReadsTheInventoryAdoptsAndIgnoresStaleAnswers) {
  uint64_t first_generation;
  uint64_t first_path_generation;
  {
    auto first = attach();
    ASSERT_NE(first, nullptr);
    for (uint32_t i = 0; i < 3; ++i) {
      auto submitted = first->install(make_sa(0x9000 + i, SaDirection::kInbound, 20 + i));
      EXPECT_TRUE(get(submitted).ok());
    }
    auto moved = first->update_path(20, make_path("203.0.113.20", 4500));
    EXPECT_TRUE(get(moved).ok());
    first_path_generation = fake_->seen().back().path_generation;
    first_generation = first->control_generation();
    // A command whose answer the first control plane never reads.
    fake_->hold_completions(true);
    auto orphan = first->barrier();
    ASSERT_TRUE(orphan.ok());
    ASSERT_TRUE(fake_->wait_seen(5));
  }  // the first control plane exits; the data plane keeps its SAs

  auto second = attach();
  ASSERT_NE(second, nullptr);
  EXPECT_GT(second->control_generation(), first_generation);
  fake_->hold_completions(false);
  fake_->release_held();  // the predecessor's answer arrives now

  auto inventory = second->read_inventory();
  ASSERT_TRUE(inventory.ok()) << inventory.error();
  ASSERT_EQ(inventory->size(), 3u);
  for (const InventoryEntry& entry : *inventory) {
    EXPECT_EQ(entry.record.direction, SaDirection::kInbound);
    if (entry.record.tunnel_id == 20) {
      EXPECT_EQ(entry.record.path.remote, address("203.0.113.20"));
      EXPECT_EQ(entry.record.path_generation, first_path_generation);
    }
    EXPECT_EQ(describe(entry).find("a5a5"), std::string::npos) << "no key bytes in a dump line";
  }
  // The daemon restores keys from its own state; it has lost SA 0x9002.
  auto resumed = second->resume(
      [](const shared::channel::SaInventoryRecord& record) -> std::optional<SaDescriptor> {
        if (record.spi == 0x9002) return std::nullopt;
        return make_sa(record.spi, record.direction, record.tunnel_id);
      });
  ASSERT_TRUE(resumed.ok()) << resumed.error();
  EXPECT_EQ(resumed->adopted, 2u);
  ASSERT_EQ(resumed->orphans.size(), 1u);
  EXPECT_EQ(resumed->orphans[0].spi, 0x9002u);
  EXPECT_TRUE(second->owned_sa_slot(0x9000, SaDirection::kInbound));
  EXPECT_TRUE(second->adopt(make_sa(0x9002, SaDirection::kInbound, 22)).ok());
  EXPECT_EQ(second->owned_sa_count(), 3u);
  EXPECT_FALSE(second->adopt(make_sa(0x9000, SaDirection::kInbound, 20)).ok()) << "owned twice";

  // New path updates beat the predecessor's generation; its stale answer was ignored.
  auto moved = second->update_path(20, make_path("203.0.113.21", 4500));
  EXPECT_TRUE(get(moved).ok());
  EXPECT_GT(fake_->seen().back().path_generation, first_path_generation);
  EXPECT_EQ(second->statistics().stale_completions, 1u);

  // Adopted SAs are owned like any other: a data plane restart gets them back.
  std::promise<ResyncReport> resynced;
  second->set_resync_observer([&](const ResyncReport& report) { resynced.set_value(report); });
  restart_data_plane();
  auto report = resynced.get_future();
  ASSERT_EQ(report.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(report.get().installed, 3u);
  EXPECT_EQ(fake_->installed_count(), 3u);
  auto moved_sa = fake_->installed(0x9000, SaDirection::kInbound);
  ASSERT_TRUE(moved_sa);
  EXPECT_EQ(moved_sa->path.remote, address("203.0.113.21")) << "latest path, not the restored one";
}

TEST_F(DataPlaneLinkTest, PollWithoutServiceThread) {
  DataPlaneLinkOptions options = link_options();
  options.service_thread = false;
  auto attached = DataPlaneLink::attach(options);
  ASSERT_TRUE(attached.ok()) << attached.error();
  DataPlaneLink& link = **attached;
  bool done = false;
  CommandResult result;
  ASSERT_TRUE(link.install(make_sa(0xa000, SaDirection::kOutbound, 1), [&](const CommandResult& r) {
    result = r;
    done = true;
  }).ok());
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    if (link.poll() == 0) std::this_thread::sleep_for(100us);
  }
  ASSERT_TRUE(done);
  EXPECT_TRUE(result.ok());
}

TEST_F(DataPlaneLinkTest, InvalidArgumentsAreRefusedBeforeSending) {
  auto link = attach();
  ASSERT_NE(link, nullptr);
  EXPECT_FALSE(link->install(make_sa(0, SaDirection::kInbound, 1)).ok());
  auto first = link->install(make_sa(0xb000, SaDirection::kInbound, 1));
  EXPECT_TRUE(get(first).ok());
  auto twice = link->install(make_sa(0xb000, SaDirection::kInbound, 1));
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().find("already owned"), std::string::npos) << twice.error();
  shared::PathDescriptor mixed = make_path("2001:db8::1", 4500);
  EXPECT_FALSE(link->update_path(1, mixed).ok());
  EXPECT_FALSE(link->remove(0, SaDirection::kOutbound).ok());
  EXPECT_EQ(fake_->seen().size(), 1u) << "nothing else reached the data plane";
}

}  // namespace
}  // namespace segw::cp::dp_link
