//! memsentry: the pure core (readers, collector, sampler, detectors, history), napi-free, and
//! behind the `node` feature the thin napi binding that converts options in and events out.
//!
//! Data flow: `readers` → `collector` (one `Sample`) → `sampler` (thread, `history`,
//! `thresholds`, events) → `binding` (threadsafe function to JS).

pub mod cgroup;
pub mod children;
pub mod collector;
pub mod history;
pub mod leak;
pub mod outbox;
pub mod proc_file;
pub mod read_error;
pub mod readers;
pub mod sample;
pub mod sampler;
pub mod thresholds;
pub mod trend;

#[cfg(feature = "node")]
pub mod binding;
#[cfg(feature = "node")]
pub mod js_values;
