//! The bounds a server puts on what one request or one caller may cost it, in one struct.
//!
//! Each limit has a `quiver serve` flag (named in [`ServerLimits`]'s field docs and in the
//! error a caller gets when it hits the limit: `RESOURCE_EXHAUSTED`, naming the limit and the
//! flag). Defaults are in [`ServerLimits::default`].

use std::time::Duration;

use crate::error::FlightError;

/// Limits of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Most shards one trainer read may ask for (`--max-shards`).
    pub max_shards: u32,
    /// Largest `FlightInfo` a read may produce, in bytes: shards × ticket size
    /// (`--max-flight-info-bytes`); also the largest statement ticket and prepared-statement
    /// handle (they carry the statement, its parameters and, for a write, its result rows).
    /// gRPC clients refuse messages above 4 MiB by default.
    pub max_flight_info_bytes: usize,
    /// Largest SQL statement (or trainer filter) accepted, in bytes, checked before parsing
    /// (`--max-statement-bytes`).
    pub max_statement_bytes: usize,
    /// Longest a call may take to answer (`--call-timeout-secs`): planning and metadata;
    /// a response that has started streaming is not cut.
    pub call_timeout: Duration,
    /// Calls served at once on one connection (`--max-calls-per-connection`); more wait.
    pub max_calls_per_connection: usize,
    /// HTTP/2 streams a client may open at once on one connection
    /// (`--max-streams-per-connection`).
    pub max_streams_per_connection: u32,
    /// Largest gRPC message received or sent through the generated service, in bytes
    /// (`--max-message-bytes`): DoPut batches, descriptors, actions.
    pub max_message_bytes: usize,
    /// Deepest expression nesting in a statement or filter (`--max-expr-depth`); a long
    /// `OR` chain nests one level per term.
    pub max_expr_depth: usize,
    /// Most expression nodes in one statement or filter (`--max-expr-nodes`).
    pub max_expr_nodes: usize,
    /// Memory all queries together may hold, in bytes (`--memory-limit-bytes`); sorts and
    /// aggregations spill to disk past it, other operators fail with RESOURCE_EXHAUSTED.
    /// Default: half of the machine's memory.
    pub memory_limit_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_shards: 4096,
            max_flight_info_bytes: 4 * 1024 * 1024,
            max_statement_bytes: 1024 * 1024,
            call_timeout: Duration::from_secs(300),
            max_calls_per_connection: 32,
            max_streams_per_connection: 64,
            max_message_bytes: 64 * 1024 * 1024,
            max_expr_depth: quiver_sql::SqlLimits::default().max_expr_depth,
            max_expr_nodes: quiver_sql::SqlLimits::default().max_expr_nodes,
            memory_limit_bytes: quiver_sql::options::default_memory_limit(),
        }
    }
}

impl ServerLimits {
    /// The bounds SQL sessions and read filters are checked against before planning.
    pub fn sql(&self) -> quiver_sql::SqlLimits {
        quiver_sql::SqlLimits {
            max_statement_bytes: self.max_statement_bytes,
            max_expr_depth: self.max_expr_depth,
            max_expr_nodes: self.max_expr_nodes,
        }
    }

    /// Fail with the statement-size limit when `text` (named `what`) is too long.
    pub fn check_statement(&self, what: &str, text: &str) -> Result<(), FlightError> {
        if text.len() > self.max_statement_bytes {
            return Err(FlightError::Limit {
                what: format!("{what} of {} bytes", text.len()),
                limit: format!("{} bytes", self.max_statement_bytes),
                flag: "--max-statement-bytes",
            });
        }
        Ok(())
    }
}
