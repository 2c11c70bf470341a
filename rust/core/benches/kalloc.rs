//! Kernel allocator throughput and teardown cost in the core, on criterion.
//!
//!     cargo bench -p vmsim-core --bench kalloc [-- --quick]

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use vmsim_core::fault::Access;
use vmsim_core::kalloc::Site;
use vmsim_core::kernel::Kernel;
use vmsim_core::{LayoutKind, MmapRequest, Ops, Prot, SimConfig, Simulator};

fn allocators(c: &mut Criterion) {
    let mut k = Kernel::new(262_144).expect("a kernel");
    let mut g = c.benchmark_group("kalloc_pair");
    for size in [64u64, 512, 4096] {
        g.bench_with_input(BenchmarkId::new("kmalloc_kfree", size), &size, |b, &size| {
            b.iter(|| {
                let p = k.kmalloc(size, Site::Kmalloc(size)).expect("kmalloc");
                k.kfree(black_box(p)).expect("kfree");
            })
        });
    }
    for order in [0usize, 3] {
        g.bench_with_input(BenchmarkId::new("alloc_pages_free_pages", order), &order, |b, &order| {
            b.iter(|| {
                let p = k.alloc_pages(order).expect("alloc_pages");
                k.free_pages(black_box(p), order).expect("free_pages");
            })
        });
    }
    g.finish();
    // Many objects live at once: the partial-slab path, not one hot object.
    let mut g = c.benchmark_group("kalloc_many_live");
    g.throughput(Throughput::Elements(4096));
    let mut live = Vec::with_capacity(4096);
    g.bench_function("kmalloc128_x4096_then_kfree", |b| {
        b.iter(|| {
            for _ in 0..4096 {
                live.push(k.kmalloc(128, Site::Kmalloc(128)).expect("kmalloc"));
            }
            for p in live.drain(..) {
                k.kfree(p).expect("kfree");
            }
        })
    });
    g.finish();
}

/// exit of a process with 262,144 resident pages: everything given back.
fn teardown(c: &mut Criterion) {
    let mut g = c.benchmark_group("teardown");
    g.throughput(Throughput::Elements(262_144));
    g.bench_function("exit_262144_resident_pages", |b| {
        b.iter_batched(
            // The exited simulator is returned, so dropping it is not timed.
            || {
                let sim = Simulator::new(SimConfig { memory: 1100 << 20, ..SimConfig::default() }).expect("sim");
                let pid = sim.spawn(LayoutKind::Default).expect("spawn");
                let a = sim.mmap(pid, MmapRequest::anon(1 << 30, Prot::READ_WRITE)).expect("mmap");
                let addrs: Vec<u64> = (0..262_144u64).map(|i| a + i * 4096).collect();
                let mut out = vec![0u8; addrs.len()];
                sim.access_batch(pid, &addrs, Ops::Same(Access::Write), &mut out).expect("faults");
                (sim, pid)
            },
            |(sim, pid)| {
                sim.exit(pid).expect("exit");
                let c = sim.counters();
                assert_eq!(c.frames_free, c.frames_total);
                sim
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = allocators, teardown
}
criterion_main!(benches);
