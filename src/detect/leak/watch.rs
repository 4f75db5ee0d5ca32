//! The leak detector at the configured window, and a one-minute look-out for a leak that would
//! reach a memory limit before that window could report it.
//!
//! A detector reports a leak 0.83–1.3 windows after it starts (see the module documentation of
//! [`super`]): with the default 10-minute window, a leak that fills a container in five minutes
//! ends the process first. Measured: a Koa service keeping 10 KB a request at 100 req/s in a 512
//! MiB cgroup (V8's heap limit 259 MiB) was aborted by V8 336 s after its load began; a 60 s
//! window reported it at 80 s, the 10-minute default never could.
//!
//! So beside the detector at the window asked for, a second one runs at [`LOOKOUT_WINDOW_MS`],
//! and its episode is reported only while, at its slope, the process reaches a limit (the
//! memory limit, or V8's heap limit for a heap leak: the caller's count) **within the configured
//! window**, its suspect has held for [`LOOKOUT_SUSPECT_HOLDS_MS`] (a reading of V8 sizing its
//! heap breaks that), and the episode has lasted [`LOOKOUT_PERSISTS_MS`]. A one-minute window
//! alone raises false alarms on healthy services (an LRU nearing its cap, a cache that filled
//! before a full GC: 29 of 969 healthy recordings replayed); their growth of a few MB a minute
//! takes hours to reach a limit, so the horizon keeps them quiet, unless the process already sits
//! just under its limit, where a warning is due anyway.
//!
//! One episode for both: the look-out's episode becomes the detector's when that one confirms it
//! (no second `Started`), and ends with the look-out's own end if the detector never confirmed
//! it; an episode the detector then starts within a window is that same growth, and is reported
//! (with its end) only if the look-out reports growth again while it lasts. Windows under `3 ×`
//! [`LOOKOUT_WINDOW_MS`] run no look-out: they report about as soon.

use super::{LeakConfig, LeakDetector, LeakEstimate, LeakTransition, Suspect};

/// The look-out's window: the shortest the eval measured (`npm run eval:leak`, 60 s at 250 ms
/// sampling: every fast leak reported at 80 s).
pub const LOOKOUT_WINDOW_MS: u64 = 60_000;

/// How long the look-out's episode must have lasted before it is reported: a cache filling or
/// V8 growing its heap after a load step looks like a fast leak for a minute or two.
const LOOKOUT_PERSISTS_MS: u64 = 120_000;

/// How long the look-out's suspect must have been read, with no other known suspect since, before
/// it is reported (time it reads `'unknown'` does not count, nor break the hold). Over a minute,
/// V8 growing its heap can read as native growth on one evaluation: replayed as in a 512 MiB
/// container, an emitter leak recorded with nothing set read heap, native and unknown by turns,
/// and an evaluation that read native at 57 MiB/min was reported, at 224 s, where the window's
/// detector said heap at 280 s. Real leaks' suspects held for a minute before their report. Only
/// the suspect must hold: a heap leak's RSS can fall for a while as V8 hands pages back, and its
/// limit then reads out of reach.
const LOOKOUT_SUSPECT_HOLDS_MS: u64 = 30_000;

/// The look-out's suspect and how long it has held.
#[derive(Debug, Clone, Copy)]
struct SuspectHeld {
    suspect: Suspect,
    /// Time it was read, ms, since another known suspect was.
    ms: u64,
    /// The newest sample's time, ms.
    last_ms: u64,
}

impl SuspectHeld {
    /// The hold after a sample at `t_ms` whose look-out read `now` (None: no episode).
    fn after(held: Option<Self>, now: Option<Suspect>, t_ms: u64) -> Option<Self> {
        let now = now?;
        match held {
            Some(h) if now == h.suspect || now == Suspect::Unknown => {
                // Saturating: a sample whose time goes backwards (the detectors ignore it) adds
                // nothing.
                let gained = if now == h.suspect {
                    t_ms.saturating_sub(h.last_ms)
                } else {
                    0
                };
                Some(SuspectHeld {
                    ms: h.ms + gained,
                    last_ms: t_ms.max(h.last_ms),
                    ..h
                })
            }
            _ if now == Suspect::Unknown => None,
            _ => Some(SuspectHeld {
                suspect: now,
                ms: 0,
                last_ms: t_ms,
            }),
        }
    }
}

/// A [`LeakDetector`] at the configured window, with a look-out for leaks that outrun it.
#[derive(Debug, Clone)]
pub struct LeakWatch {
    detector: LeakDetector,
    lookout: Option<LeakDetector>,
    /// The episode in progress was reported from the look-out and the detector has not
    /// confirmed it yet.
    early: bool,
    /// When the look-out's episode in progress began (the sample's `t_ms`).
    lookout_since: Option<u64>,
    /// Until when (`t_ms`) an episode the detector starts is the one the look-out reported and
    /// called off already: its window still holds that growth.
    quiet_until: u64,
    /// The detector's episode in progress started before `quiet_until`: not reported, nor its
    /// end, unless the look-out reports growth again while it lasts.
    silenced: bool,
    /// The look-out's known suspect in its episode in progress, how long (ms) it has been read
    /// with no other since, and the sample last read: see [`LOOKOUT_SUSPECT_HOLDS_MS`].
    suspect_held: Option<SuspectHeld>,
}

impl LeakWatch {
    pub fn new(config: LeakConfig) -> Self {
        let lookout = (config.window_ms >= 3 * LOOKOUT_WINDOW_MS).then(|| {
            LeakDetector::new(LeakConfig {
                window_ms: LOOKOUT_WINDOW_MS,
                ..config
            })
        });
        LeakWatch {
            detector: LeakDetector::new(config),
            lookout,
            early: false,
            lookout_since: None,
            quiet_until: 0,
            silenced: false,
            suspect_held: None,
        }
    }

    /// One sample of the watched metric, as [`LeakDetector::observe`]. `ms_to_limit` counts, for
    /// an estimate, the ms until the process reaches a limit at its slope (`None`: no limit); a
    /// look-out's episode is reported when that is at most the configured window.
    pub fn observe(
        &mut self,
        t_ms: u64,
        value: f64,
        ms_to_limit: impl Fn(&LeakEstimate) -> Option<f64>,
    ) -> Option<LeakTransition> {
        let main = self.detector.observe(t_ms, value);
        let Some(lookout) = self.lookout.as_mut() else {
            return main;
        };
        let ahead = lookout.observe(t_ms, value);
        self.lookout_since = match (lookout.in_episode(), self.lookout_since) {
            (false, _) => None,
            (true, None) => Some(t_ms),
            (true, since) => since,
        };
        // V8 sizing its heap (read as native) breaks the hold, and is not one to report.
        self.suspect_held = match lookout.reads_heap_sizing() {
            true => None,
            false => SuspectHeld::after(self.suspect_held, lookout.current().map(|e| e.suspect), t_ms),
        };
        match main {
            // Confirmed: the episode is the detector's from now on, reported once already if the
            // look-out saw it first.
            Some(LeakTransition::Started(e)) => {
                let reported = std::mem::replace(&mut self.early, false);
                self.silenced = !reported && t_ms < self.quiet_until;
                return (!reported && !self.silenced).then_some(LeakTransition::Started(e));
            }
            Some(ended) => {
                // A look-out episode running since before this end must last anew before it
                // reports the same growth again (else a leak that stopped flaps back at once).
                if self.lookout_since.is_some() {
                    self.lookout_since = Some(t_ms);
                }
                return (!std::mem::replace(&mut self.silenced, false)).then_some(ended);
            }
            // A silenced episode still lets the look-out speak: the growth may have come back.
            None if self.detector.in_episode() && !self.silenced => return None,
            None => {}
        }
        let window = self.detector.config().window_ms;
        if self.early {
            // Only the look-out holds the episode: it ends with the look-out's.
            if let Some(LeakTransition::Ended(e)) = ahead {
                self.early = false;
                self.quiet_until = t_ms + window;
                return Some(LeakTransition::Ended(e));
            }
            return None;
        }
        let estimate = lookout.current()?;
        let lasted = t_ms.saturating_sub(self.lookout_since?);
        // A suspect the look-out cannot tell yet is often one it tells a few evaluations on
        // (at 1 s sampling a minute holds few heap readings): it waits for one, and for it to
        // hold (`suspect_held` never holds `Unknown`).
        let held = self
            .suspect_held
            .is_some_and(|h| h.suspect == estimate.suspect && h.ms >= LOOKOUT_SUSPECT_HOLDS_MS);
        if lasted >= LOOKOUT_PERSISTS_MS
            && held
            && ms_to_limit(estimate).is_some_and(|ms| ms <= window as f64)
        {
            // A silenced episode of the detector's becomes the one reported (its end will be);
            // else the look-out holds it until the detector confirms.
            self.early = !std::mem::replace(&mut self.silenced, false);
            return Some(LeakTransition::Started(estimate.clone()));
        }
        None
    }

    /// V8 heap figures after a GC, to both detectors ([`LeakDetector::observe_heap`]).
    pub fn observe_heap(&mut self, t_ms: u64, heap_used: f64, heap_total: f64, external: f64, full_gc: bool) {
        self.detector
            .observe_heap(t_ms, heap_used, heap_total, external, full_gc);
        if let Some(l) = self.lookout.as_mut() {
            l.observe_heap(t_ms, heap_used, heap_total, external, full_gc);
        }
    }

    /// The process's own RSS when the metric covers its children ([`LeakDetector::observe_own`]).
    pub fn observe_own(&mut self, t_ms: u64, own: f64) {
        self.detector.observe_own(t_ms, own);
        if let Some(l) = self.lookout.as_mut() {
            l.observe_own(t_ms, own);
        }
    }

    /// The latest estimate of the episode in progress: the detector's once it confirmed it, the
    /// look-out's before; else None.
    pub fn current(&self) -> Option<&LeakEstimate> {
        if self.early {
            return self.lookout.as_ref()?.current();
        }
        self.detector.current().filter(|_| !self.silenced)
    }

    /// Whether an episode is in progress, as reported (a silenced one is not).
    pub fn in_episode(&self) -> bool {
        self.early || (self.detector.in_episode() && !self.silenced)
    }

    /// The configured detector's configuration (the look-out differs only by its window).
    pub fn config(&self) -> &LeakConfig {
        self.detector.config()
    }
}
