//! The server's limits, its error codes and messages, and who it records as the author of
//! a write: each behaviour through a real server.

use arrow_flight::sql::{CommandGetTables, CommandStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo};
use futures::TryStreamExt;
use prost::Message;
use quiver_core::Catalog;
use quiver_flight::ServerLimits;
use tonic::{Code, Status};

use crate::server::{count, sql, Server, RO, RW};

/// GetFlightInfo of a Flight SQL statement, with the status of a failure.
async fn plan(c: &mut FlightClient, q: &str) -> Result<FlightInfo, Status> {
    let cmd = CommandStatementQuery {
        query: q.to_string(),
        transaction_id: None,
    };
    c.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(Status::from)
}

async fn read(c: &mut FlightClient, cmd: serde_json::Value) -> Result<FlightInfo, Status> {
    c.get_flight_info(FlightDescriptor::new_cmd(cmd.to_string()))
        .await
        .map_err(Status::from)
}

async fn action(c: &mut FlightClient, kind: &str, body: serde_json::Value) -> Result<(), Status> {
    let s = c
        .do_action(Action::new(kind, body.to_string()))
        .await
        .map_err(Status::from)?;
    s.try_collect::<Vec<_>>().await.map_err(Status::from)?;
    Ok(())
}

async fn drain(c: &mut FlightClient, info: &FlightInfo) -> Result<usize, Status> {
    let mut rows = 0;
    for ep in &info.endpoint {
        let t = ep.ticket.clone().expect("ticket");
        let batches: Vec<_> = c
            .do_get(t)
            .await
            .map_err(Status::from)?
            .try_collect()
            .await
            .map_err(Status::from)?;
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    Ok(rows)
}

fn assert_limit(s: &Status, flag: &str) {
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.message().contains(flag), "names {flag}: {}", s.message());
}

/// Unread statement results are capped per caller (and in total); reading one frees its
/// place; another caller cannot read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stashed_results_are_capped_per_caller_and_freed_once_read() {
    let limits = ServerLimits {
        max_results_per_caller: 2,
        max_results_total: 3,
        ..Default::default()
    };
    let srv = Server::start_with(50, limits).await;
    let mut bob = srv.client(Some(RO)).await;
    let first = plan(&mut bob, "SELECT 1").await.expect("first");
    plan(&mut bob, "SELECT 2").await.expect("second");
    let err = plan(&mut bob, "SELECT 3").await.expect_err("third unread");
    assert_limit(&err, "--max-results-per-caller");
    // another token has its own allowance, up to the total
    let mut alice = srv.client(Some(RW)).await;
    let hers = plan(&mut alice, "SELECT 4").await.expect("alice");
    let err = plan(&mut alice, "SELECT 5").await.expect_err("total");
    assert_limit(&err, "--max-results");
    // bob's result is not alice's to read
    let err = drain(&mut alice, &first).await.expect_err("not hers");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // read once: the place is free again, and the result is gone
    assert_eq!(drain(&mut bob, &first).await.expect("read"), 1);
    let err = drain(&mut bob, &first).await.expect_err("read once");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    plan(&mut bob, "SELECT 6").await.expect("room again");
    assert_eq!(drain(&mut alice, &hers).await.expect("hers"), 1);
    srv.stop().await;
}

/// Shards, the FlightInfo a read makes and statement text are bounded before any work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_statements_over_the_limits_are_refused() {
    let limits = ServerLimits {
        max_statement_bytes: 8 * 1024,
        ..Default::default()
    };
    let srv = Server::start_with(50, limits).await;
    let mut c = srv.client(Some(RO)).await;
    let err = read(
        &mut c,
        serde_json::json!({"dataset": "demo", "shards": 65_536}),
    )
    .await
    .expect_err("too many shards");
    assert_limit(&err, "--max-shards");
    // a 4 KB filter over 4096 shards: 16 MB of tickets
    let filter = format!("sample_id <> '{}'", "x".repeat(4000));
    assert!(filter.len() > 4000);
    let err = read(
        &mut c,
        serde_json::json!({"dataset": "demo", "shards": 4096, "filter": filter}),
    )
    .await
    .expect_err("FlightInfo too large");
    assert_limit(&err, "--max-flight-info-bytes");
    // the same filter over 4 shards is fine
    let info = read(
        &mut c,
        serde_json::json!({"dataset": "demo", "shards": 4, "filter": filter}),
    )
    .await
    .expect("4 shards");
    assert_eq!(drain(&mut c, &info).await.expect("rows"), 50);
    // statements (and filters) above --max-statement-bytes, refused before parsing
    let long = format!("SELECT 1 {}", "-".repeat(9000));
    let err = plan(&mut c, &long).await.expect_err("long statement");
    assert_limit(&err, "--max-statement-bytes");
    let err = read(
        &mut c,
        serde_json::json!({"dataset": "demo", "filter": format!("score > 0 {}", " ".repeat(9000))}),
    )
    .await
    .expect_err("long filter");
    assert_limit(&err, "--max-statement-bytes");
    srv.stop().await;
}

/// Table names GetTables returns for a name pattern.
async fn tables(c: &mut FlightClient, pattern: &str) -> Result<Vec<String>, Status> {
    let cmd = CommandGetTables {
        table_name_filter_pattern: Some(pattern.to_string()),
        ..Default::default()
    };
    let info = c
        .get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(Status::from)?;
    let t = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<_> = c
        .do_get(t)
        .await
        .map_err(Status::from)?
        .try_collect()
        .await
        .map_err(Status::from)?;
    let mut names = Vec::new();
    for b in batches {
        let col = b.column_by_name("table_name").expect("table_name");
        let s = col
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("utf8");
        names.extend(s.iter().flatten().map(str::to_string));
    }
    names.sort();
    Ok(names)
}

/// Messages above --max-message-bytes are refused (DoPut batches here), and the server
/// keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_size_limit_are_refused() {
    let limits = ServerLimits {
        max_message_bytes: 64 * 1024,
        ..Default::default()
    };
    let srv = Server::start_with(10, limits).await;
    let mut c = srv.client(Some(RW)).await;
    let big = quiver_core::demo::DemoLabels::new(20_000, 3)
        .next()
        .expect("batch");
    let desc = FlightDescriptor::new_cmd(r#"{"dataset":"demo"}"#);
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(desc))
        .build(futures::stream::iter(vec![Ok(big)]));
    let err = match c.do_put(data).await {
        Ok(s) => s.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    }
    .map_err(Status::from)
    .expect_err("too large");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("too large"), "{}", err.message());
    let mut s = srv.sql_client(RO).await;
    assert_eq!(count(&sql(&mut s, "SELECT count(*) FROM demo").await), 10);
    srv.stop().await;
}

/// GetTables filters names with SQL LIKE patterns: right answers, and a pattern that made
/// the old matcher take exponential time answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_tables_patterns() {
    let srv = Server::start(20).await;
    let mut c = srv.client(Some(RO)).await;
    assert_eq!(
        tables(&mut c, "demo%").await.expect("demo%"),
        ["demo", "demo@main", "demo@v1"]
    );
    assert_eq!(tables(&mut c, "%@v_").await.expect("%@v_"), ["demo@v1"]);
    assert_eq!(tables(&mut c, "d_mo").await.expect("d_mo"), ["demo"]);
    assert_eq!(
        tables(&mut c, "commit_").await.expect("commit_"),
        ["commits"]
    );
    assert!(tables(&mut c, "branch\\_s")
        .await
        .expect("escape")
        .is_empty());
    // `%` runs before a character no name has: exponential for a backtracking matcher
    let slow = format!("{}x", "%".repeat(60));
    assert!(tables(&mut c, &slow).await.expect("linear").is_empty());
    let slow = format!("{}zz", "%e".repeat(400));
    assert!(tables(&mut c, &slow).await.expect("linear").is_empty());
    let err = tables(&mut c, &"%".repeat(5000))
        .await
        .expect_err("too long");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    action(&mut c, "quiver.datasets", serde_json::json!({}))
        .await
        .expect("still serving");
    srv.stop().await;
}

/// One code per kind of error, and messages without server paths, DataFusion internals or
/// unbounded echoes of the input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_and_messages() {
    let srv = Server::start(30).await;
    let root = srv.dir.path().to_str().expect("utf8").to_string();
    let mut rw = srv.client(Some(RW)).await;
    let mut ro = srv.client(Some(RO)).await;
    let mut anon = srv.client(None).await;
    let code = |r: Result<(), Status>| r.expect_err("an error").code();

    let e = action(&mut anon, "quiver.datasets", serde_json::json!({})).await;
    assert_eq!(code(e), Code::Unauthenticated);
    let e = action(
        &mut ro,
        "quiver.create_tag",
        serde_json::json!({"dataset": "demo", "name": "t"}),
    )
    .await;
    assert_eq!(code(e), Code::PermissionDenied);
    let e = action(
        &mut rw,
        "quiver.create_tag",
        serde_json::json!({"dataset": "nope", "name": "t"}),
    )
    .await;
    assert_eq!(code(e), Code::NotFound);
    let e = action(
        &mut rw,
        "quiver.create_tag",
        serde_json::json!({"dataset": "demo", "name": "v1"}),
    )
    .await;
    assert_eq!(code(e), Code::AlreadyExists);
    let e = action(
        &mut rw,
        "quiver.delete_branch",
        serde_json::json!({"dataset": "demo", "name": "ghost"}),
    )
    .await;
    assert_eq!(code(e), Code::NotFound);
    let e = plan(&mut ro, "SELEC nonsense").await.map(|_| ());
    assert_eq!(code(e), Code::InvalidArgument);
    let e = plan(&mut ro, "SELECT no_such_column FROM demo")
        .await
        .map(|_| ());
    assert_eq!(code(e), Code::InvalidArgument);
    let e = plan(&mut ro, "SELECT * FROM demo AS OF TAG 'ghost'")
        .await
        .map(|_| ());
    assert_eq!(code(e), Code::NotFound);
    // mistakes in a statement: the caller's to fix, said plainly
    for q in [
        "SELECT 1/0",
        "SELECT CAST('x' AS INT)",
        "SELECT $1 FROM demo",
        "SELECT count(*) FROM demo GROUP BY nope",
        "INSERT INTO demo (nope) VALUES (1)",
    ] {
        let e = match plan(&mut rw, q).await {
            Ok(info) => drain(&mut rw, &info).await.map(|_| ()).expect_err(q),
            Err(e) => e,
        };
        assert_eq!(e.code(), Code::InvalidArgument, "{q}: {e:?}");
        let m = e.message();
        assert!(
            !m.contains("bug") && !m.contains("Optimizer rule"),
            "{q}: {m}"
        );
    }
    // a very long name: refused, and echoed truncated within gRPC's header limits
    let long = "n".repeat(10_000);
    let e = action(
        &mut rw,
        "quiver.create_branch",
        serde_json::json!({"dataset": "demo", "name": long}),
    )
    .await
    .expect_err("long name");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().len() < 600, "{}", e.message().len());
    let e = read(&mut ro, serde_json::json!({"dataset": long}))
        .await
        .expect_err("long dataset");
    assert!(e.message().len() < 600, "{}", e.message().len());
    assert!(e.message().contains('…'), "{}", e.message());

    // a pack gone from the store: DATA_LOSS, named relative to the catalog
    let packs = std::path::Path::new(&root).join("objects/pack");
    let mut removed = 0;
    for dir in std::fs::read_dir(&packs).expect("packs") {
        for f in std::fs::read_dir(dir.expect("dir").path()).expect("files") {
            std::fs::remove_file(f.expect("file").path()).expect("remove");
            removed += 1;
        }
    }
    assert!(removed > 0);
    let info = read(&mut ro, serde_json::json!({"dataset": "demo"})).await;
    let e = match info {
        Ok(info) => drain(&mut ro, &info).await.expect_err("pack missing"),
        Err(e) => e,
    };
    assert_eq!(e.code(), Code::DataLoss, "{e:?}");
    assert!(
        !e.message().contains(root.trim_start_matches('/')),
        "{}",
        e.message()
    );
    assert!(
        !e.message().contains("DataFusion's code"),
        "{}",
        e.message()
    );
    srv.stop().await;
}

/// A corrupt commit object (stored bytes that do not hash to their address): DATA_LOSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_objects_are_data_loss() {
    let srv = Server::start(10).await;
    let commits = srv.dir.path().join("objects/commit");
    for dir in std::fs::read_dir(&commits).expect("commits") {
        for f in std::fs::read_dir(dir.expect("dir").path()).expect("files") {
            let p = f.expect("file").path();
            let mut b = std::fs::read(&p).expect("read");
            let last = b.len() - 1;
            b[last] ^= 0x20;
            std::fs::write(&p, b).expect("write");
        }
    }
    let mut c = srv.client(Some(RO)).await;
    let e = plan(&mut c, "SELECT count(*) FROM demo")
        .await
        .expect_err("corrupt");
    assert_eq!(e.code(), Code::DataLoss, "{e:?}");
    let root = srv.dir.path().to_str().expect("utf8").to_string();
    assert!(
        !e.message().contains(root.trim_start_matches('/')),
        "{}",
        e.message()
    );
    srv.stop().await;
}

/// Writes through the server are the token's: DoPut commits, DoAction branch and tag
/// changes (ref log) and merges name the token, not the server's user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_attributed_to_the_token() {
    let srv = Server::start(20).await;
    let mut c = srv.client(Some(RW)).await;
    action(
        &mut c,
        "quiver.create_branch",
        serde_json::json!({"dataset": "demo", "name": "fix", "from": "tag:v1"}),
    )
    .await
    .expect("branch");
    action(
        &mut c,
        "quiver.create_tag",
        serde_json::json!({"dataset": "demo", "name": "v2", "at": "fix"}),
    )
    .await
    .expect("tag");
    let batch = quiver_core::demo::DemoLabels::new(2, 5)
        .next()
        .expect("batch");
    let desc = FlightDescriptor::new_cmd(r#"{"dataset":"demo","branch":"fix"}"#);
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(desc))
        .build(futures::stream::iter(vec![Ok(batch.slice(0, 2))]));
    let _: Vec<_> = c
        .do_put(data)
        .await
        .expect("put")
        .try_collect()
        .await
        .expect("put result");
    let cat = Catalog::open(srv.dir.path().to_str().expect("utf8"))
        .await
        .expect("catalog");
    let ds = cat.dataset("demo").await.expect("demo");
    let head = ds.history("fix").await.expect("history");
    assert_eq!(head[0].data.author, "alice");
    let log = ds.branch_log("fix").await.expect("log");
    assert!(log.iter().all(|e| e.author == "alice"), "{log:?}");
    assert_ne!(quiver_core::default_author(), "alice");
    srv.stop().await;
}
