//! A hasher for chain names: the loader and the whole-ruleset checks look a name up for every
//! rule, and a node's ruleset has 100,000 chains. Keys are our own input's chain names, not
//! an adversary's choice of collisions worth SipHash's cost (a collision only costs time).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by chain names with [`NameHasher`].
pub(crate) type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// FxHash's mixing (rotate, xor, multiply) over 8 bytes at a time.
#[derive(Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            if let Some(dst) = w.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        // Murmur3's finaliser: the multiplications above carry differences only upwards, and
        // hashbrown takes its bucket from the low bits.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Chain names to numbers (a chain's index in its table), the names of up to 31 bytes (every
/// iptables chain name: at most 28) held inline in the table, so that a lookup compares 32 bytes
/// in place instead of following a string to the heap: the loader looks a name up for every
/// rule and every jump.
#[derive(Default, Clone)]
pub(crate) struct ChainIndex {
    short: HashMap<Short, u32, BuildHasherDefault<NameHasher>>,
    long: NameMap<Box<str>, u32>,
}

/// A name of at most 31 bytes: its length, then its bytes, then zeros.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short([u8; 32]);

impl Short {
    /// The name's key, when it has at most 31 bytes.
    #[inline]
    pub(crate) fn of(name: &str) -> Option<Short> {
        let b = name.as_bytes();
        let mut k = [0u8; 32];
        let (len, rest) = k.split_first_mut()?;
        rest.get_mut(..b.len())?.copy_from_slice(b);
        *len = u8::try_from(b.len()).ok()?;
        Some(Short(k))
    }
}

impl std::hash::Hash for Short {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for c in self.0.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            state.write_u64(u64::from_le_bytes(w));
        }
    }
}

impl ChainIndex {
    /// With room for `n` names.
    pub(crate) fn with_capacity(n: usize) -> ChainIndex {
        ChainIndex {
            short: HashMap::with_capacity_and_hasher(n, BuildHasherDefault::default()),
            long: NameMap::default(),
        }
    }

    /// Maps `name` to `v`.
    pub(crate) fn insert(&mut self, name: &str, v: u32) {
        match Short::of(name) {
            Some(k) => {
                self.short.insert(k, v);
            }
            None => {
                self.long.insert(name.into(), v);
            }
        }
    }

    /// The number of `name`.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.get_keyed(name, Short::of(name).as_ref())
    }

    /// The number of `name`, whose key ([`Short::of`]) is `key`.
    #[inline]
    pub(crate) fn get_keyed(&self, name: &str, key: Option<&Short>) -> Option<u32> {
        match key {
            Some(k) => self.short.get(k).copied(),
            None => self.long.get(name).copied(),
        }
    }
}
