//! Which packs of a catalog hold erased rows, for the readers that must treat them apart.
//!
//! Statistics recorded in base chunks and deltas (min, max, null count per column) describe
//! the rows as they were written; an erasure cannot change them (they are part of immutable,
//! content-addressed records), and erased values (NULL, `'<erased>'`, zeros) may lie outside
//! them. Scans therefore treat the partitions of erased packs as having no statistics: they
//! are never pruned by them. (Inside the pack, the Parquet statistics were rewritten with
//! the rows and stay exact.)
//!
//! The set is listed from the erasure records (`erasures/packs/`) when first asked for and
//! again when it is older than [`ERASED_TTL`]; an erasure made by this process adds its
//! packs at once. Another process's erasure is seen by this one's scans within
//! [`ERASED_TTL`] (until then a filter on erased values may skip partitions of packs erased
//! meanwhile; the rows it returns are read from the erased bytes).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_tree::Hash;

use crate::catalog::Catalog;
use crate::error::Result;

/// How long a catalog trusts its list of erased packs before listing them again.
pub const ERASED_TTL: Duration = Duration::from_secs(30);

/// The catalog's list of erased packs, as last listed.
#[derive(Default)]
pub(crate) struct ErasedSet {
    packs: Arc<HashSet<Hash>>,
    loaded: Option<Instant>,
    epoch: u64,
}

/// The packs of a catalog holding erased rows, and a number that changes whenever the set
/// does (for caches of scan plans).
#[derive(Debug, Clone)]
pub struct ErasedPacks {
    /// Distinct for every catalog and every change of its set; `"-"` when it is empty.
    pub epoch: String,
    pub packs: Arc<HashSet<Hash>>,
}

impl Catalog {
    /// The packs of this catalog holding erased rows (see the module docs).
    pub async fn erased_packs(&self) -> Result<ErasedPacks> {
        let fresh = self.inner.erased.lock().ok().and_then(|s| {
            s.loaded
                .filter(|t| t.elapsed() < ERASED_TTL)
                .map(|_| self.erased_view(&s))
        });
        if let Some(v) = fresh {
            return Ok(v);
        }
        let listed: HashSet<Hash> = self
            .store()
            .list(super::PACK_RECORDS)
            .await?
            .iter()
            .filter_map(|p| super::record::pack_of_record(p))
            .collect();
        let Ok(mut s) = self.inner.erased.lock() else {
            return Ok(ErasedPacks {
                epoch: format!("{}.unlocked", self.instance_id()),
                packs: Arc::new(listed),
            });
        };
        let mut all: HashSet<Hash> = s.packs.as_ref().clone();
        let before = all.len();
        all.extend(listed);
        if all.len() != before {
            s.epoch += 1;
            s.packs = Arc::new(all);
        }
        s.loaded = Some(Instant::now());
        Ok(self.erased_view(&s))
    }

    fn erased_view(&self, s: &ErasedSet) -> ErasedPacks {
        ErasedPacks {
            epoch: if s.packs.is_empty() {
                "-".into()
            } else {
                format!("{}.{}", self.instance_id(), s.epoch)
            },
            packs: s.packs.clone(),
        }
    }

    /// This process rewrote `pack` (an erasure): its cached footer, sums and sizes are
    /// stale, and it holds erased rows.
    pub(crate) fn pack_rewritten(&self, pack: &Hash) {
        self.inner.meta.forget(pack);
        if let Ok(mut s) = self.inner.erased.lock() {
            if !s.packs.contains(pack) {
                let mut all = s.packs.as_ref().clone();
                all.insert(*pack);
                s.packs = Arc::new(all);
                s.epoch += 1;
            }
        }
    }

    /// A reader found `pack` to be `size` bytes long (e.g. planning a scan): when this process
    /// knows it with another size, another process rewrote it (an erasure), and what this one
    /// cached of it (sums, footer) is dropped, raising its generation. Returns whether it was.
    pub fn pack_observed(&self, pack: &Hash, size: u64) -> bool {
        let stale = self.inner.meta.known_size(pack).is_some_and(|s| s != size);
        if stale {
            self.inner.meta.forget(pack);
        }
        stale
    }

    /// The generation of a pack's bytes as this process knows them: raised whenever the
    /// pack is found rewritten by an erasure (caches of its footer or size remember the
    /// generation they were filled at; see [`crate::verified`]).
    pub fn pack_generation(&self, pack: &Hash) -> u64 {
        self.inner.meta.generation(pack)
    }
}
