// The C program the sampler tick is budgeted against (DESIGN.md, "Performance budget"): it reads
// the files a memsentry tick reads, at the same cadence, the way the addon does, and reports its
// own thread CPU time per tick. bench/run.mjs compiles it (cc -O2) and runs it between the
// sentry's windows.
//
//   tick-baseline <interval_ms> <ticks> [--children <pid> <direct|tree> <every_ms>] <file>...
//
// <file>...: opened once, then re-read every tick with pread from offset 0 until EOF (as
// src/procfs/proc_file.rs does), each into its own buffer, then scanned for numbers.
//
// --children: what the addon does for children 'direct' / 'tree' (src/children/): every <every_ms>
// (and on the first tick) a discovery, from <pid>'s `task/<tid>/children` files (opened, read and
// closed each time; a scan of every `/proc/<n>/stat` on a kernel without them); each child found
// keeps `stat`, `statm` and `status` open and has them re-read every tick, and its `cmdline` is read
// once. This program itself (a child of <pid> while it runs) is left out.
//
// Each tick sleeps to its deadline (clock_nanosleep, absolute, like the addon's interval), then
// counts CLOCK_THREAD_CPUTIME_ID around the discovery, the reads and the scans, as
// src/sampler/mod.rs counts around a tick. Prints {"ticks","meanCpuNs","maxCpuNs",...} as JSON.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 1024 // as src/children/mod.rs
#define CMDLINE_MAX 256

struct file {
  int fd;
  char *buf;
  size_t cap;
};

struct child {
  int pid;
  struct file stat, statm, status;
  int cmdline_read;
};

static volatile uint64_t sink; // keeps every scan observable

static uint64_t now_ns(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "tick-baseline: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(2);
}

// A trivial parse, so the reads cannot be optimized away and their bytes are touched once, as
// the addon's parsers touch them: the sum of the decimal numbers in the buffer.
static uint64_t scan(const char *b, size_t n) {
  uint64_t sum = 0, v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned char)b[i] - '0';
    if (d < 10) {
      v = v * 10 + d;
    } else {
      sum += v;
      v = 0;
    }
  }
  return sum + v;
}

// The whole file from offset 0, pread until it returns 0; the buffer grows like the addon's
// (doubling whenever less than 512 bytes are free). Returns the length, or -1.
static ssize_t pread_all(struct file *f) {
  size_t len = 0;
  for (;;) {
    if (f->cap - len < 512) {
      size_t cap = f->cap < 1024 ? 2048 : f->cap * 2;
      char *grown = realloc(f->buf, cap);
      if (!grown) return -1;
      f->buf = grown;
      f->cap = cap;
    }
    ssize_t n = pread(f->fd, f->buf + len, f->cap - len, (off_t)len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return (ssize_t)len;
    len += (size_t)n;
  }
}

static int open_file(struct file *f, const char *path) {
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  f->cap = 1024;
  f->buf = malloc(f->cap);
  return f->fd;
}

static void close_file(struct file *f) {
  if (f->fd >= 0) close(f->fd);
  free(f->buf);
  f->fd = -1;
  f->buf = NULL;
}

static int read_scan(struct file *f) {
  ssize_t n = pread_all(f);
  if (n < 0) return -1;
  sink += scan(f->buf, (size_t)n);
  return 0;
}

// A file read afresh (open, fstat, read to EOF, close), as Rust's fs::read does: the addon reads
// `children` files and a scan's `stat` files this way. Returns the length, or -1.
static ssize_t read_fresh(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  fstat(fd, &st);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (len += (size_t)n) == cap) break;
  }
  close(fd);
  return (ssize_t)len;
}

// ---- children (only with --children) ----

static int root_pid, tree, every_ms, use_children_files, self_pid;
static struct child children[MAX_CHILDREN];
static int n_children, max_children, discoveries;
static char scratch[1 << 16];

struct found {
  int pid, ppid;
};
static struct found found[MAX_CHILDREN];
static int n_found;

static int is_pid(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

static int was_found(int pid) {
  for (int i = 0; i < n_found; i++)
    if (found[i].pid == pid) return 1;
  return 0;
}

static void add_found(int pid, int ppid) {
  if (pid == root_pid || pid == self_pid || was_found(pid) || n_found == MAX_CHILDREN) return;
  found[n_found].pid = pid;
  found[n_found].ppid = ppid;
  n_found++;
}

// Children files: every thread's `task/<tid>/children` of each parent, breadth first.
static void find_by_children_files(void) {
  char path[320];
  for (int next = -1; next < n_found; next++) {
    int parent = next < 0 ? root_pid : found[next].pid;
    snprintf(path, sizeof path, "/proc/%d/task", parent);
    DIR *d = opendir(path);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!is_pid(e->d_name)) continue;
      snprintf(path, sizeof path, "/proc/%d/task/%s/children", parent, e->d_name);
      ssize_t n = read_fresh(path, scratch, sizeof scratch - 1);
      if (n <= 0) continue;
      scratch[n] = 0;
      for (char *p = scratch; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        add_found((int)pid, parent);
        p = end;
      }
    }
    closedir(d);
    if (!tree) break;
  }
}

// No children files: every process's `stat`, read once, gives its parent.
static struct found all[1 << 15];
static void find_by_scan(void) {
  int n_all = 0;
  char path[320];
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && n_all < (int)(sizeof all / sizeof all[0])) {
    if (!is_pid(e->d_name)) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    ssize_t n = read_fresh(path, scratch, sizeof scratch - 1);
    if (n <= 0) continue;
    scratch[n] = 0;
    char *close_paren = strrchr(scratch, ')');
    int ppid;
    if (!close_paren || sscanf(close_paren + 2, "%*c %d", &ppid) != 1) continue;
    all[n_all].pid = atoi(e->d_name);
    all[n_all].ppid = ppid;
    n_all++;
  }
  closedir(d);
  for (int next = -1; next < n_found; next++) {
    int parent = next < 0 ? root_pid : found[next].pid;
    for (int i = 0; i < n_all; i++)
      if (all[i].ppid == parent) add_found(all[i].pid, parent);
    if (!tree) break;
  }
}

static void drop_child(int i) {
  close_file(&children[i].stat);
  close_file(&children[i].statm);
  close_file(&children[i].status);
  children[i] = children[--n_children];
}

static void discover(void) {
  discoveries++;
  n_found = 0;
  if (use_children_files)
    find_by_children_files();
  else
    find_by_scan();
  // Tracked but not found: a fresh look at its stat (the addon's verdict), then let go.
  for (int i = 0; i < n_children;) {
    if (was_found(children[i].pid)) {
      i++;
      continue;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", children[i].pid);
    read_fresh(path, scratch, sizeof scratch);
    drop_child(i);
  }
  for (int k = 0; k < n_found; k++) {
    int known = 0;
    for (int i = 0; i < n_children; i++) known |= children[i].pid == found[k].pid;
    if (known || n_children == MAX_CHILDREN) continue;
    struct child *c = &children[n_children++];
    char path[64];
    c->pid = found[k].pid;
    c->cmdline_read = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", c->pid);
    open_file(&c->stat, path);
    snprintf(path, sizeof path, "/proc/%d/statm", c->pid);
    open_file(&c->statm, path);
    snprintf(path, sizeof path, "/proc/%d/status", c->pid);
    open_file(&c->status, path);
  }
  if (n_children > max_children) max_children = n_children;
}

static void read_children(void) {
  for (int i = 0; i < n_children;) {
    struct child *c = &children[i];
    if (c->stat.fd < 0 || read_scan(&c->stat) != 0) {
      drop_child(i); // exited
      continue;
    }
    if (!c->cmdline_read) {
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/cmdline", c->pid);
      ssize_t n = read_fresh(path, scratch, CMDLINE_MAX);
      if (n > 0) sink += scan(scratch, (size_t)n);
      c->cmdline_read = 1;
    }
    if (c->statm.fd >= 0) read_scan(&c->statm);
    if (c->status.fd >= 0) read_scan(&c->status);
    i++;
  }
}

// ---- main ----

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: tick-baseline <interval_ms> <ticks> [--children <pid> <direct|tree> "
            "<every_ms>] <file>...\n");
    return 2;
  }
  long interval_ms = atol(argv[1]);
  long ticks = atol(argv[2]);
  int arg = 3;
  int with_children = 0;
  if (arg < argc && strcmp(argv[arg], "--children") == 0) {
    if (arg + 3 >= argc) {
      fprintf(stderr, "tick-baseline: --children <pid> <direct|tree> <every_ms>\n");
      return 2;
    }
    with_children = 1;
    root_pid = atoi(argv[arg + 1]);
    tree = strcmp(argv[arg + 2], "tree") == 0;
    every_ms = atoi(argv[arg + 3]);
    self_pid = getpid();
    char probe[96];
    snprintf(probe, sizeof probe, "/proc/%d/task/%d/children", root_pid, root_pid);
    use_children_files = access(probe, F_OK) == 0;
    arg += 4;
  }
  int n_files = argc - arg;
  struct file *files = calloc((size_t)(n_files > 0 ? n_files : 1), sizeof *files);
  for (int i = 0; i < n_files; i++)
    if (open_file(&files[i], argv[arg + i]) < 0) die("cannot open", argv[arg + i]);

  uint64_t total = 0, max = 0, last_discovery_ms = 0;
  int discovered = 0;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  for (long t = 0; t < ticks; t++) {
    deadline.tv_nsec += interval_ms * 1000000L;
    while (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_nsec -= 1000000000L;
      deadline.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR) {
    }

    uint64_t start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < n_files; i++)
      if (read_scan(&files[i]) != 0) die("cannot read", argv[arg + i]);
    if (with_children) {
      uint64_t mono_ms = now_ns(CLOCK_MONOTONIC) / 1000000u;
      if (!discovered || mono_ms - last_discovery_ms >= (uint64_t)every_ms) {
        discovered = 1;
        last_discovery_ms = mono_ms;
        discover();
      }
      read_children();
    }
    uint64_t spent = now_ns(CLOCK_THREAD_CPUTIME_ID) - start;
    total += spent;
    if (spent > max) max = spent;
  }

  printf("{\"ticks\":%ld,\"meanCpuNs\":%.1f,\"maxCpuNs\":%llu,\"cpuNs\":%llu,\"files\":%d,"
         "\"discoveries\":%d,\"maxChildren\":%d,\"childrenFiles\":%s,\"sink\":%llu}\n",
         ticks, ticks > 0 ? (double)total / (double)ticks : 0.0, (unsigned long long)max,
         (unsigned long long)total, n_files, discoveries, max_children,
         with_children ? (use_children_files ? "true" : "false") : "null",
         (unsigned long long)(sink % 1000));
  return 0;
}
