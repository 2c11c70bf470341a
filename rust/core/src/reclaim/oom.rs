//! The OOM killer (mm/oom_kill.c): when reclaim cannot make room, on the
//! machine or in a memory cgroup at its `max`, choose the address space
//! whose death gives back most (`oom_badness`: resident pages, swap entries
//! and page tables, shifted by `oom_score_adj`), reap its memory at once as
//! the OOM reaper does, and let the allocation try again. Its tasks are
//! killed when the operation that ran out of memory returns (see the
//! simulator), and any later use of them says why they are gone.

use super::memcg::CgId;
use super::Reclaim;
use crate::kernel::{Kernel, ReclaimTarget};
use crate::mm::Mm;

pub const OOM_SCORE_ADJ_MIN: i16 = -1000;
pub const OOM_SCORE_ADJ_MAX: i16 = 1000;

/// What the OOM killer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomOutcome {
    /// Another address space was killed and its memory reaped: try again.
    KilledOther,
    /// The faulting one was chosen: its fault fails and its tasks die.
    KilledCurrent,
    /// Nothing could be killed (every candidate at -1000, or none in scope).
    Nothing,
}

/// An address space the OOM killer chose, for the simulator to kill its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomVictim {
    pub mm: u32,
    /// Why, in words ("out of memory", "memory cgroup /a at memory.max"), with its badness.
    pub reason: String,
}

/// out_of_memory: in `scope` (a group's subtree) or the whole machine (None).
pub fn out_of_memory(cur: Option<&mut Mm>, k: &mut Kernel, scope: Option<CgId>) -> OomOutcome {
    let Some(lr) = k.reclaim().and_then(Reclaim::linux) else { return OomOutcome::Nothing };
    let swap_total = k.swap().total();
    // The memory the victim's share is measured against (oc->totalpages).
    let totalpages = match scope {
        None => k.phys().frames_total() + swap_total,
        Some(cg) => {
            let l = lr.cgroups.get(cg).limits;
            l.max.unwrap_or(u64::MAX).min(k.phys().frames_total()) + l.swap_max.unwrap_or(u64::MAX).min(swap_total)
        }
    };
    let in_scope = |memcg: CgId| scope.is_none_or(|s| lr.cgroups.is_within(memcg, s));
    let evaluate = |t: &dyn ReclaimTarget| if in_scope(t.memcg()) { t.oom_badness(totalpages) } else { None };
    let mut ids: Vec<u32> = k.mm_ids().collect();
    ids.sort_unstable();
    let cur_id = cur.as_ref().map(|m| m.id);
    // oom_evaluate_task walks the tasks oldest first and takes a later one on a tie.
    let mut chosen: Option<(u32, i64, CgId)> = None;
    for id in ids {
        let found = if Some(id) == cur_id {
            cur.as_deref().and_then(|m| evaluate(m).map(|p| (p, m.memcg)))
        } else {
            // An address space busy elsewhere right now cannot be reaped: passed over.
            k.mm_handle(id).and_then(|h| h.try_lock().and_then(|t| evaluate(&*t).map(|p| (p, t.memcg()))))
        };
        if let Some((points, memcg)) = found {
            if chosen.is_none_or(|(_, best, _)| points >= best) {
                chosen = Some((id, points, memcg));
            }
        }
    }
    let Some((victim, points, memcg)) = chosen else { return OomOutcome::Nothing };
    let reason = match scope {
        None => format!("out of memory (oom_badness {points})"),
        Some(cg) => format!("memory cgroup {} at memory.max (oom_badness {points})", lr.cgroups.path(cg)),
    };
    let outcome = if Some(victim) == cur_id {
        if let Some(m) = cur {
            m.oom_killed = true;
        }
        OomOutcome::KilledCurrent
    } else {
        match k.mm_handle(victim).and_then(|h| h.try_lock().map(|mut t| t.oom_reap(k))) {
            Some(()) => OomOutcome::KilledOther,
            None => return OomOutcome::Nothing,
        }
    };
    k.note_oom_kill(OomVictim { mm: victim, reason }, memcg);
    outcome
}
