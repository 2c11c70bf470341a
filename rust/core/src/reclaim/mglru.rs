//! `policy="mglru"`: the multi-gen LRU (Documentation/mm/multigen_lru.rst,
//! mm/vmscan.c's lru_gen_* and mm/workingset.c's lru_gen_refault), as of
//! Linux 6.1-6.6, on the same folios, lruvecs, reverse map, watermarks and
//! memory cgroups as the classic LRU.
//!
//! Each lruvec has generations numbered `min_seq[type]..=max_seq` (two to
//! four per type, anon and file). A folio records its generation; the aging
//! walks every page table, and each PTE found young promotes its folio to
//! the youngest generation (only the recorded number changes), then opens a
//! new generation. The eviction takes folios from the oldest generation of
//! the type a PID-like controller picks from the refault rates: folios it
//! finds promoted it sorts onto their generation's list; file folios read
//! often through file descriptors (a higher tier) are protected while their
//! tier refaults more than the first; the rest go through the same
//! reference check and unmapping as the classic LRU. An evicted folio
//! leaves a shadow holding the generation it was evicted at; a refault
//! within MAX_NR_GENS generations is recent, and feeds the controller.
//!
//! Left out: the Bloom filters and per-memcg mm lists of the page-table
//! walk (every address space is walked), the look-around of young PTEs
//! next to one the reverse map found, `min_ttl_ms`, and timestamps.

use super::folios::{pg, List, Lru, MAX_NR_GENS};
use super::memcg::CgId;
use super::vmscan::{LinuxLru, Reclaimer, DEF_PRIORITY};
use super::workingset::Shadow;
use crate::phys::Pfn;

pub const MIN_NR_GENS: u64 = 2;
pub const MAX_NR_TIERS: usize = 4;
/// The controller's noise floor, and the batch one scan isolates (BITS_PER_LONG).
const MIN_LRU_BATCH: u64 = 64;
/// The most folios one scan looks at.
const MAX_LRU_BATCH: u64 = 64 * MIN_LRU_BATCH;
const MAX_SWAPPINESS: u64 = 200;

pub fn gen_of(seq: u64) -> usize {
    (seq % MAX_NR_GENS as u64) as usize
}

/// lru_tier_from_refs: accesses through file descriptors beyond the first
/// (0..=4) to a tier, order_base_2(refs + 1).
pub fn tier_of(refs: u16) -> usize {
    match refs {
        0 => 0,
        1 => 1,
        2 | 3 => 2,
        _ => 3,
    }
}

/// One lruvec's generations and the refault feedback (struct lru_gen_folio;
/// one history generation, NR_HIST_GENS = 1).
#[derive(Debug, Clone)]
pub struct LruGen {
    pub max_seq: u64,
    /// The oldest generation of anon (0) and file (1).
    pub min_seq: [u64; 2],
    avg_refaulted: [[u64; MAX_NR_TIERS]; 2],
    avg_total: [[u64; MAX_NR_TIERS]; 2],
    refaulted: [[u64; MAX_NR_TIERS]; 2],
    evicted: [[u64; MAX_NR_TIERS]; 2],
    protected: [[u64; MAX_NR_TIERS]; 2],
}

impl Default for LruGen {
    fn default() -> Self {
        // lru_gen_init_lruvec: generations 0..=3 exist from the start.
        LruGen {
            max_seq: MIN_NR_GENS + 1,
            min_seq: [0, 0],
            avg_refaulted: Default::default(),
            avg_total: Default::default(),
            refaulted: Default::default(),
            evicted: Default::default(),
            protected: Default::default(),
        }
    }
}

/// A controller position: refaults against evictions (read_ctrl_pos).
struct CtrlPos {
    refaulted: u64,
    total: u64,
    gain: u64,
}

/// positive_ctrl_err: whether `pv` refaults less (per eviction, weighted by
/// gain) than the set point `sp`, or hardly at all.
fn positive_ctrl_err(sp: &CtrlPos, pv: &CtrlPos) -> bool {
    pv.refaulted < MIN_LRU_BATCH
        || pv.refaulted * (sp.total + MIN_LRU_BATCH) * sp.gain <= (sp.refaulted + 1) * pv.total * pv.gain
}

impl LruGen {
    pub fn nr_gens(&self, file: bool) -> u64 {
        self.max_seq - self.min_seq[file as usize] + 1
    }

    /// lru_gen_is_active: the two youngest generations count as active in
    /// /proc/meminfo and vmstat.
    pub fn is_active(&self, gen: usize) -> bool {
        gen == gen_of(self.max_seq) || gen == gen_of(self.max_seq - 1)
    }

    /// lru_gen_add_folio's choice of generation for a folio joining the lists.
    fn seq_for(&self, file: bool, active: bool, reclaiming: bool) -> u64 {
        let min = self.min_seq[file as usize];
        if active {
            self.max_seq
        } else if !file {
            self.max_seq - 1 // anonymous, not from the swap cache
        } else if reclaiming || min + MIN_NR_GENS >= self.max_seq {
            min
        } else {
            min + 1
        }
    }

    fn ctrl_pos(&self, file: bool, tier: usize, gain: u64) -> CtrlPos {
        let t = file as usize;
        let mut total = self.avg_total[t][tier] + self.evicted[t][tier];
        if tier > 0 {
            total += self.protected[t][tier - 1];
        }
        CtrlPos { refaulted: self.avg_refaulted[t][tier] + self.refaulted[t][tier], total, gain }
    }

    /// get_type_to_scan: compare the first tiers of anon and file; then the
    /// tiers of the chosen type with the first of the other for the last
    /// tier to evict. Returns (file?, tier_idx).
    fn type_to_scan(&self, swappiness: u64) -> (bool, usize) {
        let gain = [swappiness, MAX_SWAPPINESS - swappiness];
        let file = positive_ctrl_err(&self.ctrl_pos(false, 0, gain[0]), &self.ctrl_pos(true, 0, gain[1]));
        let sp = self.ctrl_pos(!file, 0, gain[!file as usize]);
        let tier = (1..MAX_NR_TIERS)
            .find(|&tier| !positive_ctrl_err(&sp, &self.ctrl_pos(file, tier, gain[file as usize])))
            .unwrap_or(MAX_NR_TIERS);
        (file, tier - 1)
    }

    /// get_tier_idx: the tiers of a type against its first, with a 1:2 margin.
    fn tier_idx(&self, file: bool) -> usize {
        let sp = self.ctrl_pos(file, 0, 1);
        let tier = (1..MAX_NR_TIERS).find(|&tier| !positive_ctrl_err(&sp, &self.ctrl_pos(file, tier, 2)));
        tier.unwrap_or(MAX_NR_TIERS) - 1
    }

    /// What lru_gen_full shows for `tier` of type `t` at generation `seq`.
    fn tier_stat(&self, seq: u64, t: usize, tier: usize) -> TierStat {
        if seq == self.max_seq {
            TierStat::Average { refaulted: self.avg_refaulted[t][tier], total: self.avg_total[t][tier] }
        } else if seq == self.min_seq[t] {
            TierStat::Current {
                refaulted: self.refaulted[t][tier],
                evicted: self.evicted[t][tier],
                protected: if tier > 0 { self.protected[t][tier - 1] } else { 0 },
            }
        } else {
            TierStat::None
        }
    }

    /// reset_ctrl_pos with carryover: the oldest generation goes, its
    /// counts fold into the averages (halved) and start again.
    fn carry_over(&mut self, file: bool) {
        let t = file as usize;
        for tier in 0..MAX_NR_TIERS {
            self.avg_refaulted[t][tier] = (self.avg_refaulted[t][tier] + self.refaulted[t][tier]) / 2;
            let protected = if tier > 0 { self.protected[t][tier - 1] } else { 0 };
            self.avg_total[t][tier] = (self.avg_total[t][tier] + self.evicted[t][tier] + protected) / 2;
            self.refaulted[t][tier] = 0;
            self.evicted[t][tier] = 0;
            if tier > 0 {
                self.protected[t][tier - 1] = 0;
            }
        }
    }
}

/// One generation of one lruvec, as /sys/kernel/debug/lru_gen_full lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenInfo {
    pub memcg: CgId,
    pub seq: u64,
    pub anon: u64,
    pub file: u64,
    /// The refault feedback per tier, by type (anon, file), where
    /// lru_gen_full shows it: the averages at the youngest generation, the
    /// counts since the last carry-over at the oldest of each type.
    pub tiers: [[TierStat; 2]; MAX_NR_TIERS],
}

/// One tier's refault feedback for one type, as lru_gen_full prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierStat {
    /// Not shown at this generation.
    #[default]
    None,
    /// At the youngest generation ("RT"): the running averages the
    /// controller compares (refaults, and evictions plus protections).
    Average { refaulted: u64, total: u64 },
    /// At the oldest generation of the type ("rep"): refaults, evictions
    /// and protections since that generation became the oldest.
    Current { refaulted: u64, evicted: u64, protected: u64 },
}

impl LinuxLru {
    /// lru_gen_add_folio: a folio joins a generation of its lruvec (the
    /// youngest if `active`: faulted in, or refaulted recently).
    pub(super) fn gen_add(&mut self, pfn: Pfn, file: bool, v: usize, active: bool) {
        let g = &self.lruvecs[v].gen;
        let gen = gen_of(g.seq_for(file, active, false));
        let lists = &mut self.lruvecs[v].lists;
        lists.set_gen(&mut self.folios, pfn, gen);
        lists.add(&mut self.folios, pfn, List::Gen { gen, file });
    }

    /// folio_inc_refs: an access through a file descriptor; the first sets
    /// PG_referenced, the second PG_workingset, the next raise the tier.
    pub(super) fn gen_mark_accessed(&mut self, pfn: Pfn) {
        let f = &mut self.folios;
        if !f.has(pfn, pg::REFERENCED) {
            f.set(pfn, pg::REFERENCED, true);
        } else if !f.has(pfn, pg::WORKINGSET) {
            f.set(pfn, pg::WORKINGSET, true);
        } else {
            f.set_refs(pfn, f.refs(pfn) + 1);
        }
    }

    /// folio_lru_refs: accesses beyond the first, 0..=4.
    fn lru_refs(&self, pfn: Pfn) -> u16 {
        self.folios.refs(pfn) + self.folios.has(pfn, pg::WORKINGSET) as u16
    }

    /// lru_gen_eviction: the shadow records the youngest generation then and the folio's refs.
    pub(super) fn gen_eviction_shadow(&mut self, pfn: Pfn, file: bool) -> Shadow {
        let v = self.folios.lruvec(pfn);
        let refs = self.lru_refs(pfn);
        let g = &mut self.lruvecs[v].gen;
        g.evicted[file as usize][tier_of(refs)] += 1;
        Shadow {
            eviction: g.max_seq,
            lruvec: v as u16,
            workingset: self.folios.has(pfn, pg::WORKINGSET),
            tier: refs.min(3) as u8,
        }
    }

    /// lru_gen_refault: recent if evicted fewer than MAX_NR_GENS generations
    /// ago; its tier's refaults feed the controller. Returns (active, workingset).
    pub(super) fn gen_refault(&mut self, shadow: Shadow, file: bool, in_fault: bool) -> (bool, bool) {
        let Some(v) = self.lruvecs.get_mut(shadow.lruvec as usize) else { return (false, false) };
        let s = &mut v.stat;
        *(if file { &mut s.workingset_refault_file } else { &mut s.workingset_refault_anon }) += 1;
        if v.gen.max_seq - shadow.eviction.min(v.gen.max_seq) >= MAX_NR_GENS as u64 {
            return (false, false);
        }
        let refs = shadow.tier as u16 + shadow.workingset as u16;
        v.gen.refaulted[file as usize][tier_of(refs)] += 1;
        let s = &mut v.stat;
        if in_fault {
            *(if file { &mut s.workingset_activate_file } else { &mut s.workingset_activate_anon }) += 1;
        }
        if shadow.workingset {
            *(if file { &mut s.workingset_restore_file } else { &mut s.workingset_restore_anon }) += 1;
        }
        (in_fault, shadow.workingset)
    }

    /// A refaulted folio carries its refs back (set after `gen_add`).
    pub(super) fn gen_restore_refs(&mut self, pfn: Pfn, shadow: Option<Shadow>) {
        if let Some(sh) = shadow.filter(|sh| !sh.workingset) {
            self.folios.set_refs(pfn, sh.tier as u16);
            self.folios.set(pfn, pg::REFERENCED, sh.tier > 0);
        }
    }

    /// Pages of an lruvec on list `lru` as /proc/meminfo counts them: the two
    /// youngest generations are active, the rest inactive.
    pub(super) fn gen_lru_size(&self, v: usize, lru: Lru) -> u64 {
        let l = &self.lruvecs[v];
        if lru == Lru::Unevictable {
            return l.lists.len(Lru::Unevictable);
        }
        (0..MAX_NR_GENS)
            .filter(|&gen| l.gen.is_active(gen) == lru.is_active())
            .map(|gen| l.lists.gen_pages(gen, lru.is_file()))
            .sum()
    }

    /// Every generation of every lruvec, oldest first.
    pub fn generations(&self) -> Vec<GenInfo> {
        let mut out = Vec::new();
        for (v, l) in self.lruvecs.iter().enumerate() {
            let g = &l.gen;
            for seq in g.min_seq[0].min(g.min_seq[1])..=g.max_seq {
                let gen = gen_of(seq);
                let count = |file: bool| if seq >= g.min_seq[file as usize] { l.lists.gen_pages(gen, file) } else { 0 };
                let tiers = std::array::from_fn(|tier| [0, 1].map(|t| g.tier_stat(seq, t, tier)));
                out.push(GenInfo { memcg: v as CgId, seq, anon: count(false), file: count(true), tiers });
            }
        }
        out
    }

    /// For `sim.check()`: each generation list holds folios of its type
    /// only, recorded within the live generations.
    pub(super) fn gen_check(&self) -> Result<(), String> {
        for (v, l) in self.lruvecs.iter().enumerate() {
            let g = &l.gen;
            for file in [false, true] {
                let n = g.nr_gens(file);
                if !(MIN_NR_GENS..=MAX_NR_GENS as u64).contains(&n) {
                    return Err(format!("MGLRU: lruvec {v} has {n} generations of type {}", file as u8));
                }
                for gen in 0..MAX_NR_GENS {
                    for pfn in l.lists.walk(&self.folios, List::Gen { gen, file }) {
                        if self.folios.is_file(pfn) != file {
                            return Err(format!("MGLRU: frame {pfn} is on the wrong type's generation list"));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Reclaimer<'_> {
    /// The swappiness this lruvec's eviction may use: none without swap room.
    fn gen_swappiness(&self, v: usize, cgroup: bool) -> u64 {
        if self.swap_free(v) == 0 || (cgroup && self.lr.swappiness == 0) {
            0
        } else {
            self.lr.swappiness as u64
        }
    }

    /// try_to_shrink_lruvec: evict from the oldest generations, aging first
    /// when a type has none left to give (not at the first priority).
    pub(super) fn gen_shrink_lruvec(&mut self, sc: &mut super::vmscan::ScanControl) {
        let v = sc.lruvec;
        let swappiness = self.gen_swappiness(v, sc.target.is_some());
        let l = &self.lr.lruvecs[v].lists;
        let evictable: u64 = (0..MAX_NR_GENS)
            .map(|gen| l.gen_pages(gen, true) + if swappiness > 0 { l.gen_pages(gen, false) } else { 0 })
            .sum();
        let nr_to_scan = (evictable >> sc.priority).max((sc.priority == 0) as u64 * evictable);
        let mut scanned = 0;
        while scanned < nr_to_scan.max(1) && sc.nr_reclaimed < sc.nr_to_reclaim {
            if self.should_run_aging(v, swappiness) {
                if sc.priority == DEF_PRIORITY {
                    return; // low on cold folios: other lruvecs first
                }
                self.age(v, swappiness > 0);
            }
            let delta = self.evict_folios(sc, swappiness);
            if delta == 0 {
                break;
            }
            scanned += delta;
        }
    }

    /// should_run_aging: whether the types it may evict are out of cold generations.
    fn should_run_aging(&self, v: usize, swappiness: u64) -> bool {
        let g = &self.lr.lruvecs[v].gen;
        let oldest = if swappiness > 0 { g.min_seq[0].min(g.min_seq[1]) } else { g.min_seq[1] };
        oldest + MIN_NR_GENS > g.max_seq
    }

    /// try_to_inc_max_seq: walk every page table, promote each folio of
    /// lruvec `v` whose PTE was young to the youngest generation (clearing
    /// the bit), then open a new generation, folding the oldest into the
    /// next when there are MAX_NR_GENS already.
    fn age(&mut self, v: usize, can_swap: bool) {
        let young_gen = gen_of(self.lr.lruvecs[v].gen.max_seq);
        let lr = &mut *self.lr;
        super::rmap::for_each_young(&mut self.cur, self.k, |pfn| {
            let f = &lr.folios;
            if f.lruvec(pfn) != v || !matches!(f.list(pfn), Some(List::Gen { .. })) || (!can_swap && !f.is_file(pfn)) {
                return;
            }
            let lists = &mut lr.lruvecs[v].lists;
            lists.set_gen(&mut lr.folios, pfn, young_gen);
            // folio_update_gen clears the reference flags and refs.
            lr.folios.set(pfn, pg::REFERENCED | pg::WORKINGSET, false);
            lr.folios.set_refs(pfn, 0);
        });
        for file in [false, true] {
            if self.lr.lruvecs[v].gen.nr_gens(file) == MAX_NR_GENS as u64 {
                self.inc_min_seq(v, file);
            }
        }
        self.lr.lruvecs[v].gen.max_seq += 1;
    }

    /// inc_min_seq: the oldest generation of a type moves into the next one.
    fn inc_min_seq(&mut self, v: usize, file: bool) {
        let g = &self.lr.lruvecs[v].gen;
        let (old, new) = (gen_of(g.min_seq[file as usize]), gen_of(g.min_seq[file as usize] + 1));
        while let Some(pfn) = self.lr.lruvecs[v].lists.tail(List::Gen { gen: old, file }) {
            let lists = &mut self.lr.lruvecs[v].lists;
            lists.del(&mut self.lr.folios, pfn);
            let gen = if self.lr.folios.gen(pfn) == old { new } else { self.lr.folios.gen(pfn) };
            lists.set_gen(&mut self.lr.folios, pfn, gen);
            lists.add_tail(&mut self.lr.folios, pfn, List::Gen { gen, file });
        }
        let g = &mut self.lr.lruvecs[v].gen;
        g.carry_over(file);
        g.min_seq[file as usize] += 1;
    }

    /// try_to_inc_min_seq: drop the oldest generations that emptied.
    fn try_to_inc_min_seq(&mut self, v: usize) {
        for file in [false, true] {
            loop {
                let l = &self.lr.lruvecs[v];
                let min = l.gen.min_seq[file as usize];
                if l.gen.nr_gens(file) <= MIN_NR_GENS || l.lists.len(List::Gen { gen: gen_of(min), file }) > 0 {
                    break;
                }
                let g = &mut self.lr.lruvecs[v].gen;
                g.carry_over(file);
                g.min_seq[file as usize] += 1;
            }
        }
    }

    /// evict_folios: isolate from the oldest generation of the type to
    /// scan, reclaim what the reference check lets go, and put the rest in
    /// the youngest generation. Returns the folios scanned.
    fn evict_folios(&mut self, sc: &mut super::vmscan::ScanControl, swappiness: u64) -> u64 {
        let v = sc.lruvec;
        let g = &self.lr.lruvecs[v].gen;
        let (mut file, mut tier_idx) = if swappiness == 0 {
            (true, None)
        } else if g.min_seq[0] < g.min_seq[1] {
            (false, None)
        } else if swappiness == 1 {
            (true, None)
        } else if swappiness == MAX_SWAPPINESS {
            (false, None)
        } else {
            let (file, tier) = g.type_to_scan(swappiness);
            (file, Some(tier))
        };
        let mut isolated = Vec::new();
        let mut scanned = 0;
        for _ in 0..(1 + (swappiness > 0) as usize) {
            let tier = tier_idx.unwrap_or_else(|| self.lr.lruvecs[v].gen.tier_idx(file));
            scanned = self.scan_folios(v, file, tier, &mut isolated);
            if scanned > 0 {
                break;
            }
            (file, tier_idx) = (!file, None);
        }
        self.try_to_inc_min_seq(v);
        let reclaimed = self.reclaim_isolated(sc, file, isolated);
        let s = &mut self.lr.lruvecs[v].stat;
        *(if sc.kswapd { &mut s.pgscan_kswapd } else { &mut s.pgscan_direct }) += scanned;
        *(if sc.kswapd { &mut s.pgsteal_kswapd } else { &mut s.pgsteal_direct }) += reclaimed;
        *(if file { &mut s.pgscan_file } else { &mut s.pgscan_anon }) += scanned;
        *(if file { &mut s.pgsteal_file } else { &mut s.pgsteal_anon }) += reclaimed;
        sc.nr_reclaimed += reclaimed;
        scanned
    }

    /// scan_folios and sort_folio: from the tail of the oldest generation,
    /// move promoted folios to their generation and protected tiers to the
    /// next one; isolate the rest, up to MIN_LRU_BATCH.
    fn scan_folios(&mut self, v: usize, file: bool, tier_idx: usize, isolated: &mut Vec<Pfn>) -> u64 {
        let g = &self.lr.lruvecs[v].gen;
        if g.nr_gens(file) == MIN_NR_GENS {
            return 0;
        }
        let oldest = gen_of(g.min_seq[file as usize]);
        let next = gen_of(g.min_seq[file as usize] + 1);
        let mut scanned = 0;
        let mut remaining = MAX_LRU_BATCH;
        while let Some(pfn) = self.lr.lruvecs[v].lists.tail(List::Gen { gen: oldest, file }) {
            scanned += 1;
            let recorded = self.lr.folios.gen(pfn);
            let tier = tier_of(self.lr.lru_refs(pfn));
            let l = &mut *self.lr;
            let lists = &mut l.lruvecs[v].lists;
            if recorded != oldest {
                lists.move_to(&mut l.folios, pfn, List::Gen { gen: recorded, file });
            // promoted by the aging
            } else if tier > tier_idx {
                // Read often through file descriptors: protected for a generation.
                lists.del(&mut l.folios, pfn);
                lists.set_gen(&mut l.folios, pfn, next);
                l.folios.set(pfn, pg::REFERENCED | pg::WORKINGSET, false);
                l.folios.set_refs(pfn, 0);
                lists.add_tail(&mut l.folios, pfn, List::Gen { gen: next, file });
                let lv = &mut l.lruvecs[v];
                lv.gen.protected[file as usize][tier - 1] += 1;
                let s = &mut lv.stat;
                *(if file { &mut s.workingset_activate_file } else { &mut s.workingset_activate_anon }) += 1;
            } else {
                lists.del(&mut l.folios, pfn);
                isolated.push(pfn);
            }
            remaining -= 1;
            if remaining == 0 || isolated.len() as u64 >= MIN_LRU_BATCH {
                break;
            }
        }
        scanned
    }

    /// shrink_folio_list for the multi-gen LRU: the classic reference check
    /// and unmapping; what stays goes to the youngest generation.
    fn reclaim_isolated(&mut self, sc: &mut super::vmscan::ScanControl, file: bool, isolated: Vec<Pfn>) -> u64 {
        let v = sc.lruvec;
        let mut reclaimed = 0;
        for pfn in isolated {
            let freed = match self.folio_check_references(pfn) {
                super::vmscan::Verdict::Cull => {
                    self.cull(v, pfn);
                    continue;
                }
                super::vmscan::Verdict::Reclaim if file || self.may_swap(pfn, v) => self.try_reclaim(pfn).is_some(),
                _ => false,
            };
            if freed {
                reclaimed += 1;
            } else {
                let youngest = gen_of(self.lr.lruvecs[v].gen.max_seq);
                let l = &mut *self.lr;
                l.folios.set(pfn, pg::REFERENCED | pg::WORKINGSET, false);
                l.folios.set_refs(pfn, 0);
                let lists = &mut l.lruvecs[v].lists;
                lists.set_gen(&mut l.folios, pfn, youngest);
                lists.add(&mut l.folios, pfn, List::Gen { gen: youngest, file });
            }
        }
        reclaimed
    }
}
