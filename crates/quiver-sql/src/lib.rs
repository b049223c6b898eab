//! `quiver-sql`: SQL over Quiver versions with Apache DataFusion.
//!
//! - [`provider::QuiverTableProvider`]: one immutable table per resolved snapshot, scanned
//!   through DataFusion's Parquet `DataSourceExec` with tree-statistics pruning.
//! - [`context::QuiverContext`]: a session: datasets as tables (`ds`, `"ds@ref"`), system
//!   tables (`quiver.datasets`, `quiver.commits`, `quiver.branches`, `quiver.tags`), the
//!   SQL extensions (`AS OF`, branches, tags, `DIFF`, `USE BRANCH`, DML with commits,
//!   `ERASE`).

pub mod asset_fn;
pub mod checks;
pub mod cluster_scan;
pub mod column_names;
mod computed;
pub mod context;
pub mod diff;
pub mod erase_sql;
pub mod error;
pub mod guard;
pub mod lineage_sql;
pub mod merge_sql;
pub mod names;
mod optimize_sql;
pub mod options;
pub mod params;
pub mod parser;
pub mod provider;
pub mod pruning;
pub mod system;
pub mod table_ddl;
mod vacuum_sql;

pub use context::{QuiverContext, VersionPins};
pub use error::{Result, SqlError};
pub use guard::{SqlKind, SqlLimits};
pub use options::{SessionOptions, StateHook};
pub use provider::{QuiverTableProvider, ScanStats, ShardSpec};
