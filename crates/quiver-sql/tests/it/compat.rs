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

/// Rows of parameters bound to INSERT/UPDATE of every common type land as one commit and
/// read back as bound; a query bound to two rows returns both results.
#[tokio::test]
async fn parameters_of_every_common_type() {
    use datafusion::common::ScalarValue as S;
    let dir = tempfile::tempdir().unwrap();
    let ctx = demo_ctx(dir.path()).await;
    ctx.sql(
        "CREATE TABLE typed (k VARCHAR, n BIGINT, f DOUBLE, b BOOLEAN, t TIMESTAMP, d DATE, \
         s VARCHAR, PRIMARY KEY (k, n))",
    )
    .await
    .unwrap();
    let commits = || async {
        ctx.catalog()
            .dataset("typed")
            .await
            .unwrap()
            .history("main")
            .await
            .unwrap()
            .len()
    };
    let before = commits().await;
    let row = |k: &str, n: i64| {
        vec![
            S::from(k),
            S::Int64(Some(n)),
            S::Float64(Some(0.25)),
            S::Boolean(Some(true)),
            S::TimestampMicrosecond(Some(1_700_000_000_123_456), None),
            S::Date32(Some(19_000)),
            S::Utf8(None),
        ]
    };
    let df = ctx
        .sql_df_with_params(
            "INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![row("a", 1), row("it's", 2)],
        )
        .await
        .unwrap();
    let out = df.collect().await.unwrap();
    let n = out[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 2);
    assert_eq!(commits().await, before + 1);
    let got = ctx
        .sql("SELECT k, n, f, b, CAST(t AS BIGINT) AS t, CAST(d AS INT) AS d, s FROM typed ORDER BY n")
        .await
        .unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&got)
        .unwrap()
        .to_string();
    assert!(
        text.contains("| a    | 1 | 0.25 | true | 1700000000123456000 | 19000 |   |"),
        "{text}"
    );
    assert!(text.contains("| it's | 2 |"), "{text}");
    // a query bound to two rows
    let df = ctx
        .sql_df_with_params(
            "SELECT n FROM typed WHERE k = $1",
            vec![vec![S::from("a")], vec![S::from("it's")]],
        )
        .await
        .unwrap();
    let rows: usize = df
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 2);
    // the results of many rows of parameters come back in the rows' order, each result in
    // its own order (ADBC's SqlPrepareSelectParams matches them by position)
    let params: Vec<Vec<S>> = (0..40)
        .map(|i| {
            vec![
                S::from(if i % 2 == 0 { "it's" } else { "a" }),
                S::Int64(Some(i)),
            ]
        })
        .collect();
    let df = ctx
        .sql_df_with_params(
            "SELECT $2 AS i, n FROM typed WHERE k = $1 UNION ALL SELECT $2 + 1000, 7 ORDER BY 2 DESC",
            params,
        )
        .await
        .unwrap();
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["i", "n"], "the numbering columns are not returned");
    let got: Vec<(i64, i64)> = df
        .collect()
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            let i = b
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .clone();
            let n = b
                .column(1)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .clone();
            (0..b.num_rows())
                .map(move |r| (i.value(r), n.value(r)))
                .collect::<Vec<_>>()
        })
        .collect();
    let want: Vec<(i64, i64)> = (0..40)
        .flat_map(|i| [(i + 1000, 7), (i, if i % 2 == 0 { 2 } else { 1 })])
        .collect();
    assert_eq!(got, want);
    // parameters are refused on statements that are neither queries nor DML
    let err = ctx
        .sql_df_with_params("CREATE BRANCH x FROM typed", vec![vec![S::from("a")]])
        .await
        .expect_err("not bindable");
    assert!(
        err.to_string().contains("parameters are bound to queries"),
        "{err}"
    );
}
