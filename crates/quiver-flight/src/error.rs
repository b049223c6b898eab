//! The one error type of `quiver-flight`, and its one mapping onto gRPC status codes.
//!
//! [`FlightError::code`] maps every error kind to a `tonic::Code`, looking through the errors
//! it wraps (core, SQL, store, DataFusion, Arrow, Parquet, object store). The matches over
//! Quiver's own errors, DataFusion's and Arrow's are exhaustive — a new variant does not
//! compile until it has its code; only Parquet's and object_store's errors, which are
//! `#[non_exhaustive]`, end in a fallback (INTERNAL). What the caller
//! named does not exist → `NOT_FOUND`; a lost race → `ABORTED`; a state that must change
//! first (a pending merge) → `FAILED_PRECONDITION`; bad input, parse and plan errors →
//! `INVALID_ARGUMENT`; a configured limit → `RESOURCE_EXHAUSTED`; stored data that does not
//! verify → `DATA_LOSS`; the storage backend failing → `UNAVAILABLE`; the server's own faults
//! → `INTERNAL`.
//!
//! The message sent with a status is made safe by [`client_message`]: the server's catalog
//! root and other absolute paths are cut to catalog-relative names, quoted input is truncated,
//! DataFusion's bug-report boilerplate is dropped and the whole message is bounded (gRPC
//! sends it in a header).

use std::sync::RwLock;

use datafusion::error::DataFusionError;
use quiver_core::CoreError;
use quiver_sql::SqlError;
use quiver_store::StoreError;
use tonic::{Code, Status};

/// Errors of the Flight server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlightError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    /// A configured limit of the server (see [`crate::ServerLimits`]).
    #[error("{what}: over this server's limit of {limit} (quiver serve {flag})")]
    Limit {
        /// What the request asked for.
        what: String,
        /// The limit, with its unit.
        limit: String,
        /// The `quiver serve` flag that sets it.
        flag: &'static str,
    },
    /// Batches a client uploads (DoPut, parameters) that cannot be read: the code is the
    /// transport's (a message over the size limit) or INVALID_ARGUMENT.
    #[error("cannot read the {what}: {}", upload_detail(.source))]
    Upload {
        /// What was being read ("uploaded batches", "parameters").
        what: &'static str,
        #[source]
        source: arrow_flight::error::FlightError,
    },
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("server configuration: {0}")]
    Config(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Flight(#[from] arrow_flight::error::FlightError),
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub type Result<T, E = FlightError> = std::result::Result<T, E>;

impl FlightError {
    /// The gRPC code of this error (see the module docs).
    pub fn code(&self) -> Code {
        match self {
            FlightError::Sql(e) => sql_code(e),
            FlightError::Core(e) => core_code(e),
            FlightError::InvalidArgument(_) => Code::InvalidArgument,
            FlightError::Unauthenticated(_) => Code::Unauthenticated,
            FlightError::PermissionDenied(_) => Code::PermissionDenied,
            FlightError::NotFound(_) => Code::NotFound,
            FlightError::Limit { .. } => Code::ResourceExhausted,
            FlightError::Arrow(e) => arrow_code(e),
            FlightError::DataFusion(e) => df_code(e),
            FlightError::Config(_) | FlightError::Io { .. } | FlightError::Transport(_) => {
                Code::Internal
            }
            FlightError::Flight(e) | FlightError::Upload { source: e, .. } => flight_code(e),
        }
    }
}

/// An upload error's message: a transport status by its message alone.
fn upload_detail(e: &arrow_flight::error::FlightError) -> String {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => s.message().to_string(),
        other => other.to_string(),
    }
}

fn sql_code(e: &SqlError) -> Code {
    match e {
        SqlError::Core(c) => core_code(c),
        SqlError::DataFusion(d) => df_code(d),
        SqlError::Parse(_)
        | SqlError::ReadOnly { .. }
        | SqlError::ValueConversion { .. }
        | SqlError::Unsupported(_) => Code::InvalidArgument,
        SqlError::Transaction(_) => Code::FailedPrecondition,
        SqlError::Arrow(a) => arrow_code(a),
        SqlError::PermissionDenied(_) => Code::PermissionDenied,
        SqlError::Limit(_) => Code::ResourceExhausted,
    }
}

fn core_code(e: &CoreError) -> Code {
    match e {
        CoreError::DatasetNotFound(_)
        | CoreError::BranchNotFound { .. }
        | CoreError::TagNotFound { .. }
        | CoreError::VersionNotFound { .. }
        | CoreError::ColumnNotFound { .. }
        | CoreError::NoVersionAtTime { .. }
        | CoreError::ModelNotFound(_)
        | CoreError::RunNotFound(_)
        | CoreError::SchemaVersionNotFound { .. }
        | CoreError::CheckNotFound { .. }
        | CoreError::AssetNotFound(_) => Code::NotFound,
        CoreError::DatasetExists(_)
        | CoreError::BranchExists { .. }
        | CoreError::TagExists { .. }
        | CoreError::ModelExists(_)
        | CoreError::CheckExists { .. }
        | CoreError::SchemaVersionExists { .. } => Code::AlreadyExists,
        // a concurrent writer won: retrying may succeed
        CoreError::Conflict { .. } => Code::Aborted,
        // the branch must change state first (resolve or abort the merge)
        CoreError::MergePending { .. }
        | CoreError::NoPendingMerge { .. }
        | CoreError::UnresolvedConflicts { .. }
        | CoreError::NoMergeBase { .. }
        | CoreError::RevertConflicts { .. } => Code::FailedPrecondition,
        // the branch's settings stop the write: lift the protection, fix the merge result
        CoreError::ProtectedBranch { .. }
        | CoreError::CheckFailed { .. }
        | CoreError::CheckError { .. }
        | CoreError::ChecksUnavailable { .. } => Code::FailedPrecondition,
        CoreError::IndexOutOfRange { .. } => Code::OutOfRange,
        CoreError::AmbiguousVersion { .. }
        | CoreError::InvalidName { .. }
        | CoreError::SchemaMismatch { .. }
        | CoreError::NotInRegistry { .. }
        | CoreError::UnsupportedKeyType { .. }
        | CoreError::UnsupportedColumnType { .. }
        | CoreError::NullKey { .. }
        | CoreError::DuplicateKey { .. }
        | CoreError::InvalidSchemaChange { .. }
        | CoreError::CannotRevert { .. }
        | CoreError::InvalidInput { .. } => Code::InvalidArgument,
        // CORRUPTION: stored data that does not verify. A typed corruption error of the
        // pack checksums (issue 15) belongs here too when it lands.
        CoreError::Corrupt { .. } => Code::DataLoss,
        CoreError::Store(s) => store_code(s),
        CoreError::Parquet(p) => parquet_code(p),
        CoreError::Arrow(a) => arrow_code(a),
        CoreError::InvalidRetention(_) => Code::InvalidArgument,
        // a dataset written in a storage format this build does not read: the catalog (or
        // the server) must change first
        CoreError::UnsupportedFormat { .. } => Code::FailedPrecondition,
        // a collection that must wait for writes in flight: worth a retry
        CoreError::GcBusy(_) => Code::Unavailable,
        CoreError::CatalogUnreachable { .. } => Code::Unavailable,
        // a retry reads the rewritten pack
        CoreError::PackRewritten { .. } => Code::Unavailable,
        CoreError::CannotErase { .. } => Code::FailedPrecondition,
        // the asset existed and was removed on purpose: gone, with its tombstone's reason
        CoreError::AssetErased { .. } => Code::NotFound,
        CoreError::Tree(_) | CoreError::Json(_) | CoreError::Join(_) | CoreError::Io { .. } => {
            Code::Internal
        }
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        // CORRUPTION: an object that does not hash to its address, a garbage ref entry, an
        // object a commit names that is gone
        StoreError::Corrupt { .. }
        | StoreError::MalformedRef { .. }
        | StoreError::NotFound { .. } => Code::DataLoss,
        StoreError::RefConflict { .. } => Code::Aborted,
        StoreError::InvalidRefName { .. } | StoreError::InvalidPath { .. } => Code::InvalidArgument,
        StoreError::ObjectStore(o) => object_store_code(o),
        StoreError::InvalidUrl { .. } | StoreError::Json(_) | StoreError::Io { .. } => {
            Code::Internal
        }
    }
}

fn object_store_code(e: &datafusion::object_store::Error) -> Code {
    use datafusion::object_store::Error as E;
    match e {
        // a pack range that failed its checksum (quiver_core::VerifiedStore) or another
        // Quiver error raised inside a store read
        E::Generic { source, .. } if boxed_code(source.as_ref()).is_some() => {
            boxed_code(source.as_ref()).unwrap_or(Code::Internal)
        }
        // an object the catalog names is missing
        E::NotFound { .. } => Code::DataLoss,
        E::AlreadyExists { .. } | E::Precondition { .. } => Code::Aborted,
        // the server's own credentials or configuration, not the caller's
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. }
        | E::InvalidPath { .. }
        | E::JoinError { .. } => Code::Internal,
        // network and backend failures: worth a retry
        _ => Code::Unavailable,
    }
}

fn parquet_code(e: &datafusion::parquet::errors::ParquetError) -> Code {
    use datafusion::parquet::errors::ParquetError as P;
    match e {
        P::External(inner) => boxed_code(inner.as_ref()).unwrap_or(Code::Internal),
        // undecodable pages of an immutable pack: the stored bytes are wrong
        P::General(_) | P::EOF(_) | P::IndexOutOfBound(..) | P::NeedMoreData(_) => Code::DataLoss,
        P::ArrowError(_) | P::NYI(_) => Code::Internal,
        _ => Code::Internal,
    }
}

fn arrow_code(e: &arrow::error::ArrowError) -> Code {
    use arrow::error::ArrowError as A;
    match e {
        A::ExternalError(inner) => boxed_code(inner.as_ref()).unwrap_or(Code::Internal),
        // values the caller supplied (casts, arithmetic, parameters)
        A::CastError(_)
        | A::ParseError(_)
        | A::ArithmeticOverflow(_)
        | A::DivideByZero
        | A::InvalidArgumentError(_)
        | A::SchemaError(_)
        | A::ComputeError(_) => Code::InvalidArgument,
        // batches a client sent that do not decode
        A::IpcError(_) => Code::InvalidArgument,
        A::NotYetImplemented(_) => Code::Unimplemented,
        // a result past what an Arrow array can hold, or memory the server cannot give
        A::MemoryError(_)
        | A::DictionaryKeyOverflowError
        | A::RunEndIndexOverflowError
        | A::OffsetOverflowError(_) => Code::ResourceExhausted,
        // the server's own reads and encodings
        A::IoError(..)
        | A::CsvError(_)
        | A::JsonError(_)
        | A::AvroError(_)
        | A::ParquetError(_)
        | A::CDataInterface(_) => Code::Internal,
    }
}

fn flight_code(e: &arrow_flight::error::FlightError) -> Code {
    use arrow_flight::error::FlightError as F;
    match e {
        F::Tonic(s) => s.code(),
        // a client's malformed batch
        F::Arrow(_) => Code::InvalidArgument,
        F::ExternalError(inner) => boxed_code(inner.as_ref()).unwrap_or(Code::Internal),
        // what a client sent cannot be decoded
        F::ProtocolError(_) | F::DecodeError(_) => Code::InvalidArgument,
        F::NotYetImplemented(_) => Code::Unimplemented,
    }
}

/// The code of an error that crossed a library boundary boxed, when it is one of ours (or
/// one we know).
fn boxed_code(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<Code> {
    if let Some(s) = e.downcast_ref::<SqlError>() {
        return Some(sql_code(s));
    }
    if let Some(c) = e.downcast_ref::<CoreError>() {
        return Some(core_code(c));
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return Some(store_code(s));
    }
    if let Some(f) = e.downcast_ref::<FlightError>() {
        return Some(f.code());
    }
    if let Some(d) = e.downcast_ref::<DataFusionError>() {
        return Some(df_code(d));
    }
    if let Some(a) = e.downcast_ref::<arrow::error::ArrowError>() {
        return Some(arrow_code(a));
    }
    if let Some(p) = e.downcast_ref::<datafusion::parquet::errors::ParquetError>() {
        return Some(parquet_code(p));
    }
    if let Some(o) = e.downcast_ref::<datafusion::object_store::Error>() {
        return Some(object_store_code(o));
    }
    if let Some(s) = e.downcast_ref::<Status>() {
        return Some(s.code());
    }
    None
}

fn df_code(e: &DataFusionError) -> Code {
    use DataFusionError as D;
    match e {
        D::ArrowError(a, _) => arrow_code(a),
        D::ParquetError(p) => parquet_code(p),
        D::ObjectStore(o) => object_store_code(o),
        D::IoError(_) => Code::Internal,
        // the statement the caller wrote
        D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::Configuration(_) => Code::InvalidArgument,
        D::NotImplemented(_) => Code::Unimplemented,
        // errors raised while running the caller's query (a bad cast of a value, a failed
        // assertion on input): the caller's to fix
        D::Execution(_) => Code::InvalidArgument,
        D::ResourcesExhausted(_) => Code::ResourceExhausted,
        D::Internal(_) | D::ExecutionJoin(_) | D::Substrait(_) | D::Ffi(_) => Code::Internal,
        D::External(inner) => boxed_code(inner.as_ref()).unwrap_or(Code::Internal),
        D::Context(_, inner) | D::Diagnostic(_, inner) => df_code(inner),
        D::Shared(inner) => df_code(inner),
        D::Collection(all) => all.first().map(df_code).unwrap_or(Code::Internal),
    }
}

/// Longest quoted input echoed in a message, in characters.
pub const MAX_ECHO_CHARS: usize = 200;

/// Longest message sent with a status, in bytes (gRPC sends it as a header; servers and
/// proxies refuse headers of a few KB).
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// Local roots (catalog directories) never shown to callers: see [`hide_root`].
static HIDDEN_ROOTS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Keep `root` (a catalog's local directory, or its URL) out of messages sent to callers:
/// paths under it are shown relative to it. Called by the server for its catalog.
pub fn hide_root(root: &str) {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return;
    }
    if let Ok(mut roots) = HIDDEN_ROOTS.write() {
        // object_store names local files without the leading '/'
        for r in [root, root.trim_start_matches('/')] {
            if !r.is_empty() && !roots.iter().any(|x| x == r) {
                roots.push(r.to_string());
            }
        }
        // longest first: a root inside another is replaced before its parent
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
    }
}

/// The message of an error as a caller may see it: catalog-relative names, quoted input
/// cut to [`MAX_ECHO_CHARS`], no DataFusion bug-report boilerplate, at most
/// [`MAX_MESSAGE_BYTES`].
pub fn client_message(msg: &str) -> String {
    let mut m = msg.to_string();
    // DataFusion's internal errors carry a request to file a bug: not for the caller
    for marker in [
        "This issue was likely caused by a bug in DataFusion",
        "This was likely caused by a bug in DataFusion",
    ] {
        if let Some(i) = m.find(marker) {
            m.truncate(i);
            m = m.trim_end().trim_end_matches('.').to_string();
        }
    }
    m = m.replace("Internal error: ", "internal error: ");
    m = drop_optimizer_context(&m);
    if let Ok(roots) = HIDDEN_ROOTS.read() {
        for r in roots.iter() {
            m = m
                .replace(&format!("{r}/"), "")
                .replace(r.as_str(), "<catalog>");
        }
    }
    m = hide_absolute_paths(&m);
    m = truncate_quoted(&m);
    bound(&m, MAX_MESSAGE_BYTES)
}

/// DataFusion's "Optimizer rule 'x' failed / caused by" wrapping dropped: the cause is
/// what the caller needs (a value that does not cast), not which rule met it.
fn drop_optimizer_context(m: &str) -> String {
    const CAUSED_BY: &str = "\ncaused by\n";
    let mut rest = m;
    while rest.starts_with("Optimizer rule '") {
        match rest.find(CAUSED_BY) {
            Some(i) if rest[..i].ends_with("' failed") => rest = &rest[i + CAUSED_BY.len()..],
            _ => break,
        }
    }
    rest.to_string()
}

/// Absolute file paths outside the catalog (`/home/u/.ssh/x`) shown by file name only.
fn hide_absolute_paths(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut rest = m;
    while let Some(i) = rest.find('/') {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let at_word_start = before
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || "'\"`([{:=".contains(c));
        let end = from
            .find(|c: char| c.is_whitespace() || "'\"`)]},;".contains(c))
            .unwrap_or(from.len());
        let path = &from[..end];
        let segments = path.split('/').filter(|s| !s.is_empty()).count();
        if at_word_start && segments >= 2 && !path.starts_with("//") {
            let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or_default();
            out.push_str("…/");
            out.push_str(name);
        } else {
            out.push_str(path);
        }
        // `end` ≥ 1: the '/' itself is never a terminator
        rest = &from[end..];
    }
    out.push_str(rest);
    out
}

/// Quoted spans (`'…'`, `"…"`) longer than [`MAX_ECHO_CHARS`] cut to that, marked `…`.
fn truncate_quoted(m: &str) -> String {
    let mut out = String::with_capacity(m.len().min(4 * MAX_MESSAGE_BYTES));
    let mut quote: Option<char> = None;
    let mut run = 0usize;
    for c in m.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => {
                run += 1;
                if run <= MAX_ECHO_CHARS {
                    out.push(c);
                } else if run == MAX_ECHO_CHARS + 1 {
                    out.push('…');
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    run = 0;
                }
                out.push(c);
            }
        }
    }
    out
}

/// `m` cut to at most `max` bytes (at a character boundary), marked `…`.
fn bound(m: &str, max: usize) -> String {
    if m.len() <= max {
        return m.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &m[..end])
}

impl From<FlightError> for Status {
    fn from(e: FlightError) -> Status {
        Status::new(e.code(), client_message(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: impl Into<FlightError>) -> Code {
        Status::from(e.into()).code()
    }

    #[test]
    fn codes_of_wrapped_errors() {
        let not_found = CoreError::TagNotFound {
            dataset: "d".into(),
            tag: "t".into(),
        };
        assert_eq!(code_of(not_found), Code::NotFound);
        let in_sql = SqlError::Core(CoreError::DatasetNotFound("d".into()));
        assert_eq!(code_of(in_sql), Code::NotFound);
        // a core error that crossed DataFusion boxed
        let boxed = DataFusionError::Context(
            "while planning".into(),
            Box::new(DataFusionError::External(Box::new(
                CoreError::BranchNotFound {
                    dataset: "d".into(),
                    branch: "b".into(),
                },
            ))),
        );
        assert_eq!(code_of(boxed), Code::NotFound);
        let conflict = CoreError::Conflict {
            dataset: "d".into(),
            branch: "main".into(),
            keys: "a".into(),
        };
        assert_eq!(code_of(conflict), Code::Aborted);
        let pending = CoreError::MergePending {
            dataset: "d".into(),
            branch: "main".into(),
            from: "x".into(),
        };
        assert_eq!(code_of(pending), Code::FailedPrecondition);
        let corrupt = CoreError::Store(StoreError::Corrupt {
            path: "objects/ab".into(),
            expected: "1".into(),
            actual: "2".into(),
        });
        assert_eq!(code_of(corrupt), Code::DataLoss);
        // as DataFusion's Parquet scan reports a pack range that failed its checksum
        let in_parquet = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::External(Box::new(
                datafusion::object_store::Error::Generic {
                    store: "quiver-verified",
                    source: Box::new(CoreError::Corrupt {
                        what: "objects/pack/ab/abcd".into(),
                        reason: "checksum mismatch".into(),
                    }),
                },
            )),
        ));
        assert_eq!(code_of(in_parquet), Code::DataLoss);
        let corrupt_in_scan = DataFusionError::External(Box::new(CoreError::Corrupt {
            what: "pack p".into(),
            reason: "checksum".into(),
        }));
        assert_eq!(code_of(corrupt_in_scan), Code::DataLoss);
        assert_eq!(
            code_of(DataFusionError::Plan("no column x".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code_of(DataFusionError::ResourcesExhausted("pool".into())),
            Code::ResourceExhausted
        );
        assert_eq!(
            code_of(DataFusionError::Internal("oops".into())),
            Code::Internal
        );
        let io = DataFusionError::ObjectStore(Box::new(datafusion::object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        }));
        assert_eq!(code_of(io), Code::Unavailable);
        let parquet = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::EOF("page".into()),
        ));
        assert_eq!(code_of(parquet), Code::DataLoss);
        assert_eq!(
            code_of(FlightError::PermissionDenied("ro".into())),
            Code::PermissionDenied
        );
        assert_eq!(
            code_of(FlightError::Limit {
                what: "x".into(),
                limit: "1".into(),
                flag: "--f"
            }),
            Code::ResourceExhausted
        );
        assert_eq!(
            code_of(SqlError::Parse("near x".into())),
            Code::InvalidArgument
        );
    }

    /// Kinds that fell through a wildcard to INTERNAL before the mapping was exhaustive.
    #[test]
    fn every_kind_has_its_own_code() {
        assert_eq!(
            code_of(CoreError::GcBusy("an import in flight".into())),
            Code::Unavailable
        );
        assert_eq!(
            code_of(CoreError::InvalidRetention("7x".into())),
            Code::InvalidArgument
        );
        assert_eq!(
            code_of(CoreError::UnsupportedFormat {
                dataset: "d".into(),
                found: 1,
                supported: 2
            }),
            Code::FailedPrecondition
        );
        // the same kinds inside the SQL layer and inside DataFusion
        assert_eq!(
            code_of(SqlError::Core(CoreError::GcBusy("x".into()))),
            Code::Unavailable
        );
        assert_eq!(
            code_of(DataFusionError::External(Box::new(
                CoreError::InvalidRetention("x".into())
            ))),
            Code::InvalidArgument
        );
        use arrow::error::ArrowError as A;
        assert_eq!(
            code_of(A::NotYetImplemented("x".into())),
            Code::Unimplemented
        );
        assert_eq!(code_of(A::OffsetOverflowError(1)), Code::ResourceExhausted);
        assert_eq!(
            code_of(A::IoError("spill".into(), std::io::Error::other("disk"))),
            Code::Internal
        );
        // a storage fault is never the caller's: INTERNAL or UNAVAILABLE, not INVALID_ARGUMENT
        let disk = DataFusionError::IoError(std::io::Error::other("disk"));
        assert_eq!(code_of(disk), Code::Internal);
        let net =
            DataFusionError::ObjectStore(Box::new(datafusion::object_store::Error::Generic {
                store: "S3",
                source: "timeout".into(),
            }));
        assert_eq!(code_of(net), Code::Unavailable);
        let parquet_io = DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::External(Box::new(std::io::Error::other(
                "read",
            ))),
        ));
        assert_eq!(code_of(parquet_io), Code::Internal);
    }

    #[test]
    fn messages_hide_paths_and_bound_input() {
        hide_root("/srv/secret-place/catalog");
        let m = client_message(
            "i/o error on /srv/secret-place/catalog/refs/datasets/d/tags/v1/0001.json: denied",
        );
        assert_eq!(m, "i/o error on refs/datasets/d/tags/v1/0001.json: denied");
        let m = client_message("cannot open /home/alice/.ssh/authorized_keys for writing");
        assert_eq!(m, "cannot open …/authorized_keys for writing");
        // paths that are not absolute, and slashes in prose, stay
        let m = client_message("names may not contain '/' or '@'; see datasets/d/x and a/b");
        assert_eq!(
            m,
            "names may not contain '/' or '@'; see datasets/d/x and a/b"
        );
        let long = "x".repeat(10_000);
        let m = client_message(&format!("dataset '{long}' does not exist"));
        assert!(m.len() < 400, "{}", m.len());
        assert!(
            m.starts_with("dataset 'xxx") && m.ends_with("…' does not exist"),
            "{m}"
        );
        let m = client_message(&"y".repeat(100_000));
        assert!(m.len() <= MAX_MESSAGE_BYTES, "{}", m.len());
        let m = client_message(
            "Internal error: Physical input schema should be the same.\nThis issue was likely caused by a bug in DataFusion's code. Please help us to resolve this by filing a bug report in our issue tracker: https://github.com/apache/datafusion/issues",
        );
        assert_eq!(
            m,
            "internal error: Physical input schema should be the same"
        );
        let m = client_message(
            "Optimizer rule 'simplify_expressions' failed\ncaused by\nArrow error: Cast error: Cannot cast string 'x' to value of Int32 type",
        );
        assert_eq!(
            m,
            "Arrow error: Cast error: Cannot cast string 'x' to value of Int32 type"
        );
    }
}
