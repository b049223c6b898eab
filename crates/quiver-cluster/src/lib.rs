//! Quiver SQL on an Apache DataFusion Ballista cluster.
//!
//! - [`connect_session`] turns a Quiver SQL session's DataFusion state into one whose
//!   queries over datasets run on a Ballista scheduler and its executors
//!   ([`planner::ClusterPlanner`] says what runs where);
//! - [`codec`] serializes Quiver's tables (logical plans) and scans (physical plans) with
//!   locations and commit ids, never credentials;
//! - [`run_scheduler`] and [`run_executor`] start Ballista's scheduler and executor with
//!   those codecs (`quiver cluster scheduler|executor`).
//!
//! Every process opens the catalog itself: the same local path (a shared file system) or
//! the same `s3://` URL, with its own `AWS_*` configuration. A commit id names an
//! immutable version, so every process reads exactly the rows the front end resolved.

pub mod catalogs;
pub mod codec;
pub mod inline;
pub mod planner;
pub mod ready;

use std::sync::Arc;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use datafusion::error::Result as DfResult;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion_proto::protobuf::LogicalPlanNode;

pub use codec::{QuiverLogicalCodec, QuiverPhysicalCodec};
pub use inline::InlineTable;
pub use planner::ClusterPlanner;
pub use ready::{registered_executors, wait_for_executors};

/// Errors of the cluster crate.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A scheduler or executor address that does not parse.
    #[error("invalid cluster address {addr:?}: {reason} (expected host:port or df://host:port)")]
    InvalidAddress { addr: String, reason: String },
    /// The catalog a plan names cannot be opened by this process.
    #[error("cannot open catalog {url} on this cluster process: {reason}")]
    Catalog { url: String, reason: String },
    /// A catalog that lives in one process only.
    #[error(
        "catalog {0} is an in-memory catalog of one process; a cluster can read local \
         paths on a shared file system and s3:// catalogs"
    )]
    NotShareable(String),
    /// Nothing that answers like a Ballista scheduler at this address.
    #[error("cannot reach a cluster scheduler at {addr}: {reason} (start one with `quiver cluster scheduler`)")]
    Unreachable { addr: String, reason: String },
    /// The scheduler has fewer executors than a query or `quiver cluster wait` needs.
    #[error(
        "the scheduler at {addr} has {have} executor(s) registered, {want} needed, after \
         waiting {waited:.0} s; start one with `quiver cluster executor --scheduler {addr}`"
    )]
    NoExecutors {
        addr: String,
        have: usize,
        want: usize,
        waited: f64,
    },
    /// Ballista refused to start or failed.
    #[error("{role}: {source}")]
    Ballista {
        role: &'static str,
        #[source]
        source: ballista_core::error::BallistaError,
    },
}

/// Host and port of `addr` (`host:port`, `df://host:port`, `http://host:port`), with
/// `default_port` when none is given.
pub fn parse_address(addr: &str, default_port: u16) -> Result<(String, u16), ClusterError> {
    let bad = |reason: &str| ClusterError::InvalidAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let rest = addr
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(addr)
        .trim_end_matches('/');
    if rest.is_empty() {
        return Err(bad("no host"));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => {
            let port = port
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?;
            Ok((host.trim_matches(['[', ']']).to_string(), port))
        }
        Some(_) => Err(bad("no host")),
        None => Ok((rest.to_string(), default_port)),
    }
}

/// How long a distributed query waits for a first executor to register with the
/// scheduler (executors register a few seconds after they start).
pub const EXECUTOR_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The port a Ballista scheduler listens on by default.
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// `state` made to run its queries over Quiver datasets on the scheduler at `scheduler`
/// (see [`planner::ClusterPlanner`]). The session keeps its catalogs, functions and
/// settings; nothing is contacted until the first distributed query.
pub fn connect_session(state: SessionState, scheduler: &str) -> DfResult<SessionState> {
    let (host, port) = parse_address(scheduler, DEFAULT_SCHEDULER_PORT)
        .map_err(|e| datafusion::error::DataFusionError::Configuration(e.to_string()))?;
    let url = format!("http://{host}:{port}");
    let logical: Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec> =
        Arc::new(QuiverLogicalCodec::default());
    let config = state
        .config()
        .clone()
        .with_ballista_logical_extension_codec(logical.clone())
        .with_ballista_physical_extension_codec(Arc::new(QuiverPhysicalCodec::default()));
    let ballista = config.clone().upgrade_for_ballista().ballista_config();
    let remote = ballista_core::planner::BallistaQueryPlanner::<LogicalPlanNode>::with_extension(
        url.clone(),
        ballista,
        logical,
    );
    let config = config.with_ballista_query_planner(Arc::new(ClusterPlanner::new(
        Arc::new(remote),
        scheduler,
        EXECUTOR_WAIT,
    )));
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
        .upgrade_for_ballista(url)?;
    // Ballista's upgrade puts DataFusion's own functions back: Quiver's length functions
    // replace them again, as in every Quiver session (and on the scheduler and executors)
    for f in quiver_sql::asset_fn::length_udfs() {
        datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f))?;
    }
    Ok(state)
}

/// Options of a scheduler process.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to listen on.
    pub bind_host: String,
    /// Port to listen on.
    pub port: u16,
    /// Host name executors and clients reach this scheduler by.
    pub external_host: String,
}

/// Run a Ballista scheduler that understands Quiver's plans until it fails.
pub async fn run_scheduler(opts: SchedulerOptions) -> Result<(), ClusterError> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let err = |source| ClusterError::Ballista {
        role: "scheduler",
        source,
    };
    // Quiver's binary-aware length functions replace DataFusion's, as in every Quiver session
    let session_builder: ballista_scheduler::scheduler_server::SessionBuilder =
        Arc::new(|config| {
            let mut state = ballista_core::utils::default_session_builder(config)?;
            for f in quiver_sql::asset_fn::length_udfs() {
                datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f))?;
            }
            Ok(state)
        });
    let config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        bind_port: opts.port,
        external_host: opts.external_host.clone(),
        override_logical_codec: Some(Arc::new(QuiverLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(QuiverPhysicalCodec::default())),
        override_session_builder: Some(session_builder),
        ..SchedulerConfig::default()
    };
    let addr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e: std::net::AddrParseError| ClusterError::InvalidAddress {
            addr: format!("{}:{}", opts.bind_host, opts.port),
            reason: e.to_string(),
        })?;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(err)?;
    ballista_scheduler::scheduler_process::start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(err)
}

/// Options of an executor process.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler's `host:port`.
    pub scheduler: String,
    /// Address to listen on.
    pub bind_host: String,
    /// Host name the scheduler and other executors reach this executor by.
    pub external_host: Option<String>,
    /// Port of the Arrow Flight service (shuffle and result reads).
    pub port: u16,
    /// Port of the gRPC service (task launches).
    pub grpc_port: u16,
    /// Tasks run at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Directory for shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
}

/// Run a Ballista executor that understands Quiver's plans until it fails or is stopped.
pub async fn run_executor(opts: ExecutorOptions) -> Result<(), ClusterError> {
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    let (scheduler_host, scheduler_port) = parse_address(&opts.scheduler, DEFAULT_SCHEDULER_PORT)?;
    // executors open the catalogs their tasks name (see catalogs::QuiverStoreRegistry)
    let spill = match &opts.work_dir {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir(),
    };
    let runtime_producer: ballista_core::RuntimeProducer = Arc::new(move |_config| {
        Ok(Arc::new(
            datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
                .with_temp_file_path(spill.clone())
                .with_object_store_registry(Arc::new(catalogs::QuiverStoreRegistry::default()))
                .build()?,
        ))
    });
    let mut functions = ballista_core::registry::BallistaFunctionRegistry::default();
    for f in quiver_sql::asset_fn::length_udfs() {
        let f = Arc::new(f);
        for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
            functions
                .scalar_functions
                .insert(name.to_string(), Arc::clone(&f));
        }
    }
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host,
        external_host: opts.external_host,
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.concurrent_tasks,
        work_dir: opts.work_dir,
        executor_heartbeat_interval_seconds: 5,
        override_logical_codec: Some(Arc::new(QuiverLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(QuiverPhysicalCodec::default())),
        override_runtime_producer: Some(runtime_producer),
        override_function_registry: Some(Arc::new(functions)),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|source| ClusterError::Ballista {
            role: "executor",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let ok = |a: &str| parse_address(a, 50050).expect(a);
        assert_eq!(ok("localhost"), ("localhost".into(), 50050));
        assert_eq!(ok("127.0.0.1:6000"), ("127.0.0.1".into(), 6000));
        assert_eq!(ok("df://h:7"), ("h".into(), 7));
        assert_eq!(ok("http://h:8/"), ("h".into(), 8));
        for bad in ["", "df://", ":7", "h:x", "h:70000"] {
            assert!(parse_address(bad, 1).is_err(), "{bad}");
        }
    }
}
