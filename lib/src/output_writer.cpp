// output_writer: buffered, EINTR-safe writes of results.
#include "mtask/output_writer.hpp"

#include "mtask/error.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace mtask {

void append_result(std::string& out, std::string_view result) {
  if (result.empty()) return;
  out.append(result);
  if (result.back() != '\n') out.push_back('\n');
}

void output_writer::write(std::string_view result) {
  append_result(buf_, result);
  if (should_flush()) flush();
}

namespace {

// Writes all of `bytes` to `fd`. Returns: 0, or the errno of the write that failed.
int write_all(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

[[noreturn]] void fail_write(int err) { throw error(fmt::format("cannot write to stdout: {}", std::strerror(err))); }

} // namespace

void output_writer::flush() {
  if (int err = write_all(fd_, buf_)) fail_write(err);
  buf_.clear();
}

background_writer::background_writer(int fd) : fd_(fd) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw error(fmt::format("cannot create an eventfd: {}", std::strerror(errno)));
  thread_ = std::thread([this] { run(); });
}

background_writer::~background_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  // A thread blocked in write() on a reader that never reads cannot be joined: leave it to exit().
  if (busy()) {
    thread_.detach();
  } else {
    thread_.join();
    ::close(event_fd_);
  }
}

bool background_writer::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

void background_writer::flush() {
  std::lock_guard lock(mutex_);
  if (error_ != 0) fail_write(error_);
  if (busy_ || pending_.empty()) return;
  writing_.swap(pending_); // both keep their capacity
  pending_.clear();
  busy_ = true;
  cv_.notify_one();
}

void background_writer::on_ready() {
  std::uint64_t count = 0;
  (void)::read(event_fd_, &count, sizeof count); // EAGAIN just means it was reset already
  flush();
}

std::size_t background_writer::backlog() const {
  std::lock_guard lock(mutex_);
  return pending_.size() + (busy_ ? writing_.size() : 0);
}

bool background_writer::wait_drained(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    flush();
    std::unique_lock lock(mutex_);
    if (!busy_ && pending_.empty()) return true;
    if (!cv_.wait_until(lock, deadline, [&] { return !busy_ || error_ != 0; })) return false;
    if (error_ != 0) fail_write(error_);
  }
}

void background_writer::run() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || busy_; });
      if (stopping_) return;
    }
    // busy_: writing_ is this thread's until it says otherwise.
    const int err = write_all(fd_, writing_);
    {
      std::lock_guard lock(mutex_);
      writing_.clear();
      busy_ = false;
      if (err != 0 && error_ == 0) error_ = err;
    }
    cv_.notify_all();
    const std::uint64_t one = 1;
    (void)::write(event_fd_, &one, sizeof one);
  }
}

} // namespace mtask
