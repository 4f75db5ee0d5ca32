#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from real files: this machine's /proc and cgroup files (of this
script's own process, of pid 1, of a kernel thread and of a `sleep` child) and the fixture trees
under tests/fixtures/. Run it again to refresh the seeds; files that cannot be read here (no
smaps_rollup, no cgroup v1, hidepid) are skipped. Input formats: fuzz/harness/src/lib.rs.
"""
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys

FUZZ = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(FUZZ, "..", "tests", "fixtures")
SEEDS = os.path.join(FUZZ, "seeds")
SEP = b"\xff\x00"
ABSENT = b"~"


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


written = {}


def seed(target, name, data):
    if data is None:
        return
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()
    if digest in written.setdefault(target, set()):
        return
    written[target].add(digest)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)

    child = subprocess.Popen(["sleep", "60"])
    try:
        collect(child.pid)
    finally:
        child.kill()
        child.wait()
    for target in sorted(written):
        print(f"{target}: {len(written[target])} seeds")


def kthread_pid():
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        if read(f"/proc/{pid}/statm") == b"0 0 0 0 0 0 0\n":
            return pid
    return None


def collect(sleep_pid):
    live = {"self": "self", "pid1": "1", "sleep": str(sleep_pid)}
    k = kthread_pid()
    if k:
        live["kthread"] = str(k)
    children_fixtures = sorted(glob.glob(os.path.join(FIXTURES, "children", "*", "proc")))

    # Single-file parsers.
    for name, pid in live.items():
        for f in ("statm", "stat", "status", "smaps_rollup"):
            seed(f, f"proc-{name}-{f}", read(f"/proc/{pid}/{f}"))
    for t in glob.glob("/proc/self/task/*/stat"):
        seed("stat", "proc-self-task-stat", read(t))
    for proc in children_fixtures:
        variant = os.path.basename(os.path.dirname(proc))
        for path in sorted(glob.glob(os.path.join(proc, "[0-9]*", "*"))):
            f = os.path.basename(path)
            if f in ("statm", "stat", "status", "smaps_rollup"):
                pid = os.path.basename(os.path.dirname(path))
                seed(f, f"fixture-{variant}-{pid}-{f}", read(path))
    seed("meminfo", "proc-meminfo", read("/proc/meminfo"))

    # kb_fields: "key,key" SEP file, and bare files.
    keysets = {
        "status": b"RssAnon,RssFile,RssShmem,VmSwap,VmHWM",
        "smaps_rollup": b"Pss,Private_Clean,Private_Dirty,SwapPss",
    }
    for f, keys in keysets.items():
        data = read(f"/proc/self/{f}")
        if data is not None:
            seed("kb_fields", f"proc-self-{f}-keys", keys + SEP + data)
            seed("kb_fields", f"proc-self-{f}", data)
    meminfo = read("/proc/meminfo")
    if meminfo is not None:
        seed("kb_fields", "proc-meminfo-keys", b"MemTotal,MemFree,SwapTotal" + SEP + meminfo)

    # cgroup_discover: cgroup SEP mountinfo.
    cg_trees = sorted(glob.glob(os.path.join(FIXTURES, "cgroup", "*", "")))
    seed("cgroup_discover", "proc-self", (read("/proc/self/cgroup") or b"") + SEP + (read("/proc/self/mountinfo") or b""))
    for tree in cg_trees:
        name = os.path.basename(tree.rstrip("/"))
        cg = read(os.path.join(tree, "proc/self/cgroup"))
        mi = read(os.path.join(tree, "proc/self/mountinfo"))
        if cg is not None and mi is not None:
            seed("cgroup_discover", f"fixture-{name}", cg + SEP + mi)

    # cgroup_read: flags, then memory files of a cgroup folder, then the system PSI file.
    v2_files = ["memory.current", "memory.max", "memory.high", "memory.stat", "memory.events", "memory.pressure"]
    v1_files = ["memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat", "memory.oom_control", "memory.failcnt", "memory.pressure"]

    def cgroup_parts(d, files, sys_psi):
        parts = [read(os.path.join(d, f)) for f in files] + [read(sys_psi) if sys_psi else None]
        return [ABSENT if p is None else p for p in parts]

    def cgroup_seed(name, d, v1, sys_psi):
        files = v1_files if v1 else v2_files
        parts = cgroup_parts(d, files, sys_psi)
        seed("cgroup_read", name, bytes([1 if v1 else 0]) + SEP.join(parts))
        # A second tick: counters up by one, as after an OOM kill.
        bumped = [re.sub(rb"(oom_kill|failcnt) (\d+)", lambda m: m.group(1) + b" " + str(int(m.group(2)) + 1).encode(), p) for p in parts]
        if files[4] == "memory.failcnt" and parts[4] != ABSENT:
            bumped[4] = str(int(parts[4].strip() or b"0") + 1).encode() + b"\n" if parts[4].strip().isdigit() else parts[4]
        seed("cgroup_read", name + "-2ticks", bytes([1 if v1 else 0]) + SEP.join(parts + bumped))

    for tree in cg_trees:
        name = os.path.basename(tree.rstrip("/"))
        sys_psi = os.path.join(tree, "proc/pressure/memory")
        for usage, v1 in (("memory.current", False), ("memory.usage_in_bytes", True)):
            dirs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(tree, "sys", "**", usage), recursive=True)}, key=len)
            if dirs:
                cgroup_seed(f"fixture-{name}", dirs[-1], v1, sys_psi if os.path.exists(sys_psi) else None)
    own = read("/proc/self/cgroup") or b""
    for line in own.splitlines():
        parts = line.split(b":", 2)
        if len(parts) == 3 and b"memory" in parts[1].split(b","):
            d = "/sys/fs/cgroup/memory" + parts[2].decode(errors="replace")
            if os.path.exists(os.path.join(d, "memory.usage_in_bytes")):
                cgroup_seed("live-v1-own", d, True, "/proc/pressure/memory")
            if os.path.exists("/sys/fs/cgroup/memory/memory.usage_in_bytes"):
                cgroup_seed("live-v1-root", "/sys/fs/cgroup/memory", True, "/proc/pressure/memory")
        if len(parts) == 3 and parts[0] == b"0" and parts[1] == b"":
            for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                d = base + parts[2].decode(errors="replace")
                if os.path.exists(os.path.join(d, "memory.current")):
                    cgroup_seed("live-v2", d, False, "/proc/pressure/memory")

    # children: flags, then per tick for pids 100..104: stat statm status cmdline smaps_rollup children.
    pids = [100, 101, 102, 103, 104]
    files = ["stat", "statm", "status", "cmdline", "smaps_rollup"]

    def fixture_tick(proc):
        out = []
        for pid in pids:
            d = os.path.join(proc, str(pid))
            for f in files:
                p = read(os.path.join(d, f))
                out.append(ABSENT if p is None else p)
            lists = [read(c) or b"" for c in sorted(glob.glob(os.path.join(d, "task", "*", "children")))]
            out.append(b"".join(lists) if lists else ABSENT)
        return out

    for proc in children_fixtures:
        variant = os.path.basename(os.path.dirname(proc))
        has_children = bool(glob.glob(os.path.join(proc, "*", "task", "*", "children")))
        tick = fixture_tick(proc)
        base = 2 if has_children else 0
        for flags, label in ((0, "direct"), (1, "tree"), (4 | 1, "tree-smaps"), (8, "direct-every2500")):
            seed("children", f"fixture-{variant}-{label}", bytes([base | flags]) + SEP.join(tick))
        # Tick 2: 101 exits (stat gone), 103 is a new process under the same pid (start_time up).
        later = list(tick)
        later[1 * 6] = ABSENT
        later[3 * 6] = re.sub(rb"^(.*\) (?:\S+ ){19})(\d+)", lambda m: m.group(1) + str(int(m.group(2)) + 7).encode(), tick[3 * 6], flags=re.S)
        seed("children", f"fixture-{variant}-exit-and-reuse", bytes([base | 1]) + SEP.join(tick + later))

    # process_reader: flags (bit t: smaps at tick t), then stat statm status smaps_rollup per tick.
    def process_tick(d):
        out = []
        for f in ("stat", "statm", "status", "smaps_rollup"):
            p = read(os.path.join(d, f))
            out.append(ABSENT if p is None else p)
        return out

    for name, pid in live.items():
        seed("process_reader", f"proc-{name}", bytes([1]) + SEP.join(process_tick(f"/proc/{pid}")))
    for proc in children_fixtures[:1]:
        ticks = [process_tick(os.path.join(proc, str(pid))) for pid in (100, 103)]
        seed("process_reader", "fixture-100-then-103", bytes([3]) + SEP.join(ticks[0] + ticks[1]))
        no_sizes = [re.sub(rb"^Vm(Size|RSS):.*\n", b"", ticks[0][2], flags=re.M)]
        seed("process_reader", "fixture-100-status-without-sizes", bytes([0]) + SEP.join(ticks[0][:2] + no_sizes))

    # Live: this process's files as pid 100, a real `sleep` child's as 101 (pids rewritten).
    def renumber_stat(data, pid, ppid):
        if data is None:
            return ABSENT
        m = re.match(rb"^\d+ (\(.*\) \S+ )\d+", data, re.S)
        return (str(pid).encode() + b" " + m.group(1) + str(ppid).encode() + data[m.end():]) if m else data

    me, sl = "/proc/self", f"/proc/{sleep_pid}"
    tick = []
    for pid, src, ppid in ((100, me, 1), (101, sl, 100), (102, None, 0), (103, None, 0), (104, None, 0)):
        if src is None:
            tick += [ABSENT] * 6
            continue
        tick.append(renumber_stat(read(src + "/stat"), pid, ppid))
        for f in files[1:]:
            p = read(f"{src}/{f}")
            tick.append(ABSENT if p is None else p)
        tick.append(b"101 " if pid == 100 else b"")
    seed("children", "live-self-and-sleep-scan", bytes([0]) + SEP.join(tick))
    seed("children", "live-self-and-sleep-children-files", bytes([2 | 4]) + SEP.join(tick))


if __name__ == "__main__":
    sys.exit(main())
