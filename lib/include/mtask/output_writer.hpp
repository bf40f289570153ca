// Writes results to a file descriptor (stdout) with the output rule: a result's bytes as they
// are, a newline added to a non-empty result that lacks one, nothing for an empty result.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace mtask {

// Appends `result` to `out` by the output rule.
void append_result(std::string& out, std::string_view result);

class output_writer {
 public:
  explicit output_writer(int fd) : fd_(fd) {}
  void write(std::string_view result);
  // Writes everything buffered.
  // Throws: error "cannot write to stdout: reason" (a closed pipe included).
  void flush();
  [[nodiscard]] bool should_flush() const { return buf_.size() >= (1u << 16); }

 private:
  int fd_;
  std::string buf_;
};

// Writes results to a file descriptor from a thread of its own, so the caller's event loop never
// blocks on a slow reader (a pager, a full pipe, a slow disk): it keeps heartbeating, and stops
// taking work once backlog() is large, which ZeroMQ's flow control carries back to the workers.
class background_writer {
 public:
  // Throws: error when the thread's wake-up eventfd cannot be made.
  explicit background_writer(int fd);
  ~background_writer(); // abandons what is unwritten (call wait_drained() first to keep it)
  background_writer(const background_writer&) = delete;
  background_writer& operator=(const background_writer&) = delete;

  // Appends `result` by the output rule (as output_writer::write).
  void write(std::string_view result) { append_result(pending_, result); }
  // Hands what is buffered to the thread, unless it is still writing an earlier batch.
  // Throws: error "cannot write to stdout: reason" once an earlier write has failed.
  void flush();
  // Bytes buffered or being written.
  [[nodiscard]] std::size_t backlog() const;
  [[nodiscard]] bool drained() const { return backlog() == 0; }
  // Bytes written since the last flush() that the thread has not taken yet.
  [[nodiscard]] bool has_pending() const { return !pending_.empty(); }
  // Readable when the thread has finished a batch: poll it, then call on_ready().
  [[nodiscard]] int fd() const { return event_fd_; }
  // Resets fd() and hands the thread the next batch. Throws: as flush().
  void on_ready();
  // Waits until everything buffered is written, at most `timeout`. Returns: drained().
  // Throws: as flush().
  bool wait_drained(std::chrono::milliseconds timeout);

 private:
  void run();
  [[nodiscard]] bool busy() const;

  int fd_;
  int event_fd_ = -1;
  std::string pending_; // appended by the caller's thread only
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::string writing_; // the batch the thread writes; the caller touches it only when !busy_
  bool busy_ = false;   // the thread owns writing_
  bool stopping_ = false;
  int error_ = 0; // errno of a failed write
  std::thread thread_;
};

} // namespace mtask
