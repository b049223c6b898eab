//! Format-1 leftovers: the object kind of snapshot-tree nodes, which format 2 no longer
//! writes (gc and fsck report and remove them).

/// Object kind of format-1 tree nodes.
pub const NODE_KIND: &str = "node";
