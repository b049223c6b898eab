//! The lineage log: append-only records next to the datasets (`lineage/<kind>/…`).
//!
//! A record is written once under a path no other record uses (create-if-absent), never
//! rewritten: training runs (which exact commit of which dataset a run read), and — as the
//! lineage graph grows — models and prediction batches. Records carry their author and the
//! storage-side time they were written.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{read_json_records, Catalog};
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

/// A model and the training run that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub model: String,
    pub run_id: String,
    pub author: String,
    pub registered_at: DateTime<Utc>,
    #[serde(default)]
    pub message: String,
}

/// One uploaded batch of predictions of a model (rows in a Parquet file beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionBatch {
    pub model: String,
    pub batch_id: String,
    pub rows: u64,
    pub author: String,
    pub predicted_at: DateTime<Utc>,
}

/// Columns of the stored predictions: `model, sample_id, class, score, batch_id,
/// predicted_at`. Predictions live outside the label snapshots (scores do not inflate label
/// storage) and join with any version on `sample_id`.
pub fn predictions_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("class", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("batch_id", DataType::Utf8, false),
        Field::new(
            "predicted_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
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
        let mut out: Vec<RunRecord> = read_json_records(self.store(), "lineage/runs/").await?;
        out.sort_by(|a, b| {
            a.recorded_at
                .cmp(&b.recorded_at)
                .then(a.run_id.cmp(&b.run_id))
        });
        Ok(out)
    }
}

fn id_dir(kind: &str, id: &str) -> String {
    format!("lineage/{kind}/{}", hex::encode(id.as_bytes()))
}

impl Catalog {
    /// Every record of one run id (a run may read several datasets or versions).
    pub async fn run(&self, run_id: &str) -> Result<Vec<RunRecord>> {
        let runs: Vec<RunRecord> = self
            .runs()
            .await?
            .into_iter()
            .filter(|r| r.run_id == run_id)
            .collect();
        if runs.is_empty() {
            return Err(CoreError::RunNotFound(run_id.into()));
        }
        Ok(runs)
    }

    /// Register a model as the product of a recorded training run.
    pub async fn register_model(&self, rec: &ModelRecord) -> Result<()> {
        check_id("model", &rec.model)?;
        self.run(&rec.run_id).await?;
        let path = format!("{}.json", id_dir("models", &rec.model));
        let created = self
            .store()
            .put_file_if_absent(&path, Bytes::from(serde_json::to_vec(rec)?))
            .await?;
        if !created {
            return Err(CoreError::ModelExists(rec.model.clone()));
        }
        Ok(())
    }

    /// Every registered model, oldest first.
    pub async fn models(&self) -> Result<Vec<ModelRecord>> {
        let mut out: Vec<ModelRecord> = read_json_records(self.store(), "lineage/models/").await?;
        out.sort_by(|a, b| {
            a.registered_at
                .cmp(&b.registered_at)
                .then(a.model.cmp(&b.model))
        });
        Ok(out)
    }

    /// One model.
    pub async fn model(&self, name: &str) -> Result<ModelRecord> {
        let path = format!("{}.json", id_dir("models", name));
        match self.store().get_file_opt(&path).await? {
            Some(b) => Ok(serde_json::from_slice(&b)?),
            None => Err(CoreError::ModelNotFound(name.into())),
        }
    }

    /// Store a batch of predictions of `model`: `batch` has `sample_id` (string) and
    /// optionally `class` (string) and `score` (number); other columns are refused.
    pub async fn write_predictions(
        &self,
        model: &str,
        batch: &arrow::array::RecordBatch,
        author: &str,
    ) -> Result<PredictionBatch> {
        use arrow::array::{new_null_array, ArrayRef, StringArray, TimestampMicrosecondArray};
        use arrow::datatypes::DataType;
        self.model(model).await?;
        let schema = predictions_schema();
        let n = batch.num_rows();
        let bad = |reason: String| CoreError::InvalidInput {
            file: format!("predictions of model '{model}'"),
            position: None,
            reason,
        };
        for f in batch.schema().fields() {
            if !["model", "sample_id", "class", "score"].contains(&f.name().as_str()) {
                return Err(bad(format!(
                    "unknown column '{}' (predictions have sample_id, class, score)",
                    f.name()
                )));
            }
        }
        let col = |name: &str, dt: &DataType| -> Result<Option<ArrayRef>> {
            match batch.column_by_name(name) {
                None => Ok(None),
                Some(c) => Ok(Some(arrow::compute::cast(c, dt).map_err(|e| {
                    bad(format!("column '{name}' cannot be read as {dt}: {e}"))
                })?)),
            }
        };
        let sample = col("sample_id", &DataType::Utf8)?
            .ok_or_else(|| bad("column 'sample_id' is missing".into()))?;
        if sample.null_count() > 0 {
            return Err(bad("column 'sample_id' has nulls".into()));
        }
        let mut now = Utc::now();
        let mut h = blake3::Hasher::new();
        if let Some(a) = sample.as_any().downcast_ref::<StringArray>() {
            for v in a.iter().flatten() {
                h.update(v.as_bytes());
                h.update(&[0]);
            }
        }
        let content = h.finalize();
        let batch_id = loop {
            let batch_id = format!(
                "{:020}-{}",
                now.timestamp_micros().max(0),
                &content.to_hex()[..8]
            );
            let cols: Vec<ArrayRef> = vec![
                std::sync::Arc::new(StringArray::from(vec![model; n])),
                sample.clone(),
                col("class", &DataType::Utf8)?
                    .unwrap_or_else(|| new_null_array(&DataType::Utf8, n)),
                col("score", &DataType::Float64)?
                    .unwrap_or_else(|| new_null_array(&DataType::Float64, n)),
                std::sync::Arc::new(StringArray::from(vec![batch_id.as_str(); n])),
                std::sync::Arc::new(
                    TimestampMicrosecondArray::from(vec![now.timestamp_micros(); n])
                        .with_timezone("UTC"),
                ),
            ];
            let out = arrow::array::RecordBatch::try_new(schema.clone(), cols)?;
            let mut buf = Vec::new();
            {
                let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema.clone(), None)?;
                w.write(&out)?;
                w.close()?;
            }
            let path = format!("{}/{batch_id}.parquet", id_dir("predictions", model));
            if self
                .store()
                .put_file_if_absent(&path, Bytes::from(buf))
                .await?
            {
                break batch_id;
            }
            // the same rows of the same model in the same microsecond: take the next one
            now += chrono::Duration::microseconds(1);
        };
        let dir = id_dir("predictions", model);
        let rec = PredictionBatch {
            model: model.into(),
            batch_id: batch_id.clone(),
            rows: n as u64,
            author: author.into(),
            predicted_at: now,
        };
        self.store()
            .put_file_if_absent(
                &format!("{dir}/{batch_id}.json"),
                Bytes::from(serde_json::to_vec(&rec)?),
            )
            .await?;
        Ok(rec)
    }

    /// Every prediction batch record, oldest first.
    pub async fn prediction_batches(&self) -> Result<Vec<PredictionBatch>> {
        let mut out: Vec<PredictionBatch> =
            read_json_records(self.store(), "lineage/predictions/").await?;
        out.sort_by_key(|a| a.predicted_at);
        Ok(out)
    }

    /// Every stored prediction row.
    pub async fn predictions(&self) -> Result<Vec<arrow::array::RecordBatch>> {
        let mut out = Vec::new();
        for path in self.store().list("lineage/predictions/").await? {
            if path.ends_with(".parquet") {
                let b = self.store().get_file(&path).await?;
                let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(b)?
                    .build()?;
                for batch in r {
                    out.push(batch?);
                }
            }
        }
        Ok(out)
    }
}
