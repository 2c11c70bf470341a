//! Micro-benchmarks of the VMA index structures on criterion: lookup
//! (random and locality-heavy), gap search, remove and insert at 10..100,000
//! VMAs. Each iteration is one operation.
//!
//!     cargo bench -p vmsim-core --bench vma_index [-- --quick]
//!
//! Criterion keeps each estimate in target/criterion/vma_<op>/<index>/<vmas>/;
//! benches/vma_indexes.py turns them into a table and a plot.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};
use vmsim_core::testing::XorShift as Rng;
use vmsim_core::vma::{Prot, VmFlags, Vma};
use vmsim_core::vma_index::{IndexKind, VmaIndex};

const PAGE: u64 = 4096;
/// Every VMA is one page with a one-page hole after it, above this base;
/// one big hole (the only one that fits a gap search) sits below it.
const BASE: u64 = 0x1000_0000;
const SIZES: [u64; 5] = [10, 100, 1000, 10_000, 100_000];

fn vma(i: u64) -> Vma {
    let start = BASE + i * 2 * PAGE;
    Vma::anon(start, start + PAGE, Prot::READ_WRITE, VmFlags::default())
}

fn build(kind: IndexKind, n: u64) -> Box<dyn VmaIndex> {
    let mut idx = kind.build();
    // Insert in a scrambled order so trees see a realistic mix.
    let mut order: Vec<u64> = (0..n).collect();
    Rng::new(42).shuffle(&mut order);
    for i in order {
        idx.insert(vma(i));
    }
    idx
}

/// `f(index, vmas)` for every index and size, as one benchmark group.
fn each(c: &mut Criterion, op: &str, mut f: impl FnMut(&mut criterion::Bencher<'_>, IndexKind, u64)) {
    let mut g = c.benchmark_group(format!("vma_{op}"));
    for kind in IndexKind::ALL {
        for n in SIZES {
            g.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, &n| f(b, kind, n));
        }
    }
    g.finish();
}

fn lookups(c: &mut Criterion) {
    each(c, "lookup_random", |b, kind, n| {
        let mut idx = build(kind, n);
        let mut rng = Rng::new(7);
        let addrs: Vec<u64> = (0..4096).map(|_| BASE + rng.below(n * 2 * PAGE)).collect();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(idx.find(addrs[i & 4095]))
        });
    });
    // Locality: nine lookups in ten hit the same four VMAs.
    each(c, "lookup_local", |b, kind, n| {
        let mut idx = build(kind, n);
        let mut rng = Rng::new(7);
        let hot: Vec<u64> = (0..4).map(|j| vma(j * n / 4).start + 16).collect();
        let addrs: Vec<u64> =
            (0..4096).map(|i| if i % 10 == 9 { BASE + rng.below(n * 2 * PAGE) } else { hot[i % 4] }).collect();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(idx.find(addrs[i & 4095]))
        });
    });
}

fn gaps(c: &mut Criterion) {
    // The only hole that fits lies below all the VMAs.
    each(c, "gap_search", |b, kind, n| {
        let idx = build(kind, n);
        b.iter(|| black_box(idx.find_gap(3 * PAGE, PAGE, BASE + n * 2 * PAGE + PAGE, true)));
    });
}

/// Remove a round of distinct VMAs in a scrambled order, then insert them
/// back; one of the two is timed.
fn updates(c: &mut Criterion) {
    for timed_remove in [true, false] {
        each(c, if timed_remove { "remove" } else { "insert" }, |b, kind, n| {
            let mut idx = build(kind, n);
            let mut victims: Vec<u64> = (0..n).collect();
            Rng::new(9).shuffle(&mut victims);
            victims.truncate(1000);
            b.iter_custom(|iters| {
                let (mut spent, mut left) = (Duration::ZERO, iters as usize);
                while left > 0 {
                    let round = &victims[..left.min(victims.len())];
                    left -= round.len();
                    let t = Instant::now();
                    for &v in round {
                        black_box(idx.remove(vma(v).start));
                    }
                    let removed = t.elapsed();
                    let t = Instant::now();
                    for &v in round {
                        idx.insert(vma(v));
                    }
                    spent += if timed_remove { removed } else { t.elapsed() };
                }
                spent
            });
            idx.check().expect("index still valid after the benchmark");
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_millis(600));
    targets = lookups, gaps, updates
}
criterion_main!(benches);
