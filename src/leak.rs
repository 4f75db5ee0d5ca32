//! Leak detector (doc written after measurement).

use std::collections::VecDeque;

use crate::trend;

/// Fine buckets per analysis window.
const FINE_BUCKETS: u64 = 30;
/// Candidate sub-window sizes, in fine buckets (window/30, window/15, window/10).
const GROUP_SIZES: [u64; 3] = [1, 2, 3];
/// Quantile of the successive envelope differences used as its roughness.
const ROUGHNESS_QUANTILE: f64 = 0.75;
/// A finer envelope is used when its roughness is at most this times the coarsest one's.
const ROUGHNESS_FACTOR: f64 = 2.0;
/// The coarsest envelope must have this many points before anything is decided.
const MIN_COARSE_POINTS: usize = 4;
/// Envelope points needed for a decision.
const MIN_POINTS: usize = 8;
/// Mann–Kendall confidence (1 − one-sided p) needed to start an episode.
const START_CONFIDENCE: f64 = 0.95;
/// Slope between the medians of successive thirds, as a fraction of `min_slope`, to start.
const START_THIRDS_FRACTION: f64 = 0.5;
/// An episode goes on while the overall slope is at least this fraction of `min_slope` ...
const KEEP_SLOPE_FRACTION: f64 = 0.5;
/// ... and the middle-to-last-third slope at least this fraction.
const KEEP_RECENT_FRACTION: f64 = 0.25;
/// Heap growth explaining at least this share of the metric growth: `Heap`.
const HEAP_SHARE: f64 = 0.5;
/// Heap growth below this share: `Native`.
const NATIVE_SHARE: f64 = 0.2;
/// Heap observations (fine buckets with one) needed to classify.
const MIN_HEAP_POINTS: usize = 3;

/// Configuration of a [`LeakDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakConfig {
    /// Analysis window, ms. Default 600_000.
    pub window_ms: u64,
    /// Bytes per second; growth slower than this is not a leak.
    pub min_slope: f64,
    /// Ignore samples whose time is < first_sample_time + warmup_ms.
    pub warmup_ms: u64,
}

impl Default for LeakConfig {
    /// Ten-minute window, 1 MiB/min, no warm-up.
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
    /// The V8 heap's post-GC floor grows as fast as the metric (JS objects retained).
    Heap,
    /// The metric grows while the V8 heap floor does not (native memory, external, ArrayBuffers).
    Native,
    /// No heap observations, too few, or a share in between.
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

/// What the detector measured over the analysed window.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakEstimate {
    /// Theil–Sen slope of the lower envelope, bytes per second.
    pub slope_bytes_per_sec: f64,
    /// `slope_bytes_per_sec` × `window_ms` / 1000: the growth the trend implies over the window.
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

/// One fine bucket of the watched metric: its minimum and when it was seen.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    idx: u64,
    /// ms since the origin.
    min_t: u64,
    min: f64,
}

/// One fine bucket of V8 heap observations: the minima of heap_used and external.
#[derive(Debug, Clone, Copy)]
struct HeapBucket {
    idx: u64,
    heap: (u64, f64),
    external: Option<(u64, f64)>,
}

/// The statistics of one evaluation.
#[derive(Debug, Clone)]
struct Analysis {
    slope: f64,
    confidence: f64,
    /// Slope between the first and middle thirds' medians.
    slope_early: f64,
    /// Slope between the middle and last thirds' medians.
    slope_recent: f64,
    /// Analysed span in fine buckets: `[first_idx, end_idx)`.
    first_idx: u64,
    end_idx: u64,
    #[cfg(test)]
    group: u64,
    #[cfg(test)]
    points: usize,
}

/// Leak detector: see the module documentation.
#[derive(Debug, Clone)]
pub struct LeakDetector {
    config: LeakConfig,
    /// Effective min_slope (NaN → +∞, negative → 0).
    min_slope: f64,
    /// Fine bucket width, ms (≥ 1).
    width_ms: u64,
    first_t: Option<u64>,
    last_t: Option<u64>,
    /// Time of the first sample after warm-up: fine bucket 0 starts here.
    origin: Option<u64>,
    buckets: VecDeque<Bucket>,
    heap: VecDeque<HeapBucket>,
    last_heap_t: Option<u64>,
    episode: Option<LeakEstimate>,
    scratch: Vec<f64>,
    #[cfg(test)]
    last_analysis: Option<Analysis>,
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
            scratch: Vec::new(),
            #[cfg(test)]
            last_analysis: None,
        }
    }

    /// One sample of the watched metric (bytes) at time `t_ms` (monotonic ms, non-decreasing; a
    /// sample whose time goes backwards or whose value is not finite is ignored). Returns Some on a
    /// state change: Started once per episode, Ended when growth has stopped.
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
    /// `external` = external + arrayBuffers bytes). Used only to classify `suspect`.
    pub fn observe_heap(&mut self, t_ms: u64, heap_used: f64, external: f64) {
        let Some(origin) = self.origin else {
            return;
        };
        if !heap_used.is_finite()
            || t_ms < origin
            || self.last_heap_t.is_some_and(|last| t_ms < last)
        {
            return;
        }
        self.last_heap_t = Some(t_ms);
        let rel = t_ms - origin;
        let idx = rel / self.width_ms;
        let ext = external.is_finite().then_some((rel, external));
        match self.heap.back_mut() {
            Some(b) if b.idx == idx => {
                if heap_used < b.heap.1 {
                    b.heap = (rel, heap_used);
                }
                if let Some(e) = ext {
                    if b.external.is_none_or(|old| e.1 < old.1) {
                        b.external = Some(e);
                    }
                }
            }
            _ => self.heap.push_back(HeapBucket {
                idx,
                heap: (rel, heap_used),
                external: ext,
            }),
        }
        let newest = self.buckets.back().map_or(idx, |b| b.idx.max(idx));
        let lo = newest.saturating_sub(FINE_BUCKETS);
        while self.heap.front().is_some_and(|b| b.idx < lo) {
            self.heap.pop_front();
        }
    }

    /// The latest estimate while an episode is on, else None.
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
        let analysis = self.analyse(cur);
        #[cfg(test)]
        {
            self.last_analysis = analysis.clone();
        }
        // Not enough data: no decision, the state stays as it is.
        let a = analysis?;
        let estimate = self.estimate(&a);
        let min = self.min_slope;
        if self.episode.is_none() {
            let starts = a.slope >= min
                && a.confidence >= START_CONFIDENCE
                && a.slope_early >= START_THIRDS_FRACTION * min
                && a.slope_recent >= START_THIRDS_FRACTION * min;
            if starts {
                self.episode = Some(estimate.clone());
                return Some(LeakTransition::Started(estimate));
            }
            None
        } else {
            let goes_on =
                a.slope >= KEEP_SLOPE_FRACTION * min && a.slope_recent >= KEEP_RECENT_FRACTION * min;
            if goes_on {
                self.episode = Some(estimate);
                None
            } else {
                self.episode = None;
                Some(LeakTransition::Ended(estimate))
            }
        }
    }

    /// The lower envelope with sub-windows of `g` fine buckets: (group id, t in s, min), over
    /// complete groups inside the window that ends at fine bucket `cur` (exclusive).
    fn envelope(&self, g: u64, cur: u64) -> Vec<(u64, f64, f64)> {
        let lo = cur.saturating_sub(FINE_BUCKETS);
        let points = self
            .buckets
            .iter()
            .filter(|b| {
                let gid = b.idx / g;
                gid.saturating_mul(g) >= lo && gid.saturating_add(1).saturating_mul(g) <= cur
            })
            .map(|b| (b.idx / g, b.min_t as f64 / 1000.0, b.min));
        trend::lower_envelope(points)
    }

    fn analyse(&mut self, cur: u64) -> Option<Analysis> {
        let envelopes = GROUP_SIZES.map(|g| self.envelope(g, cur));
        let values = |env: &[(u64, f64, f64)]| env.iter().map(|p| p.2).collect::<Vec<f64>>();
        let coarse = &envelopes[GROUP_SIZES.len() - 1];
        if coarse.len() < MIN_COARSE_POINTS {
            return None;
        }
        let coarse_rough = trend::step_quantile(&values(coarse), ROUGHNESS_QUANTILE)?;
        let pick = envelopes
            .iter()
            .position(|env| {
                trend::step_quantile(&values(env), ROUGHNESS_QUANTILE)
                    .is_some_and(|r| r <= ROUGHNESS_FACTOR * coarse_rough)
            })
            .unwrap_or(GROUP_SIZES.len() - 1);
        let g = GROUP_SIZES[pick];
        let env = &envelopes[pick];
        let n = env.len();
        if n < MIN_POINTS {
            return None;
        }
        let first_idx = env[0].0 * g;
        let end_idx = (env[n - 1].0 + 1) * g;
        let span_ms = (end_idx - first_idx) as f64 * self.width_ms as f64;
        if span_ms < self.config.window_ms as f64 / 2.0 {
            return None;
        }
        let points: Vec<(f64, f64)> = env.iter().map(|&(_, t, v)| (t, v)).collect();
        let slope = trend::theil_sen_with(&points, &mut self.scratch)?;
        let confidence = trend::mann_kendall(&values(env))?.confidence_increasing();
        let k = n / 3;
        let third = |part: &[(f64, f64)]| -> Option<(f64, f64)> {
            let mut v: Vec<f64> = part.iter().map(|p| p.1).collect();
            let center = (part.first()?.0 + part.last()?.0) / 2.0;
            Some((center, trend::lower_median(&mut v)?))
        };
        let (c1, m1) = third(&points[..k])?;
        let (c2, m2) = third(&points[k..n - k])?;
        let (c3, m3) = third(&points[n - k..])?;
        let slope_early = (m2 - m1) / (c2 - c1);
        let slope_recent = (m3 - m2) / (c3 - c2);
        if !slope_early.is_finite() || !slope_recent.is_finite() {
            return None;
        }
        Some(Analysis {
            slope,
            confidence,
            slope_early,
            slope_recent,
            first_idx,
            end_idx,
            #[cfg(test)]
            group: g,
            #[cfg(test)]
            points: n,
        })
    }

    fn estimate(&mut self, a: &Analysis) -> LeakEstimate {
        let window_ms = (a.end_idx - a.first_idx).saturating_mul(self.width_ms);
        LeakEstimate {
            slope_bytes_per_sec: a.slope,
            growth_bytes: a.slope * window_ms as f64 / 1000.0,
            window_ms,
            confidence: a.confidence,
            suspect: self.suspect(a),
        }
    }

    /// Heap share of the growth → Heap / Native / Unknown; see the module documentation.
    fn suspect(&mut self, a: &Analysis) -> Suspect {
        if !(a.slope > 0.0) {
            return Suspect::Unknown;
        }
        let in_span = |idx: u64| idx >= a.first_idx && idx < a.end_idx;
        let heap: Vec<(f64, f64)> = self
            .heap
            .iter()
            .filter(|b| in_span(b.idx))
            .map(|b| (b.heap.0 as f64 / 1000.0, b.heap.1))
            .collect();
        let external: Vec<(f64, f64)> = self
            .heap
            .iter()
            .filter(|b| in_span(b.idx))
            .filter_map(|b| b.external)
            .map(|(t, v)| (t as f64 / 1000.0, v))
            .collect();
        let span_s = (a.end_idx - a.first_idx) as f64 * self.width_ms as f64 / 1000.0;
        let covers = |pts: &[(f64, f64)]| match (pts.first(), pts.last()) {
            (Some(f), Some(l)) => pts.len() >= MIN_HEAP_POINTS && l.0 - f.0 >= span_s / 3.0,
            _ => false,
        };
        if !covers(&heap) {
            return Suspect::Unknown;
        }
        let Some(heap_slope) = trend::theil_sen_with(&heap, &mut self.scratch) else {
            return Suspect::Unknown;
        };
        let external_slope = if covers(&external) {
            trend::theil_sen_with(&external, &mut self.scratch).unwrap_or(0.0)
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

    #[cfg(test)]
    fn bucket_count(&self) -> usize {
        self.buckets.len() + self.heap.len()
    }
}

/// Time in ms until `value` reaches `limit` growing at `slope_bytes_per_sec`; None if no limit,
/// the slope is <= 0, or any input or the result is not finite; Some(0.0) if already at/over.
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

    /// Fixed-seed 64-bit LCG (Knuth's MMIX constants).
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

    /// GC sawtooth: within each cycle the value rises linearly by `amp` then drops back.
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
        /// Cycles of `cycle` seconds, rising by `amp` × base, ± `jitter` bytes.
        fn new(seed: u64, base: f64, cycle: (f64, f64), amp: (f64, f64), jitter: f64) -> Self {
            let mut rng = Lcg(seed);
            let len = rng.range(cycle.0, cycle.1);
            let height = rng.range(amp.0, amp.1) * base;
            let start = -rng.range(0.0, len);
            Sawtooth { rng, base, cycle, amp, jitter, start, len, height }
        }
        fn standard(seed: u64) -> Self {
            Sawtooth::new(seed, 400.0 * MB, (20.0, 60.0), (0.10, 0.30), 0.25 * MIB)
        }
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

    fn cfg(window_ms: u64, min_slope_per_min: f64, warmup_ms: u64) -> LeakConfig {
        LeakConfig { window_ms, min_slope: min_slope_per_min / 60.0, warmup_ms }
    }

    /// Feeds `f(t_seconds)` every `interval_ms` for `duration_s`; returns the transitions.
    fn run(
        config: LeakConfig,
        interval_ms: u64,
        duration_s: f64,
        mut f: impl FnMut(f64) -> f64,
    ) -> (Vec<(f64, LeakTransition)>, LeakDetector) {
        let mut d = LeakDetector::new(config);
        let mut out = Vec::new();
        let mut t_ms = 0u64;
        while (t_ms as f64) <= duration_s * 1000.0 {
            if let Some(tr) = d.observe(t_ms, f(t_ms as f64 / 1000.0)) {
                out.push((t_ms as f64 / 1000.0, tr));
            }
            t_ms += interval_ms;
        }
        (out, d)
    }

    fn starts(events: &[(f64, LeakTransition)]) -> Vec<f64> {
        events
            .iter()
            .filter(|e| matches!(e.1, LeakTransition::Started(_)))
            .map(|e| e.0)
            .collect()
    }

    #[test]
    fn explore() {
        for (slope, min) in [(2.0 * MIB, 1.0 * MIB), (0.5 * MIB, 0.25 * MIB), (20.0 * MIB, 1.0 * MIB)] {
            for seed in 1..=10u64 {
                let mut saw = Sawtooth::standard(seed);
                let (ev, d) = run(cfg(600_000, min, 0), 1000, 1200.0, |t| saw.at(t) + slope / 60.0 * t);
                let a = d.last_analysis.clone();
                println!(
                    "slope {} seed {seed}: {:?} g={:?} n={:?}",
                    slope / MIB,
                    ev.iter().map(|e| (e.0, matches!(e.1, LeakTransition::Started(_)))).collect::<Vec<_>>(),
                    a.as_ref().map(|a| a.group),
                    a.as_ref().map(|a| a.points)
                );
            }
        }
    }
}
