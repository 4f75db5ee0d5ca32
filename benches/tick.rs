//! The sampler tick after a sleep, as the sampler thread runs it: thread CPU per tick (the figure
//! DESIGN.md budgets), for the parts of the tick in turn, interleaved so that all see the same
//! machine load. `cargo bench --no-default-features --bench tick [-- <interval_ms> <rounds>]`.
//!
//! - `pread raw`: the files a default tick reads, each pread to EOF into a fixed buffer with a
//!   trivial digit scan: what bench/tick-baseline.c does, in Rust.
//! - `ProcFile reads`: the same files through `ProcFile::read`, no parsing.
//! - `collector read`: `Collector::read_with_changes` (reads and parsers, no children).
//! - `tick`: `Shared::tick` with the default options (leak detector on rss, 3600 history).
//! - `tick tree`: the same with `children: 'tree'`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use memsentry::cgroup::CgroupReader;
use memsentry::children::ChildrenMode;
use memsentry::detect::leak::LeakConfig;
use memsentry::procfs::proc_file::ProcFile;
use memsentry::sample::Metric;
use memsentry::sampler::collector::{Collector, CollectorConfig};
use memsentry::sampler::{Event, EventSink, LeakSettings, SamplerConfig, Shared};

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Null;
impl EventSink for Null {
    fn emit(&self, event: Event) {
        std::hint::black_box(event);
    }
}

fn files() -> Vec<PathBuf> {
    let mut v = vec![
        PathBuf::from("/proc/self/status"),
        PathBuf::from("/proc/self/stat"),
    ];
    if let Ok(Some(cg)) = CgroupReader::discover(Path::new("/proc"), "self", None) {
        let dir = cg.dir().to_path_buf();
        for name in [
            "memory.usage_in_bytes",
            "memory.limit_in_bytes",
            "memory.stat",
            "memory.oom_control",
            "memory.current",
            "memory.max",
            "memory.high",
            "memory.events",
        ] {
            if dir.join(name).exists() {
                v.push(dir.join(name));
            }
        }
    }
    if Path::new("/proc/pressure/memory").exists() {
        v.push(PathBuf::from("/proc/pressure/memory"));
    }
    v
}

/// What the C program does per tick: each file read from offset 0 until a read returns 0,
/// then scanned; returns the scans' sum.
fn read_raw(files: &[File], buf: &mut [u8]) -> u64 {
    let mut sum = 0u64;
    for f in files {
        let mut len = 0;
        loop {
            let n = f.read_at(&mut buf[len..], len as u64).unwrap();
            if n == 0 {
                break;
            }
            len += n;
        }
        sum = sum.wrapping_add(scan(&buf[..len]));
    }
    sum
}

fn scan(b: &[u8]) -> u64 {
    let (mut sum, mut v) = (0u64, 0u64);
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        } else {
            sum = sum.wrapping_add(v);
            v = 0;
        }
    }
    sum.wrapping_add(v)
}

fn shared(children: ChildrenMode) -> Arc<Shared> {
    shared_with(children, true)
}

fn shared_with(children: ChildrenMode, leak: bool) -> Arc<Shared> {
    Shared::new(
        SamplerConfig {
            interval: Duration::from_millis(10),
            history_size: 3600,
            thresholds: vec![],
            leak: leak.then_some(LeakSettings {
                config: LeakConfig {
                    window_ms: 600_000,
                    min_slope: None,
                    warmup_ms: None,
                },
                metric: Metric::Rss,
            }),
            limit: None,
            heap_in_samples: false,
            heap_limit: None,
        },
        Collector::new(CollectorConfig {
            children,
            ..CollectorConfig::default()
        }),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let interval = Duration::from_millis(args.first().and_then(|a| a.parse().ok()).unwrap_or(10));
    let rounds: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    // A third argument runs that one part alone (for `perf record`).
    let only: Option<usize> = args.get(2).and_then(|a| a.parse().ok());
    let per_round = 50;

    let paths = files();
    let raw: Vec<File> = paths.iter().map(|p| File::open(p).unwrap()).collect();
    let mut raw_buf = vec![0u8; 4096];
    let mut procfiles: Vec<ProcFile> = paths.iter().map(ProcFile::new).collect();
    let mut collector = Collector::new(CollectorConfig::default());
    let own = shared(ChildrenMode::None);
    let tree = shared(ChildrenMode::Tree);
    // Children for the tree variant: two sleeping processes.
    let mut kids: Vec<_> = (0..2)
        .map(|_| std::process::Command::new("sleep").arg("600").spawn().unwrap())
        .collect();

    let mut process = memsentry::procfs::process::ProcessReader::new(Path::new("/proc"), "self");
    let mut cgroup = CgroupReader::discover(Path::new("/proc"), "self", None)
        .ok()
        .flatten();
    let names = [
        "pread raw (C-like)",
        "ProcFile reads",
        "collector read",
        "tick",
        "tick tree",
        "raw: status, stat",
        "ProcessReader::read",
        "raw: cgroup, pressure",
        "CgroupReader::read",
        "no read: scan status+stat",
        "no read: parse status+stat",
        "tick, no leak detector",
    ];
    let mut total = [0u64; 12];
    let mut count = [0u64; 12];
    let no_leak = shared_with(ChildrenMode::None, false);
    let status_bytes = std::fs::read("/proc/self/status").unwrap();
    let stat_bytes = std::fs::read("/proc/self/stat").unwrap();
    let mut sink = 0u64;
    let mut errors = Vec::new();
    for round in 0..rounds {
        for k in 0..names.len() {
            let which = (k + round as usize) % names.len();
            if only.is_some_and(|o| o != which) {
                continue;
            }
            for _ in 0..per_round {
                std::thread::sleep(interval);
                let t0 = thread_cpu_ns();
                match which {
                    0 => {
                        sink = sink.wrapping_add(read_raw(&raw, &mut raw_buf));
                    }
                    1 => {
                        for f in &mut procfiles {
                            sink = sink.wrapping_add(scan(f.read().unwrap()));
                        }
                    }
                    2 => {
                        errors.clear();
                        let s = collector.read(false, &mut errors);
                        sink = sink.wrapping_add(s.rss.unwrap_or(0));
                    }
                    3 => own.tick(&Null),
                    4 => tree.tick(&Null),
                    5 | 7 => {
                        let range = if which == 5 { 0..2 } else { 2..raw.len() };
                        sink = sink.wrapping_add(read_raw(&raw[range], &mut raw_buf));
                    }
                    6 => {
                        errors.clear();
                        let f = process.read(false, &mut errors);
                        sink = sink.wrapping_add(f.stat.map_or(0, |s| s.threads));
                    }
                    9 => {
                        sink = sink.wrapping_add(scan(std::hint::black_box(&status_bytes)));
                        sink = sink.wrapping_add(scan(std::hint::black_box(&stat_bytes)));
                    }
                    10 => {
                        let st = memsentry::procfs::status::parse(std::hint::black_box(&status_bytes));
                        sink = sink.wrapping_add(st.map_or(0, |s| s.hwm.unwrap_or(0)));
                        let st = memsentry::procfs::stat::parse(std::hint::black_box(&stat_bytes));
                        sink = sink.wrapping_add(st.map_or(0, |s| s.threads));
                    }
                    11 => no_leak.tick(&Null),
                    _ => {
                        errors.clear();
                        if let Some(cg) = cgroup.as_mut() {
                            let s = cg.read(&mut errors);
                            sink = sink.wrapping_add(s.usage.unwrap_or(0));
                        }
                    }
                }
                total[which] += thread_cpu_ns() - t0;
                count[which] += 1;
            }
        }
    }
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    println!(
        "thread CPU per tick after a {} ms sleep, {} files ({})",
        interval.as_millis(),
        paths.len(),
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, name) in names.iter().enumerate() {
        if count[i] == 0 {
            continue;
        }
        println!(
            "{name:<22} {:>8.1} us  ({:.2}x raw)",
            total[i] as f64 / count[i] as f64 / 1e3,
            (total[i] as f64 / count[i] as f64) / (total[0] as f64 / count[0] as f64)
        );
    }
    std::hint::black_box(sink);
}
