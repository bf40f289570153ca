// mtask-sink's own flags, shared by mtask-sink, custom sinks and mtask.
#include "sink/sink_flags.hpp"

#include "mtask/error.hpp"

#include <CLI/CLI.hpp>

namespace mtask {

void sink_flags::add(CLI::App& app, sink_options& opts, bool output_modes) {
  opts_ = &opts;
  app.add_option("--failures", opts.failures_path,
                 "Write one JSON line per task that failed for good to FILE (id, attempts, status, exit status or "
                 "signal, payload, stderr tail)");
  app.add_option("--output", opts.output_path, "Write the results to FILE instead of stdout");
  app.add_option("--joblog", opts.joblog_path,
                 "Write one line per attempt to FILE in GNU parallel's joblog format (Seq Host Starttime JobRuntime "
                 "Send Receive Exitval Signal Command); workers then send each attempt's start time, payload size "
                 "and command line");
  app.add_option("--report", opts.report_path,
                 "At the end, write one self-contained HTML page to FILE: a timeline of every attempt per worker "
                 "lane (time buckets past 5000 attempts), throughput, the runtime histogram, the slowest tasks and "
                 "the failures, with the figures as embedded JSON; workers then send each attempt's start time");
  app.add_option("--stats", opts.stats_path,
                 "At the end, write the job's figures to FILE as one JSON document: totals by status, retries, "
                 "duplicates; per worker its attempts, failures, busy time and runtime percentiles; the slowest tasks");
  auto* on = app.add_flag_callback(
      "--progress", [&opts] { opts.progress = sink_options::progress_mode::on; },
      "Show progress on stderr: done/total, rate, ETA, workers and slots, failures (default: when stderr is a "
      "terminal); redrawn in place on a terminal, else a plain line every --progress-interval-ms");
  auto* off = app.add_flag_callback(
      "--no-progress", [&opts] { opts.progress = sink_options::progress_mode::off; }, "No progress line");
  on->excludes(off);
  app.add_option("--progress-interval-ms", opts.progress_interval_ms,
                 "With --progress and stderr not a terminal: a progress line this often")
      ->capture_default_str()
      ->check(CLI::Range(10, 3600000));
  app.add_option("--journal", opts.journal_path,
                 "Journal in FILE which tasks are final (and where they end in --output), durably before they are "
                 "acknowledged, so that the same command run again after a crash resumes the job. A journal that "
                 "exists means resume; a new job needs a path that does not exist yet");
  app.add_option("--journal-every", opts.journal_every, "With --journal: fsync after this many final results...")
      ->check(CLI::PositiveNumber);
  app.add_option("--journal-interval-ms", opts.journal_interval_ms,
                 "...or this long after the first result of a group, whichever comes first")
      ->check(CLI::PositiveNumber);
  if (!output_modes) return;
  auto* keep =
      app.add_flag("-k,--keep-order", opts.keep_order, "Write results in input order rather than as they arrive");
  auto* jsonl = app.add_flag("--jsonl", opts.jsonl,
                             "Write one JSON object per result: id, status, attempts, worker, runtime_us, output");
  auto* r = app.add_option("--reduce", reduce_,
                           "Write only the total of all results: sum, count, min, max or mean (each result one "
                           "number; exact for integers)");
  auto* k = app.add_option("--reduce-by-key", reduce_by_key_,
                           "Results are lines KEY<TAB>VALUE; write one line per key, sorted: sum, count, min or max");
  app.add_flag("--per-line", per_line_, "With --reduce: every line of a result is a number");
  app.add_option("--results", opts.results_dir,
                 "Also write each task's final attempt to DIR in parallel's layout: DIR/1/ARG/ (DIR/1/A/2/B/ for "
                 "::: groups; '/' in an argument as '\\_') holding seq, stdout, stderr (its last 2 KiB) and status "
                 "(mtask's own: ok, exit N, signal N...)")
      ->type_name("DIR");
  auto* tag = app.add_flag("--tag", opts.tag,
                           "Prefix each output line with its task and a tab, as parallel --tag does (the task's "
                           "arguments joined by spaces); workers then send each task back with its result");
  tag->excludes(jsonl)->excludes(r)->excludes(k);
  r->excludes(k)->excludes(keep)->excludes(jsonl);
  k->excludes(keep)->excludes(jsonl);
}

void sink_flags::finish() const {
  if (per_line_ && reduce_.empty()) throw usage_error("--per-line only makes sense with --reduce");
  if (!opts_->journal_path.empty() && opts_->output_path.empty()) {
    throw usage_error("--journal needs --output FILE (the journal says where results end in it)");
  }
  if (!reduce_.empty()) {
    (void)make_reducer(reduce_, per_line_); // reject an unknown operation now, not at the first result
    opts_->make_aggregator = [reduce = reduce_, per_line = per_line_] { return make_reducer(reduce, per_line); };
  } else if (!reduce_by_key_.empty()) {
    (void)make_key_reducer(reduce_by_key_);
    opts_->make_aggregator = [reduce_by_key = reduce_by_key_] { return make_key_reducer(reduce_by_key); };
  }
}

} // namespace mtask
