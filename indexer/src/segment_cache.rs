//! What a search works out once per segment and keeps: segments never change, so what is
//! read from one (its time blocks, its resources) holds for as long as the segment lives.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tantivy::index::SegmentId;

/// Segments whose entry is kept; past this the cache starts over (merged-away segments
/// leave entries behind, and each entry is small).
const CACHED_SEGMENTS: usize = 4096;

/// One kind of per-segment fact, keyed by the segment's id.
pub(crate) struct PerSegment<T> {
    entries: LazyLock<Mutex<HashMap<SegmentId, Arc<T>>>>,
}

impl<T> PerSegment<T> {
    /// An empty cache (for a `static`).
    pub(crate) const fn new() -> Self {
        PerSegment {
            entries: LazyLock::new(|| Mutex::new(HashMap::new())),
        }
    }

    /// The entry of segment `id`, made by `make` when there is none yet; `None` (and nothing
    /// kept) when `make` finds nothing to keep.
    pub(crate) fn get_or_make(
        &self,
        id: SegmentId,
        make: impl FnOnce() -> tantivy::Result<Option<T>>,
    ) -> tantivy::Result<Option<Arc<T>>> {
        if let Some(entry) = self.lock().get(&id) {
            return Ok(Some(entry.clone()));
        }
        // Made outside the lock: two searches meeting a new segment at once both make it,
        // and neither waits for the other.
        let Some(made) = make()? else {
            return Ok(None);
        };
        let made = Arc::new(made);
        let mut entries = self.lock();
        if entries.len() >= CACHED_SEGMENTS {
            entries.clear();
        }
        entries.insert(id, made.clone());
        Ok(Some(made))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<T>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
