//! Storage layer of Quiver: content-addressed objects, plain files and atomic refs over
//! any `object_store` backend (local disk, memory, S3-compatible servers).
//!
//! * [`Store`] opens a catalog root from a URL and reads/writes objects and files
//!   (module `store`); every object read is verified against its blake3 address.
//! * Refs (branches, tags) are moved by compare-and-swap built only on create-if-absent,
//!   so the same protocol works on every backend; see the [`refs`] module docs for the exact
//!   on-storage protocol.
//! * [`ReadOnlyStore`] wraps an `ObjectStore` for query engines: reads only, every write
//!   refused (module `readonly`).
//! * [`testing`] holds a fault-injecting `ObjectStore` used by tests of this and other crates.

mod durable;
mod error;
mod local_reads;
mod readonly;
pub mod refs;
mod store;
pub mod testing;

pub use error::{Result, StoreError};
pub use readonly::{ReadOnlyError, ReadOnlyStore};
pub use refs::{parse_ref_entry_path, validate_ref_segment, RefLogEntry, RefState, MAX_NAME_BYTES};
pub use store::{FileMeta, Store, StoreOptions};
