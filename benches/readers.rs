//! Per-reader cost on this process, in the sampler's own terms (kept-open files, pread).
//! `cargo bench --bench readers` prints microseconds per call.

use std::path::Path;
use std::time::Instant;

use memsentry::procfs::proc_file::ProcFile;
use memsentry::procfs::process::ProcessReader;
use memsentry::procfs::{stat, statm, status};

fn time<T>(name: &str, n: u32, mut f: impl FnMut() -> T) {
    for _ in 0..n / 10 {
        std::hint::black_box(f());
    }
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    println!(
        "{name:<44} {:>8.2} us",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

fn main() {
    let n = 20_000;
    let root = Path::new("/proc");
    let mut r = ProcessReader::new(root, "self");
    time("statm: pread + parse", n, || r.read_statm().unwrap());
    time("stat: pread + parse (by hand)", n, || r.read_stat().unwrap());
    time("status: pread + parse (5 keys, by hand)", n, || {
        r.read_status().unwrap()
    });
    time("smaps_rollup: pread + parse", 2_000, || {
        r.read_smaps_rollup().unwrap()
    });
    time("statm: open+read+close (std::fs::read)", n, || {
        std::fs::read("/proc/self/statm").unwrap()
    });
    let mut f = ProcFile::new("/proc/self/statm");
    time("statm: pread only", n, || f.read().unwrap().len());
    let mut f = ProcFile::new("/proc/self/stat");
    time("stat: pread only", n, || f.read().unwrap().len());
    let mut f = ProcFile::new("/proc/self/status");
    time("status: pread only", n, || f.read().unwrap().len());
    let stat_bytes = std::fs::read("/proc/self/stat").unwrap();
    let status_bytes = std::fs::read("/proc/self/status").unwrap();
    let statm_bytes = std::fs::read("/proc/self/statm").unwrap();
    time("statm parse (procfs crate StatM)", n, || {
        statm::parse(&statm_bytes, 4096).unwrap()
    });
    time("stat parse (by hand)", n, || stat::parse(&stat_bytes).unwrap());
    time("stat parse (procfs crate Stat)", n, || {
        <procfs::process::Stat as procfs::FromRead>::from_read(&stat_bytes[..]).unwrap()
    });
    time("status parse (by hand, 5 keys)", n, || {
        status::parse(&status_bytes).unwrap()
    });
    time("status parse (procfs crate Status)", n, || {
        <procfs::process::Status as procfs::FromRead>::from_read(&status_bytes[..]).unwrap()
    });
    if let Ok(Some(mut cg)) = memsentry::cgroup::CgroupReader::discover(root, "self", None) {
        time("cgroup: every file of the memory cgroup", n, || {
            cg.read(&mut Vec::new())
        });
    }
    let mut c = memsentry::sampler::collector::Collector::new(Default::default());
    let mut errors = Vec::new();
    time("collector: one whole reading", n, || c.read(false, &mut errors));
    time(
        "std::thread::available_parallelism (sanity)",
        1000,
        std::thread::available_parallelism,
    );
}
