//! The catalogs a scheduler or executor process has opened, by location: each process
//! opens a catalog once (from its own `AWS_*` configuration for `s3://`), and every plan
//! that names it reuses the handle, its caches and its registered store URL.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::{
    DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl,
};
use quiver_core::Catalog;
use url::Url;

use crate::ClusterError;

static OPEN: LazyLock<Mutex<HashMap<String, Catalog>>> = LazyLock::new(Mutex::default);

/// The location a plan names a catalog by: a local path made absolute (another process
/// resolves a relative path against its own directory), other URLs unchanged.
/// `memory://` catalogs exist in one process only and cannot be sent.
pub fn portable_location(url: &str) -> Result<String, ClusterError> {
    match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("memory") => {
            Err(ClusterError::NotShareable(url.to_string()))
        }
        Some(_) => Ok(url.to_string()),
        None => std::path::absolute(url)
            .map(|p| p.display().to_string())
            .map_err(|e| ClusterError::Catalog {
                url: url.to_string(),
                reason: e.to_string(),
            }),
    }
}

/// This process's handle on the catalog at `url` (opened on first use).
pub async fn open(url: &str) -> Result<Catalog, ClusterError> {
    if let Some(c) = OPEN.lock().ok().and_then(|m| m.get(url).cloned()) {
        return Ok(c);
    }
    let local = !url.contains("://") || url.starts_with("file://");
    if local {
        let path = url.strip_prefix("file://").unwrap_or(url);
        if !std::path::Path::new(path).is_dir() {
            return Err(ClusterError::Catalog {
                url: url.to_string(),
                reason: "no such directory on this machine: every scheduler and executor \
                         must reach the catalog at the same path (a shared file system), \
                         or use an s3:// catalog"
                    .into(),
            });
        }
    }
    let catalog = Catalog::open(url)
        .await
        .map_err(|e| ClusterError::Catalog {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if let Ok(mut m) = OPEN.lock() {
        return Ok(m.entry(url.to_string()).or_insert(catalog).clone());
    }
    Ok(catalog)
}

/// Run `fut` to completion from synchronous code (the extension codecs' decode hooks)
/// inside a Tokio runtime: in place on a multi-threaded runtime, so that clients it opens
/// (S3 connections) live on the process's runtime; on a thread of its own otherwise.
pub fn block_on<T: Send>(fut: impl Future<Output = T> + Send) -> DfResult<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(fut)))
        }
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(fut))
                    .map_err(|e| DataFusionError::External(Box::new(e)))
            })
            .join()
            .map_err(|_| DataFusionError::Internal("catalog open thread panicked".into()))?
        }),
    }
}

/// Scheme of the store URLs of catalogs read by a cluster.
const SCHEME: &str = "quiver";
/// Host prefix of a cluster store URL: the rest of the host is the location in hex.
const HOST_PREFIX: &str = "x";

/// The URL every process of a cluster reads the catalog at `location` under
/// (`quiver://x<location in hex>/`): a plan that names it can be run by any process, which
/// opens the catalog from the URL alone ([`QuiverStoreRegistry`]).
pub fn store_url(location: &str) -> DfResult<ObjectStoreUrl> {
    let hex: String = location.bytes().map(|b| format!("{b:02x}")).collect();
    ObjectStoreUrl::parse(format!("{SCHEME}://{HOST_PREFIX}{hex}/"))
}

/// The catalog location of a cluster store URL, if `url` is one.
fn location_of(url: &Url) -> Option<String> {
    if url.scheme() != SCHEME {
        return None;
    }
    let hex = url.host_str()?.strip_prefix(HOST_PREFIX)?;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// DataFusion's object store registry plus the catalogs of cluster plans: a
/// `quiver://x…` URL no one registered opens that catalog (read-only) on first use. An
/// executor reads plans with it, so a scan can name a catalog the executor never saw.
#[derive(Debug, Default)]
pub struct QuiverStoreRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for QuiverStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn object_store::ObjectStore>,
    ) -> Option<Arc<dyn object_store::ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn object_store::ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn object_store::ObjectStore>> {
        if let Ok(store) = self.inner.get_store(url) {
            return Ok(store);
        }
        let Some(location) = location_of(url) else {
            return self.inner.get_store(url);
        };
        let catalog = block_on(async move { open(&location).await })?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let store = catalog.query_store();
        self.inner.register_store(url, store.clone());
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_carry_the_location_and_only_cluster_urls_are_read() {
        for loc in ["/data/labels", "s3://bucket/prefix/x", "file:///tmp/a b"] {
            let url = store_url(loc).expect(loc);
            assert_eq!(location_of(url.as_ref()).as_deref(), Some(loc));
        }
        let other = Url::parse("quiver://catalog-1/").expect("url");
        assert_eq!(location_of(&other), None);
        let s3 = Url::parse("s3://bucket/").expect("url");
        assert_eq!(location_of(&s3), None);
    }

    #[test]
    fn unshareable_and_missing_catalogs_are_named() {
        let err = portable_location("memory://x").expect_err("memory is one process's");
        assert!(err.to_string().contains("memory://x"), "{err}");
        let rel = portable_location("some/dir").expect("a relative path is made absolute");
        assert!(std::path::Path::new(&rel).is_absolute(), "{rel}");
        let missing = "/nonexistent/quiver-cluster-test";
        let err = block_on(async { open(missing).await })
            .expect("runs")
            .expect_err("no such directory");
        assert!(
            err.to_string().contains(missing) && err.to_string().contains("s3://"),
            "{err}"
        );
    }
}
