// The ventilator program as a library call: the mtask-ventilator binary is a main() around it.
// Its options and internals stay inside the library; workers and sinks are where users plug in code.
#pragma once

namespace mtask {

// The mtask-ventilator program: parses its flags from argv and runs one job.
// Returns: the process exit code (0, 1, 2 after a usage error, 3, or 128+signal).
int ventilator_main(int argc, char** argv);

} // namespace mtask
