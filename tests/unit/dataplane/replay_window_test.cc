// Anti-replay window tests (RFC 4303 3.4.3 and Appendix A): fixed cases,
// ESN inference (A2.2), a differential test against a std::set model for
// each window size, anti-replay switched off, and concurrent updates.
#include "dataplane/esp/replay_window.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <latch>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/dataplane/support/dp_test_support.h"

namespace segw::dp {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t k2To32 = uint64_t{1} << 32;

// A window with its own slot storage, laid out as SaTables lays it out.
class OwnedWindow {
 public:
  explicit OwnedWindow(uint32_t size, bool esn = false, bool enforced = true)
      : slots_(ReplayWindow::slot_count_for(size)) {
    window_.init(size, esn, slots_.data(), enforced);
  }
  OwnedWindow(const OwnedWindow&) = delete;
  OwnedWindow& operator=(const OwnedWindow&) = delete;

  ReplayWindow* operator->() { return &window_; }
  ReplayWindow& get() { return window_; }

  // Everything the window's state is made of: top, then every slot.
  std::vector<uint64_t> state() const {
    std::vector<uint64_t> words{window_.top()};
    for (const auto& slot : slots_) words.push_back(slot.load(std::memory_order_relaxed));
    return words;
  }

 private:
  std::vector<std::atomic<uint64_t>> slots_;
  ReplayWindow window_;
};

// The receiver rules of RFC 4303 3.4.3 written the obvious way: the highest
// sequence number accepted and the set of those accepted inside the window.
class ModelWindow {
 public:
  ModelWindow(uint32_t size, bool esn) : size_(size), esn_(esn) {}

  // RFC 4303 A2.2 restated: the sequence number is the one value with these
  // low 32 bits in [bottom, bottom + 2^32), bottom being the lowest position
  // of the window (0 while the window still reaches below sequence 1).
  uint64_t infer(uint32_t low) const {
    if (!esn_) return low;
    uint64_t bottom = top_ + 1 >= size_ ? top_ + 1 - size_ : 0;
    return bottom + static_cast<uint32_t>(low - static_cast<uint32_t>(bottom));
  }

  ReplayVerdict check(uint64_t sequence) const {
    if (sequence == 0) return ReplayVerdict::kTooOld;  // RFC 4303 2.2: the first packet is 1
    if (sequence > top_) return ReplayVerdict::kAccept;
    if (top_ - sequence >= size_) return ReplayVerdict::kTooOld;
    return accepted_.contains(sequence) ? ReplayVerdict::kDuplicate : ReplayVerdict::kAccept;
  }

  ReplayVerdict update(uint64_t sequence) {
    ReplayVerdict verdict = check(sequence);
    if (verdict != ReplayVerdict::kAccept) return verdict;
    accepted_.insert(sequence);
    if (sequence > top_) {
      top_ = sequence;
      // Keep only what the window still covers, so the set stays small.
      uint64_t bottom = top_ + 1 >= size_ ? top_ + 1 - size_ : 0;
      accepted_.erase(accepted_.begin(), accepted_.lower_bound(bottom));
    }
    return verdict;
  }

  uint64_t top() const { return top_; }

 private:
  uint32_t size_;
  bool esn_;
  uint64_t top_ = 0;
  std::set<uint64_t> accepted_;
};

// Marks every sequence number of [first, last] and expects each accepted.
void accept_all(ReplayWindow& window, uint64_t first, uint64_t last) {
  for (uint64_t s = first; s <= last; ++s) ASSERT_EQ(window.update(s), ReplayVerdict::kAccept) << s;
}

// ---------------------------------------------------------------------------
// Fixed cases, window of 64 unless said otherwise.

TEST(ReplayWindow, SlotRingHoldsEveryBlockOfTheWindowPlusOne) {
  for (uint32_t size : {64u, 100u, 1024u, 4000u, 4096u, 32768u}) {
    uint32_t slots = ReplayWindow::slot_count_for(size);
    EXPECT_TRUE(std::has_single_bit(slots)) << size;
    // A window of `size` touches at most size/32 + 1 blocks of 32; one more
    // lets a block be taken over while the oldest is still being read.
    EXPECT_GE(slots, (size + 31) / 32 + 1) << size;
  }
}

TEST(ReplayWindow, InOrderSequenceNumbersAreAccepted) {
  OwnedWindow window(64);
  for (uint64_t s = 1; s <= 1000; ++s) {
    ASSERT_EQ(window->check(s), ReplayVerdict::kAccept) << s;
    ASSERT_EQ(window->update(s), ReplayVerdict::kAccept) << s;
    ASSERT_EQ(window->top(), s);
  }
}

TEST(ReplayWindow, SequenceNumberZeroIsNeverAccepted) {
  OwnedWindow window(64);
  EXPECT_EQ(window->check(0), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->update(0), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->top(), 0u);
}

TEST(ReplayWindow, ReorderedInsideTheWindowIsAcceptedOnce) {
  OwnedWindow window(64);
  ASSERT_EQ(window->update(100), ReplayVerdict::kAccept);
  // Everything the window still covers, newest first (worst-case reorder).
  for (uint64_t s = 99; s >= 37; --s) ASSERT_EQ(window->update(s), ReplayVerdict::kAccept) << s;
  for (uint64_t s = 37; s <= 100; ++s) {
    EXPECT_EQ(window->check(s), ReplayVerdict::kDuplicate) << s;
    EXPECT_EQ(window->update(s), ReplayVerdict::kDuplicate) << s;
  }
  EXPECT_EQ(window->top(), 100u);
}

TEST(ReplayWindow, DuplicatesAreRejected) {
  OwnedWindow window(64);
  ASSERT_EQ(window->update(5), ReplayVerdict::kAccept);
  ASSERT_EQ(window->update(7), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(5), ReplayVerdict::kDuplicate);
  EXPECT_EQ(window->update(7), ReplayVerdict::kDuplicate);
  // Never received: accepted although older than top.
  EXPECT_EQ(window->update(6), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(6), ReplayVerdict::kDuplicate);
}

TEST(ReplayWindow, WindowEdge) {
  OwnedWindow window(64);
  ASSERT_EQ(window->update(1000), ReplayVerdict::kAccept);
  // The window is [top - 63, top]: 937 is its lowest position, 936 is out.
  EXPECT_EQ(window->check(936), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->update(936), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->check(937), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(937), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(937), ReplayVerdict::kDuplicate);
  // One step forward pushes 937 out.
  ASSERT_EQ(window->update(1001), ReplayVerdict::kAccept);
  EXPECT_EQ(window->check(937), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->update(938), ReplayVerdict::kAccept);
}

TEST(ReplayWindow, NewWindowAcceptsEverythingBelowTheFirstPacket) {
  // Before the window has filled, sequence 1 is still inside it.
  OwnedWindow window(64);
  ASSERT_EQ(window->update(64), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(1), ReplayVerdict::kAccept);
  ASSERT_EQ(window->update(65), ReplayVerdict::kAccept);
  EXPECT_EQ(window->check(1), ReplayVerdict::kTooOld);
  EXPECT_EQ(window->check(2), ReplayVerdict::kAccept);
}

TEST(ReplayWindow, JumpShorterThanTheWindowKeepsMarksStillInside) {
  OwnedWindow window(64);
  accept_all(window.get(), 1, 64);
  ASSERT_EQ(window->update(64 + 32), ReplayVerdict::kAccept);
  for (uint64_t s = 1; s <= 32; ++s) EXPECT_EQ(window->check(s), ReplayVerdict::kTooOld) << s;
  for (uint64_t s = 33; s <= 64; ++s) EXPECT_EQ(window->check(s), ReplayVerdict::kDuplicate) << s;
  for (uint64_t s = 65; s < 96; ++s) EXPECT_EQ(window->check(s), ReplayVerdict::kAccept) << s;
}

TEST(ReplayWindow, JumpsPastTheWindowAndTheSlotRingClearTheRightBits) {
  for (uint32_t size : {64u, 1024u}) {
    SCOPED_TRACE("window " + std::to_string(size));
    OwnedWindow window(size);
    uint64_t ring_span = uint64_t{ReplayWindow::slot_count_for(size)} * 32;
    uint64_t top = size;
    accept_all(window.get(), 1, top);
    // Jumps of: one more than the window, exactly the ring (every block lands
    // on the slot that held the same offset before), ring + 1, several rings.
    for (uint64_t jump : {uint64_t{size} + 1, ring_span, ring_span + 1, 5 * ring_span + 17}) {
      SCOPED_TRACE("jump " + std::to_string(jump));
      uint64_t old_top = top;
      top += jump;
      ASSERT_EQ(window->update(top), ReplayVerdict::kAccept);
      // Everything marked before is now behind the window.
      for (uint64_t s = old_top + 1 - size; s <= old_top; ++s)
        ASSERT_EQ(window->check(s), ReplayVerdict::kTooOld) << s;
      // Nothing in the new window was received except its top: no mark of an
      // older block may survive in a slot the new positions map to.
      for (uint64_t s = top + 1 - size; s < top; ++s)
        ASSERT_EQ(window->check(s), ReplayVerdict::kAccept) << s;
      EXPECT_EQ(window->check(top), ReplayVerdict::kDuplicate);
      accept_all(window.get(), top + 1 - size, top - 1);
    }
  }
}

// ---------------------------------------------------------------------------
// Extended sequence numbers (RFC 4303 2.2.1, Appendix A2).

TEST(ReplayWindowEsn, InferenceCaseAWindowInsideOneSubspace) {
  OwnedWindow window(64, /*esn=*/true);
  uint64_t top = (uint64_t{5} << 32) | 1000;
  ASSERT_EQ(window->update(top), ReplayVerdict::kAccept);
  // Bottom of the window: low 937. At or above it: same subspace.
  EXPECT_EQ(window->infer_sequence(937), (uint64_t{5} << 32) | 937);
  EXPECT_EQ(window->infer_sequence(1000), top);
  EXPECT_EQ(window->infer_sequence(5000), (uint64_t{5} << 32) | 5000);
  EXPECT_EQ(window->infer_sequence(0xffffffff), (uint64_t{5} << 32) | 0xffffffff);
  // Below the bottom: the low half has wrapped, next subspace.
  EXPECT_EQ(window->infer_sequence(936), (uint64_t{6} << 32) | 936);
  EXPECT_EQ(window->infer_sequence(0), uint64_t{6} << 32);
}

TEST(ReplayWindowEsn, InferenceCaseBWindowAcrossTwoSubspaces) {
  OwnedWindow window(64, /*esn=*/true);
  uint64_t top = (uint64_t{5} << 32) | 10;
  ASSERT_EQ(window->update(top), ReplayVerdict::kAccept);
  // Bottom = top - 63 = (4 << 32) | 0xffffffcb.
  uint32_t bottom_low = 0xffffffcb;
  EXPECT_EQ(window->infer_sequence(bottom_low), (uint64_t{4} << 32) | bottom_low);
  EXPECT_EQ(window->infer_sequence(0xffffffff), (uint64_t{4} << 32) | 0xffffffff);
  // Below the (wrapped) bottom: the current subspace, old or new.
  EXPECT_EQ(window->infer_sequence(bottom_low - 1), (uint64_t{5} << 32) | (bottom_low - 1));
  EXPECT_EQ(window->infer_sequence(0), uint64_t{5} << 32);
  EXPECT_EQ(window->infer_sequence(10), top);
  EXPECT_EQ(window->infer_sequence(11), top + 1);
}

TEST(ReplayWindowEsn, InferenceAtTheStartNeverGoesBelowSubspaceZero) {
  OwnedWindow window(64, /*esn=*/true);
  ASSERT_EQ(window->update(10), ReplayVerdict::kAccept);
  // RFC A2.2 case B would say "Th - 1"; there is no subspace -1, so a high
  // low value is a (far) jump ahead in subspace 0.
  EXPECT_EQ(window->infer_sequence(0xfffffffb), uint64_t{0xfffffffb});
  EXPECT_EQ(window->infer_sequence(3), 3u);
}

TEST(ReplayWindowEsn, WithoutEsnInferenceIsTheIdentity) {
  OwnedWindow window(64, /*esn=*/false);
  ASSERT_EQ(window->update(0xfffffff0), ReplayVerdict::kAccept);
  EXPECT_EQ(window->infer_sequence(5), 5u);
  EXPECT_EQ(window->infer_sequence(0xffffffff), 0xffffffffu);
}

TEST(ReplayWindowEsn, AcceptsAcrossTheWrap) {
  OwnedWindow window(64, /*esn=*/true);
  uint64_t before_wrap = k2To32 - 10;
  ASSERT_EQ(window->update(before_wrap), ReplayVerdict::kAccept);
  // Low 5 arrives: the sender's counter has wrapped into subspace 1.
  uint64_t after_wrap = window->infer_sequence(5);
  ASSERT_EQ(after_wrap, k2To32 + 5);
  EXPECT_EQ(window->check(after_wrap), ReplayVerdict::kAccept);
  ASSERT_EQ(window->update(after_wrap), ReplayVerdict::kAccept);
  EXPECT_EQ(window->top(), k2To32 + 5);
  // A late packet from before the wrap is still inside the window (case B).
  uint64_t late = window->infer_sequence(0xfffffffd);
  EXPECT_EQ(late, k2To32 - 3);
  EXPECT_EQ(window->update(late), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(window->infer_sequence(0xfffffffd)), ReplayVerdict::kDuplicate);
  EXPECT_EQ(window->update(window->infer_sequence(static_cast<uint32_t>(before_wrap))),
            ReplayVerdict::kDuplicate);
  // Low 0 in subspace 1 is sequence 2^32, a valid ESN sequence number.
  EXPECT_EQ(window->update(window->infer_sequence(0)), ReplayVerdict::kAccept);
  EXPECT_EQ(window->update(k2To32), ReplayVerdict::kDuplicate);
}

TEST(ReplayWindowEsn, WithoutEsnTheCounterDoesNotRollOver) {
  // RFC 4303 3.3.3: without ESN the sender must not cycle; a low value after
  // 2^32 - 1 is an old packet, not a new one.
  OwnedWindow window(64, /*esn=*/false);
  ASSERT_EQ(window->update(0xfffffff0), ReplayVerdict::kAccept);
  ASSERT_EQ(window->update(0xffffffff), ReplayVerdict::kAccept);
  for (uint32_t low : {0u, 1u, 5u, 0xffffff00u}) {
    uint64_t sequence = window->infer_sequence(low);
    EXPECT_EQ(window->check(sequence), ReplayVerdict::kTooOld) << low;
    EXPECT_EQ(window->update(sequence), ReplayVerdict::kTooOld) << low;
  }
  EXPECT_EQ(window->top(), 0xffffffffu);
}

// ---------------------------------------------------------------------------
// enforced = false: the window keeps its state and verdicts, the caller
// (esp_inbound_burst) ignores them. Only the flag changes.

TEST(ReplayWindow, NotEnforcedKeepsStateAndVerdicts) {
  OwnedWindow enforced(64, /*esn=*/true, /*enforced=*/true);
  OwnedWindow relaxed(64, /*esn=*/true, /*enforced=*/false);
  EXPECT_TRUE(enforced->enforced());
  EXPECT_FALSE(relaxed->enforced());
  for (uint64_t s : {k2To32 - 2, k2To32 - 1, k2To32 - 1, k2To32 + 3, k2To32 - 70, uint64_t{0}}) {
    EXPECT_EQ(relaxed->check(s), enforced->check(s)) << s;
    EXPECT_EQ(relaxed->update(s), enforced->update(s)) << s;
    EXPECT_EQ(relaxed->top(), enforced->top());
    EXPECT_EQ(relaxed->infer_sequence(2), enforced->infer_sequence(2));
  }
  EXPECT_EQ(relaxed.state(), enforced.state());
}

// Through the whole inbound path: a replayed ESP packet is dropped as
// kReplay when the tables enforce anti-replay, decapsulated again when not.
class ReplayEnforcement : public testing::MbufLeakCheck, public ::testing::WithParamInterface<bool> {};

TEST_P(ReplayEnforcement, ReplayedPacketsFollowTheTableSetting) {
  const bool anti_replay = GetParam();
  testing::TunnelSpec spec;
  spec.replay_window = 64;
  testing::Gateway sender;
  sender.install(testing::outbound_sa(spec));
  SaTableConfig receiver_config = testing::small_config();
  receiver_config.anti_replay = anti_replay;
  testing::Gateway receiver(receiver_config);
  receiver.install(testing::inbound_sa(spec));
  std::memcpy(&receiver.access.ipv4_be[0], testing::Endpoints::b_ipv4().bytes(), 4);
  receiver.access.ipv4_count = 1;
  ASSERT_FALSE(::testing::Test::HasFailure());
  const EspSa* inbound = receiver.tables->find(spec.spi, shared::SaDirection::kInbound);
  ASSERT_NE(inbound, nullptr);
  EXPECT_EQ(inbound->replay.enforced(), anti_replay);

  std::vector<testing::Bytes> inner;
  for (uint32_t i = 0; i < 3; ++i)
    inner.push_back(testing::make_ipv4_udp(testing::Endpoints::inner_a_ipv4(), testing::Endpoints::inner_b_ipv4(),
                                           1000, 2000, 100 + i, i));
  std::vector<rte_mbuf*> sealed = sender.encapsulate(inner);
  ASSERT_EQ(sealed.size(), inner.size());
  std::vector<rte_mbuf*> replayed;
  for (rte_mbuf* m : sealed) replayed.push_back(testing::to_mbuf(testing::to_bytes(m)));

  std::vector<rte_mbuf*> first = receiver.decapsulate(sealed);
  EXPECT_EQ(first.size(), inner.size());
  std::vector<rte_mbuf*> second = receiver.decapsulate(replayed);
  EXPECT_EQ(second.size(), anti_replay ? 0u : inner.size());
  EXPECT_EQ(receiver.drops(DropReason::kReplay), anti_replay ? inner.size() : 0u);
  EXPECT_EQ(receiver.total_drops(), receiver.drops(DropReason::kReplay));
  // The window still saw everything: top is the last sequence number.
  EXPECT_EQ(inbound->replay.top(), inner.size());
  testing::free_all(first);
  testing::free_all(second);
}

INSTANTIATE_TEST_SUITE_P(AntiReplay, ReplayEnforcement, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("enforced") : std::string("not_enforced");
                         });

// ---------------------------------------------------------------------------
// Differential test: random operations on the window and on the model.

class ReplayWindowDifferential : public ::testing::TestWithParam<uint32_t> {
 protected:
  static constexpr int kOperations = 100'000;

  // A candidate sequence number near the window, drawn so that every region
  // (ahead, inside, at the edge, just left of it, far behind) is hit often.
  static uint64_t candidate(std::mt19937_64& rng, uint64_t top, uint32_t size, uint64_t ring_span) {
    auto back = [top](uint64_t distance) { return top > distance ? top - distance : 0; };
    switch (rng() % 11) {
      case 0:
      case 1: return top + 1;                                       // in order
      case 2: return top + 1 + rng() % (size / 4 + 1);              // small gap
      case 3: return top + size + rng() % (2 * ring_span);          // past window and ring
      case 4:
      case 5: return back(rng() % size);                            // inside: reorder or duplicate
      case 6: return back(size - 1);                                // lowest position
      case 7: return back(size);                                    // just left of it
      case 8: return back(size + rng() % (4 * ring_span));          // far behind
      case 9: return top;                                           // duplicate of the top
      default: return back(rng() % (size + 64)) + rng() % 64;       // around the edges
    }
  }

  // What one run is expected to have exercised, so a draw that stopped
  // reaching some region fails instead of proving little.
  struct Coverage {
    int accepts = 0;
    int duplicates = 0;
    int too_old = 0;
    int checks = 0;
    int misinferred = 0;  // ESN: the window's guess of the high half was not the sender's
  };

  // Runs the random operations. With ESN the receiver sees only the low 32
  // bits and both sides infer the rest, as esp_inbound_burst does.
  static Coverage run(uint32_t size, bool esn, uint64_t start, uint64_t seed) {
    Coverage seen;
    OwnedWindow window(size, esn);
    ModelWindow model(size, esn);
    if (start != 0) {
      EXPECT_EQ(window->update(start), ReplayVerdict::kAccept);
      EXPECT_EQ(model.update(start), ReplayVerdict::kAccept);
    }
    uint64_t ring_span = uint64_t{ReplayWindow::slot_count_for(size)} * 32;
    std::mt19937_64 rng(seed);
    for (int op = 0; op < kOperations; ++op) {
      uint64_t sent = candidate(rng, model.top(), size, ring_span);
      uint64_t sequence;
      bool authentic = true;
      if (esn) {
        bool forged = rng() % 64 == 0;
        uint32_t low = forged ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(sent);
        sequence = model.infer(low);
        EXPECT_EQ(window->infer_sequence(low), sequence) << "op " << op << " low " << low << " top " << model.top();
        if (::testing::Test::HasFailure()) return seen;
        // The high half is covered by the ICV (RFC 4303 2.2.1): a wrong
        // guess fails verification and the window is never updated with it.
        authentic = !forged && sequence == sent;
        seen.misinferred += !forged && sequence != sent;
      } else {
        // Without ESN only the low 32 bits exist, on the wire and in the SA.
        sequence = window->infer_sequence(static_cast<uint32_t>(sent));
      }
      if (!authentic || rng() % 10 < 3) {
        std::vector<uint64_t> before = window.state();
        EXPECT_EQ(window->check(sequence), model.check(sequence))
            << "op " << op << " check " << sequence << " top " << model.top();
        EXPECT_EQ(window.state(), before) << "check() changed the window at op " << op;
        ++seen.checks;
      } else {
        uint64_t top_before = window->top();
        ReplayVerdict expected = model.update(sequence);
        EXPECT_EQ(window->update(sequence), expected)
            << "op " << op << " update " << sequence << " top before " << top_before;
        seen.accepts += expected == ReplayVerdict::kAccept;
        seen.duplicates += expected == ReplayVerdict::kDuplicate;
        seen.too_old += expected == ReplayVerdict::kTooOld;
      }
      EXPECT_EQ(window->top(), model.top()) << "op " << op;
      if (op % 2000 == 0) {
        // Every position around the window agrees, not only those drawn.
        uint64_t top = model.top();
        uint64_t from = top > size + 64 ? top - size - 64 : 0;
        for (uint64_t s = from; s <= top + 64 && !::testing::Test::HasFailure(); ++s)
          EXPECT_EQ(window->check(s), model.check(s)) << "sweep at op " << op << " seq " << s;
      }
      if (::testing::Test::HasFailure()) return seen;
    }
    return seen;
  }
};

TEST_P(ReplayWindowDifferential, MatchesTheModel) {
  Coverage seen = run(GetParam(), /*esn=*/false, 0, 1234 + GetParam());
  EXPECT_GT(seen.checks, kOperations / 5);
  EXPECT_GT(seen.accepts, kOperations / 10);
  EXPECT_GT(seen.duplicates, kOperations / 50);
  EXPECT_GT(seen.too_old, kOperations / 50);
}

TEST_P(ReplayWindowDifferential, MatchesTheModelAcrossTheEsnWrap) {
  // Start a few thousand packets before 2^32 so the run crosses the wrap
  // and spends most of its time in later subspaces. With ESN nothing is
  // "too old": a low value behind the window means the next subspace.
  Coverage seen = run(GetParam(), /*esn=*/true, k2To32 - 3 * uint64_t{GetParam()} - 5000, 99 + GetParam());
  EXPECT_GT(seen.checks, kOperations / 5);
  EXPECT_GT(seen.accepts, kOperations / 10);
  EXPECT_GT(seen.duplicates, kOperations / 50);
  EXPECT_GT(seen.misinferred, kOperations / 50);
}

TEST_P(ReplayWindowDifferential, MatchesTheModelWithoutEsnAtTheEndOfTheCounter) {
  // Non-ESN close to 2^32 - 1: what the sender sends after the end (it
  // should have rekeyed) arrives with small low values, all "too old".
  Coverage seen = run(GetParam(), /*esn=*/false, 0xffffffffull - 4 * uint64_t{GetParam()}, 7 + GetParam());
  EXPECT_GT(seen.accepts, 10);
  EXPECT_GT(seen.too_old, kOperations / 4);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ReplayWindowDifferential, ::testing::Values(64u, 100u, 1024u, 4096u, 32768u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "window" + std::to_string(info.param);
                         });

// ---------------------------------------------------------------------------
// Several workers receiving on one SA (the window is lock-free for that).

constexpr int kThreads = 4;

// EAL pinned the main thread to lcore 0 and new threads inherit that; undo
// it so the threads really run at the same time on every CPU we may use.
void run_on_any_cpu() {
  cpu_set_t any;
  CPU_ZERO(&any);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &any);
  // The kernel keeps the CPUs of this set the process is allowed on.
  pthread_setaffinity_np(pthread_self(), sizeof(any), &any);
}

TEST(ReplayWindowConcurrency, DisjointAndOverlappingSetsInsideOneWindow) {
  // Every sequence number stays inside the window the whole time, so each
  // must be accepted exactly once, whoever gets there first. Rounds with a
  // fresh window repeat for a while; in odd rounds all threads walk the
  // shared numbers in the same order, so they collide on the same slot bit.
  constexpr uint32_t kSize = 4096;
  constexpr auto kRun = 300ms;
  int rounds = 0;
  auto deadline = std::chrono::steady_clock::now() + kRun;
  while (rounds < 4 || std::chrono::steady_clock::now() < deadline) {
    ++rounds;
    OwnedWindow window(kSize);
    std::vector<std::atomic<int>> accepted(kSize + 1);
    std::vector<std::vector<uint64_t>> work(kThreads);
    std::vector<uint64_t> shared_numbers;
    for (uint64_t s = 1; s <= kSize; ++s) {
      if (s % 3 == 0) shared_numbers.push_back(s);  // every thread gets these
      else work[s % kThreads].push_back(s);
    }
    std::mt19937_64 rng(rounds);
    bool same_order = rounds % 2 == 1;
    if (same_order) std::shuffle(shared_numbers.begin(), shared_numbers.end(), rng);
    for (auto& w : work) {
      if (same_order) {
        // Interleave the thread's own numbers with the common sequence.
        std::vector<uint64_t> merged;
        size_t own = 0;
        for (uint64_t s : shared_numbers) {
          merged.push_back(s);
          if (own < w.size()) merged.push_back(w[own++]);
        }
        merged.insert(merged.end(), w.begin() + static_cast<long>(own), w.end());
        w = std::move(merged);
      } else {
        w.insert(w.end(), shared_numbers.begin(), shared_numbers.end());
        std::shuffle(w.begin(), w.end(), rng);
      }
    }

    std::atomic<uint64_t> duplicates{0}, too_old{0};
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        run_on_any_cpu();
        start.arrive_and_wait();
        for (uint64_t s : work[t]) {
          switch (window->update(s)) {
            case ReplayVerdict::kAccept: accepted[s].fetch_add(1, std::memory_order_relaxed); break;
            case ReplayVerdict::kDuplicate: duplicates.fetch_add(1, std::memory_order_relaxed); break;
            case ReplayVerdict::kTooOld: too_old.fetch_add(1, std::memory_order_relaxed); break;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    for (uint64_t s = 1; s <= kSize; ++s)
      ASSERT_EQ(accepted[s].load(), 1) << "round " << rounds << ", sequence " << s;
    ASSERT_EQ(too_old.load(), 0u) << "round " << rounds;
    ASSERT_EQ(duplicates.load(), shared_numbers.size() * (kThreads - 1)) << "round " << rounds;
    ASSERT_EQ(window->top(), kSize) << "round " << rounds;
  }
  RecordProperty("rounds", std::to_string(rounds));
}

class ReplayWindowSliding : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ReplayWindowSliding, NoSequenceAcceptedTwiceNoneRejectedInsideTheWindow) {
  // Threads take fresh sequence numbers from a shared counter in small
  // batches, update them out of order, and replay recent numbers (their own
  // or another thread's). The window slides through many slot-ring turns.
  const uint32_t size = GetParam();
  constexpr uint64_t kMaxSequences = 1u << 22;
  constexpr uint64_t kBatch = 16;
  OwnedWindow window(size);
  std::vector<std::atomic<uint8_t>> accepted(kMaxSequences + kBatch + 1);
  std::vector<std::atomic<uint8_t>> duplicate_seen(kMaxSequences + kBatch + 1);
  std::atomic<uint64_t> next{1};
  std::atomic<uint64_t> false_too_old{0}, first_false_too_old{0};
  std::atomic<bool> stop{false};

  auto report = [&](uint64_t sequence, ReplayVerdict verdict) {
    if (verdict == ReplayVerdict::kAccept) {
      accepted[sequence].fetch_add(1, std::memory_order_relaxed);
    } else if (verdict == ReplayVerdict::kDuplicate) {
      duplicate_seen[sequence].store(1, std::memory_order_relaxed);
    } else {
      // Too old is right only once some accepted number is `size` or more
      // ahead. The thread that claimed a slot for that number moves top just
      // after the slot, so give it a moment before calling this false.
      auto deadline = std::chrono::steady_clock::now() + 2s;
      while (sequence + size > window->top()) {
        if (std::chrono::steady_clock::now() > deadline) {
          false_too_old.fetch_add(1);
          uint64_t none = 0;
          first_false_too_old.compare_exchange_strong(none, sequence);
          break;
        }
        std::this_thread::yield();
      }
    }
  };

  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      run_on_any_cpu();
      std::mt19937_64 rng(1000 + t);
      start.arrive_and_wait();
      uint64_t batch[kBatch];
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t first = next.fetch_add(kBatch);
        if (first + kBatch > kMaxSequences) break;
        for (uint64_t i = 0; i < kBatch; ++i) batch[i] = first + i;
        std::shuffle(batch, batch + kBatch, rng);
        for (uint64_t sequence : batch) {
          report(sequence, window->update(sequence));
          // A replay of something recent, possibly still unsent by its owner.
          if (rng() % 4 == 0) {
            uint64_t back = 1 + rng() % (size / 2);
            if (first > back) report(first - back, window->update(first - back));
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& t : threads) t.join();

  uint64_t issued = std::min<uint64_t>(next.load(), kMaxSequences);
  ASSERT_GT(issued, 10u * size) << "the threads made too little progress to slide the window";
  EXPECT_EQ(false_too_old.load(), 0u) << "first: sequence " << first_false_too_old.load();
  uint64_t accepted_total = 0;
  for (uint64_t s = 1; s < issued; ++s) {
    uint8_t times = accepted[s].load();
    ASSERT_LE(times, 1) << "sequence " << s << " accepted " << int{times} << " times";
    if (duplicate_seen[s].load()) {
      ASSERT_EQ(times, 1) << "sequence " << s << " called a duplicate, never accepted";
    }
    accepted_total += times;
  }
  RecordProperty("sequences_issued", std::to_string(issued));
  RecordProperty("sequences_accepted", std::to_string(accepted_total));
}

INSTANTIATE_TEST_SUITE_P(Sizes, ReplayWindowSliding, ::testing::Values(64u, 1024u),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "window" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace segw::dp
