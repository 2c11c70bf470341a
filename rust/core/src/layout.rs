//! The address space of a freshly exec'd ELF process, at the addresses a
//! 64-bit Linux process gets with address-space randomisation turned off.

use crate::addr::{PAGE_SIZE, TASK_SIZE};
use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::mm::{Mm, MmConfig, MmapRequest};
use crate::pagecache::{ObjectId, ObjectKind};
use crate::vma::Prot;

pub const TEXT_START: u64 = 0x0000_5555_5555_4000;
pub const TEXT_PAGES: u64 = 16;
pub const DATA_PAGES: u64 = 4;
/// The path the simulated executable shows in /proc/PID/maps.
pub const EXE_NAME: &str = "/usr/bin/a.out";
/// The top of the main stack: the end of user space.
pub const STACK_TOP: u64 = TASK_SIZE;
/// The initial stack VMA: 132 KiB, what the kernel sets up for argv/envp.
pub const STACK_INITIAL: u64 = 33 * PAGE_SIZE;
/// 128 MiB: the smallest gap mmap_base() leaves below the stack.
const MIN_STACK_GAP: u64 = 128 << 20;

/// mmap_base() with randomisation off: below the stack, leaving room for
/// the stack rlimit plus the guard gap, at least 128 MiB, at most 5/6 of it all.
pub fn mmap_base(stack_rlimit: u64, guard_gap: u64) -> u64 {
    let gap = stack_rlimit.saturating_add(guard_gap).clamp(MIN_STACK_GAP, TASK_SIZE / 6 * 5);
    crate::addr::page_down(TASK_SIZE - gap)
}

/// The page-cache object of the simulated executable that default-layout
/// processes map their text and data from (made again once unmapped).
fn executable(k: &mut Kernel) -> ObjectId {
    let live = k
        .executable()
        .filter(|&id| k.cache().get(id).is_some_and(|o| matches!(o.kind, ObjectKind::File { transient: true, .. })));
    live.unwrap_or_else(|| {
        let id = k.cache_mut().create_transient_file(EXE_NAME, (TEXT_PAGES + DATA_PAGES) * PAGE_SIZE);
        k.set_executable(id);
        id
    })
}

/// Which address space a new process starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayoutKind {
    /// No mappings at all.
    #[default]
    Empty,
    /// A freshly exec'd ELF process: text, data, heap, mmap area, stack.
    Default,
}

impl LayoutKind {
    pub fn parse(name: &str) -> Result<LayoutKind> {
        match name {
            "empty" => Ok(LayoutKind::Empty),
            "default" => Ok(LayoutKind::Default),
            other => Err(Error::invalid(format!("unknown layout {other:?}: use \"default\" or \"empty\""))),
        }
    }
}

/// A new address space with the given layout; nothing is left behind on failure.
pub fn build(k: &mut Kernel, cfg: MmConfig, kind: LayoutKind) -> Result<Mm> {
    let mut mm = Mm::new(k, cfg)?;
    if kind == LayoutKind::Default {
        if let Err(e) = apply_default(&mut mm, k) {
            mm.teardown(k);
            return Err(e);
        }
    }
    Ok(mm)
}

/// Lay out text (r-x), data+bss (rw-), an empty heap at a brk just above
/// them, the mmap base, and a grows-down stack at the top of user space.
fn apply_default(mm: &mut Mm, k: &mut Kernel) -> Result<()> {
    let fixed = |addr: u64, pages: u64, prot: Prot| {
        let mut req = MmapRequest::anon(pages * PAGE_SIZE, prot);
        req.addr = addr;
        req.fixed = true;
        req
    };
    let data_start = TEXT_START + TEXT_PAGES * PAGE_SIZE;
    let data_end = data_start + DATA_PAGES * PAGE_SIZE;
    // Text and data come from the executable (private file mappings), as
    // the ELF loader maps them; every process shares its page cache.
    let exe = executable(k);
    let mut text = fixed(TEXT_START, TEXT_PAGES, Prot::READ_EXEC);
    text.file = Some((exe, 0));
    mm.mmap(k, text)?;
    let mut data = fixed(data_start, DATA_PAGES, Prot::READ_WRITE);
    data.file = Some((exe, TEXT_PAGES * PAGE_SIZE));
    mm.mmap(k, data)?;
    let mut stack = fixed(STACK_TOP - STACK_INITIAL, STACK_INITIAL / PAGE_SIZE, Prot::READ_WRITE);
    stack.growsdown = true;
    mm.mmap(k, stack)?;
    // brk starts a little above bss, as the kernel's brk offset leaves it.
    mm.layout.start_brk = data_end + 0x21000;
    mm.layout.brk = mm.layout.start_brk;
    mm.layout.start_stack = STACK_TOP - 0x1000 + 0x7a0;
    mm.layout.mmap_base = mmap_base(mm.cfg.stack_rlimit, mm.cfg.stack_guard_gap);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_base_matches_linux_without_aslr() {
        assert_eq!(mmap_base(8 << 20, 1 << 20), 0x7fff_f7ff_f000);
        assert_eq!(mmap_base(1 << 30, 1 << 20), TASK_SIZE - (1 << 30) - (1 << 20));
    }
}
