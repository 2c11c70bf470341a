//! The standard library's BTreeMap keyed by VMA end: the obvious Rust baseline.
//! find_vma is a range query for the first end above the address.

use super::{gap_bottom_up, gap_top_down, VmaIndex};
use crate::vma::Vma;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

#[derive(Default)]
pub struct BTreeIndex {
    by_end: BTreeMap<u64, Vma>,
}

impl VmaIndex for BTreeIndex {
    fn name(&self) -> &'static str {
        "btree"
    }
    fn len(&self) -> usize {
        self.by_end.len()
    }
    #[inline]
    fn find_ref(&mut self, addr: u64) -> Option<&Vma> {
        self.by_end.range((Excluded(addr), Unbounded)).next().map(|(_, v)| v)
    }
    fn last_before(&self, addr: u64) -> Option<Vma> {
        self.by_end.range(..=addr).next_back().map(|(_, v)| *v)
    }
    fn insert(&mut self, vma: Vma) {
        self.by_end.insert(vma.end, vma);
    }
    fn remove(&mut self, start: u64) -> Option<Vma> {
        let end = self.by_end.range((Excluded(start), Unbounded)).next().filter(|(_, v)| v.start == start)?.1.end;
        self.by_end.remove(&end)
    }
    fn replace(&mut self, old_start: u64, vma: Vma) {
        match self.by_end.get_mut(&vma.end) {
            Some(v) if v.start == old_start => *v = vma, // same range: in place
            _ => {
                self.remove(old_start);
                self.insert(vma);
            }
        }
    }
    fn range(&self, start: u64, end: u64) -> Vec<Vma> {
        self.by_end.range((Excluded(start), Unbounded)).map(|(_, v)| *v).take_while(|v| v.start < end).collect()
    }
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        if top_down {
            // The VMAs starting below `high`: at most one straddles it (the
            // first to end above it), then all that end at or below it.
            let straddler =
                self.by_end.range((Excluded(high), Unbounded)).next().map(|(_, v)| *v).filter(|v| v.start < high);
            let below = self.by_end.range(..=high).rev().map(|(_, v)| *v);
            gap_top_down(straddler.into_iter().chain(below).map(|v| (v.start, v.end)), len, low, high)
        } else {
            let spans = self.by_end.range((Excluded(low), Unbounded)).map(|(_, v)| (v.start, v.end));
            gap_bottom_up(spans, len, low, high)
        }
    }
    fn check(&self) -> Result<(), String> {
        let mut prev_end = 0;
        for (&end, v) in &self.by_end {
            if end != v.end || v.start < prev_end || v.start >= v.end {
                return Err(format!("btree: VMA {:#x}-{:#x} keyed {end:#x} out of order", v.start, v.end));
            }
            prev_end = end;
        }
        Ok(())
    }
}
