use super::read::read_cmdline;
use super::*;
use crate::procfs::page_size::page_size;
use crate::test_tree::{copy_dir, TempTree};
use std::process::{Child, Command, Stdio};
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

/// A writable copy of a fixture.
fn copy(variant: &str) -> TempTree {
    TempTree::copy_of(&fixture(variant), &format!("children-{variant}"))
}

/// What the children tests do to a fixture tree.
trait ChildTree {
    fn add_child(&self, pid: u32, ppid: u32, start_time: u64);
    fn remove_child_for_test(&self, pid: u32);
}

impl ChildTree for TempTree {
    /// A new child `pid` of `ppid` (a copy of 101 renumbered), listed in the parent's main
    /// thread's `children` file when that file exists.
    fn add_child(&self, pid: u32, ppid: u32, start_time: u64) {
        copy_dir(&self.root().join("101"), &self.root().join(pid.to_string()));
        fs::rename(
            self.root().join(format!("{pid}/task/101")),
            self.root().join(format!("{pid}/task/{pid}")),
        )
        .unwrap();
        self.write(
            &format!("{pid}/stat"),
            stat_line(pid, "sleep", ppid, 95, start_time),
        );
        let list = self.root().join(format!("{ppid}/task/{ppid}/children"));
        if list.exists() {
            let mut s = fs::read_to_string(&list).unwrap();
            s.push_str(&format!("{pid} "));
            fs::write(&list, s).unwrap();
        }
    }

    fn remove_child_for_test(&self, pid: u32) {
        fs::remove_dir_all(self.root().join(pid.to_string())).unwrap();
        for list in ["100/task/100/children", "100/task/105/children"] {
            if let Ok(s) = fs::read_to_string(self.root().join(list)) {
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
fn a_child_whose_read_hangs_is_skipped_for_a_while_and_said_once() {
    let tree = copy(WITH);
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
        slow[0]
            .message
            .contains("child 101 is skipped, and read again in 60 s"),
        "{}",
        slow[0]
    );

    // For the next minute 101 is listed without figures and not read: no wait, the same error
    // (one key, so the sampler reports it once), the others read as before.
    let started = Instant::now();
    let (samples, errors, _) = read(&mut t, 1000 + STALL_RETRY_FIRST_MS - 1, false);
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

/// Makes `path` a FIFO whose open() for reading waits for a writer that comes `after_ms` later
/// (a read that blocks, as in a child in D state) and writes `content`. The writer gives up 5 s
/// after that if no read comes, so a test whose read never comes fails rather than hangs.
fn slow_file(path: &Path, content: &'static [u8], after_ms: u64) -> std::thread::JoinHandle<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(after_ms));
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up {
            // Non-blocking: fails (ENXIO) until a reader has the FIFO open.
            let open = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path);
            if let Ok(mut w) = open {
                let _ = std::io::Write::write_all(&mut w, content);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[test]
fn a_slow_child_is_read_again_after_a_wait_that_doubles_while_it_stays_slow() {
    let tree = copy(WITH);
    let cmdline = tree.root().join("101/cmdline");
    let stalls = |errors: &[ReadError]| -> Vec<String> {
        errors
            .iter()
            .filter(|e| e.code() == "ETIMEDOUT")
            .map(|e| e.message.clone())
            .collect()
    };
    // Each cmdline reads empty, so the next read of the child reads it again (as for a child
    // caught mid-exec).
    let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
    let writer = slow_file(&cmdline, b"", 1200);
    let (_, errors, _) = read(&mut t, 0, false);
    writer.join().unwrap();
    let slow = stalls(&errors);
    assert!(
        slow.len() == 1 && slow[0].contains("read again in 60 s"),
        "{slow:?}"
    );

    // Slow again when it is read again: skipped twice as long.
    let writer = slow_file(&cmdline, b"", 1200);
    let (samples, errors, _) = read(&mut t, STALL_RETRY_FIRST_MS, false);
    writer.join().unwrap();
    assert!(samples[0].rss.is_some(), "read again at the retry");
    let slow = stalls(&errors);
    assert!(
        slow.len() == 1 && slow[0].contains("read again in 120 s"),
        "{slow:?}"
    );
    // A file that reads at once from here on: a read that should not come fails, not hangs.
    fs::remove_file(&cmdline).unwrap();
    fs::write(&cmdline, b"").unwrap();
    let (samples, _, _) = read(&mut t, 3 * STALL_RETRY_FIRST_MS - 1, false);
    assert_eq!(samples[0].rss, None, "still skipped");

    // Fast at the next retry: read from then on, no error.
    for now in [3 * STALL_RETRY_FIRST_MS, 3 * STALL_RETRY_FIRST_MS + 1000] {
        let (samples, errors, _) = read(&mut t, now, false);
        assert_eq!(pids(&samples), [101, 102, 103]);
        assert!(samples[0].rss.is_some(), "read at {now}");
        assert!(errors.is_empty(), "{errors:?}");
    }

    // And a fast read starts the waits over: slow once more, skipped a minute, not four.
    let writer = slow_file(&cmdline, b"", 1200);
    let (_, errors, _) = read(&mut t, 3 * STALL_RETRY_FIRST_MS + 2000, false);
    writer.join().unwrap();
    let slow = stalls(&errors);
    assert!(
        slow.len() == 1 && slow[0].contains("read again in 60 s"),
        "{slow:?}"
    );
}

#[test]
fn children_that_went_slow_together_are_read_again_one_per_pass() {
    let tree = copy(WITH);
    let mut t = ChildrenTracker::new(tree.root(), SELF, ChildrenMode::Direct, 0);
    // Read one after the other: 101 waits 1.2 s, then 102 until 2.5 s.
    let writers: Vec<_> = [(101, 1200), (102, 2500)]
        .iter()
        .map(|&(pid, after)| {
            slow_file(
                &tree.root().join(format!("{pid}/cmdline")),
                b"sleep\x0030\x00",
                after,
            )
        })
        .collect();
    let (_, errors, _) = read(&mut t, 0, false);
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!(
        errors.iter().filter(|e| e.code() == "ETIMEDOUT").count(),
        2,
        "{errors:?}"
    );
    for pid in [101, 102] {
        let path = tree.root().join(format!("{pid}/cmdline"));
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"sleep\x0030\x00").unwrap();
    }
    // Both come due at once: the first pass reads one of them, the next the other.
    let read_now = |t: &mut ChildrenTracker, now| {
        let (samples, _, _) = read(t, now, false);
        samples
            .iter()
            .filter(|s| s.rss.is_some())
            .map(|s| s.pid)
            .collect::<Vec<_>>()
    };
    assert_eq!(read_now(&mut t, STALL_RETRY_FIRST_MS), [101, 103]);
    assert_eq!(read_now(&mut t, STALL_RETRY_FIRST_MS + 100), [101, 102, 103]);
}

#[test]
fn a_slow_childs_wait_doubles_up_to_its_cap() {
    let mut waits = vec![Stall::next_backoff(None)];
    for _ in 0..8 {
        let last = *waits.last().unwrap();
        waits.push(Stall::next_backoff(Some(last)));
    }
    assert_eq!(
        waits[..3],
        [
            STALL_RETRY_FIRST_MS,
            2 * STALL_RETRY_FIRST_MS,
            4 * STALL_RETRY_FIRST_MS
        ]
    );
    assert_eq!(*waits.last().unwrap(), STALL_RETRY_MAX_MS);
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
}

#[test]
fn a_removed_child_is_an_exit_and_its_files_are_closed() {
    for variant in [WITH, WITHOUT] {
        let tree = copy(variant);
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
    let tree = copy(WITH);
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
        let tree = copy(variant);
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
        let tree = copy(variant);
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
    let tree = copy(WITH);
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
            let tree = copy(variant);
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
    let tree = copy(WITHOUT);
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
            let tree = copy(variant);
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
    let tree = copy(WITH);
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
        assert!(errors.iter().any(
            |e| e.path.ends_with("101/stat") && e.kind == ReadErrorKind::Io(io::ErrorKind::IsADirectory)
        ));
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
    let tree = copy(WITHOUT);
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
    let tree = copy(WITH);
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
    let tree = copy(WITHOUT);
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
    let dir = copy(WITHOUT);
    let n = MAX_CHILDREN as u32 + 6;
    for pid in 1000..1000 + n {
        dir.write(&format!("{pid}/stat"), stat_line(pid, "w", SELF, 1, 8000));
    }
    let mut t = ChildrenTracker::new(dir.root(), SELF, ChildrenMode::Direct, 0);
    let (samples, errors, changes) = read(&mut t, 0, false);
    assert_eq!(samples.len(), MAX_CHILDREN);
    assert_eq!(changes.len(), MAX_CHILDREN);
    assert_eq!(t.dropped(), 3 + 6);
    // Said with every reading while some are left out, under one key (the sampler says it once).
    let over = |errors: &[ReadError]| -> Vec<ReadError> {
        errors
            .iter()
            .filter(|e| e.code() == "ERR_MEMSENTRY_TOO_MANY_CHILDREN")
            .cloned()
            .collect()
    };
    let first = over(&errors);
    assert_eq!(first.len(), 1, "{errors:?}");
    assert!(first[0].message.contains("9 are not read"), "{}", first[0]);
    let (samples, errors, changes) = read(&mut t, 1, false);
    assert_eq!(samples.len(), MAX_CHILDREN);
    assert!(changes.is_empty());
    assert_eq!(t.dropped(), 9, "counted once per child");
    assert_eq!(over(&errors).len(), 1);
    assert_eq!(over(&errors)[0].key(), first[0].key());

    // Once the extras are gone, nothing more to say.
    for pid in 1000 + n - 20..1000 + n {
        fs::remove_dir_all(dir.root().join(pid.to_string())).unwrap();
    }
    let (_, errors, _) = read(&mut t, 2, false);
    assert!(over(&errors).is_empty(), "{errors:?}");
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
    // Judged by the errno kept, not by the text: a message that merely ends like ESRCH's is not.
    assert!(!is_gone(&ReadError::io(p, &io::Error::other("(os error 3)"))));
}

#[test]
fn cmdline_and_pid_parsing() {
    let tree = copy(WITH);
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
    // It may be caught between fork and exec (as "sh" with sh's command line, or mid-exec); the
    // exec changes its comm, which re-reads the command line.
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
        assert!(Instant::now() < deadline, "grandchild never exec'd: {g:?}");
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
