// posix_spawn with pipes and a pidfd; non-blocking draining of a pipe.
#include "exec/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <string_view>

extern char** environ;

namespace mtask {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Bytes read from one descriptor per call at most. A command that writes as fast as we read never
// lets a pipe run dry, and reading 64 MB in one go took seconds on a loaded machine, long enough
// for the ventilator to give the worker up for dead: the event loop must get back to its sockets.
// poll reports the rest. (Far more than a pipe holds, so what a command wrote before exiting is
// read in one call.)
constexpr std::size_t read_budget = std::size_t{1} << 20;

} // namespace

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

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

piped_child spawn_piped(const std::vector<std::string>& argv) {
  piped_child c;
  std::array<int, 2> in{-1, -1}, out{-1, -1}, err{-1, -1};
  if (::pipe2(in.data(), O_CLOEXEC) != 0 || ::pipe2(out.data(), O_CLOEXEC) != 0 ||
      ::pipe2(err.data(), O_CLOEXEC) != 0) {
    c.start_errno = errno;
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return c;
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
  int rc = ::posix_spawnp(&c.pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  c.in = in[1];
  c.out = out[0];
  c.err = err[0];
  if (rc == 0) {
    c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
    if (c.pidfd < 0) {
      // Without a pidfd we cannot learn of the exit without blocking; refuse rather than hang.
      rc = errno;
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
    }
  }
  if (rc != 0) {
    c.start_errno = rc;
    c.pid = -1;
    close_fd(c.in);
    close_fd(c.out);
    close_fd(c.err);
    return c;
  }
  set_nonblocking(c.in);
  set_nonblocking(c.out);
  set_nonblocking(c.err);
  return c;
}

void drain_fd(int& fd, std::string& sink, std::size_t keep_tail) {
  char buf[65536];
  for (std::size_t got = 0; fd >= 0 && got < read_budget;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      sink.append(buf, static_cast<std::size_t>(n));
      if (keep_tail > 0 && sink.size() > 2 * keep_tail) sink.erase(0, sink.size() - keep_tail);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_fd(fd); // EOF or error: nothing more will come
    }
  }
}

bool drain_fd_up_to(int& fd, std::string& sink, std::size_t limit) {
  char buf[65536];
  for (std::size_t got = 0; fd >= 0 && sink.size() <= limit && got < read_budget;) {
    // Written so that a limit of SIZE_MAX cannot overflow: at most one byte past it.
    const std::size_t want = std::min(sizeof buf - 1, limit - sink.size()) + 1;
    ssize_t n = ::read(fd, buf, want);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      sink.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      close_fd(fd); // EOF or error: nothing more will come
    }
  }
  return sink.size() > limit;
}

} // namespace mtask
