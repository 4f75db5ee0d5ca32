//! Leak detector: reports steady growth of a memory metric (RSS, working set, ...) and when it
//! stops, robust to what a healthy Node service does.
//!
//! # What it looks at
//!
//! Samples go into **fine buckets** of `window/30` (20 s for the default 10-minute window). A
//! bucket keeps only its minimum and when it was seen; the detector holds the last 30 complete
//! buckets plus the one filling, and as many buckets of V8 heap figures, so its memory (about
//! 2 KiB) does not depend on the sampling rate.
//!
//! The trend is tested on the **lower envelope**: the minimum of each sub-window of three fine
//! buckets (`window/10`, 60 s by default), i.e. the post-GC floors, which is what a leak raises
//! and what a GC sawtooth leaves alone (Grottke et al. 2006, "Analysis of software aging in a web
//! server"). The sub-windows are aligned to end at the newest complete fine bucket and slide by one
//! fine bucket per evaluation; only whole sub-windows count. A sub-window must be longer than a GC
//! cycle, otherwise its minimum is a point on the way up, tens of MB above the floor. That is why
//! it is `window/10` and not `window/30`: with GC cycles of 20–60 s (the synthetic tests) a 20 s
//! sub-window often holds no GC. Choosing the sub-window adaptively (the finest whose envelope is
//! as smooth as the coarsest) was tried and dropped: a step or a warm-up ramp makes the coarse
//! envelope rough, and the choice then fell on contaminated sub-windows. Rule of thumb: make the
//! window at least ten GC cycles and at least thirty sampling intervals.
//!
//! # When it decides
//!
//! Once per fine bucket, when the first sample of a new bucket arrives. Every other sample costs a
//! few ns; an evaluation a few µs (1–8 µs measured in a release build, most when a leak is on: the
//! costlier tests run only once the cheaper ones pass). Nothing is decided until the envelope has **8 sub-windows with data** spanning at least half the window (so at least
//! 80% of the window: eight minima are the fewest on which the Mann–Kendall normal approximation
//! holds and the "recent third" below has more than one point).
//!
//! A leak episode **starts** when all of these hold, on two consecutive evaluations:
//! 1. the Theil–Sen slope of the envelope is at least `min_slope`;
//! 2. its one-sided 95% lower confidence bound (Sen 1968) is at least 0.75 × `min_slope`, so the
//!    growth is both real and large enough (on floors noisy compared with `min_slope × window`
//!    this is what holds false alarms down);
//! 3. the Mann–Kendall test rejects "no trend" for "increasing" at p ≤ 0.05;
//! 4. growth goes on now: the lowest floor of the last third of the envelope is above the lowest
//!    floor of the middle third by at least 0.5 × `min_slope` × the time between the two thirds'
//!    centers;
//! 5. the growth is steady, not growth that stopped: the L1 misfit of the Theil–Sen line is at most
//!    1.3 × that of the better of (a) a continuous hinge, rising then flat for at least the last
//!    third of the envelope (a warm-up ramp, a cache that filled) and (b) a two-level step (load
//!    rose once and V8 kept the memory).
//!
//! It **ends** when, on two consecutive evaluations, any of these holds: the slope is below
//! 0.5 × `min_slope`; the last third grows at less than 0.25 × `min_slope`; the line misfits more
//! than 3 × the hinge or step. The lower thresholds to go on than to start are the hysteresis
//! that keeps a leak near `min_slope` from flapping. While the data is insufficient (a gap in the
//! samples longer than the window) the state does not change.
//!
//! # How fast, and how often wrong (measured on the synthetic series of the tests)
//!
//! Base 400 MB, GC sawtooth rising 10–30% of base in cycles of 20–60 s, 1 s samples, window
//! 600 s, warm-up 0, 100 seeds; times are seconds after the leak began:
//!
//! | leak                                               | Started: median / p90 / max |
//! |----------------------------------------------------|-----------------------------|
//! | 2 MiB/min (min_slope 1 MiB/min), from t = 0        | 500 / 500 / 500             |
//! | 20 MiB/min (min_slope 1 MiB/min), from t = 0       | 500 / 500 / 500             |
//! | 512 KiB/min (min_slope 256 KiB/min), from t = 0    | 500 / 600 / 760             |
//! | 2 MiB/min, after 600 s flat                        | 380 / 400 / 400             |
//! | 512 KiB/min, after 600 s flat                      | 420 / 520 / 800             |
//! | window 60 s, 250 ms samples, 2 MB/s (min 0.5 MB/s), GC every 1–5 s, from t = 0 | 50 / 50 / 50 |
//! | the same, after 120 s flat                         | 36 / 38 / 40                |
//!
//! A leak present from the first sample cannot be reported before 8 sub-windows plus the
//! confirming fine bucket, 0.83 × window. Latency bound the tests assert: 1.0 × window for
//! 2 and 20 MiB/min, 1.3 × window for 512 KiB/min (its 5 MiB of growth per window is about the
//! spread of the post-GC floors at 1 s sampling), 60 s for the 60 s window. A leak that stops is
//! reported ended 200–440 s later (median 300 s).
//!
//! Never started (100 seeds, 40 minutes each, `min_slope` 256 KiB/min and 1 MiB/min): the flat
//! sawtooth; a warm-up of +100 MB in 60 s with warm-up 0 and 120 s; a step of +80 MB, and of
//! 5–150 MB at random times; a cache of 60 MB filled in 120 s, and of 10–150 MB filled in 30–200 s.
//! Two steps a few minutes apart do look like growth and start an episode in most runs. What
//! matters is the noise of the floors against `min_slope × window`: with a 20–50% sawtooth and
//! ±2 MiB jitter, or GC every 2–8 s, 1–2 runs in 100 started at 256 KiB/min, none at 1 MiB/min.
//!
//! # The estimate
//!
//! `slope_bytes_per_sec` is the envelope's Theil–Sen slope; `window_ms` the span of the analysed
//! sub-windows (first start to last end, normally the window); `growth_bytes` = slope × that span,
//! the growth the trend implies over it (not `floor_last − floor_first`, which is noisier);
//! `confidence` = 1 − p of the one-sided Mann–Kendall test.
//!
//! `suspect` compares the growth of the V8 heap's post-GC floor with the metric's, over the same
//! span: the Theil–Sen slope of the per-fine-bucket minima of `heap_used` from
//! [`LeakDetector::observe_heap`], needing at least 3 of them spanning a third of the span. A heap
//! slope ≥ 50% of the metric's slope is `Heap` (retained JS objects); < 20% is `Native` (memory
//! outside the JS heap), as is any case where `external` (external + arrayBuffers) grows at ≥ 50%
//! of the metric's slope; anything between, no heap figures, or a metric that does not grow is
//! `Unknown`.

use std::collections::VecDeque;

use crate::trend;

/// Fine buckets per analysis window.
const FINE_BUCKETS: u64 = 30;
/// Fine buckets per envelope sub-window: sub-windows of window/10.
const GROUP: u64 = 3;
/// Envelope points (sub-windows with data) needed for a decision.
const MIN_POINTS: usize = 8;
/// z of the one-sided 95% lower confidence bound of the slope.
const LOWER_BOUND_Z: f64 = 1.645;
/// To start: that lower bound, as a fraction of `min_slope`.
const START_LOWER_FRACTION: f64 = 0.75;
/// To start: Mann–Kendall confidence (1 − one-sided p).
const START_CONFIDENCE: f64 = 0.95;
/// To start: growth from the middle to the last third, as a fraction of `min_slope`.
const START_RECENT_FRACTION: f64 = 0.5;
/// To start: the line's misfit at most this times that of the best hinge or step.
const START_SHAPE_FACTOR: f64 = 1.3;
/// To go on: slope at least this fraction of `min_slope`, ...
const KEEP_SLOPE_FRACTION: f64 = 0.5;
/// ... growth from the middle to the last third at least this fraction, ...
const KEEP_RECENT_FRACTION: f64 = 0.25;
/// ... and the line's misfit at most this times that of the best hinge or step.
const KEEP_SHAPE_FACTOR: f64 = 3.0;
/// Consecutive evaluations that must agree before the state changes.
const CONFIRM: u32 = 2;
/// Heap floor growth explaining at least this share of the metric's growth: `Heap`.
const HEAP_SHARE: f64 = 0.5;
/// Heap floor growth below this share: `Native`.
const NATIVE_SHARE: f64 = 0.2;
/// Fine buckets with a heap observation needed to classify.
const MIN_HEAP_POINTS: usize = 3;

/// Configuration of a [`LeakDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakConfig {
    /// Analysis window, ms. Default 600_000.
    pub window_ms: u64,
    /// Bytes per second; growth slower than this is not a leak. NaN never reports; a negative
    /// value counts as 0 (any significant steady growth).
    pub min_slope: f64,
    /// Ignore samples whose time is < first_sample_time + warmup_ms.
    pub warmup_ms: u64,
}

impl Default for LeakConfig {
    /// A 10-minute window, 1 MiB/min, no warm-up.
    fn default() -> Self {
        LeakConfig {
            window_ms: 600_000,
            min_slope: 1024.0 * 1024.0 / 60.0,
            warmup_ms: 0,
        }
    }
}

/// Where the growth most likely is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspect {
    /// The V8 heap's post-GC floor grows with the metric: JS objects are retained.
    Heap,
    /// The metric grows while the V8 heap floor does not: native memory, external, ArrayBuffers.
    Native,
    /// No or too few heap figures, or a share in between.
    Unknown,
}

impl Suspect {
    /// `"heap"`, `"native"` or `"unknown"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Suspect::Heap => "heap",
            Suspect::Native => "native",
            Suspect::Unknown => "unknown",
        }
    }
}

/// What the detector measured over the analysed span.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakEstimate {
    /// Theil–Sen slope of the lower envelope, bytes per second.
    pub slope_bytes_per_sec: f64,
    /// `slope_bytes_per_sec × window_ms / 1000`: the growth the trend implies over the span.
    pub growth_bytes: f64,
    /// Span of the analysed sub-windows, ms (first sub-window start to last sub-window end).
    pub window_ms: u64,
    /// 1 − p of the one-sided Mann–Kendall test for an increasing envelope, 0..=1.
    pub confidence: f64,
    /// Where the growth most likely is.
    pub suspect: Suspect,
}

/// A change of the detector's state.
#[derive(Debug, Clone, PartialEq)]
pub enum LeakTransition {
    /// A leak episode began.
    Started(LeakEstimate),
    /// The episode's growth stopped.
    Ended(LeakEstimate),
}

/// One fine bucket of the watched metric.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: u64,
    /// When the minimum was seen, ms since the origin.
    min_t: u64,
    min: f64,
}

/// One fine bucket of V8 heap figures: (ms since the origin, value) of each minimum.
#[derive(Debug, Clone, Copy)]
struct HeapBucket {
    idx: u64,
    heap: (u64, f64),
    external: Option<(u64, f64)>,
}

/// The statistics of one evaluation. The costlier ones (the confidence bound, the shape fits) are
/// methods, computed only when the cheaper conditions have not already settled the verdict.
#[derive(Debug, Clone)]
struct Analysis {
    /// The envelope, (t in s, floor), in time order.
    points: Vec<(f64, f64)>,
    /// Theil–Sen slope of the envelope.
    slope: f64,
    /// Mann–Kendall 1 − p for "increasing".
    confidence: f64,
    /// Slope between the lowest floors of the middle and of the last third of the envelope.
    slope_recent: f64,
    /// Analysed span, fine buckets `[first_idx, end_idx)`.
    first_idx: u64,
    end_idx: u64,
}

impl Analysis {
    /// One-sided 95% lower confidence bound of the slope (−∞ if there is none).
    fn slope_lower(&self, scratch: &mut Vec<f64>) -> f64 {
        trend::theil_sen_bounds(&self.points, LOWER_BOUND_Z, scratch).map_or(f64::NEG_INFINITY, |b| b.0)
    }

    /// Whether the L1 misfit of the Theil–Sen line is at most `factor` times that of the better
    /// of the best hinge (growth then flat for at least the last third) and the best step.
    fn steady(&self, factor: f64) -> bool {
        let values: Vec<f64> = self.points.iter().map(|p| p.1).collect();
        let costs = (
            trend::line_l1_cost(&self.points, self.slope),
            trend::hinge_l1_cost(&self.points, self.points.len() / 3),
            trend::step_l1_cost(&values),
        );
        match costs {
            (Some(line), Some((_, hinge)), Some((_, step))) => line <= factor * hinge.min(step),
            _ => false,
        }
    }
}

/// Leak detector for one memory metric; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct LeakDetector {
    config: LeakConfig,
    /// `config.min_slope`, NaN made +∞ and negatives 0.
    min_slope: f64,
    /// Fine bucket width, ms (≥ 1).
    width_ms: u64,
    first_t: Option<u64>,
    last_t: Option<u64>,
    /// Time of the first sample after the warm-up: fine bucket 0 starts here.
    origin: Option<u64>,
    buckets: VecDeque<Bucket>,
    heap: VecDeque<HeapBucket>,
    last_heap_t: Option<u64>,
    episode: Option<LeakEstimate>,
    /// Consecutive evaluations whose verdict differs from the state.
    streak: u32,
    scratch: Vec<f64>,
}

impl LeakDetector {
    pub fn new(config: LeakConfig) -> Self {
        let min_slope = if config.min_slope.is_nan() {
            f64::INFINITY
        } else {
            config.min_slope.max(0.0)
        };
        LeakDetector {
            config,
            min_slope,
            width_ms: config.window_ms.div_ceil(FINE_BUCKETS).max(1),
            first_t: None,
            last_t: None,
            origin: None,
            buckets: VecDeque::with_capacity(FINE_BUCKETS as usize + 1),
            heap: VecDeque::new(),
            last_heap_t: None,
            episode: None,
            streak: 0,
            scratch: Vec::new(),
        }
    }

    /// One sample of the watched metric (bytes) at time `t_ms` (monotonic ms, non-decreasing; a
    /// sample whose time goes backwards or whose value is not finite is ignored). Returns Some on
    /// a state change: Started once per episode (not again while the episode lasts), Ended when
    /// growth has stopped. O(1) except when the sample opens a new fine bucket (once per
    /// window/30), which runs an evaluation over at most 10 envelope points.
    pub fn observe(&mut self, t_ms: u64, value: f64) -> Option<LeakTransition> {
        if !value.is_finite() || self.last_t.is_some_and(|last| t_ms < last) {
            return None;
        }
        self.last_t = Some(t_ms);
        let first = *self.first_t.get_or_insert(t_ms);
        if t_ms < first.saturating_add(self.config.warmup_ms) {
            return None;
        }
        let origin = *self.origin.get_or_insert(t_ms);
        let rel = t_ms - origin;
        let idx = rel / self.width_ms;
        if let Some(b) = self.buckets.back_mut() {
            if b.idx == idx {
                if value < b.min {
                    b.min = value;
                    b.min_t = rel;
                }
                return None;
            }
        }
        self.buckets.push_back(Bucket {
            idx,
            min_t: rel,
            min: value,
        });
        let lo = idx.saturating_sub(FINE_BUCKETS);
        while self.buckets.front().is_some_and(|b| b.idx < lo) {
            self.buckets.pop_front();
        }
        while self.heap.front().is_some_and(|b| b.idx < lo) {
            self.heap.pop_front();
        }
        self.evaluate(idx)
    }

    /// V8 heap figures recorded right after a GC (`heap_used` = post-GC heapUsed bytes,
    /// `external` = external + arrayBuffers bytes; NaN if unknown). Used only to classify
    /// `suspect`. Ignored before the first metric sample after the warm-up, when `heap_used` is
    /// not finite, or when the time goes backwards.
    pub fn observe_heap(&mut self, t_ms: u64, heap_used: f64, external: f64) {
        let Some(origin) = self.origin else {
            return;
        };
        if !heap_used.is_finite() || t_ms < origin || self.last_heap_t.is_some_and(|last| t_ms < last) {
            return;
        }
        self.last_heap_t = Some(t_ms);
        let rel = t_ms - origin;
        let idx = rel / self.width_ms;
        let external = external.is_finite().then_some((rel, external));
        match self.heap.back_mut() {
            Some(b) if b.idx == idx => {
                if heap_used < b.heap.1 {
                    b.heap = (rel, heap_used);
                }
                if let Some(e) = external {
                    if b.external.is_none_or(|old| e.1 < old.1) {
                        b.external = Some(e);
                    }
                }
            }
            _ => self.heap.push_back(HeapBucket {
                idx,
                heap: (rel, heap_used),
                external,
            }),
        }
        let newest = self.buckets.back().map_or(idx, |b| b.idx.max(idx));
        let lo = newest.saturating_sub(FINE_BUCKETS);
        while self.heap.front().is_some_and(|b| b.idx < lo) {
            self.heap.pop_front();
        }
    }

    /// The latest estimate while an episode is on (for a Prometheus gauge), else None.
    pub fn current(&self) -> Option<&LeakEstimate> {
        self.episode.as_ref()
    }

    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    pub fn config(&self) -> &LeakConfig {
        &self.config
    }

    /// Runs when fine bucket `cur` has just begun, so every older bucket is complete.
    fn evaluate(&mut self, cur: u64) -> Option<LeakTransition> {
        // Not enough data: no decision, the state stays as it is.
        let a = self.analyse(cur)?;
        let min = self.min_slope;
        // The verdict that would change the state: "a leak" while idle, "no longer" in an episode.
        let flips = if self.episode.is_none() {
            a.slope >= min
                && a.confidence >= START_CONFIDENCE
                && a.slope_recent >= START_RECENT_FRACTION * min
                && a.slope_lower(&mut self.scratch) >= START_LOWER_FRACTION * min
                && a.steady(START_SHAPE_FACTOR)
        } else {
            !(a.slope >= KEEP_SLOPE_FRACTION * min
                && a.slope_recent >= KEEP_RECENT_FRACTION * min
                && a.steady(KEEP_SHAPE_FACTOR))
        };
        self.streak = if flips { self.streak + 1 } else { 0 };
        if self.streak < CONFIRM {
            if self.episode.is_some() {
                self.episode = Some(self.estimate(&a));
            }
            return None;
        }
        self.streak = 0;
        let estimate = self.estimate(&a);
        if self.episode.take().is_some() {
            Some(LeakTransition::Ended(estimate))
        } else {
            self.episode = Some(estimate.clone());
            Some(LeakTransition::Started(estimate))
        }
    }

    /// The lower envelope: the minimum of each whole sub-window of `GROUP` fine buckets, the
    /// sub-windows aligned to end at fine bucket `cur` (exclusive), over at most `FINE_BUCKETS`
    /// buckets. Returns (sub-windows back from `cur`, t in s, min) in time order.
    fn envelope(&self, cur: u64) -> Vec<(u64, f64, f64)> {
        let lo = cur - cur.min(FINE_BUCKETS) / GROUP * GROUP;
        let points = self
            .buckets
            .iter()
            .filter(|b| b.idx >= lo && b.idx < cur)
            .map(|b| ((cur - 1 - b.idx) / GROUP, b.min_t as f64 / 1000.0, b.min));
        trend::lower_envelope(points)
    }

    fn analyse(&mut self, cur: u64) -> Option<Analysis> {
        let env = self.envelope(cur);
        let n = env.len();
        if n < MIN_POINTS {
            return None;
        }
        let first_idx = cur.saturating_sub((env[0].0 + 1) * GROUP);
        let end_idx = cur - env[n - 1].0 * GROUP;
        let span_ms = (end_idx - first_idx) as f64 * self.width_ms as f64;
        if span_ms < self.config.window_ms as f64 / 2.0 {
            return None;
        }
        let points: Vec<(f64, f64)> = env.iter().map(|&(_, t, v)| (t, v)).collect();
        let values: Vec<f64> = env.iter().map(|&(_, _, v)| v).collect();
        let slope = trend::theil_sen_with(&points, &mut self.scratch)?;
        let confidence = trend::mann_kendall(&values)?.confidence_increasing();
        // The middle and the last third, each as (center time, lowest floor).
        let k = n / 3;
        let third = |part: &[(f64, f64)]| -> Option<(f64, f64)> {
            let center = (part.first()?.0 + part.last()?.0) / 2.0;
            let low = part.iter().map(|p| p.1).min_by(f64::total_cmp)?;
            Some((center, low))
        };
        let (c2, m2) = third(&points[k..n - k])?;
        let (c3, m3) = third(&points[n - k..])?;
        let slope_recent = (m3 - m2) / (c3 - c2);
        if !slope_recent.is_finite() {
            return None;
        }
        Some(Analysis {
            points,
            slope,
            confidence,
            slope_recent,
            first_idx,
            end_idx,
        })
    }

    fn estimate(&self, a: &Analysis) -> LeakEstimate {
        let window_ms = (a.end_idx - a.first_idx).saturating_mul(self.width_ms);
        LeakEstimate {
            slope_bytes_per_sec: a.slope,
            growth_bytes: a.slope * window_ms as f64 / 1000.0,
            window_ms,
            confidence: a.confidence.clamp(0.0, 1.0),
            suspect: self.suspect(a),
        }
    }

    /// The heap's share of the growth → Heap / Native / Unknown (see the module documentation).
    fn suspect(&self, a: &Analysis) -> Suspect {
        if a.slope.is_nan() || a.slope <= 0.0 {
            return Suspect::Unknown;
        }
        let in_span = |b: &&HeapBucket| b.idx >= a.first_idx && b.idx < a.end_idx;
        let seconds = |(t, v): (u64, f64)| (t as f64 / 1000.0, v);
        let heap: Vec<(f64, f64)> = self
            .heap
            .iter()
            .filter(in_span)
            .map(|b| seconds(b.heap))
            .collect();
        let external: Vec<(f64, f64)> = self
            .heap
            .iter()
            .filter(in_span)
            .filter_map(|b| b.external.map(seconds))
            .collect();
        let span_s = (a.end_idx - a.first_idx) as f64 * self.width_ms as f64 / 1000.0;
        let covers = |pts: &[(f64, f64)]| match (pts.first(), pts.last()) {
            (Some(f), Some(l)) => pts.len() >= MIN_HEAP_POINTS && l.0 - f.0 >= span_s / 3.0,
            _ => false,
        };
        if !covers(&heap) {
            return Suspect::Unknown;
        }
        let Some(heap_slope) = trend::theil_sen(&heap) else {
            return Suspect::Unknown;
        };
        let external_slope = if covers(&external) {
            trend::theil_sen(&external).unwrap_or(0.0)
        } else {
            0.0
        };
        let heap_share = heap_slope / a.slope;
        let external_share = external_slope / a.slope;
        if heap_share >= HEAP_SHARE {
            Suspect::Heap
        } else if heap_share < NATIVE_SHARE || external_share >= HEAP_SHARE {
            Suspect::Native
        } else {
            Suspect::Unknown
        }
    }

    /// Buckets held (metric + heap): bounded by 2 × (FINE_BUCKETS + 1).
    #[cfg(test)]
    fn buckets_held(&self) -> usize {
        self.buckets.len() + self.heap.len()
    }
}

/// Time in ms until `value` reaches `limit` growing at `slope_bytes_per_sec`; None if no limit,
/// the slope is <= 0, or any input or the result is not finite; Some(0.0) if already at/over the
/// limit.
pub fn ms_to_limit(value: f64, limit: Option<f64>, slope_bytes_per_sec: f64) -> Option<f64> {
    let limit = limit?;
    if !value.is_finite() || !limit.is_finite() || !slope_bytes_per_sec.is_finite() {
        return None;
    }
    if slope_bytes_per_sec <= 0.0 {
        return None;
    }
    if value >= limit {
        return Some(0.0);
    }
    Some((limit - value) / slope_bytes_per_sec * 1000.0).filter(|ms| ms.is_finite())
}

#[cfg(test)]
mod tests {
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
            min_slope,
            warmup_ms,
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

    /// A 2 MiB/min RSS leak with post-GC heap figures every 5 s; returns the suspect at Started.
    fn suspect_with(heap: Option<(f64, f64)>) -> Suspect {
        let slope = per_min(2.0 * MIB);
        let mut saw = Sawtooth::standard(3);
        let mut rng = Lcg(99);
        let mut d = LeakDetector::new(config(WINDOW, per_min(MIB), 0));
        for t in 0..=900u64 {
            let ts = t as f64;
            if let Some((heap_slope, external_slope)) = heap {
                if t % 5 == 0 {
                    let jitter = rng.range(-0.2, 0.2) * MIB;
                    d.observe_heap(
                        t * 1000,
                        150.0 * MB + heap_slope * ts + jitter,
                        20.0 * MB + external_slope * ts,
                    );
                }
            }
            if let Some(LeakTransition::Started(e)) = d.observe(t * 1000, saw.at(ts) + slope * ts) {
                assert_eq!(d.current(), Some(&e));
                return e.suspect;
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
        assert_eq!(suspect_with(Some((0.35 * slope, 0.0))), Suspect::Unknown);
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
    fn ms_to_limit_cases() {
        assert_eq!(ms_to_limit(100.0, Some(200.0), 10.0), Some(10_000.0));
        assert_eq!(ms_to_limit(400.0 * MB, Some(800.0 * MB), 2.1 * MB / 60.0), {
            Some(400.0 * MB / (2.1 * MB / 60.0) * 1000.0)
        });
        assert_eq!(ms_to_limit(100.0, None, 10.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), 0.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), -5.0), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), f64::NAN), None);
        assert_eq!(ms_to_limit(100.0, Some(200.0), f64::INFINITY), None);
        assert_eq!(ms_to_limit(f64::NAN, Some(200.0), 1.0), None);
        assert_eq!(ms_to_limit(100.0, Some(f64::INFINITY), 1.0), None);
        assert_eq!(ms_to_limit(200.0, Some(200.0), 1.0), Some(0.0));
        assert_eq!(ms_to_limit(300.0, Some(200.0), 1.0), Some(0.0));
        assert_eq!(ms_to_limit(-f64::MAX, Some(f64::MAX), f64::MIN_POSITIVE), None);
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
                d.observe_heap(t, 100.0 * MB + MIB / 60_000.0 * t as f64, 1.0 * MB);
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
                d.observe_heap(t, v, -v);
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
        d.observe_heap(2_000, 5.0, 0.0);
        d.observe(30_000, 5.0);
        assert!(d.buckets.is_empty() && d.heap.is_empty());
        d.observe(61_000, 5.0);
        assert_eq!(d.buckets.len(), 1);
    }

    #[test]
    fn default_config() {
        let c = LeakConfig::default();
        assert_eq!(c.window_ms, 600_000);
        assert_eq!(c.warmup_ms, 0);
        assert!((c.min_slope * 60.0 - MIB).abs() < 1e-6);
    }
}
