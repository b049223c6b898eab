//! Deterministic synthetic computer-vision labels for first runs, tests and benchmarks.
//!
//! Samples `img-0000000…` carry 1–8 labels each (boxes of ~80 COCO classes) with a score,
//! a review state, a reviewer and a review time. Review times grow with the sample number
//! (data arrives over two years, oldest first) with a few days of jitter, so time-sliced
//! queries can prune. The same `seed` and row count always give the same rows.

use std::sync::Arc;

use arrow::array::{Float32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::catalog::DatasetOptions;

/// The 80 COCO class names.
pub const CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];
const REVIEWERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
/// 2024-01-01T00:00:00Z in microseconds.
pub const START_MICROS: i64 = 1_704_067_200_000_000;
const TWO_YEARS_MICROS: i64 = 2 * 365 * 86_400 * 1_000_000;

/// Schema of the demo labels.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Utf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("image_hash", DataType::Utf8, false),
        Field::new("class", DataType::Utf8, false),
        Field::new("bbox_x", DataType::Float32, false),
        Field::new("bbox_y", DataType::Float32, false),
        Field::new("bbox_w", DataType::Float32, false),
        Field::new("bbox_h", DataType::Float32, false),
        Field::new("score", DataType::Float32, true),
        Field::new("review_state", DataType::Utf8, false),
        Field::new("reviewer", DataType::Utf8, true),
        Field::new(
            "reviewed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("schema_version", DataType::Utf8, false),
    ]))
}

/// Dataset options for demo data: statistics on the columns label queries filter on.
pub fn options() -> DatasetOptions {
    DatasetOptions {
        stats_columns: Some(vec![
            "class".into(),
            "score".into(),
            "review_state".into(),
            "reviewed_at".into(),
            "schema_version".into(),
        ]),
        ..DatasetOptions::default()
    }
}

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Generator of demo labels in batches of about `batch_rows` rows.
pub struct DemoLabels {
    rows: u64,
    produced: u64,
    sample: u64,
    samples_total: u64,
    rng: SplitMix,
    batch_rows: usize,
}

impl DemoLabels {
    /// About `rows` labels (whole samples, so the exact count can differ by a few).
    pub fn new(rows: u64, seed: u64) -> Self {
        DemoLabels {
            rows,
            produced: 0,
            sample: 0,
            samples_total: (rows / 4).max(1),
            rng: SplitMix(seed),
            batch_rows: 256 * 1024,
        }
    }

    /// Rows per generated batch.
    pub fn with_batch_rows(mut self, n: usize) -> Self {
        self.batch_rows = n.max(1);
        self
    }
}

impl Iterator for DemoLabels {
    type Item = RecordBatch;
    fn next(&mut self) -> Option<RecordBatch> {
        if self.produced >= self.rows {
            return None;
        }
        let cap = self.batch_rows.min((self.rows - self.produced) as usize) + 8;
        let (mut sid, mut lid, mut ih, mut cls) = (
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
        );
        let (mut bx, mut by, mut bw, mut bh, mut sc) = (
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
        );
        let (mut rs, mut rv, mut ra, mut sv) = (
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
            Vec::with_capacity(cap),
        );
        while sid.len() < self.batch_rows && self.produced < self.rows {
            let s = self.sample;
            self.sample += 1;
            let name = format!("img-{s:08}");
            let hash = blake3::hash(name.as_bytes()).to_hex().to_string();
            let n = 1 + (self.rng.next() % 7) as usize;
            let base_t = START_MICROS
                + (s.min(self.samples_total) as i64
                    * (TWO_YEARS_MICROS / self.samples_total as i64));
            for j in 0..n {
                if self.produced >= self.rows {
                    break;
                }
                self.produced += 1;
                let r = self.rng.next();
                sid.push(name.clone());
                lid.push(j as i64);
                ih.push(hash.clone());
                cls.push(CLASSES[(r % 80) as usize]);
                let (x, y) = (self.rng.unit() * 0.8, self.rng.unit() * 0.8);
                bx.push(x);
                by.push(y);
                bw.push((self.rng.unit() * (1.0 - x)).max(0.01));
                bh.push((self.rng.unit() * (1.0 - y)).max(0.01));
                let state = match r >> 60 {
                    0..=10 => "approved",
                    11..=13 => "pending",
                    _ => "rejected",
                };
                sc.push(if state == "pending" {
                    None
                } else {
                    Some(self.rng.unit())
                });
                rs.push(state);
                if state == "pending" {
                    rv.push(None);
                    ra.push(None);
                } else {
                    rv.push(Some(REVIEWERS[((r >> 8) % 12) as usize]));
                    let jitter = ((r >> 16) % (3 * 86_400)) as i64 * 1_000_000;
                    ra.push(Some(base_t + jitter));
                }
                sv.push(if s < self.samples_total / 2 {
                    "2.2"
                } else {
                    "2.3"
                });
            }
        }
        let cols: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(StringArray::from(sid)),
            Arc::new(Int64Array::from(lid)),
            Arc::new(StringArray::from(ih)),
            Arc::new(StringArray::from(cls)),
            Arc::new(Float32Array::from(bx)),
            Arc::new(Float32Array::from(by)),
            Arc::new(Float32Array::from(bw)),
            Arc::new(Float32Array::from(bh)),
            Arc::new(Float32Array::from(sc)),
            Arc::new(StringArray::from(rs)),
            Arc::new(StringArray::from(rv)),
            Arc::new(TimestampMicrosecondArray::from(ra).with_timezone("UTC")),
            Arc::new(StringArray::from(sv)),
        ];
        RecordBatch::try_new(schema(), cols).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a: Vec<RecordBatch> = DemoLabels::new(1000, 7).with_batch_rows(300).collect();
        let b: Vec<RecordBatch> = DemoLabels::new(1000, 7).with_batch_rows(300).collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
    }
}
