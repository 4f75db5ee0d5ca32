//! Which children exist: by `task/<tid>/children` files or by a scan of every process's `stat`
//! (see the parent module's docs), and reconciling what was found with what is tracked.

use super::*;
use crate::procfs::proc_file::read_bounded;

impl ChildrenTracker {
    pub(super) fn discover(
        &mut self,
        mono_ms: u64,
        errors: &mut Vec<ReadError>,
        changes: &mut Vec<ChildChange>,
    ) {
        let method = *self.method.get_or_insert_with(|| {
            let pid = self.self_pid.to_string();
            let probe = self.proc_root.join(&pid).join("task").join(&pid).join("children");
            if probe.exists() {
                Method::ChildrenFiles
            } else {
                Method::Scan
            }
        });
        let (found, scan) = match method {
            Method::ChildrenFiles => (self.find_by_children_files(errors), None),
            Method::Scan => match self.find_by_scan(errors) {
                Some((found, info)) => (found, Some(info)),
                // The proc root itself could not be listed: change nothing.
                None => return,
            },
        };
        self.reconcile(mono_ms, &found, scan.as_ref(), changes);
    }

    fn find_by_children_files(&self, errors: &mut Vec<ReadError>) -> BTreeMap<u32, Candidate> {
        self.walk(|parent| {
            self.children_listed(parent, errors)
                .into_iter()
                .map(|pid| (pid, None))
                .collect()
        })
    }

    /// The descendants of our pid, breadth first (one level in Direct mode), asking `kids_of`
    /// for each parent's children: each pid is taken once, from the first parent that lists it,
    /// and each parent is asked once.
    fn walk(
        &self,
        mut kids_of: impl FnMut(u32) -> Vec<(u32, Option<(u64, String)>)>,
    ) -> BTreeMap<u32, Candidate> {
        let mut found = BTreeMap::new();
        let mut queue = vec![self.self_pid];
        let mut expanded = HashSet::from([self.self_pid]);
        while let Some(parent) = queue.pop() {
            for (pid, stat) in kids_of(parent) {
                if pid == self.self_pid || found.contains_key(&pid) {
                    continue;
                }
                found.insert(pid, Candidate { ppid: parent, stat });
                if self.mode == ChildrenMode::Tree && expanded.insert(pid) {
                    queue.push(pid);
                }
            }
        }
        found
    }

    /// The pids in `task/*/children` of `pid`, every thread's. A process or thread that exits
    /// meanwhile contributes nothing, silently.
    fn children_listed(&self, pid: u32, errors: &mut Vec<ReadError>) -> Vec<u32> {
        let task_dir = self.proc_root.join(pid.to_string()).join("task");
        let entries = match fs::read_dir(&task_dir) {
            Ok(entries) => entries,
            Err(e) => {
                if !io_gone(&e) {
                    errors.push(ReadError::io(&task_dir, &e));
                }
                return Vec::new();
            }
        };
        let mut pids = Vec::new();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            if parse_pid(name.as_encoded_bytes()).is_none() {
                continue;
            }
            let path = entry.path().join("children");
            let bytes = match read_bounded(&path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    if !io_gone(&e) {
                        errors.push(ReadError::io(&path, &e));
                    }
                    continue;
                }
            };
            for token in bytes.split(u8::is_ascii_whitespace).filter(|t| !t.is_empty()) {
                match parse_pid(token) {
                    Some(child) => pids.push(child),
                    None => errors.push(ReadError::parse(
                        &path,
                        format!("bad pid {:?}", String::from_utf8_lossy(token)),
                    )),
                }
            }
        }
        pids
    }

    /// Reads every process's `stat` once; `None` if the proc root cannot be listed.
    fn find_by_scan(&self, errors: &mut Vec<ReadError>) -> Option<(BTreeMap<u32, Candidate>, ScanInfo)> {
        let entries = match fs::read_dir(&self.proc_root) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(ReadError::io(&self.proc_root, &e));
                return None;
            }
        };
        let mut info = ScanInfo::default();
        let mut by_ppid: HashMap<u32, Vec<(u32, u64, String)>> = HashMap::new();
        let mut path = self.proc_root.clone();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = parse_pid(name.as_encoded_bytes()) else {
                continue;
            };
            path.push(&name);
            path.push("stat");
            let read = read_bounded(&path);
            path.pop();
            path.pop();
            match read.map(|bytes| stat::parse(&bytes)) {
                Ok(Ok(s)) => {
                    let ppid = to_pid(s.ppid);
                    info.stats.insert(pid, (ppid, s.start_time));
                    by_ppid.entry(ppid).or_default().push((pid, s.start_time, s.comm));
                }
                // Exited since the listing.
                Err(e) if io_gone(&e) => {}
                // Not ours to report: it may be anyone's process. Judged only if tracked.
                Err(_) | Ok(Err(_)) => {
                    info.unreadable.insert(pid);
                }
            }
        }
        let found = self.walk(|parent| {
            let kids = by_ppid.remove(&parent).unwrap_or_default();
            kids.into_iter()
                .map(|(pid, start_time, comm)| (pid, Some((start_time, comm))))
                .collect()
        });
        Some((found, info))
    }

    /// Drops tracked children that are gone or no longer ours, adopts new ones.
    fn reconcile(
        &mut self,
        mono_ms: u64,
        found: &BTreeMap<u32, Candidate>,
        scan: Option<&ScanInfo>,
        changes: &mut Vec<ChildChange>,
    ) {
        // A found pid whose start_time differs from the tracked one (scan only) is a new process.
        let reused: Vec<u32> = found
            .iter()
            .filter_map(|(pid, c)| {
                let (start_time, _) = c.stat.as_ref()?;
                let t = self.tracked.get(pid)?;
                t.start_time.is_some_and(|s| s != *start_time).then_some(*pid)
            })
            .collect();
        for pid in reused {
            self.remove(pid, mono_ms, changes);
        }

        // Tracked but not found: gone, or a listing race, or reparented away.
        let missing: Vec<u32> = self
            .tracked
            .keys()
            .filter(|p| !found.contains_key(p))
            .copied()
            .collect();
        let mut alive = Vec::new();
        for pid in missing {
            match self.verdict(pid, scan) {
                Verdict::Gone => self.remove(pid, mono_ms, changes),
                Verdict::Alive(ppid) => alive.push((pid, ppid)),
                Verdict::Unknown => {}
            }
        }
        // Judged after the removals, repeatedly, since a removal can orphan another.
        loop {
            let before = alive.len();
            let mut i = 0;
            while i < alive.len() {
                let (pid, ppid) = alive[i];
                let ours = ppid == self.self_pid
                    || (self.mode == ChildrenMode::Tree
                        && (found.contains_key(&ppid)
                            || self.tracked.contains_key(&ppid)
                            || self.ignored.contains(&ppid)));
                if ours {
                    i += 1;
                } else {
                    self.remove(pid, mono_ms, changes);
                    alive.swap_remove(i);
                }
            }
            if alive.len() == before {
                break;
            }
        }

        self.ignored.retain(|pid| found.contains_key(pid));
        for (&pid, c) in found {
            if self.tracked.contains_key(&pid) || self.ignored.contains(&pid) {
                continue;
            }
            if self.tracked.len() >= MAX_CHILDREN {
                self.ignored.insert(pid);
                self.dropped += 1;
                continue;
            }
            let comm = c.stat.as_ref().map(|(_, comm)| comm.clone()).unwrap_or_default();
            self.tracked
                .insert(pid, self.new_tracked(pid, c.ppid, comm, mono_ms));
        }
    }

    fn verdict(&self, pid: u32, scan: Option<&ScanInfo>) -> Verdict {
        let start_time = self.tracked.get(&pid).and_then(|t| t.start_time);
        let (ppid, now_start) = match scan {
            Some(info) => match info.stats.get(&pid) {
                Some(&(ppid, s)) => (ppid, s),
                None if info.unreadable.contains(&pid) => return Verdict::Unknown,
                None => return Verdict::Gone,
            },
            // A fresh open: the tracked fd would still show a deleted file's old content.
            None => {
                let path = self.proc_root.join(pid.to_string()).join("stat");
                match read_bounded(&path).map(|b| stat::parse(&b)) {
                    Ok(Ok(s)) => (to_pid(s.ppid), s.start_time),
                    Err(e) if io_gone(&e) => return Verdict::Gone,
                    Err(_) | Ok(Err(_)) => return Verdict::Unknown,
                }
            }
        };
        if start_time.is_some_and(|s| s != now_start) {
            Verdict::Gone
        } else {
            Verdict::Alive(ppid)
        }
    }
}
