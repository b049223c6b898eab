//! `quiver erase` and `quiver assets erase`: remove the bytes of labels (or of an asset)
//! from every version, keeping every commit id and content hash (privacy requests).

use clap::Args;
use quiver_core::{default_author, Catalog, CoreError};
use quiver_sql::parser::{parse_statement, Statement};
use quiver_sql::QuiverContext;

use crate::CliError;

/// Arguments of `quiver erase`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  quiver erase --dataset demo --where \"sample_id = 'img-00000042'\" --reason 'request 17'\n  quiver erase --dataset demo --where \"reviewer = 'alice'\"\n\nEvery version is searched: old commits, branches, tags, and the before-images commits\nkeep. Matching rows keep their keys; their other values read NULL (or '<erased>' and 0\nin NOT NULL columns). Commit ids, content hashes and diffs do not change.\nWhat was erased is listed by `quiver sql -c 'SELECT * FROM quiver.erasures'`."
)]
pub struct EraseArgs {
    /// Dataset to erase labels from.
    #[arg(long, short = 'd')]
    pub dataset: String,
    /// The labels to erase: a SQL predicate over the dataset's columns (no subqueries).
    #[arg(long = "where", value_name = "PREDICATE")]
    pub predicate: String,
    /// Why (recorded with the erasure).
    #[arg(long, default_value = "")]
    pub reason: String,
}

/// `quiver erase`.
pub async fn run(cat: &Catalog, a: EraseArgs) -> Result<(), CliError> {
    let ds = cat
        .dataset(&a.dataset)
        .await?
        .with_author(&default_author());
    // the predicate is parsed as the WHERE of an ERASE statement: one expression, nothing
    // after it
    let st = parse_statement(&format!(
        "ERASE FROM '{}' WHERE {}",
        a.dataset.replace('\'', "''"),
        a.predicate
    ))?;
    let Statement::Erase {
        filter,
        reason: None,
        ..
    } = st
    else {
        return Err(CliError::Usage(format!(
            "--where '{}': expected one SQL predicate (the reason goes in --reason)",
            a.predicate
        )));
    };
    let ctx = QuiverContext::new(cat.clone()).await?;
    let rows = quiver_sql::erase_sql::SqlRows::new(&ctx.session().state(), &ds, &filter)?;
    let bar = crate::io_cmd::Bar::new();
    let r = ds.erase_with(&rows, &a.reason, bar.as_ref()).await?;
    println!(
        "erasure {} of {}: {} labels ({} rows, copies included) erased from {} of {} packs of {} versions; commit ids and content hashes unchanged",
        r.id, a.dataset, r.labels_erased, r.rows_erased, r.packs_rewritten, r.packs_scanned, r.versions
    );
    Ok(())
}

/// `quiver assets erase HASH`.
pub async fn erase_asset(cat: &Catalog, hash: &str, reason: &str) -> Result<(), CoreError> {
    let h = quiver_core::Hash::from_hex(hash).ok_or_else(|| CoreError::InvalidInput {
        file: hash.to_string(),
        position: None,
        reason: "not a blake3 hash (64 hex characters)".into(),
    })?;
    let t = cat.assets().erase(&h, reason, &default_author()).await?;
    let size = t
        .size
        .map(|n| format!("{n} bytes"))
        .unwrap_or_else(|| "already gone".into());
    println!(
        "asset {} erased ({size}) on {} by {}; labels naming it keep the hash, reads say it was erased",
        t.hash,
        t.time.format("%Y-%m-%d %H:%M:%S UTC"),
        t.author
    );
    Ok(())
}
