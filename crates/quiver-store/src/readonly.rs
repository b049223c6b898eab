//! [`ReadOnlyStore`]: an `ObjectStore` that serves reads and refuses every write.
//!
//! Query engines (DataFusion sessions opened for SQL or Flight) need the catalog's object
//! store registered to scan packs, but nothing a query does may write the catalog: only the
//! dataset API writes objects and refs (DESIGN invariant 10). A session therefore gets the
//! catalog's store wrapped in a `ReadOnlyStore`: gets, heads, ranges and lists go through;
//! every put, multipart upload, copy, rename and delete fails with
//! `object_store::Error::PermissionDenied` naming the path, before the wrapped store is
//! touched. A `COPY … TO 'quiver://catalog-…/refs/…'` that slipped past the statement
//! checks still cannot forge a ref entry.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Why a [`ReadOnlyStore`] refused an operation (the source of its `PermissionDenied`).
#[derive(Debug, thiserror::Error)]
#[error("{operation} refused: the catalog store is read-only here (only the dataset API writes the catalog)")]
pub struct ReadOnlyError {
    /// The refused operation (`put`, `multipart upload`, `copy`, `rename`, `delete`).
    pub operation: &'static str,
}

/// An `ObjectStore` that delegates reads and lists to another one and refuses every write
/// with `object_store::Error::PermissionDenied` (source: [`ReadOnlyError`]).
#[derive(Debug)]
pub struct ReadOnlyStore {
    inner: Arc<dyn ObjectStore>,
}

impl ReadOnlyStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> ReadOnlyStore {
        ReadOnlyStore { inner }
    }
}

impl std::fmt::Display for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadOnly({})", self.inner)
    }
}

fn refuse(operation: &'static str, path: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: path.to_string(),
        source: Box::new(ReadOnlyError { operation }),
    }
}

#[async_trait]
impl ObjectStore for ReadOnlyStore {
    async fn put_opts(
        &self,
        location: &Path,
        _payload: PutPayload,
        _opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(refuse("put", location))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(refuse("multipart upload", location))
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
        locations
            .map(|l| l.and_then(|p| Err(refuse("delete", &p))))
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
        _from: &Path,
        to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(refuse("copy", to))
    }

    async fn rename_opts(
        &self,
        from: &Path,
        _to: &Path,
        _options: RenameOptions,
    ) -> object_store::Result<()> {
        Err(refuse("rename", from))
    }
}
