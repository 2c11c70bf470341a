//! fork's half of the address-space work (dup_mmap + copy_page_range):
//! copy the VMAs, and for VMAs that need it, share their pages
//! copy-on-write between parent and child.

use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::pagetable::PteFlags;
use crate::phys::flags;
use crate::vma::{VmFlags, Vma};

/// vma_needs_copy: only VMAs with anonymous pages of their own are copied at
/// page level; the child faults everything else in again.
fn needs_page_copy(vma: &Vma) -> bool {
    !vma.shared() && vma.has_anon()
}

impl Mm {
    /// The child's address space. On failure (out of memory) nothing of the
    /// child is left behind; the parent's PTEs may stay write-protected,
    /// which only costs it a reuse fault later (as in Linux).
    pub fn fork_copy(&mut self, k: &mut Kernel) -> Result<Mm> {
        let mut child = Mm::new(k, self.cfg)?;
        child.layout = self.layout;
        // The child runs in its parent's memory cgroup and inherits its oom_score_adj.
        child.memcg = self.memcg;
        child.oom_score_adj = self.oom_score_adj;
        if let Err(e) = child.prealloc_vmas(k, self.vmas.len()) {
            child.teardown(k);
            return Err(e);
        }
        for vma in self.vmas.all() {
            if vma.flags.has(VmFlags::DONTCOPY) {
                continue;
            }
            // dup_mmap charges the child's copy of private writable memory.
            if let Err(e) = k.vm_enough_memory(self.total_vm(), vma.committed_pages()) {
                child.teardown(k);
                return Err(e);
            }
            // The child's VMA gets an anon_vma of its own (anon_vma_fork);
            // locks are not inherited (dup_mmap clears VM_LOCKED).
            let mut vma = vma;
            vma.flags = vma.flags.with(VmFlags::LOCKED, false).with(VmFlags::LOCKONFAULT, false);
            if vma.has_anon() {
                vma.anon_vma = k.new_anon_vma();
            }
            child.vmas.insert(vma);
            if let crate::vma::Backing::Object { id, .. } = vma.backing {
                k.cache_mut().add_mapper(id);
            }
            if needs_page_copy(&vma) {
                if let Err(e) = self.copy_pages(&mut child, k, &vma) {
                    child.teardown(k);
                    return Err(e);
                }
            }
        }
        // Unlike Linux, which keeps the parent's VMA boundaries, neighbours
        // that only an mlock kept apart merge in the child (vmsim keeps every
        // address space merged; only /proc/PID/maps can tell).
        child.merge_around(k, 0, crate::addr::TASK_SIZE);
        child.sync_vmas(k);
        Ok(child)
    }

    fn copy_pages(&mut self, child: &mut Mm, k: &mut Kernel, vma: &Vma) -> Result<()> {
        let cow = !vma.shared();
        let leaves = self.pt.leaves(vma.start, vma.end);
        for &(va, index, entry) in &leaves {
            if entry.is_swap() {
                // A swapped-out page: the child refers to the same slot.
                let slot = child.pt.leaf_index_alloc(va, k.phys_mut()).map_err(|_| {
                    Error::sys(Errno::ENOMEM, "fork: out of simulated memory for the child's page tables")
                })?;
                k.swap_dup(entry.swap_slot());
                child.pt.set(slot, entry);
                child.swap_ents += 1;
                continue;
            }
            if !entry.maps_frame() {
                continue;
            }
            let parent_entry = if cow { entry.without(PteFlags::WRITE) } else { entry };
            // The child's copy starts old (and clean, for shared pages).
            let child_entry = if cow {
                parent_entry.without(PteFlags::ACCESSED)
            } else {
                parent_entry.without(PteFlags::ACCESSED | PteFlags::DIRTY)
            };
            // Allocate the child's slot before taking any reference, so a
            // failure leaves every count balanced.
            let slot = child
                .pt
                .leaf_index_alloc(va, k.phys_mut())
                .map_err(|_| Error::sys(Errno::ENOMEM, "fork: out of simulated memory for the child's page tables"))?;
            if parent_entry != entry {
                self.pt.set(index, parent_entry);
            }
            if !entry.is_special() {
                let pfn = entry.pfn();
                let phys = k.phys_mut();
                phys.get_frame(pfn);
                phys.map_inc(pfn);
                phys.frame_mut(pfn).flags &= !flags::ANON_EXCLUSIVE;
            }
            child.pt.set(slot, child_entry);
            child.account_mapping(k, child_entry);
            if !entry.is_special() {
                k.note_mapped(child.id, va, entry.pfn(), false);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::fault::{access, Access, NoTrace, Outcome};
    use crate::kernel::Kernel;
    use crate::mm::{Mm, MmConfig, MmapRequest};
    use crate::vma::Prot;

    #[test]
    fn cow_share_then_copy_then_reuse() {
        let mut k = Kernel::new(1024).unwrap();
        let mut parent = Mm::new(&mut k, MmConfig::default()).unwrap();
        let a = parent.mmap(&mut k, MmapRequest::anon(0x2000, Prot::parse("rw").unwrap())).unwrap();
        access(&mut parent, &mut k, a, Access::Write, &mut NoTrace);
        let mut child = parent.fork_copy(&mut k).unwrap();
        let pfn = parent.pt.lookup(a).pfn();
        assert_eq!(k.phys().frame(pfn).refcount, 2);
        assert_eq!(k.phys().mapcount(pfn), 2);
        crate::check::check_all(&[&parent, &child], &k).unwrap();
        assert_eq!(access(&mut child, &mut k, a, Access::Write, &mut NoTrace).outcome, Outcome::CowCopy);
        assert_eq!(k.phys().frame(pfn).refcount, 1);
        assert_eq!(access(&mut parent, &mut k, a, Access::Write, &mut NoTrace).outcome, Outcome::CowReuse);
        // The untouched second page was never mapped: the child faults it itself.
        assert_eq!(access(&mut child, &mut k, a + 0x1000, Access::Read, &mut NoTrace).outcome, Outcome::ZeroPage);
        crate::check::check_all(&[&parent, &child], &k).unwrap();
        child.teardown(&mut k);
        parent.teardown(&mut k);
        assert_eq!(k.phys().frames_free(), k.phys().frames_total());
    }
}
