// mtask-worker's own flags, shared by mtask-worker, C++ workers and mtask, and the checks that the
// command, --colsep, --persistent and --builtin go together.
#include "worker/worker_flags.hpp"

#include "common/size.hpp"
#include "common/slots.hpp"
#include "exec/replacement.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace mtask {

void worker_flags::add(CLI::App& app, worker_options& opts, parts which) {
  opts_ = &opts;
  command_ = which.command;
  // As GNU parallel's -j: one slot per core unless told.
  opts.slots = core_count();
  app.add_option("-j,--jobs", jobs_,
                 fmt::format("Tasks to run at once: N, 0 (as many as possible: {}), N% of the cores, +N or -N "
                             "relative to the cores (never below 1); default: one per core ({} here)",
                             zero_slots, opts.slots))
      ->type_name("N");
  if (which.once)
    app.add_flag(
        "--once", opts.once,
        "Exit 0 once the job being served is complete (1 if its ventilator goes away first, or if no ventilator is "
        "heard for --idle-timeout-ms, which then defaults to 60000)");
  app.add_option("--prefetch", opts.prefetch,
                 "Tasks to hold beyond -j so no slot waits for its next task; default: sized from task times (none for "
                 "tasks over ~2 ms)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--delay", opts.delay_seconds,
                 "Wait at least SECONDS (0.5, 2...) between two task starts on this worker, as parallel --delay "
                 "does on its host; each worker spaces its own starts")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0));
  if (!which.command) return;
  max_output_ = fmt::format("{}M", default_max_output_bytes >> 20);
  app.add_option(
         "--task-timeout-ms", opts.task_timeout_ms,
         "Fail a task still running after this long: SIGTERM its process group, then SIGKILL 1 s later; 0: none")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--max-output-bytes", max_output_,
                 "Fail a task whose output (with --persistent: whose answer) passes SIZE bytes (4096, 64k, 1M): "
                 "SIGKILL its process group at once and discard what it wrote")
      ->type_name("SIZE")
      ->capture_default_str();
  // A flag with an optional value (--persistent, --persistent=framed): the framing is a detail of
  // the persistent mode, not a flag of its own that would mean nothing without it.
  app.add_flag("--persistent", persistent_,
               "Start CMD once per slot and keep it. --persistent (or =line): each task is written to its stdin as "
               "one line, the next line of its stdout is the result (CMD must flush per line: sed -u, stdbuf -oL); "
               "--persistent=framed: length-prefixed records each way, answers carry an exit status (README, "
               "\"Persistent workers\")");
  colsep_ = app.add_option("-C,--colsep", colsep_text_,
                           "Cut each task into columns where REGEX matches (ECMAScript; each column trimmed of white "
                           "space, as parallel --colsep): {1}, {2}, {-1} (from the end) are the columns, {1.}, {2/}, "
                           "{1//}, {1/.} combine them with the path forms; the command needs a replacement string")
                ->type_name("REGEX");
  app.add_flag("--dry-run", opts.dry_run,
               "Run nothing: each task's result is the command line that would run, quoted for a shell as parallel "
               "--dry-run quotes it (just the command when the task would go to its stdin)");
  app.add_option("--builtin", builtin_,
                 "Run an in-process handler instead of a command: echo (the task is the result), sleep (sleeps "
                 "for the task's seconds, for benchmarks)");
  app.add_option("command", opts.command, "The command and its arguments, after --");
}

void worker_flags::finish() const {
  if (!jobs_.empty()) opts_->slots = parse_slots(jobs_, core_count());
  if (!command_) return;
  opts_->max_output_bytes = parse_size("--max-output-bytes", max_output_);
  if (!builtin_.empty() && !opts_->command.empty()) throw usage_error("give either --builtin or a command, not both");
  if (!persistent_.empty()) {
    // "true": CLI11's value for the flag alone.
    if (persistent_ != "true" && persistent_ != "line" && persistent_ != "framed")
      throw usage_error(fmt::format("--persistent: unknown framing '{}' (known: line, framed)", persistent_));
    opts_->persistent = true;
    opts_->framing = persistent_ == "framed" ? persistent_framing::framed : persistent_framing::line;
  }
  if (opts_->persistent && opts_->command.empty()) throw usage_error("--persistent needs a command after --");
  if (colsep_->count() > 0) {
    if (opts_->command.empty()) throw usage_error("--colsep needs a command after -- with {1}, {2}...");
    opts_->colsep = colsep_text_;
  }
  if (opts_->dry_run && opts_->command.empty()) throw usage_error("--dry-run needs a command after --");
  if (!opts_->command.empty()) {
    const command_template parsed(opts_->command, opts_->colsep); // a bad --colsep throws here
    if (opts_->colsep && !parsed.has_replacements())
      throw usage_error(
          "--colsep needs a replacement string such as {1} in the command (without one, the task goes "
          "to the command's stdin)");
    if (opts_->persistent && parsed.has_replacements())
      throw usage_error(
          "--persistent writes each task to the command's stdin: the command cannot have replacement "
          "strings such as {}");
  }
  if (!builtin_.empty()) {
    auto b = builtin_handler(builtin_);
    if (!b.handler) throw usage_error(fmt::format("--builtin: unknown built-in '{}' (known: echo, sleep)", builtin_));
    opts_->handler = std::move(b.handler);
    opts_->handler_inline = b.run_inline;
  } else if (opts_->command.empty()) {
    throw usage_error("no command: give one after --, or --builtin");
  }
}

} // namespace mtask
