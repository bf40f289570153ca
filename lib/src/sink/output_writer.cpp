// output_writer: buffered, EINTR-safe writes of results.
#include "sink/output_writer.hpp"

#include "mtask/error.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>

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

namespace {

[[noreturn]] void fail_write(int err) { throw error(fmt::format("cannot write to stdout: {}", std::strerror(err))); }

} // namespace

void output_writer::flush() {
  if (int err = write_all(fd_, buf_)) fail_write(err);
  buf_.clear();
}

struct background_writer::shared {
  int fd = -1;
  int event_fd = -1;
  std::mutex mutex;
  std::condition_variable cv;
  std::string writing; // the batch the thread writes; the caller touches it only when !busy
  bool busy = false;   // the thread owns writing
  bool stopping = false;
  int error = 0; // errno of a failed write
  shared() = default;
  shared(const shared&) = delete;
  shared& operator=(const shared&) = delete;
  ~shared() {
    if (event_fd >= 0) ::close(event_fd);
  }
};

background_writer::background_writer(int fd) : s_(std::make_shared<shared>()) {
  s_->fd = fd;
  s_->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s_->event_fd < 0) throw error(fmt::format("cannot create an eventfd: {}", std::strerror(errno)));
  thread_ = std::thread([state = s_] { run(*state); });
}

background_writer::~background_writer() {
  bool busy = false;
  {
    std::lock_guard lock(s_->mutex);
    s_->stopping = true;
    busy = s_->busy;
  }
  s_->cv.notify_all();
  // A thread blocked in write() on a reader that never reads cannot be joined: it keeps its share
  // of the state and ends when the write does (or with the process).
  if (busy)
    thread_.detach();
  else
    thread_.join();
}

int background_writer::fd() const { return s_->event_fd; }

void background_writer::flush() {
  std::lock_guard lock(s_->mutex);
  if (s_->error != 0) fail_write(s_->error);
  if (s_->busy || pending_.empty()) return;
  s_->writing.swap(pending_); // both keep their capacity
  pending_.clear();
  s_->busy = true;
  s_->cv.notify_all();
}

void background_writer::on_ready() {
  std::uint64_t count = 0;
  (void)::read(s_->event_fd, &count, sizeof count); // EAGAIN just means it was reset already
  flush();
}

std::size_t background_writer::backlog() const {
  std::lock_guard lock(s_->mutex);
  return pending_.size() + (s_->busy ? s_->writing.size() : 0);
}

bool background_writer::drained() const {
  std::lock_guard lock(s_->mutex);
  return pending_.empty() && !s_->busy && s_->error == 0;
}

bool background_writer::wait_drained(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    flush();
    std::unique_lock lock(s_->mutex);
    if (!s_->busy && pending_.empty()) return true;
    if (!s_->cv.wait_until(lock, deadline, [&] { return !s_->busy || s_->error != 0; })) return false;
    if (s_->error != 0) fail_write(s_->error);
  }
}

void background_writer::run(shared& s) {
  while (true) {
    {
      std::unique_lock lock(s.mutex);
      s.cv.wait(lock, [&] { return s.stopping || s.busy; });
      if (!s.busy) return; // stopping, nothing handed over
    }
    // busy: writing is this thread's until it says otherwise.
    const int err = write_all(s.fd, s.writing);
    {
      std::lock_guard lock(s.mutex);
      s.writing.clear();
      s.busy = false;
      if (err != 0 && s.error == 0) s.error = err;
      if (s.stopping) return;
    }
    s.cv.notify_all();
    const std::uint64_t one = 1;
    (void)::write(s.event_fd, &one, sizeof one);
  }
}

} // namespace mtask
