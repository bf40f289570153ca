// The mtask-worker program (flags, then run_worker), also the entry point of C++ workers written
// against the handler API.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "exec/replacement.hpp"
#include "exec/spawn.hpp"
#include "mtask/error.hpp"
#include "mtask/worker.hpp"
#include "worker/worker_flags.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace mtask {

int worker_main(int argc, char** argv, task_handler handler) {
  worker_options opts;
  opts.common.idle_timeout_ms = 0; // a worker's job is to wait for jobs
  const bool custom = static_cast<bool>(handler);
  CLI::App app(custom
                   ? "A C++ mtask worker: runs tasks from mtask-ventilator on -j threads and pushes their results\n"
                     "to mtask-sink. A task whose handler throws fails with the exception's message."
                   : "Runs tasks from mtask-ventilator and pushes their results to mtask-sink.\n"
                     "Run as: mtask-worker [OPTIONS] -- CMD [ARG...]   Each task runs CMD (no shell, as parallel -q).\n"
                     "        With replacement strings in CMD or an ARG, the task goes into the arguments: {} the\n"
                     "        task, {.} without its extension, {/} its basename, {//} its dirname, {/.} basename\n"
                     "        without extension, {#} its number (from 1), {%} its slot (1..-j); with --colsep,\n"
                     "        {1} {2} {-1}... its columns, and {1.} {2/} {1//} {1/.}... Without any, the task\n"
                     "        (with its newline) is written to CMD's stdin, as with parallel --pipe.\n"
                     "        The result is CMD's stdout; a non-zero exit or a signal fails the task.\n"
                     "    or: mtask-worker [OPTIONS] --builtin echo|sleep",
               program_name(argc > 0 ? argv[0] : nullptr, "mtask-worker"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from a ventilator; 0: never");
  add_security_flags(app, opts.common, role::worker);
  worker_flags flags;
  flags.add(app, opts, {.once = true, .command = !custom});
  auto validate = [&] { flags.finish(); };
  if (int rc = parse_flags(app, opts.common, argc, argv, validate, custom ? nullptr : &opts.command); rc >= 0)
    return rc;
  // A --once worker that started after its job ended would otherwise wait for ever: unless told
  // otherwise it gives up like the ventilator and the sink do.
  if (opts.once && app.get_option("--idle-timeout-ms")->count() == 0) opts.common.idle_timeout_ms = 60000;
  if (custom) opts.handler = std::move(handler);
  if (!opts.handler && !opts.dry_run && !has_replacement_string(opts.command.front()) &&
      find_executable(opts.command.front()).empty()) {
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
