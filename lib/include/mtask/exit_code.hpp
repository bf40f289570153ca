// Exit codes, as STYLE.md and the README state them: shared by the binaries and the roles' cores.
#pragma once

namespace mtask {

enum exit_code : int {
  exit_ok = 0,
  exit_failure = 1,      // runtime failure
  exit_usage = 2,        // bad flags or arguments
  exit_tasks_failed = 3, // finished, but some tasks failed for good
};

} // namespace mtask
