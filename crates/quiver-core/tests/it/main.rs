//! Integration tests of quiver-core (one binary, one module per concern).
#![allow(clippy::unwrap_used)]

mod basics;
mod common;
mod concurrency;
mod corrupt;
mod cow;
mod crash;
mod import;
mod merge;
