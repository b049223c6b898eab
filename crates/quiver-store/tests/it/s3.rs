//! The backend-independent checks against a real S3-compatible server, when
//! `QUIVER_TEST_S3_URL` (e.g. `s3://quiver-test/prefix`, with `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, credentials… set) is given; see `scripts/moto-s3.sh`. Ignored by a plain
//! `cargo test` (reported as ignored, never as passed); `scripts/test.sh` starts the server
//! and runs them with `--include-ignored`, where a missing URL is a failure.

use quiver_store::Store;

use crate::checks;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs an S3 server: set QUIVER_TEST_S3_URL (scripts/test.sh starts one)"]
async fn all_checks_s3() {
    let base = std::env::var("QUIVER_TEST_S3_URL")
        .expect("QUIVER_TEST_S3_URL names the S3 prefix to test (scripts/moto-s3.sh)");
    // A fresh prefix per run so reruns against the same bucket start empty.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/run-{nanos}", base.trim_end_matches('/'));
    let store = Store::open(&url).unwrap();
    checks::all(&store).await;
}
