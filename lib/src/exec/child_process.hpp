// One run of a command for one task: spawn with pipes, feed stdin, collect stdout (up to a limit)
// and the tail of stderr without blocking, and learn of its exit through a pidfd. The worker's
// event loop polls the descriptors this exposes; nothing here blocks.
#pragma once

#include "common/clock.hpp"
#include "exec/spawn.hpp"

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

class child_process {
 public:
  // Starts argv[0] (searched in PATH) with `input` on its stdin, keeping at most
  // `max_output_bytes` of its stdout (see output_too_large()).
  // If it cannot start, start_errno() says why and the process is already finished.
  child_process(const std::vector<std::string>& argv, std::string input,
                std::size_t max_output_bytes = std::numeric_limits<std::size_t>::max());
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  // Appends the descriptors to poll now (stdin while input remains, stdout, stderr, the pidfd).
  void poll_items(std::vector<pollfd>& fds) const;
  // Services whichever of our descriptors `fds` reports ready (ignores the others), and closes
  // the pipes once exit_grace has passed since the command exited.
  void on_ready(const std::vector<pollfd>& fds, time_point now);
  // Returns: when on_ready must run even if nothing is ready (the end of the grace after the
  // command's exit), or nothing while the command runs or once it is finished.
  [[nodiscard]] std::optional<time_point> deadline() const;

  // The command has exited and its pipes are closed (at end of file, or after exit_grace).
  [[nodiscard]] bool finished() const { return start_errno_ != 0 || (reaped_ && out_fd_ < 0 && err_fd_ < 0); }
  // The command itself has exited (and was reaped); its pipes may still be open.
  [[nodiscard]] bool exited() const { return reaped_; }
  [[nodiscard]] int start_errno() const { return start_errno_; }
  // Valid once finished(): the raw wait status.
  [[nodiscard]] int wait_status() const { return status_; }
  // Its stdout; empty once output_too_large().
  [[nodiscard]] std::string& output() { return out_; }
  // True once its stdout passed max_output_bytes: what was read is discarded, stdin and stdout are
  // closed and no more is read. The command still runs: killing it is the caller's decision.
  [[nodiscard]] bool output_too_large() const { return too_large_; }
  [[nodiscard]] std::string error_tail() const;
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Sends `sig` to the command's process group (the command and whatever it started).
  void kill(int sig);

  static constexpr std::size_t error_tail_bytes = 2048;
  // How long the pipes stay open after the command exits. Its output is normally at end of file
  // at once; a grandchild that left the process group (setsid, a daemon) can hold the pipes open
  // for ever, and must not hold the task's slot with them. 50 ms takes in what a command's
  // children write as it exits, and is small next to starting a process on a slow machine.
  static constexpr millis exit_grace{50};

 private:
  void write_input();
  void read_output();
  void reap(time_point now);
  void close_pipes();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string input_;
  std::size_t written_ = 0;
  std::string out_, err_;
  std::size_t max_output_bytes_;
  int start_errno_ = 0;
  int status_ = 0;
  bool reaped_ = false;
  bool too_large_ = false;
  time_point exited_at_{}; // valid once reaped_
};

} // namespace mtask
