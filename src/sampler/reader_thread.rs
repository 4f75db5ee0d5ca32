//! The reads a caller asks for now (`snapshot()`), run on a helper thread and waited for at most
//! a limit. The caller is the JS thread: a read of a child in D state, or of a file behind a hung
//! mount, can block for minutes, and the event loop must not block with it.
//!
//! A `ReaderThread` serves its callers in turn (a round trip costs a wake-up, not a thread
//! spawn): each sentry has its own, and the module-level `snapshot()` takes one from `READERS` by
//! the proc root it reads. When a job overruns, that thread is left to its read; until that read
//! returns, later jobs on the same reader fail at once (a new thread would read the same stuck
//! child, block its caller a second again and be left behind too), and the first job after it
//! gets a new thread. Reads of another proc root are not refused, unless eight roots' reads hang.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a caller waits for a read: far above a normal snapshot (tens of microseconds for the
/// process alone, some milliseconds with smaps and a few hundred children).
pub const READ_LIMIT: Duration = Duration::from_secs(1);

/// How long a caller polls for the reply before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Job = Box<dyn FnOnce() + Send>;

/// A reader thread, started at the first job.
pub struct ReaderThread {
    /// Its thread's name: `memsentry-read` for a sentry's, `memsentry-once` for a pool's (the
    /// one-shot `snapshot()`'s live as long as the process; tests tell them apart by it).
    name: &'static str,
    /// Its queue; None before the first job and after one overran.
    queue: Mutex<Option<Sender<Job>>>,
    /// Set when a job overran: whether it has returned since.
    overrun: Mutex<Option<Arc<AtomicBool>>>,
    /// Jobs submitted that have not returned: a pool must not drop a reader whose job may yet
    /// overrun.
    in_flight: Arc<AtomicUsize>,
    /// The newest thread's handle, for `finish`.
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Counts a job out when dropped: when it returns, when it panics, when it is never run.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sets its flag when dropped: when the job returns, and when it panics.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Default for ReaderThread {
    fn default() -> ReaderThread {
        ReaderThread::new()
    }
}

/// Readers shared by key, at most `POOL_SIZE` of them: beyond that the least recently used idle
/// one (no job running or hung) is dropped. A hung one is never dropped: a
/// new reader for its key would read the same stuck file, block its caller again and be left
/// behind too. With every one hung, a new key is refused.
pub struct ReaderPool<K> {
    readers: Mutex<Vec<(K, Arc<ReaderThread>)>>,
}

/// Keys a process uses are few (`/proc`; other roots are test fixtures).
const POOL_SIZE: usize = 8;

impl<K: PartialEq> Default for ReaderPool<K> {
    fn default() -> ReaderPool<K> {
        ReaderPool::new()
    }
}

impl<K: PartialEq> ReaderPool<K> {
    pub const fn new() -> ReaderPool<K> {
        ReaderPool {
            readers: Mutex::new(Vec::new()),
        }
    }

    /// The reader for `key`, made at its first use; the most recently used is kept last.
    pub fn get(&self, key: K) -> Result<Arc<ReaderThread>, ReadFailed> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match readers.iter().position(|(k, _)| *k == key) {
            Some(i) => readers.remove(i),
            None => {
                if readers.len() >= POOL_SIZE {
                    let idle = readers
                        .iter()
                        .position(|(_, r)| r.idle())
                        .ok_or(ReadFailed::StillHanging)?;
                    readers.remove(idle);
                }
                (key, Arc::new(ReaderThread::named("memsentry-once")))
            }
        };
        let reader = Arc::clone(&entry.1);
        readers.push(entry);
        Ok(reader)
    }
}

/// The readers the module-level `snapshot()` calls of the process share, by proc root and
/// whether they read children (a sentry has its own). Every mode reads the process's own files,
/// `meminfo` (which lxcfs serves from a FUSE mount in some containers) and the cgroup's; only
/// those with children read theirs, and a child stuck in the kernel must not refuse the others.
pub static READERS: ReaderPool<(std::path::PathBuf, bool)> = ReaderPool::new();

/// The readers a sentry's construction uses, by proc root: it reads `meminfo` and the cgroup's
/// files. Each construction's thread is joined before it returns (`ReaderThread::finish`); the
/// pool keeps a read that overran, so that later constructions are refused at once rather than
/// blocking a second each and leaving a thread behind in the same read.
pub static INIT_READERS: ReaderPool<std::path::PathBuf> = ReaderPool::new();

/// `path` with `.` and `..` resolved in the text alone (no file system call, which could hang on
/// the mount it names): `/proc/./` and `/x/../proc` are the same root as `/proc`.
pub fn root_key(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            // `/..` is `/`.
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::RootDir)) => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Why a read did not return a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailed {
    /// It was still running after the limit (it goes on, detached; its result is dropped).
    Hanging,
    /// Not run: a job that overran before is still running.
    StillHanging,
    /// It panicked, or no thread could be started.
    Aborted,
}

impl ReadFailed {
    /// For an error message: "memsentry: cannot read now: {reason}".
    pub fn reason(self) -> &'static str {
        match self {
            // READ_LIMIT, as the README says it.
            ReadFailed::Hanging => "a read is hanging (waited 1 s)",
            ReadFailed::StillHanging => "a read is hanging (an earlier call's; this one did not start)",
            ReadFailed::Aborted => "the read failed (it panicked, or no thread could be started)",
        }
    }
}

impl ReaderThread {
    pub fn new() -> ReaderThread {
        ReaderThread::named("memsentry-read")
    }

    fn named(name: &'static str) -> ReaderThread {
        ReaderThread {
            name,
            queue: Mutex::new(None),
            overrun: Mutex::new(None),
            in_flight: Arc::new(AtomicUsize::new(0)),
            handle: Mutex::new(None),
        }
    }

    /// Runs `job` on the reader thread and returns its result, or `Hanging` after `limit`.
    pub fn run_within<T: Send + 'static>(
        &self,
        limit: Duration,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ReadFailed> {
        if self.still_hanging() {
            return Err(ReadFailed::StillHanging);
        }
        let (reply, result) = mpsc::sync_channel(1);
        let returned = Arc::new(AtomicBool::new(false));
        let on_return = SetOnDrop(Arc::clone(&returned));
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let counted = InFlight(Arc::clone(&self.in_flight));
        let job: Job = Box::new(move || {
            let _on_return = on_return;
            let _counted = counted;
            // The receiver may be gone (the caller stopped waiting): nothing to do then.
            let _ = reply.send(job());
        });
        self.submit(job)?;
        // A read takes tens of microseconds: poll for that long before sleeping, so that the
        // reply does not also pay for waking this thread.
        let spin_until = Instant::now() + SPIN;
        while Instant::now() < spin_until {
            match result.try_recv() {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
                Err(TryRecvError::Disconnected) => return Err(ReadFailed::Aborted),
            }
        }
        match result.recv_timeout(limit.saturating_sub(SPIN)) {
            Ok(value) => Ok(value),
            Err(RecvTimeoutError::Timeout) => {
                // Retire this reader: jobs queued behind the hung one would wait for it too.
                *self.queue.lock().unwrap_or_else(|p| p.into_inner()) = None;
                *self.overrun.lock().unwrap_or_else(|p| p.into_inner()) = Some(returned);
                Err(ReadFailed::Hanging)
            }
            // The job panicked: its reply sender was dropped unsent.
            Err(RecvTimeoutError::Disconnected) => Err(ReadFailed::Aborted),
        }
    }

    /// Lets the thread end once the jobs it has are done (a sentry's, at `close()`): it would
    /// otherwise wait for jobs until the sentry is garbage-collected. A later job starts another.
    pub fn retire(&self) {
        *self.queue.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Retires the thread and, when no job runs or waits on it, joins it, so that it does not
    /// outlive its caller (a sentry's construction). A job that overran keeps its thread, and
    /// the reader stays hung until it returns; a later job starts another thread.
    pub fn finish(&self) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        *queue = None;
        // A job counts itself in before it is queued: with none, the thread has nothing left
        // to do but see its queue gone. Checked under the queue's lock, so no job comes now.
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            if let Some(h) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = h.join();
            }
        }
    }

    /// Whether no job of its own runs or waits, and none that overran is still running.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && !self.still_hanging()
    }

    /// Whether a job that overran is still running; forgets it once it has returned.
    fn still_hanging(&self) -> bool {
        let mut overrun = self.overrun.lock().unwrap_or_else(|p| p.into_inner());
        match overrun.as_ref() {
            Some(returned) if !returned.load(Ordering::SeqCst) => true,
            Some(_) => {
                *overrun = None;
                false
            }
            None => false,
        }
    }

    fn submit(&self, job: Job) -> Result<(), ReadFailed> {
        let mut reader = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let job = match reader.as_ref() {
            Some(queue) => match queue.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone: start another with this job.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, jobs) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || serve(jobs))
            .map_err(|_| ReadFailed::Aborted)?;
        queue.send(job).map_err(|_| ReadFailed::Aborted)?;
        *reader = Some(queue);
        // The thread before it, if any, ends by itself (its queue is gone): detached.
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }
}

fn serve(jobs: Receiver<Job>) {
    // Ends when its queue is dropped: retired after an overrun, or at process exit.
    while let Ok(job) = jobs.recv() {
        // A panic must not end the thread for the callers after this one.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_message_says_the_limit() {
        let said = format!("waited {} s", READ_LIMIT.as_secs());
        assert!(ReadFailed::Hanging.reason().contains(&said));
    }

    #[test]
    fn returns_the_jobs_value_on_one_thread() {
        let reader = ReaderThread::new();
        let a = reader
            .run_within(READ_LIMIT, || std::thread::current().id())
            .unwrap();
        let b = reader
            .run_within(READ_LIMIT, || std::thread::current().id())
            .unwrap();
        assert_eq!(a, b, "the same reader serves both");
        assert_ne!(a, std::thread::current().id());
    }

    #[test]
    fn finish_joins_an_idle_thread_and_leaves_an_overrun_to_its_read() {
        let reader = ReaderThread::new();
        // A thread-local whose destructor runs as the reader's thread ends, slowly: only a
        // join sees it done.
        struct Ended(Arc<AtomicBool>);
        impl Drop for Ended {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(50));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        thread_local!(static ENDED: std::cell::RefCell<Option<Ended>> = const { std::cell::RefCell::new(None) });
        let ended = Arc::new(AtomicBool::new(false));
        let e = Arc::clone(&ended);
        reader
            .run_within(READ_LIMIT, move || {
                ENDED.with(|c| *c.borrow_mut() = Some(Ended(e)))
            })
            .unwrap();
        reader.finish();
        assert!(
            ended.load(Ordering::SeqCst),
            "finish() returned before the thread ended"
        );
        // A later job starts another thread.
        assert_eq!(reader.run_within(READ_LIMIT, || 7), Ok(7));
        reader.finish();

        // A job that overran: finish() does not wait for it, and the reader stays hung.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = Arc::clone(&gate);
        let r = reader.run_within(Duration::from_millis(50), move || drop(g.lock()));
        assert_eq!(r, Err(ReadFailed::Hanging));
        let started = Instant::now();
        reader.finish();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "finish() waited for the read"
        );
        assert_eq!(reader.run_within(READ_LIMIT, || 8), Err(ReadFailed::StillHanging));
        drop(held);
    }

    #[test]
    fn after_a_job_overruns_calls_fail_at_once_until_it_returns() {
        let reader = ReaderThread::new();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = Arc::clone(&gate);
        let started = Instant::now();
        let r = reader.run_within(Duration::from_millis(100), move || drop(g.lock()));
        assert_eq!(r, Err(ReadFailed::Hanging));
        assert!(started.elapsed() < Duration::from_secs(5));
        // The reader is still blocked on the gate: no second thread, no second wait.
        let again = Instant::now();
        assert_eq!(reader.run_within(READ_LIMIT, || 7), Err(ReadFailed::StillHanging));
        assert!(again.elapsed() < Duration::from_millis(100));
        drop(held);
        // Once the hung job has returned, a new reader answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match reader.run_within(READ_LIMIT, || 7) {
                Ok(v) => break assert_eq!(v, 7),
                Err(ReadFailed::StillHanging) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => panic!("after the hung job returned: {other:?}"),
            }
        }
    }

    #[test]
    fn a_job_that_panics_after_overrunning_does_not_block_later_calls() {
        let reader = ReaderThread::new();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = Arc::clone(&gate);
        let r: Result<(), _> = reader.run_within(Duration::from_millis(50), move || {
            drop(g.lock());
            panic!("in a read that overran")
        });
        assert_eq!(r, Err(ReadFailed::Hanging));
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.run_within(READ_LIMIT, || ()) == Err(ReadFailed::StillHanging) {
            assert!(Instant::now() < deadline, "still hanging after the job panicked");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(reader.run_within(READ_LIMIT, || 3), Ok(3));
    }

    #[test]
    fn a_pool_hands_out_one_reader_per_key_and_keeps_hung_ones() {
        let pool = ReaderPool::new();
        let a = pool.get("a").unwrap();
        assert!(Arc::ptr_eq(&a, &pool.get("a").unwrap()));
        assert!(!Arc::ptr_eq(&a, &pool.get("b").unwrap()));
        // An overrun on one key's reader does not refuse another key's calls.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = Arc::clone(&gate);
        let r = a.run_within(Duration::from_millis(50), move || drop(g.lock()));
        assert_eq!(r, Err(ReadFailed::Hanging));
        let again = pool.get("a").unwrap().run_within(READ_LIMIT, || 1);
        assert_eq!(again, Err(ReadFailed::StillHanging));
        assert_eq!(pool.get("b").unwrap().run_within(READ_LIMIT, || 2), Ok(2));
        // However many other keys come after it, the hung reader is kept, and refuses.
        for key in ["c", "d", "e", "f", "g", "h", "i", "j", "k", "l"] {
            pool.get(key).unwrap();
        }
        assert_eq!(pool.readers.lock().unwrap().len(), POOL_SIZE);
        assert!(
            Arc::ptr_eq(&a, &pool.get("a").unwrap()),
            "the hung reader was dropped"
        );
        drop(held);

        // Beyond POOL_SIZE keys, the least recently used is dropped, not the others.
        let pool = ReaderPool::new();
        let zero = pool.get(0).unwrap();
        let one = pool.get(1).unwrap();
        for key in 2..2 * POOL_SIZE {
            pool.get(key).unwrap();
            assert!(Arc::ptr_eq(&zero, &pool.get(0).unwrap()), "key 0 was used last");
        }
        assert_eq!(pool.readers.lock().unwrap().len(), POOL_SIZE);
        assert!(
            !Arc::ptr_eq(&one, &pool.get(1).unwrap()),
            "key 1 was dropped and made anew"
        );
    }

    #[test]
    fn a_root_spelled_two_ways_is_one_key() {
        use std::path::Path;
        for same in [
            "/proc",
            "/proc/",
            "/proc/.",
            "/./proc",
            "/x/../proc",
            "/x/./../proc//",
            "/../proc",
        ] {
            assert_eq!(root_key(Path::new(same)), Path::new("/proc"), "{same}");
        }
        assert_eq!(root_key(Path::new("a/../../b")), Path::new("../b"));
        assert_ne!(root_key(Path::new("/proc/1")), Path::new("/proc"));
    }

    #[test]
    fn a_reader_whose_job_still_runs_is_not_dropped() {
        let pool = Arc::new(ReaderPool::new());
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let busy = pool.get(0).unwrap();
        let g = Arc::clone(&gate);
        let caller = {
            let busy = Arc::clone(&busy);
            std::thread::spawn(move || busy.run_within(Duration::from_secs(30), move || drop(g.lock())))
        };
        while busy.in_flight.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        for key in 1..2 * POOL_SIZE {
            pool.get(key).unwrap();
        }
        assert!(
            Arc::ptr_eq(&busy, &pool.get(0).unwrap()),
            "a busy reader was dropped"
        );
        drop(held);
        assert_eq!(caller.join().unwrap(), Ok(()));
        assert_eq!(busy.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_full_pool_of_hung_readers_refuses_a_new_key() {
        let pool = ReaderPool::new();
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        for key in 0..POOL_SIZE {
            let g = Arc::clone(&gate);
            let r = pool.get(key).unwrap();
            assert_eq!(
                r.run_within(Duration::from_millis(20), move || drop(g.lock())),
                Err(ReadFailed::Hanging)
            );
        }
        assert!(matches!(pool.get(POOL_SIZE), Err(ReadFailed::StillHanging)));
        drop(held);
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_reader_goes_on() {
        let reader = ReaderThread::new();
        let r: Result<(), _> = reader.run_within(READ_LIMIT, || panic!("in a read"));
        assert_eq!(r, Err(ReadFailed::Aborted));
        assert_eq!(reader.run_within(READ_LIMIT, || 1 + 1), Ok(2));
    }
}
