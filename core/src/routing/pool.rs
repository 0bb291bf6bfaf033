//! Many short lists in one buffer: the edge lists and reverse index of a graph.
//!
//! In a large mesh every node holds a list per known node; as separate vectors they lie
//! scattered over the heap among every other node's allocations, and a route computation
//! that visits them all misses the cache and the TLB on nearly each. Kept in one buffer
//! they take a few pages, and a list grows in place or moves to the end; the buffer is
//! compacted (in list order) once half of it is garbage.

/// Where list `i` lies in `items`.
#[derive(Debug, Clone, Copy, Default)]
struct Head {
    at: u32,
    len: u32,
    cap: u32,
}

/// Lists of `T`, by index.
#[derive(Debug)]
pub(crate) struct Pool<T> {
    heads: Vec<Head>,
    items: Vec<T>,
    /// Slots of `items` no list owns.
    garbage: usize,
    /// What fills slots no list owns.
    fill: T,
}

impl<T: Copy + Default> Default for Pool<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Copy> Pool<T> {
    pub(crate) fn new(fill: T) -> Self {
        Self {
            heads: Vec::new(),
            items: Vec::new(),
            garbage: 0,
            fill,
        }
    }

    /// Adds an empty list at the next index.
    pub(crate) fn push_empty(&mut self) {
        self.heads.push(Head::default());
    }

    /// List `i` (empty if there is no such list).
    pub(crate) fn get(&self, i: usize) -> &[T] {
        let Some(h) = self.heads.get(i) else {
            return &[];
        };
        let at = h.at as usize;
        self.items.get(at..at + h.len as usize).unwrap_or_default()
    }

    /// List `i`, to change its elements in place.
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut [T] {
        let Some(h) = self.heads.get(i) else {
            return &mut [];
        };
        let at = h.at as usize;
        self.items
            .get_mut(at..at + h.len as usize)
            .unwrap_or_default()
    }

    /// Makes room for list `i` to hold `len` elements; returns its head, or `None` if the
    /// buffer would outgrow u32 offsets (then nothing changed).
    fn reserve(&mut self, i: usize, len: usize) -> Option<Head> {
        let h = *self.heads.get(i)?;
        if len <= h.cap as usize {
            return Some(h);
        }
        if self.garbage > 256 && self.garbage > self.items.len() / 2 {
            self.compact();
        }
        let h = *self.heads.get(i)?;
        let cap = len.max(4).next_power_of_two();
        let at = u32::try_from(self.items.len()).ok()?;
        u32::try_from(self.items.len() + cap).ok()?;
        let (old, n) = (h.at as usize, h.len as usize);
        self.items.extend_from_within(old..old + n);
        self.items.resize(at as usize + cap, self.fill);
        self.garbage += h.cap as usize;
        let new = Head {
            at,
            len: h.len,
            cap: cap as u32,
        };
        *self.heads.get_mut(i)? = new;
        Some(new)
    }

    /// Rewrites the buffer with the lists in index order, each with room to spare.
    fn compact(&mut self) {
        let mut items = Vec::with_capacity(self.items.len() - self.garbage);
        for h in &mut self.heads {
            let (old, n) = (h.at as usize, h.len as usize);
            h.at = items.len() as u32;
            if let Some(src) = self.items.get(old..old + n) {
                items.extend_from_slice(src);
            }
            items.resize(h.at as usize + h.cap as usize, self.fill);
        }
        self.items = items;
        self.garbage = 0;
    }

    /// Replaces list `i` with `new`.
    pub(crate) fn set(&mut self, i: usize, new: &[T]) {
        let Some(h) = self.reserve(i, new.len()) else {
            return;
        };
        let at = h.at as usize;
        if let Some(dst) = self.items.get_mut(at..at + new.len()) {
            dst.copy_from_slice(new);
        }
        if let Some(h) = self.heads.get_mut(i) {
            h.len = new.len() as u32;
        }
    }

    /// Inserts `x` at position `k` of list `i`.
    pub(crate) fn insert(&mut self, i: usize, k: usize, x: T) {
        let Some(h) = self.reserve(i, self.get(i).len() + 1) else {
            return;
        };
        let (at, n) = (h.at as usize, h.len as usize);
        if let Some(list) = self.items.get_mut(at..at + n + 1)
            && k <= n
        {
            list.copy_within(k..n, k + 1);
            if let Some(slot) = list.get_mut(k) {
                *slot = x;
            }
            if let Some(h) = self.heads.get_mut(i) {
                h.len += 1;
            }
        }
    }

    /// Removes position `k` of list `i`.
    pub(crate) fn remove(&mut self, i: usize, k: usize) {
        let Some(h) = self.heads.get_mut(i) else {
            return;
        };
        let (at, n) = (h.at as usize, h.len as usize);
        if k >= n {
            return;
        }
        h.len -= 1;
        if let Some(list) = self.items.get_mut(at..at + n) {
            list.copy_within(k + 1..n, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against plain vectors: random sets, inserts and removes, with compaction on the way.
    #[test]
    fn matches_vectors() {
        let mut pool = Pool::new(0u32);
        let mut model: Vec<Vec<u32>> = Vec::new();
        let mut x = 7u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        for _ in 0..50 {
            pool.push_empty();
            model.push(Vec::new());
        }
        for step in 0..20_000u32 {
            let i = next() % 50;
            match next() % 4 {
                0 => {
                    let new: Vec<u32> = (0..next() % 12).map(|_| next() as u32).collect();
                    pool.set(i, &new);
                    model[i] = new;
                }
                1 | 2 => {
                    let k = next() % (model[i].len() + 1);
                    pool.insert(i, k, step);
                    model[i].insert(k, step);
                }
                _ => {
                    if !model[i].is_empty() {
                        let k = next() % model[i].len();
                        pool.remove(i, k);
                        model[i].remove(k);
                    }
                }
            }
            assert_eq!(pool.get(i), &model[i][..]);
        }
        for (i, m) in model.iter().enumerate() {
            assert_eq!(pool.get(i), &m[..]);
        }
        assert!(
            pool.items.len() < 50 * 64,
            "compacted: {}",
            pool.items.len()
        );
        assert_eq!(pool.get(50), &[] as &[u32]);
    }
}
