//! The file store: application evidence, demand attachments and published datasets, kept by
//! their SHA-256 (content-addressed, F2). A file changed in the store afterwards is refused on
//! read (`evidence_changed`).
//!
//! Two backends, one enum ([`FileStore`] holds which):
//! - **a local directory** (the default), `<dir>/<sha256[..2]>/<sha256>`: written beside and
//!   renamed into place, so a reader never sees half a file. This is the crate's own code, not
//!   `object_store`'s `LocalFileSystem`, so the layout, the temporary names and the rule "a
//!   file already at its address is kept" stay exactly what they were.
//! - **S3-compatible object storage** (`object_store`'s `AmazonS3`), objects
//!   `<prefix>/<sha256[..2]>/<sha256>`: the same layout, so a data directory's `evidence/` and
//!   `datasets/` can be copied into a bucket as they are. Replicas configured with the same
//!   bucket share every file (uploaded through one, read through another). An upload arriving
//!   as a stream is spooled to a local temporary file first ([`FileStore::temp_path`], in
//!   [`FileStore::dir`]) and then sent by [`FileStore::put_file`]: one PUT up to
//!   [`PART_BYTES`], a multipart upload above. An object already at its address is kept (a
//!   HEAD first), as on disk.
//!
//! Backend-neutral callers use [`FileStore::put`] / [`FileStore::put_file`] to store,
//! [`FileStore::get`] (checked against the SHA-256) to read a small file whole, and
//! [`FileStore::size`] with [`FileStore::read_range`] to stream a large one (dataset downloads,
//! M2.2). [`FileStore::path`] and [`FileStore::adopt`] are the local backend's and stay for the
//! callers that have them.
//!
//! Configuration: [`FileStore::from_url`] — a directory (`/srv/opchub/data` or
//! `file:///srv/opchub/data`) or `s3://bucket/prefix`, the endpoint, region and keys from the
//! environment ([`S3Config::from_env`]); [`FileStore::join`] gives the stores under it
//! (`evidence`, `datasets`).

use crate::error::{AppError, AppResult};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

crate::module_errors! {
    /// What the file store refuses.
    pub enum FileError {
        /// The file is no longer in the file store.
        Missing => (Gone, "evidence_missing"),
        /// The byte range lies outside the file.
        RangeNotSatisfiable => (RangeNotSatisfiable, "range_not_satisfiable"),
        /// The stored file no longer matches its digest.
        Changed => (Conflict, "evidence_changed"),
    }
}

/// A stored file's bytes, streamed (a range of it: [`FileStore::read_range`]).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Part size of a multipart upload to object storage; a file up to this size is one PUT.
/// (S3 wants parts of at least 5 MiB and at most 10,000 of them: 10 MiB parts carry up to
/// ~97 GiB, past the 8 GiB a dataset may have.)
pub const PART_BYTES: usize = 10 * 1024 * 1024;

/// Parts of one multipart upload in flight at once (memory: this many × [`PART_BYTES`]).
const PARTS_IN_FLIGHT: usize = 4;

/// Chunks a local ranged read yields (as the download handler's own loop did).
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct FileStore {
    /// The local backend's directory. For object storage, the local directory where uploads
    /// in progress are spooled ([`Self::temp_path`]); nothing is kept there.
    pub dir: PathBuf,
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local,
    Object {
        store: Arc<dyn ObjectStore>,
        /// Objects are `<prefix>/<sha[..2]>/<sha>`.
        prefix: ObjectPath,
        /// `s3://bucket/prefix`, for [`FileStore::location`] (no credentials in it).
        url: String,
    },
}

/// Settings of an S3-compatible backend besides its bucket and prefix.
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// `https://s3.example.com` or, with [`Self::allow_http`], `http://127.0.0.1:9000`
    /// (default: AWS's endpoint of the region).
    pub endpoint: Option<String>,
    /// Default `us-east-1`.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow a plain-HTTP endpoint (tests, a store on the same host); refused otherwise.
    pub allow_http: bool,
    /// `https://bucket.endpoint/key` instead of `https://endpoint/bucket/key` (path style,
    /// the default, which every S3-compatible server understands).
    pub virtual_hosted_style: bool,
}

impl S3Config {
    /// From the environment: `OPCHUB_S3_ENDPOINT` (else `AWS_ENDPOINT_URL`),
    /// `OPCHUB_S3_REGION` (else `AWS_REGION`, `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `OPCHUB_S3_ALLOW_HTTP` and
    /// `OPCHUB_S3_VIRTUAL_HOSTED` (`true`/`1`).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let flag = |k: &str| var(k).is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        S3Config {
            endpoint: var("OPCHUB_S3_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("OPCHUB_S3_REGION")
                .or_else(|| var("AWS_REGION"))
                .or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: flag("OPCHUB_S3_ALLOW_HTTP"),
            virtual_hosted_style: flag("OPCHUB_S3_VIRTUAL_HOSTED"),
        }
    }
}

/// A file store URL that cannot be used (at start-up).
#[derive(Debug, thiserror::Error)]
#[error("file store {url}: {reason}")]
pub struct FilesUrlError {
    pub url: String,
    pub reason: String,
}

fn missing() -> AppError {
    AppError::from(FileError::Missing)
}

fn range_not_satisfiable() -> AppError {
    AppError::from(FileError::RangeNotSatisfiable)
}

/// An object storage failure: a missing object is `evidence_missing`, the rest is ours (logged).
fn object_err(what: &'static str) -> impl Fn(object_store::Error) -> AppError {
    move |e| match e {
        object_store::Error::NotFound { .. } => missing(),
        e => AppError::internal_from(what, e),
    }
}

impl FileStore {
    /// A store in a local directory (created on first write).
    pub fn local(dir: PathBuf) -> Self {
        FileStore {
            dir,
            backend: Backend::Local,
        }
    }

    /// A store on S3-compatible object storage: objects under `prefix` (may be empty) of
    /// `bucket`; uploads in progress are spooled in the system's temporary directory (see
    /// [`Self::with_spool_dir`]). Only `cfg` is used (not the environment: see
    /// [`Self::from_url`]).
    pub fn s3(bucket: &str, prefix: &str, cfg: &S3Config) -> Result<Self, FilesUrlError> {
        Self::s3_with(object_store::aws::AmazonS3Builder::new(), bucket, prefix, cfg)
    }

    /// A store from a URL: `s3://bucket/prefix` (with [`S3Config::from_env`], over
    /// `object_store`'s own reading of the `AWS_*` environment — credentials from a web
    /// identity or the instance's role when no keys are given), `file:///dir` or a plain
    /// directory path (the local backend).
    pub fn from_url(url: &str) -> Result<Self, FilesUrlError> {
        match parse_url(url)? {
            Target::Local(dir) => Ok(Self::local(dir)),
            Target::S3 { bucket, prefix } => Self::s3_with(
                object_store::aws::AmazonS3Builder::from_env(),
                &bucket,
                &prefix,
                &S3Config::from_env(),
            ),
        }
    }

    /// As [`Self::from_url`], with the S3 settings given (the environment is not read).
    pub fn from_url_with(url: &str, cfg: &S3Config) -> Result<Self, FilesUrlError> {
        match parse_url(url)? {
            Target::Local(dir) => Ok(Self::local(dir)),
            Target::S3 { bucket, prefix } => Self::s3(&bucket, &prefix, cfg),
        }
    }

    fn s3_with(builder: object_store::aws::AmazonS3Builder, bucket: &str, prefix: &str, cfg: &S3Config) -> Result<Self, FilesUrlError> {
        let url = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let fail = |reason: String| FilesUrlError { url: url.clone(), reason };
        if bucket.is_empty() {
            return Err(fail("no bucket".into()));
        }
        // reqwest is built without a TLS provider of its own (no aws-lc): rustls on ring.
        opchub_skills::net::install_crypto_provider();
        // No overall request timeout: a dataset range of gigabytes streams for as long as its
        // downloader reads. A stalled read or connect still fails.
        let client = object_store::ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(10))
            .with_read_timeout(Duration::from_secs(60))
            .with_allow_http(cfg.allow_http);
        let mut b = builder
            .with_bucket_name(bucket)
            .with_client_options(client)
            .with_allow_http(cfg.allow_http);
        if let Some(v) = &cfg.endpoint {
            b = b.with_endpoint(v);
        }
        if let Some(v) = &cfg.region {
            b = b.with_region(v);
        }
        if let Some(v) = &cfg.access_key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &cfg.secret_access_key {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = &cfg.session_token {
            b = b.with_token(v);
        }
        if cfg.virtual_hosted_style {
            b = b.with_virtual_hosted_style_request(true);
        }
        let store = b.build().map_err(|e| fail(e.to_string()))?;
        Ok(FileStore {
            dir: std::env::temp_dir().join("opchub-files-spool"),
            backend: Backend::Object {
                store: Arc::new(store),
                prefix: ObjectPath::from(prefix),
                url,
            },
        })
    }

    /// Object storage: spool uploads in progress in `dir` (default: the system's temporary
    /// directory; a dataset may be 8 GiB, so a disk, not a tmpfs). The local backend keeps its
    /// temporary files beside its own and ignores this.
    pub fn with_spool_dir(mut self, dir: PathBuf) -> Self {
        if matches!(self.backend, Backend::Object { .. }) {
            self.dir = dir;
        }
        self
    }

    /// The same backend, under `name`: a subdirectory, or a sub-prefix (`…/name/`). The spool
    /// directory is shared.
    pub fn join(&self, name: &str) -> Self {
        match &self.backend {
            Backend::Local => Self::local(self.dir.join(name)),
            Backend::Object { store, prefix, url } => FileStore {
                dir: self.dir.clone(),
                backend: Backend::Object {
                    store: store.clone(),
                    prefix: prefix.clone().join(name),
                    url: format!("{}/{name}", url.trim_end_matches('/')),
                },
            },
        }
    }

    /// Where the files are, for logs: the directory or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Local => self.dir.display().to_string(),
            Backend::Object { url, .. } => url.clone(),
        }
    }

    /// The local backend keeps its files on this machine (so [`Self::path`] is the file).
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local)
    }

    /// The file's path in the local backend. (For object storage a path in the spool
    /// directory, where nothing is kept: use [`Self::size`] and [`Self::read_range`].)
    pub fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(sha.get(..2).unwrap_or("00")).join(sha)
    }

    fn key(prefix: &ObjectPath, sha: &str) -> ObjectPath {
        prefix.clone().join(sha.get(..2).unwrap_or("00")).join(sha)
    }

    /// A fresh temporary path in the store's directory (same file system, so [`Self::adopt`]
    /// is a rename); for object storage, in the spool directory.
    pub async fn temp_path(&self) -> AppResult<PathBuf> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| AppError::internal_from("store directory", e))?;
        Ok(self.dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple())))
    }

    /// Moves a fully written temporary file to its content address `sha` (a file already there
    /// has the same content; the temporary one is then removed). For object storage this is
    /// [`Self::put_file`].
    pub async fn adopt(&self, tmp: &Path, sha: &str) -> AppResult<()> {
        match &self.backend {
            Backend::Local => self.adopt_local(tmp, sha).await,
            Backend::Object { store, prefix, .. } => Self::upload_spooled(store, &Self::key(prefix, sha), tmp).await,
        }
    }

    async fn adopt_local(&self, tmp: &Path, sha: &str) -> AppResult<()> {
        let path = self.path(sha);
        let io = |e: std::io::Error| AppError::internal_from("store write failed", e);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            let _ = tokio::fs::remove_file(tmp).await;
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        tokio::fs::rename(tmp, &path).await.map_err(io)
    }

    /// Stores a fully written temporary file (from [`Self::temp_path`]) at its content address
    /// `sha`: locally a rename ([`Self::adopt`]); on object storage an upload (one PUT, or
    /// multipart above [`PART_BYTES`]), after which the temporary file is removed, whether
    /// the upload succeeded or not. An object already there is kept.
    pub async fn put_file(&self, tmp: &Path, sha: &str) -> AppResult<()> {
        self.adopt(tmp, sha).await
    }

    /// Uploads a spooled file unless its object is there, then removes the file.
    async fn upload_spooled(store: &Arc<dyn ObjectStore>, key: &ObjectPath, tmp: &Path) -> AppResult<()> {
        let res = match Self::object_exists(store, key).await {
            Ok(true) => Ok(()),
            Ok(false) => upload_file(store, key, tmp).await,
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(tmp).await;
        res
    }

    async fn object_exists(store: &Arc<dyn ObjectStore>, key: &ObjectPath) -> AppResult<bool> {
        match store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(AppError::internal_from("file store unavailable", e)),
        }
    }

    pub async fn put(&self, sha: &str, bytes: &[u8]) -> AppResult<()> {
        if let Backend::Object { store, prefix, .. } = &self.backend {
            let key = Self::key(prefix, sha);
            if Self::object_exists(store, &key).await? {
                return Ok(());
            }
            store
                .put(&key, PutPayload::from(Bytes::copy_from_slice(bytes)))
                .await
                .map_err(|e| AppError::internal_from("evidence write failed", e))?;
            return Ok(());
        }
        let path = self.path(sha);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let io = |e: std::io::Error| AppError::internal_from("evidence write failed", e);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        // Write beside, then rename: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(())
    }

    /// The stored bytes, checked against their SHA-256: a changed file is refused (F2).
    pub async fn get(&self, sha: &str) -> AppResult<Vec<u8>> {
        let bytes = match &self.backend {
            Backend::Local => tokio::fs::read(self.path(sha)).await.map_err(|_| missing())?,
            Backend::Object { store, prefix, .. } => {
                let err = object_err("file store read failed");
                let got = store.get(&Self::key(prefix, sha)).await.map_err(&err)?;
                got.bytes().await.map_err(&err)?.to_vec()
            }
        };
        if hex::encode(Sha256::digest(&bytes)) != sha {
            return Err(FileError::Changed.into());
        }
        Ok(bytes)
    }

    /// The stored file's size in bytes, `None` when there is no file at `sha`.
    pub async fn size(&self, sha: &str) -> AppResult<Option<u64>> {
        match &self.backend {
            Backend::Local => match tokio::fs::metadata(self.path(sha)).await {
                Ok(m) if m.is_file() => Ok(Some(m.len())),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(AppError::internal_from("file store read failed", e)),
            },
            Backend::Object { store, prefix, .. } => match store.head(&Self::key(prefix, sha)).await {
                Ok(m) => Ok(Some(m.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(AppError::internal_from("file store unavailable", e)),
            },
        }
    }

    /// Bytes `range` of the stored file, streamed (not checked against the SHA-256: rehashing
    /// gigabytes per download is not done; compare [`Self::size`] first). No file:
    /// `evidence_missing` (Gone); a range past its end or reversed: `range_not_satisfiable`.
    /// The stream yields exactly `range.end - range.start` bytes, or ends in an error (the
    /// file shrank, the connection to the object store broke).
    pub async fn read_range(&self, sha: &str, range: Range<u64>) -> AppResult<ByteStream> {
        if range.start > range.end {
            return Err(range_not_satisfiable());
        }
        match &self.backend {
            Backend::Local => self.read_local_range(sha, range).await,
            Backend::Object { store, prefix, .. } => {
                let key = Self::key(prefix, sha);
                let fits = |size: u64| if range.end <= size { Ok(()) } else { Err(range_not_satisfiable()) };
                if range.is_empty() {
                    // S3 has no empty range: check the object is there and long enough.
                    let size = store.head(&key).await.map_err(object_err("file store unavailable"))?.size;
                    fits(size)?;
                    return Ok(futures_util::stream::empty().boxed());
                }
                let opts = GetOptions {
                    range: Some(GetRange::Bounded(range.clone())),
                    ..Default::default()
                };
                let got = match store.get_opts(&key, opts).await {
                    Ok(got) => got,
                    Err(object_store::Error::NotFound { .. }) => return Err(missing()),
                    Err(e) => {
                        // A range starting past the end is refused by the server: tell it
                        // apart from an outage.
                        if let Ok(m) = store.head(&key).await {
                            fits(m.size)?;
                        }
                        return Err(AppError::internal_from("file store read failed", e));
                    }
                };
                // A range ending past the end is answered with what there is.
                if got.range != range {
                    return Err(range_not_satisfiable());
                }
                Ok(got.into_stream().map_err(std::io::Error::other).boxed())
            }
        }
    }

    async fn read_local_range(&self, sha: &str, range: Range<u64>) -> AppResult<ByteStream> {
        let mut file = match tokio::fs::File::open(self.path(sha)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(AppError::internal_from("file store read failed", e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| AppError::internal_from("file store read failed", e))?
            .len();
        if range.end > size {
            return Err(range_not_satisfiable());
        }
        if range.start > 0 {
            file.seek(std::io::SeekFrom::Start(range.start))
                .await
                .map_err(|e| AppError::internal_from("file store read failed", e))?;
        }
        let remaining = range.end - range.start;
        let stream = futures_util::stream::unfold((file, remaining), |(mut file, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            let want = remaining.min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the stored file is shorter")),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, remaining - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        });
        Ok(stream.boxed())
    }
}

/// Uploads a local file to `key`: one PUT up to [`PART_BYTES`], else multipart (aborted on a
/// failure, so no parts are left behind).
async fn upload_file(store: &Arc<dyn ObjectStore>, key: &ObjectPath, tmp: &Path) -> AppResult<()> {
    let io = |e: std::io::Error| AppError::internal_from("file store upload failed", e);
    let obj = |e: object_store::Error| AppError::internal_from("file store upload failed", e);
    let mut file = tokio::fs::File::open(tmp).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    if len <= PART_BYTES as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf).await.map_err(io)?;
        store.put(key, PutPayload::from(buf)).await.map_err(obj)?;
        return Ok(());
    }
    let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(key).await.map_err(obj)?, PART_BYTES);
    let written: AppResult<()> = async {
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Ok(());
            }
            upload.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(obj)?;
            upload.write(&buf[..n]);
        }
    }
    .await;
    match written {
        Ok(()) => upload.finish().await.map(|_| ()).map_err(obj),
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

enum Target {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

fn parse_url(url: &str) -> Result<Target, FilesUrlError> {
    let fail = |reason: &str| FilesUrlError {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let url_t = url.trim();
    if let Some(rest) = url_t.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(fail("no bucket (s3://bucket/prefix)"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p.is_empty() || p == "." || p == "..") && !prefix.is_empty() {
            return Err(fail("the prefix has an empty, `.` or `..` segment"));
        }
        return Ok(Target::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = url_t.strip_prefix("file://") {
        if rest.is_empty() {
            return Err(fail("no directory (file:///path)"));
        }
        return Ok(Target::Local(PathBuf::from(rest)));
    }
    if url_t.is_empty() {
        return Err(fail("empty"));
    }
    if let Some((scheme, _)) = url_t.split_once("://") {
        return Err(fail(&format!("unsupported scheme `{scheme}` (s3://, file:// or a directory)")));
    }
    Ok(Target::Local(PathBuf::from(url_t)))
}
