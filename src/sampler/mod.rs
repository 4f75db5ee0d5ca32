//! The sampler: a thread per sentry that reads a `Sample` every period, keeps the history, runs
//! the detectors and hands events to a sink. Knows nothing of napi: the binding supplies the sink.
//!
//! [`Shared`] is what a sentry's threads share: the collector, the history, the detectors;
//! [`thread`] runs its tick on a period; [`event`] is what it hands the sink.

pub mod collector;
pub mod event;
pub mod history;
pub mod outbox;
pub mod reader_thread;
pub mod thread;
pub mod undelivered;

pub use event::{Event, EventSink};
pub use thread::{SamplerThread, JOIN_LIMIT};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::detect::leak::{
    ms_to_any_limit, ChildGrowth, LeakConfig, LeakEstimate, LeakTransition, LeakWatch, Suspect,
};
use crate::detect::thresholds::{RuleState, ThresholdDetector, ThresholdRule, Watched};
use crate::procfs::read_error::ReadError;
use crate::sample::{HeapFigures, Metric, Sample};
use crate::sampler::collector::Collector;
use crate::sampler::history::History;
use crate::sampler::reader_thread::{ReaderThread, READ_LIMIT};

#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    pub history_size: usize,
    pub thresholds: Vec<ThresholdRule>,
    pub leak: Option<LeakSettings>,
    /// The memory limit in force, for `msToLimit`.
    pub limit: Option<MemoryLimit>,
    /// Whether heap figures from the JS side go into the samples (`heap: true`); the leak
    /// detector gets them either way.
    pub heap_in_samples: bool,
    /// V8's heap limit (`heap_size_limit`, bytes), from the JS side: a heap leak ends the
    /// process there, before any memory limit in a container
    /// ([`crate::detect::leak::ms_to_heap_limit`]).
    pub heap_limit: Option<u64>,
}

/// The memory limit in force, and what `msToLimit` measures against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// The `limit` option (bytes): the leak metric's way to it.
    Given(u64),
    /// The process's memory cgroup's limit (bytes): the cgroup's working set's way to it. The
    /// kernel charges the cgroup, not the metric: a page mapped by a parent and its child counts
    /// once there (twice in `treeRss`), and every process of the container counts. Measured with
    /// a worker leaking into a 320 MiB limit: from `treeRss` the OOM kill was due in 27 s, from
    /// the working set in 39 s; it came 39 s later.
    Cgroup(u64),
}

impl MemoryLimit {
    pub fn bytes(self) -> u64 {
        match self {
            MemoryLimit::Given(b) | MemoryLimit::Cgroup(b) => b,
        }
    }

    /// The figure that approaches this limit: the cgroup's working set for the cgroup's limit
    /// (the metric's value when the sample has none), else the leak metric's `value`.
    fn approaching(self, sample: &Sample, value: f64) -> f64 {
        match self {
            MemoryLimit::Given(_) => value,
            MemoryLimit::Cgroup(_) => sample
                .cgroup
                .as_ref()
                .and_then(|c| c.working_set)
                .map_or(value, |w| w as f64),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LeakSettings {
    pub config: LeakConfig,
    pub metric: Metric,
}

/// The detectors' state; it outlives a stop/start so an armed threshold stays armed.
#[derive(Debug)]
struct Detectors {
    thresholds: ThresholdDetector,
    /// Keys of the read failures seen lately, with the tick each was last seen on: a failure is
    /// reported when it first appears, and again only after it has cleared and come back.
    /// Cleared: not seen for `failure_clears_after` ticks, since some files are not read on
    /// every tick (smaps every n-th, children's `task/` at discovery).
    failing: HashMap<String, u64>,
    failure_clears_after: u64,
    ticks: u64,
    leak: Option<(LeakWatch, Metric)>,
    /// For a leak metric that covers the children: how fast each grows, to name the one.
    child_growth: ChildGrowth,
    /// The previous cgroup reading, to see the OOM counter rise.
    last_cgroup: Option<crate::cgroup::CgroupSample>,
    /// When the leak episode in progress was confirmed (the sample's epoch ms): kept here, as the
    /// detector knows only its own clock.
    leak_since: Option<f64>,
    /// The newest figure that approaches the limit (see [`MemoryLimit::approaching`]), for the
    /// time to the limit at read time.
    leak_value: Option<f64>,
    /// The newest `heapUsed` from the JS side, for the time to V8's heap limit.
    heap_used: Option<f64>,
    /// Whether the episode in progress has had the heap as its suspect (at its start or since):
    /// its time to the limit counts V8's heap limit for as long as it lasts, whatever the cause
    /// read later.
    leak_heap: bool,
}

/// The leak episode in progress, as `sentry.leakEpisode` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakEpisode {
    /// When it was confirmed ('leak' sent), epoch ms.
    pub since: f64,
    pub metric: &'static str,
    /// The detector's latest estimate.
    pub estimate: LeakEstimate,
    /// At that slope, from the metric's newest value (for a heap leak, V8's heap limit too, if
    /// sooner); `None` without a limit.
    pub ms_to_limit: Option<f64>,
}

/// State shared by the sampler thread and the main thread.
pub struct Shared {
    config: SamplerConfig,
    /// `None` once closed: the readers' files are closed with the sentry, not at its GC. Held
    /// by a tick for its reads, which can block: the JS thread only ever tries it for a while.
    collector: Mutex<Option<Collector>>,
    /// Runs `snapshot()`'s reads, started at the first; its own, so that one sentry's hung
    /// read never delays another's.
    reader: ReaderThread,
    /// Whether `snapshot()` reads there: only when it reads children. Its own entries are read
    /// on the caller's thread, as `process.memoryUsage()` does (a round trip costs more than the
    /// read). Kept here because the collector that knows it may be locked by a hung tick.
    snapshot_off_thread: bool,
    /// Set by `close_files`; a tick that held the collector meanwhile closes them when done.
    files_closed: AtomicBool,
    /// When the tick now reading took the collector, ms after `origin` plus one; 0 between
    /// reads. A snapshot that finds it older than its wait fails at once instead of waiting
    /// again: a tick stuck in a read (a child in D state) can hold the collector for minutes.
    tick_reading_since: AtomicU64,
    /// The newest heap figures from JS, merged into the collector by the next tick (so that
    /// recording them never waits for a tick's reads).
    heap: Mutex<Option<HeapFigures>>,
    /// The collector's clock origin, for `mono_ms` without its lock.
    origin: Instant,
    history: Mutex<History>,
    /// The newest sample with its per-child list (history entries keep only the sums).
    latest: Mutex<Option<Arc<Sample>>>,
    /// The sample `latest` held before, once nothing else held it either: its allocation is the
    /// next tick's, saving a malloc and a free per tick (about a microsecond each on the sampler
    /// thread after its sleep, with cold caches).
    spare: Mutex<Option<Arc<Sample>>>,
    detectors: Mutex<Detectors>,
    /// Set while JS listens to `'sample'`: no per-sample call into JS otherwise.
    want_samples: AtomicBool,
    cost: TickCost,
}

/// What the ticks cost the sampler thread, in thread CPU time (not wall time, so a descheduled
/// thread does not inflate it): the figure the performance budget is about.
#[derive(Debug, Default)]
struct TickCost {
    ticks: AtomicU64,
    cpu_ns: AtomicU64,
    max_cpu_ns: AtomicU64,
}

/// A copy of the tick counters, for `sentry.stats()` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickStats {
    pub ticks: u64,
    pub cpu_ns: u64,
    pub max_cpu_ns: u64,
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Locks even after a panic on another thread poisoned the mutex: the data are plain figures
/// and stay consistent, and the monitor must keep working.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(config: SamplerConfig, mut collector: Collector) -> Arc<Shared> {
        let snapshot_off_thread = collector.reads_other_processes();
        // The rules on cgroup metrics, which a missing cgroup would leave silent.
        let mut on_cgroup: Vec<String> = config
            .thresholds
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.metric, Watched::Sample(m) if m.from_cgroup()))
            .map(|(i, r)| format!("thresholds[{i}] ({})", r.metric.name()))
            .collect();
        if let Some(l) = config.leak.as_ref().filter(|l| l.metric.from_cgroup()) {
            on_cgroup.push(format!("leak detection ({})", l.metric.name()));
        }
        if !on_cgroup.is_empty() {
            collector.require_cgroup(&on_cgroup.join(" and "));
        }
        Arc::new(Shared {
            history: Mutex::new(History::new(config.history_size)),
            latest: Mutex::new(None),
            spare: Mutex::new(None),
            detectors: Mutex::new(Detectors {
                thresholds: ThresholdDetector::new(config.thresholds.clone()),
                failing: HashMap::new(),
                failure_clears_after: collector.cadence_in_readings(config.interval.as_millis() as u64),
                ticks: 0,
                leak: config.leak.map(|l| (LeakWatch::new(l.config), l.metric)),
                child_growth: ChildGrowth::default(),
                last_cgroup: None,
                leak_since: None,
                leak_value: None,
                heap_used: None,
                leak_heap: false,
            }),
            origin: collector.origin(),
            collector: Mutex::new(Some(collector)),
            reader: ReaderThread::new(),
            snapshot_off_thread,
            files_closed: AtomicBool::new(false),
            tick_reading_since: AtomicU64::new(0),
            heap: Mutex::new(None),
            want_samples: AtomicBool::new(false),
            cost: TickCost::default(),
            config,
        })
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Ms since the collector's clock origin.
    fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub fn set_want_samples(&self, on: bool) {
        self.want_samples.store(on, Ordering::Relaxed);
    }

    /// Heap figures recorded after a GC (`major_gc`: a full mark-compact): merged into the
    /// following samples (`heap: true`), and fed to the leak detector, which tells from them what
    /// grows, and waits for a full GC before it calls a growth of the heap a leak.
    pub fn set_heap(&self, heap: HeapFigures, major_gc: bool) {
        if self.files_closed.load(Ordering::Relaxed) {
            return;
        }
        if self.config.heap_in_samples {
            *lock(&self.heap) = Some(heap);
        }
        let mono_ms = self.mono_ms();
        let mut d = lock(&self.detectors);
        d.heap_used = Some(heap.heap_used).filter(|h| h.is_finite());
        if let Some((det, _)) = d.leak.as_mut() {
            det.observe_heap(
                mono_ms,
                heap.heap_used,
                heap.heap_total,
                // Node counts ArrayBuffers (Buffers) in `external` already.
                heap.external,
                major_gc,
            );
        }
    }

    /// The slope of the leak episode in progress (bytes/s), or `None`.
    pub fn leak_slope(&self) -> Option<f64> {
        lock(&self.detectors)
            .leak
            .as_ref()
            .and_then(|(d, _)| d.current())
            .map(|e| e.slope_bytes_per_sec)
    }

    /// The leak episode in progress, read from the detector now, or `None`.
    pub fn leak_episode(&self) -> Option<LeakEpisode> {
        let d = lock(&self.detectors);
        let (det, metric) = d.leak.as_ref()?;
        let estimate = det.current()?.clone();
        Some(LeakEpisode {
            // Set on the tick that saw the episode begin, under the same lock.
            since: d.leak_since?,
            metric: metric.name(),
            ms_to_limit: self.ms_to_limit(&estimate, d.leak_value, d.heap_used.filter(|_| d.leak_heap)),
            estimate,
        })
    }

    /// `msToLimit`: from `value` (what approaches the memory limit) to that limit at the
    /// estimate's slope or, given `heap_used` (a heap leak's), from there to V8's heap limit,
    /// whichever comes first.
    fn ms_to_limit(
        &self,
        estimate: &LeakEstimate,
        value: Option<f64>,
        heap_used: Option<f64>,
    ) -> Option<f64> {
        let limit = self.config.limit.map(|l| l.bytes() as f64);
        let heap_limit = self.config.heap_limit.map(|b| b as f64);
        ms_to_any_limit(estimate, (value, limit), (heap_used, heap_limit))
    }

    /// Each threshold rule's state now (per child for a `child.rss` rule), with its rule.
    pub fn threshold_states(&self) -> Vec<(RuleState, ThresholdRule)> {
        let d = lock(&self.detectors);
        let rules = d.thresholds.rules();
        d.thresholds
            .states()
            .into_iter()
            .map(|s| {
                let rule = rules[s.rule].clone();
                (s, rule)
            })
            .collect()
    }

    pub fn latest(&self) -> Option<Arc<Sample>> {
        lock(&self.latest).clone()
    }

    /// How many samples the history holds now.
    pub fn history_len(&self) -> usize {
        lock(&self.history).len()
    }

    pub fn history_since(&self, since_ms: f64, max_points: Option<usize>) -> Vec<Arc<Sample>> {
        let history = lock(&self.history);
        match max_points {
            Some(max) => history.since_thinned(since_ms, max),
            None => history.since(since_ms),
        }
    }

    /// A reading now; it neither enters the history nor runs detectors. Waits at most `wait`
    /// for a tick in progress (whose read may hang). With children, read on the reader thread
    /// and waited for at most `READ_LIMIT`.
    pub fn snapshot(self: &Arc<Self>, wait: Duration) -> Result<(Sample, Vec<ReadError>), &'static str> {
        // Said here, without the reader thread, which close() let go.
        if self.files_closed.load(Ordering::SeqCst) {
            return Err("the sentry is closed");
        }
        let shared = Arc::clone(self);
        let read = move || {
            // A tick already reading for longer than this call would wait: it is stuck, and
            // waiting again on every call would stall the event loop for nothing.
            let since = shared.tick_reading_since.load(Ordering::Acquire);
            if since != 0 && shared.mono_ms().saturating_sub(since - 1) >= wait.as_millis() as u64 {
                return Err("a sampler read is hanging");
            }
            let mut guard = try_lock_for(&shared.collector, wait).ok_or("a sampler read is hanging")?;
            let c = guard.as_mut().ok_or("the sentry is closed")?;
            if let Some(h) = *lock(&shared.heap) {
                c.set_heap(h);
            }
            let mut errors = Vec::new();
            let s = c.read(true, &mut errors);
            // Closed while this read hung: the files go now, as after a tick.
            if shared.files_closed.load(Ordering::SeqCst) {
                guard.take();
            }
            Ok((s, errors))
        };
        if !self.snapshot_off_thread {
            return read();
        }
        self.reader
            .run_within(READ_LIMIT, read)
            .unwrap_or_else(|e| Err(e.reason()))
    }

    /// Closes every file the readers hold and lets the reader thread end. The history and the
    /// latest sample stay readable; ticks after this do nothing. Never waits: a tick still
    /// reading (a detached thread) closes them when its read returns.
    pub fn close_files(&self) {
        self.files_closed.store(true, Ordering::SeqCst);
        self.reader.retire();
        match self.collector.try_lock() {
            Ok(mut guard) => drop(guard.take()),
            Err(TryLockError::Poisoned(p)) => drop(p.into_inner().take()),
            Err(TryLockError::WouldBlock) => {}
        }
    }

    pub fn tick_stats(&self) -> TickStats {
        TickStats {
            ticks: self.cost.ticks.load(Ordering::Relaxed),
            cpu_ns: self.cost.cpu_ns.load(Ordering::Relaxed),
            max_cpu_ns: self.cost.max_cpu_ns.load(Ordering::Relaxed),
        }
    }

    /// One tick, with its CPU time counted. Public so tests drive it without a thread.
    pub fn tick(&self, sink: &dyn EventSink) {
        self.tick_in_run(sink, &AtomicBool::new(false));
    }

    /// A tick of a sampler thread's run, which `stopped` ends: a tick whose read outlived its
    /// run (the thread was left to a hung read, see `SamplerThread::stop_within`) reports
    /// nothing, so a stopped sentry stays silent.
    pub fn tick_in_run(&self, sink: &dyn EventSink, stopped: &AtomicBool) {
        let start = thread_cpu_ns();
        self.tick_uncounted(sink, stopped);
        let spent = thread_cpu_ns().saturating_sub(start);
        self.cost.ticks.fetch_add(1, Ordering::Relaxed);
        self.cost.cpu_ns.fetch_add(spent, Ordering::Relaxed);
        self.cost.max_cpu_ns.fetch_max(spent, Ordering::Relaxed);
    }

    fn tick_uncounted(&self, sink: &dyn EventSink, stopped: &AtomicBool) {
        let mut errors = Vec::new();
        let mut changes = Vec::new();
        let sample = {
            let mut guard = loop {
                match self.collector.try_lock() {
                    Ok(g) => break g,
                    Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                    Err(TryLockError::WouldBlock) => {}
                }
                // Held by another thread's tick still in its read (this sentry was stopped and
                // started again while that read hung): this tick is skipped rather than parked
                // behind it, so that each stop() still joins its own thread. Held by a
                // snapshot(): wait for it, unless stopped meanwhile.
                if self.tick_reading_since.load(Ordering::Acquire) != 0 || stopped.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let _reading = ReadingMark::set(&self.tick_reading_since, self.mono_ms());
            let sample = guard.as_mut().map(|c| {
                if let Some(h) = *lock(&self.heap) {
                    c.set_heap(h);
                }
                c.read_with_changes(false, &mut errors, &mut changes)
            });
            // Closed while this tick was reading: the files go now, and nothing is reported.
            if self.files_closed.load(Ordering::SeqCst) {
                guard.take();
                return;
            }
            // Stopped while it was reading: nothing is reported, and the children's changes go
            // back for the next run's first tick.
            if stopped.load(Ordering::SeqCst) {
                if let Some(c) = guard.as_mut() {
                    c.keep_undelivered(std::mem::take(&mut changes));
                }
                return;
            }
            sample
        };
        let Some(sample) = sample else {
            return;
        };
        let mut spare = lock(&self.spare).take();
        let sample = match spare.as_mut().and_then(Arc::get_mut) {
            Some(slot) => {
                *slot = sample;
                spare.unwrap()
            }
            None => Arc::new(sample),
        };
        lock(&self.history).push(&sample);
        let previous = lock(&self.latest).replace(sample.clone());
        if let Some(mut p) = previous {
            if Arc::get_mut(&mut p).is_some() {
                *lock(&self.spare) = Some(p);
            }
        }

        let mut events: Vec<Event> = changes.into_iter().map(Event::Child).collect();
        {
            let mut d = lock(&self.detectors);
            d.ticks += 1;
            // The usual tick: nothing failing, nothing to do.
            if !(errors.is_empty() && d.failing.is_empty()) {
                let tick = d.ticks;
                for e in &errors {
                    if d.failing.insert(e.key(), tick).is_none() {
                        events.push(Event::Error {
                            code: e.code(),
                            message: e.message.clone(),
                            path: Some(e.path.display().to_string()),
                        });
                    }
                }
                let clears_after = d.failure_clears_after;
                d.failing.retain(|_, last| tick - *last < clears_after);
            }

            if let (Some(prev), Some(next)) = (d.last_cgroup.as_ref(), sample.cgroup.as_ref()) {
                if crate::cgroup::oom_rose(prev, next) {
                    events.push(Event::Oom {
                        sample: sample.clone(),
                    });
                }
            }
            if sample.cgroup.is_some() {
                d.last_cgroup = sample.cgroup.clone();
            }

            let Detectors {
                leak,
                child_growth,
                leak_since,
                leak_value,
                heap_used,
                leak_heap,
                ..
            } = &mut *d;
            if let Some((det, metric)) = leak.as_mut() {
                let children_rss = || {
                    let children = sample.children.as_deref().unwrap_or_default();
                    children.iter().filter_map(|c| Some((c.pid, c.rss? as f64)))
                };
                if metric.covers_children() {
                    if let Some(own) = sample.metric(Metric::Rss) {
                        det.observe_own(sample.mono_ms, own as f64);
                    }
                    child_growth.observe(sample.mono_ms, det.config().window_ms, children_rss());
                }
                if let Some(value) = sample.metric(*metric) {
                    let approaching = self
                        .config
                        .limit
                        .map_or(value as f64, |l| l.approaching(&sample, value as f64));
                    *leak_value = Some(approaching);
                    // The look-out's horizon (see LeakWatch): the same count as the event's.
                    let heap_now = *heap_used;
                    let to_limit = |e: &LeakEstimate| {
                        let heap = heap_now.filter(|_| e.suspect == Suspect::Heap);
                        self.ms_to_limit(e, Some(approaching), heap)
                    };
                    if let Some(t) = det.observe(sample.mono_ms, value as f64, to_limit) {
                        let (ended, estimate) = match t {
                            LeakTransition::Started(e) => (false, e),
                            LeakTransition::Ended(e) => (true, e),
                        };
                        if !ended {
                            *leak_heap = estimate.suspect == Suspect::Heap;
                        }
                        let heap = heap_used.filter(|_| *leak_heap);
                        let child = (estimate.suspect == Suspect::Child)
                            .then(|| child_growth.fastest(sample.mono_ms, children_rss()))
                            .flatten()
                            .map(|(pid, slope)| {
                                let children = sample.children.as_deref().unwrap_or_default();
                                let comm = children.iter().find(|c| c.pid == pid).map(|c| c.comm.clone());
                                (pid, comm.unwrap_or_default(), slope)
                            });
                        events.push(Event::Leak {
                            ended,
                            metric: metric.name(),
                            ms_to_limit: self.ms_to_limit(&estimate, Some(approaching), heap),
                            child,
                            estimate,
                            sample: sample.clone(),
                        });
                    }
                }
                // An episode whose suspect reads 'heap' at any point counts V8's heap limit from
                // then on: the look-out's early suspect can differ from the window's, which takes
                // the episode over without a transition.
                if det.current().is_some_and(|e| e.suspect == Suspect::Heap) {
                    *leak_heap = true;
                }
                // Read off the detector rather than its transitions: whatever way an episode
                // begins, its start is the first tick that sees it.
                *leak_since = match (det.in_episode(), *leak_since) {
                    (false, _) => None,
                    (true, None) => Some(sample.time),
                    (true, since) => since,
                };
            }

            let mut crossings = Vec::new();
            d.thresholds.observe(&sample, &mut crossings);
            for c in crossings {
                let rule = &d.thresholds.rules()[c.rule];
                events.push(Event::Threshold {
                    name: rule.name.clone(),
                    metric: rule.metric.name(),
                    child: c.child,
                    threshold: rule.above,
                    value: c.value,
                    direction: c.direction,
                    sample: sample.clone(),
                });
            }
        }
        if self.want_samples.load(Ordering::Relaxed) {
            sink.emit(Event::Sample(sample));
        }
        for e in events {
            sink.emit(e);
        }
    }
}

/// Marks a tick's reads in `Shared::tick_reading_since` for as long as it lives (every return
/// of the tick's read block clears it).
struct ReadingMark<'a>(&'a AtomicU64);

impl<'a> ReadingMark<'a> {
    fn set(mark: &'a AtomicU64, now_ms: u64) -> Self {
        mark.store(now_ms + 1, Ordering::Release);
        ReadingMark(mark)
    }
}

impl Drop for ReadingMark<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// `m` locked, trying for at most `wait`; `None` if a holder kept it that long.
fn try_lock_for<T>(m: &Mutex<T>, wait: Duration) -> Option<MutexGuard<'_, T>> {
    // The usual case, a free lock, without a clock read.
    match m.try_lock() {
        Ok(g) => return Some(g),
        Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => {}
    }
    let deadline = Instant::now() + wait;
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => return None,
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::ChildrenMode;
    use crate::detect::thresholds::Direction;
    use crate::sample::Metric;
    use crate::sampler::collector::CollectorConfig;
    use std::path::{Path, PathBuf};

    #[derive(Default)]
    pub(super) struct Recorder(pub(super) Mutex<Vec<Event>>);
    impl EventSink for Recorder {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn the_cgroup_limit_is_approached_by_the_working_set_a_given_limit_by_the_metric() {
        let mut sample = Sample::default();
        let cgroup = MemoryLimit::Cgroup(320 << 20);
        // No cgroup figures: the metric is all there is.
        assert_eq!(cgroup.approaching(&sample, 250e6), 250e6);
        sample.cgroup = Some(crate::cgroup::CgroupSample {
            version: crate::cgroup::CgroupVersion::V1,
            usage: Some(190_000_000),
            limit: Some(320 << 20),
            high: None,
            working_set: Some(180_000_000),
            inactive_file: Some(10_000_000),
            anon: None,
            file: None,
            oom_events: Some(0),
            under_oom: Some(false),
            pressure: None,
        });
        assert_eq!(cgroup.approaching(&sample, 250e6), 180e6);
        assert_eq!(MemoryLimit::Given(1 << 30).approaching(&sample, 250e6), 250e6);
        assert_eq!(cgroup.bytes(), 320 << 20);
    }

    pub(super) fn shared(interval_ms: u64, thresholds: Vec<ThresholdRule>) -> Arc<Shared> {
        Shared::new(
            SamplerConfig {
                interval: Duration::from_millis(interval_ms),
                history_size: 5,
                thresholds,
                leak: None,
                limit: None,
                heap_in_samples: true,
                heap_limit: None,
            },
            Collector::new(CollectorConfig::default()),
        )
    }

    #[test]
    fn ticks_fill_a_bounded_history_and_samples_go_out_only_when_wanted() {
        let s = shared(1000, vec![]);
        let rec = Recorder::default();
        for _ in 0..7 {
            s.tick(&rec);
        }
        assert_eq!(s.history_since(0.0, None).len(), 5);
        assert!(rec.0.lock().unwrap().is_empty());
        let stats = s.tick_stats();
        assert_eq!(stats.ticks, 7);
        assert!(stats.cpu_ns > 0 && stats.max_cpu_ns <= stats.cpu_ns);
        s.set_want_samples(true);
        s.tick(&rec);
        assert!(matches!(rec.0.lock().unwrap()[0], Event::Sample(_)));
    }

    #[test]
    fn a_sample_held_elsewhere_is_never_overwritten_and_one_held_by_none_is_reused() {
        let s = shared(1000, vec![]);
        let rec = Recorder::default();
        s.tick(&rec);
        let held = s.latest().unwrap();
        let held_copy = (*held).clone();
        s.tick(&rec); // `held` is still referenced here: not a spare
        s.tick(&rec);
        assert_eq!(held.mono_ms, held_copy.mono_ms);
        assert_eq!(held.rss, held_copy.rss);
        let a = Arc::as_ptr(&s.latest().unwrap());
        s.tick(&rec); // the sample at `a` is now held by none: the next tick reuses it
        s.tick(&rec);
        let b = s.latest().unwrap();
        assert_eq!(Arc::as_ptr(&b), a);
        assert!(b.mono_ms >= held.mono_ms);
        assert_eq!(s.history_since(0.0, None).len(), 5);
    }

    #[test]
    fn a_threshold_below_current_rss_fires_up_once() {
        let rule = ThresholdRule {
            name: "low".into(),
            metric: crate::detect::thresholds::Watched::Sample(Metric::Rss),
            above: 1,
            hysteresis: 0,
        };
        let s = shared(1000, vec![rule]);
        let rec = Recorder::default();
        let states = s.threshold_states();
        assert_eq!((states[0].0.active, states[0].0.value), (false, None));
        s.tick(&rec);
        s.tick(&rec);
        let states = s.threshold_states();
        assert_eq!(states.len(), 1);
        assert!(states[0].0.active, "the state is the core's, whoever listened");
        assert_eq!(states[0].0.value, s.latest().unwrap().rss);
        assert_eq!(states[0].1.name, "low");
        let events = rec.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], Event::Threshold { name, direction: Direction::Up, .. } if name == "low")
        );
    }

    #[test]
    fn rules_on_cgroup_metrics_without_a_cgroup_are_said_once_to_never_fire() {
        // A proc tree of this process with no cgroup file: as on a host without the memory
        // controller.
        let root = crate::test_tree::TempTree::copy_of(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/children/with-children-files/proc"),
            "sampler-no-cgroup",
        );
        std::os::unix::fs::symlink("100", root.root().join("self")).unwrap();
        root.write("meminfo", "MemTotal:       16384000 kB\n");
        let rule = |name: &str, metric| ThresholdRule {
            name: name.into(),
            metric: Watched::Sample(metric),
            above: 1,
            hysteresis: 0,
        };
        let config = |thresholds, leak| SamplerConfig {
            interval: Duration::from_millis(1000),
            history_size: 5,
            thresholds,
            leak,
            limit: None,
            heap_in_samples: true,
            heap_limit: None,
        };
        let collector = || {
            Collector::new(CollectorConfig {
                proc_root: root.root().to_path_buf(),
                ..Default::default()
            })
        };
        let errors = |s: &Shared, ticks: usize| {
            let rec = Recorder::default();
            for _ in 0..ticks {
                s.tick(&rec);
            }
            let events = rec.0.lock().unwrap();
            events
                .iter()
                .filter_map(|e| match e {
                    Event::Error { message, .. } => Some(message.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let leak = Some(LeakSettings {
            config: crate::detect::leak::LeakConfig::default(),
            metric: Metric::WorkingSet,
        });
        let s = Shared::new(
            config(
                vec![rule("rss", Metric::Rss), rule("ws", Metric::WorkingSet)],
                leak,
            ),
            collector(),
        );
        let said = errors(&s, 3);
        assert_eq!(said.len(), 1, "once, not per tick: {said:?}");
        assert!(
            said[0].contains("no memory cgroup to read")
                && said[0]
                    .contains("thresholds[1] (workingSet) and leak detection (workingSet) can never fire"),
            "{}",
            said[0]
        );
        // Rules on the process's own figures alone: nothing to say.
        let s = Shared::new(config(vec![rule("rss", Metric::Rss)], None), collector());
        assert!(errors(&s, 2).is_empty());
    }

    /// A sentry whose leak metric is heapUsed, fed by set_heap so that the test controls the
    /// series (+1 MB per tick, a full GC every 20), with these limits; 400 ticks run. Returns
    /// it, what it sent, and the last heapUsed.
    fn growing_heap(limit: Option<MemoryLimit>, heap_limit: Option<u64>) -> (Arc<Shared>, Recorder, f64) {
        let s = Shared::new(
            SamplerConfig {
                interval: Duration::from_millis(1000),
                history_size: 10,
                thresholds: vec![],
                leak: Some(LeakSettings {
                    config: LeakConfig {
                        window_ms: 20,
                        min_slope: Some(1.0),
                        warmup_ms: Some(0),
                    },
                    metric: Metric::HeapUsed,
                }),
                limit,
                heap_in_samples: true,
                heap_limit,
            },
            Collector::new(CollectorConfig::default()),
        );
        let rec = Recorder::default();
        let mut used = 0.0;
        for i in 0..400u64 {
            used = (100 + i) as f64 * 1e6;
            s.set_heap(
                HeapFigures {
                    heap_used: used,
                    heap_total: used,
                    external: 0.0,
                    array_buffers: 0.0,
                },
                // A full GC now and then, as in a real process: the detector waits for one.
                i % 20 == 0,
            );
            s.tick(&rec);
            std::thread::sleep(Duration::from_micros(300));
        }
        (s, rec, used)
    }

    #[test]
    fn a_heap_leak_counts_to_v8s_heap_limit_without_a_memory_limit() {
        // No memory limit but V8's: a heap leak's msToLimit is the heap's way there, at the event
        // and while the episode lasts.
        let heap_limit = 4_000_000_000u64;
        let (s, rec, used) = growing_heap(None, Some(heap_limit));
        let events = rec.0.lock().unwrap();
        let Some(Event::Leak {
            ms_to_limit,
            estimate,
            sample,
            ..
        }) = events
            .iter()
            .find(|e| matches!(e, Event::Leak { ended: false, .. }))
        else {
            panic!("no leak event")
        };
        assert_eq!(estimate.suspect, Suspect::Heap);
        let slope = estimate
            .heap_slope_bytes_per_sec
            .unwrap_or(estimate.slope_bytes_per_sec);
        let at = sample.heap.as_ref().unwrap().heap_used;
        let expected = (heap_limit as f64 - at) / slope * 1000.0;
        let got = ms_to_limit.expect("a time to V8's heap limit");
        assert!((got / expected - 1.0).abs() < 1e-9, "{got} vs {expected}");
        if let Some(episode) = s.leak_episode() {
            let now = (heap_limit as f64 - used) / episode.estimate.heap_slope_bytes_per_sec.unwrap();
            assert!((episode.ms_to_limit.unwrap() / (now * 1000.0) - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn a_growing_heap_metric_reaches_the_leak_detector() {
        let (s, rec, _) = growing_heap(Some(MemoryLimit::Given(1 << 40)), None);
        let events = rec.0.lock().unwrap();
        let leaks: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Leak { .. }))
            .collect();
        // The series grows steadily per tick, but ticks here follow the real clock: on a loaded
        // machine the growth per ms is uneven, and an episode may end and start again. What the
        // wiring owes is a start first, then starts and ends alternating.
        assert!(!leaks.is_empty(), "no leak event");
        let ends: Vec<bool> = leaks
            .iter()
            .map(|e| matches!(e, Event::Leak { ended: true, .. }))
            .collect();
        assert!(
            ends.iter().enumerate().all(|(i, ended)| *ended == (i % 2 == 1)),
            "{ends:?}"
        );
        let Event::Leak {
            ended,
            metric,
            ms_to_limit,
            estimate,
            ..
        } = leaks[0]
        else {
            unreachable!()
        };
        assert!(!ended);
        assert_eq!(*metric, "heapUsed");
        assert!(estimate.slope_bytes_per_sec > 0.0);
        assert!(ms_to_limit.unwrap() > 0.0);
        // The episode's state is there while the last event was a start.
        assert_eq!(s.leak_slope().is_some(), !ends.last().unwrap());
        if let Some(episode) = s.leak_episode() {
            assert_eq!(episode.metric, "heapUsed");
            assert_eq!(Some(episode.estimate.slope_bytes_per_sec), s.leak_slope());
            assert!(episode.ms_to_limit.unwrap() > 0.0);
            let started = events.iter().rev().find_map(|e| match e {
                Event::Leak {
                    ended: false, sample, ..
                } => Some(sample.time),
                _ => None,
            });
            assert_eq!(Some(episode.since), started, "since: the tick that confirmed it");
        }
    }

    /// A proc root in a new temporary folder named after `name`: this process's `meminfo` and
    /// the files of `/proc/self` listed, copied (the rest missing).
    fn proc_root_copy(name: &str, own_files: &[&str]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let selfdir = root.join("self");
        std::fs::create_dir_all(&selfdir).unwrap();
        std::fs::copy("/proc/meminfo", root.join("meminfo")).unwrap();
        for f in own_files {
            std::fs::copy(format!("/proc/self/{f}"), selfdir.join(f)).unwrap();
        }
        root
    }

    /// The paths of the `'error'` events recorded so far.
    fn error_paths(rec: &Recorder) -> Vec<String> {
        rec.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Error { path, .. } => path.clone(),
                _ => None,
            })
            .collect()
    }

    /// A sampler at 1 s with no rules, driven by hand.
    fn second_ticks() -> SamplerConfig {
        SamplerConfig {
            interval: Duration::from_millis(1000),
            history_size: 5,
            thresholds: vec![],
            leak: None,
            limit: None,
            heap_in_samples: true,
            heap_limit: None,
        }
    }

    #[test]
    fn a_failing_read_is_reported_once_per_episode() {
        let root = proc_root_copy("memsentry-sampler-root", &["statm", "status"]);
        let selfdir = root.join("self");
        let s = Shared::new(
            second_ticks(),
            Collector::new(CollectorConfig {
                proc_root: root.clone(),
                ..Default::default()
            }),
        );
        let rec = Recorder::default();
        s.tick(&rec);
        s.tick(&rec);
        assert_eq!(
            error_paths(&rec).len(),
            1,
            "stat missing: one error for two ticks"
        );
        assert_eq!(s.latest().unwrap().threads, None);
        assert!(
            s.latest().unwrap().rss.is_some(),
            "the other files still give their fields"
        );
        std::fs::write(
            selfdir.join("stat"),
            b"7 (node) S 1 7 7 0 -1 0 3 0 4 0 0 0 0 0 20 0 9 0 99 0 0\n",
        )
        .unwrap();
        s.tick(&rec);
        assert_eq!(s.latest().unwrap().threads, Some(9));
        assert_eq!(error_paths(&rec).len(), 1, "recovered: nothing new");
        std::fs::write(selfdir.join("stat"), b"garbage\n").unwrap();
        s.tick(&rec);
        s.tick(&rec);
        assert_eq!(
            error_paths(&rec).len(),
            2,
            "the failure came back: reported again, once"
        );
        assert_eq!(s.latest().unwrap().threads, None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failure_of_a_file_read_every_nth_tick_is_reported_once() {
        // smaps_rollup on every third tick, and missing: the ticks between do not clear it.
        let root = proc_root_copy("memsentry-sampler-smaps", &["stat", "statm", "status"]);
        let selfdir = root.join("self");
        let s = Shared::new(
            second_ticks(),
            Collector::new(CollectorConfig {
                proc_root: root.clone(),
                smaps_every_n: 3,
                cgroup: false,
                ..Default::default()
            }),
        );
        let rec = Recorder::default();
        for _ in 0..12 {
            s.tick(&rec);
        }
        let seen = error_paths(&rec);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].ends_with("smaps_rollup"), "{seen:?}");

        // It reads, then fails again after a cadence without failing: reported again. (The file
        // stays open once read, so it fails again by holding garbage.)
        let smaps = selfdir.join("smaps_rollup");
        std::fs::write(&smaps, std::fs::read("/proc/self/smaps_rollup").unwrap()).unwrap();
        for _ in 0..6 {
            s.tick(&rec);
        }
        assert_eq!(error_paths(&rec).len(), 1, "read: nothing new");
        std::fs::write(&smaps, b"garbage\n").unwrap();
        for _ in 0..6 {
            s.tick(&rec);
        }
        assert_eq!(error_paths(&rec).len(), 2, "{:?}", error_paths(&rec));
        std::fs::remove_dir_all(root).unwrap();
    }

    /// A proc root (in a new temporary folder named `name`) whose /proc/self/statm is a FIFO:
    /// its open() blocks until a writer comes, as a read of a child in D state would. Returns
    /// the root, the FIFO and a `Shared` reading there.
    fn hanging_statm(name: &str, children: ChildrenMode) -> (PathBuf, PathBuf, Arc<Shared>) {
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(root.join("self")).unwrap();
        let statm = root.join("self/statm");
        let c_path = std::ffi::CString::new(statm.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let s = Shared::new(
            SamplerConfig {
                interval: Duration::from_millis(10),
                history_size: 5,
                thresholds: vec![],
                leak: None,
                limit: None,
                heap_in_samples: true,
                heap_limit: None,
            },
            Collector::new(CollectorConfig {
                proc_root: root.clone(),
                cgroup: false,
                children,
                ..Default::default()
            }),
        );
        (root, statm, s)
    }

    #[test]
    fn a_tick_blocked_in_a_read_never_holds_up_stop_close_or_snapshot() {
        let (root, statm, s) = hanging_statm("memsentry-hang", ChildrenMode::None);
        let rec = Arc::new(Recorder::default());
        s.set_want_samples(true);
        let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(200)); // the first tick is in the open()

        let started = Instant::now();
        assert!(!t.stop(), "not joined: detached");
        s.set_heap(
            HeapFigures {
                heap_used: 1.0,
                heap_total: 1.0,
                external: 0.0,
                array_buffers: 0.0,
            },
            false,
        );
        assert!(s.snapshot(Duration::from_millis(50)).is_err());
        s.close_files();
        let spent = started.elapsed();
        assert!(spent < Duration::from_millis(1000), "{spent:?}");

        // The read returns: the detached thread closes the files and ends without a tick more.
        // Opening the FIFO for writing is what unblocks the reader's open; the write itself may
        // find the reader gone already (EPIPE: a FIFO cannot be pread), which is fine.
        let _ = std::fs::write(&statm, b"1 1 1 1 0 1 0\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.collector.try_lock().map(|g| g.is_some()).unwrap_or(true) {
            assert!(Instant::now() < deadline, "the detached thread never let go");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(rec.0.lock().unwrap().is_empty(), "nothing sent after close");
        assert_eq!(s.tick_stats().ticks, 1, "no tick after the stop");
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Lets the read blocked in `statm` (a FIFO) return, and waits until its tick lets go of
    /// the collector.
    fn release_and_wait(statm: &Path, s: &Shared) {
        // Opening the FIFO for writing is what unblocks the reader's open; the write itself may
        // find the reader gone already (EPIPE: a FIFO cannot be pread), which is fine.
        let _ = std::fs::write(statm, b"1 1 1 1 0 1 0\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.collector.try_lock().is_err() {
            assert!(Instant::now() < deadline, "the detached thread never let go");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A sampler whose first tick is blocked in a read of `statm` (a FIFO), and whose thread
    /// stop() has left to it.
    fn stopped_in_a_hung_read(name: &str) -> (PathBuf, PathBuf, Arc<Shared>, Arc<Recorder>) {
        let (root, statm, s) = hanging_statm(name, ChildrenMode::None);
        let rec = Arc::new(Recorder::default());
        s.set_want_samples(true);
        let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(200)); // the first tick is in the open()
        assert!(!t.stop(), "not joined: detached");
        (root, statm, s, rec)
    }

    #[test]
    fn a_start_after_a_stop_during_a_hung_read_is_not_parked_behind_it() {
        let (root, statm, s, rec) = stopped_in_a_hung_read("memsentry-hang-restart");

        // Each start()/stop() cycle while that read hangs: its thread skips the ticks it cannot
        // take the collector for, and its stop joins it (a thread blocked on the lock would be
        // detached too, one more per cycle).
        for cycle in 0..4 {
            let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
            std::thread::sleep(Duration::from_millis(150));
            assert!(
                t.stop(),
                "cycle {cycle}: its thread was parked behind the hung read"
            );
        }
        assert!(
            rec.0.lock().unwrap().is_empty(),
            "nothing read while the read hangs"
        );

        // Once the read returns, a start samples again.
        release_and_wait(&statm, &s);
        std::fs::remove_file(&statm).unwrap();
        std::fs::write(&statm, b"1 1 1 1 0 1 0\n").unwrap();
        let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.latest().is_none() {
            assert!(Instant::now() < deadline, "no sample after the read returned");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(t.stop());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_tick_that_outlives_its_stop_reports_nothing_and_keeps_the_files() {
        let (root, statm, s, rec) = stopped_in_a_hung_read("memsentry-hang-stop");

        // Stopped, not closed: when the read returns, the tick lets go of the collector, still
        // open for a start(), and neither a sample nor an error goes out or into the history.
        release_and_wait(&statm, &s);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            rec.0.lock().unwrap().is_empty(),
            "sent after stop: {:?}",
            rec.0.lock().unwrap()
        );
        assert!(s.latest().is_none(), "no sample after stop");
        assert!(lock(&s.history).is_empty(), "nothing in the history");
        assert!(lock(&s.collector).is_some(), "the files stay for a start()");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn snapshots_wait_once_for_a_stuck_tick_then_fail_at_once() {
        let (root, statm, s) = hanging_statm("memsentry-hang-snap", ChildrenMode::None);
        let rec = Arc::new(Recorder::default());
        let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
        // The first tick is in the open() of the FIFO, holding the collector, for 400 ms at
        // least by the second call: the wait is 300 ms.
        std::thread::sleep(Duration::from_millis(100));
        let wait = Duration::from_millis(300);
        let started = Instant::now();
        assert!(s.snapshot(wait).unwrap_err().contains("hanging"));
        assert!(started.elapsed() >= wait, "{:?}", started.elapsed());
        for _ in 0..20 {
            let started = Instant::now();
            assert!(s.snapshot(wait).unwrap_err().contains("hanging"));
            let spent = started.elapsed();
            assert!(spent < Duration::from_millis(100), "waited again: {spent:?}");
        }
        assert!(!t.stop(), "not joined: detached");

        // The read returns and lets go of the collector, and the mark goes with it.
        release_and_wait(&statm, &s);
        assert_eq!(
            s.tick_reading_since.load(Ordering::Acquire),
            0,
            "the mark goes with the read"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_snapshot_whose_own_read_hangs_gives_up_after_the_limit() {
        // With children, so that snapshot() reads on the reader thread.
        let (root, statm, s) = hanging_statm("memsentry-snap", ChildrenMode::Direct);
        let started = Instant::now();
        let err = s.snapshot(Duration::from_millis(50)).unwrap_err();
        let spent = started.elapsed();
        assert!(err.contains("hanging"), "{err}");
        assert!(spent >= READ_LIMIT && spent < READ_LIMIT * 4, "{spent:?}");
        // The reader stays in the open(); the next snapshot finds the collector held.
        let err = s.snapshot(Duration::from_millis(50)).unwrap_err();
        assert!(err.contains("hanging"), "{err}");

        // Released, the hung read returns and lets go of the collector.
        let _ = std::fs::write(&statm, b"1 1 1 1 0 1 0\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while s.collector.try_lock().is_err() {
            assert!(Instant::now() < deadline, "the reader never let go");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_dir_all(root).unwrap();
    }
}
