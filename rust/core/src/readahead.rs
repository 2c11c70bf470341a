//! File readahead for page faults, as mm/readahead.c and mm/filemap.c do it
//! (`do_sync_mmap_readahead`, `do_async_mmap_readahead`, `page_cache_sync_ra`,
//! `page_cache_async_ra`, `page_cache_ra_unbounded`), with order-0 pages.
//!
//! A fault on a page missing from the cache reads around it (`ra_pages`
//! centred on it, the last quarter marked PG_readahead) or, in a
//! `MADV_SEQUENTIAL` mapping, forward from it; a fault that finds a page
//! marked PG_readahead reads the next window, growing it, before the scan
//! gets there. `mmap_miss` counts faults that missed against pages found:
//! past `MMAP_LOTSAMISS` more misses than hits, read-around stops (random
//! access gains nothing from it). `MADV_RANDOM` turns readahead off.
//! I/O completes at once: a page read ahead is simply in the cache.

use crate::kernel::Kernel;
use crate::pagecache::ObjectId;
use crate::phys::{flags, FrameUse, Pfn};

/// The readahead window of a device by default: 128 KiB (VM_READAHEAD_PAGES).
pub const DEFAULT_RA_PAGES: u64 = 32;

/// Misses past hits after which mmap read-around stops (MMAP_LOTSAMISS).
pub const MMAP_LOTSAMISS: u32 = 100;

/// A file's readahead state (`struct file_ra_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaState {
    /// The current window: `size` pages from `start`; the last `async_size`
    /// of them are read ahead of need (the first of those is marked).
    pub start: u64,
    pub size: u64,
    pub async_size: u64,
    /// The window's maximum (`ra_pages`), from the device's read_ahead_kb,
    /// doubled by POSIX_FADV_SEQUENTIAL.
    pub ra_pages: u64,
    /// The device's own setting (what POSIX_FADV_NORMAL restores).
    pub device_pages: u64,
    /// Read faults that missed less those that found their page, bounded.
    pub mmap_miss: u32,
    /// Where the last read(2) ended (`prev_pos`; None: no read yet, the
    /// kernel's -1). A read that starts in the page the last one ended in
    /// does not mark that page accessed again.
    pub prev_pos: Option<u64>,
}

impl RaState {
    pub fn new(device_pages: u64) -> RaState {
        RaState { start: 0, size: 0, async_size: 0, ra_pages: device_pages, device_pages, mmap_miss: 0, prev_pos: None }
    }
}

/// How the faulting mapping asked to be read (VM_SEQ_READ, VM_RAND_READ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Normal,
    Sequential,
    Random,
}

/// do_sync_mmap_readahead: the fault at `index` found no page. Reads the
/// window the state and `pattern` call for (the faulting page among them),
/// or nothing (then the fault reads its page alone).
pub fn sync_mmap_readahead(k: &mut Kernel, id: ObjectId, index: u64, pattern: Pattern) {
    let mut ra = ra_state(k, id);
    if pattern == Pattern::Random || ra.ra_pages == 0 {
        return;
    }
    if pattern == Pattern::Sequential {
        page_cache_sync_ra(k, id, index, ra.ra_pages);
        return;
    }
    if ra.mmap_miss < MMAP_LOTSAMISS * 10 {
        ra.mmap_miss += 1;
    }
    if ra.mmap_miss > MMAP_LOTSAMISS {
        set_ra_state(k, id, ra);
        return; // far more misses than hits: read-around would only hurt
    }
    ra.start = index.saturating_sub(ra.ra_pages / 2);
    ra.size = ra.ra_pages;
    ra.async_size = ra.ra_pages / 4;
    set_ra_state(k, id, ra);
    do_page_cache_ra(k, id, ra.start, ra.size, ra.async_size);
}

/// do_async_mmap_readahead: the fault at `index` found its page `pfn`:
/// one hit against `mmap_miss`, and if the page is marked PG_readahead the
/// next window is read now.
pub fn async_mmap_readahead(k: &mut Kernel, id: ObjectId, index: u64, pfn: Pfn, pattern: Pattern) {
    let mut ra = ra_state(k, id);
    if pattern == Pattern::Random || ra.ra_pages == 0 {
        return;
    }
    ra.mmap_miss = ra.mmap_miss.saturating_sub(1);
    set_ra_state(k, id, ra);
    if k.phys().frame(pfn).flags & flags::READAHEAD != 0 {
        page_cache_async_ra(k, id, index, pfn, ra.ra_pages);
    }
}

/// filemap_map_pages' part: fault-around found `pages` cached pages in its
/// window, each a hit against `mmap_miss`.
pub fn fault_around_hits(k: &mut Kernel, id: ObjectId, pages: u64) {
    let mut ra = ra_state(k, id);
    ra.mmap_miss = ra.mmap_miss.saturating_sub(pages.min(u64::from(u32::MAX)) as u32);
    set_ra_state(k, id, ra);
}

/// force_page_cache_ra (MADV_WILLNEED, POSIX_FADV_WILLNEED): read the
/// `nr` pages from `index` that are missing, in windows of `ra_pages`, with
/// no readahead marks.
pub fn force_readahead(k: &mut Kernel, id: ObjectId, index: u64, nr: u64) {
    let chunk = ra_state(k, id).ra_pages.max(1);
    let nr = nr.min(k.cache().object(id).size_pages.saturating_sub(index)); // none past the end of the file
    let mut done = 0;
    while done < nr {
        let this = chunk.min(nr - done);
        if !do_page_cache_ra(k, id, index + done, this, 0) {
            return;
        }
        done += this;
    }
}

/// posix_fadvise(2) advice (mm/fadvise.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fadvise {
    /// The device's readahead window again.
    Normal,
    /// Twice the device's window.
    Sequential,
    /// FMODE_RANDOM: changes read(2) only; page faults follow MADV_RANDOM instead.
    Random,
    /// Read the range into the cache now.
    WillNeed,
    /// Write back the range's dirty pages and drop those no process maps.
    DontNeed,
    /// Accepted; changes nothing (as Linux).
    NoReuse,
}

impl Fadvise {
    pub fn parse(text: &str) -> crate::error::Result<Fadvise> {
        Ok(match text.trim().to_ascii_lowercase().trim_start_matches("posix_fadv_") {
            "normal" => Fadvise::Normal,
            "sequential" => Fadvise::Sequential,
            "random" => Fadvise::Random,
            "willneed" => Fadvise::WillNeed,
            "dontneed" => Fadvise::DontNeed,
            "noreuse" => Fadvise::NoReuse,
            _ => {
                return Err(crate::error::Error::sys(
                    crate::error::Errno::EINVAL,
                    format!(
                        "bad fadvise advice {text:?}: use normal, sequential, random, willneed, dontneed or noreuse"
                    ),
                ))
            }
        })
    }
}

/// posix_fadvise on the pages [first, first + nr) of file `id`.
pub fn fadvise(k: &mut Kernel, id: ObjectId, first: u64, nr: u64, advice: Fadvise) {
    let mut ra = ra_state(k, id);
    match advice {
        Fadvise::Normal => ra.ra_pages = ra.device_pages,
        Fadvise::Sequential => ra.ra_pages = 2 * ra.device_pages,
        Fadvise::Random | Fadvise::NoReuse => {}
        Fadvise::WillNeed => force_readahead(k, id, first, nr),
        Fadvise::DontNeed => drop_unmapped(k, id, first, nr),
    }
    if matches!(advice, Fadvise::Normal | Fadvise::Sequential) {
        set_ra_state(k, id, ra);
    }
}

/// POSIX_FADV_DONTNEED: dirty pages are written back (I/O completes at
/// once), then every page of the range no process maps leaves the cache
/// (invalidate_mapping_pages).
fn drop_unmapped(k: &mut Kernel, id: ObjectId, first: u64, nr: u64) {
    let end = first.saturating_add(nr).min(k.cache().object(id).size_pages);
    for index in first..end {
        let Some(pfn) = k.cache().lookup(id, index) else { continue };
        if k.phys().mapcount(pfn) == 0 {
            k.evict_cache_page(id, index, pfn);
        }
    }
}

/// drop_caches 1: every clean page-cache page of every file that no process
/// maps leaves the cache; returns how many.
pub fn drop_clean_cache(k: &mut Kernel) -> u64 {
    let victims: Vec<(ObjectId, u64, Pfn)> = k
        .cache()
        .files_pages()
        .filter(|&(_, _, pfn)| k.phys().mapcount(pfn) == 0 && k.phys().frame(pfn).flags & flags::DIRTY == 0)
        .collect();
    for &(id, index, pfn) in &victims {
        k.evict_cache_page(id, index, pfn);
    }
    victims.len() as u64
}

/// page_cache_sync_ra for a missed page at `index` wanting `req_count` pages.
fn page_cache_sync_ra(k: &mut Kernel, id: ObjectId, index: u64, req_count: u64) {
    let mut ra = ra_state(k, id);
    let max_pages = ra.ra_pages;
    // mmap faults leave prev_pos at its initial -1, so only the start of the
    // file is the trivial sequential case here.
    if index == 0 || req_count > max_pages {
        ra.start = index;
        ra.size = get_init_ra_size(req_count, max_pages);
        ra.async_size = if ra.size > req_count { ra.size - req_count } else { ra.size >> 1 };
    } else {
        // The cached history a sequential stream leaves behind this page.
        let miss = prev_miss(k, id, index, max_pages);
        let mut contig = match miss {
            Some(m) => index - m - 1,
            None => index,
        };
        if contig <= req_count {
            do_page_cache_ra(k, id, index, req_count, 0); // a small random read: read it as is
            return;
        }
        if miss.is_none() {
            contig *= 2; // cached from the start of the file: a long stream
        }
        ra.start = index;
        ra.size = (contig + req_count).min(max_pages);
        ra.async_size = 1;
    }
    set_ra_state(k, id, ra);
    do_page_cache_ra(k, id, ra.start, ra.size, ra.async_size);
}

/// page_cache_async_ra: the fault at `index` hit the marked page `pfn`.
fn page_cache_async_ra(k: &mut Kernel, id: ObjectId, index: u64, pfn: Pfn, req_count: u64) {
    let mut ra = ra_state(k, id);
    if ra.ra_pages == 0 {
        return;
    }
    k.phys_mut().frame_mut(pfn).flags &= !flags::READAHEAD;
    let max_pages = ra.ra_pages;
    if index == (ra.start + ra.size).wrapping_sub(ra.async_size) {
        // The expected mark: a sequential stream. Push the window forward, ramping up.
        ra.start += ra.size;
        ra.size = ra.size.max(get_next_ra_size(ra.size, max_pages));
        ra.async_size = ra.size;
    } else {
        // A mark without valid state (interleaved streams): find where the
        // cached run after the page ends.
        let start = next_miss(k, id, index + 1, max_pages);
        if start == 0 || start - index > max_pages {
            return;
        }
        ra.start = start;
        ra.size = get_next_ra_size(start - index + req_count, max_pages);
        ra.async_size = ra.size;
    }
    set_ra_state(k, id, ra);
    do_page_cache_ra(k, id, ra.start, ra.size, ra.async_size);
}

/// do_page_cache_ra + page_cache_ra_unbounded: read the missing pages of
/// [index, index + nr) that lie within the file, marking PG_readahead the
/// page `nr - lookahead` in when it is read now. Pages are allocated only
/// while memory is not short (readahead never reclaims); false if it had
/// to stop for lack of memory.
fn do_page_cache_ra(k: &mut Kernel, id: ObjectId, index: u64, nr: u64, lookahead: u64) -> bool {
    let size_pages = k.cache().object(id).size_pages;
    if size_pages == 0 || index >= size_pages {
        return true;
    }
    let nr_clipped = nr.min(size_pages - index);
    let mark = (index + nr).checked_sub(lookahead); // as computed from the asked size
    for page in index..index + nr_clipped {
        if k.cache().lookup(id, page).is_some() {
            continue;
        }
        if !crate::reclaim::evict::room_for_readahead(k) {
            return false;
        }
        let Some(pfn) = k.phys_mut().alloc_frame(FrameUse::FileCache) else { return false };
        let mark_bit = if Some(page) == mark { flags::READAHEAD } else { 0 };
        k.phys_mut().frame_mut(pfn).flags |= flags::READ_AHEAD_UNUSED | mark_bit;
        k.add_to_page_cache(id, page, pfn);
        k.cache_mut().stats.readahead += 1;
        k.cache_mut().stats.readahead_unused += 1;
    }
    true
}

/// page_cache_prev_miss from `index - 1` back, at most `max_scan` pages:
/// the first index missing from the cache, or the last one looked at when
/// all were cached; None when the scan ran off the start of the file.
fn prev_miss(k: &Kernel, id: ObjectId, index: u64, max_scan: u64) -> Option<u64> {
    let mut looked = index;
    for i in (index.saturating_sub(max_scan)..index).rev() {
        looked = i;
        if k.cache().lookup(id, i).is_none() {
            return Some(i);
        }
    }
    if looked == 0 {
        None
    } else {
        Some(looked)
    }
}

/// The first index from `index` missing from the cache, looking at most
/// `max_scan` pages (page_cache_next_miss: past the range when none is).
fn next_miss(k: &Kernel, id: ObjectId, index: u64, max_scan: u64) -> u64 {
    (index..index + max_scan).find(|&i| k.cache().lookup(id, i).is_none()).unwrap_or(index + max_scan)
}

/// get_init_ra_size: the first window for a request of `size` pages.
fn get_init_ra_size(size: u64, max: u64) -> u64 {
    let new = size.next_power_of_two();
    if new <= max / 32 {
        new * 4
    } else if new <= max / 4 {
        new * 2
    } else {
        max
    }
}

/// get_next_ra_size: the next window after one of `cur` pages.
fn get_next_ra_size(cur: u64, max: u64) -> u64 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

fn ra_state(k: &Kernel, id: ObjectId) -> RaState {
    k.cache().object(id).ra
}

fn set_ra_state(k: &mut Kernel, id: ObjectId, ra: RaState) {
    k.cache_mut().object_mut(id).ra = ra;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_ramp_as_linux_ramps_them() {
        assert_eq!(get_init_ra_size(1, 32), 4);
        assert_eq!(get_init_ra_size(4, 32), 8);
        assert_eq!(get_init_ra_size(32, 32), 32);
        assert_eq!(get_next_ra_size(4, 2048), 16);
        assert_eq!(get_next_ra_size(512, 2048), 1024);
        assert_eq!(get_next_ra_size(2048, 2048), 2048);
    }
}
