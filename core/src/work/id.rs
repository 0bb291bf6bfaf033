//! Unit IDs (control-and-work.md §2.1).

use rand_core::RngCore;

/// Length of a generated unit ID.
pub const UNIT_ID_LEN: usize = 8;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A new unit ID: [`UNIT_ID_LEN`] characters, each uniformly from `[0-9a-zA-Z]` (Go's
/// `randstr.RandomString`). Pass a cryptographically seeded RNG; the caller retries on a
/// collision with an existing unit.
pub fn generate_unit_id<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut id = String::with_capacity(UNIT_ID_LEN);
    let mut buf = [0u8; 16];
    while id.len() < UNIT_ID_LEN {
        rng.fill_bytes(&mut buf);
        for b in buf {
            // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
            if b < 248
                && id.len() < UNIT_ID_LEN
                && let Some(&c) = ALPHABET.get(usize::from(b % 62))
            {
                id.push(char::from(c));
            }
        }
    }
    id
}

/// Whether `id` can name a unit directory: one plain path component (not empty, `.` or `..`,
/// no `/` or NUL). Go joins any requested ID onto the data directory; lookups of IDs that fail
/// this must not touch the file system.
pub fn is_safe_unit_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn ids_are_eight_alphanumerics() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let id = generate_unit_id(&mut rng);
            assert_eq!(id.len(), UNIT_ID_LEN);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(is_safe_unit_id(&id));
            seen.insert(id);
        }
        assert_eq!(seen.len(), 2000);
    }

    #[test]
    fn every_character_occurs() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut counts = [0u32; 128];
        for _ in 0..5000 {
            for b in generate_unit_id(&mut rng).bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        for &c in ALPHABET {
            // 40000 draws over 62 symbols: about 645 each.
            let n = counts[usize::from(c)];
            assert!((500..800).contains(&n), "{} drawn {n} times", c as char);
        }
    }

    #[test]
    fn unsafe_ids() {
        for bad in ["", ".", "..", "a/b", "../x", "/abs", "a\0"] {
            assert!(!is_safe_unit_id(bad), "{bad:?}");
        }
        assert!(is_safe_unit_id("..a"));
    }
}
