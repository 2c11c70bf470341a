//! Kernel allocator throughput and teardown cost, in the core.
//!
//!     cargo bench -p vmsim-core --bench kalloc

use std::time::Instant;
use vmsim_core::fault::Access;
use vmsim_core::kalloc::Site;
use vmsim_core::kernel::Kernel;
use vmsim_core::{MmapRequest, Ops, Prot, SimConfig, Simulator};

fn pairs_per_sec(n: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f(); // warm up: slabs and free lists in place
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let mut k = Kernel::new(262_144).unwrap();
    for size in [64u64, 512, 4096] {
        let rate = pairs_per_sec(20_000_000, || {
            let p = k.kmalloc(size, Site::Kmalloc(size)).unwrap();
            k.kfree(p).unwrap();
        });
        println!("kmalloc({size})/kfree pairs per second: {:.1} M", rate / 1e6);
    }
    // Many objects live at once: the partial-slab path, not one hot object.
    let mut live = Vec::with_capacity(4096);
    let rate = pairs_per_sec(2_000, || {
        for _ in 0..4096 {
            live.push(k.kmalloc(128, Site::Kmalloc(128)).unwrap());
        }
        for p in live.drain(..) {
            k.kfree(p).unwrap();
        }
    }) * 4096.0;
    println!("kmalloc(128) x4096 then kfree x4096, pairs per second: {:.1} M", rate / 1e6);
    for order in [0usize, 3] {
        let rate = pairs_per_sec(10_000_000, || {
            let p = k.alloc_pages(order).unwrap();
            k.free_pages(p, order).unwrap();
        });
        println!("alloc_pages({order})/free_pages pairs per second: {:.1} M", rate / 1e6);
    }

    // Teardown of a 1 GiB resident address space (262 144 pages).
    let mut best = f64::MAX;
    for _ in 0..5 {
        let sim = Simulator::new(SimConfig { memory: 1100 << 20, ..SimConfig::default() }).unwrap();
        let pid = sim.spawn(vmsim_core::LayoutKind::Default).unwrap();
        let a = sim.mmap(pid, MmapRequest::anon(1 << 30, Prot::parse("rw").unwrap())).unwrap();
        let addrs: Vec<u64> = (0..262_144u64).map(|i| a + i * 4096).collect();
        let mut out = vec![0u8; addrs.len()];
        sim.access_batch(pid, &addrs, Ops::Same(Access::Write), &mut out).unwrap();
        let t = Instant::now();
        sim.exit(pid).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        let c = sim.counters();
        assert_eq!(c.frames_free, c.frames_total);
    }
    println!("teardown of 262144 resident pages: {:.1} ms", best * 1e3);
}
