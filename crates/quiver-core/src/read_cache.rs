//! [`ReadCache`]: verified pack bytes a long-running reader keeps in memory.
//!
//! A server answers the same reads again and again: a trainer reads a tagged version once
//! per epoch, a dashboard re-runs its queries. Every range read of a pack otherwise costs
//! a `pread` into a buffer (a copy of every byte out of the page cache), an `open`, a hop to
//! a blocking thread and the CRC-32 of every verification unit ([`crate::verified`]). This
//! cache keeps the bytes [`crate::VerifiedStore`] has already checked, so a repeated read
//! is a lookup and a slice of the same buffer: no syscall, no copy, no checksum.
//!
//! **What a hit serves is exactly what was verified.** Bytes enter the cache only after
//! their units matched the pack's sums, and are served only while the pack file is the
//! same file: every lookup `stat`s it and compares its identity (device, inode, size,
//! modification and change times) with the identity taken before the bytes were read. An
//! erasure rewrites a pack under the same name by writing a new file and renaming it over
//! the old one, so a rewrite by any process — this one ([`ReadCache::forget`]) or another
//! — drops the pack's bytes before anything else is served from them.
//!
//! Local catalogs only (a `stat` is what makes the identity check cheap). Off (budget 0)
//! unless the catalog owner sets a budget ([`crate::Catalog::set_read_cache`]): `quiver
//! serve` does (`--read-cache-mb`); one-shot commands (import, OPTIMIZE, fsck), which read
//! each byte once, do not. Past the budget the oldest bytes go first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use quiver_tree::Hash;

/// The identity of a file on disk: a rewrite by rename (or any write) changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    /// The identity of the file at `path`, or `None` when it cannot be read.
    pub fn of(path: &std::path::Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The cached bytes of one pack file.
struct PackBytes {
    file: FileId,
    /// verified ranges by start offset: (bytes, stamp of their insertion)
    ranges: BTreeMap<u64, (Bytes, u64)>,
}

#[derive(Default)]
struct State {
    packs: HashMap<Hash, PackBytes>,
    weight: usize,
    /// insertion order, for eviction: (pack, range start, stamp)
    order: VecDeque<(Hash, u64, u64)>,
    stamp: u64,
}

/// Memory a cached range holds: the buffer it was read into is a power of two
/// (`quiver_store`'s read pool), so count that.
fn weight(b: &Bytes) -> usize {
    b.len().next_power_of_two()
}

/// Verified pack bytes kept in memory (see the module doc).
#[derive(Default)]
pub struct ReadCache {
    budget: AtomicUsize,
    state: Mutex<State>,
}

impl ReadCache {
    /// Bytes this cache may hold; 0 turns it off and empties it.
    pub fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
        if let Ok(mut st) = self.state.lock() {
            Self::evict(&mut st, bytes);
        }
    }

    /// Whether the cache is on.
    pub fn enabled(&self) -> bool {
        self.budget.load(Ordering::Relaxed) > 0
    }

    /// Bytes held now (by the measure the budget is checked against).
    pub fn weight(&self) -> usize {
        self.state.lock().map(|s| s.weight).unwrap_or(0)
    }

    /// Every range of `pack` from the cache, or `None` when one is missing. Bytes cached
    /// from another file than `file` (the pack was rewritten) are dropped first.
    pub fn get(&self, pack: &Hash, file: FileId, ranges: &[Range<u64>]) -> Option<Vec<Bytes>> {
        let mut st = self.state.lock().ok()?;
        let entry = st.packs.get(pack)?;
        if entry.file != file {
            Self::drop_pack(&mut st, pack);
            return None;
        }
        ranges
            .iter()
            .map(|r| {
                let (start, (b, _)) = entry.ranges.range(..=r.start).next_back()?;
                let (from, to) = (r.start - start, r.end.checked_sub(*start)?);
                (r.start <= r.end && to <= b.len() as u64)
                    .then(|| b.slice(from as usize..to as usize))
            })
            .collect()
    }

    /// Keep `ranges` of `pack` (verified bytes read from `file`).
    pub fn put(&self, pack: &Hash, file: FileId, ranges: impl IntoIterator<Item = (u64, Bytes)>) {
        let budget = self.budget.load(Ordering::Relaxed);
        if budget == 0 {
            return;
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.packs.get(pack).is_some_and(|e| e.file != file) {
            Self::drop_pack(&mut st, pack);
        }
        for (start, bytes) in ranges {
            let w = weight(&bytes);
            if bytes.is_empty() || w > budget / 4 {
                continue;
            }
            st.stamp += 1;
            let stamp = st.stamp;
            let entry = st.packs.entry(*pack).or_insert_with(|| PackBytes {
                file,
                ranges: BTreeMap::new(),
            });
            let old = entry.ranges.insert(start, (bytes, stamp));
            let freed = old.map(|(b, _)| weight(&b)).unwrap_or(0);
            st.weight = st.weight + w - freed;
            st.order.push_back((*pack, start, stamp));
        }
        Self::evict(&mut st, budget);
    }

    /// Drop everything cached of `pack` (this process rewrote it, or learned it was).
    pub fn forget(&self, pack: &Hash) {
        if let Ok(mut st) = self.state.lock() {
            Self::drop_pack(&mut st, pack);
        }
    }

    fn drop_pack(st: &mut State, pack: &Hash) {
        if let Some(e) = st.packs.remove(pack) {
            let w: usize = e.ranges.values().map(|(b, _)| weight(b)).sum();
            st.weight = st.weight.saturating_sub(w);
        }
    }

    /// Drop the oldest ranges until at most `budget` bytes are held.
    fn evict(st: &mut State, budget: usize) {
        while st.weight > budget {
            let Some((pack, start, stamp)) = st.order.pop_front() else {
                st.packs.clear();
                st.weight = 0;
                return;
            };
            let Some(entry) = st.packs.get_mut(&pack) else {
                continue;
            };
            if entry.ranges.get(&start).is_some_and(|(_, s)| *s == stamp) {
                if let Some((b, _)) = entry.ranges.remove(&start) {
                    st.weight = st.weight.saturating_sub(weight(&b));
                }
                if entry.ranges.is_empty() {
                    st.packs.remove(&pack);
                }
            }
        }
        // the queue holds stale stamps of ranges dropped with their pack; keep it bounded
        if st.order.len() > 4 * st.packs.values().map(|e| e.ranges.len()).sum::<usize>() + 1024 {
            let live: &HashMap<Hash, PackBytes> = &st.packs;
            let kept: VecDeque<_> = st
                .order
                .iter()
                .filter(|(p, s, stamp)| {
                    live.get(p)
                        .and_then(|e| e.ranges.get(s))
                        .is_some_and(|(_, t)| t == stamp)
                })
                .copied()
                .collect();
            st.order = kept;
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one-range reads are what the tests ask for
mod tests {
    use super::*;

    fn id(ino: u64) -> FileId {
        FileId {
            dev: 1,
            ino,
            len: 100,
            mtime: (0, 0),
            ctime: (0, 0),
        }
    }

    fn bytes(n: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; n])
    }

    #[test]
    fn serves_sub_ranges_of_cached_ranges_only() {
        let c = ReadCache::default();
        let p = Hash::of(b"pack");
        c.put(&p, id(1), [(0, bytes(10, 1))]);
        assert!(c.get(&p, id(1), &[0..4]).is_none(), "off: nothing kept");
        c.set_budget(1 << 20);
        let mut v = vec![0u8; 10];
        v[5] = 9;
        c.put(&p, id(1), [(100, Bytes::from(v)), (200, bytes(8, 2))]);
        let got = c
            .get(&p, id(1), &[104..106, 200..208, 100..100])
            .expect("hit");
        assert_eq!(
            got,
            vec![Bytes::from(vec![0u8, 9]), bytes(8, 2), Bytes::new()]
        );
        // a range that runs past a cached one, or starts before any, is a miss
        assert!(c.get(&p, id(1), &[105..111]).is_none());
        assert!(c.get(&p, id(1), &[50..60]).is_none());
        assert!(c.get(&Hash::of(b"other"), id(1), &[100..101]).is_none());
    }

    #[test]
    fn another_file_or_forget_drops_the_pack() {
        let c = ReadCache::default();
        c.set_budget(1 << 20);
        let p = Hash::of(b"pack");
        c.put(&p, id(1), [(0, bytes(10, 1))]);
        assert!(
            c.get(&p, id(2), &[0..4]).is_none(),
            "rewritten file: no stale bytes"
        );
        assert!(
            c.get(&p, id(1), &[0..4]).is_none(),
            "dropped, not kept for the old id"
        );
        assert_eq!(c.weight(), 0);
        c.put(&p, id(2), [(0, bytes(10, 1))]);
        assert!(c.get(&p, id(2), &[0..4]).is_some());
        c.forget(&p);
        assert!(c.get(&p, id(2), &[0..4]).is_none());
        assert_eq!(c.weight(), 0);
    }

    #[test]
    fn the_oldest_bytes_go_past_the_budget() {
        let c = ReadCache::default();
        c.set_budget(4096);
        let p = Hash::of(b"pack");
        for i in 0..8u64 {
            c.put(&p, id(1), [(i * 1024, bytes(1024, i as u8))]);
        }
        assert!(c.weight() <= 4096);
        assert!(c.get(&p, id(1), &[0..1]).is_none(), "oldest evicted");
        assert_eq!(
            c.get(&p, id(1), &[7 * 1024..7 * 1024 + 2])
                .expect("newest kept"),
            vec![bytes(2, 7)]
        );
        // a range too big for the budget is not kept at all
        c.put(&p, id(1), [(1 << 20, bytes(4000, 3))]);
        assert!(c.get(&p, id(1), &[(1 << 20)..(1 << 20) + 1]).is_none());
        c.set_budget(0);
        assert_eq!(c.weight(), 0);
        assert!(!c.enabled());
    }
}
