//! Virtual memory areas: range, protection, flags and what backs them.

use crate::addr::PAGE_SHIFT;
use crate::error::{Error, Result};
use crate::pagetable::PteFlags;
use std::fmt;

/// PROT_READ / PROT_WRITE / PROT_EXEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Prot {
    pub const NONE: Prot = Prot(0);
    pub const READ_WRITE: Prot = Prot(Self::READ | Self::WRITE);
    pub const READ_EXEC: Prot = Prot(Self::READ | Self::EXEC);
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;

    pub fn new(read: bool, write: bool, exec: bool) -> Prot {
        Prot((read as u8) | (write as u8) << 1 | (exec as u8) << 2)
    }
    pub fn read(self) -> bool {
        self.0 & Self::READ != 0
    }
    pub fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    pub fn exec(self) -> bool {
        self.0 & Self::EXEC != 0
    }
    /// vma_is_accessible: any of read, write, exec.
    pub fn accessible(self) -> bool {
        self.0 != 0
    }

    /// "r", "rw", "r-x", "rwx", "---", "none", "" (letters in any order).
    pub fn parse(text: &str) -> Result<Prot> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") {
            return Ok(Prot::NONE);
        }
        let mut p = 0u8;
        for c in t.chars() {
            let bit = match c {
                'r' | 'R' => Self::READ,
                'w' | 'W' => Self::WRITE,
                'x' | 'X' => Self::EXEC,
                '-' => 0,
                _ => return Err(Error::invalid(format!("bad prot {text:?}: use letters r, w, x (or \"none\")"))),
            };
            if bit != 0 && p & bit != 0 {
                return Err(Error::invalid(format!("bad prot {text:?}: {c:?} given twice")));
            }
            p |= bit;
        }
        Ok(Prot(p))
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(f, "{}{}{}", c(self.read(), 'r'), c(self.write(), 'w'), c(self.exec(), 'x'))
    }
}

/// VMA flags other than protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VmFlags(u16);

impl VmFlags {
    pub const EMPTY: VmFlags = VmFlags(0);
    pub const SHARED: u16 = 1 << 0;
    pub const GROWSDOWN: u16 = 1 << 1;
    /// MADV_DONTFORK: not copied into a forked child.
    pub const DONTCOPY: u16 = 1 << 2;
    /// VM_ACCOUNT: the mapping is charged to Committed_AS (private writable).
    pub const ACCOUNT: u16 = 1 << 3;
    /// VM_NORESERVE: MAP_NORESERVE, not charged (except under overcommit mode 2).
    pub const NORESERVE: u16 = 1 << 4;
    /// VM_SEQ_READ (MADV_SEQUENTIAL): file faults read ahead, not around.
    pub const SEQ_READ: u16 = 1 << 5;
    /// VM_RAND_READ (MADV_RANDOM): file faults read no more than their page.
    pub const RAND_READ: u16 = 1 << 6;
    /// VM_LOCKED (mlock): the pages are populated and never reclaimed.
    pub const LOCKED: u16 = 1 << 7;
    /// VM_LOCKONFAULT (mlock2 MLOCK_ONFAULT): locked, but populated only as faulted.
    pub const LOCKONFAULT: u16 = 1 << 8;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn with(self, bit: u16, on: bool) -> VmFlags {
        if on {
            VmFlags(self.0 | bit)
        } else {
            VmFlags(self.0 & !bit)
        }
    }
}

/// What supplies a VMA's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Private anonymous memory: zero page, then anonymous frames.
    Anon,
    /// Pages of a page-cache object (shmem for MAP_SHARED|MAP_ANONYMOUS);
    /// `pgoff` is the object page at `start`.
    Object { id: u32, pgoff: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub flags: VmFlags,
    pub backing: Backing,
    /// Identity of the VMA's anon_vma, 0 while it has none: it gets one with
    /// its first anonymous page (anon_vma_prepare). fork copies page tables
    /// only for VMAs that have one (vma_needs_copy); two VMAs with different
    /// anon_vmas never merge.
    pub anon_vma: u32,
}

impl Vma {
    pub fn anon(start: u64, end: u64, prot: Prot, flags: VmFlags) -> Vma {
        Vma { start, end, prot, flags, backing: Backing::Anon, anon_vma: 0 }
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// Pages charged to Committed_AS for this VMA.
    pub fn committed_pages(&self) -> u64 {
        if self.flags.has(VmFlags::ACCOUNT) {
            self.len() >> PAGE_SHIFT
        } else {
            0
        }
    }
    /// Whether the VMA has anonymous pages of its own (an anon_vma).
    pub fn has_anon(&self) -> bool {
        self.anon_vma != 0
    }
    /// The mapping's flags as words: "private" or "shared", then "growsdown", "dontfork".
    pub fn flag_words(&self) -> String {
        let mut words = vec![if self.shared() { "shared" } else { "private" }];
        if self.growsdown() {
            words.push("growsdown");
        }
        if self.flags.has(VmFlags::DONTCOPY) {
            words.push("dontfork");
        }
        words.join("|")
    }

    pub fn shared(&self) -> bool {
        self.flags.has(VmFlags::SHARED)
    }
    /// How file faults here read ahead (MADV_SEQUENTIAL, MADV_RANDOM, or neither).
    pub fn read_pattern(&self) -> crate::readahead::Pattern {
        if self.flags.has(VmFlags::RAND_READ) {
            crate::readahead::Pattern::Random
        } else if self.flags.has(VmFlags::SEQ_READ) {
            crate::readahead::Pattern::Sequential
        } else {
            crate::readahead::Pattern::Normal
        }
    }
    pub fn growsdown(&self) -> bool {
        self.flags.has(VmFlags::GROWSDOWN)
    }

    /// The object page backing `addr` (for object-backed VMAs).
    pub fn object_page(&self, addr: u64) -> Option<(u32, u64)> {
        match self.backing {
            Backing::Object { id, pgoff } => Some((id, pgoff + ((addr - self.start) >> PAGE_SHIFT))),
            Backing::Anon => None,
        }
    }

    /// The part of this VMA from `at` on (the caller keeps [start, at)).
    pub fn tail_from(&self, at: u64) -> Vma {
        let mut tail = *self;
        tail.start = at;
        if let Backing::Object { id, pgoff } = self.backing {
            tail.backing = Backing::Object { id, pgoff: pgoff + ((at - self.start) >> PAGE_SHIFT) };
        }
        tail
    }

    /// Whether `next` can be merged onto the end of `self` (vma_merge).
    pub fn can_merge_with(&self, next: &Vma) -> bool {
        if self.end != next.start || self.prot != next.prot || self.flags != next.flags {
            return false;
        }
        // is_mergeable_anon_vma: at most one of them has an anon_vma, or the same one.
        if self.anon_vma != 0 && next.anon_vma != 0 && self.anon_vma != next.anon_vma {
            return false;
        }
        match (self.backing, next.backing) {
            (Backing::Anon, Backing::Anon) => true,
            (Backing::Object { id: a, pgoff: pa }, Backing::Object { id: b, pgoff: pb }) => {
                a == b && pa + (self.len() >> PAGE_SHIFT) == pb
            }
            _ => false,
        }
    }

    /// Leaf PTE permission bits for a page of this VMA; `writable` says whether
    /// this mapping may be writable now (false for COW-shared pages).
    #[inline]
    pub fn pte_bits(&self, writable: bool) -> PteFlags {
        if !self.prot.accessible() {
            return PteFlags::PROTNONE | PteFlags::USER;
        }
        let mut bits = PteFlags::PRESENT | PteFlags::USER;
        if writable && self.prot.write() {
            bits |= PteFlags::WRITE;
        }
        if !self.prot.exec() {
            bits |= PteFlags::NX;
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_parse_and_display() {
        assert_eq!(Prot::parse("rw").unwrap().to_string(), "rw-");
        assert_eq!(Prot::parse("r-x").unwrap().to_string(), "r-x");
        assert_eq!(Prot::parse("xr").unwrap().to_string(), "r-x");
        assert_eq!(Prot::parse("none").unwrap(), Prot::NONE);
        assert_eq!(Prot::parse("---").unwrap(), Prot::NONE);
        assert!(Prot::parse("rq").is_err());
        assert!(Prot::parse("rr").is_err());
    }

    #[test]
    fn merge_rules() {
        let rw = Prot::parse("rw").unwrap();
        let a = Vma::anon(0x1000, 0x2000, rw, VmFlags::default());
        let b = Vma::anon(0x2000, 0x3000, rw, VmFlags::default());
        assert!(a.can_merge_with(&b));
        let c = Vma::anon(0x2000, 0x3000, Prot::parse("r").unwrap(), VmFlags::default());
        assert!(!a.can_merge_with(&c));
        let mut o1 = a;
        o1.backing = Backing::Object { id: 1, pgoff: 0 };
        let o2 = o1.tail_from(0x1800 & !0xfff).tail_from(0x1000);
        assert_eq!(o2.backing, Backing::Object { id: 1, pgoff: 0 });
        let mut o3 = b;
        o3.backing = Backing::Object { id: 1, pgoff: 1 };
        assert!(o1.can_merge_with(&o3));
        o3.backing = Backing::Object { id: 1, pgoff: 5 };
        assert!(!o1.can_merge_with(&o3));
    }
}
