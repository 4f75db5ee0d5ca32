//! Leak detector: reports steady growth of a memory metric (RSS, working set, a tree's RSS) and
//! when it stops, quiet on what a healthy Node service does, with its defaults, at any window.
//!
//! This page states each rule and, in a clause, why it is there. The recorded runs behind each
//! (what fired before it, what it moved in replay, what was tried and left out) are in
//! `docs/leak-detection.md`, section "The rules with their evidence"; `npm run eval:sweep`
//! replays every recording through a change to them.
//!
//! The rules' numbers are the constants below, each with the recordings that set it. The code
//! that applies them: this file takes the samples and decides (start, go on, end);
//! `envelope.rs` holds the floors and the statistics of rules 1-4; `cause.rs` rule 5 (what
//! grows); `outlived.rs` what the full GCs say (rule 6, the second half of rule 3, and the
//! heap's floor since the newest full GC); `full_gcs.rs` the record of full GCs those read;
//! `watch.rs` the one-minute look-out; `limits.rs` the time to a limit; and `child_growth.rs`
//! which child grows.
//!
//! # What it looks at
//!
//! Samples go into **fine buckets** of `window/30` (20 s for the default 10-minute window). A
//! bucket keeps only its minimum and when it was seen; the detector holds the last 30 complete
//! buckets plus the one filling, so its memory (a few KiB) does not depend on the sampling rate.
//! The trend is tested on the **lower envelope**: the minimum of each sub-window of three fine
//! buckets (`window/10`), the floors that a leak raises and a GC sawtooth leaves alone (Grottke
//! et al. 2006). Sub-windows end at the newest complete fine bucket and slide by one per
//! evaluation (once per fine bucket; a few µs each).
//!
//! Beside the metric it keeps the same buckets of the **parts** that can explain a growth: V8's
//! `heapUsed` and `heapTotal` and external memory (`external`, which counts `arrayBuffers`),
//! recorded by the JS side after GCs whenever leak detection is on, with every **full GC**
//! flagged, and the highest `heapTotal` so far; the children's part when the metric covers them
//! (the metric less the process's own RSS); and the metric less V8's heap and external memory.
//!
//! # What a healthy service does that looks like a leak
//!
//! Measured on real Koa services under real load (`npm run eval:leak`, traces replayed with
//! `eval/leak_replay.rs`):
//! - **Old-generation garbage.** Between full GCs (every 20 s under load, every ~100 s on a lightly
//!   loaded service) promoted garbage raises every floor, RSS and heapUsed alike, by 1.5–3 MiB/min;
//!   a full GC takes it back. In a 60 s window that is a perfect line.
//! - **V8 sizing its heap.** After a load step V8 grows `heapTotal` and keeps the pages: the RSS
//!   floor steps up 2–20 MiB while the live heap does not grow. It mostly keeps them resident
//!   when it shrinks `heapTotal` again, so the RSS follows the highest `heapTotal` so far.
//! - **Data in flight at a full GC.** A full GC that runs while a batch job's 150 MB or a burst of
//!   requests is alive leaves a high "live" heap; the next one does not.
//! - **Caches filling**, an LRU nearing its cap, and start-up.
//!
//! Only a full GC tells memory kept from garbage not yet collected, so most of the rules below
//! are about what full GCs left.
//!
//! # When an episode starts
//!
//! On two consecutive evaluations, all of these hold (for growth that the heap's figures leave
//! unexplained, see rule 5: over a longer time, at twice the minimum slope):
//!
//! 1. **Slope.** The Theil–Sen slope of the envelope is at least the **minimum slope**: by default
//!    growth per window of max(1.5 MiB × √(window / 60 s), 2% of the metric's median floor);
//!    `minSlope` overrides it. √ because a healthy heap's floors drift over a window about like a
//!    random walk, slower than a leak's linear growth; a share of the level because a big heap's
//!    floors move by more. At 60 s that is 1.5 MiB/min on a small service; at 300 s, 0.67 MiB/min;
//!    at 10 min, 0.47 MiB/min.
//! 2. **Confidence.** Its one-sided 95% lower confidence bound (Sen 1968) is at least 0.75 × the
//!    minimum, and the Mann–Kendall test rejects "no trend" at p ≤ 0.05. The metric's slope must
//!    pass rule 1; rules 1–4 together hold on the metric's envelope **or** on that of the part
//!    that explains the growth: V8 growing its heap, or handing pages back, bends the RSS around
//!    a heap leak's straight line, and the parent's RSS around a child's. A heap or external part
//!    must in any case itself grow from the middle to the last third by 0.5 × the minimum slope.
//! 3. **Growing now.** The lowest floor of the last third is above the middle third's by at least
//!    0.5 × the minimum slope and 0.5 × the slope itself (over the time between the thirds'
//!    centers): growth that slows down is a heap resizing or a cache nearing its cap. For a heap
//!    or external cause, once a fifth of the window has passed since the last full GC, that part's
//!    floors since then must grow at least half as fast as the last two full GCs said the kept part
//!    did: a cache that filled just before a full GC shows a steep rise there, then only garbage.
//! 4. **Shape.** A line fits no worse than 1.3 × the better of a hinge (growth, then flat for the
//!    last third) and a step.
//! 5. **What grows is known** (the suspect): each part's envelope slope over the same span, as a
//!    share of the metric's, in this order. The children at half or more: `child`; the heap (less
//!    the measured garbage rate when no full GC is in the span) at half or more: `heap`; external
//!    memory at half or more: `native`; heap and external together at half or more: the larger;
//!    no heap figures at all: `unknown`, on rules 1–4 alone (no full GCs to read). The heap at a
//!    fifth to a half, with `heapTotal` (and external memory) making up half or more, is `heap`
//!    too, but only while the newest full GC is in the last third of the window. `heapTotal`, or
//!    the highest `heapTotal` so far, at half or more while the heap grows by less than a fifth:
//!    V8 sizing itself, **never a leak**, unless the full GCs show a steady heap leak: with the
//!    heap's floors at the minimum slope and the last rise between full GCs at 0.75 of the one
//!    before or more, either rule 6's steps or pairs hold with the last two rises each that
//!    steady, or rule 6's floor since the newest full GC rises four times the garbage plus half
//!    the minimum slope. Then the heap is the cause whatever else grows (V8 can grow the RSS three
//!    times as fast as a heap leak). Growth the heap's figures leave unexplained (`native`
//!    outside V8, or `unknown`) must reach twice the minimum slope in rule 1 and have been first
//!    seen max(5 minutes, a window) before (gaps under a window allowed): the RSS outside V8's
//!    heap grows for minutes after a cache fills or an LRU nears its cap.
//! 6. **It outlived the full GCs** (a heap or external cause), in one of these ways:
//!    - **Steps.** Every full GC in the span left more than the lowest figure since the full GC
//!      before it, by half the minimum slope times the time between plus twice the **noise** of
//!      what full GCs leave (the median absolute deviation of the last eight post-GC figures around
//!      their trend line; before four merged ones, of every full GC's). Full GCs within a
//!      sub-window of each other count as one, against the floor before the first and without the
//!      noise (two seconds apart, in-flight data decides which leaves more). And the last **three**
//!      (merged) full GCs each left more than the one before by the same margin, the newest in the
//!      span (for the heap, in the last third of the window) and above any of the last eight, the
//!      last rise at least half the rate of the one before: a job's data alive at one full GC is
//!      gone at the next, and with two, batch jobs, heavy garbage and load spikes fired 60 s
//!      windows. For the heap, not when the steps slow like an LRU nearing its cap (three ever
//!      slower, the newest under half the first or each under 0.8 of the one before; four ever
//!      slower, the newest under half the first; over the last four steps, the newer half of their
//!      time under half the older half's rate), nor out of a dip (the first rising figure under 0.8
//!      of the median of the four before), nor with a newest step over four times the one before (a
//!      load step's in-flight data). A rise into a full GC that V8 ran within 2 s of growing
//!      `heapTotal` by more than the live heap, by under a fifth of its figure, is left out: the
//!      steps before it are judged, and it need only keep half the rate of the one before (such a
//!      full GC leaves part of a young generation grown for the load).
//!    - **The heap's floor beyond garbage.** The **garbage rate** is the highest of what the last
//!      four full GCs took away per second of their cycle (6 s at least): the last figure before
//!      each, less the live heap then. Before any full GC in the span, a heap floor rising at 1.5
//!      times that rate plus half the minimum slope will do, if the last full GC also left more
//!      than the one before at half the floor's rate and three quarters of its rate beyond
//!      garbage, plus twice the noise (or the last two steps each kept those rates and together
//!      beat twice the noise). The same from the newest full GC on, given half a window since it
//!      (a third, if that floor rises four times the garbage): V8 spaces full GCs out as a leaking
//!      heap grows. Both of these, before four full GCs measure the noise, take 0.5% of what
//!      the newest left for it: a big heap's full GC keeps what was promoted while it marked.
//!      Or that floor goes on at three quarters of the faster of the last two steps
//!      and beyond the garbage itself (not 1.5 times) plus half the minimum slope, after three
//!      steps each at half the minimum slope and three quarters of the one before, with the
//!      steps rule's guards above (no slowing, dip or jump): one heap reading holding the young
//!      generation can make the garbage read high, and V8 can put the next full GC off.
//!    - **Few full GCs.** With fewer than three on record, more than a window apart (the third
//!      would come after a slow leak is due), the heap's floor over the whole span beyond garbage
//!      as above, but with the measured noise alone (none before four full GCs: the 0.5% only
//!      made slow leaks later here, in replay), if the metric's own floors show the trend
//!      (rules 1–4) too, as they must then
//!      for the floor since the newest full GC: a load step's second full GC, with requests in
//!      flight, leaves more while the RSS shows no trend.
//!    - **Pairs** (the heap). Over a window that the eight full GCs on record span, their lower
//!      envelope: in pairs from the newest back, each pair's lower figure above the one before at
//!      the minimum slope, the three rates within a factor of two of each other and not each under
//!      0.8 of the one before, the rise over all three beyond twice the noise, the newest figure
//!      above them all and the newest full GC in the last third. What is in flight at a full GC
//!      only adds to what it leaves, so the lower figures show a slow leak that steps between
//!      single full GCs hide. Full GCs are kept across windows, so a window shorter than their
//!      period still sees them.
//! 7. **Warm-up.** No decision in the first min(window / 2, 30 s), by default, of the window
//!    analysed (rule 8: 30 s with the default minimum slope).
//! 8. **A minute at least.** With the default minimum slope, a window shorter than a minute is
//!    analysed over a minute: a cache filling for 40 s, a burst, V8 sizing its heap are a leak to
//!    a 30 s window otherwise.
//!
//! Or, 9. **the heap alone**, when the metric does not grow at the minimum slope (nor is V8 sizing
//! its heap, nor a child, the cause): the pairs of rule 6 hold, and the heap's own envelope passes
//! rules 1, 2 and 4 and the first half of 3. Then the episode is `heap`, with the heap's slope,
//! and goes on as a heap episode does: V8 shrinking its heap hands pages back, and the RSS can fall
//! while a slow heap leak goes on.
//!
//! # When it ends
//!
//! On two consecutive evaluations, what explained it has stopped. For the heap and external memory:
//! the last full GC of the span left no more than the floor before the span's first one (by 0.25 ×
//! the minimum slope, or × half the leak's own rate if larger; two full GCs seconds apart count as
//! one) or, for the heap, its floor since the newest full GC, half a window old or more, rises
//! slower than that: the full GC after a leak stops still shows its last seconds, and V8 may run
//! the next minutes later. With no full GC in the span: the metric's floors below fail and either
//! the last full GC left no more than the one before (wherever they are; for the heap, or it is
//! older than a window and three times the usual gap between full GCs) or the floors grow at less
//! than 0.25 × the minimum slope, for the heap the heap's floors as well as the metric's (a slow
//! heap leak grows in pages V8 has committed while the RSS stands still for minutes). For a child,
//! the children's floors; for growth outside V8 (unexplained native), the floors outside V8's heap;
//! otherwise the metric's floors: slope below 0.5 × the minimum slope in force at the start, last
//! third growing at less than 0.25 × it, or a line misfitting 3 × the hinge or step. An episode
//! keeps the minimum it started with, so a leak that raises the level does not end its own episode.
//! Wherever what full GCs left is read, one within 30 s of the one before is also judged against
//! the one before that pair: in-flight data decides what two close ones leave.
//!
//! # How fast, and how often wrong
//!
//! The deterministic tests below, on synthetic series (100 seeds were run while tuning; 5–10 in
//! CI), times in seconds after the leak began:
//!
//! | series (defaults unless said)                                      | started              |
//! |--------------------------------------------------------------------|----------------------|
//! | 2 and 20 MiB/min, 400 MB sawtooth, window 600 s, `minSlope` 1 MiB/min | 500                |
//! | 512 KiB/min, same, `minSlope` 256 KiB/min                           | 500–620              |
//! | 2 MiB/min after 600 s flat, `minSlope` 1 MiB/min                    | 360–400              |
//! | process model, heap leak 6 MiB/min, 60 s @ 250 ms (full GCs when the old generation grew by 3–5 MB + a quarter of the live heap) | 120–132 |
//! | the same at 300 s @ 1 s                                             | 280–360              |
//! | heap leak 40 MiB/min with V8 growing its heap 3.4 times as fast, 60 s / 300 s | 80–82 / 280 |
//! | external (Buffers) 6 MiB/min, 60 s / 300 s                          | 136–150 / 280        |
//! | native (outside V8) 6 MiB/min, 60 s / 300 s                         | 378–392 / 570        |
//! | the same under 30 MiB/min of garbage, beside heapTotal highs rising 2.4 MiB/min, the RSS keeping the pages, 300 s (at 60 s it starts at 378, then ends early) | 570 |
//! | a child growing 6 MiB/min under a parent whose RSS drops at GCs, 60 s | ≤ 90, suspect child |
//! | a child growing 15 MiB/min, the parent's RSS dropping 15 MB once, 180 s / 240 s | ≤ 210 / ≤ 270 |
//! | heap leak 2.7 MiB/min under 10 MiB/min of garbage, V8 giving 36 MB of heap back over 60–540 s, the RSS falling, 300 s | 410–460, the heap's slope |
//!
//! A leak present from the first sample cannot be reported before the warm-up plus 8 sub-windows,
//! 0.83 × window + 30 s; a heap leak on a lightly loaded service waits for the next full GC, and
//! three of them to show it (two, more than a window apart). Never started (10 seeds each, 30
//! minutes, at 60 s, 300 s and 600 s): garbage rising 3 MiB/min between full GCs about 2 minutes
//! apart; the same with V8 growing its heap by 30 MB after a load step; 30 MiB/min of garbage with
//! up to 20 MB of a job's data alive at each full GC; a 40 MB cache filled in 40 s, at 10, 30, 45
//! and 60 s windows; an LRU nearing a 24 MB cap as 1 − e^(−t/60 s), at 180, 210, 240, 300 and
//! 600 s (at 60 s it fires in 9 of 40 seeds, as about one recorded Node 24 LRU run in three does;
//! at 90 and 120 s in 2 of 40); an 8 MB cache filling evenly for two minutes, V8 growing its
//! heap twice as fast, at 90, 120 and 300 s (at 60 s, growth of 4 MiB/min for two windows, it
//! fires in 11 of 40 seeds at 116-128 s, 3 of 40 without V8's growth); under 30 MiB/min of
//! garbage, bursts taking heapTotal to highs rising 3 MiB/min with the RSS keeping the pages (15
//! minutes, at 60 s, 240 s at 5 s sampling and 300 s); and (with an explicit `minSlope`) the flat
//! sawtooth, warm-up ramps, steps of 80 MB, caches filled in a fifth of the window. What the real
//! runs show: the README and docs/leak-detection.md.
//!
//! A leak that reaches a limit sooner than that, in a container, is the one-minute look-out's
//! ([`LeakWatch`], which the sampler runs in place of a bare detector): reported once a 60 s
//! window's episode has lasted two minutes, its suspect has held for 30 s, and it reaches the
//! memory limit or V8's heap limit within the configured window (of 3 minutes or more; shorter
//! ones have no look-out). Synthetic (5 seeds, 600 s at 1 s and 250 ms,
//! 300 s): a heap leak of 40 MiB/min under a 256 MiB heap limit and Buffers of 60 MiB/min under
//! 512 MiB, both at 200 s (the detector alone: 530 s, after the limit); caches of 60 MB filled in
//! 40 s or as 1 − e^(−t/60 s), both limits 1.25 times their peaks: never (100 seeds; with the
//! memory limit up to 1.16 times its peak, or V8's up to 1.21 times, 1-2 of 100 LRUs still
//! filling report, 600 s windows at 250 ms sampling).
//!
//! # The estimate
//!
//! `slope_bytes_per_sec` is the envelope's Theil–Sen slope (for an episode rule 9 started, the
//! heap's while it grows faster than the metric); `window_ms` the span of the analysed
//! sub-windows; `growth_bytes` = slope × that span; `confidence` = 1 − p of the one-sided
//! Mann–Kendall test; `suspect` the cause above.

use std::collections::VecDeque;

mod cause;
mod child_growth;
mod envelope;
mod full_gcs;
mod limits;
mod outlived;
mod watch;

use cause::Cause;
pub use child_growth::ChildGrowth;
use envelope::{starts_trend, Analysis, Bucket, Part, PartBucket, PARTS};
use full_gcs::{FullGc, GarbageRate, HeapSizing, Lives};
pub use limits::{ms_to_any_limit, ms_to_heap_limit, ms_to_limit, sooner};
use outlived::Evidence;
pub use watch::{LeakWatch, LOOKOUT_WINDOW_MS};

/// Fine buckets per analysis window.
const FINE_BUCKETS: u64 = 30;
/// Fine buckets per envelope sub-window: sub-windows of window/10.
const GROUP: u64 = 3;
/// Envelope points (sub-windows with data) needed for a decision.
const MIN_POINTS: usize = 8;
/// z of the one-sided 95% lower confidence bound of the slope.
const LOWER_BOUND_Z: f64 = 1.645;
/// To start: that lower bound, as a fraction of the minimum slope.
const START_LOWER_FRACTION: f64 = 0.75;
/// To start: Mann–Kendall confidence (1 − one-sided p).
const START_CONFIDENCE: f64 = 0.95;
/// To start: growth from the middle to the last third, as a fraction of the minimum slope ...
const START_RECENT_FRACTION: f64 = 0.5;
/// ... and as a fraction of the slope itself: growth that is slowing down (a heap resizing, a
/// cache nearing its cap) is not a leak.
const START_RECENT_SHARE: f64 = 0.5;
/// To start: the line's misfit at most this times that of the best hinge or step.
const START_SHAPE_FACTOR: f64 = 1.3;
/// To go on: slope at least this fraction of the minimum slope, ...
const KEEP_SLOPE_FRACTION: f64 = 0.5;
/// ... growth from the middle to the last third at least this fraction, ...
const KEEP_RECENT_FRACTION: f64 = 0.25;
/// ... and the line's misfit at most this times that of the best hinge or step.
const KEEP_SHAPE_FACTOR: f64 = 3.0;
/// Consecutive evaluations that must agree before the state changes ...
const CONFIRM: u32 = 2;
/// ... and a growth that no part of the process's memory explains must have been seen this long
/// ago at least, or a window if that is longer (gaps under a window allowed): after a cache filled,
/// the RSS outside V8's heap grew 8–12 MiB/min for three minutes on Node 24 (pages V8 keeps
/// after it shrank its heap), long enough for windows of 75 and 90 s to call it a leak.
const UNEXPLAINED_MIN_MS: u64 = 300_000;
/// Growth that no part explains must also reach this many times the minimum slope. Measured on
/// Node 24 with no leak: after a cache filled or an LRU neared its cap, the RSS outside V8's heap
/// (the allocator's high-water mark, pages V8 keeps) grew 2.4–12 MiB/min for minutes before it
/// settled, while V8's own figures stood still; only a rate and a duration beyond that tell
/// native memory that is kept.
const UNEXPLAINED_FACTOR: f64 = 2.0;
/// A part (heap floor, external, a child) growing at this share of the metric explains it.
const EXPLAINS: f64 = 0.5;
/// Heap floor growth below this share: `Native`.
const NATIVE_SHARE: f64 = 0.2;
/// Full GC cycles whose garbage rate is remembered.
const GARBAGE_CYCLES: usize = 4;
/// A full-GC cycle shorter than this measures its garbage over this long
/// ([`GarbageRate::full_gc`]): over a second, the last figure is the young generation's
/// allocation, not promoted garbage. Whatever the window, since the young generation does not
/// depend on it. Replayed at every window from 30 s to 10 min, at 250 ms, 1 s and 5 s, over the
/// 1213 recordings kept: only the leak that cycle held back moves (156 -> 80 s at 60 s; 84 s at
/// 3 s), while at 12 s a cache whose 5-s cycle measured its garbage fires at 30-60 s.
const MIN_GARBAGE_CYCLE_MS: u64 = 6_000;
/// A heap floor growing faster than this many times the garbage rate (plus half the minimum
/// slope) is a leak before a full GC shows it.
const BEYOND_GARBAGE: f64 = 1.5;
/// The share of that floor's rate the last step between what full GCs left (or each of the last
/// two, [`Lives::last_rising`]) must have risen at:
/// a leak adds at one rate; garbage promoted after a cache filled raises the floor far faster
/// than the full GCs before it kept (18 against 6 MiB/min in a recorded LRU).
const KEPT_SHARE: f64 = 0.5;
/// And the share of the floor's rate beyond the measured garbage it must have risen at: a leak's
/// floor rises at what the full GCs keep plus garbage. A cycle can measure no garbage at all (a
/// load step to 300 req/s raised what a full GC left by 3 MB in 106 s, 1.6 MiB/min, and that
/// full GC found nothing to take); the floor then rose 2.3-3.3 MiB/min with promoted garbage,
/// which the next full GC took back, and a 60 s window fired at 207 s. Replayed at every window
/// from 30 to 600 s, no recorded leak's event moves at 0.75; at 0.9 a slow one comes 16-21 s
/// later at 105 and 120 s; 0.6 fires 3 s later.
const KEPT_BEYOND_GARBAGE: f64 = 0.75;
/// For the full GCs alone to make the heap the cause whatever else grows: the last two rises
/// each at this share of the one before or more ([`LeakDetector::steady_heap`]). Replayed at
/// every window from 30 to 600 s over the fixtures and eval31-33: no healthy recording fires
/// more, and the leaks come up to 45 s sooner (a 60 s window's fast leaks at 79 s instead of
/// 83-101 s). With only the last rise, eval33's third LRU (23.5, 5.8, then 8.1 MB/min) fired
/// at 80 s; at 0.5, eval31's second (11, then 6 MB/min) at 84 s.
const STEADY_SHARE: f64 = 0.75;
/// Or the heap's floor since the newest full GC rising this many times faster than the garbage
/// measured (plus half the minimum slope), the last full GC's rise keeping up with it as
/// `beyond_garbage` asks: an emitter leak's floor rose 24 MiB/min against 1.3 of garbage while
/// V8 grew the RSS 54-97 MiB/min (131 s at 60 s, 91 s with this); an LRU filling at start-up,
/// 15 against 6.6 (2.3 times), fired at 80 s when any floor beyond 1.5 times would do. Replayed
/// at 30-600 s windows over the fixtures, eval31, eval32 and eval33 (67 healthy recordings): no
/// healthy one fires more at 3, 4 or 8; slow leaks at 60 s 117-123 s instead of 139-149 s.
const STEADY_BEYOND_GARBAGE: f64 = 4.0;
/// Not to start on the heap: the last of three ever slower steps between full GCs under this
/// share of the first. Recorded LRUs nearing their caps: 0.27–0.57. Recorded leaks show such
/// steps too (an emitter whose load slowed it: 0.30–0.43), so the share is the lowest that
/// helps: replayed at every window from 30 to 600 s, no recorded leak's event moves at 0.5;
/// at 0.6 two more LRU runs go quiet at 30–105 s windows, but three emitter runs come 18–47 s
/// later at 75 and 90 s, two of them late.
const DECELERATING_SHARE: f64 = 0.5;
/// Or each of the three steps under this share of the one before: an LRU's decay is geometric,
/// a leak's steps do not shrink twice in a row by a fifth or more unless its load slows. A Node
/// 26 LRU rose 15.4, 11.0, then 8.6 MB/min (0.71, then 0.78; 0.56 of the first) and fired at 86
/// s. Replayed at every window from 30 to 600 s over the 155 recordings kept (107 healthy, 48
/// leaks): that LRU is quiet at 30-60 s, nothing else moves; at 0.85 a slow leak comes 64 s
/// later at a 480 s window, at 0.9 a fast one 7 s later at 105 s (both still in time).
const DECELERATING_STEP_SHARE: f64 = 0.8;
/// Two steps between full GCs within this share of each other count as one rate when
/// [`Lives::decelerating`] asks each to be slower than the one before. A Node 26 LRU's full GCs
/// rose 14.0, 4.385, 4.385 (0.006% apart, the second the faster), then 2.6 MB/min, and a
/// strict comparison let it fire 90–210 s windows at 173–205 s. Replayed at every window from 30
/// to 600 s and at 250 ms, 1 s and 5 s over the 744 recordings kept (537 healthy, 207 leaks):
/// that run goes quiet and no other event moves; at 0.05 an emitter leak on Node 26 (steps of
/// 25.2, then 26.0 MB/min) comes 10–25 s later at 75 and 90 s windows, once too late.
const SAME_RATE: f64 = 0.01;
/// Not to start on the heap either where, over the last four steps between full GCs (three at
/// least), what they left rose in the newer half of that time at under this share of the older
/// half's rate ([`Lives::halves_slowing`]). An LRU on random keys fills along a decaying curve,
/// and what requests had in flight at single full GCs breaks the ever slower order that
/// `DECELERATING_SHARE` asks: a Node 26 LRU rose 12.9, 5.0, then 5.1 MB/min and fired a 60 s window at 132 s; its halves read
/// 12.9 and 5.1. Replayed at every window from 30 to 600 s over the 1215 recordings kept (883
/// healthy), healthy ones firing at 30-60 s go from 34 to 27, at 75 s from 18 to 10, at 90 s 14
/// to 7, at 120 s 8 to 2 (about as many at 1 s and 5 s sampling). One leak moves: a Node 26
/// slow leak whose first full GC came before the start-up's growth, so that its halves read 3.6
/// and 1.6 MB/min until a fifth figure came: at 75 s, already late, 172 then 287 s; at 300 s,
/// 280 s, then none by the end of its 379 s recording (due by 600 s). At 0.6 slow leaks come
/// 48-84 s later at 360-600 s windows; at 0.7 emitter leaks come late at 75-120 s.
const HALVES_SHARE: f64 = 0.5;
/// Not to start on the heap: the newest step between full GCs rising more than this many times
/// faster than the step before it ([`Lives::accelerating`]). A leak adds at one rate, so its
/// steps scatter around it; what a full GC leaves jumps when the load does. On Node 22, full GCs
/// at 8 and 114 s left 10.7 and 11.7 MB (50 req/s), then one at 145 s, 45 s after a step to
/// 300 req/s, 15.3 MB (12 times the rate of the step before): the next full GC, 156 s later,
/// took it back, and 150 and 180 s windows fired at 160-180 s. Replayed at every window from 30
/// to 600 s and at 250 ms, 1 s and 5 s over the 688 recordings kept (495 healthy, 193 leaks):
/// that run and a Node 22 LRU soak at 120 s go quiet, and no recorded leak's event moves but
/// one already late at 75 s on 5 s sampling (124 to 179 s); at 3, a slow leak at 600 s is lost;
/// at 2, 90 events of leaks move. A leak per request across a load step of more than this
/// factor waits for one more full GC.
const ACCELERATING_FACTOR: f64 = 4.0;
/// Not to start on the heap: the rising full GCs start from one that left under this share
/// below the median of the four before it ([`Lives::rises_from_a_dip`]). On Node 26, full GCs of
/// a heavy-garbage service (a 200 KB record per request, 100 req/s) left 21.2, 10.7, 19.8, then
/// 38.9 MB, what requests had in flight at each, and a 60 s window fired at 280 s. Replayed at
/// every window from 30 to 600 s over the 192 recordings kept (137 healthy, 55 leaks): that run
/// is quiet at 30-120 s, nothing else moves, at 0.1 and 0.3 alike.
const DIP_SHARE: f64 = 0.2;
/// A full GC within this of V8 growing heapTotal by more than the live heap is one that sized
/// the heap ([`HeapSizing`]).
const SIZING_NEAR_MS: u64 = 2000;
/// What a full GC that sized the heap left counts as a rise only beyond this share of it: such
/// a figure was up to 11% above the next in recorded LRU runs. A smaller rise is left out: the
/// full GCs before it are judged, and it need only keep half the rate of the step before. Two
/// Node 24 emitter leaks rose 6.7 and 5.1 MB (15% and 12%) into such a full GC at 72 s, at
/// 0.88 and 0.74 of the step before, and then saw no full GC that counted until 126 and 150 s:
/// 137 s at 60 s windows when the sized one held the start back, 79 s now. An LRU's sized step
/// came at 0.36 of the one before and stays quiet.
const SIZING_SHARE: f64 = 0.2;
/// To start on the heap or external memory: steps from one full GC's figure to the next that
/// must all have risen (three full GCs).
const RISING_STEPS: usize = 2;
/// Pairs of full GCs whose lower figures must rise steadily for a long window
/// ([`Lives::floors_rising`]): all that are kept (`GARBAGE_CYCLES * 2`).
const FLOOR_PAIRS: usize = GARBAGE_CYCLES;
/// The rates of those pairs' steps within this factor of each other: a leak adds at one rate.
/// Replayed at every window from 30 to 600 s and at 250 ms, 1 s and 5 s over the 861
/// recordings kept (614 healthy): without it, heavy garbage on Node 22 whose full GCs' lower
/// figures rose 1.8, 3.4, then 4.1 MB/min fired 150 and 180 s windows; with it, no healthy
/// recording fires more at any window or period.
const FLOOR_RATES_FACTOR: f64 = 2.0;
/// For an episode to go on, a full GC this close (s) to the one before is judged against the
/// one before that pair too ([`Lives::still_rising`]): in-flight data, not the time between,
/// decides what two close full GCs leave. Slow heap leaks (3.4 MiB/min) were called off while
/// they went on at 60 s windows where full GCs 13, 21 and 28 s apart left 0.1 MB more, 0.2 MB
/// less and 0.1 MB less (3 of 11 recorded). Replayed at every window from 30 to 600 s over the
/// 261 recordings kept: those three go on at 30-90 s windows, and nothing else moves (without
/// the newest above all before the one before the pair, a Node 26 LRU already reported was
/// called off 26 s later). Full GCs within a tenth of the window are merged into one anyway, so
/// from 300 s windows on this never applies.
const CLOSE_PAIR_S: f64 = 30.0;
/// What full GCs' figures are taken to vary by, as a share of the newest, until four of them
/// measure it ([`Lives::noise_margin_or_share`]), where the heap's floor since the newest full GC
/// (or over a span with none) leans on the last one or two steps between full GCs alone to count
/// as kept. A full GC of a big heap marks for long enough that what requests promote meanwhile
/// survives it: three healthy runs of one 300 MB service (Node 24) left 292.6, 296.9 and 296.6 MB
/// at their second full GC, all 292.7-293.8 at the first. The two that kept 3-4 MB more read a
/// garbage rate of zero, and with no full GC for the next 390 s, a floor rising ~1 MiB/min fired
/// at 240 s and from 360 s to 10 minutes. Measured noise of full GCs (the median deviation over
/// the last eight) in the recorded runs: 0.2-1% of what they leave for most leaks and caches,
/// 3-15% under load steps and heavy garbage. Replayed at every window from 30 s to 10 minutes
/// at 250 ms, 1 s and 5 s over the 1685 recordings: only those two runs go quiet, and no leak is
/// reported later at 250 ms; at 1 s one slow leak already late at 60 s comes later still (126 ->
/// 158 s) and one at 180 s later in time (204 -> 216 s); at 5 s a 300 MB slow leak comes 120-220
/// s later at 180-300 s windows, still in time at 300 s, and one is not reported at 180 s.
/// Against 0.5%, over 1723 recordings: at 0.25% the big heap still fires at 360 s to 10 minutes
/// (and from 240 s at 5 s); at 1% the 300 MB slow leak goes unreported at 120-180 s windows and
/// comes 60-150 s later at 210-360 s; at 2% slow leaks at 75-150 s windows come up to two
/// minutes later too. On every margin (not only this evidence), 0.3% and up made a slow leak at
/// 60 s late (94 -> 138 s, due 120). Off altogether (an endless share), an emitter leak at 60 s
/// comes at 139 s (due 90).
const UNMEASURED_NOISE_SHARE: f64 = 0.005;
/// Full GC times kept (the last window's; a bound for GC storms).
const FULL_GCS_KEPT: usize = 256;
/// Envelope points a part needs to be classified.
const MIN_PART_POINTS: usize = 3;
/// Default minimum growth over a 60 s window; it scales with √(window / 60 s).
const MIN_GROWTH_PER_MINUTE: f64 = 1.5 * 1024.0 * 1024.0;
/// Default minimum growth over a window, as a share of the metric's level.
const MIN_GROWTH_SHARE: f64 = 0.02;
/// Default warm-up, at most (and at most half the window).
const DEFAULT_WARMUP_MS: u64 = 30_000;
/// With the default minimum slope, the shortest span analysed, whatever the window: a cache
/// filling, a burst of requests, V8 sizing its heap last up to a minute on the services measured,
/// and are a leak to a shorter window. An explicit `minSlope` says what growth matters, and
/// lifts it.
const MIN_EVIDENCE_MS: u64 = 60_000;

/// Configuration of a [`LeakDetector`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakConfig {
    /// Analysis window, ms. Default 600_000.
    pub window_ms: u64,
    /// Bytes per second; growth slower than this is not a leak. `None` (the default): the
    /// evidence scales with the window and the metric's level (see the module documentation).
    /// NaN never reports; a negative value counts as 0 (any significant steady growth).
    pub min_slope: Option<f64>,
    /// Ignore samples whose time is < first_sample_time + warmup_ms. `None` (the default):
    /// min(window / 2, 30 s) of the window analysed (a minute at least without `min_slope`), the
    /// start-up of a service (modules, JIT, pools, first caches).
    pub warmup_ms: Option<u64>,
}

impl Default for LeakConfig {
    /// A 10-minute window, the adaptive minimum slope, the default warm-up (30 s).
    fn default() -> Self {
        LeakConfig {
            window_ms: 600_000,
            min_slope: None,
            warmup_ms: None,
        }
    }
}

impl LeakConfig {
    /// The warm-up in force, ms.
    pub fn warmup(&self) -> u64 {
        self.warmup_ms
            .unwrap_or((self.window_ms / 2).min(DEFAULT_WARMUP_MS))
    }

    /// The minimum slope in force for a metric whose floors sit at `level` bytes: the configured
    /// one, else the default rule: growth over a window of at least
    /// max(1.5 MiB × √(window / 60 s), 2% of the level).
    pub fn min_slope_at(&self, level: f64) -> f64 {
        match self.min_slope {
            Some(m) if m.is_nan() => f64::INFINITY,
            Some(m) => m.max(0.0),
            None => {
                let window_s = (self.window_ms as f64 / 1000.0).max(1e-3);
                let by_window = MIN_GROWTH_PER_MINUTE * (window_s / 60.0).sqrt();
                let by_level = if level.is_finite() {
                    MIN_GROWTH_SHARE * level
                } else {
                    0.0
                };
                by_window.max(by_level) / window_s
            }
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
    /// A tree metric grows while the process's own RSS does not: a child process grows.
    Child,
    /// No or too few heap figures, or a share in between.
    Unknown,
}

impl Suspect {
    /// `"heap"`, `"native"`, `"child"` or `"unknown"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Suspect::Heap => "heap",
            Suspect::Native => "native",
            Suspect::Child => "child",
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
    /// The slope (bytes/s) of the heap's own floors over the same span, whatever the suspect,
    /// when they have enough points: for a heap leak, what brings the heap to V8's heap limit
    /// ([`ms_to_heap_limit`]). The RSS of a heap leak can grow several times as fast while V8
    /// grows its heap.
    pub heap_slope_bytes_per_sec: Option<f64>,
}

/// A change of the detector's state.
#[derive(Debug, Clone, PartialEq)]
pub enum LeakTransition {
    /// A leak episode began.
    Started(LeakEstimate),
    /// The episode's growth stopped.
    Ended(LeakEstimate),
}

/// Leak detector for one memory metric; see the module documentation for the rule.
#[derive(Debug, Clone)]
pub struct LeakDetector {
    config: LeakConfig,
    /// Fine bucket width, ms (≥ 1).
    width_ms: u64,
    first_t: Option<u64>,
    last_t: Option<u64>,
    /// Time of the first sample after the warm-up: fine bucket 0 starts here.
    origin: Option<u64>,
    buckets: VecDeque<Bucket>,
    parts: VecDeque<PartBucket>,
    last_part_t: [Option<u64>; PARTS],
    /// The full GCs of the last window, and whether heap figures (which tell full GCs from the
    /// others) were ever reported: without them the rules on full GCs do without.
    full_gcs: VecDeque<FullGc>,
    gc_kinds_known: bool,
    garbage: GarbageRate,
    heap_lives: Lives,
    external_lives: Lives,
    /// The lowest heapUsed and external figures since the last full GC (or the first figure),
    /// as (ms on the detector's clock, bytes).
    heap_floor: Option<(u64, f64)>,
    external_floor: Option<(u64, f64)>,
    episode: Option<LeakEstimate>,
    /// The slope the episode started with.
    episode_slope: f64,
    /// What explained the growth when the episode started (None: no episode).
    episode_cause: Option<Cause>,
    /// Whether it started on the heap's trend alone (rule 9), the metric not growing.
    episode_heap_alone: bool,
    /// The process's own RSS at the newest tick that reported it (ms, bytes).
    last_own: Option<(u64, f64)>,
    /// heapTotal + external of the newest heap figures.
    last_v8: Option<f64>,
    heap_sizing: HeapSizing,
    /// The minimum slope in force when the episode started (the level grows with a leak; the
    /// episode keeps the bar it was judged by).
    episode_min_slope: f64,
    /// Consecutive evaluations whose verdict differs from the state.
    streak: u32,
    /// Whether the streak's evaluations flipped on the heap's trend alone (rule 9): a streak
    /// counts one kind of evidence, so a rule-9 flip does not confirm a flip of another kind.
    streak_heap_alone: bool,
    /// The newest evaluation read V8 sizing its heap as the cause ([`Cause::HeapSizing`], whose
    /// suspect reads native): not a leak's reading, to the look-out ([`LeakWatch`]).
    reads_heap_sizing: bool,
    /// When growth nothing explains was first and last seen to flip the verdict (ms since the
    /// origin); a gap of more than a window starts it again.
    unexplained_seen: Option<(u64, u64)>,
    scratch: Vec<f64>,
}

impl LeakDetector {
    /// With the default minimum slope, a window shorter than a minute is analysed over a
    /// minute (see `MIN_EVIDENCE_MS`); [`config`](Self::config) says so.
    pub fn new(config: LeakConfig) -> Self {
        let config = match config.min_slope {
            None if config.window_ms < MIN_EVIDENCE_MS => LeakConfig {
                window_ms: MIN_EVIDENCE_MS,
                ..config
            },
            _ => config,
        };
        LeakDetector {
            config,
            width_ms: config.window_ms.div_ceil(FINE_BUCKETS).max(1),
            first_t: None,
            last_t: None,
            origin: None,
            buckets: VecDeque::with_capacity(FINE_BUCKETS as usize + 1),
            parts: VecDeque::new(),
            last_part_t: [None; PARTS],
            full_gcs: VecDeque::new(),
            gc_kinds_known: false,
            garbage: GarbageRate::default(),
            heap_lives: Lives::default(),
            external_lives: Lives::default(),
            heap_floor: None,
            external_floor: None,
            episode: None,
            episode_cause: None,
            episode_heap_alone: false,
            episode_slope: 0.0,
            last_own: None,
            last_v8: None,
            heap_sizing: HeapSizing::default(),
            episode_min_slope: f64::INFINITY,
            streak: 0,
            streak_heap_alone: false,
            reads_heap_sizing: false,
            unexplained_seen: None,
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
        if let Some((t, own)) = self.last_own {
            if t == t_ms {
                self.observe_part(t_ms, Part::Children, value - own);
            }
        }
        if let Some(v8) = self.last_v8 {
            self.observe_part(t_ms, Part::Outside, value - v8);
        }
        let first = *self.first_t.get_or_insert(t_ms);
        if t_ms < first.saturating_add(self.config.warmup()) {
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
        while self.parts.front().is_some_and(|b| b.idx < lo) {
            self.parts.pop_front();
        }
        let lo_ms = lo * self.width_ms;
        while self.full_gcs.front().is_some_and(|g| g.t < lo_ms) {
            self.full_gcs.pop_front();
        }
        self.evaluate(idx)
    }

    /// V8 heap figures recorded right after a GC (`heap_used`, `heap_total` = heapUsed and
    /// heapTotal bytes, `external` = Node's external bytes, ArrayBuffers included; NaN if
    /// unknown), and whether that GC was a full (mark-compact) one. They tell what grows: live
    /// JS objects, V8's free heap, or memory outside the heap; and the full GCs tell garbage from
    /// what is kept (see the module documentation). Ignored before the first metric sample after
    /// the warm-up or when the time goes backwards.
    pub fn observe_heap(&mut self, t_ms: u64, heap_used: f64, heap_total: f64, external: f64, full_gc: bool) {
        // Heap figures come from a GC callback that tells full GCs from the others.
        self.gc_kinds_known = true;
        let v8 = heap_total + external;
        if v8.is_finite() {
            self.last_v8 = Some(v8);
        }
        self.heap_sizing.observe(t_ms, heap_used, heap_total, full_gc);
        if full_gc {
            self.garbage.full_gc(t_ms, heap_used);
            let merge_ms = self.sub_window_ms();
            self.heap_lives.full_gc(t_ms, heap_used, merge_ms);
            self.external_lives.full_gc(t_ms, external, merge_ms);
        } else {
            self.garbage.figure(t_ms, heap_used);
        }
        self.observe_part(t_ms, Part::HeapUsed, heap_used);
        self.observe_part(t_ms, Part::HeapTotal, heap_total);
        if let Some(peak) = self.heap_sizing.peak_total {
            self.observe_part(t_ms, Part::HeapPeak, peak);
        }
        self.observe_part(t_ms, Part::External, external);
        // The floors since the last full GC are kept from the first figure, warm-up included
        // (ms since the detector's clock began): the first full GC after the warm-up is judged
        // against its whole cycle, not the seconds of it after the warm-up, which hold garbage.
        let lower = |floor: &mut Option<(u64, f64)>, v: f64| {
            if v.is_finite() && floor.is_none_or(|(_, old)| v < old) {
                *floor = Some((t_ms, v));
            }
        };
        if !full_gc {
            lower(&mut self.heap_floor, heap_used);
            lower(&mut self.external_floor, external);
            return;
        }
        let heap_before = self.heap_floor;
        let external_before = self.external_floor;
        // The next cycle's floor starts at what this GC left.
        self.heap_floor = heap_used.is_finite().then_some((t_ms, heap_used));
        self.external_floor = external.is_finite().then_some((t_ms, external));
        let Some(origin) = self.origin else {
            return;
        };
        if t_ms < origin {
            return;
        }
        let t = t_ms - origin;
        if self.full_gcs.back().is_some_and(|g| t < g.t) {
            return;
        }
        if self.full_gcs.len() >= FULL_GCS_KEPT {
            self.full_gcs.pop_front();
        }
        self.full_gcs.push_back(FullGc {
            t,
            heap_used,
            external,
            heap_before,
            external_before,
        });
    }

    /// The process's own RSS, when the watched metric covers its children too (`treeRss`): a
    /// tree that grows while the process does not is a child's growth.
    /// Call it before [`observe`](Self::observe) with the same `t_ms`.
    pub fn observe_own(&mut self, t_ms: u64, own: f64) {
        self.last_own = Some((t_ms, own));
    }

    fn observe_part(&mut self, t_ms: u64, part: Part, value: f64) {
        let Some(origin) = self.origin else {
            return;
        };
        let last = &mut self.last_part_t[part as usize];
        if !value.is_finite() || t_ms < origin || last.is_some_and(|l| t_ms < l) {
            return;
        }
        *last = Some(t_ms);
        let rel = t_ms - origin;
        let idx = rel / self.width_ms;
        // Parts arrive from two sources (GC callbacks, ticks), so a figure may belong to a bucket
        // before the newest: find it from the back, or insert it in order.
        let pos = self.parts.iter().rposition(|b| b.idx <= idx);
        let slot = match pos {
            Some(i) if self.parts[i].idx == idx => i,
            _ => {
                let at = pos.map_or(0, |i| i + 1);
                self.parts.insert(
                    at,
                    PartBucket {
                        idx,
                        mins: [None; PARTS],
                    },
                );
                at
            }
        };
        let m = &mut self.parts[slot].mins[part as usize];
        if m.is_none_or(|(_, old)| value < old) {
            *m = Some((rel, value));
        }
        let newest = self.buckets.back().map_or(idx, |b| b.idx.max(idx));
        let lo = newest.saturating_sub(FINE_BUCKETS);
        while self.parts.front().is_some_and(|b| b.idx < lo) {
            self.parts.pop_front();
        }
    }

    /// The latest estimate while an episode is on (for a Prometheus gauge), else None.
    pub fn current(&self) -> Option<&LeakEstimate> {
        self.episode.as_ref()
    }

    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }

    /// Whether the newest evaluation found V8 growing its heap, not what it keeps alive, to be
    /// the cause: [`LeakDetector::current`]'s suspect then reads native, but it is no leak's.
    pub fn reads_heap_sizing(&self) -> bool {
        self.reads_heap_sizing
    }

    pub fn config(&self) -> &LeakConfig {
        &self.config
    }

    /// Runs when fine bucket `cur` has just begun, so every older bucket is complete.
    fn evaluate(&mut self, cur: u64) -> Option<LeakTransition> {
        // Not enough data: no decision, the state stays as it is.
        let env = self.envelope(cur);
        let a = self.analyse(&env, cur)?;
        let mut cause = self.cause(&a);
        // The heap's own slope, when the steady full GCs make it the cause although the metric
        // grows much faster: the episode is judged by it.
        let mut heap_slope = None;
        if self.episode_cause.is_none() && matches!(cause, Cause::HeapSizing | Cause::Unexplained(_)) {
            heap_slope = self.steady_heap(&a);
            if heap_slope.is_some() {
                cause = Cause::Explained(Suspect::Heap);
            }
        }
        // The verdict that would change the state: "a leak" while idle, "no longer" in an episode.
        let flips = match self.episode_cause {
            None => {
                let min = self.config.min_slope_at(a.level);
                // The trend on the metric's floors, or on those of the part that explains it:
                // V8 sizing its heap can bend the RSS around a heap leak's straight line, the
                // parent's RSS a tree's around a child's.
                let bar = match cause {
                    Cause::Unexplained(_) => UNEXPLAINED_FACTOR * min,
                    _ => min,
                };
                let rate = START_RECENT_FRACTION * min;
                let metric_trend = starts_trend(&a, min, &mut self.scratch);
                cause != Cause::HeapSizing
                    && a.slope >= bar
                    && (self.outlived_full_gcs(&a, cause, rate, Evidence::FullGcsOrFloor) == Some(true)
                        && (metric_trend || !self.few_full_gcs(cause))
                        || metric_trend && self.heap_floor_before_three_full_gcs(&a, cause, rate))
                    && self.part_grows_now(&a, cause, cur, rate)
                    && (metric_trend
                        || self
                            .explaining_part(cause)
                            .and_then(|part| {
                                let env = self.part_envelope(part, a.first_idx, cur);
                                self.analyse(&env, cur)
                            })
                            .is_some_and(|p| starts_trend(&p, min, &mut self.scratch)))
            }
            Some(started) => !self.keeps(&a, started, cur),
        };
        // Rule 9: the heap's own trend, where V8 handing pages back hides it from the metric.
        let heap_alone = if flips || self.episode_cause.is_some() {
            None
        } else {
            self.heap_grows_alone(&a, cause, cur)
        };
        let flips = flips || heap_alone.is_some();
        if heap_alone.is_some() {
            cause = Cause::Explained(Suspect::Heap);
        }
        self.count_flip(flips, heap_alone.is_some());
        self.reads_heap_sizing = cause == Cause::HeapSizing;
        let now_ms = cur * self.width_ms;
        let unexplained = self.episode_cause.is_none() && matches!(cause, Cause::Unexplained(_));
        if flips && unexplained {
            let first = match self.unexplained_seen {
                Some((first, last)) if now_ms - last <= self.config.window_ms => first,
                _ => now_ms,
            };
            self.unexplained_seen = Some((first, now_ms));
        }
        let seen_long = !unexplained
            || self
                .unexplained_seen
                .is_some_and(|(first, _)| now_ms - first >= UNEXPLAINED_MIN_MS.max(self.config.window_ms));
        if self.streak < CONFIRM || !seen_long {
            if self.episode.is_some() {
                self.episode = Some(self.episode_estimate(&a, cause, cur));
            }
            return None;
        }
        self.streak = 0;
        if self.episode.is_some() {
            let estimate = self.episode_estimate(&a, cause, cur);
            self.episode = None;
            self.episode_cause = None;
            self.episode_heap_alone = false;
            Some(LeakTransition::Ended(estimate))
        } else {
            // The next growth nothing explains is timed from its own start.
            self.unexplained_seen = None;
            self.episode_min_slope = self.config.min_slope_at(a.level);
            let estimate = match &heap_alone {
                Some(h) => {
                    self.episode_slope = h.slope;
                    self.estimate(h, cause)
                }
                None => {
                    self.episode_slope = heap_slope.map_or(a.slope, |h| h.min(a.slope));
                    self.estimate(&a, cause)
                }
            };
            self.episode_heap_alone = heap_alone.is_some();
            self.episode_cause = Some(cause);
            self.episode = Some(estimate.clone());
            Some(LeakTransition::Started(estimate))
        }
    }

    /// The heap's envelope over the metric's span, if it shows a leak's trend (rules 1, 2, 4
    /// and the first half of 3) while the metric does not grow at the minimum slope, the full
    /// GCs on record span the window and their lower envelope rises steadily (rule 6's pairs),
    /// the newest in the last third (rule 9). The metric is the RSS, and V8 shrinking its heap
    /// hands pages back: in a recorded slow leak (2.7 MB/min) at 300 s, the full GCs' steps
    /// shrank for a minute (an LRU's shape to rule 6), the next full GC came 102 s later with
    /// `heapTotal` cut from 62 to 34 MB, and the RSS fell while the heap grew; reported at 620
    /// s, due 600 (now 500 s). Not where the metric grows at the minimum slope, nor where V8
    /// sizing its heap or a child explains it: tried in replay with neither condition, a Node
    /// 26 LRU whose floors still rose 1.3 MB/min at 300 s, while V8 grew the RSS 22 MiB/min,
    /// fired a 210 s window (`lru-slow-p.csv`); either alone keeps it quiet.
    fn heap_grows_alone(&mut self, a: &Analysis, cause: Cause, cur: u64) -> Option<Analysis> {
        let min = self.config.min_slope_at(a.level);
        if !self.gc_kinds_known
            || matches!(cause, Cause::HeapSizing | Cause::Explained(Suspect::Child))
            || a.slope >= min
            || !self.heap_floors_rise(a.level)
        {
            return None;
        }
        let env = self.part_envelope(Part::HeapUsed, a.first_idx, cur);
        let heap = self.analyse(&env, cur)?;
        starts_trend(&heap, min, &mut self.scratch).then_some(heap)
    }

    /// Counts one evaluation towards [`CONFIRM`]: consecutive flips of one kind, the heap's trend
    /// alone (rule 9) or the other rules; a flip of the other kind starts the count again.
    fn count_flip(&mut self, flips: bool, heap_alone: bool) {
        self.streak = match (flips, self.streak_heap_alone == heap_alone) {
            (false, _) => 0,
            (true, true) => self.streak + 1,
            (true, false) => 1,
        };
        self.streak_heap_alone = heap_alone;
    }

    /// The estimate while an episode is on: the metric's, or for one that started on the heap
    /// alone the heap's while it grows faster (the metric may still fall, V8 handing pages
    /// back). Such an episode keeps the heap as its suspect even where the heap's figures cannot
    /// be analysed: the metric's cause then says nothing of what started it.
    fn episode_estimate(&mut self, a: &Analysis, cause: Cause, cur: u64) -> LeakEstimate {
        if !self.episode_heap_alone {
            return self.estimate(a, cause);
        }
        let env = self.part_envelope(Part::HeapUsed, a.first_idx, cur);
        let heap = self.analyse(&env, cur);
        self.estimate(
            heap.as_ref().filter(|h| h.slope > a.slope).unwrap_or(a),
            Cause::Explained(Suspect::Heap),
        )
    }

    /// Whether an episode that started as `started` goes on: what explained the growth still
    /// grows. A child's growth is judged on the children alone, native growth on the metric
    /// less V8's heap and external memory; the heap's and external memory's across the full
    /// GCs, where there are some; anything else on the metric's floors.
    fn keeps(&mut self, a: &Analysis, started: Cause, cur: u64) -> bool {
        let min = self.episode_min_slope;
        let on_floors = |a: &Analysis| {
            a.slope >= KEEP_SLOPE_FRACTION * min
                && a.slope_recent >= KEEP_RECENT_FRACTION * min
                && a.steady(KEEP_SHAPE_FACTOR)
        };
        // Looser, for when what the last full GCs left says the heap still grew.
        let still_growing = |a: &Analysis| a.slope >= KEEP_RECENT_FRACTION * min;
        // A child's growth on the children alone, native growth on what is outside V8's heap:
        // the process's own full GCs, which drop the RSS, do not stop them.
        let part = match started {
            Cause::Explained(Suspect::Child) => Some(Part::Children),
            Cause::Unexplained(Suspect::Native) => Some(Part::Outside),
            _ => None,
        };
        if let Some(part) = part {
            let env = self.part_envelope(part, a.first_idx, cur);
            return match self.analyse(&env, cur) {
                Some(p) => on_floors(&p),
                None => on_floors(a),
            };
        }
        // What a full GC leaves must keep growing at a quarter of the rate the episode started
        // with (a leak's own rate, at least the minimum): a live heap that now drifts by a MiB
        // between full GCs is not the leak that was reported.
        let rate = KEEP_RECENT_FRACTION * min.max(0.5 * self.episode_slope);
        match (
            self.outlived_full_gcs(a, started, rate, Evidence::FullGcsOrFloor),
            started,
        ) {
            // Unless, for the heap, its floor since the newest full GC (half a window old or
            // more) has stood still: the full GC after a leak stops still shows its last
            // seconds, and V8 may run the next minutes later (Node 26: 248.7, then 256.3 MiB at
            // 347 and 431 s, the leak stopping at 360 s, and the next at 532 s).
            (Some(kept), Cause::Explained(suspect)) => {
                kept && !(suspect == Suspect::Heap
                    && self.heap_slope_since_full_gc(a).is_some_and(|since| since < rate))
            }
            // No full GC in the span (a window shorter than the full-GC period): what the last
            // one left against the one before, wherever they are; the RSS floors wander with V8
            // sizing its heap meanwhile. For the heap, its floor too: a slow heap leak grows in
            // pages V8 has already committed while the RSS stands still for minutes. Only while
            // the newest full GC is recent: after a leak that stopped, Node 26 ran none for the
            // last 500 s of a recording while promoted garbage raised the heap floor, and the
            // two full GCs before the stop kept the episode going to the end. The floors alone
            // keep it only at half that rate too: on Node 26 the RSS's floors rose 0.5 MiB/min
            // (V8 committing pages for a 260 MB heap) for the 500 s after a 42 MiB/min leak
            // stopped, above half the 300 s window's minimum, and kept it going to the end.
            (None, Cause::Explained(Suspect::Heap)) => {
                let heap_grows = || {
                    self.part_slope(Part::HeapUsed, a.first_idx, a.end_idx)
                        .is_some_and(|s| s >= KEEP_RECENT_FRACTION * min)
                };
                let now_s = (self.origin.unwrap_or(0) + cur * self.width_ms) as f64 / 1000.0;
                let fresh = self
                    .heap_lives
                    .fresh(now_s, self.config.window_ms as f64 / 1000.0);
                fresh
                    && self.heap_lives.still_rising(rate, CLOSE_PAIR_S, 0)
                    && (still_growing(a) || heap_grows())
                    || on_floors(a) && a.slope >= KEEP_SLOPE_FRACTION * rate
            }
            (None, Cause::Explained(Suspect::Native)) => {
                self.external_lives.still_rising(rate, CLOSE_PAIR_S, 0) && still_growing(a) || on_floors(a)
            }
            _ => on_floors(a),
        }
    }

    fn estimate(&self, a: &Analysis, cause: Cause) -> LeakEstimate {
        // Buckets are window/30 rounded up: the span may pass the window by a few ms.
        let window_ms = (a.end_idx - a.first_idx)
            .saturating_mul(self.width_ms)
            .min(self.config.window_ms);
        LeakEstimate {
            slope_bytes_per_sec: a.slope,
            growth_bytes: a.slope * window_ms as f64 / 1000.0,
            window_ms,
            confidence: a.confidence.clamp(0.0, 1.0),
            suspect: cause.suspect(),
            // Whatever the cause now: an episode keeps the suspect it started with, and the
            // cause read later may differ.
            heap_slope_bytes_per_sec: self
                .part_slope(Part::HeapUsed, a.first_idx, a.end_idx)
                .filter(|s| s.is_finite()),
        }
    }

    /// Buckets held (metric + parts): bounded by 2 × (FINE_BUCKETS + 1).
    #[cfg(test)]
    fn buckets_held(&self) -> usize {
        self.buckets.len() + self.parts.len()
    }
}

#[cfg(test)]
mod tests;
