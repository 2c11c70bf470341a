//! vmsim-core: a virtual-memory and page-fault simulator faithful to Linux on
//! x86-64 (see SEMANTICS.md in the project's shared docs). No Python here:
//! the bindings live in the `vmsim-python` crate.
//!
//! Module map: `addr` (addresses), `phys` (frames, buddy allocator, zero
//! page), `pagetable` (4-level radix), `vma` + `vma_index` (areas and their
//! five index structures; `vma_index::study` times one on its own), `mm`
//! (address space and its system calls), `mrc` (LRU stack distances for
//! miss-ratio curves), `rng` (a seeded random sequence),
//! `fault` (the fault handler), `fork` (copy-on-write copy), `pagecache`
//! (files and shmem), `swap` and `reclaim` (swap space, eviction, one module
//! per replacement policy), `kalloc` (buddy pages, slab caches, vmalloc,
//! kobjects), `kernel` (what all address spaces share), `layout` (a default
//! process image), `sim` (tasks, locking, counters), `check` (invariants),
//! `step` (one access as every caller makes it), `tracefmt` (fast trace
//! parsing); with the `testing` feature, `testing` (a seeded RNG) and with
//! `fuzzing`, `fuzzing` (byte-driven operation runs).

pub mod addr;
pub mod check;
pub mod error;
pub mod fault;
pub mod filemap;
pub mod fork;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod gup;
pub mod kalloc;
pub mod kernel;
pub mod layout;
pub mod mm;
pub mod mrc;
pub mod pagecache;
pub mod pagetable;
pub mod phys;
pub mod readahead;
pub mod reclaim;
pub mod rng;
pub mod sim;
pub mod smaps;
pub mod step;
pub mod swap;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tracefmt;
pub mod units;
pub mod vma;
pub mod vma_index;

pub use error::{Errno, Error, Result};
pub use fault::{Access, Outcome};
pub use layout::LayoutKind;
pub use mm::{Advice, MmConfig, MmapArgs, MmapRequest};
pub use sim::{Ops, ProcessCounters, SimConfig, SimCounters, Simulator};
pub use vma::Prot;
pub use vma_index::IndexKind;
