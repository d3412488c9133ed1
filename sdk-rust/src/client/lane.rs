//! Per-thread event lanes: every thread that emits on a client pushes into its own
//! single-producer, single-consumer queue, and the writer thread drains them all.
//!
//! A push is a slot write and a release store to a counter only that thread writes: no
//! compare-and-swap and no cache line that other emitting threads also write. A lane is a chain of
//! fixed-size segments, so it grows with a burst (the client's byte and event budgets, checked
//! before the push, bound it) and gives the memory back as the writer drains.
//!
//! Segments are large (4096 events). Writing into memory the writer has just read makes every
//! slot write wait for the writer's core to give up the cache line (with a 16 KiB segment
//! recycled at once, an op event cost 110 ns instead of 63 in the emit bench), so segments the
//! writer finishes are kept as the lane's *spares* and reused only when the producer fills the
//! segment it is in, a whole segment later. A fresh segment instead costs a page fault (the kernel
//! zeroing a page) every 32 events once the allocator has given freed segments back: in a process
//! emitting in bursts, 134 ns per op event instead of 87. With one spare, a burst the writer lags
//! behind by more than a segment still faulted in fresh ones (more than half of all segments in
//! the emit bench's chunks of 10,000 events); up to [`SPARES`] of them made a step with 3 ops
//! 240–264 ns instead of 322–335 (alternating builds). The writer drops the spares when it goes
//! idle, so an idle lane holds at most the pages of its current segment that were written, and a
//! busy one at most `SPARES` segments more.
//!
//! Order is kept per thread. Across threads the writer restores emit order for what it takes
//! in one round (see `writer::run`), using [`Consumer::pop_if`] to take only events emitted up
//! to a time.
//!
//! The crate denies `unsafe` code; this module is the one exception. Segments hold events that
//! are written and read in place, which safe Rust can only express with a lock or a
//! compare-and-swap per event, the costs this module exists to avoid. Each block says what makes
//! it sound; the tests below push and drain from two threads and count every drop.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Slots per segment (512 KiB of 128-byte events).
const SEGMENT: usize = 4096;
/// How many slots ahead a push asks for the cache lines it will write: a slot's lines were last
/// read by the writer's core, or are fresh, so the write would otherwise wait for them. Measured
/// in a burst loop, alternating builds: an op 74 → 65–71 ns, a step with 3 ops 468–492 →
/// 449–464 ns. On the x86-64 baseline the write hint compiles to `prefetcht0` (a read prefetch);
/// a real `prefetchw` (inline asm behind a CPUID check) measured the same: step + 3 ops 424–444
/// vs 412–440 ns in 5 alternating runs.
const PREFETCH_AHEAD: usize = 16;
/// Finished segments a lane keeps for its producer's next ones (2 MiB at most).
const SPARES: usize = 4;

/// Aligned to two cache lines, so a 128-byte event never shares a line with its neighbour (the
/// writer reading one would otherwise pull the line the producer is writing the next into).
#[repr(align(128))]
struct Segment<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; SEGMENT],
    /// The segment the producer continued in; null until it fills this one.
    next: AtomicPtr<Segment<T>>,
}

impl<T> Segment<T> {
    fn alloc() -> *mut Segment<T> {
        let mut segment = Box::<Segment<T>>::new_uninit();
        // SAFETY: `slots` may stay uninitialised (they are `MaybeUninit`); `next` is written here.
        unsafe {
            ptr::addr_of_mut!((*segment.as_mut_ptr()).next).write(AtomicPtr::new(ptr::null_mut()));
            Box::into_raw(segment.assume_init())
        }
    }

    /// # Safety
    /// `segment` came from [`Segment::alloc`], holds no live event, and nobody uses it again.
    unsafe fn free(segment: *mut Segment<T>) {
        drop(unsafe { Box::from_raw(segment) });
    }
}

/// What only the producer writes, on a cache line of its own: the writer's reads of the other
/// fields (every round) then do not take the line the producer writes on every push.
#[repr(align(128))]
struct Written {
    /// Events pushed so far.
    pushed: AtomicU64,
    /// Queue budget (bytes) the producer reserved ahead and has not used yet: the client takes
    /// the budget in chunks, so most pushes need no shared counter. The writer gives it back
    /// when it retires the lane.
    credit: AtomicUsize,
}

/// What the producer and the consumer of one lane share.
pub(crate) struct Lane<T> {
    written: Written,
    /// Events popped, written when the consumer drops (for the last owner's clean-up).
    popped: AtomicU64,
    /// The consumer's segment when it dropped, where the last owner frees the chain from.
    head: AtomicPtr<Segment<T>>,
    /// The producing thread is gone (its thread-local handle dropped).
    detached: AtomicBool,
    /// The writer is gone: nothing will drain this lane again.
    closed: AtomicBool,
    /// Segments the consumer finished, kept for the producer's next ones (null slots are
    /// empty): only the consumer fills a slot (an empty one) and whoever empties it swaps in
    /// null, so each has one owner at a time.
    spares: [AtomicPtr<Segment<T>>; SPARES],
}

// SAFETY: the raw segment pointers are only dereferenced under the single-producer /
// single-consumer discipline that `Producer` and `Consumer` (one of each per lane) enforce; the
// counters publish slot contents with release/acquire ordering.
unsafe impl<T: Send> Send for Lane<T> {}
unsafe impl<T: Send> Sync for Lane<T> {}

impl<T> Drop for Lane<T> {
    fn drop(&mut self) {
        // Both ends are gone: drop the events still queued and free the chain.
        self.free_spares();
        let mut segment = *self.head.get_mut();
        let popped = *self.popped.get_mut();
        // The consumer moves to the next segment only when it takes an event from it, so after
        // a whole segment it still points at that one.
        let mut index = match (popped as usize) % SEGMENT {
            0 if popped > 0 => SEGMENT,
            at => at,
        };
        let mut left = *self.written.pushed.get_mut() - popped;
        while !segment.is_null() {
            // SAFETY: the chain from `head` is owned by this lane and no end is left to use it;
            // the `left` slots after `popped` hold initialised events.
            unsafe {
                while left > 0 && index < SEGMENT {
                    (*(*segment).slots[index].get()).assume_init_drop();
                    index += 1;
                    left -= 1;
                }
                let next = (*segment).next.load(Ordering::Relaxed);
                Segment::<T>::free(segment);
                segment = next;
            }
            index = 0;
        }
    }
}

impl<T> Lane<T> {
    /// Frees the spare segments. Returns how many there were.
    fn free_spares(&self) -> usize {
        let mut freed = 0;
        for slot in &self.spares {
            let spare = slot.swap(ptr::null_mut(), Ordering::Acquire);
            if !spare.is_null() {
                // SAFETY: the swap made it ours alone; a spare holds no events.
                unsafe { Segment::<T>::free(spare) };
                freed += 1;
            }
        }
        freed
    }

    /// Takes a spare segment, if there is one.
    fn take_spare(&self) -> Option<*mut Segment<T>> {
        self.spares.iter().find_map(|slot| {
            if slot.load(Ordering::Relaxed).is_null() {
                return None;
            }
            let spare = slot.swap(ptr::null_mut(), Ordering::Acquire);
            (!spare.is_null()).then_some(spare)
        })
    }
}

/// Makes a lane and its two ends.
pub(crate) fn lane<T>() -> (Producer<T>, Consumer<T>) {
    let first = Segment::alloc();
    let lane = Arc::new(Lane {
        written: Written {
            pushed: AtomicU64::new(0),
            credit: AtomicUsize::new(0),
        },
        popped: AtomicU64::new(0),
        head: AtomicPtr::new(first),
        detached: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        spares: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
    });
    let producer = Producer {
        lane: Arc::clone(&lane),
        tail: first,
        index: 0,
        pushed: 0,
    };
    let consumer = Consumer {
        lane,
        head: first,
        index: 0,
        popped: 0,
        published: 0,
        popped_at_idle_check: 0,
    };
    (producer, consumer)
}

/// The pushing end. It has one owner (pushing takes `&mut self`); in the client, a thread-local.
pub(crate) struct Producer<T> {
    lane: Arc<Lane<T>>,
    tail: *mut Segment<T>,
    index: usize,
    pushed: u64,
}

// SAFETY: the producer may move to another thread; `push` needs `&mut`, so one thread at a time.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Appends `event`.
    #[inline]
    pub(crate) fn push(&mut self, event: T) {
        if self.index == SEGMENT {
            self.grow();
        }
        // SAFETY: slot `index` of the tail segment is past everything published, so the consumer
        // does not read it until the store to `pushed` below.
        unsafe { (*(*self.tail).slots[self.index].get()).write(event) };
        #[cfg(target_arch = "x86_64")]
        if self.index + PREFETCH_AHEAD < SEGMENT {
            // SAFETY: a prefetch only hints; the address is inside the tail segment.
            unsafe {
                let ahead = (*self.tail).slots[self.index + PREFETCH_AHEAD]
                    .get()
                    .cast::<i8>();
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(ahead);
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(
                    ahead.add(64),
                );
            }
        }
        self.index += 1;
        self.pushed += 1;
        self.lane
            .written
            .pushed
            .store(self.pushed, Ordering::Release);
    }

    /// Links a new segment after the full tail one.
    #[cold]
    fn grow(&mut self) {
        // A spare, if the consumer left one: the swap makes it ours alone.
        let next = self.lane.take_spare().unwrap_or_else(Segment::alloc);
        // SAFETY: the tail segment is live until the consumer passes it, which it cannot do
        // before this link is published (with the next event's release store).
        unsafe { (*self.tail).next.store(next, Ordering::Release) };
        self.tail = next;
        self.index = 0;
    }

    /// Whether the writer has stopped draining this lane.
    pub(crate) fn is_closed(&self) -> bool {
        self.lane.closed.load(Ordering::Acquire)
    }

    /// The budget reserved ahead and not used yet.
    #[inline]
    pub(crate) fn credit(&self) -> usize {
        self.lane.written.credit.load(Ordering::Relaxed)
    }

    /// Records what is left of the reserved budget.
    #[inline]
    pub(crate) fn set_credit(&self, credit: usize) {
        self.lane.written.credit.store(credit, Ordering::Relaxed);
    }

    /// A handle that reads how many events this lane was given.
    pub(crate) fn count(&self) -> Count<T> {
        Count(Arc::clone(&self.lane))
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.lane.detached.store(true, Ordering::Release);
    }
}

/// Reads a lane's push count from any thread (for `flush` and the stats).
pub(crate) struct Count<T>(Arc<Lane<T>>);

impl<T> Count<T> {
    /// Events pushed so far.
    pub(crate) fn pushed(&self) -> u64 {
        self.0.written.pushed.load(Ordering::Acquire)
    }

    /// The budget the producer reserved ahead and has not used yet.
    pub(crate) fn credit(&self) -> usize {
        self.0.written.credit.load(Ordering::Relaxed)
    }

    /// Whether this counts `consumer`'s lane.
    pub(crate) fn counts(&self, consumer: &Consumer<T>) -> bool {
        Arc::ptr_eq(&self.0, &consumer.lane)
    }
}

/// The draining end, owned by the writer thread.
pub(crate) struct Consumer<T> {
    lane: Arc<Lane<T>>,
    head: *mut Segment<T>,
    index: usize,
    popped: u64,
    /// The producer's count as last read: events up to it are taken without reading it again
    /// (that cache line is the producer's).
    published: u64,
    /// `popped` at the last [`drop_spare_if_idle`](Self::drop_spare_if_idle).
    popped_at_idle_check: u64,
}

// SAFETY: as for `Producer`: `pop` needs `&mut`, so one thread at a time (the writer).
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// The oldest event not yet taken, if any.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.pop_if(|_| true)
    }

    /// The oldest event not yet taken, if there is one and `take` accepts it (it is left in the
    /// lane otherwise).
    #[inline]
    pub(crate) fn pop_if(&mut self, take: impl FnOnce(&T) -> bool) -> Option<T> {
        if self.popped == self.published {
            self.published = self.lane.written.pushed.load(Ordering::Acquire);
            if self.popped == self.published {
                return None;
            }
        }
        let (segment, index) = if self.index == SEGMENT {
            // SAFETY: an event past this segment is published, so its link is too (it was
            // stored before that event's release store, which the acquire load above saw).
            (unsafe { (*self.head).next.load(Ordering::Acquire) }, 0)
        } else {
            (self.head, self.index)
        };
        // SAFETY: the slot was published by the producer's release store and not read yet.
        let slot = unsafe { &*(*segment).slots[index].get() };
        // SAFETY: as above: published, so initialised.
        if !take(unsafe { slot.assume_init_ref() }) {
            return None;
        }
        if segment != self.head {
            let done = self.head;
            self.head = segment;
            // SAFETY: every slot of `done` was read, and the producer has moved past it, so
            // nobody else refers to it.
            unsafe { self.keep_spare(done) };
        }
        // SAFETY: published and read once: `index` moves past it below.
        let event = unsafe { slot.assume_init_read() };
        self.index = index + 1;
        self.popped += 1;
        Some(event)
    }

    /// Makes `done` one of the lane's spares, or frees it when every spare slot is taken (the
    /// spares kept are then the ones the writer read longest ago).
    ///
    /// # Safety
    /// Every slot of `done` was read and nothing else refers to it.
    unsafe fn keep_spare(&mut self, done: *mut Segment<T>) {
        // SAFETY: `done` is ours alone (the caller's promise); its link is reset before the
        // release exchange publishes it to the producer.
        unsafe { (*done).next.store(ptr::null_mut(), Ordering::Relaxed) };
        let kept = self.lane.spares.iter().any(|slot| {
            slot.compare_exchange(ptr::null_mut(), done, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if !kept {
            // SAFETY: still ours: no slot took it; it holds no events.
            unsafe { Segment::<T>::free(done) };
        }
    }

    /// Frees the lane's spare segments if nothing was taken from the lane since the last call:
    /// the writer calls this as it goes idle, so only busy lanes keep any.
    pub(crate) fn drop_spares_if_idle(&mut self) {
        if self.popped == self.popped_at_idle_check {
            self.drop_spares();
        }
        self.popped_at_idle_check = self.popped;
    }

    /// Frees the lane's spare segments. Returns how many there were.
    pub(crate) fn drop_spares(&self) -> usize {
        self.lane.free_spares()
    }

    /// Whether the producing thread is gone and everything it pushed was taken.
    pub(crate) fn is_finished(&self) -> bool {
        self.lane.detached.load(Ordering::Acquire)
            && self.popped == self.lane.written.pushed.load(Ordering::Acquire)
    }

    /// Whether an event waits (a fresh read of the producer's count).
    pub(crate) fn has_events(&self) -> bool {
        self.popped != self.lane.written.pushed.load(Ordering::Acquire)
    }

    /// Events taken so far.
    pub(crate) fn popped(&self) -> u64 {
        self.popped
    }

    /// The budget the producer left unused; final once [`is_finished`](Self::is_finished).
    pub(crate) fn credit_left(&self) -> usize {
        self.lane.written.credit.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.lane.head.store(self.head, Ordering::Relaxed);
        self.lane.popped.store(self.popped, Ordering::Relaxed);
        self.lane.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts its drops, so the tests see every value dropped exactly once.
    struct Counted(u64, Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn keeps_order_across_segments() {
        let (mut producer, mut consumer) = lane::<u64>();
        let mut next = 0;
        // Bursts longer and shorter than a segment, drained in between.
        for burst in [1, SEGMENT - 1, SEGMENT, 3 * SEGMENT + 7, 5] {
            for _ in 0..burst {
                producer.push(next);
                next += 1;
            }
            for n in next - burst as u64..next {
                assert_eq!(consumer.pop(), Some(n));
            }
            assert_eq!(consumer.pop(), None);
        }
        assert!(!consumer.is_finished(), "the producer is still there");
        drop(producer);
        assert!(consumer.is_finished());
    }

    /// The spare segments a lane holds.
    fn spares<T>(consumer: &Consumer<T>) -> Vec<*mut Segment<T>> {
        let slots = consumer.lane.spares.iter();
        slots
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|spare| !spare.is_null())
            .collect()
    }

    #[test]
    fn finished_segments_are_kept_up_to_a_bound_and_reused() {
        let (mut producer, mut consumer) = lane::<u64>();
        assert_eq!(consumer.drop_spares(), 0, "nothing finished yet");
        // A burst the consumer lags behind by more segments than it may keep.
        let burst = (SPARES + 2) * SEGMENT + 1;
        for n in 0..burst as u64 {
            producer.push(n);
        }
        for n in 0..burst as u64 {
            assert_eq!(consumer.pop(), Some(n));
        }
        // Every segment but the current one was read through: the first SPARES are kept.
        let kept = spares(&consumer);
        assert_eq!(kept.len(), SPARES, "kept up to the bound, the rest freed");
        // The next burst's segments are the kept ones, not fresh ones.
        for n in 0..(SPARES * SEGMENT) as u64 {
            producer.push(n);
        }
        assert!(
            kept.contains(&producer.tail),
            "the producer continued in a recycled segment"
        );
        assert!(spares(&consumer).is_empty(), "and took every spare");
        for n in 0..(SPARES * SEGMENT) as u64 {
            assert_eq!(
                consumer.pop(),
                Some(n),
                "a recycled segment holds the new events"
            );
        }
        consumer.drop_spares_if_idle();
        assert!(
            !spares(&consumer).is_empty(),
            "events were taken since the last check: the spares stay"
        );
        consumer.drop_spares_if_idle();
        assert!(
            spares(&consumer).is_empty(),
            "nothing taken since: an idle lane gives its spares back"
        );
        assert_eq!(consumer.drop_spares(), 0, "and they were freed once");
    }

    #[test]
    fn pop_if_leaves_a_refused_event_in_place_even_at_a_segment_boundary() {
        let (mut producer, mut consumer) = lane::<u64>();
        for n in 0..SEGMENT as u64 + 2 {
            producer.push(n);
        }
        for n in 0..SEGMENT as u64 {
            assert_eq!(consumer.pop(), Some(n));
        }
        // The next event is the first of the second segment: refusing it must not move on.
        assert_eq!(consumer.pop_if(|_| false), None);
        assert_eq!(
            consumer.pop_if(|&n| n == SEGMENT as u64),
            Some(SEGMENT as u64)
        );
        assert_eq!(consumer.pop_if(|&n| n > 1_000_000), None);
        assert_eq!(consumer.pop(), Some(SEGMENT as u64 + 1));
        assert_eq!(consumer.pop(), None);
    }

    #[test]
    fn a_thread_pushing_while_another_drains_loses_nothing() {
        let (mut producer, mut consumer) = lane::<u64>();
        const N: u64 = 300_000;
        let pusher = std::thread::spawn(move || {
            for n in 0..N {
                producer.push(n);
            }
        });
        let mut want = 0;
        while want < N {
            match consumer.pop() {
                Some(n) => {
                    assert_eq!(n, want);
                    want += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        pusher.join().unwrap();
        assert_eq!(consumer.pop(), None);
        assert!(consumer.is_finished(), "the producer's thread ended");
    }

    #[test]
    fn every_value_is_dropped_once_whoever_drops_last() {
        // Popping none, exactly a segment (the consumer still points at it) and one more.
        for (consumer_last, popped) in [false, true]
            .into_iter()
            .flat_map(|last| [0, SEGMENT, SEGMENT + 1].map(|p| (last, p)))
        {
            let drops = Arc::new(AtomicUsize::new(0));
            let (mut producer, mut consumer) = lane::<Counted>();
            let total = 2 * SEGMENT + 3;
            for n in 0..total as u64 {
                producer.push(Counted(n, Arc::clone(&drops)));
            }
            for n in 0..popped as u64 {
                assert_eq!(consumer.pop().map(|c| c.0), Some(n));
            }
            assert_eq!(
                drops.load(Ordering::Relaxed),
                popped,
                "popped values dropped"
            );
            if consumer_last {
                drop(producer);
                drop(consumer);
            } else {
                drop(consumer);
                assert!(producer.is_closed());
                drop(producer);
            }
            assert_eq!(
                drops.load(Ordering::Relaxed),
                total,
                "queued values dropped with the lane"
            );
        }
    }
}
