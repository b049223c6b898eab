//! What Flight SQL clients and drivers expect of a server (issue 17): Basic auth in both
//! base64 forms, ...

use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::FlightClient;
use base64::Engine;

use crate::server::{count, sql, Server, RO, RW};

/// A Flight client whose handshake sends `authorization: Basic <credentials>` as given.
async fn basic_handshake(srv: &Server, credentials: &str) -> Result<String, String> {
    let mut c = FlightClient::new(srv.channel().await);
    c.add_header("authorization", &format!("Basic {credentials}"))
        .expect("header");
    c.handshake(Vec::<u8>::new())
        .await
        .map(|payload| String::from_utf8_lossy(&payload).to_string())
        .map_err(|e| e.to_string())
}

/// The ADBC driver sends Basic credentials as unpadded base64 (Go's RawStdEncoding),
/// arrow-rs and pyarrow padded: a handshake accepts both, for user names giving 0, 1 and 2
/// padding characters, and the bearer token it answers with works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_in_padded_and_unpadded_base64() {
    let srv = Server::start(100).await;
    let mut pads_seen = Vec::new();
    for user in ["usr", "us", "u", "alice", "bob"] {
        let plain = format!("{user}:{RW}");
        let padded = base64::engine::general_purpose::STANDARD.encode(&plain);
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&plain);
        pads_seen.push(padded.len() - unpadded.len());
        for form in [&padded, &unpadded] {
            let token = basic_handshake(&srv, form).await.expect(form);
            assert_eq!(token, RW, "{user}: {form}");
        }
        let wrong = base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("{user}:x"));
        let err = basic_handshake(&srv, &wrong).await.expect_err("wrong");
        assert!(err.contains("unknown token"), "{err}");
    }
    pads_seen.sort_unstable();
    pads_seen.dedup();
    assert_eq!(pads_seen, vec![0, 1, 2]);
    // arrow-rs's own client: handshake, then statements with the bearer it got back
    let mut c = FlightSqlServiceClient::new(srv.channel().await);
    c.handshake("someone", RO).await.expect("handshake");
    assert_eq!(count(&sql(&mut c, "SELECT count(*) FROM demo").await), 100);
    let err = c
        .execute("CREATE BRANCH b FROM demo".into(), None)
        .await
        .map(|_| ())
        .expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    let err = basic_handshake(&srv, "***").await.expect_err("not base64");
    assert!(err.contains("not base64"), "{err}");
    srv.stop().await;
}

/// Result columns are named as other engines name them, in FlightInfo and in the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_are_named_by_their_sql_text() {
    let srv = Server::start(100).await;
    let mut c = srv.sql_client(RO).await;
    let q = "SELECT 1, count(*), max(score) AS top FROM demo";
    let info = c.execute(q.into(), None).await.expect(q);
    let schema = info.clone().try_decode_schema().expect("schema");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["1", "count(*)", "top"]);
    let batches = sql(&mut c, q).await;
    let names: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["1", "count(*)", "top"]);
    srv.stop().await;
}

/// The value GetSqlInfo gives for one item, as text (`true`, `Quiver`, …).
async fn sql_info(
    c: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    item: arrow_flight::sql::SqlInfo,
) -> String {
    let info = c.get_sql_info(vec![item]).await.expect("sql info");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = c.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1, "{item:?}");
    let value = batches[0].column_by_name("value").expect("value");
    let f = arrow::util::display::ArrayFormatter::try_new(value.as_ref(), &Default::default())
        .expect("formatter");
    let text = f.value(0).to_string();
    // a dense union prints as {type=value}
    text.trim_matches(|c| c == '{' || c == '}')
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or(text)
}

fn strings(batches: &[arrow::array::RecordBatch], column: &str) -> Vec<String> {
    use arrow::array::{Array, AsArray};
    let mut out = Vec::new();
    for b in batches {
        let c = b.column_by_name(column).expect(column);
        let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).expect("utf8");
        let s = c.as_string::<i32>();
        out.extend((0..s.len()).map(|i| s.value(i).to_string()));
    }
    out
}

async fn table_names(c: &mut FlightSqlServiceClient<tonic::transport::Channel>) -> Vec<String> {
    let info = c
        .get_tables(arrow_flight::sql::CommandGetTables {
            table_types: vec!["TABLE".into()],
            ..Default::default()
        })
        .await
        .expect("get_tables");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = c.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    let mut names = strings(&batches, "table_name");
    names.sort();
    names
}

/// CREATE TABLE creates a dataset keyed on its declared key and DROP TABLE drops one, as
/// updates (what drivers send for DDL) and as queries; read-only tokens change nothing;
/// GetSqlInfo claims table DDL, and it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_drop_table_over_flight_sql() {
    let srv = Server::start(100).await;
    let mut rw = srv.sql_client(RW).await;
    let mut ro = srv.sql_client(RO).await;
    let create = "CREATE TABLE boxes (sample_id VARCHAR, label_id BIGINT, class VARCHAR, \
                  PRIMARY KEY (sample_id, label_id))";
    let err = ro
        .execute_update(create.into(), None)
        .await
        .expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(table_names(&mut ro).await, ["demo"]);
    rw.execute_update(create.into(), None).await.expect(create);
    assert_eq!(table_names(&mut ro).await, ["boxes", "demo"]);
    let n = rw
        .execute_update(
            "INSERT INTO boxes VALUES ('a', 1, 'cat'), ('a', 2, 'dog')".into(),
            None,
        )
        .await
        .expect("insert");
    assert_eq!(n, 2);
    assert_eq!(count(&sql(&mut ro, "SELECT count(*) FROM boxes").await), 2);
    // an existing dataset: ALREADY_EXISTS, or left alone with IF NOT EXISTS
    let err = rw
        .execute_update(create.into(), None)
        .await
        .expect_err("exists");
    assert!(err.to_string().contains("already exists"), "{err}");
    rw.execute_update(create.replace("TABLE", "TABLE IF NOT EXISTS"), None)
        .await
        .expect("if not exists");
    // DROP TABLE: refused to read-only tokens, NOT_FOUND for unknown names, else dropped
    for drop in ["DROP TABLE boxes", "DROP TABLE IF EXISTS boxes"] {
        let err = ro
            .execute_update(drop.into(), None)
            .await
            .expect_err("read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    assert_eq!(table_names(&mut ro).await, ["boxes", "demo"]);
    let err = rw
        .execute_update("DROP TABLE nope".into(), None)
        .await
        .expect_err("unknown");
    assert!(
        err.to_string().contains("dataset 'nope' does not exist"),
        "{err}"
    );
    assert!(err.to_string().contains("entity was not found"), "{err}"); // NOT_FOUND
    let dropped = sql(&mut rw, "DROP TABLE IF EXISTS boxes, nope").await;
    assert_eq!(strings(&dropped, "dropped_table"), ["boxes"]);
    assert_eq!(table_names(&mut ro).await, ["demo"]);
    let err = rw
        .execute("SELECT * FROM boxes".into(), None)
        .await
        .expect_err("gone");
    assert!(err.to_string().contains("does not exist"), "{err}");
    // what GetSqlInfo claims, per caller: table DDL for read-write tokens only
    use arrow_flight::sql::SqlInfo;
    assert_eq!(sql_info(&mut rw, SqlInfo::SqlDdlTable).await, "true");
    assert_eq!(sql_info(&mut ro, SqlInfo::SqlDdlTable).await, "false");
    srv.stop().await;
}

fn labels(rows: &[(&str, i64, &str)]) -> arrow::array::RecordBatch {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("sample_id", arrow::datatypes::DataType::Utf8, true),
        arrow::datatypes::Field::new("label_id", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("class", arrow::datatypes::DataType::Utf8, true),
    ]));
    arrow::array::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("batch")
}

async fn ingest(
    c: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    table: &str,
    if_not_exist: arrow_flight::sql::TableNotExistOption,
    if_exists: arrow_flight::sql::TableExistsOption,
    batch: arrow::array::RecordBatch,
) -> Result<i64, String> {
    let cmd = arrow_flight::sql::CommandStatementIngest {
        table_definition_options: Some(arrow_flight::sql::TableDefinitionOptions {
            if_not_exist: if_not_exist as i32,
            if_exists: if_exists as i32,
        }),
        table: table.into(),
        ..Default::default()
    };
    c.execute_ingest(cmd, futures::stream::iter(vec![Ok(batch)]))
        .await
        .map_err(|e| e.to_string())
}

/// Bulk ingest: create, append, replace and their refusals, each one commit; read-only
/// callers change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_ingest_modes() {
    use arrow_flight::sql::{TableExistsOption as E, TableNotExistOption as N};
    let srv = Server::start(10).await;
    let mut rw = srv.sql_client(RW).await;
    let mut ro = srv.sql_client(RO).await;
    use arrow_flight::sql::SqlInfo;
    assert_eq!(
        sql_info(&mut rw, SqlInfo::FlightSqlServerBulkIngestion).await,
        "true"
    );
    assert_eq!(
        sql_info(&mut ro, SqlInfo::FlightSqlServerBulkIngestion).await,
        "false"
    );
    assert_eq!(
        sql_info(&mut rw, SqlInfo::FlightSqlServerIngestTransactionsSupported).await,
        "false"
    );
    assert_eq!(
        sql_info(&mut rw, SqlInfo::FlightSqlServerReadOnly).await,
        "false"
    );
    assert_eq!(
        sql_info(&mut ro, SqlInfo::FlightSqlServerReadOnly).await,
        "true"
    );
    assert_eq!(
        sql_info(&mut ro, SqlInfo::FlightSqlServerTransaction).await,
        "0"
    );
    let two = labels(&[("a", 1, "cat"), ("a", 2, "dog")]);
    let err = ingest(&mut ro, "ing", N::Create, E::Fail, two.clone())
        .await
        .expect_err("read-only");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(table_names(&mut ro).await, ["demo"]);
    let err = ingest(&mut rw, "ing", N::Fail, E::Append, two.clone())
        .await
        .expect_err("absent");
    assert!(err.contains("dataset 'ing' does not exist"), "{err}");
    // create: the default key, the rows, one data commit
    assert_eq!(
        ingest(&mut rw, "ing", N::Create, E::Fail, two.clone()).await,
        Ok(2)
    );
    let keys = sql(
        &mut ro,
        "SELECT group_key, label_key FROM quiver.datasets WHERE dataset = 'ing'",
    )
    .await;
    assert_eq!(strings(&keys, "group_key"), ["sample_id"]);
    assert_eq!(strings(&keys, "label_key"), ["label_id"]);
    let history =
        |c: &'static str| format!("SELECT count(*) FROM quiver.commits WHERE dataset = '{c}'");
    assert_eq!(count(&sql(&mut ro, &history("ing")).await), 2); // creation + the rows
    let err = ingest(&mut rw, "ing", N::Create, E::Fail, two.clone())
        .await
        .expect_err("exists");
    assert!(err.contains("already exists"), "{err}");
    // append: new keys only, one commit
    let three = labels(&[("b", 1, "cow")]);
    assert_eq!(
        ingest(&mut rw, "ing", N::Fail, E::Append, three).await,
        Ok(1)
    );
    assert_eq!(count(&sql(&mut ro, "SELECT count(*) FROM ing").await), 3);
    let err = ingest(
        &mut rw,
        "ing",
        N::Fail,
        E::Append,
        labels(&[("a", 1, "dup")]),
    )
    .await
    .expect_err("duplicate");
    assert!(err.contains("duplicate"), "{err}");
    assert_eq!(count(&sql(&mut ro, &history("ing")).await), 3);
    // replace: the rows of main replaced in one commit; earlier versions stay readable
    sql(&mut rw, "CREATE TAG 'before' ON ing").await;
    assert_eq!(
        ingest(
            &mut rw,
            "ing",
            N::Create,
            E::Replace,
            labels(&[("z", 9, "owl")])
        )
        .await,
        Ok(1)
    );
    let now = sql(&mut ro, "SELECT sample_id, class FROM ing").await;
    assert_eq!(strings(&now, "class"), ["owl"]);
    assert_eq!(
        count(&sql(&mut ro, "SELECT count(*) FROM ing AS OF TAG 'before'").await),
        3
    );
    assert_eq!(count(&sql(&mut ro, &history("ing")).await), 4);
    // create_append on a missing table creates it
    assert_eq!(
        ingest(&mut rw, "ing2", N::Create, E::Append, two.clone()).await,
        Ok(2)
    );
    assert_eq!(
        ingest(
            &mut rw,
            "ing2",
            N::Create,
            E::Append,
            labels(&[("c", 1, "x")])
        )
        .await,
        Ok(1)
    );
    assert_eq!(count(&sql(&mut ro, "SELECT count(*) FROM ing2").await), 3);
    // a table without the default key columns is created keyless: every row gets a
    // generated row key, and appending the same rows again adds them again (a bag of rows)
    let nokey = arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, true),
        ])),
        vec![std::sync::Arc::new(arrow::array::Int64Array::from(vec![
            1, 1, 2,
        ]))],
    )
    .expect("batch");
    assert_eq!(
        ingest(&mut rw, "nokey", N::Create, E::Fail, nokey.clone()).await,
        Ok(3)
    );
    assert_eq!(
        ingest(&mut rw, "nokey", N::Fail, E::Append, nokey).await,
        Ok(3)
    );
    assert_eq!(
        count(&sql(&mut ro, "SELECT count(DISTINCT _quiver_row_id) FROM nokey").await),
        6
    );
    let err = ingest(&mut ro, "ing", N::Fail, E::Replace, two)
        .await
        .expect_err("read-only");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(table_names(&mut ro).await, ["demo", "ing", "ing2", "nokey"]);
    srv.stop().await;
}

/// Several rows of parameters: an INSERT bound to three rows is one commit of three rows;
/// an UPDATE bound to two rows one commit; a query bound to two rows returns both results;
/// read-only callers cannot prepare writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_bind_many_rows() {
    let srv = Server::start(10).await;
    let mut rw = srv.sql_client(RW).await;
    let mut ro = srv.sql_client(RO).await;
    rw.execute_update(
        "CREATE TABLE p (sample_id VARCHAR, label_id BIGINT, class VARCHAR, \
         PRIMARY KEY (sample_id, label_id))"
            .into(),
        None,
    )
    .await
    .expect("create");
    let commits = "SELECT count(*) FROM quiver.commits WHERE dataset = 'p'";
    let before = count(&sql(&mut ro, commits).await);
    let mut ins = rw
        .prepare("INSERT INTO p VALUES (?, ?, ?)".into(), None)
        .await
        .expect("prepare insert");
    ins.set_parameters(labels(&[
        ("a", 1, "cat"),
        ("a", 2, "dog"),
        ("b", 1, "it's"),
    ]))
    .expect("bind");
    assert_eq!(ins.execute_update().await.expect("insert"), 3);
    assert_eq!(count(&sql(&mut ro, commits).await), before + 1);
    let all = sql(&mut ro, "SELECT class FROM p ORDER BY sample_id, label_id").await;
    assert_eq!(strings(&all, "class"), ["cat", "dog", "it's"]);

    let mut upd = rw
        .prepare("UPDATE p SET class = $1 WHERE label_id = $2".into(), None)
        .await
        .expect("prepare update");
    let params = arrow::array::RecordBatch::try_from_iter(vec![
        (
            "c",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["one", "two"]))
                as arrow::array::ArrayRef,
        ),
        (
            "l",
            std::sync::Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as _,
        ),
    ])
    .expect("params");
    upd.set_parameters(params).expect("bind");
    assert_eq!(upd.execute_update().await.expect("update"), 3);
    assert_eq!(count(&sql(&mut ro, commits).await), before + 2);
    let all = sql(&mut ro, "SELECT class FROM p ORDER BY sample_id, label_id").await;
    assert_eq!(strings(&all, "class"), ["one", "two", "one"]);

    // a query bound to two rows: both results, in row order
    let mut q = ro
        .prepare(
            "SELECT sample_id, label_id FROM p WHERE class = ? ORDER BY sample_id".into(),
            None,
        )
        .await
        .expect("prepare query");
    q.set_parameters(
        arrow::array::RecordBatch::try_from_iter(vec![(
            "c",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["two", "one"]))
                as arrow::array::ArrayRef,
        )])
        .expect("params"),
    )
    .expect("bind");
    let info = q.execute().await.expect("query");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = ro.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    let mut got = strings(&batches, "sample_id");
    got.sort();
    assert_eq!(got, ["a", "a", "b"]);

    // a read-only caller cannot prepare (or run) a write
    let err = ro
        .prepare("INSERT INTO p VALUES (?, ?, ?)".into(), None)
        .await
        .map(|_| ())
        .expect_err("read-only");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(count(&sql(&mut ro, commits).await), before + 2);
    srv.stop().await;
}

fn sql_descriptor<M: arrow_flight::sql::ProstMessageExt>(cmd: M) -> arrow_flight::FlightDescriptor {
    use prost::Message;
    arrow_flight::FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec())
}

/// GetSchema of statements, prepared statements and metadata commands: the schema the
/// FlightInfo announces, without running anything that writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_schema_plans_without_running_writes() {
    use arrow_flight::sql::{CommandGetTables, CommandStatementQuery};
    let srv = Server::start(50).await;
    let mut ro = srv.sql_client(RO).await;
    let mut rwf = srv.client(Some(RW)).await;
    let mut rof = srv.client(Some(RO)).await;
    let q = "SELECT sample_id, count(*), 1 FROM demo AS OF TAG 'v1' GROUP BY sample_id";
    let info = ro.execute(q.into(), None).await.expect(q);
    let announced = info.try_decode_schema().expect("schema");
    let cmd = CommandStatementQuery {
        query: q.into(),
        transaction_id: None,
    };
    let schema = rof
        .get_schema(sql_descriptor(cmd))
        .await
        .expect("get_schema");
    assert_eq!(schema, announced);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["sample_id", "count(*)", "1"]);
    // a prepared statement's schema
    let prepared = ro.prepare(q.into(), None).await.expect("prepare");
    assert_eq!(prepared.dataset_schema().expect("schema"), &announced);
    // a metadata command's schema
    let tables = CommandGetTables {
        include_schema: true,
        ..Default::default()
    };
    let schema = rof
        .get_schema(sql_descriptor(tables.clone()))
        .await
        .expect("get_schema tables");
    assert_eq!(&schema, tables.into_builder().schema().as_ref());
    // writes are not run: refused, and nothing changes
    let branch = CommandStatementQuery {
        query: "CREATE BRANCH from_get_schema FROM demo".into(),
        transaction_id: None,
    };
    let err = rwf
        .get_schema(sql_descriptor(branch))
        .await
        .expect_err("write");
    assert!(err.to_string().contains("only once it runs"), "{err}");
    let branches = sql(&mut ro, "SELECT branch FROM quiver.branches").await;
    assert_eq!(strings(&branches, "branch"), ["main"]);
    let err = rof
        .get_schema(sql_descriptor(CommandStatementQuery {
            query: "SELECT nope FROM demo".into(),
            transaction_id: None,
        }))
        .await
        .expect_err("bad column");
    assert!(err.to_string().contains("nope"), "{err}");
    srv.stop().await;
}

/// GetTables with include_schema carries each dataset's schema; GetXdbcTypeInfo lists the
/// column types, every one of which CREATE TABLE accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_schemas_and_type_info() {
    use arrow_flight::sql::{CommandGetTables, CommandGetXdbcTypeInfo};
    let srv = Server::start(20).await;
    let mut rw = srv.sql_client(RW).await;
    let info = rw
        .get_tables(CommandGetTables {
            table_name_filter_pattern: Some("demo".into()),
            include_schema: true,
            ..Default::default()
        })
        .await
        .expect("tables");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = rw.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    let col = batches[0]
        .column_by_name("table_schema")
        .expect("table_schema");
    let bytes = arrow::array::AsArray::as_binary::<i32>(col.as_ref()).value(0);
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(bytes).expect("ipc schema");
    let demo = sql(&mut rw, "SELECT * FROM demo LIMIT 1").await;
    let names = |s: &arrow::datatypes::Schema| -> Vec<String> {
        s.fields().iter().map(|f| f.name().clone()).collect()
    };
    assert_eq!(names(&schema), names(demo[0].schema().as_ref()));

    let info = rw
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("type info");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = rw.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    let types = strings(&batches, "type_name");
    let listed: Vec<String> = quiver_flight::xdbc::type_names()
        .map(str::to_string)
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    let mut got = types.clone();
    got.sort();
    assert_eq!(got, sorted);
    let columns: Vec<String> = listed
        .iter()
        .enumerate()
        .map(|(i, t)| format!("c{i} {t}"))
        .collect();
    let create = format!(
        "CREATE TABLE every_type (sample_id VARCHAR, label_id BIGINT, {}, \
         PRIMARY KEY (sample_id, label_id))",
        columns.join(", ")
    );
    rw.execute_update(create.clone(), None)
        .await
        .expect(&create);
    // filtered by type: BIGINT only
    let info = rw
        .get_xdbc_type_info(CommandGetXdbcTypeInfo {
            data_type: Some(arrow_flight::sql::XdbcDataType::XdbcBigint as i32),
        })
        .await
        .expect("type info");
    let mut batches = Vec::new();
    for ep in info.endpoint {
        let s = rw.do_get(ep.ticket.expect("ticket")).await.expect("do_get");
        batches.extend(
            futures::TryStreamExt::try_collect::<Vec<_>>(s)
                .await
                .expect("stream"),
        );
    }
    assert_eq!(strings(&batches, "type_name"), ["BIGINT"]);
    srv.stop().await;
}
