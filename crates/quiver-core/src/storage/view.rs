//! A loaded layout: base chunks and deltas folded into what a version holds.
//!
//! The fold is cheap (one pass over the deltas' entries): the latest entry of every group a
//! delta touched, the row ranges whose rows a later commit replaced (*holes*: every delta
//! entry's before-image), and the scan partitions — each base chunk and each delta's new
//! rows minus the holes, as row ranges of their packs. A view depends only on immutable
//! objects, so it is cached by layout hash for every catalog.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use quiver_tree::{ChildEntry, ColumnStats, GroupAt, Hash, Key};

use super::format::{Base, Delta, DeltaEntry, GroupRef, Layout};
use crate::packs::LeafLoc;

/// A version's layout with its base and deltas loaded and folded.
#[derive(Debug)]
pub struct View {
    /// Hash of the layout object.
    pub id: Hash,
    pub layout: Layout,
    pub base: Arc<Base>,
    pub deltas: Vec<Arc<Delta>>,
    /// For every group a delta touched: (delta index, entry index) of its latest entry.
    touched: BTreeMap<Key, (u32, u32)>,
    /// The scan partitions, built on first use: a commit, a diff or a merge locates groups
    /// in a view without ever scanning it, and building them costs a hash and a few
    /// allocations per base chunk (tens of milliseconds at 10M labels).
    parts: OnceLock<Parts>,
}

/// Scan partitions: a description (synthetic hash, key range, counts, statistics) and the
/// row range they cover, and the range by description hash.
#[derive(Debug)]
struct Parts {
    list: Vec<(ChildEntry, LeafLoc)>,
    loc_of: HashMap<Hash, LeafLoc>,
}

/// Where a group is in a version, as far as the layout says without reading rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// A delta holds the group's latest rows (or its deletion: `None`).
    Delta(Option<GroupRef>),
    /// The group is not in any delta; if anywhere, it is in this base chunk.
    Chunk(usize),
    /// The group is not in this version.
    Absent,
}

impl View {
    pub fn new(id: Hash, layout: Layout, base: Arc<Base>, deltas: Vec<Arc<Delta>>) -> View {
        let mut touched = BTreeMap::new();
        for (di, d) in deltas.iter().enumerate() {
            for (ei, e) in d.entries.iter().enumerate() {
                touched.insert(e.key.clone(), (di as u32, ei as u32));
            }
        }
        View {
            id,
            layout,
            base,
            deltas,
            touched,
            parts: OnceLock::new(),
        }
    }

    fn build_parts(&self) -> Parts {
        let (base, deltas) = (&self.base, &self.deltas);
        let holes = holes(deltas);
        let mut parts = Vec::new();
        for c in &base.chunks {
            let live = subtract(
                c.start..c.start + c.rows,
                holes.get(&(Instance::Base, c.pack)),
            );
            for r in live {
                parts.push(part(
                    c.pack,
                    r,
                    (c.rows, c.rows),
                    c.groups,
                    &c.first_key,
                    &c.last_key,
                    &c.stats,
                ));
            }
        }
        for (di, d) in deltas.iter().enumerate() {
            let Some(pack) = d.pack else { continue };
            let stats: std::sync::Arc<[ColumnStats]> = d.stats.as_slice().into();
            // the delta's new rows, in runs of adjacent groups
            let mut runs: Vec<(Range<u64>, Key, Key, u64)> = Vec::new();
            for e in &d.entries {
                let Some(n) = &e.new else { continue };
                let r = n.at.offset..n.at.offset + n.rows;
                match runs.last_mut() {
                    Some(last) if last.0.end == r.start => {
                        last.0.end = r.end;
                        last.2 = e.key.clone();
                        last.3 += 1;
                    }
                    _ => runs.push((r, e.key.clone(), e.key.clone(), 1)),
                }
            }
            for (range, first, last, groups) in runs {
                let rows = range.end - range.start;
                for r in subtract(range, holes.get(&(Instance::Delta(di), pack))) {
                    parts.push(part(pack, r, (rows, d.rows), groups, &first, &last, &stats));
                }
            }
        }
        let loc_of = parts.iter().map(|(e, l)| (e.hash, *l)).collect();
        Parts {
            list: parts,
            loc_of,
        }
    }

    fn parts_built(&self) -> &Parts {
        self.parts.get_or_init(|| self.build_parts())
    }

    /// Its layout and deltas without the base.
    pub fn layered(&self) -> Layered {
        Layered {
            id: self.id,
            layout: self.layout.clone(),
            deltas: self.deltas.clone(),
        }
    }

    /// The scan partitions (see the module docs).
    pub fn parts(&self) -> &[(ChildEntry, LeafLoc)] {
        &self.parts_built().list
    }

    /// The row range of a partition, by its synthetic hash.
    pub fn loc(&self, part: &Hash) -> Option<LeafLoc> {
        self.parts_built().loc_of.get(part).copied()
    }

    /// Where `key` is, as far as the layout tells.
    pub fn find(&self, key: &[u8]) -> Found {
        if let Some(&(d, e)) = self.touched.get(key) {
            return Found::Delta(self.deltas[d as usize].entries[e as usize].new);
        }
        let chunks = &self.base.chunks;
        let i = chunks.partition_point(|c| c.last_key.as_slice() < key);
        match chunks.get(i) {
            Some(c) if c.first_key.as_slice() <= key => Found::Chunk(i),
            _ => Found::Absent,
        }
    }

    /// Every group key a delta of this view touched, with its latest entry.
    pub fn touched(&self) -> impl Iterator<Item = (&Key, &DeltaEntry)> {
        self.touched
            .iter()
            .map(|(k, &(d, e))| (k, &self.deltas[d as usize].entries[e as usize]))
    }

    /// Statistics over everything (base chunks and deltas; bounds, not exact).
    pub fn stats(&self) -> Vec<ColumnStats> {
        let mut out = Vec::new();
        let mut first = true;
        for c in &self.base.chunks {
            super::format::merge_stats(&mut out, &c.stats, first);
            first = false;
        }
        for d in &self.deltas {
            if d.rows > 0 {
                super::format::merge_stats(&mut out, &d.stats, first);
                first = false;
            }
        }
        out
    }
}

/// Null count of a partition statistic that is not known: the statistics of a chunk or
/// delta describe all its rows, and a partition holding only some of them (holes, or one
/// run of a delta's rows) has between 0 and that many nulls. Its min and max stay valid
/// bounds; "every row is null" (null count = rows) cannot be concluded. Readers treat this
/// value as unknown (only partitions carry it; it is never stored).
pub const UNKNOWN_NULLS: u64 = u64::MAX;

/// A partition entry for rows `r` of `pack`, a part of a run of `rows.0` rows and `groups`
/// groups (the group count is prorated) whose `stats` describe `rows.1` rows.
fn part(
    pack: Hash,
    r: Range<u64>,
    rows: (u64, u64),
    groups: u64,
    first: &Key,
    last: &Key,
    stats: &std::sync::Arc<[ColumnStats]>,
) -> (ChildEntry, LeafLoc) {
    let (rows, described) = rows;
    let n = r.end - r.start;
    // shared with the chunk unless a part of it is described: then null counts are unknown
    let stats = if n == described {
        stats.clone()
    } else {
        let mut own = stats.to_vec();
        for s in &mut own {
            s.null_count = UNKNOWN_NULLS;
        }
        own.into()
    };
    let mut h = blake3::Hasher::new();
    h.update(b"quiver-part");
    h.update(pack.as_bytes());
    h.update(&r.start.to_le_bytes());
    h.update(&n.to_le_bytes());
    let g = if rows == 0 {
        0
    } else {
        ((groups as u128 * n as u128) / rows as u128).max(1) as u64
    };
    (
        ChildEntry {
            hash: Hash(*h.finalize().as_bytes()),
            first_key: first.clone(),
            last_key: last.clone(),
            rows: n,
            groups: g,
            stats,
        },
        LeafLoc {
            pack,
            start: r.start,
            rows: n,
        },
    )
}

/// Which copy of a pack a row range belongs to: the base's, or the one a delta wrote.
/// Packs are content-addressed, so two deltas that wrote the same rows (a group put back
/// exactly as an earlier commit had it) share one pack hash; a later commit replacing the
/// first copy's rows must not punch a hole in the second's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Instance {
    Base,
    Delta(usize),
}

/// The rows later commits replaced (every delta entry's before-image), as sorted row
/// ranges per pack instance. An entry's old rows are in the delta that last wrote its
/// group (when that delta's pack is the one named), else in the base (or, for layouts
/// written otherwise, in the latest earlier delta with that pack).
pub(crate) fn holes(deltas: &[Arc<Delta>]) -> HashMap<(Instance, Hash), Vec<Range<u64>>> {
    let mut holes: HashMap<(Instance, Hash), Vec<Range<u64>>> = HashMap::new();
    // the delta whose new rows hold each key's current state
    let mut last: HashMap<&Key, usize> = HashMap::new();
    for (di, d) in deltas.iter().enumerate() {
        for e in &d.entries {
            if let Some(old) = &e.old {
                let leaf = old.at.leaf;
                let inst = match last.get(&e.key) {
                    Some(&p) if deltas[p].pack == Some(leaf) => Instance::Delta(p),
                    _ => deltas[..di]
                        .iter()
                        .rposition(|x| x.pack == Some(leaf))
                        .map_or(Instance::Base, Instance::Delta),
                };
                holes
                    .entry((inst, leaf))
                    .or_default()
                    .push(old.at.offset..old.at.offset + old.rows);
            }
            match &e.new {
                Some(_) => last.insert(&e.key, di),
                None => last.remove(&e.key),
            };
        }
    }
    for h in holes.values_mut() {
        h.sort_by_key(|r| r.start);
    }
    holes
}

/// `r` minus the (sorted, disjoint) `holes`.
pub(crate) fn subtract(r: Range<u64>, holes: Option<&Vec<Range<u64>>>) -> Vec<Range<u64>> {
    let Some(holes) = holes else {
        return if r.is_empty() { vec![] } else { vec![r] };
    };
    let mut out = Vec::new();
    let mut pos = r.start;
    let first = holes.partition_point(|h| h.end <= r.start);
    for h in &holes[first..] {
        if h.start >= r.end {
            break;
        }
        if h.start > pos {
            out.push(pos..h.start);
        }
        pos = pos.max(h.end);
    }
    if pos < r.end {
        out.push(pos..r.end);
    }
    out
}

/// Views by layout hash (content-addressed, so valid for every catalog), weighed in
/// partitions + touched groups.
static VIEWS: LazyLock<Mutex<crate::storage::cache::Lru<Hash, Arc<View>>>> =
    LazyLock::new(|| Mutex::new(crate::storage::cache::Lru::new(1 << 19)));

pub(crate) fn cached(id: &Hash) -> Option<Arc<View>> {
    VIEWS.lock().ok().and_then(|mut m| m.get(id))
}

pub(crate) fn remember(v: Arc<View>) {
    // partitions are about one per base chunk (plus the deltas' runs, bounded by touched)
    let weight = v.base.chunks.len() + 2 * v.touched.len() + 1;
    if let Ok(mut m) = VIEWS.lock() {
        m.insert(v.id, v, weight);
    }
}

/// Decoded base records by hash (content-addressed, so valid for every catalog), weighed
/// in chunks: every version until the next OPTIMIZE shares its base, and a new version's
/// view (after each commit) would otherwise fetch and decode the whole record again.
static BASES: LazyLock<Mutex<crate::storage::cache::Lru<Hash, Arc<Base>>>> =
    LazyLock::new(|| Mutex::new(crate::storage::cache::Lru::new(1 << 19)));

pub(crate) fn cached_base(id: &Hash) -> Option<Arc<Base>> {
    BASES.lock().ok().and_then(|mut m| m.get(id))
}

pub(crate) fn remember_base(id: Hash, base: Arc<Base>) {
    let weight = base.chunks.len() + 1;
    if let Ok(mut m) = BASES.lock() {
        m.insert(id, base, weight);
    }
}

/// A version's layout with its deltas loaded but not its base: all that a diff between
/// two versions on one base needs (the deltas name every changed group with its before-
/// and after-images), so such a diff never reads the base record.
#[derive(Debug)]
pub struct Layered {
    /// Hash of the layout object.
    pub id: Hash,
    pub layout: Layout,
    pub deltas: Vec<Arc<Delta>>,
}

/// Layered layouts by layout hash, weighed in delta entries.
static LAYERED: LazyLock<Mutex<crate::storage::cache::Lru<Hash, Arc<Layered>>>> =
    LazyLock::new(|| Mutex::new(crate::storage::cache::Lru::new(1 << 20)));

pub(crate) fn cached_layered(id: &Hash) -> Option<Arc<Layered>> {
    if let Some(l) = LAYERED.lock().ok().and_then(|mut m| m.get(id)) {
        return Some(l);
    }
    // a folded view has everything a layered layout holds
    cached(id).map(|v| Arc::new(v.layered()))
}

pub(crate) fn remember_layered(l: Arc<Layered>) {
    let weight = l.deltas.iter().map(|d| d.entries.len()).sum::<usize>() + 1;
    if let Ok(mut m) = LAYERED.lock() {
        m.insert(l.id, l, weight);
    }
}

/// The position of a group found in a base chunk: `(pack, first row)`.
pub fn at(pack: Hash, row: u64) -> GroupAt {
    GroupAt {
        leaf: pack,
        offset: row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtract_holes() {
        let holes = vec![0..2, 5..7, 9..12, 20..30];
        assert_eq!(subtract(3..15, Some(&holes)), vec![3..5, 7..9, 12..15]);
        assert_eq!(subtract(5..7, Some(&holes)), Vec::<Range<u64>>::new());
        assert_eq!(subtract(12..20, Some(&holes)), vec![12..20]);
        assert_eq!(subtract(3..4, None), vec![3..4]);
    }
}
