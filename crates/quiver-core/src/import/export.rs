//! Exports of any version (branch, tag or commit id prefix) to Parquet and to COCO JSON.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::coco::{CocoAnnotation, CocoCategory, CocoFile, CocoImage};
use super::{io_err, NoProgress, Progress};
use crate::catalog::Catalog;
use crate::error::{CoreError, Result};
use crate::model::Commit;
use crate::snapshot::Snapshot;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The exported version.
    pub commit: Commit,
    /// Labels written.
    pub labels: u64,
    /// Images (COCO) or 0.
    pub images: u64,
    /// Asset files written next to a COCO export.
    pub assets: u64,
}

/// Options of an export.
#[derive(Clone)]
pub struct ExportOptions {
    /// Progress receiver.
    pub progress: Arc<dyn Progress>,
    /// COCO: also write every referenced image asset to this folder (as `file_name`).
    pub images: Option<PathBuf>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            progress: Arc::new(NoProgress),
            images: None,
        }
    }
}

/// Open `dataset` at `reference` (a branch, tag or commit id prefix, `~N`).
pub async fn open_version(cat: &Catalog, dataset: &str, reference: &str) -> Result<Snapshot> {
    let ds = cat.dataset(dataset).await?;
    let c = ds.resolve_loose(reference).await?;
    Ok(ds.snapshot(c))
}

/// Every label of a version in one batch, sorted by (group key, label key).
pub async fn sorted_rows(snap: &Snapshot) -> Result<RecordBatch> {
    let schema = snap.schema();
    let batches = snap.scan(None).await?;
    let all = concat_batches(&schema, &batches)?;
    if all.num_rows() == 0 {
        return Ok(all);
    }
    let cfg = snap.dataset().config();
    let g = schema.index_of(&cfg.group_key)?;
    let l = schema.index_of(&cfg.label_key)?;
    let idx = lexsort_to_indices(
        &[
            SortColumn {
                values: all.column(g).clone(),
                options: None,
            },
            SortColumn {
                values: all.column(l).clone(),
                options: None,
            },
        ],
        None,
    )?;
    Ok(take_record_batch(&all, &idx)?)
}

/// Write a file atomically: to a temporary name next to it, then renamed into place.
fn write_atomic(out: &Path, f: impl FnOnce(std::fs::File) -> Result<()>) -> Result<()> {
    let tmp = out.with_extension(format!("quiver-tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    if let Err(e) = f(file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| io_err(out, e))
}

/// Export a version to a Parquet file (rows sorted by key, the dataset's schema).
pub async fn export_parquet(
    cat: &Catalog,
    dataset: &str,
    reference: &str,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let snap = open_version(cat, dataset, reference).await?;
    opts.progress.phase("reading labels", None);
    let rows = sorted_rows(&snap).await?;
    opts.progress
        .phase("writing Parquet", Some(rows.num_rows() as u64));
    write_atomic(out, |file| {
        let props = crate::packs::writer_properties();
        let mut w = ArrowWriter::try_new(file, rows.schema(), Some(props))?;
        let step = 64 * 1024;
        let mut off = 0;
        while off < rows.num_rows() {
            let n = step.min(rows.num_rows() - off);
            w.write(&rows.slice(off, n))?;
            opts.progress.advance(n as u64);
            off += n;
        }
        w.close()?;
        Ok(())
    })?;
    opts.progress.finish();
    Ok(ExportReport {
        commit: snap.commit().clone(),
        labels: rows.num_rows() as u64,
        images: 0,
        assets: 0,
    })
}

fn col_i64(b: &RecordBatch, name: &str) -> Result<Option<Vec<Option<i64>>>> {
    let Some(c) = b.column_by_name(name) else {
        return Ok(None);
    };
    if !c.data_type().is_integer() {
        return Ok(None);
    }
    let c = arrow::compute::cast(c, &DataType::Int64)?;
    Ok(Some(c.as_primitive::<Int64Type>().iter().collect()))
}

fn col_f64(b: &RecordBatch, name: &str) -> Result<Option<Vec<Option<f64>>>> {
    let Some(c) = b.column_by_name(name) else {
        return Ok(None);
    };
    if !c.data_type().is_numeric() {
        return Ok(None);
    }
    let c = arrow::compute::cast(c, &DataType::Float64)?;
    Ok(Some(c.as_primitive::<Float64Type>().iter().collect()))
}

fn col_str(b: &RecordBatch, name: &str) -> Result<Option<Vec<Option<String>>>> {
    let Some(c) = b.column_by_name(name) else {
        return Ok(None);
    };
    let c: ArrayRef = arrow::compute::cast(c, &DataType::Utf8)?;
    Ok(Some(
        c.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
    ))
}

/// Build the COCO document of a version. Needs a `class` column; `image_id`,
/// `category_id`, `bbox_*`, `area`, `iscrowd`, `segmentation`, `width` and `height` are
/// used when present (ids are assigned in key order otherwise).
pub async fn to_coco(snap: &Snapshot) -> Result<(CocoFile, Vec<(String, Option<String>)>)> {
    let rows = sorted_rows(snap).await?;
    let ds = snap.dataset();
    let cfg = ds.config();
    let need = |c: &str| CoreError::ColumnNotFound {
        dataset: ds.name().into(),
        column: format!("{c} (needed for a COCO export)"),
    };
    let n = rows.num_rows();
    let samples = col_str(&rows, &cfg.group_key)?.ok_or_else(|| need(&cfg.group_key))?;
    let classes = col_str(&rows, "class")?.ok_or_else(|| need("class"))?;
    let label_ids = col_i64(&rows, &cfg.label_key)?;
    let image_ids = col_i64(&rows, "image_id")?;
    let cat_ids = col_i64(&rows, "category_id")?;
    let widths = col_i64(&rows, "width")?;
    let heights = col_i64(&rows, "height")?;
    let bbox: Vec<Option<Vec<Option<f64>>>> = ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]
        .iter()
        .map(|c| col_f64(&rows, c))
        .collect::<Result<_>>()?;
    let area = col_f64(&rows, "area")?;
    let iscrowd = col_i64(&rows, "iscrowd")?;
    let seg = col_str(&rows, "segmentation")?;
    let hashes = col_str(&rows, crate::assets::IMAGE_HASH_COLUMN)?;

    // categories: ids from the rows, else assigned by sorted class name; supercategories
    // (and categories without labels) from the import's metadata
    let mut cats: BTreeMap<i64, CocoCategory> = BTreeMap::new();
    let mut by_name: HashMap<String, i64> = HashMap::new();
    let meta_cats: Vec<CocoCategory> = ds
        .metadata()
        .await?
        .get("coco_categories")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if cat_ids.is_none() {
        let mut names: Vec<&String> = classes.iter().flatten().collect();
        names.sort();
        names.dedup();
        for (i, nm) in names.into_iter().enumerate() {
            by_name.insert(nm.clone(), i as i64 + 1);
        }
    }
    let mut images: BTreeMap<i64, CocoImage> = BTreeMap::new();
    let mut image_of_sample: HashMap<String, i64> = HashMap::new();
    let mut assets: Vec<(String, Option<String>)> = Vec::new();
    let mut anns = Vec::with_capacity(n);
    for r in 0..n {
        let sample = samples[r].clone().unwrap_or_default();
        let class = classes[r].clone().unwrap_or_default();
        let cid = match &cat_ids {
            Some(c) => c[r].unwrap_or_default(),
            None => by_name.get(&class).copied().unwrap_or_default(),
        };
        cats.entry(cid).or_insert_with(|| CocoCategory {
            id: cid,
            name: class.clone(),
            supercategory: meta_cats
                .iter()
                .find(|m| m.id == cid && m.name == class)
                .and_then(|m| m.supercategory.clone()),
        });
        let next_id = image_of_sample.len() as i64 + 1;
        let iid = match &image_ids {
            Some(c) => c[r].unwrap_or(next_id),
            None => *image_of_sample.get(&sample).unwrap_or(&next_id),
        };
        if !image_of_sample.contains_key(&sample) {
            image_of_sample.insert(sample.clone(), iid);
            assets.push((sample.clone(), hashes.as_ref().and_then(|h| h[r].clone())));
        }
        images.entry(iid).or_insert_with(|| CocoImage {
            id: iid,
            file_name: sample.clone(),
            width: widths.as_ref().and_then(|w| w[r]),
            height: heights.as_ref().and_then(|h| h[r]),
        });
        let b: Option<Vec<f64>> = bbox.iter().map(|c| c.as_ref().and_then(|c| c[r])).collect();
        anns.push(CocoAnnotation {
            id: label_ids
                .as_ref()
                .and_then(|l| l[r])
                .unwrap_or(r as i64 + 1),
            image_id: iid,
            category_id: cid,
            bbox: b,
            area: area.as_ref().and_then(|a| a[r]),
            iscrowd: iscrowd.as_ref().and_then(|a| a[r]),
            segmentation: seg.as_ref().and_then(|s| s[r].as_ref()).map(|s| {
                serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.clone()))
            }),
        });
    }
    for m in meta_cats {
        if !cats.contains_key(&m.id) && !cats.values().any(|c| c.name == m.name) {
            cats.insert(m.id, m);
        }
    }
    anns.sort_by_key(|a| a.id);
    Ok((
        CocoFile {
            images: images.into_values().collect(),
            annotations: anns,
            categories: cats.into_values().collect(),
        },
        assets,
    ))
}

/// Export a version to a COCO detection JSON file (and, with `opts.images`, write every
/// referenced image asset into that folder under its file name).
pub async fn export_coco(
    cat: &Catalog,
    dataset: &str,
    reference: &str,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let snap = open_version(cat, dataset, reference).await?;
    opts.progress.phase("reading labels", None);
    let (coco, assets) = to_coco(&snap).await?;
    let mut written = 0u64;
    if let Some(dir) = &opts.images {
        let with_hash: Vec<(String, String)> = assets
            .into_iter()
            .filter_map(|(f, h)| h.map(|h| (f, h)))
            .collect();
        written = write_images(cat, dir, &with_hash, opts).await?;
    }
    opts.progress.phase("writing COCO JSON", None);
    write_atomic(out, |file| {
        let mut w = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut w, &coco)?;
        std::io::Write::flush(&mut w).map_err(|e| io_err(out, e))?;
        Ok(())
    })?;
    opts.progress.finish();
    Ok(ExportReport {
        commit: snap.commit().clone(),
        labels: coco.annotations.len() as u64,
        images: coco.images.len() as u64,
        assets: written,
    })
}

/// Write the assets `(file name, image_hash hex)` from the asset store to `dir/<file>`
/// (for exports that carry their images); returns how many were written.
async fn write_images(
    cat: &Catalog,
    dir: &Path,
    images: &[(String, String)],
    opts: &ExportOptions,
) -> Result<u64> {
    opts.progress
        .phase("writing images", Some(images.len() as u64));
    let store = cat.assets();
    for (file, hex) in images {
        let hash = quiver_tree::Hash::from_hex(hex).ok_or_else(|| CoreError::Corrupt {
            what: format!("image_hash of sample '{file}'"),
            reason: format!("'{hex}' is not a blake3 hash"),
        })?;
        let dest = safe_join(dir, file)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_err(parent, e))?;
        }
        store.get_to_file(&hash, &dest).await?;
        opts.progress.advance(1);
    }
    Ok(images.len() as u64)
}

/// `dir/rel`, refusing paths that would leave `dir`.
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    let ok = p
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !ok {
        return Err(CoreError::InvalidInput {
            file: rel.to_string(),
            position: None,
            reason: "file name is not a relative path inside the export folder".into(),
        });
    }
    Ok(dir.join(p))
}

/// One box of a YOLO export: (class id, x_center, y_center, width, height, label key).
type YoloLine = (i64, [f64; 4], i64);

/// Export a version as a YOLO folder: `labels/<sample path without extension>.txt` (one
/// `class x_center y_center width height` line per label, numbers written so that they
/// parse back to the same values, hence the same stable label keys on re-import),
/// `classes.txt` (the class of every `class_id`, one per line, in id order), and with
/// `opts.images` every referenced image from the asset store at `<images>/<sample_id>`.
/// Class ids no label uses are named by the dataset's schema registry (else `class_<id>`).
/// The dataset needs the columns of a YOLO import ([`super::yolo::schema`]); `image_hash`
/// is only needed for images.
pub async fn export_yolo(
    cat: &Catalog,
    dataset: &str,
    reference: &str,
    out: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let snap = open_version(cat, dataset, reference).await?;
    opts.progress.phase("reading labels", None);
    let batches = snap.scan(None).await?;
    let missing = |c: &str| {
        CoreError::ColumnNotFound {
        dataset: dataset.into(),
        column: format!("{c} (a YOLO export needs sample_id, class_id, class, x_center, y_center, width, height)"),
    }
    };
    let mut files: BTreeMap<String, Vec<YoloLine>> = BTreeMap::new();
    let mut classes: BTreeMap<i64, String> = BTreeMap::new();
    let mut images: BTreeMap<String, String> = BTreeMap::new();
    let mut labels = 0u64;
    for b in &batches {
        let col = |name: &str, t: &DataType| -> Result<ArrayRef> {
            let c = b.column_by_name(name).ok_or_else(|| missing(name))?;
            Ok(arrow::compute::cast(c, t)?)
        };
        let sample = col("sample_id", &DataType::Utf8)?;
        let sample = sample.as_string::<i32>();
        let label = col("label_id", &DataType::Int64)?;
        let label = label.as_primitive::<Int64Type>();
        let class_id = col("class_id", &DataType::Int64)?;
        let class_id = class_id.as_primitive::<Int64Type>();
        let class = col("class", &DataType::Utf8)?;
        let class = class.as_string::<i32>();
        let nums = ["x_center", "y_center", "width", "height"]
            .iter()
            .map(|n| col(n, &DataType::Float64))
            .collect::<Result<Vec<_>>>()?;
        let hash = match b.column_by_name("image_hash") {
            Some(c) => Some(arrow::compute::cast(c, &DataType::Utf8)?),
            None => None,
        };
        for r in 0..b.num_rows() {
            if sample.is_null(r) || class_id.is_null(r) || nums.iter().any(|n| n.is_null(r)) {
                continue;
            }
            let id = class_id.value(r);
            if !class.is_null(r) {
                let name = class.value(r);
                match classes.get(&id) {
                    Some(known) if known != name => {
                        return Err(CoreError::InvalidInput {
                            file: format!("{dataset}@{reference}"),
                            position: None,
                            reason: format!(
                                "class_id {id} is '{known}' in one label and '{name}' in another: \
                                 a YOLO class names file has one name per id"
                            ),
                        })
                    }
                    Some(_) => {}
                    None => {
                        classes.insert(id, name.to_string());
                    }
                }
            }
            let v = |i: usize| nums[i].as_primitive::<Float64Type>().value(r);
            let s = sample.value(r).to_string();
            if let Some(h) = hash.as_ref().map(|h| h.as_string::<i32>()) {
                if !h.is_null(r) {
                    images.insert(s.clone(), h.value(r).to_string());
                }
            }
            files
                .entry(s)
                .or_default()
                .push((id, [v(0), v(1), v(2), v(3)], label.value(r)));
            labels += 1;
        }
    }
    if let Some((id, _)) = classes.iter().find(|(id, _)| **id < 0) {
        return Err(CoreError::InvalidInput {
            file: format!("{dataset}@{reference}"),
            position: None,
            reason: format!("class_id {id} is negative: YOLO class ids start at 0"),
        });
    }
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    opts.progress
        .phase("writing label files", Some(files.len() as u64));
    let labels_dir = out.join("labels");
    for (sample, mut lines) in files {
        let dest = safe_join(&labels_dir, &sample)?.with_extension("txt");
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        lines.sort_by_key(|l| l.2);
        let text: String = lines
            .iter()
            .map(|(c, v, _)| format!("{c} {} {} {} {}\n", v[0], v[1], v[2], v[3]))
            .collect();
        std::fs::write(&dest, text).map_err(|e| io_err(&dest, e))?;
        opts.progress.advance(1);
    }
    // ids no exported label uses: named by the dataset's current schema version, if any
    if let Some((_, taxonomy)) = snap.dataset().taxonomies().await?.pop() {
        for (name, id) in taxonomy.classes {
            classes.entry(id).or_insert(name);
        }
    }
    let max = classes.keys().next_back().copied().unwrap_or(-1);
    let names: String = (0..=max)
        .map(|id| {
            classes
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("class_{id}"))
                + "\n"
        })
        .collect();
    let names_path = out.join("classes.txt");
    std::fs::write(&names_path, names).map_err(|e| io_err(&names_path, e))?;
    let mut written = 0u64;
    if let Some(dir) = &opts.images {
        let images: Vec<(String, String)> = images.clone().into_iter().collect();
        written = write_images(cat, dir, &images, opts).await?;
    }
    opts.progress.finish();
    Ok(ExportReport {
        commit: snap.commit().clone(),
        labels,
        images: images.len() as u64,
        assets: written,
    })
}
