//! Bridges the synchronous [`quiver_tree::NodeStore`] to the async object store.
//!
//! Tree algorithms run on a blocking thread (`spawn_blocking`); reads of nodes not in the
//! shared cache block on the object store there. Nodes written by a transaction stay in a
//! pending buffer until [`TxnNodes::flush`] writes them, so an unfinished write leaves at most
//! unreferenced objects behind (invariant 7).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use quiver_store::Store;
use quiver_tree::{Hash, Node, NodeStore, TreeError};
use tokio::runtime::Handle;

use crate::error::{CoreError, Result};

/// Object kind under which tree nodes are stored.
pub const NODE_KIND: &str = "node";

/// Most nodes kept in the shared cache before it is cleared.
const NODE_CACHE_LIMIT: usize = 400_000;

/// Catalog-wide cache of decoded, persisted nodes (immutable, so never stale).
#[derive(Default)]
pub struct NodeCache {
    map: Mutex<HashMap<Hash, Arc<Node>>>,
}

impl NodeCache {
    /// Forget every cached node.
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
    fn get(&self, h: &Hash) -> Option<Arc<Node>> {
        self.map.lock().ok().and_then(|m| m.get(h).cloned())
    }
    fn insert(&self, h: Hash, n: Arc<Node>) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= NODE_CACHE_LIMIT {
                m.clear();
            }
            m.insert(h, n);
        }
    }
}

/// A node written by an operation and not yet flushed: decoded form and bytes.
type PendingNode = (Arc<Node>, Vec<u8>);

/// A node store for one operation: reads through the cache, buffers writes.
pub struct TxnNodes {
    store: Store,
    cache: Arc<NodeCache>,
    pending: Mutex<HashMap<Hash, PendingNode>>,
    handle: Handle,
    /// Fail on a node that is not cached (and remember it) instead of reading it.
    cache_only: bool,
    missed: AtomicBool,
}

impl TxnNodes {
    /// A node store bound to the current tokio runtime.
    pub fn new(store: Store, cache: Arc<NodeCache>) -> Arc<Self> {
        Self::with_mode(store, cache, false)
    }

    /// A node store that serves cached nodes only: reading any other node fails, and
    /// [`TxnNodes::missed`] tells so. For running a tree algorithm optimistically on warm
    /// caches before paying for a prefetch.
    pub fn cache_only(store: Store, cache: Arc<NodeCache>) -> Arc<Self> {
        Self::with_mode(store, cache, true)
    }

    fn with_mode(store: Store, cache: Arc<NodeCache>, cache_only: bool) -> Arc<Self> {
        Arc::new(TxnNodes {
            store,
            cache,
            pending: Mutex::default(),
            handle: Handle::current(),
            cache_only,
            missed: AtomicBool::new(false),
        })
    }

    /// A node written by this operation or in the shared cache, without any I/O.
    fn local(&self, h: &Hash) -> Option<Arc<Node>> {
        self.pending
            .lock()
            .ok()
            .and_then(|p| p.get(h).map(|x| x.0.clone()))
            .or_else(|| self.cache.get(h))
    }

    /// Whether a [`TxnNodes::cache_only`] store was asked for a node it does not hold.
    pub fn missed(&self) -> bool {
        self.missed.load(Ordering::Relaxed)
    }

    fn miss(&self, hash: &Hash) -> TreeError {
        self.missed.store(true, Ordering::Relaxed);
        TreeError::Store(format!("node {hash} is not cached"))
    }

    /// Whether `h` was written by this operation and not yet flushed.
    pub fn is_pending(&self, h: &Hash) -> bool {
        self.pending
            .lock()
            .map(|p| p.contains_key(h))
            .unwrap_or(false)
    }

    /// Write every pending node; returns the bytes written.
    pub async fn flush(&self) -> Result<u64> {
        let pending: Vec<(Hash, Arc<Node>, Vec<u8>)> = match self.pending.lock() {
            Ok(mut p) => p.drain().map(|(h, (n, b))| (h, n, b)).collect(),
            Err(_) => return Err(CoreError::Join("node buffer poisoned".into())),
        };
        let bytes: u64 = pending.iter().map(|p| p.2.len() as u64).sum();
        let blobs: Vec<bytes::Bytes> = pending
            .iter()
            .map(|p| bytes::Bytes::from(p.2.clone()))
            .collect();
        let store = self.store.clone();
        futures::stream::iter(blobs)
            .map(move |b| {
                let store = store.clone();
                async move { store.put_object(NODE_KIND, b).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        for (h, n, _) in pending {
            self.cache.insert(h, n);
        }
        Ok(bytes)
    }

    /// Fetch (concurrently) the nodes a structural diff of `a` and `b` will read, so the
    /// diff itself runs on warm caches: walk both trees level by level, dropping hashes
    /// present on both sides (equal subtrees), and fetch each level's remaining nodes in
    /// parallel. Cost O(d log N) nodes in about `height` rounds of I/O.
    pub async fn prefetch_diff(&self, a: Hash, b: Hash) -> Result<()> {
        let (mut fa, mut fb) = (vec![a], vec![b]);
        while !fa.is_empty() || !fb.is_empty() {
            let sa: std::collections::HashSet<Hash> = fa.iter().copied().collect();
            let sb: std::collections::HashSet<Hash> = fb.iter().copied().collect();
            fa.retain(|h| !sb.contains(h));
            fb.retain(|h| !sa.contains(h));
            let wanted: Vec<Hash> = fa.iter().chain(fb.iter()).copied().collect();
            let nodes = self.fetch_many(&wanted).await?;
            let children = |hs: &[Hash]| -> Vec<Hash> {
                hs.iter()
                    .filter_map(|h| nodes.get(h))
                    .flat_map(|n| match n.as_ref() {
                        Node::Internal { children, .. } => {
                            children.iter().map(|c| c.hash).collect()
                        }
                        Node::Leaf { .. } => Vec::new(),
                    })
                    .collect()
            };
            let (na, nb) = (children(&fa), children(&fb));
            fa = na;
            fb = nb;
        }
        Ok(())
    }

    /// Fetch nodes concurrently (through the cache).
    pub async fn fetch_many(&self, hashes: &[Hash]) -> Result<HashMap<Hash, Arc<Node>>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        for h in hashes {
            match self.cache.get(h) {
                Some(n) => {
                    out.insert(*h, n);
                }
                None => missing.push(*h),
            }
        }
        let store = self.store.clone();
        let fetched: Vec<(Hash, Arc<Node>)> = futures::stream::iter(missing)
            .map(move |h| {
                let store = store.clone();
                // a task per node: reads, hash checks and decoding run on all workers
                tokio::spawn(async move {
                    let bytes = store.get_object(NODE_KIND, &h).await?;
                    let node = Node::decode(&bytes)?;
                    Ok::<_, CoreError>((h, Arc::new(node)))
                })
            })
            .buffer_unordered(32)
            .map(|joined| joined.map_err(|e| CoreError::Join(e.to_string()))?)
            .try_collect()
            .await?;
        for (h, n) in fetched {
            self.cache.insert(h, n.clone());
            out.insert(h, n);
        }
        Ok(out)
    }

    /// Run a tree algorithm on a blocking thread with this node store.
    pub async fn run<R, F>(self: &Arc<Self>, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&TxnNodes) -> Result<R> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| CoreError::Join(e.to_string()))?
    }
}

impl NodeStore for TxnNodes {
    fn get_node(&self, hash: &Hash) -> quiver_tree::Result<Arc<Node>> {
        if let Some(n) = self.local(hash) {
            return Ok(n);
        }
        if self.cache_only {
            return Err(self.miss(hash));
        }
        let bytes = self
            .handle
            .block_on(self.store.get_object(NODE_KIND, hash))
            .map_err(|e| TreeError::Store(e.to_string()))?;
        let node = Arc::new(Node::decode(&bytes)?);
        self.cache.insert(*hash, node.clone());
        Ok(node)
    }

    /// Pending and cached nodes directly; the others fetched concurrently (see
    /// [`TxnNodes::fetch_many`]).
    fn get_nodes(&self, hashes: &[Hash]) -> quiver_tree::Result<Vec<Arc<Node>>> {
        let mut found: HashMap<Hash, Arc<Node>> = HashMap::new();
        let mut missing = Vec::new();
        for h in hashes {
            match self.local(h) {
                Some(n) => {
                    found.insert(*h, n);
                }
                None => missing.push(*h),
            }
        }
        if let (true, Some(h)) = (self.cache_only, missing.first()) {
            return Err(self.miss(h));
        }
        if !missing.is_empty() {
            let fetched = self
                .handle
                .block_on(self.fetch_many(&missing))
                .map_err(|e| TreeError::Store(e.to_string()))?;
            found.extend(fetched);
        }
        hashes
            .iter()
            .map(|h| {
                found
                    .get(h)
                    .cloned()
                    .ok_or_else(|| TreeError::Store(format!("node {h} missing after fetch")))
            })
            .collect()
    }

    fn put_node(&self, node: &Node) -> quiver_tree::Result<Hash> {
        let bytes = node.encode();
        let h = Hash::of(&bytes);
        if self.cache.get(&h).is_none() {
            if let Ok(mut p) = self.pending.lock() {
                p.entry(h)
                    .or_insert_with(|| (Arc::new(node.clone()), bytes));
            }
        }
        Ok(h)
    }
}
