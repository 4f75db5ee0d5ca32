//! Replays recorded runs through the leak detector, offline and deterministically: the samples
//! `npm run eval:leak -- --traces DIR` wrote, at the eval's settings or at any other.
//!
//!   cargo run --release --no-default-features --features replay --example leak_replay -- DIR/*.csv
//!   ... -- --interval 1000 --window 300000 DIR/*.csv     (one setting; default: both of the eval)
//!   ... -- --metric tree DIR/child-leak.csv               (treeRss instead of rss)
//!   ... -- --limit 536870912 --heap-limit 271581184 DIR/*.csv
//!                             (as if in a 512 MiB container: the look-out counts to the limits)
//!   ... -- --limits-over-peak 1.25 DIR/*.csv
//!                             (each run as if its limits were 1.25 x its own peak metric and heap)
//!
//! Each CSV is `t_ms,rss,heap_used,external,heap_total,tree_rss` at the run's fastest sampling
//! (250 ms in the eval, 1 s with the defaults); a slower setting takes every n-th row, and a
//! faster one than the rows is skipped (printed as `skipped`). It prints, per file and setting, what the
//! detector reported and when (seconds after the load started), so a change to the rule can be
//! tried on every recorded run in a second instead of an hour of real load.

use std::fs;

use memsentry::detect::leak::LeakTransition;
use memsentry::detect::replay::{ReplayLimits, Trace};

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut settings = vec![(250u64, 60_000u64), (1000, 300_000)];
    let mut custom = None::<(u64, u64)>;
    let mut tree = false;
    let mut limits = ReplayLimits::default();
    let mut over_peak = None::<f64>;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--interval" => {
                let v = args.next().and_then(|v| v.parse().ok()).expect("--interval ms");
                custom = Some((v, custom.map_or(60_000, |c| c.1)));
            }
            "--window" => {
                let v = args.next().and_then(|v| v.parse().ok()).expect("--window ms");
                custom = Some((custom.map_or(250, |c| c.0), v));
            }
            "--metric" => tree = args.next().as_deref() == Some("tree"),
            "--limit" => {
                limits.memory = Some(args.next().and_then(|v| v.parse().ok()).expect("--limit bytes"))
            }
            "--heap-limit" => {
                limits.heap = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--heap-limit bytes"),
                )
            }
            "--limits-over-peak" => {
                over_peak = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--limits-over-peak factor"),
                )
            }
            _ => files.push(a),
        }
    }
    if let Some(c) = custom {
        settings = vec![c];
    }
    for path in &files {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let trace = Trace::parse(&text);
        let name = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".csv");
        let tree_file = tree || name.starts_with("child");
        let limits = match over_peak {
            Some(f) => {
                let (metric, heap) = trace.peaks(tree_file);
                ReplayLimits {
                    memory: Some(metric * f),
                    heap: Some(heap * f),
                }
            }
            None => limits,
        };
        for &(interval, window) in &settings {
            if !trace.samples_at(interval) {
                println!(
                    "{name:<22} w{:<4} skipped (rows every {} ms)",
                    window / 1000,
                    trace.row_period_ms()
                );
                continue;
            }
            let out: Vec<String> = trace
                .replay_with_limits(interval, window, tree_file, limits)
                .into_iter()
                .map(|(t, tr)| match tr {
                    LeakTransition::Started(e) => format!(
                        "S{t:.0}({}, {:.1} MiB/min)",
                        e.suspect.as_str(),
                        e.slope_bytes_per_sec * 60.0 / 1048576.0
                    ),
                    LeakTransition::Ended(_) => format!("E{t:.0}"),
                })
                .collect();
            println!("{name:<22} w{:<4} {}", window / 1000, out.join(" "));
        }
    }
}
