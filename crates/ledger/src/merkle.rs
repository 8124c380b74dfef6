//! The ledger's RFC 6962 Merkle tree: leaf/node hashing, the tlog "stored hash index" layout,
//! tree roots, inclusion and consistency proofs, and their verification. The tree math is
//! `tlog_tiles` (a port of Go's `sumdb/tlog`); this module adapts it to a two-pass, DB-friendly API.
//!
//! Two-pass use: every operation has a `*_reads` twin that lists the stored-hash indexes it will
//! read (they depend only on sizes and indexes, never on hash values). The caller fetches exactly
//! those rows from the database into a [`HashSource`] (e.g. a `HashMap`) and then runs the
//! operation synchronously.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use tlog_tiles::tlog;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The largest tree size this module accepts for tree-building and proving operations.
/// Keeps every stored-hash index (about twice the leaf count) far away from `u64` overflow.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = tlog::EMPTY_HASH.0;

/// Errors of the Merkle tree operations.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MerkleError {
    /// The hash source has no hash at this stored-hash index.
    #[error("stored hash #{0} is missing from the hash source")]
    MissingHash(u64),
    /// A leaf index (or a tree size) lies outside the tree it refers to.
    #[error("index {index} is out of range for a tree of size {size}")]
    BadIndex { index: u64, size: u64 },
    /// A consistency proof needs `0 < old_size <= new_size`.
    #[error("consistency requires 0 < old size <= new size, got old size {old_size} and new size {new_size}")]
    BadSizes { old_size: u64, new_size: u64 },
    /// The tree would exceed [`MAX_TREE_SIZE`] leaves.
    #[error("tree size {0} exceeds the supported maximum of 2^62 leaves")]
    TooLarge(u64),
    /// The proof does not prove the claim (wrong hashes, wrong length, or wrong root/leaf).
    #[error("the Merkle proof does not verify")]
    InvalidProof,
    /// An unexpected error reported by the underlying tlog implementation.
    #[error("tlog error: {0}")]
    Tlog(String),
}

/// A hash as 64 lower-case hex digits (how the database and the API carry hashes).
pub fn hash_hex(h: &Hash) -> String {
    let mut buf = [0u8; 64];
    // 32 bytes always fit 64 hex digits, and hex digits are ASCII.
    let _ = hex::encode_to_slice(h, &mut buf);
    buf.iter().map(|&b| b as char).collect()
}

/// The RFC 6962 leaf ("record") hash: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    tlog::record_hash(data).0
}

/// The RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tlog::node_hash(tlog::Hash(*left), tlog::Hash(*right)).0
}

/// The position of the hash of the complete subtree `(level, n)` (the `n`-th node at `level`,
/// leaves are level 0) in the linear stored-hash space, exactly as Go's `tlog.StoredHashIndex`.
/// Only meaningful for nodes of trees up to [`MAX_TREE_SIZE`] leaves.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    tlog::stored_hash_index(level, n)
}

/// The inverse of [`stored_hash_index`]: the `(level, n)` coordinates of a stored-hash index.
pub fn split_stored_hash_index(index: u64) -> (u8, u64) {
    tlog::split_stored_hash_index(index)
}

/// The number of stored hashes (leaves plus complete-subtree nodes) of a tree with `tree_size`
/// leaves; the stored hashes of that tree are exactly the indexes `0..stored_hash_count(tree_size)`.
pub fn stored_hash_count(tree_size: u64) -> u64 {
    tlog::stored_hash_count(tree_size)
}

/// A synchronous source of stored hashes by stored-hash index, typically a map filled from the
/// database with the indexes a `*_reads` function returned.
pub trait HashSource {
    /// The hash stored at `index`, or `None` if this source does not have it.
    fn get(&self, index: u64) -> Option<Hash>;
}

impl<S: BuildHasher> HashSource for HashMap<u64, Hash, S> {
    fn get(&self, index: u64) -> Option<Hash> {
        HashMap::get(self, &index).copied()
    }
}

impl HashSource for BTreeMap<u64, Hash> {
    fn get(&self, index: u64) -> Option<Hash> {
        BTreeMap::get(self, &index).copied()
    }
}

/// A vector laid out by stored-hash index (as [`MemoryTree::stored`] is).
impl HashSource for Vec<Hash> {
    fn get(&self, index: u64) -> Option<Hash> {
        usize::try_from(index).ok().and_then(|i| self.as_slice().get(i)).copied()
    }
}

/// Adapts a [`HashSource`] to tlog's `HashReader`, remembering the first missing index so the
/// error can name it.
struct SourceReader<'a, S: HashSource + ?Sized> {
    src: &'a S,
    missing: Cell<Option<u64>>,
}

impl<'a, S: HashSource + ?Sized> SourceReader<'a, S> {
    fn new(src: &'a S) -> Self {
        SourceReader {
            src,
            missing: Cell::new(None),
        }
    }

    /// Maps a tlog error, preferring the precise "missing hash" error this reader recorded.
    fn error(&self, e: tlog::Error) -> MerkleError {
        match self.missing.get() {
            Some(index) => MerkleError::MissingHash(index),
            None => tlog_error(e),
        }
    }
}

impl<S: HashSource + ?Sized> tlog::HashReader for SourceReader<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for &index in indexes {
            match self.src.get(index) {
                Some(h) => out.push(tlog::Hash(h)),
                None => {
                    self.missing.set(Some(index));
                    return Err(tlog::Error::IndexesNotInTree);
                }
            }
        }
        Ok(out)
    }
}

/// A `HashReader` that answers every read with zero hashes and records the requested indexes.
/// Which indexes tlog reads depends only on sizes and indexes, so this learns the read set.
#[derive(Default)]
struct RecordingReader {
    seen: RefCell<Vec<u64>>,
}

impl RecordingReader {
    fn into_indexes(self) -> Vec<u64> {
        let mut seen = self.seen.into_inner();
        seen.sort_unstable();
        seen.dedup();
        seen
    }
}

impl tlog::HashReader for RecordingReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        self.seen.borrow_mut().extend_from_slice(indexes);
        Ok(vec![tlog::Hash::default(); indexes.len()])
    }
}

fn tlog_error(e: tlog::Error) -> MerkleError {
    match e {
        tlog::Error::InvalidProof => MerkleError::InvalidProof,
        other => MerkleError::Tlog(other.to_string()),
    }
}

fn check_size(tree_size: u64) -> Result<(), MerkleError> {
    if tree_size > MAX_TREE_SIZE {
        return Err(MerkleError::TooLarge(tree_size));
    }
    Ok(())
}

fn check_leaf(leaf_index: u64, tree_size: u64) -> Result<(), MerkleError> {
    check_size(tree_size)?;
    if leaf_index >= tree_size {
        return Err(MerkleError::BadIndex {
            index: leaf_index,
            size: tree_size,
        });
    }
    Ok(())
}

fn check_sizes(old_size: u64, new_size: u64) -> Result<(), MerkleError> {
    check_size(new_size)?;
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::BadSizes { old_size, new_size });
    }
    Ok(())
}

fn unwrap_hashes(hashes: Vec<tlog::Hash>) -> Vec<Hash> {
    hashes.into_iter().map(|h| h.0).collect()
}

fn wrap_hashes(hashes: &[Hash]) -> Vec<tlog::Hash> {
    hashes.iter().map(|h| tlog::Hash(*h)).collect()
}

/// Indexes of the stored hashes that appending the leaf at position `tree_size` (i.e. growing
/// the tree from `tree_size` to `tree_size + 1` leaves) reads; sorted, without duplicates.
/// Empty when `tree_size >= MAX_TREE_SIZE` (appending then fails with [`MerkleError::TooLarge`]).
pub fn append_reads(tree_size: u64) -> Vec<u64> {
    if tree_size >= MAX_TREE_SIZE {
        return Vec::new();
    }
    let rec = RecordingReader::default();
    // The recording reader never fails, so the result only matters for its side effect.
    let _ = tlog::stored_hashes_for_record_hash(tree_size, tlog::Hash::default(), &rec);
    rec.into_indexes()
}

/// The hashes to store when appending leaf number `n` (0-based) with hash `leaf`; the first is
/// the leaf itself, stored at `stored_hash_index(0, n)`, the rest follow consecutively. Reads the
/// earlier hashes listed by [`append_reads`]`(n)` from `src`.
pub fn stored_hashes_for_leaf(n: u64, leaf: Hash, src: &impl HashSource) -> Result<Vec<Hash>, MerkleError> {
    if n >= MAX_TREE_SIZE {
        return Err(MerkleError::TooLarge(n.saturating_add(1)));
    }
    let reader = SourceReader::new(src);
    tlog::stored_hashes_for_record_hash(n, tlog::Hash(leaf), &reader)
        .map(unwrap_hashes)
        .map_err(|e| reader.error(e))
}

/// Indexes of the stored hashes that computing the root of a tree of `tree_size` leaves reads;
/// sorted, without duplicates. Empty for size 0, and beyond [`MAX_TREE_SIZE`] (where [`root`] fails).
pub fn root_reads(tree_size: u64) -> Vec<u64> {
    if tree_size > MAX_TREE_SIZE {
        return Vec::new();
    }
    let rec = RecordingReader::default();
    let _ = tlog::tree_hash(tree_size, &rec);
    rec.into_indexes()
}

/// The root hash of the tree of `tree_size` leaves (the empty-tree root for size 0).
pub fn root(tree_size: u64, src: &impl HashSource) -> Result<Hash, MerkleError> {
    check_size(tree_size)?;
    let reader = SourceReader::new(src);
    tlog::tree_hash(tree_size, &reader).map(|h| h.0).map_err(|e| reader.error(e))
}

/// Indexes of the stored hashes that proving inclusion of leaf `leaf_index` in the tree of
/// `tree_size` leaves reads.
pub fn inclusion_reads(leaf_index: u64, tree_size: u64) -> Result<Vec<u64>, MerkleError> {
    check_leaf(leaf_index, tree_size)?;
    let rec = RecordingReader::default();
    tlog::prove_record(tree_size, leaf_index, &rec).map_err(tlog_error)?;
    Ok(rec.into_indexes())
}

/// The RFC 6962 inclusion proof (audit path, bottom-up) of leaf `leaf_index` in the tree of
/// `tree_size` leaves.
pub fn inclusion_proof(leaf_index: u64, tree_size: u64, src: &impl HashSource) -> Result<Vec<Hash>, MerkleError> {
    check_leaf(leaf_index, tree_size)?;
    let reader = SourceReader::new(src);
    tlog::prove_record(tree_size, leaf_index, &reader)
        .map(unwrap_hashes)
        .map_err(|e| reader.error(e))
}

/// Checks that `proof` proves that the tree of `tree_size` leaves with root `root` has `leaf` as
/// its leaf number `leaf_index`.
pub fn verify_inclusion(proof: &[Hash], tree_size: u64, root: &Hash, leaf_index: u64, leaf: &Hash) -> Result<(), MerkleError> {
    if leaf_index >= tree_size {
        return Err(MerkleError::BadIndex {
            index: leaf_index,
            size: tree_size,
        });
    }
    // An honest proof has at most one hash per level.
    if proof.len() > 64 {
        return Err(MerkleError::InvalidProof);
    }
    tlog::check_record(&wrap_hashes(proof), tree_size, tlog::Hash(*root), leaf_index, tlog::Hash(*leaf)).map_err(tlog_error)
}

/// Indexes of the stored hashes that proving consistency between the trees of `old_size` and
/// `new_size` leaves reads. Requires `0 < old_size <= new_size`.
pub fn consistency_reads(old_size: u64, new_size: u64) -> Result<Vec<u64>, MerkleError> {
    check_sizes(old_size, new_size)?;
    let rec = RecordingReader::default();
    tlog::prove_tree(new_size, old_size, &rec).map_err(tlog_error)?;
    Ok(rec.into_indexes())
}

/// The RFC 6962 consistency proof that the tree of `new_size` leaves extends the tree of
/// `old_size` leaves. Requires `0 < old_size <= new_size` (every tree trivially extends the
/// empty tree, and RFC 6962 defines no proof for it).
pub fn consistency_proof(old_size: u64, new_size: u64, src: &impl HashSource) -> Result<Vec<Hash>, MerkleError> {
    check_sizes(old_size, new_size)?;
    let reader = SourceReader::new(src);
    tlog::prove_tree(new_size, old_size, &reader)
        .map(unwrap_hashes)
        .map_err(|e| reader.error(e))
}

/// Checks that `proof` proves that the tree of `new_size` leaves with root `new_root` contains,
/// as a prefix, the tree of `old_size` leaves with root `old_root`.
pub fn verify_consistency(proof: &[Hash], new_size: u64, new_root: &Hash, old_size: u64, old_root: &Hash) -> Result<(), MerkleError> {
    if old_size == 0 || old_size > new_size {
        return Err(MerkleError::BadSizes { old_size, new_size });
    }
    if proof.len() > 128 {
        return Err(MerkleError::InvalidProof);
    }
    tlog::check_tree(
        &wrap_hashes(proof),
        new_size,
        tlog::Hash(*new_root),
        old_size,
        tlog::Hash(*old_root),
    )
    .map_err(tlog_error)
}

/// An in-memory log for tests, `ledger verify` and benchmarks: appends leaves and keeps every
/// stored hash in a `Vec` laid out by stored-hash index.
#[derive(Clone, Default)]
pub struct MemoryTree {
    stored: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty tree with room for `leaves` leaves (about `2 * leaves` stored hashes).
    pub fn with_capacity(leaves: u64) -> Self {
        let hashes = usize::try_from(leaves.saturating_mul(2)).unwrap_or(0);
        MemoryTree {
            stored: Vec::with_capacity(hashes),
            size: 0,
        }
    }

    /// Appends a leaf hash; returns the newly stored hashes, the leaf first.
    pub fn append(&mut self, leaf: Hash) -> Result<Vec<Hash>, MerkleError> {
        let new = stored_hashes_for_leaf(self.size, leaf, &self.stored)?;
        self.stored.extend_from_slice(&new);
        self.size += 1;
        Ok(new)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Result<Hash, MerkleError> {
        root(self.size, &self.stored)
    }

    /// The root of the tree formed by the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        if size > self.size {
            return Err(MerkleError::BadIndex {
                index: size,
                size: self.size,
            });
        }
        root(size, &self.stored)
    }

    /// All stored hashes, indexed by stored-hash index.
    pub fn stored(&self) -> &[Hash] {
        &self.stored
    }
}

impl std::fmt::Debug for MemoryTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTree")
            .field("size", &self.size)
            .field("stored", &self.stored.len())
            .finish()
    }
}

impl HashSource for MemoryTree {
    fn get(&self, index: u64) -> Option<Hash> {
        HashSource::get(&self.stored, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};
    use std::sync::OnceLock;

    /// Naive recursive RFC 6962 MTH, independent of tlog.
    fn naive_mth(leaves: &[&[u8]]) -> Hash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => {
                let mut h = Sha256::new();
                h.update([0u8]);
                h.update(leaves[0]);
                h.finalize().into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let (l, r) = (naive_mth(&leaves[..k]), naive_mth(&leaves[k..]));
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(l);
                h.update(r);
                h.finalize().into()
            }
        }
    }

    fn tree_of(leaves: &[&[u8]]) -> MemoryTree {
        let mut t = MemoryTree::new();
        for l in leaves {
            t.append(leaf_hash(l)).unwrap();
        }
        t
    }

    /// One shared 2000-leaf tree; every smaller tree is a prefix of it.
    fn big_tree() -> &'static MemoryTree {
        static TREE: OnceLock<MemoryTree> = OnceLock::new();
        TREE.get_or_init(|| {
            let mut t = MemoryTree::new();
            for i in 0u32..2000 {
                t.append(leaf_hash(&i.to_be_bytes())).unwrap();
            }
            t
        })
    }

    fn map_of(indexes: &[u64], src: &impl HashSource) -> HashMap<u64, Hash> {
        indexes.iter().map(|&i| (i, src.get(i).unwrap())).collect()
    }

    #[test]
    fn empty_tree_root_is_sha256_of_empty_string() {
        let want = hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(MemoryTree::new().root().unwrap().as_slice(), want.as_slice());
        assert_eq!(EMPTY_ROOT.as_slice(), want.as_slice());
        assert_eq!(root(0, &HashMap::new()).unwrap(), EMPTY_ROOT);
        assert!(root_reads(0).is_empty());
    }

    #[test]
    fn leaf_and_node_hash_prefixes() {
        assert_eq!(leaf_hash(b"abc"), <[u8; 32]>::from(Sha256::digest(b"\x00abc")));
        let (l, r) = ([1u8; 32], [2u8; 32]);
        let mut buf = vec![1u8];
        buf.extend_from_slice(&l);
        buf.extend_from_slice(&r);
        assert_eq!(node_hash(&l, &r), <[u8; 32]>::from(Sha256::digest(&buf)));
    }

    #[test]
    fn roots_match_naive_mth() {
        let data: Vec<Vec<u8>> = (0u8..7).map(|i| vec![i; usize::from(i) + 1]).collect();
        for n in [1usize, 2, 3, 7] {
            let leaves: Vec<&[u8]> = data[..n].iter().map(Vec::as_slice).collect();
            let t = tree_of(&leaves);
            assert_eq!(t.size(), n as u64);
            assert_eq!(t.root().unwrap(), naive_mth(&leaves), "size {n}");
        }
    }

    /// The RFC 6962 reference test vectors used by Certificate Transparency implementations
    /// (e.g. Trillian, Go's tlog tests).
    #[test]
    fn roots_match_ct_reference_vectors() {
        let leaves: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let t = tree_of(&leaves);
        for (i, want) in roots.iter().enumerate() {
            let size = i as u64 + 1;
            assert_eq!(hex::encode(t.root_at(size).unwrap()), *want, "size {size}");
            assert_eq!(t.root_at(size).unwrap(), naive_mth(&leaves[..=i]));
        }
    }

    #[test]
    fn stored_layout_matches_tlog_counts() {
        let t = big_tree();
        assert_eq!(t.stored().len() as u64, stored_hash_count(t.size()));
        assert_eq!(stored_hash_count(0), 0);
        assert_eq!(stored_hash_count(1), 1);
        assert_eq!(stored_hash_count(2), 3);
        assert_eq!(stored_hash_count(3), 4);
        assert_eq!(stored_hash_count(4), 7);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(2, 0), 6);
        for idx in 0..200 {
            let (l, n) = split_stored_hash_index(idx);
            assert_eq!(stored_hash_index(l, n), idx);
        }
        // Appending leaf 3 (the 4th) completes two subtrees: leaf, level-1 node, level-2 node.
        let mut small = tree_of(&[b"a", b"b", b"c"]);
        let new = small.append(leaf_hash(b"d")).unwrap();
        assert_eq!(new.len(), 3);
        assert_eq!(new[0], leaf_hash(b"d"));
        assert_eq!(new[2], small.root().unwrap());
        assert_eq!(append_reads(3), vec![stored_hash_index(1, 0), stored_hash_index(0, 2)]);
    }

    #[test]
    fn small_trees_and_edge_cases() {
        let t = tree_of(&[b"only"]);
        assert_eq!(t.root().unwrap(), leaf_hash(b"only"));
        let p = inclusion_proof(0, 1, &t).unwrap();
        assert!(p.is_empty());
        verify_inclusion(&p, 1, &t.root().unwrap(), 0, &leaf_hash(b"only")).unwrap();
        let c = consistency_proof(1, 1, &t).unwrap();
        assert!(c.is_empty());
        let r = t.root().unwrap();
        verify_consistency(&c, 1, &r, 1, &r).unwrap();
        assert_eq!(verify_consistency(&c, 1, &[0; 32], 1, &r), Err(MerkleError::InvalidProof));
    }

    #[test]
    fn argument_errors() {
        let t = big_tree();
        assert_eq!(inclusion_reads(5, 5), Err(MerkleError::BadIndex { index: 5, size: 5 }));
        assert_eq!(inclusion_proof(0, 0, t), Err(MerkleError::BadIndex { index: 0, size: 0 }));
        assert_eq!(consistency_reads(0, 5), Err(MerkleError::BadSizes { old_size: 0, new_size: 5 }));
        assert_eq!(consistency_proof(6, 5, t), Err(MerkleError::BadSizes { old_size: 6, new_size: 5 }));
        assert_eq!(
            verify_inclusion(&[], 3, &[0; 32], 3, &[0; 32]),
            Err(MerkleError::BadIndex { index: 3, size: 3 })
        );
        assert_eq!(
            verify_consistency(&[], 3, &[0; 32], 0, &[0; 32]),
            Err(MerkleError::BadSizes { old_size: 0, new_size: 3 })
        );
        assert_eq!(t.root_at(2001), Err(MerkleError::BadIndex { index: 2001, size: 2000 }));
        assert_eq!(root(MAX_TREE_SIZE + 1, t), Err(MerkleError::TooLarge(MAX_TREE_SIZE + 1)));
        assert_eq!(inclusion_proof(0, u64::MAX, t), Err(MerkleError::TooLarge(u64::MAX)));
        assert_eq!(stored_hashes_for_leaf(u64::MAX, [0; 32], t), Err(MerkleError::TooLarge(u64::MAX)));
        // Reading beyond what the source holds names the missing index.
        assert_eq!(root(2001, t), Err(MerkleError::MissingHash(stored_hash_count(2001) - 1)));
    }

    #[test]
    fn missing_read_is_reported() {
        let t = big_tree();
        let reads = inclusion_reads(17, 1000).unwrap();
        let mut m = map_of(&reads, t);
        let dropped = reads[reads.len() / 2];
        m.remove(&dropped);
        assert_eq!(inclusion_proof(17, 1000, &m), Err(MerkleError::MissingHash(dropped)));
    }

    #[test]
    fn proof_lengths_are_wrong_when_truncated_or_extended() {
        let t = big_tree();
        let (i, n) = (123, 1000);
        let root = t.root_at(n).unwrap();
        let leaf = t.get(stored_hash_index(0, i)).unwrap();
        let mut p = inclusion_proof(i, n, t).unwrap();
        p.push([0; 32]);
        assert_eq!(verify_inclusion(&p, n, &root, i, &leaf), Err(MerkleError::InvalidProof));
        p.truncate(p.len() - 2);
        assert_eq!(verify_inclusion(&p, n, &root, i, &leaf), Err(MerkleError::InvalidProof));
        // Right proof, wrong index or size.
        let p = inclusion_proof(i, n, t).unwrap();
        assert!(verify_inclusion(&p, n, &root, i + 1, &leaf).is_err());
        assert!(verify_inclusion(&p, 512, &root, i, &leaf).is_err());

        let old = t.root_at(300).unwrap();
        let mut c = consistency_proof(300, n, t).unwrap();
        verify_consistency(&c, n, &root, 300, &old).unwrap();
        assert!(verify_consistency(&c, n, &root, 301, &old).is_err());
        c.pop();
        assert_eq!(verify_consistency(&c, n, &root, 300, &old), Err(MerkleError::InvalidProof));
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h[bit / 8] ^= 1 << (bit % 8);
        h
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Honest inclusion proofs verify; any single flipped bit in a proof hash, the root or
        /// the leaf makes verification fail.
        #[test]
        fn inclusion_proofs_verify_and_bit_flips_fail(size in 1u64..=2000, idx_seed in any::<u64>()) {
            let t = big_tree();
            let i = idx_seed % size;
            let root = t.root_at(size).unwrap();
            let leaf = t.get(stored_hash_index(0, i)).unwrap();
            let proof = inclusion_proof(i, size, t).unwrap();
            prop_assert_eq!(verify_inclusion(&proof, size, &root, i, &leaf), Ok(()));
            for bit in 0..256 {
                prop_assert!(verify_inclusion(&proof, size, &flip(&root, bit), i, &leaf).is_err());
                prop_assert!(verify_inclusion(&proof, size, &root, i, &flip(&leaf, bit)).is_err());
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k], bit);
                    prop_assert!(verify_inclusion(&bad, size, &root, i, &leaf).is_err());
                }
            }
        }

        /// Honest consistency proofs verify; any single flipped bit in a proof hash or either
        /// root makes verification fail.
        #[test]
        fn consistency_proofs_verify_and_bit_flips_fail(new_size in 1u64..=2000, old_seed in any::<u64>()) {
            let t = big_tree();
            let old_size = 1 + old_seed % new_size;
            let new_root = t.root_at(new_size).unwrap();
            let old_root = t.root_at(old_size).unwrap();
            let proof = consistency_proof(old_size, new_size, t).unwrap();
            prop_assert_eq!(verify_consistency(&proof, new_size, &new_root, old_size, &old_root), Ok(()));
            for bit in 0..256 {
                prop_assert!(verify_consistency(&proof, new_size, &flip(&new_root, bit), old_size, &old_root).is_err());
                prop_assert!(verify_consistency(&proof, new_size, &new_root, old_size, &flip(&old_root, bit)).is_err());
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k], bit);
                    prop_assert!(verify_consistency(&bad, new_size, &new_root, old_size, &old_root).is_err());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The two-pass design: a map holding only the `*_reads` indexes gives the same results
        /// as the full tree, for root, inclusion, consistency and append.
        #[test]
        fn reads_suffice(size in 1u64..=2000, a in any::<u64>(), b in any::<u64>()) {
            let t = big_tree();
            let i = a % size;
            let old = 1 + b % size;

            let reads = root_reads(size);
            prop_assert_eq!(root(size, &map_of(&reads, t)), t.root_at(size));

            let reads = inclusion_reads(i, size).unwrap();
            prop_assert_eq!(inclusion_proof(i, size, &map_of(&reads, t)), inclusion_proof(i, size, t));

            let reads = consistency_reads(old, size).unwrap();
            prop_assert_eq!(consistency_proof(old, size, &map_of(&reads, t)), consistency_proof(old, size, t));

            // Appending leaf number `size - 1` onto the first `size - 1` leaves.
            let n = size - 1;
            let reads = append_reads(n);
            prop_assert!(reads.iter().all(|&r| r < stored_hash_count(n)));
            let leaf = t.get(stored_hash_index(0, n)).unwrap();
            let from_map = stored_hashes_for_leaf(n, leaf, &map_of(&reads, t)).unwrap();
            let start = usize::try_from(stored_hash_index(0, n)).unwrap();
            prop_assert_eq!(from_map.as_slice(), &t.stored()[start..start + from_map.len()]);
            prop_assert_eq!(start + from_map.len(), usize::try_from(stored_hash_count(size)).unwrap());
        }
    }

    /// Timing: `cargo test --release -p opchub-ledger merkle::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_one_million_leaves() {
        use std::time::Instant;
        let n = 1_000_000u64;
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let start = Instant::now();
        let mut t = MemoryTree::with_capacity(n);
        for l in &leaves {
            t.append(*l).unwrap();
        }
        let build = start.elapsed();
        let start = Instant::now();
        let r = t.root().unwrap();
        let root_time = start.elapsed();

        let i = 654_321;
        let reads = inclusion_reads(i, n).unwrap();
        let map = map_of(&reads, &t);
        let start = Instant::now();
        let iters = 1000;
        let mut proof = Vec::new();
        for _ in 0..iters {
            proof = inclusion_proof(i, n, &map).unwrap();
        }
        let prove = start.elapsed() / iters;
        let start = Instant::now();
        for _ in 0..iters {
            verify_inclusion(&proof, n, &r, i, &leaves[654_321]).unwrap();
        }
        let verify = start.elapsed() / iters;
        let start = Instant::now();
        for _ in 0..iters {
            let _ = inclusion_reads(i, n).unwrap();
        }
        let reads_time = start.elapsed() / iters;
        let start = Instant::now();
        for _ in 0..iters {
            let _ = consistency_proof(400_000, n, &t).unwrap();
        }
        let cons = start.elapsed() / iters;
        eprintln!(
            "build 1M MemoryTree: {build:?} ({:?}/leaf); root: {root_time:?}; inclusion_reads: {reads_time:?}; \
             inclusion_proof (HashMap): {prove:?}; verify_inclusion: {verify:?}; consistency_proof: {cons:?}",
            build / u32::try_from(n).unwrap()
        );
        let start = Instant::now();
        let hashed: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        eprintln!("(for scale: 1M leaf_hash calls alone: {:?}, {})", start.elapsed(), hashed.len());
    }
}
