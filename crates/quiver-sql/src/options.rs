//! How a [`crate::QuiverContext`] session is set up: who it acts for, what it may do and
//! what it may use.
//!
//! A server builds one [`SessionOptions`] per caller (read-only or not, the caller's name as
//! commit author) around one shared runtime ([`runtime_with_memory_limit`]): every session's
//! operators then draw on one memory pool, and sorts, joins and aggregations that outgrow it
//! spill to disk or fail with "resources exhausted" instead of taking the process down.

use std::sync::Arc;

use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::SessionConfig;

use crate::error::Result;
use crate::guard::SqlLimits;

/// Stack of every thread of a runtime that runs Quiver sessions (`quiver serve`, `quiver
/// sql`). Planning and evaluating nested expressions is recursive: DataFusion grows the
/// stack of its optimizer passes on demand, but cloning, dropping and evaluating an
/// expression tree is plain recursion. With this stack, expressions up to the default
/// [`SqlLimits::max_expr_depth`] run in debug builds too; deeper ones are refused before
/// planning.
pub const RUNTIME_STACK_BYTES: usize = 16 << 20;

/// Options of one SQL session.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Refuse every statement that changes the catalog (a read-only token).
    pub read_only: bool,
    /// Bounds on statement size and expression nesting.
    pub limits: SqlLimits,
    /// The DataFusion runtime (memory pool, spill directory) to run on; `None`: a new one
    /// with [`default_memory_limit`].
    pub runtime: Option<Arc<RuntimeEnv>>,
    /// The author recorded on commits, merges, schema versions and lineage records;
    /// `None`: [`quiver_core::default_author`].
    pub author: Option<String>,
    /// Applied to the session's DataFusion state before use, e.g. to run its queries on a
    /// cluster (crate `quiver-cluster`).
    pub state_hook: Option<StateHook>,
}

/// A change made to every new session's DataFusion state (see
/// [`SessionOptions::state_hook`]).
#[derive(Clone)]
pub struct StateHook(pub Arc<dyn Fn(SessionState) -> DfResult<SessionState> + Send + Sync>);

impl std::fmt::Debug for StateHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateHook")
    }
}

impl SessionOptions {
    /// The author this session records.
    pub fn author(&self) -> String {
        self.author
            .clone()
            .unwrap_or_else(quiver_core::default_author)
    }
}

/// `config` with every DataFusion setting that the environment names, as DataFusion's own
/// CLI reads them: `datafusion.execution.parquet.pushdown_filters` from
/// `DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS`, and so on. SQL `SET` is refused (a
/// session's settings are the server's), so this is how an operator tunes them; a value
/// the setting does not accept is an error naming the variable.
pub fn with_env_settings(mut config: SessionConfig) -> Result<SessionConfig> {
    for (key, var, value) in ENV_SETTINGS.iter() {
        config.options_mut().set(key, value).map_err(|e| {
            crate::error::SqlError::DataFusion(datafusion::error::DataFusionError::Configuration(
                format!("environment variable {var}={value:?} is not a valid {key}: {e}"),
            ))
        })?;
    }
    Ok(config)
}

/// The DataFusion settings the environment names: (setting, variable, value), read once
/// per process (every session applies them; most processes have none).
static ENV_SETTINGS: std::sync::LazyLock<Vec<(String, String, String)>> =
    std::sync::LazyLock::new(|| {
        datafusion::config::ConfigOptions::new()
            .entries()
            .into_iter()
            .filter_map(|e| {
                let var = e.key.to_uppercase().replace('.', "_");
                let value = std::env::var_os(&var)?.to_string_lossy().into_owned();
                Some((e.key, var, value))
            })
            .collect()
    });

/// Half of the machine's memory (from `/proc/meminfo`), or 4 GiB where that cannot be read.
pub fn default_memory_limit() -> usize {
    const FALLBACK: usize = 4 << 30;
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map(|kb| kb.saturating_mul(1024) / 2)
        .filter(|b| *b > 0)
        .unwrap_or(FALLBACK)
}

/// A runtime whose operators share one memory pool of `bytes` and spill to the OS temp
/// directory when they can.
pub fn runtime_with_memory_limit(bytes: usize) -> Result<Arc<RuntimeEnv>> {
    Ok(RuntimeEnvBuilder::new()
        .with_memory_limit(bytes, 1.0)
        .build_arc()?)
}
