// Watches the roles of an mtask job: passes SIGINT/SIGTERM on, stops the rest when one fails, waits
// for every child (SIGKILL after a grace period) and decides mtask's exit code.
#pragma once

#include "launch/role_process.hpp"

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

// What a role's exit means for the job: the sink's code is the job's; a coordinator's failure
// stops the job; a worker's failure is survived while another worker is left.
enum class role_kind { sink, coordinator, worker };

class supervisor {
 public:
  // Blocks SIGINT, SIGTERM and SIGCHLD in this process: they are taken with sigtimedwait, so none
  // is lost between starting the children and waiting for them.
  supervisor();
  // Restores the signal mask (children must all have been waited for: wait() does).
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  // Starts a role. `stdin_writer`: the write end of the pipe that is its stdin (spec.stdin_fd,
  // closed here once started), kept open until the job ends or stops, then closed: the role's
  // signal to leave (an ssh session's end).
  // Throws: error when it cannot be started (the ones already started are stopped and waited for).
  void start(const role_process_spec& spec, role_kind kind, int stdin_writer = -1);

  // Stops every role started (SIGTERM, SIGKILL after a grace) and waits for them: for a job that
  // cannot be started whole.
  void stop_and_wait();
  // How much longer than usual the roles may stay after the sink succeeded (mtask --linger-ms).
  void set_leave_grace(std::chrono::milliseconds extra);

  // Waits until every child has exited.
  // Returns: 128+N when stopped by signal N; 1 when a role other than the sink failed (or the
  //          sink died of a signal); otherwise the sink's exit code (0, 3 or 1).
  int wait();

 private:
  struct child {
    std::string name;
    pid_t pid;
    role_kind kind;
    int stdin_writer;        // -1: none, or closed
    std::optional<int> code; // once exited: its exit code, or 128+signal
    int status = 0;          // once exited: as waitpid gave it
    bool remote = false;     // started with a stdin pipe: a worker over ssh
  };
  using clock = std::chrono::steady_clock;

  void reap();
  void on_exit(child& c);
  void stop_all(int sig);
  void close_stdins();
  [[nodiscard]] bool worker_left() const;
  bool all_done() const;

  sigset_t old_mask_{};
  std::vector<child> children_;
  int stop_signal_ = 0;                             // SIGINT/SIGTERM we received
  bool failed_ = false;                             // a role failed: the job cannot finish
  std::optional<clock::time_point> term_at_;        // SIGTERM what is left (the sink is done)
  std::optional<clock::time_point> remote_term_at_; // SIGTERM an ssh still connecting (the sink is done)
  clock::duration leave_grace_;
  std::optional<clock::time_point> kill_at_; // SIGKILL what is left
  std::optional<int> sink_code_;
};

} // namespace mtask
