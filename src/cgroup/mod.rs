//! The process's own memory cgroup, v2 or v1: found once from procfs, then read every tick.
//!
//! This file holds the types and the per-tick read; `discover.rs` finds the directory once and
//! `formats.rs` parses each cgroup file.
//!
//! # Discovery
//!
//! [`CgroupReader::discover`] reads `<proc_root>/<pid>/cgroup` and `<proc_root>/<pid>/mountinfo`
//! once (parsed by hand: lines that don't parse are skipped, paths may be any bytes, and the
//! mountinfo octal escapes such as `\040` are decoded).
//!
//! * v1 is the line whose controller list contains `memory` (`4:memory:/path`). The v2 line
//!   (`0::/path`) is used only when no v1 memory controller exists: on a hybrid host the unified
//!   hierarchy has no memory controller.
//! * The directory is the mount point of a `cgroup` fs with the `memory` super option (v1) or of
//!   the `cgroup2` fs (v2), joined with the cgroup path minus the mount's root field. When the
//!   root is not a prefix of the path, or the joined directory does not exist (a container whose
//!   cgroup is bind-mounted at the mount point while `/proc/self/cgroup` shows the host path, as
//!   runc does), the mount point itself is used. Among several candidate mounts the one with the
//!   longest matching root wins. "Exists" means the directory holds the usage file
//!   (`memory.current` / `memory.usage_in_bytes`). A cgroup whose parent did not enable the memory
//!   controller has none: its nearest ancestor below the mount point that has one is read (the
//!   kernel charges that one). The v2 root cgroup has none either, and gives `Ok(None)`.
//! * v2 ancestors up to the mount point that have a `memory.max` are kept too: the kernel enforces
//!   each of their limits, so `limit` and `high` are the smallest on the way up. Under a cgroup
//!   namespace nothing above its root can be seen.
//! * With `sys_root: Some(root)`, mount points are taken relative to `root` (`/sys/fs/cgroup`
//!   becomes `root/sys/fs/cgroup`), so a fixture tree can hold a fake `/sys`.
//!
//! # Reading
//!
//! Every file read per tick is a [`ProcFile`] opened once and re-read with `pread`; the parsers
//! work on the bytes in place (no allocation unless something fails) and never panic. A file
//! that cannot be read or parsed leaves all the fields it feeds `None` and adds one
//! [`ReadError`]; the next tick tries again (a [`ProcFile`] reopens after an I/O error, so a
//! cgroup that is removed and recreated is picked up again: kernfs fails reads on the old
//! descriptors with `ENODEV`, then the path is `NotFound` until it returns).
//!
//! * `working_set` = usage − inactive_file, floored at 0 (as cAdvisor and the kubelet do).
//! * v1 `memory.stat`: the hierarchical `total_*` counters are preferred (they match the
//!   hierarchical `memory.usage_in_bytes`), falling back to the local ones on kernels without them.
//! * v1 limits at or above 2^62 mean "unlimited" (the kernel reports 9223372036854771712). The
//!   limit is the smaller of `memory.limit_in_bytes` and `memory.stat`'s
//!   `hierarchical_memory_limit`, the kernel's smallest on the way up.
//!
//! ## `oom_events`
//!
//! * v2: `oom_kill` of `memory.events` when the kernel has it (4.13+), else its `oom` (times the
//!   cgroup hit OOM, a superset of the kills), chosen once as for v1 below.
//! * v1: `oom_kill` of `memory.oom_control` when the kernel has it (4.13+), else
//!   `memory.failcnt`. The choice is made once, by the first `memory.oom_control` that parses,
//!   and then kept, so a garbled read can never switch counters and fake a rise in [`oom_rose`].
//!   Note that `failcnt` counts every time usage hit the limit (reclaim was forced), which is a
//!   superset of OOM kills: on old kernels `oom_rose` means "hit the limit".
//!
//! ## `pressure`
//!
//! The source is resolved on the first read that finds the cgroup directory, then kept:
//! `<dir>/memory.pressure` if it exists (always, on a v2 kernel with PSI; v1 hierarchies usually
//! lack it), else the system-wide `<proc_root>/pressure/memory`, else nothing. "Missing" includes
//! `EOPNOTSUPP`, which is what PSI files return when the kernel was booted with PSI disabled.
//! When neither exists, `pressure` is `None` and **no error is reported at all**: a kernel without
//! PSI is a normal configuration, not a failure. Once a source is chosen, its read and parse
//! failures are reported like any other file's.

mod discover;
mod formats;

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::procfs::proc_file::{read_bounded, ProcFile};
use crate::procfs::read_error::{ReadError, ReadErrorKind};
use discover::*;
use formats::*;

/// v1 reports "unlimited" as a huge page-aligned value (9223372036854771712 on 4 KiB pages).
const V1_UNLIMITED: u64 = 1 << 62;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Pressure stall information ("some" and "full" lines), percentages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some_avg10: f64,
    pub some_avg60: f64,
    /// `None` when the file has no "full" line.
    pub full_avg10: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CgroupSample {
    pub version: CgroupVersion,
    /// bytes
    pub usage: Option<u64>,
    /// bytes; None when unlimited or unreadable
    pub limit: Option<u64>,
    /// v2 memory.high; None when "max" or v1
    pub high: Option<u64>,
    pub working_set: Option<u64>,
    pub inactive_file: Option<u64>,
    pub anon: Option<u64>,
    pub file: Option<u64>,
    /// memory.events (v2) or memory.oom_control (v1) oom_kill if the kernel has it, else v2's
    /// oom or v1's memory.failcnt (see the module docs).
    pub oom_events: Option<u64>,
    /// v1 only (memory.oom_control under_oom).
    pub under_oom: Option<bool>,
    pub pressure: Option<Pressure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PressureSource {
    /// Not decided yet (the cgroup directory has not been seen).
    Unresolved,
    Cgroup,
    System,
    /// Neither file exists: `pressure` stays None, silently.
    Unavailable,
}

/// Which counter `oom_events` is, chosen by the first read that parses and then kept, so that a
/// garbled read can never switch counters and fake a rise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OomSource {
    Unknown,
    /// `oom_kill` (v2 `memory.events`, v1 `memory.oom_control`; kernels 4.13 and later).
    OomKill,
    /// Before 4.13: v2 `memory.events`'s `oom`, v1 `memory.failcnt`.
    Fallback,
}

impl OomSource {
    /// Settles on a counter at the first read that parsed; `kill_seen`: whether it had oom_kill.
    fn choose(&mut self, kill_seen: Option<bool>) {
        if let (OomSource::Unknown, Some(kill)) = (*self, kill_seen) {
            *self = if kill {
                OomSource::OomKill
            } else {
                OomSource::Fallback
            };
        }
    }
}

/// Reads one memory cgroup directory. Build it with [`CgroupReader::discover`] or
/// [`CgroupReader::at`]; then call [`CgroupReader::read`] every tick.
#[derive(Debug)]
pub struct CgroupReader {
    dir: PathBuf,
    version: CgroupVersion,
    /// v2 memory.current, v1 memory.usage_in_bytes
    usage: ProcFile,
    /// v2 memory.max, v1 memory.limit_in_bytes
    limit: ProcFile,
    /// v2 memory.high
    high: Option<ProcFile>,
    stat: ProcFile,
    /// v2 memory.events, v1 memory.oom_control
    events: ProcFile,
    /// v1 memory.failcnt (read only when the kernel's oom_control has no oom_kill)
    failcnt: Option<ProcFile>,
    oom_source: OomSource,
    cgroup_pressure: ProcFile,
    system_pressure: ProcFile,
    pressure_source: PressureSource,
    /// Set by discovery when the directory read is a fallback that may not be this process's.
    fallback: Option<ReadError>,
    /// v2: the ancestors with limit files, up to the mount point (see `limit_ancestors`).
    ancestors: Vec<AncestorLimits>,
}

/// An ancestor cgroup's v2 `memory.max` and `memory.high`, read every tick beside the cgroup's
/// own: the limit that applies is the smallest on the way up.
#[derive(Debug)]
struct AncestorLimits {
    max: ProcFile,
    high: ProcFile,
}

impl CgroupReader {
    /// Finds the memory cgroup of `pid` ("self" normally) from `<proc_root>/<pid>/cgroup` and
    /// `<proc_root>/<pid>/mountinfo`, with mount points rebased under `sys_root` when given.
    ///
    /// `Ok(None)` when the process has no memory cgroup that can be found: no cgroup file
    /// (`NotFound`), no memory line, no matching mount, or no existing directory. `Err` when a
    /// file exists but cannot be read (including a missing mountinfo once a memory cgroup line
    /// was found).
    pub fn discover(
        proc_root: &Path,
        pid: &str,
        sys_root: Option<&Path>,
    ) -> Result<Option<CgroupReader>, ReadError> {
        let pid_dir = proc_root.join(pid);
        let cgroup_path = pid_dir.join("cgroup");
        let cgroup = match read_bounded(&cgroup_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ReadError::io(&cgroup_path, &e)),
        };
        let Some((version, cg_path)) = find_memory_cgroup(&cgroup) else {
            return Ok(None);
        };
        let mountinfo_path = pid_dir.join("mountinfo");
        let mountinfo = read_bounded(&mountinfo_path).map_err(|e| ReadError::io(&mountinfo_path, &e))?;
        let mounts = cgroup_mounts(&mountinfo, version);
        let usage_file = match version {
            CgroupVersion::V2 => "memory.current",
            CgroupVersion::V1 => "memory.usage_in_bytes",
        };
        let dir = resolve_dir(&cg_path, &mounts, sys_root, usage_file);
        // A '..' (the process sits outside its cgroup namespace's root) can never be joined
        // under a mount: the directory found is then a mount point's cgroup, someone else's,
        // whose limit would drive `limit: 'auto'`. It is read all the same, and said once.
        let escapes = cg_path.components().any(|c| c == Component::ParentDir);
        Ok(dir.map(|(dir, base)| {
            let mut reader = Self::at(&dir, version, proc_root);
            if version == CgroupVersion::V2 {
                reader.ancestors = limit_ancestors(&dir, &base, "memory.max")
                    .into_iter()
                    .map(|up| AncestorLimits {
                        max: ProcFile::new(up.join("memory.max")),
                        high: ProcFile::new(up.join("memory.high")),
                    })
                    .collect();
            }
            if escapes {
                reader.fallback = Some(ReadError::parse(
                    &cgroup_path,
                    format!(
                        "the memory cgroup path {} leaves the cgroup mount (outside this cgroup \
                         namespace); reading {} instead, whose usage and limit may not be this \
                         process's: set the limit option to a size",
                        cg_path.display(),
                        dir.display()
                    ),
                ));
            }
            reader
        }))
    }

    /// Why the directory read may not be this process's cgroup (a fallback), if it may not be.
    pub fn fallback(&self) -> Option<&ReadError> {
        self.fallback.as_ref()
    }

    /// A reader for a known cgroup directory. `proc_root` is only used for the system-wide
    /// pressure fallback (`<proc_root>/pressure/memory`). Nothing is opened until the first read.
    pub fn at(dir: &Path, version: CgroupVersion, proc_root: &Path) -> CgroupReader {
        let file = |name: &str| ProcFile::new(dir.join(name));
        let (usage, limit, high, events, failcnt) = match version {
            CgroupVersion::V2 => (
                file("memory.current"),
                file("memory.max"),
                Some(file("memory.high")),
                file("memory.events"),
                None,
            ),
            CgroupVersion::V1 => (
                file("memory.usage_in_bytes"),
                file("memory.limit_in_bytes"),
                None,
                file("memory.oom_control"),
                Some(file("memory.failcnt")),
            ),
        };
        CgroupReader {
            dir: dir.to_path_buf(),
            version,
            usage,
            limit,
            high,
            stat: file("memory.stat"),
            events,
            failcnt,
            oom_source: OomSource::Unknown,
            cgroup_pressure: file("memory.pressure"),
            system_pressure: ProcFile::new(proc_root.join("pressure").join("memory")),
            pressure_source: PressureSource::Unresolved,
            fallback: None,
            ancestors: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Reads every file; a file that fails leaves its fields None and adds a ReadError.
    pub fn read(&mut self, errors: &mut Vec<ReadError>) -> CgroupSample {
        match self.version {
            CgroupVersion::V2 => self.read_v2(errors),
            CgroupVersion::V1 => self.read_v1(errors),
        }
    }

    fn read_v2(&mut self, errors: &mut Vec<ReadError>) -> CgroupSample {
        let usage = read_parsed(&mut self.usage, errors, parse_u64_file);
        // Outer None: a file on the way up failed, and the smallest limit is not known (a larger
        // one found elsewhere would be wrong, and on the unsafe side).
        let mut limit = read_parsed(&mut self.limit, errors, parse_max_file);
        let mut high = match self.high.as_mut() {
            Some(f) => read_parsed(f, errors, parse_max_file),
            None => Some(None),
        };
        for up in &mut self.ancestors {
            let (max_up, high_up) = (
                read_parsed(&mut up.max, errors, parse_max_file),
                read_parsed(&mut up.high, errors, parse_max_file),
            );
            limit = limit.zip(max_up).map(|(a, b)| smaller(a, b));
            high = high.zip(high_up).map(|(a, b)| smaller(a, b));
        }
        let (limit, high) = (limit.flatten(), high.flatten());
        let stat = read_parsed(&mut self.stat, errors, parse_stat_v2);
        let need_kill = self.oom_source == OomSource::OomKill;
        let events = read_parsed(&mut self.events, errors, |b| parse_events_v2(b, need_kill));
        self.oom_source.choose(events.map(|(kill, _)| kill.is_some()));
        // Before 4.13, `oom` (the cgroup hit OOM) stands in for the kills, as failcnt does on v1.
        let oom_events = match self.oom_source {
            OomSource::OomKill => events.and_then(|(kill, _)| kill),
            OomSource::Fallback => events.and_then(|(_, oom)| oom),
            OomSource::Unknown => None,
        };
        let pressure = self.read_pressure(errors);
        CgroupSample {
            limit,
            high,
            oom_events,
            pressure,
            ..stat_sample(CgroupVersion::V2, usage, stat)
        }
    }

    fn read_v1(&mut self, errors: &mut Vec<ReadError>) -> CgroupSample {
        let usage = read_parsed(&mut self.usage, errors, parse_u64_file);
        let limit = read_parsed(&mut self.limit, errors, parse_v1_limit);
        let stat = read_parsed(&mut self.stat, errors, parse_stat_v1);
        // The kernel's own figure for the smallest limit on the way up (a parent's counts too);
        // without memory.stat it is not known.
        let limit = limit
            .zip(stat)
            .and_then(|(own, s)| smaller(own, s.hierarchical_limit));
        let need_kill = self.oom_source == OomSource::OomKill;
        let oom_control = read_parsed(&mut self.events, errors, |b| parse_oom_control(b, need_kill));
        self.oom_source
            .choose(oom_control.map(|(_, kill)| kill.is_some()));
        let oom_events = match (self.oom_source, self.failcnt.as_mut()) {
            (OomSource::OomKill, _) => oom_control.and_then(|(_, kill)| kill),
            (OomSource::Fallback, Some(f)) => read_parsed(f, errors, parse_u64_file),
            _ => None,
        };
        let under_oom = oom_control.map(|(under, _)| under);
        let pressure = self.read_pressure(errors);
        CgroupSample {
            limit,
            oom_events,
            under_oom,
            pressure,
            ..stat_sample(CgroupVersion::V1, usage, stat)
        }
    }

    fn read_pressure(&mut self, errors: &mut Vec<ReadError>) -> Option<Pressure> {
        match self.pressure_source {
            PressureSource::Cgroup => read_parsed(&mut self.cgroup_pressure, errors, parse_pressure),
            PressureSource::System => read_parsed(&mut self.system_pressure, errors, parse_pressure),
            PressureSource::Unavailable => None,
            PressureSource::Unresolved => self.resolve_pressure(errors),
        }
    }

    /// First read(s): pick the cgroup file, the system file or nothing (see the module docs).
    /// A file that reads is chosen even if it does not parse (that is its error to report).
    fn resolve_pressure(&mut self, errors: &mut Vec<ReadError>) -> Option<Pressure> {
        let err = match self.cgroup_pressure.read_parsed(parse_pressure) {
            Err(e) if e.kind != ReadErrorKind::Parse => e,
            read => {
                self.pressure_source = PressureSource::Cgroup;
                return keep(read, errors);
            }
        };
        if !is_absent(&err) || !self.dir.is_dir() {
            // The whole directory is gone (or unreadable): undecided, try again next tick.
            errors.push(err);
            return None;
        }
        let err = match self.system_pressure.read_parsed(parse_pressure) {
            Err(e) if e.kind != ReadErrorKind::Parse => e,
            read => {
                self.pressure_source = PressureSource::System;
                return keep(read, errors);
            }
        };
        if is_absent(&err) {
            self.pressure_source = PressureSource::Unavailable;
        } else {
            errors.push(err);
        }
        None
    }
}

/// The smaller of two limits, where None is "unlimited" (or unknown).
fn smaller(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// True when `oom_events` rose between two samples (the sampler emits an 'oom' event).
/// False when either is unknown or the counter went down (a recreated cgroup).
pub fn oom_rose(prev: &CgroupSample, next: &CgroupSample) -> bool {
    matches!((prev.oom_events, next.oom_events), (Some(a), Some(b)) if b > a)
}

/// A sample with usage and the memory.stat fields set (working set derived), the rest None.
fn stat_sample(version: CgroupVersion, usage: Option<u64>, stat: Option<Stat>) -> CgroupSample {
    let inactive_file = stat.map(|s| s.inactive_file);
    CgroupSample {
        version,
        usage,
        limit: None,
        high: None,
        working_set: match (usage, inactive_file) {
            (Some(u), Some(i)) => Some(u.saturating_sub(i)),
            _ => None,
        },
        inactive_file,
        anon: stat.map(|s| s.anon),
        file: stat.map(|s| s.file),
        oom_events: None,
        under_oom: None,
        pressure: None,
    }
}

/// A missing file, or a PSI file of a kernel booted with PSI disabled.
fn is_absent(e: &ReadError) -> bool {
    e.kind == ReadErrorKind::Io(io::ErrorKind::NotFound) || e.os_error == Some(libc::EOPNOTSUPP)
}

type Parsed<T> = Result<T, &'static str>;

/// The file's value, or `None` with its failure added to `errors`.
fn read_parsed<T>(
    file: &mut ProcFile,
    errors: &mut Vec<ReadError>,
    parse: impl FnOnce(&[u8]) -> Parsed<T>,
) -> Option<T> {
    keep(file.read_parsed(parse), errors)
}

fn keep<T>(read: Result<T, ReadError>, errors: &mut Vec<ReadError>) -> Option<T> {
    read.map_err(|e| errors.push(e)).ok()
}

#[cfg(test)]
mod tests;
