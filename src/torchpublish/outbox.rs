//! What `torchpublish` needs that is not GStreamer: the bounded queue between the streaming
//! thread and the publisher thread (oldest dropped and counted when full, never blocking the
//! producer), and the reconnect backoff.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Counters the element reports in `torchpublish-stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Messages pushed into the queue.
    pub accepted: u64,
    /// Messages handed to the output (the file, or the broker's connection).
    pub published: u64,
    /// Messages dropped because the queue was full (the oldest go first).
    pub dropped: u64,
    /// Failed attempts to connect or write.
    pub failures: u64,
    /// Messages waiting in the queue now.
    pub queued: u64,
    /// Whether the output is connected (always true for a file once open).
    pub connected: bool,
}

struct Inner {
    queue: VecDeque<Vec<u8>>,
    max: usize,
    counts: Counts,
    closed: bool,
}

/// The bounded queue; see the module docs.
pub struct Outbox {
    inner: Mutex<Inner>,
    cond: Condvar,
}

impl Outbox {
    pub fn new(max: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                max: max.max(1),
                counts: Counts::default(),
                closed: false,
            }),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message; when full, the oldest is dropped (and counted). Never waits.
    pub fn push(&self, message: Vec<u8>) {
        let mut inner = self.lock();
        if inner.queue.len() >= inner.max {
            inner.queue.pop_front();
            inner.counts.dropped += 1;
        }
        inner.queue.push_back(message);
        inner.counts.accepted += 1;
        drop(inner);
        self.cond.notify_all();
    }

    /// The oldest message, waiting up to `timeout` for one; None on timeout or once closed and
    /// empty.
    pub fn pop(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut inner = self.lock();
        if inner.queue.is_empty() && !inner.closed {
            inner = self
                .cond
                .wait_timeout(inner, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inner.queue.pop_front()
    }

    /// Puts a message that could not be sent back at the front (it goes first next time).
    pub fn unpop(&self, message: Vec<u8>) {
        let mut inner = self.lock();
        if inner.queue.len() >= inner.max {
            // Newer ones came meanwhile and filled the queue: this one is the oldest.
            inner.counts.dropped += 1;
            return;
        }
        inner.queue.push_front(message);
    }

    /// No more messages will come; `pop` returns what is left, then None at once.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn update(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.lock().counts);
    }

    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            queued: inner.queue.len() as u64,
            ..inner.counts
        }
    }
}

/// Reconnect delays: `initial`, doubling to `max`; back to `initial` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_drops_the_oldest_and_counts_it() {
        let q = Outbox::new(2);
        for m in [b"a", b"b", b"c"] {
            q.push(m.to_vec());
        }
        assert_eq!(q.counts().dropped, 1);
        assert_eq!(q.counts().queued, 2);
        assert_eq!(q.counts().accepted, 3);
        assert_eq!(q.pop(Duration::ZERO), Some(b"b".to_vec()));
        q.unpop(b"b".to_vec());
        assert_eq!(q.pop(Duration::ZERO), Some(b"b".to_vec()));
        assert_eq!(q.pop(Duration::ZERO), Some(b"c".to_vec()));
        assert_eq!(q.pop(Duration::ZERO), None);
    }

    #[test]
    fn unpop_into_a_full_queue_drops_the_unsent_one() {
        let q = Outbox::new(1);
        q.push(b"old".to_vec());
        let old = q.pop(Duration::ZERO).unwrap();
        q.push(b"new".to_vec());
        q.unpop(old);
        assert_eq!(q.counts().dropped, 1);
        assert_eq!(q.pop(Duration::ZERO), Some(b"new".to_vec()));
    }

    #[test]
    fn closed_queue_gives_what_is_left_then_nothing_without_waiting() {
        let q = Outbox::new(4);
        q.push(b"x".to_vec());
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.pop(Duration::from_secs(60)), Some(b"x".to_vec()));
        assert_eq!(q.pop(Duration::from_secs(60)), None);
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
