//! Quiver facade: the crates of the engine under one name.
//!
//! - [`core`]: catalogs, datasets, commits, branches, tags, merges (`quiver-core`);
//! - [`store`]: content-addressed objects and atomic refs over object_store (`quiver-store`);
//! - [`tree`]: keys, hashes and the diff/merge vocabulary (`quiver-tree`).
//!
//! SQL (`quiver-sql`) and the Flight server (`quiver-flight`) are crates of their own.

pub use quiver_core as core;
pub use quiver_store as store;
pub use quiver_tree as tree;
