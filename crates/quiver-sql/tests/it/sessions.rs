//! Sessions start from a shared template (the DataFusion state with its default functions
//! and rules) but share nothing a statement can change: settings, tables registered on the
//! DataFusion context, the session branch. Datasets are listed when a statement of the
//! session first enumerates tables and opened on first use, so one created or dropped by
//! another session shows correctly.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionConfig;
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;
use quiver_sql::SessionOptions;

async fn session(
    cat: &Catalog,
    runtime: &Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> QuiverContext {
    let opts = SessionOptions {
        runtime: Some(runtime.clone()),
        ..Default::default()
    };
    QuiverContext::with_options(cat.clone(), SessionConfig::new(), opts)
        .await
        .unwrap()
}

async fn count(ctx: &QuiverContext, sql: &str) -> usize {
    ctx.sql(sql)
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

fn names(batches: &[RecordBatch]) -> Vec<String> {
    column(batches, "table_name")
}

fn column(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = datafusion::arrow::compute::cast(
            b.column(b.schema().index_of(name).unwrap()),
            &DataType::Utf8,
        )
        .unwrap();
        let col = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .unwrap();
        out.extend(col.iter().flatten().map(str::to_string));
    }
    out.sort();
    out
}

/// A session lists the catalog's datasets when a statement first enumerates tables, not
/// when it opens: one opened before another session made a dataset lists it, by every
/// route to the listing.
#[tokio::test]
async fn every_table_listing_names_datasets_made_after_the_session_opened() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let runtime = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
    let early = session(&cat, &runtime).await;
    let other = session(&cat, &runtime).await;
    // the sessions run a statement that lists nothing before the dataset exists
    early.sql("SELECT 1").await.unwrap();
    let writer = session(&cat, &runtime).await;
    writer
        .sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL) KEY (sample_id, label_id)")
        .await
        .unwrap();
    writer.sql("INSERT INTO ds VALUES ('a', 1)").await.unwrap();
    let show = early.sql("SHOW TABLES").await.unwrap();
    assert!(column(&show, "table_name").contains(&"ds".to_string()));
    // information_schema in a subquery, with its name in capitals
    let nested = "SELECT n.table_name FROM (SELECT table_name FROM INFORMATION_SCHEMA.tables \
                  WHERE table_schema = 'public') AS n";
    assert_eq!(
        column(&other.sql(nested).await.unwrap(), "table_name"),
        vec!["ds"]
    );
    // and its columns
    let cols = "SELECT column_name FROM information_schema.columns WHERE table_name = 'ds'";
    assert_eq!(
        column(
            &session(&cat, &runtime).await.sql(cols).await.unwrap(),
            "column_name"
        ),
        vec!["label_id", "sample_id"]
    );
    // a statement that names no listing leaves it alone: a plain read still works
    assert_eq!(count(&early, "SELECT * FROM ds").await, 1);
}

#[tokio::test]
async fn sessions_from_one_template_share_nothing_a_statement_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let runtime = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
    let a = session(&cat, &runtime).await;
    a.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, class VARCHAR) KEY (sample_id, label_id)")
        .await
        .unwrap();
    a.sql("INSERT INTO ds VALUES ('a', 1, 'cat')")
        .await
        .unwrap();
    // a setting and a catalog of one session stay in it
    a.session()
        .state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set("datafusion.execution.batch_size", "7")
        .unwrap();
    a.session().register_catalog(
        "scratch",
        Arc::new(datafusion::catalog::MemoryCatalogProvider::new()),
    );
    let c = session(&cat, &runtime).await;
    assert_eq!(c.session().state().config().batch_size(), 8192);
    assert_eq!(a.session().state().config().batch_size(), 7);
    assert!(c.session().catalog("scratch").is_none());
    assert!(a.session().catalog("scratch").is_some());
    // the dataset another session created is listed and readable
    let tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'";
    assert_eq!(names(&c.sql(tables).await.unwrap()), vec!["ds".to_string()]);
    assert_eq!(count(&c, "SELECT * FROM ds").await, 1);
    // a session branch is the session's own
    c.sql("CREATE BRANCH side FROM ds").await.unwrap();
    c.sql("USE BRANCH side ON ds").await.unwrap();
    assert_eq!(c.current_branch("ds"), "side");
    let d = session(&cat, &runtime).await;
    assert_eq!(d.current_branch("ds"), "main");
    // a dropped dataset leaves the listing of the session that dropped it
    d.sql("DROP DATASET ds").await.unwrap();
    assert!(names(&d.sql(tables).await.unwrap()).is_empty());
    assert!(d.sql("SELECT * FROM ds").await.is_err());
}
