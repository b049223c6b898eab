//! `AS OF TIMESTAMP` with a time copied from `quiver.commits` selects that very commit:
//! commits keep nanoseconds, `quiver.commits` shows microseconds, and a timestamp is
//! compared at the precision it is written with (issue 20).

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;

/// Every (commit id, timestamp as `quiver.commits` prints it) of dataset `ds`.
async fn shown_commits(ctx: &QuiverContext) -> Vec<(String, String)> {
    let batches = ctx
        .sql("SELECT commit_id, timestamp FROM quiver.commits WHERE dataset = 'ds'")
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let f = ArrayFormatter::try_new(b.column(1).as_ref(), &FormatOptions::default()).unwrap();
        for r in 0..b.num_rows() {
            out.push((ids.value(r).to_string(), f.value(r).to_string()));
        }
    }
    out
}

async fn commit_at(ctx: &QuiverContext, at: &str) -> String {
    let sql = format!("SHOW HISTORY ON ds AS OF TIMESTAMP '{at}'");
    let batches = ctx.sql(&sql).await.unwrap();
    let ids = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    ids.value(0).to_string()
}

#[tokio::test]
async fn a_timestamp_copied_from_quiver_commits_selects_that_commit() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ctx = QuiverContext::new(cat).await.unwrap();
    ctx.sql("CREATE DATASET ds (sample_id BIGINT NOT NULL, label_id INT NOT NULL, class VARCHAR) KEY (sample_id, label_id)")
        .await
        .unwrap();
    for i in 0..6 {
        ctx.sql(&format!("INSERT INTO ds VALUES ({i}, 1, 'c{i}')"))
            .await
            .unwrap();
    }
    let commits = shown_commits(&ctx).await;
    assert_eq!(commits.len(), 7);
    let mut checked = 0;
    for (id, shown) in &commits {
        // two commits in one shown unit of time are one point in time to the user
        if commits.iter().filter(|(_, s)| s == shown).count() > 1 {
            continue;
        }
        // as printed (RFC 3339 with 'Z') and as typed (a space, no zone)
        let typed = shown.trim_end_matches('Z').replace('T', " ");
        for at in [shown.as_str(), typed.as_str()] {
            assert_eq!(&commit_at(&ctx, at).await, id, "AS OF TIMESTAMP '{at}'");
        }
        // the same time in a SELECT: the rows of that commit
        let n: usize = ctx
            .sql(&format!("SELECT * FROM ds FOR SYSTEM_TIME AS OF '{typed}'"))
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        let index = commits.len() - 1 - commits.iter().position(|(c, _)| c == id).unwrap();
        assert_eq!(n, index, "rows at '{typed}'");
        checked += 1;
    }
    assert!(
        checked >= 4,
        "too few commits with distinct times: {commits:?}"
    );
}
