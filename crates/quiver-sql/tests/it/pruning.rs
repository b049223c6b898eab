//! The slice query prunes: on time-clustered labels, "last quarter's approved labels at
//! tag v1" reads far fewer leaves than the snapshot holds, and returns the same rows as a
//! scan without pruning.

use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::array::{Array, Int64Array as DfInt64};
use quiver_core::{Catalog, DatasetOptions};
use quiver_sql::context::QuiverContext;

const GROUPS: i64 = 4000;
const DAY_US: i64 = 86_400_000_000;
const START_US: i64 = 1_700_000_000_000_000;

fn labels() -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Int64, false),
        Field::new("label_id", DataType::Int32, false),
        Field::new("review_state", DataType::Utf8, true),
        Field::new(
            "reviewed_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
    ]));
    let (mut s, mut l, mut st, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for g in 0..GROUPS {
        for lab in 0..2 {
            s.push(g);
            l.push(lab);
            st.push(if (g + lab as i64) % 3 == 0 {
                "pending"
            } else {
                "approved"
            });
            // two years, clustered with the group key
            at.push(START_US + g * (730 * DAY_US / GROUPS));
        }
    }
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(s)),
            Arc::new(Int32Array::from(l)),
            Arc::new(StringArray::from(st)),
            Arc::new(TimestampMicrosecondArray::from(at)),
        ],
    )
    .unwrap();
    (schema, b)
}

/// The single Int64 value of a one-row result.
fn count(b: &[RecordBatch]) -> i64 {
    b[0].column(0)
        .as_any()
        .downcast_ref::<DfInt64>()
        .unwrap()
        .value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slice_query_prunes_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let (schema, batch) = labels();
    let ds = cat
        .create_dataset(
            "labels",
            schema,
            DatasetOptions {
                // small chunks: many partitions for the statistics to prune
                chunk_groups: 16,
                ..DatasetOptions::default()
            },
        )
        .await
        .unwrap();
    ds.append("main", &[batch], "load").await.unwrap();
    let ctx = QuiverContext::new(cat).await.unwrap();
    ctx.sql("CREATE TAG 'v1' ON labels").await.unwrap();

    // last quarter of the two years
    let cutoff = chrono::DateTime::from_timestamp_micros(START_US + 640 * DAY_US)
        .unwrap()
        .naive_utc();
    let q = format!(
        "SELECT count(*) AS n FROM labels AS OF TAG 'v1' \
         WHERE reviewed_at >= TIMESTAMP '{}' AND review_state = 'approved'",
        cutoff.format("%Y-%m-%d %H:%M:%S")
    );
    let n = count(&ctx.sql(&q).await.unwrap());
    let stats = ctx.last_scan_stats().unwrap();

    // the same count without any pruning (filter evaluated above a full scan)
    let full = ctx
        .sql(&format!(
            "SELECT sum(CASE WHEN reviewed_at >= TIMESTAMP '{}' AND review_state = 'approved' THEN 1 ELSE 0 END) FROM labels",
            cutoff.format("%Y-%m-%d %H:%M:%S")
        ))
        .await
        .unwrap();
    let full_stats = ctx.last_scan_stats().unwrap();
    let expect = count(&full);
    assert_eq!(n, expect);
    assert!(n > 0);

    assert_eq!(full_stats.rows_kept, full_stats.rows_total);
    assert!(full_stats.leaves_kept > 50, "{full_stats:?}");
    assert!(stats.entries_pruned > 0, "{stats:?}");
    assert!(
        stats.leaves_kept * 4 < full_stats.leaves_kept,
        "slice read {} of {} leaves",
        stats.leaves_kept,
        full_stats.leaves_kept
    );
    assert!(stats.rows_kept * 4 < stats.rows_total, "{stats:?}");

    eprintln!("slice: {stats:?}\nfull: {full_stats:?}");

    // EXPLAIN shows the Parquet scan with the pushed-down predicate
    let plan = ctx.sql(&format!("EXPLAIN {q}")).await.unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
        .unwrap()
        .to_string();
    assert!(text.contains("DataSourceExec"), "{text}");
    assert!(text.contains("predicate="), "{text}");

    // Kept partitions and plans are cached per version: the same query in a new session on
    // a freshly opened catalog gives the same rows and the same pruning statistics ...
    let cat2 = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ctx2 = QuiverContext::new(cat2).await.unwrap();
    assert_eq!(count(&ctx2.sql(&q).await.unwrap()), n);
    assert_eq!(ctx2.last_scan_stats().unwrap(), stats);
    // ... and a new version never reuses another version's selection
    let pred = format!(
        "reviewed_at >= TIMESTAMP '{}' AND review_state = 'approved'",
        cutoff.format("%Y-%m-%d %H:%M:%S")
    );
    ctx2.sql(&format!("DELETE FROM labels WHERE {pred}"))
        .await
        .unwrap();
    let head = format!("SELECT count(*) AS n FROM labels WHERE {pred}");
    assert_eq!(count(&ctx2.sql(&head).await.unwrap()), 0);
    assert_eq!(count(&ctx2.sql(&q).await.unwrap()), n, "tag v1 changed");
}

/// Reads can ask for a schema version: a filter on `schema_version` prunes with the tree
/// statistics (the demo data follows 2.2 for its first half of samples, 2.3 after).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_version_filter_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset(
            "demo",
            quiver_core::demo::schema(),
            quiver_core::demo::options(),
        )
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = quiver_core::demo::DemoLabels::new(20_000, 3).collect();
    ds.append("main", &batches, "load").await.unwrap();
    let ctx = QuiverContext::new(cat).await.unwrap();
    let n = count(
        &ctx.sql("SELECT count(*) FROM demo WHERE schema_version = '2.3'")
            .await
            .unwrap(),
    );
    let stats = ctx.last_scan_stats().unwrap();
    let expect = count(
        &ctx.sql("SELECT sum(CASE WHEN schema_version = '2.3' THEN 1 ELSE 0 END) FROM demo")
            .await
            .unwrap(),
    );
    let full = ctx.last_scan_stats().unwrap();
    assert_eq!(n, expect);
    assert!(n > 0 && (n as u64) < full.rows_total);
    assert!(stats.entries_pruned > 0, "{stats:?}");
    assert!(
        stats.leaves_kept * 10 < full.leaves_kept * 6,
        "read {} of {} leaves",
        stats.leaves_kept,
        full.leaves_kept
    );
}
