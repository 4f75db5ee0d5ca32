//! Deterministic "arbitrary bytes never panic" checks of every target, on a stable toolchain, in
//! a few seconds: each seed, prefixes of each seed, fixed-seed random bytes, fixed-seed mutations
//! of the seeds, and every file of `fuzz/regressions/` (named `<target>-<n>.bin`).
//!
//! A failure names the target, prints the input and writes it to
//! `fuzz/target/never-panic/<target>.bin` for `cargo fuzz run <target> <file>` or the replay test.

use std::panic::{self, AssertUnwindSafe};

use memsentry_fuzz_harness::mutate::{self, Rng};
use memsentry_fuzz_harness::{driver, fuzz_dir, join, ABSENT, SEP};

fn run_one(target: &str, input: &[u8]) {
    let d = driver(target).unwrap();
    if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| d(input))) {
        let dir = fuzz_dir().join("target/never-panic");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{target}.bin"));
        let _ = std::fs::write(&file, input);
        eprintln!(
            "{target}: panic on input {:?} (written to {})",
            String::from_utf8_lossy(input),
            file.display()
        );
        panic::resume_unwind(e);
    }
}

/// Single-file targets are cheap; the tree-backed ones write files for every input.
fn budget(target: &str) -> usize {
    match target {
        "cgroup_discover" | "cgroup_read" | "children" | "process_reader" => 150,
        _ => 3000,
    }
}

fn check(target: &str) {
    let seeds = mutate::seeds(target);
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{target}");
    let n = budget(target);
    // Seeds, whole and cut short.
    for s in &seeds {
        run_one(target, s);
        let step = (s.len() / if n > 1000 { 512 } else { 16 }).max(1);
        for cut in (0..s.len()).step_by(step) {
            run_one(target, &s[..cut]);
        }
    }
    let mut rng = Rng::new(0x6d65_6d73_656e_7472 ^ target.len() as u64);
    // Random bytes, and random parts joined as the structured targets expect.
    for _ in 0..n {
        let len = rng.below(512);
        run_one(target, &rng.bytes(len));
        let parts: Vec<Vec<u8>> = (0..rng.below(40))
            .map(|_| match rng.below(3) {
                0 => ABSENT.to_vec(),
                1 => {
                    let len = rng.below(6);
                    (0..len)
                        .flat_map(|_| mutate::TOKENS[rng.below(mutate::TOKENS.len())].to_vec())
                        .collect()
                }
                _ => {
                    let len = rng.below(64);
                    rng.bytes(len)
                }
            })
            .collect();
        let mut input = vec![rng.next_u64() as u8];
        input.extend(join(&parts));
        run_one(target, &input);
    }
    // Mutants of the seeds.
    for _ in 0..n {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(8) {
            mutate::apply(&mut input, &rng.mutation());
        }
        run_one(target, &input);
    }
}

macro_rules! never_panics {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                check(stringify!($target));
            }
        )*

        #[test]
        fn every_target_is_checked() {
            let checked = [$(stringify!($target)),*];
            for (name, _) in memsentry_fuzz_harness::TARGETS {
                assert!(checked.contains(name), "{name} has no never-panic test");
            }
        }
    };
}

never_panics!(
    statm,
    stat,
    status,
    smaps_rollup,
    meminfo,
    kb_fields,
    cgroup_discover,
    cgroup_read,
    children,
    process_reader
);

/// Files in `fuzz/regressions/`: inputs that once panicked, replayed on every run.
#[test]
fn regressions() {
    for (name, bytes) in mutate::load_dir(&fuzz_dir().join("regressions")) {
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        let target = stem.rsplit_once('-').map_or(stem, |(t, _)| t);
        assert!(driver(target).is_some(), "regressions/{name}: no target {target}");
        run_one(target, &bytes);
    }
}

#[test]
fn split_and_join_round_trip() {
    let parts: Vec<&[u8]> = vec![b"a", b"", ABSENT, b"\0b\xff"];
    let joined = join(&parts);
    assert_eq!(memsentry_fuzz_harness::split(&joined), parts);
    assert_eq!(memsentry_fuzz_harness::split(b""), vec![&b""[..]]);
    assert_eq!(memsentry_fuzz_harness::split(SEP), vec![&b""[..], &b""[..]]);
}

/// The tree-backed drivers are only worth fuzzing if their seeds get through to the readers.
#[test]
fn seeds_reach_the_readers() {
    let seed = |target: &str, name: &str| {
        std::fs::read(fuzz_dir().join("seeds").join(target).join(name))
            .unwrap_or_else(|e| panic!("seeds/{target}/{name}: {e}"))
    };
    let reached = |target: &str, name: &str| {
        driver(target).unwrap()(&seed(target, name));
        memsentry_fuzz_harness::reached()
    };
    for name in [
        "fixture-v2-nested",
        "fixture-v1-docker",
        "fixture-v1-escaped-mount",
        "fixture-v2-container-root",
    ] {
        assert_eq!(reached("cgroup_discover", name), 3, "cgroup_discover {name}");
    }
    assert_eq!(reached("cgroup_discover", "fixture-garbled-discovery"), 0);
    assert_eq!(reached("cgroup_read", "fixture-v2-nested"), 9, "all v2 fields");
    assert_eq!(
        reached("cgroup_read", "fixture-v1-limit-2ticks"),
        9,
        "all v1 fields"
    );
    assert_eq!(reached("children", "fixture-with-children-files-direct"), 3);
    assert_eq!(reached("children", "fixture-with-children-files-tree"), 4);
    assert_eq!(reached("children", "fixture-without-children-files-tree"), 4);
    assert_eq!(
        reached("children", "fixture-without-children-files-exit-and-reuse"),
        4
    );
    assert_eq!(reached("children", "live-self-and-sleep-scan"), 1);
    assert_eq!(
        reached("process_reader", "proc-self"),
        4,
        "stat, statm, status, smaps"
    );
    assert_eq!(
        reached("process_reader", "fixture-100-status-without-sizes"),
        3,
        "statm from statm"
    );
}
