//! `check()`: every invariant the simulation must keep, verified from
//! scratch. Reference and map counts are recomputed from the page tables and
//! the page cache and compared with what the frame table says.

use crate::addr::{is_page_aligned, TASK_SIZE, USER_HALF_END};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::phys::flags;
use crate::vma::Backing;
use std::collections::HashMap;

pub fn check_all(mms: &[&Mm], k: &Kernel) -> Result<(), String> {
    let is_free = k.phys().check()?;
    let n = k.phys().nframes() as usize;
    let mut refs = vec![0u32; n];
    let mut maps = vec![0u32; n];
    let mut mappers: HashMap<u32, u32> = HashMap::new();
    let mut swap_refs: HashMap<u32, u32> = HashMap::new();
    let mut tables = 0u64;
    for (i, mm) in mms.iter().enumerate() {
        check_mm(mm, k, &mut refs, &mut maps, &mut mappers, &mut swap_refs)
            .map_err(|e| format!("address space #{i}: {e}"))?;
        tables += mm.pt.table_frames().len() as u64;
    }
    // Committed_AS is what the accounted VMAs and shmem objects hold.
    let charged: u64 =
        mms.iter().flat_map(|mm| mm.vmas.all()).map(|v| v.committed_pages()).sum::<u64>() + k.shmem_committed();
    if charged != k.committed() {
        return Err(format!("Committed_AS is {} pages but mappings hold {charged}", k.committed()));
    }
    // Reclaim forgets a page when it goes: it never tracks more pages than are mapped.
    if let Some(policy) = k.reclaim().and_then(crate::reclaim::Reclaim::policy) {
        let mapped: u64 = mms.iter().map(|mm| mm.rss()).sum();
        if policy.tracked() as u64 > mapped {
            return Err(format!(
                "the {} policy tracks {} pages but only {mapped} are mapped",
                policy.name(),
                policy.tracked()
            ));
        }
    }
    // Linux reclaim: every resident user page on exactly one LRU list.
    if let Some(lr) = k.reclaim().and_then(crate::reclaim::Reclaim::linux) {
        let phys = k.phys();
        let listed = lr.check(|pfn| {
            pfn < phys.nframes()
                && phys.frame(pfn).refcount > 0
                && phys.frame(pfn).flags & (flags::ANON | flags::CACHE) != 0
        })?;
        if listed != phys.user_frames() {
            return Err(format!(
                "LRU: {listed} folios on the lists, but {} user pages are resident",
                phys.user_frames()
            ));
        }
    }
    for (id, live_mappers, pages) in k.cache().live() {
        let seen = mappers.remove(&id).unwrap_or(0);
        if seen != live_mappers {
            return Err(format!("page-cache object {id}: {live_mappers} mappers counted, {seen} VMAs map it"));
        }
        for pfn in pages {
            if k.phys().frame(pfn).flags & flags::CACHE == 0 {
                return Err(format!("frame {pfn} is in the page cache without the cache flag"));
            }
            refs[pfn as usize] += 1;
        }
    }
    if let Some((id, _)) = mappers.into_iter().next() {
        return Err(format!("a VMA maps page-cache object {id}, which does not exist"));
    }
    // Swap: each slot's count is the PTEs holding it; a swap-cache page holds
    // one reference on its frame.
    for (slot, r) in k.swap().in_use() {
        if swap_refs.remove(&slot) != Some(r) {
            return Err(format!("swap slot {slot} counts {r} references, page tables disagree"));
        }
    }
    if let Some((slot, n)) = swap_refs.into_iter().next() {
        return Err(format!("{n} swap entries point at free swap slot {slot}"));
    }
    for (slot, pfn) in k.swap().cached() {
        if k.phys().frame(pfn).flags & flags::ANON == 0 || k.swap().slot_of(pfn) != Some(slot) {
            return Err(format!("swap-cache page {pfn} of slot {slot} is not an anonymous page mapped back to it"));
        }
        refs[pfn as usize] += 1;
    }
    // Kernel allocations: one reference per frame they hold.
    k.kalloc().slab.check(k.phys())?;
    k.kalloc().vmalloc.check()?;
    for pfn in k.kalloc().frames() {
        refs[pfn as usize] += 1;
    }
    // mm_structs: one per live address space, plus those a lazy-TLB grab
    // keeps after exit_mmap, each still holding its PGD.
    let live_mms = k.mm_structs().values().filter(|r| !r.exited).count();
    if live_mms != mms.len() {
        return Err(format!("{live_mms} live mm_structs for {} address spaces", mms.len()));
    }
    for (addr, r) in k.mm_structs() {
        if r.count == 0 {
            return Err(format!("mm_struct {addr:#x} has mm_count 0 but was not freed"));
        }
        if r.exited {
            refs[r.pgd as usize] += 1;
            tables += 1;
        }
    }
    if tables != k.phys().table_frames() {
        return Err(format!("{} page-table frames allocated, address spaces hold {tables}", k.phys().table_frames()));
    }
    let zero = k.phys().zero_pfn() as usize;
    for pfn in 0..n {
        let f = k.phys().frame(pfn as u32);
        if pfn == zero {
            if f.refcount != 1 || f.flags & flags::ZERO == 0 {
                return Err("the zero page lost its pin or its flag".into());
            }
            continue;
        }
        if is_free[pfn] {
            continue;
        }
        if f.refcount != refs[pfn] {
            return Err(format!(
                "frame {pfn}: refcount {} but {} references found (flags {:#x})",
                f.refcount, refs[pfn], f.flags
            ));
        }
        let mapcount = k.phys().mapcount(pfn as u32);
        if f.flags & flags::SLAB == 0 && mapcount != maps[pfn] {
            return Err(format!("frame {pfn}: mapcount {mapcount} but mapped by {} PTEs", maps[pfn]));
        }
    }
    Ok(())
}

fn check_mm(
    mm: &Mm,
    k: &Kernel,
    refs: &mut [u32],
    maps: &mut [u32],
    mappers: &mut HashMap<u32, u32>,
    swap_refs: &mut HashMap<u32, u32>,
) -> Result<(), String> {
    mm.vmas.check()?;
    if mm.vma_objects() != mm.vmas.len() {
        return Err(format!("{} vm_area_struct objects for {} VMAs", mm.vma_objects(), mm.vmas.len()));
    }
    match k.mm_structs().get(&mm.mm_struct) {
        Some(r) if !r.exited && r.pgd == mm.pt.pgd_pfn() => {}
        _ => return Err(format!("mm_struct {:#x} is not registered with its PGD", mm.mm_struct)),
    }
    mm.pt.check()?;
    let vmas = mm.vmas.all();
    if vmas.len() != mm.vmas.len() {
        return Err("VMA index length disagrees with its contents".into());
    }
    if vmas.len() > mm.cfg.max_map_count {
        return Err(format!("{} VMAs exceed max_map_count", vmas.len()));
    }
    for (i, v) in vmas.iter().enumerate() {
        if !is_page_aligned(v.start) || !is_page_aligned(v.end) || v.start >= v.end || v.end > TASK_SIZE {
            return Err(format!("bad VMA {:#x}-{:#x}", v.start, v.end));
        }
        if i > 0 && vmas[i - 1].end > v.start {
            return Err(format!("VMAs overlap at {:#x}", v.start));
        }
        // Adjacent compatible VMAs are merged by every path but stack growth,
        // which (as in Linux) may grow a stack up against one and leave both.
        if i > 0 && vmas[i - 1].can_merge_with(v) && !v.growsdown() {
            return Err(format!("VMAs at {:#x} and {:#x} should have been merged", vmas[i - 1].start, v.start));
        }
        if let Backing::Object { id, .. } = v.backing {
            *mappers.entry(id).or_default() += 1;
        }
    }
    for pfn in mm.pt.table_frames() {
        if k.phys().frame(pfn).flags & flags::PAGETABLE == 0 {
            return Err(format!("table frame {pfn} lacks the page-table flag"));
        }
        refs[pfn as usize] += 1;
    }
    let (mut anon, mut file, mut shmem, mut swap_ents) = (0u64, 0u64, 0u64, 0u64);
    let mut vi = 0;
    let mut bad = None;
    mm.pt.for_each_leaf(0, USER_HALF_END, &mut |va, _, e| {
        if bad.is_some() {
            return;
        }
        while vi < vmas.len() && vmas[vi].end <= va {
            vi += 1;
        }
        let Some(v) = vmas.get(vi).filter(|v| v.start <= va) else {
            bad = Some(format!("PTE at {va:#x} lies outside every VMA"));
            return;
        };
        if e.is_swap() {
            swap_ents += 1;
            *swap_refs.entry(e.swap_slot()).or_default() += 1;
            if v.shared() {
                bad = Some(format!("swap entry at {va:#x} in a shared mapping"));
            }
            return;
        }
        if !e.maps_frame() {
            bad = Some(format!("PTE at {va:#x} holds an entry that maps nothing: {e:?}"));
            return;
        }
        if e.is_present() != v.prot.accessible() {
            bad = Some(format!("PTE at {va:#x}: present bit disagrees with the VMA's protection {}", v.prot));
            return;
        }
        if e.is_writable() && !v.prot.write() {
            bad = Some(format!("PTE at {va:#x} is writable in a VMA without write permission"));
            return;
        }
        if e.is_special() {
            if e.pfn() != k.phys().zero_pfn() || e.is_writable() {
                bad = Some(format!("special PTE at {va:#x} is not a read-only zero-page mapping"));
            }
            return;
        }
        let pfn = e.pfn() as usize;
        refs[pfn] += 1;
        maps[pfn] += 1;
        let f = k.phys().frame(pfn as u32);
        if f.flags & flags::ANON != 0 {
            anon += 1;
            if e.is_writable() && !v.shared() && f.refcount != 1 {
                bad =
                    Some(format!("PTE at {va:#x} writes to anonymous frame {pfn} shared by {} references", f.refcount));
            }
        } else if f.flags & flags::CACHE != 0 && f.flags & flags::FILE != 0 {
            file += 1;
        } else if f.flags & flags::CACHE != 0 {
            shmem += 1;
        } else {
            bad = Some(format!("PTE at {va:#x} maps frame {pfn}, which is neither anonymous nor cached"));
        }
    });
    if let Some(b) = bad {
        return Err(b);
    }
    if swap_ents != mm.swap_ents {
        return Err(format!("{} swap entries counted, page tables hold {swap_ents}", mm.swap_ents));
    }
    if anon != mm.rss_anon || file != mm.rss_file || shmem != mm.rss_shmem {
        return Err(format!(
            "RSS counters anon {} file {} shmem {}, page table holds anon {anon} file {file} shmem {shmem}",
            mm.rss_anon, mm.rss_file, mm.rss_shmem
        ));
    }
    Ok(())
}
