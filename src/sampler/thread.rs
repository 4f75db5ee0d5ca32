//! The sampler's thread: a current-thread tokio runtime whose `interval`, with
//! `MissedTickBehavior::Skip`, ticks the [`Shared`] state (a late tick is skipped, not followed by
//! a burst of catch-up ticks), and a `Notify` that wakes it at once on stop. A panic in a tick is
//! caught here and reported, never carried into the host process.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

use super::{Event, EventSink, Shared};

/// How long stopping waits for the thread, at most: a tick blocked in a read (a child in D
/// state, a hung mount) must not hang the JS thread, a worker's termination or process exit.
pub const JOIN_LIMIT: Duration = Duration::from_millis(300);

/// A running sampler thread. Dropping it stops it, waiting at most [`JOIN_LIMIT`].
pub struct SamplerThread {
    stop: Arc<Notify>,
    /// Set on stop, before the wake-up: a tick still reading then reports nothing.
    stopped: Arc<AtomicBool>,
    /// Disconnected when the thread's closure ends (its sender is dropped then, even on unwind).
    done: mpsc::Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl SamplerThread {
    pub fn spawn(shared: Arc<Shared>, sink: Arc<dyn EventSink>) -> std::io::Result<SamplerThread> {
        let stop = Arc::new(Notify::new());
        let stop_rx = stop.clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let stopped_rx = stopped.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let (done_tx, done) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("memsentry-sampler".into())
            .spawn(move || {
                let _done = done_tx;
                runtime.block_on(run(shared, sink, stop_rx, stopped_rx));
            })?;
        Ok(SamplerThread {
            stop,
            stopped,
            done,
            handle: Some(handle),
        })
    }

    /// Stops the thread. It wakes at once, so this waits for a tick in progress, but at most
    /// `limit`: a thread still in its tick then is detached, and ends by itself when its read
    /// returns (that tick reports nothing, and the thread checks the stop before anything else).
    /// Returns whether it was joined.
    ///
    /// A detached thread holds its own `Arc`s of the shared state and the sink, nothing of the
    /// caller's; the binding's sink refuses events once closed, and napi-rs marks the
    /// threadsafe function aborted when the env tears it down, after which calls and the final
    /// release touch nothing of Node's.
    pub fn stop_within(mut self, limit: Duration) -> bool {
        self.stop_and_join(limit)
    }

    pub fn stop(self) -> bool {
        self.stop_within(JOIN_LIMIT)
    }

    fn stop_and_join(&mut self, limit: Duration) -> bool {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop.notify_one();
        let Some(h) = self.handle.take() else {
            return true;
        };
        match self.done.recv_timeout(limit) {
            Err(mpsc::RecvTimeoutError::Timeout) => false, // detached: `h` is dropped
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = h.join();
                true
            }
        }
    }
}

impl Drop for SamplerThread {
    fn drop(&mut self) {
        self.stop_and_join(JOIN_LIMIT);
    }
}

async fn run(shared: Arc<Shared>, sink: Arc<dyn EventSink>, stop: Arc<Notify>, stopped: Arc<AtomicBool>) {
    let mut interval = tokio::time::interval(shared.config.interval);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            // Checked first: a detached thread whose read returned must not tick again.
            biased;
            _ = stop.notified() => return,
            _ = interval.tick() => {
                // A panic must not cross into the host process: report it and stop sampling.
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| shared.tick_in_run(sink.as_ref(), &stopped))) {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    sink.emit(Event::Error {
                        code: "EPANIC",
                        message: format!("memsentry sampler stopped after an internal error: {what}"),
                        path: None,
                    });
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{shared, Recorder};
    use std::sync::Mutex;

    /// A sink that panics on the first sample: the tick's panic must be caught on the sampler
    /// thread, reported as an `EPANIC` error, and end the thread without taking the process down.
    struct PanickingSink(Mutex<Vec<Event>>);
    impl EventSink for PanickingSink {
        fn emit(&self, event: Event) {
            if matches!(event, Event::Sample(_)) {
                panic!("boom in a tick");
            }
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn a_panic_in_a_tick_is_reported_and_stops_the_thread() {
        let s = shared(10, vec![]);
        s.set_want_samples(true);
        let sink = Arc::new(PanickingSink(Mutex::new(Vec::new())));
        let t = SamplerThread::spawn(s.clone(), sink.clone()).unwrap();
        // Poll with a generous deadline: on a loaded machine the thread may start late.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let ticks = s.tick_stats().ticks;
        std::thread::sleep(Duration::from_millis(100));
        let events = sink.0.lock().unwrap().clone();
        assert!(
            matches!(&events[..], [Event::Error { code: "EPANIC", message, .. }] if message.contains("boom in a tick")),
            "{events:?}"
        );
        assert_eq!(s.tick_stats().ticks, ticks, "no tick after the panic");
        t.stop();
    }

    #[test]
    fn the_thread_samples_on_its_period_and_stops_promptly() {
        let s = shared(20, vec![]);
        let rec = Arc::new(Recorder::default());
        s.set_want_samples(true);
        let t = SamplerThread::spawn(s.clone(), rec.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(210));
        let started = std::time::Instant::now();
        t.stop();
        assert!(started.elapsed() < Duration::from_secs(3));
        let n = rec.0.lock().unwrap().len();
        // ~11 ticks in 210 ms at 20 ms. A late start on a loaded machine gives fewer; Skip means
        // never more (no catch-up burst).
        assert!((1..=13).contains(&n), "{n} samples");
        let after = rec.0.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(rec.0.lock().unwrap().len(), after, "no tick after stop");
    }
}
