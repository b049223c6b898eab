//! `quiver import`, `quiver export` and `quiver assets`: getting labels and images in and out.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use quiver_core::import::export::{
    export_coco, export_parquet, export_yolo, ExportOptions, ExportReport,
};
use quiver_core::import::tabular::{import_csv, import_parquet, TableKeys};
use quiver_core::import::{coco, yolo, ImportOptions, ImportReport, Progress};
use quiver_core::{Catalog, CoreError, GcOptions};

/// The import/export/asset commands (flattened into the top-level command list).
#[derive(Subcommand)]
pub enum IoCommand {
    /// Import labels (COCO, YOLO, Parquet, CSV) into a dataset branch as one commit.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Export any version (branch, tag or commit id) to Parquet or COCO JSON.
    #[command(subcommand)]
    Export(ExportCmd),
    /// The content-addressed asset store (images, masks).
    #[command(subcommand)]
    Assets(AssetsCmd),
}

/// Where an import writes.
#[derive(Args)]
pub struct Target {
    /// Dataset to import into (created if missing).
    #[arg(long, short = 'd')]
    pub dataset: String,
    /// Branch to commit to.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Commit message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Keep labels of the branch that the input no longer has (default: delete them, so
    /// the branch matches the file).
    #[arg(long)]
    pub keep_missing: bool,
}

/// `quiver import …`
#[derive(Subcommand)]
#[command(
    after_help = "Examples:\n  quiver import coco instances_val.json --dataset coco --images val2017/\n  quiver import yolo ./my-yolo --dataset boxes\n  quiver import csv labels.csv --dataset t --group-key image --label-key box\n\nRe-importing a changed file commits exactly the labels that changed."
)]
pub enum ImportCmd {
    /// COCO detection JSON: one label per annotation, samples keyed by file name.
    Coco {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// Folder of the image files: each is stored once in the asset store and labels
        /// carry its hash in `image_hash`.
        #[arg(long)]
        images: Option<PathBuf>,
    },
    /// YOLO folder: images/, labels/*.txt and a class names file.
    Yolo {
        dir: PathBuf,
        #[command(flatten)]
        target: Target,
        /// Class names file (default: classes.txt, obj.names or classes.names in DIR).
        #[arg(long)]
        classes: Option<PathBuf>,
    },
    /// Parquet file; the schema comes from the file.
    Parquet {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// Group key column (one sample).
        #[arg(long, default_value = "sample_id")]
        group_key: String,
        /// Label key column (one label within a sample).
        #[arg(long, default_value = "label_id")]
        label_key: String,
    },
    /// CSV file with a header row; the schema is inferred.
    Csv {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
        /// Group key column (one sample).
        #[arg(long, default_value = "sample_id")]
        group_key: String,
        /// Label key column (one label within a sample).
        #[arg(long, default_value = "label_id")]
        label_key: String,
    },
}

/// What an export reads.
#[derive(Args)]
pub struct Source {
    /// Dataset to export.
    #[arg(long, short = 'd')]
    pub dataset: String,
    /// Version: a branch, tag, commit id prefix or ~N.
    #[arg(long = "ref", default_value = "main")]
    pub reference: String,
}

/// `quiver export …`
#[derive(Subcommand)]
pub enum ExportCmd {
    /// Parquet file with the dataset's schema, rows sorted by key.
    Parquet {
        #[command(flatten)]
        source: Source,
        out: PathBuf,
    },
    /// COCO detection JSON.
    Coco {
        #[command(flatten)]
        source: Source,
        out: PathBuf,
        /// Also write every referenced image from the asset store into this folder.
        #[arg(long)]
        images: Option<PathBuf>,
    },
    /// YOLO folder: labels/<image>.txt (class x_center y_center width height per box) and
    /// classes.txt; re-importing it gives the same labels (stable label keys).
    Yolo {
        #[command(flatten)]
        source: Source,
        /// Folder to write (created if missing).
        out: PathBuf,
        /// Also write every referenced image from the asset store into <out>/images/.
        #[arg(long)]
        images: bool,
    },
}

/// `quiver assets …`
#[derive(Subcommand)]
pub enum AssetsCmd {
    /// Delete assets that no version reachable from any branch or tag references.
    Gc {
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Keep unreferenced assets younger than this many seconds (an import running
        /// at the same time may not have committed its labels yet).
        #[arg(long, default_value_t = 600)]
        grace_secs: u64,
    },
    /// Store a file in the asset store and print its hash.
    Put { file: PathBuf },
    /// Write an asset (verified) to a file.
    Get { hash: String, out: PathBuf },
    /// Erase an asset (a privacy request): its bytes are deleted although labels still name
    /// it, and a tombstone makes every read say when, by whom and why.
    Erase {
        hash: String,
        /// Why (recorded in the tombstone).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// An indicatif bar driven by import/export progress.
pub(crate) struct Bar {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    /// A bar with no phase yet (indicatif draws on stderr).
    pub(crate) fn new() -> Arc<Bar> {
        Arc::new(Bar {
            bar: Mutex::new(None),
        })
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = match total {
            Some(n) => {
                let b = ProgressBar::new(n);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            }
        };
        bar.set_message(name.to_string());
        *slot = Some(bar);
    }
    fn advance(&self, n: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(b) = slot.as_ref() {
                b.inc(n);
            }
        }
    }
    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(b) = slot.take() {
                b.finish_and_clear();
            }
        }
    }
}

fn options(t: &Target, bar: &Arc<Bar>) -> ImportOptions {
    let mut o = ImportOptions::new(&t.dataset)
        .branch(&t.branch)
        .progress(bar.clone());
    o.message = t.message.clone();
    o.delete_missing = !t.keep_missing;
    o
}

fn print_import(r: &ImportReport, dataset: &str, branch: &str, started: Instant) {
    let s = &r.commit.data.summary;
    let secs = started.elapsed().as_secs_f64();
    if r.created_dataset {
        println!("created dataset {dataset}");
    }
    if r.unchanged {
        println!(
            "{dataset}@{branch} already matches the input ({} labels in {} samples): nothing to commit (head {})",
            r.labels,
            r.samples,
            r.commit.short_id()
        );
        return;
    }
    println!(
        "imported {} labels in {} samples into {dataset}@{branch}: commit {} (+{} -{} ~{} labels) in {secs:.2}s ({:.0} labels/s)",
        r.labels,
        r.samples,
        r.commit.short_id(),
        s.labels_added,
        s.labels_removed,
        s.labels_modified,
        r.labels as f64 / secs.max(1e-9)
    );
    if r.assets > 0 {
        println!(
            "stored {} images ({:.1} MB) in the asset store",
            r.assets,
            r.asset_bytes as f64 / 1e6
        );
    }
}

fn print_export(r: &ExportReport, out: &std::path::Path) {
    print!(
        "exported {} labels of version {} to {}",
        r.labels,
        r.commit.short_id(),
        out.display()
    );
    if r.images > 0 {
        print!(" ({} images", r.images);
        if r.assets > 0 {
            print!(", {} image files written", r.assets);
        }
        print!(")");
    }
    println!();
}

/// Run an import/export/asset command.
pub async fn run(cat: &Catalog, cmd: IoCommand) -> Result<(), CoreError> {
    let bar = Bar::new();
    let started = Instant::now();
    match cmd {
        IoCommand::Import(ImportCmd::Coco {
            file,
            target,
            images,
        }) => {
            let mut o = options(&target, &bar);
            o.images = images;
            let r = coco::import(cat, &file, &o).await?;
            print_import(&r, &target.dataset, &target.branch, started);
        }
        IoCommand::Import(ImportCmd::Yolo {
            dir,
            target,
            classes,
        }) => {
            let o = options(&target, &bar);
            let r = yolo::import(cat, &dir, classes.as_deref(), &o).await?;
            print_import(&r, &target.dataset, &target.branch, started);
        }
        IoCommand::Import(ImportCmd::Parquet {
            file,
            target,
            group_key,
            label_key,
        }) => {
            let keys = TableKeys {
                group_key,
                label_key,
            };
            let r = import_parquet(cat, &file, &keys, &options(&target, &bar)).await?;
            print_import(&r, &target.dataset, &target.branch, started);
        }
        IoCommand::Import(ImportCmd::Csv {
            file,
            target,
            group_key,
            label_key,
        }) => {
            let keys = TableKeys {
                group_key,
                label_key,
            };
            let r = import_csv(cat, &file, &keys, &options(&target, &bar)).await?;
            print_import(&r, &target.dataset, &target.branch, started);
        }
        IoCommand::Export(ExportCmd::Parquet { source, out }) => {
            let o = ExportOptions {
                progress: bar.clone(),
                images: None,
            };
            let r = export_parquet(cat, &source.dataset, &source.reference, &out, &o).await?;
            print_export(&r, &out);
        }
        IoCommand::Export(ExportCmd::Coco {
            source,
            out,
            images,
        }) => {
            let o = ExportOptions {
                progress: bar.clone(),
                images,
            };
            let r = export_coco(cat, &source.dataset, &source.reference, &out, &o).await?;
            print_export(&r, &out);
        }
        IoCommand::Export(ExportCmd::Yolo {
            source,
            out,
            images,
        }) => {
            let o = ExportOptions {
                progress: bar.clone(),
                images: images.then(|| out.join("images")),
            };
            let r = export_yolo(cat, &source.dataset, &source.reference, &out, &o).await?;
            print_export(&r, &out);
        }
        IoCommand::Assets(AssetsCmd::Gc {
            dry_run,
            grace_secs,
        }) => {
            let spinner = ProgressBar::new_spinner();
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            spinner.set_message("finding referenced assets in every reachable version");
            let r = cat
                .assets()
                .gc_with(&GcOptions {
                    dry_run,
                    grace: std::time::Duration::from_secs(grace_secs),
                })
                .await;
            spinner.finish_and_clear();
            let r = r?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            println!(
                "{} assets, {} referenced by {} reachable versions; {verb} {} unreferenced ({:.1} MB)",
                r.assets,
                r.referenced,
                r.versions_scanned,
                r.deleted,
                r.deleted_bytes as f64 / 1e6
            );
            if r.kept_young > 0 {
                println!(
                    "kept {} unreferenced assets younger than {grace_secs}s (--grace-secs)",
                    r.kept_young
                );
            }
            if dry_run {
                for h in &r.deleted_hashes {
                    println!("  {h}");
                }
            }
        }
        IoCommand::Assets(AssetsCmd::Put { file }) => {
            let h = cat.assets().put_file(&file).await?;
            println!("{h}");
        }
        IoCommand::Assets(AssetsCmd::Get { hash, out }) => {
            let h = quiver_core::Hash::from_hex(&hash).ok_or_else(|| CoreError::InvalidInput {
                file: hash.clone(),
                position: None,
                reason: "not a blake3 hash (64 hex characters)".into(),
            })?;
            let n = cat.assets().get_to_file(&h, &out).await?;
            println!("wrote {n} bytes to {}", out.display());
        }
        IoCommand::Assets(AssetsCmd::Erase { hash, reason }) => {
            crate::erase_cmd::erase_asset(cat, &hash, &reason).await?
        }
    }
    Ok(())
}
