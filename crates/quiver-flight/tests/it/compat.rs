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
