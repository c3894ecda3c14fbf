/* codemode's native sandbox worker: holds the compiled component, runs one execution at
 * a time. The twin of _worker.py (run where no C compiler is found): the same arguments,
 * the same frames (_protocol.py), the same behaviour; a change to one is a change to both.
 *
 *   codemode-worker FD COMPILED MEMORY_BYTES LIBRARY SETTINGS WARMUP_CODE PREPARE CATALOG
 *
 * FD is its end of a socketpair (stdout is never used: on stdio it is the MCP channel).
 * LIBRARY is wasmtime's C library as wasmtime-py ships it (the pinned wasmtime), opened
 * with dlopen; the ~30 calls made are declared below, as _capi.py declares them, and the
 * two crossings of the guest boundary have the fixed signatures of guest/wit/sandbox.wit:
 * the export `run(string, string, string) -> string` and the import
 * `wait(string, s32) -> string`. SETTINGS is "epoch,strategy,opt_level,tick_us,spin_us,
 * quick_us,resident_bytes" (-1: wasmtime's default; resident_bytes 0: wasmtime's on-demand
 * allocator, else its pooling one: see pool_instances). WARMUP_CODE, PREPARE and CATALOG
 * prepare each new instance until the parent sends a catalog of its own.
 *
 * A process of its own, and no Python in it: ~11 MB less memory per worker than the
 * Python twin and a start of a few milliseconds instead of ~40. What isolates the guest
 * is the same: wasmtime, WASI with no files, environment, arguments or sockets, a memory
 * limit per store and an epoch deadline per run.
 *
 * Host functions never fail into wasmtime: every failure is returned as data (the reply's
 * "host_error") or as a wasmtime error that traps the run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ---- wasmtime's C API: the types and calls a worker needs ---------------------------- */

typedef struct { size_t size; uint8_t *data; } byte_vec;
typedef struct {
  uint8_t kind;
  union { int32_t s32; byte_vec string; uint64_t room[3]; } of;
} val_t; /* wasmtime_component_val_t */
typedef struct { uint64_t store_id; uint64_t p1, p2; void *p3; } func_ref;
typedef struct { uint64_t store_id; uint32_t p; } instance_ref;
_Static_assert(sizeof(val_t) == 32, "wasmtime_component_val_t is 32 bytes");
_Static_assert(sizeof(func_ref) == 32, "wasmtime_component_func_t is 32 bytes");
_Static_assert(sizeof(instance_ref) == 16, "wasmtime_component_instance_t is 16 bytes");
enum { KIND_S32 = 5, KIND_STRING = 12 };

typedef void *(*host_fn)(void *env, void *context, const void *ty, val_t *args, size_t nargs,
                         val_t *results, size_t nresults);
typedef ptrdiff_t (*output_fn)(void *data, const uint8_t *buf, size_t len);
typedef void (*finalizer_fn)(void *);

/* The pooling allocator's limits (RESIDENT > 0): what one instance of the component needs
 * (14 core instances, 2 tables, 1 memory in componentize-py 0.25's output), with room, for
 * the two instances a worker can hold at once (a session's kept one and the next prepared
 * one). A memory may grow to the whole 4 GiB of wasm32: the store's limiter is what
 * bounds it, as with the on-demand allocator. _capi.py sets the same. */
#define POOL_LIMITS(L, X)                                                                  \
  L(X, total_component_instances, uint32_t, 4)                                             \
  L(X, total_core_instances, uint32_t, 256)                                                \
  L(X, total_memories, uint32_t, 4)                                                        \
  L(X, total_tables, uint32_t, 64)                                                         \
  L(X, total_stacks, uint32_t, 4)                                                          \
  L(X, max_core_instances_per_component, uint32_t, 64)                                     \
  L(X, max_memories_per_component, uint32_t, 2)                                            \
  L(X, max_tables_per_component, uint32_t, 16)                                             \
  L(X, table_elements, size_t, 1 << 17)                                                    \
  L(X, max_memory_size, size_t, (size_t)1 << 32)                                           \
  L(X, max_core_instance_size, size_t, 1 << 22)                                            \
  L(X, max_component_instance_size, size_t, 1 << 22)
#define POOL_SETTER(X, name, type, value)                                                  \
  X(void, wasmtime_pooling_allocation_config_##name##_set, (void *, type))

#define WASMTIME_CALLS(X)                                                                  \
  X(void *, wasm_config_new, (void))                                                       \
  X(void, wasmtime_config_epoch_interruption_set, (void *, bool))                          \
  X(void, wasmtime_config_cranelift_opt_level_set, (void *, uint8_t))                      \
  X(void, wasmtime_config_strategy_set, (void *, uint8_t))                                 \
  X(void, wasmtime_pooling_allocation_config_linear_memory_keep_resident_set,              \
    (void *, size_t))                                                                      \
  X(void, wasmtime_pooling_allocation_config_table_keep_resident_set, (void *, size_t))    \
  X(void *, wasmtime_pooling_allocation_config_new, (void))                                \
  X(void, wasmtime_pooling_allocation_config_delete, (void *))                             \
  X(void, wasmtime_pooling_allocation_strategy_set, (void *, const void *))                \
  POOL_LIMITS(POOL_SETTER, X)                                                              \
  X(void *, wasm_engine_new_with_config, (void *))                                         \
  X(void, wasmtime_engine_increment_epoch, (void *))                                       \
  X(void *, wasmtime_component_deserialize_file, (void *, const char *, void **))          \
  X(void *, wasmtime_component_linker_new, (void *))                                       \
  X(void *, wasmtime_component_linker_root, (void *))                                      \
  X(void *, wasmtime_component_linker_instance_add_instance,                               \
    (void *, const char *, size_t, void **))                                               \
  X(void *, wasmtime_component_linker_instance_add_func,                                   \
    (void *, const char *, size_t, host_fn, void *, finalizer_fn))                         \
  X(void, wasmtime_component_linker_instance_delete, (void *))                             \
  X(void *, wasmtime_component_linker_add_wasip2, (void *))                                \
  X(void *, wasmtime_component_linker_instantiate, (void *, void *, void *, instance_ref *)) \
  X(void *, wasmtime_component_instance_get_export_index,                                  \
    (instance_ref *, void *, void *, const char *, size_t))                                \
  X(bool, wasmtime_component_instance_get_func, (instance_ref *, void *, void *, func_ref *)) \
  X(void, wasmtime_component_export_index_delete, (void *))                                \
  X(void *, wasmtime_component_func_call,                                                  \
    (func_ref *, void *, val_t *, size_t, val_t *, size_t))                                \
  X(void, wasmtime_component_val_delete, (val_t *))                                        \
  X(void *, wasmtime_store_new, (void *, void *, finalizer_fn))                            \
  X(void *, wasmtime_store_context, (void *))                                              \
  X(void, wasmtime_store_delete, (void *))                                                 \
  X(void, wasmtime_store_limiter, (void *, int64_t, int64_t, int64_t, int64_t, int64_t))   \
  X(void *, wasmtime_context_set_wasi, (void *, void *))                                   \
  X(void, wasmtime_context_set_epoch_deadline, (void *, uint64_t))                         \
  X(void *, wasi_config_new, (void))                                                       \
  X(void, wasi_config_set_stdout_custom, (void *, output_fn, void *, finalizer_fn))        \
  X(void, wasi_config_set_stderr_custom, (void *, output_fn, void *, finalizer_fn))        \
  X(void *, wasmtime_error_new, (const char *))                                            \
  X(void, wasmtime_error_message, (void *, byte_vec *))                                    \
  X(void, wasmtime_error_delete, (void *))                                                 \
  X(void, wasm_byte_vec_new_uninitialized, (byte_vec *, size_t))                           \
  X(void, wasm_byte_vec_delete, (byte_vec *))

#define DECLARE(ret, name, args) static ret(*name) args;
WASMTIME_CALLS(DECLARE)

/* ---- frames (_protocol.py) ------------------------------------------------------------ */

enum {
  EXECUTE = 'E', COMPLETION = 'C', CLOCK = 'K',    /* parent -> worker */
  READY = 'Y', CALLS = 'T', RESULT = 'R', FATAL = 'F' /* worker -> parent */
};
enum { TRAP_NONE = 0, TRAP_WASM = 1, TRAP_HOST = 2 };
#define HEADER 5
#define EXECUTE_HEAD 30 /* >IQdQBB */
#define HOST_INTERFACE "codemode:sandbox/host"

typedef struct { uint8_t *data; size_t len, cap; } buf_t;

static void buf_put(buf_t *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) _exit(3); /* out of host memory: the pool reports the worker died */
    b->data = grown, b->cap = cap;
  }
  if (len) memcpy(b->data + b->len, data, len);
  b->len += len;
}
static void put_u32(buf_t *b, uint32_t v) {
  uint8_t be[4] = {v >> 24, v >> 16, v >> 8, v};
  buf_put(b, be, 4);
}
static void put_u64(buf_t *b, uint64_t v) {
  put_u32(b, (uint32_t)(v >> 32));
  put_u32(b, (uint32_t)v);
}
static void put_field(buf_t *b, const void *data, size_t len) {
  put_u32(b, (uint32_t)len);
  buf_put(b, data, len);
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The socket, and what has been read from it but not yet cut into frames. One buffer for
 * the process's life (a new one per read would be an mmap and an munmap at this size). */
static int sock = -1;
static buf_t inbox;
static size_t inbox_start;

static void send_frame(uint8_t kind, const void *a, size_t alen, const void *b, size_t blen) {
  uint8_t head[HEADER];
  uint32_t size = (uint32_t)(alen + blen);
  head[0] = size >> 24, head[1] = size >> 16, head[2] = size >> 8, head[3] = size, head[4] = kind;
  struct iovec iov[3] = {{head, HEADER}, {(void *)a, alen}, {(void *)b, blen}};
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
  while (msg.msg_iovlen) {
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      _exit(0); /* the pool is gone or gave up on this worker: nothing to report to */
    }
    while (msg.msg_iovlen && (size_t)sent >= msg.msg_iov->iov_len) {
      sent -= msg.msg_iov->iov_len;
      msg.msg_iov++, msg.msg_iovlen--;
    }
    if (msg.msg_iovlen) {
      msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + sent;
      msg.msg_iov->iov_len -= sent;
    }
  }
}

#define READ_ROOM (1 << 16) /* the least room a read is given */

/* Read what the socket holds; false when it holds nothing (MSG_DONTWAIT only). Frames cut
 * from the inbox before this call are moved or freed by it. */
static bool read_some(int flags) {
  if (inbox_start == inbox.len) {
    inbox.len = inbox_start = 0;
  } else if (inbox_start && inbox.cap - inbox.len < READ_ROOM) { /* what is left, to the front */
    memmove(inbox.data, inbox.data + inbox_start, inbox.len - inbox_start);
    inbox.len -= inbox_start, inbox_start = 0;
  }
  if (inbox.cap - inbox.len < READ_ROOM) {
    size_t cap = inbox.cap ? inbox.cap * 2 : 1 << 20;
    uint8_t *grown = realloc(inbox.data, cap);
    if (!grown) _exit(3);
    inbox.data = grown, inbox.cap = cap;
  }
  for (;;) {
    ssize_t got = recv(sock, inbox.data + inbox.len, inbox.cap - inbox.len, flags);
    if (got > 0) {
      inbox.len += got;
      return true;
    }
    if (got == 0) _exit(0); /* the pool closed its end: nothing more will come */
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    _exit(0);
  }
}

typedef struct { uint8_t kind; const uint8_t *payload; size_t size; } frame_t;

/* The next whole frame in the inbox. Its payload lives until the next read. */
static bool frame_ready(frame_t *out) {
  size_t have = inbox.len - inbox_start;
  if (have < HEADER) return false;
  const uint8_t *p = inbox.data + inbox_start;
  size_t size = get_u32(p);
  if (have < HEADER + size) return false;
  out->kind = p[4], out->payload = p + HEADER, out->size = size;
  inbox_start += HEADER + size;
  return true;
}

/* The next frame, or false when `timeout` seconds pass first (timeout < 0: no limit). For
 * the first `spin` seconds it polls instead of sleeping (see _protocol.SPIN_S). */
static bool recv_frame(double timeout, double spin, frame_t *out) {
  double start = now();
  double deadline = timeout < 0 ? -1 : start + timeout;
  double spin_until = start + spin;
  if (deadline >= 0 && deadline < spin_until) spin_until = deadline;
  for (;;) {
    if (frame_ready(out)) return true;
    if (spin > 0 && now() < spin_until) {
      read_some(MSG_DONTWAIT);
      continue;
    }
    if (deadline >= 0) {
      double remaining = deadline - now();
      if (remaining <= 0) return false;
      struct timespec ts = {(time_t)remaining, (long)((remaining - (time_t)remaining) * 1e9)};
      struct pollfd pfd = {sock, POLLIN, 0};
      int ready = ppoll(&pfd, 1, &ts, NULL);
      if (ready == 0) return false;
      if (ready < 0 && errno == EINTR) continue;
    }
    read_some(0);
  }
}

/* ---- the worker's state --------------------------------------------------------------- */

static struct {
  bool epoch;
  int strategy, opt_level;
  double tick_s, spin_s, quick_s;
  long long resident; /* bytes of each instance's memory kept resident between runs */
} settings;

typedef struct {
  void *store, *context;
  func_ref run;
  int64_t memory_bytes;
  buf_t catalog_id;
} ready_t; /* an instance: its store, its `run` export, its memory cap, its catalog's id */

static void *engine, *component, *linker;
static const char *warmup_code;
static ready_t *ready, *kept, *finished;
static buf_t catalog_id, catalog, prepare; /* the last catalog sent (no id: the first one) */
static uint32_t seq;
static double deadline, since;
static bool paused, has_since, credited, quick = true;
static uint32_t crossings;
static buf_t pending; /* an EXECUTE frame read while a warm-up waited: run next */
static bool has_pending;

/* WASI stdout and stderr of every store: the first `limit` bytes kept, the rest counted.
 * The guest can write to fd 1 directly, so this bound is the one that holds. */
static buf_t output;
static size_t output_limit;
static uint64_t output_dropped;

static ptrdiff_t on_output(void *data, const uint8_t *buf, size_t len) {
  (void)data;
  size_t room = output.len < output_limit ? output_limit - output.len : 0;
  size_t keep = len < room ? len : room;
  buf_put(&output, buf, keep);
  output_dropped += len - keep;
  return (ptrdiff_t)len;
}

static void no_finalizer(void *data) { (void)data; }

static void free_vec(byte_vec *vec) {
  if (vec->data) wasm_byte_vec_delete(vec);
  vec->data = NULL, vec->size = 0;
}

/* wasmtime's message for `err`, which is freed; the caller frees the text. */
static char *error_text(void *err) {
  byte_vec vec = {0, NULL};
  wasmtime_error_message(err, &vec);
  char *text = malloc(vec.size + 1);
  if (!text) _exit(3);
  if (vec.size) memcpy(text, vec.data, vec.size);
  text[vec.size] = 0;
  free_vec(&vec);
  wasmtime_error_delete(err);
  return text;
}

static char *text_of(const char *message) {
  char *text = strdup(message);
  if (!text) _exit(3);
  return text;
}

static void set_string(val_t *val, const void *data, size_t len) {
  val->kind = KIND_STRING;
  wasm_byte_vec_new_uninitialized(&val->of.string, len);
  if (len) memcpy(val->of.string.data, data, len);
}

static void set_deadline(void *context, double seconds) {
  double ticks = seconds / settings.tick_s + 0.5;
  wasmtime_context_set_epoch_deadline(context, ticks < 1 ? 1 : (uint64_t)ticks);
}

/* Move the deadline on by the time blocked in `wait` while paused. */
static void credit(void) {
  double t = now();
  if (paused && has_since) {
    deadline += t - since;
    credited = true;
  }
  since = t, has_since = true;
}

static void take(const frame_t *f, buf_t *done, int *ndone) {
  if (f->kind == EXECUTE) { /* (a warm-up's wait) the next run, kept for serve() */
    pending.len = 0;
    buf_put(&pending, f->payload, f->size);
    has_pending = true;
    return;
  }
  if (f->size < 4 || get_u32(f->payload) != seq) return; /* a late frame of an earlier run */
  if (f->kind == COMPLETION) {
    if ((*ndone)++) buf_put(done, ",", 1);
    buf_put(done, f->payload + 4, f->size - 4);
  } else if (f->kind == CLOCK) {
    credit();
    paused = f->size > 4 && f->payload[4] == 'P';
  }
}

/* ---- the host function: wait(batch, timeout_ms) -> reply ------------------------------ */

static void *host_wait(void *env, void *context, const void *ty, val_t *args, size_t nargs,
                       val_t *results, size_t nresults) {
  (void)env, (void)ty;
  if (nargs != 2 || nresults != 1 || args[0].kind != KIND_STRING || args[1].kind != KIND_S32)
    return wasmtime_error_new("wait: the guest called it with another signature");
  byte_vec batch = args[0].of.string;
  int32_t timeout_ms = args[1].of.s32;
  crossings++;
  uint8_t seq_be[4] = {seq >> 24, seq >> 16, seq >> 8, seq};
  if (batch.size) send_frame(CALLS, seq_be, 4, batch.data, batch.size);
  free_vec(&args[0].of.string);
  double asked = since = now();
  has_since = true;
  double wake = timeout_ms < 0 ? -1 : since + timeout_ms / 1000.0;
  static buf_t done;
  done.len = 0;
  int ndone = 0;
  double spin = quick ? settings.spin_s : 0;
  frame_t f;
  while (!ndone) {
    double until = wake;
    if (!paused && (wake < 0 || deadline < wake)) until = deadline;
    double remaining = until < 0 ? -1 : until - now();
    if (until >= 0 && remaining < 0) remaining = 0;
    if (!recv_frame(remaining, spin, &f)) break;
    take(&f, &done, &ndone);
  }
  /* poll next time only if answers came while polling would have (not a timer) */
  quick = ndone && now() - asked <= settings.quick_s;
  while (recv_frame(0, 0, &f)) take(&f, &done, &ndone); /* all that has already arrived */
  credit();
  has_since = false;
  if (credited) { /* the deadline moved on: so does the CPU timer's */
    credited = false;
    set_deadline(context, deadline - now());
  }
  bool expired = !ndone && !paused && now() >= deadline;
  /* the completions' JSON as the parent wrote it (UTF-8), never decoded here */
  static const char open_true[] = "{\"expired\": true, \"done\": [";
  static const char open_false[] = "{\"expired\": false, \"done\": [";
  const char *open = expired ? open_true : open_false;
  size_t open_len = expired ? sizeof open_true - 1 : sizeof open_false - 1;
  results[0].kind = KIND_STRING;
  wasm_byte_vec_new_uninitialized(&results[0].of.string, open_len + done.len + 2);
  uint8_t *out = results[0].of.string.data;
  memcpy(out, open, open_len);
  if (done.len) memcpy(out + open_len, done.data, done.len);
  memcpy(out + open_len + done.len, "]}", 2);
  return NULL;
}

/* ---- instances and runs --------------------------------------------------------------- */

/* Call `run(code, options, catalog)`; NULL and the outcome in `out`, or wasmtime's error. */
static char *call_run(ready_t *r, const buf_t *code, const buf_t *options, const void *cat,
                      size_t cat_len, byte_vec *out) {
  val_t params[3], result;
  memset(params, 0, sizeof params);
  memset(&result, 0, sizeof result);
  set_string(&params[0], code->data, code->len);
  set_string(&params[1], options->data, options->len);
  set_string(&params[2], cat, cat_len);
  void *err = wasmtime_component_func_call(&r->run, r->context, params, 3, &result, 1);
  for (int i = 0; i < 3; i++) wasmtime_component_val_delete(&params[i]);
  if (err) return error_text(err);
  if (result.kind != KIND_STRING) {
    wasmtime_component_val_delete(&result);
    return text_of("the export returned something other than a string");
  }
  *out = result.of.string;
  return NULL;
}

static void free_ready(ready_t *r) {
  if (!r) return;
  wasmtime_store_delete(r->store);
  free(r->catalog_id.data);
  free(r);
}

/* The worker's two large files, the artifact (its code, and the heap image each instance
 * maps copy-on-write) and wasmtime's library, are read through the page cache. Two kernel
 * habits would make far more of them count in the worker's RSS than it touches: on a page
 * not cached it reads ahead (8 MB windows on some disks), and on a fault it also maps the
 * cached pages around the faulting one (fault-around). So every mapping of either file is
 * advised MADV_RANDOM as it appears (no read-ahead), and the pool keeps the cache to what
 * runs use (`_pagecache.py`: it records them, and reads them ahead when they are not
 * cached). The guest sees the same memory either way. */
static struct stat advised_files[2];
static int n_advised_files;

static void advise_file(const char *path) {
  if (n_advised_files < 2 && !stat(path, &advised_files[n_advised_files])) n_advised_files++;
}

static void advise_random(void) {
  FILE *maps = n_advised_files ? fopen("/proc/self/maps", "re") : NULL;
  char line[4096];
  while (maps && fgets(line, sizeof line, maps)) {
    unsigned long lo, hi, offset, ino;
    unsigned major, minor;
    if (sscanf(line, "%lx-%lx %*4s %lx %x:%x %lu", &lo, &hi, &offset, &major, &minor, &ino) != 6)
      continue;
    for (int i = 0; i < n_advised_files; i++)
      if (ino == advised_files[i].st_ino && makedev(major, minor) == advised_files[i].st_dev)
        madvise((void *)lo, hi - lo, MADV_RANDOM);
  }
  if (maps) fclose(maps);
}

/* A new instance in a store of its own, warmed up with the last catalog; or NULL and the
 * error's text in `error`. WASI: no files, environment or arguments; output to on_output. */
static ready_t *instantiate(int64_t memory_bytes, char **error) {
  ready_t *r = calloc(1, sizeof *r);
  if (!r) _exit(3);
  r->memory_bytes = memory_bytes;
  r->store = wasmtime_store_new(engine, NULL, no_finalizer);
  r->context = wasmtime_store_context(r->store);
  void *wasi = wasi_config_new();
  wasi_config_set_stdout_custom(wasi, on_output, NULL, no_finalizer);
  wasi_config_set_stderr_custom(wasi, on_output, NULL, no_finalizer);
  void *err = wasmtime_context_set_wasi(r->context, wasi); /* takes the config */
  wasmtime_store_limiter(r->store, memory_bytes, -1, -1, -1, -1);
  wasmtime_context_set_epoch_deadline(r->context, (uint64_t)1 << 62);
  instance_ref instance;
  if (!err) err = wasmtime_component_linker_instantiate(linker, r->context, component, &instance);
  advise_random(); /* its memory: a new mapping of the heap image */
  if (err) {
    *error = error_text(err);
    free_ready(r);
    return NULL;
  }
  void *index =
      wasmtime_component_instance_get_export_index(&instance, r->context, NULL, "run", 3);
  bool found = index && wasmtime_component_instance_get_func(&instance, r->context, index, &r->run);
  if (index) wasmtime_component_export_index_delete(index);
  if (!found) {
    *error = text_of("the component exports no `run`");
    free_ready(r);
    return NULL;
  }
  double run_deadline = deadline; /* the warm-up's deadline is its own, not the run's */
  bool run_paused = paused;
  deadline = now() + 60, paused = false;
  buf_t code = {(uint8_t *)warmup_code, strlen(warmup_code), 0};
  byte_vec out = {0, NULL};
  char *failed = call_run(r, &code, &prepare, catalog.data, catalog.len, &out);
  deadline = run_deadline, paused = run_paused;
  free_vec(&out);
  if (failed) {
    *error = failed;
    free_ready(r);
    return NULL;
  }
  buf_put(&r->catalog_id, catalog_id.data, catalog_id.len);
  return r;
}

static bool same(const buf_t *a, const buf_t *b) {
  return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

typedef struct { const uint8_t *data; size_t len; } span_t;

static bool read_field(const uint8_t *payload, size_t size, size_t *at, span_t *out) {
  if (*at + 4 > size) return false;
  size_t len = get_u32(payload + *at);
  *at += 4;
  if (*at + len > size) return false;
  out->data = payload + *at, out->len = len;
  *at += len;
  return true;
}

static void copy_span(buf_t *to, span_t from) {
  to->len = 0;
  buf_put(to, from.data, from.len);
}

/* One execution: run the program, send the RESULT frame, prepare the next instance. The
 * request is copied first: the guest's waits read the socket into the same inbox. */
static void execute(const uint8_t *payload, size_t size) {
  static buf_t code, options;
  span_t id, text, opts, cat, prep;
  size_t at = EXECUTE_HEAD;
  if (size < EXECUTE_HEAD || !read_field(payload, size, &at, &id) ||
      !read_field(payload, size, &at, &text) || !read_field(payload, size, &at, &opts))
    _exit(4); /* a frame this worker cannot read: the pool reports it died */
  seq = get_u32(payload);
  int64_t memory_bytes = (int64_t)get_u64(payload + 4);
  uint64_t timeout_bits = get_u64(payload + 12);
  double timeout_s;
  memcpy(&timeout_s, &timeout_bits, sizeof timeout_s);
  uint64_t max_stdout = get_u64(payload + 20);
  bool keep = payload[28], has_catalog = payload[29];
  if (has_catalog) { /* new to this worker: it stays until another comes */
    if (!read_field(payload, size, &at, &cat) || !read_field(payload, size, &at, &prep)) _exit(4);
    copy_span(&catalog_id, id), copy_span(&catalog, cat), copy_span(&prepare, prep);
  }
  copy_span(&code, text), copy_span(&options, opts);
  deadline = now() + timeout_s;
  paused = false, crossings = 0, quick = true;
  output.len = 0, output_limit = max_stdout, output_dropped = 0;

  /* the instance: the kept one (its globals are still there) or the prepared one */
  ready_t *r, *last = kept;
  kept = NULL;
  if (keep && last) {
    r = last;
  } else {
    r = ready, ready = NULL;
    free_ready(last);
  }
  char *error = NULL;
  byte_vec outcome = {0, NULL};
  if (r && r->memory_bytes != memory_bytes) free_ready(r), r = NULL;
  if (!r) r = instantiate(memory_bytes, &error);
  if (r) {
    finished = r;
    const void *cat_data = catalog.data;
    size_t cat_len = catalog.len;
    if (same(&r->catalog_id, &catalog_id)) cat_len = 0; /* the instance holds it */
    copy_span(&r->catalog_id, (span_t){catalog_id.data, catalog_id.len});
    set_deadline(r->context, timeout_s);
    error = call_run(r, &code, &options, cat_data, cat_len, &outcome);
    if (!error && keep) kept = r; /* a trapped instance is never run again */
  }
  static buf_t head;
  head.len = 0;
  put_u32(&head, crossings);
  put_u64(&head, output_dropped);
  uint8_t flags[2] = {kept != NULL, error ? TRAP_WASM : TRAP_NONE};
  buf_put(&head, flags, 2);
  put_field(&head, error, error ? strlen(error) : 0);
  put_field(&head, output.data, output.len);
  send_frame(RESULT, head.data, head.len, outcome.data, outcome.size);
  free_vec(&outcome);
  free(error);
  /* freed after the result is sent (~0.7 ms) and before the next one is made (two are
   * never held at once) */
  if (finished != kept) free_ready(finished);
  finished = NULL;
  if (!ready && !keep) {
    char *ignored = NULL; /* (a limit below the sandbox's floor): made, or refused, on demand */
    ready = instantiate(memory_bytes, &ignored);
    free(ignored);
  }
}

/* ---- start ---------------------------------------------------------------------------- */

static void *tick(void *arg) {
  (void)arg;
  struct timespec ts = {(time_t)settings.tick_s,
                        (long)((settings.tick_s - (time_t)settings.tick_s) * 1e9)};
  for (;;) {
    nanosleep(&ts, NULL);
    wasmtime_engine_increment_epoch(engine);
  }
  return NULL;
}

static void fatal(const char *cause, const char *message) {
  buf_t text = {0};
  buf_put(&text, cause, strlen(cause));
  buf_put(&text, "\n", 1);
  buf_put(&text, message, strlen(message));
  send_frame(FATAL, text.data, text.len, NULL, 0);
  exit(0);
}

static void load(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) fatal("start", dlerror());
#define RESOLVE(ret, name, args)                                                 \
  *(void **)&name = dlsym(lib, #name);                                           \
  if (!name) fatal("start", "wasmtime's library lacks " #name " (another version?)");
  WASMTIME_CALLS(RESOLVE)
}

/* End the start with FATAL `cause` if wasmtime returned an error. */
static void checked(void *err, const char *cause) {
  if (err) fatal(cause, error_text(err));
}

/* RESIDENT > 0: instances come from wasmtime's pooling allocator, which keeps a memory's
 * slot mapped between instances and resets it in place: the first RESIDENT bytes of the
 * memory are copied back from the heap image (wasmtime 50's C API cannot ask for its
 * PAGEMAP_SCAN mode, which would copy only the pages a run wrote), so they stay resident;
 * the rest is dropped (madvise). Each run then starts on memory that is already there,
 * where a new mapping faults every page it touches in again (~800 faults a trivial run
 * here). The guest sees the same memory either way: the heap image, as the build left
 * it. */
static void pool_instances(void *config, size_t resident) {
  void *pool = wasmtime_pooling_allocation_config_new();
#define SET_POOL_LIMIT(X, name, type, value)                                                \
  wasmtime_pooling_allocation_config_##name##_set(pool, value);
  POOL_LIMITS(SET_POOL_LIMIT, _)
  wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, resident);
  wasmtime_pooling_allocation_config_table_keep_resident_set(pool, resident);
  wasmtime_pooling_allocation_strategy_set(config, pool); /* copies it */
  wasmtime_pooling_allocation_config_delete(pool);
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* no worker outlives its server */
  signal(SIGPIPE, SIG_IGN);
  if (argc != 9) {
    fprintf(stderr, "usage: %s FD COMPILED MEMORY_BYTES LIBRARY SETTINGS WARMUP PREPARE CATALOG\n",
            argv[0]);
    return 2;
  }
  sock = atoi(argv[1]);
  int epoch, tick_us, spin_us, quick_us;
  if (sscanf(argv[5], "%d,%d,%d,%d,%d,%d,%lld", &epoch, &settings.strategy,
             &settings.opt_level, &tick_us, &spin_us, &quick_us, &settings.resident) != 7 ||
      tick_us <= 0 || settings.resident < 0)
    fatal("start", "bad SETTINGS argument");
  settings.epoch = epoch, settings.tick_s = tick_us / 1e6;
  settings.spin_s = spin_us / 1e6, settings.quick_s = quick_us / 1e6;
  warmup_code = argv[6];
  buf_put(&prepare, argv[7], strlen(argv[7]));
  buf_put(&catalog, argv[8], strlen(argv[8]));
  advise_file(argv[2]), advise_file(argv[4]);
  load(argv[4]);
  advise_random();

  void *config = wasm_config_new();
  wasmtime_config_epoch_interruption_set(config, settings.epoch);
  if (settings.strategy >= 0) wasmtime_config_strategy_set(config, (uint8_t)settings.strategy);
  if (settings.opt_level >= 0)
    wasmtime_config_cranelift_opt_level_set(config, (uint8_t)settings.opt_level);
  if (settings.resident > 0) pool_instances(config, (size_t)settings.resident);
  engine = wasm_engine_new_with_config(config); /* takes the config */
  checked(wasmtime_component_deserialize_file(engine, argv[2], &component), "artifact");
  advise_random();
  linker = wasmtime_component_linker_new(engine);
  checked(wasmtime_component_linker_add_wasip2(linker), "start"); /* never wasi-http */
  void *root = wasmtime_component_linker_root(linker), *host = NULL;
  checked(wasmtime_component_linker_instance_add_instance(root, HOST_INTERFACE,
                                                          strlen(HOST_INTERFACE), &host),
          "start");
  checked(wasmtime_component_linker_instance_add_func(host, "wait", 4, host_wait, NULL,
                                                      no_finalizer),
          "start");
  wasmtime_component_linker_instance_delete(host); /* each locks the one it came from */
  wasmtime_component_linker_instance_delete(root);
  pthread_t ticker;
  if (pthread_create(&ticker, NULL, tick, NULL)) fatal("start", "no epoch ticker thread");

  char *error = NULL;
  ready = instantiate(strtoll(argv[3], NULL, 10), &error);
  if (!ready) fatal("start", error);
  send_frame(READY, NULL, 0, NULL, 0);
  frame_t f;
  for (;;) {
    if (has_pending) {
      has_pending = false;
      execute(pending.data, pending.len);
      continue;
    }
    recv_frame(-1, 0, &f);
    if (f.kind != EXECUTE) continue;
    pending.len = 0; /* copied: a run's waits read into the inbox */
    buf_put(&pending, f.payload, f.size);
    has_pending = true;
  }
}
