//! Server-side state a caller comes back for by handle — planned statement results (read
//! once by DoGet) and prepared statements — bounded per caller and in total.
//!
//! Every entry belongs to the caller (token name) that created it: another caller's handle
//! reads as missing. Entries expire after [`TTL`]; a caller over its count, or the server
//! over its total, gets `RESOURCE_EXHAUSTED` naming the limit and its `quiver serve` flag
//! until entries are read, closed or expire.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{FlightError, Result};

/// How long an unclaimed entry is kept.
pub const TTL: Duration = Duration::from_secs(600);

struct Entry<T> {
    owner: String,
    created: Instant,
    value: T,
}

/// Entries of one kind, keyed by a random handle.
pub(crate) struct Stash<T> {
    /// What an entry is, for messages ("unread statement result").
    what: &'static str,
    per_caller: usize,
    total: usize,
    entries: Mutex<HashMap<String, Entry<T>>>,
}

impl<T> Stash<T> {
    /// An empty stash of at most `per_caller` entries per caller and `total` in all.
    pub(crate) fn new(what: &'static str, per_caller: usize, total: usize) -> Self {
        Stash {
            what,
            per_caller,
            total,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<T>>> {
        // an entry map stays consistent whatever panicked while holding it
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep `value` for `owner`; its handle.
    pub(crate) fn put(&self, owner: &str, value: T) -> Result<String> {
        let mut m = self.lock();
        m.retain(|_, e| e.created.elapsed() < TTL);
        let mine = m.values().filter(|e| e.owner == owner).count();
        if mine >= self.per_caller {
            return Err(FlightError::Limit {
                what: format!(
                    "{} {}s of caller '{owner}' (read or close earlier ones first)",
                    mine + 1,
                    self.what
                ),
                limit: format!("{} per caller", self.per_caller),
                flag: "--max-results-per-caller",
            });
        }
        if m.len() >= self.total {
            return Err(FlightError::Limit {
                what: format!("{} {}s of all callers", m.len() + 1, self.what),
                limit: format!("{} in all", self.total),
                flag: "--max-results",
            });
        }
        let id = uuid::Uuid::new_v4().to_string();
        m.insert(
            id.clone(),
            Entry {
                owner: owner.to_string(),
                created: Instant::now(),
                value,
            },
        );
        Ok(id)
    }

    /// Remove and return the entry `id` of `owner`.
    pub(crate) fn take(&self, owner: &str, id: &str) -> Option<T> {
        let mut m = self.lock();
        match m.get(id) {
            Some(e) if e.owner == owner && e.created.elapsed() < TTL => {
                m.remove(id).map(|e| e.value)
            }
            _ => None,
        }
    }

    /// Apply `f` to the entry `id` of `owner`.
    pub(crate) fn with<R>(&self, owner: &str, id: &str, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut m = self.lock();
        match m.get_mut(id) {
            Some(e) if e.owner == owner && e.created.elapsed() < TTL => Some(f(&mut e.value)),
            _ => None,
        }
    }

    /// Entries kept now (expired ones included until the next `put`).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn caps_per_caller_and_in_total_freed_once_read() {
        let s: Stash<u32> = Stash::new("unread statement result", 2, 3);
        let a1 = s.put("alice", 1).expect("first");
        s.put("alice", 2).expect("second");
        let err = s.put("alice", 3).expect_err("third of alice");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("--max-results-per-caller")
                && status.message().contains("2 per caller"),
            "{}",
            status.message()
        );
        // another caller cannot read alice's entry, and has its own count
        assert_eq!(s.take("bob", &a1), None);
        s.put("bob", 4).expect("bob's first");
        let err = s.put("carol", 5).expect_err("over the total");
        assert!(err.to_string().contains("--max-results"), "{err}");
        // reading frees: alice may stash again
        assert_eq!(s.take("alice", &a1), Some(1));
        assert_eq!(s.take("alice", &a1), None, "read once");
        s.put("alice", 6).expect("room again");
        assert_eq!(s.len(), 3);
        let id = s.put("x", 7).err().map(|e| e.to_string());
        assert!(id.is_some(), "still full in total");
    }
}
