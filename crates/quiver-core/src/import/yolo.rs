//! YOLO folders: `images/` + `labels/*.txt` (one `class x_center y_center width height`
//! line per box, normalised to 0..1) + a class names file (`classes.txt`, `obj.names` or
//! `classes.names` in the folder, or one given explicitly). Sub-folders (`train/`, `val/`)
//! are walked; a label file `labels/a/b.txt` belongs to the image `images/a/b.<ext>`.
//!
//! Columns: `sample_id` (image path under `images/`), `label_id`, `class_id`, `class`,
//! `x_center`, `y_center`, `width`, `height` and `image_hash` (every image is put into the
//! asset store).
//!
//! **Stable label keys.** A YOLO line has no id, so `label_id` is derived from the line's
//! content — class and the four numbers as parsed (so `0.5` and `0.50` are one box), plus
//! its occurrence among identical lines of the file — never from its position. Deleting
//! one box of an image is one removed label (not "every later box modified"), and
//! re-importing a folder commits only the boxes that changed. The price: a box whose
//! numbers change is a removed box and an added one, as YOLO cannot tell them apart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{
    invalid, io_err, put_assets, within, write_import, ImportOptions, ImportReport, Parsed,
};
use crate::catalog::Catalog;
use crate::error::Result;

const IMAGE_EXTS: [&str; 9] = [
    "jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp", "ppm",
];
const CLASS_FILES: [&str; 4] = ["classes.txt", "obj.names", "classes.names", "labels.txt"];

/// The label schema of YOLO imports.
pub fn schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("sample_id", DataType::Utf8, false),
        f("label_id", DataType::Int64, false),
        f("class_id", DataType::Int64, false),
        f("class", DataType::Utf8, false),
        f("x_center", DataType::Float64, false),
        f("y_center", DataType::Float64, false),
        f("width", DataType::Float64, false),
        f("height", DataType::Float64, false),
        f("image_hash", DataType::Utf8, true),
    ]))
}

/// One parsed box.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloBox {
    pub sample: String,
    /// The stable label key of the box ([`box_key`]).
    pub index: i64,
    pub class_id: i64,
    pub values: [f64; 4],
}

/// Read the class names file (one name per line, blank lines skipped).
pub fn read_classes(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.is_empty() {
        return Err(invalid(path, None, "the class names file is empty"));
    }
    Ok(names)
}

fn find_classes(dir: &Path) -> Result<PathBuf> {
    CLASS_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            invalid(
                dir,
                None,
                format!(
                    "no class names file found (looked for {}; pass one explicitly)",
                    CLASS_FILES.join(", ")
                ),
            )
        })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io_err(dir, e)))
        .collect::<Result<_>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "txt") {
            out.push(p);
        }
    }
    Ok(())
}

fn find_image(images: &Path, rel_stem: &Path) -> Option<PathBuf> {
    for ext in IMAGE_EXTS {
        for e in [ext.to_string(), ext.to_ascii_uppercase()] {
            let p = images.join(rel_stem).with_extension(&e);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The label key of a box: a non-negative 63-bit number from blake3 of its class, the bits
/// of its four numbers and its occurrence among identical boxes of the file (0 for the
/// first).
pub fn box_key(class_id: i64, values: &[f64; 4], occurrence: u32) -> i64 {
    let mut h = blake3::Hasher::new();
    h.update(b"quiver/yolo-box/1");
    h.update(&class_id.to_le_bytes());
    for v in values {
        h.update(&canonical_bits(*v).to_le_bytes());
    }
    h.update(&occurrence.to_le_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&h.finalize().as_bytes()[..8]);
    (u64::from_le_bytes(eight) >> 1) as i64
}

/// The bits of a coordinate with one zero: -0.0 and 0.0 are the same coordinate.
fn canonical_bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// Parse one label file. Errors name the file and the line.
pub fn parse_label_file(path: &Path, sample: &str, classes: usize) -> Result<Vec<YoloBox>> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<(i64, [u64; 4]), u32> =
        std::collections::HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let pos = || Some(format!("line {}", n + 1));
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 5 {
            return Err(invalid(
                path,
                pos(),
                format!(
                    "expected 5 fields (class x_center y_center width height), found {}",
                    fields.len()
                ),
            ));
        }
        let class_id: i64 = fields[0].parse().map_err(|_| {
            invalid(
                path,
                pos(),
                format!("class '{}' is not a non-negative integer", fields[0]),
            )
        })?;
        if class_id < 0 || class_id as usize >= classes {
            return Err(invalid(
                path,
                pos(),
                format!(
                    "class {class_id} is out of range (the class names file has {classes} classes)"
                ),
            ));
        }
        let mut values = [0f64; 4];
        for (i, v) in values.iter_mut().enumerate() {
            let name = ["x_center", "y_center", "width", "height"][i];
            *v = fields[i + 1]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    invalid(
                        path,
                        pos(),
                        format!("{name} '{}' is not a number", fields[i + 1]),
                    )
                })?;
        }
        let occurrence = seen
            .entry((
                class_id,
                values.map(|v| if v == 0.0 { 0 } else { v.to_bits() }),
            ))
            .or_insert(0);
        out.push(YoloBox {
            sample: sample.to_string(),
            index: box_key(class_id, &values, *occurrence),
            class_id,
            values,
        });
        *occurrence += 1;
    }
    Ok(out)
}

/// Import a YOLO folder into a dataset branch as one commit. `classes` overrides the class
/// names file.
pub async fn import(
    cat: &Catalog,
    dir: &Path,
    classes: Option<&Path>,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    // see coco::import: the lease spans the image puts and the commit
    let lease = cat.write_lease("YOLO import").await?;
    let res = import_leased(cat, dir, classes, opts).await;
    lease.release().await;
    res
}

async fn import_leased(
    cat: &Catalog,
    dir: &Path,
    classes: Option<&Path>,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let progress = opts.progress.as_ref();
    let images_dir = dir.join("images");
    let labels_dir = dir.join("labels");
    for d in [&images_dir, &labels_dir] {
        if !d.is_dir() {
            return Err(invalid(
                dir,
                None,
                format!("missing folder {}", d.display()),
            ));
        }
    }
    let class_file = match classes {
        Some(c) => c.to_path_buf(),
        None => find_classes(dir)?,
    };
    let names = read_classes(&class_file)?;
    let mut label_files = Vec::new();
    walk(&labels_dir, &mut label_files)?;
    progress.phase("reading YOLO labels", Some(label_files.len() as u64));
    let mut boxes = Vec::new();
    let mut files = Vec::new();
    for lf in &label_files {
        let rel = lf
            .strip_prefix(&labels_dir)
            .unwrap_or(lf)
            .with_extension("");
        let img = find_image(&images_dir, &rel).ok_or_else(|| {
            invalid(
                lf,
                None,
                format!(
                    "no image for this label file under {} (looked for {}.{{{}}})",
                    images_dir.display(),
                    rel.display(),
                    IMAGE_EXTS.join(",")
                ),
            )
        })?;
        within(&images_dir, &img)
            .map_err(|why| invalid(lf, None, format!("its image {} {why}", img.display())))?;
        let sample = img
            .strip_prefix(&images_dir)
            .unwrap_or(&img)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let parsed = parse_label_file(lf, &sample, names.len())?;
        if !parsed.is_empty() {
            files.push((img.clone(), format!("image of {}", lf.display())));
        }
        boxes.push(parsed);
        progress.advance(1);
    }
    let (hashes, asset_bytes) = put_assets(cat, &files, progress).await?;
    let mut hash_of = std::collections::HashMap::new();
    let mut hi = 0;
    for b in &boxes {
        if let Some(first) = b.first() {
            hash_of.insert(first.sample.clone(), hashes[hi].to_hex());
            hi += 1;
        }
    }
    let all: Vec<YoloBox> = boxes.into_iter().flatten().collect();
    let schema = schema();
    let mut batches = Vec::new();
    for chunk in all.chunks(64 * 1024) {
        let v = |k: usize| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                chunk.iter().map(|b| b.values[k]),
            ))
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|b| b.sample.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|b| b.index))),
            Arc::new(Int64Array::from_iter_values(
                chunk.iter().map(|b| b.class_id),
            )),
            Arc::new(StringArray::from_iter_values(
                chunk.iter().map(|b| names[b.class_id as usize].as_str()),
            )),
            v(0),
            v(1),
            v(2),
            v(3),
            Arc::new(StringArray::from(
                chunk
                    .iter()
                    .map(|b| hash_of.get(&b.sample).cloned())
                    .collect::<Vec<_>>(),
            )),
        ];
        batches.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    let parsed = Parsed {
        schema,
        group_key: "sample_id".into(),
        label_key: "label_id".into(),
        batches,
        source: dir.display().to_string(),
        assets: files.len() as u64,
        asset_bytes,
    };
    write_import(cat, opts, parsed).await
}
