//! An in-memory [`NodeStore`] with I/O counters, for tests and benchmarks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Hash, Node, NodeStore, Result, TreeError};

/// An in-memory node store: encoded nodes in a `HashMap` behind a `Mutex`.
///
/// It counts the nodes and bytes written (only nodes that were not already present) and
/// the nodes read, so tests can check the cost of tree operations.
#[derive(Debug, Default)]
pub struct MemNodeStore {
    nodes: Mutex<HashMap<Hash, Vec<u8>>>,
    nodes_written: AtomicU64,
    bytes_written: AtomicU64,
    nodes_read: AtomicU64,
}

impl MemNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of new nodes stored since creation or the last [`reset_counters`](Self::reset_counters).
    pub fn nodes_written(&self) -> u64 {
        self.nodes_written.load(Ordering::Relaxed)
    }

    /// Encoded bytes of the new nodes stored since creation or the last reset.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Number of `get_node` calls since creation or the last reset.
    pub fn nodes_read(&self) -> u64 {
        self.nodes_read.load(Ordering::Relaxed)
    }

    /// Zero the counters (the stored nodes stay).
    pub fn reset_counters(&self) {
        self.nodes_written.store(0, Ordering::Relaxed);
        self.bytes_written.store(0, Ordering::Relaxed);
        self.nodes_read.store(0, Ordering::Relaxed);
    }

    /// Number of distinct nodes held.
    pub fn len(&self) -> usize {
        self.nodes.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True if no node is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total encoded size of all nodes held.
    pub fn total_bytes(&self) -> u64 {
        self.nodes
            .lock()
            .map(|m| m.values().map(|v| v.len() as u64).sum())
            .unwrap_or(0)
    }

    /// True if a node with this hash is held.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.nodes
            .lock()
            .map(|m| m.contains_key(hash))
            .unwrap_or(false)
    }
}

fn poisoned() -> TreeError {
    TreeError::Store("memory node store lock poisoned".to_string())
}

impl NodeStore for MemNodeStore {
    fn get_node(&self, hash: &Hash) -> Result<Arc<Node>> {
        self.nodes_read.fetch_add(1, Ordering::Relaxed);
        let bytes = {
            let map = self.nodes.lock().map_err(|_| poisoned())?;
            map.get(hash)
                .cloned()
                .ok_or_else(|| TreeError::Store(format!("tree node {hash} not found")))?
        };
        Ok(Arc::new(Node::decode(&bytes)?))
    }

    fn put_node(&self, node: &Node) -> Result<Hash> {
        let bytes = node.encode();
        let hash = Hash::of(&bytes);
        let mut map = self.nodes.lock().map_err(|_| poisoned())?;
        if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(hash) {
            self.nodes_written.fetch_add(1, Ordering::Relaxed);
            self.bytes_written
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            slot.insert(bytes);
        }
        Ok(hash)
    }
}
