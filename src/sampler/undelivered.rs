//! Child changes a reading saw but could not hand out (a `snapshot()` between ticks), kept for the
//! next tick, within a bound. What goes when it is full keeps what is delivered consistent:
//! - a child that came and went goes whole, its spawn and its exit;
//! - else the oldest spawn goes, and its exit is dropped when it comes, here or in a tick's own
//!   changes;
//! - an exit alone is never dropped: a child delivered as alive must be delivered as gone. Exits
//!   may go past the bound, as many as there are children.

use std::collections::{HashMap, HashSet};

use crate::children::ChildChange;

/// The undelivered changes and the pids whose spawn was dropped.
#[derive(Debug)]
pub struct Undelivered {
    kept: Vec<ChildChange>,
    /// Children whose spawn was dropped: their exit is dropped too. Emptied at each exit, so it
    /// holds live children only, at most the `MAX_CHILDREN` tracked.
    dropped: HashSet<u32>,
    max: usize,
}

fn exit_pid(change: &ChildChange) -> Option<u32> {
    match change {
        ChildChange::Exit { pid, .. } => Some(*pid),
        ChildChange::Spawn { .. } => None,
    }
}

fn spawn_pid(change: &ChildChange) -> Option<u32> {
    match change {
        ChildChange::Spawn { pid, .. } => Some(*pid),
        ChildChange::Exit { .. } => None,
    }
}

impl Undelivered {
    pub fn new(max: usize) -> Undelivered {
        Undelivered {
            kept: Vec::new(),
            dropped: HashSet::new(),
            max,
        }
    }

    /// Keeps `change`, or drops it as the module documentation says.
    pub fn push(&mut self, change: ChildChange) {
        if let Some(pid) = exit_pid(&change) {
            if self.dropped.remove(&pid) {
                return;
            }
            if self.kept.len() >= self.max {
                // Its spawn is still here: the child came and went, and goes whole.
                if let Some(i) = self.kept.iter().rposition(|c| spawn_pid(c) == Some(pid)) {
                    self.kept.remove(i);
                    return;
                }
                self.evict();
            }
            self.kept.push(change);
            return;
        }
        if self.kept.len() >= self.max && !self.evict() {
            // Nothing but exits kept: this spawn is the one to go.
            if let Some(pid) = spawn_pid(&change) {
                self.dropped.insert(pid);
            }
            return;
        }
        self.kept.push(change);
    }

    /// Makes room for one: a whole child if there is one, else the oldest spawn. False when only
    /// exits are kept.
    fn evict(&mut self) -> bool {
        // The last exit of each pid: a spawn before it is the same child (a pid reused after an
        // exit spawns after it).
        let last_exit: HashMap<u32, usize> = self
            .kept
            .iter()
            .enumerate()
            .filter_map(|(i, c)| exit_pid(c).map(|pid| (pid, i)))
            .collect();
        let whole = self.kept.iter().enumerate().find_map(|(i, c)| {
            let pid = spawn_pid(c)?;
            let exit = *last_exit.get(&pid)?;
            // Its own exit: the first of that pid after the spawn.
            let own = (i + 1..=exit).find(|&j| exit_pid(&self.kept[j]) == Some(pid))?;
            Some((i, own))
        });
        if let Some((spawn, exit)) = whole {
            self.kept.remove(exit);
            self.kept.remove(spawn);
            return true;
        }
        match self.kept.iter().position(|c| spawn_pid(c).is_some()) {
            Some(i) => {
                if let Some(pid) = spawn_pid(&self.kept.remove(i)) {
                    self.dropped.insert(pid);
                }
                true
            }
            None => false,
        }
    }

    /// Hands the kept changes to `changes` (a tick), oldest first.
    pub fn take_into(&mut self, changes: &mut Vec<ChildChange>) {
        changes.append(&mut self.kept);
    }

    /// Drops, from a tick's own changes (`changes[own_from..]`; those before are the kept ones,
    /// already filtered, and one may be an older child's exit under the same pid), the exits of
    /// children whose spawn was dropped here.
    pub fn drop_exits_of_dropped(&mut self, changes: &mut Vec<ChildChange>, own_from: usize) {
        if self.dropped.is_empty() || own_from >= changes.len() {
            return;
        }
        let mut own = changes.split_off(own_from);
        own.retain(|c| !exit_pid(c).is_some_and(|pid| self.dropped.remove(&pid)));
        changes.append(&mut own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(pid: u32) -> ChildChange {
        ChildChange::Spawn {
            pid,
            ppid: 1,
            comm: "c".into(),
        }
    }

    fn exit(pid: u32) -> ChildChange {
        ChildChange::Exit {
            pid,
            ppid: 1,
            comm: "c".into(),
            last_rss: None,
            seen_ms: 0,
        }
    }

    fn pids(changes: &[ChildChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                ChildChange::Spawn { pid, .. } => format!("+{pid}"),
                ChildChange::Exit { pid, .. } => format!("-{pid}"),
            })
            .collect()
    }

    fn pushed(max: usize, changes: impl IntoIterator<Item = ChildChange>) -> Undelivered {
        let mut u = Undelivered::new(max);
        for c in changes {
            u.push(c);
        }
        u
    }

    #[test]
    fn when_full_a_child_that_came_and_went_goes_whole() {
        // The incoming exit's own spawn is here.
        let u = pushed(3, [spawn(1), exit(9), spawn(2), exit(2)]);
        assert_eq!(pids(&u.kept), ["+1", "-9"]);
        // A whole child already kept makes room for a new spawn.
        let u = pushed(3, [spawn(1), spawn(2), exit(2), spawn(3)]);
        assert_eq!(pids(&u.kept), ["+1", "+3"]);
    }

    #[test]
    fn when_full_the_oldest_spawn_goes_and_later_its_exit() {
        let mut u = pushed(3, [exit(9), spawn(1), spawn(2), spawn(3)]);
        assert_eq!(pids(&u.kept), ["-9", "+2", "+3"]);
        // Child 1's exit, here or in a tick's own changes, goes too.
        u.push(exit(1));
        assert_eq!(pids(&u.kept), ["-9", "+2", "+3"]);
        let mut u = pushed(3, [exit(9), spawn(1), spawn(2), spawn(3)]);
        let mut tick = Vec::new();
        u.take_into(&mut tick);
        let own_from = tick.len();
        tick.extend([exit(1), exit(2), spawn(4)]);
        u.drop_exits_of_dropped(&mut tick, own_from);
        assert_eq!(pids(&tick), ["-9", "+2", "+3", "-2", "+4"]);
        // Once its exit was dropped, a reused pid 1 is a new child.
        u.push(spawn(1));
        u.push(exit(1));
        assert_eq!(pids(&u.kept), ["+1", "-1"]);
    }

    #[test]
    fn a_kept_exit_of_an_older_child_is_not_taken_for_a_dropped_spawns() {
        // Child 1 was delivered as alive; it exited, and a new child took pid 1. Full, the new
        // child's spawn goes: the old one's exit, kept, must still be delivered.
        let mut u = pushed(3, [exit(1), spawn(1), spawn(2), spawn(3)]);
        assert_eq!(pids(&u.kept), ["-1", "+2", "+3"]);
        let mut tick = Vec::new();
        u.take_into(&mut tick);
        let own_from = tick.len();
        u.drop_exits_of_dropped(&mut tick, own_from);
        assert_eq!(pids(&tick), ["-1", "+2", "+3"]);
        // The new child's exit, when it comes in a tick, goes with its spawn.
        let mut next = vec![exit(1)];
        u.drop_exits_of_dropped(&mut next, 0);
        assert!(next.is_empty());
    }

    #[test]
    fn an_exit_alone_is_never_dropped() {
        // Children delivered as alive before: their exits are kept past the bound.
        let u = pushed(2, [exit(1), exit(2), exit(3), exit(4)]);
        assert_eq!(pids(&u.kept), ["-1", "-2", "-3", "-4"]);
        // A spawn then has no room, and goes (with its exit later).
        let mut u = pushed(2, [exit(1), exit(2), spawn(5)]);
        assert_eq!(pids(&u.kept), ["-1", "-2"]);
        u.push(exit(5));
        assert_eq!(pids(&u.kept), ["-1", "-2"]);
        // A full buffer with spawns in it gives one up for an exit.
        let u = pushed(2, [spawn(1), spawn(2), exit(7)]);
        assert_eq!(pids(&u.kept), ["+2", "-7"]);
    }

    #[test]
    fn a_reused_pid_pairs_with_its_own_exit() {
        // pid 3 exited (a child delivered before), then a new child took pid 3 and exited.
        let u = pushed(4, [exit(3), spawn(3), exit(3), spawn(8), spawn(9)]);
        // Full: the whole child is the new pid 3, after the old exit.
        assert_eq!(pids(&u.kept), ["-3", "+8", "+9"]);
    }
}
