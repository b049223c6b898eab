//! Write leases and the gc lock: how garbage collection and writers stay out of each
//! other's way on any object store (only create-if-absent, put, list and delete are used).
//!
//! Objects are content-addressed and shared, so a writer may *reuse* an object that
//! already exists — an image imported before, a tree node or pack left by an aborted write
//! — and its put changes nothing on storage (not even the object's modification time). A
//! gc that found that object unreferenced could delete it just before the writer's commit
//! makes it referenced. The protocol below rules that out:
//!
//! ```text
//! gc/leases/<id>.json   one per write in progress: {"started": t, "what": …, "pid": …}
//! gc/lock.json          held by a gc while it deletes: {"started": t, "id": …}
//! gc/epoch              the id of the last gc that deleted (written under the lock)
//! ```
//!
//! * **Writer** (commit, dataset creation, import): creates its lease, *then* reads the lock.
//!   If a gc holds it, the writer withdraws its lease and waits until the lock is gone. Else
//!   it reads the epoch — if a gc ran since this catalog filled its caches, the caches (tree
//!   nodes, pack index, Parquet footers, commits) are dropped, so nothing deleted is reused
//!   from memory — and writes, commits and removes the lease.
//! * **Gc**: lists candidates and marks what live roots reach (no lock). To delete, it takes
//!   the lock, writes the epoch, *then* lists leases, and waits until every lease younger
//!   than [`LEASE_TTL`] is gone (or gives up, deleting nothing). It then marks again from the
//!   roots as they are now — every write that began before the lock has committed or given
//!   up, and none can begin — and deletes only candidates that are still unmarked.
//!
//! Lease-then-lock and lock-then-leases form a Dekker pair: whichever of a writer and a gc
//! comes second sees the other. Leases and locks older than their TTL are stale (a crashed
//! process) and ignored.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use quiver_store::Store;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::{CoreError, Result};

/// Where leases live.
pub(crate) const LEASE_DIR: &str = "gc/leases/";
/// The gc lock.
pub(crate) const LOCK_PATH: &str = "gc/lock.json";
/// The id of the last gc that deleted.
pub(crate) const EPOCH_PATH: &str = "gc/epoch";
/// A write lease older than this is stale (its writer crashed): gc no longer waits for it.
pub const LEASE_TTL: Duration = Duration::from_secs(3600);
/// A gc lock older than this is stale (its gc crashed): writers no longer wait for it.
pub const LOCK_TTL: Duration = Duration::from_secs(3600);
/// How often a writer blocked by a gc's lock looks again.
const POLL: Duration = Duration::from_millis(50);

/// Content of a lease or lock file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Stamp {
    pub started: DateTime<Utc>,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub pid: u32,
}

impl Stamp {
    fn new(what: &str) -> Stamp {
        Stamp {
            started: Utc::now(),
            what: what.to_string(),
            pid: std::process::id(),
        }
    }

    fn bytes(&self) -> Result<Bytes> {
        Ok(Bytes::from(serde_json::to_vec(self)?))
    }

    /// Whether this stamp is younger than `ttl` at `now` (unparsable stamps are stale).
    pub(crate) fn is_fresh(&self, now: DateTime<Utc>, ttl: Duration) -> bool {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        now.signed_duration_since(self.started) < ttl
    }
}

/// A unique, sortable id for a lease or a gc run.
pub(crate) fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = Utc::now();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt = format!(
        "{}-{n}-{:?}-{:?}",
        std::process::id(),
        now.timestamp_nanos_opt(),
        std::thread::current().id()
    );
    format!(
        "{:020}-{}",
        now.timestamp_micros().max(0),
        &quiver_tree::Hash::of(salt.as_bytes()).to_hex()[..16]
    )
}

/// A write in progress, announced to garbage collection. Release it with
/// [`WriteLease::release`] once the write committed or failed; a lease that is dropped
/// unreleased is removed in the background, and a crashed writer's lease goes stale after
/// [`LEASE_TTL`].
#[derive(Debug)]
pub struct WriteLease {
    store: Store,
    path: String,
    released: bool,
}

impl WriteLease {
    /// Withdraw the lease.
    pub async fn release(mut self) {
        self.released = true;
        let _ = self.store.delete(&self.path).await;
    }
}

impl Drop for WriteLease {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // a cancelled write: remove the lease without blocking (best effort; a lease left
        // behind only makes gc wait until it goes stale)
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            let path = std::mem::take(&mut self.path);
            drop(handle.spawn(async move {
                let _ = store.delete(&path).await;
            }));
        }
    }
}

/// Read a stamp file; `None` when absent or unparsable (treated as stale).
pub(crate) async fn read_stamp(store: &Store, path: &str) -> Result<Option<Stamp>> {
    Ok(store
        .get_file_opt(path)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

impl Catalog {
    /// Announce a write (`what` says which, for `quiver gc` messages) to garbage
    /// collection: waits while a gc is deleting, and drops this catalog's caches if a gc
    /// deleted since they were filled. Hold the lease from before the write's first put
    /// until its ref update is done.
    pub async fn write_lease(&self, what: &str) -> Result<WriteLease> {
        let store = self.store();
        loop {
            let path = format!("{LEASE_DIR}{}.json", unique_id());
            store.put_file(&path, Stamp::new(what).bytes()?).await?;
            let lease = WriteLease {
                store: store.clone(),
                path,
                released: false,
            };
            if !self.gc_lock_held().await? {
                self.sync_gc_epoch().await?;
                return Ok(lease);
            }
            lease.release().await;
            while self.gc_lock_held().await? {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Whether a (fresh) gc lock is held.
    pub(crate) async fn gc_lock_held(&self) -> Result<bool> {
        Ok(read_stamp(self.store(), LOCK_PATH)
            .await?
            .is_some_and(|s| s.is_fresh(Utc::now(), LOCK_TTL)))
    }

    /// Drop the caches if a gc deleted objects since this catalog last looked.
    pub(crate) async fn sync_gc_epoch(&self) -> Result<()> {
        let current = self.store().get_file_opt(EPOCH_PATH).await?;
        let changed = match self.inner.gc_epoch.lock() {
            Ok(mut seen) => {
                if *seen != current {
                    *seen = current;
                    true
                } else {
                    false
                }
            }
            Err(_) => true,
        };
        if changed {
            self.clear_caches();
        }
        Ok(())
    }

    /// Forget every cached commit, layout pointer and Parquet footer (after a gc).
    pub(crate) fn clear_caches(&self) {
        self.inner.meta.clear();
        if let Ok(mut c) = self.inner.commits.lock() {
            c.clear();
        }
        if let Ok(mut l) = self.inner.layouts.lock() {
            l.clear();
        }
    }

    /// Take the gc lock; an error if another (fresh) gc holds it. A stale lock is broken.
    pub(crate) async fn take_gc_lock(&self, id: &str) -> Result<()> {
        let store = self.store();
        for _ in 0..2 {
            let stamp = Stamp::new(&format!("gc {id}"));
            if store.put_file_if_absent(LOCK_PATH, stamp.bytes()?).await? {
                return Ok(());
            }
            match read_stamp(store, LOCK_PATH).await? {
                Some(s) if s.is_fresh(Utc::now(), LOCK_TTL) => {
                    return Err(CoreError::GcBusy(format!(
                        "another gc ({}, pid {}) has been deleting since {}",
                        s.what, s.pid, s.started
                    )))
                }
                _ => store.delete(LOCK_PATH).await?,
            }
        }
        Err(CoreError::GcBusy(
            "the gc lock changed hands while it was being taken".into(),
        ))
    }

    /// Release the gc lock.
    pub(crate) async fn release_gc_lock(&self) -> Result<()> {
        Ok(self.store().delete(LOCK_PATH).await?)
    }

    /// Fresh write leases: (path, stamp).
    pub(crate) async fn live_leases(&self, now: DateTime<Utc>) -> Result<Vec<(String, Stamp)>> {
        let mut out = Vec::new();
        for path in self.store().list(LEASE_DIR).await? {
            if let Some(s) = read_stamp(self.store(), &path).await? {
                if s.is_fresh(now, LEASE_TTL) {
                    out.push((path, s));
                }
            }
        }
        Ok(out)
    }
}
