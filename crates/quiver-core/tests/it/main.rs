//! Integration tests of quiver-core (one binary, one module per concern).
#![allow(clippy::unwrap_used)]

mod basics;
mod common;
mod concurrency;
mod cow;
mod crash;
mod gc;
mod import;
mod merge;
mod traversal;
