//! Storage format 2: a chunked base plus per-commit deltas.
//!
//! * [`format`]: the records (base chunks, deltas, layouts) and their byte encodings.
//! * [`view`]: a layout loaded and folded into scan partitions and group look-ups.
//! * [`build`]: writing packs, bases (from sorted groups) and deltas.
//! * [`lthash`]: the homomorphic multiset hash that is a version's content identity.
//!
//! A commit that changes `k` groups writes one delta (a small pack with the new rows of
//! those groups, and a record naming where their old rows were), a layout naming the base
//! and the deltas, and the commit; nothing else is rewritten. OPTIMIZE folds the deltas of
//! a branch head into new base chunks, rewriting only the chunks they touched.

pub mod build;
pub(crate) mod cache;
pub mod format;
pub mod lthash;
pub mod optimize;
pub mod view;

pub use format::{Base, Chunk, Delta, DeltaEntry, GroupRef, Layout};
pub use lthash::Multiset;
pub use view::View;

/// Path of the pointer naming the layout of a commit.
pub(crate) fn layout_pointer(dataset: &str, commit: &quiver_tree::Hash) -> String {
    format!("datasets/{dataset}/layouts/{}", commit.to_hex())
}
