//! The calls of one connection waiting for their responses: a slab of
//! entries, each holding its call's state and the `Waker` of the task
//! awaiting it.
//!
//! Before round 3 each call parked a `oneshot` sender in a hash map: one
//! allocation per call for the channel, and a hash lookup to find it. Here
//! a call takes a free entry of a table that only grows to the most calls
//! ever in flight at once (bounded by the connection's in-flight slots),
//! so in steady state a call allocates nothing for its response: the reply
//! is stored in the entry and the waiting task woken.
//!
//! A call id names its entry: **generation << 32 | slot index**. The
//! generation of a slot is bumped every time the slot is freed, so an id
//! stays unique while the slot is reused; a response that arrives late —
//! for a call that gave up (cancelled, deadline passed) and whose slot now
//! belongs to another call — carries the old generation and is dropped,
//! never delivered to the wrong call. Ids on the wire stay `u64` and are
//! never 0 (generations start at 1).
//!
//! Only the call that owns an entry frees it: the reader, the deadline task
//! and a connection failure *complete* an entry (store the reply, wake the
//! task); the call takes the reply and frees the entry in the same step, or
//! frees it when its future is dropped. So an id is never reused while its
//! call still exists.

use std::task::Waker;
use std::time::Instant;

use super::Reply;

// ANCHOR: pending_entry
/// One slot of the table.
#[derive(Debug)]
struct Entry {
    /// Bumped each time the slot is freed; the high half of its call ids.
    generation: u32,
    /// What the slot holds now.
    state: State,
}

/// The state of one slot.
#[derive(Debug)]
enum State {
    /// Free; the index of the next free slot (`u32::MAX`: none).
    Free(u32),
    /// A call waiting for its response.
    Waiting {
        /// Woken when the reply is stored.
        waker: Waker,
        /// When the call gives up, if it has a deadline (enforced by the
        /// connection's deadline task, see `io::sweep`).
        deadline: Option<Instant>,
    },
    /// The reply is here; the call has not taken it yet.
    Done(Reply),
}
// ANCHOR_END: pending_entry

/// End of the free list.
const NONE: u32 = u32::MAX;

/// The waiting calls of one connection (see the module's doc).
#[derive(Debug)]
pub(super) struct Pending {
    /// The slots; grows only when every slot is taken.
    entries: Vec<Entry>,
    /// First free slot (`NONE`: none), the head of a list threaded through
    /// the free entries, so freeing and taking a slot allocate nothing.
    free: u32,
    /// Slots not free (waiting or done).
    taken: usize,
    /// Set by [`fail_all`](Self::fail_all): the connection is dead and no
    /// call may start waiting on it (it would never be answered).
    closed: bool,
}

/// What [`Pending::poll_reply`] found.
#[derive(Debug)]
pub(super) enum Polled {
    /// The reply; the slot is freed.
    Ready(Reply),
    /// Still waiting (the waker is updated).
    Waiting,
    /// The id names no call of this table (a bug if the caller owns it;
    /// treated as a closed connection).
    Gone,
}

impl Pending {
    /// An empty table with room for `capacity` calls before it grows.
    pub(super) fn with_capacity(capacity: usize) -> Pending {
        Pending {
            entries: Vec::with_capacity(capacity),
            free: NONE,
            taken: 0,
            closed: false,
        }
    }

    /// Splits an id into (slot index, generation).
    fn split(id: u64) -> (usize, u32) {
        // Truncation intended: the low half is the index, the high half
        // the generation.
        ((id & u64::from(u32::MAX)) as usize, (id >> 32) as u32)
    }

    /// The entry `id` names, if its generation is current.
    fn entry_mut(&mut self, id: u64) -> Option<&mut Entry> {
        let (index, generation) = Self::split(id);
        self.entries
            .get_mut(index)
            .filter(|e| e.generation == generation)
    }

    /// Starts a waiting call: its id, or `Err` if the connection has
    /// failed ([`fail_all`](Self::fail_all)). Takes a free slot if there is
    /// one; grows the table otherwise.
    pub(super) fn insert(&mut self, waker: Waker, deadline: Option<Instant>) -> Result<u64, ()> {
        if self.closed {
            return Err(());
        }
        let state = State::Waiting { waker, deadline };
        let index = if self.free != NONE {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            let State::Free(next) = entry.state else {
                unreachable!("the free list holds free slots only")
            };
            self.free = next;
            entry.state = state;
            index
        } else {
            // A table of 2^32 - 1 calls in flight on one connection would
            // need more memory than a process has; the slots bound it long
            // before (max_in_flight).
            let index = u32::try_from(self.entries.len()).map_err(|_| ())?;
            if index == NONE {
                return Err(());
            }
            self.entries.push(Entry {
                generation: 1,
                state,
            });
            index
        };
        self.taken += 1;
        let generation = self.entries[index as usize].generation;
        Ok(u64::from(generation) << 32 | u64::from(index))
    }

    /// Frees the slot at `index`: bumps its generation (never to 0) so its
    /// old ids are stale, and puts it on the free list.
    fn free_slot(&mut self, index: usize) {
        let entry = &mut self.entries[index];
        entry.generation = entry.generation.checked_add(1).unwrap_or(1);
        entry.state = State::Free(self.free);
        // `index` came from an id that fits in u32.
        self.free = index as u32;
        self.taken -= 1;
    }

    /// Completes call `id` with `reply` and returns the waker to wake (after
    /// the lock is released). `None` if `id` is no waiting call: a late
    /// response for a call that gave up, even if its slot has been reused
    /// (the generation differs), or a second reply for the same call.
    pub(super) fn complete(&mut self, id: u64, reply: Reply) -> Option<Waker> {
        let entry = self.entry_mut(id)?;
        if !matches!(entry.state, State::Waiting { .. }) {
            return None;
        }
        match std::mem::replace(&mut entry.state, State::Done(reply)) {
            State::Waiting { waker, .. } => Some(waker),
            // Checked just above.
            _ => None,
        }
    }

    /// For the call owning `id`: its reply if it is here (freeing the slot),
    /// else records `waker` as the one to wake.
    pub(super) fn poll_reply(&mut self, id: u64, waker: &Waker) -> Polled {
        let (index, _) = Self::split(id);
        let Some(entry) = self.entry_mut(id) else {
            return Polled::Gone;
        };
        match &mut entry.state {
            State::Waiting { waker: parked, .. } => {
                if !parked.will_wake(waker) {
                    parked.clone_from(waker);
                }
                Polled::Waiting
            }
            State::Done(_) => {
                let State::Done(reply) = std::mem::replace(&mut entry.state, State::Free(NONE))
                else {
                    unreachable!("matched Done just above")
                };
                self.free_slot(index);
                Polled::Ready(reply)
            }
            State::Free(_) => Polled::Gone,
        }
    }

    /// The call owning `id` gives up (its future was dropped): frees the
    /// slot. True if it was still waiting, i.e. the provider may still be
    /// working on it and a cancel frame is owed; false if its reply had
    /// come (or the deadline task failed it, and sent the cancel itself).
    pub(super) fn cancel(&mut self, id: u64) -> bool {
        let (index, _) = Self::split(id);
        let Some(entry) = self.entry_mut(id) else {
            return false;
        };
        let waiting = match entry.state {
            State::Waiting { .. } => true,
            State::Done(_) => false,
            State::Free(_) => return false,
        };
        self.free_slot(index);
        waiting
    }

    /// Fails every waiting call whose deadline is at or before `now` with
    /// `reply()`: pushes (id, waker) of each onto `expired`. Returns the
    /// earliest deadline of the calls still waiting.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        reply: impl Fn() -> Reply,
        expired: &mut Vec<(u64, Waker)>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (index, entry) in self.entries.iter_mut().enumerate() {
            let State::Waiting {
                deadline: Some(d), ..
            } = entry.state
            else {
                continue;
            };
            if d > now {
                next = Some(next.map_or(d, |n| n.min(d)));
                continue;
            }
            if let State::Waiting { waker, .. } =
                std::mem::replace(&mut entry.state, State::Done(reply()))
            {
                let id = u64::from(entry.generation) << 32 | index as u64;
                expired.push((id, waker));
            }
        }
        next
    }

    /// The connection failed: completes every waiting call with `err` and
    /// refuses new ones. Returns the wakers to wake (after the lock is
    /// released).
    pub(super) fn fail_all(&mut self, err: &crate::error::Status) -> Vec<Waker> {
        self.closed = true;
        let mut wakers = Vec::new();
        for entry in &mut self.entries {
            if matches!(entry.state, State::Waiting { .. })
                && let State::Waiting { waker, .. } =
                    std::mem::replace(&mut entry.state, State::Done(Err(err.clone())))
            {
                wakers.push(waker);
            }
        }
        wakers
    }

    /// Calls holding a slot (waiting, or answered and not yet taken).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.taken
    }

    /// Slots the table has (taken or free): the most calls ever in flight
    /// at once on this connection.
    #[cfg(test)]
    pub(super) fn slots(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::error::{ErrorCode, Status};
    use crate::metadata::Metadata;

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A counting waker and its counter.
    fn waker() -> (Waker, Arc<Counter>) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (Waker::from(Arc::clone(&c)), c)
    }

    /// A successful reply with `payload`.
    fn ok(payload: &'static [u8]) -> Reply {
        Ok((Bytes::from_static(payload), Metadata::new()))
    }

    /// The payload of a ready reply (panics otherwise: a test failure).
    fn payload(p: Polled) -> Bytes {
        match p {
            Polled::Ready(Ok((b, _))) => b,
            other => panic!("expected a successful reply, got {other:?}"),
        }
    }

    #[test]
    fn a_reply_reaches_its_call_and_wakes_it() {
        let mut t = Pending::with_capacity(4);
        let (w, count) = waker();
        let id = t.insert(w.clone(), None).expect("open");
        assert_ne!(id, 0, "0 is never an id");
        assert!(matches!(t.poll_reply(id, &w), Polled::Waiting));
        let wake = t.complete(id, ok(b"hi")).expect("waiting call");
        wake.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(payload(t.poll_reply(id, &w)), Bytes::from_static(b"hi"));
        assert_eq!(t.len(), 0);
        // Taken once: the id is stale now.
        assert!(matches!(t.poll_reply(id, &w), Polled::Gone));
    }

    #[test]
    fn a_late_reply_for_a_reused_slot_is_dropped() {
        let mut t = Pending::with_capacity(1);
        let (w, _) = waker();
        let old = t.insert(w.clone(), None).expect("open");
        // The call gives up before its response: a cancel is owed.
        assert!(t.cancel(old));
        let new = t.insert(w.clone(), None).expect("open");
        assert_eq!(old & 0xffff_ffff, new & 0xffff_ffff, "same slot reused");
        assert_ne!(old, new, "with a new generation");
        // The old call's response arrives late: not delivered to the new call.
        assert!(t.complete(old, ok(b"old")).is_none());
        assert!(matches!(t.poll_reply(new, &w), Polled::Waiting));
        assert!(t.complete(new, ok(b"new")).is_some());
        assert_eq!(payload(t.poll_reply(new, &w)), Bytes::from_static(b"new"));
        // And a late response for a freed slot nobody reuses is dropped too.
        assert!(t.complete(new, ok(b"again")).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cancel_frees_the_slot_and_says_whether_a_cancel_frame_is_owed() {
        let mut t = Pending::with_capacity(2);
        let (w, _) = waker();
        let waiting = t.insert(w.clone(), None).expect("open");
        let answered = t.insert(w.clone(), None).expect("open");
        assert!(t.complete(answered, ok(b"x")).is_some());
        assert!(
            t.cancel(waiting),
            "still waiting: the provider may be working on it"
        );
        assert!(!t.cancel(answered), "answered: nothing to cancel");
        assert_eq!(t.len(), 0);
        // Cancelling twice, or a stale id, does nothing.
        assert!(!t.cancel(waiting));
        assert_eq!(t.slots(), 2);
    }

    #[test]
    fn connection_failure_fails_every_waiting_call_and_refuses_new_ones() {
        let mut t = Pending::with_capacity(8);
        let (w, count) = waker();
        let ids: Vec<u64> = (0..5)
            .map(|_| t.insert(w.clone(), None).expect("open"))
            .collect();
        // One answered before the failure keeps its answer.
        assert!(t.complete(ids[0], ok(b"first")).is_some());
        let err = Status::new(ErrorCode::Transport, "gone");
        let wakers = t.fail_all(&err);
        assert_eq!(wakers.len(), 4);
        wakers.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 4);
        assert_eq!(
            payload(t.poll_reply(ids[0], &w)),
            Bytes::from_static(b"first")
        );
        for &id in &ids[1..] {
            match t.poll_reply(id, &w) {
                Polled::Ready(Err(e)) => assert_eq!(e.message, "gone"),
                other => panic!("expected the failure, got {other:?}"),
            }
        }
        assert_eq!(t.len(), 0);
        assert!(
            t.insert(w, None).is_err(),
            "no call may wait on a dead connection"
        );
    }

    #[test]
    fn expired_calls_fail_and_the_next_deadline_is_reported() {
        let mut t = Pending::with_capacity(4);
        let (w, _) = waker();
        let now = Instant::now();
        let past = t.insert(w.clone(), Some(now)).expect("open");
        let later = now + Duration::from_secs(5);
        let future = t.insert(w.clone(), Some(later)).expect("open");
        let none = t.insert(w.clone(), None).expect("open");
        let mut expired = Vec::new();
        let next = t.expire(
            now,
            || Err(Status::new(ErrorCode::DeadlineExceeded, "late")),
            &mut expired,
        );
        assert_eq!(next, Some(later));
        assert_eq!(
            expired.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [past]
        );
        // Expired: the call's future finds the failure; a response arriving
        // afterwards is dropped; dropping the call owes no second cancel.
        assert!(t.complete(past, ok(b"late")).is_none());
        assert!(!t.cancel(past));
        assert!(matches!(t.poll_reply(future, &w), Polled::Waiting));
        assert!(matches!(t.poll_reply(none, &w), Polled::Waiting));
    }

    #[test]
    fn the_table_never_grows_past_the_calls_in_flight() {
        let mut t = Pending::with_capacity(4);
        let (w, _) = waker();
        let mut live = std::collections::VecDeque::new();
        // 10,000 calls, never more than 4 at once, completed and cancelled
        // in turn: 4 slots, and every id handed out is distinct.
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            if live.len() == 4 {
                let id = live.pop_front().expect("four live");
                if i % 2 == 0 {
                    assert!(t.complete(id, ok(b"r")).is_some());
                    assert!(matches!(t.poll_reply(id, &w), Polled::Ready(_)));
                } else {
                    assert!(t.cancel(id));
                }
            }
            let id = t.insert(w.clone(), None).expect("open");
            assert!(seen.insert(id), "id {id:#x} handed out twice");
            live.push_back(id);
        }
        assert_eq!(t.slots(), 4);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn the_waker_is_the_latest_poll_s() {
        let mut t = Pending::with_capacity(1);
        let (first, first_count) = waker();
        let (second, second_count) = waker();
        let id = t.insert(first, None).expect("open");
        assert!(matches!(t.poll_reply(id, &second), Polled::Waiting));
        t.complete(id, ok(b"x")).expect("waiting").wake();
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn generations_wrap_without_reaching_zero() {
        let mut t = Pending::with_capacity(1);
        let (w, _) = waker();
        let id = t.insert(w.clone(), None).expect("open");
        t.entries[0].generation = u32::MAX;
        // The call's id is stale now (generation changed under it): forge
        // the current one, free it, and check the next generation is 1.
        let _ = id;
        let current = u64::from(u32::MAX) << 32;
        assert!(t.cancel(current));
        let next = t.insert(w, None).expect("open");
        assert_eq!(next, 1 << 32);
    }
}
