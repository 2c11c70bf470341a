//! The fault and hit paths in the core, without Python, on criterion:
//! anonymous write faults, zero-page read faults, COW copies after fork and
//! hits, each over 262,144 fresh pages in one batch (as `benches/anchors.py`
//! runs them against the bare prototype); and write faults in random order
//! over 10 or 10,000 VMAs for every VMA index.
//!
//!     cargo bench -p vmsim-core --bench faults [-- --quick] [FILTER]

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use vmsim_core::fault::Access;
use vmsim_core::{IndexKind, LayoutKind, MmConfig, MmapRequest, Ops, Prot, SimConfig, Simulator};

const PAGE: u64 = 4096;
const PAGES: u64 = 262_144;

/// A simulator with `pages` mapped (at one fixed address) and their addresses.
fn mapped(pages: u64, index: IndexKind, vmas: u64) -> (Simulator, u32, Vec<u64>) {
    let sim = Simulator::new(SimConfig {
        memory: (2 * pages + pages / 128 + 4096) * PAGE, // room for COW copies
        mm: MmConfig { index, ..MmConfig::default() },
        ..SimConfig::default()
    })
    .expect("a simulator");
    let pid = sim.spawn(LayoutKind::Empty).expect("a process");
    let per = pages / vmas;
    let mut addrs = Vec::with_capacity(pages as usize);
    for i in 0..vmas {
        // A one-page hole after each VMA keeps them apart.
        let start = 0x7f00_0000_0000 + i * (per + 1) * PAGE;
        let req = MmapRequest { addr: start, fixed: true, ..MmapRequest::anon(per * PAGE, Prot::READ_WRITE) };
        sim.mmap(pid, req).expect("mmap");
        addrs.extend((0..per).map(|j| start + j * PAGE));
    }
    (sim, pid, addrs)
}

fn run(sim: &Simulator, pid: u32, addrs: &[u64], op: Access) -> u8 {
    let mut out = vec![0u8; addrs.len()];
    sim.access_batch(pid, addrs, Ops::Same(op), &mut out).expect("a batch");
    out[0]
}

fn fault_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("fault_path");
    g.throughput(Throughput::Elements(PAGES));
    for (name, op) in [("write", Access::Write), ("read", Access::Read)] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || mapped(PAGES, IndexKind::DEFAULT, 1),
                |(sim, pid, addrs)| black_box(run(sim, *pid, addrs, op)),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("cow", |b| {
        b.iter_batched_ref(
            || {
                let (sim, pid, addrs) = mapped(PAGES, IndexKind::DEFAULT, 1);
                run(&sim, pid, &addrs, Access::Write);
                let child = sim.fork(pid).expect("fork");
                (sim, child, addrs)
            },
            |(sim, child, addrs)| black_box(run(sim, *child, addrs, Access::Write)),
            BatchSize::PerIteration,
        )
    });
    let (sim, pid, addrs) = mapped(PAGES, IndexKind::DEFAULT, 1);
    run(&sim, pid, &addrs, Access::Write);
    g.bench_function("hit", |b| b.iter(|| black_box(run(&sim, pid, &addrs, Access::Write))));
    g.finish();
}

/// Write faults in random order over many VMAs: the VMA lookup in the fault
/// path. (Inputs are built and dropped outside the timing.)
fn by_index(c: &mut Criterion) {
    let mut g = c.benchmark_group("faults_by_index");
    let pages = 65_536;
    g.throughput(Throughput::Elements(pages));
    for kind in IndexKind::ALL {
        for vmas in [10, 10_000] {
            g.bench_with_input(BenchmarkId::new(kind.name(), vmas), &vmas, |b, &vmas| {
                b.iter_batched_ref(
                    || {
                        let (sim, pid, mut addrs) = mapped(pages, kind, vmas);
                        vmsim_core::testing::XorShift::new(99).shuffle(&mut addrs);
                        (sim, pid, addrs)
                    },
                    |(sim, pid, addrs)| black_box(run(sim, *pid, addrs, Access::Write)),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = fault_paths, by_index
}
criterion_main!(benches);
