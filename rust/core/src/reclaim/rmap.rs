//! Reverse mapping (mm/rmap.c): from a physical page to every PTE that maps
//! it, in every address space. An anonymous page is found where it was
//! mapped (its anchor: the address space and address of its fault) and at
//! that address in every other address space (fork shares pages at the same
//! address), with a full walk for the rare page mapped elsewhere (moved by
//! mremap); a page-cache page through the VMAs that map its object, as the
//! file's i_mmap tree finds them.
//!
//! `folio_referenced` gathers (and clears) the accessed bits of every
//! mapping; `try_to_unmap` replaces every mapping with a swap entry
//! (anonymous) or nothing (file) and frees the page once the last goes.

use super::evict::{with_target_opt, Eviction, Target};
use super::{key, key_mm, key_va, PageKey};
use crate::kernel::{Kernel, ReclaimTarget};
use crate::mm::Mm;
use crate::phys::{flags, Pfn};
use crate::vma::{VmFlags, Vma};

/// What `folio_referenced` found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Referenced {
    /// Mappings whose accessed bit was set (now cleared).
    pub ptes: u32,
    /// The flags of the VMAs that referenced it, or'd.
    pub vm_exec: bool,
    /// A mapping lies in a VM_LOCKED VMA: the page is mlocked.
    pub locked: bool,
    /// Some address space holding a mapping was busy (rmap lock contention).
    pub busy: bool,
}

/// A PTE that maps the page being reclaimed: its address, where the PTE
/// sits in the page table (so the visit need not walk to it again) and its VMA.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub va: u64,
    pub index: usize,
    pub vma: Vma,
}

/// The faulting address space, if reclaim runs inside a fault (file I/O has none).
pub type Current<'a> = Option<&'a mut Mm>;

/// The address spaces to look in, the faulting one first, then the anchor's.
fn address_spaces(cur: &Current, k: &Kernel, first: u32) -> Vec<u32> {
    let cur_id = cur.as_ref().map_or(0, |m| m.id);
    let mut ids: Vec<u32> = [cur_id, first].into_iter().filter(|&id| id != 0).collect();
    ids.dedup();
    ids.extend(k.mm_ids().filter(|&id| id != cur_id && id != first));
    ids
}

/// Visit every mapping of `pfn` (its anchor says where to look): `visit`
/// gets the address space, the kernel and the mapping.
/// Returns whether an address space holding a mapping may have been skipped
/// because it was busy.
pub fn for_each_mapping(
    cur: &mut Current,
    k: &mut Kernel,
    pfn: Pfn,
    anchor: PageKey,
    mut visit: impl FnMut(&mut dyn ReclaimTarget, &mut Kernel, &Mapping),
) -> bool {
    let mut left = k.phys().mapcount(pfn);
    if left == 0 {
        return false;
    }
    let object = k.phys().frame(pfn).flags & flags::CACHE != 0;
    let first = if object { 0 } else { key_mm(anchor) };
    if !object && left == 1 && first != 0 {
        // The common case: an anonymous page mapped once, where it was faulted in.
        let va = key_va(anchor);
        let mut found = false;
        let reached = with_target_opt(cur.as_deref_mut(), k, first, |t, k| {
            if let Some(at) = t.maps(va, pfn) {
                visit(t, k, &at);
                found = true;
            }
        });
        if found || matches!(reached, Target::Busy) {
            return !found;
        }
    }
    let mut busy = false;
    let mut vas = Vec::new();
    let mut seen: Vec<PageKey> = Vec::new();
    for id in address_spaces(cur, k, first) {
        let reached = with_target_opt(cur.as_deref_mut(), k, id, |t, k| {
            vas.clear();
            if object {
                t.object_addresses(key_mm(anchor), key_va(anchor) >> 12, &mut vas);
            } else {
                vas.push(key_va(anchor));
            }
            for &va in &vas {
                if let Some(at) = t.maps(va, pfn) {
                    visit(t, k, &at);
                    seen.push(key(id, va));
                    left -= 1;
                }
            }
        });
        busy |= matches!(reached, Target::Busy);
        if left == 0 {
            return busy;
        }
    }
    if object || busy {
        return busy;
    }
    // Mapped somewhere else too (an mremap moved it): the slow walk.
    for id in address_spaces(cur, k, first) {
        let _ = with_target_opt(cur.as_deref_mut(), k, id, |t, k| {
            vas.clear();
            t.addresses_mapping(pfn, &mut vas);
            for &va in &vas {
                if !seen.contains(&key(id, va)) {
                    if let Some(at) = t.maps(va, pfn) {
                        visit(t, k, &at);
                    }
                }
            }
        });
    }
    busy
}

/// The aging's page-table walk (lru_gen_mm_walk, without its Bloom
/// filters): in every address space, each present PTE of a user page whose
/// accessed bit is set has it cleared and its frame passed to `young`; VMAs
/// with no recency (MADV_SEQUENTIAL, MADV_RANDOM) are passed over. Address
/// spaces busy elsewhere are skipped.
pub fn for_each_young(cur: &mut Current, k: &mut Kernel, mut young: impl FnMut(Pfn)) {
    for id in address_spaces(cur, k, 0) {
        let _ = with_target_opt(cur.as_deref_mut(), k, id, |t, k| t.clear_young(k, &mut young));
    }
}

/// folio_referenced: how many mappings accessed the page since the last
/// look (their bits are cleared), and the VMA flags that matter. Mappings
/// in VMAs read sequentially or randomly (MADV_SEQUENTIAL/RANDOM) have no
/// recency and are not counted (vma_has_recency).
pub fn folio_referenced(cur: &mut Current, k: &mut Kernel, pfn: Pfn, anchor: PageKey) -> Referenced {
    let mut r = Referenced::default();
    r.busy = for_each_mapping(cur, k, pfn, anchor, |t, _, at| {
        let vma = &at.vma;
        if vma.flags.has(VmFlags::LOCKED) {
            r.locked = true;
        }
        if vma.flags.has(VmFlags::SEQ_READ) || vma.flags.has(VmFlags::RAND_READ) {
            return;
        }
        if t.test_and_clear_young(at) {
            r.ptes += 1;
            r.vm_exec |= vma.prot.exec();
        }
    });
    r
}

/// What reclaiming a page came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// Still mapped somewhere (a mapping could not go), or it could not be
    /// written out: it stays.
    Kept,
    /// Freed; for an anonymous page, the swap slot it went to.
    Freed { swap_slot: Option<u32> },
    /// A clean MADV_FREE page: dropped, nothing written (no shadow).
    Discarded,
}

/// try_to_unmap, then pageout and __remove_mapping: unmap the page from
/// every PTE (never the page of the fault in progress, `pinned`) and free it.
pub fn reclaim_folio(
    cur: &mut Current,
    k: &mut Kernel,
    pfn: Pfn,
    anchor: PageKey,
    pinned: Option<PageKey>,
) -> Unmapped {
    let mut last = Eviction::Kept;
    let mut refused = false;
    for_each_mapping(cur, k, pfn, anchor, |t, k, at| {
        if pinned == Some(key(t.id(), at.va)) {
            refused = true;
            return;
        }
        match t.evict_mapping(k, at) {
            Eviction::Kept => refused = true,
            e => last = e,
        }
    });
    if refused || k.phys().mapcount(pfn) > 0 {
        return Unmapped::Kept;
    }
    match last {
        Eviction::Freed { swap_slot } => Unmapped::Freed { swap_slot },
        Eviction::Discarded => Unmapped::Discarded,
        Eviction::Unmapped => Unmapped::Kept,
        Eviction::Kept => free_unmapped(k, pfn, anchor),
    }
}

/// A page no PTE maps: a page-cache page leaves the cache (written back
/// first if dirty), an anonymous one in the swap cache is written out.
fn free_unmapped(k: &mut Kernel, pfn: Pfn, anchor: PageKey) -> Unmapped {
    let frame_flags = k.phys().frame(pfn).flags;
    if frame_flags & flags::FILE != 0 {
        k.evict_cache_page(key_mm(anchor), key_va(anchor) >> 12, pfn);
        Unmapped::Freed { swap_slot: None }
    } else if let (true, Some(slot)) = (frame_flags & flags::ANON != 0, k.swap().slot_of(pfn)) {
        k.swap_write_out(slot);
        Unmapped::Freed { swap_slot: Some(slot) }
    } else {
        Unmapped::Kept // shmem is not swapped
    }
}
