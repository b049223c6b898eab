//! The backend-independent checks against a real S3-compatible server, when
//! `QUIVER_TEST_S3_URL` (e.g. `s3://quiver-test/prefix`, with `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, credentials… set) is given; see `scripts/moto-s3.sh`. Skipped otherwise.

use quiver_store::Store;

use crate::checks;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_checks_s3() {
    let Ok(base) = std::env::var("QUIVER_TEST_S3_URL") else {
        return;
    };
    // A fresh prefix per run so reruns against the same bucket start empty.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/run-{nanos}", base.trim_end_matches('/'));
    let store = Store::open(&url).unwrap();
    checks::all(&store).await;
}
