// Unit tests for the command runner (lib/src/worker/command_runner.cpp): a process per task, failed as
// too large past --max-output-bytes, and finished by its command's exit though a grandchild that
// left its process group holds the pipes. Real commands, driven by poll(2) as the worker drives them.
#include "worker/task_runner.hpp"

#include "process_driver.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <vector>

using steady = mtask::clock;
using mtask::millis;
using mtask::runner_options;
using mtask::test::run_until_finished;
using mtask::test::task;
using mtask::wire::task_status;

TEST_CASE("command runner fails a task whose output passes --max-output-bytes as too large") {
  auto r = mtask::make_command_runner({"head", "-c", "10000000", "/dev/zero"},
                                      runner_options{.slots = 1, .max_output_bytes = 1 << 20});
  r->start(task(7, "p"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  const auto& res = done[0].result;
  CHECK(res.id == 7);
  CHECK(res.status == task_status::too_large);
  CHECK(res.code == 0);
  CHECK(res.output.empty());
  CHECK(res.error == "output exceeded --max-output-bytes (1048576 bytes)");
  CHECK(res.payload == "p");
}

TEST_CASE("command runner keeps an output of exactly --max-output-bytes") {
  auto r = mtask::make_command_runner({"head", "-c", "1048576", "/dev/zero"},
                                      runner_options{.slots = 1, .max_output_bytes = 1 << 20});
  r->start(task(0, "p"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output.size() == 1 << 20);
}

TEST_CASE("command runner kills a command whose output passed the limit instead of waiting for its end") {
  // Writes past the limit, then (its head dead of SIGPIPE) sleeps: only the kill ends it in time.
  auto r = mtask::make_command_runner({"sh", "-c", "head -c 2000000 /dev/zero; exec sleep 30"},
                                      runner_options{.slots = 1, .max_output_bytes = 1 << 20});
  r->start(task(0, "p"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::too_large);
  CHECK(r->running() == 0);
}

TEST_CASE("command runner finishes a task when its command exits though a grandchild holds the pipes") {
  // The sleep leaves the process group (setsid) and keeps stdout and stderr open for 30 s; the
  // task timeout would fire long before that.
  auto r = mtask::make_command_runner({"sh", "-c", R"(read x; setsid sleep 30 & echo $! >&2; echo "r$x")"},
                                      runner_options{.slots = 3, .task_timeout_ms = 1000});
  const auto now = steady::now();
  for (std::uint64_t id = 0; id < 3; ++id) r->start(task(id, std::to_string(id)), now);
  auto done = run_until_finished(*r, 3);
  for (const auto& f : done) mtask::test::kill_escaped_sleep(f.result.error);
  REQUIRE(done.size() == 3);
  std::sort(done.begin(), done.end(), [](const auto& a, const auto& b) { return a.result.id < b.result.id; });
  for (std::uint64_t id = 0; id < 3; ++id) {
    CAPTURE(id);
    const auto& res = done[id].result;
    CHECK(res.status == task_status::ok);
    CHECK(res.code == 0);
    CHECK(res.output == "r" + std::to_string(id) + "\n");
  }
}

TEST_CASE("command runner does not time out a task whose command exited before the timeout") {
  auto r = mtask::make_command_runner({"sh", "-c", "setsid sleep 30 & echo $! >&2; echo done"},
                                      runner_options{.slots = 1, .task_timeout_ms = 1000});
  const auto t0 = steady::now();
  const auto timeout_at = t0 + millis(1000);
  r->start(task(0, "p"), t0);
  // The clock stands still a millisecond before the timeout until the command has exited, which
  // moves the runner's next deadline from the timeout to the end of the grace for its pipes.
  const auto far = t0 + std::chrono::hours(1);
  const auto give_up = steady::now() + mtask::test::patience;
  while (r->next_deadline(far) == timeout_at && steady::now() < give_up) {
    std::vector<pollfd> fds;
    r->poll_items(fds);
    fds = mtask::test::poll_once(std::move(fds), give_up);
    r->on_ready(fds, timeout_at - millis(1));
  }
  // The timeout passes during the grace (the sleep holds the pipes), then the grace ends.
  r->on_ready({}, timeout_at);
  CHECK(r->running() == 1);
  r->on_ready({}, far);
  std::vector<mtask::finished_task> done;
  r->take_finished(done);
  if (!done.empty()) mtask::test::kill_escaped_sleep(done[0].result.error);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "done\n");
}

TEST_CASE("command runner puts a task with a replacement string in the arguments and nothing on stdin") {
  // cat would echo stdin: only the argument may come out, and cat must not wait for input.
  auto r =
      mtask::make_command_runner({"sh", "-c", "printf '%s|' \"$1\"; cat", "sh", "{.}#{#}"}, runner_options{.slots = 1});
  r->start(task(4, "dir/a.b"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "dir/a#5|");
}

TEST_CASE("command runner gives each running task its own slot number, the one freed first next") {
  // Task 0 holds slot 1 until it is killed; task 1 takes slot 2 and ends at once, so task 2 takes
  // slot 2 again while slot 1 is still busy.
  // The slow task makes MARK once it has written its line: the kill below waits for it (on a
  // loaded machine under ASan, a kill sent at once came before the echo; CI saw it).
  char dir_template[] = "/tmp/mtask-slot-test-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  const std::string mark = dir + "/mark";
  auto r = mtask::make_command_runner(
      {"sh", "-c", "echo \"$1 {%}\"; [ \"$1\" = slow ] && touch \"$2\" && exec sleep 30; :", "sh", "{}", mark},
      runner_options{.slots = 2});
  r->start(task(0, "slow"), steady::now());
  r->start(task(1, "quick"), steady::now());
  auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.output == "quick 2\n");
  r->start(task(2, "next"), steady::now());
  done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.output == "next 2\n");
  for (int i = 0; i < 60000 && ::access(mark.c_str(), F_OK) != 0; ++i) ::usleep(1000); // at most a minute
  REQUIRE(::access(mark.c_str(), F_OK) == 0);
  r->stop(SIGKILL);
  done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::signalled);
  CHECK(done[0].result.output == "slow 1\n");
  ::unlink(mark.c_str());
  ::rmdir(dir.c_str());
}

TEST_CASE("command runner with dry_run reports each command line quoted and runs nothing") {
  auto r = mtask::make_command_runner({"no-such-program", "{}", "{#}"}, runner_options{.slots = 1, .dry_run = true});
  r->start(task(0, "a b"), steady::now());
  r->start(task(9, "plain"), steady::now());
  CHECK(r->running() == 0);
  std::vector<mtask::finished_task> done;
  r->take_finished(done);
  REQUIRE(done.size() == 2);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "no-such-program 'a b' 1\n");
  CHECK(done[1].result.output == "no-such-program plain 10\n");
}

TEST_CASE("command runner with dry_run prints just the command when the task would go to stdin") {
  auto r = mtask::make_command_runner({"wc", "-l"}, runner_options{.slots = 1, .dry_run = true});
  r->start(task(0, "x"), steady::now());
  std::vector<mtask::finished_task> done;
  r->take_finished(done);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.output == "wc -l\n");
}

TEST_CASE("command runner names the program a replacement string gave when it cannot start") {
  auto r = mtask::make_command_runner({"{}"}, runner_options{.slots = 1});
  r->start(task(0, "/no/such/program"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::not_started);
  CHECK(done[0].result.error == "cannot run '/no/such/program': No such file or directory");
}

TEST_CASE("command runner kills a stopped command that ignores SIGTERM once the grace has passed") {
  // As --halt now's cancel stops it: the command traps SIGTERM and would sleep for ten minutes.
  auto r = mtask::make_command_runner({"sh", "-c", "trap '' TERM; sleep 600 & wait; sleep 600"},
                                      runner_options{.slots = 1, .kill_grace_ms = 200});
  r->start(task(3, "p"), steady::now());
  // Let the shell set its trap before the signal (it reads its script at once; this only makes the
  // test test the trap, it does not decide the verdict).
  const auto started = steady::now();
  mtask::test::drive(*r, [&] { return steady::now() - started >= millis(100); });
  r->stop(SIGTERM);
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1); // without the SIGKILL it would still run: run_until_finished gives up
  CHECK(done[0].result.id == 3);
  CHECK(done[0].result.status == task_status::signalled);
  CHECK(done[0].result.code == SIGKILL);
  CHECK(r->running() == 0);
}
