//! Canonical binary encoding of tree nodes, format version 1.
//!
//! The encoding is hand-written, deterministic and canonical: every [`Node`] has exactly
//! one encoding, and [`Node::decode`] rejects every byte string that is not the encoding
//! of some node (so `decode(b).encode() == b` whenever `decode(b)` succeeds). A node's
//! address is `blake3(encode(node))`.
//!
//! # Byte layout (format version 1)
//!
//! Notation: `u8` is one byte; `varint` is an unsigned LEB128 integer (7 bits per byte,
//! least significant group first, high bit = "more bytes follow") of at most 10 bytes,
//! in its shortest form (no trailing `0x00` continuation group, value fits in 64 bits);
//! `bytes` is `varint length` followed by that many raw bytes; `hash` is 32 raw bytes.
//!
//! ```text
//! node        := magic:u8 = 0x51 ('Q')
//!                version:u8 = 0x01
//!                tag:u8          0x00 = leaf, 0x01 = internal
//!                level:u8        0 for a leaf, 1..=255 for an internal node
//!                count:varint    number of group entries (leaf) or children (internal)
//!                count x (group_entry | child_entry)
//!                (no trailing bytes)
//! group_entry := key:bytes  hash:hash  rows:varint  ncols:varint  ncols x column_stats
//! child_entry := hash:hash  first_key:bytes  last_key:bytes  rows:varint  groups:varint
//!                ncols:varint  ncols x column_stats
//! column_stats:= min:stat  max:(stat | 0x05)  null_count:varint
//!                0x05 = "same as min": written (and required) whenever min is not None and
//!                max encodes to the same bytes as min — most label groups hold one to a
//!                few labels, so per-group min and max are usually equal
//! stat        := 0x00                          None (unknown, or every value null)
//!              | 0x01 b:u8                     Bool (b is 0x00 = false or 0x01 = true)
//!              | 0x02 v:varint                 Int, zigzag-encoded: (v << 1) ^ (v >> 63)
//!              | 0x03 bits:8 bytes             Float: IEEE-754 binary64 bits, little-endian
//!              | 0x04 b:bytes                  Bytes (UTF-8 strings and binaries)
//! ```
//!
//! The decoder does not check key order or statistics consistency (those are properties
//! of a tree, not of the byte format); it checks only that the bytes are a well-formed,
//! canonical encoding.

use crate::node::{ChildEntry, ColumnStats, GroupEntry, Node, StatValue};
use crate::{Hash, Result, TreeError};

/// First byte of every encoded node.
pub const NODE_MAGIC: u8 = 0x51;
/// Node format version written by this crate.
pub const NODE_FORMAT_VERSION: u8 = 1;

const TAG_LEAF: u8 = 0x00;
const TAG_INTERNAL: u8 = 0x01;

const STAT_NONE: u8 = 0x00;
const STAT_BOOL: u8 = 0x01;
const STAT_INT: u8 = 0x02;
const STAT_FLOAT: u8 = 0x03;
const STAT_BYTES: u8 = 0x04;
const STAT_SAME_AS_MIN: u8 = 0x05;

impl Node {
    /// The canonical encoding of this node (format version [`NODE_FORMAT_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(NODE_MAGIC);
        out.push(NODE_FORMAT_VERSION);
        match self {
            Node::Leaf { entries } => {
                out.push(TAG_LEAF);
                out.push(0);
                put_varint(&mut out, entries.len() as u64);
                for e in entries {
                    put_bytes(&mut out, &e.key);
                    out.extend_from_slice(&e.hash.0);
                    put_varint(&mut out, e.rows);
                    put_stats(&mut out, &e.stats);
                }
            }
            Node::Internal { level, children } => {
                out.push(TAG_INTERNAL);
                out.push(*level);
                put_varint(&mut out, children.len() as u64);
                for c in children {
                    out.extend_from_slice(&c.hash.0);
                    put_bytes(&mut out, &c.first_key);
                    put_bytes(&mut out, &c.last_key);
                    put_varint(&mut out, c.rows);
                    put_varint(&mut out, c.groups);
                    put_stats(&mut out, &c.stats);
                }
            }
        }
        out
    }

    /// Decode a node from its canonical encoding. Never panics: bytes that are not a
    /// canonical encoding give [`TreeError::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Node> {
        let mut r = Reader { buf: bytes, pos: 0 };
        decode_inner(&mut r).map_err(|reason| TreeError::Malformed {
            hash: Hash::of(bytes).to_hex(),
            reason: format!("{reason} (at byte {})", r.pos),
        })
    }

    /// The node's address: blake3 of its canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }

    /// The level of the node: 0 for a leaf.
    pub fn level(&self) -> u8 {
        match self {
            Node::Leaf { .. } => 0,
            Node::Internal { level, .. } => *level,
        }
    }
}

fn decode_inner(r: &mut Reader<'_>) -> std::result::Result<Node, String> {
    let magic = r.u8()?;
    if magic != NODE_MAGIC {
        return Err(format!("bad magic byte 0x{magic:02x}"));
    }
    let version = r.u8()?;
    if version != NODE_FORMAT_VERSION {
        return Err(format!("unsupported node format version {version}"));
    }
    let tag = r.u8()?;
    let level = r.u8()?;
    let count = r.varint()?;
    let node = match tag {
        TAG_LEAF => {
            if level != 0 {
                return Err(format!("leaf with level {level}"));
            }
            let mut entries = Vec::new();
            for _ in 0..count {
                let key = r.bytes()?.to_vec();
                let hash = r.hash()?;
                let rows = r.varint()?;
                let stats = r.stats()?;
                entries.push(GroupEntry {
                    key,
                    hash,
                    rows,
                    stats,
                });
            }
            Node::Leaf { entries }
        }
        TAG_INTERNAL => {
            if level == 0 {
                return Err("internal node with level 0".to_string());
            }
            let mut children = Vec::new();
            for _ in 0..count {
                let hash = r.hash()?;
                let first_key = r.bytes()?.to_vec();
                let last_key = r.bytes()?.to_vec();
                let rows = r.varint()?;
                let groups = r.varint()?;
                let stats = r.stats()?.into();
                children.push(ChildEntry {
                    hash,
                    first_key,
                    last_key,
                    rows,
                    groups,
                    stats,
                });
            }
            Node::Internal { level, children }
        }
        other => return Err(format!("unknown node tag 0x{other:02x}")),
    };
    if r.pos != r.buf.len() {
        return Err(format!("{} trailing bytes", r.buf.len() - r.pos));
    }
    Ok(node)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_stats(out: &mut Vec<u8>, stats: &[ColumnStats]) {
    put_varint(out, stats.len() as u64);
    for s in stats {
        let start = out.len();
        put_stat(out, s.min.as_ref());
        let min_end = out.len();
        put_stat(out, s.max.as_ref());
        if s.min.is_some() && out[min_end..] == out[start..min_end] {
            out.truncate(min_end);
            out.push(STAT_SAME_AS_MIN);
        }
        put_varint(out, s.null_count);
    }
}

fn put_stat(out: &mut Vec<u8>, v: Option<&StatValue>) {
    match v {
        None => out.push(STAT_NONE),
        Some(StatValue::Bool(b)) => {
            out.push(STAT_BOOL);
            out.push(u8::from(*b));
        }
        Some(StatValue::Int(i)) => {
            out.push(STAT_INT);
            put_varint(out, zigzag(*i));
        }
        Some(StatValue::Float(f)) => {
            out.push(STAT_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Some(StatValue::Bytes(b)) => {
            out.push(STAT_BYTES);
            put_bytes(out, b);
        }
    }
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("truncated: need {n} more bytes"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> R<u64> {
        let mut v: u64 = 0;
        for i in 0..10u32 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return Err("varint overflows 64 bits".to_string());
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err("non-canonical varint".to_string());
                }
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }

    fn len(&mut self) -> R<usize> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| "length overflows usize".to_string())?;
        if n > self.buf.len() - self.pos {
            return Err(format!("length {n} exceeds remaining bytes"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    fn hash(&mut self) -> R<Hash> {
        let s = self.take(32)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(s);
        Ok(Hash(a))
    }

    fn stats(&mut self) -> R<Vec<ColumnStats>> {
        let n = self.varint()?;
        let mut out = Vec::new();
        for _ in 0..n {
            let min_start = self.pos;
            let min = self.stat()?;
            let min_end = self.pos;
            let max = if min.is_some() && self.peek() == Some(STAT_SAME_AS_MIN) {
                self.pos += 1;
                min.clone()
            } else {
                let max_start = self.pos;
                let max = self.stat()?;
                if min.is_some() && self.buf[max_start..self.pos] == self.buf[min_start..min_end] {
                    return Err("max equal to min must be encoded as 0x05".to_string());
                }
                max
            };
            let null_count = self.varint()?;
            out.push(ColumnStats {
                min,
                max,
                null_count,
            });
        }
        Ok(out)
    }

    fn stat(&mut self) -> R<Option<StatValue>> {
        match self.u8()? {
            STAT_NONE => Ok(None),
            STAT_BOOL => match self.u8()? {
                0 => Ok(Some(StatValue::Bool(false))),
                1 => Ok(Some(StatValue::Bool(true))),
                b => Err(format!("bad bool byte 0x{b:02x}")),
            },
            STAT_INT => Ok(Some(StatValue::Int(unzigzag(self.varint()?)))),
            STAT_FLOAT => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Ok(Some(StatValue::Float(f64::from_bits(u64::from_le_bytes(
                    a,
                )))))
            }
            STAT_BYTES => Ok(Some(StatValue::Bytes(self.bytes()?.to_vec()))),
            t => Err(format!("unknown statistics tag 0x{t:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn varint_round_trip_and_canonical() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX / 3, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.pos, out.len());
        }
        // Overlong zero.
        let mut r = Reader {
            buf: &[0x80, 0x00],
            pos: 0,
        };
        assert!(r.varint().is_err());
        // Overflow.
        let mut r = Reader {
            buf: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            pos: 0,
        };
        assert!(r.varint().is_err());
    }

    #[test]
    fn zigzag_round_trip() {
        for i in [0i64, 1, -1, 63, -64, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(i)), i);
        }
    }

    #[test]
    fn empty_leaf_layout() {
        let n = Node::Leaf { entries: vec![] };
        assert_eq!(n.encode(), vec![0x51, 0x01, 0x00, 0x00, 0x00]);
        assert_eq!(Node::decode(&n.encode()).unwrap(), n);
    }

    #[test]
    fn rejects_bad_headers_and_trailing_bytes() {
        assert!(Node::decode(&[]).is_err());
        assert!(Node::decode(&[0x52, 1, 0, 0, 0]).is_err());
        assert!(Node::decode(&[0x51, 2, 0, 0, 0]).is_err());
        assert!(Node::decode(&[0x51, 1, 2, 0, 0]).is_err());
        assert!(Node::decode(&[0x51, 1, 0, 1, 0]).is_err());
        assert!(Node::decode(&[0x51, 1, 1, 0, 0]).is_err());
        assert!(Node::decode(&[0x51, 1, 0, 0, 0, 0]).is_err());
        assert!(Node::decode(&[0x51, 1, 1, 1, 0]).is_ok());
    }
}
