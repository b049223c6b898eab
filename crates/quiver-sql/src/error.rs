//! The one error type of `quiver-sql`.
//!
//! Errors of the lower layer ([`CoreError`]) are surfaced as they are, so a missing tag
//! reads "tag 'v9' not found in dataset 'ds'" and not a chain of wrappers. Errors cross into
//! DataFusion as `DataFusionError::External(Box::new(SqlError))` and are unwrapped again
//! when they come back out of a query ([`SqlError::from`]).

use datafusion::error::DataFusionError;
use quiver_core::CoreError;

/// Errors of the SQL layer.
#[derive(Debug, thiserror::Error)]
// Not `#[non_exhaustive]`: quiver-flight maps every variant to a gRPC code in one
// exhaustive match (`quiver_flight::error`), so a new variant does not compile until it
// is given its code.
pub enum SqlError {
    /// An error of the catalog/dataset API (unknown dataset, branch, tag, version, …).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error of DataFusion (planning, execution).
    #[error("{0}")]
    DataFusion(DataFusionError),
    /// A statement that does not parse.
    #[error("SQL parse error: {0}")]
    Parse(String),
    /// A write aimed at something that cannot be written (a tag, a version).
    #[error("cannot write to {target} of dataset '{dataset}': {reason}")]
    ReadOnly {
        dataset: String,
        target: String,
        reason: String,
    },
    /// A value of the wrong type in INSERT/UPDATE.
    #[error(
        "a value written to dataset '{dataset}' does not convert to its column's type: {reason}"
    )]
    ValueConversion { dataset: String, reason: String },

    #[error("unsupported statement: {0}")]
    Unsupported(String),
    /// A statement or expression over a configured bound (size, nesting, node count).
    #[error("statement too large: {0}")]
    Limit(String),
    /// A write attempted in a read-only session (a read-only token on a server).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Transaction misuse (COMMIT without BEGIN, …).
    #[error("transaction error: {0}")]
    Transaction(String),
    /// Arrow error while converting results.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// Result alias of this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        // unwrap our own errors that crossed DataFusion
        fn find(e: DataFusionError) -> std::result::Result<SqlError, DataFusionError> {
            match e {
                DataFusionError::External(b) => match b.downcast::<SqlError>() {
                    Ok(s) => Ok(*s),
                    Err(b) => match b.downcast::<CoreError>() {
                        Ok(c) => Ok(SqlError::Core(*c)),
                        Err(b) => Err(DataFusionError::External(b)),
                    },
                },
                DataFusionError::Context(ctx, inner) => match find(*inner) {
                    Ok(s) => Ok(s),
                    Err(inner) => Err(DataFusionError::Context(ctx, Box::new(inner))),
                },
                DataFusionError::Shared(arc) => match std::sync::Arc::try_unwrap(arc) {
                    Ok(inner) => find(inner),
                    Err(arc) => Err(DataFusionError::Shared(arc)),
                },
                // a pack that failed its checksum deep inside DataFusion's Parquet scan
                // (ParquetError → object_store::Error → CoreError::Corrupt)
                other => match CoreError::find_corrupt(&other) {
                    Some(CoreError::Corrupt { what, reason }) => {
                        Ok(SqlError::Core(CoreError::Corrupt {
                            what: what.clone(),
                            reason: reason.clone(),
                        }))
                    }
                    Some(CoreError::PackRewritten { pack }) => {
                        Ok(SqlError::Core(CoreError::PackRewritten {
                            pack: pack.clone(),
                        }))
                    }
                    _ => Err(other),
                },
            }
        }
        match find(e) {
            Ok(s) => s,
            Err(e) => SqlError::DataFusion(e),
        }
    }
}

impl From<SqlError> for DataFusionError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::DataFusion(d) => d,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Wrap a core error for DataFusion.
pub(crate) fn df_err(e: impl Into<SqlError>) -> DataFusionError {
    e.into().into()
}
