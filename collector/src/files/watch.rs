//! Filesystem notifications: a change under a watched directory wakes the source at once
//! instead of at the end of its poll interval. The poll stays the authority (notifications
//! can overflow, and some filesystems give none); a notification only shortens the wait.

use crate::Shutdown;
use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Keeps the OS watches alive; dropping it stops them.
pub(crate) struct ChangeWatch {
    _watcher: Option<notify::RecommendedWatcher>,
    changed: Arc<AtomicBool>,
}

impl ChangeWatch {
    /// Watches `dirs` (recursively); a change sets a flag and wakes waiters of `wake`.
    /// When the OS refuses (inotify limits), the source polls only, and says so.
    pub(crate) fn start(dirs: &[&Path], wake: Shutdown) -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&changed);
        let handler = move |event: notify::Result<notify::Event>| {
            // Our own reads raise access events (open, read, close): reacting to them would
            // make the source poll in a loop while it reads. Only writes, creations, renames
            // and removals are news.
            let news = event.is_ok_and(|e| !e.kind.is_access());
            if news && !flag.swap(true, Ordering::AcqRel) {
                // Only the first change since the source last looked wakes it.
                wake.nudge();
            }
        };
        let watcher = notify::recommended_watcher(handler).and_then(|mut w| {
            for dir in dirs {
                w.watch(dir, RecursiveMode::Recursive)?;
            }
            Ok(w)
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "filesystem notifications unavailable; polling only");
                None
            }
        };
        ChangeWatch {
            _watcher: watcher,
            changed,
        }
    }

    /// Whether something changed since the last call.
    pub(crate) fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }
}
