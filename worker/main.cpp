// mtask-worker: parse flags, then run the worker role with a command or a built-in.
#include "mtask/spawn.hpp"
#include "mtask/error.hpp"
#include "mtask/log.hpp"
#include "mtask/worker.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  mtask::worker_options opts;
  opts.common.idle_timeout_ms = 0; // a worker's job is to wait for jobs
  CLI::App app("Runs tasks from mtask-ventilator and pushes their results to mtask-sink.\n"
               "Run as: mtask-worker [OPTIONS] -- CMD [ARG...]   Each task runs CMD (no shell); {} in an ARG is\n"
               "        replaced by the task, otherwise the task (with its newline) is written to CMD's stdin.\n"
               "        The result is CMD's stdout; a non-zero exit or a signal fails the task.\n"
               "    or: mtask-worker [OPTIONS] --builtin echo",
               "mtask-worker");
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  mtask::add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from a ventilator; 0: never");
  app.add_option("-j,--jobs", opts.slots, "Tasks to run at once")->capture_default_str()->check(CLI::Range(1u, 4096u));
  app.add_flag("--once", opts.once, "Exit 0 once the job being served is complete (1 if its ventilator goes away first)");
  app.add_option("--prefetch", opts.prefetch, "Tasks to hold beyond -j so no slot waits for its next task; default: sized from task times (none for tasks over ~2 ms)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--task-timeout-ms", opts.task_timeout_ms, "Fail a task still running after this long: SIGTERM, then SIGKILL 1 s later; 0: none")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  app.add_flag("--persistent", opts.persistent, "Start CMD once per slot and keep it: each task is written to its stdin as one line, the next line of its stdout is the result (CMD must flush per line: sed -u, awk with fflush(), stdbuf -oL)");
  std::string builtin;
  app.add_option("--builtin", builtin, "Run an in-process handler instead of a command: echo");
  app.add_option("command", opts.command, "The command and its arguments, after --");
  auto validate = [&] {
    if (!builtin.empty() && !opts.command.empty()) throw mtask::usage_error("give either --builtin or a command, not both");
    if (opts.persistent && opts.command.empty()) throw mtask::usage_error("--persistent needs a command after --");
    if (!builtin.empty()) {
      opts.handler = mtask::builtin_handler(builtin);
      opts.handler_inline = true; // built-ins are trivially quick
      if (!opts.handler) throw mtask::usage_error(fmt::format("--builtin: unknown built-in '{}' (known: echo)", builtin));
    } else if (opts.command.empty()) {
      throw mtask::usage_error("no command: give one after --, or --builtin");
    }
  };
  if (int rc = mtask::parse_flags(app, opts.common, argc, argv, validate); rc >= 0) return rc;
  if (!opts.handler && mtask::find_executable(opts.command.front()).empty()) {
    mtask::log::error("command '{}' not found or not executable", opts.command.front());
    return mtask::exit_failure;
  }

  mtask::install_stop_handlers();
  try {
    return mtask::run_worker(opts);
  } catch (const std::exception& e) {
    mtask::log::error("{}", e.what());
    return mtask::exit_failure;
  }
}
