//! The lineage log: append-only records next to the datasets (`lineage/<kind>/…`).
//!
//! A record is written once under a path no other record uses (create-if-absent), never
//! rewritten: training runs (which exact commit of which dataset a run read), and — as the
//! lineage graph grows — models and prediction batches. Records carry their author and the
//! storage-side time they were written.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::{CoreError, Result};

/// A training run consumed one commit of one dataset (a run that reads several datasets or
/// versions has one record for each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The trainer's run id.
    pub run_id: String,
    /// Dataset read.
    pub dataset: String,
    /// The ref the trainer asked for, as written (`tag:v1`, `main`, …).
    pub reference: String,
    /// The commit that ref resolved to (hex); every shard of the run read exactly it.
    pub commit: String,
    /// Number of shards the selection was split into.
    pub shards: u32,
    /// Columns read (empty: all).
    #[serde(default)]
    pub columns: Vec<String>,
    /// Row filter (SQL predicate), if any.
    #[serde(default)]
    pub filter: Option<String>,
    /// Who recorded it.
    pub author: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_control()) {
        return Err(CoreError::InvalidName {
            name: id.into(),
            reason: format!("a {what} id must be 1–256 printable characters"),
        });
    }
    Ok(())
}

impl Catalog {
    /// Append a training-run record to the lineage log.
    pub async fn record_run(&self, rec: &RunRecord) -> Result<()> {
        check_id("run", &rec.run_id)?;
        let body = serde_json::to_vec(rec)?;
        // one file per record: run id (hex, path-safe) / time + content hash
        let path = format!(
            "lineage/runs/{}/{:020}-{}.json",
            hex::encode(rec.run_id.as_bytes()),
            rec.recorded_at.timestamp_micros().max(0),
            &blake3::hash(&body).to_hex()[..16]
        );
        self.store()
            .put_file_if_absent(&path, Bytes::from(body))
            .await?;
        Ok(())
    }

    /// Every training-run record, oldest first.
    pub async fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut out = Vec::new();
        for path in self.store().list("lineage/runs/").await? {
            if !path.ends_with(".json") {
                continue;
            }
            let bytes = self.store().get_file(&path).await?;
            let rec: RunRecord =
                serde_json::from_slice(&bytes).map_err(|e| CoreError::Corrupt {
                    what: path.clone(),
                    reason: e.to_string(),
                })?;
            out.push(rec);
        }
        out.sort_by(|a, b| {
            a.recorded_at
                .cmp(&b.recorded_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }
}
