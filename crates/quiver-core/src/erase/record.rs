//! Erasure records: what an erasure did to one pack, kept next to it.
//!
//! Path: `erasures/packs/<hex[0..2]>/<pack hex>`, one per erased pack (the pack keeps its
//! address; see [`crate::erase`]). Binary, little-endian, sealed like a pack sums file:
//!
//! ```text
//! magic   8 bytes   "QVERAS01"
//! pack   32 bytes   the pack's address (must equal the <pack hex> of the file name)
//! len     4 bytes   u32, length of the body
//! body  len bytes   compact JSON (below)
//! seal   32 bytes   blake3 of every byte before it
//! ```
//!
//! ```json
//! {"blake3": "<64 hex: blake3 of the pack's bytes after the last erasure>",
//!  "size": 123456,
//!  "events": [{"id": "<16 hex>", "dataset": "ds", "time": "2026-03-03T12:00:00Z",
//!              "author": "…", "reason": "…", "filter": "WHERE …", "rows": 3,
//!              "before": "<64 hex>", "blake3": "<64 hex>", "size": 123456,
//!              "labels": [["img-1", "0"], …]}, …]}
//! ```
//!
//! `blake3`/`size` describe the bytes the pack should hold now; every event names the
//! bytes it started from (`before`: the address for the first event) and the bytes it left
//! (`blake3`, `size`). `labels` are the (group key, label key) pairs of the rows it erased
//! in this pack, as text. A record is written *before* the pack it describes, so a crash
//! between the two leaves a pack whose bytes are an earlier event's (or the original):
//! [`ErasureRecord::settle`] drops the events that did not happen.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use quiver_tree::Hash;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

const MAGIC: &[u8; 8] = b"QVERAS01";
const SEAL: usize = 32;
/// Bytes before the body: magic, pack, body length.
const HEAD: usize = 8 + 32 + 4;

/// Directory of pack erasure records.
pub const PACK_RECORDS: &str = "erasures/packs/";

/// Path (relative to the catalog root) of the erasure record of `pack`.
pub fn record_path(pack: &Hash) -> String {
    let hex = pack.to_hex();
    format!("{PACK_RECORDS}{}/{hex}", &hex[..2])
}

/// The pack a record path names, if it names one.
pub fn pack_of_record(path: &str) -> Option<Hash> {
    let hex = path.strip_prefix(PACK_RECORDS)?.rsplit('/').next()?;
    let pack = Hash::from_hex(hex)?;
    (record_path(&pack) == path).then_some(pack)
}

/// One erasure of rows of one pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureEvent {
    /// Shared by every pack one erasure rewrote (16 hex characters).
    pub id: String,
    /// The dataset the erasure was asked on.
    pub dataset: String,
    pub time: DateTime<Utc>,
    pub author: String,
    pub reason: String,
    /// Which rows were asked for (e.g. the SQL predicate).
    pub filter: String,
    /// Rows of this pack it erased.
    pub rows: u64,
    /// blake3 of the pack's bytes before (hex).
    pub before: String,
    /// blake3 of the pack's bytes after (hex).
    pub blake3: String,
    /// Size of the pack after.
    pub size: u64,
    /// (group key, label key) of the erased rows, as text.
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Body {
    blake3: String,
    size: u64,
    events: Vec<ErasureEvent>,
}

/// The erasure record of one pack (format in the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRecord {
    /// The pack's address.
    pub pack: Hash,
    /// blake3 of the bytes the pack holds after the last event.
    pub blake3: Hash,
    /// Their size.
    pub size: u64,
    /// Every erasure of the pack, oldest first.
    pub events: Vec<ErasureEvent>,
}

impl ErasureRecord {
    /// A record of a pack nothing was erased from yet.
    pub fn new(pack: Hash, size: u64) -> ErasureRecord {
        ErasureRecord {
            pack,
            blake3: pack,
            size,
            events: Vec::new(),
        }
    }

    /// Whether bytes of blake3 `h` are a state of this pack the record accounts for: the
    /// original (the address), or what an event left.
    pub fn knows(&self, h: &Hash) -> bool {
        *h == self.pack || self.events.iter().any(|e| e.blake3 == h.to_hex())
    }

    /// The record as it is once the pack is found to hold bytes of blake3 `actual`: the
    /// events after the one that left those bytes did not happen (a crash between writing
    /// the record and the pack) and are dropped. `None` when `actual` is no state the
    /// record knows.
    pub fn settle(&self, actual: &Hash, actual_size: u64) -> Option<ErasureRecord> {
        let mut r = self.clone();
        if *actual == self.pack {
            r.events.clear();
        } else {
            let hex = actual.to_hex();
            let last = r.events.iter().rposition(|e| e.blake3 == hex)?;
            r.events.truncate(last + 1);
        }
        r.blake3 = *actual;
        r.size = actual_size;
        Some(r)
    }

    /// Whether the pack's bytes were ever erased (an event happened).
    pub fn is_erased(&self) -> bool {
        self.blake3 != self.pack
    }

    /// The sealed record.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(&Body {
            blake3: self.blake3.to_hex(),
            size: self.size,
            events: self.events.clone(),
        })?;
        let mut b = Vec::with_capacity(HEAD + body.len() + SEAL);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(self.pack.as_bytes());
        let len = u32::try_from(body.len()).map_err(|_| CoreError::Corrupt {
            what: record_path(&self.pack),
            reason: "the erasure record is larger than 4 GiB".into(),
        })?;
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&body);
        let seal = blake3::hash(&b);
        b.extend_from_slice(seal.as_bytes());
        Ok(b)
    }

    /// Decode the record at `path`, which must belong to `pack`.
    pub fn decode(path: &str, pack: &Hash, b: &[u8]) -> Result<ErasureRecord> {
        let bad = |reason: &str| CoreError::Corrupt {
            what: path.to_string(),
            reason: reason.to_string(),
        };
        if b.len() < HEAD + SEAL || &b[..8] != MAGIC {
            return Err(bad("not an erasure record"));
        }
        let (rest, seal) = b.split_at(b.len() - SEAL);
        if blake3::hash(rest).as_bytes() != seal {
            return Err(bad("seal (blake3 of its content) does not match"));
        }
        if rest[8..40] != pack.as_bytes()[..] {
            return Err(bad("belongs to another pack"));
        }
        let len = rest
            .get(40..44)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| bad("truncated"))? as usize;
        if rest.len() != HEAD + len {
            return Err(bad("body length does not match"));
        }
        let body: Body = serde_json::from_slice(&rest[HEAD..])
            .map_err(|e| bad(&format!("body does not decode: {e}")))?;
        let blake3 = Hash::from_hex(&body.blake3).ok_or_else(|| bad("blake3 is not a hash"))?;
        Ok(ErasureRecord {
            pack: *pack,
            blake3,
            size: body.size,
            events: body.events,
        })
    }
}

/// Read the erasure record of `pack`, if it has one.
pub async fn read_record(
    store: &quiver_store::Store,
    pack: &Hash,
) -> Result<Option<ErasureRecord>> {
    let path = record_path(pack);
    match store.get_file_opt(&path).await? {
        Some(b) => ErasureRecord::decode(&path, pack, &b).map(Some),
        None => Ok(None),
    }
}

/// Write the erasure record of its pack (overwriting the previous one).
pub async fn write_record(store: &quiver_store::Store, r: &ErasureRecord) -> Result<()> {
    store
        .put_file(&record_path(&r.pack), Bytes::from(r.encode()?))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u8, before: Hash, after: Hash) -> ErasureEvent {
        ErasureEvent {
            id: format!("{n:016x}"),
            dataset: "ds".into(),
            time: DateTime::<Utc>::from_timestamp(1_700_000_000 + i64::from(n), 0)
                .unwrap_or_default(),
            author: "me".into(),
            reason: "gdpr".into(),
            filter: "WHERE sample_id = 'a'".into(),
            rows: 2,
            before: before.to_hex(),
            blake3: after.to_hex(),
            size: 100 + u64::from(n),
            labels: vec![("a".into(), "1".into())],
        }
    }

    /// Records round-trip; any flipped byte, another pack or trailing bytes are refused.
    #[test]
    fn records_round_trip_and_are_sealed() {
        let pack = Hash::of(b"pack");
        let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
        let r = ErasureRecord {
            pack,
            blake3: b,
            size: 102,
            events: vec![event(1, pack, a), event(2, a, b)],
        };
        let enc = r.encode().expect("encode");
        let path = record_path(&pack);
        assert_eq!(
            ErasureRecord::decode(&path, &pack, &enc).expect("decode"),
            r
        );
        assert_eq!(pack_of_record(&path), Some(pack));
        for at in [0, 9, 41, 50, enc.len() / 2, enc.len() - 1] {
            let mut x = enc.clone();
            x[at] ^= 1;
            assert!(
                ErasureRecord::decode(&path, &pack, &x).is_err(),
                "flip at {at}"
            );
        }
        assert!(ErasureRecord::decode(&path, &a, &enc).is_err());
        let mut long = enc.clone();
        long.push(0);
        assert!(ErasureRecord::decode(&path, &pack, &long).is_err());
    }

    /// A pack found holding an earlier state drops the events after it.
    #[test]
    fn settle_drops_events_that_did_not_happen() {
        let pack = Hash::of(b"pack");
        let (a, b) = (Hash::of(b"a"), Hash::of(b"b"));
        let r = ErasureRecord {
            pack,
            blake3: b,
            size: 102,
            events: vec![event(1, pack, a), event(2, a, b)],
        };
        assert_eq!(r.settle(&b, 102).expect("b").events.len(), 2);
        let at_a = r.settle(&a, 101).expect("a");
        assert_eq!((at_a.events.len(), at_a.blake3), (1, a));
        let orig = r.settle(&pack, 90).expect("original");
        assert!(orig.events.is_empty() && !orig.is_erased());
        assert!(r.settle(&Hash::of(b"other"), 1).is_none());
        assert!(r.knows(&a) && r.knows(&pack) && !r.knows(&Hash::of(b"x")));
    }
}
