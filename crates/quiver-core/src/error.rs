//! The one error type of `quiver-core`: every message names what the user asked for.

use quiver_store::StoreError;
use quiver_tree::TreeError;

/// Errors of the catalog and dataset API.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: quiver-flight maps every variant to a gRPC code in one
// exhaustive match (`quiver_flight::error`), so a new variant does not compile until it
// is given its code.
pub enum CoreError {
    #[error("dataset '{0}' does not exist")]
    DatasetNotFound(String),
    #[error("dataset '{0}' already exists")]
    DatasetExists(String),
    #[error("branch '{branch}' not found in dataset '{dataset}'")]
    BranchNotFound { dataset: String, branch: String },
    #[error("branch '{branch}' already exists in dataset '{dataset}'")]
    BranchExists { dataset: String, branch: String },
    #[error("tag '{tag}' not found in dataset '{dataset}'")]
    TagNotFound { dataset: String, tag: String },
    #[error(
        "tag '{tag}' already exists in dataset '{dataset}' (tags are immutable: drop it first)"
    )]
    TagExists { dataset: String, tag: String },
    #[error("version '{version}' not found in dataset '{dataset}'")]
    VersionNotFound { dataset: String, version: String },
    #[error("version prefix '{prefix}' is ambiguous in dataset '{dataset}': matches {candidates}")]
    AmbiguousVersion {
        dataset: String,
        prefix: String,
        candidates: String,
    },
    #[error("no version of dataset '{dataset}' on branch '{branch}' at or before {timestamp}")]
    NoVersionAtTime {
        dataset: String,
        branch: String,
        timestamp: String,
    },
    #[error("history index {index} is out of range for branch '{branch}' of dataset '{dataset}' ({len} commits)")]
    IndexOutOfRange {
        dataset: String,
        branch: String,
        index: i64,
        len: usize,
    },
    #[error("invalid name '{name}': {reason}")]
    InvalidName { name: String, reason: String },
    #[error("column '{column}' not found in dataset '{dataset}'")]
    ColumnNotFound { dataset: String, column: String },
    #[error("schema mismatch writing to dataset '{dataset}': {reason}")]
    SchemaMismatch { dataset: String, reason: String },
    #[error("rows written to dataset '{dataset}' do not fit its schema registry: {reason}")]
    NotInRegistry { dataset: String, reason: String },
    #[error("cannot open catalog '{url}': {reason}")]
    CatalogUnreachable { url: String, reason: String },
    #[error("key column '{column}' of dataset '{dataset}' has unsupported type {data_type} (use an integer or string column)")]
    UnsupportedKeyType {
        dataset: String,
        column: String,
        data_type: String,
    },
    #[error("column '{column}' of dataset '{dataset}' has type {data_type}, which datasets cannot store (Parquet has no such type)")]
    UnsupportedColumnType {
        dataset: String,
        column: String,
        data_type: String,
    },
    #[error("null value in key column '{column}' of dataset '{dataset}'")]
    NullKey { dataset: String, column: String },
    #[error("duplicate label key ({group}, {label}) in dataset '{dataset}': {reason}")]
    DuplicateKey {
        dataset: String,
        group: String,
        label: String,
        reason: String,
    },
    #[error("write to branch '{branch}' of dataset '{dataset}' conflicts with a concurrent commit on label groups {keys}")]
    Conflict {
        dataset: String,
        branch: String,
        keys: String,
    },
    #[error("branch '{branch}' of dataset '{dataset}' has a pending merge of {from}: resolve its conflicts and COMMIT, or ABORT MERGE")]
    MergePending {
        dataset: String,
        branch: String,
        from: String,
    },
    #[error("branch '{branch}' of dataset '{dataset}' has no pending merge")]
    NoPendingMerge { dataset: String, branch: String },
    #[error("the pending merge into branch '{branch}' of dataset '{dataset}' still has {count} unresolved conflicts")]
    UnresolvedConflicts {
        dataset: String,
        branch: String,
        count: u64,
    },
    #[error("{from} and branch '{target}' of dataset '{dataset}' share no history: nothing to merge against")]
    NoMergeBase {
        dataset: String,
        from: String,
        target: String,
    },
    #[error("cannot revert commit {commit} of dataset '{dataset}': {reason}")]
    CannotRevert {
        dataset: String,
        commit: String,
        reason: String,
    },
    #[error("revert of commit {commit} on branch '{branch}' of dataset '{dataset}' conflicts with later commits on {count} labels (group, label): {labels}; nothing was committed. Edit those labels by hand, or revert on a branch made from before the later commits")]
    RevertConflicts {
        dataset: String,
        commit: String,
        branch: String,
        count: u64,
        labels: String,
    },
    #[error("branch '{branch}' of dataset '{dataset}' is protected: it changes only by MERGE, so {operation} was refused; write to another branch and merge it into '{branch}' (ALTER BRANCH {branch} ON {dataset} UNSET PROTECTED lifts the protection)")]
    ProtectedBranch {
        dataset: String,
        branch: String,
        operation: String,
    },
    #[error("merge into branch '{branch}' of dataset '{dataset}' refused: pre-merge check '{check}' returned {rows} rows (it must return none), e.g. {sample}; nothing was committed")]
    CheckFailed {
        dataset: String,
        branch: String,
        check: String,
        rows: u64,
        sample: String,
    },
    #[error("merge into branch '{branch}' of dataset '{dataset}' refused: pre-merge check '{check}' could not run ({reason}); fix it (DROP CHECK, then ADD CHECK) — nothing was committed")]
    CheckError {
        dataset: String,
        branch: String,
        check: String,
        reason: String,
    },
    #[error("branch '{branch}' of dataset '{dataset}' has pre-merge checks, which need the SQL engine, and this program has none installed; merge with `quiver merge`, `quiver sql` or through `quiver serve`")]
    ChecksUnavailable { dataset: String, branch: String },
    #[error("check '{check}' already exists on branch '{branch}' of dataset '{dataset}' (DROP CHECK it first)")]
    CheckExists {
        dataset: String,
        branch: String,
        check: String,
    },
    #[error("check '{check}' not found on branch '{branch}' of dataset '{dataset}'")]
    CheckNotFound {
        dataset: String,
        branch: String,
        check: String,
    },
    #[error("schema version '{version}' of dataset '{dataset}' does not exist")]
    SchemaVersionNotFound { dataset: String, version: String },
    #[error("schema version '{version}' of dataset '{dataset}' already exists (schema versions are immutable)")]
    SchemaVersionExists { dataset: String, version: String },
    #[error("schema version '{version}' of dataset '{dataset}': {reason}")]
    InvalidSchemaChange {
        dataset: String,
        version: String,
        reason: String,
    },
    #[error("model '{0}' does not exist")]
    ModelNotFound(String),
    #[error("model '{0}' already exists (models are immutable lineage records)")]
    ModelExists(String),
    #[error("training run '{0}' does not exist (runs are recorded when a trainer reads with a run_id, or with CREATE RUN)")]
    RunNotFound(String),
    #[error("corrupt catalog data at {what}: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("tree error: {0}")]
    Tree(#[from] TreeError),
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("internal task failed: {0}")]
    Join(String),
    #[error("invalid input {file}{}: {reason}", position.as_deref().map(|p| format!(" at {p}")).unwrap_or_default())]
    InvalidInput {
        /// The file that was being read.
        file: String,
        /// Where in the file (e.g. "line 3, column 7", "annotation id 12"), when known.
        position: Option<String>,
        reason: String,
    },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("asset {0} not found in the asset store")]
    AssetNotFound(String),
    #[error("garbage collection cannot delete now: {0}")]
    GcBusy(String),
    #[error("dataset '{dataset}' is stored in format {found}, which this build does not read (it reads format {supported}); it is left untouched. To move it: with the release that wrote it, `quiver export parquet --dataset {dataset} --ref <branch or tag> out.parquet` for each version you keep, then `quiver import parquet` them here into a new catalog")]
    UnsupportedFormat {
        dataset: String,
        found: u32,
        supported: u32,
    },
    #[error("invalid retention '{0}': expected a number of days or hours, e.g. 7d, 12h, 0d")]
    InvalidRetention(String),
    #[error("cannot erase from dataset '{dataset}': {reason}")]
    CannotErase { dataset: String, reason: String },
    #[error("{pack} was rewritten by an erasure while this process had it cached; its cached copy is dropped: run the statement again")]
    PackRewritten {
        /// The pack's path relative to the catalog root.
        pack: String,
    },
    #[error("asset {hash} was erased on {time} by {author} ({reason})")]
    AssetErased {
        hash: String,
        time: String,
        author: String,
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl CoreError {
    /// The [`CoreError::Corrupt`] (or [`CoreError::PackRewritten`]) anywhere in `err`'s
    /// chain of sources, e.g. a pack range that failed its checksum deep inside a DataFusion
    /// or Parquet error (`DataFusionError::ParquetError` → `ParquetError::External` →
    /// `object_store::Error` → `CoreError::Corrupt`). Its `what` is the object's path
    /// relative to the catalog root.
    pub fn find_corrupt<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CoreError> {
        let mut cur = Some(err);
        while let Some(e) = cur {
            if let Some(c @ (CoreError::Corrupt { .. } | CoreError::PackRewritten { .. })) =
                e.downcast_ref::<CoreError>()
            {
                return Some(c);
            }
            if let Some(CoreError::Store(s)) = e.downcast_ref::<CoreError>() {
                cur = Some(s);
                continue;
            }
            cur = e.source();
        }
        None
    }

    /// True for errors that mean "the thing you named does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CoreError::DatasetNotFound(_)
                | CoreError::BranchNotFound { .. }
                | CoreError::TagNotFound { .. }
                | CoreError::VersionNotFound { .. }
                | CoreError::ColumnNotFound { .. }
                | CoreError::CheckNotFound { .. }
        )
    }
}
