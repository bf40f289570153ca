// persistent_process: a line-in, line-out conversation with a long-lived command.
#include "exec/persistent_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace mtask {

persistent_process::persistent_process(const std::vector<std::string>& argv, std::size_t max_line_bytes)
    : child_(spawn_piped(argv)), max_line_bytes_(max_line_bytes) {
  start_errno_ = child_.start_errno;
}

persistent_process::~persistent_process() {
  close_fd(child_.in);
  close_fd(child_.out);
  close_fd(child_.err);
  if (child_.pid > 0 && !reaped_) {
    ::kill(-child_.pid, SIGKILL);
    ::waitpid(child_.pid, nullptr, 0);
  }
  close_fd(child_.pidfd);
}

void persistent_process::submit(std::uint64_t key, std::string_view line) {
  if (in_flight_.empty()) oldest_since_ = std::chrono::steady_clock::now();
  in_flight_.push_back(key);
  to_write_.append(line);
  to_write_.push_back('\n');
  if (child_.in >= 0) write_pending();
}

void persistent_process::poll_items(std::vector<pollfd>& fds) const {
  if (child_.in >= 0 && !to_write_.empty()) fds.push_back({child_.in, POLLOUT, 0});
  if (child_.out >= 0) fds.push_back({child_.out, POLLIN, 0});
  if (child_.err >= 0) fds.push_back({child_.err, POLLIN, 0});
  if (child_.pidfd >= 0 && !reaped_) fds.push_back({child_.pidfd, POLLIN, 0});
}

void persistent_process::on_ready(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == child_.in && child_.in >= 0) {
      write_pending();
    } else if (p.fd == child_.out && child_.out >= 0) {
      read_answers();
    } else if (p.fd == child_.err && child_.err >= 0) {
      drain_fd(child_.err, err_, error_tail_bytes);
    } else if (p.fd == child_.pidfd && !reaped_) {
      reap();
    }
  }
}

void persistent_process::read_answers() {
  // One pass, at most one byte past the limit (poll reports the rest): no line in read_buf_ is
  // longer than the limit, and a partial line that reaches past it is too long.
  drain_fd_up_to(child_.out, read_buf_, max_line_bytes_);
  std::size_t start = 0;
  for (std::size_t nl; (nl = read_buf_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (in_flight_.empty()) continue; // output nobody asked for: ignore it
    answers_.emplace_back(in_flight_.front(), read_buf_.substr(start, nl - start));
    in_flight_.pop_front();
    oldest_since_ = std::chrono::steady_clock::now();
  }
  read_buf_.erase(0, start);
  if (read_buf_.size() > max_line_bytes_) {
    too_large_ = true;
    std::string().swap(read_buf_);
    close_fd(child_.out);
    close_fd(child_.in);
    std::string().swap(to_write_);
  }
}

std::vector<std::pair<std::uint64_t, std::string>> persistent_process::take_answers() {
  return std::exchange(answers_, {});
}

void persistent_process::write_pending() {
  while (!to_write_.empty()) {
    ssize_t n = ::write(child_.in, to_write_.data(), to_write_.size());
    if (n > 0) {
      to_write_.erase(0, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_fd(child_.in); // EPIPE: it stopped reading; it will be seen dead soon
      return;
    }
  }
}

void persistent_process::reap() {
  int status = 0;
  if (::waitpid(child_.pid, &status, WNOHANG) == child_.pid) {
    status_ = status;
    reaped_ = true;
    close_fd(child_.pidfd);
    // Answers it wrote before exiting are in the pipe now, even where poll saw the exit first:
    // their tasks succeeded, and must not be taken for the one it died answering.
    if (child_.out >= 0) read_answers();
    if (child_.err >= 0) drain_fd(child_.err, err_, error_tail_bytes);
  }
}

void persistent_process::kill(int sig) {
  if (child_.pid > 0) ::kill(-child_.pid, sig);
}

std::string persistent_process::error_tail() const {
  if (err_.size() <= error_tail_bytes) return err_;
  return err_.substr(err_.size() - error_tail_bytes);
}

} // namespace mtask
