//! A Python object's share of a simulator.

use pyo3::prelude::*;
use std::sync::Arc;
use vmsim_core::Simulator;

/// Simulator, Process, File and Kernel objects each hold one. Tearing a
/// simulator down (every address space's pages, tables and frames given
/// back) takes as long as a large batch: when the last share goes, that
/// runs with the GIL released, so other Python threads (another
/// simulator's batches among them) keep running meanwhile.
pub struct SimRef(Option<Arc<Simulator>>);

impl SimRef {
    pub fn new(sim: Simulator) -> SimRef {
        SimRef(Some(Arc::new(sim)))
    }

    /// Whether two shares are of one simulator.
    pub fn same(&self, other: &SimRef) -> bool {
        Arc::ptr_eq(self.arc(), other.arc())
    }

    fn arc(&self) -> &Arc<Simulator> {
        self.0.as_ref().expect("a share is only emptied by its drop")
    }
}

impl Clone for SimRef {
    fn clone(&self) -> SimRef {
        SimRef(Some(self.arc().clone()))
    }
}

impl std::ops::Deref for SimRef {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        self.arc()
    }
}

impl Drop for SimRef {
    fn drop(&mut self) {
        let Some(sim) = self.0.take() else { return };
        // Only the last share tears down (nobody else can clone it then).
        if Arc::strong_count(&sim) == 1 {
            // At interpreter shutdown try_attach runs nothing, and the
            // closure, simulator and all, is dropped right here instead.
            let _ = Python::try_attach(|py| py.detach(move || drop(sim)));
        }
    }
}
