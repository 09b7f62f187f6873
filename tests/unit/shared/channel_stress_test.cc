// Two-process stress of the channel: the test process creates a region (the
// data plane), fork()s a child that attaches to it by name (the control
// plane, at another address), and both directions run at once:
//   child  -> parent: 1M Commands on the command ring (856-byte slots)
//   parent -> child:  4M Completions on the completion ring (32-byte slots)
// Every message carries its sequence number, a content pattern derived from
// it and a checksum; each consumer checks that nothing is lost, duplicated,
// reordered or torn. Prints the throughput of each direction.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "shared/channel/region.h"
#include "tests/unit/shared/channel_test_support.h"

namespace segw::shared::channel {
namespace {

using testing::pattern_word;

constexpr uint64_t kCommandCount = 1'000'000;
constexpr uint64_t kCompletionCount = 4'000'000;
constexpr size_t kBurst = 32;
// A hung side (a lost message would hang its consumer) fails instead of
// spinning forever.
constexpr auto kDeadline = std::chrono::seconds(60);
constexpr size_t kPayloadWords = kCommandPayloadBytes / sizeof(uint64_t);

Command command_for(uint64_t sequence, uint64_t generation) {
  Command command;
  command.kind = CommandKind::kUpdatePath;
  command.request_id = sequence;
  command.control_generation = generation;
  uint64_t words[kPayloadWords];
  uint64_t checksum = 0;
  for (size_t w = 0; w + 1 < kPayloadWords; ++w) {
    words[w] = pattern_word(sequence, w);
    checksum += words[w];
  }
  words[kPayloadWords - 1] = checksum;
  std::memcpy(command.payload.data(), words, sizeof(words));
  return command;
}

// Empty string when `command` is message `sequence`, intact.
std::string check_command(const Command& command, uint64_t sequence, uint64_t generation) {
  if (command.request_id != sequence) {
    return "command " + std::to_string(command.request_id) + " where " +
           std::to_string(sequence) + " was due (lost, duplicated or reordered)";
  }
  if (command.version != kMessageVersion || command.kind != CommandKind::kUpdatePath ||
      command.control_generation != generation) {
    return "command " + std::to_string(sequence) + ": torn envelope";
  }
  uint64_t words[kPayloadWords];
  std::memcpy(words, command.payload.data(), sizeof(words));
  uint64_t checksum = 0;
  for (size_t w = 0; w + 1 < kPayloadWords; ++w) {
    if (words[w] != pattern_word(sequence, w)) {
      return "command " + std::to_string(sequence) + ": payload word " + std::to_string(w) +
             " corrupt";
    }
    checksum += words[w];
  }
  if (words[kPayloadWords - 1] != checksum) {
    return "command " + std::to_string(sequence) + ": checksum mismatch";
  }
  return {};
}

Completion completion_for(uint64_t sequence) {
  Completion completion;
  completion.request_id = sequence;
  completion.kind = static_cast<CommandKind>(1 + sequence % 5);
  completion.code = static_cast<CompletionCode>(sequence % 11);
  completion.control_generation = pattern_word(sequence, 0);
  completion.detail = static_cast<uint32_t>(pattern_word(sequence, 1));
  completion.reserved2 = static_cast<uint32_t>(completion.control_generation ^ completion.detail ^
                                               sequence);  // checksum
  return completion;
}

std::string check_completion(const Completion& got, uint64_t sequence) {
  if (got.request_id != sequence) {
    return "completion " + std::to_string(got.request_id) + " where " +
           std::to_string(sequence) + " was due (lost, duplicated or reordered)";
  }
  Completion expected = completion_for(sequence);
  if (std::memcmp(&got, &expected, sizeof(Completion)) != 0) {
    return "completion " + std::to_string(sequence) + ": content corrupt";
  }
  if (got.reserved2 != static_cast<uint32_t>(got.control_generation ^ got.detail ^ sequence)) {
    return "completion " + std::to_string(sequence) + ": checksum mismatch";
  }
  return {};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The control plane, in the child. Returns an exit code; the reason goes to
// stderr, the completion throughput (messages/s) to `report_fd`.
int run_control_plane(const std::string& name, const void* parent_header, int report_fd) {
  auto region = Region::attach(name);
  if (!region) {
    std::fprintf(stderr, "child: %s\n", region.error().c_str());
    return 2;
  }
  if (&region->header() == parent_header) {
    std::fprintf(stderr, "child: mapped at the parent's address; the test proves nothing\n");
    return 3;
  }
  uint64_t generation = region->own_generation();
  SpscRing<Command>& commands = region->command_ring();
  SpscRing<Completion>& completions = region->completion_ring();

  std::array<Command, kBurst> outgoing;
  std::array<Completion, kBurst> incoming;
  uint64_t sent = 0;
  uint64_t staged = 0;  // commands built in `outgoing` but not yet pushed
  uint64_t received = 0;
  double received_all = 0;  // seconds until the last completion arrived
  auto start = std::chrono::steady_clock::now();
  while (sent < kCommandCount || received < kCompletionCount) {
    bool progressed = false;
    if (sent < kCommandCount) {
      uint64_t want = std::min<uint64_t>(kBurst, kCommandCount - sent);
      for (; staged < want; ++staged) outgoing[staged] = command_for(sent + staged, generation);
      size_t pushed = commands.push_burst(std::span<const Command>(outgoing.data(), want));
      if (pushed != 0) {
        // Keep the unpushed tail for the next round, in order.
        std::copy(outgoing.begin() + pushed, outgoing.begin() + want, outgoing.begin());
        staged = want - pushed;
        sent += pushed;
        progressed = true;
      }
    }
    size_t popped = completions.pop_burst(incoming);
    for (size_t i = 0; i < popped; ++i) {
      std::string problem = check_completion(incoming[i], received + i);
      if (!problem.empty()) {
        std::fprintf(stderr, "child: %s\n", problem.c_str());
        return 4;
      }
    }
    received += popped;
    if (popped != 0 && received == kCompletionCount) received_all = seconds_since(start);
    progressed |= popped != 0;
    if (!progressed) {
      // Two slow shared cores: give the peer the CPU instead of burning it.
      sched_yield();
      if (std::chrono::steady_clock::now() - start > kDeadline) {
        std::fprintf(stderr, "child: stuck after %" PRIu64 " sent, %" PRIu64 " received\n", sent,
                     received);
        return 5;
      }
    }
  }
  double rate = double(kCompletionCount) / received_all;
  if (write(report_fd, &rate, sizeof(rate)) != ssize_t(sizeof(rate))) return 6;
  return 0;
}

TEST(ChannelStressTest, TwoProcessesBothDirectionsNothingLostDuplicatedReorderedOrTorn) {
  std::string name = "segw-stress-" + std::to_string(getpid());
  RegionCreateOptions options;
  options.backing = RegionBacking::kSharedMemory;
  options.capacities = {1024, 4096, 16, 4, 4};
  auto region = Region::create(name, options);
  ASSERT_TRUE(region.ok()) << region.error();
  region->set_unlink_on_close(true);

  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    // _exit: no gtest teardown, no destructor of the parent's Region copy.
    _exit(run_control_plane(name, &region->header(), report[1]));
  }
  ::close(report[1]);

  SpscRing<Command>& commands = region->command_ring();
  SpscRing<Completion>& completions = region->completion_ring();
  std::array<Command, kBurst> incoming;
  std::array<Completion, kBurst> outgoing;
  uint64_t received = 0;
  uint64_t sent = 0;
  uint64_t staged = 0;
  std::string problem;
  int status = 0;
  bool child_reaped = false;
  double received_all = 0;  // seconds until the last command arrived
  auto start = std::chrono::steady_clock::now();
  // The child's generation is 1 (first control plane of a fresh region).
  while (problem.empty() && (received < kCommandCount || sent < kCompletionCount)) {
    bool progressed = false;
    if (sent < kCompletionCount) {
      uint64_t want = std::min<uint64_t>(kBurst, kCompletionCount - sent);
      for (; staged < want; ++staged) outgoing[staged] = completion_for(sent + staged);
      size_t pushed = completions.push_burst(std::span<const Completion>(outgoing.data(), want));
      if (pushed != 0) {
        std::copy(outgoing.begin() + pushed, outgoing.begin() + want, outgoing.begin());
        staged = want - pushed;
        sent += pushed;
        progressed = true;
      }
    }
    size_t popped = commands.pop_burst(incoming);
    for (size_t i = 0; i < popped && problem.empty(); ++i) {
      problem = check_command(incoming[i], received + i, 1);
    }
    received += popped;
    if (popped != 0 && received == kCommandCount) received_all = seconds_since(start);
    progressed |= popped != 0;
    if (!progressed) {
      sched_yield();
      // A child that failed (and reported why on stderr) stops feeding us.
      if (waitpid(child, &status, WNOHANG) == child) {
        child_reaped = true;
        problem = "the child exited before the parent was done";
      } else if (std::chrono::steady_clock::now() - start > kDeadline) {
        problem = "parent stuck after " + std::to_string(sent) + " sent, " +
                  std::to_string(received) + " received";
      }
    }
  }
  if (!problem.empty() && !child_reaped) kill(child, SIGKILL);
  if (!child_reaped) {
    ASSERT_EQ(waitpid(child, &status, 0), child);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    problem += " (child exit code " + std::to_string(WEXITSTATUS(status)) + ", see stderr)";
  }
  ASSERT_TRUE(problem.empty()) << problem;
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the child reported a failure (see stderr)";
  double completion_rate = 0;
  ASSERT_EQ(read(report[0], &completion_rate, sizeof(completion_rate)),
            ssize_t(sizeof(completion_rate)));
  ::close(report[0]);

  EXPECT_TRUE(commands.empty());
  EXPECT_TRUE(completions.empty());
  EXPECT_EQ(commands.published_count(), kCommandCount);
  EXPECT_EQ(completions.released_count(), kCompletionCount);
  double command_rate = double(kCommandCount) / received_all;
  std::printf("channel stress: commands (856 B) child->parent %.2f M/s, completions (32 B) "
              "parent->child %.2f M/s, both directions at once\n",
              command_rate / 1e6, completion_rate / 1e6);
  RecordProperty("command_messages_per_s", std::to_string(uint64_t(command_rate)));
  RecordProperty("completion_messages_per_s", std::to_string(uint64_t(completion_rate)));
}

}  // namespace
}  // namespace segw::shared::channel
