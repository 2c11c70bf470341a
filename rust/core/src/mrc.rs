//! Miss-ratio curves for LRU in one pass (Mattson's stack algorithm): the
//! LRU stack distance of every access, so that the misses of an LRU memory
//! of any size come from one histogram.
//!
//! A miss is an access that needs a frame, as the simulator counts it: a
//! page's first write (a read of a page never written maps the zero page and
//! needs none, so a page joins the stack at its first write and accesses
//! before it are passed over), and any access to a page that LRU would have
//! evicted. With that rule the curve equals a replay under `policy="lru"`
//! with `resident_limit` at every size, for a single address space.
//!
//! The distance of an access is the number of distinct pages (its own
//! included) referenced since the page's previous access: one plus the count
//! of pages whose latest access came later. Latest-access times sit in a
//! Fenwick tree, so each access costs O(log n); the clock is renumbered once
//! it reaches twice the pages live, which keeps the tree the size of the
//! working set, not of the trace.

use rustc_hash::FxHashMap;

/// The stack distances of a stream of page references, fed in pieces.
#[derive(Debug, Default)]
pub struct StackDistances {
    /// Per page seen: its latest access time while on the stack, or None
    /// while it has only been read (not yet on the stack).
    last: FxHashMap<u64, Option<u32>>,
    /// Fenwick tree over times: 1 where some page's latest access is.
    tree: Vec<u32>,
    /// The next time to hand out (times 1..=tree.len() fit the tree).
    now: u32,
    /// Pages on the stack (written at least once).
    on_stack: u32,
    /// `hist[d]`: accesses at stack distance d (d >= 1).
    hist: Vec<u64>,
    /// First writes: misses at every size.
    cold: u64,
    accesses: u64,
}

impl StackDistances {
    pub fn new() -> StackDistances {
        StackDistances::default()
    }

    /// The next reference: `page` (any key naming one page), written or not.
    pub fn access(&mut self, page: u64, write: bool) {
        self.accesses += 1;
        let on_stack = matches!(self.last.get(&page), Some(Some(_)));
        if !on_stack && !write {
            self.last.entry(page).or_insert(None);
            return; // the zero page: no frame, not on the stack yet
        }
        if self.now as usize >= self.tree.len() {
            self.renumber(); // before reading the page's time: it renumbers them
        }
        self.now += 1;
        let t = self.now;
        match self.last.insert(page, Some(t)).flatten() {
            Some(previous) => {
                let d = (self.on_stack - self.prefix(previous)) as usize + 1;
                if self.hist.len() <= d {
                    self.hist.resize(d + 1, 0);
                }
                self.hist[d] += 1;
                self.add(previous, -1);
            }
            None => {
                self.cold += 1;
                self.on_stack += 1;
            }
        }
        self.add(t, 1);
    }

    /// Misses of an LRU memory of `pages` resident pages.
    pub fn misses(&self, pages: u64) -> u64 {
        let beyond = self.hist.iter().skip((pages as usize).saturating_add(1)).sum::<u64>();
        self.cold + beyond
    }

    /// Accesses fed so far.
    pub fn accesses(&self) -> u64 {
        self.accesses
    }

    /// Distinct pages referenced (read or written).
    pub fn distinct_pages(&self) -> u64 {
        self.last.len() as u64
    }

    /// Pages written at least once (the frames a memory of any size needs at most).
    pub fn written_pages(&self) -> u64 {
        self.on_stack as u64
    }

    /// Times 1..=n of the live pages in order, the tree rebuilt for twice as many.
    fn renumber(&mut self) {
        let mut live: Vec<(u32, u64)> = self.last.iter().filter_map(|(&page, &t)| Some((t?, page))).collect();
        live.sort_unstable();
        let size = (2 * live.len()).max(1024);
        self.tree = vec![0; size];
        for (i, &(_, page)) in live.iter().enumerate() {
            let t = i as u32 + 1;
            self.last.insert(page, Some(t));
            self.tree[t as usize - 1] = 1;
        }
        self.now = live.len() as u32;
        // Build the Fenwick sums in place, in O(n).
        for i in 1..=size {
            let parent = i + (i & i.wrapping_neg());
            if parent <= size {
                self.tree[parent - 1] += self.tree[i - 1];
            }
        }
    }

    fn add(&mut self, t: u32, delta: i32) {
        let mut i = t as usize;
        while i <= self.tree.len() {
            self.tree[i - 1] = self.tree[i - 1].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Live latest-access times at or before `t`.
    fn prefix(&self, t: u32) -> u32 {
        let (mut i, mut sum) = (t as usize, 0);
        while i > 0 {
            sum += self.tree[i - 1];
            i &= i - 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    /// LRU misses at `size` by simulating the stack outright.
    fn lru_misses(refs: &[(u64, bool)], size: usize) -> u64 {
        let (mut stack, mut written, mut misses) = (Vec::<u64>::new(), std::collections::HashSet::new(), 0);
        for &(page, write) in refs {
            if !written.contains(&page) && !write {
                continue;
            }
            written.insert(page);
            match stack.iter().position(|&p| p == page) {
                Some(i) => {
                    stack.remove(i);
                }
                None => {
                    misses += 1;
                    if stack.len() == size {
                        stack.pop();
                    }
                }
            }
            stack.insert(0, page);
        }
        misses
    }

    #[test]
    fn distances_give_the_misses_of_every_lru_size() {
        let mut rng = XorShift::new(7);
        // Long enough that the clock is renumbered many times over.
        let refs: Vec<(u64, bool)> = (0..20_000).map(|_| (rng.below(300), rng.below(3) != 0)).collect();
        let mut sd = StackDistances::new();
        for &(page, write) in &refs {
            sd.access(page, write);
        }
        assert_eq!(sd.accesses(), 20_000);
        assert_eq!(sd.distinct_pages(), 300);
        for size in [1, 2, 5, 17, 64, 150, 299, 300, 1000] {
            assert_eq!(sd.misses(size), lru_misses(&refs, size as usize), "size {size}");
        }
    }

    #[test]
    fn reads_of_pages_never_written_need_no_frame() {
        let mut sd = StackDistances::new();
        for page in 0..10 {
            sd.access(page, false);
        }
        sd.access(3, true);
        sd.access(3, false);
        assert_eq!((sd.misses(1), sd.misses(0), sd.written_pages(), sd.distinct_pages()), (1, 2, 1, 10));
        assert_eq!(sd.misses(u64::MAX), 1, "any size past the pages: the first writes only");
    }
}
