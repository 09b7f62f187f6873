// Anti-replay window benchmarks: per packet what the inbound burst does
// (infer_sequence, check before crypto, update after the ICV verified) on
// one dp::ReplayWindow, for in-order and reordered arrival, with and without
// ESN, and across the 2^32 boundary of an ESN window (RFC 4303 Appendix A).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/micro/bench_support.h"
#include "bench/micro/benchmarks.h"
#include "dataplane/esp/replay_window.h"

namespace segw::bench {

namespace {

using dp::ReplayVerdict;
using dp::ReplayWindow;

enum class Pattern { kInOrder, kReordered, kEsnInOrder, kEsnWrap, kEsnWrapReordered };

struct PatternInfo {
  Pattern pattern;
  const char* name;
  bool esn;
  bool wrap;       // every cycle crosses 2^32 (ESN high half 0 -> 1)
  bool reordered;  // blocks of window/2 sequence numbers arrive shuffled
};

constexpr PatternInfo kPatterns[] = {
    {Pattern::kInOrder, "in_order", false, false, false},
    {Pattern::kReordered, "reordered", false, false, true},
    {Pattern::kEsnInOrder, "esn_in_order", true, false, false},
    {Pattern::kEsnWrap, "esn_wrap", true, true, false},
    {Pattern::kEsnWrapReordered, "esn_wrap_reordered", true, true, true},
};

constexpr uint32_t kWindows[] = {64, 1024, 4096};

// Sequence numbers of one cycle when not wrapping: the pattern repeats
// shifted up by this much, the window never restarts.
constexpr uint32_t kCycle = 65536;
// Non-ESN streams restart below this (a 32-bit sequence number may not
// cycle, RFC 4303 3.3.3).
constexpr uint64_t kNonEsnLimit = uint64_t{1} << 31;

// A window with its own zeroed slots, as SaTables lays one out behind an SA.
class WindowUnderTest {
 public:
  WindowUnderTest(uint32_t window, bool esn)
      : slot_count_(ReplayWindow::slot_count_for(window)),
        slots_(new std::atomic<uint64_t>[slot_count_]),
        window_size_(window),
        esn_(esn) {
    restart(0);
  }

  // A fresh window whose top is `top` (0: nothing received yet).
  void restart(uint64_t top) {
    for (uint32_t i = 0; i < slot_count_; ++i) slots_[i].store(0, std::memory_order_relaxed);
    window_.init(window_size_, esn_, slots_.get());
    if (top != 0) (void)window_.update(top);
  }

  // One packet as the inbound burst handles it; true when accepted.
  bool receive(uint32_t sequence_low) {
    uint64_t sequence = window_.infer_sequence(sequence_low);
    if (window_.check(sequence) != ReplayVerdict::kAccept) return false;
    return window_.update(sequence) == ReplayVerdict::kAccept;
  }

 private:
  uint32_t slot_count_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
  uint32_t window_size_;
  bool esn_;
  ReplayWindow window_;
};

// Offsets 0..length-1, shuffled within blocks of `block` when reordering:
// every sequence number is then within window/2 of the highest one seen, so
// all are accepted.
std::vector<uint32_t> offsets(uint32_t length, uint32_t block, bool reordered) {
  std::vector<uint32_t> v(length);
  for (uint32_t i = 0; i < length; ++i) v[i] = i;
  if (reordered) {
    std::mt19937 random(0xe5f + block);
    for (uint32_t start = 0; start < length; start += block)
      std::shuffle(v.begin() + start, v.begin() + std::min(length, start + block), random);
  }
  return v;
}

void bm_replay(benchmark::State& state, PatternInfo info, uint32_t window) {
  WindowUnderTest w(window, info.esn);
  // Wrapping cycles start one window below 2^32 and end one window above it,
  // so half the packets are inferred with the window spanning both halves
  // (Appendix A case B); the window restarts for each cycle (a memset of
  // window/32 slots per 2 x window packets, counted in the time).
  uint32_t cycle = info.wrap ? 2 * window : kCycle;
  uint64_t wrap_start = (uint64_t{1} << 32) - window;
  std::vector<uint32_t> order = offsets(cycle, window / 2, info.reordered);
  uint64_t base = info.wrap ? wrap_start : 1;
  if (info.wrap) w.restart(base - 1);
  uint32_t position = 0;
  uint64_t rejected = 0;
  for (auto _ : state) {
    for (uint16_t k = 0; k < kBurst; ++k) rejected += !w.receive(static_cast<uint32_t>(base + order[position + k]));
    position += kBurst;
    if (position == cycle) [[unlikely]] {
      position = 0;
      if (info.wrap) {
        w.restart(base - 1);
      } else {
        base += cycle;
        if (!info.esn && base >= kNonEsnLimit) {
          base = 1;
          w.restart(0);
        }
      }
    }
  }
  if (rejected != 0) state.SkipWithError(("the window rejected " + std::to_string(rejected) + " packets").c_str());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
}

}  // namespace

void register_replay_window_benchmarks() {
  for (const PatternInfo& info : kPatterns)
    for (uint32_t window : kWindows)
      benchmark::RegisterBenchmark(("BM_Replay/" + std::string(info.name) + "/" + std::to_string(window)).c_str(),
                                   bm_replay, info, window);
}

}  // namespace segw::bench
