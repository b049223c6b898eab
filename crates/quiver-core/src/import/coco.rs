//! COCO detection JSON (`images`, `annotations`, `categories`) → one label per annotation.
//!
//! Columns: `sample_id` (the image's `file_name`, the group key), `label_id` (annotation
//! id, the label key), `image_id`, `width`, `height`, `category_id`, `class` (category
//! name), `bbox_x`, `bbox_y`, `bbox_w`, `bbox_h`, `area`, `iscrowd`, `segmentation` (JSON
//! text) and `image_hash` (the image's asset hash when imported with an image directory).
//! Fields absent from the file are null, so export → import reproduces the same labels.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    contained_path, invalid, io_err, put_assets, write_import, ImportOptions, ImportReport, Parsed,
};
use crate::catalog::Catalog;
use crate::error::Result;

/// Rows per batch handed to the write transaction.
const BATCH_ROWS: usize = 64 * 1024;

/// The label schema of COCO imports.
pub fn schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("sample_id", DataType::Utf8, false),
        f("label_id", DataType::Int64, false),
        f("image_id", DataType::Int64, false),
        f("width", DataType::Int64, true),
        f("height", DataType::Int64, true),
        f("category_id", DataType::Int64, false),
        f("class", DataType::Utf8, false),
        f("bbox_x", DataType::Float64, true),
        f("bbox_y", DataType::Float64, true),
        f("bbox_w", DataType::Float64, true),
        f("bbox_h", DataType::Float64, true),
        f("area", DataType::Float64, true),
        f("iscrowd", DataType::Int64, true),
        f("segmentation", DataType::Utf8, true),
        f("image_hash", DataType::Utf8, true),
    ]))
}

/// A COCO image record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoImage {
    pub id: i64,
    pub file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
}

/// A COCO annotation record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoAnnotation {
    pub id: i64,
    pub image_id: i64,
    pub category_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscrowd: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Value>,
}

/// A COCO category record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoCategory {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supercategory: Option<String>,
}

/// A COCO detection file (other top-level keys such as `info` and `licenses` are kept
/// only as far as serde ignores them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CocoFile {
    pub images: Vec<CocoImage>,
    pub annotations: Vec<CocoAnnotation>,
    pub categories: Vec<CocoCategory>,
}

/// Parse and validate a COCO file (every error names the file and the position).
pub fn parse_file(path: &Path) -> Result<CocoFile> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let coco: CocoFile = serde_json::from_slice(&bytes).map_err(|e| {
        let pos = (e.line() > 0).then(|| format!("line {}, column {}", e.line(), e.column()));
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the JSON ends early (truncated file?)",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "not a COCO detection file",
            serde_json::error::Category::Io => "read error",
        };
        invalid(path, pos, format!("{what}: {e}"))
    })?;
    validate(path, &coco)?;
    Ok(coco)
}

fn validate(path: &Path, coco: &CocoFile) -> Result<()> {
    let mut images: HashMap<i64, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, im) in coco.images.iter().enumerate() {
        let pos = Some(format!("images[{i}] (id {})", im.id));
        if let Some(j) = images.insert(im.id, i) {
            return Err(invalid(
                path,
                pos,
                format!("duplicate image id {} (also images[{j}])", im.id),
            ));
        }
        if im.file_name.is_empty() {
            return Err(invalid(path, pos, "empty file_name"));
        }
        if let Some(j) = names.insert(&im.file_name, i) {
            return Err(invalid(
                path,
                pos,
                format!(
                    "duplicate file_name '{}' (also images[{j}]); samples are keyed by file name",
                    im.file_name
                ),
            ));
        }
    }
    let mut cats: HashMap<i64, usize> = HashMap::new();
    for (i, c) in coco.categories.iter().enumerate() {
        if let Some(j) = cats.insert(c.id, i) {
            return Err(invalid(
                path,
                Some(format!("categories[{i}] (id {})", c.id)),
                format!("duplicate category id {} (also categories[{j}])", c.id),
            ));
        }
    }
    let mut anns: HashMap<i64, usize> = HashMap::new();
    for (i, a) in coco.annotations.iter().enumerate() {
        let pos = || Some(format!("annotations[{i}] (id {})", a.id));
        if let Some(j) = anns.insert(a.id, i) {
            return Err(invalid(
                path,
                pos(),
                format!("duplicate annotation id {} (also annotations[{j}])", a.id),
            ));
        }
        if !images.contains_key(&a.image_id) {
            return Err(invalid(
                path,
                pos(),
                format!("image_id {} matches no image", a.image_id),
            ));
        }
        if !cats.contains_key(&a.category_id) {
            return Err(invalid(
                path,
                pos(),
                format!("category_id {} matches no category", a.category_id),
            ));
        }
        if let Some(b) = &a.bbox {
            if b.len() != 4 {
                return Err(invalid(
                    path,
                    pos(),
                    format!(
                        "bbox has {} numbers, expected 4 [x, y, width, height]",
                        b.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Label rows of a parsed file; `hashes` are the asset hashes of `coco.images` by index.
pub fn to_batches(
    coco: &CocoFile,
    hashes: Option<&[quiver_tree::Hash]>,
) -> Result<Vec<RecordBatch>> {
    let images: HashMap<i64, usize> = coco
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    let cats: BTreeMap<i64, &str> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let schema = schema();
    let mut out = Vec::new();
    for chunk in coco.annotations.chunks(BATCH_ROWS) {
        let img = |a: &CocoAnnotation| images.get(&a.image_id).copied().unwrap_or(0);
        let bbox = |k: usize| -> ArrayRef {
            Arc::new(Float64Array::from(
                chunk
                    .iter()
                    .map(|a| a.bbox.as_ref().and_then(|b| b.get(k).copied()))
                    .collect::<Vec<_>>(),
            ))
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|a| coco.images[img(a)].file_name.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|a| a.id))),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|a| a.image_id),
            )),
            Arc::new(Int64Array::from(
                chunk
                    .iter()
                    .map(|a| coco.images[img(a)].width)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                chunk
                    .iter()
                    .map(|a| coco.images[img(a)].height)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|a| a.category_id),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk
                    .iter()
                    .map(|a| cats.get(&a.category_id).copied().unwrap_or_default()),
            )),
            bbox(0),
            bbox(1),
            bbox(2),
            bbox(3),
            Arc::new(Float64Array::from(
                chunk.iter().map(|a| a.area).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                chunk.iter().map(|a| a.iscrowd).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                chunk
                    .iter()
                    .map(|a| a.segmentation.as_ref().map(|s| s.to_string()))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                chunk
                    .iter()
                    .map(|a| hashes.and_then(|h| h.get(img(a))).map(|h| h.to_hex()))
                    .collect::<Vec<_>>(),
            )),
        ];
        out.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    Ok(out)
}

/// Import a COCO detection file into a dataset branch as one commit.
pub async fn import(cat: &Catalog, file: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    // images put now are referenced only once the labels commit: hold a write lease across
    // both so gc cannot collect an image this import reuses (crate::lease)
    let lease = cat.write_lease("COCO import").await?;
    let res = import_leased(cat, file, opts).await;
    lease.release().await;
    res
}

async fn import_leased(cat: &Catalog, file: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    let progress = opts.progress.as_ref();
    progress.phase("reading COCO JSON", None);
    let coco = parse_file(file)?;
    let (hashes, asset_bytes) = match &opts.images {
        Some(dir) => {
            let files: Vec<_> = coco
                .images
                .iter()
                .enumerate()
                .map(|(i, im)| {
                    let pos = format!("images[{i}] (id {})", im.id);
                    let path = contained_path(dir, &im.file_name, file, &pos)?;
                    Ok((path, format!("{pos} of {}", file.display())))
                })
                .collect::<Result<_>>()?;
            let (h, b) = put_assets(cat, &files, progress).await?;
            (Some(h), b)
        }
        None => (None, 0),
    };
    let batches = to_batches(&coco, hashes.as_deref())?;
    let parsed = Parsed {
        schema: schema(),
        group_key: "sample_id".into(),
        label_key: "label_id".into(),
        batches,
        source: file.display().to_string(),
        assets: hashes.as_ref().map(|h| h.len() as u64).unwrap_or(0),
        asset_bytes,
    };
    let report = write_import(cat, opts, parsed).await?;
    // category metadata (supercategories, categories without annotations) for export
    if let Ok(ds) = cat.dataset(&opts.dataset).await {
        let cats = serde_json::to_value(&coco.categories)?;
        ds.set_metadata("coco_categories", Some(cats)).await?;
    }
    Ok(report)
}
