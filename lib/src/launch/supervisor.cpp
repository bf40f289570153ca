// The wait loop of mtask: sigtimedwait on SIGCHLD, SIGINT and SIGTERM, with deadlines for the
// children that do not leave on their own.
#include "launch/supervisor.hpp"

#include "common/log.hpp"
#include "mtask/exit_code.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mtask {
namespace {

// After the sink is done, the ventilator and the worker leave on their own as soon as they hear it;
// this is only for one that does not (a worker that lost its ventilator first).
constexpr auto leave_grace = std::chrono::seconds(10);
// An ssh whose worker has not ended within this after the sink (its stdin closed) is still
// connecting, or its host is unreachable: the job needs it no more.
constexpr auto remote_grace = std::chrono::seconds(3);
// After SIGTERM, a role shuts down cleanly (a worker stops its commands: SIGTERM, SIGKILL 1 s later).
constexpr auto term_grace = std::chrono::seconds(10);

sigset_t job_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGCHLD);
  return s;
}

std::string describe(int status) {
  return WIFSIGNALED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                             : fmt::format("exited with status {}", WEXITSTATUS(status));
}

} // namespace

supervisor::supervisor() : leave_grace_(leave_grace) {
  const sigset_t s = job_signals();
  ::sigprocmask(SIG_BLOCK, &s, &old_mask_);
}

supervisor::~supervisor() { ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr); }

void supervisor::start(const role_process_spec& spec, role_kind kind, int stdin_writer) {
  try {
    const pid_t pid = start_role_process(spec, old_mask_);
    if (spec.stdin_fd >= 0) ::close(spec.stdin_fd);
    children_.push_back(child{spec.name, pid, kind, stdin_writer, std::nullopt, 0, stdin_writer >= 0});
  } catch (...) {
    if (spec.stdin_fd >= 0) ::close(spec.stdin_fd);
    if (stdin_writer >= 0) ::close(stdin_writer);
    stop_all(SIGTERM);
    (void)wait();
    throw;
  }
}

void supervisor::stop_and_wait() {
  stop_all(SIGTERM);
  (void)wait();
}

void supervisor::set_leave_grace(std::chrono::milliseconds extra) { leave_grace_ = leave_grace + extra; }

void supervisor::close_stdins() {
  for (auto& c : children_) {
    if (c.stdin_writer >= 0) ::close(c.stdin_writer);
    c.stdin_writer = -1;
  }
}

bool supervisor::worker_left() const {
  return std::any_of(children_.begin(), children_.end(), [](const child& c) {
    return c.kind == role_kind::worker && (!c.code || *c.code == exit_ok || *c.code == exit_tasks_failed);
  });
}

void supervisor::stop_all(int sig) {
  close_stdins();
  for (const auto& c : children_) {
    if (!c.code) ::kill(c.pid, sig);
  }
  if (sig != SIGKILL && !kill_at_) kill_at_ = clock::now() + term_grace;
}

bool supervisor::all_done() const {
  return std::all_of(children_.begin(), children_.end(), [](const child& c) { return c.code.has_value(); });
}

void supervisor::reap() {
  while (true) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& c : children_) {
      if (c.pid != pid) continue;
      c.code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
      c.status = status;
      on_exit(c);
    }
  }
}

// What one child's exit means for the job.
void supervisor::on_exit(child& c) {
  const int code = *c.code;
  log::debug("{} (pid {}) {}", c.name, c.pid, describe(c.status));
  if (stop_signal_ != 0) return; // stopping anyway: every exit is expected
  if (c.kind == role_kind::sink) {
    sink_code_ = code;
    if (code == exit_ok || code == exit_tasks_failed) {
      if (!term_at_) term_at_ = clock::now() + leave_grace_;
      remote_term_at_ = clock::now() + remote_grace;
      // Every result is in: a worker over ssh that has not heard yet (one still connecting, say)
      // need not; its session's end stops it now.
      close_stdins();
    } else {
      stop_all(SIGTERM); // nobody will collect results: the others would wait out --idle-timeout-ms
    }
    return;
  }
  // The ventilator ends a job with 0 or 3, a --once worker with 0. Anything else, while the sink
  // still waits, means the job cannot finish, unless it was one worker of several.
  if (c.stdin_writer >= 0) ::close(c.stdin_writer);
  c.stdin_writer = -1;
  if (code == exit_ok || code == exit_tasks_failed || sink_code_) return;
  if (c.kind == role_kind::worker && worker_left()) {
    log::warn("{} {}; the job goes on with the other workers", c.name, describe(c.status));
    return;
  }
  if (c.kind == role_kind::worker) {
    log::error("{} {}; no worker is left: stopping the job", c.name, describe(c.status));
    failed_ = true;
    stop_all(SIGTERM);
  } else {
    log::error("{} {}; stopping the job", c.name, describe(c.status));
    failed_ = true;
    stop_all(SIGTERM);
  }
}

int supervisor::wait() {
  const sigset_t s = job_signals();
  while (!all_done()) {
    reap();
    if (all_done()) break;
    const auto now = clock::now();
    if (kill_at_ && now >= *kill_at_) {
      for (const auto& c : children_) {
        if (!c.code) log::warn("{} (pid {}) did not stop in time: killing it", c.name, c.pid);
      }
      stop_all(SIGKILL);
      kill_at_.reset();
    } else if (remote_term_at_ && now >= *remote_term_at_) {
      for (const auto& c : children_) {
        if (c.remote && !c.code) {
          log::info("{} was still starting when the job ended: stopping it", c.name);
          ::kill(c.pid, SIGTERM);
        }
      }
      remote_term_at_.reset();
    } else if (term_at_ && now >= *term_at_) {
      for (const auto& c : children_) {
        if (!c.code) log::warn("{} (pid {}) still runs after the sink finished: stopping it", c.name, c.pid);
      }
      term_at_.reset();
      stop_all(SIGTERM); // and their stdin closed: a worker over ssh stops when its session does
    }
    std::optional<clock::time_point> next;
    for (const auto& d : {term_at_, kill_at_, remote_term_at_}) {
      if (d && (!next || *d < *next)) next = d;
    }
    int sig = 0;
    if (next) {
      const auto left = std::max(clock::duration::zero(), *next - clock::now());
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
      const timespec ts{static_cast<time_t>(secs.count()),
                        static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count())};
      sig = ::sigtimedwait(&s, nullptr, &ts);
    } else {
      sig = ::sigwaitinfo(&s, nullptr);
    }
    if ((sig == SIGINT || sig == SIGTERM) && stop_signal_ == 0) {
      stop_signal_ = sig;
      log::info("stopped by signal {}: passing it on", sig);
      stop_all(sig);
    }
  }
  if (stop_signal_ != 0) return 128 + stop_signal_;
  if (failed_) return exit_failure;
  if (!sink_code_) return exit_failure;
  // A sink killed by a signal we did not send is a failure of the job, not a stop.
  return *sink_code_ > 128 ? exit_failure : *sink_code_;
}

} // namespace mtask
