//! A homomorphic multiset hash (LtHash-style) over label groups: the content identity of a
//! version.
//!
//! Each element (a label group, identified by its group hash) maps to [`LANES`] 64-bit
//! lanes drawn from blake3's extendable output; a multiset is the lane-wise wrapping sum of
//! its elements. Adding and removing elements is lane-wise addition and subtraction, so a
//! commit updates the identity of a version from the before- and after-images of the
//! groups it changed, without reading anything else, and the result depends only on the
//! set of groups, never on the order of the edits that produced it (DESIGN invariant 5).
//! The digest of a multiset is blake3 over its lanes (little-endian), tagged.

use quiver_tree::Hash;

/// Number of 64-bit lanes (2,048 bits of state).
pub const LANES: usize = 32;

const ELEMENT_TAG: &[u8] = b"quiver-lthash-element-v2";
const DIGEST_TAG: &[u8] = b"quiver-lthash-digest-v2";

/// A multiset of label groups.
#[derive(Clone, PartialEq, Eq)]
pub struct Multiset(pub [u64; LANES]);

impl Default for Multiset {
    fn default() -> Self {
        Multiset([0; LANES])
    }
}

impl std::fmt::Debug for Multiset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Multiset({})", self.digest())
    }
}

fn element(group: &Hash) -> [u64; LANES] {
    let mut h = blake3::Hasher::new();
    h.update(ELEMENT_TAG);
    h.update(group.as_bytes());
    let mut out = [0u8; LANES * 8];
    h.finalize_xof().fill(&mut out);
    let mut lanes = [0u64; LANES];
    for (i, l) in lanes.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&out[i * 8..i * 8 + 8]);
        *l = u64::from_le_bytes(w);
    }
    lanes
}

impl Multiset {
    /// Add one group (by its group hash).
    pub fn add(&mut self, group: &Hash) {
        for (a, e) in self.0.iter_mut().zip(element(group)) {
            *a = a.wrapping_add(e);
        }
    }

    /// Remove one group (by its group hash).
    pub fn remove(&mut self, group: &Hash) {
        for (a, e) in self.0.iter_mut().zip(element(group)) {
            *a = a.wrapping_sub(e);
        }
    }

    /// Add every element of another multiset.
    pub fn add_all(&mut self, other: &Multiset) {
        for (a, e) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(e);
        }
    }

    /// The digest: the content hash of the multiset.
    pub fn digest(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(DIGEST_TAG);
        for l in self.0 {
            h.update(&l.to_le_bytes());
        }
        Hash(*h.finalize().as_bytes())
    }

    /// Lanes as bytes (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    /// From [`Multiset::to_bytes`]; `None` for a wrong length.
    pub fn from_bytes(b: &[u8]) -> Option<Multiset> {
        if b.len() != LANES * 8 {
            return None;
        }
        let mut lanes = [0u64; LANES];
        for (i, l) in lanes.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *l = u64::from_le_bytes(w);
        }
        Some(Multiset(lanes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The digest depends on the multiset only: any order of additions, and additions
        /// undone by removals, give the same digest.
        #[test]
        fn order_and_history_independent(xs in proptest::collection::vec(any::<[u8; 32]>(), 0..30), extra in any::<[u8; 32]>(), seed in any::<u64>()) {
            let mut a = Multiset::default();
            for x in &xs { a.add(&Hash(*x)); }
            let mut ys = xs.clone();
            let n = ys.len().max(1);
            ys.rotate_left((seed as usize) % n);
            ys.reverse();
            let mut b = Multiset::default();
            b.add(&Hash(extra));
            for y in &ys { b.add(&Hash(*y)); }
            b.remove(&Hash(extra));
            prop_assert_eq!(a.digest(), b.digest());
            prop_assert_eq!(Multiset::from_bytes(&a.to_bytes()), Some(a));
        }
    }

    /// The content hash of a version is this digest: its bytes are part of the format
    /// (commit ids hash it), so they must never change by accident.
    #[test]
    fn golden_digest_values() {
        assert_eq!(
            Multiset::default().digest().to_hex(),
            "91a19c419754c45fb06974346df6b6b25f6aec2634fc8cefa3cf2e9d5dc9b374"
        );
        let mut m = Multiset::default();
        m.add(&Hash([7; 32]));
        m.add(&Hash([9; 32]));
        assert_eq!(
            m.digest().to_hex(),
            "44cce118dab3b963e0b6d9da7a5ab360e033e304a84895141c9008e44cd81a30"
        );
        assert_eq!(element(&Hash([7; 32]))[0], 104228401345060163);
    }

    #[test]
    fn golden_digests() {
        assert_eq!(
            Multiset::default().digest().to_hex(),
            Multiset::default().digest().to_hex()
        );
        let mut m = Multiset::default();
        m.add(&Hash([7; 32]));
        let one = m.digest();
        m.add(&Hash([9; 32]));
        assert_ne!(one, m.digest());
        m.remove(&Hash([9; 32]));
        assert_eq!(one, m.digest());
    }
}
