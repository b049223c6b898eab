//! `quiver cluster scheduler|executor`: an Apache DataFusion Ballista cluster that runs
//! Quiver SQL (see docs/SCALE.md).

use clap::{Args, Subcommand};
use quiver_cluster::{ExecutorOptions, SchedulerOptions};

use crate::CliError;

/// What `quiver cluster --help` says (the subcommand's one-line summary stays in main.rs).
pub const LONG_ABOUT: &str = "Start the processes of an Apache DataFusion Ballista cluster \
that runs the queries of `quiver sql --cluster HOST:PORT` and `quiver serve --cluster HOST:PORT`.

One scheduler, then any number of executors that register with it. Every process opens the \
catalogs that queries name itself: the same local path (a shared file system) or the same \
s3:// URL, with its own AWS_* settings; no credential travels in a plan. RUST_LOG=debug shows \
the stage plans and task assignments.

Example, on one machine:
  quiver cluster scheduler --port 25050 &
  quiver cluster executor --scheduler 127.0.0.1:25050 --port 25061 --grpc-port 25062 &
  quiver cluster executor --scheduler 127.0.0.1:25050 --port 25071 --grpc-port 25072 &
  quiver cluster wait --scheduler 127.0.0.1:25050 --executors 2
  quiver --catalog s3://bucket/labels sql --cluster 127.0.0.1:25050 -c \"SELECT count(*) FROM demo\"

See docs/SCALE.md for what runs where.";

/// `quiver cluster` (see [`LONG_ABOUT`]).
#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Run a scheduler: plans distributed queries and hands their tasks to executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Port to listen on (clients use --cluster HOST:PORT).
        #[arg(long, default_value_t = quiver_cluster::DEFAULT_SCHEDULER_PORT)]
        port: u16,
        /// Host name executors and clients reach this scheduler by.
        #[arg(long, default_value = "localhost")]
        external_host: String,
    },
    /// Run an executor: registers with the scheduler and runs the tasks it is given.
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:25050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Host name the scheduler and clients reach this executor by (default: --bind).
        #[arg(long)]
        external_host: Option<String>,
        /// Port of the executor's Arrow Flight service (results and shuffle data).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// Port of the executor's gRPC service (task launches).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (0: one per core).
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// Directory for intermediate (shuffle) files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<String>,
    },
    /// Wait until the scheduler answers and has at least N executors registered (for
    /// scripts: instead of a `sleep` after starting the processes). Fails, naming what the
    /// scheduler had, when --timeout passes first. A distributed query waits for a first
    /// executor by itself, up to 30 s.
    Wait {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:25050")]
        scheduler: String,
        /// Executors to wait for.
        #[arg(long, default_value_t = 1)]
        executors: usize,
        /// Seconds to wait at most.
        #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
        timeout: f64,
    },
}

/// Run `quiver cluster …` until the process fails or is stopped.
pub async fn run(a: ClusterArgs) -> Result<(), CliError> {
    // Ballista reports jobs, tasks and failures through `log`: on stderr, RUST_LOG to
    // change the level (default: info; `wait` only prints its answer)
    let level = match a.command {
        ClusterCommand::Wait { .. } => "warn",
        _ => "info",
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .try_init();
    match a.command {
        ClusterCommand::Wait {
            scheduler,
            executors,
            timeout,
        } => {
            let timeout = std::time::Duration::try_from_secs_f64(timeout).map_err(|_| {
                CliError::Usage(format!(
                    "--timeout {timeout}: expected a number of seconds, 0 or more"
                ))
            })?;
            let n = quiver_cluster::wait_for_executors(&scheduler, executors, timeout).await?;
            println!("quiver cluster: {n} executor(s) registered with {scheduler}");
        }
        ClusterCommand::Scheduler {
            bind,
            port,
            external_host,
        } => {
            println!("quiver cluster: scheduler listening on {bind}:{port}");
            quiver_cluster::run_scheduler(SchedulerOptions {
                bind_host: bind,
                port,
                external_host,
            })
            .await?
        }
        ClusterCommand::Executor {
            scheduler,
            bind,
            external_host,
            port,
            grpc_port,
            concurrent_tasks,
            work_dir,
        } => {
            println!("quiver cluster: executor on {bind}:{port} (gRPC {grpc_port}), scheduler {scheduler}");
            quiver_cluster::run_executor(ExecutorOptions {
                scheduler,
                bind_host: bind,
                external_host,
                port,
                grpc_port,
                concurrent_tasks,
                work_dir,
            })
            .await?
        }
    }
    Ok(())
}

/// The session hook of `--cluster ADDR`: queries over datasets run on that scheduler.
pub fn hook(addr: &str) -> Result<quiver_sql::StateHook, CliError> {
    // refuse a malformed address now, not at the first query
    quiver_cluster::parse_address(addr, quiver_cluster::DEFAULT_SCHEDULER_PORT)?;
    let addr = addr.to_string();
    Ok(quiver_sql::StateHook(std::sync::Arc::new(move |state| {
        quiver_cluster::connect_session(state, &addr)
    })))
}
