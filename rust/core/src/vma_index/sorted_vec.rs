//! A sorted vector with binary search: the cache-friendly baseline. Lookups
//! are O(log n); inserts and removes shift the tail, O(n).

use super::{gap_bottom_up, gap_top_down, VmaIndex};
use crate::vma::Vma;

#[derive(Default)]
pub struct SortedVecIndex {
    vmas: Vec<Vma>,
}

impl SortedVecIndex {
    /// Position of the first VMA with `end > addr`.
    #[inline]
    fn first_ending_after(&self, addr: u64) -> usize {
        self.vmas.partition_point(|v| v.end <= addr)
    }
}

impl VmaIndex for SortedVecIndex {
    fn name(&self) -> &'static str {
        "sorted_vec"
    }
    fn len(&self) -> usize {
        self.vmas.len()
    }
    #[inline]
    fn find_ref(&mut self, addr: u64) -> Option<&Vma> {
        self.vmas.get(self.first_ending_after(addr))
    }
    fn last_before(&self, addr: u64) -> Option<Vma> {
        let i = self.first_ending_after(addr);
        i.checked_sub(1).map(|i| self.vmas[i])
    }
    fn insert(&mut self, vma: Vma) {
        let i = self.vmas.partition_point(|v| v.start < vma.start);
        self.vmas.insert(i, vma);
    }
    fn remove(&mut self, start: u64) -> Option<Vma> {
        let i = self.vmas.partition_point(|v| v.start < start);
        (self.vmas.get(i)?.start == start).then(|| self.vmas.remove(i))
    }
    fn replace(&mut self, old_start: u64, vma: Vma) {
        let i = self.vmas.partition_point(|v| v.start < old_start);
        debug_assert!(self.vmas[i].start == old_start);
        self.vmas[i] = vma; // order is unchanged: vma overlaps no neighbour
    }
    fn range(&self, start: u64, end: u64) -> Vec<Vma> {
        let i = self.first_ending_after(start);
        self.vmas[i..].iter().take_while(|v| v.start < end).copied().collect()
    }
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        if top_down {
            let below = self.vmas.partition_point(|v| v.start < high);
            gap_top_down(self.vmas[..below].iter().rev().map(|v| (v.start, v.end)), len, low, high)
        } else {
            let from = self.first_ending_after(low);
            gap_bottom_up(self.vmas[from..].iter().map(|v| (v.start, v.end)), len, low, high)
        }
    }
    fn check(&self) -> Result<(), String> {
        for w in self.vmas.windows(2) {
            if w[0].end > w[1].start {
                return Err(format!(
                    "sorted_vec: {:#x}-{:#x} overlaps or precedes {:#x}",
                    w[0].start, w[0].end, w[1].start
                ));
            }
        }
        Ok(())
    }
}
