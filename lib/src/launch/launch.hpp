// The mtask program: a whole job (ventilator, sink, local worker slots) in one command.
#pragma once

namespace mtask {

// Returns: the process exit code: the sink's (0, 3, 1), 2 after a usage error, 128+N when
//          stopped by signal N.
int launch_main(int argc, char** argv);

} // namespace mtask
