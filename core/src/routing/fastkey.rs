//! Cheap keys for the per-node maps on the routing hot path: node names and update IDs.
//!
//! Strings of up to 15 bytes (update IDs, most node IDs) are packed with their length into a
//! `u128`, so a lookup neither allocates nor follows a pointer; distinct strings always give
//! distinct keys. The hasher is FxHash-style word mixing with a SplitMix finaliser. These
//! maps are only ever looked up, never iterated, so their order cannot reach an output.

use std::hash::{BuildHasherDefault, Hasher};

use crate::id::NodeId;

/// `s` packed with its length, if it is shorter than 16 bytes.
pub(crate) fn pack(s: &str) -> Option<u128> {
    pack_bytes(s.as_bytes())
}

/// [`pack`] for the bytes of a string.
pub(crate) fn pack_bytes(b: &[u8]) -> Option<u128> {
    let len = u8::try_from(b.len()).ok().filter(|&l| l < 16)?;
    let (lo, hi) = b.split_at_checked(8).unwrap_or((b, &[]));
    // The length goes in the last byte, which a short string never reaches.
    Some(u128::from(le_word(lo)) | u128::from(le_word(hi)) << 64 | u128::from(len) << 120)
}

/// Up to eight bytes as a little-endian word, zero-padded (more are cut off). Built in
/// registers: copying a short slice into a buffer and loading that calls `memcpy`, and the
/// load then waits for the narrow stores to drain, which on the hot path cost more than
/// the hashing.
pub(crate) fn le_word(b: &[u8]) -> u64 {
    let n = b.len();
    if let Some(w) = b.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    if n >= 4 {
        // Two overlapping four-byte loads; the overlap ORs equal bytes.
        let lo = b.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        let hi = b.last_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        return u64::from(lo) | u64::from(hi) << (8 * (n - 4));
    }
    let byte = |i: usize| b.get(i).map_or(0, |&x| u64::from(x)) << (8 * i);
    match n {
        0 => 0,
        _ => byte(0) | byte(n / 2) | byte(n - 1),
    }
}

/// Whether `s` is the name `id`, whose packed form (if any) is `key`: names shorter than
/// 16 bytes compare without following `id`'s pointer.
pub(crate) fn is_name(s: &[u8], key: Option<u128>, id: &NodeId) -> bool {
    match key {
        Some(k) => pack_bytes(s) == Some(k),
        None => s == id.as_str().as_bytes(),
    }
}

/// A fast hasher for keys that are packed strings or random IDs.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

/// `BuildHasher` for [`FastHasher`].
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            self.write_u64(le_word(chunk));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_zero_padded_little_endian() {
        let bytes: Vec<u8> = (1..=9).collect();
        for n in 0..=9 {
            let b = &bytes[..n];
            let mut w = [0u8; 8];
            let k = n.min(8);
            w[..k].copy_from_slice(&b[..k]);
            assert_eq!(le_word(b), u64::from_le_bytes(w), "{n} bytes");
        }
        for n in 0..16 {
            let s = "abcdefghijklmnop".get(..n).unwrap();
            let mut w = [0u8; 16];
            w[..n].copy_from_slice(s.as_bytes());
            w[15] = n as u8;
            assert_eq!(pack(s), Some(u128::from_le_bytes(w)), "{s:?}");
        }
    }

    #[test]
    fn packing_is_injective_on_short_strings() {
        let short = [
            "",
            "a",
            "a\0",
            "\0",
            "abcdefgh",
            "abcdefgh\0",
            "123456789012345",
        ];
        for (i, a) in short.iter().enumerate() {
            for b in &short[i + 1..] {
                assert_ne!(pack(a), pack(b), "{a:?} vs {b:?}");
            }
            assert!(pack(a).is_some());
        }
        assert_eq!(pack("1234567890123456"), None);
    }
}
