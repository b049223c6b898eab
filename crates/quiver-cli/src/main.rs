//! `quiver`: the command-line tool of Quiver, a versioned dataset engine for ML label data.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

/// mimalloc: the server's and importer's hot paths allocate many small objects (layout
/// records, DataFusion's per-batch arrays) on many threads, where glibc's per-thread arenas
/// grow by page faults; the same choice as DataFusion's own CLI.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cluster_cmd;
mod erase_cmd;
mod fsck_cmd;
mod gc_cmd;
mod io_cmd;
mod merge_cmd;
mod rewind_cmd;
mod serve_cmd;
mod sql_cmd;
use indicatif::{ProgressBar, ProgressStyle};
use quiver_core::{demo, Catalog, CoreError, StoreOptions, VersionSpec};

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "Versioned label datasets: branches, tags, commits, diffs — git semantics for ML label data",
    long_about = "Quiver keeps computer-vision label datasets under version control at the storage layer.\n\
Every write is a commit on a branch; tags pin versions forever; diffs cost what changed.\n\n\
Start with:\n  quiver --catalog ./quiver-data quickstart\n  quiver --catalog ./quiver-data log demo"
)]
struct Cli {
    /// Catalog location: a local directory, file://…, memory:// or s3://bucket/prefix.
    ///
    /// An s3:// catalog is configured by the environment: AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN for temporary credentials), AWS_REGION
    /// (AWS_DEFAULT_REGION), AWS_ENDPOINT_URL for an S3-compatible server (MinIO, Ceph,
    /// moto) and AWS_ALLOW_HTTP=true when it speaks plain http.
    #[arg(
        long,
        global = true,
        env = "QUIVER_CATALOG",
        default_value = "./quiver-data"
    )]
    catalog: String,
    /// Make every write durable on local disk (fsync of each file and its directory before
    /// the ref that names it is created). Off only for throwaway catalogs and benchmarks.
    #[arg(
        long,
        global = true,
        env = "QUIVER_SYNC",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "true|false"
    )]
    sync: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Io(io_cmd::IoCommand),
    /// Run SQL over every version: AS OF, DIFF, CREATE BRANCH/TAG, MERGE, DML (-c or a shell).
    Sql(sql_cmd::SqlArgs),
    /// Serve the catalog over Arrow Flight and Flight SQL (trainers, ADBC/JDBC, BI tools).
    Serve(serve_cmd::ServeArgs),
    /// Run a Ballista scheduler or executor for distributed SQL (`sql --cluster`, `serve --cluster`), or wait for one.
    #[command(long_about = cluster_cmd::LONG_ABOUT)]
    Cluster(cluster_cmd::ClusterArgs),
    /// Merge a branch, tag or version into a branch (three-way, conflicts surfaced).
    Merge(merge_cmd::MergeArgs),
    /// Undo one commit's changes with a new commit on a branch (history is kept).
    Revert(rewind_cmd::RevertArgs),
    /// Give a branch the content of another version with a new commit (history is kept).
    Reset(rewind_cmd::ResetArgs),
    /// Verify the catalog: dangling refs, corrupt or missing objects, half-created datasets, orphans.
    #[command(long_about = fsck_cmd::LONG_ABOUT)]
    Fsck(fsck_cmd::FsckArgs),
    /// Delete commits, layouts, bases, deltas, packs and assets no live version needs (VACUUM).
    Gc(gc_cmd::GcArgs),
    /// Erase labels from every version (privacy requests): commit ids and hashes stay.
    Erase(erase_cmd::EraseArgs),
    /// Create the catalog (idempotent).
    Init,
    /// Create the catalog and a demo dataset (if missing), then show its history.
    Quickstart {
        /// Labels in the demo dataset.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
    },
    /// Write a deterministic synthetic CV label dataset (COCO classes, boxes, reviews).
    Demo {
        /// Number of labels to generate.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Dataset name.
        #[arg(long, default_value = "demo")]
        dataset: String,
        /// Seed of the generator (same seed + rows = same data).
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// List datasets, or drop one (its refs go at once; its data stays until `quiver gc`).
    Datasets {
        /// Drop the dataset with this name.
        #[arg(long, value_name = "DATASET")]
        drop: Option<String>,
    },
    /// Show or change a dataset's metadata (and its columns'): notes kept with the dataset
    /// outside its versions, no commit made.
    ///
    /// Values are stored as JSON when they parse as JSON (numbers, true/false, quoted
    /// strings, objects), else as strings. Examples:
    ///   quiver metadata demo
    ///   quiver metadata demo --set owner=vision-team --set fps=30
    ///   quiver metadata demo --column bbox_x --set unit="fraction of width"
    ///   quiver metadata demo --unset fps
    Metadata {
        dataset: String,
        /// Set or remove entries of this column instead of the dataset's.
        #[arg(long)]
        column: Option<String>,
        /// Set KEY=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove KEY (repeatable).
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
    },
    /// Show the commit history of a branch (newest first).
    Log {
        dataset: String,
        #[arg(long, default_value = "main")]
        branch: String,
        /// Show at most this many commits.
        #[arg(short = 'n', long)]
        limit: Option<usize>,
    },
    /// List branches of a dataset (with protection and pre-merge checks), or create, delete,
    /// rename, protect or unprotect one.
    Branch {
        dataset: String,
        /// Create a branch with this name.
        #[arg(long)]
        create: Option<String>,
        /// Version to branch from: a branch, tag or commit id prefix (default: main).
        #[arg(long, default_value = "main")]
        from: String,
        /// Delete the branch with this name.
        #[arg(long, conflicts_with = "create")]
        delete: Option<String>,
        /// Rename the branch with this name (to --to); main cannot be renamed.
        #[arg(long, conflicts_with_all = ["create", "delete"], requires = "to")]
        rename: Option<String>,
        /// The new name of --rename.
        #[arg(long, requires = "rename")]
        to: Option<String>,
        /// Protect the branch with this name: it then changes only by merges (pre-merge
        /// checks: ALTER BRANCH b ON ds ADD CHECK name AS 'query' in `quiver sql`).
        #[arg(long, value_name = "BRANCH", conflicts_with_all = ["create", "delete", "rename", "unprotect"])]
        protect: Option<String>,
        /// Lift the protection of the branch with this name.
        #[arg(long, value_name = "BRANCH", conflicts_with_all = ["create", "delete", "rename"])]
        unprotect: Option<String>,
    },
    /// List tags of a dataset, or create/delete/rename one.
    Tag {
        dataset: String,
        /// Create a tag with this name.
        #[arg(long)]
        create: Option<String>,
        /// Version to tag: a branch, tag or commit id prefix (default: main).
        #[arg(long, default_value = "main")]
        at: String,
        /// Delete the tag with this name.
        #[arg(long, conflicts_with = "create")]
        delete: Option<String>,
        /// Rename the tag with this name (to --to).
        #[arg(long, conflicts_with_all = ["create", "delete"], requires = "to")]
        rename: Option<String>,
        /// The new name of --rename.
        #[arg(long, requires = "rename")]
        to: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Sql(#[from] quiver_sql::SqlError),
    #[error(transparent)]
    Flight(#[from] quiver_flight::FlightError),
    #[error(transparent)]
    Cluster(#[from] quiver_cluster::ClusterError),
    #[error("{0}")]
    Usage(String),
    /// A merge stopped on conflicts (already reported on stdout): exit status 2.
    #[error("the merge stopped on {0} conflicting labels; nothing was committed")]
    MergeConflicts(u64),
    /// A merge preview found conflicts (already reported on stdout): exit status 2.
    #[error("the merge would stop on {0} conflicting labels (preview: nothing was written)")]
    WouldConflict(u64),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(quiver_sql::options::RUNTIME_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // the command's own future runs on a thread with the same stack as the workers, not
    // on the main thread's smaller one
    let outcome = std::thread::Builder::new()
        .name("quiver-main".into())
        .stack_size(quiver_sql::options::RUNTIME_STACK_BYTES)
        .spawn(move || runtime.block_on(run(cli)))
        .map(|t| t.join());
    match outcome {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(
            e @ (CliError::MergeConflicts(_)
            | CliError::WouldConflict(_)
            | CliError::Core(CoreError::RevertConflicts { .. })),
        ))) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Ok(Ok(Err(e))) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    // cluster processes open the catalogs their plans name, not --catalog
    if let Command::Cluster(a) = cli.command {
        return cluster_cmd::run(a).await;
    }
    let cat = Catalog::open_with(&cli.catalog, StoreOptions { sync: cli.sync }).await?;
    // merges run the pre-merge checks of their target branch as SQL
    quiver_sql::checks::install(&cat);
    match cli.command {
        Command::Io(c) => io_cmd::run(&cat, c).await?,
        Command::Cluster(_) => unreachable!("handled before the catalog is opened"),
        Command::Merge(a) => match merge_cmd::run(&cat, a).await? {
            merge_cmd::Outcome::Done => {}
            merge_cmd::Outcome::Conflicts(n) => return Err(CliError::MergeConflicts(n)),
            merge_cmd::Outcome::WouldConflict(n) => return Err(CliError::WouldConflict(n)),
        },
        Command::Revert(a) => rewind_cmd::revert(&cat, a).await?,
        Command::Reset(a) => rewind_cmd::reset(&cat, a).await?,
        Command::Gc(a) => gc_cmd::run(&cat, a).await?,
        Command::Erase(a) => erase_cmd::run(&cat, a).await?,
        Command::Sql(a) => sql_cmd::run(&cat, a).await?,
        Command::Serve(a) => serve_cmd::run(&cat, &cli.catalog, a).await?,
        Command::Fsck(a) => fsck_cmd::run(&cat, a).await?,
        Command::Init => println!("catalog ready at {}", cli.catalog),
        Command::Quickstart { rows } => {
            if !cat.list_datasets().await?.contains(&"demo".to_string()) {
                write_demo(&cat, "demo", rows, 42).await?;
                let ds = cat.dataset("demo").await?;
                ds.create_tag("v1", &VersionSpec::main()).await?;
            }
            let ds = cat.dataset("demo").await?;
            print_log(&ds, "main", Some(10)).await?;
            println!(
                "\ncatalog: {}\ndatasets: {}",
                cli.catalog,
                cat.list_datasets().await?.join(", ")
            );
            println!("try:  quiver --catalog {} log demo", cli.catalog);
        }
        Command::Demo {
            rows,
            dataset,
            seed,
        } => write_demo(&cat, &dataset, rows, seed).await?,
        Command::Datasets { drop: Some(name) } => {
            cat.drop_dataset(&name).await?;
            println!("dropped dataset {name}");
        }
        Command::Datasets { drop: None } => {
            for name in cat.list_datasets().await? {
                let ds = cat.dataset(&name).await?;
                let head = ds.head("main").await?;
                println!(
                    "{name}\t{} labels\tmain @ {}",
                    head.num_rows().await?,
                    head.commit().short_id()
                );
            }
        }
        Command::Metadata {
            dataset,
            column,
            set,
            unset,
        } => {
            let ds = cat.dataset(&dataset).await?;
            let mut changes: Vec<(String, Option<serde_json::Value>)> = Vec::new();
            for kv in &set {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(CliError::Usage(format!("--set {kv}: expected KEY=VALUE")));
                };
                let value = serde_json::from_str(v)
                    .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
                changes.push((k.to_string(), Some(value)));
            }
            changes.extend(unset.iter().map(|k| (k.clone(), None)));
            for (k, v) in &changes {
                match &column {
                    None => ds.set_metadata(k, v.clone()).await?,
                    Some(c) => ds.set_column_metadata(c, k, v.clone()).await?,
                }
            }
            if column.is_some() && changes.is_empty() {
                // validate the column even when only reading
                ds.column_metadata(column.as_deref().unwrap_or_default())
                    .await?;
            }
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut lines = Vec::new();
            if column.is_none() {
                for (k, v) in ds.metadata().await? {
                    lines.push(format!("{k}\t{}", text(&v)));
                }
            }
            for f in ds.schema().fields() {
                if column.as_deref().is_some_and(|c| c != f.name()) {
                    continue;
                }
                for (k, v) in ds.column_metadata(f.name()).await? {
                    lines.push(format!("{}.{k}\t{}", f.name(), text(&v)));
                }
            }
            if lines.is_empty() {
                println!("(no metadata)");
            }
            for l in lines {
                println!("{l}");
            }
        }
        Command::Log {
            dataset,
            branch,
            limit,
        } => {
            let ds = cat.dataset(&dataset).await?;
            print_log(&ds, &branch, limit).await?;
        }
        Command::Branch {
            dataset,
            create,
            from,
            delete,
            rename,
            to,
            protect,
            unprotect,
        } => {
            let ds = cat.dataset(&dataset).await?;
            if let Some(name) = protect.as_ref().or(unprotect.as_ref()) {
                let on = protect.is_some();
                ds.set_branch_protected(name, on).await?;
                if on {
                    println!("protected branch {name}: it changes only by merges");
                } else {
                    println!("branch {name} is no longer protected");
                }
            } else if let (Some(old), Some(new)) = (&rename, &to) {
                let r = ds.rename_branch(old, new).await?;
                println!(
                    "renamed branch {old} to {new} at {}",
                    &r.commit.to_hex()[..12]
                );
            } else if let Some(name) = create {
                let c = ds.resolve_loose(&from).await?;
                ds.create_branch(&name, &VersionSpec::Version(c.id.to_hex()))
                    .await?;
                println!("created branch {name} at {}", c.short_id());
            } else if let Some(name) = delete {
                ds.delete_branch(&name).await?;
                println!("deleted branch {name}");
            } else {
                let settings = ds.all_branch_settings().await?;
                for b in ds.branches().await? {
                    let mut line = format!("{}\t{}", b.name, &b.commit.to_hex()[..12]);
                    if let Some(s) = settings.get(&b.name) {
                        if s.protected {
                            line += "\tprotected";
                        }
                        if !s.checks.is_empty() {
                            let names: Vec<&str> =
                                s.checks.iter().map(|c| c.name.as_str()).collect();
                            line += &format!("\tchecks: {}", names.join(", "));
                        }
                    }
                    println!("{line}");
                }
            }
        }
        Command::Tag {
            dataset,
            create,
            at,
            delete,
            rename,
            to,
        } => {
            let ds = cat.dataset(&dataset).await?;
            if let (Some(old), Some(new)) = (&rename, &to) {
                let r = ds.rename_tag(old, new).await?;
                println!("renamed tag {old} to {new} at {}", &r.commit.to_hex()[..12]);
            } else if let Some(name) = create {
                let c = ds.resolve_loose(&at).await?;
                ds.create_tag(&name, &VersionSpec::Version(c.id.to_hex()))
                    .await?;
                println!("created tag {name} at {}", c.short_id());
            } else if let Some(name) = delete {
                ds.delete_tag(&name).await?;
                println!("deleted tag {name}");
            } else {
                for t in ds.tags().await? {
                    println!("{}\t{}", t.name, &t.commit.to_hex()[..12]);
                }
            }
        }
    }
    Ok(())
}

async fn print_log(
    ds: &quiver_core::Dataset,
    branch: &str,
    limit: Option<usize>,
) -> Result<(), CliError> {
    let tags = ds.tags().await?;
    let hist = ds.history(branch).await?;
    for c in hist.iter().take(limit.unwrap_or(usize::MAX)) {
        let s = &c.data.summary;
        let names: Vec<&str> = tags
            .iter()
            .filter(|t| t.commit == c.id)
            .map(|t| t.name.as_str())
            .collect();
        let tag = if names.is_empty() {
            String::new()
        } else {
            format!(" (tag: {})", names.join(", "))
        };
        println!(
            "{}{tag}  {}  {}  {}\n    {}: +{} -{} ~{} groups, +{} -{} ~{} labels",
            c.short_id(),
            c.data.timestamp.format("%Y-%m-%d %H:%M:%S"),
            c.data.author,
            c.data.message,
            s.operation,
            s.groups_added,
            s.groups_removed,
            s.groups_modified,
            s.labels_added,
            s.labels_removed,
            s.labels_modified
        );
    }
    Ok(())
}

pub(crate) async fn write_demo(
    cat: &Catalog,
    name: &str,
    rows: u64,
    seed: u64,
) -> Result<(), CliError> {
    if rows == 0 {
        return Err(CliError::Usage("--rows must be at least 1".into()));
    }
    let started = Instant::now();
    // built as one transaction that creates the dataset when it commits: a demo killed
    // midway leaves no dataset (only invisible leftovers), never an empty or partial one
    let mut txn = cat
        .begin_dataset(name, demo::schema(), demo::options())
        .await?;
    let bar = ProgressBar::new(rows);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} labels ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("generating {name}"));
    for batch in demo::DemoLabels::new(rows, seed) {
        txn.append(&batch).await?;
        bar.inc(batch.num_rows() as u64);
    }
    bar.set_message("committing");
    let c = txn
        .commit(&format!("demo data: {rows} labels (seed {seed})"))
        .await?;
    bar.finish_and_clear();
    println!(
        "dataset {name}: {} labels in {} samples, commit {} ({:.1}s)",
        c.data.summary.labels_added,
        c.data.summary.groups_added,
        c.short_id(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
