//! Integration tests of the quiver CLI (one binary).
#![allow(clippy::unwrap_used)]

mod cluster_cli;
mod erase_cli;
mod fsck_cli;
mod io_cli;
mod serve_cli;
mod sql_cli;
