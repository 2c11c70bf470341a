//! Faulting pages in on the kernel's behalf, as mm/gup.c does for
//! MAP_POPULATE (`__mm_populate`) and MADV_POPULATE_READ/WRITE
//! (`faultin_page_range`): each page that is missing, or write-protected
//! where a write is asked for, takes the fault an access there would take.
//! Those faults count in the task's min_flt/maj_flt (mm_account_fault counts
//! GUP faults too); no access is counted, and nothing is a signal: a page
//! past the end of a file or an allocation failure ends the call instead.

use crate::error::{Errno, Error, Result};
use crate::fault::{self, Access, NoTrace, Outcome};
use crate::kernel::Kernel;
use crate::mm::Mm;
use crate::vma::Vma;

/// Who populates, which decides the access made and what is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Populate {
    /// MAP_POPULATE (`populate_vma_page_range`): a write in a private
    /// writable VMA (to break copy-on-write), else a read; inaccessible VMAs
    /// are left alone, and errors end the work without failing the mmap.
    Mmap,
    /// MADV_POPULATE_READ: a read in every page; no read permission is EINVAL.
    Read,
    /// MADV_POPULATE_WRITE: a write in every page; no write permission is EINVAL.
    Write,
    /// mlock (`populate_vma_page_range` from `__mm_populate`): as `Mmap`, but
    /// VM_LOCKONFAULT VMAs are left to fault, and an inaccessible VMA or a
    /// failed fault is an error (mlock turns EFAULT into ENOMEM).
    Mlock,
}

impl Populate {
    /// The access to make in `vma`, or `None` to skip it.
    fn access(self, vma: &Vma) -> Result<Option<Access>> {
        // EINVAL, as Linux 6.x answers (the host's own conformance test pins it).
        let denied = || Error::sys(Errno::EINVAL, "madvise populate: the mapping does not allow the access");
        match self {
            Populate::Mmap if !vma.prot.accessible() => Ok(None),
            Populate::Mlock if vma.flags.has(crate::vma::VmFlags::LOCKONFAULT) => Ok(None),
            Populate::Mlock if !vma.prot.accessible() => {
                Err(Error::sys(Errno::EFAULT, "an inaccessible (PROT_NONE) mapping cannot be populated"))
            }
            Populate::Mmap | Populate::Mlock => {
                Ok(Some(if vma.prot.write() && !vma.shared() { Access::Write } else { Access::Read }))
            }
            Populate::Read if !vma.prot.accessible() => Err(denied()),
            Populate::Read => Ok(Some(Access::Read)),
            Populate::Write if !vma.prot.write() => Err(denied()),
            Populate::Write => Ok(Some(Access::Write)),
        }
    }
}

/// Fault in the pages of [start, end) (page aligned) as `how` asks;
/// `per_account` gathers the faults by `Account`. A hole in the range is
/// ENOMEM, a page the fault cannot give (past the end of a file) EFAULT, an
/// allocation failure ENOMEM; pages before the error stay populated.
pub fn populate(
    mm: &mut Mm,
    k: &mut Kernel,
    start: u64,
    end: u64,
    how: Populate,
    per_account: &mut [u64; 3],
) -> Result<()> {
    let mut addr = start;
    while addr < end {
        let Some(vma) = mm.vmas.find(addr).filter(|v| v.start <= addr) else {
            return Err(Error::sys(Errno::ENOMEM, format!("populate: no mapping at {addr:#x}")));
        };
        let stop = vma.end.min(end);
        if let Some(op) = how.access(&vma)? {
            for va in (addr..stop).step_by(crate::addr::PAGE_SIZE as usize) {
                let fault = fault::access(mm, k, va, op, &mut NoTrace);
                per_account[fault.account as usize] += 1;
                match fault.outcome {
                    Outcome::Oom => return Err(Error::sys(Errno::ENOMEM, "populate: out of memory")),
                    o if o.is_signal() => {
                        return Err(Error::sys(
                            Errno::EFAULT,
                            format!("populate: {va:#x} cannot be faulted in ({o:?})"),
                        ))
                    }
                    _ => {}
                }
            }
        }
        addr = stop;
    }
    Ok(())
}
