//! Replays recorded runs through the leak detector, offline and deterministically: the samples
//! `npm run eval:leak -- --traces DIR` wrote, at the eval's settings or at any other.
//!
//!   cargo run --release --no-default-features --features replay --example leak_replay -- DIR/*.csv
//!   ... -- --interval 1000 --window 300000 DIR/*.csv     (one setting; default: both of the eval)
//!   ... -- --metric tree DIR/child-leak.csv               (treeRss instead of rss)
//!
//! Each CSV is `t_ms,rss,heap_used,external,heap_total,tree_rss` at the eval's fastest sampling
//! (250 ms); a slower setting takes every n-th row. It prints, per file and setting, what the
//! detector reported and when (seconds after the load started), so a change to the rule can be
//! tried on every recorded run in a second instead of an hour of real load.

use std::fs;

use memsentry::detect::leak::{LeakConfig, LeakDetector, LeakTransition};

struct Row {
    t_ms: u64,
    rss: f64,
    heap_used: f64,
    external: f64,
    heap_total: f64,
    tree_rss: f64,
}

fn field(cols: &[&str], i: usize) -> f64 {
    cols.get(i).and_then(|c| c.parse().ok()).unwrap_or(f64::NAN)
}

/// A recorded run: when the load started, the full GCs (ms since the server started), samples.
struct Trace {
    load_start: u64,
    full_gcs: Vec<u64>,
    rows: Vec<Row>,
}

fn read(path: &str) -> Trace {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut load_start = 0;
    let mut full_gcs = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# full_gcs=") {
            full_gcs = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(v) = rest.split("load_start_ms=").nth(1) {
                load_start = v.trim().parse().unwrap_or(0);
            }
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        let Ok(t_ms) = cols[0].parse() else {
            continue;
        };
        rows.push(Row {
            t_ms,
            rss: field(&cols, 1),
            heap_used: field(&cols, 2),
            external: field(&cols, 3),
            heap_total: field(&cols, 4),
            tree_rss: field(&cols, 5),
        });
    }
    Trace {
        load_start,
        full_gcs,
        rows,
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut settings = vec![(250u64, 60_000u64), (1000, 300_000)];
    let mut custom = None::<(u64, u64)>;
    let mut tree = false;
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
            _ => files.push(a),
        }
    }
    if let Some(c) = custom {
        settings = vec![c];
    }
    for path in &files {
        let Trace {
            load_start,
            full_gcs,
            rows,
        } = read(path);
        let name = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".csv");
        let tree_file = tree || name.starts_with("child");
        for &(interval, window) in &settings {
            let step = (interval / 250).max(1) as usize;
            let mut d = LeakDetector::new(LeakConfig {
                window_ms: window,
                ..LeakConfig::default()
            });
            let mut out = Vec::new();
            let mut gcs = full_gcs.iter().peekable();
            for row in rows.iter().step_by(step) {
                // A full GC since the previous row: these figures are the first after it (the
                // sentry's samples carry the newest post-GC figures).
                let mut full_gc = false;
                while gcs.next_if(|&&gc| gc <= row.t_ms).is_some() {
                    full_gc = true;
                }
                d.observe_heap(row.t_ms, row.heap_used, row.heap_total, row.external, full_gc);
                if tree_file {
                    d.observe_own(row.t_ms, row.rss);
                }
                let v = if tree_file { row.tree_rss } else { row.rss };
                if let Some(tr) = d.observe(row.t_ms, v) {
                    let t = (row.t_ms as f64 - load_start as f64) / 1000.0;
                    out.push(match tr {
                        LeakTransition::Started(e) => format!(
                            "S{t:.0}({}, {:.1} MiB/min)",
                            e.suspect.as_str(),
                            e.slope_bytes_per_sec * 60.0 / 1048576.0
                        ),
                        LeakTransition::Ended(_) => format!("E{t:.0}"),
                    });
                }
            }
            println!("{name:<22} w{:<4} {}", window / 1000, out.join(" "));
        }
    }
}
