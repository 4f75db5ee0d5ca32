//! Drivers that feed arbitrary bytes to memsentry's procfs and cgroup parsers: one `fn(&[u8])`
//! per fuzz target, shared by the libFuzzer targets (`fuzz/fuzz_targets/*.rs`) and by the
//! stable-toolchain tests (`fuzz/harness/tests/*.rs`).
//!
//! A driver panics only when memsentry misbehaves: a panic inside memsentry (index out of
//! bounds, arithmetic overflow with debug assertions, `unwrap`, ...) or a broken invariant that
//! memsentry documents, asserted here. The harness's own failures (a temp file that cannot be
//! written) panic with a message starting with `harness:`.
//!
//! # Input formats
//!
//! The single-file targets (`statm`, `stat`, `status`, `smaps_rollup`, `meminfo`) take the file's
//! bytes as they are. The others split the input into parts at [`SEP`] (`\xff\x00`, a pair that
//! never occurs in a procfs or cgroup file, `cmdline` included); a part equal to [`ABSENT`]
//! (`~`) means "this file does not exist". See each driver for the order of its parts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use memsentry::cgroup::{self, CgroupReader, CgroupSample, CgroupVersion};
use memsentry::children::{ChildChange, ChildrenMode, ChildrenTracker, MAX_CHILDREN};
use memsentry::procfs::process::ProcessReader;
use memsentry::procfs::{kb_fields, meminfo, page_size, smaps_rollup, stat, statm, status};

pub mod mutate;

/// Separates the parts of a structured input.
pub const SEP: &[u8] = b"\xff\x00";
/// A part that stands for a missing file.
pub const ABSENT: &[u8] = b"~";

pub type Driver = fn(&[u8]);

/// Every target, by the name of its libFuzzer binary and of its `seeds/` folder.
pub const TARGETS: &[(&str, Driver)] = &[
    ("statm", statm),
    ("stat", stat),
    ("status", status),
    ("smaps_rollup", smaps_rollup),
    ("meminfo", meminfo),
    ("kb_fields", kb_fields),
    ("cgroup_discover", cgroup_discover),
    ("cgroup_read", cgroup_read),
    ("children", children),
    ("process_reader", process_reader),
];

thread_local! {
    static REACHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How deep the last call of a tree-backed driver on this thread got, to check that the seeds
/// reach the readers: `cgroup_discover`: 1 found a cgroup, 2 read it, 3 read a usage;
/// `cgroup_read`: the fields set in the last sample; `children`: the most samples of one tick;
/// `process_reader`: the parts of the last read that are set.
pub fn reached() -> u64 {
    REACHED.with(std::cell::Cell::get)
}

fn reach(v: u64) {
    REACHED.with(|r| r.set(v));
}

pub fn driver(name: &str) -> Option<Driver> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, d)| d)
}

/// `fuzz/` (this crate's parent folder).
pub fn fuzz_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

/// The parts of a structured input (at least one, possibly empty).
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = find(rest, SEP) {
        parts.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    parts.push(rest);
    parts
}

/// The inverse of [`split`].
pub fn join<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    parts.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(SEP)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Single-file parsers

/// `procfs::statm::parse` at several page sizes, and `parse_resident_pages`. On a line shaped
/// as the kernel writes it (unsigned decimals separated by single spaces, an optional final
/// newline) both must agree on the resident pages: `own_rss()` uses the cheap one, the sampler
/// the full one.
pub fn statm(data: &[u8]) {
    let pages = statm::parse_resident_pages(data);
    for page_size in [1, 4096, 65536, u64::MAX] {
        if let Ok(s) = statm::parse(data, page_size) {
            for v in [s.vsz, s.rss, s.shared, s.text, s.data] {
                assert_eq!(
                    v % page_size,
                    0,
                    "statm: {v} is not a multiple of the page size {page_size}"
                );
            }
        }
    }
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    let kernel_shaped = !line.is_empty()
        && line
            .split(|&b| b == b' ')
            .all(|f| !f.is_empty() && f.len() <= 19 && f.iter().all(u8::is_ascii_digit));
    if kernel_shaped {
        if let Ok(s) = statm::parse(data, 1) {
            assert_eq!(
                pages,
                Some(s.rss),
                "statm: parse_resident_pages disagrees with parse"
            );
        }
    }
}

/// `procfs::stat::parse`; `comm` must be what lies between the first '(' and the last ')'.
pub fn stat(data: &[u8]) {
    if let Ok(s) = stat::parse(data) {
        let open = data
            .iter()
            .position(|&b| b == b'(')
            .expect("stat: parsed without '('");
        let close = data
            .iter()
            .rposition(|&b| b == b')')
            .expect("stat: parsed without ')'");
        assert_eq!(
            s.comm,
            String::from_utf8_lossy(&data[open + 1..close]),
            "stat: comm"
        );
    }
}

/// `procfs::status::parse` and `StatusFields::as_statm`: only a file starting with `Name:`
/// parses.
pub fn status(data: &[u8]) {
    if let Ok(s) = status::parse(data) {
        assert!(
            data.starts_with(b"Name:"),
            "status: parsed without a Name: line first"
        );
        let _ = s.as_statm();
    }
}

/// `procfs::smaps_rollup::parse`.
pub fn smaps_rollup(data: &[u8]) {
    let _ = smaps_rollup::parse(data);
}

/// `procfs::meminfo::parse_mem_total`: never `Ok(0)`.
pub fn meminfo(data: &[u8]) {
    if let Ok(n) = meminfo::parse_mem_total(data) {
        assert_ne!(n, 0, "meminfo: MemTotal 0 accepted");
    }
}

/// Keys asked of `kb_fields` when the input names none.
const KB_KEYS: [&str; 12] = [
    "RssAnon",
    "RssFile",
    "RssShmem",
    "VmSwap",
    "VmHWM",
    "Pss",
    "Private_Clean",
    "Private_Dirty",
    "SwapPss",
    "MemTotal",
    "Name",
    "",
];

/// `procfs::kb_fields::parse`. Input: `key,key,...` [`SEP`] file, or just a file (then the keys
/// of `status`, `smaps_rollup` and `meminfo` are asked). Keys that are not UTF-8 are dropped.
pub fn kb_fields(data: &[u8]) {
    let (keys, file): (Vec<&str>, &[u8]) = match find(data, SEP) {
        Some(i) => (
            data[..i]
                .split(|&b| b == b',')
                .filter_map(|k| std::str::from_utf8(k).ok())
                .take(32)
                .collect(),
            &data[i + SEP.len()..],
        ),
        None => (KB_KEYS.to_vec(), data),
    };
    let mut out = vec![Some(u64::MAX); keys.len()];
    if kb_fields::parse(file, &keys, &mut out).is_ok() {
        // A key that occurs on no line stays None (`out` was filled with junk on purpose).
        for (key, v) in keys.iter().zip(&out) {
            let mut prefix = key.as_bytes().to_vec();
            prefix.push(b':');
            let present = file.split(|&b| b == b'\n').any(|l| l.starts_with(&prefix));
            assert!(
                present || v.is_none(),
                "kb_fields: {key:?} absent but set to {v:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Temp trees

/// A folder under the temp dir (`$TMPDIR`), removed when the thread that made it ends.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "memsentry-fuzz-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        mkdir(&root);
        let root = root
            .canonicalize()
            .unwrap_or_else(|e| panic!("harness: canonicalize {}: {e}", root.display()));
        Scratch { root }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn mkdir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("harness: mkdir {}: {e}", p.display()));
}

fn rmdir(p: &Path) {
    match fs::remove_dir_all(p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("harness: rm -r {}: {e}", p.display()),
    }
}

/// Writes `part` to `path` in place (same inode, as a procfs file re-read through an open fd
/// sees new content), or removes the file when the part is [`ABSENT`].
fn put(path: &Path, part: &[u8]) {
    if part == ABSENT {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => panic!("harness: rm {}: {e}", path.display()),
        }
    } else {
        fs::write(path, part).unwrap_or_else(|e| panic!("harness: write {}: {e}", path.display()));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    mkdir(to);
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("harness: ls {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("harness: ls {}: {e}", from.display()));
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else if !dst.exists() {
            fs::copy(&src, &dst).unwrap_or_else(|e| panic!("harness: cp {}: {e}", src.display()));
        }
    }
}

fn cgroup_fixtures() -> PathBuf {
    fuzz_dir().join("../tests/fixtures/cgroup")
}

// ---------------------------------------------------------------------------------------------
// cgroup

/// What `CgroupReader::read` documents of every sample.
fn check_cgroup_sample(s: &CgroupSample, version: CgroupVersion) {
    assert_eq!(s.version, version, "cgroup: version changed");
    if let Some(w) = s.working_set {
        let (Some(u), Some(i)) = (s.usage, s.inactive_file) else {
            panic!("cgroup: working_set without usage and inactive_file: {s:?}");
        };
        assert_eq!(
            w,
            u.saturating_sub(i),
            "cgroup: working_set is not usage - inactive_file"
        );
    }
    match version {
        CgroupVersion::V1 => {
            assert!(s.high.is_none(), "cgroup: v1 with a memory.high: {s:?}");
            assert!(
                s.limit.is_none_or(|l| l < 1 << 62),
                "cgroup: v1 'unlimited' limit kept: {s:?}"
            );
        }
        CgroupVersion::V2 => assert!(s.under_oom.is_none(), "cgroup: v2 with under_oom: {s:?}"),
    }
    if let Some(p) = s.pressure {
        for v in [Some(p.some_avg10), Some(p.some_avg60), p.full_avg10]
            .into_iter()
            .flatten()
        {
            assert!(v.is_finite() && v >= 0.0, "cgroup: pressure average {v}");
        }
    }
}

/// `CgroupReader::discover` on a fixture tree. Input: `proc/self/cgroup` [`SEP`]
/// `proc/self/mountinfo` (no separator: the whole input is `cgroup`, and `mountinfo` is empty).
///
/// The tree's `sys/` is every `tests/fixtures/cgroup/*/sys` merged, so the fixtures' paths
/// resolve. A reader found inside the tree is read twice; a mount point that leads out of the
/// tree (`/../..`) is not followed, since that would read the host's files.
pub fn cgroup_discover(data: &[u8]) {
    thread_local! {
        static TREE: Scratch = {
            let t = Scratch::new("cgroup-discover");
            let fixtures = cgroup_fixtures();
            let mut trees: Vec<PathBuf> = fs::read_dir(&fixtures)
                .unwrap_or_else(|e| panic!("harness: ls {}: {e}", fixtures.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("sys").is_dir())
                .collect();
            trees.sort();
            for tree in &trees {
                copy_tree(&tree.join("sys"), &t.root.join("sys"));
            }
            mkdir(&t.root.join("proc/self"));
            mkdir(&t.root.join("proc/pressure"));
            put(&t.root.join("proc/pressure/memory"), b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
            t
        };
    }
    let (cg, mi): (&[u8], &[u8]) = match find(data, SEP) {
        Some(i) => (&data[..i], &data[i + SEP.len()..]),
        None => (data, b""),
    };
    reach(0);
    TREE.with(|t| {
        let root = &t.root;
        put(&root.join("proc/self/cgroup"), cg);
        put(&root.join("proc/self/mountinfo"), mi);
        let Ok(Some(mut reader)) = CgroupReader::discover(&root.join("proc"), "self", Some(root)) else {
            return;
        };
        let usage = match reader.version() {
            CgroupVersion::V2 => "memory.current",
            CgroupVersion::V1 => "memory.usage_in_bytes",
        };
        assert!(
            reader.dir().join(usage).is_file(),
            "cgroup: discover chose {} without {usage}",
            reader.dir().display()
        );
        reach(1);
        let inside = reader.dir().canonicalize().is_ok_and(|d| d.starts_with(root));
        if inside {
            let version = reader.version();
            let mut errors = Vec::new();
            for _ in 0..2 {
                let s = reader.read(&mut errors);
                check_cgroup_sample(&s, version);
                reach(if s.usage.is_some() { 3 } else { 2 });
            }
        }
    });
}

const CGROUP_V2_FILES: [&str; 6] = [
    "memory.current",
    "memory.max",
    "memory.high",
    "memory.stat",
    "memory.events",
    "memory.pressure",
];
const CGROUP_V1_FILES: [&str; 6] = [
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.stat",
    "memory.oom_control",
    "memory.failcnt",
    "memory.pressure",
];
/// Files per tick of `cgroup_read`: the six above, then `<proc_root>/pressure/memory`.
pub const CGROUP_READ_PARTS: usize = 7;

/// `CgroupReader::at` + `read` over up to four ticks. Input: one flags byte, then parts.
///
/// * flags bit 0: v1 (else v2); bit `1 + t`: the cgroup directory is missing at tick `t`.
/// * parts, [`CGROUP_READ_PARTS`] per tick, in the order of `CGROUP_V2_FILES` /
///   `CGROUP_V1_FILES` then the system-wide PSI file. At tick 0 a file without a part is absent;
///   at later ticks it keeps its content. Ticks stop when the parts do.
///
/// `oom_rose` is called on each pair of consecutive samples.
pub fn cgroup_read(data: &[u8]) {
    thread_local! {
        static TREE: Scratch = Scratch::new("cgroup-read");
    }
    reach(0);
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (version, files) = if flags & 1 == 0 {
        (CgroupVersion::V2, CGROUP_V2_FILES)
    } else {
        (CgroupVersion::V1, CGROUP_V1_FILES)
    };
    let parts = split(rest);
    TREE.with(|t| {
        let dir = t.root.join("cg");
        let hidden = t.root.join("cg.gone");
        let proc_root = t.root.join("proc");
        for d in [&dir, &hidden, &proc_root] {
            rmdir(d);
        }
        mkdir(&dir);
        mkdir(&proc_root.join("pressure"));
        let mut reader = CgroupReader::at(&dir, version, &proc_root);
        let mut prev: Option<CgroupSample> = None;
        for (tick, chunk) in parts.chunks(CGROUP_READ_PARTS).take(4).enumerate() {
            for (i, part) in chunk.iter().enumerate() {
                let path = match files.get(i) {
                    Some(name) => dir.join(name),
                    None => proc_root.join("pressure/memory"),
                };
                put(&path, part);
            }
            let hide = flags & (2 << tick) != 0;
            if hide {
                fs::rename(&dir, &hidden).unwrap_or_else(|e| panic!("harness: mv: {e}"));
            }
            let mut errors = Vec::new();
            let sample = reader.read(&mut errors);
            if hide {
                fs::rename(&hidden, &dir).unwrap_or_else(|e| panic!("harness: mv: {e}"));
            }
            check_cgroup_sample(&sample, version);
            let s = &sample;
            let set = [
                s.usage,
                s.limit,
                s.high,
                s.working_set,
                s.inactive_file,
                s.anon,
                s.file,
                s.oom_events,
            ];
            reach(
                set.iter().filter(|v| v.is_some()).count() as u64
                    + u64::from(s.under_oom.is_some())
                    + u64::from(s.pressure.is_some()),
            );
            if let Some(p) = &prev {
                let _ = cgroup::oom_rose(p, &sample);
            }
            prev = Some(sample);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// children

/// The watched process and the processes that may be its children.
pub const CHILDREN_PIDS: [u32; 5] = [100, 101, 102, 103, 104];
/// Files of each pid, in part order; `children` is `task/<pid>/children`.
pub const CHILDREN_FILES: [&str; 6] = ["stat", "statm", "status", "cmdline", "smaps_rollup", "children"];
/// Parts per tick of `children`.
pub const CHILDREN_PARTS: usize = CHILDREN_PIDS.len() * CHILDREN_FILES.len();

/// `ChildrenTracker` (self pid 100) on a fake proc root, over up to four ticks 1000 ms apart.
/// Input: one flags byte, then parts.
///
/// * flags bit 0: mode Tree (else Direct); bit 1: the tree has `task/<pid>/` folders, so the
///   `children` parts are written (else they are ignored and discovery scans `stat`); bit 2:
///   read with smaps; bit 3: discover every 2500 ms (else every read).
/// * parts, [`CHILDREN_PARTS`] per tick: for each pid of [`CHILDREN_PIDS`], its
///   [`CHILDREN_FILES`]. At tick 0 a file without a part is absent; at later ticks it keeps its
///   content. Ticks stop when the parts do.
///
/// Checked: samples in strictly increasing pid order, never the watched pid, only pids that have
/// a folder, at most `MAX_CHILDREN`; every sampled child was announced by a Spawn, an Exit
/// follows a Spawn of the same pid, and no pid is announced twice without an Exit between; the
/// discovery method is the one the probe file (`100/task/100/children`) called for.
pub fn children(data: &[u8]) {
    thread_local! {
        static TREE: Scratch = Scratch::new("children");
    }
    reach(0);
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mode = if flags & 1 != 0 {
        ChildrenMode::Tree
    } else {
        ChildrenMode::Direct
    };
    let task_dirs = flags & 2 != 0;
    let with_smaps = flags & 4 != 0;
    let every_ms = if flags & 8 != 0 { 2500 } else { 0 };
    let parts = split(rest);
    TREE.with(|t| {
        let proc_root = t.root.join("proc");
        rmdir(&proc_root);
        for pid in CHILDREN_PIDS {
            let dir = proc_root.join(pid.to_string());
            mkdir(&dir);
            if task_dirs {
                mkdir(&dir.join("task").join(pid.to_string()));
            }
        }
        // Entries discovery must skip.
        mkdir(&proc_root.join("sys/kernel"));
        put(&proc_root.join("uptime"), b"350735.47 234388.90\n");

        let mut tracker = ChildrenTracker::new(&proc_root, 100, mode, every_ms);
        let probe = proc_root.join("100/task/100/children");
        let mut announced = std::collections::HashSet::new();
        for (tick, chunk) in parts.chunks(CHILDREN_PARTS).take(4).enumerate() {
            for (i, part) in chunk.iter().enumerate() {
                let pid = CHILDREN_PIDS[i / CHILDREN_FILES.len()].to_string();
                let path = match CHILDREN_FILES[i % CHILDREN_FILES.len()] {
                    "children" if !task_dirs => continue,
                    "children" => proc_root.join(&pid).join("task").join(&pid).join("children"),
                    file => proc_root.join(&pid).join(file),
                };
                put(&path, part);
            }
            let probe_exists = probe.exists();
            let (mut errors, mut changes) = (Vec::new(), Vec::new());
            let samples = tracker.read(tick as u64 * 1000, with_smaps, &mut errors, &mut changes);
            if tick == 0 {
                assert_eq!(
                    tracker.uses_children_files(),
                    Some(probe_exists),
                    "children: discovery method vs probe file"
                );
            }
            for change in &changes {
                match change {
                    ChildChange::Spawn { pid, .. } => {
                        assert!(
                            announced.insert(*pid),
                            "children: second Spawn of {pid} without an Exit"
                        )
                    }
                    ChildChange::Exit { pid, .. } => {
                        assert!(announced.remove(pid), "children: Exit of {pid} without a Spawn")
                    }
                }
            }
            assert!(samples.len() <= MAX_CHILDREN);
            reach(reached().max(samples.len() as u64));
            assert!(
                samples.windows(2).all(|w| w[0].pid < w[1].pid),
                "children: samples not in pid order"
            );
            for s in &samples {
                assert_ne!(s.pid, 100, "children: the watched process is its own child");
                assert!(
                    CHILDREN_PIDS.contains(&s.pid),
                    "children: sample of pid {} without a folder",
                    s.pid
                );
                assert!(
                    announced.contains(&s.pid),
                    "children: sample of {} without a Spawn",
                    s.pid
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// process

/// Files of `process_reader`, in part order.
pub const PROCESS_FILES: [&str; 4] = ["stat", "statm", "status", "smaps_rollup"];

/// `ProcessReader::read` (the sampler's own-process read) on `<tmp>/proc/1/`, over up to three
/// ticks. Input: one flags byte (bit `t`: read with smaps at tick `t`), then parts,
/// [`PROCESS_FILES`] per tick; at tick 0 a file without a part (or [`ABSENT`]) is absent, at
/// later ticks a file without a part (or [`ABSENT`]) keeps its content. Ticks stop when the parts
/// do.
///
/// Checked against the parsers run on the same bytes: `statm` comes from `status` when that has
/// the figures (`as_statm`), else from `statm`; `stat` and `status` are their parsers' results
/// (`stat` without `comm`, which the reader leaves empty), `smaps` too when asked, else `None`.
pub fn process_reader(data: &[u8]) {
    thread_local! {
        static TREE: Scratch = Scratch::new("process");
    }
    reach(0);
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let parts = split(rest);
    TREE.with(|t| {
        let proc_root = t.root.join("proc");
        let dir = proc_root.join("1");
        rmdir(&proc_root);
        mkdir(&dir);
        let mut reader = ProcessReader::new(&proc_root, "1");
        let mut current: [Option<Vec<u8>>; 4] = Default::default();
        for (tick, chunk) in parts.chunks(PROCESS_FILES.len()).take(3).enumerate() {
            for (i, part) in chunk.iter().enumerate() {
                // A file removed after it was opened would still be read through the open fd
                // (a procfs file of an exited process fails instead): files vanish at tick 0 only.
                if tick > 0 && *part == ABSENT {
                    continue;
                }
                put(&dir.join(PROCESS_FILES[i]), part);
                current[i] = (*part != ABSENT).then(|| part.to_vec());
            }
            let with_smaps = flags & (1 << tick) != 0;
            let mut errors = Vec::new();
            let f = reader.read(with_smaps, &mut errors);
            let file = |i: usize| current[i].as_deref();
            let want_stat = file(0).and_then(|b| stat::parse_without_comm(b).ok());
            let want_status = file(2).and_then(|b| status::parse(b).ok());
            let want_statm = match want_status.and_then(|s| s.as_statm()) {
                Some(m) => Some(m),
                None => file(1).and_then(|b| statm::parse(b, page_size::page_size()).ok()),
            };
            let want_smaps = if with_smaps {
                file(3).and_then(|b| smaps_rollup::parse(b).ok())
            } else {
                None
            };
            assert_eq!(f.stat, want_stat, "process: stat");
            assert_eq!(f.status, want_status, "process: status");
            assert_eq!(f.statm, want_statm, "process: statm");
            assert_eq!(f.smaps, want_smaps, "process: smaps_rollup");
            reach(
                u64::from(f.stat.is_some())
                    + u64::from(f.statm.is_some())
                    + u64::from(f.status.is_some())
                    + u64::from(f.smaps.is_some()),
            );
        }
    });
}
