//! The reclaim engine: make room by evicting the pages the policy picks.
//! It works on the faulting address space directly and reaches the others
//! through the kernel's registry with `try_lock` only (an address space busy
//! elsewhere is skipped, as Linux's reclaim skips pages it cannot lock), so
//! it never waits on a lock while holding the kernel's.

use super::memcg::{CgId, ROOT};
use super::oom::{out_of_memory, OomOutcome};
use super::rmap::Mapping;
use super::vmscan::{Reclaimer, SWAP_CLUSTER_MAX};
use super::{key_mm, key_va, Engine, PageKey, Probe, Reclaim};
use crate::kernel::{Kernel, ReclaimTarget};
use crate::mm::Mm;
use crate::pagecache::ObjectId;
use crate::pagetable::{Pte, PteFlags};
use crate::phys::{flags, FrameUse, Pfn};
use crate::vma::{Backing, VmFlags};

/// What evicting one mapping of a page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// It could not go (mlocked, no swap, shmem, nothing resident there).
    Kept,
    /// The mapping went; others still hold the page.
    Unmapped,
    /// The last mapping went and the page was freed: written to `swap_slot`
    /// (anonymous) or dropped from the page cache (file, written back if dirty).
    Freed { swap_slot: Option<u32> },
    /// A clean MADV_FREE page, dropped with nothing written.
    Discarded,
}

/// Where the address space of a key is.
pub(super) enum Target<R> {
    /// `f` ran on it (the faulting one, or another whose lock was free).
    Reached(R),
    /// Another operation holds its lock right now.
    Busy,
    /// It no longer exists (its last task exited).
    Gone,
}

/// Run `f` on the address space `id`: the faulting one, or another one if
/// its lock is free right now.
pub(super) fn with_target<R>(
    cur: &mut Mm,
    k: &mut Kernel,
    id: u32,
    f: impl FnOnce(&mut dyn ReclaimTarget, &mut Kernel) -> R,
) -> Target<R> {
    if id == cur.id {
        return Target::Reached(f(cur, k));
    }
    let Some(handle) = k.mm_handle(id) else { return Target::Gone };
    let Some(mut guard) = handle.try_lock() else { return Target::Busy };
    Target::Reached(f(&mut *guard, k))
}

/// `with_target`, when there may be no faulting address space.
pub(super) fn with_target_opt<R>(
    cur: Option<&mut Mm>,
    k: &mut Kernel,
    id: u32,
    f: impl FnOnce(&mut dyn ReclaimTarget, &mut Kernel) -> R,
) -> Target<R> {
    if let Some(cur) = cur {
        return with_target(cur, k, id, f);
    }
    let Some(handle) = k.mm_handle(id) else { return Target::Gone };
    let Some(mut guard) = handle.try_lock() else { return Target::Busy };
    Target::Reached(f(&mut *guard, k))
}

/// Is a user page resident at `key`; was it accessed (the bit is cleared)?
fn probe(cur: &mut Mm, k: &mut Kernel, key: PageKey) -> Probe {
    match with_target(cur, k, key_mm(key), |mm, k| mm.probe_page(k, key_va(key))) {
        Target::Reached(p) => p,
        Target::Busy => Probe::Unreferenced, // resident as far as we know; leave its bit alone
        Target::Gone => Probe::Gone,
    }
}

/// Evict the page at `key` unless the fault in progress pins it.
fn evict(cur: &mut Mm, k: &mut Kernel, key: PageKey, pinned: Option<PageKey>) -> bool {
    pinned != Some(key)
        && matches!(
            with_target(cur, k, key_mm(key), |mm, k| mm.evict_page(k, key_va(key))),
            Target::Reached(e) if e != Eviction::Kept
        )
}

impl ReclaimTarget for Mm {
    fn probe_page(&mut self, k: &mut Kernel, va: u64) -> Probe {
        let Some(index) = self.pt.leaf_index(va) else { return Probe::Gone };
        let e = self.pt.get(index);
        if !e.is_present() || e.is_special() || k.phys().frame(e.pfn()).flags & (flags::ANON | flags::CACHE) == 0 {
            return Probe::Gone;
        }
        if e.has(PteFlags::ACCESSED) {
            self.pt.set(index, e.without(PteFlags::ACCESSED));
            Probe::Referenced
        } else {
            Probe::Unreferenced
        }
    }

    /// An anonymous page goes to swap, a file page out of the page cache
    /// (written back first if dirty). Kept if it cannot go (no swap, or shmem).
    fn evict_page(&mut self, k: &mut Kernel, va: u64) -> Eviction {
        let Some(vma) = self.vmas.find(va).filter(|v| v.contains(va)) else { return Eviction::Kept };
        let Some(index) = self.pt.leaf_index(va) else { return Eviction::Kept };
        let e = self.pt.get(index);
        if !e.is_present() || e.is_special() {
            return Eviction::Kept;
        }
        self.evict_mapping(k, &Mapping { va, index, vma })
    }

    fn evict_mapping(&mut self, k: &mut Kernel, at: &Mapping) -> Eviction {
        let (va, index, vma) = (at.va, at.index, &at.vma);
        if vma.flags.has(VmFlags::LOCKED) {
            return Eviction::Kept; // mlocked: unevictable
        }
        let e = self.pt.get(index);
        let pfn = e.pfn();
        let frame = *k.phys().frame(pfn);
        let in_swap_cache = k.swap().slot_of(pfn);
        if frame.flags & flags::LAZYFREE != 0 {
            k.phys_mut().frame_mut(pfn).flags &= !flags::LAZYFREE;
            if !e.has(PteFlags::DIRTY) && frame.refcount == 1 && in_swap_cache.is_none() {
                // MADV_FREE'd and clean since: discarded, no swap (a later access reads zeroes).
                self.release_entry(k, e);
                self.pt.set(index, Pte::NONE);
                return Eviction::Discarded;
            }
        }
        if frame.flags & flags::ANON != 0 && frame.refcount == 1 && in_swap_cache.is_none() {
            // The common case, mapped here alone: write it out and free it at once.
            let Some(slot) = k.swap_alloc() else { return Eviction::Kept };
            k.swap_dup(slot);
            k.count_swap_out();
            self.release_entry(k, e);
            self.set_swap_entry(index, slot);
            Eviction::Freed { swap_slot: Some(slot) }
        } else if frame.flags & flags::ANON != 0 {
            let slot = match in_swap_cache {
                Some(s) => s,
                None => {
                    let Some(s) = k.swap_alloc() else { return Eviction::Kept }; // no swap, or full
                    k.swap_cache_add(s, pfn);
                    s
                }
            };
            k.swap_dup(slot);
            self.release_entry(k, e);
            self.set_swap_entry(index, slot);
            if k.phys().mapcount(pfn) == 0 {
                k.swap_write_out(slot); // nobody maps it any more: write it out and let it go
                return Eviction::Freed { swap_slot: Some(slot) };
            }
            Eviction::Unmapped
        } else if frame.flags & flags::FILE != 0 {
            let Some((id, page)) = vma.object_page(va) else { return Eviction::Kept };
            self.release_entry(k, e);
            self.pt.set(index, Pte::NONE);
            if k.phys().mapcount(pfn) == 0 {
                k.evict_cache_page(id, page, pfn);
                return Eviction::Freed { swap_slot: None };
            }
            Eviction::Unmapped
        } else {
            Eviction::Kept // shmem pages are not reclaimed here
        }
    }

    fn id(&self) -> u32 {
        self.id
    }

    fn maps(&mut self, va: u64, pfn: Pfn) -> Option<Mapping> {
        let index = self.pt.leaf_index(va)?;
        let e = self.pt.get(index);
        if !e.is_present() || e.is_special() || e.pfn() != pfn {
            return None;
        }
        let vma = *self.vmas.find_ref(va).filter(|v| v.contains(va))?;
        Some(Mapping { va, index, vma })
    }

    fn test_and_clear_young(&mut self, at: &Mapping) -> bool {
        let e = self.pt.get(at.index);
        if e.has(PteFlags::ACCESSED) {
            self.pt.set(at.index, e.without(PteFlags::ACCESSED));
            true
        } else {
            false
        }
    }

    fn object_addresses(&self, id: ObjectId, index: u64, out: &mut Vec<u64>) {
        for vma in self.vmas.all() {
            if let Backing::Object { id: vid, pgoff } = vma.backing {
                if vid == id && index >= pgoff && index < pgoff + vma.len() / crate::addr::PAGE_SIZE {
                    out.push(vma.start + (index - pgoff) * crate::addr::PAGE_SIZE);
                }
            }
        }
    }

    fn clear_young(&mut self, k: &mut Kernel, young: &mut dyn FnMut(Pfn)) {
        let mut found = Vec::new();
        for vma in self.vmas.all() {
            if vma.flags.has(VmFlags::SEQ_READ) || vma.flags.has(VmFlags::RAND_READ) {
                continue;
            }
            for (_, index, e) in self.pt.leaves(vma.start, vma.end) {
                if e.is_present() && !e.is_special() && e.has(PteFlags::ACCESSED) {
                    found.push((index, e));
                }
            }
        }
        for (index, e) in found {
            if k.phys().frame(e.pfn()).flags & (flags::ANON | flags::CACHE) != 0 {
                self.pt.set(index, e.without(PteFlags::ACCESSED));
                young(e.pfn());
            }
        }
    }

    fn memcg(&self) -> CgId {
        self.memcg
    }

    fn oom_badness(&self, totalpages: u64) -> Option<i64> {
        Mm::oom_badness(self, totalpages)
    }

    fn oom_reap(&mut self, k: &mut Kernel) {
        Mm::oom_reap(self, k);
    }

    fn addresses_mapping(&self, pfn: Pfn, out: &mut Vec<u64>) {
        for vma in self.vmas.all() {
            for (va, _, e) in self.pt.leaves(vma.start, vma.end) {
                if e.is_present() && !e.is_special() && e.pfn() == pfn {
                    out.push(va);
                }
            }
        }
    }
}

impl Mm {
    /// The page at `index` is out in swap `slot` now.
    fn set_swap_entry(&mut self, index: usize, slot: u32) {
        self.pt.set(index, Pte::swap(slot));
        self.swap_ents += 1;
        self.swap_outs += 1;
    }
}

/// How short memory is: pages to free now (0 when there is room).
fn shortage(r: &Reclaim, k: &Kernel) -> u64 {
    shortage_of(r.limit, r.low_watermark, r.high_watermark, k)
}

fn shortage_of(limit: Option<u64>, low_watermark: u64, high_watermark: u64, k: &Kernel) -> u64 {
    let (free, user) = (k.phys().frames_free(), k.phys().user_frames());
    let over_limit = limit.map_or(0, |l| (user + 1).saturating_sub(l));
    let low = if free < low_watermark { high_watermark - free } else { 0 };
    over_limit.max(low)
}

/// Make room before a user page is allocated: evict until the shortage is
/// gone (an eviction frees nothing while another mapping still holds the
/// page); `force` asks for one page freed even when the watermarks look fine
/// (an allocation just failed). Returns the pages evicted.
pub fn make_room(cur: &mut Mm, k: &mut Kernel, force: bool) -> u64 {
    match k.reclaim() {
        Some(r) if r.kind.is_linux() => return linux_make_room(Some(cur), k, force),
        Some(r) if force || shortage(r, k) > 0 => {}
        _ => return 0, // the common case: room enough
    }
    let Some(mut r) = k.take_reclaim() else { return 0 };
    let (limit, low, high, pinned) = (r.limit, r.low_watermark, r.high_watermark, r.pinned);
    let Engine::Textbook(policy) = &mut r.engine else { unreachable!("checked above") };
    let free_before = k.phys().frames_free();
    let (mut evicted, mut scans) = (0, 0);
    let mut failures = 0u64;
    while failures < 64 {
        let forced = force && k.phys().frames_free() <= free_before;
        if shortage_of(limit, low, high, k) == 0 && !forced {
            break;
        }
        let Some(victim) = policy.pick(&mut |key| probe(cur, k, key)) else { break };
        scans += 1;
        if evict(cur, k, victim, pinned) {
            evicted += 1;
        } else {
            failures += 1;
            if probe(cur, k, victim) != Probe::Gone {
                policy.mapped(victim); // still resident: back in the running
            }
        }
    }
    r.scans += scans;
    r.evictions += evicted;
    k.restore_reclaim(r);
    evicted
}

/// Run `f` on a reclaimer over Linux reclaim's state (taken out of the
/// kernel meanwhile); None under a textbook policy.
fn with_reclaimer<R>(cur: Option<&mut Mm>, k: &mut Kernel, f: impl FnOnce(&mut Reclaimer<'_>) -> R) -> Option<R> {
    let mut r = k.take_reclaim()?;
    let pinned = r.pinned;
    let Engine::Linux(lr) = &mut r.engine else {
        k.restore_reclaim(r);
        return None;
    };
    let out = f(&mut Reclaimer { cur, k: &mut *k, lr, pinned });
    restore_linux(k, r);
    Some(out)
}

/// Linux reclaim before an allocation: reclaim of everything under the
/// resident limit while it leaves no room, direct reclaim when free pages
/// are at the min watermark (or `force`: the allocation just failed).
pub fn linux_make_room(cur: Option<&mut Mm>, k: &mut Kernel, force: bool) -> u64 {
    let limit = k.reclaim().and_then(|r| r.limit);
    let Some(min) = k.reclaim().and_then(Reclaim::linux).map(|lr| lr.wmark.min) else { return 0 };
    let over_limit = limit.is_some_and(|l| k.phys().user_frames() + 1 > l);
    if !force && !over_limit && k.phys().frames_free() > min {
        return 0; // the common case: room enough, nothing to take out and put back
    }
    with_reclaimer(cur, k, |rc| {
        let mut reclaimed = 0;
        if let Some(limit) = limit {
            let over = (rc.k.phys().user_frames() + 1).saturating_sub(limit);
            if over > 0 {
                reclaimed += rc.direct(over.max(SWAP_CLUSTER_MAX), Some(ROOT));
            }
        }
        if force || rc.k.phys().frames_free() <= rc.lr.wmark.min {
            reclaimed += rc.direct(SWAP_CLUSTER_MAX, None);
        }
        reclaimed
    })
    .unwrap_or(0)
}

/// kswapd, woken by an allocation that left free pages under the low
/// watermark: it reclaims until they reach the high one.
pub fn kswapd_after_alloc(cur: Option<&mut Mm>, k: &mut Kernel) {
    let low = match k.reclaim().and_then(Reclaim::linux) {
        Some(lr) => lr.wmark.low,
        None => return,
    };
    if k.phys().frames_free() >= low {
        return;
    }
    with_reclaimer(cur, k, |rc| {
        rc.lr.stat.kswapd_low_wmark_hit += 1;
        rc.kswapd();
    });
}

/// Put Linux reclaim's state back, its scan and eviction totals brought up to date.
fn restore_linux(k: &mut Kernel, mut r: Reclaim) {
    if let Some(s) = r.linux().map(|lr| lr.stat_total()) {
        r.scans = s.pgscan_kswapd + s.pgscan_direct;
        r.evictions = s.pgsteal_kswapd + s.pgsteal_direct;
    }
    k.restore_reclaim(r);
}

/// How often a charge at `max` retries reclaim that freed nothing before
/// the OOM killer is called (MAX_RECLAIM_RETRIES).
const MAX_RECLAIM_RETRIES: u32 = 16;
/// Kills one allocation may make before it gives up (a bound, so a
/// pathological case cannot loop; Linux's would keep going).
const MAX_OOM_KILLS: u32 = 64;

/// A frame for a user page (or a page-cache page read through a file
/// descriptor, `cur` None) under Linux reclaim, charged to group `cg`:
/// the charge first (reclaiming the group at `max`, then its OOM kill),
/// then the frame (direct reclaim at the min watermark, then the machine's
/// OOM kill); afterwards kswapd below the low watermark and the group's
/// reclaim over `high`. None: out of memory, nothing left to kill (or the
/// allocating address space itself was the victim).
pub fn linux_alloc(mut cur: Option<&mut Mm>, k: &mut Kernel, usage: FrameUse, cg: CgId) -> Option<Pfn> {
    if let Some(mm) = cur.as_deref_mut() {
        k.sync_mm_charge(mm);
    }
    k.set_charging(cg, cur.is_some());
    if !try_charge(cur.as_deref_mut(), k, cg) {
        return None;
    }
    let mut kills = 0;
    let pfn = loop {
        let mut got = None;
        for force in [false, true] {
            let reclaimed = linux_make_room(cur.as_deref_mut(), k, force);
            if force && reclaimed == 0 {
                break;
            }
            if !at_limit(k) && !below_min(k) {
                got = k.phys_mut().alloc_frame(usage);
                if got.is_some() {
                    break;
                }
            }
        }
        if got.is_some() {
            break got;
        }
        kills += 1;
        if kills > MAX_OOM_KILLS || out_of_memory(cur.as_deref_mut(), k, None) != OomOutcome::KilledOther {
            break None;
        }
    };
    if pfn.is_some() {
        kswapd_after_alloc(cur.as_deref_mut(), k);
        reclaim_high(cur, k, cg);
    }
    pfn
}

/// try_charge_memcg: make room for one page in `cg` and every ancestor
/// under their `max`; false when it cannot be had.
fn try_charge(mut cur: Option<&mut Mm>, k: &mut Kernel, cg: CgId) -> bool {
    let (mut retries, mut kills) = (MAX_RECLAIM_RETRIES, 0);
    loop {
        k.drain_lru();
        let Some(lr) = k.reclaim_mut().and_then(Reclaim::linux_mut) else { return true };
        let Some(over) = lr.cgroups.over_max(cg, 1) else { return true };
        let group = &mut lr.cgroups.groups[over as usize];
        group.own_events.max += 1;
        let need = (group.usage + 1).saturating_sub(group.limits.max.unwrap_or(u64::MAX));
        let reclaimed = with_reclaimer(cur.as_deref_mut(), k, |rc| rc.direct(need.max(SWAP_CLUSTER_MAX), Some(over)));
        if reclaimed.unwrap_or(0) > 0 {
            continue;
        }
        if retries > 0 {
            retries -= 1;
            continue;
        }
        if let Some(lr) = k.reclaim_mut().and_then(Reclaim::linux_mut) {
            lr.cgroups.groups[over as usize].own_events.oom += 1;
        }
        kills += 1;
        if kills > MAX_OOM_KILLS || out_of_memory(cur.as_deref_mut(), k, Some(over)) != OomOutcome::KilledOther {
            return false;
        }
        retries = MAX_RECLAIM_RETRIES;
    }
}

/// reclaim_high: a charge left `cg` (or an ancestor) over `high`: reclaim
/// the excess from the highest such group; still over, the task would be
/// throttled (counted).
fn reclaim_high(cur: Option<&mut Mm>, k: &mut Kernel, cg: CgId) {
    let Some(lr) = k.reclaim_mut().and_then(Reclaim::linux_mut) else { return };
    let Some(g) = lr.cgroups.over_high(cg) else { return };
    lr.cgroups.groups[g as usize].own_events.high += 1;
    let excess = lr.cgroups.excess_over_high(g);
    with_reclaimer(cur, k, |rc| {
        rc.direct(excess.max(SWAP_CLUSTER_MAX), Some(g));
        rc.drain_freed();
        if rc.lr.cgroups.excess_over_high(g) > 0 {
            rc.lr.cgroups.groups[g as usize].own_throttled += 1;
        }
    });
}

/// A frame for the page cache outside any fault (read and write through a
/// file descriptor), charged to `cg`: Linux reclaim makes room as for a
/// fault; textbook policies, which only see mapped pages, take what is free.
pub fn alloc_cache_frame(k: &mut Kernel, cg: CgId) -> Option<Pfn> {
    if k.reclaim().is_some_and(|r| r.kind.is_linux()) {
        return linux_alloc(None, k, FrameUse::FileCache, cg);
    }
    k.phys_mut().alloc_frame(FrameUse::FileCache)
}

/// Whether readahead may take one more page: it never reclaims, so only
/// while no reclaim would be needed for it (below the limit, above the low
/// watermark).
pub fn room_for_readahead(k: &Kernel) -> bool {
    k.reclaim().is_none_or(|r| match r.linux() {
        Some(lr) => r.limit.is_none_or(|l| k.phys().user_frames() < l) && k.phys().frames_free() > lr.wmark.low,
        None => shortage(r, k) == 0,
    })
}

/// Under Linux reclaim, whether free pages are at the min watermark even
/// after direct reclaim: the pages below it are the kernel's reserve, and a
/// user page is refused (the OOM path).
pub fn below_min(k: &Kernel) -> bool {
    k.reclaim().and_then(Reclaim::linux).is_some_and(|lr| k.phys().frames_free() <= lr.wmark.min)
}

/// Whether a resident-page limit leaves no room for one more page.
pub fn at_limit(k: &Kernel) -> bool {
    k.reclaim().and_then(|r| r.limit).is_some_and(|l| k.phys().user_frames() >= l)
}
