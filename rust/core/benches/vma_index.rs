//! Micro-benchmarks of the VMA index structures: lookup (random and
//! locality-heavy), insert, remove and gap search at 10..100 000 VMAs.
//!
//!     cargo bench -p vmsim-core --bench vma_index [-- --quick]
//!
//! Prints CSV rows `index,vmas,op,ns_per_op` (benches/vma_indexes.py turns
//! them into a table and a plot).

use std::hint::black_box;
use std::time::Instant;
use vmsim_core::vma::{Prot, VmFlags, Vma};
use vmsim_core::vma_index::{IndexKind, VmaIndex};

const PAGE: u64 = 4096;
/// Every VMA is one page with a one-page hole after it, above this base;
/// one big hole (the only one that fits a gap search) sits below it.
const BASE: u64 = 0x1000_0000;

use vmsim_core::testing::XorShift as Rng;

fn vma(i: u64) -> Vma {
    let start = BASE + i * 2 * PAGE;
    Vma::anon(start, start + PAGE, Prot::parse("rw").unwrap(), VmFlags::default())
}

fn build(kind: IndexKind, n: u64) -> Box<dyn VmaIndex> {
    let mut idx = kind.build();
    // Insert in a scrambled order so trees see a realistic mix.
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(42);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    for i in order {
        idx.insert(vma(i));
    }
    idx
}

/// ns per call of `f`, over enough calls to take ~`budget_ms`.
fn time_per_op(budget_ms: u64, mut f: impl FnMut(u64)) -> f64 {
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for i in 0..iters {
            f(i);
        }
        let el = t.elapsed();
        if el.as_millis() as u64 >= budget_ms || iters >= 1 << 26 {
            return el.as_nanos() as f64 / iters as f64;
        }
        iters *= 4;
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = if quick { 20 } else { 150 };
    let sizes: &[u64] = if quick { &[10, 1000, 10_000] } else { &[10, 100, 1000, 10_000, 100_000] };
    println!("index,vmas,op,ns_per_op");
    for kind in IndexKind::ALL {
        for &n in sizes {
            let mut idx = build(kind, n);
            let span = n * 2 * PAGE;
            // Random lookups over the whole mapped range.
            let mut rng = Rng::new(7);
            let addrs: Vec<u64> = (0..4096).map(|_| BASE + rng.next_u64() % span).collect();
            let ns = time_per_op(budget, |i| {
                black_box(idx.find(addrs[(i & 4095) as usize]));
            });
            println!("{},{n},lookup_random,{ns:.2}", kind.name());
            // Locality: nine lookups in ten hit the same four VMAs.
            let hot: Vec<u64> = (0..4).map(|j| vma(j * n / 4).start + 16).collect();
            let local: Vec<u64> = (0..4096).map(|i| if i % 10 == 9 { addrs[i] } else { hot[i % 4] }).collect();
            let ns = time_per_op(budget, |i| {
                black_box(idx.find(local[(i & 4095) as usize]));
            });
            println!("{},{n},lookup_local,{ns:.2}", kind.name());
            // Gap search: the only hole that fits lies below all the VMAs.
            let ns = time_per_op(budget, |_| {
                black_box(idx.find_gap(3 * PAGE, PAGE, BASE + span + PAGE, true));
            });
            println!("{},{n},gap_search,{ns:.2}", kind.name());
            // Remove then re-insert a rotating set of VMAs (each call one op).
            let k = n.min(1000);
            // Distinct victims in a scrambled order (no list- or shift-friendly pattern).
            let mut seen = std::collections::HashSet::new();
            let victims: Vec<u64> = (0..k).map(|_| rng.next_u64() % n).filter(|v| seen.insert(*v)).collect();
            let kv = victims.len() as u64;
            let t = Instant::now();
            let mut rounds = 0u64;
            let (mut ins_ns, mut rem_ns) = (0u128, 0u128);
            while t.elapsed().as_millis() < budget as u128 || rounds == 0 {
                let t1 = Instant::now();
                for &v in &victims {
                    black_box(idx.remove(vma(v).start));
                }
                rem_ns += t1.elapsed().as_nanos();
                let t2 = Instant::now();
                for &v in &victims {
                    idx.insert(vma(v));
                }
                ins_ns += t2.elapsed().as_nanos();
                rounds += 1;
            }
            println!("{},{n},remove,{:.2}", kind.name(), rem_ns as f64 / (rounds * kv) as f64);
            println!("{},{n},insert,{:.2}", kind.name(), ins_ns as f64 / (rounds * kv) as f64);
            idx.check().expect("index still valid after the benchmark");
        }
    }
}
