//! `quiver serve`: the Arrow Flight / Flight SQL server over a catalog.

use clap::Args;
use quiver_core::{Catalog, VersionSpec};
use quiver_flight::{ServeOptions, ServerLimits, TlsFiles, Tokens};

use crate::CliError;

#[derive(Args)]
#[command(long_about = "Serve the catalog over Arrow Flight and Flight SQL.\n\n\
BI tools and ADBC/JDBC Flight SQL drivers connect to grpc://ADDR and send SQL (including\n\
AS OF, DIFF, CREATE BRANCH, MERGE). Trainers use the Python client (pip install ./python):\n\
  import quiver; q = quiver.connect(\"grpc://127.0.0.1:50051\")\n\
  q.sql(\"SELECT count(*) FROM demo AS OF TAG 'v1'\")\n\n\
On a catalog with no dataset, a demo dataset 'demo' (with tag v1) is written first unless\n\
--no-demo is given. Without --tokens/QUIVER_TOKENS the server is open: keep it on loopback.")]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// Token file: one `TOKEN ROLE [NAME]` per line, ROLE `ro` (read-only) or `rw`.
    #[arg(long)]
    tokens: Option<String>,
    /// Tokens as `TOKEN:ROLE[:NAME]`, comma-separated (added to --tokens).
    #[arg(long, env = "QUIVER_TOKENS", hide_env_values = true)]
    tokens_env: Option<String>,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Do not create the demo dataset on an empty catalog.
    #[arg(long)]
    no_demo: bool,
    /// Labels in the demo dataset created on an empty catalog.
    #[arg(long, default_value_t = 100_000)]
    demo_rows: u64,
    /// Run SQL queries over datasets on a Ballista cluster: the scheduler's HOST:PORT
    /// (see `quiver cluster --help`). Trainer reads (DoGet), writes and metadata calls are
    /// still served by this process.
    #[arg(long, value_name = "HOST:PORT", env = "QUIVER_CLUSTER")]
    cluster: Option<String>,
    /// Flight URL of a server of this catalog (repeat it for each; include this server's
    /// own): trainer reads name them as their shards' locations, shard i on the i-th mod N,
    /// so the DoGets of a many-GPU job spread over the replicas. Tickets carry everything
    /// they need, so any replica reads any shard, pinned to the same commit.
    #[arg(long = "replica", value_name = "URL")]
    replicas: Vec<String>,
    /// Memory for verified pack bytes, in MiB (local catalogs; 0: off): reads of what was
    /// read before (a trainer's next epoch, a dashboard's next refresh) are served from it
    /// without a disk read or checksum. A pack rewritten by an erasure is never served from
    /// it.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    read_cache_mb: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

/// What one request or caller may cost the server; over a limit a call fails with
/// RESOURCE_EXHAUSTED naming the flag.
#[derive(Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Most shards one trainer read may ask for.
    #[arg(long, default_value_t = ServerLimits::default().max_shards)]
    max_shards: u32,
    /// Largest FlightInfo of a trainer read, in bytes (shards × ticket size; each ticket
    /// repeats the columns and filter); also the largest statement ticket and
    /// prepared-statement handle.
    #[arg(long, default_value_t = ServerLimits::default().max_flight_info_bytes)]
    max_flight_info_bytes: usize,
    /// Largest SQL statement or read filter accepted, in bytes (checked before parsing).
    #[arg(long, default_value_t = ServerLimits::default().max_statement_bytes)]
    max_statement_bytes: usize,
    /// Seconds a call may take to answer (a response already streaming is not cut).
    #[arg(long, default_value_t = ServerLimits::default().call_timeout.as_secs())]
    call_timeout_secs: u64,
    /// Calls served at once per connection (more wait their turn).
    #[arg(long, default_value_t = ServerLimits::default().max_calls_per_connection)]
    max_calls_per_connection: usize,
    /// HTTP/2 streams a client may open at once per connection.
    #[arg(long, default_value_t = ServerLimits::default().max_streams_per_connection)]
    max_streams_per_connection: u32,
    /// Largest gRPC message received (DoPut batches, descriptors, actions), in bytes.
    #[arg(long, default_value_t = ServerLimits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Deepest expression nesting in a statement or read filter (an OR chain nests one
    /// level per term; write long lists as `col IN (…)`).
    #[arg(long, default_value_t = ServerLimits::default().max_expr_depth)]
    max_expr_depth: usize,
    /// Most expression nodes in one statement or read filter.
    #[arg(long, default_value_t = ServerLimits::default().max_expr_nodes)]
    max_expr_nodes: usize,
    /// Memory all queries together may hold, in bytes; sorts and aggregations spill to
    /// disk past it, other operators fail with RESOURCE_EXHAUSTED [default: half of RAM].
    #[arg(long)]
    memory_limit_bytes: Option<usize>,
}

impl LimitArgs {
    /// The limits these flags set; zero is refused where it would make the server useless.
    fn limits(&self) -> Result<ServerLimits, CliError> {
        let positive = [
            ("--max-shards", u64::from(self.max_shards)),
            ("--max-flight-info-bytes", self.max_flight_info_bytes as u64),
            ("--max-statement-bytes", self.max_statement_bytes as u64),
            ("--call-timeout-secs", self.call_timeout_secs),
            (
                "--max-calls-per-connection",
                self.max_calls_per_connection as u64,
            ),
            (
                "--max-streams-per-connection",
                u64::from(self.max_streams_per_connection),
            ),
            ("--max-message-bytes", self.max_message_bytes as u64),
            ("--max-expr-depth", self.max_expr_depth as u64),
            ("--max-expr-nodes", self.max_expr_nodes as u64),
            (
                "--memory-limit-bytes",
                self.memory_limit_bytes.map_or(1, |b| b as u64),
            ),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(CliError::Usage(format!("{flag} must be at least 1")));
        }
        Ok(ServerLimits {
            max_shards: self.max_shards,
            max_flight_info_bytes: self.max_flight_info_bytes,
            max_statement_bytes: self.max_statement_bytes,
            call_timeout: std::time::Duration::from_secs(self.call_timeout_secs),
            max_calls_per_connection: self.max_calls_per_connection,
            max_streams_per_connection: self.max_streams_per_connection,
            max_message_bytes: self.max_message_bytes,
            max_expr_depth: self.max_expr_depth,
            max_expr_nodes: self.max_expr_nodes,
            memory_limit_bytes: self
                .memory_limit_bytes
                .unwrap_or_else(quiver_sql::options::default_memory_limit),
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("quiver serve: shutting down (finishing in-flight calls)");
}

pub async fn run(cat: &Catalog, catalog_url: &str, a: ServeArgs) -> Result<(), CliError> {
    let limits = a.limits.limits()?;
    let mut tokens = Tokens::open();
    if let Some(path) = &a.tokens {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read token file {path}: {e}")))?;
        tokens.extend(Tokens::parse_file(&text, path)?);
    }
    if let Some(env) = &a.tokens_env {
        tokens.extend(Tokens::parse_env(env, "QUIVER_TOKENS")?);
    }
    let tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    if !a.no_demo && cat.list_datasets().await?.is_empty() {
        crate::write_demo(cat, "demo", a.demo_rows, 42).await?;
        let ds = cat.dataset("demo").await?;
        ds.create_tag("v1", &VersionSpec::main()).await?;
        println!("quiver serve: demo dataset 'demo' with tag v1 written to {catalog_url}");
    }
    cat.set_read_cache(a.read_cache_mb.saturating_mul(1 << 20));
    let bound = quiver_flight::bind(&a.addr).await?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let url = format!("{scheme}://{}", bound.local_addr());
    println!("quiver serve: listening on {url}");
    let datasets = cat.list_datasets().await?;
    println!(
        "quiver serve: catalog {catalog_url}; datasets: {}; auth: {}",
        datasets.join(", "),
        if tokens.enabled() {
            "bearer tokens"
        } else {
            "off (open server)"
        }
    );
    println!(
        "quiver serve: try  python -c \"import quiver; print(quiver.connect('{url}').sql(\\\"{}\\\"))\"",
        try_query(&datasets)
    );
    for r in &a.replicas {
        let ok = ["grpc://", "grpc+tcp://", "grpc+tls://"]
            .iter()
            .any(|scheme| r.starts_with(scheme) && r.len() > scheme.len());
        if !ok {
            return Err(CliError::Usage(format!(
                "--replica {r:?}: expected a Flight URL such as grpc://host:50051 or \
                 grpc+tls://host:50051"
            )));
        }
    }
    let state_hook = a
        .cluster
        .as_deref()
        .map(crate::cluster_cmd::hook)
        .transpose()?;
    let opts = ServeOptions {
        tokens,
        tls,
        limits,
        state_hook,
        replicas: a.replicas.clone(),
    };
    quiver_flight::serve(cat.clone(), bound, opts, shutdown_signal()).await?;
    println!("quiver serve: stopped");
    Ok(())
}

/// The statement the start-up hint suggests: the demo's class counts when the catalog
/// has the demo dataset, else a count of its first dataset whose name is a plain SQL
/// identifier, else `SHOW TABLES`.
fn try_query(datasets: &[String]) -> String {
    if datasets.iter().any(|d| d == "demo") {
        return "SELECT class, count(*) FROM demo AS OF TAG 'v1' GROUP BY class ORDER BY 2 DESC LIMIT 5"
            .to_string();
    }
    let plain = |d: &&String| {
        let mut c = d.chars();
        c.next().is_some_and(|f| f.is_ascii_lowercase() || f == '_')
            && c.all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    };
    match datasets.iter().find(plain) {
        Some(d) => format!("SELECT count(*) FROM {d}"),
        None => "SHOW TABLES".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::try_query;

    #[test]
    fn the_start_up_hint_names_a_dataset_the_catalog_has() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(try_query(&names(&["labels", "demo"])).contains("FROM demo AS OF TAG 'v1'"));
        assert_eq!(
            try_query(&names(&["Odd-Name", "labels"])),
            "SELECT count(*) FROM labels"
        );
        assert_eq!(try_query(&names(&["Odd-Name"])), "SHOW TABLES");
        assert_eq!(try_query(&[]), "SHOW TABLES");
    }
}
