// The worker role: grant credit to the ventilator, run each task (a command per task, or an
// in-process handler), push results to the sink. Also the C++ API for custom workers.
#pragma once

#include "mtask/options.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

// A C++ task handler: the task's payload in, its result out. A thrown exception fails the task.
using task_handler = std::function<std::string(std::string_view payload)>;

// A task's output at most, unless told otherwise (--max-output-bytes): far more than a result
// line, far less than a worker's memory.
inline constexpr std::size_t default_max_output_bytes = std::size_t{64} << 20;

// How a persistent command's tasks and answers are delimited (--persistent=line|framed): a line
// each way, or length-prefixed records whose answers carry an exit status (README, "Persistent
// workers").
enum class persistent_framing : std::uint8_t { line, framed };

struct worker_options {
  common_options common;
  unsigned slots = 1;               // -j: tasks at once
  bool once = false;                // exit when the job it served is complete
  std::vector<std::string> command; // run per task; empty when `handler` is set
  task_handler handler;
  bool handler_inline = false;       // run `handler` on the event loop (only for trivially quick ones)
  bool persistent = false;           // `command` is long-lived: a record in, a record out per task
  std::optional<std::string> colsep; // --colsep: cut tasks into columns for {1}, {2}...
  bool dry_run = false;              // --dry-run: each task's result is the command line, nothing runs
  int prefetch = -1;                 // tasks held beyond the slots; -1: sized from observed task times
  double delay_seconds = 0;          // --delay: at least this long between two task starts here
  int task_timeout_ms = 0;           // 0: none; else SIGTERM, then SIGKILL after kill_grace_ms
  int kill_grace_ms = 1000;
  std::size_t max_output_bytes = default_max_output_bytes; // a task's stdout (--persistent: answer) at most
  persistent_framing framing = persistent_framing::line;   // with `persistent`: how records are delimited
};

// Serves jobs until stopped (or, with `once`, until a job completes).
// Returns: the process exit code.
int run_worker(const worker_options& opts);

struct builtin {
  task_handler handler; // empty for an unknown name
  bool run_inline = false;
};
// Returns: the built-in called `name`: "echo" (the task is its result; inline) or "sleep" (sleeps
// for the task's number of seconds, then echoes it; on the handler threads).
builtin builtin_handler(std::string_view name);

// The whole worker program around a C++ handler: parses the standard worker flags from argv
// (--ventilator, --sink, -j, --once, --prefetch, -v, ...), then serves jobs, running `handler` on
// -j threads. Without a handler (empty function) it is mtask-worker itself.
// Returns: the process exit code.
//
//   int main(int argc, char** argv) {
//     return mtask::worker_main(argc, argv, [](std::string_view task) { return score(task); });
//   }
int worker_main(int argc, char** argv, task_handler handler);

// A handler that emits any number of output lines per task (each gets a newline if it lacks one).
using emit_fn = std::function<void(std::string_view line)>;
using streaming_handler = std::function<void(std::string_view payload, const emit_fn& emit)>;
int worker_main(int argc, char** argv, streaming_handler handler);

} // namespace mtask
