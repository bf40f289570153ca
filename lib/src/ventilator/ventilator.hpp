// The ventilator role: read input, split it into tasks, dispatch them against worker credit,
// track them in the ledger until the sink acknowledges each, and finish when the sink confirms.
#pragma once

#include "mtask/options.hpp"
#include "mtask/ventilator.hpp"

#include "input/range.hpp"
#include "input/splitter.hpp"
#include "ventilator/halt_policy.hpp"
#include "ventilator/ledger.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

struct ventilator_options {
  common_options common;
  std::string input; // empty: stdin
  split_options split;
  std::optional<range_spec> range; // --range: generate the tasks instead of reading input
  // ::: and ::::, the lists of arguments whose cross product is the input (stdin is then not read)
  std::vector<std::vector<std::string>> arg_lists;
  std::size_t window = 32768;               // tasks read and not yet acknowledged by the sink
  ledger_limits limits;                     // --retries, --max-crashes
  std::size_t batch = 4096;                 // tasks per message at most (a worker's credit decides how many it gets)
  std::uint64_t max_held_bytes = 16u << 20; // -k: reading pauses while the sink holds this much for a gap
  std::int64_t linger_ms = 0;               // after the job: keep telling workers that arrive late it is over
  halt_policy halt;                         // --halt: stop early on failures, successes or tasks done
};

// Runs one job to completion.
// Returns: the process exit code (0, 1, 3, or 128+signal).
int run_ventilator(const ventilator_options& opts);

} // namespace mtask
