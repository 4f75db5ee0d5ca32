//! memsentry: the pure core (readers, collector, sampler, detectors, history), napi-free, and
//! behind the `node` feature the thin napi binding that converts options in and events out.
//!
//! Data flow: `procfs` and `cgroup` and `children` (readers) → `sampler::collector` (one
//! `Sample`) → `sampler` (thread, `sampler::history`, `detect::thresholds`, `detect::leak`,
//! events in `sampler::outbox`) → `node::binding` (threadsafe function to JS).

pub mod cgroup;
pub mod children;
pub mod detect;
pub mod procfs;
pub mod sample;
pub mod sampler;

#[cfg(test)]
mod test_tree;

#[cfg(feature = "node")]
pub mod node;
