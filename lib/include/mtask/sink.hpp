// The sink role: collect results from workers, keep the first copy of each task, write them to
// stdout (as they come, or in task order), acknowledge them to the ventilator, and finish once
// every task of the job is written.
#pragma once

#include "mtask/aggregator.hpp"
#include "mtask/options.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mtask {

struct sink_options {
  common_options common;
  bool keep_order = false;   // -k: write results in task order
  std::string failures_path; // --failures: one JSON line per task that failed for good
  bool jsonl = false;        // one JSON object per result instead of its bytes
  bool tag = false;          // --tag: each output line prefixed with its task and a tab
  std::string results_dir;   // --results: a folder per task with its stdout, stderr and exit status
  std::string output_path;   // --output: results go to this file instead of stdout
  // --journal: which tasks are final, and where their bytes end in the output, made durable before
  // they are acknowledged; an existing journal resumes its job (see docs/ARCHITECTURE.md, Journal).
  std::string journal_path;
  std::int64_t journal_every = 8192;    // fsync after this many final results...
  std::int64_t journal_interval_ms = 2; // ...or this long after the first of a group
  std::string stats_path;               // --stats: one JSON document of the job's figures at the end
  std::string joblog_path;              // --joblog: one line per attempt, GNU parallel's format
  std::string report_path;              // --report: one self-contained HTML page of the job at the end
  // --progress (on) / --no-progress (off); automatic: on when stderr is a terminal and not -q.
  enum class progress_mode { automatic, on, off } progress = progress_mode::automatic;
  std::int64_t progress_interval_ms = 5000; // when stderr is not a terminal: a plain line this often
  // When set, results are fed to the aggregator it makes and only its total is written, at the
  // end (--reduce, --reduce-by-key, or a custom reducer through the C++ API).
  std::function<std::unique_ptr<aggregator>()> make_aggregator;
};

// The whole sink program with a custom aggregator: parses the standard sink flags from argv
// (--ventilator, --sink, -v, ... as mtask-sink has them) and serves one job.
// Returns: the process exit code.
int sink_main(int argc, char** argv, std::function<std::unique_ptr<aggregator>()> make_aggregator);

// Serves one job to completion.
// Returns: the process exit code (0, 1, 3 when some tasks failed, or 128+signal).
int run_sink(const sink_options& opts);

} // namespace mtask
