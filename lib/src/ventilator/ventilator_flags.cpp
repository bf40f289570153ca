// mtask-ventilator's own flags, shared by mtask-ventilator and mtask.
#include "ventilator/ventilator_flags.hpp"

#include "common/size.hpp"
#include "input/range.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

namespace mtask {

void ventilator_flags::add(CLI::App& app, ventilator_options& opts) {
  opts_ = &opts;
  app.add_option("-i,--input", opts.input, "Read tasks from FILE instead of stdin");
  app.add_option("-N,--lines", opts.split.records_per_task, "Records per task")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_flag("-0,--null", null_separated_, "Records end with NUL instead of newline");
  auto* block_opt = app.add_option(
      "--block", block_, "Tasks of about SIZE bytes of whole records (4096, 64k, 1M), like parallel --pipe --block");
  auto* range_opt = app.add_option(
      "--range", range_, "No input: the tasks are the integers A, A+STEP, ... up to B (as seq A STEP B prints them)");
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
  app.add_option("--halt", halt_,
                 "Stop early, as GNU parallel does: soon,fail=N (no new task after N failures; running ones finish), "
                 "now,fail=N (running ones are cancelled too), fail=P% (of the job's tasks), success=N, done=N, or "
                 "parallel's 1, 2, -1, -2; the sink writes what it has and exits 3 if any task failed")
      ->capture_default_str();
  app.add_option("--max-held-bytes", max_held_,
                 "With a sink keeping order (-k): stop reading input while the sink holds this much output for a "
                 "task still running (default 16M)");
  app.add_option("--linger-ms", opts.linger_ms,
                 "Once the job is complete, stay this long to tell workers that arrive late that it is over, so "
                 "workers that leave with the job (started by srun or a Kubernetes Job, seconds apart) exit 0 at once "
                 "instead of waiting for --idle-timeout-ms")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30));
}

void ventilator_flags::finish() const {
  if (!block_.empty()) opts_->split.block_bytes = parse_size("--block", block_);
  if (!max_held_.empty()) opts_->max_held_bytes = parse_size("--max-held-bytes", max_held_);
  if (!range_.empty()) opts_->range = parse_range(range_);
  if (null_separated_) opts_->split.separator = '\0';
  opts_->halt = parse_halt_policy(halt_);
  if (groups_.empty()) return;
  const char* other = !opts_->input.empty()                ? "--input"
                      : opts_->range                       ? "--range"
                      : opts_->split.records_per_task != 1 ? "-N"
                      : null_separated_                    ? "-0"
                      : !block_.empty()                    ? "--block"
                                                           : nullptr;
  if (other != nullptr)
    throw usage_error(fmt::format("{} cannot be used with ::: or :::: (the argument lists are the input)", other));
}

} // namespace mtask
