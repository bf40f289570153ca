// Unit tests for child_process (lib/src/exec/child_process.cpp) and the bounded pipe read it uses
// (drain_fd_up_to, lib/src/exec/spawn.cpp): an output limit, the grace after the command's exit, and
// the bounded stderr tail. Real commands, driven by poll(2) as the worker drives them.
#include "exec/child_process.hpp"

#include "process_driver.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

using mtask::child_process;
using steady = mtask::clock;
using mtask::test::drive;

TEST_CASE("drain_fd_up_to reads no further than one byte past its limit and says so") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
  const std::string hundred(100, 'x');
  REQUIRE(::write(fds[1], hundred.data(), hundred.size()) == 100);
  std::string sink;
  CHECK(mtask::drain_fd_up_to(fds[0], sink, 10));
  CHECK(sink.size() == 11);
  CHECK(fds[0] >= 0);
  CHECK_FALSE(mtask::drain_fd_up_to(fds[0], sink, 1000));
  CHECK(sink == hundred);
  ::close(fds[1]);
  CHECK_FALSE(mtask::drain_fd_up_to(fds[0], sink, 1000));
  CHECK(fds[0] == -1); // end of file closes it
}

TEST_CASE("child process discards its output and stops reading once the output passes its limit") {
  child_process p({"head", "-c", "10000000", "/dev/zero"}, "", 1 << 20);
  REQUIRE(drive(p, [&] { return p.output_too_large(); }));
  CHECK(p.output().empty());
  CHECK(p.output().capacity() < 4096); // freed, not only cleared
  p.kill(SIGKILL);
  CHECK(drive(p, [&] { return p.finished(); }));
}

TEST_CASE("child process keeps an output of exactly its limit") {
  child_process p({"head", "-c", "1048576", "/dev/zero"}, "", 1 << 20);
  REQUIRE(drive(p, [&] { return p.finished(); }));
  CHECK_FALSE(p.output_too_large());
  CHECK(p.output() == std::string(1 << 20, '\0'));
  CHECK(WIFEXITED(p.wait_status()));
  CHECK(WEXITSTATUS(p.wait_status()) == 0);
}

TEST_CASE("child process finishes exit_grace after its command exits though a grandchild holds its pipes") {
  // setsid: the sleep leaves the command's process group, so no signal to the group reaches it.
  child_process p({"sh", "-c", "setsid sleep 30 & echo $! >&2; echo done; exit 3"}, "");
  const auto t0 = steady::now(); // the clock stands still: only the exit can end the wait
  const bool exited = drive(
      p, [&] { return p.exited(); }, &t0);
  mtask::test::kill_escaped_sleep(p.error_tail());
  REQUIRE(exited);
  CHECK_FALSE(p.finished()); // the sleep holds stdout and stderr open
  REQUIRE(p.deadline().has_value());
  CHECK(*p.deadline() == t0 + child_process::exit_grace);

  p.on_ready({}, t0 + child_process::exit_grace - mtask::millis(1));
  CHECK_FALSE(p.finished());
  p.on_ready({}, t0 + child_process::exit_grace);
  CHECK(p.finished());
  CHECK_FALSE(p.deadline().has_value());
  CHECK(p.output() == "done\n");
  CHECK(WIFEXITED(p.wait_status()));
  CHECK(WEXITSTATUS(p.wait_status()) == 3);
}

TEST_CASE("child process finishes at once when its command exits and nothing else holds its pipes") {
  child_process p({"sh", "-c", "echo done"}, "");
  const auto t0 = steady::now(); // the clock stands still: the grace never ends
  REQUIRE(drive(
      p, [&] { return p.finished(); }, &t0));
  CHECK(p.output() == "done\n");
}

TEST_CASE("child process keeps only the tail of a flood on stderr") {
  child_process p({"sh", "-c", "head -c 10000000 /dev/zero >&2; echo tail >&2; echo ok"}, "");
  REQUIRE(drive(p, [&] { return p.finished(); }));
  const std::string tail = p.error_tail();
  CHECK(tail == std::string(child_process::error_tail_bytes - 5, '\0') + "tail\n");
  CHECK(p.output() == "ok\n");
}
