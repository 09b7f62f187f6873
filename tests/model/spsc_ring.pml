/*
 * Promela model of the push/pop protocol of shared/channel/spsc_ring.h,
 * checked by tests/model/check_spsc_ring.sh with spin.
 *
 * What is modelled, at the granularity the ring's correctness argument uses
 * (spsc_ring.h, "Why it is correct"):
 *   - the two shared indexes: head (written by the producer only) and tail
 *     (written by the consumer only), both only growing;
 *   - each side's exact local copy of its own index and its cached copy of
 *     the other's, refreshed only when the cache does not show enough;
 *   - bursts: up to BURST slots filled (or drained) and published (or
 *     released) with one index store;
 *   - the slot copy as two separate word accesses, so a copy can be caught
 *     half done;
 *   - memory ordering: spin interleaves statements of the two processes in
 *     every possible way but keeps each process's own statements in program
 *     order. Program order across an index access is exactly what
 *     release/acquire guarantees: every slot access before a release store
 *     is visible before the store, every slot access after an acquire load
 *     is performed after the load. The RELAXED_* variants drop one of those
 *     guarantees by letting the index access move across the slot accesses,
 *     as relaxed ordering (and real weakly ordered hardware) allows:
 *       RELAXED_HEAD_STORE  producer's head store may become visible before
 *                           its slot writes are done (no release)
 *       RELAXED_HEAD_LOAD   consumer's slot reads may be performed before
 *                           its head load (no acquire)
 *       RELAXED_TAIL_STORE  consumer's tail store may become visible before
 *                           its slot reads are done (no release)
 *     The check script expects each of them to FAIL: that shows the
 *     assertions can catch what the orderings prevent, so the model passing
 *     with release/acquire is not vacuous. (The producer's acquire on tail
 *     prevents a load-buffering outcome, the consumer reading a later
 *     write, that an interleaving model cannot express by reordering; the
 *     ThreadSanitizer test covers that order, as it does the three above.)
 *
 * What is asserted:
 *   - no slot is read before it is fully written: every word the consumer
 *     reads is the word of the message due next (sequence + 1, never 0 or an
 *     older or newer message);
 *   - no slot is overwritten before it is read: before the producer writes
 *     message m into a slot, message m - CAP (the slot's previous occupant)
 *     has been copied out completely (ghost_copied_out, bookkeeping of the
 *     model that the protocol itself never reads);
 *   - no deadlock: spin reports an invalid end state if both sides can wait
 *     forever before all N messages went through. Waiting is modelled as
 *     blocking until the other side's index changes, which is all a poll
 *     can observe.
 *
 * Sizes: CAP slots (a power of two), N messages (N > CAP so the slot array
 * wraps several times), bursts of up to BURST. Override with -D.
 */

#ifndef CAP
#define CAP 2
#endif
#ifndef N
#define N 7
#endif
#ifndef BURST
#define BURST 2
#endif
#define MASK (CAP - 1)

byte head = 0;                /* slots published by the producer */
byte tail = 0;                /* slots released by the consumer */
byte slot_first_word[CAP];    /* a slot is two words, copied one at a time */
byte slot_second_word[CAP];
byte ghost_copied_out = 0;    /* messages the consumer has completely copied out */

active proctype producer() {
  byte own_head = 0;          /* exact: nobody else writes head */
  byte cached_tail = 0;       /* a tail value once loaded: never ahead of tail */
  byte count;
  byte i;
#ifdef RELAXED_HEAD_STORE
  bool published;
#endif
  do
  :: own_head == N -> break
  :: own_head < N ->
     /* wait for a free slot: refresh the cache (acquire load of tail) only
        when it shows none and the consumer has released something new */
     do
     :: CAP - (own_head - cached_tail) > 0 -> break
     :: else -> (tail != cached_tail); cached_tail = tail
     od;
     /* the burst: 1 .. BURST slots, within the free space and the remaining messages */
     count = 1;
     do
     :: count < BURST && count < CAP - (own_head - cached_tail) && own_head + count < N ->
        count++
     :: break
     od;
#ifdef RELAXED_HEAD_STORE
     published = false;
#endif
     i = 0;
     do
     :: i < count ->
        /* the slot's previous occupant must be gone */
        assert(own_head + i < CAP || ghost_copied_out > own_head + i - CAP);
#ifdef RELAXED_HEAD_STORE
        if
        :: !published -> head = own_head + count; published = true
        :: skip
        fi;
#endif
        slot_first_word[(own_head + i) & MASK] = own_head + i + 1;
#ifdef RELAXED_HEAD_STORE
        if
        :: !published -> head = own_head + count; published = true
        :: skip
        fi;
#endif
        slot_second_word[(own_head + i) & MASK] = own_head + i + 1;
        i++
     :: else -> break
     od;
#ifdef RELAXED_HEAD_STORE
     if
     :: !published -> head = own_head + count
     :: else -> skip
     fi;
#else
     head = own_head + count;   /* release store: after every slot write above */
#endif
     own_head = own_head + count
  od
}

active proctype consumer() {
  byte own_tail = 0;          /* exact: nobody else writes tail */
  byte cached_head = 0;       /* a head value once loaded: never ahead of head */
  byte count;
  byte i;
  byte first_word;
  byte second_word;
#ifdef RELAXED_HEAD_LOAD
  bool early;
  byte early_first_word;
  byte early_second_word;
#endif
#ifdef RELAXED_TAIL_STORE
  bool released;
#endif
  do
  :: own_tail == N -> break
  :: own_tail < N ->
#ifdef RELAXED_HEAD_LOAD
     /* the next slot's words may be read before head is loaded */
     early = false;
     if
     :: early_first_word = slot_first_word[own_tail & MASK];
        early_second_word = slot_second_word[own_tail & MASK];
        early = true
     :: skip
     fi;
#endif
     /* wait for a published slot: acquire load of head */
     do
     :: cached_head - own_tail > 0 -> break
     :: else -> (head != cached_head); cached_head = head
     od;
     count = 1;
     do
     :: count < BURST && count < cached_head - own_tail -> count++
     :: break
     od;
#ifdef RELAXED_TAIL_STORE
     released = false;
#endif
     i = 0;
     do
     :: i < count ->
#ifdef RELAXED_TAIL_STORE
        if
        :: !released -> tail = own_tail + count; released = true
        :: skip
        fi;
#endif
#ifdef RELAXED_HEAD_LOAD
        if
        :: early && i == 0 -> first_word = early_first_word
        :: else -> first_word = slot_first_word[(own_tail + i) & MASK]
        fi;
#else
        first_word = slot_first_word[(own_tail + i) & MASK];
#endif
#ifdef RELAXED_TAIL_STORE
        if
        :: !released -> tail = own_tail + count; released = true
        :: skip
        fi;
#endif
#ifdef RELAXED_HEAD_LOAD
        if
        :: early && i == 0 -> second_word = early_second_word
        :: else -> second_word = slot_second_word[(own_tail + i) & MASK]
        fi;
#else
        second_word = slot_second_word[(own_tail + i) & MASK];
#endif
        /* fully written, by the message due next, not yet overwritten */
        assert(first_word == own_tail + i + 1 && second_word == own_tail + i + 1);
        ghost_copied_out = own_tail + i + 1;
        i++
     :: else -> break
     od;
#ifdef RELAXED_TAIL_STORE
     if
     :: !released -> tail = own_tail + count
     :: else -> skip
     fi;
#else
     tail = own_tail + count;   /* release store: after every slot read above */
#endif
     own_tail = own_tail + count
  od;
  assert(ghost_copied_out == N)
}
