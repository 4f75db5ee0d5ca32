//! What V8's full GCs left: the figures a leak raises and in-flight data only blurs, the rate at
//! which garbage raises the heap's floor between them, and how V8 sized its heap around them.
//! The rules that read these are in the parent module's docs.

use std::collections::VecDeque;

use super::{
    FLOOR_PAIRS, GARBAGE_CYCLES, MIN_GARBAGE_CYCLE_MS, SAME_RATE, SIZING_NEAR_MS, UNMEASURED_NOISE_SHARE,
};
use crate::detect::trend;

/// A full (mark-compact) GC: the heap figures right after it, and the lowest ones since the
/// full GC before it (or since the first figure, warm-up included).
#[derive(Debug, Clone, Copy)]
pub(super) struct FullGc {
    /// ms since the origin.
    pub(super) t: u64,
    pub(super) heap_used: f64,
    pub(super) external: f64,
    /// (ms on the detector's clock, bytes).
    pub(super) heap_before: Option<(u64, f64)>,
    pub(super) external_before: Option<(u64, f64)>,
}

/// How fast garbage raises the heap's floor between full GCs, measured on the last few cycles:
/// what a full GC took away over the time since the one before. A heap floor that grows much
/// faster than this is not garbage, even before the next full GC shows it.
#[derive(Debug, Clone, Default)]
pub(super) struct GarbageRate {
    /// The newest heap figure since the last full GC (ms, heapUsed).
    pub(super) last_figure: Option<(u64, f64)>,
    /// The last full GC (ms, heapUsed right after it).
    pub(super) last_gc: Option<(u64, f64)>,
    /// The rates of the last cycles, bytes/s.
    pub(super) rates: VecDeque<f64>,
}

impl GarbageRate {
    pub(super) fn figure(&mut self, t_ms: u64, heap_used: f64) {
        if heap_used.is_finite() {
            self.last_figure = Some((t_ms, heap_used));
        }
    }

    /// A full GC at `t_ms` that left `heap_used`. The garbage of a cycle shorter than
    /// `MIN_GARBAGE_CYCLE_MS` counts as spread over that much time: its last figure holds what the
    /// young generation allocated since the full GC before, garbage that scavenges mostly take
    /// before it is promoted. On Node 24 two full GCs 1 s apart (V8 growing its heap) measured
    /// 83 MiB/min over that second at 200 req/s, the 10-s cycles around them nothing; a fast
    /// leak's floor, rising 83 MiB/min with no full GC for 100 s, then looked like garbage
    /// until V8 ran one (156 s at 60 s, 80 s now). Not dropped: a 5-s cycle while a cache
    /// filled measured 23 MiB/min, and without it a 60 s window fired on the garbage promoted
    /// after the cache was full.
    pub(super) fn full_gc(&mut self, t_ms: u64, heap_used: f64) {
        if !heap_used.is_finite() {
            return;
        }
        if let (Some((t0, after0)), Some((t_before, before))) = (self.last_gc, self.last_figure) {
            if t_ms > t0 {
                if self.rates.len() >= GARBAGE_CYCLES {
                    self.rates.pop_front();
                }
                // The garbage is the last figure less the live heap at that moment, interpolated
                // between what the two full GCs left: while a cache fills at 1 MB/s, the live
                // heap grows between that figure and the GC, and would hide the garbage.
                let share = t_before.saturating_sub(t0) as f64 / (t_ms - t0) as f64;
                let live = after0 + (heap_used - after0) * share.min(1.0);
                let cycle_s = (t_ms - t0).max(MIN_GARBAGE_CYCLE_MS) as f64 / 1000.0;
                let rate = (before - live).max(0.0) / cycle_s;
                self.rates.push_back(rate);
            }
        }
        self.last_gc = Some((t_ms, heap_used));
        self.last_figure = None;
    }

    /// The highest rate of the last cycles; None before two full GCs.
    pub(super) fn rate(&self) -> Option<f64> {
        self.rates.iter().copied().reduce(f64::max)
    }
}

/// How V8 has sized its heap: its highest heapTotal so far, and when it last sized it at a full
/// GC: heapTotal grew by more than the live heap within
/// `SIZING_NEAR_MS` of it (a young generation grown for the load: 100 to 170 MB with 28 MB
/// live). What such a full GC leaves holds more than is live: recorded LRU runs on Node 24 left
/// 2-3 MB (6-11%) more at it than at the next full GC, a rise that a 60 s window took for a
/// leak at ~105 s in 8 of 27 runs.
#[derive(Debug, Clone, Default)]
pub(super) struct HeapSizing {
    /// heapTotal of the newest heap figures.
    pub(super) last_total: Option<f64>,
    /// When (ms) heapTotal last grew by more than the live heap.
    pub(super) grew_at: Option<u64>,
    /// The newest full GC (s) that came within `SIZING_NEAR_MS` of such growth.
    pub(super) full_gc_s: Option<f64>,
    /// The highest heapTotal so far (see [`super::Part::HeapPeak`]); None before a finite figure.
    pub(super) peak_total: Option<f64>,
}

impl HeapSizing {
    pub(super) fn observe(&mut self, t_ms: u64, heap_used: f64, heap_total: f64, full_gc: bool) {
        if !heap_total.is_finite() {
            return;
        }
        if self
            .last_total
            .is_some_and(|before| heap_total - before > heap_used)
        {
            self.grew_at = Some(t_ms);
        }
        if full_gc
            && self
                .grew_at
                .is_some_and(|at| t_ms.saturating_sub(at) <= SIZING_NEAR_MS)
        {
            self.full_gc_s = Some(t_ms as f64 / 1000.0);
        }
        self.last_total = Some(heap_total);
        self.peak_total = Some(self.peak_total.map_or(heap_total, |p| p.max(heap_total)));
    }
}

/// What the last full GCs left (the live heap, or external memory), full GCs closer together
/// than a sub-window merged into their lowest figure: a batch job or a burst of requests makes
/// V8 run several in a second while its data is alive, and only the lowest says what is kept.
/// Kept across windows: on a lightly loaded service full GCs come every minute or two, less
/// often than a short window.
#[derive(Debug, Clone, Default)]
pub(super) struct Lives {
    /// (s, bytes) of the last (merged) full GCs.
    pub(super) lives: VecDeque<(f64, f64)>,
    /// [`spread`] of `lives`, computed when they change (once per full GC), not at each
    /// evaluation that asks.
    pub(super) noise: Option<f64>,
    /// The last figures of every full GC, none merged, and their spread: the noise until four
    /// merged ones give it.
    pub(super) each: VecDeque<(f64, f64)>,
    pub(super) each_noise: Option<f64>,
    /// The median gap (s) between the (merged) full GCs, computed when they change.
    pub(super) gap: f64,
}

impl Lives {
    pub(super) fn full_gc(&mut self, t_ms: u64, live: f64, merge_ms: u64) {
        if !live.is_finite() {
            return;
        }
        let t = t_ms as f64 / 1000.0;
        if self.each.len() >= GARBAGE_CYCLES * 2 {
            self.each.pop_front();
        }
        self.each.push_back((t, live));
        match self.lives.back_mut() {
            Some(last) if t - last.0 < merge_ms as f64 / 1000.0 => {
                if live < last.1 {
                    *last = (t, live);
                    self.noise = spread(&self.lives);
                }
            }
            _ => {
                if self.lives.len() >= GARBAGE_CYCLES * 2 {
                    self.lives.pop_front();
                }
                self.lives.push_back((t, live));
                self.noise = spread(&self.lives);
            }
        }
        let mut gaps: Vec<f64> = self
            .lives
            .iter()
            .zip(self.lives.iter().skip(1))
            .map(|(a, b)| b.0 - a.0)
            .collect();
        self.gap = trend::median(&mut gaps).unwrap_or(0.0);
        // Only read until the merged figures give the noise.
        if self.noise.is_none() {
            self.each_noise = spread(&self.each);
        }
    }

    /// How much what a full GC leaves varies for reasons other than a trend (requests in
    /// flight, a job's data alive at that moment): over the last merged figures, or, before
    /// four of those, over every full GC's; None before four full GCs.
    pub(super) fn noise(&self) -> Option<f64> {
        self.noise.or(self.each_noise)
    }

    /// What a rise between full GCs must beat to be more than they vary by anyway: twice their
    /// noise ([`Lives::noise`]); none before four full GCs.
    pub(super) fn noise_margin(&self) -> f64 {
        2.0 * self.noise().unwrap_or(0.0)
    }

    /// [`Lives::noise_margin`], or, before four full GCs measure the noise, twice
    /// `UNMEASURED_NOISE_SHARE` of the newest figure: for evidence that has only one or two
    /// steps between full GCs to lean on and nothing else that shows the trend.
    pub(super) fn noise_margin_or_share(&self) -> f64 {
        let unmeasured = || self.lives.back().map_or(0.0, |l| UNMEASURED_NOISE_SHARE * l.1);
        2.0 * self.noise().unwrap_or_else(unmeasured)
    }

    /// How fast the figures rose (bytes/s) from the (merged) full GC `i - 1` to `i`; None if
    /// they are not apart in time.
    pub(super) fn step_rate(&self, i: usize) -> Option<f64> {
        let (a, b) = (self.lives[i - 1], self.lives[i]);
        (b.0 > a.0).then(|| (b.1 - a.1) / (b.0 - a.0))
    }

    /// These figures without the newest (merged) full GC's.
    pub(super) fn without_newest(&self) -> Lives {
        let mut trimmed = self.clone();
        trimmed.lives.pop_back();
        trimmed
    }

    /// Whether the newest (merged) full GC is the one at `sized` (s, `t_ms / 1000` as here) and
    /// rose from the one before by under `share` of its figure: no more than such a full GC can
    /// leave on top of what is live.
    pub(super) fn sized_step(&self, sized: Option<f64>, share: f64) -> bool {
        let n = self.lives.len();
        n >= 2
            && Some(self.lives[n - 1].0) == sized
            && self.lives[n - 1].1 - self.lives[n - 2].1 < share * self.lives[n - 1].1
    }

    /// The newest (merged) full GC's time (s) and figure, and how fast the figures rose from the
    /// one before (bytes/s); None before two.
    pub(super) fn last_rate(&self) -> Option<(f64, f64, f64)> {
        let n = self.lives.len();
        if n < 2 {
            return None;
        }
        let (t, v) = self.lives[n - 1];
        Some((t, v, self.step_rate(n - 1)?))
    }

    /// Whether the rise from the last (merged) full GC to the newest came at least at
    /// `share` × the rate of the rise before it; true with fewer than three. A cache or an LRU
    /// filling towards its cap rises ever slower at each full GC (9, then 3 MB/min in a
    /// recorded run); a leak keeps its rate.
    pub(super) fn not_slowing(&self, share: f64) -> bool {
        self.last_two_rates()
            .is_none_or(|(before, now)| now >= share * before)
    }

    /// Whether the rise from the last (merged) full GC to the newest came more than `factor` ×
    /// faster than the rise before it (or than none, if that one fell); false with fewer than
    /// three. What a full GC leaves jumps when the load steps up and many more requests are in
    /// flight; a leak's steps keep one rate. The start rule reads it only where both steps rose.
    pub(super) fn accelerating(&self, factor: f64) -> bool {
        self.last_two_rates()
            .is_some_and(|(before, now)| now > factor * before.max(0.0))
    }

    /// The rates (bytes/s) of the last two steps between (merged) full GCs, older first; None
    /// with fewer than three figures or when two are not apart in time.
    pub(super) fn last_two_rates(&self) -> Option<(f64, f64)> {
        let n = self.lives.len();
        if n < 3 {
            return None;
        }
        Some((self.step_rate(n - 2)?, self.step_rate(n - 1)?))
    }

    /// Whether each of the last three steps between (merged) full GCs rose at least at `share` ×
    /// the rate of the one before; false with fewer than four. A leak keeps its rate; an LRU
    /// whose last step happened to be the faster (5.8, then 8.1 MB/min) had slowed from 23.5
    /// before.
    pub(super) fn steady(&self, share: f64) -> bool {
        self.last_three_rates()
            .is_some_and(|(r1, r2, r3)| r2 >= share * r1 && r3 >= share * r2)
    }

    /// The rates (bytes/s) of the last three steps between (merged) full GCs, oldest first;
    /// None with fewer than four or when two are not apart in time.
    pub(super) fn last_three_rates(&self) -> Option<(f64, f64, f64)> {
        let n = self.lives.len();
        if n < 4 {
            return None;
        }
        Some((
            self.step_rate(n - 3)?,
            self.step_rate(n - 2)?,
            self.step_rate(n - 1)?,
        ))
    }

    /// Whether the last three steps between (merged) full GCs each rose slower than the one
    /// before (or at the same rate, within `SAME_RATE`), the newest at under `share` × the rate
    /// of the first, or each at under
    /// `step_share` × the one before; or the last four each slower, the newest under `share` ×
    /// the first: an LRU keyed by random ids nears its cap along a decaying curve (17, 12, then
    /// 7 MiB/min in a recorded run, each step still leak-like on its own; another's 12.9, 8.4,
    /// 8.1, then 5.7, too gradual for three to show); a leak's steps scatter around one rate.
    /// False with fewer than four.
    pub(super) fn decelerating(&self, share: f64, step_share: f64) -> bool {
        let n = self.lives.len();
        // `b` no faster than `a`: the same rate within `SAME_RATE` counts as slower.
        let slower = |a: f64, b: f64| b < a + SAME_RATE * a.abs();
        // Four steps, each slower than the one before, the newest under `share` of the first.
        let four = n >= 5
            && (n - 4..n - 1).all(|i| {
                self.step_rate(i)
                    .zip(self.step_rate(i + 1))
                    .is_some_and(|(a, b)| slower(a, b))
            })
            && self
                .step_rate(n - 1)
                .zip(self.step_rate(n - 4))
                .is_some_and(|(last, first)| last < share * first);
        four || self.last_three_rates().is_some_and(|(r1, r2, r3)| {
            slower(r1, r2)
                && slower(r2, r3)
                && (r3 < share * r1 || r2 < step_share * r1 && r3 < step_share * r2)
        })
    }

    /// Whether, over the last four steps between (merged) full GCs (three at least), the figures
    /// rose in the newer half of that time at under `share` × the rate of the older half, split
    /// at the figure nearest the middle: a cache or an LRU filling towards its cap, read on
    /// three figures rather than on each step, which one full GC's in-flight data can make
    /// faster than the one before. False with fewer than four figures or a fall in the older
    /// half.
    pub(super) fn halves_slowing(&self, share: f64) -> bool {
        let n = self.lives.len();
        if n < 4 {
            return false;
        }
        let first = n.saturating_sub(5);
        let (t0, v0) = self.lives[first];
        let (tn, vn) = self.lives[n - 1];
        let mid_t = 0.5 * (t0 + tn);
        let Some((tm, vm)) = self
            .lives
            .range(first + 1..n - 1)
            .copied()
            .min_by(|a, b| (a.0 - mid_t).abs().total_cmp(&(b.0 - mid_t).abs()))
        else {
            return false;
        };
        if tm <= t0 || tn <= tm {
            return false;
        }
        let old = (vm - v0) / (tm - t0);
        let new = (vn - vm) / (tn - tm);
        old > 0.0 && new < share * old
    }

    /// Whether the newest (merged) full GC is recent at `now_s`: no older than a window or three
    /// times the median gap between the last ones, whichever is longer.
    pub(super) fn fresh(&self, now_s: f64, window_s: f64) -> bool {
        self.lives
            .back()
            .is_some_and(|&(newest, _)| now_s - newest <= window_s.max(3.0 * self.gap))
    }

    /// Whether the last `steps` steps rise from a (merged) full GC that left under `1 - share`
    /// × the median of the (up to four) before it: a rise out of a dip is what was in flight at
    /// the full GCs around it, not a leak's line, whose figures do not fall by a fifth. False
    /// with nothing before the dip.
    pub(super) fn rises_from_a_dip(&self, steps: usize, share: f64) -> bool {
        let n = self.lives.len();
        if n < steps + 2 {
            return false;
        }
        let start = n - 1 - steps;
        let mut before: Vec<f64> = self
            .lives
            .range(start.saturating_sub(4)..start)
            .map(|l| l.1)
            .collect();
        before.sort_by(f64::total_cmp);
        self.lives[start].1 < (1.0 - share) * before[before.len() / 2]
    }

    /// Whether the newest (merged) full GC, at or after `since_ms`, left more than the one
    /// before by `rate` (bytes/s) times the time between, and more than all before it
    /// ([`Lives::rising`]); or, if it came within `close_s` of that one, the same against the
    /// one before the pair. Two full GCs seconds apart differ by what
    /// requests had in flight at each more than by what was kept: a slow heap leak (3.4
    /// MiB/min) adds 1 MB in 20 s, and its full GCs 13-28 s apart left 0.1-0.2 MB less or
    /// about the same, which called it off while it went on.
    pub(super) fn still_rising(&self, rate: f64, close_s: f64, since_ms: u64) -> bool {
        let n = self.lives.len();
        if self.rising(1, rate, 0.0, since_ms) {
            return true;
        }
        if n < 3 {
            return false;
        }
        let ((ta, a), (tb, _), (tc, c)) = (self.lives[n - 3], self.lives[n - 2], self.lives[n - 1]);
        tc >= since_ms as f64 / 1000.0
            && tc - tb < close_s
            && c - a >= rate * (tc - ta)
            && self.lives.range(..n - 2).all(|l| l.1 < c)
    }

    /// Whether the lower envelope of all the (merged) full GCs on record rises steadily: taken
    /// in pairs from the newest back, each pair's lower figure above the pair's before by `rate`
    /// (bytes/s) times the time between, the rates of those steps within `factor` of each other
    /// and not each under `step_share` of the one before, the oldest pair's lower figure to the
    /// newest's by `margin` more, the newest figure above every pair's, and the figures spanning
    /// `span_s` or more. Data in flight at a full GC only ever adds to what it leaves, so the
    /// lower of two is nearer what is kept. Over a long window a slow leak's single steps are
    /// too small for the margin rule 6 asks of each: a ~1 MiB/min leak whose full GCs came
    /// 86-339 s apart left 29.7, then 29.3 MB, and steps of 0.4 MB in 106 s, and no window of
    /// 360 s or more reported it in 21 minutes; over its eight full GCs that margin is a fraction
    /// of the rise. False before `2 * FLOOR_PAIRS` figures.
    pub(super) fn floors_rising(
        &self,
        rate: f64,
        span_s: f64,
        factor: f64,
        step_share: f64,
        margin: f64,
    ) -> bool {
        let n = self.lives.len();
        if n < 2 * FLOOR_PAIRS || self.lives[n - 1].0 - self.lives[n - 2 * FLOOR_PAIRS].0 < span_s {
            return false;
        }
        let lower = |i: usize| {
            let (a, b) = (self.lives[i], self.lives[i + 1]);
            if a.1 <= b.1 {
                a
            } else {
                b
            }
        };
        // An array, not a Vec: this runs on most idle evaluations.
        let floors: [(f64, f64); FLOOR_PAIRS] = std::array::from_fn(|k| lower(n - 2 * (FLOOR_PAIRS - k)));
        let mut rates = [0.0; FLOOR_PAIRS - 1];
        for (r, w) in rates.iter_mut().zip(floors.windows(2)) {
            if w[1].0 <= w[0].0 {
                return false;
            }
            *r = (w[1].1 - w[0].1) / (w[1].0 - w[0].0);
        }
        let newest = self.lives[n - 1].1;
        let (lo, hi) = rates
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        let (first, last) = (floors[0], floors[FLOOR_PAIRS - 1]);
        lo >= rate
            && last.1 - first.1 >= rate * (last.0 - first.0) + margin
            && hi <= factor * lo
            && floors.iter().all(|f| f.1 <= newest)
            && !rates.windows(2).all(|w| w[1] < step_share * w[0])
    }

    /// Whether the newest step rose by `rate` (bytes/s) times its length plus `margin`
    /// ([`Lives::rising`] over one step), or the last two each rose by `rate` times their length
    /// and together by `margin` more. The margin is for what two full GCs caught in flight, and
    /// a step of 10 s is too short to carry it: leak.spec's fast leak (80+ MiB/min) fell 0.5-0.6
    /// MiB short of it in 2 of 32 recorded runs. Each step must still keep the rate, so an LRU
    /// whose last step slowed below it stays quiet; letting the two steps' sum alone count fired
    /// two.
    pub(super) fn last_rising(&self, rate: f64, margin: f64) -> bool {
        if self.rising(1, rate, margin, 0) {
            return true;
        }
        // Two rising steps mean at least three figures.
        if !self.rising(2, rate, 0.0, 0) {
            return false;
        }
        let n = self.lives.len();
        let ((ta, a), (tc, c)) = (self.lives[n - 3], self.lives[n - 1]);
        c - a >= rate * (tc - ta) + margin
    }

    /// Whether each of the last `steps` steps from one (merged) full GC to the next rose by at
    /// least `rate` (bytes/s) times the time between plus `margin`, the newest at or after
    /// `since_ms`: what a leak adds, every full GC keeps; data that was in flight at one full
    /// GC is gone at the next.
    pub(super) fn rising(&self, steps: usize, rate: f64, margin: f64, since_ms: u64) -> bool {
        let n = self.lives.len();
        if n < steps + 1 || self.lives[n - 1].0 < since_ms as f64 / 1000.0 {
            return false;
        }
        let newest = self.lives[n - 1].1;
        self.lives
            .range(n - steps - 1..)
            .zip(self.lives.range(n - steps..))
            .all(|(a, b)| b.1 - a.1 >= rate * (b.0 - a.0) + margin)
            && self.lives.range(..n - 1).all(|l| l.1 < newest)
    }
}

/// The median absolute deviation of full GCs' figures from their Theil–Sen line over time: a
/// leak's figures lie on a line, in-flight data's scatter around one. None before four.
pub(super) fn spread(figures: &VecDeque<(f64, f64)>) -> Option<f64> {
    if figures.len() < 4 {
        return None;
    }
    let points: Vec<(f64, f64)> = figures.iter().copied().collect();
    let slope = trend::theil_sen(&points)?;
    let mut residuals: Vec<f64> = points.iter().map(|&(t, v)| v - slope * t).collect();
    let mid = trend::median(&mut residuals)?;
    let mut dev: Vec<f64> = residuals.iter().map(|r| (r - mid).abs()).collect();
    trend::median(&mut dev)
}
