//! End-to-end fault throughput in the core, without Python: write faults on
//! every page of N mappings, touched once each in random order.
//!
//!     cargo bench -p vmsim-core --bench faults [-- INDEX VMAS]

use std::time::Instant;
use vmsim_core::fault::Access;
use vmsim_core::{IndexKind, MmConfig, MmapRequest, Ops, Prot, SimConfig, Simulator};

const PAGE: u64 = 4096;
const TOTAL_PAGES: u64 = 655_360;

fn run(kind: IndexKind, nvmas: u64) -> f64 {
    let per = TOTAL_PAGES / nvmas;
    let sim = Simulator::new(SimConfig {
        memory: 4 << 30,
        mm: MmConfig { index: kind, ..MmConfig::default() },
        ..SimConfig::default()
    })
    .unwrap();
    let pid = sim.spawn(vmsim_core::LayoutKind::Empty).unwrap();
    let mut pages = Vec::new();
    for i in 0..nvmas {
        let start = 0x1000_0000 + i * (per + 1) * PAGE;
        let req = MmapRequest { addr: start, fixed: true, ..MmapRequest::anon(per * PAGE, Prot::parse("rw").unwrap()) };
        sim.mmap(pid, req).unwrap();
        pages.extend((0..per).map(|j| start + j * PAGE));
    }
    vmsim_core::testing::XorShift::new(99).shuffle(&mut pages);
    let mut out = vec![0u8; pages.len()];
    let t = Instant::now();
    sim.access_batch(pid, &pages, Ops::Same(Access::Write), &mut out).unwrap();
    let dt = t.elapsed().as_secs_f64();
    sim.exit(pid).unwrap();
    pages.len() as f64 / dt
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let kinds: Vec<IndexKind> = match args.first() {
        Some(name) => vec![IndexKind::parse(name).unwrap()],
        None => IndexKind::ALL.to_vec(),
    };
    let counts: Vec<u64> = match args.get(1) {
        Some(n) => vec![n.parse().unwrap()],
        None => vec![10, 10_000],
    };
    println!("index,vmas,faults_per_sec");
    for kind in kinds {
        for &n in &counts {
            let best = (0..7).map(|_| run(kind, n)).fold(0.0, f64::max);
            println!("{},{n},{best:.0}", kind.name());
        }
    }
}
