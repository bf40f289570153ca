// SIGINT/SIGTERM recorded in a flag and announced on a self-pipe (see stop_signal.hpp).
#include "common/stop_signal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace mtask {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
int g_pipe[2] = {-1, -1};
pid_t g_pipe_pid = 0; // the process that made the pipe: a forked child makes its own

extern "C" void on_stop_signal(int sig) {
  const int saved = errno; // the interrupted code may be about to read errno
  g_stop_signal = sig;
  if (g_pipe[1] >= 0) {
    const char byte = 1;
    (void)!::write(g_pipe[1], &byte, 1); // full pipe: a wake-up is already pending
  }
  errno = saved;
}

} // namespace

void install_stop_handlers() {
  if (g_pipe[0] >= 0 && g_pipe_pid != ::getpid()) {
    // Inherited over a fork: shared with the parent, whose drain would take our wake-ups.
    ::close(g_pipe[0]);
    ::close(g_pipe[1]);
    g_pipe[0] = g_pipe[1] = -1;
  }
  if (g_pipe[0] < 0) {
    if (::pipe2(g_pipe, O_NONBLOCK | O_CLOEXEC) != 0) g_pipe[0] = g_pipe[1] = -1;
    g_pipe_pid = ::getpid();
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; // no SA_RESTART: a blocking call returns EINTR and the loop sees the signal
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN); // a closed stdout is an error to report, not a silent death
}

int stop_signal() { return g_stop_signal; }

int stop_signal_fd() { return g_pipe[0]; }

void drain_stop_signal_fd() {
  if (g_pipe[0] < 0) return;
  char buf[64];
  while (::read(g_pipe[0], buf, sizeof buf) > 0) {}
}

} // namespace mtask
