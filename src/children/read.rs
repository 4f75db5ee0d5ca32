//! Reading the known children through their open files: one `ChildSample` each, spawns and
//! exits as they are seen.

use super::*;
use crate::procfs::proc_file::read_prefix;

impl ChildrenTracker {
    pub(super) fn read_tracked(
        &mut self,
        mono_ms: u64,
        with_smaps: bool,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> Vec<ChildSample> {
        let pids: Vec<u32> = self.tracked.keys().copied().collect();
        // Parents that keep a Tree child ours; taken before this pass's removals, which a
        // reparented child's own `stat` shows anyway. The tracked ones are `pids` (sorted, from
        // the BTreeMap): no set is built for them on every read.
        let ignored = match self.mode {
            ChildrenMode::Tree => self.ignored.clone(),
            _ => HashSet::new(),
        };
        let parents = Parents {
            tree: self.mode == ChildrenMode::Tree,
            tracked: &pids,
            ignored: &ignored,
        };
        let mut samples = Vec::with_capacity(pids.len());
        // One slow child read again per pass: children that went slow together come due
        // together, and their reads in one tick would block the sampler for all of them.
        let mut retried = false;
        for &pid in &pids {
            if let Some(t) = self.tracked.get(&pid) {
                let skip = |s: &&Stall| retried || mono_ms < s.retry_ms;
                if let Some(stall) = t.stalled.as_ref().filter(skip) {
                    errors.push(stall.error.clone());
                    samples.push(ChildSample {
                        pid,
                        ppid: t.ppid,
                        comm: t.comm.clone(),
                        cmdline: t.cmdline.clone(),
                        ..ChildSample::default()
                    });
                    continue;
                }
                retried |= t.stalled.is_some();
            }
            let started = std::time::Instant::now();
            // At most twice: once more for a new process found under a reused pid.
            for _ in 0..2 {
                match self.read_one(pid, mono_ms, with_smaps, &parents, errors, changes) {
                    ReadOutcome::Sample(s) => samples.push(s),
                    ReadOutcome::Gone => {}
                    ReadOutcome::Replaced => continue,
                }
                break;
            }
            let took = started.elapsed();
            let Some(t) = self.tracked.get_mut(&pid) else {
                continue;
            };
            if took < SLOW_READ {
                // Read in time (again): its figures count from this reading on.
                t.stalled = None;
                continue;
            }
            let backoff_ms = Stall::next_backoff(t.stalled.as_ref().map(|s| s.backoff_ms));
            let dir = t.reader.dir().to_path_buf();
            let error = ReadError {
                kind: ReadErrorKind::Io(io::ErrorKind::TimedOut),
                os_error: None,
                message: format!(
                    "reading {} took {} ms (a process in D state, or a hung mount?): child {pid} \
                     is skipped, and read again in {} s",
                    dir.display(),
                    took.as_millis(),
                    backoff_ms / 1000
                ),
                path: dir,
            };
            errors.push(error.clone());
            t.stalled = Some(Stall {
                error,
                retry_ms: mono_ms.saturating_add(backoff_ms),
                backoff_ms,
            });
        }
        samples
    }

    fn read_one(
        &mut self,
        pid: u32,
        mono_ms: u64,
        with_smaps: bool,
        parents: &Parents<'_>,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> ReadOutcome {
        let self_pid = self.self_pid;
        let ours = |ppid: u32| ppid == self_pid || parents.contains(ppid);
        let Some(t) = self.tracked.get_mut(&pid) else {
            return ReadOutcome::Gone;
        };
        let stat = match t.reader.read_stat() {
            Ok(s) => Some(s),
            Err(e) if is_gone(&e) => {
                self.remove(pid, mono_ms, changes);
                return ReadOutcome::Gone;
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut comm_changed = !t.announced;
        if let Some(s) = &stat {
            let ppid = to_pid(s.ppid);
            if t.start_time.is_some_and(|st| st != s.start_time) {
                // A new process under the same pid (seen through a file reopened after an error,
                // or a fixture): the old child exited; the new one is tracked if ours.
                self.remove(pid, mono_ms, changes);
                if ours(ppid) {
                    let fresh = self.new_tracked(pid, ppid, String::new(), mono_ms);
                    self.tracked.insert(pid, fresh);
                    return ReadOutcome::Replaced;
                }
                return ReadOutcome::Gone;
            }
            if !ours(ppid) {
                // Reparented away (Tree: its parent exited) or raced at discovery.
                self.remove(pid, mono_ms, changes);
                return ReadOutcome::Gone;
            }
            t.start_time = Some(s.start_time);
            t.ppid = ppid;
            if t.comm != s.comm {
                t.comm.clone_from(&s.comm);
                comm_changed = true;
            }
        }
        if !t.announced {
            t.announced = true;
            changes.push(ChildChange::Spawn {
                pid,
                ppid: t.ppid,
                comm: t.comm.clone(),
            });
        }
        // Also while empty: a child caught mid-exec can show an empty cmdline for a moment.
        if comm_changed || t.cmdline.is_empty() {
            t.cmdline = read_cmdline(t.reader.dir(), errors);
        }

        let statm = keep(t.reader.read_statm(), errors);
        let status = keep(t.reader.read_status(), errors);
        let smaps = if with_smaps {
            keep(t.reader.read_smaps_rollup(), errors)
        } else {
            None
        };
        // A zombie (or a process past exit_mm) reads all zeros: not a figure worth keeping.
        if let Some(m) = statm.filter(|m| m.vsz != 0) {
            t.last_rss = Some(m.rss);
        }
        ReadOutcome::Sample(ChildSample {
            pid,
            ppid: t.ppid,
            comm: t.comm.clone(),
            cmdline: t.cmdline.clone(),
            rss: statm.map(|m| m.rss),
            vsz: statm.map(|m| m.vsz),
            rss_anon: status.and_then(|s| s.rss_anon),
            swap: status.and_then(|s| s.swap),
            minor_faults: stat.as_ref().map(|s| s.minor_faults),
            major_faults: stat.as_ref().map(|s| s.major_faults),
            pss: smaps.map(|s| s.pss),
        })
    }
}

/// The processes whose children are ours besides the watched one (Tree mode only).
struct Parents<'a> {
    tree: bool,
    /// Sorted.
    tracked: &'a [u32],
    ignored: &'a HashSet<u32>,
}

impl Parents<'_> {
    fn contains(&self, pid: u32) -> bool {
        self.tree && (self.tracked.binary_search(&pid).is_ok() || self.ignored.contains(&pid))
    }
}

enum ReadOutcome {
    Sample(ChildSample),
    /// Dropped (with an Exit if it had been announced).
    Gone,
    /// The pid now names a new child, to be read afresh.
    Replaced,
}

/// A figure, or `None` with the failure in `errors` unless the process is just gone (the next
/// `stat` read confirms that) or a zombie (`smaps_rollup` of a zombie fails with ESRCH).
fn keep<T>(r: Result<T, ReadError>, errors: &mut Vec<ReadError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            if !is_gone(&e) {
                errors.push(e);
            }
            None
        }
    }
}

/// First `CMDLINE_MAX` bytes, NULs as spaces, trailing spaces trimmed. A gone process (or a
/// zombie: empty) gives `""` silently.
pub(super) fn read_cmdline(dir: &Path, errors: &mut Vec<ReadError>) -> String {
    let path = dir.join("cmdline");
    let mut buf = match read_prefix(&path, CMDLINE_MAX) {
        Ok(buf) => buf,
        Err(e) => {
            if !io_gone(&e) {
                errors.push(ReadError::io(&path, &e));
            }
            return String::new();
        }
    };
    for b in &mut buf {
        if *b == 0 {
            *b = b' ';
        }
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.truncate(s.trim_end_matches(' ').len());
    s
}
