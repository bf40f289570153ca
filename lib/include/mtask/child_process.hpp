// One run of a command for one task: spawn with pipes, feed stdin, collect stdout and the tail of
// stderr without blocking, and learn of its exit through a pidfd. The worker's event loop polls
// the descriptors this exposes; nothing here blocks.
#pragma once

#include "mtask/spawn.hpp"

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mtask {

class child_process {
 public:
  // Starts argv[0] (searched in PATH) with `input` on its stdin.
  // If it cannot start, start_errno() says why and the process is already finished.
  child_process(const std::vector<std::string>& argv, std::string input);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  // Appends the descriptors to poll now (stdin while input remains, stdout, stderr, the pidfd).
  void poll_items(std::vector<pollfd>& fds) const;
  // Services whichever of our descriptors `fds` reports ready (ignores the others).
  void on_ready(const std::vector<pollfd>& fds);

  [[nodiscard]] bool finished() const { return start_errno_ != 0 || (reaped_ && out_fd_ < 0 && err_fd_ < 0); }
  [[nodiscard]] int start_errno() const { return start_errno_; }
  // Valid once finished(): the raw wait status.
  [[nodiscard]] int wait_status() const { return status_; }
  [[nodiscard]] std::string& output() { return out_; }
  [[nodiscard]] std::string error_tail() const;
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Sends `sig` to the command's process group (the command and whatever it started).
  void kill(int sig);

  static constexpr std::size_t error_tail_bytes = 2048;

 private:
  void write_input();
  void reap();

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string input_;
  std::size_t written_ = 0;
  std::string out_, err_;
  int start_errno_ = 0;
  int status_ = 0;
  bool reaped_ = false;
};

} // namespace mtask
