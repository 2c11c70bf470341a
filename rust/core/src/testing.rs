//! Helpers for tests, benchmarks and fuzzing (the `testing` feature; always
//! there under `cfg(test)`). Not part of the simulator's API.

pub use crate::rng::XorShift;
