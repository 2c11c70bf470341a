//! A sorted singly linked list of VMAs with a one-entry `mmap_cache` in front
//! (the Linux 2.4 design). Every operation but a cache hit walks the list: O(n).

use super::{fit_gap, VmaIndex};
use crate::vma::Vma;

const NIL: u32 = u32::MAX;

struct Node {
    vma: Vma,
    next: u32,
}

pub struct ListIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    len: usize,
    /// The node the last lookup returned, if it still exists.
    mmap_cache: u32,
    /// Lookups the cache answered, and list nodes the others walked.
    cache_hits: u64,
    nodes_visited: u64,
}

impl Default for ListIndex {
    fn default() -> Self {
        ListIndex {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            len: 0,
            mmap_cache: NIL,
            cache_hits: 0,
            nodes_visited: 0,
        }
    }
}

impl ListIndex {
    fn iter(&self) -> impl Iterator<Item = &Vma> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            (cur != NIL).then(|| {
                let n = &self.nodes[cur as usize];
                cur = n.next;
                &n.vma
            })
        })
    }
}

impl VmaIndex for ListIndex {
    fn name(&self) -> &'static str {
        "list"
    }
    fn len(&self) -> usize {
        self.len
    }
    fn find_ref(&mut self, addr: u64) -> Option<&Vma> {
        let cached = self.mmap_cache != NIL && self.nodes[self.mmap_cache as usize].vma.contains(addr);
        if cached {
            self.cache_hits += 1;
        } else {
            let mut cur = self.head;
            while cur != NIL && self.nodes[cur as usize].vma.end <= addr {
                self.nodes_visited += 1;
                cur = self.nodes[cur as usize].next;
            }
            if cur == NIL {
                return None;
            }
            self.nodes_visited += 1;
            self.mmap_cache = cur;
        }
        Some(&self.nodes[self.mmap_cache as usize].vma)
    }
    fn last_before(&self, addr: u64) -> Option<Vma> {
        self.iter().take_while(|v| v.end <= addr).last().copied()
    }
    fn stats(&self) -> super::IndexStats {
        super::IndexStats {
            nodes_visited: Some(self.nodes_visited),
            cache_hits: Some(self.cache_hits),
            nodes_per_lookup: None,
        }
    }
    fn insert(&mut self, vma: Vma) {
        let node = Node { vma, next: NIL };
        let idx = super::arena_alloc(&mut self.nodes, &mut self.free, node);
        // Walk to the last node that starts below the new one.
        let (mut prev, mut cur) = (NIL, self.head);
        while cur != NIL && self.nodes[cur as usize].vma.start < vma.start {
            prev = cur;
            cur = self.nodes[cur as usize].next;
        }
        self.nodes[idx as usize].next = cur;
        if prev == NIL {
            self.head = idx;
        } else {
            self.nodes[prev as usize].next = idx;
        }
        self.len += 1;
    }
    fn remove(&mut self, start: u64) -> Option<Vma> {
        let (mut prev, mut cur) = (NIL, self.head);
        while cur != NIL && self.nodes[cur as usize].vma.start < start {
            prev = cur;
            cur = self.nodes[cur as usize].next;
        }
        if cur == NIL || self.nodes[cur as usize].vma.start != start {
            return None;
        }
        let next = self.nodes[cur as usize].next;
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if self.mmap_cache == cur {
            self.mmap_cache = NIL;
        }
        self.free.push(cur);
        self.len -= 1;
        Some(self.nodes[cur as usize].vma)
    }
    fn replace(&mut self, old_start: u64, vma: Vma) {
        let mut cur = self.head;
        while cur != NIL && self.nodes[cur as usize].vma.start != old_start {
            cur = self.nodes[cur as usize].next;
        }
        debug_assert!(cur != NIL, "replace of a VMA that is not there");
        if cur != NIL {
            self.nodes[cur as usize].vma = vma; // order is unchanged
        }
    }
    fn range(&self, start: u64, end: u64) -> Vec<Vma> {
        self.iter().skip_while(|v| v.end <= start).take_while(|v| v.start < end).copied().collect()
    }
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        // One pass in address order; top-down keeps the last (highest) fit.
        let mut prev_end = 0;
        let mut best = None;
        for v in
            self.iter().chain(std::iter::once(&Vma::anon(u64::MAX, u64::MAX, Default::default(), Default::default())))
        {
            if let Some(at) = fit_gap(prev_end, v.start, len, low, high, top_down) {
                if !top_down {
                    return Some(at);
                }
                best = Some(at);
            }
            if prev_end >= high {
                break;
            }
            prev_end = v.end;
        }
        best
    }
    fn check(&self) -> Result<(), String> {
        let mut count = 0;
        let mut prev_end = 0;
        for v in self.iter() {
            if v.start < prev_end {
                return Err(format!("list: VMA {:#x} out of order", v.start));
            }
            prev_end = v.end;
            count += 1;
        }
        if count != self.len {
            return Err(format!("list: {count} nodes linked, len says {}", self.len));
        }
        Ok(())
    }
}
