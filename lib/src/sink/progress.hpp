// The sink's progress line (--progress): tasks done of the total, the rate over the last seconds,
// an ETA, the ventilator's workers and slots, failures, retries and requeues. progress_meter makes
// the text (pure, tested with a fake clock); progress_display draws it on stderr.
#pragma once

#include "common/clock.hpp"

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace mtask {

struct progress_figures {
  std::uint64_t done = 0;  // tasks with their final result (written, or failed for good)
  std::int64_t total = -1; // -1 while the input is still being read
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;
  std::uint64_t requeued = 0;
  std::uint32_t workers = 0;
  std::uint64_t slots = 0;
};

class progress_meter {
 public:
  explicit progress_meter(time_point start) : start_(start) {}

  // Returns: the line for `f` at `now`, without a newline, for example
  //   "1234/10000 12% 5321/s eta 0:02 | 4 workers 8 slots | 3 failed 1 retried 0 requeued"
  // (before the total is known: "1234 done 5321/s | ..."). Each call is a sample of the rate.
  std::string line(const progress_figures& f, time_point now);
  // Returns: the closing line: "done: 10000/10000 tasks in 1:02, 161/s | 3 failed 1 retried 0 requeued".
  [[nodiscard]] std::string summary(const progress_figures& f, time_point now) const;

 private:
  // Tasks per second over the samples of the last window, or since the start when that is short.
  [[nodiscard]] double rate(std::uint64_t done, time_point now) const;

  time_point start_;
  std::deque<std::pair<time_point, std::uint64_t>> samples_; // (when, done) over the last window
};

// Draws the meter's lines on a descriptor (stderr). On a terminal: one line redrawn in place with
// \r at most 10 times a second; log lines printed meanwhile clear it, print, and redraw it. Not a
// terminal: a plain line every `interval`, for logs. finish() leaves the summary on its own line.
class progress_display {
 public:
  progress_display(int fd, bool terminal, millis interval, time_point start);
  ~progress_display();
  progress_display(const progress_display&) = delete;
  progress_display& operator=(const progress_display&) = delete;

  // Redraws if the last draw is old enough.
  void update(const progress_figures& f, time_point now);
  // The summary, on a line of its own; nothing is drawn after it.
  void finish(const progress_figures& f, time_point now);

 private:
  void write_locked(const std::string& bytes);
  void on_log_line(std::string_view line); // the log's sink while we draw

  int fd_;
  bool terminal_;
  millis interval_;
  progress_meter meter_;
  time_point next_draw_;
  std::string prefix_; // the program's name, as log lines have it
  std::mutex mutex_;   // log lines may come from other threads
  std::string shown_;  // the line on screen now (terminal), "" when none
  bool finished_ = false;
};

} // namespace mtask
