//! The sync step of local stores: making a written file durable with `fsync`.
//!
//! `LocalFileSystem` never fsyncs. After a write lands at its final path, [`Durability::sync`]
//! fsyncs the file (its bytes), then its directory (its name). A write may have created
//! directories (`objects/node/ab/`): their names live in *their* parents, so the first time
//! a directory is seen every directory above it up to the catalog root is fsynced too, and
//! remembered, so steady-state writes cost two fsyncs. The blocking calls run on tokio's
//! blocking pool.

use std::collections::HashSet;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::error::{Result, StoreError};

/// How to make the writes of one local store durable.
pub(crate) struct Durability {
    fs: Arc<LocalFileSystem>,
    root: PathBuf,
    /// Directories whose own entry (in their parent) is known durable.
    durable_dirs: Arc<Mutex<HashSet<PathBuf>>>,
    synced: Arc<AtomicU64>,
}

impl Durability {
    /// Syncs for the store rooted at `root` (an existing directory).
    pub(crate) fn new(fs: Arc<LocalFileSystem>, root: &FsPath) -> Result<Durability> {
        let root = root.canonicalize().map_err(|source| StoreError::Io {
            path: root.display().to_string(),
            source,
        })?;
        Ok(Durability {
            fs,
            root,
            durable_dirs: Arc::default(),
            synced: Arc::default(),
        })
    }

    /// Files fsynced so far.
    pub(crate) fn synced_files(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// fsync the file at `location` and the directories that name it.
    pub(crate) async fn sync(&self, location: &Path) -> Result<()> {
        let file = self.fs.path_to_filesystem(location)?;
        let root = self.root.clone();
        let dirs = self.durable_dirs.clone();
        let synced = self.synced.clone();
        tokio::task::spawn_blocking(move || sync_file_and_dirs(&file, &root, &dirs, &synced))
            .await
            .map_err(|e| StoreError::Io {
                path: location.to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

/// fsync `file`, its directory, and (once per directory) the directories above it up to
/// `root`.
fn sync_file_and_dirs(
    file: &FsPath,
    root: &FsPath,
    durable_dirs: &Mutex<HashSet<PathBuf>>,
    synced: &AtomicU64,
) -> Result<()> {
    fsync(file)?;
    synced.fetch_add(1, Ordering::Relaxed);
    let mut dir = file.parent();
    let mut fresh = Vec::new();
    while let Some(d) = dir {
        fsync(d)?;
        let known = durable_dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(d);
        // `d`'s own name is durable once its parent was synced after it existed
        if known || !d.starts_with(root) || d == root {
            break;
        }
        fresh.push(d.to_path_buf());
        dir = d.parent();
    }
    // remembered only once every parent is synced, so a concurrent write never skips one
    durable_dirs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend(fresh);
    Ok(())
}

/// fsync one file or directory (directories are opened read-only, which Linux allows).
pub(crate) fn fsync(path: &FsPath) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_new_directories_once() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = tmp.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(deep.join("f"), b"x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(deep.join("g"), b"y").unwrap_or_else(|e| panic!("{e}"));
        let dirs = Mutex::default();
        let n = AtomicU64::new(0);
        sync_file_and_dirs(&deep.join("f"), &root, &dirs, &n).unwrap_or_else(|e| panic!("{e}"));
        let seen: HashSet<PathBuf> = dirs.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(seen.contains(&deep) && seen.contains(&root.join("a")));
        sync_file_and_dirs(&deep.join("g"), &root, &dirs, &n).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.load(Ordering::Relaxed), 2);
        assert!(fsync(&root.join("missing")).is_err());
    }
}
