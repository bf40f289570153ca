// How a worker runs tasks: one interface, three ways (a process per task, long-lived processes
// answering a record per task, in-process handlers). The worker's event loop owns sockets and
// credit; a runner owns execution and reports finished tasks.
#pragma once

#include "mtask/worker.hpp"

#include "common/clock.hpp"
#include "protocol/wire.hpp"

#include <poll.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

// One task as the worker holds it: the job it belongs to and how its stdin input ends.
struct job_task {
  std::uint64_t job = 0;
  wire::task task;
  std::string terminator;
  bool details = false; // its batch asked for per-attempt details (--joblog, --report, --tag, --results)
};

// With details asked: the payload's size and the payload itself (for --tag, --results; a failure
// brings it back anyway). The command runner adds its command line as `command`; for built-ins and
// handlers what ran is the payload, sent once (see what_ran). The core adds the start time.
inline void add_details(wire::result& r, const job_task& t) {
  if (!t.details) return;
  r.payload_bytes = t.task.payload.size();
  r.payload = t.task.payload;
}

// The result skeleton of `t`: its identity and the retries it had left (which tell the sink whether
// a failure is final), and its details when asked.
inline wire::result result_for(const job_task& t) {
  wire::result r{.id = t.task.id, .attempt = t.task.attempt, .retries_left = t.task.retries_left};
  add_details(r, t);
  return r;
}

struct finished_task {
  std::uint64_t job = 0;
  wire::result result;   // carries the task's payload when it failed (for the sink's --failures)
  double runtime_us = 0; // result.runtime_us with its fraction: an inline task takes well under 1 us
};

class task_runner {
 public:
  virtual ~task_runner() = default;
  // True while another task can start now.
  [[nodiscard]] virtual bool has_room() const = 0;
  virtual void start(job_task t, time_point now) = 0;
  // Starts up to `max` tasks from the front of `backlog`, while there is room. Returns: how many.
  virtual std::size_t start_from(std::deque<job_task>& backlog, std::size_t max, time_point now) {
    std::size_t n = 0;
    for (; n < max && !backlog.empty() && has_room(); ++n) {
      start(std::move(backlog.front()), now);
      backlog.pop_front();
    }
    return n;
  }
  // Tasks started and not yet finished (or returned).
  [[nodiscard]] virtual std::size_t running() const = 0;

  // Appends the descriptors to poll (POSIX event bits).
  virtual void poll_items(std::vector<pollfd>& fds) const = 0;
  // Services ready descriptors and deadlines.
  virtual void on_ready(const std::vector<pollfd>& fds, time_point now) = 0;
  // The earliest moment on_ready must run even if nothing is ready (timeouts).
  [[nodiscard]] virtual time_point next_deadline(time_point fallback) const { return fallback; }

  // Replaces the contents of `into` with the tasks finished since the last call. The two buffers
  // swap, so in steady state neither reallocates (a batch of micro-tasks is thousands of them).
  void take_finished(std::vector<finished_task>& into) {
    into.clear();
    into.swap(finished_);
  }
  // Tasks given back unrun (e.g. in flight to a persistent process that died of another task).
  virtual std::vector<job_task> take_returned() { return {}; }
  // Signals everything still running (shutdown).
  virtual void stop(int sig) = 0;
  // The worker's prefetch: how many tasks beyond one per slot it holds. Runners that can queue
  // work close to where it runs take them (a persistent process can be several lines ahead; a
  // handler thread takes its next task from the pool's queue); the others leave them to the worker.
  virtual void set_prefetch(std::size_t /*tasks*/) {}

 protected:
  // Records that `t` finished with `r` (taking the payload of a failed task along with it).
  void report(job_task& t, wire::result r) {
    if (r.status != wire::task_status::ok) r.payload = std::move(t.task.payload);
    const auto us = static_cast<double>(r.runtime_us);
    finished_.push_back(finished_task{t.job, std::move(r), us});
  }
  std::vector<finished_task> finished_; // report() appends; take_finished() hands them over
};

struct runner_options {
  unsigned slots = 1;
  int task_timeout_ms = 0; // 0: none
  int kill_grace_ms = 1000;
  // Beyond this much stdout (with --persistent: a longer answer) the task fails as too_large and
  // its command is killed; what it wrote is discarded, never kept.
  std::size_t max_output_bytes = default_max_output_bytes;
  std::optional<std::string> colsep; // command runner: --colsep, for {1}, {2}...
  bool dry_run = false;              // command runner: run nothing, each task's result is its command line
  persistent_framing framing = persistent_framing::line; // for the persistent runner
};

// A process per task: a command with replacement strings ({}, {.}, {#}... see exec/replacement.hpp)
// gets the payload in its arguments, otherwise the payload and its terminator go to stdin.
// Result: stdout, exit status, stderr tail; with `dry_run`, the command line (dry_run_line) and a
// newline, and nothing runs.
// Throws: usage_error for a --colsep that is not a regular expression.
std::unique_ptr<task_runner> make_command_runner(std::vector<std::string> command, runner_options opts);

// `slots` long-lived processes; each task is a record on a process's stdin (a line, or framed),
// its result the next answer on that process's stdout; several in flight per process (from
// set_prefetch()). A process that dies fails the task it was answering and is restarted, after a
// growing delay when it keeps dying at once; the others in flight are returned. Output with no task
// pending fails the answers that came with it (docs/ARCHITECTURE.md, "Persistent workers").
std::unique_ptr<task_runner> make_persistent_runner(std::vector<std::string> command, runner_options opts);

// In-process handler: on `slots` threads, or on the event loop itself when `run_inline` (only for
// handlers that are trivially quick, like the built-ins). A thrown exception fails the task.
std::unique_ptr<task_runner> make_handler_runner(task_handler handler, unsigned slots, bool run_inline);

} // namespace mtask
