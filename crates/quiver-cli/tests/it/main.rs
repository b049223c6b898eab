//! Integration tests of the quiver CLI (one binary).
#![allow(clippy::unwrap_used)]

mod io_cli;
mod serve_cli;
mod sql_cli;
