//! Refs (branches, tags): named pointers moved by compare-and-swap, portable to every
//! `object_store` backend because they need only create-if-absent (`PutMode::Create`).
//!
//! # Ref protocol
//!
//! A ref path is `/`-separated segments chosen by the caller, e.g.
//! `datasets/<ds>/branches/<name>` or `datasets/<ds>/tags/<name>`. Every segment is
//! validated git-style by [`validate_ref_segment`] before it becomes a storage path.
//!
//! **Entries.** A ref is a sequence of immutable entries numbered from 0:
//!
//! ```text
//! refs/<refpath>/<seq:020>.json     e.g. refs/datasets/cats/branches/main/00000000000000000003.json
//! ```
//!
//! each holding the JSON object
//!
//! ```text
//! { "seq": 3,                      // equals the number in the file name
//!   "old": "<64 hex>" | null,      // target before this move (null: ref absent or deleted)
//!   "new": "<64 hex>" | null,      // target after this move (null: ref deleted, a tombstone)
//!   "author": "...",
//!   "time": "2024-05-01T12:00:00.123456Z",   // RFC 3339 UTC, clock of the writer's storage layer
//!   "reason": "..." }
//! ```
//!
//! The entry with the highest `seq` is the head: its `new` is the ref's target. Entries are
//! never rewritten or deleted, so the sequence *is* the ref log.
//!
//! **Moving a ref** (compare-and-swap from `expected`):
//! * `expected = None` (create): write entry 0 with `PutMode::Create`, `old = null`.
//! * `expected = Some(n)`: read entry n (absent: conflict); write entry n+1 with
//!   `PutMode::Create` and `old` = entry n's `new`. Entry n existing plus n+1 being absent
//!   means n was the head, and create-if-absent makes the check-and-write atomic.
//! * The writer that loses a race gets `AlreadyExists` (S3: `412 Precondition Failed` on
//!   `If-None-Match: *`, which object_store maps to `AlreadyExists`) and reports
//!   [`StoreError::RefConflict`]; it may re-read the ref and retry.
//! * Deleting writes a tombstone entry (`new = null`); a deleted ref is re-created by
//!   moving from the tombstone's seq.
//!
//! **Head hint.** After a successful move the writer overwrites (plain put) the advisory
//! file `refs/<refpath>/HEAD` with the decimal seq it wrote. The hint may be stale (a failed
//! or reordered hint write) and is never trusted alone. Reading a ref:
//! 1. read `HEAD` → `h`; if present, read entry `h` and then probe entries `h+1, h+2, …`
//!    until one is absent; the last entry found is the head;
//! 2. if `HEAD` is missing or unparsable, or entry `h` does not exist (hint ahead of the
//!    entries), list the direct children of `refs/<refpath>/`, take the highest entry and
//!    probe forward from it as in 1; no entries at all means the ref was never created.
//!
//! A failure writing the hint does not fail the move (the entry is the commit point).
//!
//! Segments `HEAD` and names that look like an entry file (20 digits + `.json`) are
//! reserved so that a nested ref (`a/b` beside `a`) can never collide with `a`'s files.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use quiver_tree::Hash;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::store::Store;

/// Concurrency of reads when listing refs or reading a ref log.
const READ_CONCURRENCY: usize = 16;

/// The current state of a ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefState {
    /// Sequence number of the head entry.
    pub seq: u64,
    /// Target commit; `None` if the ref is deleted (the head is a tombstone).
    pub target: Option<Hash>,
}

/// One move of a ref: an entry of its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLogEntry {
    /// Sequence number (0 = creation).
    pub seq: u64,
    /// Target before the move (`None`: absent or deleted).
    pub old: Option<Hash>,
    /// Target after the move (`None`: deleted).
    pub new: Option<Hash>,
    /// Who moved it.
    pub author: String,
    /// When, by the storage layer's clock (UTC).
    pub time: DateTime<Utc>,
    /// Why (e.g. `commit`, `merge`, `reset`).
    pub reason: String,
}

/// On-storage form of a ref entry.
#[derive(Serialize, Deserialize)]
struct EntryJson {
    seq: u64,
    old: Option<String>,
    new: Option<String>,
    author: String,
    time: String,
    reason: String,
}

/// Longest name segment, in bytes. A dataset, branch or tag name becomes one path segment
/// (sometimes with a suffix, as in `merges/<branch>.json`), and file systems refuse names
/// above 255 bytes (NAME_MAX): 240 leaves room for the suffixes.
pub const MAX_NAME_BYTES: usize = 240;

/// Validate one segment of a ref name, git-style: non-empty; at most [`MAX_NAME_BYTES`]
/// bytes; not `.` or `..`; not starting with `.`; not ending with `.lock`; no `\`, control characters, whitespace or any of
/// `~^:?*[`; no `/` (segments are separated by the caller); plus the names reserved by the
/// storage layout (`HEAD`, `<20 digits>.json`).
pub fn validate_ref_segment(s: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidRefName {
            name: s.to_string(),
            reason: reason.to_string(),
        })
    };
    if s.is_empty() {
        return bad("empty name or path segment");
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(StoreError::InvalidRefName {
            // the name itself is not echoed whole: it may be arbitrarily long
            name: truncated(s),
            reason: format!(
                "a name may be at most {MAX_NAME_BYTES} bytes long, this one has {}",
                s.len()
            ),
        });
    }
    if s == "." || s == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if s.starts_with('.') {
        return bad("a segment may not start with '.'");
    }
    if s.ends_with(".lock") {
        return bad("a segment may not end with '.lock'");
    }
    if s.contains("..") {
        return bad("'..' is not allowed");
    }
    if s.ends_with('.') {
        return bad("a segment may not end with '.'");
    }
    if s.contains("@{") {
        return bad("'@{' is not allowed");
    }
    for c in s.chars() {
        if c == '/' {
            return bad("'/' is not allowed in a name segment");
        }
        if c == '\\' {
            return bad("'\\' is not allowed");
        }
        if c.is_control() {
            return bad("control characters are not allowed");
        }
        if c.is_whitespace() {
            return bad("whitespace is not allowed");
        }
        if "~^:?*[".contains(c) {
            return bad("none of '~', '^', ':', '?', '*', '[' is allowed");
        }
    }
    if s == "HEAD" || parse_entry_name(s).is_some() {
        return bad("name is reserved by the ref storage layout");
    }
    Ok(())
}

/// The first characters of an over-long name, marked as cut.
fn truncated(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    format!("{cut}…")
}

/// Validate a full ref path (every `/`-separated segment).
fn validate_ref_path(refpath: &str) -> Result<()> {
    for seg in refpath.split('/') {
        validate_ref_segment(seg).map_err(|e| match e {
            StoreError::InvalidRefName { reason, .. } => StoreError::InvalidRefName {
                name: refpath.to_string(),
                reason: format!("segment {seg:?}: {reason}"),
            },
            other => other,
        })?;
    }
    Ok(())
}

/// `00000000000000000003.json` → 3.
fn parse_entry_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn ref_dir(refpath: &str) -> String {
    format!("refs/{refpath}")
}

fn entry_path(refpath: &str, seq: u64) -> String {
    format!("refs/{refpath}/{seq:020}.json")
}

fn hint_path(refpath: &str) -> String {
    format!("refs/{refpath}/HEAD")
}

fn parse_hash(path: &str, s: Option<String>) -> Result<Option<Hash>> {
    match s {
        None => Ok(None),
        Some(h) => Hash::from_hex(&h)
            .map(Some)
            .ok_or_else(|| StoreError::MalformedRef {
                path: path.to_string(),
                reason: format!("not a 64-hex hash: {h:?}"),
            }),
    }
}

/// The ref path and seq of a ref entry file given by its path relative to the store root
/// (`refs/<refpath>/<seq:020>.json`), or `None` for any other file.
pub fn parse_ref_entry_path(path: &str) -> Option<(String, u64)> {
    let rest = path.strip_prefix("refs/")?;
    let (refpath, name) = rest.rsplit_once('/')?;
    Some((refpath.to_string(), parse_entry_name(name)?))
}

impl Store {
    /// Path (relative to the store root) of entry `seq` of the ref at `refpath`.
    pub fn ref_entry_path(refpath: &str, seq: u64) -> String {
        entry_path(refpath, seq)
    }

    /// Whether entry `seq` of the ref at `refpath` exists (e.g. entry 0: the ref was
    /// created).
    pub async fn ref_entry_exists(&self, refpath: &str, seq: u64) -> Result<bool> {
        validate_ref_path(refpath)?;
        match self
            .object_store()
            .head(&self.full_path(&entry_path(refpath, seq)))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Read and decode entry `seq` of `refpath` (`None` if absent); an undecodable entry is
    /// [`StoreError::MalformedRef`] naming its path.
    pub async fn read_ref_entry(&self, refpath: &str, seq: u64) -> Result<Option<RefLogEntry>> {
        validate_ref_path(refpath)?;
        self.read_entry(refpath, seq).await
    }

    /// Read and decode entry `seq` of `refpath`, or `None` if it does not exist.
    async fn read_entry(&self, refpath: &str, seq: u64) -> Result<Option<RefLogEntry>> {
        let path = entry_path(refpath, seq);
        let Some(bytes) = self.get_file_opt(&path).await? else {
            return Ok(None);
        };
        let json: EntryJson =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::MalformedRef {
                path: path.clone(),
                reason: format!("not a ref entry: {e}"),
            })?;
        if json.seq != seq {
            return Err(StoreError::MalformedRef {
                reason: format!("entry says seq {} but is stored as seq {seq}", json.seq),
                path,
            });
        }
        let time = DateTime::parse_from_rfc3339(&json.time)
            .map_err(|e| StoreError::MalformedRef {
                path: path.clone(),
                reason: format!("bad time {:?}: {e}", json.time),
            })?
            .with_timezone(&Utc);
        Ok(Some(RefLogEntry {
            seq,
            old: parse_hash(&path, json.old)?,
            new: parse_hash(&path, json.new)?,
            author: json.author,
            time,
            reason: json.reason,
        }))
    }

    /// The advisory head hint, if present and parsable.
    async fn read_hint(&self, refpath: &str) -> Result<Option<u64>> {
        let Some(bytes) = self.get_file_opt(&hint_path(refpath)).await? else {
            return Ok(None);
        };
        Ok(std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok()))
    }

    /// Sequence numbers of the entries of `refpath`, sorted, by listing its directory.
    async fn list_entry_seqs(&self, refpath: &str) -> Result<Vec<u64>> {
        let (files, _dirs) = self.list_dir(&ref_dir(refpath)).await?;
        let mut seqs: Vec<u64> = files
            .iter()
            .filter_map(|f| f.rsplit('/').next().and_then(parse_entry_name))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Starting from the existing entry `from`, probe forward to the head entry.
    async fn probe_forward(&self, refpath: &str, from: RefLogEntry) -> Result<RefLogEntry> {
        let mut head = from;
        while let Some(next) = self.read_entry(refpath, head.seq + 1).await? {
            head = next;
        }
        Ok(head)
    }

    /// The head entry of `refpath`, or `None` if the ref was never created.
    async fn head_entry(&self, refpath: &str) -> Result<Option<RefLogEntry>> {
        if let Some(h) = self.read_hint(refpath).await? {
            if let Some(entry) = self.read_entry(refpath, h).await? {
                return self.probe_forward(refpath, entry).await.map(Some);
            }
        }
        // Hint missing, unparsable or ahead of the entries: list.
        let Some(&max) = self.list_entry_seqs(refpath).await?.last() else {
            return Ok(None);
        };
        match self.read_entry(refpath, max).await? {
            Some(entry) => self.probe_forward(refpath, entry).await.map(Some),
            None => Err(StoreError::MalformedRef {
                path: entry_path(refpath, max),
                reason: "listed ref entry vanished".to_string(),
            }),
        }
    }

    /// Current state of the ref at `refpath`: `None` if it was never created,
    /// `Some` with `target: None` if it was deleted.
    pub async fn read_ref(&self, refpath: &str) -> Result<Option<RefState>> {
        validate_ref_path(refpath)?;
        Ok(self.head_entry(refpath).await?.map(|e| RefState {
            seq: e.seq,
            target: e.new,
        }))
    }

    /// Compare-and-swap the ref at `refpath` to `new` (`None` deletes it).
    ///
    /// `expected` is the seq the caller last read (`None`: the ref must never have existed).
    /// If the ref has moved since, nothing is written and [`StoreError::RefConflict`] is
    /// returned. A deleted ref is re-created by passing its tombstone's seq.
    pub async fn update_ref(
        &self,
        refpath: &str,
        expected: Option<u64>,
        new: Option<Hash>,
        author: &str,
        reason: &str,
    ) -> Result<RefState> {
        validate_ref_path(refpath)?;
        let (seq, old) = match expected {
            None => (0, None),
            Some(n) => match self.read_entry(refpath, n).await? {
                Some(prev) => match n.checked_add(1) {
                    Some(next) => (next, prev.new),
                    None => {
                        return Err(StoreError::MalformedRef {
                            path: entry_path(refpath, n),
                            reason: "ref sequence number overflow".to_string(),
                        })
                    }
                },
                None => return Err(self.conflict(refpath, expected).await),
            },
        };
        let entry = EntryJson {
            seq,
            old: old.map(|h| h.to_hex()),
            new: new.map(|h| h.to_hex()),
            author: author.to_string(),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            reason: reason.to_string(),
        };
        let bytes = Bytes::from(serde_json::to_vec_pretty(&entry)?);
        if !self.put_create(&entry_path(refpath, seq), bytes).await? {
            return Err(self.conflict(refpath, expected).await);
        }
        // Advisory only: the entry above is the commit point, so a failed hint write is
        // ignored (readers probe past a stale hint).
        let _ = self
            .put_overwrite(&hint_path(refpath), Bytes::from(format!("{seq}\n")))
            .await;
        Ok(RefState { seq, target: new })
    }

    /// Build the conflict error for a lost CAS, reading the actual seq if possible.
    async fn conflict(&self, refpath: &str, expected: Option<u64>) -> StoreError {
        let actual = match self.head_entry(refpath).await {
            Ok(head) => head.map(|e| e.seq),
            Err(e) => return e,
        };
        StoreError::RefConflict {
            name: refpath.to_string(),
            expected,
            actual,
        }
    }

    /// All live (not deleted) refs under the ref-path `prefix` (segment-wise, recursive;
    /// `""` for all), sorted by name.
    pub async fn list_refs(&self, prefix: &str) -> Result<Vec<(String, RefState)>> {
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            validate_ref_path(prefix)?;
        }
        let dir = if prefix.is_empty() {
            "refs".to_string()
        } else {
            ref_dir(prefix)
        };
        let files = self.list(&dir).await?;
        // A ref is a directory holding at least one entry file.
        let mut names: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let (parent, name) = f.rsplit_once('/')?;
                parse_entry_name(name)?;
                parent.strip_prefix("refs/").map(str::to_string)
            })
            .collect();
        names.sort();
        names.dedup();
        let states: Vec<(String, Option<RefState>)> = futures::stream::iter(names)
            .map(|name| async move {
                let head = self.head_entry(&name).await?;
                Ok::<_, StoreError>((
                    name,
                    head.map(|e| RefState {
                        seq: e.seq,
                        target: e.new,
                    }),
                ))
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(states
            .into_iter()
            .filter_map(|(name, st)| match st {
                Some(s) if s.target.is_some() => Some((name, s)),
                _ => None,
            })
            .collect())
    }

    /// Every move of the ref at `refpath`, in seq order (empty if never created).
    pub async fn ref_log(&self, refpath: &str) -> Result<Vec<RefLogEntry>> {
        validate_ref_path(refpath)?;
        let Some(head) = self.head_entry(refpath).await? else {
            return Ok(Vec::new());
        };
        let entries: Vec<RefLogEntry> = futures::stream::iter(0..=head.seq)
            .map(|seq| async move {
                self.read_entry(refpath, seq)
                    .await?
                    .ok_or_else(|| StoreError::MalformedRef {
                        path: entry_path(refpath, seq),
                        reason: "missing entry in ref log".to_string(),
                    })
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(entries)
    }
}
