// The sink role: collect results from workers, keep the first copy of each task, write them to
// stdout (as they come, or in task order), acknowledge them to the ventilator, and finish once
// every task of the job is written.
#pragma once

#include "mtask/cli.hpp"

#include <string>

namespace mtask {

struct sink_options {
  common_options common;
  bool keep_order = false;  // -k: write results in task order
  std::string failures_path; // --failures: one JSON line per task that failed for good
};

// Serves one job to completion.
// Returns: the process exit code (0, 1, 3 when some tasks failed, or 128+signal).
int run_sink(const sink_options& opts);

} // namespace mtask
