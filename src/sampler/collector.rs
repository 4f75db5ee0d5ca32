//! Turns the readers' output into one `Sample`: own process files, `MemTotal` (read once),
//! fault rates from the previous reading, smaps at its own cadence, the latest heap figures.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::cgroup::{CgroupReader, CgroupSample};
use crate::children::{ChildChange, ChildrenMode, ChildrenTracker};
use crate::procfs::meminfo;
use crate::procfs::proc_file::ProcFile;
use crate::procfs::process::ProcessReader;
use crate::procfs::read_error::{ReadError, ReadErrorKind};
use crate::sample::{HeapFigures, Sample};
use crate::sampler::undelivered::Undelivered;

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub proc_root: PathBuf,
    /// 0: never read smaps_rollup; n: on every n-th reading (1 = every reading).
    pub smaps_every_n: u32,
    /// Where the cgroup mount points from mountinfo are looked up: `None` is the real
    /// filesystem; a fixture tree otherwise.
    pub cgroup_root: Option<PathBuf>,
    pub children: ChildrenMode,
    /// Read the process's memory cgroup on every reading.
    pub cgroup: bool,
    /// How often to look for new children; known ones are read on every reading.
    pub discover_every_ms: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            proc_root: PathBuf::from("/proc"),
            smaps_every_n: 0,
            cgroup_root: None,
            children: ChildrenMode::None,
            cgroup: true,
            discover_every_ms: 1000,
        }
    }
}

#[derive(Debug)]
pub struct Collector {
    config: CollectorConfig,
    own: ProcessReader,
    pid: u32,
    mem_total: Option<u64>,
    mem_total_error: Option<ReadError>,
    origin: Instant,
    readings: u64,
    /// (mono_ms, minor, major) of the previous reading, for per-second rates.
    prev_faults: Option<(u64, u64, u64)>,
    heap: Option<HeapFigures>,
    cgroup: Option<CgroupReader>,
    /// A discovery failure or fallback, or rules on cgroup metrics with no cgroup to read
    /// ([`Collector::require_cgroup`]), reported with every reading (the sampler reports it
    /// once).
    cgroup_error: Option<ReadError>,
    /// The cgroup's memory limit as first read, for `limit: 'auto'` and percent thresholds.
    initial_cgroup: Option<CgroupSample>,
    children: Option<ChildrenTracker>,
    /// Children seen appearing or exiting by a `read` (a `snapshot()`), which hands none out:
    /// the next `read_with_changes` (a tick) reports them first, so no spawn or exit is lost.
    undelivered: Undelivered,
}

/// At most this many undelivered changes are kept (snapshots while the sentry is stopped, say);
/// see `Undelivered` for what goes when full.
const MAX_UNDELIVERED: usize = 1024;

impl Collector {
    pub fn new(config: CollectorConfig) -> Self {
        let (mem_total, mem_total_error) = read_mem_total(&config.proc_root);
        let (mut cgroup, cgroup_error) = match config
            .cgroup
            .then(|| CgroupReader::discover(&config.proc_root, "self", config.cgroup_root.as_deref()))
        {
            None | Some(Ok(None)) => (None, None),
            // A fallback directory is read, and why it may not be ours is reported.
            Some(Ok(Some(reader))) => {
                let note = reader.fallback().cloned();
                (Some(reader), note)
            }
            Some(Err(e)) => (None, Some(e)),
        };
        let initial_cgroup = cgroup.as_mut().map(|c| c.read(&mut Vec::new()));
        let pid = own_pid(&config.proc_root);
        let children = (config.children != ChildrenMode::None)
            .then(|| ChildrenTracker::new(&config.proc_root, pid, config.children, config.discover_every_ms));
        Collector {
            children,
            cgroup,
            cgroup_error,
            initial_cgroup,
            own: ProcessReader::new(&config.proc_root, "self"),
            pid,
            mem_total,
            mem_total_error,
            origin: Instant::now(),
            readings: 0,
            prev_faults: None,
            heap: None,
            undelivered: Undelivered::new(MAX_UNDELIVERED),
            config,
        }
    }

    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// The cgroup's memory limit (bytes) as read at construction; `None` when unlimited or
    /// no memory cgroup was found.
    pub fn cgroup_limit(&self) -> Option<u64> {
        self.initial_cgroup.as_ref().and_then(|c| c.limit)
    }

    /// Says, with every reading (the sampler reports it once), that `watched` (the rules on
    /// cgroup metrics, e.g. `thresholds[0] (workingSet)`) can never fire: the cgroup was asked
    /// for and there is none to read (no `/proc/<pid>/cgroup`, no `memory` controller in it, or
    /// its directory not mounted or without a usage file, as in a v2 root cgroup). Without it
    /// such a rule stays silent with a null value. A discovery that failed already says so.
    pub fn require_cgroup(&mut self, watched: &str) {
        if !self.config.cgroup || self.cgroup.is_some() || self.cgroup_error.is_some() {
            return;
        }
        let path = self.config.proc_root.join("self/cgroup");
        self.cgroup_error = Some(ReadError {
            message: format!(
                "no memory cgroup to read for this process (from {}: none listed, or its \
                 directory not mounted or without a usage file): workingSet and cgroupUsage stay \
                 null, and {watched} can never fire",
                path.display()
            ),
            kind: ReadErrorKind::Io(std::io::ErrorKind::NotFound),
            os_error: None,
            path,
        });
    }

    /// Whether a reading reads other processes' entries (the children's), which can block for
    /// as long as such a process is stuck in the kernel; this process's own cannot.
    pub fn reads_other_processes(&self) -> bool {
        self.config.children != ChildrenMode::None
    }

    /// In readings `interval_ms` apart, how often every file is read at least once: smaps on
    /// every n-th, children found once per `discover_every_ms` (a reading more, for ticks that
    /// come a ms early). A failure not seen again within that many has cleared.
    pub fn cadence_in_readings(&self, interval_ms: u64) -> u64 {
        let smaps = u64::from(self.config.smaps_every_n);
        let discovery = if self.config.children != ChildrenMode::None && self.config.discover_every_ms > 0 {
            self.config.discover_every_ms.div_ceil(interval_ms.max(1)) + 1
        } else {
            1
        };
        smaps.max(discovery).max(1)
    }

    /// The instant `mono_ms` counts from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    pub fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// The newest heap figures from the JS side; merged into every following sample.
    pub fn set_heap(&mut self, heap: HeapFigures) {
        self.heap = Some(heap);
    }

    /// One reading. `force_smaps` reads smaps_rollup this time whatever the cadence (a
    /// `snapshot()` asked for now). Failed reads leave fields `None` and add to `errors`.
    pub fn read(&mut self, force_smaps: bool, errors: &mut Vec<ReadError>) -> Sample {
        let mut changes = Vec::new();
        let s = self.read_into(force_smaps, errors, &mut changes);
        for change in changes {
            self.undelivered.push(change);
        }
        s
    }

    /// Gives back changes a reading handed out that nobody reported (a tick whose sentry was
    /// stopped while it read): the next tick reports them, as it does a `read`'s.
    pub fn keep_undelivered(&mut self, changes: Vec<ChildChange>) {
        for change in changes {
            self.undelivered.push(change);
        }
    }

    /// `read`, also reporting children that appeared or exited since the previous reading
    /// reported them (a `read` in between reports none).
    pub fn read_with_changes(
        &mut self,
        force_smaps: bool,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> Sample {
        self.undelivered.take_into(changes);
        let own_from = changes.len();
        let s = self.read_into(force_smaps, errors, changes);
        self.undelivered.drop_exits_of_dropped(changes, own_from);
        s
    }

    /// The reading itself, adding the children's changes to `changes`.
    fn read_into(
        &mut self,
        force_smaps: bool,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) -> Sample {
        let n = u64::from(self.config.smaps_every_n);
        let with_smaps = n > 0 && (force_smaps || self.readings.is_multiple_of(n));
        self.readings += 1;
        if let Some(e) = &self.mem_total_error {
            errors.push(e.clone());
        }

        if let Some(e) = &self.cgroup_error {
            errors.push(e.clone());
        }

        let f = self.own.read(with_smaps, errors);
        let mono_ms = self.mono_ms();
        let mut s = Sample {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0),
            mono_ms,
            pid: self.pid,
            smaps: f.smaps,
            heap: self.heap,
            cgroup: self.cgroup.as_mut().map(|c| c.read(errors)),
            ..Sample::default()
        };
        if let Some(m) = f.statm {
            s.rss = Some(m.rss);
            s.vsz = Some(m.vsz);
            s.shared = Some(m.shared);
            s.text = Some(m.text);
            s.data = Some(m.data);
            s.mem_percent = self.mem_total.map(|total| m.rss as f64 * 100.0 / total as f64);
        }
        if let Some(st) = f.status {
            s.rss_anon = st.rss_anon;
            s.rss_file = st.rss_file;
            s.rss_shmem = st.rss_shmem;
            s.swap = st.swap;
            s.hwm = st.hwm;
        }
        if let Some(tracker) = self.children.as_mut() {
            let children = tracker.read(mono_ms, with_smaps, errors, changes);
            // Saturating, as the parsers are: a garbled figure near 2^64 must not panic the
            // sampler (debug builds) or wrap to a small tree (release).
            let children_rss = children.iter().filter_map(|c| c.rss).fold(0, u64::saturating_add);
            s.children_rss = Some(children_rss);
            s.tree_rss = s.rss.map(|own| own.saturating_add(children_rss));
            if let Some(own) = s.smaps {
                let children_pss = children.iter().filter_map(|c| c.pss).fold(0, u64::saturating_add);
                s.tree_pss = Some(own.pss.saturating_add(children_pss));
            }
            s.children = Some(children);
        }
        if let Some(st) = f.stat {
            s.threads = Some(st.threads);
            s.minor_faults = Some(st.minor_faults);
            s.major_faults = Some(st.major_faults);
            if let Some((t0, minor0, major0)) = self.prev_faults {
                let secs = mono_ms.saturating_sub(t0) as f64 / 1000.0;
                if secs > 0.0 {
                    s.minor_faults_per_sec = Some(st.minor_faults.saturating_sub(minor0) as f64 / secs);
                    s.major_faults_per_sec = Some(st.major_faults.saturating_sub(major0) as f64 / secs);
                }
            }
            self.prev_faults = Some((mono_ms, st.minor_faults, st.major_faults));
        }
        s
    }
}

/// The pid of `<proc_root>/self`: the real pid on /proc, the fixture's on a fixture tree.
fn own_pid(proc_root: &Path) -> u32 {
    crate::procfs::proc_file::read_bounded(&proc_root.join("self/stat"))
        .ok()
        .and_then(|b| crate::procfs::stat::parse(&b).ok())
        .and_then(|s| u32::try_from(s.pid).ok())
        .unwrap_or_else(std::process::id)
}

fn read_mem_total(proc_root: &Path) -> (Option<u64>, Option<ReadError>) {
    match ProcFile::new(proc_root.join("meminfo")).read_parsed(meminfo::parse_mem_total) {
        Ok(total) => (Some(total), None),
        Err(e) => (None, Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_live_reading_fills_the_default_fields() {
        let mut c = Collector::new(CollectorConfig::default());
        let mut errors = Vec::new();
        let a = c.read(false, &mut errors);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = c.read(false, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(a.rss.unwrap() > 0 && a.rss_anon.is_some() && a.hwm.is_some());
        assert!(a.mem_percent.unwrap() > 0.0 && a.mem_percent.unwrap() < 100.0);
        assert!(a.minor_faults_per_sec.is_none(), "first reading has no rate");
        assert!(b.minor_faults_per_sec.unwrap() >= 0.0);
        assert!(a.smaps.is_none());
        assert_eq!(a.pid, std::process::id());
        // This machine runs the process in a v1 memory cgroup.
        if std::fs::read_to_string("/proc/self/cgroup")
            .unwrap()
            .contains(":memory:")
        {
            let cg = a.cgroup.expect("a cgroup reading");
            assert!(cg.usage.unwrap() > 0);
            assert!(cg.working_set.unwrap() <= cg.usage.unwrap());
        }
    }

    #[test]
    fn a_v2_fixture_tree_gives_usage_limit_and_working_set() {
        let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup/v2-nested");
        let c = Collector::new(CollectorConfig {
            proc_root: fixtures.join("proc"),
            cgroup_root: Some(fixtures.clone()),
            ..Default::default()
        });
        let limit =
            std::fs::read_to_string(fixtures.join("sys/fs/cgroup/kubepods/burstable/pod123/ctr/memory.max"))
                .unwrap();
        assert_eq!(c.cgroup_limit(), Some(limit.trim().parse().unwrap()));
    }

    #[test]
    fn children_of_this_process_are_summed_into_tree_rss() {
        let mut kids: Vec<_> = (0..2)
            .map(|_| std::process::Command::new("sleep").arg("5").spawn().unwrap())
            .collect();
        let mut c = Collector::new(CollectorConfig {
            children: ChildrenMode::Direct,
            discover_every_ms: 0,
            ..CollectorConfig::default()
        });
        let mut errors = Vec::new();
        let mut changes = Vec::new();
        let s = c.read_with_changes(false, &mut errors, &mut changes);
        let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
        let ours: Vec<_> = s
            .children
            .as_ref()
            .unwrap()
            .iter()
            .filter(|c| pids.contains(&c.pid))
            .collect();
        assert_eq!(ours.len(), 2, "{:?}", s.children);
        let sum: u64 = s.children.as_ref().unwrap().iter().filter_map(|c| c.rss).sum();
        assert_eq!(s.children_rss, Some(sum));
        assert_eq!(s.tree_rss, Some(s.rss.unwrap() + sum));
        assert!(
            changes
                .iter()
                .filter(|c| matches!(c, ChildChange::Spawn { .. }))
                .count()
                >= 2
        );
        for k in &mut kids {
            k.kill().unwrap();
            k.wait().unwrap();
        }
        changes.clear();
        c.read_with_changes(false, &mut errors, &mut changes);
        assert!(
            changes
                .iter()
                .filter(|c| matches!(c, ChildChange::Exit { .. }))
                .count()
                >= 2,
            "{changes:?}"
        );
    }

    #[test]
    fn children_seen_by_a_read_are_reported_by_the_next_read_with_changes() {
        let mut kids: Vec<_> = (0..2)
            .map(|_| std::process::Command::new("sleep").arg("5").spawn().unwrap())
            .collect();
        let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
        let mut c = Collector::new(CollectorConfig {
            children: ChildrenMode::Direct,
            discover_every_ms: 0,
            ..CollectorConfig::default()
        });
        let mut errors = Vec::new();
        let ours = |changes: &[ChildChange], spawn: bool| {
            let mut seen: Vec<u32> = changes
                .iter()
                .filter_map(|c| match *c {
                    ChildChange::Spawn { pid, .. } if spawn => Some(pid),
                    ChildChange::Exit { pid, .. } if !spawn => Some(pid),
                    _ => None,
                })
                .filter(|p| pids.contains(p))
                .collect();
            seen.sort_unstable();
            seen
        };
        let mut sorted = pids.clone();
        sorted.sort_unstable();
        // A snapshot sees them first; the tick after it still reports them.
        let s = c.read(true, &mut errors);
        assert_eq!(
            s.children
                .as_ref()
                .unwrap()
                .iter()
                .filter(|c| pids.contains(&c.pid))
                .count(),
            2
        );
        let mut changes = Vec::new();
        c.read_with_changes(false, &mut errors, &mut changes);
        assert_eq!(ours(&changes, true), sorted, "{changes:?}");
        for k in &mut kids {
            k.kill().unwrap();
            k.wait().unwrap();
        }
        c.read(true, &mut errors);
        changes.clear();
        c.read_with_changes(false, &mut errors, &mut changes);
        assert_eq!(ours(&changes, false), sorted, "{changes:?}");
        // Reported once.
        changes.clear();
        c.read_with_changes(false, &mut errors, &mut changes);
        assert!(
            ours(&changes, true).is_empty() && ours(&changes, false).is_empty(),
            "{changes:?}"
        );
    }

    #[test]
    fn smaps_every_n_reads_on_its_cadence() {
        let mut c = Collector::new(CollectorConfig {
            smaps_every_n: 3,
            ..CollectorConfig::default()
        });
        let mut errors = Vec::new();
        let got: Vec<bool> = (0..6)
            .map(|_| c.read(false, &mut errors).smaps.is_some())
            .collect();
        assert_eq!(got, vec![true, false, false, true, false, false]);
        assert!(c.read(true, &mut errors).smaps.is_some());
    }

    #[test]
    fn garbled_children_figures_saturate_the_tree_sums() {
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/children/with-children-files/proc");
        let tree = crate::test_tree::TempTree::copy_of(&fixture, "collector-garbled-children");
        std::os::unix::fs::symlink("100", tree.root().join("self")).unwrap();
        // Each child claims nearly 2^64 bytes of RSS and of PSS: three overflow a plain sum.
        let pages = u64::MAX / crate::procfs::page_size::page_size();
        let kib = u64::MAX / 1024;
        for pid in [101, 102, 103, 104] {
            tree.write(&format!("{pid}/statm"), format!("{pages} {pages} 0 0 0 0 0\n"));
            let rollup = tree.root().join(format!("{pid}/smaps_rollup"));
            let text = fs::read_to_string(&rollup).unwrap();
            let garbled: String = text
                .lines()
                .map(|l| match l.starts_with("Pss:") {
                    true => format!("Pss:            {kib} kB\n"),
                    false => format!("{l}\n"),
                })
                .collect();
            fs::write(&rollup, garbled).unwrap();
        }
        let mut c = Collector::new(CollectorConfig {
            proc_root: tree.root().to_path_buf(),
            children: ChildrenMode::Direct,
            smaps_every_n: 1,
            ..Default::default()
        });
        let mut errors = Vec::new();
        let s = c.read(false, &mut errors);
        assert!(s.smaps.is_some(), "{errors:?}");
        assert_eq!(s.tree_pss, Some(u64::MAX));
        let read = s
            .children
            .as_ref()
            .unwrap()
            .iter()
            .filter(|c| c.rss.is_some())
            .count();
        assert!(read >= 2, "children read: {read} ({errors:?})");
        assert_eq!(s.children_rss, Some(u64::MAX));
        assert_eq!(s.tree_rss, Some(u64::MAX));
    }

    #[test]
    fn a_fixture_root_without_files_degrades_to_none_with_errors() {
        let root = std::env::temp_dir().join(format!("memsentry-empty-root-{}", std::process::id()));
        std::fs::create_dir_all(root.join("self")).unwrap();
        let mut c = Collector::new(CollectorConfig {
            proc_root: root.clone(),
            ..Default::default()
        });
        let mut errors = Vec::new();
        let s = c.read(false, &mut errors);
        assert!(s.rss.is_none() && s.threads.is_none() && s.rss_anon.is_none());
        // meminfo, statm, stat, status
        assert_eq!(errors.len(), 4, "{errors:?}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
