// mtask-top: a live view of a running job, from the ventilator's status_report.
#pragma once

namespace mtask {

// The whole mtask-top program. Returns: its exit code (0; 1 when the ventilator does not answer
// within --timeout-ms; 2 for a usage error).
int top_main(int argc, char** argv);

} // namespace mtask
