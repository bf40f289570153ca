// The mtask-worker program (flags, then run_worker), also the entry point of C++ workers written
// against the handler API.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/size.hpp"
#include "exec/spawn.hpp"
#include "mtask/error.hpp"
#include "mtask/worker.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace mtask {
namespace {

void add_worker_flags(CLI::App& app, worker_options& opts) {
  add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from a ventilator; 0: never");
  add_security_flags(app, opts.common, role::worker);
  app.add_option("-j,--jobs", opts.slots, "Tasks to run at once")->capture_default_str()->check(CLI::Range(1u, 4096u));
  app.add_flag(
      "--once", opts.once,
      "Exit 0 once the job being served is complete (1 if its ventilator goes away first, or if no ventilator is "
      "heard for --idle-timeout-ms, which then defaults to 60000)");
  app.add_option("--prefetch", opts.prefetch,
                 "Tasks to hold beyond -j so no slot waits for its next task; default: sized from task times (none for "
                 "tasks over ~2 ms)")
      ->check(CLI::Range(0, 1 << 20));
}

} // namespace

int worker_main(int argc, char** argv, task_handler handler) {
  worker_options opts;
  opts.common.idle_timeout_ms = 0; // a worker's job is to wait for jobs
  const bool custom = static_cast<bool>(handler);
  CLI::App app(custom
                   ? "A C++ mtask worker: runs tasks from mtask-ventilator on -j threads and pushes their results\n"
                     "to mtask-sink. A task whose handler throws fails with the exception's message."
                   : "Runs tasks from mtask-ventilator and pushes their results to mtask-sink.\n"
                     "Run as: mtask-worker [OPTIONS] -- CMD [ARG...]   Each task runs CMD (no shell); {} in an ARG is\n"
                     "        replaced by the task, otherwise the task (with its newline) is written to CMD's stdin.\n"
                     "        The result is CMD's stdout; a non-zero exit or a signal fails the task.\n"
                     "    or: mtask-worker [OPTIONS] --builtin echo|sleep",
               program_name(argc > 0 ? argv[0] : nullptr, "mtask-worker"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_worker_flags(app, opts);
  std::string builtin;
  std::string max_output = fmt::format("{}M", default_max_output_bytes >> 20);
  if (!custom) {
    app.add_option(
           "--task-timeout-ms", opts.task_timeout_ms,
           "Fail a task still running after this long: SIGTERM its process group, then SIGKILL 1 s later; 0: none")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 30));
    app.add_option("--max-output-bytes", max_output,
                   "Fail a task whose output (with --persistent: whose answer line) passes SIZE bytes (4096, 64k, 1M): "
                   "SIGKILL its process group at once and discard what it wrote")
        ->type_name("SIZE")
        ->capture_default_str();
    app.add_flag(
        "--persistent", opts.persistent,
        "Start CMD once per slot and keep it: each task is written to its stdin as one line, the next line of its "
        "stdout is the result (CMD must flush per line: sed -u, stdbuf -oL, mawk -W interactive)");
    app.add_option("--builtin", builtin,
                   "Run an in-process handler instead of a command: echo (the task is the result), sleep (sleeps "
                   "for the task's seconds, for benchmarks)");
    app.add_option("command", opts.command, "The command and its arguments, after --");
  }
  auto validate = [&] {
    if (custom) return;
    opts.max_output_bytes = parse_size("--max-output-bytes", max_output);
    if (!builtin.empty() && !opts.command.empty()) throw usage_error("give either --builtin or a command, not both");
    if (opts.persistent && opts.command.empty()) throw usage_error("--persistent needs a command after --");
    if (!builtin.empty()) {
      auto b = builtin_handler(builtin);
      if (!b.handler) throw usage_error(fmt::format("--builtin: unknown built-in '{}' (known: echo, sleep)", builtin));
      opts.handler = std::move(b.handler);
      opts.handler_inline = b.run_inline;
    } else if (opts.command.empty()) {
      throw usage_error("no command: give one after --, or --builtin");
    }
  };
  if (int rc = parse_flags(app, opts.common, argc, argv, validate); rc >= 0) return rc;
  // A --once worker that started after its job ended would otherwise wait for ever: unless told
  // otherwise it gives up like the ventilator and the sink do.
  if (opts.once && app.get_option("--idle-timeout-ms")->count() == 0) opts.common.idle_timeout_ms = 60000;
  if (custom) opts.handler = std::move(handler);
  if (!opts.handler && find_executable(opts.command.front()).empty()) {
    log::error("command '{}' not found or not executable", opts.command.front());
    return exit_failure;
  }
  return run_role([&] { return run_worker(opts); });
}

int worker_main(int argc, char** argv, streaming_handler handler) {
  return worker_main(argc, argv, task_handler([h = std::move(handler)](std::string_view payload) {
                       std::string out;
                       h(payload, [&](std::string_view piece) {
                         out.append(piece);
                         if (piece.empty() || piece.back() != '\n') out.push_back('\n');
                       });
                       return out;
                     }));
}

} // namespace mtask
