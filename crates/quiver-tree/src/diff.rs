//! Structural diff and three-way merge of snapshot trees.
//!
//! The diff walks both trees at once, each side as a stack of pending items (whole
//! subtrees or single groups) in key order. Two subtrees with the same hash are skipped
//! without reading them; an item lying entirely before the other side's next item is
//! all additions (removals); overlapping, different items are expanded, the higher level
//! first (both when on the same level). Content-defined boundaries make unchanged
//! regions line up again as identical subtrees, so the cost is O(d log N) node reads
//! for d changed groups.

use crate::tree::{apply, Edit};
use std::sync::Arc;

use crate::{ChildEntry, GroupEntry, Hash, Key, Node, NodeStore, Result, TreeConfig};

/// The kind of a [`Change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

impl ChangeKind {
    /// `"added"`, `"removed"` or `"modified"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        }
    }
}

/// One changed group between two trees. At least one of `old` and `new` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: Key,
    pub old: Option<GroupEntry>,
    pub new: Option<GroupEntry>,
}

impl Change {
    /// Added (no old), removed (no new) or modified (both).
    pub fn kind(&self) -> ChangeKind {
        match (&self.old, &self.new) {
            (None, _) => ChangeKind::Added,
            (Some(_), None) => ChangeKind::Removed,
            (Some(_), Some(_)) => ChangeKind::Modified,
        }
    }
}

/// Where a group's rows sit: the leaf that lists it and the group's first row within the
/// leaf's rows (the rows of a leaf are its groups' rows in key order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupAt {
    pub leaf: Hash,
    pub offset: u64,
}

/// A [`Change`] with the positions of its old and new rows (set exactly when `old` / `new`
/// are), so readers can fetch the rows without walking the trees again.
#[derive(Clone, Debug, PartialEq)]
pub struct LocatedChange {
    pub change: Change,
    pub old_at: Option<GroupAt>,
    pub new_at: Option<GroupAt>,
}

impl LocatedChange {
    /// The group's key, old position and old row count, if it had rows before.
    pub fn old_rows(&self) -> Option<(&Key, GroupAt, u64)> {
        let (e, at) = self.change.old.as_ref().zip(self.old_at)?;
        Some((&self.change.key, at, e.rows))
    }

    /// The group's key, new position and new row count, if it has rows after.
    pub fn new_rows(&self) -> Option<(&Key, GroupAt, u64)> {
        let (e, at) = self.change.new.as_ref().zip(self.new_at)?;
        Some((&self.change.key, at, e.rows))
    }
}

/// A pending item of one side: child `i` of an internal node (a subtree) or entry `i` of a
/// leaf (a group, with its position). Items point into the shared decoded nodes, so the
/// walk copies no keys or statistics; only emitted changes clone their entries.
enum Item {
    Sub {
        level: u8,
        node: Arc<Node>,
        i: usize,
    },
    Group {
        node: Arc<Node>,
        i: usize,
        at: GroupAt,
    },
}

const NO_KEY: &[u8] = &[];

impl Item {
    fn child(&self) -> Option<&ChildEntry> {
        match self {
            Item::Sub { node, i, .. } => match &**node {
                Node::Internal { children, .. } => children.get(*i),
                Node::Leaf { .. } => None,
            },
            Item::Group { .. } => None,
        }
    }
    fn group(&self) -> Option<&GroupEntry> {
        match self {
            Item::Group { node, i, .. } => match &**node {
                Node::Leaf { entries } => entries.get(*i),
                Node::Internal { .. } => None,
            },
            Item::Sub { .. } => None,
        }
    }
    fn first(&self) -> &[u8] {
        match (self.child(), self.group()) {
            (Some(c), _) => &c.first_key,
            (_, Some(g)) => &g.key,
            _ => NO_KEY,
        }
    }
    fn last(&self) -> &[u8] {
        match (self.child(), self.group()) {
            (Some(c), _) => &c.last_key,
            (_, Some(g)) => &g.key,
            _ => NO_KEY,
        }
    }
    /// Groups rank below leaves (level 0).
    fn rank(&self) -> i16 {
        match self {
            Item::Sub { level, .. } => i16::from(*level),
            Item::Group { .. } => -1,
        }
    }
}

/// One side of the diff: pending items, the next one at the end.
struct Side<'a> {
    store: &'a dyn NodeStore,
    stack: Vec<Item>,
}

impl Side<'_> {
    fn push_node(&mut self, hash: Hash, node: Arc<Node>) {
        match &*node {
            Node::Leaf { entries } => {
                let mut offset: u64 = entries.iter().map(|e| e.rows).sum();
                for i in (0..entries.len()).rev() {
                    offset -= entries[i].rows;
                    self.stack.push(Item::Group {
                        node: node.clone(),
                        i,
                        at: GroupAt { leaf: hash, offset },
                    });
                }
            }
            Node::Internal { level, children } => {
                let level = level.saturating_sub(1);
                for i in (0..children.len()).rev() {
                    self.stack.push(Item::Sub {
                        level,
                        node: node.clone(),
                        i,
                    });
                }
            }
        }
    }

    fn expand(&mut self, hash: &Hash) -> Result<()> {
        let node = self.store.get_node(hash)?;
        self.push_node(*hash, node);
        Ok(())
    }

    /// Pop the next item: expand a subtree, or return a group with its position.
    fn step(&mut self) -> Result<Option<(GroupEntry, GroupAt)>> {
        match self.stack.pop() {
            Some(item @ Item::Sub { .. }) => {
                if let Some(h) = item.child().map(|c| c.hash) {
                    self.expand(&h)?;
                }
                Ok(None)
            }
            Some(Item::Group { node, i, at }) => Ok(match &*node {
                Node::Leaf { entries } => entries.get(i).cloned().map(|g| (g, at)),
                Node::Internal { .. } => None,
            }),
            None => Ok(None),
        }
    }
}

fn removed((g, at): (GroupEntry, GroupAt)) -> LocatedChange {
    LocatedChange {
        change: Change {
            key: g.key.clone(),
            old: Some(g),
            new: None,
        },
        old_at: Some(at),
        new_at: None,
    }
}

fn added((g, at): (GroupEntry, GroupAt)) -> LocatedChange {
    LocatedChange {
        change: Change {
            key: g.key.clone(),
            old: None,
            new: Some(g),
        },
        old_at: None,
        new_at: Some(at),
    }
}

/// Stream the changes from `from` to `to` in key order to `f`, with the positions of the
/// old and new rows of each changed group.
///
/// A group is modified when its entry (hash, rows or statistics) differs under the same key.
pub fn diff_located_with(
    store: &dyn NodeStore,
    from: Hash,
    to: Hash,
    f: &mut dyn FnMut(LocatedChange) -> Result<()>,
) -> Result<()> {
    if from == to {
        return Ok(());
    }
    let mut a = Side {
        store,
        stack: Vec::new(),
    };
    let mut b = Side {
        store,
        stack: Vec::new(),
    };
    a.expand(&from)?;
    b.expand(&to)?;
    loop {
        let (x, y) = match (a.stack.last(), b.stack.last()) {
            (None, None) => return Ok(()),
            (Some(_), None) => {
                if let Some(g) = a.step()? {
                    f(removed(g))?;
                }
                continue;
            }
            (None, Some(_)) => {
                if let Some(g) = b.step()? {
                    f(added(g))?;
                }
                continue;
            }
            (Some(x), Some(y)) => (x, y),
        };
        if let (Some(cx), Some(cy)) = (x.child(), y.child()) {
            if cx.hash == cy.hash {
                a.stack.pop();
                b.stack.pop();
                continue;
            }
        }
        if let (Some(gx), Some(gy)) = (x.group(), y.group()) {
            if gx.key == gy.key {
                let changed = gx != gy;
                let (ga, gb) = (a.step()?, b.step()?);
                if let (true, Some((gx, ax)), Some((gy, ay))) = (changed, ga, gb) {
                    f(LocatedChange {
                        change: Change {
                            key: gx.key.clone(),
                            old: Some(gx),
                            new: Some(gy),
                        },
                        old_at: Some(ax),
                        new_at: Some(ay),
                    })?;
                }
                continue;
            }
        }
        if x.last() < y.first() {
            if let Some(g) = a.step()? {
                f(removed(g))?;
            }
        } else if y.last() < x.first() {
            if let Some(g) = b.step()? {
                f(added(g))?;
            }
        } else {
            // Overlapping and different: at least one is a subtree.
            let (rx, ry) = (x.rank(), y.rank());
            if rx >= ry {
                a.step()?;
            }
            if ry >= rx {
                b.step()?;
            }
        }
    }
}

/// Stream the changes from `from` to `to` in key order to `f`.
///
/// A group is modified when its entry (hash, rows or statistics) differs under the same key.
pub fn diff_with(
    store: &dyn NodeStore,
    from: Hash,
    to: Hash,
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    diff_located_with(store, from, to, &mut |c| f(c.change))
}

/// All changes from `from` to `to`, in key order, with the positions of their rows.
pub fn diff_located(store: &dyn NodeStore, from: Hash, to: Hash) -> Result<Vec<LocatedChange>> {
    let mut out = Vec::new();
    diff_located_with(store, from, to, &mut |c| {
        out.push(c);
        Ok(())
    })?;
    Ok(out)
}

/// All changes from `from` to `to`, in key order.
pub fn diff(store: &dyn NodeStore, from: Hash, to: Hash) -> Result<Vec<Change>> {
    Ok(diff_located(store, from, to)?
        .into_iter()
        .map(|c| c.change)
        .collect())
}

/// A group changed differently on both sides of a merge.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupConflict {
    pub key: Key,
    pub base: Option<GroupEntry>,
    pub ours: Option<GroupEntry>,
    pub theirs: Option<GroupEntry>,
}

/// The result of [`merge3`].
#[derive(Clone, Debug, PartialEq)]
pub struct MergeOutcome {
    /// The merged tree; conflicting groups keep our version.
    pub root: Hash,
    /// Conflicts in key order.
    pub conflicts: Vec<GroupConflict>,
}

/// Three-way merge of `theirs` into `ours` with common ancestor `base`.
///
/// Groups changed only by theirs are applied onto ours; groups changed identically on both
/// sides are taken once; groups changed differently are conflicts (ours is kept in the
/// merged root). Cost follows the number of changes: two diffs and one [`apply`].
pub fn merge3(
    store: &dyn NodeStore,
    cfg: &TreeConfig,
    base: Hash,
    ours: Hash,
    theirs: Hash,
) -> Result<MergeOutcome> {
    if theirs == base || theirs == ours {
        return Ok(MergeOutcome {
            root: ours,
            conflicts: Vec::new(),
        });
    }
    if ours == base {
        return Ok(MergeOutcome {
            root: theirs,
            conflicts: Vec::new(),
        });
    }
    let ours_changes = diff(store, base, ours)?;
    let theirs_changes = diff(store, base, theirs)?;
    let mut edits = Vec::new();
    let mut conflicts = Vec::new();
    let mut o = ours_changes.into_iter().peekable();
    for t in theirs_changes {
        while o.next_if(|c| c.key < t.key).is_some() {}
        match o.next_if(|c| c.key == t.key) {
            None => edits.push(match t.new {
                Some(g) => Edit::Upsert(g),
                None => Edit::Delete(t.key),
            }),
            Some(oc) => {
                if oc.new != t.new {
                    conflicts.push(GroupConflict {
                        key: t.key,
                        base: t.old,
                        ours: oc.new,
                        theirs: t.new,
                    });
                }
            }
        }
    }
    let root = apply(store, cfg, ours, edits)?;
    Ok(MergeOutcome { root, conflicts })
}
