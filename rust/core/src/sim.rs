//! The simulator: physical memory and page cache (the `Kernel`), and the
//! tasks that hold address spaces. Tasks of one thread group share an
//! `Arc<AddressSpace>`; `exit` drops a task's `Arc`, and the last one gone
//! runs the address space's teardown.
//!
//! Locking, always taken in this order and never the other way round:
//! 0. `lifecycle`, a read-write lock: every operation holds it shared (so
//!    address spaces are created and torn down only under it), and `check()`
//!    holds it exclusive, so it never sees a half-built or half-freed one;
//! 1. `tasks` (the task table), held only to look tasks up or change the table;
//! 2. one address space's `mm` lock (accesses to one process serialise here);
//! 3. the `kernel` lock (frames and page cache; all processes share it).
//!
//! A batch takes 2 and 3 once for the whole batch, not per access. Nobody
//! drops an `Arc<AddressSpace>` while holding 1 or 3: its `Drop` takes 3.
//! Shared holds of 0 are recursive (`read_recursive`), so an operation that
//! calls another cannot deadlock behind a waiting `check()`.

use crate::addr::PAGE_SIZE;
use crate::error::{Errno, Error, Result};
use crate::fault::{Access, NoTrace, Outcome, Trace};
use crate::gup::{self, Populate};
use crate::kernel::{Kernel, ReleaseEvent};
use crate::layout::{self, LayoutKind};
use crate::mm::{AddressSpace, Advice, Mm, MmConfig, MmapRequest};
use crate::reclaim::memcg::{CgId, Limits, ROOT};
use crate::reclaim::vmscan::LinuxLru;
use crate::step::{AccessRun, Tally};
use crate::vma::Prot;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The largest simulated memory: the frame table costs 12 host bytes per frame.
pub const MAX_MEMORY: u64 = 256 << 30;

/// Raw traces are mapped in 2 MiB regions (see `Simulator::map_trace_regions`).
const SHIFT: u32 = 21;

/// The largest file: what ext4 with 4 KiB blocks allows (s_maxbytes, 16 TiB).
pub const MAX_FILE_SIZE: u64 = 16 << 40;

/// A file size truncate(2) accepts: not negative as a loff_t (EINVAL), not past s_maxbytes (EFBIG).
fn check_file_size(size: u64) -> Result<()> {
    if size > i64::MAX as u64 {
        Err(Error::sys(Errno::EINVAL, format!("file size {size} is negative as a loff_t")))
    } else if size > MAX_FILE_SIZE {
        Err(Error::sys(Errno::EFBIG, format!("file size {size} exceeds the largest file (16 TiB)")))
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub memory: u64,
    pub mm: MmConfig,
    /// Swap space in bytes (0: none).
    pub swap: u64,
    /// The replacement policy; reclaim runs when one is set, or swap or a limit is.
    pub policy: Option<crate::reclaim::PolicyKind>,
    /// At most this many resident user pages (a memory-cgroup-like limit).
    pub resident_limit: Option<u64>,
    /// vm.overcommit_memory and vm.overcommit_ratio.
    pub overcommit: crate::kernel::Overcommit,
    /// The block device's read_ahead_kb: the readahead window files get.
    pub read_ahead_kb: u64,
    /// vm.swappiness, vm.min_free_kbytes, vm.watermark_scale_factor (for `policy="linux"`).
    pub linux: crate::reclaim::LinuxKnobs,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            memory: 1 << 30,
            mm: MmConfig::default(),
            swap: 0,
            policy: None,
            resident_limit: None,
            overcommit: crate::kernel::Overcommit::default(),
            read_ahead_kb: crate::readahead::DEFAULT_RA_PAGES * PAGE_SIZE / 1024,
            linux: crate::reclaim::LinuxKnobs::default(),
        }
    }
}

/// Fault counters shared by the threads of one process (signal_struct's
/// min_flt/maj_flt plus the live threads' own: what getrusage(RUSAGE_SELF)
/// sums), and those of its reaped children (cmin_flt/cmaj_flt: RUSAGE_CHILDREN).
#[derive(Default)]
pub struct ThreadGroup {
    min_flt: AtomicU64,
    maj_flt: AtomicU64,
    cmin_flt: AtomicU64,
    cmaj_flt: AtomicU64,
    /// The process that forked this one: a reaped child's counts go to it.
    parent: Option<std::sync::Weak<ThreadGroup>>,
    swap_ins: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

#[derive(Clone)]
struct Task {
    tgid: u32,
    mm: Arc<AddressSpace>,
    group: Arc<ThreadGroup>,
}

struct TaskTable {
    tasks: BTreeMap<u32, Task>,
    next_pid: u32,
}

impl ThreadGroup {
    fn child_of(parent: &Arc<ThreadGroup>) -> ThreadGroup {
        ThreadGroup { parent: Some(Arc::downgrade(parent)), ..ThreadGroup::default() }
    }

    /// The process is reaped (its last task exited; vmsim has no wait(), so
    /// exit is the reap): as Linux's wait_task_zombie does, its own faults
    /// and its children's go to its parent's cmin_flt/cmaj_flt.
    fn reap(&self) {
        let Some(parent) = self.parent.as_ref().and_then(std::sync::Weak::upgrade) else { return };
        let sum = |own: &AtomicU64, children: &AtomicU64| own.load(Relaxed) + children.load(Relaxed);
        parent.cmin_flt.fetch_add(sum(&self.min_flt, &self.cmin_flt), Relaxed);
        parent.cmaj_flt.fetch_add(sum(&self.maj_flt, &self.cmaj_flt), Relaxed);
    }

    /// The per-process counts that outcomes give: swap-ins, page-cache hits and misses.
    fn add_outcomes(&self, per_outcome: &[u64; Outcome::COUNT]) {
        for (counter, outcome) in [
            (&self.swap_ins, Outcome::SwapIn),
            (&self.cache_hits, Outcome::FileMinor),
            (&self.cache_misses, Outcome::FileMajor),
        ] {
            let n = per_outcome[outcome as usize];
            if n != 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }
}

impl TaskTable {
    fn insert(&mut self, make: impl FnOnce(u32) -> Task) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.tasks.insert(pid, make(pid));
        pid
    }
}

/// How a batch gives its operations.
#[derive(Debug, Clone, Copy)]
pub enum Ops<'a> {
    /// The same access for every address.
    Same(Access),
    /// One code per address (0 read, 1 write, 2 exec).
    Each(&'a [u8]),
}

/// A point of a run's timeline (`access_batch_sampled`): after `accesses`
/// of the batch, the process's resident pages and the batch's counted faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub accesses: u64,
    pub rss: u64,
    pub faults: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessCounters {
    pub min_flt: u64,
    pub maj_flt: u64,
    /// Faults of reaped children and their descendants (RUSAGE_CHILDREN).
    pub cmin_flt: u64,
    pub cmaj_flt: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    /// Swap entries in the page table now (VmSwap, in pages).
    pub swap: u64,
    pub swap_ins: u64,
    /// Pages of this process written out to swap.
    pub swap_outs: u64,
    /// File faults served from the page cache, and those that read the file.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub pt_pages: u64,
    pub vma_count: u64,
    pub threads: u64,
    /// Pages of mlocked VMAs (VmLck).
    pub locked_vm: u64,
}

impl ProcessCounters {
    /// (name, value) of every counter, as `p.counters()` shows them.
    pub fn named(&self) -> [(&'static str, u64); 16] {
        [
            ("min_flt", self.min_flt),
            ("maj_flt", self.maj_flt),
            ("cmin_flt", self.cmin_flt),
            ("cmaj_flt", self.cmaj_flt),
            ("rss_anon", self.rss_anon),
            ("rss_file", self.rss_file),
            ("rss_shmem", self.rss_shmem),
            ("swap", self.swap),
            ("swap_ins", self.swap_ins),
            ("swap_outs", self.swap_outs),
            ("cache_hits", self.cache_hits),
            ("cache_misses", self.cache_misses),
            ("pt_pages", self.pt_pages),
            ("vma_count", self.vma_count),
            ("threads", self.threads),
            ("locked_vm", self.locked_vm),
        ]
    }
}

/// The stack `clone_thread` maps when none is asked for (glibc's default, RLIMIT_STACK).
pub const DEFAULT_THREAD_STACK: u64 = 8 << 20;
/// The name `create_file` gives a file when none is asked for.
pub const DEFAULT_FILE_NAME: &str = "/tmp/vmsim-file";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCounters {
    pub frames_total: u64,
    pub frames_free: u64,
    pub frames_used: u64,
    /// Every page-table frame in use, top-level tables included.
    pub pt_pages: u64,
    /// Frames held by slab caches (the simulator's mm_structs and VMAs among them).
    pub slab_pages: u64,
    /// Frames held by alloc_pages, large kmallocs and vmalloc.
    pub kernel_pages: u64,
    pub processes: u64,
    pub tasks: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub writebacks: u64,
    /// Pages readahead read besides the faulting ones, and those of them no
    /// fault has mapped (still unused, or dropped unused: wasted reads).
    pub readahead_pages: u64,
    pub readahead_unused: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_ins: u64,
    pub swap_outs: u64,
    pub reclaim_scans: u64,
    pub evictions: u64,
    /// Every fault counted, in every process that ever ran (exited ones too).
    pub min_flt: u64,
    pub maj_flt: u64,
    /// Accesses per outcome, indexed by `Outcome as usize`.
    pub outcomes: [u64; Outcome::COUNT],
    /// Linux reclaim's events (zero under a textbook policy or none).
    pub vmscan: crate::reclaim::vmscan::VmscanStat,
    /// Pages on each LRU list (Linux reclaim), in `Lru` order.
    pub lru: [u64; crate::reclaim::folios::NR_LRU_LISTS],
    pub workingset_nodereclaim: u64,
    /// Processes the OOM killer killed.
    pub oom_kills: u64,
}

impl SimCounters {
    /// The counters under the names /proc/vmstat gives them (`sim.vmstat()`):
    /// `pgfault` counts every fault, minor and major, as Linux's does.
    pub fn vmstat_named(&self) -> Vec<(&'static str, u64)> {
        let v = &self.vmscan;
        let lru = &self.lru;
        vec![
            ("nr_free_pages", self.frames_free),
            ("nr_inactive_anon", lru[0]),
            ("nr_active_anon", lru[1]),
            ("nr_inactive_file", lru[2]),
            ("nr_active_file", lru[3]),
            ("nr_unevictable", lru[4]),
            ("nr_mlock", lru[4]),
            ("nr_page_table_pages", self.pt_pages),
            ("nr_slab_unreclaimable", self.slab_pages),
            ("workingset_nodereclaim", self.workingset_nodereclaim),
            ("workingset_refault_anon", v.workingset_refault_anon),
            ("workingset_refault_file", v.workingset_refault_file),
            ("workingset_activate_anon", v.workingset_activate_anon),
            ("workingset_activate_file", v.workingset_activate_file),
            ("workingset_restore_anon", v.workingset_restore_anon),
            ("workingset_restore_file", v.workingset_restore_file),
            ("pgfault", self.min_flt + self.maj_flt),
            ("pgmajfault", self.maj_flt),
            ("pswpin", self.swap_ins),
            ("pswpout", self.swap_outs),
            ("pgactivate", v.pgactivate),
            ("pgdeactivate", v.pgdeactivate),
            ("pgrefill", v.pgrefill),
            ("pgscan_kswapd", v.pgscan_kswapd),
            ("pgscan_direct", v.pgscan_direct),
            ("pgsteal_kswapd", v.pgsteal_kswapd),
            ("pgsteal_direct", v.pgsteal_direct),
            ("pgscan_anon", v.pgscan_anon),
            ("pgscan_file", v.pgscan_file),
            ("pgsteal_anon", v.pgsteal_anon),
            ("pgsteal_file", v.pgsteal_file),
            ("kswapd_low_wmark_hit_quickly", v.kswapd_low_wmark_hit),
            ("pageoutrun", v.pageoutrun),
            ("allocstall_normal", v.allocstall_normal),
            ("unevictable_pgs_culled", v.unevictable_pgs_culled),
            ("unevictable_pgs_mlocked", v.unevictable_pgs_mlocked),
            ("unevictable_pgs_munlocked", v.unevictable_pgs_munlocked),
            ("oom_kill", self.oom_kills),
        ]
    }

    /// (name, value) of every counter but the per-outcome ones, as `sim.counters()` shows them.
    pub fn named(&self) -> [(&'static str, u64); 21] {
        [
            ("frames_total", self.frames_total),
            ("frames_free", self.frames_free),
            ("frames_used", self.frames_used),
            ("pt_pages", self.pt_pages),
            ("slab_pages", self.slab_pages),
            ("kernel_pages", self.kernel_pages),
            ("processes", self.processes),
            ("tasks", self.tasks),
            ("cache_hits", self.cache_hits),
            ("cache_misses", self.cache_misses),
            ("writebacks", self.writebacks),
            ("readahead_pages", self.readahead_pages),
            ("readahead_unused", self.readahead_unused),
            ("swap_total", self.swap_total),
            ("swap_used", self.swap_used),
            ("swap_ins", self.swap_ins),
            ("swap_outs", self.swap_outs),
            ("reclaim_scans", self.reclaim_scans),
            ("evictions", self.evictions),
            ("min_flt", self.min_flt),
            ("maj_flt", self.maj_flt),
        ]
    }

    /// (outcome name, accesses) for every outcome.
    pub fn outcomes_named(&self) -> [(&'static str, u64); Outcome::COUNT] {
        Outcome::ALL.map(|o| (o.name(), self.outcomes[o as usize]))
    }
}

pub struct Simulator {
    lifecycle: RwLock<()>,
    kernel: Arc<Mutex<Kernel>>,
    tasks: Mutex<TaskTable>,
    cfg: SimConfig,
    outcomes: [AtomicU64; Outcome::COUNT],
    /// Machine-wide fault counts.
    min_flt: AtomicU64,
    maj_flt: AtomicU64,
    /// Tasks the OOM killer killed, and why (what their later use reports).
    oom_killed: Mutex<HashMap<u32, String>>,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Simulator> {
        if !cfg.memory.is_multiple_of(PAGE_SIZE) || cfg.memory < 16 * PAGE_SIZE || cfg.memory > MAX_MEMORY {
            return Err(Error::invalid(format!(
                "memory must be a whole number of 4KiB pages between 64KiB and {}, got {} bytes",
                crate::units::format_size(MAX_MEMORY),
                cfg.memory
            )));
        }
        if cfg.mm.stack_rlimit < PAGE_SIZE || !cfg.mm.stack_guard_gap.is_multiple_of(PAGE_SIZE) {
            return Err(Error::invalid(
                "stack_rlimit must be at least a page and stack_guard_gap a whole number of pages",
            ));
        }
        let mut kernel = Kernel::new((cfg.memory / PAGE_SIZE) as u32)?;
        if !cfg.swap.is_multiple_of(PAGE_SIZE) || cfg.swap / PAGE_SIZE > crate::swap::MAX_SWAP_SLOTS {
            return Err(Error::invalid(format!(
                "swap must be a whole number of 4KiB pages, at most {}, got {} bytes",
                crate::units::format_size(crate::swap::MAX_SWAP_SLOTS * PAGE_SIZE),
                cfg.swap
            )));
        }
        if cfg.resident_limit == Some(0) {
            return Err(Error::invalid("resident_limit must be at least one page"));
        }
        kernel.set_overcommit(cfg.overcommit);
        if !cfg.read_ahead_kb.is_multiple_of(PAGE_SIZE / 1024) || cfg.read_ahead_kb > 1 << 20 {
            return Err(Error::invalid(format!(
                "read_ahead_kb must be a whole number of 4 KiB pages, at most 1 GiB, got {}",
                cfg.read_ahead_kb
            )));
        }
        kernel.cache_mut().default_ra_pages = cfg.read_ahead_kb / (PAGE_SIZE / 1024);
        if cfg.swap > 0 || cfg.policy.is_some() || cfg.resident_limit.is_some() {
            let policy = cfg.policy.unwrap_or(crate::reclaim::PolicyKind::Clock);
            cfg.linux.validate()?;
            kernel.enable_reclaim(cfg.swap / PAGE_SIZE, policy, cfg.resident_limit, cfg.linux);
        }
        Ok(Simulator {
            lifecycle: RwLock::new(()),
            kernel: Arc::new(Mutex::new(kernel)),
            tasks: Mutex::new(TaskTable { tasks: BTreeMap::new(), next_pid: 1 }),
            cfg,
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            min_flt: AtomicU64::new(0),
            maj_flt: AtomicU64::new(0),
            oom_killed: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Held (shared) by every operation; see the locking order above.
    fn op_guard(&self) -> RwLockReadGuard<'_, ()> {
        self.lifecycle.read_recursive()
    }

    fn task(&self, pid: u32) -> Result<Task> {
        self.tasks.lock().tasks.get(&pid).cloned().ok_or_else(|| self.gone(pid))
    }

    /// Why `pid` is not a live task: killed by the OOM killer, or exited.
    fn gone(&self, pid: u32) -> Error {
        match self.oom_killed.lock().get(&pid) {
            Some(reason) => Error::OomKilled { pid, reason: reason.clone() },
            None => Error::NoSuchProcess { pid },
        }
    }

    /// Run `f` on a task's address space with the mm and kernel locks held.
    /// If the OOM killer chose address spaces meanwhile, their tasks are
    /// killed before it returns; if this task was among them, its result is
    /// lost and the error says so.
    fn with_mm<R>(&self, pid: u32, f: impl FnOnce(&mut Mm, &mut Kernel, &Task) -> R) -> Result<R> {
        let _op = self.op_guard();
        let task = self.task(pid)?;
        let (result, victims) = {
            let mut mm = task.mm.mm.lock();
            if mm.oom_killed {
                return Err(Error::OomKilled { pid, reason: "its address space was chosen".into() });
            }
            mm.vmas.set_thread(pid);
            let mut kernel = self.kernel.lock();
            kernel.set_charging(mm.memcg, false);
            let result = f(&mut mm, &mut kernel, &task);
            kernel.sync_mm_charge(&mut mm);
            (result, kernel.take_oom_victims())
        };
        drop(task); // may be the last reference: outside every lock
        if victims.is_empty() {
            return Ok(result);
        }
        self.kill_oom_victims(victims);
        match self.oom_killed.lock().get(&pid) {
            Some(reason) => Err(Error::OomKilled { pid, reason: reason.clone() }),
            None => Ok(result),
        }
    }

    /// Kill every task of the address spaces the OOM killer chose (their
    /// memory is reaped already; the last reference tears them down).
    fn kill_oom_victims(&self, victims: Vec<crate::reclaim::oom::OomVictim>) {
        let gone: Vec<Task> = {
            let mut table = self.tasks.lock();
            let mut killed = self.oom_killed.lock();
            let mut gone = Vec::new();
            for v in &victims {
                let tids: Vec<u32> = table.tasks.iter().filter(|(_, t)| t.mm.id == v.mm).map(|(&tid, _)| tid).collect();
                for tid in tids {
                    gone.extend(table.tasks.remove(&tid));
                    killed.insert(tid, v.reason.clone());
                }
            }
            gone
        };
        let mut reaped = std::collections::BTreeSet::new();
        for t in &gone {
            if reaped.insert(t.tgid) {
                t.group.reap();
            }
        }
        drop(gone); // outside every lock: the teardowns run here
    }

    /// A new process: empty, or with the default ELF-like layout.
    pub fn spawn(&self, layout: LayoutKind) -> Result<u32> {
        let _op = self.op_guard();
        let mm = layout::build(&mut self.kernel.lock(), self.cfg.mm, layout)?;
        let space = Arc::new(AddressSpace::new(mm, self.kernel.clone()));
        let group = Arc::new(ThreadGroup::default());
        Ok(self.tasks.lock().insert(|pid| Task { tgid: pid, mm: space, group }))
    }

    /// Add a run's counts to the machine's and the process's counters.
    fn commit(&self, task: &Task, tally: &Tally) {
        for (slot, &n) in self.outcomes.iter().zip(&tally.per_outcome) {
            if n != 0 {
                slot.fetch_add(n, Relaxed);
            }
        }
        task.group.min_flt.fetch_add(tally.minor(), Relaxed);
        task.group.maj_flt.fetch_add(tally.major(), Relaxed);
        self.min_flt.fetch_add(tally.minor(), Relaxed);
        self.maj_flt.fetch_add(tally.major(), Relaxed);
        task.group.add_outcomes(&tally.per_outcome);
    }

    /// Every access goes through here: one lock acquisition for the run,
    /// `AccessRun::step` per access, the counts committed once.
    fn run_accesses<T: Trace>(&self, pid: u32, addrs: &[u64], ops: Ops<'_>, out: &mut [u8], t: &mut T) -> Result<()> {
        self.with_mm(pid, |mm, k, task| {
            let mut run = AccessRun::new(mm, k, addrs);
            match ops {
                Ops::Same(op) => {
                    for (i, (&addr, code)) in addrs.iter().zip(out.iter_mut()).enumerate() {
                        *code = run.step(i, addr, op, t) as u8;
                        if *code == Outcome::Oom as u8 && run.oom_killed() {
                            break; // the OOM killer chose this process: it runs no further
                        }
                    }
                }
                Ops::Each(codes) => {
                    for (i, ((&addr, &c), code)) in addrs.iter().zip(codes).zip(out.iter_mut()).enumerate() {
                        let op = Access::from_code(c).unwrap_or(Access::Read); // validated by the caller
                        *code = run.step(i, addr, op, t) as u8;
                        if *code == Outcome::Oom as u8 && run.oom_killed() {
                            break;
                        }
                    }
                }
            }
            self.commit(task, &run.finish(out));
        })
    }

    pub fn access(&self, pid: u32, addr: u64, op: Access) -> Result<Outcome> {
        let mut out = [0u8];
        self.run_accesses(pid, &[addr], Ops::Same(op), &mut out, &mut NoTrace)?;
        Ok(Outcome::from_code(out[0]).expect("an outcome code"))
    }

    /// One access, with the kernel's reasoning step by step.
    pub fn access_traced(&self, pid: u32, addr: u64, op: Access) -> Result<(Outcome, Vec<String>)> {
        let (mut out, mut steps) = ([0u8], Vec::new());
        self.run_accesses(pid, &[addr], Ops::Same(op), &mut out, &mut steps)?;
        Ok((Outcome::from_code(out[0]).expect("an outcome code"), steps))
    }

    /// Many accesses under one lock acquisition; `out[i]` gets the outcome
    /// code of `addrs[i]`. Inputs are validated before anything runs.
    pub fn access_batch(&self, pid: u32, addrs: &[u64], ops: Ops<'_>, out: &mut [u8]) -> Result<()> {
        Self::check_batch(addrs, ops, out)?;
        self.run_accesses(pid, addrs, ops, out, &mut NoTrace)
    }

    /// `access_batch`, taking a `Sample` after the first `first` accesses,
    /// every `every` accesses after that, and at the end (a run's timeline).
    /// The batch runs in pieces between samples, so the outcomes are those
    /// of one call except under the `opt` policy, whose known future is the
    /// running piece: callers sample such batches only at their end.
    pub fn access_batch_sampled(
        &self,
        pid: u32,
        addrs: &[u64],
        ops: Ops<'_>,
        out: &mut [u8],
        (first, every): (usize, usize),
        samples: &mut Vec<Sample>,
    ) -> Result<()> {
        Self::check_batch(addrs, ops, out)?;
        if first == 0 || every == 0 {
            return Err(Error::invalid("samples need first and every of at least 1"));
        }
        let (mut start, mut end, mut faults) = (0, first.min(addrs.len()), 0);
        loop {
            let piece = match ops {
                Ops::Same(op) => Ops::Same(op),
                Ops::Each(codes) => Ops::Each(&codes[start..end]),
            };
            self.run_accesses(pid, &addrs[start..end], piece, &mut out[start..end], &mut NoTrace)?;
            let counts = crate::step::count_outcomes(&out[start..end]);
            faults += Outcome::ALL.iter().filter(|o| o.is_fault()).map(|&o| counts[o as usize]).sum::<u64>();
            let rss = self.with_mm(pid, |mm, _, _| mm.rss_anon + mm.rss_file + mm.rss_shmem)?;
            samples.push(Sample { accesses: end as u64, rss, faults });
            if end == addrs.len() {
                return Ok(());
            }
            (start, end) = (end, (end + every).min(addrs.len()));
        }
    }

    /// The checks `access_batch` makes before anything runs.
    fn check_batch(addrs: &[u64], ops: Ops<'_>, out: &[u8]) -> Result<()> {
        if out.len() != addrs.len() {
            return Err(Error::invalid("output length differs from addrs length"));
        }
        if let Ops::Each(codes) = ops {
            if codes.len() != addrs.len() {
                return Err(Error::invalid(format!("ops has {} entries but addrs has {}", codes.len(), addrs.len())));
            }
            if let Some(i) = codes.iter().position(|&c| Access::from_code(c).is_none()) {
                return Err(Error::invalid(format!(
                    "ops[{i}] = {} is not an access code (0 read, 1 write, 2 exec)",
                    codes[i]
                )));
            }
        }
        Ok(())
    }

    /// Whether mappings cover, with no hole, every trace region (see
    /// `map_trace_regions`) from the one holding `first` to the one holding `last`.
    pub fn trace_span_mapped(&self, pid: u32, first: u64, last: u64) -> Result<bool> {
        let (lo, hi) = (crate::addr::MMAP_MIN_ADDR, crate::addr::TASK_SIZE);
        let (start, end) = (((first >> SHIFT) << SHIFT).max(lo), (((last >> SHIFT) + 1) << SHIFT).min(hi));
        self.with_mm(pid, |mm, _, _| start >= end || mm.covers(start, end))
    }

    /// For replaying a raw address trace from a process vmsim cannot see: map
    /// (private anonymous, rwx) each 2 MiB region the addresses touch that no
    /// mapping overlaps yet, so the replay measures paging rather than a flood
    /// of SIGSEGVs. One pass, no sort. Returns the regions mapped.
    pub fn map_trace_regions(&self, pid: u32, addrs: &[u64]) -> Result<u64> {
        let (lo, hi) = (crate::addr::MMAP_MIN_ADDR, crate::addr::TASK_SIZE);
        // Regions already handled, as a bitmap over the span the addresses
        // cover (a trace's span is usually small), else a hash set.
        let (min, max) = addrs.iter().fold((u64::MAX, 0), |(m, n), &a| (m.min(a >> SHIFT), n.max(a >> SHIFT)));
        if addrs.is_empty() {
            return Ok(0);
        }
        let span = max.saturating_sub(min) + 1;
        let mut bitmap = if span <= 1 << 24 { vec![0u64; span.div_ceil(64) as usize] } else { Vec::new() };
        let mut set = rustc_hash::FxHashSet::default();
        let mut first_time = |region: u64| {
            if bitmap.is_empty() {
                return set.insert(region);
            }
            let (word, bit) = (((region - min) / 64) as usize, (region - min) % 64);
            let new = bitmap[word] & (1 << bit) == 0;
            bitmap[word] |= 1 << bit;
            new
        };
        self.with_mm(pid, |mm, k, _| {
            // The common case after the first chunk: mappings cover the whole span already.
            if mm.covers((min << SHIFT).max(lo), ((max + 1) << SHIFT).min(hi)) {
                return Ok(0);
            }
            let (mut last, mut mapped) = (u64::MAX, 0);
            for &a in addrs {
                let region = a >> SHIFT;
                if region == last {
                    continue;
                }
                last = region;
                if !first_time(region) || a < lo || a >= hi {
                    continue;
                }
                let start = (region << SHIFT).max(lo);
                let end = ((region + 1) << SHIFT).min(hi);
                if mm.vmas.find(start).is_some_and(|v| v.start < end) {
                    continue; // partly mapped already: accesses there use what is mapped
                }
                let mut req = MmapRequest::anon(end - start, Prot::new(true, true, true));
                req.addr = start;
                req.fixed_noreplace = true;
                req.noreserve = true; // a trace's whole range is not a commitment
                mm.mmap(k, req)?;
                mapped += 1;
            }
            Ok(mapped)
        })?
    }

    /// mmap(2); with MAP_POPULATE the new pages are faulted in before it
    /// returns (a failure there leaves them unpopulated, as Linux ignores it).
    pub fn mmap(&self, pid: u32, req: MmapRequest) -> Result<u64> {
        self.with_mm(pid, |mm, k, task| {
            let addr = mm.mmap(k, req)?;
            let locked =
                mm.def_flags.has(crate::vma::VmFlags::LOCKED) && !mm.def_flags.has(crate::vma::VmFlags::LOCKONFAULT);
            if req.populate || locked {
                let end = addr + req.len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                let _ignored = self.populate_counted(mm, k, task, addr, end, Populate::Mmap);
            }
            Ok(addr)
        })?
    }

    /// MADV_REMOVE: punch a hole in the shared objects behind the range (shmem
    /// or a file): their pages there leave every mapping (private copies
    /// stay) and the page cache; a later access finds zeroes.
    fn madvise_remove(&self, pid: u32, addr: u64, len: u64) -> Result<()> {
        let targets = self.with_mm(pid, |mm, _, _| mm.remove_targets(addr, len))??;
        self.with_every_mm(|mms, k| {
            for &(id, first, last) in &targets {
                for mm in mms.iter_mut() {
                    mm.unmap_object_range(k, id, first, last, false);
                }
                k.punch_hole(id, first, last);
            }
            Ok(())
        })
    }

    /// mlock(2) (`onfault`: mlock2 with MLOCK_ONFAULT): lock the range, then
    /// fault it in unless on fault; a populate failure is ENOMEM (or EAGAIN
    /// when memory ran out), the range staying locked, as Linux leaves it.
    pub fn mlock(&self, pid: u32, addr: u64, len: u64, onfault: bool) -> Result<()> {
        self.with_mm(pid, |mm, k, task| {
            let (start, end) = mm.mlock(k, addr, len, onfault)?;
            self.populate_locked(mm, k, task, &[(start, end)])
        })?
    }

    /// mremap(2): returns the mapping's (new) address; the new part of an
    /// mlocked mapping is populated.
    pub fn mremap(&self, pid: u32, req: crate::mm::Mremap) -> Result<u64> {
        self.with_mm(pid, |mm, k, task| {
            let (addr, populate) = mm.mremap(k, req)?;
            if let Some((start, end)) = populate {
                let _ignored = self.populate_counted(mm, k, task, start, end, Populate::Mmap);
            }
            Ok(addr)
        })?
    }

    pub fn munlock(&self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.with_mm(pid, |mm, k, _| mm.munlock(k, addr, len))?
    }

    /// mlockall(2) with MCL_CURRENT, MCL_FUTURE and MCL_ONFAULT as flags.
    pub fn mlockall(&self, pid: u32, current: bool, future: bool, onfault: bool) -> Result<()> {
        if !current && !future {
            return Err(Error::sys(Errno::EINVAL, "mlockall needs MCL_CURRENT or MCL_FUTURE"));
        }
        self.with_mm(pid, |mm, k, task| {
            let ranges = mm.mlockall(k, current, future, onfault)?;
            self.populate_locked(mm, k, task, &ranges)
        })?
    }

    pub fn munlockall(&self, pid: u32) -> Result<()> {
        self.with_mm(pid, |mm, k, _| mm.munlockall(k))?
    }

    /// __mm_populate for mlock: errors as mlock reports them
    /// (__mlock_posix_error_return: EFAULT becomes ENOMEM, ENOMEM EAGAIN).
    fn populate_locked(&self, mm: &mut Mm, k: &mut Kernel, task: &Task, ranges: &[(u64, u64)]) -> Result<()> {
        for &(start, end) in ranges {
            self.populate_counted(mm, k, task, start, end, Populate::Mlock).map_err(|e| match e {
                Error::Sys { errno: Errno::EFAULT, reason } => Error::sys(Errno::ENOMEM, reason),
                Error::Sys { errno: Errno::ENOMEM, reason } => Error::sys(Errno::EAGAIN, reason),
                other => other,
            })?;
        }
        Ok(())
    }

    /// `gup::populate`, its faults counted for `task` (no access is).
    fn populate_counted(
        &self,
        mm: &mut Mm,
        k: &mut Kernel,
        task: &Task,
        start: u64,
        end: u64,
        how: Populate,
    ) -> Result<()> {
        let mut per_account = [0; 3];
        let result = gup::populate(mm, k, start, end, how, &mut per_account);
        self.commit(task, &Tally { per_outcome: [0; Outcome::COUNT], per_account });
        result
    }

    pub fn munmap(&self, pid: u32, addr: u64, len: u64) -> Result<()> {
        self.with_mm(pid, |mm, k, _| mm.munmap(k, addr, len))?
    }

    pub fn mprotect(&self, pid: u32, addr: u64, len: u64, prot: Prot) -> Result<()> {
        self.with_mm(pid, |mm, k, _| mm.mprotect(k, addr, len, prot))?
    }

    /// madvise(2); MADV_POPULATE_READ/WRITE fault the range in here.
    pub fn madvise(&self, pid: u32, addr: u64, len: u64, advice: Advice) -> Result<()> {
        let how = match advice {
            Advice::PopulateRead => Populate::Read,
            Advice::PopulateWrite => Populate::Write,
            Advice::Remove => return self.madvise_remove(pid, addr, len),
            _ => return self.with_mm(pid, |mm, k, _| mm.madvise(k, addr, len, advice))?,
        };
        let Some((start, end)) = Mm::madvise_range(addr, len)? else { return Ok(()) };
        self.with_mm(pid, |mm, k, task| self.populate_counted(mm, k, task, start, end, how))?
    }

    /// brk(2); `None` asks for the current break.
    pub fn brk(&self, pid: u32, new: Option<u64>) -> Result<u64> {
        self.with_mm(pid, |mm, k, _| match new {
            Some(addr) => mm.brk(k, addr),
            None => mm.layout.brk,
        })
    }

    /// fork: a new process with a copy-on-write copy of the caller's memory.
    pub fn fork(&self, pid: u32) -> Result<u32> {
        let _op = self.op_guard();
        let (child, parent) = self.with_mm(pid, |mm, k, task| mm.fork_copy(k).map(|c| (c, task.group.clone())))??;
        let space = Arc::new(AddressSpace::new(child, self.kernel.clone()));
        let group = Arc::new(ThreadGroup::child_of(&parent));
        Ok(self.tasks.lock().insert(|pid| Task { tgid: pid, mm: space, group }))
    }

    /// clone(CLONE_VM|CLONE_THREAD): a new task sharing the address space.
    /// With `stack_size > 0` it also maps a thread stack the way glibc's
    /// pthread_create does: an anonymous mapping with a PROT_NONE guard page
    /// at its bottom. Returns the tid and the usable stack range.
    pub fn clone_thread(&self, pid: u32, stack_size: u64) -> Result<(u32, Option<(u64, u64)>)> {
        let _op = self.op_guard();
        let task = self.task(pid)?;
        let stack = if stack_size > 0 {
            let size =
                crate::addr::page_up(stack_size).ok_or_else(|| Error::sys(Errno::ENOMEM, "thread stack too large"))?;
            let base = self.mmap(pid, MmapRequest::anon(size + PAGE_SIZE, Prot::READ_WRITE))?;
            self.mprotect(pid, base, PAGE_SIZE, Prot::NONE)?;
            Some((base + PAGE_SIZE, base + PAGE_SIZE + size))
        } else {
            None
        };
        let tid =
            self.tasks.lock().insert(|_| Task { tgid: task.tgid, mm: task.mm.clone(), group: task.group.clone() });
        Ok((tid, stack))
    }

    /// do_exit for one task: its reference on the address space goes; the
    /// last task out tears the address space down.
    pub fn exit(&self, pid: u32) -> Result<()> {
        self.exit_traced(pid, false).map(|_| ())
    }

    /// do_exit, returning the release route it took when `trace` is set:
    /// do_exit, exit_mm, mmput and, for the last user, everything the
    /// address space's teardown does (see `Mm::teardown`).
    pub fn exit_traced(&self, pid: u32, trace: bool) -> Result<Vec<ReleaseEvent>> {
        let _op = self.op_guard();
        let (task, last_of_process) = {
            let mut table = self.tasks.lock();
            let task = table.tasks.remove(&pid).ok_or_else(|| self.gone(pid))?;
            let last = !table.tasks.values().any(|t| t.tgid == task.tgid);
            (task, last)
        };
        if last_of_process {
            task.group.reap();
        }
        let (was_tracing, mark) = {
            let mut k = self.kernel.lock();
            let was = k.tracing();
            if trace {
                k.set_tracing(true);
            }
            let mark = k.event_mark();
            let users = Arc::strong_count(&task.mm);
            k.event("do_exit", || format!("task {pid} (process {})", task.tgid));
            k.event("exit_mm", || format!("task {pid} lets go of its address space"));
            k.event("mmput", || format!("mm_users {users} -> {}", users - 1));
            (was, mark)
        };
        drop(task); // outside the kernel and task-table locks: may run the teardown
        let mut k = self.kernel.lock();
        // This exit's events; those recorded before stay for release_events(),
        // and so do this exit's when release tracing was on already.
        let events = if trace { k.events_since(mark, was_tracing) } else { Vec::new() };
        if trace && !was_tracing {
            k.set_tracing(false);
        }
        Ok(events)
    }

    /// mmgrab: hold the mm_struct of `pid`'s address space (a lazy-TLB
    /// reference); returns its address, for `mmdrop`.
    pub fn mmgrab(&self, pid: u32) -> Result<u64> {
        self.with_mm(pid, |mm, k, _| {
            k.mmgrab(mm.mm_struct);
            mm.mm_struct
        })
    }

    /// mmdrop of a reference from `mmgrab`; returns its release events when
    /// release tracing is on (they stay for `release_events()` too).
    pub fn mmdrop(&self, mm_struct: u64) -> Result<Vec<ReleaseEvent>> {
        let _op = self.op_guard();
        let mut k = self.kernel.lock();
        let mark = k.event_mark();
        k.mmdrop_grabbed(mm_struct)?;
        Ok(k.events_since(mark, true))
    }

    /// Record the release route of every teardown from now on (`release_events` drains it).
    pub fn trace_release(&self, on: bool) {
        self.kernel.lock().set_tracing(on);
    }

    pub fn release_events(&self) -> Vec<ReleaseEvent> {
        self.kernel.lock().take_events()
    }

    /// Run `f` on the kernel (its allocators) under the kernel lock.
    pub fn kernel<R>(&self, f: impl FnOnce(&mut Kernel) -> R) -> R {
        let _op = self.op_guard();
        f(&mut self.kernel.lock())
    }

    // ----- memory cgroups and the OOM killer -------------------------------

    /// Run `f` on Linux reclaim's state; memory cgroups need it.
    fn with_linux<R>(&self, k: &mut Kernel, f: impl FnOnce(&mut LinuxLru) -> Result<R>) -> Result<R> {
        match k.reclaim_mut().and_then(crate::reclaim::Reclaim::linux_mut) {
            Some(lr) => f(lr),
            None => Err(Error::invalid(
                "memory cgroups need policy=\"linux\" or \"mglru\" (the others do not reclaim by group)",
            )),
        }
    }

    /// A new memory cgroup under `parent` (the root when None), limits in pages.
    pub fn cgroup_create(&self, name: &str, parent: Option<CgId>, limits: Limits) -> Result<CgId> {
        if let Some(p) = parent {
            self.check_cgroup(p)?;
        }
        self.kernel(|k| self.with_linux(k, |lr| lr.create_cgroup(name, parent, limits)))
    }

    /// Memory cgroup `cg` exists (the root always does).
    fn check_cgroup(&self, cg: CgId) -> Result<()> {
        if cg == ROOT {
            return Ok(());
        }
        self.kernel(|k| match k.cgroups() {
            Some(c) if (cg as usize) < c.len() => Ok(()),
            _ => Err(Error::invalid(format!("no memory cgroup {cg}"))),
        })
    }

    /// New limits for `cg`; lowering `max` below its usage reclaims at the
    /// group's next charge, as writing memory.max does at once.
    pub fn cgroup_set_limits(&self, cg: CgId, limits: Limits) -> Result<()> {
        self.check_cgroup(cg)?;
        if cg == ROOT {
            return Err(Error::invalid("the root memory cgroup has no limits"));
        }
        self.kernel(|k| {
            self.with_linux(k, |lr| {
                lr.cgroups.groups[cg as usize].limits = limits;
                Ok(())
            })
        })
    }

    /// A group's figures, every address space's kernel memory charged first.
    pub fn cgroup_info(&self, cg: CgId) -> Result<crate::reclaim::memcg::CgroupInfo> {
        self.check_cgroup(cg)?;
        self.with_every_mm(|mms, k| {
            for mm in mms.iter_mut() {
                k.sync_mm_charge(mm);
            }
            k.drain_lru();
            let lr = k
                .reclaim()
                .and_then(crate::reclaim::Reclaim::linux)
                .ok_or_else(|| Error::invalid("no memory cgroups"))?;
            Ok(crate::reclaim::memcg::info(k, lr, cg))
        })
    }

    /// The multi-gen LRU's generations (`policy="mglru"`): (memcg path,
    /// seq, anon pages, file pages) per generation of every lruvec, oldest
    /// first, as /sys/kernel/debug/lru_gen lists them.
    pub fn lru_gen(&self) -> Result<Vec<(String, crate::reclaim::mglru::GenInfo)>> {
        self.kernel(|k| {
            k.drain_lru();
            match k.reclaim().and_then(crate::reclaim::Reclaim::linux).filter(|lr| lr.mglru) {
                Some(lr) => Ok(lr.generations().into_iter().map(|g| (lr.cgroups.path(g.memcg), g)).collect()),
                None => Err(Error::invalid("generations exist under policy=\"mglru\" only")),
            }
        })
    }

    /// A new process in memory cgroup `cg`.
    pub fn spawn_in(&self, layout: LayoutKind, cg: CgId) -> Result<u32> {
        self.check_cgroup(cg)?;
        let pid = self.spawn(layout)?;
        self.with_mm(pid, |mm, _, _| mm.memcg = cg)?;
        Ok(pid)
    }

    /// Move the process (its address space: every thread) to `cg`. As in
    /// cgroup v2, what it charged stays where it was; new pages go to `cg`.
    pub fn cgroup_move(&self, pid: u32, cg: CgId) -> Result<()> {
        self.check_cgroup(cg)?;
        if cg != ROOT {
            self.kernel(|k| self.with_linux(k, |_| Ok(())))?;
        }
        self.with_mm(pid, |mm, k, _| {
            k.sync_mm_charge(mm);
            mm.memcg = cg;
        })
    }

    /// The memory cgroup a process charges.
    pub fn cgroup_of(&self, pid: u32) -> Result<CgId> {
        self.with_mm(pid, |mm, _, _| mm.memcg)
    }

    /// /proc/pid/oom_score_adj: read, or set (-1000..=1000) when `set` is given.
    pub fn oom_score_adj(&self, pid: u32, set: Option<i64>) -> Result<i16> {
        use crate::reclaim::oom::{OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN};
        if let Some(v) = set {
            if !(OOM_SCORE_ADJ_MIN as i64..=OOM_SCORE_ADJ_MAX as i64).contains(&v) {
                return Err(Error::invalid(format!("oom_score_adj must be between -1000 and 1000, got {v}")));
            }
        }
        self.with_mm(pid, |mm, _, _| {
            if let Some(v) = set {
                mm.oom_score_adj = v as i16;
            }
            mm.oom_score_adj
        })
    }

    // ----- files ---------------------------------------------------------

    /// A regular file of `size` bytes, with one open handle; returns its id.
    pub fn create_file(&self, name: &str, size: u64) -> Result<u32> {
        check_file_size(size)?;
        Ok(self.kernel(|k| k.cache_mut().create_file(name, size)))
    }

    /// The readahead window of a file, in KiB: its device's read_ahead_kb
    /// (`set`: a file on another device), doubled while POSIX_FADV_SEQUENTIAL.
    pub fn file_read_ahead_kb(&self, id: u32, set: Option<u64>) -> Result<u64> {
        if let Some(kb) = set.filter(|kb| !kb.is_multiple_of(PAGE_SIZE / 1024) || *kb > 1 << 20) {
            return Err(Error::invalid(format!(
                "read_ahead_kb must be a whole number of 4 KiB pages, at most 1 GiB, got {kb}"
            )));
        }
        self.with_file(id, |k| {
            let ra = &mut k.cache_mut().object_mut(id).ra;
            if let Some(kb) = set {
                *ra = crate::readahead::RaState::new(kb / (PAGE_SIZE / 1024));
            }
            ra.ra_pages * (PAGE_SIZE / 1024)
        })
    }

    /// posix_fadvise(2) on `len` bytes of the file from `offset` (0: to its end).
    pub fn file_fadvise(&self, id: u32, offset: u64, len: u64, advice: crate::readahead::Fadvise) -> Result<()> {
        self.with_file(id, |k| {
            let first = offset / PAGE_SIZE;
            let end = if len == 0 { u64::MAX } else { offset.saturating_add(len).div_ceil(PAGE_SIZE) };
            crate::readahead::fadvise(k, id, first, end - first, advice);
        })
    }

    /// read(2) through the page cache: missing pages read in, every page marked accessed.
    /// The pages read in are charged to memory cgroup `cg`.
    pub fn file_read(&self, id: u32, offset: u64, len: u64, cg: CgId) -> Result<crate::filemap::FileIo> {
        self.check_cgroup(cg)?;
        self.with_file(id, |k| crate::filemap::read(k, id, offset, len, cg))?
    }

    /// write(2) through the page cache: pages dirtied and marked accessed, the file extended.
    pub fn file_write(&self, id: u32, offset: u64, len: u64, cg: CgId) -> Result<crate::filemap::FileIo> {
        self.check_cgroup(cg)?;
        self.with_file(id, |k| crate::filemap::write(k, id, offset, len, cg))?
    }

    fn with_file<R>(&self, id: u32, f: impl FnOnce(&mut Kernel) -> R) -> Result<R> {
        let (result, victims) = self.kernel(|k| match k.cache().get(id) {
            Some(o) if o.is_file() => {
                k.set_charging(ROOT, false); // file calls made for no process (fadvise's readahead)
                (Ok(f(k)), k.take_oom_victims())
            }
            _ => (Err(Error::invalid(format!("file {id} no longer exists"))), Vec::new()),
        });
        if !victims.is_empty() {
            self.kill_oom_victims(victims);
        }
        result
    }

    /// Close one handle of the file.
    pub fn file_close(&self, id: u32) -> Result<()> {
        self.with_file(id, |k| k.close_file(id))
    }

    /// Unlink the file: its pages go with its last mapping and handle.
    pub fn file_unlink(&self, id: u32) -> Result<()> {
        self.with_file(id, |k| k.unlink_file(id))
    }

    /// (size in bytes, pages in the page cache).
    pub fn file_stat(&self, id: u32) -> Result<(u64, usize)> {
        self.with_file(id, |k| {
            let o = k.cache().object(id);
            let size = match o.kind {
                crate::pagecache::ObjectKind::File { size, .. } => size,
                crate::pagecache::ObjectKind::Shmem => o.size_pages * PAGE_SIZE,
            };
            (size, o.cached_pages())
        })
    }

    /// truncate(2): set the file's size. Pages past the new end are unmapped
    /// from every address space (so a later access gets SIGBUS) and dropped
    /// from the page cache.
    pub fn file_truncate(&self, id: u32, size: u64) -> Result<()> {
        check_file_size(size)?;
        self.with_every_mm(|mms, k| {
            if !k.cache().get(id).is_some_and(|o| o.is_file()) {
                return Err(Error::invalid(format!("file {id} no longer exists")));
            }
            let keep = size.div_ceil(PAGE_SIZE);
            for mm in mms.iter_mut() {
                mm.unmap_object_from(k, id, keep);
            }
            k.truncate_file_cache(id, size);
            Ok(())
        })
    }

    /// msync(2) of a range: the dirty file pages written back.
    pub fn msync(&self, pid: u32, addr: u64, len: u64, how: crate::mm::Msync) -> Result<u64> {
        self.with_mm(pid, |mm, k, _| mm.msync(k, addr, len, how))?
    }

    /// /proc/sys/vm/drop_caches: 1 drops the clean page-cache pages of files
    /// that no process maps, 2 the reclaimable slab objects (the simulated
    /// kernel keeps none: nothing), 3 both. Dirty pages stay. Returns the
    /// pages dropped.
    pub fn drop_caches(&self, mode: u32) -> Result<u64> {
        if !(1..=3).contains(&mode) {
            return Err(Error::sys(Errno::EINVAL, format!("drop_caches takes 1, 2 or 3, got {mode}")));
        }
        Ok(if mode & 1 != 0 { self.kernel(crate::readahead::drop_clean_cache) } else { 0 })
    }

    /// Set the fault-around window (a power of two from 4 KiB to 2 MiB; 4 KiB turns it off).
    pub fn set_fault_around_bytes(&self, bytes: u64) -> Result<()> {
        if !bytes.is_power_of_two() || !(PAGE_SIZE..=2 << 20).contains(&bytes) {
            return Err(Error::invalid(format!(
                "fault_around_bytes must be a power of two from 4096 to 2MiB, got {bytes}"
            )));
        }
        self.kernel(|k| k.set_fault_around_bytes(bytes));
        Ok(())
    }

    /// Every kernel allocation still live, with the call that made it.
    pub fn leak_check(&self) -> Vec<crate::kalloc::LiveAllocation> {
        self.kernel(|k| k.kalloc().live())
    }

    /// exit_group: every thread of the caller's process exits.
    pub fn exit_group(&self, pid: u32) -> Result<()> {
        let _op = self.op_guard();
        let gone: Vec<Task> = {
            let mut table = self.tasks.lock();
            let tgid = table.tasks.get(&pid).ok_or_else(|| self.gone(pid))?.tgid;
            let tids: Vec<u32> = table.tasks.iter().filter(|(_, t)| t.tgid == tgid).map(|(&tid, _)| tid).collect();
            tids.iter().filter_map(|tid| table.tasks.remove(tid)).collect()
        };
        if let Some(task) = gone.first() {
            task.group.reap();
        }
        drop(gone);
        Ok(())
    }

    pub fn is_alive(&self, pid: u32) -> bool {
        self.tasks.lock().tasks.contains_key(&pid)
    }

    /// The thread-group id (the pid of the process) of a task.
    pub fn tgid(&self, pid: u32) -> Result<u32> {
        Ok(self.task(pid)?.tgid)
    }

    /// Live tasks sharing `pid`'s thread group, in tid order.
    pub fn threads(&self, pid: u32) -> Result<Vec<u32>> {
        let table = self.tasks.lock();
        let tgid = table.tasks.get(&pid).ok_or_else(|| self.gone(pid))?.tgid;
        Ok(table.tasks.iter().filter(|(_, t)| t.tgid == tgid).map(|(&tid, _)| tid).collect())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.tasks.lock().tasks.keys().copied().collect()
    }

    pub fn maps(&self, pid: u32) -> Result<String> {
        self.with_mm(pid, |mm, k, _| mm.maps(k))
    }

    /// /proc/PID/pagemap entries of the `length` bytes from `addr` (whole
    /// pages), one u64 per page: `mm::pagemap` names the bits.
    pub fn pagemap(&self, pid: u32, addr: u64, length: u64) -> Result<Vec<u64>> {
        let start = crate::addr::page_down(addr);
        let end = addr.checked_add(length).and_then(|e| e.checked_add(PAGE_SIZE - 1)).map(crate::addr::page_down);
        let Some(end) = end.filter(|&e| e <= crate::addr::TASK_SIZE) else {
            return Err(Error::invalid(format!("pagemap range {addr:#x}+{length:#x} leaves user space")));
        };
        self.with_mm(pid, |mm, k, _| mm.pagemap(k, start, end))
    }

    /// /proc/PID/smaps: every VMA with what it holds (`smaps` module).
    pub fn smaps(&self, pid: u32) -> Result<Vec<(crate::vma::Vma, crate::smaps::MemSize)>> {
        self.with_mm(pid, |mm, k, _| crate::smaps::smaps(mm, k))
    }

    /// /proc/PID/smaps as the kernel prints it.
    pub fn smaps_text(&self, pid: u32) -> Result<String> {
        self.with_mm(pid, |mm, k, _| crate::smaps::smaps_text(mm, k))
    }

    /// /proc/PID/smaps_rollup: the sums over every VMA.
    pub fn smaps_rollup(&self, pid: u32) -> Result<crate::smaps::MemSize> {
        self.with_mm(pid, |mm, k, _| crate::smaps::rollup(mm, k))
    }

    /// The VMAs of a task's address space, in address order.
    pub fn vmas(&self, pid: u32) -> Result<Vec<crate::vma::Vma>> {
        self.with_mm(pid, |mm, _, _| mm.vmas.all())
    }

    pub fn layout(&self, pid: u32) -> Result<crate::mm::Layout> {
        self.with_mm(pid, |mm, _, _| mm.layout)
    }

    pub fn process_counters(&self, pid: u32) -> Result<ProcessCounters> {
        let threads = self.threads(pid)?.len() as u64;
        self.with_mm(pid, |mm, _, task| ProcessCounters {
            min_flt: task.group.min_flt.load(Relaxed),
            maj_flt: task.group.maj_flt.load(Relaxed),
            cmin_flt: task.group.cmin_flt.load(Relaxed),
            cmaj_flt: task.group.cmaj_flt.load(Relaxed),
            rss_anon: mm.rss_anon,
            rss_file: mm.rss_file,
            rss_shmem: mm.rss_shmem,
            swap: mm.swap_ents,
            swap_ins: task.group.swap_ins.load(Relaxed),
            swap_outs: mm.swap_outs,
            cache_hits: task.group.cache_hits.load(Relaxed),
            cache_misses: task.group.cache_misses.load(Relaxed),
            pt_pages: mm.pt.table_pages(),
            vma_count: mm.vma_count() as u64,
            threads,
            locked_vm: mm.locked_vm(),
        })
    }

    pub fn counters(&self) -> SimCounters {
        let (processes, tasks) = {
            let table = self.tasks.lock();
            let groups: std::collections::BTreeSet<u32> = table.tasks.values().map(|t| t.tgid).collect();
            (groups.len() as u64, table.tasks.len() as u64)
        };
        let mut k = self.kernel.lock();
        k.drain_lru();
        let mem = k.meminfo();
        let linux = k.reclaim().and_then(crate::reclaim::Reclaim::linux);
        let vmscan = linux.map(|l| l.stat_total()).unwrap_or_default();
        let oom_kills = k.oom_kills;
        let workingset_nodereclaim = linux.map_or(0, |l| l.shadows.nodereclaim);
        let (cache, swap) = (&k.cache().stats, k.swap());
        SimCounters {
            frames_total: mem.total,
            frames_free: mem.free,
            frames_used: mem.total - mem.free,
            pt_pages: mem.page_tables,
            slab_pages: mem.slab,
            kernel_pages: mem.alloc_pages + mem.vmalloc,
            processes,
            tasks,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            writebacks: cache.writebacks,
            readahead_pages: cache.readahead,
            readahead_unused: cache.readahead_unused,
            swap_total: swap.total(),
            swap_used: swap.used(),
            swap_ins: swap.swap_ins,
            swap_outs: swap.swap_outs,
            reclaim_scans: k.reclaim().map_or(0, |r| r.scans),
            evictions: k.reclaim().map_or(0, |r| r.evictions),
            min_flt: self.min_flt.load(Relaxed),
            maj_flt: self.maj_flt.load(Relaxed),
            outcomes: std::array::from_fn(|i| self.outcomes[i].load(Relaxed)),
            vmscan,
            lru: mem.lru,
            workingset_nodereclaim,
            oom_kills,
        }
    }

    /// /proc/meminfo's figures, the LRU lists up to date.
    pub fn meminfo(&self) -> crate::kernel::MemInfo {
        self.kernel(|k| {
            k.drain_lru();
            k.meminfo()
        })
    }

    /// Verify every invariant of every structure; see `check.rs`.
    pub fn check(&self) -> Result<()> {
        self.with_every_mm(|mms, k| {
            k.drain_lru();
            let mms: Vec<&Mm> = mms.iter().map(|g| &**g).collect();
            crate::check::check_all(&mms, k).map_err(Error::Invariant)
        })
    }

    /// Run `f` with every live address space and the kernel locked, and no
    /// other operation in flight (the lifecycle lock held exclusive).
    fn with_every_mm<R>(&self, f: impl FnOnce(&mut [parking_lot::MutexGuard<'_, Mm>], &mut Kernel) -> R) -> R {
        let _quiet = self.lifecycle.write();
        let table = self.tasks.lock();
        let mut spaces: Vec<&Arc<AddressSpace>> = table.tasks.values().map(|t| &t.mm).collect();
        spaces.sort_by_key(|s| Arc::as_ptr(s));
        spaces.dedup_by_key(|s| Arc::as_ptr(s));
        let mut guards: Vec<_> = spaces.iter().map(|s| s.mm.lock()).collect();
        let mut kernel = self.kernel.lock();
        f(&mut guards, &mut kernel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Simulator {
        Simulator::new(SimConfig { memory: 64 << 20, ..SimConfig::default() }).unwrap()
    }

    #[test]
    fn teardown_through_arc_drop_returns_everything() {
        let s = sim();
        let p = s.spawn(LayoutKind::Default).unwrap();
        let a = s.mmap(p, MmapRequest::anon(1 << 20, Prot::parse("rw").unwrap())).unwrap();
        let addrs: Vec<u64> = (0..256).map(|i| a + i * PAGE_SIZE).collect();
        let mut out = vec![0; 256];
        s.access_batch(p, &addrs, Ops::Same(Access::Write), &mut out).unwrap();
        let c = s.fork(p).unwrap();
        let (t, _) = s.clone_thread(c, 1 << 16).unwrap();
        s.check().unwrap();
        s.exit(p).unwrap();
        s.exit(c).unwrap();
        assert!(s.counters().frames_free < s.counters().frames_total, "the thread keeps the child's mm");
        s.exit(t).unwrap();
        let counters = s.counters();
        assert_eq!(counters.frames_free, counters.frames_total);
        assert_eq!(counters.pt_pages, 0);
        s.check().unwrap();
        assert_eq!(s.exit(t), Err(Error::NoSuchProcess { pid: t }));
    }

    #[test]
    fn batch_validates_before_running() {
        let s = sim();
        let p = s.spawn(LayoutKind::Empty).unwrap();
        let mut out = vec![0; 2];
        assert!(s.access_batch(p, &[0, 0], Ops::Each(&[0, 3]), &mut out).is_err());
        assert!(s.access_batch(p, &[0, 0], Ops::Each(&[0]), &mut out).is_err());
        assert_eq!(s.counters().outcomes.iter().sum::<u64>(), 0);
        s.access_batch(p, &[0, 0], Ops::Each(&[0, 1]), &mut out).unwrap();
        assert_eq!(out, [Outcome::SegvMaperr as u8; 2]);
    }

    /// Sampling a batch changes nothing it does: the same outcomes and
    /// counters as one call, with a sample at each step and at the end.
    #[test]
    fn sampled_batch_matches_one_call() {
        let run = |sampled: bool| {
            let s = sim();
            let p = s.spawn(LayoutKind::Default).unwrap();
            let a = s.mmap(p, MmapRequest::anon(64 * PAGE_SIZE, Prot::parse("rw").unwrap())).unwrap();
            let addrs: Vec<u64> = (0..200).map(|i| a + (i * 7 % 64) * PAGE_SIZE).collect();
            let ops: Vec<u8> = (0..200).map(|i| (i % 3 == 0) as u8).collect();
            let (mut out, mut samples) = (vec![0; 200], Vec::new());
            if sampled {
                s.access_batch_sampled(p, &addrs, Ops::Each(&ops), &mut out, (5, 30), &mut samples).unwrap();
            } else {
                s.access_batch(p, &addrs, Ops::Each(&ops), &mut out).unwrap();
            }
            (out, s.process_counters(p).unwrap(), samples)
        };
        let (one_call, counters, _) = run(false);
        let (pieces, sampled_counters, samples) = run(true);
        assert_eq!(one_call, pieces);
        assert_eq!(counters, sampled_counters);
        let at: Vec<u64> = samples.iter().map(|x| x.accesses).collect();
        assert_eq!(at, [5, 35, 65, 95, 125, 155, 185, 200]);
        let last = samples.last().unwrap();
        assert_eq!(last.rss, counters.rss_anon + counters.rss_file + counters.rss_shmem);
        assert_eq!(last.faults, counters.min_flt + counters.maj_flt);
        assert!(samples.windows(2).all(|w| w[0].faults <= w[1].faults));
        let s = sim();
        let p = s.spawn(LayoutKind::Empty).unwrap();
        let mut samples = Vec::new();
        s.access_batch_sampled(p, &[], Ops::Same(Access::Read), &mut [], (1, 1), &mut samples).unwrap();
        assert_eq!(samples, [Sample { accesses: 0, rss: 0, faults: 0 }]);
        assert!(s.access_batch_sampled(p, &[0], Ops::Same(Access::Read), &mut [0], (0, 1), &mut samples).is_err());
    }

    /// The same random workload gives the same results on every VMA index.
    #[test]
    fn every_index_gives_identical_results() {
        fn run(kind: crate::vma_index::IndexKind) -> Vec<String> {
            let cfg = SimConfig {
                memory: 32 << 20,
                mm: MmConfig { index: kind, ..MmConfig::default() },
                ..SimConfig::default()
            };
            let s = Simulator::new(cfg).unwrap();
            let mut pids = vec![s.spawn(LayoutKind::Default).unwrap()];
            let mut log = Vec::new();
            let mut rng = crate::testing::XorShift::new(0x2545_f491_4f6c_dd1d);
            let mut rnd = |n: u64| rng.below(n);
            let base = 0x1000_0000u64;
            for _ in 0..3000 {
                let pid = pids[rnd(pids.len() as u64) as usize];
                let addr = base + rnd(512) * PAGE_SIZE;
                let len = (1 + rnd(16)) * PAGE_SIZE;
                let prot = ["r", "rw", "rwx", "none"][rnd(4) as usize];
                let line = match rnd(20) {
                    0..=2 => {
                        let mut req = MmapRequest::anon(len, Prot::parse(prot).unwrap());
                        req.addr = addr;
                        req.fixed = rnd(2) == 0;
                        format!("mmap {:?}", s.mmap(pid, req))
                    }
                    3 => format!("munmap {:?}", s.munmap(pid, addr, len)),
                    4 => format!("mprotect {:?}", s.mprotect(pid, addr, len, Prot::parse(prot).unwrap())),
                    5 if pids.len() < 4 => {
                        let c = s.fork(pid).unwrap();
                        pids.push(c);
                        format!("fork {c}")
                    }
                    6 if pids.len() > 1 => {
                        s.exit(pid).unwrap();
                        pids.retain(|&p| p != pid);
                        format!("exit {pid}")
                    }
                    _ => {
                        let op = Access::from_code(rnd(3) as u8).unwrap();
                        format!("access {:?}", s.access(pid, addr + rnd(PAGE_SIZE), op))
                    }
                };
                if let Err(e) = s.check() {
                    panic!(
                        "after {line} (pid {pid} addr {addr:#x} len {len:#x} prot {prot}): {e}\n{}",
                        s.maps(pid).unwrap_or_default()
                    );
                }
                log.push(line);
            }
            for &pid in &pids {
                log.push(s.maps(pid).unwrap());
                log.push(format!("{:?}", s.process_counters(pid).unwrap()));
            }
            s.check().unwrap();
            log
        }
        let reference = run(crate::vma_index::IndexKind::SortedVec);
        for kind in crate::vma_index::IndexKind::ALL {
            assert_eq!(run(kind), reference, "{} differs from sorted_vec", kind.name());
        }
    }

    #[test]
    fn bad_configuration_is_an_error() {
        assert!(Simulator::new(SimConfig { memory: 4097, ..SimConfig::default() }).is_err());
        assert!(Simulator::new(SimConfig { memory: MAX_MEMORY + PAGE_SIZE, ..SimConfig::default() }).is_err());
    }
}
