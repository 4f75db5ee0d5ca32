//! The process's own memory cgroup, v2 or v1: found once from procfs, then read every tick.
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
//!   (`memory.current` / `memory.usage_in_bytes`): a v2 root cgroup, or a cgroup whose parent did
//!   not enable the memory controller, has no memory files and gives `Ok(None)`.
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
//! * v1 limits at or above 2^62 mean "unlimited" (the kernel reports 9223372036854771712).
//!
//! ## `oom_events`
//!
//! * v2: `oom_kill` of `memory.events` (required; a file without it is a parse error).
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

use std::cmp::Reverse;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::procfs::proc_file::ProcFile;
use crate::procfs::read_error::ReadError;

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
    /// v2: memory.events oom_kill; v1: memory.oom_control oom_kill if the kernel has it, else
    /// memory.failcnt (see the module docs).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1OomSource {
    Unknown,
    OomKill,
    Failcnt,
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
    v1_oom_source: V1OomSource,
    cgroup_pressure: ProcFile,
    system_pressure: ProcFile,
    pressure_source: PressureSource,
    /// Set by discovery when the directory read is a fallback that may not be this process's.
    fallback: Option<ReadError>,
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
        let cgroup = match std::fs::read(&cgroup_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ReadError::io(&cgroup_path, &e)),
        };
        let Some((version, cg_path)) = find_memory_cgroup(&cgroup) else {
            return Ok(None);
        };
        let mountinfo_path = pid_dir.join("mountinfo");
        let mountinfo = std::fs::read(&mountinfo_path).map_err(|e| ReadError::io(&mountinfo_path, &e))?;
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
        Ok(dir.map(|dir| {
            let mut reader = Self::at(&dir, version, proc_root);
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
            v1_oom_source: V1OomSource::Unknown,
            cgroup_pressure: file("memory.pressure"),
            system_pressure: ProcFile::new(proc_root.join("pressure").join("memory")),
            pressure_source: PressureSource::Unresolved,
            fallback: None,
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
        let limit = read_parsed(&mut self.limit, errors, parse_max_file).flatten();
        let high = match self.high.as_mut() {
            Some(f) => read_parsed(f, errors, parse_max_file).flatten(),
            None => None,
        };
        let stat = read_parsed(&mut self.stat, errors, parse_stat_v2);
        let oom_events = read_parsed(&mut self.events, errors, parse_events_v2);
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
        let limit = read_parsed(&mut self.limit, errors, parse_v1_limit).flatten();
        let stat = read_parsed(&mut self.stat, errors, parse_stat_v1);
        let need_kill = self.v1_oom_source == V1OomSource::OomKill;
        let oom_control = read_parsed(&mut self.events, errors, |b| parse_oom_control(b, need_kill));
        if let (V1OomSource::Unknown, Some((_, kill))) = (self.v1_oom_source, oom_control) {
            self.v1_oom_source = if kill.is_some() {
                V1OomSource::OomKill
            } else {
                V1OomSource::Failcnt
            };
        }
        let oom_events = match (self.v1_oom_source, self.failcnt.as_mut()) {
            (V1OomSource::OomKill, _) => oom_control.and_then(|(_, kill)| kill),
            (V1OomSource::Failcnt, Some(f)) => read_parsed(f, errors, parse_u64_file),
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
    fn resolve_pressure(&mut self, errors: &mut Vec<ReadError>) -> Option<Pressure> {
        let err = match self.cgroup_pressure.read() {
            Ok(bytes) => {
                let parsed = parse_pressure(bytes);
                self.pressure_source = PressureSource::Cgroup;
                return finish(parsed, self.cgroup_pressure.path(), errors);
            }
            Err(e) => e,
        };
        if !is_absent(&err) || !self.dir.is_dir() {
            // The whole directory is gone (or unreadable): undecided, try again next tick.
            errors.push(ReadError::io(self.cgroup_pressure.path(), &err));
            return None;
        }
        let err = match self.system_pressure.read() {
            Ok(bytes) => {
                let parsed = parse_pressure(bytes);
                self.pressure_source = PressureSource::System;
                return finish(parsed, self.system_pressure.path(), errors);
            }
            Err(e) => e,
        };
        if is_absent(&err) {
            self.pressure_source = PressureSource::Unavailable;
        } else {
            errors.push(ReadError::io(self.system_pressure.path(), &err));
        }
        None
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
fn is_absent(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

type Parsed<T> = Result<T, &'static str>;

fn read_parsed<T>(
    file: &mut ProcFile,
    errors: &mut Vec<ReadError>,
    parse: impl FnOnce(&[u8]) -> Parsed<T>,
) -> Option<T> {
    match file.read() {
        Ok(bytes) => {
            let parsed = parse(bytes);
            finish(parsed, file.path(), errors)
        }
        Err(e) => {
            errors.push(ReadError::io(file.path(), &e));
            None
        }
    }
}

fn finish<T>(parsed: Parsed<T>, path: &Path, errors: &mut Vec<ReadError>) -> Option<T> {
    match parsed {
        Ok(v) => Some(v),
        Err(what) => {
            errors.push(ReadError::parse(path, what));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hot-path parsers: bytes in, no allocation, no panics.

/// A non-empty run of ASCII digits that fits in u64.
fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// A file holding one number (surrounding whitespace allowed).
fn parse_u64_file(b: &[u8]) -> Parsed<u64> {
    parse_u64(b.trim_ascii()).ok_or("expected a decimal number")
}

/// v2 `memory.max` / `memory.high`: a number or "max" (None).
fn parse_max_file(b: &[u8]) -> Parsed<Option<u64>> {
    let b = b.trim_ascii();
    if b == b"max" {
        return Ok(None);
    }
    parse_u64(b)
        .map(Some)
        .ok_or("expected a decimal number or \"max\"")
}

/// v1 `memory.limit_in_bytes`: values at or above 2^62 mean unlimited (None).
fn parse_v1_limit(b: &[u8]) -> Parsed<Option<u64>> {
    let n = parse_u64_file(b)?;
    Ok((n < V1_UNLIMITED).then_some(n))
}

fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b'\n')
}

/// Looks up `keys` in "key value" lines. Lines with other keys are ignored whatever they hold;
/// a wanted key whose value is not a number fails the whole file. A later duplicate wins.
fn scan_kv<const N: usize>(b: &[u8], keys: [&[u8]; N]) -> Parsed<[Option<u64>; N]> {
    let mut out = [None; N];
    for line in lines(b) {
        let (key, value) = match line.iter().position(|&c| c == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        if let Some(i) = keys.iter().position(|k| *k == key) {
            out[i] = Some(parse_u64(value.trim_ascii()).ok_or("a value is not a decimal number")?);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    anon: u64,
    file: u64,
    inactive_file: u64,
}

fn parse_stat_v2(b: &[u8]) -> Parsed<Stat> {
    let [anon, file, inactive_file] = scan_kv(b, [b"anon", b"file", b"inactive_file"])?;
    Ok(Stat {
        anon: anon.ok_or("missing anon")?,
        file: file.ok_or("missing file")?,
        inactive_file: inactive_file.ok_or("missing inactive_file")?,
    })
}

fn parse_stat_v1(b: &[u8]) -> Parsed<Stat> {
    let [t_inactive, inactive, t_rss, rss, t_cache, cache] = scan_kv(
        b,
        [
            b"total_inactive_file",
            b"inactive_file",
            b"total_rss",
            b"rss",
            b"total_cache",
            b"cache",
        ],
    )?;
    Ok(Stat {
        anon: t_rss.or(rss).ok_or("missing total_rss and rss")?,
        file: t_cache.or(cache).ok_or("missing total_cache and cache")?,
        inactive_file: t_inactive
            .or(inactive)
            .ok_or("missing total_inactive_file and inactive_file")?,
    })
}

/// v2 `memory.events` → `oom_kill`.
fn parse_events_v2(b: &[u8]) -> Parsed<u64> {
    let [oom_kill] = scan_kv(b, [b"oom_kill"])?;
    oom_kill.ok_or("missing oom_kill")
}

/// v1 `memory.oom_control` → (`under_oom`, `oom_kill` if present). `need_kill`: a missing
/// `oom_kill` is an error (the kernel was seen to have it).
fn parse_oom_control(b: &[u8], need_kill: bool) -> Parsed<(bool, Option<u64>)> {
    let [under_oom, oom_kill] = scan_kv(b, [b"under_oom", b"oom_kill"])?;
    let under_oom = match under_oom {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Err("under_oom is not 0 or 1"),
        None => return Err("missing under_oom"),
    };
    if need_kill && oom_kill.is_none() {
        return Err("missing oom_kill");
    }
    Ok((under_oom, oom_kill))
}

/// A PSI average: digits and dots only (no sign, exponent, inf or nan), finite.
fn parse_avg(b: &[u8]) -> Option<f64> {
    if b.is_empty() || !b.iter().all(|&c| c.is_ascii_digit() || c == b'.') {
        return None;
    }
    // Only ASCII here, so from_utf8 cannot fail; a second dot fails parse.
    let v: f64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// (avg10, avg60) of the fields after "some"/"full".
fn parse_psi_fields(rest: &[u8]) -> Parsed<(f64, f64)> {
    let (mut avg10, mut avg60) = (None, None);
    for field in rest.split(|c| c.is_ascii_whitespace()) {
        if let Some(v) = field.strip_prefix(b"avg10=") {
            avg10 = Some(parse_avg(v).ok_or("bad avg10")?);
        } else if let Some(v) = field.strip_prefix(b"avg60=") {
            avg60 = Some(parse_avg(v).ok_or("bad avg60")?);
        }
    }
    Ok((avg10.ok_or("missing avg10")?, avg60.ok_or("missing avg60")?))
}

/// `memory.pressure` / `/proc/pressure/memory`. The "some" line is required, "full" optional.
fn parse_pressure(b: &[u8]) -> Parsed<Pressure> {
    let (mut some, mut full) = (None, None);
    for line in lines(b) {
        if let Some(rest) = line.strip_prefix(b"some ") {
            some = Some(parse_psi_fields(rest)?);
        } else if let Some(rest) = line.strip_prefix(b"full ") {
            full = Some(parse_psi_fields(rest)?);
        }
    }
    let (some_avg10, some_avg60) = some.ok_or("missing \"some\" line")?;
    Ok(Pressure {
        some_avg10,
        some_avg60,
        full_avg10: full.map(|(avg10, _)| avg10),
    })
}

// ---------------------------------------------------------------------------------------------
// Discovery (runs once; allocation is fine here).

fn path_from_bytes(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// The memory cgroup line of `/proc/<pid>/cgroup`: v1 `N:...memory...:/path` wins over the v2
/// `0::/path` line.
fn find_memory_cgroup(b: &[u8]) -> Option<(CgroupVersion, PathBuf)> {
    let mut v2 = None;
    for line in lines(b) {
        let mut parts = line.splitn(3, |&c| c == b':');
        let (Some(hierarchy), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !path.starts_with(b"/") {
            continue;
        }
        if controllers.split(|&c| c == b',').any(|c| c == b"memory") {
            return Some((CgroupVersion::V1, path_from_bytes(path)));
        }
        if hierarchy == b"0" && controllers.is_empty() && v2.is_none() {
            v2 = Some(path);
        }
    }
    v2.map(|p| (CgroupVersion::V2, path_from_bytes(p)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// The mountinfo root field: the cgroup path shown at the mount point.
    root: PathBuf,
    mount_point: PathBuf,
}

/// Decodes the `\ooo` escapes mountinfo uses for space, tab, newline and backslash.
fn unescape_mountinfo(b: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let d = &b[i + 1..i + 4];
            if matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|c| matches!(c, b'0'..=b'7')) {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The mounts that can hold the memory cgroup: `cgroup` with the `memory` super option (v1) or
/// `cgroup2` (v2), in mountinfo order. Malformed lines are skipped.
fn cgroup_mounts(b: &[u8], version: CgroupVersion) -> Vec<CgroupMount> {
    let parse_line = |line: &[u8]| -> Option<CgroupMount> {
        let mut fields = line.split(|&c| c == b' ');
        let _id = fields.next()?;
        let _parent = fields.next()?;
        let _dev = fields.next()?;
        let root = fields.next()?;
        let mount_point = fields.next()?;
        let _options = fields.next()?;
        // optional fields up to the "-" separator
        while fields.next()? != b"-" {}
        let fs_type = fields.next()?;
        let _source = fields.next()?;
        let super_options = fields.next()?;
        let wanted = match version {
            CgroupVersion::V1 => {
                fs_type == b"cgroup" && super_options.split(|&c| c == b',').any(|o| o == b"memory")
            }
            CgroupVersion::V2 => fs_type == b"cgroup2",
        };
        (wanted && root.starts_with(b"/") && !mount_point.is_empty()).then(|| CgroupMount {
            root: unescape_mountinfo(root),
            mount_point: unescape_mountinfo(mount_point),
        })
    };
    lines(b).filter_map(parse_line).collect()
}

/// `mount_point` as seen under `sys_root` (itself when None).
fn rebase(mount_point: &Path, sys_root: Option<&Path>) -> PathBuf {
    match sys_root {
        None => mount_point.to_path_buf(),
        Some(root) => root.join(mount_point.strip_prefix("/").unwrap_or(mount_point)),
    }
}

/// The cgroup directory: the mount whose root is the longest prefix of `cg_path`, joined with
/// the rest of the path, if that directory has `usage_file`; else the first mount point that has
/// it. (A directory without it is the v2 root cgroup or a cgroup whose parent did not enable the
/// memory controller: nothing to read.)
fn resolve_dir(
    cg_path: &Path,
    mounts: &[CgroupMount],
    sys_root: Option<&Path>,
    usage_file: &str,
) -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join(usage_file).is_file();
    let mut ranked: Vec<(usize, &CgroupMount, Option<&Path>)> = mounts
        .iter()
        .map(|m| {
            let rel = cg_path
                .strip_prefix(&m.root)
                .ok()
                .filter(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))));
            let rank = rel.map_or(0, |_| 1 + m.root.components().count());
            (rank, m, rel)
        })
        .collect();
    ranked.sort_by_key(|&(rank, _, _)| Reverse(rank)); // stable: mountinfo order among equals
    for (_, m, rel) in &ranked {
        if let Some(rel) = rel {
            let base = rebase(&m.mount_point, sys_root);
            let dir = if rel.as_os_str().is_empty() {
                base
            } else {
                base.join(rel)
            };
            if usable(&dir) {
                return Some(dir);
            }
        }
    }
    ranked
        .iter()
        .map(|(_, m, _)| rebase(&m.mount_point, sys_root))
        .find(|dir| usable(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::read_error::ReadErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup")
    }

    fn discover_tree(root: &Path) -> Result<Option<CgroupReader>, ReadError> {
        CgroupReader::discover(&root.join("proc"), "self", Some(root))
    }

    fn discover_fixture(name: &str) -> CgroupReader {
        let root = fixtures().join(name);
        discover_tree(&root)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: no cgroup found"))
    }

    fn read_ok(r: &mut CgroupReader) -> CgroupSample {
        let mut errors = Vec::new();
        let s = r.read(&mut errors);
        assert!(errors.is_empty(), "unexpected errors: {errors:?}");
        s
    }

    const MIB: u64 = 1 << 20;
    const CG_PSI: Pressure = Pressure {
        some_avg10: 1.5,
        some_avg60: 0.75,
        full_avg10: Some(0.5),
    };
    const SYS_PSI: Pressure = Pressure {
        some_avg10: 0.2,
        some_avg60: 0.1,
        full_avg10: Some(0.0),
    };

    /// A copy of a fixture tree in a temp dir, removed on drop.
    struct TempTree(PathBuf);

    impl TempTree {
        fn copy_of(name: &str) -> TempTree {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "memsentry-cgroup-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            copy_tree(&fixtures().join(name), &dir);
            TempTree(dir)
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                all_files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    // --- v2 ------------------------------------------------------------------------------------

    #[test]
    fn v2_nested_path_reads_every_file() {
        let mut r = discover_fixture("v2-nested");
        assert_eq!(r.version(), CgroupVersion::V2);
        assert_eq!(
            r.dir(),
            fixtures().join("v2-nested/sys/fs/cgroup/kubepods/burstable/pod123/ctr")
        );
        let s = read_ok(&mut r);
        assert_eq!(
            s,
            CgroupSample {
                version: CgroupVersion::V2,
                usage: Some(100 * MIB),
                limit: Some(256 * MIB),
                high: Some(192 * MIB),
                working_set: Some(100 * MIB - 30 * MIB),
                inactive_file: Some(30 * MIB),
                anon: Some(50 * MIB),
                file: Some(40 * MIB),
                oom_events: Some(1),
                under_oom: None,
                pressure: Some(CG_PSI),
            }
        );
        // second tick: same files re-read through the open descriptors
        assert_eq!(read_ok(&mut r), s);
    }

    #[test]
    fn v2_unlimited_falls_back_to_system_pressure() {
        let mut r = discover_fixture("v2-unlimited-syspsi");
        assert!(r.dir().ends_with("user.slice/user-1000.slice/session-4.scope"));
        for _ in 0..2 {
            let s = read_ok(&mut r);
            assert_eq!(s.usage, Some(70 * MIB));
            assert_eq!(s.limit, None);
            assert_eq!(s.high, None);
            assert_eq!(s.pressure, Some(SYS_PSI));
        }
    }

    #[test]
    fn v2_without_any_pressure_file_is_none_and_silent() {
        let mut r = discover_fixture("v2-unlimited-nopsi");
        for _ in 0..3 {
            let s = read_ok(&mut r);
            assert_eq!(s.usage, Some(70 * MIB));
            assert_eq!(s.limit, None);
            assert_eq!(s.pressure, None);
        }
    }

    #[test]
    fn v2_container_with_cgroup_namespace_uses_the_mount_point() {
        let mut r = discover_fixture("v2-container-ns");
        assert_eq!(r.dir(), fixtures().join("v2-container-ns/sys/fs/cgroup"));
        let s = read_ok(&mut r);
        assert_eq!(
            (s.usage, s.limit, s.high),
            (Some(20 * MIB), Some(128 * MIB), None)
        );
        assert_eq!(s.pressure, Some(CG_PSI));
    }

    #[test]
    fn v2_container_whose_mount_root_is_the_cgroup_path() {
        let mut r = discover_fixture("v2-container-root");
        assert_eq!(r.dir(), fixtures().join("v2-container-root/sys/fs/cgroup"));
        let s = read_ok(&mut r);
        assert_eq!((s.usage, s.limit), (Some(30 * MIB), Some(64 * MIB)));
    }

    #[test]
    fn v2_container_with_a_path_missing_under_the_mount_falls_back_to_it() {
        let mut r = discover_fixture("v2-container-missing");
        assert_eq!(r.dir(), fixtures().join("v2-container-missing/sys/fs/cgroup"));
        let s = read_ok(&mut r);
        assert_eq!((s.usage, s.limit), (Some(40 * MIB), Some(512 * MIB)));
    }

    // --- v1 ------------------------------------------------------------------------------------

    #[test]
    fn v1_with_limit_prefers_total_counters_and_oom_kill() {
        let mut r = discover_fixture("v1-limit");
        assert_eq!(r.version(), CgroupVersion::V1);
        assert_eq!(
            r.dir(),
            fixtures().join("v1-limit/sys/fs/cgroup/memory/process_api/a1b2")
        );
        let s = read_ok(&mut r);
        assert_eq!(
            s,
            CgroupSample {
                version: CgroupVersion::V1,
                usage: Some(80273408),
                limit: Some(512 * MIB),
                high: None,
                working_set: Some(80273408 - 60219968),
                inactive_file: Some(60219968),
                anon: Some(11036288),
                file: Some(69236352),
                oom_events: Some(2),
                under_oom: Some(false),
                // v1 has no per-cgroup memory.pressure: the system-wide file
                pressure: Some(SYS_PSI),
            }
        );
    }

    #[test]
    fn v1_unlimited_old_kernel_uses_local_counters_and_failcnt() {
        let mut r = discover_fixture("v1-unlimited");
        let s = read_ok(&mut r);
        assert_eq!(
            s,
            CgroupSample {
                version: CgroupVersion::V1,
                usage: Some(MIB),
                limit: None,
                high: None,
                // usage (1 MiB) < inactive_file (2000000): floored at 0
                working_set: Some(0),
                inactive_file: Some(2000000),
                anon: Some(524288),
                file: Some(2 * MIB),
                oom_events: Some(3),
                under_oom: Some(true),
                pressure: None,
            }
        );
    }

    #[test]
    fn v1_docker_mount_root_is_the_cgroup_path() {
        let mut r = discover_fixture("v1-docker");
        assert_eq!(r.dir(), fixtures().join("v1-docker/sys/fs/cgroup/memory"));
        let s = read_ok(&mut r);
        assert_eq!(
            (s.usage, s.limit, s.oom_events),
            (Some(10 * MIB), Some(256 * MIB), Some(0))
        );
    }

    #[test]
    fn v1_mount_point_with_an_escaped_space() {
        let mut r = discover_fixture("v1-escaped-mount");
        assert_eq!(
            r.dir(),
            fixtures().join("v1-escaped-mount/sys/fs/cgroup/mem ory/app")
        );
        assert_eq!(read_ok(&mut r).usage, Some(4096));
    }

    #[test]
    fn v1_limit_threshold() {
        assert_eq!(parse_v1_limit(b"9223372036854771712\n"), Ok(None));
        assert_eq!(parse_v1_limit(b"4611686018427387904\n"), Ok(None)); // 2^62
        assert_eq!(
            parse_v1_limit(b"4611686018427387903\n"),
            Ok(Some(4611686018427387903))
        );
        assert_eq!(parse_v1_limit(b"0\n"), Ok(Some(0)));
        assert!(parse_v1_limit(b"-1\n").is_err());
    }

    // --- discovery edge cases ------------------------------------------------------------------

    #[test]
    fn garbage_discovery_inputs_find_nothing() {
        assert!(discover_tree(&fixtures().join("garbled-discovery"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn v2_root_cgroup_without_memory_files_is_none() {
        assert!(discover_tree(&fixtures().join("v2-host-root")).unwrap().is_none());
    }

    #[test]
    fn v1_memory_without_a_memory_mount_is_none_not_the_v2_mount() {
        assert!(discover_tree(&fixtures().join("v1-no-mount")).unwrap().is_none());
    }

    #[test]
    fn missing_cgroup_file_is_none_and_missing_mountinfo_is_an_error() {
        let tmp = TempTree::copy_of("v2-nested");
        std::fs::remove_file(tmp.0.join("proc/self/mountinfo")).unwrap();
        let err = discover_tree(&tmp.0).unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::Io(io::ErrorKind::NotFound));
        assert!(err.path.ends_with("proc/self/mountinfo"));
        std::fs::remove_file(tmp.0.join("proc/self/cgroup")).unwrap();
        assert!(discover_tree(&tmp.0).unwrap().is_none());
    }

    #[test]
    fn cgroup_line_selection() {
        let hybrid = b"9:name=systemd:/\n4:cpu,memory:/a/b\n0::/unified\n";
        assert_eq!(
            find_memory_cgroup(hybrid),
            Some((CgroupVersion::V1, PathBuf::from("/a/b")))
        );
        let v2 = b"0::/x:y/z\n";
        assert_eq!(
            find_memory_cgroup(v2),
            Some((CgroupVersion::V2, PathBuf::from("/x:y/z")))
        );
        assert_eq!(find_memory_cgroup(b"4:memoryx:/a\n1:name=systemd:/\n"), None);
        assert_eq!(find_memory_cgroup(b""), None);
    }

    #[test]
    fn mountinfo_parsing_and_unescaping() {
        let mi = b"1 2 0:3 /r\\134x /m\\040n\\011t rw shared:1 master:2 - cgroup cg rw,cpu,memory\n\
                   5 6 0:7 / /u rw - cgroup2 cgroup2 rw\n\
                   8 9 0:1 / /bad rw - cgroup\n\
                   8 9 0:1 / /trailing\\04 rw - cgroup c rw,memory\n";
        assert_eq!(
            cgroup_mounts(mi, CgroupVersion::V1),
            vec![
                CgroupMount {
                    root: PathBuf::from("/r\\x"),
                    mount_point: PathBuf::from("/m n\tt"),
                },
                CgroupMount {
                    root: PathBuf::from("/"),
                    mount_point: PathBuf::from("/trailing\\04"),
                },
            ]
        );
        assert_eq!(
            cgroup_mounts(mi, CgroupVersion::V2),
            vec![CgroupMount {
                root: PathBuf::from("/"),
                mount_point: PathBuf::from("/u"),
            }]
        );
    }

    #[test]
    fn a_parent_dir_in_the_cgroup_path_is_a_fallback_said_once() {
        let tree = TempTree::copy_of("v2-container-ns");
        let tmp = &tree.0;
        assert!(discover_tree(tmp).unwrap().unwrap().fallback().is_none());
        std::fs::write(
            tmp.join("proc/self/cgroup"),
            "0::/../../system.slice/app.service\n",
        )
        .unwrap();
        let r = discover_tree(tmp).unwrap().unwrap();
        assert_eq!(
            r.dir(),
            tmp.join("sys/fs/cgroup"),
            "the mount point's cgroup, as before"
        );
        let note = r.fallback().expect("the fallback is said");
        assert!(note.message.contains("/../../system.slice/app.service"), "{note}");
        assert_eq!(note.path, tmp.join("proc/self/cgroup"));
    }

    #[test]
    fn parent_dir_components_never_escape_the_mount() {
        let root = fixtures().join("v2-container-ns");
        let mounts = vec![CgroupMount {
            root: PathBuf::from("/"),
            mount_point: PathBuf::from("/sys/fs/cgroup"),
        }];
        assert_eq!(
            resolve_dir(Path::new("/../../.."), &mounts, Some(&root), "memory.current"),
            Some(root.join("sys/fs/cgroup"))
        );
        assert_eq!(
            resolve_dir(Path::new("/"), &[], Some(&root), "memory.current"),
            None
        );
    }

    // --- garbled files -------------------------------------------------------------------------

    fn assert_parse_errors(errors: &[ReadError], names: &[&str]) {
        let mut got: Vec<String> = errors
            .iter()
            .map(|e| {
                assert_eq!(e.kind, ReadErrorKind::Parse, "{e}");
                e.path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        got.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn v2_garbled_files_are_parse_errors() {
        let mut r = discover_fixture("v2-garbled");
        for _ in 0..2 {
            let mut errors = Vec::new();
            let s = r.read(&mut errors);
            assert_eq!(
                s,
                CgroupSample {
                    version: CgroupVersion::V2,
                    usage: None,
                    limit: None,
                    high: None,
                    working_set: None,
                    inactive_file: None,
                    anon: None,
                    file: None,
                    oom_events: None,
                    under_oom: None,
                    pressure: None,
                }
            );
            assert_parse_errors(
                &errors,
                &[
                    "memory.current",
                    "memory.max",
                    "memory.high",
                    "memory.stat",
                    "memory.events",
                    "memory.pressure",
                ],
            );
        }
    }

    #[test]
    fn v1_garbled_files_are_parse_errors() {
        let mut r = discover_fixture("v1-garbled");
        let mut errors = Vec::new();
        let s = r.read(&mut errors);
        assert_eq!(
            (
                s.usage,
                s.limit,
                s.working_set,
                s.anon,
                s.oom_events,
                s.under_oom,
                s.pressure
            ),
            (None, None, None, None, None, None, None)
        );
        // oom_control never parsed, so the oom counter is undecided and failcnt isn't read
        assert_eq!(r.v1_oom_source, V1OomSource::Unknown);
        assert_parse_errors(
            &errors,
            &[
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "memory.stat",
                "memory.oom_control",
                "memory", // proc/pressure/memory
            ],
        );
    }

    #[test]
    fn number_parsing_edges() {
        assert_eq!(parse_u64_file(b" 42 \n"), Ok(42));
        assert_eq!(parse_u64_file(b"18446744073709551615\n"), Ok(u64::MAX));
        assert!(parse_u64_file(b"18446744073709551616\n").is_err());
        assert!(parse_u64_file(b"99999999999999999999999999999999\n").is_err());
        for bad in [&b""[..], b"\n", b"+1", b"1 2", b"1.0", b"0x10", b"\xff", b"\x00"] {
            assert!(parse_u64_file(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_max_file(b"max\n"), Ok(None));
        assert!(parse_max_file(b"maxx\n").is_err());
        assert!(parse_max_file(b"MAX\n").is_err());
    }

    #[test]
    fn pressure_parsing() {
        assert_eq!(
            parse_pressure(b"some avg10=12.34 avg60=5.00 avg300=1.00 total=99\n"),
            Ok(Pressure {
                some_avg10: 12.34,
                some_avg60: 5.0,
                full_avg10: None
            })
        );
        for bad in [
            &b""[..],
            b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            b"some avg10=inf avg60=0.00\n",
            b"some avg10=nan avg60=0.00\n",
            b"some avg10=1e3 avg60=0.00\n",
            b"some avg10=-1 avg60=0.00\n",
            b"some avg10=1..2 avg60=0.00\n",
            b"some avg10=0.00\n",
            b"some avg10=0.00 avg60=0.00\nfull avg10=x avg60=0.00\n",
        ] {
            assert!(parse_pressure(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // --- counters that move, directories that vanish -------------------------------------------

    fn rewrite(path: PathBuf, content: &str) {
        // in place (truncate, same inode), as the kernel updates the file the reader has open
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn v2_oom_kill_rise_is_detected() {
        let tmp = TempTree::copy_of("v2-nested");
        let mut r = discover_tree(&tmp.0).unwrap().unwrap();
        let a = read_ok(&mut r);
        assert_eq!(a.oom_events, Some(1));
        rewrite(
            r.dir().join("memory.events"),
            "low 0\nhigh 12\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n",
        );
        let b = read_ok(&mut r);
        assert_eq!(b.oom_events, Some(2));
        assert!(oom_rose(&a, &b));
        let c = read_ok(&mut r);
        assert!(!oom_rose(&b, &c));
    }

    #[test]
    fn v1_oom_kill_rise_is_detected() {
        let tmp = TempTree::copy_of("v1-limit");
        let mut r = discover_tree(&tmp.0).unwrap().unwrap();
        let a = read_ok(&mut r);
        rewrite(
            r.dir().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n",
        );
        let b = read_ok(&mut r);
        assert_eq!((b.oom_events, b.under_oom), (Some(3), Some(true)));
        assert!(oom_rose(&a, &b));
        // the kernel was seen to have oom_kill: a read without it is an error, never failcnt (7)
        rewrite(
            r.dir().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        );
        let mut errors = Vec::new();
        let c = r.read(&mut errors);
        assert_eq!((c.oom_events, c.under_oom), (None, None));
        assert_parse_errors(&errors, &["memory.oom_control"]);
        assert!(!oom_rose(&b, &c));
    }

    #[test]
    fn v1_failcnt_rise_is_detected_on_kernels_without_oom_kill() {
        let tmp = TempTree::copy_of("v1-unlimited");
        let mut r = discover_tree(&tmp.0).unwrap().unwrap();
        let a = read_ok(&mut r);
        assert_eq!(a.oom_events, Some(3));
        rewrite(r.dir().join("memory.failcnt"), "4\n");
        let b = read_ok(&mut r);
        assert!(oom_rose(&a, &b));
    }

    #[test]
    fn oom_rose_needs_two_known_values_that_rise() {
        let base = discover_fixture("v2-nested").read(&mut Vec::new());
        let with = |n: Option<u64>| CgroupSample {
            oom_events: n,
            ..base.clone()
        };
        assert!(oom_rose(&with(Some(0)), &with(Some(1))));
        assert!(!oom_rose(&with(Some(1)), &with(Some(1))));
        assert!(!oom_rose(&with(Some(5)), &with(Some(0))));
        assert!(!oom_rose(&with(None), &with(Some(1))));
        assert!(!oom_rose(&with(Some(1)), &with(None)));
    }

    #[test]
    fn vanished_cgroup_dir_gives_io_errors_then_recovers() {
        for name in ["v2-nested", "v1-limit"] {
            let tmp = TempTree::copy_of(name);
            let mut r = discover_tree(&tmp.0).unwrap().unwrap();
            let dir = r.dir().to_path_buf();
            let saved = tmp.0.with_extension("saved");
            copy_tree(&dir, &saved);
            let _cleanup = TempTree(saved.clone());

            // Regular files stay readable through open descriptors after unlink (kernfs fails
            // them with ENODEV, see live_v1_cgroup_removed_and_recreated), so remove the
            // directory before the reader has opened anything.
            std::fs::remove_dir_all(&dir).unwrap();
            let mut errors = Vec::new();
            let s = r.read(&mut errors);
            assert_eq!(
                (
                    s.usage,
                    s.limit,
                    s.working_set,
                    s.anon,
                    s.oom_events,
                    s.under_oom,
                    s.pressure
                ),
                (None, None, None, None, None, None, None),
                "{name}"
            );
            assert!(errors.len() >= 4, "{name}: {errors:?}");
            for e in &errors {
                assert_eq!(e.kind, ReadErrorKind::Io(io::ErrorKind::NotFound), "{e}");
                assert!(e.path.starts_with(&dir), "{e}");
            }

            copy_tree(&saved, &dir);
            let back = read_ok(&mut r);
            let fresh = read_ok(&mut discover_tree(&tmp.0).unwrap().unwrap());
            assert_eq!(back, fresh, "{name}");
            assert!(back.usage.is_some() && back.pressure.is_some(), "{name}");
        }
    }

    // --- robustness ----------------------------------------------------------------------------

    fn run_all_parsers(b: &[u8]) {
        let _ = parse_u64_file(b);
        let _ = parse_max_file(b);
        let _ = parse_v1_limit(b);
        let _ = parse_stat_v2(b);
        let _ = parse_stat_v1(b);
        let _ = parse_events_v2(b);
        let _ = parse_oom_control(b, false);
        let _ = parse_oom_control(b, true);
        let _ = parse_pressure(b);
        let _ = find_memory_cgroup(b);
        let _ = cgroup_mounts(b, CgroupVersion::V1);
        let _ = cgroup_mounts(b, CgroupVersion::V2);
        let _ = unescape_mountinfo(b);
    }

    #[test]
    fn parsers_survive_prefixes_flips_and_noise() {
        let mut files = Vec::new();
        all_files(&fixtures(), &mut files);
        assert!(files.len() > 50);
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            for end in 0..=bytes.len() {
                run_all_parsers(&bytes[..end]);
            }
            let mut flipped = bytes.clone();
            for i in 0..bytes.len() {
                for v in [
                    bytes[i] ^ 0x01,
                    bytes[i] ^ 0x80,
                    b'9',
                    b' ',
                    b'\n',
                    b'\\',
                    0xff,
                    0,
                ] {
                    flipped[i] = v;
                    run_all_parsers(&flipped);
                }
                flipped[i] = bytes[i];
            }
            for _ in 0..32 {
                let mut noisy = bytes.clone();
                for _ in 0..4 {
                    if !noisy.is_empty() {
                        let i = (next() as usize) % noisy.len();
                        noisy[i] = next() as u8;
                    }
                }
                run_all_parsers(&noisy);
            }
        }
        for len in 0..256 {
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            run_all_parsers(&noise);
        }
    }

    // --- the live system -----------------------------------------------------------------------

    /// The v1 memory line of /proc/self/cgroup and its directory under /sys/fs/cgroup/memory.
    fn live_v1_dir() -> Option<PathBuf> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = cgroup.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            ctrls.split(',').any(|c| c == "memory").then_some(path)
        })?;
        Some(Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')))
    }

    #[test]
    fn live_discovery_matches_a_direct_read() {
        let has_memory_line = live_v1_dir().is_some();
        let found = CgroupReader::discover(Path::new("/proc"), "self", None).unwrap();
        let Some(mut r) = found else {
            assert!(
                !has_memory_line,
                "a memory line in /proc/self/cgroup but nothing found"
            );
            eprintln!("no memory cgroup on this system; live check skipped");
            return;
        };
        let direct_file = match r.version() {
            CgroupVersion::V1 => {
                let expected = live_v1_dir().unwrap();
                if expected.join("memory.usage_in_bytes").exists() {
                    assert_eq!(r.dir(), expected);
                }
                "memory.usage_in_bytes"
            }
            CgroupVersion::V2 => "memory.current",
        };
        let mut errors = Vec::new();
        let s = r.read(&mut errors);
        let usage = s.usage.unwrap_or_else(|| panic!("no usage: {errors:?}"));
        let direct: u64 = std::fs::read_to_string(r.dir().join(direct_file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(usage > 0);
        assert!(usage.abs_diff(direct) <= 64 * MIB, "{usage} vs {direct}");
        assert!(s.working_set.unwrap() <= usage);
    }

    /// Creates a child memory cgroup (needs root and a writable v1 hierarchy; skipped otherwise),
    /// removes it while the reader has its files open, and recreates it.
    #[test]
    fn live_v1_cgroup_removed_and_recreated() {
        let Some(parent) = live_v1_dir() else {
            eprintln!("no v1 memory cgroup; skipped");
            return;
        };
        let dir = parent.join(format!("memsentry-test-{}", std::process::id()));
        if std::fs::create_dir(&dir).is_err() {
            eprintln!("cannot create {}; skipped", dir.display());
            return;
        }
        struct Rmdir<'a>(&'a Path);
        impl Drop for Rmdir<'_> {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir(self.0);
            }
        }
        let _guard = Rmdir(&dir);

        let mut r = CgroupReader::at(&dir, CgroupVersion::V1, Path::new("/proc"));
        let s = read_ok(&mut r);
        assert_eq!(s.usage, Some(0));
        assert_eq!(s.oom_events, Some(0));

        std::fs::remove_dir(&dir).unwrap();
        let mut errors = Vec::new();
        let s = r.read(&mut errors);
        assert_eq!((s.usage, s.limit, s.anon, s.under_oom), (None, None, None, None));
        assert!(errors.len() >= 4, "{errors:?}");
        assert!(
            errors.iter().all(|e| matches!(e.kind, ReadErrorKind::Io(_))),
            "{errors:?}"
        );
        // descriptors are reopened: now the paths are gone
        let mut errors = Vec::new();
        r.read(&mut errors);
        assert!(errors
            .iter()
            .all(|e| e.kind == ReadErrorKind::Io(io::ErrorKind::NotFound)));

        std::fs::create_dir(&dir).unwrap();
        let s = read_ok(&mut r);
        assert_eq!(s.usage, Some(0));
    }
}
