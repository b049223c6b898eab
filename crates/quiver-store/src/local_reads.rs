//! [`LocalReads`]: byte-range reads of a local catalog into reused buffers.
//!
//! `object_store`'s `LocalFileSystem` answers every range read with a new buffer that it
//! zero-fills before `pread`ing into it. A scan reads a buffer per column chunk, so the
//! zero-fill writes as many bytes as the scan reads, and a fresh allocation's pages are
//! faulted in and zeroed by the kernel first: `memset` alone was 14% of the server's time
//! on the storage bench's numeric projection (10M labels, `perf record` of `quiver serve`).
//!
//! Here [`ObjectStore::get_ranges`] (what the Parquet reader fetches column chunks with)
//! `pread`s each range into a buffer of a small [`Pool`]: a buffer already used by an
//! earlier read, whose pages are mapped and whose stale bytes are overwritten by the read,
//! so nothing is zeroed. The `Bytes` handed out own the buffer; when the last slice of
//! them is dropped it goes back to the pool (at most [`POOL_BYTES`] are kept idle). Every
//! other call goes to the wrapped `LocalFileSystem` unchanged.

use std::fs::File;
use std::io::ErrorKind;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Idle buffer bytes a pool keeps at most; buffers returned beyond it are freed.
const POOL_BYTES: usize = 128 << 20;
/// Reads shorter than this get a plain buffer of their own (zeroing them costs nothing).
const POOLED_MIN: usize = 64 << 10;

/// Buffers of power-of-two sizes, kept for reuse.
#[derive(Debug, Default)]
struct Pool {
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// idle buffers, each `len() == capacity()`, a power of two
    free: Vec<Vec<u8>>,
    idle_bytes: usize,
}

impl Pool {
    /// A buffer of at least `len` bytes (its contents are unspecified).
    fn take(&self, len: usize) -> Vec<u8> {
        let size = len.next_power_of_two();
        if let Ok(mut st) = self.state.lock() {
            if let Some(i) = st.free.iter().position(|b| b.len() == size) {
                let buf = st.free.swap_remove(i);
                st.idle_bytes -= buf.len();
                return buf;
            }
        }
        vec![0; size]
    }

    /// Keep `buf` for a later read, unless the pool is full.
    fn give(&self, buf: Vec<u8>) {
        if let Ok(mut st) = self.state.lock() {
            if st.idle_bytes + buf.len() <= POOL_BYTES {
                st.idle_bytes += buf.len();
                st.free.push(buf);
            }
        }
    }

    /// Bytes held idle (for tests).
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        self.state.lock().map(|s| s.idle_bytes).unwrap_or(0)
    }
}

/// A pooled buffer holding `len` bytes of a read; back to its pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// A `LocalFileSystem` whose range reads go into pooled buffers (see the module docs).
#[derive(Debug)]
pub(crate) struct LocalReads {
    fs: Arc<LocalFileSystem>,
    pool: Arc<Pool>,
}

impl LocalReads {
    pub(crate) fn new(fs: Arc<LocalFileSystem>) -> LocalReads {
        LocalReads {
            fs,
            pool: Arc::default(),
        }
    }
}

impl std::fmt::Display for LocalReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the wrapped store's name: error messages and URLs read as before
        self.fs.fmt(f)
    }
}

fn generic(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: source.into(),
    }
}

/// Read `range` of `file` (at `path`, for errors) into a buffer of `pool`.
fn read_range(
    file: &File,
    path: &std::path::Path,
    range: &Range<u64>,
    pool: &Arc<Pool>,
) -> object_store::Result<Bytes> {
    if range.start > range.end {
        return Err(generic(format!(
            "invalid range {range:?} of {}",
            path.display()
        )));
    }
    let len = usize::try_from(range.end - range.start)
        .map_err(|_| generic(format!("range {range:?} of {} is too long", path.display())))?;
    let read = |buf: &mut [u8]| {
        file.read_exact_at(buf, range.start).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                generic(format!(
                    "range {range:?} of {} is beyond its end ({size} bytes)",
                    path.display()
                ))
            } else {
                generic(format!("cannot read {}: {e}", path.display()))
            }
        })
    };
    if len < POOLED_MIN {
        let mut buf = vec![0; len];
        read(&mut buf)?;
        return Ok(Bytes::from(buf));
    }
    let mut buf = pool.take(len);
    // a failed read drops the buffer instead of pooling it: nothing refers to it
    read(&mut buf[..len])?;
    Ok(Bytes::from_owner(Pooled {
        buf,
        len,
        pool: Arc::clone(pool),
    }))
}

#[async_trait]
impl ObjectStore for LocalReads {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.fs.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.fs.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.fs.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let path = self.fs.path_to_filesystem(location)?;
        let ranges = ranges.to_vec();
        let pool = Arc::clone(&self.pool);
        let read = move || {
            let file = File::open(&path).map_err(|source| match source.kind() {
                ErrorKind::NotFound => object_store::Error::NotFound {
                    path: path.display().to_string(),
                    source: Box::new(source),
                },
                _ => generic(format!("cannot open {}: {source}", path.display())),
            })?;
            ranges
                .iter()
                .map(|r| read_range(&file, &path, r, &pool))
                .collect()
        };
        // as `LocalFileSystem` does: off the async workers on a Tokio runtime, inline
        // under any other executor
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn_blocking(read).await.map_err(generic)?,
            Err(_) => read(),
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.fs.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.fs.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.fs.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.fs.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.fs.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.fs.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    fn store() -> (tempfile::TempDir, LocalReads) {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = LocalFileSystem::new_with_prefix(dir.path()).expect("local fs");
        (dir, LocalReads::new(Arc::new(fs)))
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn ranges_read_what_the_file_holds_through_reused_buffers() {
        let (_dir, s) = store();
        let data = pattern(1 << 20);
        let p = Path::from("objects/a");
        s.put(&p, data.clone().into()).await.expect("put");
        let ranges = [0..10, 100..(300 << 10), (512 << 10)..(1 << 20), 5..5];
        for round in 0..3 {
            let got = s.get_ranges(&p, &ranges).await.expect("ranges");
            for (r, b) in ranges.iter().zip(&got) {
                assert_eq!(
                    &b[..],
                    &data[r.start as usize..r.end as usize],
                    "round {round}"
                );
            }
            // a slice outlives its parent handle: the buffer stays out of the pool
            let kept = got[1].slice(7..9);
            drop(got);
            assert_eq!(&kept[..], &data[107..109]);
            assert_eq!(
                s.pool.idle_bytes(),
                512 << 10,
                "only the released buffer is idle"
            );
            drop(kept);
            // the next round's buffers come from the pool: stale bytes must not show
            let other = Path::from("objects/b");
            s.put(&other, vec![0xEE; 1 << 20].into())
                .await
                .expect("put");
            let junk = s.get_ranges(&other, &ranges).await.expect("junk");
            assert!(junk[1].iter().all(|&b| b == 0xEE));
        }
        assert!(s.pool.idle_bytes() <= POOL_BYTES);
    }

    #[test]
    fn reads_work_outside_a_tokio_runtime() {
        let (_dir, s) = store();
        let p = Path::from("objects/a");
        let data = pattern(200 << 10);
        futures::executor::block_on(async {
            s.put(&p, data.clone().into()).await.expect("put");
            let got = s
                .get_ranges(&p, &[1..(150 << 10), 0..3])
                .await
                .expect("ranges");
            assert_eq!(&got[0][..], &data[1..(150 << 10)]);
            assert_eq!(&got[1][..], &data[..3]);
        });
    }

    #[tokio::test]
    async fn reads_past_the_end_or_of_missing_files_fail() {
        let (_dir, s) = store();
        let p = Path::from("objects/a");
        s.put(&p, pattern(100 << 10).into()).await.expect("put");
        let err = s
            .get_ranges(&p, &[0..(200 << 10), 0..1])
            .await
            .expect_err("beyond the end");
        assert!(err.to_string().contains("beyond its end"), "{err}");
        assert!(s
            .get_ranges(&p, &[90..100, 200..(101 << 10)])
            .await
            .is_err());
        let missing = s
            .get_ranges(&Path::from("objects/none"), &[0..1, 1..2])
            .await
            .expect_err("missing");
        assert!(
            matches!(missing, object_store::Error::NotFound { .. }),
            "{missing}"
        );
    }
}
