//! Integration tests of the quiver CLI (one binary).
#![allow(clippy::unwrap_used)]

mod fsck_cli;
mod io_cli;
mod serve_cli;
mod sql_cli;
