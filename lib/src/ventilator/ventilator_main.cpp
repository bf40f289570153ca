// The mtask-ventilator program: flags, then run_ventilator.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/size.hpp"
#include "input/range.hpp"
#include "mtask/error.hpp"
#include "ventilator/ventilator.hpp"

#include <CLI/CLI.hpp>

namespace mtask {

int ventilator_main(int argc, char** argv) {
  ventilator_options opts;
  CLI::App app(
      "Reads input, splits it into tasks and hands them to mtask-worker processes as they have free slots.\n"
      "Exits once mtask-sink has written every result: 0, or 3 if some tasks failed.",
      program_name(argc > 0 ? argv[0] : nullptr, "mtask-ventilator"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(
      app, opts.common,
      "Give up (exit 1) after this long without a sink or, with tasks left, without a live worker; 0: never");
  add_security_flags(app, opts.common, role::ventilator);
  app.add_option("-i,--input", opts.input, "Read tasks from FILE instead of stdin");
  app.add_option("-N,--lines", opts.split.records_per_task, "Records per task")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  bool null_separated = false;
  app.add_flag("-0,--null", null_separated, "Records end with NUL instead of newline");
  std::string block, range;
  auto* block_opt = app.add_option(
      "--block", block, "Tasks of about SIZE bytes of whole records (4096, 64k, 1M), like parallel --pipe --block");
  auto* range_opt = app.add_option(
      "--range", range, "No input: the tasks are the integers A, A+STEP, ... up to B (as seq A STEP B prints them)");
  range_opt->excludes(block_opt);
  app.get_option("--input")->excludes(range_opt);
  app.get_option("--lines")->excludes(block_opt);
  app.add_option("--window", opts.window, "Tasks read but not yet acknowledged by the sink, at most")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  app.add_option("--batch", opts.batch,
                 "Tasks per message at most (workers' credit, sized from their task times, decides the rest)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option(
         "--retries", opts.limits.retries,
         "Run a task that failed (non-zero exit, signal) again, up to N more times, on another worker where one exists")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1000u));
  app.add_option("--max-crashes", opts.limits.max_crashes,
                 "Quarantine a task as failed once this many workers died while running it")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  std::string max_held;
  app.add_option("--max-held-bytes", max_held,
                 "With a sink keeping order (-k): stop reading input while the sink holds this much output for a "
                 "task still running (default 16M)");
  auto validate = [&] {
    if (!block.empty()) opts.split.block_bytes = parse_size("--block", block);
    if (!max_held.empty()) opts.max_held_bytes = parse_size("--max-held-bytes", max_held);
    if (!range.empty()) opts.range = parse_range(range);
  };
  if (int rc = parse_flags(app, opts.common, argc, argv, validate); rc >= 0) return rc;
  if (null_separated) opts.split.separator = '\0';

  return run_role([&] { return run_ventilator(opts); });
}

} // namespace mtask
