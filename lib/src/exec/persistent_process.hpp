// A long-lived command serving many tasks (mtask-worker --persistent): each task is written to
// its stdin as one line, and the next line of its stdout is that task's result. Several lines may
// be in flight at once; answers come back in order. Non-blocking, driven by the worker's poll.
#pragma once

#include "exec/spawn.hpp"

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtask {

class persistent_process {
 public:
  // Starts argv[0] (searched in PATH); an answer line longer than `max_line_bytes` (without its
  // newline) is not read (see line_too_large()).
  explicit persistent_process(const std::vector<std::string>& argv,
                              std::size_t max_line_bytes = std::numeric_limits<std::size_t>::max());
  ~persistent_process();
  persistent_process(const persistent_process&) = delete;
  persistent_process& operator=(const persistent_process&) = delete;

  // Queues `line` (which must not contain '\n') for the task known as `key`.
  void submit(std::uint64_t key, std::string_view line);

  void poll_items(std::vector<pollfd>& fds) const;
  void on_ready(const std::vector<pollfd>& fds);

  // Returns: the (key, answer line without its newline) pairs that arrived, oldest first.
  std::vector<std::pair<std::uint64_t, std::string>> take_answers();

  // True once the command has exited (and was reaped), or never started.
  [[nodiscard]] bool dead() const { return start_errno_ != 0 || reaped_; }
  [[nodiscard]] int start_errno() const { return start_errno_; }
  // Valid once dead() and the process was reaped (else -1): the raw wait status.
  [[nodiscard]] int wait_status() const { return reaped_ ? status_ : -1; }
  // True once an answer line (the one for in_flight().front()) passed max_line_bytes: what was
  // read of it is discarded and stdin and stdout are closed, so no later line can be matched to
  // its task. The command still runs: killing it is the caller's decision.
  [[nodiscard]] bool line_too_large() const { return too_large_; }
  [[nodiscard]] std::string error_tail() const;
  // Keys of the lines sent and not answered, oldest first.
  [[nodiscard]] const std::deque<std::uint64_t>& in_flight() const { return in_flight_; }
  [[nodiscard]] std::chrono::steady_clock::time_point oldest_since() const { return oldest_since_; }
  void kill(int sig);

  static constexpr std::size_t error_tail_bytes = 2048;

 private:
  void write_pending();
  void read_answers();
  void reap();

  piped_child child_;
  std::string to_write_;
  std::string read_buf_;
  std::string err_;
  std::deque<std::uint64_t> in_flight_;
  std::vector<std::pair<std::uint64_t, std::string>> answers_;
  std::chrono::steady_clock::time_point oldest_since_{}; // when the oldest unanswered line was sent
  std::size_t max_line_bytes_;
  int start_errno_ = 0;
  int status_ = 0;
  bool reaped_ = false;
  bool too_large_ = false;
};

} // namespace mtask
