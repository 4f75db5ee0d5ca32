use super::*;

const MIB: f64 = 1024.0 * 1024.0;
const MB: f64 = 1_000_000.0;
const WINDOW: u64 = 600_000;
const SEEDS: std::ops::RangeInclusive<u64> = 1..=5;

/// Fixed-seed 64-bit LCG (Knuth's MMIX constants); uniform in [0, 1) from the top 53 bits.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// A GC sawtooth around `base`: in each cycle (length drawn from `cycle` s) the value rises
/// linearly by a fraction of base drawn from `amp`, then drops back; plus ± `jitter` bytes.
struct Sawtooth {
    rng: Lcg,
    base: f64,
    cycle: (f64, f64),
    amp: (f64, f64),
    jitter: f64,
    start: f64,
    len: f64,
    height: f64,
}

impl Sawtooth {
    fn new(seed: u64, base: f64, cycle: (f64, f64), amp: (f64, f64), jitter: f64) -> Self {
        let mut rng = Lcg(seed);
        let len = rng.range(cycle.0, cycle.1);
        let height = rng.range(amp.0, amp.1) * base;
        let start = -rng.range(0.0, len);
        Sawtooth {
            rng,
            base,
            cycle,
            amp,
            jitter,
            start,
            len,
            height,
        }
    }

    /// 400 MB, cycles of 20–60 s rising by 10–30%, ± 0.25 MiB.
    fn standard(seed: u64) -> Self {
        Sawtooth::new(seed, 400.0 * MB, (20.0, 60.0), (0.10, 0.30), 0.25 * MIB)
    }

    /// The value at `t` seconds (calls must not go back in time).
    fn at(&mut self, t: f64) -> f64 {
        while t >= self.start + self.len {
            self.start += self.len;
            self.len = self.rng.range(self.cycle.0, self.cycle.1);
            self.height = self.rng.range(self.amp.0, self.amp.1) * self.base;
        }
        let phase = (t - self.start) / self.len;
        self.base + phase * self.height + self.rng.range(-self.jitter, self.jitter)
    }
}

fn per_min(bytes: f64) -> f64 {
    bytes / 60.0
}

fn config(window_ms: u64, min_slope: f64, warmup_ms: u64) -> LeakConfig {
    LeakConfig {
        window_ms,
        min_slope: Some(min_slope),
        warmup_ms: Some(warmup_ms),
    }
}

/// Feeds `f(t in s)` every `interval_ms` from 0 to `duration_s`; returns (t in s, transition).
fn run(
    config: LeakConfig,
    interval_ms: u64,
    duration_s: u64,
    mut f: impl FnMut(f64) -> f64,
) -> Vec<(f64, LeakTransition)> {
    let mut d = LeakDetector::new(config);
    let mut out = Vec::new();
    let mut t_ms = 0u64;
    while t_ms <= duration_s * 1000 {
        if let Some(tr) = d.observe(t_ms, f(t_ms as f64 / 1000.0)) {
            out.push((t_ms as f64 / 1000.0, tr));
        }
        t_ms += interval_ms;
    }
    out
}

/// The events as "S<t>" / "E<t>", for assertions with readable failures.
fn kinds(events: &[(f64, LeakTransition)]) -> Vec<String> {
    events
        .iter()
        .map(|(t, e)| match e {
            LeakTransition::Started(_) => format!("S{t}"),
            LeakTransition::Ended(_) => format!("E{t}"),
        })
        .collect()
}

fn started_once(events: &[(f64, LeakTransition)]) -> (f64, LeakEstimate) {
    match events {
        [(t, LeakTransition::Started(e))] => (*t, e.clone()),
        _ => panic!("expected exactly one Started, got {:?}", kinds(events)),
    }
}

/// A steady leak under the standard sawtooth, from t = 0 with warm-up 0: Started once, at
/// most `bound_s` after the leak began; the estimate is close to the true slope.
fn assert_leak_detected(slope: f64, min_slope: f64, bound_s: f64) {
    let mut latencies = Vec::new();
    for seed in SEEDS {
        let mut saw = Sawtooth::standard(seed);
        let events = run(config(WINDOW, min_slope, 0), 1000, 900, |t| saw.at(t) + slope * t);
        let (t, e) = started_once(&events);
        assert!(t <= bound_s, "seed {seed}: Started at {t} s");
        let err = (e.slope_bytes_per_sec - slope).abs() / slope;
        assert!(
            err < 0.35,
            "seed {seed}: slope {} vs {slope}",
            e.slope_bytes_per_sec
        );
        assert!(e.confidence >= 0.95 && e.confidence <= 1.0);
        assert!(e.window_ms >= WINDOW / 2 && e.window_ms <= WINDOW);
        let growth = e.slope_bytes_per_sec * e.window_ms as f64 / 1000.0;
        assert!((e.growth_bytes - growth).abs() <= 1e-6 * growth);
        assert_eq!(e.suspect, Suspect::Unknown);
        latencies.push(t);
    }
    println!(
        "leak {:.0} KiB/min (min {:.0} KiB/min): Started at {latencies:?} s after leak start",
        slope * 60.0 / 1024.0,
        min_slope * 60.0 / 1024.0
    );
}

/// What full GCs 31 s apart leave in a leak of 7 MB/min, each catching ±0.4 MB in flight
/// (alternately): its steps slow down and speed up around one rate.
fn jittered_leak() -> Vec<(f64, f64)> {
    (0..12)
        .map(|i| {
            let t = 1.0 + 31.0 * i as f64;
            (t, 12.0 + 7.0 * t / 60.0 + if i % 2 == 0 { 0.4 } else { -0.4 })
        })
        .collect()
}

fn lives_at(figures: &[(f64, f64)]) -> Lives {
    let mut lives = Lives::default();
    for &(t, mb) in figures {
        lives.full_gc((t * 1000.0) as u64, mb * 1e6, 0);
    }
    lives
}

#[test]
fn a_streak_counts_one_kind_of_evidence() {
    let mut d = LeakDetector::new(config(60_000, 0.0, 0));
    // A flip on the metric's rules, then one on the heap's trend alone: not two of a kind.
    d.count_flip(true, false);
    d.count_flip(true, true);
    assert_eq!(d.streak, 1);
    d.count_flip(true, true);
    assert_eq!(d.streak, CONFIRM);
    // And back: the metric's rules start their own count.
    d.count_flip(true, false);
    assert_eq!(d.streak, 1);
    d.count_flip(false, false);
    assert_eq!(d.streak, 0);
}

#[test]
fn a_heap_alone_episode_keeps_its_suspect_without_heap_figures() {
    let mut d = LeakDetector::new(config(60_000, 0.0, 0));
    // The metric's own analysis, nothing explaining it, and no heap figure on record.
    let a = Analysis {
        points: vec![(0.0, 100.0 * MIB), (60.0, 100.0 * MIB)],
        slope: 0.0,
        confidence: 0.5,
        slope_recent: 0.0,
        level: 100.0 * MIB,
        first_idx: 0,
        end_idx: 30,
    };
    let unknown = Cause::Unexplained(Suspect::Unknown);
    assert_eq!(d.episode_estimate(&a, unknown, 30).suspect, Suspect::Unknown);
    d.episode_heap_alone = true;
    let e = d.episode_estimate(&a, unknown, 30);
    assert_eq!(e.suspect, Suspect::Heap);
    assert_eq!(e.slope_bytes_per_sec, 0.0);
}

#[test]
fn decelerating_tells_a_cap_from_a_leak() {
    // An LRU keyed by random ids nears its cap as 30 - 18·e^(-t/60) MB.
    let cap = |t: f64| (t, 30.0 - 18.0 * (-t / 60.0).exp());
    let lru: Vec<(f64, f64)> = [1.0, 15.0, 45.0, 82.0].map(cap).to_vec();
    assert!(lives_at(&lru).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    assert!(
        !lives_at(&lru[..3]).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE),
        "three figures say nothing"
    );
    // A leak of 7 MB/min whose full GCs catch ±0.4 MB in flight: its steps slow and speed up.
    let leak = jittered_leak();
    for end in 4..=leak.len() {
        assert!(
            !lives_at(&leak[..end]).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE),
            "leak up to {end}"
        );
    }
    // Recorded on Node 26 (an LRU): 15.4, 11.0, then 8.6 MB/min, each under 0.8 of the one
    // before though the last is 0.56 of the first.
    let node26 = [(1.0, 12.5), (15.0, 16.1), (45.0, 21.6), (82.0, 26.9)];
    assert!(lives_at(&node26).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    // Steps that slow, but not to under the share of the first nor by a fifth each: 30, 25,
    // then 21 MB/min.
    let slowing = [(0.0, 10.0), (60.0, 40.0), (120.0, 65.0), (180.0, 86.0)];
    assert!(!lives_at(&slowing).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    // Recorded (the lru-slow fixture): 12.9, 8.4, 8.1, then 5.7 MB/min, each slower, the
    // last under half the first; its last three alone (0.68 of the first, 0.96 of the one
    // before) fired 105 and 120 s windows.
    let lru = [
        (1.0, 10.1),
        (37.0, 17.84),
        (63.0, 21.48),
        (89.0, 24.99),
        (115.0, 27.46),
    ];
    assert!(lives_at(&lru).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    assert!(!lives_at(&lru[..4]).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    // Recorded on Node 26 (lru-slow-o): 14.0, 4.385, 4.385, then 2.6 MB/min; the third step
    // is 0.006% faster than the second, the same rate.
    let ties = [
        (1.272, 12.330528),
        (46.343, 22.84112),
        (83.375, 25.54744),
        (117.412, 28.035024),
        (168.476, 30.262016),
    ];
    assert!(lives_at(&ties).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    // A recorded fast leak whose steps each came a little slower (43, 42, 40, 40, 38 MB/min):
    // at 0.9 of the first, a leak.
    let fast = [
        (2.0, 12.1),
        (14.0, 20.6),
        (20.0, 24.8),
        (35.0, 34.9),
        (55.0, 48.2),
        (75.0, 61.0),
    ];
    for end in 4..=fast.len() {
        assert!(
            !lives_at(&fast[..end]).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE),
            "fast leak up to {end}"
        );
    }
}

#[test]
fn floors_rising_reads_a_slow_leak_through_its_noise() {
    let min = 0.47 * MIB / 60.0; // the 600 s window's minimum slope on a small service
    let rising = |figures: &[(f64, f64)], span_s: f64| {
        let lives = lives_at(figures);
        let margin = lives.noise_margin();
        lives.floors_rising(min, span_s, FLOOR_RATES_FACTOR, DECELERATING_STEP_SHARE, margin)
    };
    // Recorded on Node 24 with nothing set (slower-heap-def): ~1 MiB/min, what full GCs left
    // wandering 0.4 MB under to 1.7 MB over the line. Each step alone (17.4 -> 17.8 in 106 s,
    // 29.7 -> 29.3) fails rule 6; the pairs' lower figures, 12.5, 17.4, 20.4, 29.3, rise at
    // 1.55, 0.94 and 0.88 MB/min.
    let slower = [
        (12.7, 12.5),
        (113.5, 14.0),
        (202.9, 17.4),
        (308.5, 17.8),
        (394.2, 20.4),
        (556.3, 22.0),
        (895.8, 29.7),
        (1001.2, 29.3),
        (1090.0, 32.3),
        (1196.2, 33.0),
    ];
    assert!(rising(&slower[..8], 600.0));
    assert!(rising(&slower[..9], 600.0), "eight kept, from 113 s");
    // With the tenth, the pairs from 203 s rose 0.94, 0.88, then 2.0 MB/min (3.0 MB in 89 s):
    // beyond the factor. A leak that noisy is reported on some of its full GCs, not all; the
    // replay at 600 s reports it at 1030 s, on the eighth.
    assert!(!rising(&slower, 600.0));
    assert!(!rising(&slower[..7], 600.0), "seven figures: three pairs");
    assert!(
        !rising(&slower[..8], 1200.0),
        "the figures span less than the window"
    );
    // An LRU nearing its cap as 30 - 18·e^(-t/120) MB, full GCs 40 s apart: its pairs rose
    // 6.6, 3.4, then 1.7 MB/min, under half the first.
    let lru: Vec<(f64, f64)> = (0..8)
        .map(|i| {
            let t = 40.0 * i as f64;
            (t, 30.0 - 18.0 * (-t / 120.0).exp())
        })
        .collect();
    assert!(!rising(&lru, 150.0));
    // Recorded on Node 22 (heavy garbage, no leak): the pairs' lower figures rose 1.8, 3.4,
    // then 4.1 MB/min and the next full GCs fell back; it fired 150 and 180 s windows before
    // the rates had to stay within a factor of two.
    let garbage = [
        (191.6, 24.7),
        (231.7, 11.6),
        (273.7, 15.2),
        (305.8, 13.8),
        (341.8, 15.8),
        (377.9, 29.7),
        (413.8, 20.8),
        (453.1, 30.8),
    ];
    assert!(!rising(&garbage, 150.0));
    // Recorded on Node 22 (heavy-garbage#2 of 2026-12-06, no leak): what full GCs left wandered
    // 10-31 MB, and the pairs' lower figures rose 11.0, 14.9, 19.2, 21.9 MB at 2.8, 3.1 and 1.9
    // MB/min, within the factor: steady at 60 s's minimum slope, but 10.9 MB in all, 5.4 of it
    // that slope's, against a noise of 3.7 MB (twice that asked). It fired a 60 s window at 544 s.
    let wander = [
        (237.5, 26.5),
        (280.7, 11.0),
        (321.7, 19.1),
        (365.8, 14.9),
        (405.7, 27.4),
        (443.7, 19.2),
        (486.0, 21.9),
        (528.9, 30.8),
    ];
    let min60 = 1.5 * MIB / 60.0;
    let lives = lives_at(&wander);
    assert!(lives.floors_rising(min60, 60.0, FLOOR_RATES_FACTOR, DECELERATING_STEP_SHARE, 0.0));
    let margin = lives.noise_margin();
    assert!((margin - 2.0 * 3.68e6).abs() < 0.01e6, "{margin}");
    assert!(!lives.floors_rising(min60, 60.0, FLOOR_RATES_FACTOR, DECELERATING_STEP_SHARE, margin));
    // Steady, but the newest figure under an older pair's: the line has turned.
    let mut turned = slower[..8].to_vec();
    turned[7].1 = 22.2;
    turned[6].1 = 29.0;
    assert!(!rising(&turned, 600.0));
}

#[test]
fn accelerating_tells_a_load_step_from_a_leak() {
    // Recorded on Node 22 (load-steps-e): 0.57, then 7.0 MB/min after the load stepped up.
    let step = [(8.1, 10.7), (114.1, 11.7), (145.4, 15.3)];
    assert!(lives_at(&step).accelerating(ACCELERATING_FACTOR));
    assert!(
        !lives_at(&step[..2]).accelerating(ACCELERATING_FACTOR),
        "two figures, one step"
    );
    // A fall, then any rise: nothing to keep a rate with.
    let after_fall = [(0.0, 12.0), (30.0, 11.0), (60.0, 11.2)];
    assert!(lives_at(&after_fall).accelerating(ACCELERATING_FACTOR));
    // A steep fall, then a gentle one: the second "exceeds" the first only by sign.
    let falling = [(0.0, 12.0), (30.0, 10.0), (60.0, 9.9)];
    assert!(!lives_at(&falling).accelerating(ACCELERATING_FACTOR));
    // A leak of 7 MB/min whose full GCs catch ±0.4 MB in flight, 31 s apart: its steps speed
    // up and slow down by far less.
    let leak = jittered_leak();
    for end in 3..=leak.len() {
        assert!(
            !lives_at(&leak[..end]).accelerating(ACCELERATING_FACTOR),
            "leak up to {end}"
        );
    }
}

#[test]
fn the_last_two_steps_stand_together_against_the_margin() {
    // Shaped on leak.spec's fast leak (Node 24; its MiB figures read as MB here): a 10 s
    // last step rose 9.0 MB, short of the kept rate (46 MiB/min) times 10 s plus twice the
    // noise (1.84 MB); the step before rose 15.7 MB in 11 s.
    let (rate, margin) = (46.0 * 1048576.0 / 60.0, 1.84e6);
    let fast = [(8.4, 24.0), (19.4, 40.7), (30.4, 56.4), (40.4, 65.4)];
    assert!(!lives_at(&fast).rising(1, rate, margin, 0));
    assert!(lives_at(&fast).last_rising(rate, margin));
    // An LRU near its cap: its older step rose fast, its last under the kept rate.
    let lru = [(8.4, 24.0), (19.4, 40.7), (30.4, 52.0), (40.4, 59.6)];
    assert!(!lives_at(&lru).last_rising(rate, margin));
    // Both steps at the kept rate, but together not beyond the margin.
    let flat = [(8.4, 24.0), (19.4, 32.9), (30.4, 41.8), (40.4, 49.9)];
    assert!(!lives_at(&flat).last_rising(rate, margin));
    // Nor with one step on record.
    assert!(!lives_at(&fast[2..]).last_rising(rate, margin));
}

#[test]
fn a_close_pair_of_full_gcs_is_judged_from_the_one_before_it() {
    // eval36's slow leak (Node 24, 3.4 MiB/min): full GCs 13 s apart left 0.07 MB more.
    let rate = 0.5 * 1048576.0 / 60.0;
    let slow = [(296.5, 27.0), (368.5, 28.79), (381.7, 28.86)];
    assert!(!lives_at(&slow).rising(1, rate, 0.0, 0));
    assert!(lives_at(&slow).still_rising(rate, CLOSE_PAIR_S, 0));
    // 0.1 MB less, 28 s apart (another Node 24 run): still rising past the pair.
    let fell = [(238.0, 25.2), (339.0, 28.4), (367.0, 28.3)];
    assert!(lives_at(&fell).still_rising(rate, CLOSE_PAIR_S, 0));
    // Not when the pair is a window's worth apart: that step is the leak's own.
    let apart = [(238.0, 25.2), (339.0, 28.4), (400.0, 28.3)];
    assert!(!lives_at(&apart).still_rising(rate, CLOSE_PAIR_S, 0));
    // Nor when the leak stopped before the pair: nothing rose past it either.
    let stopped = [(300.0, 30.0), (370.0, 30.2), (380.0, 29.9)];
    assert!(!lives_at(&stopped).still_rising(rate, CLOSE_PAIR_S, 0));
    // Nor when the newest is older than the span asked about (times in ms).
    assert!(!lives_at(&slow).still_rising(rate, CLOSE_PAIR_S, 400_000));
    assert!(lives_at(&slow).still_rising(rate, CLOSE_PAIR_S, 380_000));
    // Nor out of a dip below what was kept before: a leak that stopped at 30 MB.
    let dip = [(200.0, 30.0), (300.0, 29.0), (370.0, 30.0), (380.0, 29.95)];
    assert!(!lives_at(&dip).still_rising(rate, CLOSE_PAIR_S, 0));
    // Nor with only the pair.
    assert!(!lives_at(&slow[1..]).still_rising(rate, CLOSE_PAIR_S, 0));
}

#[test]
fn a_rise_out_of_a_dip_is_not_a_leaks_line() {
    // Recorded on Node 26 (heavy garbage): what requests had in flight at each full GC.
    let garbage = [
        (27.0, 20.6),
        (127.0, 21.3),
        (138.0, 21.2),
        (177.0, 10.7),
        (226.0, 19.8),
        (277.0, 38.9),
    ];
    assert!(lives_at(&garbage).rises_from_a_dip(RISING_STEPS, DIP_SHARE));
    // A leak whose full GCs catch ±1 MB in flight: no dip of a fifth.
    let leak: Vec<(f64, f64)> = (0..8)
        .map(|i| {
            (
                30.0 * i as f64,
                20.0 + 3.0 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 },
            )
        })
        .collect();
    for end in 2..=leak.len() {
        assert!(
            !lives_at(&leak[..end]).rises_from_a_dip(RISING_STEPS, DIP_SHARE),
            "leak up to {end}"
        );
    }
    assert!(
        !lives_at(&garbage[3..]).rises_from_a_dip(RISING_STEPS, DIP_SHARE),
        "nothing before the dip"
    );
}

#[test]
fn a_full_gc_right_after_v8_grew_its_heap_counts_less() {
    // Recorded on Node 24 (an LRU): a scavenge grew heapTotal 102 -> 170 MB 49 ms before
    // the full GC at 105.461 s, which left 28.4 MB live.
    let mut sizing = HeapSizing::default();
    sizing.observe(101_418, 31.6 * MB, 102.0 * MB, false);
    sizing.observe(105_412, 32.5 * MB, 169.8 * MB, false);
    sizing.observe(105_461, 28.4 * MB, 170.6 * MB, true);
    assert_eq!(sizing.full_gc_s, Some(105.461));
    // The next full GC, 34 s later with heapTotal barely moved, is an ordinary one.
    sizing.observe(139_049, 26.7 * MB, 175.4 * MB, true);
    assert_eq!(sizing.full_gc_s, Some(105.461));
    // Growth by less than the live heap (V8 re-sizing a small old generation), or more than
    // 2 s before the full GC, does not make it one.
    let mut small = HeapSizing::default();
    small.observe(200_000, 16.0 * MB, 27.0 * MB, false);
    small.observe(209_000, 16.7 * MB, 35.0 * MB, true);
    assert_eq!(small.full_gc_s, None);
    let mut early = HeapSizing::default();
    early.observe(100_000, 30.0 * MB, 100.0 * MB, false);
    early.observe(101_000, 30.0 * MB, 170.0 * MB, false);
    early.observe(103_500, 28.0 * MB, 170.0 * MB, true);
    assert_eq!(early.full_gc_s, None);
    // What full GCs left: 25.5 MB at 81 s, then 28.4 at 105 s, the sizing one: a 10% rise
    // is within what such a full GC leaves on top; a 44% one (an emitter leak) is not.
    let lru = lives_at(&[(44.0, 21.5), (81.0, 25.5), (105.461, 28.4)]);
    assert!(lru.sized_step(Some(105.461), SIZING_SHARE));
    assert!(
        !lru.sized_step(Some(81.0), SIZING_SHARE),
        "only the newest counts less"
    );
    let emitter = lives_at(&[(31.0, 24.7), (74.0, 44.2)]);
    assert!(!emitter.sized_step(Some(74.0), SIZING_SHARE));
}

// Latency bounds (see the module documentation): one window (600 s) for 2 and 20 MiB/min;
// 1.3 windows (780 s) for 512 KiB/min, whose 5 MiB of growth per window is about the spread
// of the post-GC floors here (100 seeds: median 500 s, p90 600 s, max 760 s).

#[test]
fn leak_2_mib_per_min_is_detected_within_one_window() {
    assert_leak_detected(per_min(2.0 * MIB), per_min(MIB), 600.0);
}

#[test]
fn leak_512_kib_per_min_is_detected_within_1_3_windows() {
    assert_leak_detected(per_min(0.5 * MIB), per_min(0.25 * MIB), 780.0);
}

#[test]
fn leak_20_mib_per_min_is_detected_within_one_window() {
    assert_leak_detected(per_min(20.0 * MIB), per_min(MIB), 600.0);
}

#[test]
fn leak_after_a_flat_period_is_detected_within_one_window() {
    let slope = per_min(2.0 * MIB);
    let mut latencies = Vec::new();
    for seed in SEEDS {
        let mut saw = Sawtooth::standard(seed);
        let events = run(config(WINDOW, per_min(MIB), 0), 1000, 1500, |t| {
            saw.at(t) + slope * (t - 600.0).max(0.0)
        });
        let (t, _) = started_once(&events);
        assert!((600.0..=1200.0).contains(&t), "seed {seed}: Started at {t} s");
        latencies.push(t - 600.0);
    }
    println!("leak 2 MiB/min after 600 s flat: Started {latencies:?} s after leak start");
}

/// Runs a scenario that must never start an episode, for several seeds and min slopes.
fn assert_never_starts(name: &str, warmup_ms: u64, duration_s: u64, shape: impl Fn(f64) -> f64) {
    for min_slope in [per_min(0.25 * MIB), per_min(MIB)] {
        for seed in 1..=10 {
            let mut saw = Sawtooth::standard(seed);
            let events = run(config(WINDOW, min_slope, warmup_ms), 1000, duration_s, |t| {
                saw.at(t) + shape(t)
            });
            assert!(
                events.is_empty(),
                "{name}, seed {seed}, min {min_slope}: {:?}",
                kinds(&events)
            );
        }
    }
}

#[test]
fn flat_sawtooth_never_starts() {
    assert_never_starts("flat", 0, 1800, |_| 0.0);
}

#[test]
fn warm_up_ramp_never_starts() {
    let ramp = |t: f64| 100.0 * MB * (t / 60.0).min(1.0);
    assert_never_starts("warm-up, warmup_ms 120 s", 120_000, 1800, ramp);
    assert_never_starts("warm-up, warmup_ms 0", 0, 1800, ramp);
}

#[test]
fn step_up_never_starts() {
    for at in [400.0, 700.0, 1000.0] {
        assert_never_starts("step", 0, 2100, move |t| if t >= at { 80.0 * MB } else { 0.0 });
    }
}

#[test]
fn cache_filled_in_the_first_fifth_never_starts() {
    assert_never_starts("cache", 0, 1800, |t| 60.0 * MB * (t / 120.0).min(1.0));
}

#[test]
fn leak_that_stops_starts_then_ends_once() {
    let slope = per_min(2.0 * MIB);
    for seed in SEEDS {
        let mut saw = Sawtooth::standard(seed);
        // Leak for 1.5 windows, then flat for 2 windows.
        let events = run(config(WINDOW, per_min(MIB), 0), 1000, 2100, |t| {
            saw.at(t) + slope * t.min(900.0)
        });
        match events.as_slice() {
            [(s, LeakTransition::Started(_)), (e, LeakTransition::Ended(end))] => {
                assert!(*s <= 600.0 && *e > 900.0, "seed {seed}: {:?}", kinds(&events));
                assert!(end.slope_bytes_per_sec < slope);
                println!("leak stops at 900 s: Started {s} s, Ended {e} s (seed {seed})");
            }
            _ => panic!("seed {seed}: {:?}", kinds(&events)),
        }
    }
}

#[test]
fn leak_stop_leak_again_starts_twice() {
    let slope = per_min(2.0 * MIB);
    for seed in SEEDS {
        let mut saw = Sawtooth::standard(seed);
        // Leak 0–900 s, flat 900–2100 s, leak again 2100–3000 s, flat to 3600 s.
        let events = run(config(WINDOW, per_min(MIB), 0), 1000, 3600, |t| {
            saw.at(t) + slope * (t.min(900.0) + (t - 2100.0).clamp(0.0, 900.0))
        });
        let k = kinds(&events);
        assert_eq!(k.len(), 4, "seed {seed}: {k:?}");
        assert!(matches!(events[0].1, LeakTransition::Started(_)), "{k:?}");
        assert!(matches!(events[1].1, LeakTransition::Ended(_)), "{k:?}");
        assert!(matches!(events[2].1, LeakTransition::Started(_)), "{k:?}");
        assert!(matches!(events[3].1, LeakTransition::Ended(_)), "{k:?}");
        assert!(events[2].0 > 2100.0 && events[2].0 <= 2700.0, "{k:?}");
    }
}

/// A 3 MiB/min RSS leak with post-GC heap figures every 5 s; returns the suspect at Started.
fn suspect_with(heap: Option<(f64, f64)>) -> Suspect {
    started_with(heap).suspect
}

/// The same; returns the estimate at Started.
fn started_with(heap: Option<(f64, f64)>) -> LeakEstimate {
    let slope = per_min(3.0 * MIB);
    let mut saw = Sawtooth::standard(3);
    let mut rng = Lcg(99);
    let mut d = LeakDetector::new(config(WINDOW, per_min(MIB), 0));
    // Growth nothing explains must be seen for ten minutes here (the window): up to 1,100 s.
    for t in 0..=1800u64 {
        let ts = t as f64;
        if let Some((heap_slope, external_slope)) = heap {
            if t % 5 == 0 {
                let jitter = rng.range(-0.2, 0.2) * MIB;
                let used = 150.0 * MB + heap_slope * ts + jitter;
                // heapTotal keeps 30 MB of free space: no resizing. The figures are the live
                // heap (no garbage); a full GC every minute.
                d.observe_heap(
                    t * 1000,
                    used,
                    used + 30.0 * MB,
                    20.0 * MB + external_slope * ts,
                    t % 60 == 0,
                );
            }
        }
        if let Some(LeakTransition::Started(e)) = d.observe(t * 1000, saw.at(ts) + slope * ts) {
            assert_eq!(d.current(), Some(&e));
            return e;
        }
    }
    panic!("no leak detected");
}

#[test]
fn suspect_heap_native_unknown() {
    let slope = per_min(2.0 * MIB);
    assert_eq!(suspect_with(Some((slope, 0.0))), Suspect::Heap);
    assert_eq!(suspect_with(Some((0.0, 0.0))), Suspect::Native);
    assert_eq!(suspect_with(Some((0.0, slope))), Suspect::Native);
    // 35% in the heap, 65% outside V8's heap and Buffers: mostly native.
    assert_eq!(suspect_with(Some((0.35 * slope, 0.0))), Suspect::Native);
    assert_eq!(suspect_with(None), Suspect::Unknown);
    assert_eq!(Suspect::Heap.as_str(), "heap");
    assert_eq!(Suspect::Native.as_str(), "native");
    assert_eq!(Suspect::Unknown.as_str(), "unknown");
}

#[test]
fn short_window_fast_sampling_detects_within_a_minute() {
    // 10 KB per request × 200 req/s ≈ 2 MB/s; GC every 1–5 s, 20% sawtooth; 250 ms samples.
    let slope = 2.0 * MB;
    let sawtooth = |seed| Sawtooth::new(seed, 400.0 * MB, (1.0, 5.0), (0.2, 0.2), 0.25 * MIB);
    let cfg = config(60_000, 0.5 * MB, 0);
    let mut latencies = Vec::new();
    for seed in SEEDS {
        let mut saw = sawtooth(seed);
        let (t, _) = started_once(&run(cfg, 250, 100, |t| saw.at(t) + slope * t));
        assert!(t <= 60.0, "seed {seed}: Started at {t} s");
        latencies.push(t);
        // Leak starting after two flat minutes.
        let mut saw = sawtooth(seed);
        let events = run(cfg, 250, 300, |t| saw.at(t) + slope * (t - 120.0).max(0.0));
        let (t, _) = started_once(&events);
        assert!((120.0..=180.0).contains(&t), "seed {seed}: Started at {t} s");
        latencies.push(t - 120.0);
        // No leak: nothing.
        let mut saw = sawtooth(seed);
        assert!(run(cfg, 250, 600, |t| saw.at(t)).is_empty());
    }
    println!("window 60 s, 250 ms, 2 MB/s: Started {latencies:?} s after leak start");
}

#[test]
fn current_and_in_episode_follow_the_episode() {
    let slope = per_min(2.0 * MIB);
    let mut saw = Sawtooth::standard(1);
    let cfg = config(WINDOW, per_min(MIB), 0);
    let mut d = LeakDetector::new(cfg);
    assert_eq!(d.config(), &cfg);
    let mut seen_episode = false;
    for t in 0..=2100u64 {
        let ts = t as f64;
        match d.observe(t * 1000, saw.at(ts) + slope * ts.min(900.0)) {
            Some(LeakTransition::Started(_)) => seen_episode = true,
            Some(LeakTransition::Ended(_)) => {
                assert!(!d.in_episode() && d.current().is_none());
            }
            None => {}
        }
        assert_eq!(d.in_episode(), d.current().is_some());
        if (600..=900).contains(&t) {
            assert!(d.in_episode(), "t = {t}");
            assert!(d.current().unwrap().slope_bytes_per_sec > 0.0);
        }
    }
    assert!(seen_episode && !d.in_episode());
}

#[test]
fn a_heap_leaks_estimate_carries_the_heaps_own_slope() {
    // The RSS grows 3 MiB/min, the live heap 2: the heap's slope is what reaches V8's limit.
    let heap = per_min(2.0 * MIB);
    let e = started_with(Some((heap, 0.0)));
    assert_eq!(e.suspect, Suspect::Heap);
    let h = e.heap_slope_bytes_per_sec.expect("a heap slope");
    assert!((h / heap - 1.0).abs() < 0.2, "{} MiB/min", h * 60.0 / MIB);
    assert!(e.slope_bytes_per_sec > 1.3 * h, "the metric's slope is the RSS's");
    // Read whatever the suspect: for external growth, the heap's stands still.
    let native = started_with(Some((0.0, heap)));
    assert_eq!(native.suspect, Suspect::Native);
    assert!(native.heap_slope_bytes_per_sec.unwrap().abs() < 0.2 * heap);
}

#[test]
fn million_samples_keep_memory_bounded() {
    // 1,000,000 samples at 10 ms (10,000 s) of a leak with heap figures every 100 ms.
    let mut d = LeakDetector::new(config(WINDOW, per_min(MIB), 0));
    let mut rng = Lcg(7);
    let mut max_held = 0;
    let mut started = 0;
    for i in 0..1_000_000u64 {
        let t = i * 10;
        let v = 400.0 * MB + 2.0 * MIB / 60_000.0 * t as f64 + rng.range(0.0, 20.0) * MB;
        if let Some(LeakTransition::Started(_)) = d.observe(t, v) {
            started += 1;
        }
        if i % 10 == 0 {
            let used = 100.0 * MB + MIB / 60_000.0 * t as f64;
            d.observe_heap(t, used, used, 1.0 * MB, i % 1000 == 0);
        }
        max_held = max_held.max(d.buckets_held());
    }
    assert!(max_held <= 2 * (FINE_BUCKETS as usize + 1), "{max_held}");
    assert!(d.buckets.capacity() <= 64);
    assert_eq!(started, 1);
    assert!(d.in_episode());
}

#[test]
fn tiny_window_fast_samples_stay_bounded() {
    // Window 30 ms at 1 ms: every sample opens a bucket and runs an evaluation.
    let mut d = LeakDetector::new(config(30, 1.0, 0));
    for t in 0..5_000u64 {
        d.observe(t, 1e6 + 1000.0 * t as f64);
        assert!(d.buckets_held() <= 2 * (FINE_BUCKETS as usize + 1));
    }
    assert!(d.in_episode());
}

#[test]
fn garbage_input_does_not_panic() {
    let configs = [
        config(0, 0.0, 0),
        config(1, f64::NAN, u64::MAX),
        config(u64::MAX, -1.0, 0),
        config(WINDOW, f64::INFINITY, 0),
        config(3_000, 0.0, 0),
        config(300_000, 0.0, 0),
    ];
    let values = [
        0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        -f64::MAX,
        1e300,
        f64::MIN_POSITIVE,
        5e-324,
    ];
    for cfg in configs {
        let mut d = LeakDetector::new(cfg);
        // The watch too (its look-out runs from 180 s windows), with every limit in reach.
        let mut w = LeakWatch::new(cfg);
        let mut rng = Lcg(1);
        let mut t = 0u64;
        for i in 0..20_000u64 {
            let v = values[(rng.next() * values.len() as f64) as usize % values.len()];
            // Mostly forward, sometimes backwards, once a huge jump.
            t = match i % 97 {
                0 => t.saturating_sub(500),
                50 => t.saturating_add(u64::MAX / 4),
                _ => t.saturating_add((rng.next() * 300.0) as u64),
            };
            let _ = d.observe(t, v);
            d.observe_heap(t, v, v, -v, i % 7 == 0);
            d.observe_own(t, -v);
            let _ = w.observe(t, v, |_| Some(0.0));
            w.observe_heap(t, v, v, -v, i % 7 == 0);
            w.observe_own(t, -v);
            if let Some(e) = d.current() {
                assert!((0.0..=1.0).contains(&e.confidence));
            }
        }
    }
    // A window with only NaN or only non-increasing times never decides.
    let mut d = LeakDetector::new(LeakConfig::default());
    for t in 0..10_000u64 {
        assert_eq!(d.observe(t * 1000, f64::NAN), None);
    }
    assert!(d.buckets.is_empty());
    // A sample whose time goes backwards is ignored.
    let mut d = LeakDetector::new(config(WINDOW, 1.0, 0));
    d.observe(10_000, 5.0);
    d.observe(5_000, 1.0);
    assert_eq!(d.buckets.back().map(|b| b.min), Some(5.0));
    // Warm-up: samples before first + warmup are ignored, including for heap figures.
    let mut d = LeakDetector::new(config(WINDOW, 1.0, 60_000));
    d.observe(1_000, 5.0);
    d.observe_heap(2_000, 5.0, 5.0, 0.0, true);
    d.observe(30_000, 5.0);
    assert!(d.buckets.is_empty() && d.parts.is_empty());
    d.observe(61_000, 5.0);
    assert_eq!(d.buckets.len(), 1);
}

#[test]
fn default_config() {
    let c = LeakConfig::default();
    assert_eq!(c.window_ms, 600_000);
    assert_eq!(c.warmup_ms, None);
    assert_eq!(c.warmup(), 30_000);
    assert_eq!(c.min_slope, None);
}

/// Heap figures as the JS side records them after a GC.
#[derive(Clone, Copy)]
struct HeapReading {
    used: f64,
    total: f64,
    external: f64,
    full_gc: bool,
}

/// A Node process as the detector sees it with the defaults: a live heap (growing by
/// `heap_leak` bytes/s), old-generation garbage that accumulates at `garbage` bytes/s until a
/// full GC takes it away (see `gc_step`), V8's heap keeping 40% free space (plus `sizing`
/// more from `sizing_at` s, as after a load step), external memory (growing by
/// `external_leak`), native memory (growing by `native_leak`) and ± 0.5 MiB of jitter.
/// Feeds the detector (heap figures every second, full GCs flagged) every `interval_ms` for
/// `duration_s` at `window_ms`, defaults otherwise; returns (t in s, transition).
struct Process {
    heap_leak: f64,
    external_leak: f64,
    native_leak: f64,
    /// A span (s) in which native memory stops growing.
    native_pause: Option<(f64, f64)>,
    garbage: f64,
    sizing: f64,
    sizing_at: f64,
    /// A span (s) over which V8 gives those pages back evenly, shrinking heapTotal.
    sizing_fade: Option<(f64, f64)>,
    /// Data in flight at a full GC (a batch job's, a burst of requests'): what the full GC
    /// leaves is the live heap plus up to this much, drawn anew at each.
    in_flight: f64,
    /// A cache of this many bytes filling evenly over the first `cache_fill_s` seconds of
    /// the load, then full.
    cache: f64,
    cache_fill_s: f64,
    /// Instead, with a time constant (s): an LRU keyed by random ids, which holds
    /// `cache` × (1 − e^(−t/τ)).
    cache_tau_s: Option<f64>,
    /// heapTotal V8 adds per byte the live heap grew (beyond its 40% free space): on Node 24
    /// it grew its heap three times faster than a fast heap leak.
    overgrow: f64,
    /// Bursts (5 s in every 20) in which V8 takes heapTotal to new highs, this many bytes/s
    /// above the last, and shrinks it back after; with `keeps_pages` the RSS keeps them.
    burst_highs: f64,
    /// The RSS follows the highest heapTotal so far, not the newest (V8 on Node 22 under
    /// heavy garbage).
    keeps_pages: bool,
    /// A span (s) in which the heap and external leaks do not grow (to infinity: they stop).
    leak_pause: Option<(f64, f64)>,
}

impl Process {
    fn healthy() -> Self {
        Process {
            heap_leak: 0.0,
            external_leak: 0.0,
            native_leak: 0.0,
            native_pause: None,
            garbage: per_min(3.0 * MIB),
            sizing: 0.0,
            sizing_at: 0.0,
            sizing_fade: None,
            in_flight: 0.0,
            cache: 0.0,
            cache_fill_s: 1.0,
            cache_tau_s: None,
            overgrow: 0.0,
            burst_highs: 0.0,
            keeps_pages: false,
            leak_pause: None,
        }
    }

    /// How long (s) the heap and external leaks have grown by `t` s.
    fn leaked_for(&self, t: f64) -> f64 {
        let paused = self
            .leak_pause
            .map_or(0.0, |(from, to)| (t.min(to) - from).max(0.0));
        t - paused
    }

    /// External memory at `t` s.
    fn external(&self, t: f64) -> f64 {
        3.0 * MB + self.external_leak * self.leaked_for(t)
    }

    /// The live heap at `t` s.
    fn live(&self, t: f64) -> f64 {
        let filled = match self.cache_tau_s {
            Some(tau) => 1.0 - (-t / tau).exp(),
            None => (t / self.cache_fill_s).min(1.0),
        };
        12.0 * MB + self.heap_leak * self.leaked_for(t) + self.cache * filled
    }

    /// Native memory at `t` s, beyond the start.
    fn native(&self, t: f64) -> f64 {
        let paused = self
            .native_pause
            .map_or(0.0, |(from, to)| (t.min(to) - from).max(0.0));
        self.native_leak * (t - paused)
    }

    /// How much the old generation may grow before the next full GC: 3–5 MB plus a quarter
    /// of what the last one left (about 2 minutes apart on the healthy process, under a
    /// minute with a 6 MiB/min leak, as in the eval's real runs).
    fn gc_step(&self, rng: &mut Lcg, live: f64) -> f64 {
        rng.range(3.0 * MB, 5.0 * MB) + 0.25 * live
    }

    /// No event in 10 seeds at each (window ms, interval ms), `duration_s` long.
    #[track_caller]
    fn assert_quiet(&self, settings: &[(u64, u64)], duration_s: u64) {
        for &(window_ms, interval_ms) in settings {
            for seed in 1..=10 {
                let events = self.run(seed, window_ms, interval_ms, duration_s);
                assert!(
                    events.is_empty(),
                    "window {window_ms}, seed {seed}: {:?}",
                    kinds(&events)
                );
            }
        }
    }

    fn run(
        &self,
        seed: u64,
        window_ms: u64,
        interval_ms: u64,
        duration_s: u64,
    ) -> Vec<(f64, LeakTransition)> {
        let mut d = LeakDetector::new(LeakConfig {
            window_ms,
            ..LeakConfig::default()
        });
        self.simulate(seed, interval_ms, duration_s, |t_ms, heap, rss| {
            if let Some(h) = heap {
                d.observe_heap(t_ms, h.used, h.total, h.external, h.full_gc);
            }
            d.observe(t_ms, rss)
        })
    }

    /// [`Process::run`] through a [`LeakWatch`], as the sampler runs it, the process having
    /// a memory limit (on its RSS) and V8's heap limit (on heapUsed), bytes, when given.
    fn run_watched(
        &self,
        seed: u64,
        window_ms: u64,
        interval_ms: u64,
        duration_s: u64,
        (memory_limit, heap_limit): (Option<f64>, Option<f64>),
    ) -> Vec<(f64, LeakTransition)> {
        let mut w = LeakWatch::new(LeakConfig {
            window_ms,
            ..LeakConfig::default()
        });
        let mut heap_used = None;
        self.simulate(seed, interval_ms, duration_s, |t_ms, heap, rss| {
            if let Some(h) = heap {
                w.observe_heap(t_ms, h.used, h.total, h.external, h.full_gc);
                heap_used = Some(h.used);
            }
            w.observe(t_ms, rss, |e| {
                let heap = heap_used.filter(|_| e.suspect == Suspect::Heap);
                ms_to_any_limit(e, (Some(rss), memory_limit), (heap, heap_limit))
            })
        })
    }

    /// Runs the model every `interval_ms` for `duration_s`, handing `feed` each sample's time,
    /// the heap figures when the JS side would record them (every second and after each full
    /// GC) and the RSS; returns (t in s, transition) for what `feed` returns.
    fn simulate(
        &self,
        seed: u64,
        interval_ms: u64,
        duration_s: u64,
        mut feed: impl FnMut(u64, Option<HeapReading>, f64) -> Option<LeakTransition>,
    ) -> Vec<(f64, LeakTransition)> {
        let mut rng = Lcg(seed);
        let mut out = Vec::new();
        let mut last_gc = 0.0;
        let mut live_at_gc = 12.0 * MB;
        let mut external_at_gc = 3.0 * MB;
        let mut limit = live_at_gc + self.gc_step(&mut rng, live_at_gc);
        let mut last_heap_s = -1.0;
        let mut flight = 0.0;
        let mut peak_total: f64 = 0.0;
        let mut t_ms = 0;
        while t_ms <= duration_s * 1000 {
            let t = t_ms as f64 / 1000.0;
            // V8 runs a full GC when the old generation (and external memory) has grown by
            // a step since the last one: a leak makes them come more often.
            let grown = self.garbage * (t - last_gc)
                + (self.live(t) - live_at_gc)
                + (self.external(t) - external_at_gc);
            let full_gc = live_at_gc + grown >= limit;
            if full_gc {
                last_gc = t;
                live_at_gc = self.live(t);
                external_at_gc = self.external(t);
                limit = live_at_gc + self.gc_step(&mut rng, live_at_gc);
            }
            let live = self.live(t);
            if full_gc {
                flight = rng.range(0.0, self.in_flight);
            } else if t - last_gc > 2.0 {
                // The job or the burst is over two seconds after.
                flight = 0.0;
            }
            let used = live + flight + self.garbage * (t - last_gc);
            let kept = self
                .sizing_fade
                .map_or(1.0, |(from, to)| 1.0 - ((t - from) / (to - from)).clamp(0.0, 1.0));
            let sizing = if t >= self.sizing_at {
                self.sizing * kept
            } else {
                0.0
            };
            let burst = if t % 20.0 < 5.0 { self.burst_highs * t } else { 0.0 };
            let total = 1.4 * used + sizing + self.overgrow * (live - 12.0 * MB) + burst;
            peak_total = peak_total.max(total);
            let resident = if self.keeps_pages { peak_total } else { total };
            let external = self.external(t);
            let heap = (full_gc || t - last_heap_s >= 1.0).then(|| {
                last_heap_s = t;
                HeapReading {
                    used,
                    total,
                    external,
                    full_gc,
                }
            });
            let rss = 60.0 * MB + resident + external + self.native(t) + rng.range(-0.5, 0.5) * MIB;
            if let Some(tr) = feed(t_ms, heap, rss) {
                out.push((t, tr));
            }
            t_ms += interval_ms;
        }
        out
    }
}

#[test]
fn healthy_process_with_the_defaults_never_starts() {
    // The eval's two settings and the default window.
    let settings = [(60_000, 250), (300_000, 1000), (600_000, 1000)];
    // Garbage raising the floors between full GCs that come less often than the window.
    Process::healthy().assert_quiet(&settings, 1800);
    // V8 growing its heap after a load step.
    Process {
        sizing: 30.0 * MB,
        sizing_at: 200.0,
        ..Process::healthy()
    }
    .assert_quiet(&settings, 1800);
    // Heavy garbage (30 MiB/min), and up to 20 MB of a job's or a burst's data alive at each
    // full GC.
    Process {
        garbage: per_min(30.0 * MIB),
        in_flight: 20.0 * MB,
        ..Process::healthy()
    }
    .assert_quiet(&settings, 1800);
}

#[test]
fn garbage_rate_is_measured_while_the_live_heap_grows() {
    // Live heap +1 MB/s (a cache filling), garbage +3 MiB/min, full GCs 10 s apart, the
    // last figure before each a second old: the garbage a full GC takes is what the figure
    // holds beyond the live heap at that moment, not beyond what the GC left.
    let mut g = GarbageRate::default();
    let garbage = per_min(3.0 * MIB);
    for cycle in 0..4u64 {
        let t0 = cycle * 10_000;
        let live = |t_ms: u64| 12.0 * MB + t_ms as f64 / 1000.0 * MB;
        g.full_gc(t0, live(t0));
        g.figure(t0 + 9_000, live(t0 + 9_000) + garbage * 9.0);
    }
    g.full_gc(40_000, 12.0 * MB + 40.0 * MB);
    let rate = g.rate().unwrap();
    assert!(
        (rate - 0.9 * garbage).abs() < 0.01 * garbage,
        "{rate} against {garbage}"
    );
}

#[test]
fn halves_slowing_reads_a_cap_through_one_high_figure() {
    // Recorded on Node 26 (lru-slow-q): 12.9, 5.0, then 5.1 MB/min, the last a little faster
    // than the one before, so not ever slower; the halves (1-48 s, 48-118 s) read 12.9 and 5.1.
    let node26 = [(1.313, 12.3), (48.325, 22.4), (84.386, 25.4), (118.408, 28.3)];
    assert!(!lives_at(&node26).decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE));
    assert!(lives_at(&node26).halves_slowing(HALVES_SHARE));
    assert!(
        !lives_at(&node26[..3]).halves_slowing(HALVES_SHARE),
        "two steps say nothing"
    );
    // The LRU of `decelerating_tells_a_cap_from_a_leak` one full GC on; at its first four
    // figures the halves read 0.51 apart, which is `decelerating`'s to catch.
    let cap = |t: f64| (t, 30.0 - 18.0 * (-t / 60.0).exp());
    let lru: Vec<(f64, f64)> = [1.0, 15.0, 45.0, 82.0, 110.0].map(cap).to_vec();
    assert!(lives_at(&lru).halves_slowing(HALVES_SHARE));
    // A leak whose full GCs catch ±0.4 MB in flight, at every length.
    let leak = jittered_leak();
    for end in 4..=leak.len() {
        assert!(
            !lives_at(&leak[..end]).halves_slowing(HALVES_SHARE),
            "leak up to {end}"
        );
    }
    // Recorded on Node 26 (eval/recordings/2026-12-05-node26-rule9/slow-heap, ~2.7 MB/min),
    // full GCs a 60 s window's sub-window apart merged: the first full GC came before the
    // start-up's growth, so its first step read 3.6 MB/min, the next two 0.3 and 2.7. Over the
    // five figures to 204.8 s the halves read 2.6 and 2.0; over the four before, 3.6 and 1.5.
    let slow = [
        (7.586, 12.78),
        (81.639, 17.22),
        (111.156, 17.35),
        (144.286, 18.82),
        (204.767, 20.5),
    ];
    assert!(!lives_at(&slow).halves_slowing(HALVES_SHARE));
    assert!(lives_at(&slow[..4]).halves_slowing(HALVES_SHARE));
    // Only the last four steps count: a start-up's fast fill leaves the test once four more
    // full GCs came. 20 MB at start, then a leak of 3 MB/min every 20 s.
    let mut after_fill = vec![(1.0, 12.0), (20.0, 32.0)];
    after_fill.extend((1..=4).map(|i| (20.0 + 20.0 * i as f64, 32.0 + 1.0 * i as f64)));
    assert!(lives_at(&after_fill[..5]).halves_slowing(HALVES_SHARE));
    assert!(!lives_at(&after_fill).halves_slowing(HALVES_SHARE));
}

#[test]
fn garbage_rate_spreads_a_short_cycle_over_six_seconds() {
    // Two full GCs 1 s apart while V8 grows its heap: the figure before the second holds what
    // the young generation allocated in that second (1.45 MB at 200 req/s), which scavenges
    // mostly take before it is promoted. Over 1 s it reads 83 MiB/min; over 6 s, a sixth of
    // it. Cycles 6 s long or more are measured as they are.
    let mut g = GarbageRate::default();
    g.full_gc(19_000, 41.0 * MB);
    g.figure(19_980, 41.5 * MB + 1.45 * MB);
    g.full_gc(20_000, 41.5 * MB);
    let rate = g.rate().unwrap();
    let over = MIN_GARBAGE_CYCLE_MS as f64 / 1000.0;
    assert!((rate - 1.45 * MB / over).abs() < 0.01 * MB, "{rate}");
    g.figure(29_990, 56.0 * MB + 3.0 * MB);
    g.full_gc(30_000, 56.0 * MB);
    let longer = 3.0 * MB / 10.0;
    assert!((g.rate().unwrap() - longer).abs() < 0.01 * MB, "{:?}", g.rates);
}

#[test]
fn cache_filling_for_40_s_never_starts_at_short_windows() {
    // The eval's cache: 40 MB filled at 60 MiB/min, what a fast leak does for 40 s. A
    // window shorter than that sees a leak unless it is analysed over a minute.
    let cache = Process {
        cache: 40.0 * MB,
        cache_fill_s: 40.0,
        ..Process::healthy()
    };
    cache.assert_quiet(&[(10_000, 250), (30_000, 250), (45_000, 250), (60_000, 250)], 600);
}

#[test]
fn an_lru_nearing_its_cap_never_starts_at_long_windows() {
    // 24 MB of entries filling as 1 − e^(−t/60 s), V8 growing its heap twice as fast. At
    // 60 s this model fires in 9 of 40 seeds at 88–102 s (recorded Node 24 LRU runs: 8 of
    // 27, at 92–110 s); at 90 and 120 s in 2 of 40. docs/leak-detection.md says so.
    let lru = Process {
        cache: 24.0 * MB,
        cache_tau_s: Some(60.0),
        overgrow: 2.0,
        ..Process::healthy()
    };
    lru.assert_quiet(
        &[
            (180_000, 1000),
            (210_000, 1000),
            (240_000, 1000),
            (300_000, 1000),
            (600_000, 1000),
        ],
        1500,
    );
}

#[test]
fn a_cache_filling_for_two_minutes_never_starts_at_longer_windows() {
    // 8 MB filled evenly over two minutes (4 MiB/min), V8 growing its heap twice as fast:
    // what a slow leak does for two minutes. Its first two full GCs come ~75 s apart, less
    // than these windows, so the heap's floor over the span does not stand in for a third
    // (it fired 8 of 40 seeds at 90 s and 7 at 120 s when it did). At 60 s it is a leak for
    // two windows, and fires in 11 of 40 seeds (the module documentation says so).
    let cache = Process {
        cache: 8.0 * MB,
        cache_fill_s: 120.0,
        overgrow: 2.0,
        ..Process::healthy()
    };
    cache.assert_quiet(
        &[(90_000, 250), (120_000, 250), (120_000, 1000), (300_000, 1000)],
        900,
    );
}

#[test]
fn leaks_with_the_defaults_are_told_apart() {
    let cases = [
        (
            "heap",
            Process {
                heap_leak: per_min(6.0 * MIB),
                ..Process::healthy()
            },
            Suspect::Heap,
        ),
        (
            "external",
            Process {
                external_leak: per_min(6.0 * MIB),
                ..Process::healthy()
            },
            Suspect::Native,
        ),
        (
            "native",
            Process {
                native_leak: per_min(6.0 * MIB),
                ..Process::healthy()
            },
            Suspect::Native,
        ),
    ];
    for (name, process, suspect) in cases {
        for (window_ms, interval_ms) in [(60_000, 250), (300_000, 1000)] {
            let mut starts = Vec::new();
            for seed in 1..=5 {
                let events = process.run(seed, window_ms, interval_ms, 900);
                let (t, e) = match events.as_slice() {
                    [(t, LeakTransition::Started(e)), ..] => (*t, e.clone()),
                    _ => panic!("{name}, window {window_ms}, seed {seed}: {:?}", kinds(&events)),
                };
                assert_eq!(e.suspect, suspect, "{name}, window {window_ms}, seed {seed}");
                starts.push(t);
                // A heap or external leak waits for three full GCs (when the old generation
                // and external memory grew by a step) to show it stays; growth nothing
                // explains must hold a window longer.
                let w = window_ms as f64 / 1000.0;
                let bound = match name {
                    // A window more of evidence, which a full GC's drop of the RSS floors
                    // can restart, and first seen five minutes before.
                    "native" => UNEXPLAINED_MIN_MS as f64 / 1000.0 + 2.0 * w + 90.0,
                    _ => w + 30.0 + 130.0,
                };
                assert!(
                    t <= bound,
                    "{name}, window {window_ms}, seed {seed}: started at {t} s"
                );
                assert!(
                    events
                        .iter()
                        .skip(1)
                        .all(|(_, tr)| !matches!(tr, LeakTransition::Started(_))),
                    "{name}: {:?}",
                    kinds(&events)
                );
            }
            println!("{name} leak 6 MiB/min, window {window_ms} ms: started at {starts:?} s");
        }
    }
}

#[test]
fn rss_that_follows_v8s_highest_heap_total_is_not_native() {
    // Node 22, heavy garbage (fixture heavy-garbage-f): V8 takes heapTotal to new highs in
    // bursts and shrinks it after, the RSS keeping the pages, 3 MiB/min for 15 minutes.
    let sizing = Process {
        garbage: per_min(30.0 * MIB),
        burst_highs: per_min(3.0 * MIB),
        keeps_pages: true,
        ..Process::healthy()
    };
    sizing.assert_quiet(&[(60_000, 250), (240_000, 5000), (300_000, 1000)], 900);
    // A native leak beside such highs rising at 0.4 of its rate: still native, in time at
    // 300 s. (At 60 s it starts in time, 378 s, then ends 10-50 s later while it goes on, and
    // starts again: each burst raises heapTotal, and the floors outside the newest heapTotal
    // fall by as much. Outside the highest instead keeps it, but ends the same leak early
    // where V8 hands its pages back, as `leaks_with_the_defaults_are_told_apart` models.)
    let leak = Process {
        native_leak: per_min(6.0 * MIB),
        burst_highs: per_min(2.4 * MIB),
        ..sizing
    };
    let bound = (UNEXPLAINED_MIN_MS + 2 * 300_000) as f64 / 1000.0 + 90.0;
    let mut starts = Vec::new();
    for seed in 1..=5 {
        match leak.run(seed, 300_000, 1000, 900).as_slice() {
            [(t, LeakTransition::Started(e)), ..] if e.suspect == Suspect::Native && *t <= bound => {
                starts.push(*t)
            }
            other => panic!("seed {seed}: {:?}", kinds(other)),
        }
    }
    println!("native 6 MiB/min beside heapTotal highs rising 2.4 MiB/min, 300 s: {starts:?} s");
}

#[test]
fn growth_nothing_explains_is_timed_from_its_latest_start() {
    // Native growth for 150 s (under the five minutes it must be seen for), nothing for
    // 300 s, then growth again: the second run must be seen five minutes from its own start,
    // not from the first run's.
    let process = Process {
        native_leak: per_min(6.0 * MIB),
        native_pause: Some((150.0, 450.0)),
        ..Process::healthy()
    };
    let w = 60.0;
    for seed in 1..=5 {
        let events = process.run(seed, 60_000, 250, 1200);
        let t = match events.as_slice() {
            [(t, LeakTransition::Started(e))] if e.suspect == Suspect::Native => *t,
            other => panic!("seed {seed}: {:?}", kinds(other)),
        };
        let earliest = 450.0 + UNEXPLAINED_MIN_MS as f64 / 1000.0;
        assert!(
            (earliest..=earliest + 2.0 * w + 90.0).contains(&t),
            "seed {seed}: started at {t} s, growth resumed at 450 s"
        );
    }
}

#[test]
fn a_heap_leak_is_the_heap_while_v8_outgrows_it() {
    // Node 24 under the eval's fast leak: V8 grew heapTotal (and the RSS) by 3.4 times what
    // the live heap grew, so the heap floor was a third of the RSS's growth. A cache filling
    // the same way for 40 s must stay quiet. (Why the newest full GC must be recent, the
    // model does not show: its garbage does not raise the floors after the cache filled as
    // Node 24's did; the recorded lru-slow-f, cache-plateau-b and lru-slow-c do.)
    let leak = Process {
        heap_leak: per_min(40.0 * MIB),
        overgrow: 2.0,
        ..Process::healthy()
    };
    let cache = Process {
        cache: 40.0 * MB,
        cache_fill_s: 40.0,
        overgrow: 2.0,
        ..Process::healthy()
    };
    for (window_ms, interval_ms) in [(60_000, 250), (300_000, 1000)] {
        let due = window_ms as f64 / 1000.0 + 30.0;
        let mut starts = Vec::new();
        for seed in 1..=5 {
            match leak.run(seed, window_ms, interval_ms, 600).as_slice() {
                [(t, LeakTransition::Started(e))] if e.suspect == Suspect::Heap && *t <= due => {
                    starts.push(*t)
                }
                other => panic!("leak, window {window_ms}, seed {seed}: {other:?} (due {due})"),
            }
            let quiet = cache.run(seed, window_ms, interval_ms, 900);
            assert!(
                quiet.is_empty(),
                "cache, window {window_ms}, seed {seed}: {quiet:?}"
            );
        }
        println!(
            "heap leak 40 MiB/min, V8 3.4 times as fast, window {window_ms} ms: started at {starts:?} s"
        );
    }
}

#[test]
fn a_heap_leak_is_found_while_v8_hands_pages_back() {
    // A slow heap leak (2.7 MiB/min) in a heap V8 had grown by 36 MB and gives back evenly
    // from 60 to 540 s: the RSS falls a little while the heap grows, and only the heap shows
    // the leak (a recorded slow leak at 300 s: 620 s, due 600). Found by the heap's own trend
    // once its full GCs' floors rise, with the heap's slope (650-680 s without it, the RSS's slope
    // at 0.27-0.66 of the leak's).
    let leak = Process {
        heap_leak: per_min(2.7 * MIB),
        garbage: per_min(10.0 * MIB),
        sizing: 36.0 * MB,
        sizing_fade: Some((60.0, 540.0)),
        ..Process::healthy()
    };
    let mut starts = Vec::new();
    for seed in 1..=5 {
        let events = leak.run(seed, 300_000, 1000, 900);
        let (t, e) = match events.as_slice() {
            [(t, LeakTransition::Started(e))] => (*t, e.clone()),
            other => panic!("seed {seed}: {:?}", kinds(other)),
        };
        assert_eq!(e.suspect, Suspect::Heap, "seed {seed}");
        assert!(t <= 600.0, "seed {seed}: started at {t} s, due 600");
        let share = e.slope_bytes_per_sec / per_min(2.7 * MIB);
        assert!(
            (0.6..=1.5).contains(&share),
            "seed {seed}: slope {share} of the leak's"
        );
        starts.push(t);
    }
    println!("heap leak 2.7 MiB/min, V8 giving 36 MB back over 60-540 s, 300 s: {starts:?} s");
}

#[test]
fn a_growing_child_is_the_suspect_whatever_the_parent_does() {
    // A tree metric: the parent's RSS creeps by 1.8 MB/min and drops back at each full GC, a
    // child grows 6 MiB/min.
    let mut d = LeakDetector::new(LeakConfig {
        window_ms: 60_000,
        ..LeakConfig::default()
    });
    let mut events = Vec::new();
    for i in 0..=2400u64 {
        let t_ms = i * 250;
        let t = t_ms as f64 / 1000.0;
        let phase = t % 100.0;
        let own = 100.0 * MB + 0.03 * MB * phase;
        let child = 50.0 * MB + per_min(6.0 * MIB) * t;
        d.observe_heap(
            t_ms,
            10.0 * MB + 0.1 * MB * phase,
            30.0 * MB,
            3.0 * MB,
            phase < 0.25,
        );
        d.observe_own(t_ms, own);
        if let Some(tr) = d.observe(t_ms, own + child) {
            events.push((t, tr));
        }
    }
    match events.as_slice() {
        [(t, LeakTransition::Started(e))] => {
            assert_eq!(e.suspect, Suspect::Child);
            assert!(*t <= 90.0, "started at {t}");
        }
        _ => panic!("{:?}", kinds(&events)),
    }
}

#[test]
fn a_child_leak_is_on_time_when_the_parent_gives_pages_back() {
    // As recorded (child-leak, Node 22 and 24): the child grows 15 MiB/min; the parent's RSS
    // creeps to 94 MB and drops to 79 MB at 165 s when V8 hands pages back, which bends the
    // tree's floors. At 180 s the tree's own line waited until 233-251 s; the children's
    // floors, which explain the growth, are straight.
    for (window_ms, interval_ms) in [(180_000, 1000), (240_000, 1000)] {
        let mut d = LeakDetector::new(LeakConfig {
            window_ms,
            ..LeakConfig::default()
        });
        let mut events = Vec::new();
        for t_ms in (0..=400_000u64).step_by(interval_ms as usize) {
            let t = t_ms as f64 / 1000.0;
            let own = if t < 165.0 {
                86.0 * MB + 0.05 * MB * t
            } else {
                79.0 * MB + 0.05 * MB * (t - 165.0)
            };
            let child = 13.0 * MB + per_min(15.0 * MIB) * t;
            d.observe_heap(
                t_ms,
                10.0 * MB + 0.1 * MB * (t % 30.0),
                30.0 * MB,
                3.0 * MB,
                t % 30.0 < 1.0,
            );
            d.observe_own(t_ms, own);
            if let Some(tr) = d.observe(t_ms, own + child) {
                events.push((t, tr));
            }
        }
        let due = window_ms as f64 / 1000.0 + 30.0;
        match events.as_slice() {
            [(t, LeakTransition::Started(e))] => {
                assert_eq!(e.suspect, Suspect::Child);
                assert!(*t <= due, "window {window_ms}: started at {t}");
            }
            _ => panic!("window {window_ms}: {:?}", kinds(&events)),
        }
    }
}

/// The settings the look-out is tried at: the default window at the default 1 s sampling and at
/// 250 ms, and the eval's 300 s window.
const WATCHED: [(u64, u64); 3] = [(600_000, 1000), (600_000, 250), (300_000, 1000)];

/// (t in s, suspect) of each Started, and the times of each Ended.
fn starts_and_ends(events: &[(f64, LeakTransition)]) -> (Vec<(f64, Suspect)>, Vec<f64>) {
    let starts = events
        .iter()
        .filter_map(|(t, e)| match e {
            LeakTransition::Started(e) => Some((*t, e.suspect)),
            LeakTransition::Ended(_) => None,
        })
        .collect();
    let ends = events
        .iter()
        .filter_map(|(t, e)| matches!(e, LeakTransition::Ended(_)).then_some(*t))
        .collect();
    (starts, ends)
}

#[test]
fn a_leak_that_reaches_a_limit_within_the_window_is_reported_before_it() {
    // A heap leak of 40 MiB/min under V8's 256 MiB heap limit (heapUsed reaches it at ~367 s),
    // and Buffers of 60 MiB/min under a 512 MiB memory limit (the RSS reaches it at ~430 s):
    // the detector alone reports them at ~530 s with a 600 s window, after both.
    let cases = [
        (
            Process {
                heap_leak: per_min(40.0 * MIB),
                ..Process::healthy()
            },
            (None, Some(256.0 * MIB)),
            Suspect::Heap,
            367.0,
        ),
        (
            Process {
                external_leak: per_min(60.0 * MIB),
                ..Process::healthy()
            },
            (Some(512.0 * MIB), Some(256.0 * MIB)),
            Suspect::Native,
            430.0,
        ),
    ];
    for (process, limits, suspect, limit_at) in cases {
        for (window_ms, interval_ms) in WATCHED {
            for seed in 1..=5 {
                let events = process.run_watched(seed, window_ms, interval_ms, 1200, limits);
                let (starts, _) = starts_and_ends(&events);
                let what = format!("{suspect:?}, window {window_ms} at {interval_ms} ms, seed {seed}");
                // Once: the detector's own confirmation later is the same episode.
                assert_eq!(starts.len(), 1, "{what}: {:?}", kinds(&events));
                assert_eq!(starts[0].1, suspect, "{what}");
                // A minute's look-out, two more of it lasting, a warning a minute or more ahead.
                assert!(
                    starts[0].0 <= limit_at - 60.0,
                    "{what}: started at {} s",
                    starts[0].0
                );
            }
        }
    }
}

#[test]
fn without_a_limit_in_reach_the_watch_reports_what_the_detector_does() {
    let heap = Process {
        heap_leak: per_min(40.0 * MIB),
        ..Process::healthy()
    };
    let far = (Some(64.0 * 1024.0 * MIB), Some(4288.0 * MIB));
    // 120 s windows have no look-out at all; the others' look-out never finds a limit in reach.
    for (window_ms, interval_ms) in [(120_000, 250), (300_000, 1000), (600_000, 1000)] {
        for seed in 1..=3 {
            let alone = kinds(&heap.run(seed, window_ms, interval_ms, 900));
            assert!(!alone.is_empty(), "window {window_ms}: no event");
            for limits in [(None, None), far] {
                let watched = heap.run_watched(seed, window_ms, interval_ms, 900, limits);
                assert_eq!(kinds(&watched), alone, "window {window_ms}, {limits:?}");
            }
        }
    }
}

#[test]
fn a_leak_reported_early_that_stops_ends_once_and_is_not_reported_again() {
    // A heap leak of 40 MiB/min under V8's 384 MiB heap limit, stopping at 400 or 450 s: the
    // look-out reports it at ~200 s; when the look-out calls it off before the detector
    // confirmed it, the detector's window still holds the growth and confirms it (at ~530 s),
    // which must reach the user neither as a second leak nor as a second end.
    for stop in [400.0, 450.0] {
        let stops = Process {
            heap_leak: per_min(40.0 * MIB),
            leak_pause: Some((stop, f64::INFINITY)),
            ..Process::healthy()
        };
        for (window_ms, interval_ms) in [(600_000, 1000), (600_000, 250)] {
            for seed in 1..=5 {
                let events = stops.run_watched(seed, window_ms, interval_ms, 1800, (None, Some(384.0 * MIB)));
                let (starts, ends) = starts_and_ends(&events);
                let what = format!(
                    "stop {stop}, window {window_ms} at {interval_ms} ms, seed {seed}: {:?}",
                    kinds(&events)
                );
                assert_eq!(starts.len(), 1, "{what}");
                assert!(starts[0].0 < stop, "{what}");
                assert_eq!(ends.len(), 1, "{what}");
                assert!(
                    ends[0] > stop && ends[0] <= stop + 1.5 * window_ms as f64 / 1000.0,
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn caches_filling_under_a_tight_limit_are_not_reported_early() {
    // 60 MB filled in 40 s (90 MB/min: a fast leak for 40 s), and an LRU of 60 MB filling as
    // 1 − e^(−t/60 s), V8 growing its heap twice as fast, with both limits close: at their
    // one-minute slopes the process reaches them within the window, but not for long. Their
    // RSS peaks at ~301 MiB and the heap at ~91 MiB; the limits are 1.25 times those (as
    // `eval/sweep.mjs --limits-over-peak 1.25`): 0 of 100 seeds report (40 in the test).
    // Closer, the look-out's straight count reaches a limit from the LRU still filling, 600 s
    // windows at 250 ms sampling, at 270-280 s (the RSS at 285 MB rising 7 MB/min), ended at
    // ~620 s: 2 of 100 seeds (35, 93) with the memory limit at up to 346 MiB (1.15 times) or
    // V8's at up to 109 MiB (1.20 times), seed 93 alone to 350 and 110 MiB. So V8's 113 MiB
    // is 3 MiB above a limit that fires. Until 2026-12-07 the memory limit was 256 MiB, under
    // the RSS from ~2 minutes on.
    let cache = Process {
        cache: 60.0 * MB,
        cache_fill_s: 40.0,
        overgrow: 2.0,
        ..Process::healthy()
    };
    let lru = Process {
        cache: 60.0 * MB,
        cache_fill_s: 1.0,
        cache_tau_s: Some(60.0),
        overgrow: 2.0,
        ..Process::healthy()
    };
    for process in [cache, lru] {
        for (window_ms, interval_ms) in WATCHED {
            for seed in 1..=40 {
                let events = process.run_watched(
                    seed,
                    window_ms,
                    interval_ms,
                    1200,
                    (Some(376.0 * MIB), Some(113.0 * MIB)),
                );
                assert!(
                    events.is_empty(),
                    "window {window_ms}, seed {seed}: {:?}",
                    kinds(&events)
                );
            }
        }
    }
}

#[test]
fn a_leak_that_comes_back_after_an_early_end_is_reported_again() {
    // 40 MiB/min of heap under V8's 512 MiB limit, paused for two minutes from 280 or 300 s:
    // the look-out reports it and calls it off in the pause; the detector confirms the growth
    // at ~610 s within a window of that end, which alone is not news, but the leak is back and
    // reaches the limit at ~870 s: it must be reported again before that.
    for from in [280.0, 300.0] {
        let process = Process {
            heap_leak: per_min(40.0 * MIB),
            leak_pause: Some((from, from + 120.0)),
            ..Process::healthy()
        };
        for seed in 1..=5 {
            let events = process.run_watched(seed, 600_000, 1000, 900, (None, Some(512.0 * MIB)));
            let what = format!("pause from {from}, seed {seed}: {:?}", kinds(&events));
            let (starts, ends) = starts_and_ends(&events);
            assert!(!starts.is_empty() && starts[0].0 < from, "{what}");
            // Paired, in order, and a leak on at 800 s, before the limit.
            for (i, (_, e)) in events.iter().enumerate() {
                let expect_start = i % 2 == 0;
                assert_eq!(matches!(e, LeakTransition::Started(_)), expect_start, "{what}");
            }
            if let Some(&end) = ends.first() {
                assert!(
                    starts.iter().any(|&(t, _)| t > end && t < 800.0),
                    "{what}: not reported again after the end at {end}"
                );
            }
        }
    }
}

#[test]
fn a_leak_the_window_called_off_does_not_flap_back_from_the_look_out() {
    // 40 MiB/min of heap stopping at 500 s, when the RSS has passed a 512 MiB limit (every
    // growth is then "in reach"): the window's detector calls the episode off at ~600 s while
    // the look-out's own episode, begun at ~80 s, still reads the garbage between full GCs as
    // growth. It must last anew before it reports again, not on the next sample.
    let stops = Process {
        heap_leak: per_min(40.0 * MIB),
        leak_pause: Some((500.0, f64::INFINITY)),
        ..Process::healthy()
    };
    for (window_ms, interval_ms) in [(180_000, 1000), (300_000, 1000), (180_000, 250), (600_000, 1000)] {
        for seed in 1..=5 {
            let limits = (Some(512.0 * MIB), Some(512.0 * MIB));
            let events = stops.run_watched(seed, window_ms, interval_ms, 1500, limits);
            let what = format!(
                "window {window_ms} at {interval_ms} ms, seed {seed}: {:?}",
                kinds(&events)
            );
            assert!(
                matches!(events.first(), Some((_, LeakTransition::Started(_)))),
                "{what}"
            );
            for pair in events.windows(2) {
                if let [(end, LeakTransition::Ended(_)), (start, LeakTransition::Started(_))] = pair {
                    assert!(start - end >= LOOKOUT_WINDOW_MS as f64 / 1000.0, "{what}");
                }
            }
        }
    }
}
