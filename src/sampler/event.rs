//! What the sampler hands the outside world, and the sink that takes it: the napi binding's
//! (`src/node/`), or a test's recorder.

use std::sync::Arc;

use crate::detect::leak::LeakEstimate;
use crate::detect::thresholds::Direction;
use crate::sample::Sample;

/// What the sampler tells the outside world.
#[derive(Debug, Clone)]
pub enum Event {
    Sample(Arc<Sample>),
    Threshold {
        name: String,
        metric: &'static str,
        /// For a `child.rss` rule: the child's pid and command name.
        child: Option<(u32, String)>,
        threshold: u64,
        value: u64,
        direction: Direction,
        sample: Arc<Sample>,
    },
    /// Steady growth began (`ended: false`) or stopped (`ended: true`).
    Leak {
        ended: bool,
        metric: &'static str,
        estimate: LeakEstimate,
        /// At the current slope, until the metric reaches the limit or, for a heap leak, the
        /// heap V8's heap limit, whichever comes first; `None` without either.
        ms_to_limit: Option<f64>,
        /// The child that grows fastest (pid, comm, bytes/s), when the suspect is a child.
        child: Option<(u32, String, f64)>,
        sample: Arc<Sample>,
    },
    /// A child process appeared or exited.
    Child(crate::children::ChildChange),
    /// The cgroup's OOM counter rose (v2 oom_kill; v1 oom_kill or failcnt).
    Oom {
        sample: Arc<Sample>,
    },
    /// A read failed (reported once per failure episode), or the sampler itself failed.
    Error {
        code: &'static str,
        message: String,
        path: Option<String>,
    },
}

pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: Event);
}
