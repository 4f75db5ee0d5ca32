use super::*;
use crate::procfs::read_error::ReadErrorKind;
use crate::test_tree::{copy_dir, TempTree};

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

/// A writable copy of the fixture `name`.
fn copy_of(name: &str) -> TempTree {
    TempTree::copy_of(&fixtures().join(name), &format!("cgroup-{name}"))
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
fn v2_limits_set_on_ancestors_apply_the_smallest_on_the_way_up() {
    // A Kubernetes pod limit (or a systemd slice's) above a container cgroup without its own.
    let tree = copy_of("v2-nested");
    let cg = "sys/fs/cgroup/kubepods/burstable";
    tree.write(&format!("{cg}/pod123/ctr/memory.max"), "max\n");
    tree.write(&format!("{cg}/pod123/memory.max"), "134217728\n");
    tree.write(&format!("{cg}/pod123/memory.high"), "104857600\n");
    // Higher up, a larger limit does not win; the root cgroup's decoy 'max' changes nothing.
    tree.write(&format!("{cg}/memory.max"), "1073741824\n");
    tree.write(&format!("{cg}/memory.high"), "max\n");
    let mut r = discover_tree(tree.root()).unwrap().unwrap();
    assert_eq!(r.dir(), tree.root().join(format!("{cg}/pod123/ctr")));
    let s = read_ok(&mut r);
    assert_eq!((s.limit, s.high), (Some(128 * MIB), Some(100 * MIB)));
    assert_eq!(s.usage, Some(100 * MIB), "usage stays the cgroup's own");

    // A change on the way up is seen by the next read, as the cgroup's own limit is.
    rewrite(tree.root().join(format!("{cg}/memory.max")), "67108864\n");
    assert_eq!(read_ok(&mut r).limit, Some(64 * MIB));

    // A file on the way up that fails: the smallest is not known, so neither is the limit (a
    // larger one from elsewhere would be wrong), and the file is an error.
    rewrite(tree.root().join(format!("{cg}/pod123/memory.max")), "12x\n");
    let mut errors = Vec::new();
    let s = r.read(&mut errors);
    assert_eq!((s.limit, s.high), (None, Some(100 * MIB)));
    assert_parse_errors(&errors, &["memory.max"]);
}

#[test]
fn v2_a_path_absent_under_the_mount_is_not_walked_up_into_another_cgroup() {
    // runc: the host's path, absent under the container's mount; a cgroup of the container's
    // own that shares its first part (its systemd's) is not this process's.
    let tree = copy_of("v2-container-missing");
    let cgroup = std::fs::read_to_string(tree.root().join("proc/self/cgroup")).unwrap();
    let first = cgroup
        .trim()
        .trim_start_matches("0::/")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for (f, v) in [("memory.current", "1\n"), ("memory.max", "1048576\n")] {
        tree.write(&format!("sys/fs/cgroup/{first}/{f}"), v);
    }
    let r = discover_tree(tree.root()).unwrap().unwrap();
    assert_eq!(r.dir(), tree.root().join("sys/fs/cgroup"));
}

#[test]
fn v2_a_cgroup_without_the_memory_controller_reads_its_nearest_ancestor_with_it() {
    // The parent did not enable memory for its children: the kernel charges the pod.
    let tree = copy_of("v2-nested");
    let ctr = tree.root().join("sys/fs/cgroup/kubepods/burstable/pod123/ctr");
    for f in [
        "memory.current",
        "memory.max",
        "memory.high",
        "memory.stat",
        "memory.events",
    ] {
        std::fs::remove_file(ctr.join(f)).unwrap();
    }
    let r = discover_tree(tree.root()).unwrap().unwrap();
    assert_eq!(r.dir(), ctr.parent().unwrap());
}

#[test]
fn v2_a_namespace_root_with_the_app_in_a_sub_cgroup_keeps_the_container_limit() {
    // An init in the container put the app in a sub-cgroup: the container's limit is on the
    // namespace's root, the mount point.
    let tree = copy_of("v2-container-ns");
    tree.write("proc/self/cgroup", "0::/system.slice/node.service\n");
    let sub = "sys/fs/cgroup/system.slice/node.service";
    for (f, v) in [
        ("memory.current", "1048576\n"),
        ("memory.max", "max\n"),
        ("memory.high", "max\n"),
        ("memory.stat", "anon 1\nfile 2\ninactive_file 1\n"),
        ("memory.events", "oom_kill 0\n"),
    ] {
        tree.write(&format!("{sub}/{f}"), v);
    }
    let root_limit = std::fs::read_to_string(tree.root().join("sys/fs/cgroup/memory.max")).unwrap();
    let mut r = discover_tree(tree.root()).unwrap().unwrap();
    assert_eq!(r.dir(), tree.root().join(sub));
    assert_eq!(read_ok(&mut r).limit, root_limit.trim().parse().ok());
    assert!(read_ok(&mut r).limit.is_some(), "the fixture's root has a limit");
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
fn v1_a_parent_limit_applies_through_hierarchical_memory_limit() {
    let tree = copy_of("v1-limit");
    let dir = "sys/fs/cgroup/memory/process_api/a1b2";
    tree.write(&format!("{dir}/memory.limit_in_bytes"), "9223372036854771712\n");
    let stat = std::fs::read_to_string(tree.root().join(dir).join("memory.stat")).unwrap();
    let stat = stat.replace(
        "hierarchical_memory_limit 536870912",
        "hierarchical_memory_limit 268435456",
    );
    tree.write(&format!("{dir}/memory.stat"), &stat);
    let mut r = discover_tree(tree.root()).unwrap().unwrap();
    assert_eq!(read_ok(&mut r).limit, Some(256 * MIB));

    // Without memory.stat the smallest limit is not known, whatever the cgroup's own says.
    rewrite(tree.root().join(dir).join("memory.limit_in_bytes"), "536870912\n");
    rewrite(tree.root().join(dir).join("memory.stat"), "garbled\n");
    let mut errors = Vec::new();
    assert_eq!(r.read(&mut errors).limit, None);
    assert_parse_errors(&errors, &["memory.stat"]);
    rewrite(tree.root().join(dir).join("memory.stat"), &stat);

    // Its own limit when that is the smaller, and an unlimited hierarchy changes nothing.
    rewrite(tree.root().join(dir).join("memory.limit_in_bytes"), "134217728\n");
    assert_eq!(read_ok(&mut r).limit, Some(128 * MIB));
    let stat = stat.replace(
        "hierarchical_memory_limit 268435456",
        "hierarchical_memory_limit 9223372036854771712",
    );
    rewrite(tree.root().join(dir).join("memory.stat"), &stat);
    assert_eq!(read_ok(&mut r).limit, Some(128 * MIB));
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
    let tmp = copy_of("v2-nested");
    std::fs::remove_file(tmp.root().join("proc/self/mountinfo")).unwrap();
    let err = discover_tree(tmp.root()).unwrap_err();
    assert_eq!(err.kind, ReadErrorKind::Io(io::ErrorKind::NotFound));
    assert!(err.path.ends_with("proc/self/mountinfo"));
    std::fs::remove_file(tmp.root().join("proc/self/cgroup")).unwrap();
    assert!(discover_tree(tmp.root()).unwrap().is_none());
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
    let tree = copy_of("v2-container-ns");
    let tmp = &tree.root();
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
        Some((root.join("sys/fs/cgroup"), root.join("sys/fs/cgroup")))
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
    assert_eq!(r.oom_source, OomSource::Unknown);
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
    let tmp = copy_of("v2-nested");
    let mut r = discover_tree(tmp.root()).unwrap().unwrap();
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
fn v2_before_4_13_counts_oom_and_keeps_to_it() {
    // Kernels 4.5-4.12: memory.events has no oom_kill; its oom (the cgroup hit OOM) stands in.
    let tmp = copy_of("v2-nested");
    let events = tmp
        .root()
        .join("sys/fs/cgroup/kubepods/burstable/pod123/ctr/memory.events");
    rewrite(events.clone(), "low 0\nhigh 3\nmax 1\noom 4\n");
    let mut r = discover_tree(tmp.root()).unwrap().unwrap();
    let a = read_ok(&mut r);
    assert_eq!(a.oom_events, Some(4));
    rewrite(events.clone(), "low 0\nhigh 3\nmax 2\noom 5\n");
    let b = read_ok(&mut r);
    assert!(oom_rose(&a, &b));
    // Once chosen, a read that shows another counter cannot switch to it and fake a rise.
    rewrite(events.clone(), "low 0\nhigh 3\nmax 2\noom 5\noom_kill 99\n");
    assert_eq!(read_ok(&mut r).oom_events, Some(5));
    // With neither, the file is an error.
    rewrite(events, "low 0\nhigh 3\n");
    let mut errors = Vec::new();
    assert_eq!(r.read(&mut errors).oom_events, None);
    assert_parse_errors(&errors, &["memory.events"]);
}

#[test]
fn v1_oom_kill_rise_is_detected() {
    let tmp = copy_of("v1-limit");
    let mut r = discover_tree(tmp.root()).unwrap().unwrap();
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
    let tmp = copy_of("v1-unlimited");
    let mut r = discover_tree(tmp.root()).unwrap().unwrap();
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
        let tmp = copy_of(name);
        let mut r = discover_tree(tmp.root()).unwrap().unwrap();
        let dir = r.dir().to_path_buf();
        let saved_tree = TempTree::copy_of(&dir, &format!("cgroup-{name}-saved"));
        let saved = saved_tree.root().to_path_buf();

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

        copy_dir(&saved, &dir);
        let back = read_ok(&mut r);
        let fresh = read_ok(&mut discover_tree(tmp.root()).unwrap().unwrap());
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
    let _ = parse_events_v2(b, false);
    let _ = parse_events_v2(b, true);
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

#[test]
fn lines_split_as_slice_split_does() {
    for b in [
        &b""[..],
        b"\n",
        b"a",
        b"a\n",
        b"a\nb",
        b"\n\na\n\n",
        b"some x\nfull y\n",
    ] {
        let ours: Vec<&[u8]> = formats::lines(b).collect();
        let std: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
        assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(b));
    }
}
