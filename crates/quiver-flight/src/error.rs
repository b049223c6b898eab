//! The one error type of `quiver-flight`, and its mapping onto gRPC status codes.

use quiver_core::CoreError;
use quiver_sql::SqlError;
use tonic::Status;

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
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
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

fn core_status(e: &CoreError) -> Status {
    let msg = e.to_string();
    match e {
        CoreError::DatasetNotFound(_)
        | CoreError::BranchNotFound { .. }
        | CoreError::TagNotFound { .. }
        | CoreError::VersionNotFound { .. }
        | CoreError::ColumnNotFound { .. }
        | CoreError::NoPendingMerge { .. }
        | CoreError::NoVersionAtTime { .. }
        | CoreError::ModelNotFound(_)
        | CoreError::RunNotFound(_)
        | CoreError::SchemaVersionNotFound { .. } => Status::not_found(msg),
        CoreError::DatasetExists(_)
        | CoreError::BranchExists { .. }
        | CoreError::TagExists { .. }
        | CoreError::ModelExists(_)
        | CoreError::SchemaVersionExists { .. } => Status::already_exists(msg),
        CoreError::Conflict { .. }
        | CoreError::MergePending { .. }
        | CoreError::UnresolvedConflicts { .. } => Status::aborted(msg),
        CoreError::Corrupt { .. }
        | CoreError::Store(_)
        | CoreError::Tree(_)
        | CoreError::Join(_)
        | CoreError::Io { .. } => Status::internal(msg),
        _ => Status::invalid_argument(msg),
    }
}

impl From<FlightError> for Status {
    fn from(e: FlightError) -> Status {
        let msg = e.to_string();
        match &e {
            FlightError::Core(c) => core_status(c),
            FlightError::Sql(SqlError::Core(c)) => core_status(c),
            FlightError::Sql(SqlError::DataFusion(_)) | FlightError::DataFusion(_) => {
                // planning errors (unknown column, bad syntax) are the caller's
                Status::invalid_argument(msg)
            }
            FlightError::Sql(SqlError::PermissionDenied(_)) => Status::permission_denied(msg),
            FlightError::Sql(SqlError::Limit(_)) => Status::resource_exhausted(msg),
            FlightError::Sql(_) => Status::invalid_argument(msg),
            FlightError::InvalidArgument(_) => Status::invalid_argument(msg),
            FlightError::Unauthenticated(_) => Status::unauthenticated(msg),
            FlightError::PermissionDenied(_) => Status::permission_denied(msg),
            FlightError::NotFound(_) => Status::not_found(msg),
            FlightError::Arrow(_) | FlightError::Flight(_) => Status::invalid_argument(msg),
            FlightError::Config(_) | FlightError::Io { .. } | FlightError::Transport(_) => {
                Status::internal(msg)
            }
        }
    }
}
