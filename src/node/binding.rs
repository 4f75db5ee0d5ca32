//! The napi binding: converts options in and samples/events out, nothing else.

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::children::ChildrenMode;
use crate::detect::leak::LeakConfig;
use crate::detect::thresholds::{ThresholdRule, Watched};
use crate::node::js_values::{EventPayload, JsSample};
use crate::sample::{HeapFigures, Metric};
use crate::sampler::collector::{Collector, CollectorConfig};
use crate::sampler::outbox::{Lane, Outbox};
use crate::sampler::reader_thread::{root_key, INIT_READERS, READERS, READ_LIMIT};
use crate::sampler::{Event, EventSink, LeakSettings, MemoryLimit, SamplerConfig, SamplerThread, Shared};

/// Options as `lib/options.js` normalized them: already validated, in bytes and ms.
#[napi(object)]
pub struct NativeThreshold {
    pub name: String,
    pub metric: String,
    pub above: Option<f64>,
    pub above_percent: Option<f64>,
    pub hysteresis: f64,
    pub hysteresis_percent: Option<f64>,
}

#[napi(object)]
pub struct NativeLeak {
    pub window_ms: f64,
    /// Bytes/s; absent: the detector's default rule, which scales with the window.
    pub min_slope: Option<f64>,
    /// Absent: the detector's default, min(window / 2, 30 s).
    pub warmup_ms: Option<f64>,
    pub metric: String,
}

#[napi(object)]
pub struct NativeOptions {
    pub leak: Option<NativeLeak>,
    pub interval_ms: u32,
    pub history_size: u32,
    pub children: String,
    pub thresholds: Vec<NativeThreshold>,
    pub smaps_every_n: u32,
    pub heap: bool,
    pub cgroup: bool,
    pub limit: Option<f64>,
    /// V8's `heap_size_limit`, for a heap leak's `msToLimit`.
    pub heap_limit: Option<f64>,
    pub proc_root: String,
    pub cgroup_root: Option<String>,
}

#[napi(object)]
pub struct NativeStats {
    pub ticks: f64,
    pub cpu_ns: f64,
    pub max_cpu_ns: f64,
    /// Events dropped because too many were waiting for a blocked event loop.
    pub dropped_events: f64,
    /// Samples the history holds now.
    pub history_length: f64,
}

/// One threshold rule's state (one per child for a `child.rss` rule).
#[napi(object)]
pub struct NativeThresholdState {
    pub name: String,
    pub metric: String,
    pub active: bool,
    /// Absent before the metric had a value.
    pub value: Option<f64>,
    pub pid: Option<u32>,
}

/// The leak episode in progress.
#[napi(object)]
pub struct NativeLeakEpisode {
    pub since: f64,
    pub metric: String,
    pub slope_bytes_per_sec: f64,
    pub suspect: String,
    /// Absent without a limit.
    pub ms_to_limit: Option<f64>,
}

#[napi(object)]
pub struct NativeSnapshotOptions {
    pub smaps_every_n: u32,
    pub children: String,
    pub proc_root: String,
    pub cgroup_root: Option<String>,
}

/// Calls `onEvent(name, payload)` for the event a queued token stands for: weak (does not hold
/// the event loop), errors not passed as a first argument.
type EventFn = ThreadsafeFunction<Lane, (), FnArgs<(&'static str, EventPayload)>, Status, false, true>;

/// Hands sampler events to JS through a weak (unref'd) threadsafe function, as far as the
/// outbox admits them: a blocked event loop must not make the queue grow without limit. The
/// queue carries tokens; the events stay in the outbox (see `sampler::outbox`).
struct JsSink {
    tsfn: EventFn,
    outbox: Arc<Outbox>,
    /// Cleared at shutdown: a sampler thread detached in a hung read sends nothing after it.
    open: AtomicBool,
}

impl EventSink for JsSink {
    fn emit(&self, event: Event) {
        if !self.open.load(Ordering::SeqCst) {
            return;
        }
        // NonBlocking on an unbounded queue never waits; after the env began closing the call
        // fails and the event is dropped, which is what a monitor should do then.
        self.outbox.send(event, |token| {
            self.tsfn.call(token, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        });
    }
}

/// What both the JS object and the env cleanup hook own: the way to stop everything.
struct Controller {
    shared: Arc<Shared>,
    /// Also here, not only in the sink: `stats()` reads its count after `close()`.
    outbox: Arc<Outbox>,
    sink: Mutex<Option<Arc<JsSink>>>,
    thread: Mutex<Option<SamplerThread>>,
    /// Set when the env cleanup hook has run (worker termination or natural exit).
    hook_ran: AtomicBool,
}

impl Controller {
    fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            t.stop();
        }
    }

    /// Stops the thread (waiting at most `JOIN_LIMIT`, then detaching it), then releases the
    /// threadsafe function on the JS thread, before env teardown, so Node never finalizes it
    /// late. A detached thread keeps its own reference until its read returns; the sink is
    /// closed first so that it sends nothing more.
    fn shutdown(&self) {
        if let Some(sink) = self.sink.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            sink.open.store(false, Ordering::SeqCst);
        }
        self.stop();
        self.shared.close_files();
        self.sink.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

unsafe extern "C" fn env_cleanup_hook(arg: *mut c_void) {
    // SAFETY: `arg` is the `Arc<Controller>` leaked into the hook by `NativeSentry::new`; the
    // hook runs once, and `remove_hook` never runs after it (it checks `hook_ran`).
    let controller = unsafe { Arc::from_raw(arg as *const Controller) };
    controller.hook_ran.store(true, Ordering::SeqCst);
    controller.shutdown();
}

#[napi]
pub struct NativeSentry {
    controller: Arc<Controller>,
    env: sys::napi_env,
    /// The pointer given to the cleanup hook, while it is registered.
    hook_arg: Option<*const Controller>,
    referenced: bool,
    limit: Option<MemoryLimit>,
}

#[napi]
impl NativeSentry {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: NativeOptions, on_event: Function<'_, (), ()>) -> Result<Self> {
        let config = CollectorConfig {
            proc_root: PathBuf::from(&options.proc_root),
            smaps_every_n: options.smaps_every_n,
            cgroup_root: options.cgroup_root.as_ref().map(PathBuf::from),
            children: children_mode(&options.children)?,
            cgroup: options.cgroup,
            discover_every_ms: u64::from(options.interval_ms).max(1000),
        };
        // The collector reads `meminfo` and the cgroup's files as it is made: off this thread,
        // since a hung mount there (lxcfs's /proc/meminfo) must not block the event loop. Its
        // thread is joined once done: no thread outlives the sentries.
        let collector = INIT_READERS
            .get(root_key(&config.proc_root))
            .and_then(|reader| {
                let made = reader.run_within(READ_LIMIT, move || Collector::new(config));
                reader.finish();
                made
            })
            .map_err(|e| Error::from_reason(format!("memsentry: cannot start: {}", e.reason())))?;
        // `limit: 'auto'` is the cgroup's limit; percent thresholds are measured against it.
        let limit = match options.limit {
            Some(l) => Some(MemoryLimit::Given(l as u64)),
            None => collector.cgroup_limit().map(MemoryLimit::Cgroup),
        };
        let thresholds = options
            .thresholds
            .iter()
            .enumerate()
            .map(|(i, t)| threshold_rule(i, t, limit.map(MemoryLimit::bytes), options.cgroup))
            .collect::<Result<Vec<_>>>()?;
        let shared = Shared::new(
            SamplerConfig {
                interval: Duration::from_millis(u64::from(options.interval_ms.max(1))),
                history_size: options.history_size as usize,
                thresholds,
                leak: options.leak.as_ref().map(leak_settings).transpose()?,
                limit,
                heap_in_samples: options.heap,
                heap_limit: options
                    .heap_limit
                    .filter(|b| b.is_finite() && *b > 0.0)
                    .map(|b| b as u64),
            },
            collector,
        );
        let outbox = Arc::new(Outbox::new());
        let delivered = outbox.clone();
        let tsfn: EventFn = on_event
            .build_threadsafe_function::<Lane>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                // Every token `send` queued has its event; should one not, JS hears of it as a
                // failure rather than the process ending on an error thrown here.
                let event = delivered.deliver(ctx.value).unwrap_or_else(|| Event::Error {
                    code: "EINTERNAL",
                    message: "an event was lost on its way to JS".into(),
                    path: None,
                });
                Ok((crate::node::js_values::event_name(&event), EventPayload(event)).into())
            })?;
        let controller = Arc::new(Controller {
            shared,
            outbox: outbox.clone(),
            sink: Mutex::new(Some(Arc::new(JsSink {
                tsfn,
                outbox,
                open: AtomicBool::new(true),
            }))),
            thread: Mutex::new(None),
            hook_ran: AtomicBool::new(false),
        });
        let hook_arg = Arc::into_raw(controller.clone());
        let status = unsafe {
            sys::napi_add_env_cleanup_hook(env.raw(), Some(env_cleanup_hook), hook_arg as *mut c_void)
        };
        if status != sys::Status::napi_ok {
            // SAFETY: not registered, so reclaim the reference here.
            drop(unsafe { Arc::from_raw(hook_arg) });
            return Err(Error::from_reason(
                "memsentry: cannot register the env cleanup hook",
            ));
        }
        Ok(NativeSentry {
            controller,
            env: env.raw(),
            hook_arg: Some(hook_arg),
            referenced: false,
            limit,
        })
    }

    /// The memory limit in force (bytes): the `limit` option, else the cgroup's; `null` if none.
    #[napi(getter, catch_unwind)]
    pub fn limit(&self) -> Option<f64> {
        self.limit.map(|l| l.bytes() as f64)
    }

    /// Starts the sampler thread; a no-op when it runs or after `close()`.
    #[napi(catch_unwind)]
    pub fn start(&mut self) -> Result<()> {
        let sink = self
            .controller
            .sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(sink) = sink else {
            return Ok(());
        };
        let mut thread = self.controller.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() {
            let t = SamplerThread::spawn(self.controller.shared.clone(), sink).map_err(|e| {
                Error::from_reason(format!("memsentry: cannot start the sampler thread: {e}"))
            })?;
            *thread = Some(t);
        }
        Ok(())
    }

    #[napi(catch_unwind)]
    pub fn stop(&mut self) {
        self.controller.stop();
    }

    #[napi(getter, catch_unwind)]
    pub fn running(&self) -> bool {
        self.controller
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Stops and joins the thread and releases everything; idempotent.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        // Unref first: a thread detached in a hung read keeps the sink, and so the threadsafe
        // function, alive until the read returns; a ref'd one would hold the process that long.
        // Ignored on failure: closing goes on either way.
        let _ = self.set_ref(false);
        self.controller.shutdown();
        self.remove_hook();
    }

    /// Whether the threadsafe function keeps the event loop alive.
    #[napi(catch_unwind)]
    pub fn set_ref(&mut self, on: bool) -> Result<()> {
        if on == self.referenced {
            return Ok(());
        }
        let sink = self
            .controller
            .sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(sink) = sink {
            let raw = sink.tsfn.raw();
            let status = unsafe {
                if on {
                    sys::napi_ref_threadsafe_function(self.env, raw)
                } else {
                    sys::napi_unref_threadsafe_function(self.env, raw)
                }
            };
            if status != sys::Status::napi_ok {
                return Err(Error::from_reason(
                    "memsentry: cannot change the event loop reference",
                ));
            }
            self.referenced = on;
        }
        Ok(())
    }

    #[napi(catch_unwind)]
    pub fn set_want_samples(&self, on: bool) {
        self.controller.shared.set_want_samples(on);
    }

    /// V8 heap figures recorded after a GC by the JS side (`heap: true`, or leak detection on);
    /// `major_gc`: that GC was a full mark-compact.
    #[napi(catch_unwind)]
    pub fn set_heap(
        &self,
        heap_used: f64,
        heap_total: f64,
        external: f64,
        array_buffers: f64,
        major_gc: bool,
    ) {
        self.controller.shared.set_heap(
            HeapFigures {
                heap_used,
                heap_total,
                external,
                array_buffers,
            },
            major_gc,
        );
    }

    /// The detectors' threshold states now, in rule order.
    #[napi(catch_unwind)]
    pub fn threshold_states(&self) -> Vec<NativeThresholdState> {
        self.controller
            .shared
            .threshold_states()
            .into_iter()
            .map(|(state, rule)| NativeThresholdState {
                name: rule.name,
                metric: rule.metric.name().to_string(),
                active: state.active,
                value: state.value.map(|v| v as f64),
                pid: state.pid,
            })
            .collect()
    }

    /// The leak episode in progress, or `null`.
    #[napi(catch_unwind)]
    pub fn leak_episode(&self) -> Option<NativeLeakEpisode> {
        self.controller.shared.leak_episode().map(|e| NativeLeakEpisode {
            since: e.since,
            metric: e.metric.to_string(),
            slope_bytes_per_sec: e.estimate.slope_bytes_per_sec,
            suspect: e.estimate.suspect.as_str().to_string(),
            ms_to_limit: e.ms_to_limit,
        })
    }

    /// Ticks so far: lets the JS side reuse its `latest` object until the next tick.
    #[napi(getter, catch_unwind)]
    pub fn ticks(&self) -> f64 {
        self.controller.shared.tick_stats().ticks as f64
    }

    #[napi(catch_unwind)]
    pub fn latest(&self) -> Option<JsSample> {
        self.controller.shared.latest().map(JsSample)
    }

    #[napi(catch_unwind)]
    pub fn snapshot(&self) -> Result<JsSample> {
        let (sample, _errors) = self
            .controller
            .shared
            .snapshot(crate::sampler::JOIN_LIMIT)
            .map_err(|why| Error::from_reason(format!("memsentry: cannot read now: {why}")))?;
        Ok(JsSample(Arc::new(sample)))
    }

    /// Samples since `since_ms`; with `max_points`, thinned to about that many (peaks kept).
    #[napi(catch_unwind)]
    pub fn history(&self, since_ms: f64, max_points: Option<u32>) -> Vec<JsSample> {
        self.controller
            .shared
            .history_since(since_ms, max_points.map(|m| m as usize))
            .into_iter()
            .map(JsSample)
            .collect()
    }

    /// Sampler-thread cost so far: ticks, total and max thread CPU time per tick (ns); events
    /// dropped while the event loop lagged.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> NativeStats {
        let t = self.controller.shared.tick_stats();
        NativeStats {
            ticks: t.ticks as f64,
            cpu_ns: t.cpu_ns as f64,
            max_cpu_ns: t.max_cpu_ns as f64,
            dropped_events: self.controller.outbox.dropped() as f64,
            history_length: self.controller.shared.history_len() as f64,
        }
    }

    fn remove_hook(&mut self) {
        if let Some(arg) = self.hook_arg.take() {
            if !self.controller.hook_ran.load(Ordering::SeqCst) {
                unsafe {
                    sys::napi_remove_env_cleanup_hook(self.env, Some(env_cleanup_hook), arg as *mut c_void);
                    // SAFETY: the hook is unregistered and never ran: its reference is ours.
                    drop(Arc::from_raw(arg));
                }
            }
        }
    }
}

impl Drop for NativeSentry {
    /// A sentry garbage-collected without `close()` is let go of here: lib/sentry.js holds a
    /// running one, so it was stopped, but a thread whose read hung past the join limit may
    /// still be winding down.
    fn drop(&mut self) {
        // As in close(): a ref()'d sentry dropped while its tick hangs in a read must not hold
        // the process until the read returns. After env teardown the sink is gone: a no-op.
        if self.referenced {
            let _ = self.set_ref(false);
        }
        self.controller.shutdown();
        self.remove_hook();
    }
}

fn leak_settings(l: &NativeLeak) -> Result<LeakSettings> {
    let metric = Metric::from_name(&l.metric).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!(
                "memsentry: leak.metric '{}' is not sampled by this build",
                l.metric
            ),
        )
    })?;
    Ok(LeakSettings {
        config: LeakConfig {
            window_ms: l.window_ms as u64,
            min_slope: l.min_slope,
            warmup_ms: l.warmup_ms.map(|w| w as u64),
        },
        metric,
    })
}

/// One threshold rule; a percent one needs `limit`, which the cgroup gives only if `cgroup_read`.
fn threshold_rule(
    index: usize,
    t: &NativeThreshold,
    limit: Option<u64>,
    cgroup_read: bool,
) -> Result<ThresholdRule> {
    let metric = Watched::from_name(&t.metric).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!(
                "memsentry: thresholds[{index}].metric '{}' is not sampled by this build",
                t.metric
            ),
        )
    })?;
    let (above, hysteresis) = match (t.above, t.above_percent) {
        (Some(above), _) => (above as u64, t.hysteresis as u64),
        (None, Some(percent)) => {
            let Some(limit) = limit else {
                let why = match cgroup_read {
                    true => "the process's cgroup has no memory limit",
                    false => "cgroup: false, so the cgroup's limit is not read",
                };
                return Err(Error::new(
                    Status::InvalidArg,
                    format!(
                        "memsentry: thresholds[{index}].above is {percent}% but no memory limit is known \
                         ({why}): set the limit option to a size"
                    ),
                ));
            };
            let of_limit = |p: f64| (limit as f64 * p / 100.0).round() as u64;
            (of_limit(percent), of_limit(t.hysteresis_percent.unwrap_or(0.0)))
        }
        (None, None) => {
            return Err(Error::new(
                Status::InvalidArg,
                format!("memsentry: thresholds[{index}].above is missing"),
            ))
        }
    };
    Ok(ThresholdRule {
        name: t.name.clone(),
        metric,
        above,
        hysteresis,
    })
}

/// A fresh Sample without a sentry: opens, reads and closes the files, on a reader thread,
/// waited for at most `READ_LIMIT`: a child stuck in the kernel can block a read of its
/// entries, a hung mount one of `meminfo`, and the event loop must not block with them.
#[napi(catch_unwind)]
pub fn snapshot(options: NativeSnapshotOptions) -> Result<JsSample> {
    let config = CollectorConfig {
        proc_root: PathBuf::from(&options.proc_root),
        smaps_every_n: options.smaps_every_n,
        cgroup_root: options.cgroup_root.as_ref().map(PathBuf::from),
        children: children_mode(&options.children)?,
        cgroup: true,
        discover_every_ms: 0,
    };
    // Keyed by the root it reads, and whether with children: a read hung there refuses later
    // reads of that root (and, for a child's, with children) only.
    let key = (root_key(&config.proc_root), config.children != ChildrenMode::None);
    let read = move || Collector::new(config).read(true, &mut Vec::new());
    let sample = READERS
        .get(key)
        .and_then(|reader| reader.run_within(READ_LIMIT, read))
        .map_err(|e| Error::from_reason(format!("memsentry: cannot read now: {}", e.reason())))?;
    Ok(JsSample(Arc::new(sample)))
}

fn children_mode(name: &str) -> Result<ChildrenMode> {
    ChildrenMode::from_name(name).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!("memsentry: children must be 'none', 'direct' or 'tree', got '{name}'"),
        )
    })
}

/// The metrics the core samples by name (`Metric::ALL`), for the JS metric table's test.
#[napi(catch_unwind)]
pub fn metric_names() -> Vec<&'static str> {
    Metric::ALL.iter().map(|m| m.name()).collect()
}

/// Resident bytes of this process: one `pread` of a kept-open `/proc/self/statm`.
#[napi(catch_unwind)]
pub fn rss() -> Result<f64> {
    crate::procfs::statm::own_rss()
        .map(|b| b as f64)
        .map_err(|e| Error::from_reason(format!("memsentry: cannot read /proc/self/statm: {e}")))
}

/// Panics on purpose. Not part of the API (the JS wrapper does not export it): it lets the test
/// suite check that a Rust panic in an entry point reaches JS as an exception, not an abort.
#[napi(catch_unwind)]
pub fn panic_for_tests() {
    panic!("memsentry: deliberate panic for the test suite");
}
