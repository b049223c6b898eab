//! ERASE through SQL sessions: a server whose sessions cached packs another process erased
//! fails a read once per rewritten pack (PackRewritten, "run the statement again") and then
//! reads the erased bytes — never the old values, never a footer of the old bytes.

use datafusion::arrow::array::{Array, AsArray};
use quiver_core::{Catalog, CoreError};
use quiver_sql::context::QuiverContext;
use quiver_sql::{SessionOptions, SqlError};

async fn classes(ctx: &QuiverContext, q: &str) -> Result<Vec<String>, SqlError> {
    let out = ctx.sql(q).await?;
    let mut v = Vec::new();
    for b in out {
        let c = b.column(0);
        for i in 0..b.num_rows() {
            v.push(match c.data_type() {
                datafusion::arrow::datatypes::DataType::Utf8View => {
                    c.as_string_view().value(i).to_string()
                }
                _ => c.as_string::<i32>().value(i).to_string(),
            });
        }
    }
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_cached_packs_read_an_erasure_made_elsewhere() {
    erasure_made_elsewhere(0).await;
}

/// The same with the server's cache of verified pack bytes on (as `quiver serve` runs):
/// bytes it read before the erasure are never served after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_read_cache_reads_an_erasure_made_elsewhere() {
    erasure_made_elsewhere(64 << 20).await;
}

/// An erasure by the server itself, with its read cache holding the erased pack's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_read_cache_reads_its_own_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let server = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    server.set_read_cache(64 << 20);
    let s = QuiverContext::new(server.clone()).await.unwrap();
    s.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, class VARCHAR NOT NULL) KEY (sample_id, label_id)")
        .await
        .unwrap();
    s.sql("INSERT INTO ds VALUES ('a', 1, 'cat'), ('b', 1, 'dog'), ('c', 1, 'owl')")
        .await
        .unwrap();
    let q = "SELECT class FROM ds";
    for _ in 0..2 {
        assert_eq!(classes(&s, q).await.unwrap(), ["cat", "dog", "owl"]);
    }
    let cache = server.meta_cache();
    assert!(
        cache.verified().read_cache().weight() > 0,
        "the scans' pack bytes are cached"
    );
    s.sql("ERASE FROM ds WHERE sample_id = 'b' REASON 'asked'")
        .await
        .unwrap();
    for _ in 0..2 {
        let s = QuiverContext::new(server.clone()).await.unwrap();
        assert_eq!(classes(&s, q).await.unwrap(), ["<erased>", "cat", "owl"]);
    }
}

async fn erasure_made_elsewhere(read_cache: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    let server = Catalog::open(url).await.unwrap();
    server.set_read_cache(read_cache);
    let runtime = quiver_sql::options::runtime_with_memory_limit(1 << 30).unwrap();
    let session = || {
        let (server, runtime) = (server.clone(), runtime.clone());
        async move {
            QuiverContext::with_options(
                server,
                Default::default(),
                SessionOptions {
                    runtime: Some(runtime),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
        }
    };
    let s1 = session().await;
    s1.sql("CREATE DATASET ds (sample_id VARCHAR NOT NULL, label_id INT NOT NULL, class VARCHAR NOT NULL) KEY (sample_id, label_id)")
        .await
        .unwrap();
    s1.sql("INSERT INTO ds VALUES ('a', 1, 'cat'), ('b', 1, 'dog'), ('c', 1, 'owl')")
        .await
        .unwrap();
    s1.sql("CREATE TAG 'v1' ON ds").await.unwrap();
    s1.sql("UPDATE ds SET class = 'eel' WHERE sample_id = 'c'")
        .await
        .unwrap();
    let q = "SELECT class FROM ds AS OF TAG 'v1'";
    assert_eq!(classes(&s1, q).await.unwrap(), ["cat", "dog", "owl"]);
    assert_eq!(classes(&s1, q).await.unwrap(), ["cat", "dog", "owl"]);
    let cached = server.meta_cache().verified().read_cache().weight();
    assert_eq!(cached > 0, read_cache > 0, "{cached} bytes cached");
    assert_eq!(
        classes(&s1, "SELECT class FROM ds").await.unwrap(),
        ["cat", "dog", "eel"]
    );

    // another process erases
    let other = Catalog::open(url).await.unwrap();
    let ctx = QuiverContext::new(other).await.unwrap();
    ctx.sql("ERASE FROM ds WHERE sample_id = 'b' REASON 'elsewhere'")
        .await
        .unwrap();

    for q in [q, "SELECT class FROM ds"] {
        let mut failures = 0;
        let got = loop {
            let s = session().await;
            match classes(&s, q).await {
                Ok(v) => break v,
                Err(SqlError::Core(CoreError::PackRewritten { .. })) => failures += 1,
                Err(e) => panic!("{q}: {e}"),
            }
            assert!(failures <= 2, "{q}: recovers");
        };
        assert!(got.contains(&"<erased>".to_string()), "{q}: {got:?}");
        assert!(!got.contains(&"dog".to_string()), "{q}: {got:?}");
    }
}
