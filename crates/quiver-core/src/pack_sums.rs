//! Checksums of a pack's verification units: what makes range reads of packs verifiable.
//!
//! A pack is a content-addressed object, but it is read in byte ranges (a footer, a page
//! index, the pages a row selection needs), so its blake3 address cannot be checked on a
//! read. Instead every pack is cut into **verification units** — contiguous byte ranges that
//! tile the whole file — each with a CRC-32, stored in a *sums file* next to the pack. A
//! reader widens every requested range to whole units, checks them, and only then hands out
//! the requested bytes (see [`crate::verified`]).
//!
//! Units follow the Parquet structure, so that the ranges readers actually request are
//! (nearly) whole units and widening costs little: the magic; each column chunk's dictionary
//! page; each data page (from the offset index, header included); each column index and
//! offset index; gaps between them, if any; and the footer (metadata, length and magic) as
//! the last unit. Every byte of the file is in exactly one unit.
//!
//! **Why CRC-32.** The read path is the hot path of every scan (Flight full scans stream
//! about 1 GB/s): a checksum of every byte read must cost a small fraction of decoding it.
//! `crc32fast` folds with PCLMULQDQ/SSE4.2 (or ARM CRC) at well over 10 GB/s per core;
//! blake3 of every page would run at about a third of that and show in scan times. The
//! threat here is corruption (bit rot, torn or misdirected writes, a flipped byte), which
//! CRC-32 detects exactly for every burst up to 32 bits and with probability 1 − 2⁻³² for
//! anything else. Forgery is not the threat these sums address: the pack's blake3 address
//! binds its content (checked in full by whole-object reads and `fsck`), and the sums
//! file itself is blake3-sealed.
//!
//! ## Sums file layout
//!
//! Path: `packsums/<hex[0..2]>/<pack hex>` (one per pack, shared by every dataset that
//! indexes the pack). All integers little-endian.
//!
//! ```text
//! magic    8 bytes  "QVPSUM01"  (version 1: CRC-32/ISO-HDLC, the zlib/crc32fast polynomial)
//! pack    32 bytes  blake3 address of the pack
//! size     8 bytes  u64, the pack's length in bytes
//! count    4 bytes  u32, number of units n (≥ 1)
//! units    n × 8    per unit in file order: length u32 (> 0), crc32 u32 of its bytes
//! seal    32 bytes  blake3 of every byte before it
//! ```
//!
//! The unit lengths add up to `size`. Decoding checks the magic, the seal, the lengths and
//! that the file names the pack it was fetched for; any failure is [`CoreError::Corrupt`]
//! naming the sums file. A pack written before sums existed has no sums file: its reader
//! verifies the whole pack against its blake3 address once and derives the same table.

use std::ops::Range;

use bytes::Bytes;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use quiver_tree::Hash;

use crate::error::{CoreError, Result};

const MAGIC: &[u8; 8] = b"QVPSUM01";
/// Bytes before the unit list: magic, pack, size, count.
const HEAD: usize = 8 + 32 + 8 + 4;
const SEAL: usize = 32;

/// Path (relative to the catalog root) of the sums file of `pack`.
pub fn sums_path(pack: &Hash) -> String {
    let hex = pack.to_hex();
    format!("packsums/{}/{hex}", &hex[..2])
}

/// The verification units of one pack and their checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSums {
    pack: Hash,
    size: u64,
    /// End offset of each unit (unit `i` is `ends[i-1]..ends[i]`, unit 0 starts at 0).
    ends: Vec<u64>,
    crcs: Vec<u32>,
}

/// A unit whose bytes do not match its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitMismatch {
    /// Index of the unit in the pack.
    pub unit: usize,
    /// Its byte range in the pack.
    pub range: Range<u64>,
}

impl PackSums {
    /// Cut the Parquet file `bytes` (the pack `pack`) into units and checksum them.
    pub fn compute(pack: Hash, bytes: &Bytes) -> Result<PackSums> {
        let meta = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(bytes)?;
        let size = bytes.len() as u64;
        let mut ends = boundaries(&meta, bytes);
        ends.retain(|&b| b > 0);
        let mut crcs = Vec::with_capacity(ends.len());
        let mut start = 0usize;
        for &end in &ends {
            crcs.push(crc32fast::hash(&bytes[start..end as usize]));
            start = end as usize;
        }
        Ok(PackSums {
            pack,
            size,
            ends,
            crcs,
        })
    }

    /// The same sums for the pack addressed `pack` (when the address is computed after
    /// the sums, as the writer does: one hash of the pack, not two).
    pub(crate) fn with_pack(mut self, pack: Hash) -> PackSums {
        self.pack = pack;
        self
    }

    /// The pack these sums belong to.
    pub fn pack(&self) -> Hash {
        self.pack
    }

    /// The pack's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.ends.len()
    }

    /// Approximate memory held by this table (for bounded caches).
    pub fn weight(&self) -> usize {
        self.ends.len() * 12 + 64
    }

    fn unit_start(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// Index of the unit holding byte `offset` (`offset < size`).
    fn unit_of(&self, offset: u64) -> usize {
        self.ends.partition_point(|&e| e <= offset)
    }

    /// The smallest run of whole units covering `range` (clamped to the pack). An empty
    /// range widens to an empty range at its start.
    pub fn widen(&self, range: &Range<u64>) -> Range<u64> {
        let end = range.end.min(self.size);
        let start = range.start.min(end);
        if start == end {
            return start..start;
        }
        let first = self.unit_of(start);
        let last = self.unit_of(end - 1);
        self.unit_start(first)..self.ends[last]
    }

    /// Check `bytes`, read at `offset`, which must start and end on unit boundaries (as
    /// [`PackSums::widen`] gives). Returns the first unit that does not match, or that the
    /// bytes do not cover exactly.
    pub fn verify(&self, offset: u64, bytes: &[u8]) -> std::result::Result<(), UnitMismatch> {
        let end = offset + bytes.len() as u64;
        if bytes.is_empty() {
            return Ok(());
        }
        let mut i = self.unit_of(offset);
        let mut pos = offset;
        while pos < end {
            let range = self.unit_start(i)..self.ends.get(i).copied().unwrap_or(pos);
            if range.start != pos || range.end > end || range.is_empty() {
                return Err(UnitMismatch { unit: i, range });
            }
            let at = (range.start - offset) as usize..(range.end - offset) as usize;
            if crc32fast::hash(&bytes[at]) != self.crcs[i] {
                return Err(UnitMismatch { unit: i, range });
            }
            pos = range.end;
            i += 1;
        }
        Ok(())
    }

    /// The sums file (layout in the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEAD + 8 * self.ends.len() + SEAL);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(self.pack.as_bytes());
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&(self.ends.len() as u32).to_le_bytes());
        let mut start = 0u64;
        for (end, crc) in self.ends.iter().zip(&self.crcs) {
            b.extend_from_slice(&((end - start) as u32).to_le_bytes());
            b.extend_from_slice(&crc.to_le_bytes());
            start = *end;
        }
        let seal = blake3::hash(&b);
        b.extend_from_slice(seal.as_bytes());
        b
    }

    /// Decode the sums file at `path` (relative to the catalog root), which must belong to
    /// `pack`.
    pub fn decode(path: &str, pack: &Hash, b: &[u8]) -> Result<PackSums> {
        let bad = |reason: &str| CoreError::Corrupt {
            what: path.to_string(),
            reason: reason.to_string(),
        };
        if b.len() < HEAD + SEAL || &b[..8] != MAGIC {
            return Err(bad("not a pack sums file"));
        }
        let (body, seal) = b.split_at(b.len() - SEAL);
        if blake3::hash(body).as_bytes() != seal {
            return Err(bad("seal (blake3 of its content) does not match"));
        }
        let u64_at = |at: usize| {
            body.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let u32_at = |at: usize| {
            body.get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes)
        };
        if body[8..40] != pack.as_bytes()[..] {
            return Err(bad("belongs to another pack"));
        }
        let size = u64_at(40).ok_or_else(|| bad("truncated"))?;
        let count = u32_at(48).ok_or_else(|| bad("truncated"))? as usize;
        if count == 0 || body.len() != HEAD + 8 * count {
            return Err(bad("unit count does not match its length"));
        }
        let mut ends = Vec::with_capacity(count);
        let mut crcs = Vec::with_capacity(count);
        let mut end = 0u64;
        for i in 0..count {
            let at = HEAD + 8 * i;
            let len = u32_at(at).ok_or_else(|| bad("truncated"))?;
            if len == 0 {
                return Err(bad("empty unit"));
            }
            end += u64::from(len);
            ends.push(end);
            crcs.push(u32_at(at + 4).ok_or_else(|| bad("truncated"))?);
        }
        if end != size {
            return Err(bad("unit lengths do not add up to the pack size"));
        }
        Ok(PackSums {
            pack: *pack,
            size,
            ends,
            crcs,
        })
    }
}

/// Sorted, distinct unit end offsets of a Parquet file of `size` bytes (the last is
/// `size`; 0 may be included and is dropped by the caller).
fn boundaries(meta: &ParquetMetaData, bytes: &[u8]) -> Vec<u64> {
    let size = bytes.len() as u64;
    let mut b: Vec<u64> = vec![0, 4.min(size), size];
    let mut push = |start: i64, len: i64| {
        if start >= 0 && len >= 0 {
            b.push(start as u64);
            b.push(start as u64 + len as u64);
        }
    };
    for rg in meta.row_groups() {
        for col in rg.columns() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset());
            push(start, col.compressed_size());
            push(col.data_page_offset(), 0);
            if let (Some(o), Some(l)) = (col.column_index_offset(), col.column_index_length()) {
                push(o, l.into());
            }
            if let (Some(o), Some(l)) = (col.offset_index_offset(), col.offset_index_length()) {
                push(o, l.into());
            }
        }
    }
    if let Some(oi) = meta.offset_index() {
        for rg in oi {
            for col in rg {
                for p in col.page_locations() {
                    push(p.offset, p.compressed_page_size.into());
                }
            }
        }
    }
    // footer: metadata, its length and the magic
    if let Some(len) = bytes
        .len()
        .checked_sub(8)
        .and_then(|at| bytes.get(at..at + 4))
        .and_then(|l| l.try_into().ok())
        .map(u32::from_le_bytes)
    {
        b.push(size.saturating_sub(8 + u64::from(len)));
    }
    b.retain(|&x| x <= size);
    b.sort_unstable();
    b.dedup();
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::ArrowWriter;

    fn pack_bytes(rows: usize) -> Bytes {
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut buf,
            crate::demo::schema(),
            Some(crate::packs::writer_properties()),
        )
        .expect("writer");
        for b in crate::demo::DemoLabels::new(rows as u64, 3) {
            w.write(&b).expect("write");
        }
        w.close().expect("close");
        Bytes::from(buf)
    }

    /// Units tile the file, follow its pages, and every single-byte change is caught by
    /// the unit holding it; the sums file round-trips and its seal catches any change.
    #[test]
    fn units_tile_the_pack_and_catch_every_flip() {
        let bytes = pack_bytes(5_000);
        let pack = Hash::of(&bytes);
        let sums = PackSums::compute(pack, &bytes).expect("sums");
        assert!(sums.units() > 20, "{} units", sums.units());
        assert_eq!(sums.widen(&(0..sums.size())), 0..sums.size());
        sums.verify(0, &bytes).expect("clean pack verifies");
        for at in (0..bytes.len()).step_by(97) {
            let mut b = bytes.to_vec();
            b[at] ^= 0x5a;
            let w = sums.widen(&(at as u64..at as u64 + 1));
            assert!(w.start <= at as u64 && (at as u64) < w.end);
            let e = sums
                .verify(w.start, &b[w.start as usize..w.end as usize])
                .expect_err("flip caught");
            assert!(e.range.contains(&(at as u64)), "{e:?} for {at}");
        }
        let enc = sums.encode();
        assert_eq!(
            PackSums::decode("p", &pack, &enc).expect("decode"),
            sums,
            "round trip"
        );
        for at in [0, 9, 45, 50, enc.len() / 2, enc.len() - 1] {
            let mut b = enc.clone();
            b[at] ^= 1;
            assert!(PackSums::decode("p", &pack, &b).is_err(), "flip at {at}");
        }
        let other = Hash::of(b"other");
        assert!(PackSums::decode("p", &other, &enc).is_err());
    }

    /// Widening returns whole units only, and the requested bytes lie inside.
    #[test]
    fn widen_covers_whole_units() {
        let bytes = pack_bytes(3_000);
        let sums = PackSums::compute(Hash::of(&bytes), &bytes).expect("sums");
        let n = sums.size();
        for (s, e) in [
            (0, 1),
            (3, 9),
            (n - 8, n),
            (n / 3, n / 2),
            (5, 5),
            (n, n + 4),
        ] {
            let w = sums.widen(&(s..e));
            assert!(
                w.start <= s.min(n) && w.end >= e.min(n),
                "{s}..{e} -> {w:?}"
            );
            sums.verify(w.start, &bytes[w.start as usize..w.end as usize])
                .expect("whole units verify");
        }
        // a range not on unit boundaries is refused, not half-checked
        assert!(sums.verify(1, &bytes[1..4]).is_err());
    }
}
