//! Exact LRU: every access (hits included) refreshes the page's recency, so
//! the least recently used page is evicted. The pages sit on an intrusive
//! doubly linked list (oldest at the head) in one vector, with a hash map
//! from page to node: an access, a new page and an eviction are each O(1).
//! A reference point for the cheaper approximations (clock, lru2q).

use super::{PageKey, Policy, Probe};
use rustc_hash::FxHashMap as HashMap;

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Node {
    key: PageKey,
    prev: u32,
    next: u32,
}

pub struct Lru {
    node_of: HashMap<PageKey, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Least recently used.
    head: u32,
    /// Most recently used.
    tail: u32,
}

impl Default for Lru {
    fn default() -> Self {
        Lru { node_of: HashMap::default(), nodes: Vec::new(), free: Vec::new(), head: NIL, tail: NIL }
    }
}

impl Lru {
    fn unlink(&mut self, n: u32) {
        let Node { prev, next, .. } = self.nodes[n as usize];
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            q => self.nodes[q as usize].prev = prev,
        }
    }

    fn push_back(&mut self, n: u32) {
        self.nodes[n as usize].prev = self.tail;
        self.nodes[n as usize].next = NIL;
        match self.tail {
            NIL => self.head = n,
            t => self.nodes[t as usize].next = n,
        }
        self.tail = n;
    }

    /// The page becomes the most recently used.
    fn touch(&mut self, key: PageKey) {
        if let Some(&n) = self.node_of.get(&key) {
            if n != self.tail {
                self.unlink(n);
                self.push_back(n);
            }
            return;
        }
        let node = Node { key, prev: NIL, next: NIL };
        let n = match self.free.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.node_of.insert(key, n);
        self.push_back(n);
    }

    fn remove(&mut self, n: u32) {
        self.unlink(n);
        self.free.push(n);
    }
}

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn mapped(&mut self, key: PageKey) {
        self.touch(key);
    }
    fn unmapped(&mut self, key: PageKey) {
        if let Some(n) = self.node_of.remove(&key) {
            self.remove(n);
        }
    }
    fn tracked(&self) -> usize {
        self.node_of.len()
    }
    fn wants_every_access(&self) -> bool {
        true
    }
    #[inline]
    fn accessed(&mut self, key: PageKey) {
        if let Some(&n) = self.node_of.get(&key) {
            if n != self.tail {
                self.unlink(n);
                self.push_back(n);
            }
        }
    }
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey> {
        while self.head != NIL {
            let n = self.head;
            let key = self.nodes[n as usize].key;
            self.node_of.remove(&key);
            self.remove(n);
            if probe(key) != Probe::Gone {
                return Some(key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{replay, TEXTBOOK};
    use super::super::PolicyKind;

    #[test]
    fn textbook_string() {
        assert_eq!(replay(PolicyKind::Lru, 3, &TEXTBOOK).0, 12);
    }

    #[test]
    fn a_hit_refreshes_recency() {
        let (_, evicted) = replay(PolicyKind::Lru, 2, &[1, 2, 1, 3, 4]);
        assert_eq!(evicted, [2, 1], "1 was used after 2");
    }

    #[test]
    fn misses_never_rise_with_memory() {
        // LRU is a stack algorithm: no Belady anomaly.
        let refs: Vec<u64> = (0..400u64).map(|i| (i * i + 3 * i) % 23).collect();
        let misses: Vec<u64> = (1..24).map(|f| replay(PolicyKind::Lru, f, &refs).0).collect();
        assert!(misses.windows(2).all(|w| w[0] >= w[1]), "{misses:?}");
    }
}
