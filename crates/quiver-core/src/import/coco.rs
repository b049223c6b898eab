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
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

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
    let coco: CocoFile = serde_json::from_slice(&bytes).map_err(|e| json_err(path, e))?;
    validate(path, &coco)?;
    Ok(coco)
}

/// A JSON error as an `InvalidInput` naming the file, the line and column, and the kind.
pub(crate) fn json_err(path: &Path, e: serde_json::Error) -> crate::error::CoreError {
    let pos = (e.line() > 0).then(|| format!("line {}, column {}", e.line(), e.column()));
    let what = match e.classify() {
        serde_json::error::Category::Eof => "the JSON ends early (truncated file?)",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "not a COCO detection file",
        serde_json::error::Category::Io => "read error",
    };
    invalid(path, pos, format!("{what}: {e}"))
}

/// What validation needs of an annotation (the streamed import keeps only this: 32 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnnIndex {
    pub id: i64,
    pub image_id: i64,
    pub category_id: i64,
    /// Numbers in `bbox`, when present (saturated at `u32::MAX`).
    pub bbox_len: Option<u32>,
}

// what the streamed import's memory per annotation is documented as
const _: () = assert!(std::mem::size_of::<AnnIndex>() == 32);

impl AnnIndex {
    pub(crate) fn new(id: i64, image_id: i64, category_id: i64, bbox: Option<&[f64]>) -> Self {
        AnnIndex {
            id,
            image_id,
            category_id,
            bbox_len: bbox.map(|b| u32::try_from(b.len()).unwrap_or(u32::MAX)),
        }
    }
}

impl From<&CocoAnnotation> for AnnIndex {
    fn from(a: &CocoAnnotation) -> Self {
        AnnIndex::new(a.id, a.image_id, a.category_id, a.bbox.as_deref())
    }
}

fn validate(path: &Path, coco: &CocoFile) -> Result<()> {
    let anns: Vec<AnnIndex> = coco.annotations.iter().map(AnnIndex::from).collect();
    validate_parts(path, &coco.images, &coco.categories, &anns)
}

/// Check a file's images, categories and annotations: unique ids and file names, every
/// annotation pointing at an image and a category, boxes of four numbers. The first
/// problem is the error, naming its position.
pub(crate) fn validate_parts(
    path: &Path,
    images_in: &[CocoImage],
    categories: &[CocoCategory],
    annotations: &[AnnIndex],
) -> Result<()> {
    let mut images: HashMap<i64, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, im) in images_in.iter().enumerate() {
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
    for (i, c) in categories.iter().enumerate() {
        if let Some(j) = cats.insert(c.id, i) {
            return Err(invalid(
                path,
                Some(format!("categories[{i}] (id {})", c.id)),
                format!("duplicate category id {} (also categories[{j}])", c.id),
            ));
        }
    }
    let mut anns: HashMap<i64, usize> = HashMap::new();
    for (i, a) in annotations.iter().enumerate() {
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
        if let Some(n) = a.bbox_len.filter(|&n| n != 4) {
            return Err(invalid(
                path,
                pos(),
                format!("bbox has {n} numbers, expected 4 [x, y, width, height]"),
            ));
        }
    }
    Ok(())
}

/// Label rows of a parsed file; `hashes` are the asset hashes of `coco.images` by index.
pub fn to_batches(
    coco: &CocoFile,
    hashes: Option<&[quiver_tree::Hash]>,
) -> Result<Vec<RecordBatch>> {
    let lookup = Lookup::new(&coco.images, &coco.categories, hashes);
    coco.annotations
        .chunks(BATCH_ROWS)
        .map(|chunk| lookup.rows(chunk))
        .collect()
}

/// What turns annotations into label rows: images by id, category names, asset hashes.
pub(crate) struct Lookup<'a> {
    images: &'a [CocoImage],
    by_id: HashMap<i64, usize>,
    cats: BTreeMap<i64, &'a str>,
    hashes: Option<&'a [quiver_tree::Hash]>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(
        images: &'a [CocoImage],
        categories: &'a [CocoCategory],
        hashes: Option<&'a [quiver_tree::Hash]>,
    ) -> Self {
        Lookup {
            images,
            by_id: images
                .iter()
                .enumerate()
                .map(|(i, im)| (im.id, i))
                .collect(),
            cats: categories.iter().map(|c| (c.id, c.name.as_str())).collect(),
            hashes,
        }
    }

    /// The index in `images` of an image id (validated input has every one).
    pub(crate) fn image(&self, id: i64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The label rows of `chunk`, one per annotation, in its order.
    pub(crate) fn rows(&self, chunk: &[CocoAnnotation]) -> Result<RecordBatch> {
        let img = |a: &CocoAnnotation| &self.images[self.image(a.image_id).unwrap_or(0)];
        let bbox = |k: usize| -> ArrayRef {
            Arc::new(Float64Array::from(
                chunk
                    .iter()
                    .map(|a| a.bbox.as_ref().and_then(|b| b.get(k).copied()))
                    .collect::<Vec<_>>(),
            ))
        };
        let hash = |a: &CocoAnnotation| {
            let i = self.image(a.image_id)?;
            self.hashes.and_then(|h| h.get(i)).map(|h| h.to_hex())
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|a| img(a).file_name.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|a| a.id))),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|a| a.image_id),
            )),
            Arc::new(Int64Array::from(
                chunk.iter().map(|a| img(a).width).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                chunk.iter().map(|a| img(a).height).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|a| a.category_id),
            )),
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|a| {
                self.cats.get(&a.category_id).copied().unwrap_or_default()
            }))),
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
                chunk.iter().map(hash).collect::<Vec<_>>(),
            )),
        ];
        Ok(RecordBatch::try_new(schema(), cols)?)
    }
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

/// The image files of `images` under `dir`, each with its position in `file` (for errors);
/// a name leading outside `dir` is an error.
pub(crate) fn image_files(
    images: &[CocoImage],
    dir: &Path,
    file: &Path,
) -> Result<Vec<(std::path::PathBuf, String)>> {
    images
        .iter()
        .enumerate()
        .map(|(i, im)| {
            let pos = format!("images[{i}] (id {})", im.id);
            let path = contained_path(dir, &im.file_name, file, &pos)?;
            Ok((path, format!("{pos} of {}", file.display())))
        })
        .collect()
}

async fn import_leased(cat: &Catalog, file: &Path, opts: &ImportOptions) -> Result<ImportReport> {
    // into a new (or empty) dataset on main the file streams; a re-import reads it whole
    if let Some(report) = super::coco_stream::import(cat, file, opts).await? {
        return Ok(report);
    }
    let progress = opts.progress.as_ref();
    progress.phase("reading COCO JSON", None);
    let coco = parse_file(file)?;
    let (hashes, asset_bytes) = match &opts.images {
        Some(dir) => {
            let files = image_files(&coco.images, dir, file)?;
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
    keep_categories(cat, &opts.dataset, &coco.categories).await?;
    Ok(report)
}

/// Record a file's categories (supercategories, categories without annotations) on the
/// dataset, for export.
pub(crate) async fn keep_categories(
    cat: &Catalog,
    dataset: &str,
    categories: &[CocoCategory],
) -> Result<()> {
    if let Ok(ds) = cat.dataset(dataset).await {
        let cats = serde_json::to_value(categories)?;
        ds.set_metadata("coco_categories", Some(cats)).await?;
    }
    Ok(())
}
