//! Byte-driven operation sequences for fuzzing: `run(bytes)` decodes the
//! bytes into system calls, accesses, forks, threads and exits on a small
//! simulator, and panics if anything breaks: an invariant (`check()`), a
//! frame not given back after every process exits, or a panic inside the
//! core. The cargo-fuzz target in `fuzz/` and a randomized unit test both
//! drive it.

use crate::addr::{PAGE_SIZE, TASK_SIZE};
use crate::fault::Access;
use crate::layout::LayoutKind;
use crate::mm::{Advice, MmapRequest};
use crate::reclaim::memcg::Limits;
use crate::sim::{Ops, SimConfig, Simulator};
use crate::vma::Prot;
use crate::vma_index::IndexKind;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn pick<T: Copy>(&mut self, choices: &[T]) -> Option<T> {
        Some(choices[self.byte()? as usize % choices.len()])
    }
}

const REGION: u64 = 0x1000_0000;
const PROTS: [&str; 6] = ["r", "rw", "rx", "rwx", "none", "w"];

/// An address drawn from the places where things happen.
fn address(b: &mut Bytes, brk: u64) -> Option<u64> {
    let k = b.byte()? as u64;
    Some(match b.byte()? % 8 {
        0..=3 => REGION + (k % 96) * PAGE_SIZE + (k & 7) * 8,
        4 => TASK_SIZE - (k * k * PAGE_SIZE) - 8,
        5 => brk + (k % 16) * PAGE_SIZE - 8 * PAGE_SIZE,
        6 => [0, TASK_SIZE, 0xffff_8000_0000_0000, 0x8000_0000_0000, u64::MAX, 0x7fff_f7ff_e000][k as usize % 6],
        _ => (k << 40) | (k << 12),
    })
}

/// An access either ran or found its process OOM-killed.
fn survived(r: crate::error::Result<()>) {
    if let Err(e) = r {
        assert!(matches!(e, crate::error::Error::OomKilled { .. }), "an access failed: {e}");
    }
}

/// Run one decoded sequence; panics on any broken invariant.
pub fn run(data: &[u8]) {
    let mut b = Bytes(data);
    let Some(first) = b.byte() else { return };
    let index = IndexKind::ALL[first as usize % IndexKind::ALL.len()];
    // Small memory so that out-of-memory paths are exercised too.
    let memory = [64u64 << 10, 256 << 10, 4 << 20][(first as usize >> 4) % 3];
    let mut cfg = SimConfig { memory, ..SimConfig::default() };
    cfg.mm.index = index;
    cfg.mm.max_map_count = 64;
    // Half the runs reclaim: some swap, a small resident limit, every policy.
    if first & 8 != 0 {
        cfg.swap = [0, 8, 64][(first as usize >> 2) % 3] * PAGE_SIZE;
        cfg.policy =
            Some(crate::reclaim::PolicyKind::ALL[(first as usize >> 1) % crate::reclaim::PolicyKind::ALL.len()]);
        cfg.resident_limit = [None, Some(6), Some(24)][(first as usize >> 3) % 3];
    }
    let sim = Simulator::new(cfg).expect("valid configuration");
    // Under Linux reclaim, memory cgroups too: one with a small max, one with a high.
    let mut cgroups = vec![crate::reclaim::memcg::ROOT];
    if cfg.policy.is_some_and(|p| p.is_linux()) {
        let limits = [
            Limits { max: Some(12), swap_max: Some(4), ..Limits::default() },
            Limits { high: Some(8), low: 4, ..Limits::default() },
        ];
        for (i, l) in limits.into_iter().enumerate() {
            cgroups.push(sim.cgroup_create(&format!("g{i}"), None, l).expect("a valid group"));
        }
    }
    let trace = std::env::var_os("VMSIM_FUZZ_TRACE").is_some(); // print each op and check()
    let mut pids: Vec<u32> = Vec::new();
    // Two files (one later unlinked) for file mappings, truncation and msync.
    let files = [
        sim.create_file("/fuzz/a", 16 * PAGE_SIZE).expect("a valid size"),
        sim.create_file("/fuzz/b", 3 * PAGE_SIZE + 7).expect("a valid size"),
    ];
    let mut unlinked = false;
    let _ = sim.set_fault_around_bytes([4096, 16384, 65536][first as usize % 3]);
    while let Some(op) = b.byte() {
        if pids.is_empty() || op % 23 == 0 {
            if pids.len() < 6 {
                let layout = if op & 1 == 0 { LayoutKind::Default } else { LayoutKind::Empty };
                if let Ok(pid) = sim.spawn_in(layout, cgroups[(op as usize >> 1) % cgroups.len()]) {
                    pids.push(pid);
                }
            }
            continue;
        }
        let Some(who) = b.byte() else { break };
        let pid = pids[who as usize % pids.len()];
        let brk = sim.brk(pid, None).expect("live pid");
        let len = (b.byte().unwrap_or(1) as u64 % 24) * PAGE_SIZE + if op & 0x80 != 0 { 1 } else { 0 };
        let Some(addr) = address(&mut b, brk) else {
            break;
        };
        let Some(prot) = b.pick(&PROTS) else { break };
        let prot = Prot::parse(prot).expect("valid prot");
        match op % 12 {
            0 | 1 => {
                let mut req = MmapRequest::anon(len, prot);
                req.addr = addr;
                req.fixed = op & 2 != 0;
                req.fixed_noreplace = op & 4 != 0;
                req.shared = op & 8 != 0;
                req.growsdown = op & 16 != 0;
                if op & 32 != 0 && !(unlinked && op & 64 == 0) {
                    req.file = Some((files[(op >> 6) as usize & 1], (len / PAGE_SIZE % 4) * PAGE_SIZE));
                    req.growsdown = false;
                }
                let _ = sim.mmap(pid, req);
            }
            2 => {
                let _ = sim.munmap(pid, addr, len);
            }
            3 if op & 0x80 != 0 => {
                // mremap: any flags, lengths and target the bytes give.
                let req = crate::mm::Mremap {
                    old_addr: addr,
                    old_len: len,
                    new_len: len.wrapping_mul(u64::from(op % 3) + 1) / 2 + PAGE_SIZE,
                    maymove: op & 0x40 != 0,
                    fixed: op & 0x20 != 0,
                    dontunmap: op & 0x10 != 0,
                    new_addr: addr.wrapping_add(len << 2),
                };
                let _ = sim.mremap(pid, req);
            }
            3 => {
                let _ = sim.mprotect(pid, addr, len, prot);
            }
            4 if op & 0x80 != 0 => {
                // mlock and its relatives.
                let _ = match op % 4 {
                    0 => sim.mlock(pid, addr, len, op & 0x40 != 0),
                    1 => sim.munlock(pid, addr, len),
                    2 => sim.mlockall(pid, true, op & 0x40 != 0, op & 0x20 != 0),
                    _ => sim.munlockall(pid),
                };
            }
            4 => {
                let advice = [
                    Advice::DontFork,
                    Advice::DoFork,
                    Advice::DontNeed,
                    Advice::PopulateRead,
                    Advice::PopulateWrite,
                    Advice::Normal,
                    Advice::Sequential,
                    Advice::Random,
                    Advice::WillNeed,
                    Advice::Cold,
                    Advice::Free,
                    Advice::PageOut,
                    Advice::Remove,
                ][op as usize % 13];
                let _ = sim.madvise(pid, addr, len, advice);
            }
            5 => {
                let _ = sim.brk(pid, Some(addr));
            }
            6 if pids.len() < 8 => {
                if let Ok(child) = sim.fork(pid) {
                    pids.push(child);
                }
            }
            7 if pids.len() < 8 => {
                if let Ok((tid, _)) = sim.clone_thread(pid, len) {
                    pids.push(tid);
                }
            }
            8 => {
                if op & 1 == 0 {
                    sim.exit(pid).expect("live pid exits");
                    pids.retain(|&p| p != pid);
                } else {
                    let group = sim.threads(pid).expect("live pid");
                    sim.exit_group(pid).expect("live pid exits");
                    pids.retain(|p| !group.contains(p));
                }
            }
            9 => {
                let addrs: Vec<u64> = (0..(op as u64 % 32)).map(|i| addr.wrapping_add(i * PAGE_SIZE)).collect();
                let mut out = vec![0u8; addrs.len()];
                survived(sim.access_batch(pid, &addrs, Ops::Same(Access::Write), &mut out));
            }
            10 if op & 0x40 != 0 => {
                // File operations: truncate, msync, and (once) unlink.
                match op % 3 {
                    0 => sim.file_truncate(files[1], len).expect("a file kept open"),
                    1 => {
                        let how = crate::mm::Msync { sync: op % 2 == 0, invalidate: op % 3 == 0 };
                        let _ = sim.msync(pid, addr, len, how);
                        if op % 5 == 0 {
                            let _ = sim.drop_caches(1);
                        }
                    }
                    _ if !unlinked => {
                        sim.file_unlink(files[0]).expect("open file");
                        unlinked = true;
                    }
                    _ => {}
                }
            }
            11 if op & 0x40 != 0 => {
                // Another group, or another oom_score_adj.
                if op & 0x20 != 0 {
                    sim.cgroup_move(pid, cgroups[op as usize % cgroups.len()]).expect("live pid, a group");
                } else {
                    sim.oom_score_adj(pid, Some([-1000, 0, 500][op as usize % 3])).expect("live pid");
                }
            }
            _ => {
                let op = Access::from_code(op % 3).expect("code below 3");
                survived(sim.access(pid, addr, op).map(|_| ()));
            }
        }
        // The OOM killer may have killed any of them.
        pids.retain(|&p| sim.is_alive(p));
        if trace {
            eprintln!("op {} pid {pid} addr {addr:#x} len {len:#x} prot {prot} -> {:?}", op % 12, sim.check());
        }
        if op % 5 == 0 {
            sim.check().unwrap_or_else(|e| panic!("{e}"));
        }
    }
    sim.check().unwrap_or_else(|e| panic!("{e}"));
    for pid in pids {
        let _ = sim.exit(pid);
    }
    // Close the files (the first may be unlinked already) and unlink the second.
    if !unlinked {
        sim.file_unlink(files[0]).expect("open file");
    }
    sim.file_unlink(files[1]).expect("open file");
    for f in files {
        sim.file_close(f).expect("the handle is still open");
    }
    let c = sim.counters();
    assert_eq!(c.frames_free, c.frames_total, "frames leaked after every process exited");
    assert_eq!(c.pt_pages, 0, "page-table pages leaked");
    assert!(sim.leak_check().is_empty(), "kernel allocations outlived every process");
}

#[cfg(test)]
mod tests {
    /// A short deterministic fuzz run: random byte strings through `run`
    /// (VMSIM_FUZZ_ROUNDS and VMSIM_FUZZ_SEED make it longer or different).
    #[test]
    fn random_sequences_break_nothing() {
        let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        let mut rng = crate::testing::XorShift::new(0x9e37_79b9_7f4a_7c15 ^ env("VMSIM_FUZZ_SEED", 0));
        for round in 0..env("VMSIM_FUZZ_ROUNDS", 15_000) {
            let len = 50 + round % 400;
            let data: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            super::run(&data);
        }
    }
}
