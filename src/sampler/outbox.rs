//! The outbox: what the sampler may put on the queue to JS, so that a blocked event loop cannot
//! make that queue grow without limit. Knows nothing of napi: the binding hands `send` an event
//! and a way to queue a token for it, and calls `deliver` with the token when it comes off the
//! queue on the JS thread.
//!
//! - The events themselves stay here, and the queue to JS carries only their [`Lane`]: a
//!   token that owns nothing. When a worker is terminated, napi-rs hands each token still queued
//!   to a callback with no env and never frees it; a token holds no sample, so what such a
//!   termination loses is a few bytes per queued event, and the events are freed with the
//!   outbox.
//! - Samples are coalesced: the newest waits in one slot, with at most one token queued for it,
//!   and that token delivers whatever sample is newest when JS gets to it. The history keeps
//!   every tick, so nothing is lost that `history()` cannot give back.
//! - Threshold and leak events are kept up to [`DETECTOR_CAP`] in flight; child, OOM and error
//!   events up to [`OTHER_CAP`]. Past a cap an event is dropped and counted.
//! - Past [`FULL_SAMPLES_QUEUED`] events in flight, an event's `sample` goes without its
//!   per-child list (the sums stay, as in the history): a `child.rss` crossing otherwise holds a
//!   whole sample with up to 1024 children for as long as the event loop is blocked.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::children::MAX_CHILDREN;
use crate::sample::Sample;
use crate::sampler::Event;

/// Threshold, leak and leak-end events in flight, at most. One tick can cross a `child.rss` rule
/// for each of 1024 children; a few such rules fit, and a blocked loop rarely adds more, since
/// each rule crosses down (by its hysteresis) before it can cross up again.
pub const DETECTOR_CAP: usize = 4 * MAX_CHILDREN;
/// Child, OOM and error events in flight, at most: every tracked child exiting and as many new
/// ones appearing within one tick still fit.
pub const OTHER_CAP: usize = 2 * MAX_CHILDREN;
/// Events in flight past which a queued event's sample loses its per-child list.
pub const FULL_SAMPLES_QUEUED: usize = 16;

/// Which limit an event counts against; also the token queued to JS for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Sample,
    Detector,
    Other,
}

impl Lane {
    pub fn of(event: &Event) -> Lane {
        match event {
            Event::Sample(_) => Lane::Sample,
            Event::Threshold { .. } | Event::Leak { .. } => Lane::Detector,
            Event::Child(_) | Event::Oom { .. } | Event::Error { .. } => Lane::Other,
        }
    }

    fn cap(self) -> usize {
        match self {
            Lane::Sample => 1,
            Lane::Detector => DETECTOR_CAP,
            Lane::Other => OTHER_CAP,
        }
    }
}

#[derive(Debug, Default)]
pub struct Outbox {
    /// The newest undelivered sample; `Some` exactly while a token for it is queued.
    newest_sample: Mutex<Option<Arc<Sample>>>,
    /// Threshold, leak, child, OOM and error events, in the order their tokens were queued.
    queued: Mutex<VecDeque<Event>>,
    detector: AtomicUsize,
    other: AtomicUsize,
    dropped: AtomicU64,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// On the sampler thread: keeps `event` and calls `enqueue` with the token to queue for it,
    /// unless it is a sample coalesced into the one already queued, or over its cap (counted as
    /// dropped). If `enqueue` fails (Node is tearing the queue down), the event is let go. The
    /// event and its token go in under one lock, so tokens and events keep one order even with
    /// a stopped thread's last tick racing the next one's. Never waits for JS.
    pub fn send(&self, event: Event, enqueue: impl FnOnce(Lane) -> bool) {
        let lane = Lane::of(&event);
        if let Event::Sample(s) = event {
            let mut slot = self.slot();
            if slot.replace(s).is_none() && !enqueue(lane) {
                *slot = None;
            }
            return;
        }
        let in_flight = self.in_flight();
        let admitted = self
            .counter(lane)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < lane.cap()).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let event = if in_flight >= FULL_SAMPLES_QUEUED {
            without_children(event)
        } else {
            event
        };
        let mut queued = self.queue();
        queued.push_back(event);
        if !enqueue(lane) {
            queued.pop_back();
            self.release(lane);
        }
    }

    /// On the JS thread: a token came off the queue; returns the event to hand to JS (for a
    /// sample, the newest one). `None` only if the token was not `send`'s.
    pub fn deliver(&self, token: Lane) -> Option<Event> {
        if token == Lane::Sample {
            return self.slot().take().map(Event::Sample);
        }
        let event = self.queue().pop_front()?;
        let lane = Lane::of(&event);
        debug_assert_eq!(lane, token, "tokens and events in one order");
        self.release(lane);
        Some(event)
    }

    /// Events dropped over their cap so far (coalesced samples are not counted: the history
    /// has them).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Threshold, leak, child, OOM and error events queued and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.detector.load(Ordering::Acquire) + self.other.load(Ordering::Acquire)
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Sample>>> {
        self.newest_sample.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Event>> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counter(&self, lane: Lane) -> &AtomicUsize {
        match lane {
            Lane::Detector => &self.detector,
            _ => &self.other,
        }
    }

    fn release(&self, lane: Lane) {
        let _ = self
            .counter(lane)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

fn light(sample: &mut Arc<Sample>) {
    if sample.children.is_some() {
        *sample = Arc::new(sample.without_children());
    }
}

fn without_children(mut event: Event) -> Event {
    match &mut event {
        Event::Threshold { sample, .. } | Event::Leak { sample, .. } | Event::Oom { sample } => light(sample),
        Event::Sample(_) | Event::Child(_) | Event::Error { .. } => {}
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::{ChildChange, ChildSample};
    use crate::detect::thresholds::Direction;

    fn sample(time: f64, children: usize) -> Arc<Sample> {
        Arc::new(Sample {
            time,
            rss: Some(1),
            children_rss: Some(children as u64),
            children: Some(
                (0..children)
                    .map(|i| ChildSample {
                        pid: i as u32,
                        ..ChildSample::default()
                    })
                    .collect(),
            ),
            ..Sample::default()
        })
    }

    fn threshold(name: &str, direction: Direction, sample: Arc<Sample>) -> Event {
        Event::Threshold {
            name: name.into(),
            metric: "child.rss",
            child: Some((7, "worker".into())),
            threshold: 10,
            value: 11,
            direction,
            sample,
        }
    }

    fn spawn(pid: u32) -> Event {
        Event::Child(ChildChange::Spawn {
            pid,
            ppid: 1,
            comm: "sh".into(),
        })
    }

    fn time(e: &Event) -> f64 {
        match e {
            Event::Sample(s) => s.time,
            other => panic!("not a sample: {other:?}"),
        }
    }

    /// `send` with a queue that takes every token: the token queued, if any.
    fn admit(out: &Outbox, event: Event) -> Option<Lane> {
        let mut token = None;
        out.send(event, |lane| {
            token = Some(lane);
            true
        });
        token
    }

    /// The event a token delivers.
    fn deliver(out: &Outbox, token: Lane) -> Event {
        out.deliver(token)
            .expect("a token that send queued delivers an event")
    }

    #[test]
    fn samples_coalesce_into_one_queued_token_that_delivers_the_newest() {
        let out = Outbox::new();
        let queued: Vec<Lane> = (0..300)
            .filter_map(|i| admit(&out, Event::Sample(sample(f64::from(i), 0))))
            .collect();
        assert_eq!(queued, [Lane::Sample], "300 ticks while JS is blocked: one token");
        assert_eq!(time(&deliver(&out, queued[0])), 299.0, "JS gets the newest");
        assert_eq!(out.dropped(), 0, "coalescing is not dropping");

        // Delivered: the next sample is queued again, and delivers itself.
        let next = admit(&out, Event::Sample(sample(300.0, 0))).expect("queued");
        assert_eq!(time(&deliver(&out, next)), 300.0);
    }

    #[test]
    fn an_event_the_queue_refuses_is_let_go_and_does_not_block_the_next() {
        let out = Outbox::new();
        let s = sample(1.0, 0);
        out.send(Event::Sample(s.clone()), |_| false);
        out.send(threshold("r", Direction::Up, s.clone()), |_| false);
        assert_eq!(Arc::strong_count(&s), 1, "nothing kept for a refused token");
        assert_eq!((out.in_flight(), out.dropped()), (0, 0));
        assert!(admit(&out, Event::Sample(sample(2.0, 0))).is_some());
        // Refused behind one already queued: the queued one stays, and stays first.
        let first = admit(&out, threshold("first", Direction::Up, s.clone())).expect("queued");
        out.send(spawn(9), |_| false);
        let token = admit(&out, threshold("next", Direction::Down, s)).expect("queued");
        assert_eq!(out.in_flight(), 2);
        assert!(matches!(deliver(&out, first), Event::Threshold { name, .. } if name == "first"));
        assert!(matches!(deliver(&out, token), Event::Threshold { name, .. } if name == "next"));
        assert_eq!(out.in_flight(), 0);
    }

    #[test]
    fn tokens_own_nothing_the_outbox_frees_what_was_never_delivered() {
        // A worker terminated with its event loop blocked: napi-rs never frees the tokens still
        // queued, so they must hold no sample; the events go with the outbox.
        let out = Outbox::new();
        let s = sample(1.0, 1024);
        let tokens: Vec<Lane> = (0..50)
            .filter_map(|i| admit(&out, threshold(&format!("r{i}"), Direction::Up, s.clone())))
            .chain(admit(&out, Event::Sample(s.clone())))
            .collect();
        assert_eq!(tokens.len(), 51);
        assert_eq!(std::mem::size_of::<Lane>(), 1);
        assert!(Arc::strong_count(&s) > 1, "the outbox holds the events");
        drop(out);
        assert_eq!(Arc::strong_count(&s), 1, "freed with the outbox");
    }

    #[test]
    fn detector_events_are_kept_in_order_up_to_their_cap_then_counted_as_dropped() {
        let out = Outbox::new();
        let s = sample(1.0, 0);
        let mut queued = Vec::new();
        for i in 0..DETECTOR_CAP + 5 {
            let dir = if i % 2 == 0 {
                Direction::Up
            } else {
                Direction::Down
            };
            queued.extend(admit(&out, threshold(&format!("r{i}"), dir, s.clone())));
        }
        assert_eq!(queued.len(), DETECTOR_CAP);
        assert_eq!(out.dropped(), 5);
        // Samples and other events have lanes of their own: a full detector lane stops neither.
        assert!(admit(&out, Event::Sample(sample(2.0, 0))).is_some());
        let child = admit(&out, spawn(1)).expect("queued");

        let names: Vec<String> = queued
            .into_iter()
            .map(|token| match deliver(&out, token) {
                Event::Threshold { name, .. } => name,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..DETECTOR_CAP).map(|i| format!("r{i}")).collect();
        assert_eq!(names, expected, "kept in the order they happened");
        assert_eq!(out.in_flight(), 1, "the child event is still queued");
        assert!(matches!(deliver(&out, child), Event::Child(_)));
        assert!(
            admit(&out, threshold("again", Direction::Up, s)).is_some(),
            "room again"
        );
    }

    #[test]
    fn child_oom_and_error_events_share_a_smaller_cap() {
        let out = Outbox::new();
        let admitted = (0..OTHER_CAP as u32 + 10)
            .filter_map(|pid| admit(&out, spawn(pid)))
            .count();
        assert_eq!(admitted, OTHER_CAP);
        const { assert!(OTHER_CAP < DETECTOR_CAP) };
        let oom = Event::Oom {
            sample: sample(1.0, 0),
        };
        let error = Event::Error {
            code: "EIO",
            message: "x".into(),
            path: None,
        };
        assert!(admit(&out, oom).is_none());
        assert!(admit(&out, error).is_none());
        assert_eq!(out.dropped(), 12);
        assert!(admit(&out, threshold("kept", Direction::Up, sample(1.0, 0))).is_some());
    }

    #[test]
    fn a_backlog_holds_full_samples_only_for_its_first_events() {
        let out = Outbox::new();
        // Each crossing from its own tick, each tick with 1024 children: a flapping rule while
        // the event loop is blocked.
        let tokens: Vec<Lane> = (0..100)
            .filter_map(|i| admit(&out, threshold("c", Direction::Up, sample(f64::from(i), 1024))))
            .collect();
        let queued: Vec<Event> = tokens.into_iter().map(|t| deliver(&out, t)).collect();
        let with_children: Vec<bool> = queued
            .iter()
            .map(|e| match e {
                Event::Threshold { sample, .. } => sample.children.is_some(),
                _ => unreachable!(),
            })
            .collect();
        assert!(with_children[..FULL_SAMPLES_QUEUED].iter().all(|&c| c));
        assert!(with_children[FULL_SAMPLES_QUEUED..].iter().all(|&c| !c));
        let Event::Threshold { sample: last, .. } = &queued[99] else {
            unreachable!()
        };
        assert_eq!(
            (last.time, last.children_rss),
            (99.0, Some(1024)),
            "the sums stay"
        );

        // Once JS has caught up, events carry the whole sample again.
        let token = admit(&out, threshold("c", Direction::Up, sample(100.0, 1024))).expect("queued");
        let Event::Threshold { sample, .. } = deliver(&out, token) else {
            panic!("not a threshold event")
        };
        assert_eq!(sample.children.as_ref().map(Vec::len), Some(1024));
    }
}
