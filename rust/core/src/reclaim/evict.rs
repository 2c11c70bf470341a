//! The reclaim engine: make room by evicting the pages the policy picks.
//! It works on the faulting address space directly and reaches the others
//! through the kernel's registry with `try_lock` only (an address space busy
//! elsewhere is skipped, as Linux's reclaim skips pages it cannot lock), so
//! it never waits on a lock while holding the kernel's.

use super::{key_mm, key_va, PageKey, Probe, Reclaim};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::pagetable::pte;
use crate::phys::flags;

/// Run `f` on the address space `id`: the faulting one, or another one if
/// its lock is free right now.
fn with_mm<R>(cur: &mut Mm, k: &mut Kernel, id: u32, f: impl FnOnce(&mut Mm, &mut Kernel) -> R) -> Option<R> {
    if id == cur.id {
        return Some(f(cur, k));
    }
    let handle = k.mm_handle(id)?;
    let mut guard = handle.try_lock()?;
    Some(f(&mut guard, k))
}

/// Is a user page resident at `key`; was it accessed (the bit is cleared)?
fn probe(cur: &mut Mm, k: &mut Kernel, key: PageKey) -> Probe {
    let va = key_va(key);
    with_mm(cur, k, key_mm(key), |mm, k| {
        let Some(index) = mm.pt.leaf_index(va) else { return Probe::Gone };
        let e = mm.pt.get(index);
        if e & pte::PRESENT == 0
            || e & pte::SPECIAL != 0
            || k.phys.frame(pte::pfn(e)).flags & (flags::ANON | flags::CACHE) == 0
        {
            return Probe::Gone;
        }
        if e & pte::ACCESSED != 0 {
            mm.pt.update(index, e & !pte::ACCESSED);
            Probe::Referenced
        } else {
            Probe::Unreferenced
        }
    })
    .unwrap_or(Probe::Unreferenced) // busy elsewhere: resident, leave its bit alone
}

/// Evict the page at `key`: an anonymous page to swap, a file page out of
/// the page cache (written back first if dirty). False if it cannot go
/// (pinned by the fault in progress, no swap, shmem, or its address space busy).
fn evict(cur: &mut Mm, k: &mut Kernel, key: PageKey, pinned: Option<PageKey>) -> bool {
    if pinned == Some(key) {
        return false;
    }
    let va = key_va(key);
    with_mm(cur, k, key_mm(key), |mm, k| {
        let Some(index) = mm.pt.leaf_index(va) else { return false };
        let e = mm.pt.get(index);
        if e & pte::PRESENT == 0 || e & pte::SPECIAL != 0 {
            return false;
        }
        let pfn = pte::pfn(e);
        let frame_flags = k.phys.frame(pfn).flags;
        if frame_flags & flags::ANON != 0 && k.phys.frame(pfn).refcount == 1 && !k.swap.page_slot.contains_key(&pfn) {
            // The common case, mapped here alone: write it out and free it at once.
            let Some(slot) = k.swap.alloc() else { return false };
            k.swap.get(slot);
            k.swap.swap_outs += 1;
            mm.release_entry(k, e);
            mm.pt.update(index, pte::swap_entry(slot));
            mm.swap_ents += 1;
            mm.swap_outs += 1;
            true
        } else if frame_flags & flags::ANON != 0 {
            let slot = match k.swap.page_slot.get(&pfn) {
                Some(&s) => s,
                None => {
                    let Some(s) = k.swap.alloc() else { return false }; // no swap, or full
                    k.swap.cache_page(s, pfn, &mut k.phys);
                    s
                }
            };
            k.swap.get(slot);
            mm.release_entry(k, e);
            mm.pt.update(index, pte::swap_entry(slot));
            mm.swap_ents += 1;
            mm.swap_outs += 1;
            if k.phys.frame(pfn).mapcount == 0 {
                // Nobody maps it any more: write it out and let it go.
                k.swap.swap_outs += 1;
                k.swap.uncache(slot, &mut k.phys);
            }
            true
        } else if frame_flags & flags::FILE != 0 {
            let Some(vma) = mm.vmas.find(va) else { return false };
            let Some((id, page)) = vma.object_page(va) else { return false };
            mm.release_entry(k, e);
            mm.pt.set(index, 0);
            if k.phys.frame(pfn).mapcount == 0 {
                if k.phys.frame(pfn).flags & flags::DIRTY != 0 {
                    k.cache.stats.writebacks += 1;
                }
                k.cache.evict(id, page, &mut k.phys);
            }
            true
        } else {
            false // shmem pages are not reclaimed here
        }
    })
    .unwrap_or(false)
}

/// How short memory is: pages to free now (0 when there is room).
fn shortage(r: &Reclaim, k: &Kernel) -> u64 {
    let over_limit = r.limit.map_or(0, |l| (k.phys.user_frames() + 1).saturating_sub(l));
    let low = if k.phys.frames_free() < r.low_watermark { r.high_watermark - k.phys.frames_free() } else { 0 };
    over_limit.max(low)
}

/// Make room before a user page is allocated: evict until the shortage is
/// gone (an eviction frees nothing while another mapping still holds the
/// page); `force` asks for one page freed even when the watermarks look fine
/// (an allocation just failed). Returns the pages evicted.
pub fn make_room(cur: &mut Mm, k: &mut Kernel, force: bool) -> u64 {
    match &k.reclaim {
        Some(r) if force || shortage(r, k) > 0 => {}
        _ => return 0, // the common case: room enough
    }
    let Some(mut r) = k.reclaim.take() else { return 0 };
    let free_before = k.phys.frames_free();
    let mut evicted = 0;
    let mut failures = 0u64;
    while failures < 64 {
        let forced = force && k.phys.frames_free() <= free_before;
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
    k.reclaim = Some(r);
    evicted
}

/// Whether a resident-page limit leaves no room for one more page.
pub fn at_limit(k: &Kernel) -> bool {
    k.reclaim.as_ref().and_then(|r| r.limit).is_some_and(|l| k.phys.user_frames() >= l)
}
