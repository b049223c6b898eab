//! `quiver serve`: the Arrow Flight / Flight SQL server over a catalog.

use clap::Args;
use quiver_core::{Catalog, VersionSpec};
use quiver_flight::{ServeOptions, TlsFiles, Tokens};

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
    let bound = quiver_flight::bind(&a.addr).await?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    let url = format!("{scheme}://{}", bound.local_addr());
    println!("quiver serve: listening on {url}");
    println!(
        "quiver serve: catalog {catalog_url}; datasets: {}; auth: {}",
        cat.list_datasets().await?.join(", "),
        if tokens.enabled() {
            "bearer tokens"
        } else {
            "off (open server)"
        }
    );
    println!(
        "quiver serve: try  python -c \"import quiver; print(quiver.connect('{url}').sql(\\\"SELECT class, count(*) FROM demo AS OF TAG 'v1' GROUP BY class ORDER BY 2 DESC LIMIT 5\\\"))\""
    );
    let opts = ServeOptions { tokens, tls };
    quiver_flight::serve(cat.clone(), bound, opts, shutdown_signal()).await?;
    println!("quiver serve: stopped");
    Ok(())
}
