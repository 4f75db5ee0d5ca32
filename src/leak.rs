//! Leak detector (doc written after measurement).

use std::collections::VecDeque;

use crate::trend;

/// Fine buckets per analysis window: the memory held is this many buckets whatever the rate.
const FINE_BUCKETS: u64 = 30;
/// Fine buckets per envelope sub-window: sub-windows of window/10.
const GROUP: u64 = 3;
/// Envelope points (sub-windows with data) needed for a decision.
const MIN_POINTS: usize = 8;
/// Mann–Kendall confidence (1 − one-sided p) needed to start an episode.
const START_CONFIDENCE: f64 = 0.95;
/// Growth from the middle to the last third of the envelope, as a fraction of `min_slope`, needed
/// to start an episode.
const START_RECENT_FRACTION: f64 = 0.5;
/// A trend is steady when the line's misfit is at most this times that of the best "growth then
/// plateau" or "step" fit.
const START_SHAPE_FACTOR: f64 = 1.3;
/// An episode goes on while the overall slope is at least this fraction of `min_slope` ...
const KEEP_SLOPE_FRACTION: f64 = 0.5;
/// ... the middle-to-last-third growth at least this fraction ...
const KEEP_RECENT_FRACTION: f64 = 0.25;
/// ... and the line's misfit at most this times the best plateau or step fit.
const KEEP_SHAPE_FACTOR: f64 = 3.0;
/// Consecutive evaluations (one per fine bucket) that must agree before the state changes.
const CONFIRM: u32 = 2;
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
    /// Slope between the lowest floors of the middle and the last third of the envelope.
    slope_recent: f64,
    /// L1 misfit of the Theil–Sen line, and the smallest of the best "growth then plateau" and
    /// the best two-level step.
    line_cost: f64,
    level_off_cost: f64,
    /// Analysed span in fine buckets: `[first_idx, end_idx)`.
    first_idx: u64,
    end_idx: u64,
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
    /// Consecutive evaluations whose verdict differs from the state.
    streak: u32,
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
            streak: 0,
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
        // The verdict that would change the state: "a leak" while idle, "not any more" in an
        // episode. It must hold on CONFIRM consecutive evaluations.
        let flips = if self.episode.is_none() {
            a.slope >= min
                && a.confidence >= START_CONFIDENCE
                && a.slope_recent >= START_RECENT_FRACTION * min
                && a.line_cost <= START_SHAPE_FACTOR * a.level_off_cost
        } else {
            !(a.slope >= KEEP_SLOPE_FRACTION * min
                && a.slope_recent >= KEEP_RECENT_FRACTION * min
                && a.line_cost <= KEEP_SHAPE_FACTOR * a.level_off_cost)
        };
        self.streak = if flips { self.streak + 1 } else { 0 };
        if self.streak < CONFIRM {
            if self.episode.is_some() && !flips {
                self.episode = Some(estimate);
            }
            return None;
        }
        self.streak = 0;
        if self.episode.take().is_some() {
            Some(LeakTransition::Ended(estimate))
        } else {
            self.episode = Some(estimate.clone());
            Some(LeakTransition::Started(estimate))
        }
    }

    /// The lower envelope: the minimum of each sub-window of `GROUP` fine buckets, sub-windows
    /// aligned to end at fine bucket `cur` (exclusive), over the `FINE_BUCKETS` buckets before it.
    /// Returns (sub-windows back from `cur`, t in s, min) in time order.
    fn envelope(&self, cur: u64) -> Vec<(u64, f64, f64)> {
        // Whole sub-windows only: a partial one (data just starting) may hold no GC floor.
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
        // The middle and last thirds, each summarised by its center time and its lowest floor.
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
        let line_cost = trend::line_l1_cost(&points, slope)?;
        let (_, hinge_cost) = trend::hinge_l1_cost(&points, k)?;
        let (_, step_cost) = trend::step_l1_cost(&values)?;
        Some(Analysis {
            slope,
            confidence,
            slope_recent,
            line_cost,
            level_off_cost: hinge_cost.min(step_cost),
            first_idx,
            end_idx,
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

    fn scenario(name: &str, seed: u64) -> (LeakConfig, f64, Box<dyn FnMut(f64) -> f64>) {
        let mut saw = Sawtooth::standard(seed);
        let min = 0.25 * MIB;
        match name {
            "flat" => (cfg(600_000, min, 0), 1800.0, Box::new(move |t| saw.at(t))),
            "warm0" => (cfg(600_000, min, 0), 1800.0, Box::new(move |t| saw.at(t) + 100.0 * MB * (t / 60.0).min(1.0))),
            "warm120" => (cfg(600_000, min, 120_000), 1800.0, Box::new(move |t| saw.at(t) + 100.0 * MB * (t / 60.0).min(1.0))),
            "step" => (cfg(600_000, min, 0), 1800.0, Box::new(move |t| saw.at(t) + if t >= 700.0 { 80.0 * MB } else { 0.0 })),
            "cache" => (cfg(600_000, min, 0), 1800.0, Box::new(move |t| saw.at(t) + 60.0 * MB * (t / 120.0).min(1.0))),
            "l2" => (cfg(600_000, 1.0 * MIB, 0), 900.0, Box::new(move |t| saw.at(t) + 2.0 * MIB / 60.0 * t)),
            "l05" => (cfg(600_000, min, 0), 900.0, Box::new(move |t| saw.at(t) + 0.5 * MIB / 60.0 * t)),
            "l20" => (cfg(600_000, 1.0 * MIB, 0), 900.0, Box::new(move |t| saw.at(t) + 20.0 * MIB / 60.0 * t)),
            "late2" => (cfg(600_000, 1.0 * MIB, 0), 1800.0, Box::new(move |t| saw.at(t) + 2.0 * MIB / 60.0 * (t - 600.0).max(0.0))),
            "stop" => (cfg(600_000, 1.0 * MIB, 0), 2100.0, Box::new(move |t| saw.at(t) + 2.0 * MIB / 60.0 * t.min(900.0))),
            "again" => (cfg(600_000, 1.0 * MIB, 0), 3600.0, Box::new(move |t| saw.at(t) + 2.0 * MIB / 60.0 * (t.min(900.0) + (t - 2100.0).clamp(0.0, 900.0)))),
            "stepr" => {
                let mut r = Lcg(seed * 7919);
                let at = r.range(300.0, 1500.0);
                let h = r.range(5.0, 150.0) * MB;
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| saw.at(t) + if t >= at { h } else { 0.0 }))
            }
            "stairs" => {
                let mut r = Lcg(seed * 7919);
                let at = r.range(300.0, 900.0);
                let gap = r.range(100.0, 400.0);
                let h = r.range(10.0, 80.0) * MB;
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| saw.at(t) + if t >= at { h } else { 0.0 } + if t >= at + gap { h } else { 0.0 }))
            }
            "cacher" => {
                let mut r = Lcg(seed * 7919);
                let fill = r.range(30.0, 200.0);
                let h = r.range(10.0, 150.0) * MB;
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| saw.at(t) + h * (t / fill).min(1.0)))
            }
            "bigsaw" => {
                let mut big = Sawtooth::new(seed, 400.0 * MB, (20.0, 60.0), (0.2, 0.5), 2.0 * MIB);
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| big.at(t)))
            }
            "fastgc" => {
                let mut fast = Sawtooth::new(seed, 400.0 * MB, (2.0, 8.0), (0.1, 0.3), 0.25 * MIB);
                (cfg(600_000, min, 0), 900.0, Box::new(move |t| fast.at(t) + 0.5 * MIB / 60.0 * t))
            }
            "fastflat" => {
                let mut fast = Sawtooth::new(seed, 400.0 * MB, (2.0, 8.0), (0.1, 0.3), 0.25 * MIB);
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| fast.at(t)))
            }
            "smooth" => {
                let mut r = Lcg(seed);
                (cfg(600_000, min, 0), 900.0, Box::new(move |t| 400.0 * MB + 0.5 * MIB / 60.0 * t + r.range(-0.5, 0.5) * MIB))
            }
            "smoothflat" => {
                let mut r = Lcg(seed);
                (cfg(600_000, min, 0), 2400.0, Box::new(move |t| 400.0 * MB + r.range(-0.5, 0.5) * MIB))
            }
            _ => panic!("{name}"),
        }
    }

    #[test]
    fn explore_all() {
        let names = ["flat", "warm0", "warm120", "step", "cache", "l2", "l05", "l20", "late2", "stop", "again", "stepr", "stairs", "cacher", "bigsaw", "fastgc", "fastflat", "smooth", "smoothflat"];
        let only = std::env::var("SCEN").ok();
        for name in names {
            if only.as_deref().is_some_and(|o| o != name) { continue; }
            let mut summary = Vec::new();
            for seed in 1..=100u64 {
                let (c, dur, mut f) = scenario(name, seed);
                let (ev, _) = run(c, 1000, dur, &mut f);
                summary.push(ev.iter().map(|e| format!("{}{}", if matches!(e.1, LeakTransition::Started(_)) {"S"} else {"E"}, e.0)).collect::<Vec<_>>().join(","));
            }
            println!("{name}: {}", summary.join(" | "));
        }
    }

    #[test]
    fn diag() {
        let Ok(name) = std::env::var("DIAG") else { return };
        let mut fails = [0usize; 5];
        let mut total = 0;
        for seed in 1..=100u64 {
            let (c, _, mut f) = scenario(&name, seed);
            let mut d = LeakDetector::new(c);
            for t in 0..=600u64 {
                d.observe(t * 1000, f(t as f64));
                if t >= 480 && t % 20 == 0 {
                    if let Some(a) = d.last_analysis.clone() {
                        let min = d.min_slope;
                        total += 1;
                        if a.slope < min { fails[0] += 1; }
                        if a.confidence < START_CONFIDENCE { fails[1] += 1; }
                        if a.slope_recent < START_RECENT_FRACTION * min { fails[2] += 1; }
                        if a.line_cost > START_SHAPE_FACTOR * a.level_off_cost { fails[3] += 1; }
                    }
                }
            }
        }
        println!("{name}: total {total} slope {} conf {} recent {} shape {}", fails[0], fails[1], fails[2], fails[3]);
    }

    #[test]
    fn trace() {
        let Ok(name) = std::env::var("TRACE") else { return };
        let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
        let (c, dur, mut f) = scenario(&name, seed);
        let mut d = LeakDetector::new(c);
        let mut t = 0u64;
        while (t as f64) <= dur * 1000.0 {
            let tr = d.observe(t, f(t as f64 / 1000.0));
            if t % 20_000 == 0 {
                if let Some(a) = d.last_analysis.clone() {
                    println!("t={} n={} slope={:.0} conf={:.3} recent={:.0} line={:.0} level={:.0} min={:.0} tr={:?}", t/1000, a.points, a.slope, a.confidence, a.slope_recent, a.line_cost/1e3, a.level_off_cost/1e3, d.min_slope, tr.map(|x| matches!(x, LeakTransition::Started(_))));
                }
            }
            t += 1000;
        }
    }

}
