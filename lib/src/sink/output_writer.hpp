// Writes results to a file descriptor (stdout) with the output rule: a result's bytes as they
// are, a newline added to a non-empty result that lacks one, nothing for an empty result.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace mtask {

// Appends `result` to `out` by the output rule.
void append_result(std::string& out, std::string_view result);

// Writes all of `bytes` to `fd`, through EINTR. Returns: 0, or the errno of the write that failed.
int write_all(int fd, std::string_view bytes);

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
  // Appends `bytes` as they are (the caller has applied the output rule).
  void append(std::string_view bytes) { pending_.append(bytes); }
  // Hands what is buffered to the thread, unless it is still writing an earlier batch.
  // Throws: error "cannot write to stdout: reason" once an earlier write has failed.
  void flush();
  // Bytes buffered or being written.
  [[nodiscard]] std::size_t backlog() const;
  // Everything written (false after a failed write, which flush() then reports).
  [[nodiscard]] bool drained() const;
  // Bytes written since the last flush() that the thread has not taken yet.
  [[nodiscard]] bool has_pending() const { return !pending_.empty(); }
  // Readable when the thread has finished a batch: poll it, then call on_ready().
  [[nodiscard]] int fd() const;
  // Resets fd() and hands the thread the next batch. Throws: as flush().
  void on_ready();
  // Waits until everything buffered is written, at most `timeout`. Returns: drained().
  // Throws: as flush().
  bool wait_drained(std::chrono::milliseconds timeout);

 private:
  // What the thread uses, owned jointly by the writer and the thread: a thread left stuck in
  // write() when the writer goes away (detached, not joined) still has all of it.
  struct shared;
  static void run(shared& s);

  std::shared_ptr<shared> s_;
  std::string pending_; // appended by the caller's thread only
  std::thread thread_;
};

} // namespace mtask
