//! The fuzzer for machines without a nightly toolchain (cargo-fuzz needs one): proptest over
//! arbitrary bytes, arbitrary parts joined by `SEP`, and structured mutations of the seeds in
//! `fuzz/seeds/<target>/`, each target in turn. Not coverage-guided, but it shrinks a failure to
//! a minimal input, which it writes to `fuzz/target/proptest/<target>.bin`.
//!
//! Environment:
//! - `MEMSENTRY_FUZZ_TARGETS=a,b`: the targets to run (default: all).
//! - `MEMSENTRY_FUZZ_SECONDS=N`: run each target for N seconds (default: stop by cases).
//! - `PROPTEST_CASES=N`: cases per target (default 256 without seconds, unbounded with them).
//! - `MEMSENTRY_FUZZ_SEED=N`: the RNG seed (default 0 without seconds, else from the clock);
//!   printed, so a run can be repeated.
//!
//! Run it in release (`cargo test --release`): the fuzz workspace's release profile keeps
//! overflow checks and debug assertions on. Add `-- --nocapture` to see the counts.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memsentry_fuzz_harness::mutate::{self, Mutation, TOKENS};
use memsentry_fuzz_harness::{driver, fuzz_dir, join, ABSENT, TARGETS};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    let token = 0..TOKENS.len();
    let number = prop_oneof![
        any::<u64>(),
        (0u32..64).prop_map(|b| 1u64 << b),
        (0u32..64, 0u64..3).prop_map(|(b, d)| (1u64 << b).wrapping_sub(d)),
        Just(u64::MAX),
        0u64..1000,
    ];
    prop_oneof![
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (at, prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at, token.clone()).prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        (at, 0usize..24, token).prop_map(|(at, len, token)| Mutation::ReplaceWithToken { at, len, token }),
        (at, 0usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, 0usize..256).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, number).prop_map(|(at, value)| Mutation::Number { at, value }),
        (at, at).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
    ]
}

fn input(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let bytes = prop::collection::vec(any::<u8>(), 0..1024);
    let part = prop_oneof![
        Just(ABSENT.to_vec()),
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(prop::sample::select(TOKENS), 0..12).prop_map(|t| t.concat()),
    ];
    let parts = (any::<u8>(), prop::collection::vec(part, 0..64)).prop_map(|(flags, parts)| {
        let mut v = vec![flags];
        v.extend(join(&parts));
        v
    });
    if seeds.is_empty() {
        return prop_oneof![bytes, parts].boxed();
    }
    let mutated = (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 0..12),
    )
        .prop_map(|(mut data, ms)| {
            for m in &ms {
                mutate::apply(&mut data, m);
            }
            data
        });
    prop_oneof![1 => bytes, 1 => parts, 6 => mutated].boxed()
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
    )
}

/// The last panic's message and location, recorded by a quiet hook (shrinking panics many times).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

#[test]
fn proptest_fuzz() {
    let seconds: Option<f64> = env("MEMSENTRY_FUZZ_SECONDS");
    let max_cases: Option<u64> = env("PROPTEST_CASES").or(if seconds.is_none() { Some(256) } else { None });
    let seed: u64 = env("MEMSENTRY_FUZZ_SEED").unwrap_or_else(|| match seconds {
        None => 0,
        Some(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    });
    let wanted: Vec<String> = match std::env::var("MEMSENTRY_FUZZ_TARGETS") {
        Ok(v) if !v.is_empty() => v.split(',').map(str::to_owned).collect(),
        _ => TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect(),
    };
    eprintln!("proptest fuzz: seed {seed}, seconds {seconds:?}, cases {max_cases:?} per target");

    panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));
    let mut failures = Vec::new();
    for target in &wanted {
        let d = driver(target).unwrap_or_else(|| panic!("no target {target}"));
        let strategy = input(mutate::seeds(target));
        let start = Instant::now();
        let deadline = seconds.map(|s| start + Duration::from_secs_f64(s));
        let mut execs = 0u64;
        let mut round = 0u64;
        let mut failure = None;
        loop {
            let left = max_cases.map_or(u64::MAX, |m| m.saturating_sub(execs));
            if left == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&seed.to_le_bytes());
            key[8..16].copy_from_slice(&round.to_le_bytes());
            key[16..24]
                .copy_from_slice(&(target.len() as u64 ^ u64::from(target.as_bytes()[0])).to_le_bytes());
            let cases = left.min(500) as u32;
            let config = Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 50_000,
                ..Config::default()
            };
            let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
            let result = runner.run(&strategy, |data| {
                d(&data);
                Ok(())
            });
            execs += u64::from(cases);
            round += 1;
            match result {
                Ok(()) => {}
                Err(TestError::Fail(_, data)) => {
                    failure = Some(data);
                    break;
                }
                Err(TestError::Abort(why)) => panic!("{target}: proptest aborted: {why}"),
            }
        }
        let secs = start.elapsed().as_secs_f64();
        match failure {
            None => eprintln!(
                "{target}: {execs} execs in {secs:.1} s ({:.0}/s), 0 crashes",
                execs as f64 / secs.max(1e-9)
            ),
            Some(data) => {
                // Replay the minimal input alone, for its own panic message and location.
                *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let replay = panic::catch_unwind(AssertUnwindSafe(|| d(&data)));
                let msg = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
                let dir = fuzz_dir().join("target/proptest");
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("{target}.bin"));
                let _ = std::fs::write(&file, &data);
                eprintln!(
                    "{target}: CRASH after ~{execs} execs in {secs:.1} s; minimal input ({} bytes) {:?} written to {}\n  {}",
                    data.len(),
                    String::from_utf8_lossy(&data),
                    file.display(),
                    if replay.is_err() { msg.unwrap_or_default() } else { "(did not panic again alone)".into() }
                );
                failures.push(target.clone());
            }
        }
    }
    let _ = panic::take_hook();
    assert!(failures.is_empty(), "crashes in {failures:?}");
}
