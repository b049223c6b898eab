use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Action, FlightClient, FlightDescriptor, Ticket};
use futures::TryStreamExt;
use quiver_core::{demo, Catalog, VersionSpec};
use quiver_flight::command::Kind;
use quiver_flight::{bind, serve, ServeOptions, ServerLimits, Tokens};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A descriptor of a Quiver message of `kind` with the JSON `json`.
pub(crate) fn qdesc(kind: quiver_flight::command::Kind, json: &str) -> FlightDescriptor {
    FlightDescriptor::new_cmd(quiver_flight::command::encode(kind, json.as_bytes()))
}

pub(crate) const RW: &str = "rw-token-123";
pub(crate) const RO: &str = "ro-token-456";

pub(crate) struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start(rows: u64) -> Server {
        Self::start_with(rows, ServerLimits::default()).await
    }

    /// A server with `limits` over a catalog of `rows` demo labels (tag v1) written by
    /// another catalog handle: the server's caches start cold.
    pub(crate) async fn start_with(rows: u64, limits: ServerLimits) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_str().expect("utf8").to_string();
        let cat = Catalog::open(&root).await.expect("catalog");
        let ds = cat
            .create_dataset("demo", demo::schema(), demo::options())
            .await
            .expect("dataset");
        let mut txn = ds.begin("main").await.expect("txn");
        for b in demo::DemoLabels::new(rows, 7) {
            txn.append(&b).await.expect("append");
        }
        txn.commit("demo").await.expect("commit");
        ds.create_tag("v1", &VersionSpec::main())
            .await
            .expect("tag");
        drop((ds, cat));
        Self::serve_dir(dir, limits).await
    }

    /// Another server over the catalog at `root` (which must outlive it).
    pub(crate) async fn start_on(root: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = std::fs::remove_dir(dir.path());
        std::os::unix::fs::symlink(root, dir.path()).expect("symlink to the catalog");
        Self::serve_dir(dir, ServerLimits::default()).await
    }

    async fn serve_dir(dir: tempfile::TempDir, limits: ServerLimits) -> Server {
        let root = dir.path().to_str().expect("utf8").to_string();
        let cat = Catalog::open(&root).await.expect("catalog");
        let tokens =
            Tokens::parse_file(&format!("{RW} rw alice\n{RO} ro bob\n"), "tokens").expect("tokens");
        let bound = bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", bound.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(
                cat,
                bound,
                ServeOptions {
                    tokens,
                    limits,
                    ..Default::default()
                },
                async {
                    let _ = rx.await;
                },
            )
            .await
            .expect("serve");
        });
        Server {
            url,
            stop: Some(tx),
            task,
            dir,
        }
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub(crate) async fn client(&self, token: Option<&str>) -> FlightClient {
        let mut c = FlightClient::new(self.channel().await);
        if let Some(t) = token {
            c.add_header("authorization", &format!("Bearer {t}"))
                .expect("header");
        }
        c
    }

    pub(crate) async fn sql_client(&self, token: &str) -> FlightSqlServiceClient<Channel> {
        let mut c = FlightSqlServiceClient::new(self.channel().await);
        c.set_header("authorization", format!("Bearer {token}"));
        c
    }

    /// Stop serving; the catalog directory, for a server that comes after.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.expect("server task");
        self.dir
    }
}

pub(crate) async fn sql(c: &mut FlightSqlServiceClient<Channel>, q: &str) -> Vec<RecordBatch> {
    let info = c.execute(q.to_string(), None).await.expect(q);
    let mut out = Vec::new();
    for ep in info.endpoint {
        let t = ep.ticket.expect("ticket");
        let s = c.do_get(t).await.expect("do_get");
        out.extend(s.try_collect::<Vec<_>>().await.expect("stream"));
    }
    out
}

fn keys(batches: &[RecordBatch]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let s = b
            .column_by_name("sample_id")
            .expect("sample_id")
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8")
            .clone();
        let l = b
            .column_by_name("label_id")
            .expect("label_id")
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64")
            .clone();
        for i in 0..b.num_rows() {
            out.push((s.value(i).to_string(), l.value(i)));
        }
    }
    out
}

pub(crate) fn count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_disjoint_and_cover_the_selection_pinned_to_one_commit() {
    let srv = Server::start(3000).await;
    let mut c = srv.client(Some(RO)).await;
    for (filter, seed) in [(None, None), (Some("score > 0.5"), Some(11u64))] {
        let mut cmd = serde_json::json!({"dataset": "demo", "ref": "tag:v1", "shards": 5,
            "columns": ["sample_id", "label_id", "score"]});
        if let Some(f) = filter {
            cmd["filter"] = f.into();
        }
        if let Some(s) = seed {
            cmd["seed"] = s.into();
        }
        let info = c
            .get_flight_info(qdesc(Kind::Read, &cmd.to_string()))
            .await
            .expect("info");
        assert_eq!(info.endpoint.len(), 5);
        let mut commits = BTreeSet::new();
        let mut all = Vec::new();
        let mut nonempty = 0;
        for ep in &info.endpoint {
            let meta: serde_json::Value = serde_json::from_slice(&ep.app_metadata).expect("meta");
            commits.insert(meta["commit"].as_str().expect("commit").to_string());
            let t = ep.ticket.clone().expect("ticket");
            let batches: Vec<RecordBatch> = c
                .do_get(t)
                .await
                .expect("get")
                .try_collect()
                .await
                .expect("stream");
            let k = keys(&batches);
            nonempty += usize::from(!k.is_empty());
            all.extend(k);
        }
        assert_eq!(commits.len(), 1, "every shard pinned to the same commit");
        assert!(
            nonempty >= 4,
            "shards are spread: {nonempty} non-empty of 5"
        );
        let distinct: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(distinct.len(), all.len(), "no row in two shards");
        let mut s = srv.sql_client(RO).await;
        let q = format!(
            "SELECT sample_id, label_id FROM demo AS OF TAG 'v1'{}",
            filter.map(|f| format!(" WHERE {f}")).unwrap_or_default()
        );
        let want: BTreeSet<_> = keys(&sql(&mut s, &q).await).into_iter().collect();
        assert_eq!(distinct, want, "shards together are exactly the selection");
        if filter.is_none() {
            assert_eq!(info.total_records, 3000);
        }
    }
    srv.stop().await;
}

/// USE BRANCH and BEGIN … COMMIT would be forgotten by the next statement of a stateless
/// server: they are refused (INVALID_ARGUMENT) on every Flight SQL route, saying what to
/// write instead, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_statements_are_refused_with_what_to_write_instead() {
    let srv = Server::start(200).await;
    let mut rw = srv.sql_client(RW).await;
    let state = "SELECT commit_id FROM quiver.branches WHERE branch = 'main'";
    let before = sql(&mut rw, state).await;
    for (st, needle) in [
        (
            "USE BRANCH main ON demo",
            "Name the branch in each statement instead: SELECT … FROM \"demo@branch:main\"",
        ),
        (
            "use branch main on demo",
            "INSERT INTO \"demo@branch:main\"",
        ),
        (
            "BEGIN",
            "bind many rows of parameters to one prepared INSERT",
        ),
        ("START TRANSACTION", "each statement commits by itself"),
        ("COMMIT", "COMMIT MERGE ON ds"),
        ("COMMIT 'message'", "has no transaction to end"),
        ("ROLLBACK", "has no transaction to undo"),
    ] {
        let refused = |e: arrow_flight::error::FlightError| match e {
            arrow_flight::error::FlightError::Tonic(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument, "{st}: {s}");
                assert!(s.message().contains(needle), "{st}: {}", s.message());
            }
            other => panic!("{st}: {other}"),
        };
        refused(rw.execute(st.into(), None).await.map(|_| ()).expect_err(st));
        refused(
            rw.execute_update(st.into(), None)
                .await
                .map(|_| ())
                .expect_err(st),
        );
        refused(rw.prepare(st.into(), None).await.map(|_| ()).expect_err(st));
    }
    // the branch named in the statement is the way: a write to another branch lands there
    sql(&mut rw, "CREATE BRANCH side FROM demo").await;
    rw.execute_update(
        "UPDATE \"demo@branch:side\" SET class = 'flight' WHERE sample_id = 'img-00000001'".into(),
        None,
    )
    .await
    .expect("update");
    let n = sql(
        &mut rw,
        "SELECT count(*) FROM demo AS OF BRANCH 'side' WHERE class = 'flight'",
    )
    .await;
    assert!(count(&n) > 0);
    let n = sql(&mut rw, "SELECT count(*) FROM demo WHERE class = 'flight'").await;
    assert_eq!(count(&n), 0);
    assert_eq!(sql(&mut rw, state).await, before, "main did not move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_bad_requests() {
    let srv = Server::start(500).await;
    // no token: refused
    let mut anon = srv.client(None).await;
    let err = anon
        .do_action(Action::new("quiver.datasets", "{}"))
        .await
        .map(|_| ())
        .expect_err("unauthenticated");
    assert!(err.to_string().contains("requires a token"), "{err}");
    // read-only: reads work, writes refused and nothing changes
    let mut ro = srv.sql_client(RO).await;
    assert_eq!(count(&sql(&mut ro, "SELECT count(*) FROM demo").await), 500);
    let err = ro
        .execute("CREATE BRANCH x FROM demo".into(), None)
        .await
        .map(|_| ())
        .expect_err("refused");
    assert!(err.to_string().contains("read-only"), "{err}");
    let mut roc = srv.client(Some(RO)).await;
    let err = roc
        .do_action(Action::new(
            "quiver.create_branch",
            r#"{"dataset":"demo","name":"y"}"#,
        ))
        .await
        .map(|_| ())
        .expect_err("refused");
    assert!(err.to_string().contains("read-only"), "{err}");
    let branches = sql(&mut ro, "SELECT * FROM quiver.branches").await;
    assert_eq!(branches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    // bad tickets and descriptors: InvalidArgument, and the server keeps serving
    for bad in [
        &b"{not json"[..],
        &b"\x00\x01garbage"[..],
        &br#"{"v":1}"#[..],
        &quiver_flight::command::encode(Kind::Shard, br#"{"v":1}"#)[..],
        &quiver_flight::command::encode(Kind::Read, br#"{"dataset":"demo"}"#)[..],
    ] {
        let err = roc
            .do_get(Ticket::new(bad.to_vec()))
            .await
            .map(|_| ())
            .expect_err("bad ticket");
        assert!(err.to_string().contains("nvalid"), "{err}");
    }
    let err = roc
        .get_flight_info(qdesc(
            Kind::Read,
            r#"{"dataset":"demo","columns":["nope"]}"#,
        ))
        .await
        .map(|_| ())
        .expect_err("bad column");
    assert!(err.to_string().contains("column 'nope' not found"), "{err}");
    let err = roc
        .get_flight_info(qdesc(Kind::Read, r#"{"dataset":"nope"}"#))
        .await
        .map(|_| ())
        .expect_err("no dataset");
    assert!(
        err.to_string().contains("dataset 'nope' does not exist"),
        "{err}"
    );
    assert_eq!(count(&sql(&mut ro, "SELECT count(*) FROM demo").await), 500);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doput_commits_and_actions_and_runs() {
    let srv = Server::start(200).await;
    let mut c = srv.client(Some(RW)).await;
    // a branch through DoAction, a write to it through DoPut
    let out: Vec<bytes::Bytes> = c
        .do_action(Action::new(
            "quiver.create_branch",
            r#"{"dataset":"demo","name":"fix","from":"tag:v1"}"#,
        ))
        .await
        .expect("action")
        .try_collect()
        .await
        .expect("result");
    let v: serde_json::Value = serde_json::from_slice(&out[0]).expect("json");
    assert_eq!(v["name"], "fix");
    let schema = demo::schema();
    let batch = demo::DemoLabels::new(3, 99)
        .next()
        .expect("batch")
        .slice(0, 3);
    let ids: Vec<String> = (0..3).map(|i| format!("new-{i}")).collect();
    let mut cols: Vec<Arc<dyn Array>> = batch.columns().to_vec();
    cols[0] = Arc::new(StringArray::from(ids));
    let batch = RecordBatch::try_new(schema, cols).expect("batch");
    let desc = qdesc(
        Kind::Put,
        r#"{"dataset":"demo","branch":"fix","message":"three new labels"}"#,
    );
    let data = arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(desc))
        .build(futures::stream::iter(vec![Ok(batch)]));
    let res: Vec<arrow_flight::PutResult> = c
        .do_put(data)
        .await
        .expect("put")
        .try_collect()
        .await
        .expect("put result");
    let v: serde_json::Value = serde_json::from_slice(&res[0].app_metadata).expect("json");
    assert_eq!(v["rows"], 3);
    let mut s = srv.sql_client(RW).await;
    assert_eq!(
        count(&sql(&mut s, "SELECT count(*) FROM \"demo@fix\"").await),
        203
    );
    let hist = sql(&mut s, "SHOW HISTORY ON demo AS OF BRANCH 'fix'").await;
    let msgs = hist[0]
        .column_by_name("message")
        .expect("message")
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert_eq!(msgs, "three new labels");
    // merge back via DoAction: fast-forward
    let out: Vec<bytes::Bytes> = c
        .do_action(Action::new(
            "quiver.merge",
            r#"{"dataset":"demo","source":"fix","target":"main"}"#,
        ))
        .await
        .expect("merge")
        .try_collect()
        .await
        .expect("result");
    let v: serde_json::Value = serde_json::from_slice(&out[0]).expect("json");
    assert_eq!(v["kind"], "fast-forward");
    assert_eq!(count(&sql(&mut s, "SELECT count(*) FROM demo").await), 203);
    // a run id is recorded against the commit the ref resolved to
    let info = c
        .get_flight_info(qdesc(
            Kind::Read,
            r#"{"dataset":"demo","ref":"tag:v1","shards":2,"run_id":"run-42"}"#,
        ))
        .await
        .expect("info");
    let meta: serde_json::Value = serde_json::from_slice(&info.app_metadata).expect("meta");
    let runs = sql(
        &mut s,
        "SELECT commit_id, shards FROM quiver.runs WHERE run_id = 'run-42'",
    )
    .await;
    assert_eq!(runs.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(
        runs[0].column(0).as_string::<i32>().value(0),
        meta["commit"].as_str().expect("commit")
    );
    // prepared statement with a parameter = the literal query
    let mut p = s
        .prepare("SELECT count(*) FROM demo WHERE class = ?".into(), None)
        .await
        .expect("prepare");
    let params = RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("$1", arrow::datatypes::DataType::Utf8, true),
        ])),
        vec![Arc::new(StringArray::from(vec!["person"]))],
    )
    .expect("params");
    p.set_parameters(params).expect("bind");
    let info = p.execute().await.expect("execute");
    let t = info.endpoint[0].ticket.clone().expect("ticket");
    let got: Vec<RecordBatch> = s
        .do_get(t)
        .await
        .expect("get")
        .try_collect()
        .await
        .expect("rows");
    let want = sql(&mut s, "SELECT count(*) FROM demo WHERE class = 'person'").await;
    assert_eq!(count(&got), count(&want));
    // a result with a dictionary column goes out through arrow-flight's encoder (the
    // direct encoder leaves dictionaries to it), which sends the dictionary's values
    let q = "SELECT label_id, class, arrow_cast(class, 'Dictionary(Int32, Utf8)') AS d \
             FROM demo ORDER BY label_id";
    let got = sql(&mut s, q).await;
    assert_eq!(
        got[0].schema().field(2).data_type(),
        &arrow::datatypes::DataType::Utf8
    );
    let mut rows = 0;
    for b in &got {
        let plain = b.column(1).as_string::<i32>();
        assert_eq!(plain, b.column(2).as_string::<i32>());
        rows += b.num_rows();
    }
    assert_eq!(
        rows,
        count(&sql(&mut s, "SELECT count(*) FROM demo").await) as usize
    );
    srv.stop().await;
}

/// Every statement kind that writes, as a read-only token would send it through Flight SQL
/// (query, update and prepared-statement paths): refused with PERMISSION_DENIED, nothing
/// changes. Statements that touch the host are refused for read-write tokens too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_tokens_change_nothing_by_any_statement() {
    let srv = Server::start(400).await;
    let mut ro = srv.sql_client(RO).await;
    let mut rw = srv.sql_client(RW).await;
    let state = "SELECT branch || ':' || CAST(protected AS VARCHAR) || ':' || checks, commit_id \
                 FROM quiver.branches UNION ALL SELECT tag, commit_id FROM quiver.tags ORDER BY 1";
    let before = sql(&mut rw, state).await;
    let writes = [
        "INSERT INTO demo (sample_id, label_id) VALUES ('img-99999999', 0)",
        "/* read? */ INSERT/**/INTO demo (sample_id, label_id) VALUES ('img-99999998', 0)",
        "DELETE FROM demo WHERE sample_id = 'img-00000001'",
        "UPDATE demo SET class = 'car'",
        "CREATE BRANCH b FROM demo",
        "DROP TAG 'v1' ON demo",
        "CREATE TAG 'v9' ON demo",
        "MERGE TAG 'v1' INTO main ON demo",
        "CREATE RUN 'r' ON demo",
        "CREATE DATASET d2 (k VARCHAR NOT NULL, l INT NOT NULL) KEY (k, l)",
        "CREATE TABLE t2 (k VARCHAR, l INT, PRIMARY KEY (k, l))",
        "CREATE TABLE IF NOT EXISTS demo (k VARCHAR, l INT, PRIMARY KEY (k, l))",
        "DROP TABLE demo",
        "DROP TABLE IF EXISTS nope",
        "INSERT INTO demo (sample_id, label_id) VALUES ($1, $2)",
        "DROP BRANCH main ON demo",
        "CREATE SCHEMA VERSION '9.9' ON demo ADD CLASS 'kite' = 77",
        "MIGRATE demo TO SCHEMA '2.2'",
        "CREATE MODEL 'm1' FROM RUN 'r1'",
        "INSERT INTO quiver.predictions VALUES ('m1', 'img-00000001', 'cat', 0.5)",
        "ABORT MERGE ON demo",
        "COMMIT MERGE ON demo",
        "RESOLVE CONFLICTS ON demo USING THEIRS",
        "VACUUM demo DRY RUN",
        "OPTIMIZE demo",
        "REVERT TAG 'v1' ON demo",
        "RESET BRANCH main ON demo TO VERSION '~0'",
        "ALTER BRANCH main ON demo SET PROTECTED",
        "ALTER BRANCH main ON demo ADD CHECK c AS 'SELECT 1 WHERE false'",
        "ALTER BRANCH main ON demo DROP CHECK c",
    ];
    // every reading kind runs for a read-only token (or fails for its own reasons)
    for r in [
        "SELECT count(*) FROM public.demo AS OF TAG 'v1'",
        "SHOW BRANCHES ON demo",
        "SHOW TAGS ON demo",
        "SHOW HISTORY ON demo",
        "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'main'",
        "USE BRANCH main ON demo",
        "SHOW CONFLICTS ON demo",
        "SHOW SCHEMAS ON demo",
        "BEGIN",
        "ROLLBACK",
        "MERGE TAG 'v1' INTO main ON demo PREVIEW",
        "SELECT * FROM quiver_merge_preview('demo', 'v1', 'main')",
        "SELECT * FROM quiver_history('demo', 'img-00000001')",
    ] {
        if let Err(arrow_flight::error::FlightError::Tonic(s)) =
            ro.execute(r.to_string(), None).await.map(|_| ())
        {
            assert_ne!(s.code(), tonic::Code::PermissionDenied, "{r}: {s}");
        }
    }
    let denied = |e: arrow_flight::error::FlightError| match e {
        arrow_flight::error::FlightError::Tonic(s) => s.code() == tonic::Code::PermissionDenied,
        _ => false,
    };
    for w in writes {
        let e = ro.execute(w.to_string(), None).await.map(|_| ());
        assert!(denied(e.expect_err(w)), "{w}");
        let e = ro.execute_update(w.to_string(), None).await.map(|_| ());
        assert!(denied(e.expect_err(w)), "{w}");
        let e = ro.prepare(w.to_string(), None).await.map(|_| ());
        assert!(denied(e.expect_err(w)), "{w}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.csv");
    for token in [&mut ro, &mut rw] {
        for s in [
            format!(
                "EXPLAIN ANALYZE COPY (SELECT * FROM demo) TO '{}'",
                out.display()
            ),
            format!("COPY (SELECT 1) TO '{}'", out.display()),
            format!(
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}'",
                out.display()
            ),
            "SET datafusion.execution.batch_size = 1".to_string(),
        ] {
            let e = token.execute(s.clone(), None).await.map(|_| ());
            let e = e.expect_err(&s).to_string();
            assert!(e.contains("not allowed"), "{s}: {e}");
        }
    }
    assert!(!out.exists());
    // the other write route of Flight SQL: bulk ingest (replace would rewrite main)
    let ingest = arrow_flight::sql::CommandStatementIngest {
        table_definition_options: Some(arrow_flight::sql::TableDefinitionOptions {
            if_not_exist: arrow_flight::sql::TableNotExistOption::Create as i32,
            if_exists: arrow_flight::sql::TableExistsOption::Replace as i32,
        }),
        table: "demo".into(),
        ..Default::default()
    };
    let rows = sql(&mut rw, "SELECT * FROM demo LIMIT 1").await;
    let e = ro
        .execute_ingest(ingest, futures::stream::iter(rows.into_iter().map(Ok)))
        .await
        .map(|_| ());
    assert!(denied(e.expect_err("ingest")), "ingest");
    let datasets = sql(&mut rw, "SELECT dataset FROM quiver.datasets").await;
    assert_eq!(datasets.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(sql(&mut rw, state).await, before);
    // a read-write token's writes carry its name as author
    sql(
        &mut rw,
        "UPDATE demo SET class = 'car' WHERE sample_id = 'img-00000001'",
    )
    .await;
    let authors = sql(
        &mut rw,
        "SELECT author FROM quiver.commits WHERE dataset = 'demo' ORDER BY timestamp DESC LIMIT 1",
    )
    .await;
    let a = authors[0].column(0).as_string::<i32>().value(0).to_string();
    assert_eq!(a, "alice");
    srv.stop().await;
}

/// A trainer's read (DoGet of a read command) decodes strings straight into the wire's
/// plain arrays: a dataset that stores them as `LargeUtf8` or `Utf8View` (and binaries as
/// `LargeBinary`) is sent `Utf8` and `Binary`, as FlightInfo announces, with the values
/// written, also through a filter on such a column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_send_plain_strings_whatever_the_stored_layout() {
    use arrow::array::{BinaryArray, LargeBinaryArray, LargeStringArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf8").to_string();
    let cat = Catalog::open(&root).await.expect("catalog");
    let schema = Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::LargeUtf8, false),
        Field::new("label_id", DataType::Int64, false),
        Field::new("class", DataType::Utf8View, true),
        Field::new("blob", DataType::LargeBinary, true),
    ]));
    let ds = cat
        .create_dataset("wide", schema.clone(), Default::default())
        .await
        .expect("dataset");
    let n = 500usize;
    let ids: Vec<String> = (0..n).map(|i| format!("img-{i:08}")).collect();
    let classes: Vec<Option<String>> = (0..n)
        .map(|i| (i % 7 != 0).then(|| format!("class number {}", i % 3)))
        .collect();
    let blobs: Vec<Option<Vec<u8>>> = (0..n)
        .map(|i| (i % 5 != 0).then(|| vec![i as u8; i % 20]))
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(LargeStringArray::from_iter_values(ids.iter())),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringViewArray::from_iter(
                classes.iter().map(|c| c.as_deref()),
            )),
            Arc::new(LargeBinaryArray::from_iter(
                blobs.iter().map(|b| b.as_deref()),
            )),
        ],
    )
    .expect("batch");
    let mut txn = ds.begin("main").await.expect("txn");
    txn.append(&batch).await.expect("append");
    txn.commit("strings in three layouts")
        .await
        .expect("commit");
    drop((ds, cat));
    let srv = Server::serve_dir(dir, ServerLimits::default()).await;
    let mut c = srv.client(Some(RO)).await;
    for filter in [None, Some("class = 'class number 1'")] {
        let mut cmd = serde_json::json!({"dataset": "wide"});
        if let Some(f) = filter {
            cmd["filter"] = f.into();
        }
        let info = c
            .get_flight_info(qdesc(Kind::Read, &cmd.to_string()))
            .await
            .expect("info");
        let announced = info.clone().try_decode_schema().expect("schema");
        let types: Vec<_> = announced
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Utf8,
                DataType::Int64,
                DataType::Utf8,
                DataType::Binary
            ]
        );
        let mut got = Vec::new();
        for ep in &info.endpoint {
            let batches: Vec<RecordBatch> = c
                .do_get(ep.ticket.clone().expect("ticket"))
                .await
                .expect("get")
                .try_collect()
                .await
                .expect("stream");
            for b in batches {
                assert_eq!(b.schema().fields(), announced.fields());
                let s = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("utf8");
                let l = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
                let k = b
                    .column(2)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("utf8");
                let x = b
                    .column(3)
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .expect("binary");
                for i in 0..b.num_rows() {
                    let row = l.value(i) as usize;
                    assert_eq!(s.value(i), ids[row]);
                    assert_eq!(k.is_valid(i).then(|| k.value(i)), classes[row].as_deref());
                    assert_eq!(x.is_valid(i).then(|| x.value(i)), blobs[row].as_deref());
                    got.push(row);
                }
            }
        }
        got.sort_unstable();
        let want: Vec<usize> = (0..n)
            .filter(|&i| filter.is_none() || classes[i].as_deref() == Some("class number 1"))
            .collect();
        assert_eq!(got, want, "filter {filter:?}");
    }
    srv.stop().await;
}
