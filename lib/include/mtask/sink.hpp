// The sink role: collect results from workers, keep the first copy of each task, write them to
// stdout (as they come, or in task order), acknowledge them to the ventilator, and finish once
// every task of the job is written.
#pragma once

#include "mtask/aggregator.hpp"
#include "mtask/options.hpp"

#include <functional>
#include <memory>
#include <string>

namespace mtask {

struct sink_options {
  common_options common;
  bool keep_order = false;   // -k: write results in task order
  std::string failures_path; // --failures: one JSON line per task that failed for good
  bool jsonl = false;        // one JSON object per result instead of its bytes
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
