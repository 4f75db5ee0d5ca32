//! Child processes of the watched process: discovery, per-child memory figures, spawn/exit changes.
//!
//! # Discovery
//!
//! Which children exist is found by one of two methods, chosen once, at the first discovery, by
//! whether `<proc_root>/<self_pid>/task/<self_pid>/children` exists:
//!
//! - **children files** (kernels built with `CONFIG_PROC_CHILDREN`, which most distribution
//!   kernels are): `<pid>/task/<tid>/children` is read for *every* thread of each process whose
//!   children we need, since a child spawned from a worker thread is listed under that thread's
//!   tid only. Cost: one `readdir` of `task/` plus one small read per thread per expanded process
//!   (about 9 µs for a single-threaded process without children, on a 2-vCPU VM).
//! - **scan**: every `<proc_root>/[0-9]*/stat` is read and parsed once per pass into ppid → pids,
//!   then walked from our pid (Direct: one level; Tree: transitively). Cost grows with the number
//!   of processes on the host (9 to 18 µs each, 1.2 to 2.3 ms for 130, on a 2-vCPU VM), which is
//!   why discovery has its own cadence.
//!
//! Reading a known child costs what the kernel takes to generate its files (same VM: `stat` 4 µs,
//! `statm` 1.3 µs, `status` 12 µs, `smaps_rollup` 42 µs for a `sleep`, about 1 ms for a large
//! heap); the bench test below measures about 0.7 ms per read for 50 children without smaps.
//!
//! Discovery runs when `discover_every_ms` has passed since the last one (always with 0); the
//! children already known are re-read on every call through their open files.
//!
//! A process that vanishes while being listed or read (ENOENT/ESRCH) is normal and never an error.
//! Under `hidepid=2` another user's process directory is invisible (ENOENT): such a child (a
//! setuid program, say) cannot be seen and is silently absent. Under `hidepid=1` its files fail
//! with EACCES: such a child is tracked, its fields are `None` and the failures go to `errors`.
//! In the scan method a process whose `stat` cannot be read or parsed has no known parent, so it is
//! never *found* that way; a child already tracked whose `stat` turns unreadable stays tracked.
//!
//! # Identity and changes
//!
//! A child is (pid, start_time), so a reused pid is an Exit of the old child and, when the new
//! process is also our child, a Spawn of a new one. `ChildChange::Exit` is reported when a child
//! leaves the tracked set: its `stat` fails with ENOENT/ESRCH (the open fd of a reaped process
//! returns ESRCH), discovery no longer finds it and a fresh look confirms it is gone, its
//! start_time changed, or (Tree) it was reparented away from our tree because its parent exited.
//! An exited but unreaped child (a zombie) is still a child: it is listed, its `statm` reads all
//! zeros and its `smaps_rollup` fails with ESRCH (not an error); `last_rss` keeps the last
//! non-empty RSS, so a zombie's zeros do not hide what the child used.
//!
//! `cmdline` is read when the child is first seen, again when its `comm` changes and while it is
//! empty, since a child caught between fork and exec still shows the parent's command. (An exec of a program with the
//! same name as the parent, node spawning node, keeps the parent's command line.) The `comm` of a
//! Spawn is the one seen first, so a child caught before its exec is announced with the parent's
//! `comm`; samples show the current one.
//!
//! # Limits
//!
//! At most [`MAX_CHILDREN`] (1024) children are tracked, each holding up to four open fds
//! (`stat`, `statm`, `status`, and `smaps_rollup` when asked). Further children are ignored for
//! their whole life (no Spawn, no sample, no error) and counted once each in
//! [`ChildrenTracker::dropped`]; their descendants are still walked in Tree mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::procfs::process::ProcessReader;
use crate::procfs::read_error::{ReadError, ReadErrorKind};
use crate::procfs::stat;

/// Most children tracked at once; see the module docs.
pub const MAX_CHILDREN: usize = 1024;

/// Bytes of `cmdline` kept.
const CMDLINE_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildrenMode {
    /// No children are watched.
    None,
    /// Processes whose parent is the watched process.
    Direct,
    /// All descendants of the watched process.
    Tree,
}

impl ChildrenMode {
    /// `"none"`, `"direct"` or `"tree"`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(ChildrenMode::None),
            "direct" => Some(ChildrenMode::Direct),
            "tree" => Some(ChildrenMode::Tree),
            _ => None,
        }
    }
}

/// One child's figures from one read. Sizes in bytes; a figure whose file failed is `None`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChildSample {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// The first 256 bytes of `cmdline`, NULs as spaces, trailing spaces trimmed.
    pub cmdline: String,
    pub rss: Option<u64>,
    pub vsz: Option<u64>,
    pub rss_anon: Option<u64>,
    pub swap: Option<u64>,
    pub minor_faults: Option<u64>,
    pub major_faults: Option<u64>,
    /// From `smaps_rollup`, only on reads asked `with_smaps`.
    pub pss: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChildChange {
    Spawn {
        pid: u32,
        ppid: u32,
        comm: String,
    },
    Exit {
        pid: u32,
        ppid: u32,
        comm: String,
        /// The last non-zero RSS read, `None` if none was.
        last_rss: Option<u64>,
        /// How long the child was tracked: `mono_ms` of this read minus that of its first.
        seen_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    ChildrenFiles,
    Scan,
}

/// A tracked child: its open files and what is remembered between reads.
#[derive(Debug)]
struct Tracked {
    reader: ProcessReader,
    /// `None` until its `stat` has been read once.
    start_time: Option<u64>,
    ppid: u32,
    comm: String,
    cmdline: String,
    first_seen_ms: u64,
    last_rss: Option<u64>,
    /// A Spawn was reported (so its disappearance is an Exit).
    announced: bool,
    /// Set once one read of its files took [`SLOW_READ`] or more: it is no longer read (listed
    /// with no figures), and this error goes out with every reading (the sampler says it once).
    stalled: Option<ReadError>,
}

/// A child whose files took this long to read once (a process in D state, a hung NFS mount
/// under its `cmdline` or `smaps_rollup`) is skipped from then on, so one stuck child does not
/// stall every tick.
pub const SLOW_READ: std::time::Duration = std::time::Duration::from_secs(1);

/// A process discovery found to be ours.
#[derive(Debug)]
struct Candidate {
    ppid: u32,
    /// Scan only: start_time and comm from the `stat` the scan parsed.
    stat: Option<(u64, String)>,
}

/// What a scan learnt about every process, used to judge tracked children it did not find.
#[derive(Debug, Default)]
struct ScanInfo {
    /// pid → (ppid, start_time) of every process whose `stat` parsed.
    stats: HashMap<u32, (u32, u64)>,
    /// pids listed whose `stat` failed for a reason other than exit, or did not parse.
    unreadable: HashSet<u32>,
}

/// What became of a tracked child that discovery did not find.
enum Verdict {
    Gone,
    /// Alive, with this parent; whether that is still ours is judged after all removals.
    Alive(u32),
    /// Cannot tell (its `stat` is unreadable): kept.
    Unknown,
}

/// Tracks the children of one process; see the module docs.
#[derive(Debug)]
pub struct ChildrenTracker {
    proc_root: PathBuf,
    self_pid: u32,
    mode: ChildrenMode,
    discover_every_ms: u64,
    method: Option<Method>,
    last_discovery_ms: Option<u64>,
    tracked: BTreeMap<u32, Tracked>,
    /// Children ignored because of the cap, until discovery no longer finds them.
    ignored: HashSet<u32>,
    dropped: u64,
}

impl ChildrenTracker {
    pub fn new(proc_root: &Path, self_pid: u32, mode: ChildrenMode, discover_every_ms: u64) -> Self {
        ChildrenTracker {
            proc_root: proc_root.to_path_buf(),
            self_pid,
            mode,
            discover_every_ms,
            method: None,
            last_discovery_ms: None,
            tracked: BTreeMap::new(),
            ignored: HashSet::new(),
            dropped: 0,
        }
    }

    /// Whether discovery reads `task/<tid>/children` files (`true`) or scans every process's
    /// `stat` (`false`); `None` before the first discovery (and always in mode `None`).
    pub fn uses_children_files(&self) -> Option<bool> {
        self.method.map(|m| m == Method::ChildrenFiles)
    }

    /// Children ignored because [`MAX_CHILDREN`] were already tracked, each counted once.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// `mono_ms`: monotonic ms (non-decreasing). Returns the current children, in pid order.
    /// Runs discovery when due, then reads every known child; unexpected failures go to
    /// `errors` (their figures `None`), spawns and exits to `changes`.
    pub fn read(
        &mut self,
        mono_ms: u64,
        with_smaps: bool,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> Vec<ChildSample> {
        if self.mode == ChildrenMode::None {
            return Vec::new();
        }
        let due = self
            .last_discovery_ms
            .is_none_or(|last| mono_ms.saturating_sub(last) >= self.discover_every_ms);
        if due {
            self.last_discovery_ms = Some(mono_ms);
            self.discover(mono_ms, errors, changes);
        }
        self.read_tracked(mono_ms, with_smaps, errors, changes)
    }

    // ---------------------------------------------------------------------------------------
    // Discovery

    fn discover(&mut self, mono_ms: u64, errors: &mut Vec<ReadError>, changes: &mut Vec<ChildChange>) {
        let method = *self.method.get_or_insert_with(|| {
            let pid = self.self_pid.to_string();
            let probe = self.proc_root.join(&pid).join("task").join(&pid).join("children");
            if probe.exists() {
                Method::ChildrenFiles
            } else {
                Method::Scan
            }
        });
        let (found, scan) = match method {
            Method::ChildrenFiles => (self.find_by_children_files(errors), None),
            Method::Scan => match self.find_by_scan(errors) {
                Some((found, info)) => (found, Some(info)),
                // The proc root itself could not be listed: change nothing.
                None => return,
            },
        };
        self.reconcile(mono_ms, &found, scan.as_ref(), changes);
    }

    fn find_by_children_files(&self, errors: &mut Vec<ReadError>) -> BTreeMap<u32, Candidate> {
        self.walk(|parent| {
            self.children_listed(parent, errors)
                .into_iter()
                .map(|pid| (pid, None))
                .collect()
        })
    }

    /// The descendants of our pid, breadth first (one level in Direct mode), asking `kids_of`
    /// for each parent's children: each pid is taken once, from the first parent that lists it,
    /// and each parent is asked once.
    fn walk(
        &self,
        mut kids_of: impl FnMut(u32) -> Vec<(u32, Option<(u64, String)>)>,
    ) -> BTreeMap<u32, Candidate> {
        let mut found = BTreeMap::new();
        let mut queue = vec![self.self_pid];
        let mut expanded = HashSet::from([self.self_pid]);
        while let Some(parent) = queue.pop() {
            for (pid, stat) in kids_of(parent) {
                if pid == self.self_pid || found.contains_key(&pid) {
                    continue;
                }
                found.insert(pid, Candidate { ppid: parent, stat });
                if self.mode == ChildrenMode::Tree && expanded.insert(pid) {
                    queue.push(pid);
                }
            }
        }
        found
    }

    /// The pids in `task/*/children` of `pid`, every thread's. A process or thread that exits
    /// meanwhile contributes nothing, silently.
    fn children_listed(&self, pid: u32, errors: &mut Vec<ReadError>) -> Vec<u32> {
        let task_dir = self.proc_root.join(pid.to_string()).join("task");
        let entries = match fs::read_dir(&task_dir) {
            Ok(entries) => entries,
            Err(e) => {
                if !io_gone(&e) {
                    errors.push(ReadError::io(&task_dir, &e));
                }
                return Vec::new();
            }
        };
        let mut pids = Vec::new();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            if parse_pid(name.as_encoded_bytes()).is_none() {
                continue;
            }
            let path = entry.path().join("children");
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    if !io_gone(&e) {
                        errors.push(ReadError::io(&path, &e));
                    }
                    continue;
                }
            };
            for token in bytes.split(u8::is_ascii_whitespace).filter(|t| !t.is_empty()) {
                match parse_pid(token) {
                    Some(child) => pids.push(child),
                    None => errors.push(ReadError::parse(
                        &path,
                        format!("bad pid {:?}", String::from_utf8_lossy(token)),
                    )),
                }
            }
        }
        pids
    }

    /// Reads every process's `stat` once; `None` if the proc root cannot be listed.
    fn find_by_scan(&self, errors: &mut Vec<ReadError>) -> Option<(BTreeMap<u32, Candidate>, ScanInfo)> {
        let entries = match fs::read_dir(&self.proc_root) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(ReadError::io(&self.proc_root, &e));
                return None;
            }
        };
        let mut info = ScanInfo::default();
        let mut by_ppid: HashMap<u32, Vec<(u32, u64, String)>> = HashMap::new();
        let mut path = self.proc_root.clone();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = parse_pid(name.as_encoded_bytes()) else {
                continue;
            };
            path.push(&name);
            path.push("stat");
            let read = fs::read(&path);
            path.pop();
            path.pop();
            match read.map(|bytes| stat::parse(&bytes)) {
                Ok(Ok(s)) => {
                    let ppid = to_pid(s.ppid);
                    info.stats.insert(pid, (ppid, s.start_time));
                    by_ppid.entry(ppid).or_default().push((pid, s.start_time, s.comm));
                }
                // Exited since the listing.
                Err(e) if io_gone(&e) => {}
                // Not ours to report: it may be anyone's process. Judged only if tracked.
                Err(_) | Ok(Err(_)) => {
                    info.unreadable.insert(pid);
                }
            }
        }
        let found = self.walk(|parent| {
            let kids = by_ppid.remove(&parent).unwrap_or_default();
            kids.into_iter()
                .map(|(pid, start_time, comm)| (pid, Some((start_time, comm))))
                .collect()
        });
        Some((found, info))
    }

    /// Drops tracked children that are gone or no longer ours, adopts new ones.
    fn reconcile(
        &mut self,
        mono_ms: u64,
        found: &BTreeMap<u32, Candidate>,
        scan: Option<&ScanInfo>,
        changes: &mut Vec<ChildChange>,
    ) {
        // A found pid whose start_time differs from the tracked one (scan only) is a new process.
        let reused: Vec<u32> = found
            .iter()
            .filter_map(|(pid, c)| {
                let (start_time, _) = c.stat.as_ref()?;
                let t = self.tracked.get(pid)?;
                t.start_time.is_some_and(|s| s != *start_time).then_some(*pid)
            })
            .collect();
        for pid in reused {
            self.remove(pid, mono_ms, changes);
        }

        // Tracked but not found: gone, or a listing race, or reparented away.
        let missing: Vec<u32> = self
            .tracked
            .keys()
            .filter(|p| !found.contains_key(p))
            .copied()
            .collect();
        let mut alive = Vec::new();
        for pid in missing {
            match self.verdict(pid, scan) {
                Verdict::Gone => self.remove(pid, mono_ms, changes),
                Verdict::Alive(ppid) => alive.push((pid, ppid)),
                Verdict::Unknown => {}
            }
        }
        // Judged after the removals, repeatedly, since a removal can orphan another.
        loop {
            let before = alive.len();
            let mut i = 0;
            while i < alive.len() {
                let (pid, ppid) = alive[i];
                let ours = ppid == self.self_pid
                    || (self.mode == ChildrenMode::Tree
                        && (found.contains_key(&ppid)
                            || self.tracked.contains_key(&ppid)
                            || self.ignored.contains(&ppid)));
                if ours {
                    i += 1;
                } else {
                    self.remove(pid, mono_ms, changes);
                    alive.swap_remove(i);
                }
            }
            if alive.len() == before {
                break;
            }
        }

        self.ignored.retain(|pid| found.contains_key(pid));
        for (&pid, c) in found {
            if self.tracked.contains_key(&pid) || self.ignored.contains(&pid) {
                continue;
            }
            if self.tracked.len() >= MAX_CHILDREN {
                self.ignored.insert(pid);
                self.dropped += 1;
                continue;
            }
            let comm = c.stat.as_ref().map(|(_, comm)| comm.clone()).unwrap_or_default();
            self.tracked
                .insert(pid, self.new_tracked(pid, c.ppid, comm, mono_ms));
        }
    }

    fn verdict(&self, pid: u32, scan: Option<&ScanInfo>) -> Verdict {
        let start_time = self.tracked.get(&pid).and_then(|t| t.start_time);
        let (ppid, now_start) = match scan {
            Some(info) => match info.stats.get(&pid) {
                Some(&(ppid, s)) => (ppid, s),
                None if info.unreadable.contains(&pid) => return Verdict::Unknown,
                None => return Verdict::Gone,
            },
            // A fresh open: the tracked fd would still show a deleted file's old content.
            None => {
                let path = self.proc_root.join(pid.to_string()).join("stat");
                match fs::read(&path).map(|b| stat::parse(&b)) {
                    Ok(Ok(s)) => (to_pid(s.ppid), s.start_time),
                    Err(e) if io_gone(&e) => return Verdict::Gone,
                    Err(_) | Ok(Err(_)) => return Verdict::Unknown,
                }
            }
        };
        if start_time.is_some_and(|s| s != now_start) {
            Verdict::Gone
        } else {
            Verdict::Alive(ppid)
        }
    }

    fn new_tracked(&self, pid: u32, ppid: u32, comm: String, mono_ms: u64) -> Tracked {
        Tracked {
            reader: ProcessReader::new(&self.proc_root, &pid.to_string()),
            start_time: None,
            ppid,
            comm,
            cmdline: String::new(),
            first_seen_ms: mono_ms,
            last_rss: None,
            announced: false,
            stalled: None,
        }
    }

    /// Stops tracking `pid` (closing its files), reporting an Exit if a Spawn was reported.
    fn remove(&mut self, pid: u32, mono_ms: u64, changes: &mut Vec<ChildChange>) {
        if let Some(t) = self.tracked.remove(&pid) {
            if t.announced {
                changes.push(ChildChange::Exit {
                    pid,
                    ppid: t.ppid,
                    comm: t.comm,
                    last_rss: t.last_rss,
                    seen_ms: mono_ms.saturating_sub(t.first_seen_ms),
                });
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Reading the known children

    fn read_tracked(
        &mut self,
        mono_ms: u64,
        with_smaps: bool,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> Vec<ChildSample> {
        // Parents that keep a Tree child ours; taken before this pass's removals, which a
        // reparented child's own `stat` shows anyway.
        let parents: HashSet<u32> = match self.mode {
            ChildrenMode::Tree => self.tracked.keys().chain(self.ignored.iter()).copied().collect(),
            _ => HashSet::new(),
        };
        let pids: Vec<u32> = self.tracked.keys().copied().collect();
        let mut samples = Vec::with_capacity(pids.len());
        for pid in pids {
            if let Some(t) = self.tracked.get(&pid) {
                if let Some(e) = &t.stalled {
                    errors.push(e.clone());
                    samples.push(ChildSample {
                        pid,
                        ppid: t.ppid,
                        comm: t.comm.clone(),
                        cmdline: t.cmdline.clone(),
                        ..ChildSample::default()
                    });
                    continue;
                }
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
            if took >= SLOW_READ {
                if let Some(t) = self.tracked.get_mut(&pid) {
                    let dir = t.reader.dir().to_path_buf();
                    let e = ReadError {
                        kind: ReadErrorKind::Io(io::ErrorKind::TimedOut),
                        message: format!(
                            "reading {} took {} ms (a process in D state, or a hung mount?): child {pid} \
                             is no longer read",
                            dir.display(),
                            took.as_millis()
                        ),
                        path: dir,
                    };
                    errors.push(e.clone());
                    t.stalled = Some(e);
                }
            }
        }
        samples
    }

    fn read_one(
        &mut self,
        pid: u32,
        mono_ms: u64,
        with_smaps: bool,
        parents: &HashSet<u32>,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> ReadOutcome {
        let self_pid = self.self_pid;
        let ours = |ppid: u32| ppid == self_pid || parents.contains(&ppid);
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

    /// Test hook: the method the first discovery would otherwise choose.
    #[cfg(test)]
    fn force_method(&mut self, children_files: bool) {
        self.method = Some(if children_files {
            Method::ChildrenFiles
        } else {
            Method::Scan
        });
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
fn read_cmdline(dir: &Path, errors: &mut Vec<ReadError>) -> String {
    let path = dir.join("cmdline");
    let mut buf = Vec::with_capacity(CMDLINE_MAX);
    let read = fs::File::open(&path).and_then(|f| f.take(CMDLINE_MAX as u64).read_to_end(&mut buf));
    if let Err(e) = read {
        if !io_gone(&e) {
            errors.push(ReadError::io(&path, &e));
        }
        return String::new();
    }
    for b in &mut buf {
        if *b == 0 {
            *b = b' ';
        }
    }
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.truncate(s.trim_end_matches(' ').len());
    s
}

/// ENOENT or ESRCH: the process (or thread) exited. Normal under discovery and reading.
fn io_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// [`io_gone`] for a `ReadError`, which keeps the io kind but not the errno: ESRCH has no
/// `ErrorKind` of its own, so it is recognised by the `(os error 3)` that `ReadError::io` copies
/// from the io error's message (a test below guards this).
fn is_gone(e: &ReadError) -> bool {
    match e.kind {
        ReadErrorKind::Io(io::ErrorKind::NotFound) => true,
        ReadErrorKind::Io(_) => e.message.ends_with(&format!("(os error {})", libc::ESRCH)),
        ReadErrorKind::Parse => false,
    }
}

/// A decimal pid (no sign, no leading junk), as in proc directory names and `children` files.
fn parse_pid(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn to_pid(ppid: i32) -> u32 {
    u32::try_from(ppid).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::page_size::page_size;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    const SELF: u32 = 100;
    const WITH: &str = "with-children-files";
    const WITHOUT: &str = "without-children-files";

    fn fixture(variant: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/children")
            .join(variant)
            .join("proc")
    }

    /// A writable copy of a fixture, removed on drop.
    struct TempTree(PathBuf);

    impl TempTree {
        fn copy(variant: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "memsentry-children-{}-{}-{}",
                std::process::id(),
                variant,
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            copy_dir(&fixture(variant), &dir);
            TempTree(dir)
        }

        fn root(&self) -> &Path {
            &self.0
        }

        fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }

        /// A new child `pid` of `ppid` (a copy of 101 renumbered), listed in the parent's main
        /// thread's `children` file when that file exists.
        fn add_child(&self, pid: u32, ppid: u32, start_time: u64) {
            copy_dir(&self.0.join("101"), &self.0.join(pid.to_string()));
            fs::rename(
                self.0.join(format!("{pid}/task/101")),
                self.0.join(format!("{pid}/task/{pid}")),
            )
            .unwrap();
            self.write(
                &format!("{pid}/stat"),
                stat_line(pid, "sleep", ppid, 95, start_time),
            );
            let list = self.0.join(format!("{ppid}/task/{ppid}/children"));
            if list.exists() {
                let mut s = fs::read_to_string(&list).unwrap();
                s.push_str(&format!("{pid} "));
                fs::write(&list, s).unwrap();
            }
        }

        fn remove_child_for_test(&self, pid: u32) {
            fs::remove_dir_all(self.0.join(pid.to_string())).unwrap();
            for list in ["100/task/100/children", "100/task/105/children"] {
                if let Ok(s) = fs::read_to_string(self.0.join(list)) {
                    let kept: String = s
                        .split_whitespace()
                        .filter(|p| *p != pid.to_string())
                        .map(|p| format!("{p} "))
                        .collect();
                    self.write(list, kept);
                }
            }
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    fn stat_line(pid: u32, comm: &str, ppid: u32, minflt: u64, start_time: u64) -> String {
        format!(
            "{pid} ({comm}) S {ppid} {ppid} 14842 0 -1 4194560 {minflt} 0 0 0 67 17 0 0 20 0 1 0 {start_time} \
             8482816 250 18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    fn pids(samples: &[ChildSample]) -> Vec<u32> {
        samples.iter().map(|s| s.pid).collect()
    }

    fn read(
        t: &mut ChildrenTracker,
        mono_ms: u64,
        with_smaps: bool,
    ) -> (Vec<ChildSample>, Vec<ReadError>, Vec<ChildChange>) {
        let mut errors = Vec::new();
        let mut changes = Vec::new();
        let samples = t.read(mono_ms, with_smaps, &mut errors, &mut changes);
        (samples, errors, changes)
    }

    /// Open fds of this process whose target lies under `dir`: other tests' fds never do.
    fn fds_under(dir: &Path) -> usize {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    fn spawn_of(pid: u32, changes: &[ChildChange]) -> usize {
        changes
            .iter()
            .filter(|c| matches!(c, ChildChange::Spawn { pid: p, .. } if *p == pid))
            .count()
    }

    fn exit_of(pid: u32, changes: &[ChildChange]) -> Option<&ChildChange> {
        changes
            .iter()
            .find(|c| matches!(c, ChildChange::Exit { pid: p, .. } if *p == pid))
    }

    #[test]
    fn mode_names() {
        assert_eq!(ChildrenMode::from_name("none"), Some(ChildrenMode::None));
        assert_eq!(ChildrenMode::from_name("direct"), Some(ChildrenMode::Direct));
        assert_eq!(ChildrenMode::from_name("tree"), Some(ChildrenMode::Tree));
        assert_eq!(ChildrenMode::from_name("Tree"), None);
        assert_eq!(ChildrenMode::from_name(""), None);
    }

    #[test]
    fn mode_none_reads_nothing_and_never_discovers() {
        let mut t = ChildrenTracker::new(&fixture(WITH), SELF, ChildrenMode::None, 0);
        let (samples, errors, changes) = read(&mut t, 0, true);
        assert!(samples.is_empty() && errors.is_empty() && changes.is_empty());
        assert_eq!(t.uses_children_files(), None);
    }

    fn check_fixture_figures(variant: &str, children_files: bool) {
        let mut direct = ChildrenTracker::new(&fixture(variant), SELF, ChildrenMode::Direct, 0);
        assert_eq!(direct.uses_children_files(), None);
        let (samples, errors, changes) = read(&mut direct, 0, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(direct.uses_children_files(), Some(children_files));
        assert_eq!(pids(&samples), [101, 102, 103]);
        assert_eq!(changes.len(), 3);
        assert_eq!(
            changes[2],
            ChildChange::Spawn {
                pid: 103,
                ppid: 100,
                comm: "node worker".into()
            }
        );

        let mut tree = ChildrenTracker::new(&fixture(variant), SELF, ChildrenMode::Tree, 0);
        let (samples, errors, changes) = read(&mut tree, 0, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(pids(&samples), [101, 102, 103, 104]);
        assert_eq!(
            changes[3],
            ChildChange::Spawn {
                pid: 104,
                ppid: 102,
                comm: "sleep".into()
            }
        );

        let page = page_size();
        let kb = 1024;
        assert_eq!(
            samples[1],
            ChildSample {
                pid: 102,
                ppid: 100,
                comm: "sh".into(),
                cmdline: "sh -c sleep 5 & wait".into(),
                rss: Some(220 * page),
                vsz: Some(650 * page),
                rss_anon: Some(100 * kb),
                swap: Some(12 * kb),
                minor_faults: Some(130),
                major_faults: Some(1),
                pss: Some(350 * kb),
            }
        );
        let s103 = &samples[2];
        assert_eq!(s103.cmdline, "node worker.js --max-old-space-size=64");
        assert_eq!((s103.rss, s103.vsz), (Some(12000 * page), Some(300000 * page)));
        assert_eq!((s103.rss_anon, s103.swap), (Some(40000 * kb), Some(512 * kb)));
        assert_eq!((s103.minor_faults, s103.major_faults), (Some(15339), Some(2)));
        let s104 = &samples[3];
        assert_eq!((s104.ppid, s104.cmdline.as_str()), (102, "sleep 5"));
        assert_eq!(s104.rss, Some(240 * page));

        // A second read: same figures, no changes; without smaps, no pss.
        let (again, errors, changes) = read(&mut tree, 1000, false);
        assert!(errors.is_empty() && changes.is_empty(), "{errors:?} {changes:?}");
        assert_eq!(again[1].pss, None);
        assert_eq!(again[1].rss, samples[1].rss);
    }

    #[test]
    fn fixture_with_children_files_direct_sees_3_tree_sees_4() {
        // 103 is listed only under thread 105's `children` file.
        check_fixture_figures(WITH, true);
    }

    #[test]
    fn fixture_without_children_files_scans_stat() {
        check_fixture_figures(WITHOUT, false);
    }

    #[test]
    fn a_child_whose_read_hangs_is_skipped_after_and_said_once() {
        let tree = TempTree::copy(WITH);
        // A FIFO stands in for a cmdline whose read blocks (a child in D state): open() waits
        // for a writer, which comes after 1.2 s.
        let fifo = tree.root().join("101/cmdline");
        fs::remove_file(&fifo).unwrap();
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1200));
            fs::write(&fifo, b"sleep\x0030\x00").unwrap();
        });
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
        let started = Instant::now();
        let (samples, errors, _) = read(&mut t, 1000, false);
        assert!(started.elapsed() >= SLOW_READ, "the FIFO held the read");
        writer.join().unwrap();
        assert_eq!(pids(&samples), [101, 102, 103]);
        let slow: Vec<_> = errors.iter().filter(|e| e.code() == "ETIMEDOUT").collect();
        assert_eq!(slow.len(), 1, "{errors:?}");
        assert!(
            slow[0].message.contains("child 101 is no longer read"),
            "{}",
            slow[0]
        );

        // From now on 101 is listed without figures and not read: no wait, the same error (one
        // key, so the sampler reports it once), the others read as before.
        let started = Instant::now();
        let (samples, errors, _) = read(&mut t, 2000, false);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(pids(&samples), [101, 102, 103]);
        assert_eq!(samples[0].rss, None);
        assert!(samples[1].rss.is_some() && samples[2].rss.is_some());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key(), slow[0].key());
    }

    #[test]
    fn a_removed_child_is_an_exit_and_its_files_are_closed() {
        for variant in [WITH, WITHOUT] {
            let tree = TempTree::copy(variant);
            let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
            let (samples, _, _) = read(&mut t, 1000, true);
            assert_eq!(pids(&samples), [101, 102, 103]);
            let dir101 = tree.root().join("101");
            assert_eq!(fds_under(&dir101), 4, "stat, statm, status, smaps_rollup");

            fs::remove_dir_all(&dir101).unwrap();
            if variant == WITH {
                tree.write("100/task/100/children", "102 ");
            }
            let (samples, errors, changes) = read(&mut t, 3500, true);
            assert!(errors.is_empty(), "{variant}: {errors:?}");
            assert_eq!(pids(&samples), [102, 103], "{variant}");
            assert_eq!(
                changes,
                [ChildChange::Exit {
                    pid: 101,
                    ppid: 100,
                    comm: "sleep".into(),
                    last_rss: Some(250 * page_size()),
                    seen_ms: 2500,
                }],
                "{variant}"
            );
            assert_eq!(fds_under(&dir101), 0, "{variant}: fds of the exited child closed");
            assert_eq!(t.tracked.len(), 2);
        }
    }

    #[test]
    fn a_child_listed_but_gone_before_its_stat_is_read_is_skipped_silently() {
        let tree = TempTree::copy(WITH);
        tree.write("100/task/100/children", "101 102 4321 ");
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Tree, 0);
        let (samples, errors, changes) = read(&mut t, 0, false);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(pids(&samples), [101, 102, 103, 104]);
        assert_eq!(spawn_of(4321, &changes), 0);
    }

    #[test]
    fn a_spawn_is_found_at_the_next_discovery() {
        for variant in [WITH, WITHOUT] {
            // Discovery every read: found at once.
            let tree = TempTree::copy(variant);
            let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
            read(&mut t, 0, false);
            tree.add_child(106, SELF, 7000);
            let (samples, _, changes) = read(&mut t, 1, false);
            assert_eq!(pids(&samples), [101, 102, 103, 106], "{variant}");
            assert_eq!(
                changes,
                [ChildChange::Spawn {
                    pid: 106,
                    ppid: 100,
                    comm: "sleep".into()
                }]
            );

            // Discovery every 10 s: known children are read, the new one waits.
            let tree = TempTree::copy(variant);
            let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 10_000);
            read(&mut t, 0, false);
            tree.add_child(106, SELF, 7000);
            let (samples, _, changes) = read(&mut t, 5_000, false);
            assert_eq!(pids(&samples), [101, 102, 103], "{variant}");
            assert!(changes.is_empty());
            let (samples, _, changes) = read(&mut t, 9_999, false);
            assert_eq!(samples.len(), 3);
            assert!(changes.is_empty());
            let (samples, _, changes) = read(&mut t, 10_000, false);
            assert_eq!(pids(&samples), [101, 102, 103, 106], "{variant}");
            assert_eq!(spawn_of(106, &changes), 1);
        }
    }

    #[test]
    fn between_discoveries_known_children_are_still_reread() {
        let tree = TempTree::copy(WITH);
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 10_000);
        read(&mut t, 0, false);
        tree.write("101/statm", "2071 300 230 4 0 84 0\n");
        let (samples, _, _) = read(&mut t, 100, false);
        assert_eq!(samples[0].rss, Some(300 * page_size()));
    }

    #[test]
    fn a_reused_pid_is_an_exit_then_a_spawn() {
        for variant in [WITH, WITHOUT] {
            for discover_every_ms in [0, 10_000] {
                let tree = TempTree::copy(variant);
                let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, discover_every_ms);
                read(&mut t, 0, false);
                // Same pid, same parent, a later start: another process.
                tree.write("101/stat", stat_line(101, "cat", SELF, 7, 9000));
                let (samples, errors, changes) = read(&mut t, 200, false);
                assert!(errors.is_empty(), "{errors:?}");
                assert_eq!(pids(&samples), [101, 102, 103]);
                assert_eq!(samples[0].comm, "cat");
                assert_eq!(
                    changes,
                    [
                        ChildChange::Exit {
                            pid: 101,
                            ppid: 100,
                            comm: "sleep".into(),
                            last_rss: Some(250 * page_size()),
                            seen_ms: 200,
                        },
                        ChildChange::Spawn {
                            pid: 101,
                            ppid: 100,
                            comm: "cat".into()
                        },
                    ],
                    "{variant} every {discover_every_ms}"
                );
                // The new child is seen from now on.
                tree.remove_child_for_test(101);
                let (_, _, changes) = read(&mut t, 10_500, false);
                assert!(
                    matches!(
                        exit_of(101, &changes),
                        Some(ChildChange::Exit { seen_ms: 10_300, .. })
                    ),
                    "{changes:?}"
                );
            }
        }
    }

    #[test]
    fn a_reused_pid_that_is_not_ours_is_an_exit_only() {
        let tree = TempTree::copy(WITHOUT);
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
        read(&mut t, 0, false);
        tree.write("101/stat", stat_line(101, "cron", 1, 7, 9000));
        let (samples, _, changes) = read(&mut t, 50, false);
        assert_eq!(pids(&samples), [102, 103]);
        assert_eq!(changes.len(), 1);
        assert!(exit_of(101, &changes).is_some());
    }

    #[test]
    fn tree_a_grandchild_reparented_away_is_an_exit() {
        for variant in [WITH, WITHOUT] {
            for discover_every_ms in [0, 10_000] {
                let tree = TempTree::copy(variant);
                let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Tree, discover_every_ms);
                read(&mut t, 0, false);
                // 104 goes to init. With discovery, 102 exits too (it is its removal that is
                // seen, by discovery: a fixture's open fd would still read a deleted file).
                // Without, 104's own `stat` shows the new parent.
                if discover_every_ms == 0 {
                    tree.remove_child_for_test(102);
                }
                tree.write("104/stat", stat_line(104, "sleep", 1, 90, 6010));
                let (samples, errors, changes) = read(&mut t, 10, false);
                assert!(errors.is_empty(), "{errors:?}");
                assert!(exit_of(104, &changes).is_some(), "{changes:?}");
                if discover_every_ms == 0 {
                    assert_eq!(pids(&samples), [101, 103], "{variant}");
                    assert!(exit_of(102, &changes).is_some());
                } else {
                    assert_eq!(pids(&samples), [101, 102, 103], "{variant}");
                    assert_eq!(changes.len(), 1);
                }
            }
        }
    }

    #[test]
    fn an_unreadable_stat_is_an_error_not_a_panic() {
        // As root, chmod 000 does not deny reads, and under hidepid=2 a hidden directory is just
        // ENOENT (an exit). What hidepid=1 gives, a `stat` that exists but cannot be read, is
        // produced here by making `stat` a directory: open succeeds, read fails with EISDIR.
        let tree = TempTree::copy(WITH);
        fs::remove_file(tree.root().join("101/stat")).unwrap();
        fs::create_dir(tree.root().join("101/stat")).unwrap();
        fs::remove_file(tree.root().join("102/cmdline")).unwrap();
        fs::create_dir(tree.root().join("102/cmdline")).unwrap();
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
        for mono in [0, 1000] {
            let (samples, errors, changes) = read(&mut t, mono, false);
            assert_eq!(pids(&samples), [101, 102, 103]);
            let s = &samples[0];
            // Known from the children file; comm unknown.
            assert_eq!((s.ppid, s.comm.as_str()), (100, ""));
            assert_eq!((s.minor_faults, s.major_faults), (None, None));
            assert_eq!(s.rss, Some(250 * page_size()));
            assert!(errors
                .iter()
                .any(|e| e.path.ends_with("101/stat")
                    && e.kind == ReadErrorKind::Io(io::ErrorKind::IsADirectory)));
            if mono == 0 {
                assert_eq!(
                    changes[0],
                    ChildChange::Spawn {
                        pid: 101,
                        ppid: 100,
                        comm: String::new()
                    }
                );
                assert!(
                    errors.iter().any(|e| e.path.ends_with("102/cmdline")),
                    "{errors:?}"
                );
                assert_eq!(samples[1].cmdline, "");
            } else {
                assert!(changes.is_empty());
            }
        }

        // Scan: a tracked child whose stat the scan cannot use stays tracked, with the error.
        // (Garbled in place: the tracker's open fd would go on reading a replaced file's old
        // content, where a real /proc fd fails.)
        let tree = TempTree::copy(WITHOUT);
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Tree, 0);
        read(&mut t, 0, false);
        tree.write("102/stat", "102 (sh) S");
        let (samples, errors, changes) = read(&mut t, 10, false);
        // 104 is not found by the walk (its parent's stat is unreadable) but is still 102's.
        assert_eq!(pids(&samples), [101, 102, 103, 104]);
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(samples[1].minor_faults, None);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn garbled_files_are_none_plus_errors_and_recover() {
        let tree = TempTree::copy(WITH);
        tree.write("100/task/105/children", "103 x7 ");
        tree.write("101/stat", "101 (sleep) S 100 100 14842 0 -1 4194560 lots");
        tree.write("102/statm", "650 two 200\n");
        tree.write("103/status", "Name:\tnode\nRssAnon:\t 12x kB\n");
        tree.write("103/smaps_rollup", "Pss: x kB\n");
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
        let (samples, errors, _) = read(&mut t, 0, true);
        assert_eq!(pids(&samples), [101, 102, 103]);
        let bad = |suffix: &str| {
            errors
                .iter()
                .any(|e| e.path.ends_with(suffix) && e.kind == ReadErrorKind::Parse)
        };
        assert!(
            bad("105/children") && bad("101/stat") && bad("102/statm"),
            "{errors:?}"
        );
        assert!(bad("103/status") && bad("103/smaps_rollup"), "{errors:?}");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert_eq!((samples[0].minor_faults, samples[0].rss.is_some()), (None, true));
        assert_eq!(
            (samples[1].rss, samples[1].vsz, samples[1].minor_faults),
            (None, None, Some(130))
        );
        assert_eq!(
            (samples[2].rss_anon, samples[2].swap, samples[2].pss),
            (None, None, None)
        );
        assert!(samples[2].rss.is_some());

        // Fixed: figures come back, and 101's late stat gives its comm.
        for rel in [
            "101/stat",
            "102/statm",
            "103/status",
            "103/smaps_rollup",
            "100/task/105/children",
        ] {
            fs::copy(fixture(WITH).join(rel), tree.root().join(rel)).unwrap();
        }
        let (samples, errors, changes) = read(&mut t, 10, true);
        assert!(errors.is_empty() && changes.is_empty(), "{errors:?} {changes:?}");
        assert_eq!(
            (samples[0].comm.as_str(), samples[0].minor_faults),
            ("sleep", Some(95))
        );
        assert_eq!(samples[0].cmdline, "sleep 5");
        assert!(samples
            .iter()
            .all(|s| s.rss.is_some() && s.rss_anon.is_some() && s.pss.is_some()));

        // Scan: a garbled stat from the start cannot say whose child it is: not found, no error.
        let tree = TempTree::copy(WITHOUT);
        tree.write("101/stat", "garbage");
        tree.write("103/statm", "");
        let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
        let (samples, errors, _) = read(&mut t, 0, false);
        assert_eq!(pids(&samples), [102, 103]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].path.ends_with("103/statm"));
    }

    #[test]
    fn the_cap_ignores_extras_and_counts_each_once() {
        let dir = TempTree::copy(WITHOUT);
        let n = MAX_CHILDREN as u32 + 6;
        for pid in 1000..1000 + n {
            dir.write(&format!("{pid}/stat"), stat_line(pid, "w", SELF, 1, 8000));
        }
        let mut t = ChildrenTracker::new(dir.root(), SELF, ChildrenMode::Direct, 0);
        let (samples, _, changes) = read(&mut t, 0, false);
        assert_eq!(samples.len(), MAX_CHILDREN);
        assert_eq!(changes.len(), MAX_CHILDREN);
        assert_eq!(t.dropped(), 3 + 6);
        let (samples, _, changes) = read(&mut t, 1, false);
        assert_eq!(samples.len(), MAX_CHILDREN);
        assert!(changes.is_empty());
        assert_eq!(t.dropped(), 9, "counted once per child");
    }

    #[test]
    fn esrch_and_enoent_read_errors_count_as_gone() {
        let p = Path::new("/proc/1/stat");
        assert!(is_gone(&ReadError::io(
            p,
            &io::Error::from_raw_os_error(libc::ESRCH)
        )));
        assert!(is_gone(&ReadError::io(
            p,
            &io::Error::from_raw_os_error(libc::ENOENT)
        )));
        assert!(!is_gone(&ReadError::io(
            p,
            &io::Error::from_raw_os_error(libc::EACCES)
        )));
        assert!(!is_gone(&ReadError::io(
            p,
            &io::Error::from_raw_os_error(libc::EIO)
        )));
        assert!(!is_gone(&ReadError::parse(p, "(os error 3)")));
    }

    #[test]
    fn cmdline_and_pid_parsing() {
        let tree = TempTree::copy(WITH);
        let long = vec![b'a'; 300];
        tree.write("101/cmdline", [b"x\0\0".as_slice(), &long].concat());
        let mut errors = Vec::new();
        let s = read_cmdline(&tree.root().join("101"), &mut errors);
        assert_eq!(s.len(), 256);
        assert!(s.starts_with("x  aaa"));
        tree.write("101/cmdline", b"sleep\x005\x00\x00");
        assert_eq!(read_cmdline(&tree.root().join("101"), &mut errors), "sleep 5");
        assert_eq!(read_cmdline(&tree.root().join("nope"), &mut errors), "");
        assert!(errors.is_empty());
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"+1"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"99999999999"), None);
        assert_eq!(parse_pid(b"self"), None);
    }

    // -------------------------------------------------------------------------------------------
    // Live

    /// Children spawned by a test, killed and reaped on drop (with any grandchild).
    struct Kids(Vec<Child>, Vec<u32>);

    impl Drop for Kids {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
            for &pid in &self.1 {
                // SAFETY: kill has no memory preconditions; pid is a grandchild we started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }

    fn sleep_child(cmd: &str, args: &[&str]) -> Child {
        Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn statm_rss(pid: u32) -> u64 {
        let text = fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
        text.split(' ').nth(1).unwrap().parse::<u64>().unwrap() * page_size()
    }

    fn state_of(pid: u32) -> Option<char> {
        let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s[s.rfind(')')? + 1..].trim_start().chars().next()
    }

    fn comm_of(pid: u32) -> String {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    fn live(children_files: Option<bool>) {
        let self_pid = std::process::id();
        let mut kids = Kids(
            vec![
                sleep_child("sleep", &["5"]),
                sleep_child("sleep", &["5"]),
                sleep_child("sh", &["-c", "sleep 5 & wait"]),
            ],
            Vec::new(),
        );
        let ours: Vec<u32> = kids.0.iter().map(Child::id).collect();
        let mine = |samples: &[ChildSample]| -> Vec<ChildSample> {
            samples
                .iter()
                .filter(|s| ours.contains(&s.pid) || s.ppid == ours[2])
                .cloned()
                .collect()
        };
        let new = |mode| {
            let mut t = ChildrenTracker::new(Path::new("/proc"), self_pid, mode, 0);
            if let Some(files) = children_files {
                t.force_method(files);
            }
            t
        };

        // Settled: exec'd and asleep, so rss no longer moves while the loader maps libraries.
        let deadline = Instant::now() + Duration::from_secs(3);
        for (pid, comm) in ours.iter().zip(["sleep", "sleep", "sh"]) {
            while state_of(*pid) != Some('S') || comm_of(*pid) != comm {
                assert!(Instant::now() < deadline, "{pid} never settled");
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        let mut direct = new(ChildrenMode::Direct);
        let (samples, errors, _) = read(&mut direct, 0, true);
        assert_eq!(direct.uses_children_files(), Some(children_files.unwrap_or(true)));
        let own: Vec<_> = errors
            .iter()
            .filter(|e| ours.iter().any(|p| e.path.starts_with(format!("/proc/{p}"))))
            .collect();
        assert!(own.is_empty(), "{own:?}");
        let direct_mine = mine(&samples);
        let mut sorted = ours.clone();
        sorted.sort_unstable();
        assert_eq!(
            pids(&direct_mine),
            sorted,
            "Direct sees exactly our 3 (and no grandchild)"
        );
        for s in &direct_mine {
            assert_eq!(s.ppid, self_pid);
            let real = statm_rss(s.pid);
            let rss = s.rss.unwrap();
            assert!(rss.abs_diff(real) * 10 <= real, "pid {}: {rss} vs {real}", s.pid);
            assert!(s.vsz.unwrap() >= rss && s.minor_faults.is_some() && s.rss_anon.is_some());
            assert!(s.pss.is_some());
        }

        // Tree: wait for sh to fork its sleep.
        let mut tree = new(ChildrenMode::Tree);
        let deadline = Instant::now() + Duration::from_secs(3);
        let grandchild = loop {
            let (samples, _, _) = read(&mut tree, 0, false);
            if let Some(g) = samples.iter().find(|s| s.ppid == ours[2]) {
                break g.clone();
            }
            assert!(Instant::now() < deadline, "no grandchild under sh");
            std::thread::sleep(Duration::from_millis(10));
        };
        kids.1.push(grandchild.pid);
        let (samples, _, _) = read(&mut tree, 0, false);
        for pid in &ours {
            assert!(samples.iter().any(|s| s.pid == *pid), "Tree sees child {pid} too");
        }
        // It may be caught between fork and exec, as "sh" with sh's command line; the exec
        // changes its comm, which re-reads the command line.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let (samples, _, _) = read(&mut tree, 0, false);
            let g = samples
                .iter()
                .find(|s| s.pid == grandchild.pid)
                .expect("grandchild tracked");
            if g.comm == "sleep" {
                assert_eq!(g.cmdline, "sleep 5");
                break;
            }
            assert_eq!(g.comm, "sh");
            assert!(Instant::now() < deadline, "grandchild never exec'd");
            std::thread::sleep(Duration::from_millis(10));
        }

        // Kill one: a zombie until reaped (listed, no errors even with smaps), then an Exit.
        kids.0[0].kill().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while state_of(ours[0]) != Some('Z') {
            assert!(Instant::now() < deadline, "not a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (samples, errors, changes) = read(&mut direct, 100, true);
        assert!(exit_of(ours[0], &changes).is_none());
        let zombie = samples
            .iter()
            .find(|s| s.pid == ours[0])
            .expect("zombie still a child");
        assert_eq!(zombie.rss, Some(0));
        assert!(
            !errors
                .iter()
                .any(|e| e.path.starts_with(format!("/proc/{}", ours[0]))),
            "{errors:?}"
        );

        kids.0[0].wait().unwrap();
        let (samples, _, changes) = read(&mut direct, 250, true);
        assert!(!samples.iter().any(|s| s.pid == ours[0]));
        match exit_of(ours[0], &changes) {
            Some(ChildChange::Exit {
                ppid,
                comm,
                last_rss,
                seen_ms,
                ..
            }) => {
                assert_eq!((*ppid, comm.as_str(), *seen_ms), (self_pid, "sleep", 250));
                assert!(last_rss.unwrap() > 0, "the zombie's zeros are not kept");
            }
            other => panic!("no Exit: {other:?} in {changes:?}"),
        }
        // Its reader (open fds) is dropped. (Counting /proc/self/fd would race with the other
        // live test, whose tracker also sees this process's children.)
        assert!(!direct.tracked.contains_key(&ours[0]));
    }

    #[test]
    fn live_children_with_the_method_this_kernel_has() {
        live(None);
    }

    #[test]
    fn live_children_by_scan() {
        live(Some(false));
    }

    #[test]
    #[ignore = "micro-benchmark: cargo test --release bench_50_children -- --ignored --nocapture"]
    fn bench_50_children() {
        let kids = Kids(
            (0..50).map(|_| sleep_child("sleep", &["60"])).collect(),
            Vec::new(),
        );
        let self_pid = std::process::id();
        let procs = fs::read_dir("/proc")
            .unwrap()
            .filter(|e| parse_pid(e.as_ref().unwrap().file_name().as_encoded_bytes()).is_some())
            .count();
        println!("50 children, {procs} processes in /proc");
        for (label, files) in [("children files", true), ("scan", false)] {
            for (every, with_smaps) in [(1, false), (10, false), (1, true), (10, true)] {
                let mut t = ChildrenTracker::new(Path::new("/proc"), self_pid, ChildrenMode::Direct, every);
                t.force_method(files);
                let mut errors = Vec::new();
                let mut changes = Vec::new();
                let n = 500u64;
                // Warm: open every child's files.
                let first = t.read(0, with_smaps, &mut errors, &mut changes);
                assert_eq!(
                    first
                        .iter()
                        .filter(|s| kids.0.iter().any(|k| k.id() == s.pid))
                        .count(),
                    50
                );
                let start = Instant::now();
                for i in 1..=n {
                    // mono_ms advances 1 per read: discovery every `every`th read.
                    let s = t.read(i, with_smaps, &mut errors, &mut changes);
                    assert!(s.len() >= 50);
                }
                let mean_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
                println!(
                    "{label:>14}: discovery every {every:>2} read(s), smaps {with_smaps:>5}: {mean_us:8.1} µs/read"
                );
            }
        }
    }
}
