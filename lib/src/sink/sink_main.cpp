// The mtask-sink program (flags, then run_sink), also the entry point of custom sinks.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "mtask/error.hpp"
#include "mtask/sink.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace mtask {

int sink_main(int argc, char** argv, std::function<std::unique_ptr<aggregator>()> make_aggregator) {
  sink_options opts;
  const bool custom = static_cast<bool>(make_aggregator);
  CLI::App app(custom ? "A custom mtask sink: collects results from mtask-worker processes, reduces them, and writes\n"
                        "the total to stdout once every task's result is in. Exits 0, or 3 if some tasks failed."
                      : "Collects results from mtask-worker processes and writes each task's result once to stdout.\n"
                        "Exits once every task's result is written: 0, or 3 if some tasks failed (named on stderr).",
               program_name(argc > 0 ? argv[0] : nullptr, "mtask-sink"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from the ventilator; 0: never");
  add_security_flags(app, opts.common, role::sink);
  app.add_option("--failures", opts.failures_path,
                 "Write one JSON line per task that failed for good to FILE (id, attempts, status, exit status or "
                 "signal, payload, stderr tail)");
  app.add_option("--output", opts.output_path, "Write the results to FILE instead of stdout");
  app.add_option("--stats", opts.stats_path,
                 "At the end, write the job's figures to FILE as one JSON document: totals by status, retries, "
                 "duplicates; per worker its attempts, failures, busy time and runtime percentiles; the slowest tasks");
  app.add_option("--journal", opts.journal_path,
                 "Journal in FILE which tasks are final (and where they end in --output), durably before they are "
                 "acknowledged, so that the same command run again after a crash resumes the job. A journal that "
                 "exists means resume; a new job needs a path that does not exist yet");
  app.add_option("--journal-every", opts.journal_every, "With --journal: fsync after this many final results...")
      ->check(CLI::PositiveNumber);
  app.add_option("--journal-interval-ms", opts.journal_interval_ms,
                 "...or this long after the first result of a group, whichever comes first")
      ->check(CLI::PositiveNumber);
  std::string reduce, reduce_by_key;
  bool per_line = false;
  if (!custom) {
    auto* keep =
        app.add_flag("-k,--keep-order", opts.keep_order, "Write results in input order rather than as they arrive");
    auto* jsonl = app.add_flag("--jsonl", opts.jsonl,
                               "Write one JSON object per result: id, status, attempts, worker, runtime_us, output");
    auto* r = app.add_option("--reduce", reduce,
                             "Write only the total of all results: sum, count, min, max or mean (each result one "
                             "number; exact for integers)");
    auto* k = app.add_option("--reduce-by-key", reduce_by_key,
                             "Results are lines KEY<TAB>VALUE; write one line per key, sorted: sum, count, min or max");
    app.add_flag("--per-line", per_line, "With --reduce: every line of a result is a number");
    r->excludes(k)->excludes(keep)->excludes(jsonl);
    k->excludes(keep)->excludes(jsonl);
  }
  auto validate = [&] {
    if (per_line && reduce.empty()) throw usage_error("--per-line only makes sense with --reduce");
    if (!opts.journal_path.empty() && opts.output_path.empty()) {
      throw usage_error("--journal needs --output FILE (the journal says where results end in it)");
    }
    if (!opts.journal_path.empty() && custom && !make_aggregator()->save()) {
      throw usage_error("--journal needs a reducer that can save its total (override aggregator::save and restore)");
    }
    if (!reduce.empty()) {
      (void)make_reducer(reduce, per_line); // reject an unknown operation now, not at the first result
      opts.make_aggregator = [reduce, per_line] { return make_reducer(reduce, per_line); };
    } else if (!reduce_by_key.empty()) {
      (void)make_key_reducer(reduce_by_key);
      opts.make_aggregator = [reduce_by_key] { return make_key_reducer(reduce_by_key); };
    }
  };
  if (int rc = parse_flags(app, opts.common, argc, argv, validate); rc >= 0) return rc;
  if (custom) opts.make_aggregator = std::move(make_aggregator);
  return run_role([&] { return run_sink(opts); });
}

} // namespace mtask
