//! What SQL clients expect of any engine (issue 17): result column names as written, ...

use quiver_core::{demo, Catalog};
use quiver_sql::context::QuiverContext;

async fn demo_ctx(dir: &std::path::Path) -> QuiverContext {
    let cat = Catalog::open(dir.to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    let mut txn = ds.begin("main").await.unwrap();
    for b in demo::DemoLabels::new(300, 7) {
        txn.append(&b).await.unwrap();
    }
    txn.commit("demo").await.unwrap();
    QuiverContext::new(cat).await.unwrap()
}

async fn names(ctx: &QuiverContext, sql: &str) -> Vec<String> {
    let df = ctx.sql_df(sql).await.unwrap();
    let planned: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = ctx.sql(sql).await.unwrap();
    let run: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(planned, run, "{sql}");
    planned
}

/// `SELECT 1` gives a column named `1`, not DataFusion's `Int64(1)`; aggregates keep their
/// text (`sum(score)`, not `sum(demo.score)`); aliases and column names are untouched.
#[tokio::test]
async fn unaliased_result_columns_are_named_by_their_sql_text() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = demo_ctx(dir.path()).await;
    assert_eq!(names(&ctx, "SELECT 1").await, ["1"]);
    assert_eq!(names(&ctx, "SELECT 1 + 2, 'a'").await, ["1 + 2", "'a'"]);
    assert_eq!(
        names(
            &ctx,
            "SELECT class, count(*), sum(score) FROM demo GROUP BY class"
        )
        .await,
        ["class", "count(*)", "sum(score)"]
    );
    assert_eq!(
        names(
            &ctx,
            "SELECT d.class, COUNT(*) AS n, max(d.score) FROM demo AS OF BRANCH 'main' d \
             GROUP BY d.class ORDER BY COUNT(*) DESC, max(d.score)"
        )
        .await,
        ["class", "n", "max(d.score)"]
    );
    assert_eq!(
        names(&ctx, "SELECT upper(class) FROM demo UNION SELECT 'X'").await,
        ["upper(class)"]
    );
    // ORDER BY and HAVING over a renamed expression still resolve
    let out = ctx
        .sql("SELECT class, count(*) FROM demo GROUP BY class HAVING count(*) > 0 ORDER BY count(*) DESC, class")
        .await
        .unwrap();
    assert!(out.iter().map(|b| b.num_rows()).sum::<usize>() > 1);
}
