// Spawning and driving a child process with non-blocking pipes and a pidfd.
#include "mtask/child_process.hpp"

#include "mtask/error.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace mtask {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

} // namespace

std::string find_executable(const std::string& command) {
  if (command.empty()) return {};
  if (command.find('/') != std::string::npos) return is_executable_file(command) ? command : std::string{};
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + command;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return {};
    dirs.remove_prefix(colon + 1);
  }
}

child_process::child_process(const std::vector<std::string>& argv, std::string input) : input_(std::move(input)) {
  std::array<int, 2> in{-1, -1}, out{-1, -1}, err{-1, -1};
  if (::pipe2(in.data(), O_CLOEXEC) != 0 || ::pipe2(out.data(), O_CLOEXEC) != 0 || ::pipe2(err.data(), O_CLOEXEC) != 0) {
    start_errno_ = errno;
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The worker ignores SIGPIPE for itself; the command gets the default back, as a shell would give it.
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  // Its own process group, so a timeout or shutdown can kill everything the command started
  // (a shell's children keep its stdout open and would otherwise outlive it).
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = ::posix_spawnp(&pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_fd_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  if (rc != 0) {
    start_errno_ = rc;
    pid_ = -1;
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    return;
  }
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) {
    // Without a pidfd we cannot learn of the exit without blocking; refuse rather than hang.
    start_errno_ = errno;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    close_fd(in_fd_);
    close_fd(out_fd_);
    close_fd(err_fd_);
    return;
  }
  set_nonblocking(in_fd_);
  set_nonblocking(out_fd_);
  set_nonblocking(err_fd_);
  write_input();
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

void child_process::on_ready(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == in_fd_ && in_fd_ >= 0) write_input();
    else if (p.fd == out_fd_ && out_fd_ >= 0) read_into(out_fd_, out_, false);
    else if (p.fd == err_fd_ && err_fd_ >= 0) read_into(err_fd_, err_, true);
    else if (p.fd == pidfd_ && !reaped_) reap();
  }
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

void child_process::read_into(int& fd, std::string& sink, bool tail_only) {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      sink.append(buf, static_cast<std::size_t>(n));
      if (tail_only && sink.size() > 2 * error_tail_bytes) sink.erase(0, sink.size() - error_tail_bytes);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_fd(fd); // EOF or error: nothing more will come
      return;
    }
  }
}

void child_process::reap() {
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    reaped_ = true;
    close_fd(pidfd_);
    // The command is gone; nothing it did not read will ever be read.
    close_fd(in_fd_);
  }
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
