#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The file store on both backends: a local directory, and S3-compatible object storage — a
//! real S3 server (`s3s-fs` on a temp directory, SigV4-authenticated, 127.0.0.1) started by each
//! test. Every scenario runs on both.

use futures_util::TryStreamExt;
use opchub_app::files::{FileStore, S3Config, PART_BYTES};
use opchub_app::ErrorKind;
use opchub_testkit::s3::{FakeS3, ACCESS_KEY, SECRET_KEY};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic, incompressible-looking content.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A backend under test, and what keeps it alive.
struct Env {
    _tmp: TempDir,
    server: Option<FakeS3>,
    root: std::path::PathBuf,
}

fn s3_config(server: &FakeS3) -> S3Config {
    S3Config {
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        allow_http: true,
        ..Default::default()
    }
}

impl Env {
    async fn local() -> Env {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join("data");
        Env {
            _tmp: tmp,
            server: None,
            root,
        }
    }

    async fn s3() -> Env {
        let tmp = TempDir::new().unwrap();
        let server = FakeS3::start(&tmp.path().join("s3")).await.unwrap();
        server.create_bucket("opchub").unwrap();
        Env {
            root: tmp.path().join("s3"),
            _tmp: tmp,
            server: Some(server),
        }
    }

    /// A store, as a replica would open it (`replica` names its own spool directory).
    fn store(&self, replica: &str) -> FileStore {
        match &self.server {
            None => FileStore::from_url(self.root.to_str().unwrap()).unwrap().join("evidence"),
            Some(server) => FileStore::from_url_with("s3://opchub/prod", &s3_config(server))
                .unwrap()
                .with_spool_dir(self._tmp.path().join(format!("spool-{replica}")))
                .join("evidence"),
        }
    }

    /// Where the backend keeps the file of `sha` on disk (the S3 server's directory for it).
    fn file_of(&self, sha: &str) -> std::path::PathBuf {
        let base = match &self.server {
            None => self.root.join("evidence"),
            Some(_) => self.root.join("opchub").join("prod").join("evidence"),
        };
        base.join(&sha[..2]).join(sha)
    }
}

async fn read_all(store: &FileStore, sha: &str, range: std::ops::Range<u64>) -> Vec<u8> {
    let stream = store.read_range(sha, range).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

async fn round_trip(env: Env) {
    let store = env.store("a");
    let bytes = b"a receipt, scanned".to_vec();
    let id = sha(&bytes);
    assert_eq!(store.size(&id).await.unwrap(), None);
    store.put(&id, &bytes).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), bytes);
    assert_eq!(store.size(&id).await.unwrap(), Some(bytes.len() as u64));
    // Content-addressed: a second put of the same file is a no-op.
    store.put(&id, &bytes).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), bytes);
    // The layout is `<sha[..2]>/<sha>` on both backends.
    assert_eq!(std::fs::read(env.file_of(&id)).unwrap(), bytes);

    // A streamed upload: written to a temporary file, then stored; the temporary file is gone.
    let big = content(300_000, 1);
    let big_id = sha(&big);
    let tmp = store.temp_path().await.unwrap();
    tokio::fs::write(&tmp, &big).await.unwrap();
    store.put_file(&tmp, &big_id).await.unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.get(&big_id).await.unwrap(), big);
    // Again (already stored): the temporary file is removed, the stored one kept.
    let tmp = store.temp_path().await.unwrap();
    tokio::fs::write(&tmp, &big).await.unwrap();
    store.adopt(&tmp, &big_id).await.unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.size(&big_id).await.unwrap(), Some(big.len() as u64));
}

async fn changed_is_refused(env: Env) {
    let store = env.store("a");
    let bytes = b"the original".to_vec();
    let id = sha(&bytes);
    // Stored under another file's address: what a file changed in the store looks like.
    let other = sha(b"something else");
    store.put(&other, &bytes).await.unwrap();
    let e = store.get(&other).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Conflict, "evidence_changed"));
    // And a file edited in place after it was stored.
    store.put(&id, &bytes).await.unwrap();
    std::fs::write(env.file_of(&id), b"the forgery!").unwrap();
    let e = store.get(&id).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Conflict, "evidence_changed"));
}

async fn missing_is_gone(env: Env) {
    let store = env.store("a");
    let id = sha(b"never stored");
    let e = store.get(&id).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Gone, "evidence_missing"));
    assert_eq!(store.size(&id).await.unwrap(), None);
    let e = store.read_range(&id, 0..10).await.err().unwrap();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Gone, "evidence_missing"));
    let e = store.read_range(&id, 0..0).await.err().unwrap();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Gone, "evidence_missing"));
}

async fn ranged_reads(env: Env) {
    let store = env.store("a");
    let bytes = content(200_000, 2);
    let id = sha(&bytes);
    store.put(&id, &bytes).await.unwrap();
    let len = bytes.len() as u64;
    for r in [0..len, 0..1, 10..70_000, 65_535..65_537, len - 1..len, 5..5, len..len] {
        let got = read_all(&store, &id, r.clone()).await;
        assert_eq!(got, bytes[r.start as usize..r.end as usize], "range {r:?}");
    }
    // Past the end, starting past the end, reversed.
    #[allow(clippy::reversed_empty_ranges)]
    for r in [0..len + 1, len - 10..len + 10, len + 5..len + 10, 10..5] {
        let e = store.read_range(&id, r.clone()).await.err().unwrap();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::RangeNotSatisfiable, "range_not_satisfiable"),
            "range {r:?}"
        );
    }
}

/// Above the part size an upload to object storage is multipart; the parts join up.
async fn large_file(env: Env) {
    let store = env.store("a");
    let bytes = content(PART_BYTES + PART_BYTES / 5, 3);
    let id = sha(&bytes);
    let tmp = store.temp_path().await.unwrap();
    tokio::fs::write(&tmp, &bytes).await.unwrap();
    store.put_file(&tmp, &id).await.unwrap();
    assert_eq!(store.size(&id).await.unwrap(), Some(bytes.len() as u64));
    let p = PART_BYTES as u64;
    assert_eq!(read_all(&store, &id, p - 5..p + 5).await, bytes[PART_BYTES - 5..PART_BYTES + 5]);
    let all = read_all(&store, &id, 0..bytes.len() as u64).await;
    assert_eq!(sha(&all), id);
    assert_eq!(store.get(&id).await.unwrap(), bytes);
}

/// Two replicas on one store: a file uploaded through one is read through the other (before,
/// each replica had its own directory and the other answered `evidence_missing`).
async fn two_replicas(env: Env) {
    let a = env.store("a");
    let b = env.store("b");
    let small = b"evidence uploaded to replica a".to_vec();
    let small_id = sha(&small);
    assert_eq!(b.size(&small_id).await.unwrap(), None);
    a.put(&small_id, &small).await.unwrap();
    assert_eq!(b.get(&small_id).await.unwrap(), small);

    let big = content(150_000, 4);
    let big_id = sha(&big);
    let tmp = a.temp_path().await.unwrap();
    tokio::fs::write(&tmp, &big).await.unwrap();
    a.put_file(&tmp, &big_id).await.unwrap();
    assert_eq!(b.size(&big_id).await.unwrap(), Some(big.len() as u64));
    assert_eq!(read_all(&b, &big_id, 1000..2000).await, big[1000..2000]);
    // And back: b stores, a reads.
    let c = b"uploaded to replica b".to_vec();
    b.put(&sha(&c), &c).await.unwrap();
    assert_eq!(a.get(&sha(&c)).await.unwrap(), c);
    // Stores under other names (datasets beside evidence) do not see each other's files.
    assert_eq!(a.join("other").size(&small_id).await.unwrap(), None);
}

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Env::local().await).await;
            })*
        }
        mod s3 {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Env::s3().await).await;
            })*
        }
    };
}

on_both_backends!(
    round_trip,
    changed_is_refused,
    missing_is_gone,
    ranged_reads,
    large_file,
    two_replicas
);

#[tokio::test]
async fn s3_requests_are_signed_and_a_wrong_key_is_an_outage_not_a_missing_file() {
    let env = Env::s3().await;
    let good = env.store("a");
    let bytes = b"signed".to_vec();
    good.put(&sha(&bytes), &bytes).await.unwrap();
    let cfg = S3Config {
        secret_access_key: Some("not-the-secret".into()),
        ..s3_config(env.server.as_ref().unwrap())
    };
    let bad = FileStore::from_url_with("s3://opchub/prod", &cfg).unwrap().join("evidence");
    let e = bad.get(&sha(&bytes)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    assert!(bad.size(&sha(&bytes)).await.is_err());
    env.server.unwrap().stop().await;
}

#[test]
fn urls() {
    let l = FileStore::from_url("/srv/opchub/data").unwrap();
    assert!(l.is_local());
    assert_eq!(l.join("evidence").dir, std::path::Path::new("/srv/opchub/data/evidence"));
    let f = FileStore::from_url("file:///srv/opchub/data").unwrap();
    assert_eq!(f.dir, std::path::Path::new("/srv/opchub/data"));
    let cfg = S3Config {
        endpoint: Some("http://127.0.0.1:9".into()),
        allow_http: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..Default::default()
    };
    let s = FileStore::from_url_with("s3://bucket/a/b/", &cfg).unwrap();
    assert!(!s.is_local());
    assert_eq!(s.location(), "s3://bucket/a/b");
    assert_eq!(s.join("datasets").location(), "s3://bucket/a/b/datasets");
    assert_eq!(
        FileStore::from_url_with("s3://bucket", &cfg).unwrap().join("evidence").location(),
        "s3://bucket/evidence"
    );
    for bad in ["s3://", "s3:///prefix", "ftp://host/x", "", "s3://bucket/a//b", "s3://bucket/../x"] {
        assert!(FileStore::from_url_with(bad, &cfg).is_err(), "{bad}");
    }
}
