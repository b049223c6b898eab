//! Integration tests of `quiver-sql` (one test binary): the `.slt` specification files
//! under `sql/` and Rust tests that need more than SQL (pruning counters).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod asset;
mod compat;
mod corrupt;
mod dml_prop;
mod erase;
mod pruning;
mod readonly_store;
mod security;
mod sessions;
mod slt;
mod time_travel;
