//! A seeded random sequence for the simulator's own randomized studies
//! (`vma_index::study`) and, through `testing`, for tests and benchmarks.

/// xorshift64: a deterministic, dependency-free random sequence, so a
/// randomized test fails the same way every run.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A sequence from `seed` (0 is replaced: xorshift would stay at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in 0..n (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A byte from the middle of the state (its best-mixed bits).
    #[inline]
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 24) as u8
    }

    /// Shuffle `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}
