//! /proc/PID/smaps and smaps_rollup: what each VMA holds in memory, counted
//! as fs/proc/task_mmu.c counts it (`smaps_pte_entry`, `smaps_account`).
//!
//! Per present page with a struct page behind it (the zero page has none):
//! Rss; Pss, the page's share (one over its mapcount); private when mapped
//! once, else shared; dirty when the PTE or the page is; Anonymous for
//! anonymous pages; Referenced when the PTE was accessed. Per swap entry:
//! Swap, and SwapPss shared among the entry's users. Locked counts the Pss
//! of VM_LOCKED VMAs.

use crate::addr::PAGE_SIZE;
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::pagetable::PteFlags;
use crate::phys::flags;
use crate::vma::Vma;

/// Pss is kept in bytes << PSS_SHIFT, as Linux keeps it, so shares of pages
/// mapped by several processes add up without rounding.
const PSS_SHIFT: u32 = 12;

/// The fields of one smaps record, in the order Linux prints them (kB).
pub const FIELDS: [&str; 17] = [
    "Size",
    "KernelPageSize",
    "MMUPageSize",
    "Rss",
    "Pss",
    "Pss_Dirty",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Referenced",
    "Anonymous",
    "LazyFree",
    "AnonHugePages",
    "Swap",
    "SwapPss",
    "Locked",
];

/// The fields of smaps_rollup (the same sums over every VMA, with Pss split
/// by kind of page).
pub const ROLLUP_FIELDS: [&str; 16] = [
    "Rss",
    "Pss",
    "Pss_Dirty",
    "Pss_Anon",
    "Pss_File",
    "Pss_Shmem",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Referenced",
    "Anonymous",
    "LazyFree",
    "Swap",
    "SwapPss",
    "Locked",
];

/// What a VMA (or the whole address space) holds; byte counts, Pss fields
/// in bytes << PSS_SHIFT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemSize {
    pub size: u64,
    pub resident: u64,
    pub pss: u64,
    pub pss_dirty: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub swap_pss: u64,
    pub pss_locked: u64,
    pub lazyfree: u64,
}

impl MemSize {
    fn add(&mut self, o: &MemSize) {
        let (a, b) = (self.as_array_mut(), o.as_array());
        for (x, y) in a.into_iter().zip(b) {
            *x += y;
        }
    }

    fn as_array(&self) -> [u64; 17] {
        let m = self;
        [
            m.size,
            m.resident,
            m.pss,
            m.pss_dirty,
            m.pss_anon,
            m.pss_file,
            m.pss_shmem,
            m.shared_clean,
            m.shared_dirty,
            m.private_clean,
            m.private_dirty,
            m.referenced,
            m.anonymous,
            m.swap,
            m.swap_pss,
            m.pss_locked,
            m.lazyfree,
        ]
    }

    fn as_array_mut(&mut self) -> [&mut u64; 17] {
        let m = self;
        [
            &mut m.size,
            &mut m.resident,
            &mut m.pss,
            &mut m.pss_dirty,
            &mut m.pss_anon,
            &mut m.pss_file,
            &mut m.pss_shmem,
            &mut m.shared_clean,
            &mut m.shared_dirty,
            &mut m.private_clean,
            &mut m.private_dirty,
            &mut m.referenced,
            &mut m.anonymous,
            &mut m.swap,
            &mut m.swap_pss,
            &mut m.pss_locked,
            &mut m.lazyfree,
        ]
    }

    /// The value of an smaps field in kB, as Linux prints it.
    pub fn kb(&self, field: &str) -> u64 {
        let pss_kb = |v: u64| v >> (10 + PSS_SHIFT);
        match field {
            "Size" => self.size >> 10,
            "KernelPageSize" | "MMUPageSize" => PAGE_SIZE >> 10,
            "Rss" => self.resident >> 10,
            "Pss" => pss_kb(self.pss),
            "Pss_Dirty" => pss_kb(self.pss_dirty),
            "Pss_Anon" => pss_kb(self.pss_anon),
            "Pss_File" => pss_kb(self.pss_file),
            "Pss_Shmem" => pss_kb(self.pss_shmem),
            "Shared_Clean" => self.shared_clean >> 10,
            "Shared_Dirty" => self.shared_dirty >> 10,
            "Private_Clean" => self.private_clean >> 10,
            "Private_Dirty" => self.private_dirty >> 10,
            "Referenced" => self.referenced >> 10,
            "Anonymous" => self.anonymous >> 10,
            "Swap" => self.swap >> 10,
            "SwapPss" => pss_kb(self.swap_pss),
            "Locked" => pss_kb(self.pss_locked),
            "LazyFree" => self.lazyfree >> 10,
            _ => 0, // AnonHugePages: no huge pages
        }
    }
}

/// What `vma` holds in `mm`.
pub fn vma_smaps(mm: &Mm, k: &Kernel, vma: &Vma) -> MemSize {
    let mut m = MemSize { size: vma.end - vma.start, ..MemSize::default() };
    let locked = vma.flags.has(crate::vma::VmFlags::LOCKED);
    let page = PAGE_SIZE;
    mm.pt.for_each_leaf(vma.start, vma.end, &mut |_, _, pte| {
        if pte.is_swap() {
            let users = u64::from(k.swap().refs(pte.swap_slot()).max(1));
            m.swap += page;
            m.swap_pss += (page << PSS_SHIFT) / users;
            return;
        }
        if !pte.maps_counted_frame() {
            return; // empty, PROT_NONE-less hole, or the zero page: no page behind it
        }
        let frame = k.phys().frame(pte.pfn());
        let mapcount = u64::from(k.phys().mapcount(pte.pfn()).max(1));
        let pss = (page << PSS_SHIFT) / mapcount;
        let dirty = pte.has(PteFlags::DIRTY) || frame.flags & flags::DIRTY != 0;
        let private = mapcount < 2;
        m.resident += page;
        m.pss += pss;
        if locked {
            m.pss_locked += pss;
        }
        if frame.flags & flags::LAZYFREE != 0 && !dirty {
            m.lazyfree += page;
        }
        if frame.flags & flags::ANON != 0 {
            m.anonymous += page;
            m.pss_anon += pss;
        } else if frame.flags & flags::FILE != 0 {
            m.pss_file += pss;
        } else {
            m.pss_shmem += pss;
        }
        if pte.has(PteFlags::ACCESSED) {
            m.referenced += page;
        }
        match (dirty, private) {
            (true, true) => m.private_dirty += page,
            (true, false) => m.shared_dirty += page,
            (false, true) => m.private_clean += page,
            (false, false) => m.shared_clean += page,
        }
        if dirty {
            m.pss_dirty += pss;
        }
    });
    m
}

/// Every VMA with what it holds, in address order.
pub fn smaps(mm: &Mm, k: &Kernel) -> Vec<(Vma, MemSize)> {
    mm.vmas.all().into_iter().map(|v| (v, vma_smaps(mm, k, &v))).collect()
}

/// The sums over every VMA (smaps_rollup).
pub fn rollup(mm: &Mm, k: &Kernel) -> MemSize {
    let mut total = MemSize::default();
    for (_, m) in smaps(mm, k) {
        total.add(&m);
    }
    total
}

/// /proc/PID/smaps as text: each VMA's maps line, then its fields.
pub fn smaps_text(mm: &Mm, k: &Kernel) -> String {
    let maps = mm.maps(k);
    let mut out = String::new();
    for (line, (_, m)) in maps.lines().zip(smaps(mm, k)) {
        out.push_str(line);
        out.push('\n');
        for field in FIELDS {
            out.push_str(&format!("{:<16}{:>8} kB\n", format!("{field}:"), m.kb(field)));
        }
    }
    out
}
