// A long-lived command serving many tasks (mtask-worker --persistent): each task is written to
// its stdin as a record (a line, or a length-prefixed record with --persistent=framed) and its
// answers come back on stdout in the same order. Several tasks may be in flight at once.
// Non-blocking, driven by the worker's poll. It notices when the conversation cannot go on
// (trouble()); what that costs the tasks in flight is the runner's decision.
#pragma once

#include "exec/persistent_framing.hpp"
#include "exec/spawn.hpp"

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

class persistent_process {
 public:
  // Why no later answer can be matched to its task. Once set, stdin and stdout are closed (nothing
  // more is written or decoded); the command still runs: killing it is the caller's decision.
  enum class trouble : std::uint8_t {
    none,
    stray_output,  // output arrived with no task pending: it is out of step, by how much is unknown
    malformed,     // framed: an answer header that does not parse
    too_large,     // the answer to in_flight().front() passed --max-output-bytes
    stdout_closed, // its stdout ended between answers (it exited, or closed it)
    cut_short,     // its stdout ended in the middle of an answer
  };

  struct answered {
    std::uint64_t key = 0;
    answer reply;
    std::string err; // with a non-zero status: the tail of what it wrote to stderr around the answer
  };

  // Starts argv[0] (searched in PATH).
  persistent_process(const std::vector<std::string>& argv, persistent_framing framing,
                     std::size_t max_output_bytes = std::numeric_limits<std::size_t>::max());
  ~persistent_process();
  persistent_process(const persistent_process&) = delete;
  persistent_process& operator=(const persistent_process&) = delete;

  // Queues the task `payload` (in line framing, without '\n') as the one known as `key`.
  void submit(std::uint64_t key, std::string_view payload);

  void poll_items(std::vector<pollfd>& fds) const;
  void on_ready(const std::vector<pollfd>& fds);

  // Returns: the answers that arrived, oldest first, each with the key of the task it answers (in
  //          order: the first answer is the first task's). After stray_output, the ones that
  //          arrived in the same read as the stray bytes (the runner does not trust them).
  std::vector<answered> take_answers();

  [[nodiscard]] trouble trouble_seen() const { return trouble_; }
  // The trouble in words, to follow "the command": "wrote 'extra' with no task pending",
  // "closed its stdout"; for malformed, the header's fault; for too_large, what the header said.
  [[nodiscard]] const std::string& trouble_text() const { return trouble_text_; }
  // True once the command has exited (and was reaped), or never started.
  [[nodiscard]] bool dead() const { return start_errno_ != 0 || reaped_; }
  [[nodiscard]] int start_errno() const { return start_errno_; }
  // Valid once dead() and the process was reaped (else -1): the raw wait status.
  [[nodiscard]] int wait_status() const { return reaped_ ? status_ : -1; }
  [[nodiscard]] std::string error_tail() const;
  // Keys of the tasks sent and not answered, oldest first.
  [[nodiscard]] const std::deque<std::uint64_t>& in_flight() const { return in_flight_; }
  [[nodiscard]] std::chrono::steady_clock::time_point oldest_since() const { return oldest_since_; }
  void kill(int sig);

  static constexpr std::size_t error_tail_bytes = 2048;

 private:
  void write_pending();
  void read_answers();
  void read_errors();
  void reap();
  void give_up(trouble t, std::string text);

  piped_child child_;
  answer_decoder decoder_;
  persistent_framing framing_;
  std::string to_write_;
  std::string err_;       // the tail of everything on stderr (for a death)
  std::string err_since_; // the tail of stderr since the last answers were taken
  std::deque<std::uint64_t> in_flight_;
  std::vector<answer> decoded_; // reused: answers decoded by one read
  std::vector<answered> answers_;
  std::chrono::steady_clock::time_point oldest_since_{}; // when the oldest unanswered task was sent
  int start_errno_ = 0;
  int status_ = 0;
  bool reaped_ = false;
  trouble trouble_ = trouble::none;
  std::string trouble_text_;
};

} // namespace mtask
