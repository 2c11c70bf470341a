//! Reclaim: when memory runs short (free frames under the low watermark, or
//! resident user pages at `resident_limit`, like a memory cgroup's limit),
//! the replacement policy picks resident user pages to evict: clean file
//! pages are dropped, dirty ones written back first, anonymous pages written
//! to swap (their PTEs then hold swap entries).
//!
//! Policies see virtual pages, (address space, page number) keys, as Linux
//! 2.4's reclaim scanned page tables; they learn of pages as they are mapped
//! and ask `probe` whether a key is still resident and whether the hardware
//! set its accessed bit. One module per policy.

mod clock;
pub mod evict;
mod fifo;
pub mod folios;
mod lru;
mod lru2q;
pub mod memcg;
pub mod mglru;
pub mod oom;
mod opt;
pub mod rmap;
pub mod vmscan;
pub mod workingset;

use crate::error::{Error, Result};

/// A virtual page: address space id and page number, packed.
pub type PageKey = u64;

pub fn key(mm: u32, va: u64) -> PageKey {
    ((mm as u64) << 36) | (va >> 12)
}

pub fn key_mm(k: PageKey) -> u32 {
    (k >> 36) as u32
}

pub fn key_va(k: PageKey) -> u64 {
    (k & ((1 << 36) - 1)) << 12
}

/// Queue entries tagged with the mapping they were made for: a page mapped
/// again gets a fresh tag, so entries left from before are known stale
/// (queue policies delete lazily instead of searching their queues). Stale
/// entries are counted, and the queues compacted once they outnumber the
/// live ones, so a policy's memory follows the resident pages, not the
/// pages ever mapped.
#[derive(Default)]
pub(crate) struct Tags {
    current: rustc_hash::FxHashMap<PageKey, u64>,
    seq: u64,
    /// Entries in the queues that are no longer current.
    stale: usize,
}

pub(crate) type Tagged = (PageKey, u64);

impl Tags {
    /// A new entry for `key`, making any older one stale.
    pub fn tag(&mut self, key: PageKey) -> Tagged {
        self.seq += 1;
        if self.current.insert(key, self.seq).is_some() {
            self.stale += 1;
        }
        (key, self.seq)
    }
    pub fn is_current(&self, e: &Tagged) -> bool {
        self.current.get(&e.0) == Some(&e.1)
    }
    /// The page leaves the policy: every entry for it is stale now.
    pub fn retire(&mut self, key: PageKey) {
        if self.current.remove(&key).is_some() {
            self.stale += 1;
        }
    }
    /// A stale entry was popped from a queue.
    pub fn dropped_stale(&mut self) {
        self.stale = self.stale.saturating_sub(1);
    }
    /// Pages the policy tracks now.
    pub fn live(&self) -> usize {
        self.current.len()
    }
    /// Drop the stale entries of `queues` once they outnumber the live ones.
    pub fn compact<const N: usize>(&mut self, queues: [&mut std::collections::VecDeque<Tagged>; N]) {
        if self.stale <= self.current.len() + 64 {
            return;
        }
        for q in queues {
            q.retain(|e| self.current.get(&e.0) == Some(&e.1));
        }
        self.stale = 0;
    }
}

/// What `probe` finds at a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// No longer a resident user page there (unmapped, swapped, or gone).
    Gone,
    /// Resident, and accessed since the last probe (the bit is now cleared).
    Referenced,
    /// Resident and not accessed since the last probe.
    Unreferenced,
}

pub trait Policy: Send {
    fn name(&self) -> &'static str;
    /// A page became resident at `key`.
    fn mapped(&mut self, key: PageKey);
    /// The page at `key` was unmapped (munmap, exit, madvise, truncate): forget it.
    fn unmapped(&mut self, key: PageKey);
    /// Pages the policy tracks now (for checks: never more than were mapped and not unmapped).
    fn tracked(&self) -> usize;
    /// Every access, for policies that keep exact recency (only if `wants_every_access`).
    fn accessed(&mut self, _key: PageKey) {}
    fn wants_every_access(&self) -> bool {
        false
    }
    /// The future accesses of the running batch, for `opt`; `at` is the index reached.
    fn future(&mut self, _keys: &[PageKey]) {}
    fn advance(&mut self, _at: usize) {}
    /// Choose a victim; `probe` tells what is at a key.
    fn pick(&mut self, probe: &mut dyn FnMut(PageKey) -> Probe) -> Option<PageKey>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Fifo,
    Clock,
    Lru,
    Lru2q,
    Opt,
    /// Linux's own reclaim: physical pages on active/inactive lists (vmscan.rs).
    Linux,
    /// Linux's multi-gen LRU: generations aged by page-table walks (mglru.rs).
    Mglru,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 7] = [
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::Lru,
        PolicyKind::Lru2q,
        PolicyKind::Opt,
        PolicyKind::Linux,
        PolicyKind::Mglru,
    ];
    /// The textbook policies over virtual pages (they agree with libCacheSim).
    pub const TEXTBOOK: [PolicyKind; 5] =
        [PolicyKind::Fifo, PolicyKind::Clock, PolicyKind::Lru, PolicyKind::Lru2q, PolicyKind::Opt];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Fifo => "fifo",
            PolicyKind::Clock => "clock",
            PolicyKind::Lru => "lru",
            PolicyKind::Lru2q => "lru2q",
            PolicyKind::Opt => "opt",
            PolicyKind::Linux => "linux",
            PolicyKind::Mglru => "mglru",
        }
    }

    pub fn parse(name: &str) -> Result<PolicyKind> {
        Self::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|p| p.name()).collect();
            Error::invalid(format!("unknown policy {name:?}; choose one of {}", names.join(", ")))
        })
    }

    /// Whether the policy is Linux's physical-page reclaim rather than a textbook one.
    /// (Both of Linux's LRUs, the classic and the multi-gen one, count.)
    pub fn is_linux(self) -> bool {
        matches!(self, PolicyKind::Linux | PolicyKind::Mglru)
    }

    /// A textbook policy's state (None for Linux reclaim, which is no `Policy`).
    pub fn build(self) -> Option<Box<dyn Policy>> {
        Some(match self {
            PolicyKind::Fifo => Box::new(fifo::Fifo::default()),
            PolicyKind::Clock => Box::new(clock::Clock::default()),
            PolicyKind::Lru => Box::new(lru::Lru::default()),
            PolicyKind::Lru2q => Box::new(lru2q::Lru2q::default()),
            PolicyKind::Opt => Box::new(opt::Opt::default()),
            PolicyKind::Linux | PolicyKind::Mglru => return None,
        })
    }
}

/// Linux reclaim's knobs: vm.swappiness, vm.min_free_kbytes, vm.watermark_scale_factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxKnobs {
    pub swappiness: u32,
    /// None: as the kernel computes it at boot from the memory size.
    pub min_free_kbytes: Option<u64>,
    pub watermark_scale_factor: u64,
}

impl Default for LinuxKnobs {
    fn default() -> Self {
        LinuxKnobs {
            swappiness: vmscan::DEFAULT_SWAPPINESS,
            min_free_kbytes: None,
            watermark_scale_factor: vmscan::DEFAULT_WATERMARK_SCALE_FACTOR,
        }
    }
}

impl LinuxKnobs {
    /// The ranges Linux's sysctls accept.
    pub fn validate(&self) -> Result<()> {
        if self.swappiness > 200 {
            return Err(Error::invalid(format!("swappiness must be 0..200, got {}", self.swappiness)));
        }
        if !(1..=3000).contains(&self.watermark_scale_factor) {
            return Err(Error::invalid(format!(
                "watermark_scale_factor must be 1..3000, got {}",
                self.watermark_scale_factor
            )));
        }
        Ok(())
    }
}

/// What chooses the victims: a textbook policy over virtual pages, or
/// Linux's lists of physical pages.
pub enum Engine {
    Textbook(Box<dyn Policy>),
    Linux(Box<vmscan::LinuxLru>),
}

/// Reclaim's configuration and counters.
pub struct Reclaim {
    pub engine: Engine,
    pub kind: PolicyKind,
    /// Resident user pages allowed at most (None: only the watermarks count).
    pub limit: Option<u64>,
    pub low_watermark: u64,
    pub high_watermark: u64,
    /// Pages examined by reclaim.
    pub scans: u64,
    /// Pages evicted (anonymous to swap, file pages dropped).
    pub evictions: u64,
    /// The page of the fault in progress: never a victim.
    pub pinned: Option<PageKey>,
}

impl Reclaim {
    pub fn new(kind: PolicyKind, limit: Option<u64>, frames_total: u64, knobs: LinuxKnobs) -> Reclaim {
        let low = (frames_total / 256).max(4);
        let engine = match kind.build() {
            Some(policy) => Engine::Textbook(policy),
            None => {
                let min_free_kbytes =
                    knobs.min_free_kbytes.unwrap_or_else(|| vmscan::Watermarks::default_min_free_kbytes(frames_total));
                let wmark = vmscan::Watermarks::new(frames_total, min_free_kbytes, knobs.watermark_scale_factor);
                let mglru = kind == PolicyKind::Mglru;
                Engine::Linux(Box::new(vmscan::LinuxLru::new(frames_total, knobs.swappiness, wmark, mglru)))
            }
        };
        Reclaim {
            engine,
            kind,
            limit,
            low_watermark: low,
            high_watermark: low * 2,
            scans: 0,
            evictions: 0,
            pinned: None,
        }
    }

    /// The textbook policy, if that is what runs.
    pub fn policy(&self) -> Option<&dyn Policy> {
        match &self.engine {
            Engine::Textbook(p) => Some(p.as_ref()),
            Engine::Linux(_) => None,
        }
    }
    pub fn policy_mut(&mut self) -> Option<&mut (dyn Policy + 'static)> {
        match &mut self.engine {
            Engine::Textbook(p) => Some(p.as_mut()),
            Engine::Linux(_) => None,
        }
    }
    /// Linux reclaim's state, if that is what runs.
    pub fn linux(&self) -> Option<&vmscan::LinuxLru> {
        match &self.engine {
            Engine::Linux(l) => Some(l),
            Engine::Textbook(_) => None,
        }
    }
    pub fn linux_mut(&mut self) -> Option<&mut vmscan::LinuxLru> {
        match &mut self.engine {
            Engine::Linux(l) => Some(l),
            Engine::Textbook(_) => None,
        }
    }
}

/// Drives a policy the way reclaim does, over a memory of a few frames with
/// one accessed bit per resident page, for the policies' unit tests.
#[cfg(test)]
pub(crate) mod testkit {
    use super::{PageKey, Policy, PolicyKind, Probe};
    use std::collections::HashMap;

    /// The resident pages and their accessed bits.
    pub struct Memory {
        pub resident: HashMap<PageKey, bool>,
        pub frames: usize,
    }

    impl Memory {
        pub fn new(frames: usize) -> Memory {
            Memory { resident: HashMap::new(), frames }
        }

        /// What reclaim's `probe` answers: gone, or the bit (cleared on read).
        pub fn probe(&mut self, key: PageKey) -> Probe {
            match self.resident.get_mut(&key) {
                None => Probe::Gone,
                Some(bit) if *bit => {
                    *bit = false;
                    Probe::Referenced
                }
                Some(_) => Probe::Unreferenced,
            }
        }
    }

    /// Replay `pages` (page numbers) through `policy` on `frames` frames:
    /// a hit sets the page's accessed bit; a miss evicts the policy's pick
    /// when memory is full, then maps the page (accessed, as a fault leaves
    /// it). Returns the misses and the pages evicted, in order.
    pub fn replay(kind: PolicyKind, frames: usize, pages: &[u64]) -> (u64, Vec<PageKey>) {
        let mut policy = kind.build().expect("a textbook policy");
        let keys: Vec<PageKey> = pages.iter().map(|&p| super::key(1, p << 12)).collect();
        policy.future(&keys);
        let mut mem = Memory::new(frames);
        let (mut misses, mut evicted) = (0, Vec::new());
        for (i, &key) in keys.iter().enumerate() {
            policy.advance(i);
            if let Some(bit) = mem.resident.get_mut(&key) {
                *bit = true;
                if policy.wants_every_access() {
                    policy.accessed(key);
                }
                continue;
            }
            misses += 1;
            if mem.resident.len() == mem.frames {
                let victim = pick(policy.as_mut(), &mut mem).expect("a full memory has a victim");
                mem.resident.remove(&victim);
                evicted.push(super::key_va(victim) >> 12);
            }
            mem.resident.insert(key, true);
            policy.mapped(key);
        }
        (misses, evicted)
    }

    /// Map `pages` in order, their accessed bits clear.
    pub fn map_unreferenced(policy: &mut dyn Policy, mem: &mut Memory, pages: &[PageKey]) {
        for &page in pages {
            mem.resident.insert(page, false);
            policy.mapped(page);
        }
    }

    pub fn pick(policy: &mut dyn Policy, mem: &mut Memory) -> Option<PageKey> {
        policy.pick(&mut |k| mem.probe(k))
    }

    /// The reference string of Silberschatz's Operating System Concepts (ch. 10).
    pub const TEXTBOOK: [u64; 20] = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_address_space_and_page() {
        let k = key(7, 0x7fff_ffff_e123);
        assert_eq!((key_mm(k), key_va(k)), (7, 0x7fff_ffff_e000));
    }

    #[test]
    fn tags_make_older_entries_stale() {
        let mut tags = Tags::default();
        let first = tags.tag(5);
        let second = tags.tag(5);
        assert!(!tags.is_current(&first) && tags.is_current(&second));
        tags.retire(5);
        assert!(!tags.is_current(&second));
    }

    #[test]
    fn policy_names_parse_back() {
        for kind in PolicyKind::ALL {
            assert_eq!(PolicyKind::parse(kind.name()).unwrap(), kind);
        }
        for kind in PolicyKind::TEXTBOOK {
            assert_eq!(kind.build().unwrap().name(), kind.name());
        }
        assert!(PolicyKind::parse("mru").unwrap_err().to_string().contains("choose one of"));
    }

    #[test]
    fn watermarks_scale_with_memory() {
        let r = Reclaim::new(PolicyKind::Clock, Some(10), 1 << 20, LinuxKnobs::default());
        assert_eq!((r.low_watermark, r.high_watermark), (4096, 8192));
        assert_eq!(Reclaim::new(PolicyKind::Fifo, None, 64, LinuxKnobs::default()).low_watermark, 4);
    }
}
