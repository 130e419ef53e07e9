//! A binary min-heap of `(virtual time, flow id)` ordered wrap-safely.
//!
//! Keys are compared with [`crate::time::vt_gt`], which is a consistent order
//! as long as all keys in the heap lie within 2^63 of each other — true for
//! timestamps the schedulers keep near their virtual clock. Capacity is
//! reserved up front (one entry per flow at most), so pushes never allocate.

use crate::time::vt_gt;

/// Min-heap of (key, id).
#[derive(Debug, Clone, Default)]
pub struct VtHeap {
    items: Vec<(u64, u32)>,
}

impl VtHeap {
    /// An empty heap that can hold `cap` entries without reallocating.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            items: Vec::with_capacity(cap),
        }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The smallest entry.
    #[inline]
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.items.first().copied()
    }

    /// Inserts an entry.
    #[inline]
    pub fn push(&mut self, key: u64, id: u32) {
        let mut i = self.items.len();
        self.items.push((key, id));
        while i > 0 {
            let parent = (i - 1) / 2;
            if !vt_gt(self.items[parent].0, key) {
                break;
            }
            self.items[i] = self.items[parent];
            i = parent;
        }
        self.items[i] = (key, id);
    }

    /// Removes and returns the smallest entry.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, u32)> {
        let top = *self.items.first()?;
        let last = self.items.pop()?;
        let n = self.items.len();
        if n > 0 {
            // Sift `last` down from the root.
            let mut i = 0;
            loop {
                let l = 2 * i + 1;
                if l >= n {
                    break;
                }
                let r = l + 1;
                let c = if r < n && vt_gt(self.items[l].0, self.items[r].0) {
                    r
                } else {
                    l
                };
                if !vt_gt(last.0, self.items[c].0) {
                    break;
                }
                self.items[i] = self.items[c];
                i = c;
            }
            self.items[i] = last;
        }
        Some(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_wrap_safe_order() {
        let base = u64::MAX - 1000;
        let mut h = VtHeap::with_capacity(64);
        let keys: Vec<u64> = (0..50u64)
            .map(|i| base.wrapping_add((i * 37) % 50 * 100))
            .collect();
        for (i, &k) in keys.iter().enumerate() {
            h.push(k, i as u32);
        }
        let mut prev = None;
        while let Some((k, _)) = h.pop() {
            if let Some(p) = prev {
                assert!(!vt_gt(p, k), "out of order across the wrap");
            }
            prev = Some(k);
        }
        assert!(h.is_empty());
    }
}
