//! Reads and writes through a file descriptor (mm/filemap.c's filemap_read
//! and generic_perform_write): they go through the page cache, reading in
//! the pages that are missing. A read marks every page it copies from
//! accessed (folio_mark_accessed: the second time activates it under Linux
//! reclaim) but the page the previous read ended in, so reading a page in
//! small pieces counts once; a write dirties its pages and marks none
//! (write_begin asks for no FGP_ACCESSED), as the host kernel's kpageflags
//! show. No page is mapped, so no fault is taken or counted.

use crate::addr::PAGE_SIZE;
use crate::error::{Errno, Error, Result};
use crate::kernel::Kernel;
use crate::pagecache::{ObjectId, ObjectKind};
use crate::phys::flags;
use crate::reclaim::memcg::CgId;

/// What one read or write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileIo {
    /// Bytes read (short at the end of the file) or written.
    pub bytes: u64,
    /// Pages touched.
    pub pages: u64,
    /// Pages read in from the file (page-cache misses that needed I/O).
    pub read_in: u64,
}

fn file_size(k: &Kernel, id: ObjectId) -> u64 {
    match k.cache().object(id).kind {
        ObjectKind::File { size, .. } => size,
        ObjectKind::Shmem => 0,
    }
}

/// The cached page `index` of `id`, or a new page for it (read in if `read`).
fn get_page(
    k: &mut Kernel,
    id: ObjectId,
    index: u64,
    read: bool,
    io: &mut FileIo,
    cg: CgId,
) -> Result<crate::phys::Pfn> {
    if let Some(pfn) = k.cache().lookup(id, index) {
        return Ok(pfn);
    }
    let Some(pfn) = crate::reclaim::evict::alloc_cache_frame(k, cg) else {
        return Err(Error::sys(Errno::ENOMEM, format!("no memory for page {index} of file {id} in the page cache")));
    };
    k.add_to_page_cache(id, index, pfn);
    io.read_in += read as u64;
    Ok(pfn)
}

/// read(2) of `len` bytes at `offset` by a task of group `cg` (the pages
/// read in are charged to it): short at the end of the file.
pub fn read(k: &mut Kernel, id: ObjectId, offset: u64, len: u64, cg: CgId) -> Result<FileIo> {
    let size = file_size(k, id);
    let end = offset.saturating_add(len).min(size);
    let mut io = FileIo::default();
    if offset >= end {
        return Ok(io);
    }
    // pos_same_folio(ki_pos, prev_pos - 1): the first page is where the last read ended.
    let same_page_as_last =
        k.cache().object(id).ra.prev_pos.is_some_and(|p| p > 0 && (p - 1) / PAGE_SIZE == offset / PAGE_SIZE);
    let first = offset / PAGE_SIZE;
    let mut pos = offset; // ki_pos, as the copy advances
    let copied = (first..end.div_ceil(PAGE_SIZE)).try_for_each(|index| {
        let pfn = get_page(k, id, index, true, &mut io, cg)?;
        if !(index == first && same_page_as_last) {
            k.mark_page_accessed(pfn);
        }
        io.pages += 1;
        pos = ((index + 1) * PAGE_SIZE).min(end);
        Ok(())
    });
    if pos > offset {
        k.cache_mut().object_mut(id).ra.prev_pos = Some(pos); // a read cut short by ENOMEM still moved it
    }
    copied?;
    io.bytes = end - offset;
    Ok(io)
}

/// write(2) of `len` bytes at `offset`, extending the file if it ends past
/// it. A page only partly overwritten is read in first if the file had data
/// there; a whole page overwritten needs no read.
pub fn write(k: &mut Kernel, id: ObjectId, offset: u64, len: u64, cg: CgId) -> Result<FileIo> {
    let end = offset.checked_add(len).filter(|&e| e <= crate::sim::MAX_FILE_SIZE).ok_or_else(|| {
        Error::sys(Errno::EFBIG, format!("a write of {len} bytes at {offset} passes the largest file (16 TiB)"))
    })?;
    let old_size = file_size(k, id);
    let mut io = FileIo::default();
    if len == 0 {
        return Ok(io);
    }
    if end > old_size {
        k.extend_file(id, end);
    }
    for index in offset / PAGE_SIZE..end.div_ceil(PAGE_SIZE) {
        let (lo, hi) = (index * PAGE_SIZE, (index + 1) * PAGE_SIZE);
        let whole = offset <= lo && end >= hi;
        let pfn = get_page(k, id, index, !whole && lo < old_size, &mut io, cg)?;
        k.phys_mut().frame_mut(pfn).flags |= flags::DIRTY;
        io.pages += 1;
    }
    io.bytes = len;
    Ok(io)
}
