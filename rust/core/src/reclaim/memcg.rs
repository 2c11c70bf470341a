//! Memory cgroups with v2 semantics (mm/memcontrol.c, the cgroup-v2 admin
//! guide): a tree of groups, each with its own lruvec, its limits (`max`,
//! `high`, `low`, `swap.max`), hierarchical page counters (a page charged
//! to a group counts in every ancestor), its events and its peak.
//!
//! Charges: a user page is charged to the group of the task that allocated
//! it when it joins its lruvec and uncharged when it is freed; a swap slot
//! to the group of the page written to it, until the slot is freed; kernel
//! memory (page tables, and the mm_struct and vm_area_struct slab objects)
//! to the group the address space was in when it was allocated. Moving a
//! process moves no charge, as in cgroup v2: only later allocations go to
//! the new group.

use crate::error::{Error, Result};

/// A memory cgroup's index: the same as its lruvec's. The root is 0.
pub type CgId = u16;
pub const ROOT: CgId = 0;
/// The most groups one simulation makes (the root included).
pub const MAX_CGROUPS: usize = 4096;

/// The limits of a group, in pages (`None`: "max", no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max: Option<u64>,
    pub high: Option<u64>,
    /// Best-effort protection: node or ancestor reclaim leaves the group
    /// alone while its usage is within it, unless nothing else can go.
    pub low: u64,
    pub swap_max: Option<u64>,
}

/// memory.events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// Reclaimed despite being under `low` (nothing unprotected was left).
    pub low: u64,
    /// Usage went over `high` and the group was reclaimed.
    pub high: u64,
    /// A charge found usage at `max` and reclaimed the group.
    pub max: u64,
    /// Reclaim at `max` failed: the OOM killer was invoked.
    pub oom: u64,
    /// A process in the group was OOM-killed.
    pub oom_kill: u64,
}

impl Events {
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [("low", self.low), ("high", self.high), ("max", self.max), ("oom", self.oom), ("oom_kill", self.oom_kill)]
    }
    fn add(&mut self, o: &Events) {
        self.low += o.low;
        self.high += o.high;
        self.max += o.max;
        self.oom += o.oom;
        self.oom_kill += o.oom_kill;
    }
}

/// Kernel memory charged to a group, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelMem {
    pub pagetables: u64,
    pub slab: u64,
}

pub struct MemCgroup {
    pub name: String,
    pub parent: Option<CgId>,
    pub limits: Limits,
    /// Pages charged here and below: user pages plus kernel memory rounded up
    /// to pages (memory.current / 4096).
    pub usage: u64,
    pub peak: u64,
    /// Swap slots charged here and below (memory.swap.current / 4096).
    pub swap_usage: u64,
    pub swap_peak: u64,
    /// User pages charged to this group itself (not its children).
    pub own_pages: u64,
    pub own_swap: u64,
    pub own_kernel: KernelMem,
    /// This group's own events; `memory.events` adds the children's.
    pub own_events: Events,
    /// Charges that left usage over `high` even after reclaim: where Linux
    /// would make the task sleep (mem_cgroup_handle_over_high's penalty).
    pub own_throttled: u64,
}

impl MemCgroup {
    fn new(name: String, parent: Option<CgId>, limits: Limits) -> MemCgroup {
        MemCgroup {
            name,
            parent,
            limits,
            usage: 0,
            peak: 0,
            swap_usage: 0,
            swap_peak: 0,
            own_pages: 0,
            own_swap: 0,
            own_kernel: KernelMem::default(),
            own_events: Events::default(),
            own_throttled: 0,
        }
    }

    /// Pages the kernel memory of this group itself takes, rounded up.
    fn kernel_pages(k: &KernelMem) -> u64 {
        (k.pagetables + k.slab).div_ceil(crate::addr::PAGE_SIZE)
    }
}

/// The groups, root first; a group's index is its lruvec's.
pub struct Cgroups {
    pub groups: Vec<MemCgroup>,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups { groups: vec![MemCgroup::new(String::new(), None, Limits::default())] }
    }
}

impl Cgroups {
    pub fn len(&self) -> usize {
        self.groups.len()
    }
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    /// Whether any group besides the root exists (the fast paths skip charging otherwise).
    pub fn in_use(&self) -> bool {
        self.groups.len() > 1
    }
    pub fn get(&self, id: CgId) -> &MemCgroup {
        &self.groups[id as usize]
    }

    /// A new group under `parent` (the root when None).
    pub fn create(&mut self, name: &str, parent: Option<CgId>, limits: Limits) -> Result<CgId> {
        let parent = parent.unwrap_or(ROOT);
        if parent as usize >= self.groups.len() {
            return Err(Error::invalid(format!("no memory cgroup {parent}")));
        }
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::invalid(format!("a cgroup name is one non-empty path component, got {name:?}")));
        }
        if self.groups.iter().any(|g| g.parent == Some(parent) && g.name == name) {
            return Err(Error::sys(crate::error::Errno::EEXIST, format!("cgroup {name:?} exists already")));
        }
        if self.groups.len() >= MAX_CGROUPS {
            return Err(Error::invalid(format!("at most {MAX_CGROUPS} memory cgroups")));
        }
        self.groups.push(MemCgroup::new(name.to_string(), Some(parent), limits));
        Ok((self.groups.len() - 1) as CgId)
    }

    /// The group and its ancestors, the group first.
    pub fn ancestors(&self, id: CgId) -> impl Iterator<Item = CgId> + '_ {
        std::iter::successors(Some(id), |&g| self.groups[g as usize].parent)
    }

    /// Whether `id` is `root` or below it.
    pub fn is_within(&self, id: CgId, root: CgId) -> bool {
        self.ancestors(id).any(|g| g == root)
    }

    /// The groups at `root` and below, `root` first.
    pub fn subtree(&self, root: CgId) -> Vec<CgId> {
        (0..self.groups.len() as CgId).filter(|&g| self.is_within(g, root)).collect()
    }

    /// The path of a group as cgroupfs shows it ("/" for the root).
    pub fn path(&self, id: CgId) -> String {
        let mut parts: Vec<&str> = self.ancestors(id).map(|g| self.groups[g as usize].name.as_str()).collect();
        parts.pop(); // the root's empty name
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn add_usage(&mut self, id: CgId, pages: i64) {
        let mut at = Some(id);
        while let Some(g) = at {
            let c = &mut self.groups[g as usize];
            c.usage = c.usage.saturating_add_signed(pages);
            c.peak = c.peak.max(c.usage);
            at = c.parent;
        }
    }

    /// A user page joins the group `id`; `uncharge_page` is its opposite.
    pub fn charge_page(&mut self, id: CgId) {
        self.groups[id as usize].own_pages += 1;
        self.add_usage(id, 1);
    }
    pub fn uncharge_page(&mut self, id: CgId) {
        let own = &mut self.groups[id as usize].own_pages;
        debug_assert!(*own > 0, "uncharging a page the group does not hold");
        *own = own.saturating_sub(1);
        self.add_usage(id, -1);
    }

    pub fn charge_swap(&mut self, id: CgId, slots: i64) {
        let own = &mut self.groups[id as usize].own_swap;
        *own = own.saturating_add_signed(slots);
        let mut at = Some(id);
        while let Some(g) = at {
            let c = &mut self.groups[g as usize];
            c.swap_usage = c.swap_usage.saturating_add_signed(slots);
            c.swap_peak = c.swap_peak.max(c.swap_usage);
            at = c.parent;
        }
    }

    /// Kernel memory of group `id` changes by `pagetables` and `slab` bytes.
    pub fn charge_kernel(&mut self, id: CgId, pagetables: i64, slab: i64) {
        let g = &mut self.groups[id as usize];
        let before = MemCgroup::kernel_pages(&g.own_kernel);
        g.own_kernel.pagetables = g.own_kernel.pagetables.saturating_add_signed(pagetables);
        g.own_kernel.slab = g.own_kernel.slab.saturating_add_signed(slab);
        let after = MemCgroup::kernel_pages(&g.own_kernel);
        self.add_usage(id, after as i64 - before as i64);
    }

    /// The nearest of `id` and its ancestors whose usage leaves no room for
    /// `pages` more under `max`.
    pub fn over_max(&self, id: CgId, pages: u64) -> Option<CgId> {
        self.ancestors(id).find(|&g| {
            let c = &self.groups[g as usize];
            c.limits.max.is_some_and(|max| c.usage + pages > max)
        })
    }

    /// The highest of `id` and its ancestors whose usage is over `high`.
    pub fn over_high(&self, id: CgId) -> Option<CgId> {
        self.ancestors(id).filter(|&g| self.excess_over_high(g) > 0).last()
    }

    pub fn excess_over_high(&self, g: CgId) -> u64 {
        let c = &self.groups[g as usize];
        c.limits.high.map_or(0, |high| c.usage.saturating_sub(high))
    }

    /// Swap slots the group `id` may still take under its and its ancestors' `swap.max`.
    pub fn swap_room(&self, id: CgId) -> u64 {
        self.ancestors(id)
            .filter_map(|g| {
                let c = &self.groups[g as usize];
                c.limits.swap_max.map(|m| m.saturating_sub(c.swap_usage))
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Whether reclaim from above should leave the group alone (usage within `low`).
    pub fn below_low(&self, id: CgId) -> bool {
        let c = &self.groups[id as usize];
        id != ROOT && c.limits.low > 0 && c.usage <= c.limits.low
    }

    /// memory.events: the group's own events and those of every group below it.
    pub fn events(&self, id: CgId) -> Events {
        let mut e = Events::default();
        for g in self.subtree(id) {
            e.add(&self.groups[g as usize].own_events);
        }
        e
    }

    pub fn throttled(&self, id: CgId) -> u64 {
        self.subtree(id).iter().map(|&g| self.groups[g as usize].own_throttled).sum()
    }

    /// Kernel memory charged here and below.
    pub fn kernel(&self, id: CgId) -> KernelMem {
        let mut k = KernelMem::default();
        for g in self.subtree(id) {
            let o = &self.groups[g as usize].own_kernel;
            k.pagetables += o.pagetables;
            k.slab += o.slab;
        }
        k
    }

    /// For `sim.check()`: every hierarchical counter is the sum of the
    /// charges at and below its group, and `own_pages` what the lruvecs hold.
    pub fn check(&self, lruvec_pages: impl Fn(CgId) -> u64) -> std::result::Result<(), String> {
        for (i, c) in self.groups.iter().enumerate() {
            let id = i as CgId;
            if c.own_pages != lruvec_pages(id) {
                return Err(format!(
                    "memcg {}: {} pages charged, its lruvec holds {}",
                    self.path(id),
                    c.own_pages,
                    lruvec_pages(id)
                ));
            }
            let below = self.subtree(id);
            let usage: u64 = below
                .iter()
                .map(|&g| {
                    let o = &self.groups[g as usize];
                    o.own_pages + MemCgroup::kernel_pages(&o.own_kernel)
                })
                .sum();
            let swap: u64 = below.iter().map(|&g| self.groups[g as usize].own_swap).sum();
            if usage != c.usage || swap != c.swap_usage {
                return Err(format!(
                    "memcg {}: usage {} and swap {} pages, its charges add up to {usage} and {swap}",
                    self.path(id),
                    c.usage,
                    c.swap_usage
                ));
            }
        }
        Ok(())
    }
}

/// The kernel memory one address space has charged, by group: a process
/// moved to another group leaves what it charged before where it was.
#[derive(Debug, Clone, Default)]
pub struct MmCharge {
    /// (group, page-table bytes, slab bytes), the current group last.
    parts: Vec<(CgId, u64, u64)>,
}

impl MmCharge {
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Bring the charges in line with what the address space holds now:
    /// growth goes to `cg`, shrinkage comes off the latest charges first.
    /// Returns the changes to apply, per group.
    pub fn sync(&mut self, cg: CgId, pagetables: u64, slab: u64) -> Vec<(CgId, i64, i64)> {
        let (have_pt, have_slab) = self.parts.iter().fold((0, 0), |(p, s), &(_, a, b)| (p + a, s + b));
        if have_pt == pagetables && have_slab == slab && self.parts.last().is_none_or(|p| p.0 == cg) {
            return Vec::new();
        }
        let mut changes = Vec::new();
        if self.parts.last().is_none_or(|p| p.0 != cg) {
            self.parts.push((cg, 0, 0));
        }
        let mut shrink = |want: u64, have: u64, pick: fn(&mut (CgId, u64, u64)) -> &mut u64, pt: bool| {
            if want == have {
                return;
            }
            if want > have {
                let last = self.parts.last_mut().expect("pushed above");
                *pick(last) += want - have;
                changes.push(if pt { (cg, (want - have) as i64, 0) } else { (cg, 0, (want - have) as i64) });
                return;
            }
            let mut excess = have - want;
            for part in self.parts.iter_mut().rev() {
                let take = excess.min(*pick(part));
                *pick(part) -= take;
                excess -= take;
                if take > 0 {
                    changes.push(if pt { (part.0, -(take as i64), 0) } else { (part.0, 0, -(take as i64)) });
                }
            }
        };
        shrink(pagetables, have_pt, |p| &mut p.1, true);
        shrink(slab, have_slab, |p| &mut p.2, false);
        self.parts.retain(|p| p.1 + p.2 > 0 || p.0 == cg);
        changes
    }
}

/// What `cg.stat()` and the group's properties show, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupInfo {
    pub path: String,
    /// In pages.
    pub limits: Limits,
    /// memory.current and memory.peak, in bytes.
    pub current: u64,
    pub peak: u64,
    /// memory.swap.current and memory.swap.peak, in bytes.
    pub swap_current: u64,
    pub swap_peak: u64,
    pub events: Events,
    pub throttled: u64,
    /// memory.stat: sizes in bytes, events in counts, in the kernel's order.
    pub stat: Vec<(&'static str, u64)>,
}

/// Read group `cg` (Linux reclaim on, frees drained).
pub fn info(k: &crate::kernel::Kernel, lr: &super::vmscan::LinuxLru, cg: CgId) -> CgroupInfo {
    use super::folios::Lru;
    use crate::phys::flags;
    let page = crate::addr::PAGE_SIZE;
    let c = lr.cgroups.get(cg);
    // The anon lists hold shmem too; the frames tell them apart.
    let (mut anon, mut file, mut shmem, mut dirty, mut swapcached) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for g in lr.cgroups.subtree(cg) {
        let lists = &lr.lruvecs[g as usize].lists;
        for lru in Lru::ALL {
            for pfn in lists.walk(&lr.folios, lru) {
                let f = k.phys().frame(pfn).flags;
                if f & flags::ANON != 0 {
                    anon += 1;
                    swapcached += k.swap().slot_of(pfn).is_some() as u64;
                } else {
                    file += 1;
                    shmem += (!lr.folios.is_file(pfn)) as u64;
                    dirty += (f & flags::DIRTY != 0) as u64;
                }
            }
        }
    }
    let kmem = lr.cgroups.kernel(cg);
    let v = lr.stat_of(cg);
    let lru = |l: Lru| lr.lru_of(cg, l) * page;
    let stat = vec![
        ("anon", anon * page),
        ("file", file * page),
        ("kernel", kmem.pagetables + kmem.slab),
        ("pagetables", kmem.pagetables),
        ("shmem", shmem * page),
        ("file_dirty", dirty * page),
        ("swapcached", swapcached * page),
        ("inactive_anon", lru(Lru::InactiveAnon)),
        ("active_anon", lru(Lru::ActiveAnon)),
        ("inactive_file", lru(Lru::InactiveFile)),
        ("active_file", lru(Lru::ActiveFile)),
        ("unevictable", lru(Lru::Unevictable)),
        ("slab_unreclaimable", kmem.slab),
        ("slab", kmem.slab),
        ("workingset_refault_anon", v.workingset_refault_anon),
        ("workingset_refault_file", v.workingset_refault_file),
        ("workingset_activate_anon", v.workingset_activate_anon),
        ("workingset_activate_file", v.workingset_activate_file),
        ("workingset_restore_anon", v.workingset_restore_anon),
        ("workingset_restore_file", v.workingset_restore_file),
        ("pgscan", v.pgscan_kswapd + v.pgscan_direct),
        ("pgsteal", v.pgsteal_kswapd + v.pgsteal_direct),
        ("pgscan_kswapd", v.pgscan_kswapd),
        ("pgscan_direct", v.pgscan_direct),
        ("pgsteal_kswapd", v.pgsteal_kswapd),
        ("pgsteal_direct", v.pgsteal_direct),
        ("pgrefill", v.pgrefill),
        ("pgactivate", v.pgactivate),
        ("pgdeactivate", v.pgdeactivate),
        ("unevictable_pgs_culled", v.unevictable_pgs_culled),
        ("unevictable_pgs_mlocked", v.unevictable_pgs_mlocked),
        ("unevictable_pgs_munlocked", v.unevictable_pgs_munlocked),
    ];
    CgroupInfo {
        path: lr.cgroups.path(cg),
        limits: c.limits,
        current: c.usage * page,
        peak: c.peak * page,
        swap_current: c.swap_usage * page,
        swap_peak: c.swap_peak * page,
        events: lr.cgroups.events(cg),
        throttled: lr.cgroups.throttled(cg),
        stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_count_in_every_ancestor() {
        let mut cg = Cgroups::default();
        let a = cg.create("a", None, Limits { max: Some(10), ..Limits::default() }).unwrap();
        let b = cg.create("b", Some(a), Limits { max: Some(4), ..Limits::default() }).unwrap();
        for _ in 0..4 {
            cg.charge_page(b);
        }
        assert_eq!((cg.get(ROOT).usage, cg.get(a).usage, cg.get(b).usage), (4, 4, 4));
        assert_eq!(cg.over_max(b, 1), Some(b), "b is full, a is not");
        cg.uncharge_page(b);
        assert_eq!(cg.over_max(b, 1), None);
        assert_eq!(cg.get(b).peak, 4);
        assert_eq!(cg.path(b), "/a/b");
        assert!(cg.create("b", Some(a), Limits::default()).is_err(), "names are unique among siblings");
        cg.check(|g| if g == b { 3 } else { 0 }).unwrap();
    }

    #[test]
    fn kernel_charges_stay_where_they_were_made() {
        let mut m = MmCharge::default();
        assert_eq!(m.sync(1, 8192, 100), vec![(1, 8192, 0), (1, 0, 100)]);
        // Moved to group 2: growth goes there, shrinkage comes off the latest first.
        assert_eq!(m.sync(2, 12288, 100), vec![(2, 4096, 0)]);
        assert_eq!(m.sync(2, 4096, 100), vec![(2, -4096, 0), (1, -4096, 0)]);
        assert_eq!(m.sync(2, 0, 0), vec![(1, -4096, 0), (1, 0, -100)]);
        assert!(m.sync(2, 0, 0).is_empty());
    }
}
