//! A red-black tree of VMAs keyed by start, augmented with the largest free
//! gap in each subtree (Linux 2.6-6.0: mm_rb with rb_subtree_gap), so that
//! lookups, updates and gap searches are O(log n). In front of it sits a
//! per-thread cache of 4 recently found VMAs (vmacache), invalidated by a
//! sequence number that every change of the tree bumps.
//!
//! The tree is a left-leaning red-black tree (Sedgewick): a red-black tree
//! whose red links lean left, which keeps insert and delete short. Nodes
//! live in an arena; each keeps `prev_end`, the end of the VMA before it, so
//! its own gap (start - prev_end) is local and the augmentation is a plain
//! bottom-up maximum.

use super::{fit_gap, VmaIndex};
use crate::vma::Vma;

const NIL: u32 = u32::MAX;
const VMACACHE_SIZE: usize = 4;

#[derive(Clone, Copy)]
struct Node {
    vma: Vma,
    left: u32,
    right: u32,
    red: bool,
    /// End of the previous VMA in address order (0 for the first).
    prev_end: u64,
    /// Largest `start - prev_end` in this subtree.
    subtree_gap: u64,
}

/// One thread's vmacache: its entries are valid while `seq` matches the tree's.
#[derive(Clone, Copy)]
struct VmaCache {
    tid: u32,
    seq: u64,
    slots: [Option<Vma>; VMACACHE_SIZE],
}

pub struct RbTreeIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    len: usize,
    seq: u64,
    current_tid: u32,
    caches: Vec<VmaCache>,
    /// Lookups the vmacache answered, and tree nodes the others visited.
    cache_hits: u64,
    nodes_visited: u64,
}

impl Default for RbTreeIndex {
    fn default() -> Self {
        RbTreeIndex {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            len: 0,
            seq: 0,
            current_tid: 0,
            caches: Vec::new(),
            cache_hits: 0,
            nodes_visited: 0,
        }
    }
}

impl RbTreeIndex {
    #[inline]
    fn n(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }
    #[inline]
    fn nm(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }
    #[inline]
    fn is_red(&self, i: u32) -> bool {
        i != NIL && self.n(i).red
    }
    #[inline]
    fn gap_of(&self, i: u32) -> u64 {
        if i == NIL {
            0
        } else {
            self.n(i).subtree_gap
        }
    }

    /// Recompute a node's augmented gap from its children.
    #[inline]
    fn update(&mut self, h: u32) {
        let node = self.n(h);
        let own = node.vma.start - node.prev_end;
        let g = own.max(self.gap_of(node.left)).max(self.gap_of(node.right));
        self.nm(h).subtree_gap = g;
    }

    fn rotate_left(&mut self, h: u32) -> u32 {
        let x = self.n(h).right;
        self.nm(h).right = self.n(x).left;
        self.nm(x).left = h;
        self.nm(x).red = self.n(h).red;
        self.nm(h).red = true;
        self.update(h);
        self.update(x);
        x
    }

    fn rotate_right(&mut self, h: u32) -> u32 {
        let x = self.n(h).left;
        self.nm(h).left = self.n(x).right;
        self.nm(x).right = h;
        self.nm(x).red = self.n(h).red;
        self.nm(h).red = true;
        self.update(h);
        self.update(x);
        x
    }

    fn flip_colors(&mut self, h: u32) {
        for i in [h, self.n(h).left, self.n(h).right] {
            let r = self.n(i).red;
            self.nm(i).red = !r;
        }
    }

    fn balance(&mut self, mut h: u32) -> u32 {
        if self.is_red(self.n(h).right) && !self.is_red(self.n(h).left) {
            h = self.rotate_left(h);
        }
        if self.is_red(self.n(h).left) && self.is_red(self.n(self.n(h).left).left) {
            h = self.rotate_right(h);
        }
        if self.is_red(self.n(h).left) && self.is_red(self.n(h).right) {
            self.flip_colors(h);
        }
        self.update(h);
        h
    }

    fn insert_at(&mut self, h: u32, node: u32) -> u32 {
        if h == NIL {
            return node;
        }
        if self.n(node).vma.start < self.n(h).vma.start {
            let l = self.insert_at(self.n(h).left, node);
            self.nm(h).left = l;
        } else {
            let r = self.insert_at(self.n(h).right, node);
            self.nm(h).right = r;
        }
        self.balance(h)
    }

    fn move_red_left(&mut self, mut h: u32) -> u32 {
        self.flip_colors(h);
        let r = self.n(h).right;
        if self.is_red(self.n(r).left) {
            let nr = self.rotate_right(r);
            self.nm(h).right = nr;
            h = self.rotate_left(h);
            self.flip_colors(h);
        }
        h
    }

    fn move_red_right(&mut self, mut h: u32) -> u32 {
        self.flip_colors(h);
        let l = self.n(h).left;
        if self.is_red(self.n(l).left) {
            h = self.rotate_right(h);
            self.flip_colors(h);
        }
        h
    }

    /// Remove the minimum of the subtree; returns (new subtree, removed node).
    fn delete_min(&mut self, mut h: u32) -> (u32, u32) {
        if self.n(h).left == NIL {
            return (NIL, h);
        }
        let l = self.n(h).left;
        if !self.is_red(l) && !self.is_red(self.n(l).left) {
            h = self.move_red_left(h);
        }
        let (nl, removed) = self.delete_min(self.n(h).left);
        self.nm(h).left = nl;
        (self.balance(h), removed)
    }

    /// Remove the node keyed `start` (which must exist) from the subtree.
    fn delete_at(&mut self, mut h: u32, start: u64, removed: &mut u32) -> u32 {
        if start < self.n(h).vma.start {
            let l = self.n(h).left;
            if !self.is_red(l) && !self.is_red(self.n(l).left) {
                h = self.move_red_left(h);
            }
            let nl = self.delete_at(self.n(h).left, start, removed);
            self.nm(h).left = nl;
        } else {
            if self.is_red(self.n(h).left) {
                h = self.rotate_right(h);
            }
            if start == self.n(h).vma.start && self.n(h).right == NIL {
                *removed = h;
                return NIL;
            }
            let r = self.n(h).right;
            if !self.is_red(r) && !self.is_red(self.n(r).left) {
                h = self.move_red_right(h);
            }
            if start == self.n(h).vma.start {
                // Take the successor's place: move its payload here.
                let (nr, min) = self.delete_min(self.n(h).right);
                let (vma, prev_end) = (self.n(min).vma, self.n(min).prev_end);
                *removed = min;
                let node = self.nm(h);
                node.vma = vma;
                node.prev_end = prev_end;
                node.right = nr;
            } else {
                let nr = self.delete_at(self.n(h).right, start, removed);
                self.nm(h).right = nr;
            }
        }
        self.balance(h)
    }

    /// Set `prev_end` of the node keyed `start` and fix the gaps above it.
    fn set_prev_end(&mut self, h: u32, start: u64, prev_end: u64) {
        if h == NIL {
            return;
        }
        let key = self.n(h).vma.start;
        if start == key {
            self.nm(h).prev_end = prev_end;
        } else if start < key {
            self.set_prev_end(self.n(h).left, start, prev_end);
        } else {
            self.set_prev_end(self.n(h).right, start, prev_end);
        }
        self.update(h);
    }

    /// First node with end > addr.
    fn find_node(&self, addr: u64) -> u32 {
        self.find_node_counting(addr).0
    }

    /// `find_node`, and the nodes it visited.
    fn find_node_counting(&self, addr: u64) -> (u32, u64) {
        let (mut cur, mut best, mut visited) = (self.root, NIL, 0);
        while cur != NIL {
            visited += 1;
            let n = self.n(cur);
            if n.vma.end > addr {
                best = cur;
                if n.vma.start <= addr {
                    break;
                }
                cur = n.left;
            } else {
                cur = n.right;
            }
        }
        (best, visited)
    }

    /// Node with the greatest start below `start`.
    fn pred_of(&self, start: u64) -> u32 {
        let (mut cur, mut best) = (self.root, NIL);
        while cur != NIL {
            if self.n(cur).vma.start < start {
                best = cur;
                cur = self.n(cur).right;
            } else {
                cur = self.n(cur).left;
            }
        }
        best
    }

    /// Node with the least start above `start`.
    fn succ_of(&self, start: u64) -> u32 {
        let (mut cur, mut best) = (self.root, NIL);
        while cur != NIL {
            if self.n(cur).vma.start > start {
                best = cur;
                cur = self.n(cur).left;
            } else {
                cur = self.n(cur).right;
            }
        }
        best
    }

    fn in_order(&self, h: u32, lo: u64, hi: u64, out: &mut Vec<Vma>) {
        if h == NIL {
            return;
        }
        let n = self.n(h);
        // Left subtree holds smaller starts (and smaller ends).
        if n.vma.start > lo {
            self.in_order(n.left, lo, hi, out);
        }
        if n.vma.end > lo && n.vma.start < hi {
            out.push(n.vma);
        }
        if n.vma.start < hi {
            self.in_order(n.right, lo, hi, out);
        }
    }

    /// Highest (or lowest) fit among the gaps of subtree `h`.
    fn gap_search(&self, h: u32, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        if h == NIL || self.n(h).subtree_gap < len {
            return None;
        }
        let n = self.n(h);
        // Every gap in the left subtree ends at or below this node's prev_end,
        // every gap in the right subtree starts at or above this node's end.
        let own = || fit_gap(n.prev_end, n.vma.start, len, low, high, top_down);
        let left = || {
            if n.prev_end > low {
                self.gap_search(n.left, len, low, high, top_down)
            } else {
                None
            }
        };
        let right = || {
            if n.vma.end < high {
                self.gap_search(n.right, len, low, high, top_down)
            } else {
                None
            }
        };
        if top_down {
            right().or_else(own).or_else(left)
        } else {
            left().or_else(own).or_else(right)
        }
    }

    fn bump(&mut self) {
        self.seq += 1;
    }

    /// The cache and slot holding a VMA that contains `addr`, if this thread's cache is current.
    fn cache_lookup(&self, addr: u64) -> Option<(usize, usize)> {
        let (tid, seq) = (self.current_tid, self.seq);
        let cache = self.caches.iter().position(|c| c.tid == tid && c.seq == seq)?;
        let slot = self.caches[cache].slots.iter().position(|v| v.is_some_and(|v| v.contains(addr)))?;
        Some((cache, slot))
    }

    fn cache_fill(&mut self, addr: u64, vma: Vma) {
        let (tid, seq) = (self.current_tid, self.seq);
        let slot = ((addr >> crate::addr::PAGE_SHIFT) as usize) % VMACACHE_SIZE;
        let cache = match self.caches.iter().position(|c| c.tid == tid) {
            Some(i) => &mut self.caches[i],
            None => {
                self.caches.push(VmaCache { tid, seq, slots: [None; VMACACHE_SIZE] });
                self.caches.last_mut().expect("just pushed")
            }
        };
        if cache.seq != seq {
            *cache = VmaCache { tid, seq, slots: [None; VMACACHE_SIZE] };
        }
        cache.slots[slot] = Some(vma);
    }

    fn check_node(&self, h: u32, lo: u64, hi: u64, parent_red: bool, is_right: bool) -> Result<u32, String> {
        if h == NIL {
            return Ok(1);
        }
        let n = self.n(h);
        if n.red && (parent_red || is_right) {
            return Err(format!("rbtree: red violation at {:#x}", n.vma.start));
        }
        if n.vma.start < lo || n.vma.start >= hi {
            return Err(format!("rbtree: key {:#x} out of order", n.vma.start));
        }
        let want_prev = self.pred_of(n.vma.start);
        let want_prev_end = if want_prev == NIL { 0 } else { self.n(want_prev).vma.end };
        if n.prev_end != want_prev_end {
            return Err(format!("rbtree: prev_end of {:#x} is stale", n.vma.start));
        }
        let lb = self.check_node(n.left, lo, n.vma.start, n.red, false)?;
        let rb = self.check_node(n.right, n.vma.start + 1, hi, n.red, true)?;
        if lb != rb {
            return Err(format!("rbtree: black heights {lb} and {rb} differ below {:#x}", n.vma.start));
        }
        let want_gap = (n.vma.start - n.prev_end).max(self.gap_of(n.left)).max(self.gap_of(n.right));
        if n.subtree_gap != want_gap {
            return Err(format!("rbtree: gap annotation of {:#x} is {} not {want_gap}", n.vma.start, n.subtree_gap));
        }
        Ok(lb + u32::from(!n.red))
    }
}

impl VmaIndex for RbTreeIndex {
    fn name(&self) -> &'static str {
        "rbtree"
    }
    fn len(&self) -> usize {
        self.len
    }
    fn set_thread(&mut self, tid: u32) {
        self.current_tid = tid;
    }
    fn find_ref(&mut self, addr: u64) -> Option<&Vma> {
        if let Some((cache, slot)) = self.cache_lookup(addr) {
            self.cache_hits += 1;
            return self.caches[cache].slots[slot].as_ref();
        }
        let (node, visited) = self.find_node_counting(addr);
        self.nodes_visited += visited;
        if node == NIL {
            return None;
        }
        let vma = self.n(node).vma;
        if vma.start <= addr {
            self.cache_fill(addr, vma);
        }
        Some(&self.n(node).vma)
    }
    fn stats(&self) -> super::IndexStats {
        super::IndexStats {
            nodes_visited: Some(self.nodes_visited),
            cache_hits: Some(self.cache_hits),
            nodes_per_lookup: None,
        }
    }
    fn last_before(&self, addr: u64) -> Option<Vma> {
        // The last VMA with end <= addr: the predecessor of the first ending above addr.
        let first_after = self.find_node(addr);
        let p = if first_after == NIL {
            let mut cur = self.root;
            while cur != NIL && self.n(cur).right != NIL {
                cur = self.n(cur).right;
            }
            cur
        } else {
            self.pred_of(self.n(first_after).vma.start)
        };
        (p != NIL).then(|| self.n(p).vma)
    }
    fn insert(&mut self, vma: Vma) {
        self.bump();
        let pred = self.pred_of(vma.start);
        let prev_end = if pred == NIL { 0 } else { self.n(pred).vma.end };
        let succ = self.succ_of(vma.start);
        let node = Node { vma, left: NIL, right: NIL, red: true, prev_end, subtree_gap: vma.start - prev_end };
        let idx = super::arena_alloc(&mut self.nodes, &mut self.free, node);
        let root = self.insert_at(self.root, idx);
        self.root = root;
        self.nm(root).red = false;
        self.len += 1;
        if succ != NIL {
            let s = self.n(succ).vma.start;
            self.set_prev_end(self.root, s, vma.end);
        }
    }
    fn remove(&mut self, start: u64) -> Option<Vma> {
        let node = self.find_node(start);
        if node == NIL || self.n(node).vma.start != start {
            return None;
        }
        self.bump();
        let vma = self.n(node).vma;
        let prev_end = self.n(node).prev_end;
        let succ = self.succ_of(start);
        let succ_start = (succ != NIL).then(|| self.n(succ).vma.start);
        let root = self.root;
        if !self.is_red(self.n(root).left) && !self.is_red(self.n(root).right) {
            self.nm(root).red = true;
        }
        let mut removed = NIL;
        self.root = self.delete_at(root, start, &mut removed);
        if self.root != NIL {
            let r = self.root;
            self.nm(r).red = false;
        }
        self.free.push(removed);
        self.len -= 1;
        if let Some(s) = succ_start {
            self.set_prev_end(self.root, s, prev_end);
        }
        Some(vma)
    }
    fn replace(&mut self, old_start: u64, vma: Vma) {
        let node = self.find_node(old_start);
        if node != NIL
            && vma.start == old_start
            && self.n(node).vma.start == old_start
            && self.n(node).vma.end == vma.end
        {
            // Same range (flags changed): patch in place, the shape is unchanged.
            self.bump();
            self.nm(node).vma = vma;
            return;
        }
        self.remove(old_start);
        self.insert(vma);
    }
    fn range(&self, start: u64, end: u64) -> Vec<Vma> {
        let mut out = Vec::new();
        self.in_order(self.root, start, end, &mut out);
        out
    }
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        // The gap above the last VMA is nobody's "own" gap: test it apart.
        let last_end = self.last_before(u64::MAX).map_or(0, |v| v.end);
        let above = || fit_gap(last_end, u64::MAX, len, low, high, top_down);
        let inner = || self.gap_search(self.root, len, low, high, top_down);
        if top_down {
            above().or_else(inner)
        } else {
            inner().or_else(above)
        }
    }
    fn check(&self) -> Result<(), String> {
        if self.is_red(self.root) {
            return Err("rbtree: red root".into());
        }
        self.check_node(self.root, 0, u64::MAX, false, false)?;
        let count = self.range(0, u64::MAX).len();
        if count != self.len {
            return Err(format!("rbtree: {count} nodes reachable, len says {}", self.len));
        }
        Ok(())
    }
}
