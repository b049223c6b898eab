//! The physical records of storage format 2 and their byte encodings.
//!
//! A version's rows are described by a [`Layout`]: a **base** (a list of [`Chunk`]s —
//! non-overlapping runs of label groups in key order, each a row range of a Parquet pack
//! with its key range, counts, column statistics and content hash) and zero or more
//! **deltas** ([`Delta`]): one per commit since the base was written, each naming the
//! groups the commit changed with where their old rows were (before-image) and where
//! their new rows are (after-image, in the delta's own small pack). The layout also
//! carries the version's counts and its content multiset ([`Multiset`]), whose digest is
//! the commit's `root`.
//!
//! All three records are content-addressed objects (kinds [`BASE_KIND`], [`DELTA_KIND`],
//! [`LAYOUT_KIND`]). Which layout a commit uses is a small pointer file
//! `datasets/<ds>/layouts/<commit hex>` holding the layout hash; OPTIMIZE rewrites it to a
//! layout with the same content and fewer deltas (commit ids and content hashes never
//! change).
//!
//! Encodings: a magic, then fields in order; integers as unsigned LEB128 varints, byte
//! strings as varint length + bytes, hashes as 32 raw bytes, options as a 0/1 byte.
//! Statistics values: tag byte (0 bool, 1 int, 2 float, 3 bytes) then the value (bool one
//! byte, int zigzag varint, float f64 bits LE, bytes as a byte string).

use quiver_tree::{ColumnStats, GroupAt, Hash, Key, StatValue};

use super::lthash::Multiset;
use crate::error::{CoreError, Result};

/// Object kind of bases.
pub const BASE_KIND: &str = "base";
/// Object kind of deltas.
pub const DELTA_KIND: &str = "delta";
/// Object kind of layouts.
pub const LAYOUT_KIND: &str = "layout";

const BASE_MAGIC: &[u8; 8] = b"QVBASE02";
const DELTA_MAGIC: &[u8; 8] = b"QVDLTA03";
/// Deltas written before before-image copies and the pack table (read, never written).
const DELTA_MAGIC_V2: &[u8; 8] = b"QVDLTA02";
const LAYOUT_MAGIC: &[u8; 8] = b"QVLAYT02";
/// Layouts whose base an OPTIMIZE made, with the fold links back to earlier bases.
const LAYOUT_MAGIC_FOLDS: &[u8; 8] = b"QVLAYT03";
/// At most this many fold links are kept (nearest first): a diff across more folds than
/// that compares the bases' chunks instead.
pub const MAX_FOLD_LINKS: usize = 8;

/// One run of label groups of a base, stored contiguously in a pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub first_key: Key,
    pub last_key: Key,
    pub rows: u64,
    pub groups: u64,
    pub stats: std::sync::Arc<[ColumnStats]>,
    pub pack: Hash,
    /// First row of the chunk in the pack.
    pub start: u64,
    /// Digest of the multiset of the chunk's groups.
    pub hash: Hash,
}

/// The base of a layout: chunks in key order, non-overlapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Base {
    pub chunks: Vec<Chunk>,
}

/// The rows of one group at a place: its group hash, where its rows start (pack, first
/// row as [`GroupAt::leaf`] / [`GroupAt::offset`]) and how many rows it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRef {
    pub hash: Hash,
    pub at: GroupAt,
    pub rows: u64,
}

/// One group a commit changed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaEntry {
    pub key: Key,
    /// The group before the commit (`None`: it did not exist).
    pub old: Option<GroupRef>,
    /// The group after the commit (`None`: deleted); its rows are in the delta's pack.
    pub new: Option<GroupRef>,
    /// First row of a copy of the old rows in the delta's own pack, after the new rows
    /// (`old.rows` rows; `None`: no copy, read them at `old.at`). The writer read these
    /// rows anyway; with the copy, a diff or merge of recent versions reads only change
    /// packs, never the large base packs.
    pub before: Option<u64>,
}

impl DeltaEntry {
    /// The old rows at their cheapest place to read: the copy in the delta's pack `pack`
    /// when there is one, else where they live.
    pub fn old_readable(&self, pack: Option<Hash>) -> Option<GroupRef> {
        let old = self.old?;
        match (self.before, pack) {
            (Some(offset), Some(leaf)) => Some(GroupRef {
                at: GroupAt { leaf, offset },
                ..old
            }),
            _ => Some(old),
        }
    }
}

/// The change record of one commit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    /// Pack with the new rows (absent when the commit only deleted).
    pub pack: Option<Hash>,
    /// New rows in the pack (rows `0..rows`; before-image copies follow them).
    pub rows: u64,
    /// Statistics over the pack's new rows.
    pub stats: Vec<ColumnStats>,
    /// Changed groups in key order.
    pub entries: Vec<DeltaEntry>,
}

/// Base + deltas of a version, with its counts and content multiset.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub base: Hash,
    pub deltas: Vec<Hash>,
    pub rows: u64,
    pub groups: u64,
    pub content: Multiset,
    /// How its base came to be, nearest first: `folds[0]` says this base is
    /// `folds[0].base` changed by the delta `folds[0].changes`, `folds[1]` the same for
    /// `folds[0].base`, and so on (empty: not known, e.g. an import's base).
    pub folds: Vec<FoldLink>,
}

/// One OPTIMIZE that rewrote chunks: the base it read and the changes it made to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldLink {
    /// The base that was folded.
    pub base: Hash,
    /// A delta record without a pack (a *fold record*): one entry per group of a rewritten
    /// chunk whose group hash the fold changed, `old` in `base`, `new` in the base made.
    pub changes: Hash,
}

// ------------------------------------------------------------------ byte helpers

#[derive(Default)]
pub(crate) struct W(pub Vec<u8>);

impl W {
    pub fn u(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub fn hash(&mut self, h: &Hash) {
        self.0.extend_from_slice(h.as_bytes());
    }
    pub fn stat(&mut self, v: &Option<StatValue>) {
        match v {
            None => self.0.push(0xff),
            Some(StatValue::Bool(b)) => {
                self.0.push(0);
                self.0.push(*b as u8)
            }
            Some(StatValue::Int(i)) => {
                self.0.push(1);
                self.u(((*i << 1) ^ (*i >> 63)) as u64)
            }
            Some(StatValue::Float(f)) => {
                self.0.push(2);
                self.0.extend_from_slice(&f.to_bits().to_le_bytes())
            }
            Some(StatValue::Bytes(b)) => {
                self.0.push(3);
                self.bytes(b)
            }
        }
    }
    pub fn stats(&mut self, s: &[ColumnStats]) {
        self.u(s.len() as u64);
        for c in s {
            self.stat(&c.min);
            self.stat(&c.max);
            self.u(c.null_count);
        }
    }
    /// A reference as the first format-2 delta encoding wrote it (tests of that reader).
    #[cfg(test)]
    fn group_ref(&mut self, g: &Option<GroupRef>) {
        match g {
            None => self.0.push(0),
            Some(g) => {
                self.0.push(1);
                self.hash(&g.hash);
                self.hash(&g.at.leaf);
                self.u(g.at.offset);
                self.u(g.rows);
            }
        }
    }
}

pub(crate) struct R<'a> {
    b: &'a [u8],
    what: &'a str,
}

impl<'a> R<'a> {
    pub fn new(b: &'a [u8], magic: &[u8; 8], what: &'a str) -> Result<R<'a>> {
        if b.len() < 8 || &b[..8] != magic {
            return Err(corrupt(what, "bad magic (not a format-2 record)"));
        }
        Ok(R { b: &b[8..], what })
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(corrupt(self.what, "truncated"));
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt(self.what, "varint too long"))
    }
    fn len(&mut self) -> Result<usize> {
        let n = self.u()?;
        if n > self.b.len() as u64 {
            return Err(corrupt(self.what, "length past the end"));
        }
        Ok(n as usize)
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }
    pub fn hash(&mut self) -> Result<Hash> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32)?);
        Ok(Hash(h))
    }
    fn stat(&mut self) -> Result<Option<StatValue>> {
        Ok(match self.byte()? {
            0xff => None,
            0 => Some(StatValue::Bool(self.byte()? != 0)),
            1 => {
                let z = self.u()?;
                Some(StatValue::Int(((z >> 1) as i64) ^ -((z & 1) as i64)))
            }
            2 => {
                let mut w = [0u8; 8];
                w.copy_from_slice(self.take(8)?);
                Some(StatValue::Float(f64::from_bits(u64::from_le_bytes(w))))
            }
            3 => Some(StatValue::Bytes(self.bytes()?)),
            t => return Err(corrupt(self.what, &format!("unknown statistics tag {t}"))),
        })
    }
    pub fn stats(&mut self) -> Result<Vec<ColumnStats>> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(ColumnStats {
                min: self.stat()?,
                max: self.stat()?,
                null_count: self.u()?,
            });
        }
        Ok(out)
    }
    fn group_ref(&mut self) -> Result<Option<GroupRef>> {
        Ok(match self.byte()? {
            0 => None,
            1 => Some(GroupRef {
                hash: self.hash()?,
                at: GroupAt {
                    leaf: self.hash()?,
                    offset: self.u()?,
                },
                rows: self.u()?,
            }),
            t => return Err(corrupt(self.what, &format!("bad option tag {t}"))),
        })
    }
    fn end(&self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what, "trailing bytes"))
        }
    }
}

fn corrupt(what: &str, reason: &str) -> CoreError {
    CoreError::Corrupt {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

// ------------------------------------------------------------------ records

impl Base {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(BASE_MAGIC.to_vec());
        w.u(self.chunks.len() as u64);
        for c in &self.chunks {
            w.bytes(&c.first_key);
            w.bytes(&c.last_key);
            w.u(c.rows);
            w.u(c.groups);
            w.stats(&c.stats);
            w.hash(&c.pack);
            w.u(c.start);
            w.hash(&c.hash);
        }
        w.0
    }

    pub fn decode(b: &[u8], what: &str) -> Result<Base> {
        let mut r = R::new(b, BASE_MAGIC, what)?;
        let n = r.u()? as usize;
        let mut chunks = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            chunks.push(Chunk {
                first_key: r.bytes()?,
                last_key: r.bytes()?,
                rows: r.u()?,
                groups: r.u()?,
                stats: r.stats()?.into(),
                pack: r.hash()?,
                start: r.u()?,
                hash: r.hash()?,
            });
        }
        r.end()?;
        Ok(Base { chunks })
    }

    /// Rows over all chunks.
    pub fn rows(&self) -> u64 {
        self.chunks.iter().map(|c| c.rows).sum()
    }
}

impl Delta {
    /// `magic pack? rows stats npacks packs… n entries…`; an entry is `key old new before`,
    /// a group reference `0 | 1 hash pack-index offset rows` (packs named once in the
    /// table: most entries of a delta point into the same few packs), `before` is
    /// `0 | 1 + offset`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(DELTA_MAGIC.to_vec());
        match &self.pack {
            None => w.0.push(0),
            Some(p) => {
                w.0.push(1);
                w.hash(p)
            }
        }
        w.u(self.rows);
        w.stats(&self.stats);
        let mut table: Vec<Hash> = Vec::new();
        let mut index: std::collections::HashMap<Hash, u64> = std::collections::HashMap::new();
        for g in self.entries.iter().flat_map(|e| [e.old, e.new]).flatten() {
            index.entry(g.at.leaf).or_insert_with(|| {
                table.push(g.at.leaf);
                table.len() as u64 - 1
            });
        }
        w.u(table.len() as u64);
        for h in &table {
            w.hash(h);
        }
        w.u(self.entries.len() as u64);
        for e in &self.entries {
            w.bytes(&e.key);
            for g in [&e.old, &e.new] {
                match g {
                    None => w.0.push(0),
                    Some(g) => {
                        w.0.push(1);
                        w.hash(&g.hash);
                        w.u(index[&g.at.leaf]);
                        w.u(g.at.offset);
                        w.u(g.rows);
                    }
                }
            }
            w.u(e.before.map_or(0, |o| o + 1));
        }
        w.0
    }

    pub fn decode(b: &[u8], what: &str) -> Result<Delta> {
        if b.starts_with(DELTA_MAGIC_V2) {
            return Self::decode_v2(b, what);
        }
        let mut r = R::new(b, DELTA_MAGIC, what)?;
        let (pack, rows, stats) = Self::decode_header(&mut r)?;
        let np = r.len()?;
        let mut table = Vec::with_capacity(np.min(1 << 16));
        for _ in 0..np {
            table.push(r.hash()?);
        }
        let n = r.u()? as usize;
        let mut entries = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let key = r.bytes()?;
            let mut refs = [None, None];
            for slot in &mut refs {
                *slot = match r.byte()? {
                    0 => None,
                    1 => {
                        let hash = r.hash()?;
                        let leaf = *table
                            .get(r.u()? as usize)
                            .ok_or_else(|| corrupt(what, "pack index past the table"))?;
                        Some(GroupRef {
                            hash,
                            at: GroupAt {
                                leaf,
                                offset: r.u()?,
                            },
                            rows: r.u()?,
                        })
                    }
                    t => return Err(corrupt(what, &format!("bad option tag {t}"))),
                };
            }
            let before = r.u()?.checked_sub(1);
            entries.push(DeltaEntry {
                key,
                old: refs[0],
                new: refs[1],
                before,
            });
        }
        r.end()?;
        Ok(Delta {
            pack,
            rows,
            stats,
            entries,
        })
    }

    /// `pack? rows stats`, the fields both encodings start with.
    fn decode_header(r: &mut R<'_>) -> Result<(Option<Hash>, u64, Vec<ColumnStats>)> {
        let pack = match r.byte()? {
            0 => None,
            _ => Some(r.hash()?),
        };
        Ok((pack, r.u()?, r.stats()?))
    }

    /// The first format-2 delta encoding (pack hash in every reference, no copies).
    fn decode_v2(b: &[u8], what: &str) -> Result<Delta> {
        let mut r = R::new(b, DELTA_MAGIC_V2, what)?;
        let (pack, rows, stats) = Self::decode_header(&mut r)?;
        let n = r.u()? as usize;
        let mut entries = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            entries.push(DeltaEntry {
                key: r.bytes()?,
                old: r.group_ref()?,
                new: r.group_ref()?,
                before: None,
            });
        }
        r.end()?;
        Ok(Delta {
            pack,
            rows,
            stats,
            entries,
        })
    }
}

impl Layout {
    /// `QVLAYT02` without fold links (the bytes format 2 always had), else `QVLAYT03` with
    /// the links after the content.
    pub fn encode(&self) -> Vec<u8> {
        let magic = if self.folds.is_empty() {
            LAYOUT_MAGIC
        } else {
            LAYOUT_MAGIC_FOLDS
        };
        let mut w = W(magic.to_vec());
        w.hash(&self.base);
        w.u(self.deltas.len() as u64);
        for d in &self.deltas {
            w.hash(d);
        }
        w.u(self.rows);
        w.u(self.groups);
        w.bytes(&self.content.to_bytes());
        if !self.folds.is_empty() {
            w.u(self.folds.len() as u64);
            for f in &self.folds {
                w.hash(&f.base);
                w.hash(&f.changes);
            }
        }
        w.0
    }

    pub fn decode(b: &[u8], what: &str) -> Result<Layout> {
        let with_folds = b.starts_with(LAYOUT_MAGIC_FOLDS);
        let magic = if with_folds {
            LAYOUT_MAGIC_FOLDS
        } else {
            LAYOUT_MAGIC
        };
        let mut r = R::new(b, magic, what)?;
        let base = r.hash()?;
        let n = r.u()? as usize;
        let mut deltas = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            deltas.push(r.hash()?);
        }
        let rows = r.u()?;
        let groups = r.u()?;
        let content = Multiset::from_bytes(&r.bytes()?)
            .ok_or_else(|| corrupt(what, "bad content multiset"))?;
        let mut folds = Vec::new();
        if with_folds {
            let n = r.u()? as usize;
            if n == 0 || n > MAX_FOLD_LINKS {
                return Err(corrupt(what, "bad number of fold links"));
            }
            for _ in 0..n {
                folds.push(FoldLink {
                    base: r.hash()?,
                    changes: r.hash()?,
                });
            }
        }
        r.end()?;
        Ok(Layout {
            base,
            deltas,
            rows,
            groups,
            content,
            folds,
        })
    }
}

/// Fold `b` into `a` (min of mins, max of maxes, sum of null counts; an unknown bound
/// stays unknown).
pub fn merge_stats(a: &mut Vec<ColumnStats>, b: &[ColumnStats], first: bool) {
    if first {
        *a = b.to_vec();
        return;
    }
    for (x, y) in a.iter_mut().zip(b) {
        x.null_count += y.null_count;
        x.min = match (&x.min, &y.min) {
            (Some(p), Some(q)) => Some(if q.compare(p).is_some_and(|o| o.is_lt()) {
                q.clone()
            } else {
                p.clone()
            }),
            _ => None,
        };
        x.max = match (&x.max, &y.max) {
            (Some(p), Some(q)) => Some(if q.compare(p).is_some_and(|o| o.is_gt()) {
                q.clone()
            } else {
                p.clone()
            }),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip() {
        let stats = vec![
            ColumnStats {
                min: Some(StatValue::Int(-3)),
                max: Some(StatValue::Int(i64::MAX)),
                null_count: 2,
            },
            ColumnStats {
                min: Some(StatValue::Bytes(b"a".to_vec())),
                max: None,
                null_count: 0,
            },
            ColumnStats {
                min: Some(StatValue::Float(-0.5)),
                max: Some(StatValue::Bool(true)),
                null_count: 9,
            },
        ];
        let base = Base {
            chunks: vec![Chunk {
                first_key: b"img-1".to_vec(),
                last_key: b"img-9".to_vec(),
                rows: 40,
                groups: 9,
                stats: stats.clone().into(),
                pack: Hash([1; 32]),
                start: 300,
                hash: Hash([2; 32]),
            }],
        };
        assert_eq!(Base::decode(&base.encode(), "b").unwrap(), base);
        let g = GroupRef {
            hash: Hash([3; 32]),
            at: GroupAt {
                leaf: Hash([4; 32]),
                offset: 1 << 40,
            },
            rows: 7,
        };
        let g2 = GroupRef {
            hash: Hash([10; 32]),
            at: GroupAt {
                leaf: Hash([11; 32]),
                offset: 3,
            },
            rows: 2,
        };
        let delta = Delta {
            pack: Some(Hash([5; 32])),
            rows: 7,
            stats,
            entries: vec![
                DeltaEntry {
                    key: vec![0, 1],
                    old: None,
                    new: Some(g),
                    before: None,
                },
                DeltaEntry {
                    key: vec![0, 2],
                    old: Some(g),
                    new: None,
                    before: None,
                },
                DeltaEntry {
                    key: vec![0, 3],
                    old: Some(g2),
                    new: Some(g),
                    before: Some(7),
                },
            ],
        };
        assert_eq!(Delta::decode(&delta.encode(), "d").unwrap(), delta);
        // the copy is where a reader of the old rows goes; without one, the old place
        assert_eq!(
            delta.entries[2].old_readable(delta.pack),
            Some(GroupRef {
                at: GroupAt {
                    leaf: Hash([5; 32]),
                    offset: 7
                },
                ..g2
            })
        );
        assert_eq!(delta.entries[1].old_readable(delta.pack), Some(g));
        // deltas of the first format-2 encoding still read, as entries without copies
        let mut w = W(DELTA_MAGIC_V2.to_vec());
        w.0.push(1);
        w.hash(&Hash([5; 32]));
        w.u(7);
        w.stats(&delta.stats);
        w.u(2);
        for e in &delta.entries[..2] {
            w.bytes(&e.key);
            w.group_ref(&e.old);
            w.group_ref(&e.new);
        }
        let v2 = Delta::decode(&w.0, "d").unwrap();
        assert_eq!(v2.entries, delta.entries[..2].to_vec());
        // a pack index past the table is corruption, not a panic
        let mut bad = Delta {
            pack: None,
            rows: 0,
            stats: Vec::new(),
            entries: vec![delta.entries[1].clone()],
        }
        .encode();
        // the pack index follows the group hash of `old`
        let at = bad
            .windows(32)
            .position(|w| w == [3u8; 32])
            .expect("group hash")
            + 32;
        assert_eq!(bad[at], 0);
        bad[at] = 9;
        assert!(Delta::decode(&bad, "d").is_err());
        let mut content = Multiset::default();
        content.add(&Hash([6; 32]));
        let layout = Layout {
            base: Hash([7; 32]),
            deltas: vec![Hash([8; 32]), Hash([9; 32])],
            rows: 12,
            groups: 3,
            content,
            folds: Vec::new(),
        };
        let plain = layout.encode();
        assert!(plain.starts_with(b"QVLAYT02"));
        assert_eq!(Layout::decode(&plain, "l").unwrap(), layout);
        // fold links: the newer magic, read back; a layout without them keeps its bytes
        let linked = Layout {
            folds: vec![
                FoldLink {
                    base: Hash([10; 32]),
                    changes: Hash([11; 32]),
                },
                FoldLink {
                    base: Hash([12; 32]),
                    changes: Hash([13; 32]),
                },
            ],
            ..layout.clone()
        };
        let enc = linked.encode();
        assert!(enc.starts_with(b"QVLAYT03"));
        assert_eq!(enc.len(), plain.len() + 1 + 4 * 32);
        assert_eq!(Layout::decode(&enc, "l").unwrap(), linked);
        assert!(Layout::decode(&enc[..enc.len() - 1], "l").is_err());
        // more links than a writer keeps, or none under the newer magic: corrupt
        let mut bad = enc.clone();
        bad[plain.len()] = (MAX_FOLD_LINKS + 1) as u8;
        assert!(Layout::decode(&bad, "l").is_err());
        let mut none = plain.clone();
        none[..8].copy_from_slice(b"QVLAYT03");
        none.push(0);
        assert!(Layout::decode(&none, "l").is_err());
        // truncations are errors, never panics
        let bytes = delta.encode();
        for n in 0..bytes.len() {
            assert!(Delta::decode(&bytes[..n], "d").is_err());
        }
    }
}
