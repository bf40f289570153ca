// mtask-ventilator: parse flags, then run the ventilator role.
#include "mtask/error.hpp"
#include "mtask/log.hpp"
#include "mtask/ventilator.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  mtask::ventilator_options opts;
  CLI::App app("Reads input, splits it into tasks and hands them to mtask-worker processes as they have free slots.\n"
               "Exits once mtask-sink has written every result: 0, or 3 if some tasks failed.",
               "mtask-ventilator");
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  mtask::add_common_flags(app, opts.common, "Give up (exit 1) after this long without a sink or, with tasks left, without a live worker; 0: never");
  app.add_option("-i,--input", opts.input, "Read tasks from FILE instead of stdin");
  app.add_option("-N,--lines", opts.split.records_per_task, "Records per task")->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  bool null_separated = false;
  app.add_flag("-0,--null", null_separated, "Records end with NUL instead of newline");
  app.add_option("--window", opts.window, "Tasks read but not yet acknowledged by the sink, at most")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  app.add_option("--batch", opts.batch, "Tasks per message at most (workers' credit, sized from their task times, decides the rest)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--retries", opts.limits.retries, "Run a task that failed (non-zero exit, signal) again, up to N more times, on another worker where one exists")
      ->capture_default_str()
      ->check(CLI::Range(0u, 1000u));
  app.add_option("--max-crashes", opts.limits.max_crashes, "Quarantine a task as failed once this many workers died while running it")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  if (int rc = mtask::parse_flags(app, opts.common, argc, argv, nullptr); rc >= 0) return rc;
  if (null_separated) opts.split.separator = '\0';

  mtask::install_stop_handlers();
  try {
    return mtask::run_ventilator(opts);
  } catch (const std::exception& e) {
    mtask::log::error("{}", e.what());
    return mtask::exit_failure;
  }
}
