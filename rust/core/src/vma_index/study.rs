//! One VMA index on its own, timed operation by operation (`vmsim bench
//! vma`): inserts, random lookups, gap searches and removes over `vmas`
//! one-page VMAs, with what the index counted of its lookups.
//!
//! Every VMA is one page with a one-page hole after it, so none merge and
//! the only gap of two pages is the one below them all: a top-down gap
//! search has to get past every small hole, as a search in a fragmented
//! address space does.

use super::{IndexKind, VmaIndex};
use crate::rng::XorShift;
use crate::vma::{Prot, VmFlags, Vma};
use std::hint::black_box;
use std::time::Instant;

const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;

/// ns per operation, and the lookups' counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Study {
    pub insert_ns: f64,
    pub lookup_ns: f64,
    pub gap_ns: f64,
    pub remove_ns: f64,
    /// Nodes visited per lookup (None where the index does not show them).
    pub nodes_per_lookup: Option<f64>,
    /// The share of lookups its cache answered (None without a cache).
    pub cache_hit_rate: Option<f64>,
}

fn vma(i: u64) -> Vma {
    let start = BASE + i * 2 * PAGE;
    Vma::anon(start, start + PAGE, Prot::READ_WRITE, VmFlags::default())
}

/// Time each operation on a fresh `kind` index of `vmas` VMAs: the inserts
/// (in a scrambled order), `lookups` lookups at random addresses among them,
/// gap searches, then the removes (scrambled again).
pub fn measure(kind: IndexKind, vmas: u64, lookups: u64, seed: u64) -> Study {
    let mut rng = XorShift::new(seed);
    let mut order: Vec<u64> = (0..vmas).collect();
    rng.shuffle(&mut order);
    let mut idx: Box<dyn VmaIndex> = kind.build();
    let t = Instant::now();
    for &i in &order {
        idx.insert(vma(i));
    }
    let insert_ns = per(t, vmas);

    let addrs: Vec<u64> = (0..lookups).map(|_| BASE + rng.below(vmas * 2 * PAGE)).collect();
    let before = idx.stats();
    let t = Instant::now();
    for &a in &addrs {
        black_box(idx.find_ref(a).map(|v| v.start));
    }
    let lookup_ns = per(t, lookups);
    let after = idx.stats();
    let rate = |a: Option<u64>, b: Option<u64>| Some((a? - b?) as f64 / lookups.max(1) as f64);

    let searches = (lookups / 100).clamp(10, 1000);
    let t = Instant::now();
    for _ in 0..searches {
        black_box(idx.find_gap(2 * PAGE, PAGE, BASE + vmas * 2 * PAGE, true));
    }
    let gap_ns = per(t, searches);

    rng.shuffle(&mut order);
    let t = Instant::now();
    for &i in &order {
        idx.remove(vma(i).start);
    }
    let remove_ns = per(t, vmas);
    debug_assert!(idx.is_empty());
    Study {
        insert_ns,
        lookup_ns,
        gap_ns,
        remove_ns,
        nodes_per_lookup: rate(after.nodes_visited, before.nodes_visited).or(after.nodes_per_lookup.map(|n| n as f64)),
        cache_hit_rate: rate(after.cache_hits, before.cache_hits),
    }
}

fn per(t: Instant, n: u64) -> f64 {
    t.elapsed().as_nanos() as f64 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_is_measured_and_counts_what_it_can() {
        for kind in IndexKind::ALL {
            let s = measure(kind, 500, 2000, 1);
            assert!(s.insert_ns > 0.0 && s.lookup_ns > 0.0 && s.gap_ns > 0.0 && s.remove_ns > 0.0, "{kind:?}");
            match kind {
                // A list walk visits half the list on average, past the mmap_cache.
                IndexKind::List => assert!(s.nodes_per_lookup.unwrap() > 100.0 && s.cache_hit_rate.unwrap() < 0.1),
                // A tree's depth: about log2(500) for the rbtree, two or three levels for the maple tree.
                IndexKind::RbTree => assert!((5.0..20.0).contains(&s.nodes_per_lookup.unwrap())),
                IndexKind::Maple => assert!((1.0..5.0).contains(&s.nodes_per_lookup.unwrap())),
                IndexKind::BTree | IndexKind::SortedVec => {
                    assert_eq!((s.nodes_per_lookup, s.cache_hit_rate), (None, None))
                }
            }
        }
    }

    #[test]
    fn the_rbtree_vmacache_answers_repeated_lookups() {
        let mut idx = IndexKind::RbTree.build();
        idx.insert(vma(0));
        idx.insert(vma(1));
        for _ in 0..10 {
            idx.find_ref(BASE + 8);
        }
        assert_eq!(idx.stats().cache_hits, Some(9), "the first lookup fills the cache");
    }
}
