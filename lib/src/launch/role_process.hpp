// Starting one role of an mtask job as a child process tied to mtask's life.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <string>

namespace mtask {

struct role_process_spec {
  std::string name;              // its program name in logs and ps: "mtask-sink"
  bool stdin_null = false;       // stdin from /dev/null (only the ventilator reads ours)
  bool stdout_to_stderr = false; // only the sink writes results to our stdout
  int stdin_fd = -1;             // stdin from this descriptor (closed in mtask by the caller)
  std::string tidy_dir;          // removed when the role ends after mtask died
  std::function<int()> body;     // the role: run in the child, its return value the exit code
};

// Forks a child that runs `spec.body` and exits with its code. The child gets SIGTERM when mtask
// dies (PR_SET_PDEATHSIG), and exits at once if mtask died before that was set. The caller must
// have SIGINT, SIGTERM and SIGCHLD blocked (supervisor does), so no signal is lost or handled by
// mtask's code in the child; the child unblocks them once the role's own handlers are in place.
// Returns: the child's pid.
// Throws: error when fork fails.
pid_t start_role_process(const role_process_spec& spec, const sigset_t& unblocked_mask);

} // namespace mtask
