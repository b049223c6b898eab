//! The typed errors of `quiver-store`.
//!
//! Every failure a caller may want to react to (a corrupt object, a missing file, a lost
//! compare-and-swap race on a ref, a bad ref name or URL) has its own variant naming what was
//! wrong; anything else from the underlying object store is wrapped unchanged.

/// Errors returned by [`crate::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A content-addressed object did not hash to its address. Its bytes are never served.
    #[error("object {path} is corrupt: expected blake3 {expected}, found {actual}")]
    Corrupt {
        /// Path of the object, relative to the store root.
        path: String,
        /// The hash the object is addressed by.
        expected: String,
        /// The hash of the bytes actually read.
        actual: String,
    },

    /// No object or file at this path.
    #[error("{path} not found")]
    NotFound {
        /// Path relative to the store root.
        path: String,
    },

    /// A compare-and-swap on a ref lost: the ref is not at the expected sequence number.
    #[error(
        "ref {name} was concurrently modified: expected {}, found {}",
        fmt_seq(.expected),
        fmt_seq(.actual)
    )]
    RefConflict {
        /// The ref path.
        name: String,
        /// The sequence number the caller expected (None = ref must not exist).
        expected: Option<u64>,
        /// The sequence number found (None = ref does not exist).
        actual: Option<u64>,
    },

    /// A ref name (or one of its segments) is not acceptable.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A path or object kind is not acceptable.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The rejected path.
        path: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A store URL could not be opened.
    #[error("invalid store url {url:?}: {reason}")]
    InvalidUrl {
        /// The rejected URL.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A ref entry or hint on storage is not in the expected format.
    #[error("malformed ref data at {path}: {reason}")]
    MalformedRef {
        /// Path relative to the store root.
        path: String,
        /// What was wrong.
        reason: String,
    },

    /// An error from the underlying object store.
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),

    /// A JSON (de)serialisation error.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),

    /// A local I/O error (creating the root directory of a local store).
    #[error("io error on {path}: {source}")]
    Io {
        /// The local path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn fmt_seq(seq: &Option<u64>) -> String {
    match seq {
        Some(s) => format!("seq {s}"),
        None => "no ref".to_string(),
    }
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
