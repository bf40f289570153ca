// fork + the role's run function, with the child tied to mtask by PR_SET_PDEATHSIG.
//
// Why fork and call the role rather than exec the installed mtask-ventilator/worker/sink: mtask
// parses every flag once into the roles' own option structs (no second definition of each flag
// to turn them back into argv), a binary of another version found on PATH can never be mixed in,
// and a job starts without three more exec and dynamic loads. It is safe because mtask is single
// threaded and creates no ZeroMQ context: each role makes its own after the fork, in its child.
#include "launch/role_process.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "launch/private_dir.hpp"
#include "mtask/error.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace mtask {
namespace {

[[noreturn]] void run_child(const role_process_spec& spec, pid_t parent, const sigset_t& unblocked_mask) {
  // Tied to the thread that forked us: mtask has only one.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) ::_exit(exit_failure);
  // mtask may have died between fork and prctl: then no SIGTERM will ever come.
  if (::getppid() != parent) ::_exit(128 + SIGTERM);
  ::prctl(PR_SET_NAME, spec.name.substr(0, 15).c_str());
  if (spec.stdin_null) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::dup2(fd, STDIN_FILENO);
      ::close(fd);
    }
  }
  if (spec.stdin_fd >= 0) ::dup2(spec.stdin_fd, STDIN_FILENO);
  if (spec.stdout_to_stderr) ::dup2(STDERR_FILENO, STDOUT_FILENO);
  log::set_program(spec.name);
  // The role's handlers first, then the mask: a SIGINT that came meanwhile is pending and now
  // stops the role cleanly instead of killing it.
  install_stop_handlers();
  ::sigprocmask(SIG_SETMASK, &unblocked_mask, nullptr);
  int code = exit_failure;
  try {
    code = run_role(spec.body);
  } catch (...) {}
  std::fflush(nullptr);
  if (!spec.tidy_dir.empty() && ::getppid() != parent) remove_private_dir(spec.tidy_dir);
  ::_exit(code);
}

} // namespace

pid_t start_role_process(const role_process_spec& spec, const sigset_t& unblocked_mask) {
  const pid_t parent = ::getpid();
  std::fflush(nullptr); // or the child would write our buffered bytes again
  const pid_t pid = ::fork();
  if (pid < 0) throw error(fmt::format("cannot start {}: fork: {}", spec.name, std::strerror(errno)));
  if (pid == 0) run_child(spec, parent, unblocked_mask);
  return pid;
}

} // namespace mtask
