//! Virtual addresses on x86-64 with 4-level paging: page arithmetic and the
//! canonical / user / kernel split of SEMANTICS.md.

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Top of user space (TASK_SIZE_MAX): the last page below 2^47 is never mapped.
pub const TASK_SIZE: u64 = 0x0000_7fff_ffff_f000;
/// Start of the canonical kernel half.
pub const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;
/// Lowest address a mapping may have (vm.mmap_min_addr).
pub const MMAP_MIN_ADDR: u64 = 65536;
/// The end of the user half of the address space the page table can hold (2^47).
pub const USER_HALF_END: u64 = 1 << 47;

/// Where an address falls, before any VMA is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// Below TASK_SIZE: looked up among the VMAs.
    User,
    /// Canonical but not user: the kernel half, or the never-mapped top user page.
    Kernel,
    /// Bits 63..47 differ: the CPU raises #GP before any page fault.
    NonCanonical,
}

#[inline]
pub fn is_canonical(addr: u64) -> bool {
    // Sign-extend bit 47 and compare.
    (((addr << 16) as i64) >> 16) as u64 == addr
}

#[inline]
pub fn classify(addr: u64) -> AddrClass {
    if addr < TASK_SIZE {
        AddrClass::User
    } else if is_canonical(addr) {
        AddrClass::Kernel
    } else {
        AddrClass::NonCanonical
    }
}

#[inline]
pub fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Round up to a page boundary; `None` if that overflows 64 bits.
#[inline]
pub fn page_up(addr: u64) -> Option<u64> {
    addr.checked_add(PAGE_SIZE - 1).map(page_down)
}

#[inline]
pub fn is_page_aligned(addr: u64) -> bool {
    addr & (PAGE_SIZE - 1) == 0
}

#[inline]
pub fn page_index(addr: u64) -> u64 {
    addr >> PAGE_SHIFT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_boundaries() {
        assert!(is_canonical(0));
        assert!(is_canonical(0x0000_7fff_ffff_ffff));
        assert!(!is_canonical(0x0000_8000_0000_0000));
        assert!(!is_canonical(0xffff_7fff_ffff_ffff));
        assert!(is_canonical(KERNEL_BASE));
        assert!(is_canonical(u64::MAX));
    }

    #[test]
    fn classes() {
        assert_eq!(classify(0), AddrClass::User);
        assert_eq!(classify(TASK_SIZE - 1), AddrClass::User);
        assert_eq!(classify(TASK_SIZE), AddrClass::Kernel);
        assert_eq!(classify(KERNEL_BASE), AddrClass::Kernel);
        assert_eq!(classify(0xdead_0000_0000_0000), AddrClass::NonCanonical);
    }

    #[test]
    fn rounding() {
        assert_eq!(page_down(0x1fff), 0x1000);
        assert_eq!(page_up(0x1001), Some(0x2000));
        assert_eq!(page_up(0x1000), Some(0x1000));
        assert_eq!(page_up(u64::MAX), None);
        assert!(is_page_aligned(0x5000));
        assert!(!is_page_aligned(0x5001));
    }
}
