// mtask's command line: every role's own flags registered into one CLI11 app (by the roles' own
// registration functions) and handed to the role that owns them.
#pragma once

#include "input/arg_lists.hpp"
#include "mtask/sink.hpp"
#include "mtask/worker.hpp"
#include "ventilator/ventilator.hpp"

#include <vector>

namespace mtask {

struct launch_options {
  ventilator_options ventilator;
  worker_options worker;
  sink_options sink;
  std::vector<arg_group> arg_groups; // ::: and :::: after the command: read by launch_main
};

// Parses mtask's argv into the three roles' options (endpoints not set yet: see launch_main);
// sets up logging from -v/-q.
// Returns: -1 to go on, or the exit code to return now (0 after --help/--version, 2 after a usage
//          error, having printed one line "mtask: error: MESSAGE (try --help)").
int parse_launch_flags(int argc, char** argv, launch_options& opts);

} // namespace mtask
