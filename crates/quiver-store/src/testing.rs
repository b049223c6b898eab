//! Test helpers shared with other crates' tests (not `cfg(test)`): [`FaultyStore`], an
//! `ObjectStore` wrapper that makes puts fail on demand, to check that an interrupted
//! write leaves the catalog at its last committed state (DESIGN invariant 7).
//!
//! Wrap it in a [`crate::Store`] with [`crate::Store::from_object_store`] and keep an
//! `Arc<FaultyStore>` to switch faults on and off.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Which puts to fail.
#[derive(Debug, Default)]
struct Faults {
    /// Fail any put whose path contains one of these substrings.
    matching: Vec<String>,
    /// Allow this many more puts, then fail every put.
    allowed_puts: Option<u64>,
    /// How many puts were failed so far.
    failed: u64,
    /// Allow this many more deletes, then fail every delete.
    allowed_deletes: Option<u64>,
    /// How many deletes were failed so far.
    failed_deletes: u64,
}

/// An `ObjectStore` that delegates to another one but fails puts (including multipart
/// uploads and copies/renames onto a path) and deletes as configured, with
/// `object_store::Error::Generic`. Reads and lists always go through.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Mutex<Faults>>,
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wrap `inner`; no faults are configured.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultyStore {
        FaultyStore {
            inner,
            faults: Arc::new(Mutex::new(Faults::default())),
        }
    }

    fn with_faults<T>(&self, f: impl FnOnce(&mut Faults) -> T) -> T {
        let mut guard = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Fail every put whose path (inside the wrapped store) contains `substring`.
    pub fn fail_puts_matching(&self, substring: &str) {
        self.with_faults(|f| f.matching.push(substring.to_string()));
    }

    /// Let `n` more puts succeed, then fail every put until [`FaultyStore::heal`].
    pub fn fail_after_puts(&self, n: u64) {
        self.with_faults(|f| f.allowed_puts = Some(n));
    }

    /// Let `n` more deletes succeed, then fail every delete until [`FaultyStore::heal`].
    pub fn fail_after_deletes(&self, n: u64) {
        self.with_faults(|f| f.allowed_deletes = Some(n));
    }

    /// Remove all configured faults.
    pub fn heal(&self) {
        self.with_faults(|f| {
            f.matching.clear();
            f.allowed_puts = None;
            f.allowed_deletes = None;
        });
    }

    /// How many puts were failed so far.
    pub fn failed_puts(&self) -> u64 {
        self.with_faults(|f| f.failed)
    }

    /// How many deletes were failed so far.
    pub fn failed_deletes(&self) -> u64 {
        self.with_faults(|f| f.failed_deletes)
    }

    /// Decide whether a put to `location` fails, counting it.
    fn check_put(&self, location: &Path) -> object_store::Result<()> {
        let fail = self.with_faults(|f| {
            let matched = f.matching.iter().any(|m| location.as_ref().contains(m));
            let exhausted = match f.allowed_puts.as_mut() {
                Some(0) => true,
                Some(n) => {
                    if !matched {
                        *n -= 1;
                    }
                    false
                }
                None => false,
            };
            if matched || exhausted {
                f.failed += 1;
            }
            matched || exhausted
        });
        if fail {
            Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected put failure at {location}").into(),
            })
        } else {
            Ok(())
        }
    }
}

/// Decide whether a delete of `location` fails, counting it.
fn check_delete(faults: &Mutex<Faults>, location: &Path) -> object_store::Result<()> {
    let mut f = faults.lock().unwrap_or_else(PoisonError::into_inner);
    let fail = match f.allowed_deletes.as_mut() {
        Some(0) => true,
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    };
    if fail {
        f.failed_deletes += 1;
        return Err(object_store::Error::Generic {
            store: "FaultyStore",
            source: format!("injected delete failure at {location}").into(),
        });
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check_put(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check_put(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // one location at a time, so the k-th delete fails exactly
        let faults = Arc::clone(&self.faults);
        let inner = Arc::clone(&self.inner);
        locations
            .then(move |loc| {
                let faults = Arc::clone(&faults);
                let inner = Arc::clone(&inner);
                async move {
                    let p = loc?;
                    check_delete(&faults, &p)?;
                    let one = futures::stream::once(futures::future::ready(Ok(p.clone())));
                    match inner.delete_stream(one.boxed()).next().await {
                        Some(r) => r,
                        None => Ok(p),
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check_put(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check_put(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}
