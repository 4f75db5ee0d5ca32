//! The outbox: what the sampler may put on the queue to JS, so that a blocked event loop cannot
//! make that queue grow without limit. Knows nothing of napi: the binding asks `admit` before it
//! queues an event and calls `deliver` when the event comes off the queue on the JS thread.
//!
//! - Samples are coalesced: the newest waits in one slot, with at most one event queued for it,
//!   and that event delivers whatever sample is newest when JS gets to it. The history keeps
//!   every tick, so nothing is lost that `history()` cannot give back.
//! - Threshold and leak events are kept up to [`DETECTOR_CAP`] in flight; child, OOM and error
//!   events up to [`OTHER_CAP`]. Past a cap an event is dropped and counted.
//! - Past [`FULL_SAMPLES_QUEUED`] events in flight, an event's `sample` goes without its
//!   per-child list (the sums stay, as in the history): a `child.rss` crossing otherwise holds a
//!   whole sample with up to 1024 children for as long as the event loop is blocked.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Which limit an event counts against.
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
    /// The newest undelivered sample; `Some` exactly while an event for it is queued.
    newest_sample: Mutex<Option<Arc<Sample>>>,
    detector: AtomicUsize,
    other: AtomicUsize,
    dropped: AtomicU64,
}

impl Outbox {
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// On the sampler thread: the event to queue now, or `None` (a sample coalesced into the
    /// one already queued, or an event over its cap, counted as dropped). Never waits for JS.
    pub fn admit(&self, event: Event) -> Option<Event> {
        let lane = Lane::of(&event);
        if let Event::Sample(s) = event {
            let was_empty = self.slot().replace(s.clone()).is_none();
            return was_empty.then_some(Event::Sample(s));
        }
        let queued = self.in_flight();
        let counter = self.counter(lane);
        let admitted = counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < lane.cap()).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(if queued >= FULL_SAMPLES_QUEUED {
            without_children(event)
        } else {
            event
        })
    }

    /// The queue refused an event that `admit` let through (Node is tearing the function down):
    /// frees its place.
    pub fn refused(&self, lane: Lane) {
        match lane {
            Lane::Sample => drop(self.slot().take()),
            _ => self.release(lane),
        }
    }

    /// On the JS thread: an admitted event came off the queue; returns what to hand to JS
    /// (for a sample, the newest one).
    pub fn deliver(&self, event: Event) -> Event {
        match event {
            Event::Sample(queued) => Event::Sample(self.slot().take().unwrap_or(queued)),
            event => {
                self.release(Lane::of(&event));
                event
            }
        }
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

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Sample>>> {
        self.newest_sample.lock().unwrap_or_else(|p| p.into_inner())
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

    #[test]
    fn samples_coalesce_into_one_queued_event_that_delivers_the_newest() {
        let out = Outbox::new();
        let queued: Vec<Event> = (0..300)
            .filter_map(|i| out.admit(Event::Sample(sample(f64::from(i), 0))))
            .collect();
        assert_eq!(queued.len(), 1, "300 ticks while JS is blocked: one queued event");
        let [marker] = <[Event; 1]>::try_from(queued).unwrap();
        assert_eq!(time(&out.deliver(marker)), 299.0, "JS gets the newest");
        assert_eq!(out.dropped(), 0, "coalescing is not dropping");

        // Delivered: the next sample is queued again, and delivers itself.
        let next = out.admit(Event::Sample(sample(300.0, 0))).expect("queued");
        assert_eq!(time(&out.deliver(next)), 300.0);
    }

    #[test]
    fn a_sample_refused_by_the_queue_does_not_block_the_next() {
        let out = Outbox::new();
        let first = out.admit(Event::Sample(sample(1.0, 0))).expect("queued");
        drop(first);
        out.refused(Lane::Sample);
        assert!(out.admit(Event::Sample(sample(2.0, 0))).is_some());
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
            queued.extend(out.admit(threshold(&format!("r{i}"), dir, s.clone())));
        }
        assert_eq!(queued.len(), DETECTOR_CAP);
        assert_eq!(out.dropped(), 5);
        // Samples and other events have lanes of their own: a full detector lane stops neither.
        assert!(out.admit(Event::Sample(sample(2.0, 0))).is_some());
        assert!(out.admit(spawn(1)).is_some());

        let names: Vec<String> = queued
            .into_iter()
            .map(|e| match out.deliver(e) {
                Event::Threshold { name, .. } => name,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..DETECTOR_CAP).map(|i| format!("r{i}")).collect();
        assert_eq!(names, expected, "kept in the order they happened");
        assert_eq!(out.in_flight(), 1, "the child event is still queued");
        assert!(
            out.admit(threshold("again", Direction::Up, s)).is_some(),
            "room again"
        );
    }

    #[test]
    fn child_oom_and_error_events_share_a_smaller_cap() {
        let out = Outbox::new();
        let admitted = (0..OTHER_CAP as u32 + 10)
            .filter_map(|pid| out.admit(spawn(pid)))
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
        assert!(out.admit(oom).is_none());
        assert!(out.admit(error).is_none());
        assert_eq!(out.dropped(), 12);
        assert!(out
            .admit(threshold("kept", Direction::Up, sample(1.0, 0)))
            .is_some());
    }

    #[test]
    fn a_backlog_holds_full_samples_only_for_its_first_events() {
        let out = Outbox::new();
        // Each crossing from its own tick, each tick with 1024 children: a flapping rule while
        // the event loop is blocked.
        let queued: Vec<Event> = (0..100)
            .filter_map(|i| out.admit(threshold("c", Direction::Up, sample(f64::from(i), 1024))))
            .collect();
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
        for e in queued {
            out.deliver(e);
        }
        let Some(Event::Threshold { sample, .. }) =
            out.admit(threshold("c", Direction::Up, sample(100.0, 1024)))
        else {
            panic!("not admitted")
        };
        assert_eq!(sample.children.as_ref().map(Vec::len), Some(1024));
    }
}
