// The mtask-keygen program: makes a CURVE key pair as two certificate files.
#pragma once

namespace mtask {

// Returns: the process exit code (0, 1 when a file cannot be written, 2 after a usage error).
int keygen_main(int argc, char** argv);

} // namespace mtask
