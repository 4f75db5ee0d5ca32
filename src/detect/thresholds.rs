//! Threshold rules with hysteresis: `'up'` once when the value rises above `above`, then
//! re-armed and `'down'` once it falls below `above - hysteresis`. The gap keeps a value that
//! hovers at the line from firing on every tick.

use std::collections::BTreeMap;

use crate::sample::{Metric, Sample};

/// What a rule watches: a figure of the sample, or each child's RSS on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Sample(Metric),
    /// `'child.rss'`: every watched child is judged separately, with its own up/down state.
    ChildRss,
}

impl Watched {
    pub fn name(self) -> &'static str {
        match self {
            Watched::Sample(m) => m.name(),
            Watched::ChildRss => "child.rss",
        }
    }

    pub fn from_name(name: &str) -> Option<Watched> {
        if name == "child.rss" {
            Some(Watched::ChildRss)
        } else {
            Metric::from_name(name).map(Watched::Sample)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    pub name: String,
    pub metric: Watched,
    /// Bytes.
    pub above: u64,
    /// Bytes; `down` fires below `above - hysteresis`.
    pub hysteresis: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// Index of the rule in the detector.
    pub rule: usize,
    pub value: u64,
    pub direction: Direction,
    /// For a `child.rss` rule: the child's pid and command name.
    pub child: Option<(u32, String)>,
}

/// One rule's state now, or for a `child.rss` rule one child's: what `thresholdStates()` and the
/// exporters read, so that none of them rebuilds it from events.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleState {
    /// Index of the rule in the detector.
    pub rule: usize,
    /// Between an `up` and its `down`.
    pub active: bool,
    /// The value last judged; `None` before the metric had one.
    pub value: Option<u64>,
    /// For a `child.rss` rule: the child.
    pub pid: Option<u32>,
}

/// A watched child as a `child.rss` rule last judged it.
#[derive(Debug, Clone, Copy)]
struct ChildState {
    value: u64,
    above: bool,
}

#[derive(Debug)]
pub struct ThresholdDetector {
    rules: Vec<ThresholdRule>,
    /// Per rule: true while the value is above (an `up` fired and no `down` yet).
    above: Vec<bool>,
    /// Per rule: the value last judged (for a `child.rss` rule, unused).
    values: Vec<Option<u64>>,
    /// Per `child.rss` rule: the children of the newest sample that had a value, by pid. A child
    /// that is gone is forgotten, so a new process reusing its pid starts below.
    children: Vec<BTreeMap<u32, ChildState>>,
}

impl ThresholdDetector {
    pub fn new(rules: Vec<ThresholdRule>) -> Self {
        let above = vec![false; rules.len()];
        let values = vec![None; rules.len()];
        let children = vec![BTreeMap::new(); rules.len()];
        ThresholdDetector {
            rules,
            above,
            values,
            children,
        }
    }

    pub fn rules(&self) -> &[ThresholdRule] {
        &self.rules
    }

    /// Whether each rule is currently past its line; a `child.rss` rule is past it while any
    /// child is.
    pub fn active(&self) -> &[bool] {
        &self.above
    }

    /// Every rule's state in rule order; a `child.rss` rule gives one per child instead (by pid),
    /// and none while no child has a value.
    pub fn states(&self) -> Vec<RuleState> {
        let mut out = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.metric {
                Watched::Sample(_) => out.push(RuleState {
                    rule: i,
                    active: self.above[i],
                    value: self.values[i],
                    pid: None,
                }),
                Watched::ChildRss => out.extend(self.children[i].iter().map(|(pid, c)| RuleState {
                    rule: i,
                    active: c.above,
                    value: Some(c.value),
                    pid: Some(*pid),
                })),
            }
        }
        out
    }

    /// Checks every rule against `sample`; a metric that is `None` this tick changes nothing.
    pub fn observe(&mut self, sample: &Sample, out: &mut Vec<Crossing>) {
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.metric {
                Watched::Sample(metric) => {
                    let Some(value) = sample.metric(metric) else {
                        continue;
                    };
                    self.values[i] = Some(value);
                    if let Some(direction) = cross(&mut self.above[i], value, rule) {
                        out.push(Crossing {
                            rule: i,
                            value,
                            direction,
                            child: None,
                        });
                    }
                }
                Watched::ChildRss => {
                    let Some(children) = sample.children.as_ref() else {
                        continue;
                    };
                    let states = &mut self.children[i];
                    states.retain(|pid, _| children.iter().any(|c| c.pid == *pid));
                    for child in children {
                        let Some(value) = child.rss else {
                            continue;
                        };
                        let mut above = states.get(&child.pid).is_some_and(|c| c.above);
                        if let Some(direction) = cross(&mut above, value, rule) {
                            out.push(Crossing {
                                rule: i,
                                value,
                                direction,
                                child: Some((child.pid, child.comm.clone())),
                            });
                        }
                        states.insert(child.pid, ChildState { value, above });
                    }
                    self.above[i] = states.values().any(|c| c.above);
                }
            }
        }
    }
}

/// One step of the hysteresis state machine; returns the crossing, if any.
fn cross(above: &mut bool, value: u64, rule: &ThresholdRule) -> Option<Direction> {
    if !*above && value > rule.above {
        *above = true;
        Some(Direction::Up)
    } else if *above && value < rule.above.saturating_sub(rule.hysteresis) {
        *above = false;
        Some(Direction::Down)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn rss(v: u64) -> Sample {
        Sample {
            rss: Some(v),
            ..Sample::default()
        }
    }

    fn run(det: &mut ThresholdDetector, values: &[Option<u64>]) -> Vec<(usize, Direction)> {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (tick, v) in values.iter().enumerate() {
            out.clear();
            det.observe(
                &Sample {
                    rss: *v,
                    ..Sample::default()
                },
                &mut out,
            );
            events.extend(out.iter().map(|c| (tick, c.direction)));
        }
        events
    }

    fn rule(above: u64, hysteresis: u64) -> ThresholdRule {
        ThresholdRule {
            name: "warn".into(),
            metric: Watched::Sample(Metric::Rss),
            above,
            hysteresis,
        }
    }

    #[test]
    fn a_child_rss_rule_judges_each_child_and_forgets_exited_ones() {
        use crate::children::ChildSample;
        let child = |pid: u32, rss: u64| ChildSample {
            pid,
            comm: format!("c{pid}"),
            rss: Some(rss * MIB),
            ..ChildSample::default()
        };
        let mut det = ThresholdDetector::new(vec![ThresholdRule {
            name: "kid".into(),
            metric: Watched::ChildRss,
            above: 300 * MIB,
            hysteresis: 10 * MIB,
        }]);
        let mut out = Vec::new();
        let mut step = |children: Vec<ChildSample>, out: &mut Vec<Crossing>| {
            out.clear();
            det.observe(
                &Sample {
                    children: Some(children),
                    ..Sample::default()
                },
                out,
            );
            out.iter()
                .map(|c| (c.child.clone().unwrap().0, c.direction))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            step(vec![child(1, 100), child(2, 400)], &mut out),
            vec![(2, Direction::Up)]
        );
        assert_eq!(
            step(vec![child(1, 350), child(2, 400)], &mut out),
            vec![(1, Direction::Up)]
        );
        assert_eq!(out[0].child.as_ref().unwrap().1, "c1");
        assert_eq!(
            step(vec![child(1, 200), child(2, 295)], &mut out),
            vec![(1, Direction::Down)]
        );
        assert_eq!(
            step(vec![child(1, 200), child(2, 280)], &mut out),
            vec![(2, Direction::Down)]
        );
        assert_eq!(step(vec![child(2, 400)], &mut out), vec![(2, Direction::Up)]);
        // pid 2 exits while above; a new process with that pid starts below and fires again.
        assert!(step(vec![], &mut out).is_empty());
        assert_eq!(step(vec![child(2, 400)], &mut out), vec![(2, Direction::Up)]);
    }

    #[test]
    fn a_child_rss_rule_has_a_state_per_child_and_the_others_one_each() {
        use crate::children::ChildSample;
        let child = |pid: u32, rss: u64| ChildSample {
            pid,
            rss: Some(rss * MIB),
            ..ChildSample::default()
        };
        let kid = ThresholdRule {
            name: "kid".into(),
            metric: Watched::ChildRss,
            above: 300 * MIB,
            hysteresis: 10 * MIB,
        };
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 0), kid]);
        let state = |rule, active, value: u64, pid| RuleState {
            rule,
            active,
            value: Some(value * MIB),
            pid,
        };
        assert_eq!(
            det.states(),
            vec![RuleState {
                rule: 0,
                active: false,
                value: None,
                pid: None
            }],
            "before any sample: the plain rule, no child yet"
        );
        let mut out = Vec::new();
        let sample = |rss: u64, children| Sample {
            rss: Some(rss * MIB),
            children: Some(children),
            ..Sample::default()
        };
        det.observe(&sample(150, vec![child(7, 400), child(3, 100)]), &mut out);
        assert_eq!(
            det.states(),
            vec![
                state(0, true, 150, None),
                state(1, false, 100, Some(3)),
                state(1, true, 400, Some(7)),
            ]
        );
        assert_eq!(det.active(), &[true, true]);
        det.observe(&sample(50, vec![child(3, 100)]), &mut out);
        assert_eq!(
            det.states(),
            vec![state(0, false, 50, None), state(1, false, 100, Some(3))],
            "an exited child's state goes with it"
        );
        assert_eq!(det.active(), &[false, false]);
    }

    #[test]
    fn fires_up_once_and_down_once_below_the_hysteresis_band() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 10 * MIB)]);
        let v = |m: u64| Some(m * MIB);
        let events = run(
            &mut det,
            &[v(90), v(101), v(120), v(95), v(91), v(89), v(80), v(101)],
        );
        assert_eq!(
            events,
            vec![(1, Direction::Up), (5, Direction::Down), (7, Direction::Up)]
        );
    }

    #[test]
    fn hovering_at_the_line_fires_once() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 5 * MIB)]);
        let values: Vec<_> = (0..50).map(|i| Some((99 + (i % 3)) * MIB)).collect();
        assert_eq!(run(&mut det, &values).len(), 1);
    }

    #[test]
    fn a_failed_read_neither_fires_nor_rearms() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 0)]);
        let events = run(&mut det, &[Some(101 * MIB), None, Some(101 * MIB), None]);
        assert_eq!(events, vec![(0, Direction::Up)]);
        assert_eq!(det.active(), &[true]);
        assert_eq!(
            det.states(),
            vec![RuleState {
                rule: 0,
                active: true,
                value: Some(101 * MIB),
                pid: None
            }]
        );
    }

    #[test]
    fn rules_are_independent() {
        let mut det = ThresholdDetector::new(vec![rule(100 * MIB, 0), rule(200 * MIB, 0)]);
        let mut out = Vec::new();
        det.observe(&rss(150 * MIB), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, 0);
        out.clear();
        det.observe(&rss(250 * MIB), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rule, 1);
    }
}
