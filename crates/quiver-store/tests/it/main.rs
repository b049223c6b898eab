//! Integration tests of `quiver-store`: objects, files, refs (CAS, races, stale hints),
//! fault injection, on local disk and memory, and on S3 when `QUIVER_TEST_S3_URL` is set.

#![allow(clippy::unwrap_used)]

mod checks;
mod durable;
mod faults;
mod local_memory;
mod s3;
