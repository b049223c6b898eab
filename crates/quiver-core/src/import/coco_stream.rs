//! COCO import in bounded memory: the JSON is read as a stream, never whole.
//!
//! 1. **Index.** One pass keeps the images and categories and, of each annotation, only
//!    what validation needs ([`AnnIndex`], 32 bytes). The whole file is validated before
//!    anything is stored, with the same errors as the whole-file import.
//! 2. **Partition.** Images sorted by `file_name` (the group key) are cut into buckets of
//!    about `stream_batch_rows` annotations, never splitting an image. A second pass turns
//!    each annotation into its label row and appends it to its bucket, spilled to a
//!    temporary Arrow IPC file once there is more than one bucket.
//! 3. **Load.** Bucket by bucket, in key order: its rows are sorted by (`sample_id`,
//!    `label_id`) and pushed into the new base ([`SortedLoad`]).
//!
//! Memory is the images and categories, 32 bytes per annotation, one bucket and a small
//! buffer per bucket: not the file, its JSON tree or all of its rows. An import into a
//! dataset that already has labels, or into another branch than `main`, is a re-import
//! (labels upserted and deleted by key): [`super::coco`] reads that one whole.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::interleave_record_batch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::bulk::{sorted_order, SortedLoad};
use super::coco::{
    json_err, schema, validate_parts, AnnIndex, CocoAnnotation, CocoCategory, CocoImage, Lookup,
};
use super::{conform_to, io_err, ImportOptions, ImportReport, Progress};
use crate::catalog::Catalog;
use crate::error::{CoreError, Result};

/// Bytes read at a time from the JSON file.
const READ_BUFFER: usize = 1 << 20;

/// A file's images, categories and annotation index (the first pass).
pub(crate) struct Indexed {
    pub images: Vec<CocoImage>,
    pub categories: Vec<CocoCategory>,
    pub annotations: Vec<AnnIndex>,
}

/// Counts the bytes read, for the progress bar.
struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// The top-level object of a COCO file, visited key by key: `images` and `categories`
/// kept (when `keep` is set), each annotation read as a `T` and handed to `each`, every
/// other key skipped.
struct Top<T, F> {
    keep: bool,
    element: std::marker::PhantomData<T>,
    each: F,
    images: Option<Vec<CocoImage>>,
    categories: Option<Vec<CocoCategory>>,
    annotations: bool,
    /// An error of `each`, which serde can only carry as text.
    failed: Option<CoreError>,
}

impl<'de, T, F> Visitor<'de> for &mut Top<T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<()>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a COCO object with images, annotations and categories")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "images" => kept_list(&mut map, &mut self.images, self.keep, "images")?,
                "categories" => kept_list(&mut map, &mut self.categories, self.keep, "categories")?,
                "annotations" => {
                    if self.annotations {
                        return Err(A::Error::duplicate_field("annotations"));
                    }
                    self.annotations = true;
                    map.next_value_seed(Annotations(&mut *self))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for (seen, name) in [
            (self.images.is_some(), "images"),
            (self.annotations, "annotations"),
            (self.categories.is_some(), "categories"),
        ] {
            if !seen {
                return Err(A::Error::missing_field(name));
            }
        }
        Ok(())
    }
}

/// The value of a top-level `images` or `categories` key into `slot`: read when `keep`,
/// else skipped (and recorded as seen); a second occurrence of the key is an error.
fn kept_list<'de, A: MapAccess<'de>, T: serde::Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<Vec<T>>,
    keep: bool,
    name: &'static str,
) -> std::result::Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(if keep {
        map.next_value()?
    } else {
        map.next_value::<IgnoredAny>()?;
        Vec::new()
    });
    Ok(())
}

/// The `annotations` array, element by element.
struct Annotations<'t, T, F>(&'t mut Top<T, F>);

impl<'de, T, F> DeserializeSeed<'de> for Annotations<'_, T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<()>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F> Visitor<'de> for Annotations<'_, T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<()>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of annotations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(a) = seq.next_element::<T>()? {
            if let Err(e) = (self.0.each)(a) {
                self.0.failed = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Read `path` as a stream, handing each annotation to `each`; with `keep`, returns the
/// images and categories.
fn read_stream<T, F>(
    path: &Path,
    keep: bool,
    progress: &dyn Progress,
    each: F,
) -> Result<(Vec<CocoImage>, Vec<CocoCategory>)>
where
    T: serde::de::DeserializeOwned,
    F: FnMut(T) -> Result<()>,
{
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    // serde_json reads byte by byte: the buffer goes outside the counting reader, which
    // then sees (and reports) a megabyte at a time
    let reader = BufReader::with_capacity(
        READ_BUFFER,
        Counting {
            inner: file,
            progress,
        },
    );
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut top = Top {
        keep,
        element: std::marker::PhantomData,
        each,
        images: None,
        categories: None,
        annotations: false,
        failed: None,
    };
    let parsed = serde::Deserializer::deserialize_map(&mut de, &mut top).and_then(|()| de.end());
    if let Some(e) = top.failed.take() {
        return Err(e);
    }
    parsed.map_err(|e| json_err(path, e))?;
    Ok((
        top.images.unwrap_or_default(),
        top.categories.unwrap_or_default(),
    ))
}

/// An annotation as the first pass reads it: every field [`CocoAnnotation`] has, with the
/// same types, but the segmentation (any JSON) is checked and skipped, not built.
#[derive(serde::Deserialize)]
struct Checked {
    id: i64,
    image_id: i64,
    category_id: i64,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    #[serde(default)]
    #[allow(dead_code)]
    area: Option<f64>,
    #[serde(default)]
    #[allow(dead_code)]
    iscrowd: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    segmentation: Option<IgnoredAny>,
}

/// First pass: images, categories and the annotation index, validated.
pub(crate) fn index(path: &Path, progress: &dyn Progress) -> Result<Indexed> {
    let size = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    progress.phase("reading COCO JSON", Some(size));
    let mut annotations = Vec::new();
    let (images, categories) = read_stream(path, true, progress, |a: Checked| {
        annotations.push(AnnIndex::new(
            a.id,
            a.image_id,
            a.category_id,
            a.bbox.as_deref(),
        ));
        Ok(())
    })?;
    validate_parts(path, &images, &categories, &annotations)?;
    Ok(Indexed {
        images,
        categories,
        annotations,
    })
}

/// Images cut into buckets in `file_name` order: each image's bucket, and the bucket count.
fn buckets(
    images: &[CocoImage],
    annotations: &[AnnIndex],
    lookup: &Lookup,
    bucket_rows: usize,
) -> (Vec<u32>, usize) {
    let mut per_image = vec![0u64; images.len()];
    for a in annotations {
        if let Some(i) = lookup.image(a.image_id) {
            per_image[i] += 1;
        }
    }
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_unstable_by(|&a, &b| images[a].file_name.cmp(&images[b].file_name));
    let mut bucket_of = vec![0u32; images.len()];
    let (mut bucket, mut filled) = (0u32, 0u64);
    for i in order {
        if filled > 0 && filled + per_image[i] > bucket_rows as u64 {
            bucket += 1;
            filled = 0;
        }
        bucket_of[i] = bucket;
        filled += per_image[i];
    }
    (bucket_of, bucket as usize + 1)
}

/// One bucket of label rows: in memory, or spilled to an Arrow IPC file once it holds
/// more than its buffer.
struct Bucket {
    pending: Vec<CocoAnnotation>,
    spill: Option<(PathBuf, StreamWriter<BufWriter<File>>)>,
}

/// A directory for the spilled buckets, removed when dropped.
fn spill_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("quiver-coco-")
        .tempdir()
        .map_err(|e| io_err(&std::env::temp_dir(), e))
}

/// Second pass: every annotation as a label row in its bucket. Returns the buckets in
/// key order, each as its spill file (if any) and the rows still in memory.
fn partition(
    path: &Path,
    lookup: &Lookup,
    bucket_of: &[u32],
    n_buckets: usize,
    total: u64,
    progress: &dyn Progress,
    spill: Option<&tempfile::TempDir>,
) -> Result<Vec<(Option<PathBuf>, Vec<RecordBatch>)>> {
    // a bucket's rows are converted and written a few thousand at a time
    let flush_at = if n_buckets == 1 {
        super::coco::BATCH_ROWS
    } else {
        (total as usize / n_buckets).clamp(256, 8192)
    };
    let size = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    progress.phase("partitioning labels by sample", Some(size));
    let mut out: Vec<Bucket> = (0..n_buckets)
        .map(|_| Bucket {
            pending: Vec::new(),
            spill: None,
        })
        .collect();
    let mut kept: Vec<Vec<RecordBatch>> = vec![Vec::new(); n_buckets];
    let flush = |b: &mut Bucket, k: usize, kept: &mut Vec<RecordBatch>| -> Result<()> {
        if b.pending.is_empty() {
            return Ok(());
        }
        let rows = lookup.rows(&b.pending)?;
        b.pending.clear();
        let Some(spill) = spill else {
            kept.push(rows);
            return Ok(());
        };
        if b.spill.is_none() {
            let p = spill.path().join(format!("bucket-{k}.arrows"));
            let f = File::create(&p).map_err(|e| io_err(&p, e))?;
            let w = StreamWriter::try_new(BufWriter::new(f), &schema())?;
            b.spill = Some((p, w));
        }
        if let Some((_, w)) = b.spill.as_mut() {
            w.write(&rows)?;
        }
        Ok(())
    };
    read_stream(path, false, progress, |a: CocoAnnotation| {
        let k = lookup
            .image(a.image_id)
            .and_then(|i| bucket_of.get(i))
            .copied()
            .unwrap_or(0) as usize;
        let b = &mut out[k];
        b.pending.push(a);
        if b.pending.len() >= flush_at {
            flush(b, k, &mut kept[k])?;
        }
        Ok(())
    })?;
    let mut done = Vec::with_capacity(n_buckets);
    for (k, (mut b, mut kept)) in out.into_iter().zip(kept).enumerate() {
        flush(&mut b, k, &mut kept)?;
        let file = match b.spill {
            Some((p, mut w)) => {
                w.finish()?;
                Some(p)
            }
            None => None,
        };
        done.push((file, kept));
    }
    Ok(done)
}

/// A bucket's rows, conformed to `target` and sorted by (`sample_id`, `label_id`).
fn sorted_bucket(
    file: Option<&Path>,
    kept: Vec<RecordBatch>,
    target: &arrow::datatypes::SchemaRef,
    source: &str,
) -> Result<Option<RecordBatch>> {
    let mut batches = Vec::new();
    if let Some(p) = file {
        let f = File::open(p).map_err(|e| io_err(p, e))?;
        for b in StreamReader::try_new(BufReader::new(f), None)? {
            batches.push(conform_to(&b?, target, source)?);
        }
    }
    for b in kept {
        batches.push(conform_to(&b, target, source)?);
    }
    let (gi, li) = (target.index_of("sample_id")?, target.index_of("label_id")?);
    let order = sorted_order(&batches, gi, li, source)?;
    if order.is_empty() {
        return Ok(None);
    }
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    Ok(Some(interleave_record_batch(&refs, &order)?))
}

/// Stream a COCO file into a new dataset (or an empty version of one) on `main`; `None`
/// when the target holds labels or is another branch (the caller re-imports it whole).
/// Bad input fails in the first pass, before any image is stored.
pub(crate) async fn import(
    cat: &Catalog,
    file: &Path,
    opts: &ImportOptions,
) -> Result<Option<ImportReport>> {
    let progress = opts.progress.clone();
    let path = file.to_path_buf();
    let ix = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || index(&path, progress.as_ref()))
            .await
            .map_err(|e| CoreError::Join(e.to_string()))??
    };
    if ix.annotations.is_empty() {
        return Ok(None);
    }
    let source = file.display().to_string();
    let Some(mut load) = SortedLoad::begin(
        cat,
        opts,
        ("sample_id", "label_id"),
        &schema(),
        source.clone(),
    )
    .await?
    else {
        return Ok(None);
    };
    let (hashes, asset_bytes) = match &opts.images {
        Some(dir) => {
            let files = super::coco::image_files(&ix.images, dir, file)?;
            let (h, b) = super::put_assets(cat, &files, progress.as_ref()).await?;
            (Some(h), b)
        }
        None => (None, 0),
    };
    let total = ix.annotations.len() as u64;
    let bucket_rows = opts.stream_batch_rows.max(1);
    let path = file.to_path_buf();
    let parts = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let Indexed {
                images,
                categories,
                annotations,
            } = ix;
            let lookup = Lookup::new(&images, &categories, hashes.as_deref());
            let (bucket_of, n_buckets) = buckets(&images, &annotations, &lookup, bucket_rows);
            // validated and counted: the index is not needed any more
            drop(annotations);
            let spill = if n_buckets > 1 {
                Some(spill_dir()?)
            } else {
                None
            };
            let parts = partition(
                &path,
                &lookup,
                &bucket_of,
                n_buckets,
                total,
                progress.as_ref(),
                spill.as_ref(),
            )?;
            drop(lookup);
            let assets = hashes.as_ref().map(|h| h.len() as u64).unwrap_or(0);
            Ok((parts, spill, categories, assets))
        })
        .await
        .map_err(|e| CoreError::Join(e.to_string()))??
    };
    let (parts, spill, categories, assets) = parts;
    progress.phase("writing labels", Some(total));
    let target = load.schema().clone();
    for (file, kept) in parts {
        let Some(rows) = sorted_bucket(file.as_deref(), kept, &target, &source)? else {
            continue;
        };
        if !load.push(rows, progress.as_ref()).await? {
            // validated ids are unique and buckets follow key order: not reachable
            return Err(CoreError::Corrupt {
                what: source,
                reason: "streamed COCO rows out of key order".into(),
            });
        }
    }
    drop(spill);
    let mut report = load
        .finish(opts.message.as_deref(), progress.as_ref())
        .await?;
    report.assets = assets;
    report.asset_bytes = asset_bytes;
    super::coco::keep_categories(cat, &opts.dataset, &categories).await?;
    Ok(Some(report))
}
