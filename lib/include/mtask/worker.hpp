// The worker role: grant credit to the ventilator, run each task (a command per task, or an
// in-process handler), push results to the sink. Also the C++ API for custom workers.
#pragma once

#include "mtask/cli.hpp"
#include "mtask/task_runner.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {


struct worker_options {
  common_options common;
  unsigned slots = 1;               // -j: tasks at once
  bool once = false;                // exit when the job it served is complete
  std::vector<std::string> command; // run per task; empty when `handler` is set
  task_handler handler;
  bool handler_inline = false; // run `handler` on the event loop (only for trivially quick ones)
  bool persistent = false;     // `command` is long-lived: a line in, a line out per task
  int prefetch = -1;           // tasks held beyond the slots; -1: sized from observed task times
  int task_timeout_ms = 0;     // 0: none; else SIGTERM, then SIGKILL after kill_grace_ms
  int kill_grace_ms = 1000;
};

// Serves jobs until stopped (or, with `once`, until a job completes).
// Returns: the process exit code.
int run_worker(const worker_options& opts);

// Returns: the handler of a built-in ("echo"), or an empty function for an unknown name.
task_handler builtin_handler(std::string_view name);

} // namespace mtask
