//! Integration tests of quiver-core (one binary, one module per concern).
#![allow(clippy::unwrap_used)]

mod atomic;
mod basics;
mod common;
mod concurrency;
mod corrupt;
mod cow;
mod crash;
mod erase;
mod faults;
mod fsck;
mod gc;
mod history;
mod import;
mod merge;
mod protected;
mod revert;
mod storage;
mod traversal;
