//! Building, editing and reading snapshot trees.

use std::collections::BTreeMap;

use crate::chunk::{internal_child_entry, leaf_child_entry, Chunker};
use crate::diff::GroupAt;
use crate::{ChildEntry, GroupEntry, Hash, Key, Node, NodeStore, Result, TreeConfig, TreeError};

/// Streaming bottom-up tree builder: keeps only the open chunk of each level.
///
/// Besides single group entries it accepts whole, already stored subtrees
/// ([`Builder::push_subtree`]) when they start at a chunk start of their level and end at
/// a genuine boundary of it; this is how [`apply`] shares untouched subtrees.
pub(crate) struct Builder<'a> {
    store: &'a dyn NodeStore,
    chunker: Chunker,
    /// Open leaf (level-0 chunk).
    leaf: Vec<GroupEntry>,
    /// `open[i]`: children of the open level-(i+1) node.
    open: Vec<Vec<ChildEntry>>,
    /// `closed[l]`: number of level-l nodes completed so far (built or reused).
    closed: Vec<u64>,
    /// `last[l]`: hash of the last completed level-l node.
    last: Vec<Hash>,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(store: &'a dyn NodeStore, cfg: &TreeConfig) -> Self {
        Builder {
            store,
            chunker: Chunker::new(cfg),
            leaf: Vec::new(),
            open: Vec::new(),
            closed: Vec::new(),
            last: Vec::new(),
        }
    }

    pub(crate) fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// Append a group entry (keys must be ascending; checked by callers).
    pub(crate) fn push_entry(&mut self, e: GroupEntry) -> Result<()> {
        let boundary = self.chunker.boundary(0, &e.key);
        self.leaf.push(e);
        if boundary {
            self.close_leaf()?;
        }
        Ok(())
    }

    /// True when no chunk of level `0..=level` is open: a level-`level` node may start here.
    pub(crate) fn aligned(&self, level: u8) -> bool {
        self.leaf.is_empty() && self.open.iter().take(usize::from(level)).all(Vec::is_empty)
    }

    /// Append a complete stored level-`level` subtree (see the type docs for when allowed).
    ///
    /// The subtree holds at least one node of every lower level; those levels are counted
    /// as having at least two nodes, which may over-estimate (never under-estimate) them;
    /// [`Builder::finish`] corrects for that.
    pub(crate) fn push_subtree(&mut self, level: u8, ce: ChildEntry) -> Result<()> {
        for l in 0..level {
            self.record_closed(l, ce.hash);
            self.record_closed(l, ce.hash);
        }
        self.record_closed(level, ce.hash);
        self.push_child(level + 1, ce)
    }

    fn record_closed(&mut self, level: u8, hash: Hash) {
        let l = usize::from(level);
        if self.closed.len() <= l {
            self.closed.resize(l + 1, 0);
            self.last.resize(l + 1, Hash::default());
        }
        self.closed[l] += 1;
        self.last[l] = hash;
    }

    fn closed(&self, level: u8) -> u64 {
        self.closed.get(usize::from(level)).copied().unwrap_or(0)
    }

    fn open_at(&mut self, level: u8) -> &mut Vec<ChildEntry> {
        let i = usize::from(level) - 1;
        if self.open.len() <= i {
            self.open.resize_with(i + 1, Vec::new);
        }
        &mut self.open[i]
    }

    /// Push a child (a completed level-(level-1) node) into the open level-`level` node.
    fn push_child(&mut self, level: u8, ce: ChildEntry) -> Result<()> {
        let boundary = self.chunker.boundary(level, &ce.last_key);
        self.open_at(level).push(ce);
        if boundary {
            self.close_internal(level)?;
        }
        Ok(())
    }

    fn close_leaf(&mut self) -> Result<Hash> {
        let entries = std::mem::take(&mut self.leaf);
        let node = Node::Leaf { entries };
        let hash = self.store.put_node(&node)?;
        let Node::Leaf { entries } = node else {
            return Ok(hash);
        };
        let ce = leaf_child_entry(hash, &entries);
        self.record_closed(0, hash);
        self.push_child(1, ce)?;
        Ok(hash)
    }

    fn close_internal(&mut self, level: u8) -> Result<Hash> {
        let children = std::mem::take(self.open_at(level));
        let node = Node::Internal { level, children };
        let hash = self.store.put_node(&node)?;
        let Node::Internal { children, .. } = node else {
            return Ok(hash);
        };
        let ce = internal_child_entry(hash, &children);
        self.record_closed(level, hash);
        if level < u8::MAX {
            self.push_child(level + 1, ce)?;
        }
        Ok(hash)
    }

    fn open_is_empty(&self, level: u8) -> bool {
        if level == 0 {
            self.leaf.is_empty()
        } else {
            self.open
                .get(usize::from(level) - 1)
                .is_none_or(Vec::is_empty)
        }
    }

    /// Close every open chunk and return the root hash.
    ///
    /// Goes up from the leaves until a level has a single node. Counts below a reused
    /// subtree are over-estimated (see [`Builder::push_subtree`]), so the node found may
    /// sit on top of a chain of single-child nodes; the canonical root is the bottom of
    /// that chain (the lowest level with a single node).
    pub(crate) fn finish(mut self) -> Result<Hash> {
        let mut level: u8 = 0;
        let top = loop {
            if self.closed(level) == 0 {
                // Nothing was pushed above this level: its only node is the open chunk.
                if level == 0 {
                    let entries = std::mem::take(&mut self.leaf);
                    return self.store.put_node(&Node::Leaf { entries });
                }
                let children = std::mem::take(self.open_at(level));
                if children.is_empty() {
                    // Unreachable: a lower level with >= 2 nodes pushed them here.
                    return self.store.put_node(&Node::Leaf {
                        entries: Vec::new(),
                    });
                }
                if children.len() == 1 {
                    break children[0].hash;
                }
                return self.store.put_node(&Node::Internal { level, children });
            }
            if !self.open_is_empty(level) {
                if level == 0 {
                    self.close_leaf()?;
                } else {
                    self.close_internal(level)?;
                }
            }
            if self.closed(level) == 1 {
                break self.last[usize::from(level)];
            }
            if level == u8::MAX {
                return Err(TreeError::Store("tree too tall".to_string()));
            }
            level += 1;
        };
        // Strip single-child nodes from the top.
        let mut root = top;
        loop {
            let node = self.store.get_node(&root)?;
            match &*node {
                Node::Internal { children, .. } if children.len() == 1 => root = children[0].hash,
                _ => return Ok(root),
            }
        }
    }
}

fn key_str(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => format!("0x{}", hex::encode(k)),
    }
}

/// The empty tree: an empty leaf. Returns its hash.
pub fn empty(store: &dyn NodeStore) -> Result<Hash> {
    store.put_node(&Node::Leaf {
        entries: Vec::new(),
    })
}

/// Build a tree from entries in strictly ascending key order, streaming (memory bounded by
/// one open chunk per level). Fails with [`TreeError::Unsorted`] on out-of-order keys.
pub fn build(
    store: &dyn NodeStore,
    cfg: &TreeConfig,
    entries: impl IntoIterator<Item = GroupEntry>,
) -> Result<Hash> {
    let mut b = Builder::new(store, cfg);
    let mut prev: Option<Key> = None;
    for e in entries {
        if let Some(p) = &prev {
            if e.key <= *p {
                return Err(TreeError::Unsorted {
                    key: key_str(&e.key),
                });
            }
        }
        prev = Some(e.key.clone());
        b.push_entry(e)?;
    }
    b.finish()
}

/// One edit of a batch applied by [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Insert the group, or replace the group with the same key.
    Upsert(GroupEntry),
    /// Remove the group with this key (no-op when absent).
    Delete(Key),
}

impl Edit {
    /// The key the edit applies to.
    pub fn key(&self) -> &[u8] {
        match self {
            Edit::Upsert(e) => &e.key,
            Edit::Delete(k) => k,
        }
    }
}

/// Apply a batch of edits copy-on-write and return the new root.
///
/// Edits may come in any order; the last edit of a key wins. Only the leaves holding
/// edited keys, the few neighbours a moved boundary touches, and their ancestors are
/// read and rewritten: O(k log N) nodes for k edits. The result is the same tree that
/// [`build`] gives for the resulting entry set. `cfg` must be the configuration `root`
/// was built with.
pub fn apply(
    store: &dyn NodeStore,
    cfg: &TreeConfig,
    root: Hash,
    edits: impl IntoIterator<Item = Edit>,
) -> Result<Hash> {
    let mut sorted: BTreeMap<Key, Edit> = BTreeMap::new();
    for e in edits {
        sorted.insert(e.key().to_vec(), e);
    }
    if sorted.is_empty() {
        return Ok(root);
    }
    let edits: Vec<Edit> = sorted.into_values().collect();
    let mut ed = EditCursor { edits, pos: 0 };
    let mut b = Builder::new(store, cfg);
    let node = store.get_node(&root)?;
    walk(store, &mut b, &node, &mut ed)?;
    // Edits past the old last key.
    while let Some(e) = ed.next() {
        if let Edit::Upsert(g) = e {
            b.push_entry(g.clone())?;
        }
    }
    b.finish()
}

struct EditCursor {
    edits: Vec<Edit>,
    pos: usize,
}

impl EditCursor {
    fn peek(&self) -> Option<&Edit> {
        self.edits.get(self.pos)
    }
    fn next(&mut self) -> Option<&Edit> {
        let e = self.edits.get(self.pos);
        if e.is_some() {
            self.pos += 1;
        }
        e
    }
    /// Is there an edit with key <= `key` left?
    fn any_upto(&self, key: &[u8]) -> bool {
        self.peek().is_some_and(|e| e.key() <= key)
    }
}

fn walk(
    store: &dyn NodeStore,
    b: &mut Builder<'_>,
    node: &Node,
    ed: &mut EditCursor,
) -> Result<()> {
    match node {
        Node::Leaf { entries } => {
            // Merge the leaf's entries with the edits whose key <= the leaf's last key.
            let last = entries.last().map(|e| e.key.as_slice());
            let mut it = entries.iter().peekable();
            loop {
                let take_edit = match (it.peek(), ed.peek()) {
                    (_, Some(e)) if last.is_none_or(|l| e.key() > l) => None,
                    (None, None) => break,
                    (Some(_), None) => Some(false),
                    (None, Some(_)) => Some(true),
                    (Some(g), Some(e)) => Some(e.key() <= g.key.as_slice()),
                };
                match take_edit {
                    None => {
                        // Rest of the leaf is untouched.
                        for g in it {
                            b.push_entry(g.clone())?;
                        }
                        break;
                    }
                    Some(false) => {
                        if let Some(g) = it.next() {
                            b.push_entry(g.clone())?;
                        }
                    }
                    Some(true) => {
                        let replaces = it.peek().is_some_and(|g| {
                            ed.peek().is_some_and(|e| e.key() == g.key.as_slice())
                        });
                        if replaces {
                            it.next();
                        }
                        if let Some(Edit::Upsert(g)) = ed.next() {
                            b.push_entry(g.clone())?;
                        }
                    }
                }
            }
            Ok(())
        }
        Node::Internal { level, children } => {
            let child_level = level - 1;
            for c in children {
                let reusable = !ed.any_upto(&c.last_key)
                    && b.aligned(child_level)
                    && b.chunker().nested_boundary(child_level, &c.last_key);
                if reusable {
                    b.push_subtree(child_level, c.clone())?;
                } else {
                    let child = store.get_node(&c.hash)?;
                    walk(store, b, &child, ed)?;
                }
            }
            Ok(())
        }
    }
}

/// Look up one group by key: O(log N) node reads.
pub fn get(store: &dyn NodeStore, root: Hash, key: &[u8]) -> Result<Option<GroupEntry>> {
    let mut node = store.get_node(&root)?;
    loop {
        let next = match &*node {
            Node::Leaf { entries } => {
                return Ok(entries
                    .binary_search_by(|e| e.key.as_slice().cmp(key))
                    .ok()
                    .and_then(|i| entries.get(i).cloned()));
            }
            Node::Internal { children, .. } => {
                let i = children.partition_point(|c| c.last_key.as_slice() < key);
                match children.get(i) {
                    Some(c) if c.first_key.as_slice() <= key => c.hash,
                    _ => return Ok(None),
                }
            }
        };
        node = store.get_node(&next)?;
    }
}

/// The entries and row positions of `keys` (strictly ascending) under `root`; `None` for a
/// key the tree does not hold. One descent for all keys, level by level: each level's nodes
/// are read with one [`NodeStore::get_nodes`] call, so O(k log N) nodes for k keys in
/// `height` rounds of reads.
pub fn locate(
    store: &dyn NodeStore,
    root: Hash,
    keys: &[Key],
) -> Result<Vec<Option<(GroupEntry, GroupAt)>>> {
    let mut out = vec![None; keys.len()];
    if keys.is_empty() {
        return Ok(out);
    }
    // (node, the indices of the keys that fall into its key range)
    let mut frontier: Vec<(Hash, std::ops::Range<usize>)> = vec![(root, 0..keys.len())];
    while !frontier.is_empty() {
        let hashes: Vec<Hash> = frontier.iter().map(|f| f.0).collect();
        let nodes = store.get_nodes(&hashes)?;
        let mut next = Vec::new();
        for ((hash, range), node) in frontier.iter().zip(nodes) {
            match &*node {
                Node::Leaf { entries } => {
                    let (mut k, mut offset) = (range.start, 0u64);
                    for e in entries {
                        while k < range.end && keys[k] < e.key {
                            k += 1;
                        }
                        if k < range.end && keys[k] == e.key {
                            out[k] = Some((
                                e.clone(),
                                GroupAt {
                                    leaf: *hash,
                                    offset,
                                },
                            ));
                            k += 1;
                        }
                        offset += e.rows;
                    }
                }
                Node::Internal { children, .. } => {
                    let mut k = range.start;
                    for c in children {
                        while k < range.end && keys[k] < c.first_key {
                            k += 1;
                        }
                        let first = k;
                        while k < range.end && keys[k] <= c.last_key {
                            k += 1;
                        }
                        if first < k {
                            next.push((c.hash, first..k));
                        }
                    }
                }
            }
        }
        frontier = next;
    }
    Ok(out)
}

/// All groups of the tree, in key order (reads every node).
pub fn entries(store: &dyn NodeStore, root: Hash) -> Result<Vec<GroupEntry>> {
    let mut out = Vec::new();
    collect(store, &root, &mut out)?;
    Ok(out)
}

fn collect(store: &dyn NodeStore, hash: &Hash, out: &mut Vec<GroupEntry>) -> Result<()> {
    let node = store.get_node(hash)?;
    match &*node {
        Node::Leaf { entries } => out.extend(entries.iter().cloned()),
        Node::Internal { children, .. } => {
            for c in children {
                collect(store, &c.hash, out)?;
            }
        }
    }
    Ok(())
}

/// The groups of one leaf. Fails with [`TreeError::Malformed`] if `leaf` is an internal node.
pub fn leaf_entries(store: &dyn NodeStore, leaf: &Hash) -> Result<Vec<GroupEntry>> {
    let node = store.get_node(leaf)?;
    match &*node {
        Node::Leaf { entries } => Ok(entries.clone()),
        Node::Internal { level, .. } => Err(TreeError::Malformed {
            hash: leaf.to_hex(),
            reason: format!("expected a leaf, found an internal node of level {level}"),
        }),
    }
}

/// Leaves under `root` whose statistics `keep` accepts (every ancestor accepted too).
pub fn leaves(
    store: &dyn NodeStore,
    root: Hash,
    keep: &mut dyn FnMut(&ChildEntry) -> bool,
) -> Result<Vec<ChildEntry>> {
    leaves_batch(
        store,
        root,
        &mut |children: &[ChildEntry], flags: &mut Vec<bool>| {
            flags.extend(children.iter().map(&mut *keep))
        },
    )
}

/// Like [`leaves`], but `keep` judges all children of one node in a single call (it pushes
/// one flag per child onto `flags`), so a predicate can be evaluated once per node over a
/// batch of statistics instead of once per child.
///
/// The tree is walked level by level and each level's kept children are read with one
/// [`NodeStore::get_nodes`] call, so a store with I/O latency fetches them concurrently.
/// Leaves come out in key order.
pub fn leaves_batch(
    store: &dyn NodeStore,
    root: Hash,
    keep: &mut dyn FnMut(&[ChildEntry], &mut Vec<bool>),
) -> Result<Vec<ChildEntry>> {
    let node = store.get_node(&root)?;
    let mut out = Vec::new();
    let mut flags = Vec::new();
    if let Node::Leaf { entries } = &*node {
        if !entries.is_empty() {
            let ce = leaf_child_entry(root, entries);
            keep(std::slice::from_ref(&ce), &mut flags);
            if flags.first().copied().unwrap_or(true) {
                out.push(ce);
            }
        }
        return Ok(out);
    }
    let mut frontier = vec![(root, node)];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for (hash, node) in &frontier {
            let Node::Internal { level, children } = &**node else {
                return Err(TreeError::Malformed {
                    hash: hash.to_hex(),
                    reason: "a leaf at the level of internal nodes".into(),
                });
            };
            flags.clear();
            keep(children, &mut flags);
            for (i, c) in children.iter().enumerate() {
                if flags.get(i).copied().unwrap_or(true) {
                    if *level == 1 {
                        out.push(c.clone());
                    } else {
                        next.push(c.hash);
                    }
                }
            }
        }
        let nodes = store.get_nodes(&next)?;
        frontier = next.into_iter().zip(nodes).collect();
    }
    Ok(out)
}

/// The root described as a ChildEntry (empty tree: empty keys, zero counts, no stats).
pub fn summary(store: &dyn NodeStore, root: Hash) -> Result<ChildEntry> {
    let node = store.get_node(&root)?;
    Ok(match &*node {
        Node::Leaf { entries } => leaf_child_entry(root, entries),
        Node::Internal { children, .. } => internal_child_entry(root, children),
    })
}

/// The height of the tree: the level of its root (0 when the root is a leaf).
pub fn height(store: &dyn NodeStore, root: Hash) -> Result<u8> {
    Ok(store.get_node(&root)?.level())
}
