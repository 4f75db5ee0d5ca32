//! Finding the memory cgroup once: the line of `/proc/<pid>/cgroup` and the mount of
//! `/proc/<pid>/mountinfo` that hold it (runs once; allocation is fine here).

use std::cmp::Reverse;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::formats::lines;
use super::CgroupVersion;

pub(super) fn path_from_bytes(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

/// The memory cgroup line of `/proc/<pid>/cgroup`: v1 `N:...memory...:/path` wins over the v2
/// `0::/path` line.
pub(super) fn find_memory_cgroup(b: &[u8]) -> Option<(CgroupVersion, PathBuf)> {
    let mut v2 = None;
    for line in lines(b) {
        let mut parts = line.splitn(3, |&c| c == b':');
        let (Some(hierarchy), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !path.starts_with(b"/") {
            continue;
        }
        if controllers.split(|&c| c == b',').any(|c| c == b"memory") {
            return Some((CgroupVersion::V1, path_from_bytes(path)));
        }
        if hierarchy == b"0" && controllers.is_empty() && v2.is_none() {
            v2 = Some(path);
        }
    }
    v2.map(|p| (CgroupVersion::V2, path_from_bytes(p)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupMount {
    /// The mountinfo root field: the cgroup path shown at the mount point.
    pub(super) root: PathBuf,
    pub(super) mount_point: PathBuf,
}

/// Decodes the `\ooo` escapes mountinfo uses for space, tab, newline and backslash.
pub(super) fn unescape_mountinfo(b: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let d = &b[i + 1..i + 4];
            if matches!(d[0], b'0'..=b'3') && d[1..].iter().all(|c| matches!(c, b'0'..=b'7')) {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The mounts that can hold the memory cgroup: `cgroup` with the `memory` super option (v1) or
/// `cgroup2` (v2), in mountinfo order. Malformed lines are skipped.
pub(super) fn cgroup_mounts(b: &[u8], version: CgroupVersion) -> Vec<CgroupMount> {
    let parse_line = |line: &[u8]| -> Option<CgroupMount> {
        let mut fields = line.split(|&c| c == b' ');
        let _id = fields.next()?;
        let _parent = fields.next()?;
        let _dev = fields.next()?;
        let root = fields.next()?;
        let mount_point = fields.next()?;
        let _options = fields.next()?;
        // optional fields up to the "-" separator
        while fields.next()? != b"-" {}
        let fs_type = fields.next()?;
        let _source = fields.next()?;
        let super_options = fields.next()?;
        let wanted = match version {
            CgroupVersion::V1 => {
                fs_type == b"cgroup" && super_options.split(|&c| c == b',').any(|o| o == b"memory")
            }
            CgroupVersion::V2 => fs_type == b"cgroup2",
        };
        (wanted && root.starts_with(b"/") && !mount_point.is_empty()).then(|| CgroupMount {
            root: unescape_mountinfo(root),
            mount_point: unescape_mountinfo(mount_point),
        })
    };
    lines(b).filter_map(parse_line).collect()
}

/// `mount_point` as seen under `sys_root` (itself when None).
pub(super) fn rebase(mount_point: &Path, sys_root: Option<&Path>) -> PathBuf {
    match sys_root {
        None => mount_point.to_path_buf(),
        Some(root) => root.join(mount_point.strip_prefix("/").unwrap_or(mount_point)),
    }
}

/// The cgroup directory and the mount point it was found under: the mount whose root is the
/// longest prefix of `cg_path`, joined with the rest of the path, if that directory has
/// `usage_file`; else, if that directory exists, its nearest ancestor under that mount point that
/// has it; else the first mount point that has it. A directory without the usage file is the v2
/// root cgroup, or a cgroup whose parent did not enable the memory controller: the kernel charges
/// its memory to the nearest ancestor that has the controller, so that one is read.
pub(super) fn resolve_dir(
    cg_path: &Path,
    mounts: &[CgroupMount],
    sys_root: Option<&Path>,
    usage_file: &str,
) -> Option<(PathBuf, PathBuf)> {
    let usable = |dir: &Path| dir.join(usage_file).is_file();
    let mut ranked: Vec<(usize, &CgroupMount, Option<&Path>)> = mounts
        .iter()
        .map(|m| {
            let rel = cg_path
                .strip_prefix(&m.root)
                .ok()
                .filter(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))));
            let rank = rel.map_or(0, |_| 1 + m.root.components().count());
            (rank, m, rel)
        })
        .collect();
    ranked.sort_by_key(|&(rank, _, _)| Reverse(rank)); // stable: mountinfo order among equals
    for (_, m, rel) in &ranked {
        if let Some(rel) = rel {
            let base = rebase(&m.mount_point, sys_root);
            // The joined directory, then its parents below the mount point. A path absent under
            // the mount (runc shows the host's path) is not walked up: a parent that exists there
            // would be another cgroup of the container's (its systemd's, say), not an ancestor.
            let mut dir = if rel.as_os_str().is_empty() {
                base.clone()
            } else {
                base.join(rel)
            };
            if !dir.is_dir() {
                continue;
            }
            loop {
                if usable(&dir) {
                    return Some((dir, base));
                }
                if dir == base || !dir.pop() {
                    break;
                }
            }
        }
    }
    ranked
        .iter()
        .map(|(_, m, _)| rebase(&m.mount_point, sys_root))
        .find(|dir| usable(dir))
        .map(|dir| (dir.clone(), dir))
}

/// The directories between `dir` and `base` (the mount point, included) whose `limit_file`
/// exists, nearest first: under cgroup v2 the kernel enforces every ancestor's `memory.max`, so
/// the limit that applies is the smallest on the way up (a limit on a Kubernetes pod, a systemd
/// slice, a container whose init put the app in a sub-cgroup). The v2 root cgroup has none.
pub(super) fn limit_ancestors(dir: &Path, base: &Path, limit_file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if dir == base || !dir.starts_with(base) {
        return out;
    }
    let mut up = dir.to_path_buf();
    while up.pop() && up.starts_with(base) {
        if up.join(limit_file).is_file() {
            out.push(up.clone());
        }
        if up == base {
            break;
        }
    }
    out
}
