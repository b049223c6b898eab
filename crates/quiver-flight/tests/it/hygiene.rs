//! The server's limits, its error codes and messages, and who it records as the author of
//! a write: each behaviour through a real server.

use arrow_flight::sql::{CommandGetTables, CommandStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightClient, FlightDescriptor, FlightInfo};
use futures::TryStreamExt;
use prost::Message;
use quiver_core::Catalog;
use quiver_flight::ServerLimits;
use tonic::{Code, Status};

use crate::server::{count, qdesc, sql, Server, RO, RW};
use quiver_flight::command::Kind;

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
    c.get_flight_info(qdesc(Kind::Read, &cmd.to_string()))
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

/// The first value of the first column of a result read through `c` (a count).
async fn first_count(c: &mut FlightClient, info: &FlightInfo) -> Result<i64, Status> {
    let ep = info.endpoint.first().expect("an endpoint");
    let batches: Vec<_> = c
        .do_get(ep.ticket.clone().expect("ticket"))
        .await
        .map_err(Status::from)?
        .try_collect()
        .await
        .map_err(Status::from)?;
    let n = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Int64)
        .expect("a number");
    Ok(n.as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("i64")
        .value(0))
}

/// A DoGet of `ticket` (a `TicketStatementQuery` with this handle), with its status.
async fn get_handle(c: &mut FlightClient, handle: &[u8]) -> Result<usize, Status> {
    let t = arrow_flight::sql::TicketStatementQuery {
        statement_handle: handle.to_vec().into(),
    };
    let ticket = arrow_flight::Ticket::new(t.as_any().encode_to_vec());
    let batches: Vec<_> = c
        .do_get(ticket)
        .await
        .map_err(Status::from)?
        .try_collect()
        .await
        .map_err(Status::from)?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Statement tickets hold the statement and the commits it read: read any number of times,
/// by any caller, after the branch moved, they give the rows of the version planned. A
/// ticket of a statement that wrote only repeats its result; a ticket never writes; garbage
/// is INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_tickets_are_stateless_pinned_and_never_write() {
    let srv = Server::start(50).await;
    let mut bob = srv.client(Some(RO)).await;
    let mut alice = srv.client(Some(RW)).await;
    let q = "SELECT count(*) AS n FROM demo";
    let planned = plan(&mut bob, q).await.expect("plan");
    let commits_q = "SELECT count(*) AS n FROM quiver.commits WHERE dataset = 'demo'";
    let commits = plan(&mut bob, commits_q).await.expect("commits");
    let commits_before = first_count(&mut bob, &commits).await.expect("commits");
    // a write planned by alice runs once, at GetFlightInfo; its ticket repeats its result
    let delete = plan(&mut alice, "DELETE FROM demo WHERE label_id = 0")
        .await
        .expect("delete");
    let deleted = first_count(&mut alice, &delete).await.expect("result");
    assert!(deleted > 0, "{deleted}");
    for c in [&mut alice, &mut bob] {
        for _ in 0..2 {
            assert_eq!(first_count(c, &delete).await.expect("replay"), deleted);
        }
    }
    let commits = plan(&mut bob, commits_q).await.expect("commits");
    let commits_after = first_count(&mut bob, &commits).await.expect("commits");
    assert_eq!(
        commits_after,
        commits_before + 1,
        "one commit, however often replayed"
    );
    let now = plan(&mut bob, q).await.expect("plan again");
    assert_eq!(
        first_count(&mut bob, &now).await.expect("now"),
        50 - deleted
    );
    // the earlier ticket reads the commit it was planned on, as often as asked, by anyone
    for _ in 0..2 {
        for c in [&mut bob, &mut alice] {
            assert_eq!(first_count(c, &planned).await.expect("pinned"), 50);
        }
    }
    // a forged ticket that would write: refused for either token, and nothing written
    let forged = |sql: &str| {
        let mut b = b"QVT1".to_vec();
        b.extend(
            serde_json::json!({"kind": "read", "sql": sql})
                .to_string()
                .into_bytes(),
        );
        b
    };
    let w = forged("INSERT INTO demo (sample_id, label_id) VALUES ('img-99999998', 0)");
    for c in [&mut alice, &mut bob] {
        let err = get_handle(c, &w).await.expect_err("a ticket never writes");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let after = plan(&mut bob, q).await.expect("plan");
    assert_eq!(
        first_count(&mut bob, &after).await.expect("count"),
        50 - deleted
    );
    // a forged reading ticket is only the statement: what SQL would give
    assert_eq!(
        get_handle(&mut bob, &forged("SELECT 1"))
            .await
            .expect("read"),
        1
    );
    // garbage and damaged tickets
    for bad in [
        &b""[..],
        b"garbage",
        b"QVT1{",
        b"QVT1{\"kind\":\"rows\",\"ipc\":\"AAAA\"}",
        b"QVT1{\"kind\":\"read\",\"sql\":\"SELECT * FROM demo\",\"pins\":[[\"demo\",\"xyz\"]]}",
    ] {
        let err = get_handle(&mut bob, bad).await.expect_err("garbage");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    // a pin to a commit that does not exist
    let missing = {
        let mut b = b"QVT1".to_vec();
        b.extend(
            serde_json::json!({"kind": "read", "sql": "SELECT * FROM demo",
                               "pins": [["demo", "ab".repeat(32)]]})
            .to_string()
            .into_bytes(),
        );
        b
    };
    let err = get_handle(&mut bob, &missing)
        .await
        .expect_err("no such commit");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    srv.stop().await;
}

/// A second server on the same catalog (or this one after a restart) reads a FlightInfo
/// made by the first, and runs a prepared statement prepared on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_and_prepared_statements_outlive_their_server() {
    let srv = Server::start(50).await;
    let mut c = srv.client(Some(RO)).await;
    let info = plan(&mut c, "SELECT count(*) AS n FROM demo AS OF TAG 'v1'")
        .await
        .expect("plan");
    // a prepared statement, created on the first server
    let req = arrow_flight::sql::ActionCreatePreparedStatementRequest {
        query: "SELECT count(*) AS n FROM demo WHERE label_id >= 0".into(),
        transaction_id: None,
    };
    let results: Vec<_> = c
        .do_action(Action::new(
            "CreatePreparedStatement",
            req.as_any().encode_to_vec(),
        ))
        .await
        .expect("create")
        .try_collect()
        .await
        .expect("result");
    let any = arrow_flight::sql::Any::decode(&*results[0]).expect("any");
    let created: arrow_flight::sql::ActionCreatePreparedStatementResult =
        any.unpack().expect("unpack").expect("a result");
    let keep = srv.stop().await;
    // the first server is gone: the other reads its FlightInfo and runs its statement
    let other = Server::start_on(keep.path().to_str().expect("utf8")).await;
    let mut c2 = other.client(Some(RO)).await;
    assert_eq!(first_count(&mut c2, &info).await.expect("other server"), 50);
    let cmd = arrow_flight::sql::CommandPreparedStatementQuery {
        prepared_statement_handle: created.prepared_statement_handle,
    };
    let pinfo = c2
        .get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .expect("prepared statement on the other server");
    assert_eq!(first_count(&mut c2, &pinfo).await.expect("rows"), 50);
    // a damaged handle is INVALID_ARGUMENT
    let cmd = arrow_flight::sql::CommandPreparedStatementQuery {
        prepared_statement_handle: b"QVP1{not json".to_vec().into(),
    };
    let err = c2
        .get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()))
        .await
        .map_err(Status::from)
        .expect_err("damaged handle");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    other.stop().await;
    drop(keep);
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
    let desc = qdesc(Kind::Put, r#"{"dataset":"demo"}"#);
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
    let desc = qdesc(Kind::Put, r#"{"dataset":"demo","branch":"fix"}"#);
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

/// One auth layer in front of every call: without a valid token, even calls that need no
/// catalog (ListActions, ListFlights) and the zero-copy DoGet are UNAUTHENTICATED; the
/// handshake checks its own credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_but_the_handshake_needs_a_token() {
    let srv = Server::start(10).await;
    for token in [None, Some("not-a-real-token")] {
        let mut c = srv.client(token).await;
        let err = c
            .list_actions()
            .await
            .map(|_| ())
            .map_err(Status::from)
            .expect_err("list actions");
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        let err = c
            .do_get(arrow_flight::Ticket::new(b"anything".to_vec()))
            .await
            .map(|_| ())
            .map_err(Status::from)
            .expect_err("do_get");
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        let err = plan(&mut c, "SELECT 1").await.expect_err("plan");
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }
    let mut c = srv.client(Some(RO)).await;
    let actions: Vec<_> = c
        .list_actions()
        .await
        .expect("list")
        .try_collect()
        .await
        .expect("actions");
    assert!(actions.iter().any(|a| a.r#type == "quiver.create_branch"));
    let mut sql = arrow_flight::sql::client::FlightSqlServiceClient::new(srv.channel().await);
    sql.handshake("user", RO)
        .await
        .expect("handshake with Basic credentials");
    srv.stop().await;
}
