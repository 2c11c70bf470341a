//! A range B-tree in the style of Linux 6.1's maple tree: wide nodes of plain
//! pivots searched linearly, 16-entry leaves and 10-child internal nodes,
//! every internal node recording, per child, the largest gap below it, so
//! that find_vma and the gap search are both O(log n). Single writer, no RCU.
//!
//! The maple tree stores gaps as explicit empty ranges; here a gap is implied
//! between neighbouring VMAs: a leaf knows the gaps between its own entries,
//! and an internal node knows the gaps between its children from their
//! first start and last end (the pivot).

use super::{fit_gap, VmaIndex};
use crate::vma::{Prot, VmFlags, Vma};

const NIL: u32 = u32::MAX;
const LEAF_MAX: usize = 16;
const LEAF_MIN: usize = LEAF_MAX / 2;
const NODE_MAX: usize = 10;
const NODE_MIN: usize = NODE_MAX / 2;
const EMPTY: Vma =
    Vma { start: 0, end: 0, prot: Prot::NONE, flags: VmFlags::EMPTY, backing: crate::vma::Backing::Anon, anon_vma: 0 };

/// What a parent keeps about each child.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Summary {
    min_start: u64,
    max_end: u64,
    max_gap: u64,
}

// Field order matters: a lookup reads `len` and the pivots first, so they
// share the node's first cache lines.
#[derive(Clone)]
#[repr(C, align(64))]
struct Leaf {
    len: usize,
    /// VMA ends, apart so the lookup scan touches one cache line or two.
    ends: [u64; LEAF_MAX + 1],
    vmas: [Vma; LEAF_MAX + 1],
}

#[derive(Clone)]
#[repr(C, align(64))]
struct Internal {
    len: usize,
    /// Pivot i: the end of the last VMA below child i.
    pivots: [u64; NODE_MAX + 1],
    children: [u32; NODE_MAX + 1],
    /// First start below child i, and the largest gap inside child i.
    mins: [u64; NODE_MAX + 1],
    gaps: [u64; NODE_MAX + 1],
}

#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "nodes sit in one arena; a boxed leaf would cost a pointer chase per lookup"
)]
enum Node {
    Leaf(Leaf),
    Internal(Internal),
}

impl Leaf {
    fn empty() -> Leaf {
        Leaf { len: 0, ends: [0; LEAF_MAX + 1], vmas: [EMPTY; LEAF_MAX + 1] }
    }
    fn summary(&self) -> Summary {
        let v = &self.vmas[..self.len];
        let max_gap = v.windows(2).map(|w| w[1].start - w[0].end).max().unwrap_or(0);
        Summary { min_start: v[0].start, max_end: v[self.len - 1].end, max_gap }
    }
    fn insert_at(&mut self, i: usize, vma: Vma) {
        self.vmas.copy_within(i..self.len, i + 1);
        self.ends.copy_within(i..self.len, i + 1);
        self.vmas[i] = vma;
        self.ends[i] = vma.end;
        self.len += 1;
    }
    fn remove_at(&mut self, i: usize) -> Vma {
        let v = self.vmas[i];
        self.vmas.copy_within(i + 1..self.len, i);
        self.ends.copy_within(i + 1..self.len, i);
        self.len -= 1;
        v
    }
}

impl Internal {
    fn empty() -> Internal {
        Internal {
            len: 0,
            pivots: [0; NODE_MAX + 1],
            mins: [0; NODE_MAX + 1],
            gaps: [0; NODE_MAX + 1],
            children: [NIL; NODE_MAX + 1],
        }
    }
    fn summary(&self) -> Summary {
        let mut max_gap = 0;
        for i in 0..self.len {
            max_gap = max_gap.max(self.gaps[i]);
            if i + 1 < self.len {
                max_gap = max_gap.max(self.mins[i + 1] - self.pivots[i]);
            }
        }
        Summary { min_start: self.mins[0], max_end: self.pivots[self.len - 1], max_gap }
    }
    fn set(&mut self, i: usize, child: u32, s: Summary) {
        self.children[i] = child;
        self.pivots[i] = s.max_end;
        self.mins[i] = s.min_start;
        self.gaps[i] = s.max_gap;
    }
    fn insert_at(&mut self, i: usize, child: u32, s: Summary) {
        for arr in [&mut self.pivots, &mut self.mins, &mut self.gaps] {
            arr.copy_within(i..self.len, i + 1);
        }
        self.children.copy_within(i..self.len, i + 1);
        self.len += 1;
        self.set(i, child, s);
    }
    fn remove_at(&mut self, i: usize) {
        for arr in [&mut self.pivots, &mut self.mins, &mut self.gaps] {
            arr.copy_within(i + 1..self.len, i);
        }
        self.children.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
    /// The child whose range holds `start`: the last one starting at or below it.
    fn child_for(&self, start: u64) -> usize {
        self.mins[1..self.len].iter().take_while(|&&m| m <= start).count()
    }
}

pub struct MapleIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    len: usize,
}

impl Default for MapleIndex {
    fn default() -> Self {
        MapleIndex { nodes: Vec::new(), free: Vec::new(), root: NIL, len: 0 }
    }
}

impl MapleIndex {
    fn alloc(&mut self, node: Node) -> u32 {
        super::arena_alloc(&mut self.nodes, &mut self.free, node)
    }

    fn summary(&self, i: u32) -> Summary {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.summary(),
            Node::Internal(n) => n.summary(),
        }
    }

    fn entries(&self, i: u32) -> usize {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.len,
            Node::Internal(n) => n.len,
        }
    }

    /// Insert below node `i`; returns a new right sibling if `i` split.
    fn insert_below(&mut self, i: u32, vma: Vma) -> Option<u32> {
        let split = match &mut self.nodes[i as usize] {
            Node::Leaf(l) => {
                let at = l.vmas[..l.len].partition_point(|v| v.start < vma.start);
                l.insert_at(at, vma);
                if l.len <= LEAF_MAX {
                    return None;
                }
                let mut right = Leaf::empty();
                let keep = l.len / 2;
                for j in keep..l.len {
                    right.insert_at(j - keep, l.vmas[j]);
                }
                l.len = keep;
                Node::Leaf(right)
            }
            Node::Internal(n) => {
                let c = n.child_for(vma.start);
                let child = n.children[c];
                let grown = self.insert_below(child, vma);
                let s = self.summary(child);
                let Node::Internal(n) = &mut self.nodes[i as usize] else { unreachable!() };
                n.set(c, child, s);
                let new_child = grown?;
                let s_new = self.summary(new_child);
                let Node::Internal(n) = &mut self.nodes[i as usize] else { unreachable!() };
                n.insert_at(c + 1, new_child, s_new);
                if n.len <= NODE_MAX {
                    return None;
                }
                let mut right = Internal::empty();
                let keep = n.len / 2;
                for j in keep..n.len {
                    let s = Summary { min_start: n.mins[j], max_end: n.pivots[j], max_gap: n.gaps[j] };
                    right.insert_at(j - keep, n.children[j], s);
                }
                n.len = keep;
                Node::Internal(right)
            }
        };
        Some(self.alloc(split))
    }

    /// Remove the VMA keyed `start` below node `i`.
    fn remove_below(&mut self, i: u32, start: u64) -> Option<Vma> {
        match &mut self.nodes[i as usize] {
            Node::Leaf(l) => {
                let at = l.vmas[..l.len].partition_point(|v| v.start < start);
                (at < l.len && l.vmas[at].start == start).then(|| l.remove_at(at))
            }
            Node::Internal(n) => {
                let c = n.child_for(start);
                let child = n.children[c];
                let removed = self.remove_below(child, start)?;
                let min = if matches!(self.nodes[child as usize], Node::Leaf(_)) { LEAF_MIN } else { NODE_MIN };
                if self.entries(child) < min {
                    self.rebalance(i, c);
                } else {
                    let s = self.summary(child);
                    let Node::Internal(n) = &mut self.nodes[i as usize] else { unreachable!() };
                    n.set(c, child, s);
                }
                Some(removed)
            }
        }
    }

    /// Child `c` of node `p` is under-full: merge it with a neighbour, or
    /// share the neighbour's entries evenly between the two.
    fn rebalance(&mut self, p: u32, c: usize) {
        let Node::Internal(n) = &self.nodes[p as usize] else { unreachable!() };
        let (l, r) = if c + 1 < n.len { (c, c + 1) } else { (c - 1, c) };
        let (left, right) = (n.children[l], n.children[r]);
        let merged = match (self.nodes[left as usize].clone(), &self.nodes[right as usize]) {
            (Node::Leaf(mut a), Node::Leaf(b)) => {
                let mut all: Vec<Vma> = a.vmas[..a.len].to_vec();
                all.extend_from_slice(&b.vmas[..b.len]);
                let keep = if all.len() <= LEAF_MAX { all.len() } else { all.len() / 2 };
                let mut b2 = Leaf::empty();
                a.len = 0;
                for (j, v) in all.iter().enumerate() {
                    if j < keep {
                        a.insert_at(j, *v);
                    } else {
                        b2.insert_at(j - keep, *v);
                    }
                }
                self.nodes[left as usize] = Node::Leaf(a);
                self.nodes[right as usize] = Node::Leaf(b2);
                keep == all.len()
            }
            (Node::Internal(mut a), Node::Internal(b)) => {
                let mut all: Vec<(u32, Summary)> = (0..a.len)
                    .map(|j| {
                        (a.children[j], Summary { min_start: a.mins[j], max_end: a.pivots[j], max_gap: a.gaps[j] })
                    })
                    .collect();
                all.extend((0..b.len).map(|j| {
                    (b.children[j], Summary { min_start: b.mins[j], max_end: b.pivots[j], max_gap: b.gaps[j] })
                }));
                let keep = if all.len() <= NODE_MAX { all.len() } else { all.len() / 2 };
                let mut b2 = Internal::empty();
                a.len = 0;
                for (j, &(ch, s)) in all.iter().enumerate() {
                    if j < keep {
                        a.insert_at(j, ch, s);
                    } else {
                        b2.insert_at(j - keep, ch, s);
                    }
                }
                self.nodes[left as usize] = Node::Internal(a);
                self.nodes[right as usize] = Node::Internal(b2);
                keep == all.len()
            }
            _ => unreachable!("siblings are at the same depth"),
        };
        let s_left = self.summary(left);
        if merged {
            self.free.push(right);
            let Node::Internal(n) = &mut self.nodes[p as usize] else { unreachable!() };
            n.remove_at(r);
            n.set(l, left, s_left);
        } else {
            let s_right = self.summary(right);
            let Node::Internal(n) = &mut self.nodes[p as usize] else { unreachable!() };
            n.set(l, left, s_left);
            n.set(r, right, s_right);
        }
    }

    /// Rightmost VMA of a subtree.
    fn last_of(&self, mut i: u32) -> Vma {
        loop {
            match &self.nodes[i as usize] {
                Node::Leaf(l) => return l.vmas[l.len - 1],
                Node::Internal(n) => i = n.children[n.len - 1],
            }
        }
    }

    fn last_before_in(&self, i: u32, addr: u64) -> Option<Vma> {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => l.vmas[..l.len].iter().take_while(|v| v.end <= addr).last().copied(),
            Node::Internal(n) => {
                // Children wholly ending at or below addr: the answer is in
                // the first child that does not, or else the one before it.
                let c = n.pivots[..n.len].iter().take_while(|&&p| p <= addr).count();
                if c < n.len {
                    if let Some(v) = self.last_before_in(n.children[c], addr) {
                        return Some(v);
                    }
                }
                (c > 0).then(|| self.last_of(n.children[c - 1]))
            }
        }
    }

    fn collect(&self, i: u32, lo: u64, hi: u64, out: &mut Vec<Vma>) {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => out.extend(l.vmas[..l.len].iter().filter(|v| v.end > lo && v.start < hi)),
            Node::Internal(n) => {
                for j in 0..n.len {
                    if n.pivots[j] > lo && n.mins[j] < hi {
                        self.collect(n.children[j], lo, hi, out);
                    }
                }
            }
        }
    }

    fn gap_in(&self, i: u32, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => {
                let v = &l.vmas[..l.len];
                let fit = |j: usize| fit_gap(v[j - 1].end, v[j].start, len, low, high, top_down);
                if top_down {
                    (1..l.len).rev().take_while(|&j| v[j].start > low).find_map(fit)
                } else {
                    (1..l.len).take_while(|&j| v[j - 1].end < high).find_map(fit)
                }
            }
            Node::Internal(n) => {
                let inside = |j: usize| {
                    (n.gaps[j] >= len && n.pivots[j] > low && n.mins[j] < high)
                        .then(|| self.gap_in(n.children[j], len, low, high, top_down))
                        .flatten()
                };
                let between = |j: usize| fit_gap(n.pivots[j], n.mins[j + 1], len, low, high, top_down);
                if top_down {
                    for j in (0..n.len).rev() {
                        if j + 1 < n.len {
                            if n.mins[j + 1] <= low {
                                return None;
                            }
                            if let Some(a) = between(j) {
                                return Some(a);
                            }
                        }
                        if let Some(a) = inside(j) {
                            return Some(a);
                        }
                    }
                } else {
                    for j in 0..n.len {
                        if n.mins[j] >= high {
                            return None;
                        }
                        if let Some(a) = inside(j) {
                            return Some(a);
                        }
                        if j + 1 < n.len {
                            if let Some(a) = between(j) {
                                return Some(a);
                            }
                        }
                    }
                }
                None
            }
        }
    }

    /// Depth of every leaf (all equal), checking fill, order and summaries.
    fn check_node(&self, i: u32, is_root: bool, depth: u32, leaf_depth: &mut Option<u32>) -> Result<Summary, String> {
        match &self.nodes[i as usize] {
            Node::Leaf(l) => {
                if l.len == 0 || l.len > LEAF_MAX || (!is_root && l.len < LEAF_MIN) {
                    return Err(format!("maple: leaf holds {} entries", l.len));
                }
                for j in 0..l.len {
                    if l.ends[j] != l.vmas[j].end || (j > 0 && l.vmas[j - 1].end > l.vmas[j].start) {
                        return Err(format!("maple: leaf entry {j} out of order or stale end"));
                    }
                }
                if *leaf_depth.get_or_insert(depth) != depth {
                    return Err("maple: leaves at different depths".into());
                }
                Ok(l.summary())
            }
            Node::Internal(n) => {
                if n.len == 0 || n.len > NODE_MAX || (!is_root && n.len < NODE_MIN) || (is_root && n.len < 2) {
                    return Err(format!("maple: internal node holds {} children", n.len));
                }
                for j in 0..n.len {
                    let s = self.check_node(n.children[j], false, depth + 1, leaf_depth)?;
                    let kept = Summary { min_start: n.mins[j], max_end: n.pivots[j], max_gap: n.gaps[j] };
                    if s != kept {
                        return Err(format!("maple: stale pivot/gap for child {j}: kept {kept:?}, real {s:?}"));
                    }
                    if j > 0 && n.pivots[j - 1] > n.mins[j] {
                        return Err("maple: pivots out of order".into());
                    }
                }
                Ok(n.summary())
            }
        }
    }
}

impl VmaIndex for MapleIndex {
    fn name(&self) -> &'static str {
        "maple"
    }
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn find_ref(&mut self, addr: u64) -> Option<&Vma> {
        if self.root == NIL {
            return None;
        }
        let mut i = self.root;
        loop {
            // Iterators bounded by `len` (no slicing), so the scans carry no
            // bounds checks of their own.
            match self.nodes.get(i as usize)? {
                Node::Internal(n) => {
                    let c = n.pivots.iter().take(n.len).take_while(|&&p| p <= addr).count();
                    if c == n.len {
                        return None;
                    }
                    i = *n.children.get(c)?;
                }
                Node::Leaf(l) => {
                    let j = l.ends.iter().take(l.len).take_while(|&&e| e <= addr).count();
                    return if j < l.len { l.vmas.get(j) } else { None };
                }
            }
        }
    }
    fn stats(&self) -> super::IndexStats {
        // Every lookup inside the tree descends root to leaf, and every leaf
        // is as deep as the others: the height is the count, and counting
        // would cost the fault path an increment per level.
        let mut height = 0;
        let mut i = self.root;
        while let Some(node) = self.nodes.get(i as usize).filter(|_| i != NIL) {
            height += 1;
            match node {
                Node::Internal(n) => i = n.children[0],
                Node::Leaf(_) => break,
            }
        }
        super::IndexStats { nodes_per_lookup: Some(height), ..Default::default() }
    }
    fn last_before(&self, addr: u64) -> Option<Vma> {
        if self.root == NIL {
            None
        } else {
            self.last_before_in(self.root, addr)
        }
    }
    fn insert(&mut self, vma: Vma) {
        self.len += 1;
        if self.root == NIL {
            let mut leaf = Leaf::empty();
            leaf.insert_at(0, vma);
            self.root = self.alloc(Node::Leaf(leaf));
            return;
        }
        if let Some(sibling) = self.insert_below(self.root, vma) {
            let mut top = Internal::empty();
            top.insert_at(0, self.root, self.summary(self.root));
            top.insert_at(1, sibling, self.summary(sibling));
            self.root = self.alloc(Node::Internal(top));
        }
    }
    fn remove(&mut self, start: u64) -> Option<Vma> {
        if self.root == NIL {
            return None;
        }
        let removed = self.remove_below(self.root, start)?;
        self.len -= 1;
        // Shrink the root: an internal node with one child, or an empty leaf.
        match &self.nodes[self.root as usize] {
            Node::Internal(n) if n.len == 1 => {
                let child = n.children[0];
                self.free.push(self.root);
                self.root = child;
            }
            Node::Leaf(l) if l.len == 0 => {
                self.free.push(self.root);
                self.root = NIL;
            }
            _ => {}
        }
        Some(removed)
    }
    fn replace(&mut self, old_start: u64, vma: Vma) {
        // Same range (flags or anon_vma changed): patch the leaf in place;
        // no pivot or gap above it changes.
        if vma.start == old_start && self.root != NIL {
            let mut i = self.root;
            loop {
                match &mut self.nodes[i as usize] {
                    Node::Internal(n) => i = n.children[n.child_for(old_start)],
                    Node::Leaf(l) => {
                        let at = l.vmas[..l.len].partition_point(|v| v.start < old_start);
                        if at < l.len && l.vmas[at].start == old_start && l.vmas[at].end == vma.end {
                            l.vmas[at] = vma;
                            return;
                        }
                        break;
                    }
                }
            }
        }
        self.remove(old_start);
        self.insert(vma);
    }
    fn range(&self, start: u64, end: u64) -> Vec<Vma> {
        let mut out = Vec::new();
        if self.root != NIL {
            self.collect(self.root, start, end, &mut out);
        }
        out
    }
    fn find_gap(&self, len: u64, low: u64, high: u64, top_down: bool) -> Option<u64> {
        if self.root == NIL {
            return fit_gap(0, u64::MAX, len, low, high, top_down);
        }
        let s = self.summary(self.root);
        let below = || fit_gap(0, s.min_start, len, low, high, top_down);
        let above = || fit_gap(s.max_end, u64::MAX, len, low, high, top_down);
        let inner = || {
            if s.max_gap >= len {
                self.gap_in(self.root, len, low, high, top_down)
            } else {
                None
            }
        };
        if top_down {
            above().or_else(inner).or_else(below)
        } else {
            below().or_else(inner).or_else(above)
        }
    }
    fn check(&self) -> Result<(), String> {
        if self.root == NIL {
            return if self.len == 0 { Ok(()) } else { Err("maple: empty tree with len > 0".into()) };
        }
        self.check_node(self.root, true, 0, &mut None)?;
        let count = self.range(0, u64::MAX).len();
        if count != self.len {
            return Err(format!("maple: {count} entries reachable, len says {}", self.len));
        }
        Ok(())
    }
}
