#![allow(clippy::unwrap_used)]
//! Integration tests of quiver-tree.

mod common;

mod codec;
mod cost;
mod diff;
mod golden;
mod history;
mod leaves;
mod lookup;
mod merge;
