//! Child processes of the watched process: discovery, per-child memory figures, spawn/exit changes.
//!
//! This file holds the types and the tracker (identity, spawn and exit); `discover.rs` finds which
//! children exist, `read.rs` reads each known child.
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
//! heap); the bench test in `tests.rs` measures about 0.7 ms per read for 50 children without smaps.
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
//! empty, since a child caught between fork and exec still shows the parent's command. (An exec
//! of a program with the same name as the parent, node spawning node, keeps the parent's
//! command line.) The `comm` of a Spawn is the one seen first, so a child caught before its
//! exec is announced with the parent's `comm`; samples show the current one.
//!
//! # Limits
//!
//! At most [`MAX_CHILDREN`] (1024) children are tracked, each holding up to four open fds
//! (`stat`, `statm`, `status`, and `smaps_rollup` when asked). Further children are ignored for
//! their whole life (no Spawn, no sample) and counted once each in [`ChildrenTracker::dropped`];
//! their descendants are still walked in Tree mode. While any is left out, one error
//! (`ERR_MEMSENTRY_TOO_MANY_CHILDREN`) goes with every reading: the sums undercount.

mod discover;
mod read;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
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
    /// Set when a read of its files took [`SLOW_READ`] or more: see [`Stall`].
    stalled: Option<Stall>,
}

/// A child whose files took this long to read (a process in D state, a hung NFS mount under its
/// `cmdline` or `smaps_rollup`) is skipped for a while, so one stuck child does not stall every
/// tick.
pub const SLOW_READ: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a slow child is skipped before it is read again; doubled each time the read is slow
/// again, up to [`STALL_RETRY_MAX_MS`]. Not for good: a read slowed once by memory pressure (a
/// large child's `smaps_rollup` waiting on its mm lock) would otherwise drop that child from the
/// tree's figures for the rest of its life, and the tree would seem to shrink.
pub const STALL_RETRY_FIRST_MS: u64 = 60_000;
/// The longest a slow child is skipped: one blocked tick per half hour for a child stuck for good.
pub const STALL_RETRY_MAX_MS: u64 = 30 * 60_000;

/// A child skipped after a slow read: listed with no figures until `retry_ms`, its error going
/// out with every reading (the sampler says it once); then read once more.
#[derive(Debug, Clone)]
struct Stall {
    error: ReadError,
    /// `mono_ms` from which it is read again.
    retry_ms: u64,
    /// The wait that set `retry_ms`.
    backoff_ms: u64,
}

impl Stall {
    /// The wait after a slow read, given the one before (None: the first slow read).
    fn next_backoff(previous_ms: Option<u64>) -> u64 {
        previous_ms.map_or(STALL_RETRY_FIRST_MS, |b| {
            b.saturating_mul(2).min(STALL_RETRY_MAX_MS)
        })
    }
}

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
        if !self.ignored.is_empty() {
            // With every reading while some are left out (the sampler says it once).
            errors.push(ReadError {
                path: self.proc_root.join(self.self_pid.to_string()),
                kind: ReadErrorKind::TooManyChildren,
                os_error: None,
                message: format!(
                    "more than {MAX_CHILDREN} children: {} are not read, and childrenRss, treeRss \
                     and treePss leave them out",
                    self.ignored.len()
                ),
            });
        }
        self.read_tracked(mono_ms, with_smaps, errors, changes)
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

/// ENOENT or ESRCH: the process (or thread) exited. Normal under discovery and reading.
fn io_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// [`io_gone`] for a `ReadError`, by the errno it kept.
fn is_gone(e: &ReadError) -> bool {
    e.kind == ReadErrorKind::Io(io::ErrorKind::NotFound) || e.os_error == Some(libc::ESRCH)
}

/// A decimal pid (no sign, no leading junk), as in proc directory names and `children` files.
fn parse_pid(bytes: &[u8]) -> Option<u32> {
    crate::procfs::decimal::parse_u64(bytes).and_then(|n| u32::try_from(n).ok())
}

fn to_pid(ppid: i32) -> u32 {
    u32::try_from(ppid).unwrap_or(0)
}

#[cfg(test)]
mod tests;
