// Spawning and driving a child process with non-blocking pipes and a pidfd.
#include "exec/child_process.hpp"

#include "mtask/error.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace mtask {

child_process::child_process(const std::vector<std::string>& argv, std::string input, std::size_t max_output_bytes)
    : input_(std::move(input)), max_output_bytes_(max_output_bytes) {
  piped_child c = spawn_piped(argv);
  start_errno_ = c.start_errno;
  pid_ = c.pid;
  pidfd_ = c.pidfd;
  in_fd_ = c.in;
  out_fd_ = c.out;
  err_fd_ = c.err;
  if (start_errno_ == 0) write_input();
}

child_process::~child_process() {
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  close_fd(pidfd_);
}

void child_process::poll_items(std::vector<pollfd>& fds) const {
  if (in_fd_ >= 0) fds.push_back({in_fd_, POLLOUT, 0});
  if (out_fd_ >= 0) fds.push_back({out_fd_, POLLIN, 0});
  if (err_fd_ >= 0) fds.push_back({err_fd_, POLLIN, 0});
  if (pidfd_ >= 0 && !reaped_) fds.push_back({pidfd_, POLLIN, 0});
}

void child_process::on_ready(const std::vector<pollfd>& fds, time_point now) {
  for (const auto& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == in_fd_ && in_fd_ >= 0)
      write_input();
    else if (p.fd == out_fd_ && out_fd_ >= 0)
      read_output();
    else if (p.fd == err_fd_ && err_fd_ >= 0)
      drain_fd(err_fd_, err_, error_tail_bytes);
    else if (p.fd == pidfd_ && !reaped_)
      reap(now);
  }
  if (reaped_ && now >= exited_at_ + exit_grace) close_pipes();
}

std::optional<time_point> child_process::deadline() const {
  if (!reaped_ || finished()) return std::nullopt;
  return exited_at_ + exit_grace;
}

void child_process::read_output() {
  if (!drain_fd_up_to(out_fd_, out_, max_output_bytes_)) return;
  too_large_ = true;
  std::string().swap(out_);
  // Nothing more of it is wanted: a command writing into a closed pipe gets SIGPIPE.
  close_fd(out_fd_);
  close_fd(in_fd_);
  std::string().swap(input_);
}

void child_process::write_input() {
  while (written_ < input_.size()) {
    ssize_t n = ::write(in_fd_, input_.data() + written_, input_.size() - written_);
    if (n > 0) {
      written_ += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return; // the pipe is full; poll tells us when it drains
    } else {
      break; // EPIPE: the command does not read its input, which is its right
    }
  }
  close_fd(in_fd_);
  std::string().swap(input_);
}

void child_process::reap(time_point now) {
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    reaped_ = true;
    exited_at_ = now;
    close_fd(pidfd_);
    // The command is gone; nothing it did not read will ever be read.
    close_fd(in_fd_);
    // What it wrote before exiting is in the pipes now, whatever poll said of them: usually all of
    // it, up to end of file, and then the task is finished without waiting for the grace.
    if (out_fd_ >= 0) read_output();
    if (err_fd_ >= 0) drain_fd(err_fd_, err_, error_tail_bytes);
  }
}

void child_process::close_pipes() {
  // The command exited a grace ago and something it started still holds the pipes: take what
  // they hold now and stop listening.
  if (out_fd_ >= 0) read_output();
  if (err_fd_ >= 0) drain_fd(err_fd_, err_, error_tail_bytes);
  close_fd(out_fd_);
  close_fd(err_fd_);
}

void child_process::kill(int sig) {
  // The whole process group: the command and anything it started. After the command itself is
  // reaped its group may live on (a background child holding stdout), so keep signalling it.
  if (pid_ > 0) ::kill(-pid_, sig);
}

std::string child_process::error_tail() const {
  if (err_.size() <= error_tail_bytes) return err_;
  return err_.substr(err_.size() - error_tail_bytes);
}

} // namespace mtask
