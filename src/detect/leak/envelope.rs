//! The lower envelope of the watched metric and of its parts, and the statistics the rules read
//! from it (rules 1-4 of the module documentation).

use super::{LeakDetector, FINE_BUCKETS, GROUP, LOWER_BOUND_Z, MIN_PART_POINTS, MIN_POINTS};
use super::{
    START_CONFIDENCE, START_LOWER_FRACTION, START_RECENT_FRACTION, START_RECENT_SHARE, START_SHAPE_FACTOR,
};
use crate::detect::trend;

/// One fine bucket of the watched metric.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    pub(super) idx: u64,
    /// When the minimum was seen, ms since the origin.
    pub(super) min_t: u64,
    pub(super) min: f64,
}

/// The parts of the process's memory that can explain the metric's growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// V8 heapUsed after a GC: live JS objects (and garbage not yet collected).
    HeapUsed = 0,
    /// V8 heapTotal: what the heap holds, used or free.
    HeapTotal = 1,
    /// `external` (which counts `arrayBuffers`): memory held by JS objects outside the heap.
    External = 2,
    /// The metric less the process's own RSS: the children's part of a tree metric.
    Children = 3,
    /// The metric less V8's heap and external memory (the newest figures): native memory.
    Outside = 4,
    /// The highest heapTotal so far: V8 mostly keeps the pages of a heap it shrinks resident
    /// (Node 22, heavy garbage: heapTotal 69 then 48 MiB, the RSS unmoved), so the RSS follows
    /// this peak. Never falling, one new high mid-window gives it a slope for a while: see
    /// `cause`.
    HeapPeak = 5,
}

impl Part {
    const ALL: [Part; PARTS] = [
        Part::HeapUsed,
        Part::HeapTotal,
        Part::External,
        Part::Children,
        Part::Outside,
        Part::HeapPeak,
    ];
}

pub(super) const PARTS: usize = 6;

/// One fine bucket of part figures: (ms since the origin, value) of each part's minimum.
#[derive(Debug, Clone, Copy)]
pub(super) struct PartBucket {
    pub(super) idx: u64,
    pub(super) mins: [Option<(u64, f64)>; PARTS],
}

/// The slopes of the parts over the analysed span (None: too few figures).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PartSlopes([Option<f64>; PARTS]);

impl PartSlopes {
    pub(super) fn get(&self, p: Part) -> Option<f64> {
        self.0[p as usize]
    }
}

/// The statistics of one evaluation. The costlier ones (the confidence bound, the shape fits) are
/// methods, computed only when the cheaper conditions have not already settled the verdict.
#[derive(Debug, Clone)]
pub(super) struct Analysis {
    /// The envelope, (t in s, floor), in time order.
    pub(super) points: Vec<(f64, f64)>,
    /// Theil–Sen slope of the envelope.
    pub(super) slope: f64,
    /// Mann–Kendall 1 − p for "increasing".
    pub(super) confidence: f64,
    /// Slope between the lowest floors of the middle and of the last third of the envelope.
    pub(super) slope_recent: f64,
    /// The median floor: the metric's level.
    pub(super) level: f64,
    /// Analysed span, fine buckets `[first_idx, end_idx)`.
    pub(super) first_idx: u64,
    pub(super) end_idx: u64,
}

/// Whether an envelope shows a leak's trend at the minimum slope `min` (rules 1-4): steep and
/// sure enough, still growing and not slowing down, and a line rather than a hinge or a step.
pub(super) fn starts_trend(a: &Analysis, min: f64, scratch: &mut Vec<f64>) -> bool {
    a.slope >= min
        && a.confidence >= START_CONFIDENCE
        && a.slope_recent >= START_RECENT_FRACTION * min
        && a.slope_recent >= START_RECENT_SHARE * a.slope
        && a.slope_lower(scratch) >= START_LOWER_FRACTION * min
        && a.steady(START_SHAPE_FACTOR)
}

impl Analysis {
    /// One-sided 95% lower confidence bound of the slope (−∞ if there is none).
    fn slope_lower(&self, scratch: &mut Vec<f64>) -> f64 {
        trend::theil_sen_bounds(&self.points, LOWER_BOUND_Z, scratch).map_or(f64::NEG_INFINITY, |b| b.0)
    }

    /// Whether the L1 misfit of the Theil–Sen line is at most `factor` times that of the better
    /// of the best hinge (growth then flat for at least the last third) and the best step.
    pub(super) fn steady(&self, factor: f64) -> bool {
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

impl LeakDetector {
    /// The lower envelope: the minimum of each whole sub-window of `GROUP` fine buckets, the
    /// sub-windows aligned to end at fine bucket `cur` (exclusive), over at most `FINE_BUCKETS`
    /// buckets. Returns (sub-windows back from `cur`, t in s, min) in time order.
    pub(super) fn envelope(&self, cur: u64) -> Vec<(u64, f64, f64)> {
        let lo = cur - cur.min(FINE_BUCKETS) / GROUP * GROUP;
        let points = self
            .buckets
            .iter()
            .filter(|b| b.idx >= lo && b.idx < cur)
            .map(|b| ((cur - 1 - b.idx) / GROUP, b.min_t as f64 / 1000.0, b.min));
        trend::lower_envelope(points)
    }

    /// The same envelope of a part, over fine buckets `[from, cur)`.
    pub(super) fn part_envelope(&self, part: Part, from: u64, cur: u64) -> Vec<(u64, f64, f64)> {
        let points = self
            .parts
            .iter()
            .filter(|b| b.idx >= from && b.idx < cur)
            .filter_map(|b| {
                b.mins[part as usize].map(|(t, v)| ((cur - 1 - b.idx) / GROUP, t as f64 / 1000.0, v))
            });
        trend::lower_envelope(points)
    }

    /// The statistics of an envelope ending at fine bucket `cur`; None without enough data.
    pub(super) fn analyse(&mut self, env: &[(u64, f64, f64)], cur: u64) -> Option<Analysis> {
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
        let mut values: Vec<f64> = env.iter().map(|&(_, _, v)| v).collect();
        let slope = trend::theil_sen_with(&points, &mut self.scratch)?;
        let confidence = trend::mann_kendall(&values)?.confidence_increasing();
        let level = trend::median(&mut values)?;
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
            level,
            first_idx,
            end_idx,
        })
    }

    /// The Theil–Sen slope of each part's lower envelope over the analysed span (the same
    /// sub-windows as the metric's).
    pub(super) fn part_slopes(&self, a: &Analysis) -> PartSlopes {
        let mut out = PartSlopes::default();
        for (i, part) in Part::ALL.into_iter().enumerate() {
            out.0[i] = self.part_slope(part, a.first_idx, a.end_idx);
        }
        out
    }

    /// The Theil–Sen slope (bytes/s) of a part's lower envelope over fine buckets `[from, end)`,
    /// where it has `MIN_PART_POINTS` or more spanning a third of that span: a part sampled for
    /// a moment says nothing about a trend.
    pub(super) fn part_slope(&self, part: Part, from: u64, end: u64) -> Option<f64> {
        let span_s = end.saturating_sub(from) as f64 * self.width_ms as f64 / 1000.0;
        let points: Vec<(f64, f64)> = self
            .part_envelope(part, from, end)
            .iter()
            .map(|&(_, t, v)| (t, v))
            .collect();
        let covers = points.len() >= MIN_PART_POINTS && points.last()?.0 - points.first()?.0 >= span_s / 3.0;
        covers.then(|| trend::theil_sen(&points)).flatten()
    }

    /// A sub-window (`GROUP` fine buckets), in ms: the envelope's step, and how close full GCs
    /// count as one (in `Lives` and in the start rule), so that both merge alike.
    pub(super) fn sub_window_ms(&self) -> u64 {
        self.width_ms * GROUP
    }
}
