//! A shutdown signal that both threads and async tasks can wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Tells sources to stop reading. Cloning shares the signal; triggering it wakes every
/// waiter at once, so a source that idles between polls reacts immediately rather than at
/// the end of its interval.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<Inner>);

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    notify: tokio::sync::Notify,
}

impl Shutdown {
    /// A signal that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop.
    pub fn trigger(&self) {
        self.0.triggered.store(true, Ordering::Release);
        // Taking the lock orders this store before any waiter's check-then-wait.
        drop(self.0.lock.lock());
        self.0.wake.notify_all();
        self.0.notify.notify_waiters();
    }

    /// Wakes threads blocked in [`Shutdown::wait_timeout`] without asking them to stop
    /// (new input arrived); they see `false` and carry on.
    pub fn nudge(&self) {
        drop(self.0.lock.lock());
        self.0.wake.notify_all();
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::Acquire)
    }

    /// Blocks the calling thread for up to `timeout`, until a stop or a [`Shutdown::nudge`];
    /// returns `true` if a stop was asked for.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = match self.0.lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if self.is_triggered() {
            return true;
        }
        // One wait: a nudge or a spurious wake ends it early, which costs one extra poll.
        let result = self.0.wake.wait_timeout(guard, timeout);
        drop(result);
        self.is_triggered()
    }

    /// Waits (async) until a stop is asked for.
    pub async fn triggered(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_trigger_wakes_a_waiting_thread_at_once() {
        let s = Shutdown::new();
        let waiter = {
            let s = s.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                (s.wait_timeout(Duration::from_secs(60)), start.elapsed())
            })
        };
        s.trigger();
        let (stopped, waited) = waiter.join().unwrap();
        assert!(stopped);
        assert!(waited < Duration::from_secs(30), "waited {waited:?}");
        assert!(!Shutdown::new().wait_timeout(Duration::from_millis(1)));
    }

    #[tokio::test]
    async fn async_waiters_see_a_trigger_made_before_they_wait() {
        let s = Shutdown::new();
        s.trigger();
        s.triggered().await;
    }
}
