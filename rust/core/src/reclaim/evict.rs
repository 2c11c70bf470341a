//! The reclaim engine: make room by evicting the pages the policy picks.
//! It works on the faulting address space directly and reaches the others
//! through the kernel's registry with `try_lock` only (an address space busy
//! elsewhere is skipped, as Linux's reclaim skips pages it cannot lock), so
//! it never waits on a lock while holding the kernel's.

use super::{key_mm, key_va, PageKey, Probe, Reclaim};
use crate::kernel::{Kernel, ReclaimTarget};
use crate::mm::Mm;
use crate::pagetable::{Pte, PteFlags};
use crate::phys::flags;

/// Where the address space of a key is.
enum Target<R> {
    /// `f` ran on it (the faulting one, or another whose lock was free).
    Reached(R),
    /// Another operation holds its lock right now.
    Busy,
    /// It no longer exists (its last task exited).
    Gone,
}

/// Run `f` on the address space `id`: the faulting one, or another one if
/// its lock is free right now.
fn with_target<R>(
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
        && matches!(with_target(cur, k, key_mm(key), |mm, k| mm.evict_page(k, key_va(key))), Target::Reached(true))
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
    /// (written back first if dirty). False if it cannot go (no swap, or shmem).
    fn evict_page(&mut self, k: &mut Kernel, va: u64) -> bool {
        let Some(vma) = self.vmas.find(va).filter(|v| v.contains(va)) else { return false };
        if vma.flags.has(crate::vma::VmFlags::LOCKED) {
            return false; // mlocked: unevictable
        }
        let Some(index) = self.pt.leaf_index(va) else { return false };
        let e = self.pt.get(index);
        if !e.is_present() || e.is_special() {
            return false;
        }
        let pfn = e.pfn();
        let frame = *k.phys().frame(pfn);
        let in_swap_cache = k.swap().slot_of(pfn);
        if frame.flags & flags::LAZYFREE != 0 {
            k.phys_mut().frame_mut(pfn).flags &= !flags::LAZYFREE;
            if !e.has(PteFlags::DIRTY) && frame.refcount == 1 && in_swap_cache.is_none() {
                // MADV_FREE'd and clean since: discarded, no swap (a later access reads zeroes).
                self.release_entry(k, e);
                self.pt.set(index, Pte::NONE);
                return true;
            }
        }
        if frame.flags & flags::ANON != 0 && frame.refcount == 1 && in_swap_cache.is_none() {
            // The common case, mapped here alone: write it out and free it at once.
            let Some(slot) = k.swap_alloc() else { return false };
            k.swap_dup(slot);
            k.count_swap_out();
            self.release_entry(k, e);
            self.set_swap_entry(index, slot);
            true
        } else if frame.flags & flags::ANON != 0 {
            let slot = match in_swap_cache {
                Some(s) => s,
                None => {
                    let Some(s) = k.swap_alloc() else { return false }; // no swap, or full
                    k.swap_cache_add(s, pfn);
                    s
                }
            };
            k.swap_dup(slot);
            self.release_entry(k, e);
            self.set_swap_entry(index, slot);
            if k.phys().mapcount(pfn) == 0 {
                k.swap_write_out(slot); // nobody maps it any more: write it out and let it go
            }
            true
        } else if frame.flags & flags::FILE != 0 {
            let Some((id, page)) = vma.object_page(va) else { return false };
            self.release_entry(k, e);
            self.pt.set(index, Pte::NONE);
            if k.phys().mapcount(pfn) == 0 {
                k.evict_cache_page(id, page, pfn);
            }
            true
        } else {
            false // shmem pages are not reclaimed here
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
    let (free, user) = (k.phys().frames_free(), k.phys().user_frames());
    let over_limit = r.limit.map_or(0, |l| (user + 1).saturating_sub(l));
    let low = if free < r.low_watermark { r.high_watermark - free } else { 0 };
    over_limit.max(low)
}

/// Make room before a user page is allocated: evict until the shortage is
/// gone (an eviction frees nothing while another mapping still holds the
/// page); `force` asks for one page freed even when the watermarks look fine
/// (an allocation just failed). Returns the pages evicted.
pub fn make_room(cur: &mut Mm, k: &mut Kernel, force: bool) -> u64 {
    match k.reclaim() {
        Some(r) if force || shortage(r, k) > 0 => {}
        _ => return 0, // the common case: room enough
    }
    let Some(mut r) = k.take_reclaim() else { return 0 };
    let free_before = k.phys().frames_free();
    let mut evicted = 0;
    let mut failures = 0u64;
    while failures < 64 {
        let forced = force && k.phys().frames_free() <= free_before;
        if shortage(&r, k) == 0 && !forced {
            break;
        }
        let Some(victim) = r.policy.pick(&mut |key| probe(cur, k, key)) else { break };
        r.scans += 1;
        if evict(cur, k, victim, r.pinned) {
            evicted += 1;
        } else {
            failures += 1;
            if probe(cur, k, victim) != Probe::Gone {
                r.policy.mapped(victim); // still resident: back in the running
            }
        }
    }
    r.evictions += evicted;
    k.restore_reclaim(r);
    evicted
}

/// Whether readahead may take one more page: it never reclaims, so only
/// while no reclaim would be needed for it (below the limit, above the low
/// watermark).
pub fn room_for_readahead(k: &Kernel) -> bool {
    k.reclaim().is_none_or(|r| shortage(r, k) == 0)
}

/// Whether a resident-page limit leaves no room for one more page.
pub fn at_limit(k: &Kernel) -> bool {
    k.reclaim().and_then(|r| r.limit).is_some_and(|l| k.phys().user_frames() >= l)
}
