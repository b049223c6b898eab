//! `quiver-flight`: one gRPC server for trainers and BI tools.
//!
//! - **Flight SQL** ([`server::QuiverFlightSql`]): statements (with Quiver's SQL extensions),
//!   prepared statements with parameters, catalog metadata — what ADBC and JDBC drivers use.
//! - **Quiver commands** ([`service::QuiverFlight`]), JSON in descriptors, tickets and action
//!   bodies: sharded reads pinned to one commit for data-parallel trainers (with lineage of
//!   the run), DoPut writes as one commit, DoAction branch/tag/commit/merge.
//! - Bearer tokens (read-only / read-write, kept hashed; writes are recorded as the token's
//!   name) and optional TLS ([`serve`]).
//! - No state between calls ([`handle`]): statement tickets carry the statement and the
//!   commits it read, prepared-statement handles the statement and its parameters, so any
//!   server on the catalog answers them, after a restart too. The server that made a
//!   statement's FlightInfo keeps its plan briefly for the DoGet of its ticket ([`plans`]);
//!   a miss plans again.
//! - Bounds on what a request or caller may cost ([`ServerLimits`]: tickets, shards,
//!   FlightInfo and statement sizes, call timeout, calls and streams per connection, message
//!   size), and one error → gRPC code map with messages safe to send ([`error`]).

pub mod auth;
pub mod command;
pub mod doget;
pub mod error;
pub mod handle;
mod ingest;
pub mod like;
pub mod limits;
mod plans;
pub mod read;
pub mod server;
pub mod service;
mod session;
mod wire;
pub mod xdbc;

use std::net::SocketAddr;
use std::time::Duration;

use quiver_core::Catalog;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use auth::{AuthLayer, Caller, Role, Tokens};
pub use doget::DoGetRouter;
pub use error::{FlightError, Result};
pub use limits::ServerLimits;
pub use server::QuiverFlightSql;
pub use service::QuiverFlight;

/// TLS certificate and key (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub tokens: Tokens,
    pub tls: Option<TlsFiles>,
    /// What one request or caller may cost the server.
    pub limits: ServerLimits,
    /// Applied to every SQL session's DataFusion state (e.g. queries on a cluster).
    pub state_hook: Option<quiver_sql::StateHook>,
    /// Flight URLs of the servers of this catalog (this one included) that trainer reads
    /// spread their shards over: shard `i` names `replicas[i % n]` as its endpoint's
    /// location. Empty: endpoints name no location (read from the server asked).
    pub replicas: Vec<String>,
}

/// A bound, not yet serving, server: bind first so the caller learns the port (`:0`).
pub struct Bound {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Bind `addr` (use port 0 for any free port).
pub async fn bind(addr: &str) -> Result<Bound> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| FlightError::Io {
            path: addr.to_string(),
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| FlightError::Io {
        path: "listener".into(),
        source: e,
    })?;
    Ok(Bound { listener, addr })
}

fn read_file(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| FlightError::Io {
        path: path.to_string(),
        source: e,
    })
}

/// The connections of a bound listener, with `TCP_NODELAY` set. The builder's
/// `tcp_nodelay` does not reach connections from a listener of our own; without it Nagle's
/// algorithm holds every small response until the client's delayed ACK (~40 ms per call on
/// Linux loopback).
fn incoming(bound: Bound) -> TcpIncoming {
    TcpIncoming::from(bound.listener).with_nodelay(Some(true))
}

/// Serve `catalog` on a bound listener until `shutdown` resolves; in-flight calls are
/// allowed to finish.
pub async fn serve(
    catalog: Catalog,
    bound: Bound,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let limits = opts.limits.clone();
    let mut sql = QuiverFlightSql::with_limits(catalog, opts.tokens.clone(), opts.limits)?;
    if let Some(hook) = opts.state_hook {
        sql = sql.with_state_hook(hook);
    }
    if !opts.replicas.is_empty() {
        sql = sql.with_replicas(opts.replicas);
    }
    let svc = tower_layer::Layer::layer(
        &AuthLayer::new(opts.tokens),
        DoGetRouter::new(QuiverFlight::new(sql), limits.max_message_bytes),
    );
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .timeout(limits.call_timeout)
        .concurrency_limit_per_connection(limits.max_calls_per_connection.max(1))
        .max_concurrent_streams(Some(limits.max_streams_per_connection.max(1)));
    if let Some(tls) = &opts.tls {
        let identity = Identity::from_pem(read_file(&tls.cert)?, read_file(&tls.key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(FlightError::from)?;
    }
    builder
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming(bound), shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    /// Accepted connections have Nagle's algorithm off.
    #[tokio::test]
    async fn connections_are_nodelay() {
        let bound = bind("127.0.0.1:0").await.expect("bind");
        let addr = bound.local_addr();
        let mut inc = incoming(bound);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let conn = inc.next().await.expect("a connection").expect("accepted");
        assert!(conn.nodelay().expect("socket option"));
    }
}
