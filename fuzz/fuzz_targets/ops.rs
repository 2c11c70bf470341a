//! Coverage-guided fuzzing of the simulator core: bytes become operation
//! sequences (see vmsim_core::fuzzing); any panic, broken invariant or
//! leaked frame is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vmsim_core::fuzzing::run(data);
});
