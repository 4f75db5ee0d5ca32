//! What the full GCs say: whether a growth outlived them (rule 6 of the module documentation),
//! whether the heap or external memory still grows since the last one (the second half of rule
//! 3), and the heap's floor since the newest one, which rule 5 and the end rule read too. Only a
//! full GC tells memory kept from garbage not yet collected.

use super::cause::Cause;
use super::envelope::{Analysis, Part};
use super::full_gcs::FullGc;
use super::{LeakDetector, Suspect};
use super::{ACCELERATING_FACTOR, BEYOND_GARBAGE, CLOSE_PAIR_S, DECELERATING_SHARE, DECELERATING_STEP_SHARE};
use super::{DIP_SHARE, FLOOR_RATES_FACTOR, HALVES_SHARE, KEPT_BEYOND_GARBAGE, KEPT_SHARE, RISING_STEPS};
use super::{SIZING_SHARE, START_RECENT_SHARE, STEADY_BEYOND_GARBAGE, STEADY_SHARE};

/// What [`LeakDetector::outlived_full_gcs`] accepts as evidence that the growth outlived
/// garbage collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Evidence {
    /// What the full GCs left, or else the heap's floor since the newest one rising far beyond
    /// the garbage measured.
    FullGcsOrFloor,
    /// What the full GCs left, alone.
    FullGcsOnly,
}

impl LeakDetector {
    /// Whether the full GCs on record span the window with their pairs' lower figures rising
    /// steadily at the minimum slope for `level`
    /// ([`Lives::floors_rising`](super::full_gcs::Lives::floors_rising)), by twice the noise of
    /// what full GCs leave over all the pairs, the newest full GC in the last third of the
    /// window: rule 6's pairs rule, shared by rule 9. Why the noise: under heavy garbage (Node
    /// 22, 300+ MiB/min) what full GCs left wandered 10-31 MB (noise 3.7 MB), and four pairs'
    /// lower figures rose 11.0, 14.9, 19.2, 21.9 MB by chance: a 60 s window fired at 544 s.
    pub(super) fn heap_floors_rise(&self, level: f64) -> bool {
        self.fresh_full_gc()
            && self.heap_lives.floors_rising(
                self.config.min_slope_at(level),
                self.config.window_ms as f64 / 1000.0,
                FLOOR_RATES_FACTOR,
                DECELERATING_STEP_SHARE,
                self.heap_lives.noise_margin(),
            )
    }

    /// Whether the part that explains the growth (the heap for `Heap`, external memory for
    /// `Native`) outlived the full GCs: `Some(true)` if right after the last full GC of the span
    /// it was higher than its lowest figure since the full GC before, by at least `rate`
    /// (bytes/s) times the time between. Garbage that reached the old generation raises every
    /// floor until a full GC takes it away (every 30 s to a few minutes on a lightly loaded
    /// service); what a leak adds stays. With no full GC in the span: `Some(true)` only if the
    /// heap floor grows at more than 1.5 times the garbage rate measured over the last cycles (or,
    /// in an episode, `None`: cannot tell); with full GCs in the span that do not show it, the
    /// same from the newest one on ([`LeakDetector::beyond_garbage`]; both with
    /// [`Lives::noise_margin_or_share`](super::full_gcs::Lives::noise_margin_or_share) for the
    /// noise), or the full GCs' steady
    /// steps going on since ([`LeakDetector::steps_go_on`]), unless `evidence` is
    /// [`Evidence::FullGcsOnly`]. `Some(true)` for other causes (they have no garbage to wait
    /// for) and without heap figures.
    pub(super) fn outlived_full_gcs(
        &self,
        a: &Analysis,
        cause: Cause,
        rate: f64,
        evidence: Evidence,
    ) -> Option<bool> {
        let floors = evidence == Evidence::FullGcsOrFloor;
        let part = match cause {
            Cause::Explained(Suspect::Heap) => Part::HeapUsed,
            Cause::Explained(Suspect::Native) => Part::External,
            _ => return Some(true),
        };
        if !self.gc_kinds_known {
            return Some(true);
        }
        let start_ms = a.first_idx * self.width_ms;
        if !self.full_gcs.iter().any(|g| g.t >= start_ms) {
            if self.episode_cause.is_some() {
                return None;
            }
            // No full GC yet: a heap floor far faster than garbage ever raised it will do, if
            // what the last full GCs left rose too (wherever they are). With full GCs a minute
            // or more apart, the garbage rate measured at them can read near zero while
            // requests in flight at scavenges raise the floor for a while.
            let heap = self.part_slope(Part::HeapUsed, a.first_idx, a.end_idx);
            return Some(
                floors
                    && part == Part::HeapUsed
                    && self.beyond_garbage(heap, rate, self.heap_lives.noise_margin_or_share()),
            );
        }
        // Every full GC of the span must have left more than the lowest figure before it: a
        // full GC that ran while a batch job's data was alive says nothing about a leak, the
        // next one after the job does.
        // And, to start, by more than twice what a full GC leaves varies by anyway.
        let lives = match part {
            Part::HeapUsed => &self.heap_lives,
            _ => &self.external_lives,
        };
        let margin = match self.episode_cause {
            None => lives.noise_margin(),
            Some(_) => 0.0,
        };
        let figures = |gc: &FullGc| match part {
            Part::HeapUsed => (gc.heap_used, gc.heap_before),
            _ => (gc.external, gc.external_before),
        };
        let grew = |after: f64, before: Option<(u64, f64)>, t: u64, margin: f64| {
            let Some((t_before, before)) = before else {
                return false;
            };
            // The floor's time is on the detector's clock, the full GC's since the origin.
            let t = t + self.origin.unwrap_or(0);
            let dt = t.saturating_sub(t_before) as f64 / 1000.0;
            after.is_finite() && after - before >= rate * dt + margin
        };
        let mut in_span = self.full_gcs.iter().filter(|g| g.t >= start_ms);
        if self.episode_cause.is_some() {
            // To go on, what the last full GC of the span left against the floor before the
            // first: over the whole span, so that two full GCs a second apart, or one that ran
            // with requests in flight, do not end a leak that goes on. Or, should the first of
            // such a pair have left the span, against the full GC before the pair.
            let first = in_span.next()?;
            let last = in_span.next_back().unwrap_or(first);
            let since = self.origin.unwrap_or(0) + start_ms;
            return Some(
                grew(figures(last).0, figures(first).1, last.t, margin)
                    || lives.still_rising(rate, CLOSE_PAIR_S, since),
            );
        }
        // And what full GCs left rose at the last RISING_STEPS of them, the newest in the span
        // and, for the heap, in the last third of the window: rises up to a full GC 40 s ago
        // say what was kept until then, not that the growth since is kept (an LRU nearing its
        // cap, a cache that filled just before it).
        let since = self.origin.unwrap_or(0) + start_ms;
        // Full GCs within a sub-window of each other count as one, held to the floor before the
        // first and without the noise margin, which is for full GCs a cycle apart: two 4 s apart
        // in a recorded fast leak left 0.8 MB more, under twice the noise, and two 0.7 s apart
        // on Node 26 left 0.8 MB less (the second reclaimed more); each held the start back for
        // a whole 300 s window.
        let merge_ms = self.sub_window_ms();
        // The group may begin before the span. Then its floor is the one before the newest full
        // GC ahead of the span, which may itself be the second of a close pair: its floor is then
        // usually the higher one, and the rule starts later, not sooner.
        let prev = self.full_gcs.iter().rev().find(|g| g.t < start_ms);
        let mut prev_t = prev.map(|g| g.t);
        let mut group_before = prev.and_then(|g| figures(g).1);
        let kept = (part != Part::HeapUsed || self.fresh_full_gc())
            && in_span.all(|gc| {
                let close = prev_t.is_some_and(|p| gc.t.saturating_sub(p) < merge_ms);
                prev_t = Some(gc.t);
                let (after, before) = figures(gc);
                let before = match group_before {
                    Some(first) if close => Some(first),
                    _ => {
                        group_before = before;
                        before
                    }
                };
                grew(after, before, gc.t, if close { 0.0 } else { margin })
            })
            && {
                // A rise into a full GC that sized the heap (under a fifth of its figure) may be
                // no more than what such a full GC leaves on top of what is live: the rises up
                // to the full GC before are judged instead, the sized one need only keep half
                // the rate of the step before it, as any newest must.
                let sized =
                    part == Part::HeapUsed && lives.sized_step(self.heap_sizing.full_gc_s, SIZING_SHARE);
                let before_sized;
                let judged = if sized {
                    before_sized = lives.without_newest();
                    &before_sized
                } else {
                    lives
                };
                judged.rising(RISING_STEPS, rate, margin, since)
                    && !(part == Part::HeapUsed && judged.rises_from_a_dip(RISING_STEPS, DIP_SHARE))
                    && (!sized || lives.not_slowing(START_RECENT_SHARE))
                    && judged.not_slowing(START_RECENT_SHARE)
                    && !(part == Part::HeapUsed
                        && (judged.decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE)
                            // On every figure: a sized newest one only makes the newer half faster.
                            || lives.halves_slowing(HALVES_SHARE)
                            || judged.accelerating(ACCELERATING_FACTOR)))
            };
        // Else the evidence of a span with no full GC, from the newest one on: V8 spaces full
        // GCs out as the heap grows (3, 8, 38, then 115 s in a recorded fast leak), and one
        // 40 s old must not hide a floor that rises far faster than garbage since.
        // Or, over a window long enough for the full GCs on record to span it, their lower
        // envelope rises steadily at the minimum slope: the newest in the last third, as above.
        // A closure, so that it is read only when the full GCs' steps above do not hold.
        let floors_rise = || part == Part::HeapUsed && self.heap_floors_rise(a.level);
        let since_full_gc = || {
            let since = self.heap_slope_since_full_gc(a);
            self.beyond_garbage(since, rate, self.heap_lives.noise_margin_or_share())
                || self.steps_go_on(since, rate)
        };
        Some(kept || floors_rise() || floors && part == Part::HeapUsed && since_full_gc())
    }

    /// Whether the heap's line goes on past the newest full GC: the last three steps between
    /// (merged) full GCs each at `rate` (bytes/s) or more and at `STEADY_SHARE` of the one
    /// before, neither slowing as an LRU nearing its cap does, nor rising out of a dip, nor
    /// jumping with a load step (the guards of the steps rule, here on every step: a newest step
    /// into a full GC that sized the heap is not excused as the steps rule excuses it); and the
    /// heap's floor since the newest full GC (`since`, bytes/s, as
    /// [`LeakDetector::heap_slope_since_full_gc`] reads it: half a window of it, or a third)
    /// rising at `STEADY_SHARE` of the faster of the last two steps and beyond the garbage
    /// measured plus `rate`, where `beyond_garbage` asks 1.5 times that garbage. The caller reads
    /// `since` once for both rules.
    ///
    /// Why: one heap reading can make the garbage read high, and `beyond_garbage` then waits
    /// for V8's next full GC, which a loaded machine can put off for a minute and a half. In a
    /// CI run (`fast-heap-j.csv`) full GCs 10-20 s apart left a steady 72-84 MiB/min to 50 s; a
    /// reading 20 ms before the one at 40 s held 18 MiB more than it left (young generation), so
    /// the garbage read 57 MiB/min where the cycles' floors had risen with the live heap; the
    /// next full GC came at 138 s; reported at 140 s, 84 s with this. It can count only while
    /// the newest full GC is in the span, from half a window after it, or a third at four
    /// times the garbage (30 or 20 s at 60 s windows, counted from the fine bucket after the
    /// full GC's).
    ///
    /// Replayed over every recording at 30-600 s windows and 250 ms, 1 s and 5 s sampling, no
    /// healthy one fires more, and leaks move only sooner. The guards hold recordings back (the
    /// fixtures check them): without the garbage and the dip guard (with either in place it
    /// stays quiet), a heavy-garbage run on Node 26 (`heavy-garbage-h.csv`) fires at 280 s;
    /// without the steadiness, three Node 26 LRUs at 108-116 s (`lru-slow-r.csv`); without the
    /// slowing guards, another at 148 s (`lru-slow-s.csv`). The steps' own rate, the jump guard and the
    /// floor keeping up with the steps hold none back today: they say what the rule reads, a
    /// line that rises and goes on.
    fn steps_go_on(&self, since: Option<f64>, rate: f64) -> bool {
        let lives = &self.heap_lives;
        let Some((r1, r2, r3)) = lives.last_three_rates() else {
            return false;
        };
        let (Some(since), Some(garbage)) = (since, self.garbage.rate()) else {
            return false;
        };
        r1.min(r2).min(r3) >= rate
            && lives.steady(STEADY_SHARE)
            && !lives.decelerating(DECELERATING_SHARE, DECELERATING_STEP_SHARE)
            && !lives.halves_slowing(HALVES_SHARE)
            && !lives.rises_from_a_dip(RISING_STEPS, DIP_SHARE)
            && !lives.accelerating(ACCELERATING_FACTOR)
            && since >= STEADY_SHARE * r2.max(r3)
            && since >= garbage + rate
    }

    /// Whether the heap floor rises (`heap_slope`, bytes/s) beyond 1.5 times the garbage rate
    /// measured at the last full GCs plus `rate`, and what the last (merged) full GCs left rose
    /// at least at `KEPT_SHARE` of it and `KEPT_BEYOND_GARBAGE` of its excess over that garbage
    /// rate, beyond `margin` (bytes: twice their noise, or what the caller takes for it)
    /// ([`Lives::last_rising`](super::full_gcs::Lives::last_rising)): a floor between full GCs
    /// counts as kept only as fast as the full GCs showed it kept. The floor since the newest
    /// full GC (or over a span with none), which has nothing else to show the trend, passes
    /// [`Lives::noise_margin_or_share`](super::full_gcs::Lives::noise_margin_or_share).
    pub(super) fn beyond_garbage(&self, heap_slope: Option<f64>, rate: f64, margin: f64) -> bool {
        let (Some(heap), Some(garbage)) = (heap_slope, self.garbage.rate()) else {
            return false;
        };
        let kept = rate
            .max(KEPT_SHARE * heap)
            .max(KEPT_BEYOND_GARBAGE * (heap - garbage));
        heap >= BEYOND_GARBAGE * garbage + rate && self.heap_lives.last_rising(kept, margin)
    }

    /// Whether, for a heap cause, the heap's floor over the whole span rises beyond the garbage
    /// measured as [`LeakDetector::beyond_garbage`] asks, with [`LeakDetector::few_full_gcs`]
    /// on record: the third would come after a slow leak is due (2 × window). A slow heap leak
    /// (~3.4 MiB/min) saw its second full GC 70-110 s after the first, and by half a window later
    /// V8 had grown its heap, which made the RSS's growth look like V8 sizing itself: 9
    /// of 14 recorded ones came at 123-432 s at 60 s windows. Where the full GCs come sooner
    /// than a window, waiting for the third costs no deadline, and a cache filling evenly for
    /// two minutes (8 MB) fired 90 and 120 s windows in 7-8 of 40 seeds without that limit. The
    /// caller asks the metric's own floors for the trend too: across a load step to 300 req/s,
    /// a second full GC left 3 MB more with requests in flight, and the heap's floors alone
    /// fired a 90 s window. The noise is the measured one alone, 0 before four full GCs: the
    /// share of [`Lives::noise_margin_or_share`](super::full_gcs::Lives::noise_margin_or_share)
    /// here changed no healthy recording's verdict in replay (1723 recordings, 30 s to 10
    /// minutes, at 250 ms, 1 s and 5 s) and made two slow leaks late at 30-75 s windows (at 60
    /// s: 94 -> 138 s at 250 ms, 88 -> 147 s at 1 s; due 120).
    pub(super) fn heap_floor_before_three_full_gcs(&self, a: &Analysis, cause: Cause, rate: f64) -> bool {
        self.few_full_gcs(cause)
            && self.beyond_garbage(
                self.part_slope(Part::HeapUsed, a.first_idx, a.end_idx),
                rate,
                self.heap_lives.noise_margin(),
            )
    }

    /// Whether, for a heap cause, fewer than three (merged) full GCs are on record, too few for
    /// the steps that rule 6 reads, and they came more than a window apart (without heap figures
    /// none is on record, and the gap is 0). Then the one step between them spans more than the
    /// window sees, and evidence that leans on it (the heap's floor over the span, or since the
    /// newest full GC) counts only with the metric's own floors showing the trend: eval43's load
    /// step left 3 MB more at a full GC at 300 req/s, 106 s after one at 50 req/s, and the
    /// promoted garbage of 300 req/s then raised the heap's floor five times the garbage
    /// measured over the calmer cycle before, while the RSS's floors showed no trend (fired at
    /// 207.6 s at 60 s).
    pub(super) fn few_full_gcs(&self, cause: Cause) -> bool {
        cause == Cause::Explained(Suspect::Heap)
            && self.heap_lives.lives.len() <= RISING_STEPS
            && self.heap_lives.gap > self.config.window_ms as f64 / 1000.0
    }

    /// The heap floor's slope (bytes/s) from the newest full GC to the end of the span, if that
    /// is half a window or more, or a third of one if the floor rises `STEADY_BEYOND_GARBAGE`
    /// times the garbage measured: a shorter span needs a plainer signal. Read by the start
    /// rule and by [`LeakDetector::steady_heap`]; `beyond_garbage` asks the full GCs' last rise
    /// to keep up with it too. Emitter leaks, their floors 18 times the garbage, waited from a
    /// full GC at 58 s to 91 and 93 s at 60 s windows (due 90) with half a window, 80-81 s now.
    /// A Node 22 LRU, its floor since a full GC at 93 s rising at twice the garbage measured
    /// while it filled (evicted entries are old garbage once it is full), fired 120 and 150 s
    /// windows at a third without the plainer signal. A newest full GC older than the window
    /// makes the whole span "since" it: a Node 24 leak (eval55) saw full GCs at 1 and 19 s, then
    /// none until 87 s, while V8 grew the RSS three times the heap's 43 MiB/min; with the full
    /// GC at 19 s out of the window this read nothing, the growth stayed unexplained, and the
    /// leak came at 99 s at 60 s (due 90), 79 s now. None before any full GC with a finite
    /// heapUsed.
    pub(super) fn heap_slope_since_full_gc(&self, a: &Analysis) -> Option<f64> {
        // The newest full GC wherever it is: `full_gcs` keeps only the window's, and none of the
        // warm-up's. One before the origin counts from bucket 0.
        let (newest_ms, _) = self.garbage.last_gc?;
        let newest = newest_ms
            .checked_sub(self.origin?)
            .map_or(0, |t| t / self.width_ms + 1);
        let from = newest.max(a.first_idx);
        let span_ms = a.end_idx.saturating_sub(from) * self.width_ms;
        if span_ms < self.config.window_ms / 3 {
            return None;
        }
        let slope = self.part_slope(Part::HeapUsed, from, a.end_idx)?;
        let plain = || {
            self.garbage
                .rate()
                .is_some_and(|g| slope >= STEADY_BEYOND_GARBAGE * g)
        };
        (span_ms >= self.config.window_ms / 2 || plain()).then_some(slope)
    }

    /// Whether the part that explains the growth (the heap for `Heap`, external memory for
    /// `Native`) still grows from the middle to the last third of the span by at least `rate`:
    /// a cache nearing its cap makes V8 grow its heap for a while after its own growth slowed.
    /// And, once a fifth of the window has passed since the last full GC, whether its floors
    /// since then grow at least half as fast as the last full GCs said the kept heap did: a
    /// cache that filled just before a full GC shows a steep rise at the last full GCs, and
    /// then only garbage raising the floors until the next one, minutes later; a leak goes on
    /// at its rate. True for other causes.
    pub(super) fn part_grows_now(&mut self, a: &Analysis, cause: Cause, cur: u64, rate: f64) -> bool {
        let (part, lives) = match cause {
            Cause::Explained(Suspect::Heap) => (Part::HeapUsed, &self.heap_lives),
            Cause::Explained(Suspect::Native) => (Part::External, &self.external_lives),
            _ => return true,
        };
        let env = self.part_envelope(part, a.first_idx, cur);
        let origin_s = self.origin.unwrap_or(0) as f64 / 1000.0;
        let goes_on = match (lives.last_rate(), env.last()) {
            (Some((t_gc, live, kept_rate)), Some(&(_, t, floor))) => {
                let since = t + origin_s - t_gc;
                since < self.config.window_ms as f64 / 5000.0 || (floor - live) / since >= 0.5 * kept_rate
            }
            _ => true,
        };
        goes_on && self.analyse(&env, cur).is_none_or(|p| p.slope_recent >= rate)
    }

    /// Whether the newest full GC is in the last third of the window: what the full GCs kept
    /// says little about growth since then (a cache that filled just before it, and only
    /// promoted garbage after).
    pub(super) fn fresh_full_gc(&self) -> bool {
        let now_s = self.last_t.unwrap_or(0) as f64 / 1000.0;
        let third_s = self.config.window_ms as f64 / 3000.0;
        self.heap_lives
            .lives
            .back()
            .is_some_and(|&(t, _)| now_s - t <= third_s)
    }
}
