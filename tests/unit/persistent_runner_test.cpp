// Unit tests for the persistent runner (lib/src/worker/persistent_runner.cpp): answers matched to
// their tasks in line and framed mode; a process that goes out of step, breaks the framing, answers
// past --max-output-bytes or dies fails the tasks it must and is restarted, after a delay that
// doubles while it keeps failing at once. Real commands, driven by poll(2) as the worker drives them.
#include "common/log.hpp"
#include "worker/task_runner.hpp"

#include "process_driver.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using steady = mtask::clock;
using mtask::millis;
using mtask::persistent_framing;
using mtask::runner_options;
using mtask::test::drive;
using mtask::test::run_until_finished;
using mtask::test::task;
using mtask::wire::task_status;

namespace {

// Collects the log lines written while it lives (the restarts' warnings), instead of stderr.
struct captured_log {
  std::vector<std::string> lines;
  captured_log() {
    mtask::log::set_sink([this](std::string_view line) { lines.emplace_back(line); });
  }
  ~captured_log() { mtask::log::set_sink(nullptr); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;

  [[nodiscard]] bool has(std::string_view text) const {
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

// Answers each line N with N x's (sh's read takes one line at a time from a pipe).
const std::vector<std::string> x_times = {"sh", "-c",
                                          R"(while IFS= read -r n; do head -c "$n" /dev/zero | tr '\0' x; echo; done)"};

// A framed worker (the README's fifteen lines, and some misbehaviour on demand): answers a task
// upper-cased; "status N" with status N (after a line on stderr); "debug" after a stray line;
// "cut" with 3 bytes of a 10-byte answer, then exits 4; "huge" with a header of 2000 bytes.
const std::vector<std::string> framed_worker = {"python3", "-c", R"(
import sys
i, o = sys.stdin.buffer, sys.stdout.buffer
while (h := i.readline()):
    t = i.read(int(h))
    if t.startswith(b"status "):
        sys.stderr.write("why " + t[7:].decode() + "\n"); sys.stderr.flush()
        o.write(b"%s 6\nfailed" % t[7:])
    elif t == b"debug":
        o.write(b"debug line\n0 5\nDEBUG")
    elif t == b"cut":
        o.write(b"0 10\nabc"); o.flush(); sys.exit(4)
    elif t == b"huge":
        o.write(b"0 2000\n")
    else:
        o.write(b"0 %d\n%s" % (len(t), t.upper()))
    o.flush()
)"};

// A runner of framed_worker, with `o` in framed mode.
std::unique_ptr<mtask::task_runner> framed_runner(runner_options o = {.slots = 1}) {
  o.framing = persistent_framing::framed;
  return mtask::make_persistent_runner(framed_worker, o);
}

// Starts tasks 0, 1, ... with these payloads, all in flight to the runner's one process at once.
void start_in_flight(mtask::task_runner& r, const std::vector<std::string>& payloads) {
  r.set_prefetch(payloads.size() - 1);
  for (std::size_t id = 0; id < payloads.size(); ++id) r.start(task(id, payloads[id]), steady::now());
}

} // namespace

TEST_CASE("persistent runner fails a task whose answer line passes --max-output-bytes as too large") {
  captured_log log;
  auto r = mtask::make_persistent_runner(x_times, runner_options{.slots = 1, .max_output_bytes = 1000});
  start_in_flight(*r, {"1000", "1001"});
  const auto done = run_until_finished(*r, 2);
  REQUIRE(done.size() == 2);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == std::string(1000, 'x'));
  CHECK(done[1].result.id == 1);
  CHECK(done[1].result.status == task_status::too_large);
  CHECK(done[1].result.output.empty());
  CHECK(done[1].result.error == "output exceeded --max-output-bytes (1000 bytes)");
  CHECK(r->take_returned().empty());
  REQUIRE(log.lines.size() == 1);
  // It had answered a task: restarted at once.
  CHECK(log.lines[0].find("warn: persistent command 'sh' answered past --max-output-bytes; restarting it") !=
        std::string::npos);
  CHECK(log.lines[0].find(" in ") == std::string::npos);
}

TEST_CASE("persistent runner restarts a command whose answer was too large and returns the lines behind it") {
  captured_log log;
  auto r = mtask::make_persistent_runner(x_times, runner_options{.slots = 1, .max_output_bytes = 1 << 20});
  start_in_flight(*r, {"3000000", "7"});
  auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::too_large);
  CHECK(r->running() == 0);
  auto returned = r->take_returned();
  REQUIRE(returned.size() == 1);
  CHECK(returned[0].task.id == 1);
  // It never answered anything, so its successor starts after a delay: no room until then.
  CHECK_FALSE(r->has_room());
  CHECK(log.has("restarting it in 100 ms"));
  REQUIRE(drive(*r, [&] { return r->has_room(); }));

  r->start(std::move(returned[0]), steady::now()); // to the restarted process
  done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "xxxxxxx");
}

TEST_CASE("persistent runner fails an answer that came with output no task asked for, and restarts") {
  captured_log log;
  // One write of two lines: the extra line always arrives with the answer.
  auto r = mtask::make_persistent_runner({"sh", "-c", R"(while IFS= read -r x; do printf 'r%s\nextra\n' "$x"; done)"},
                                         runner_options{.slots = 1});
  r->set_prefetch(0); // one task at a time
  r->start(task(0, "1"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::failed);
  CHECK(done[0].result.code == 1);
  CHECK(done[0].result.output.empty());
  CHECK(done[0].result.error ==
        "the persistent command went out of step: it wrote 'extra' with no task pending; no "
        "answer in flight can be trusted");
  CHECK(done[0].result.payload == "1");
  REQUIRE(drive(*r, [&] { return !log.lines.empty(); })); // once it is gone
  CHECK(log.lines[0].find("persistent command 'sh' went out of step: it wrote 'extra' with no task pending; "
                          "restarting it in 100 ms") != std::string::npos);
}

TEST_CASE("persistent runner restarts a command that writes before any task is pending") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", "echo ready; while IFS= read -r x; do echo \"$x\"; done"},
                                         runner_options{.slots = 1});
  REQUIRE(drive(*r, [&] { return !log.lines.empty(); }));
  CHECK(log.lines[0].find("persistent command 'sh' went out of step: it wrote 'ready' with no task pending; "
                          "restarting it in 100 ms") != std::string::npos);
}

TEST_CASE("persistent runner fails the tasks of a command that closes its stdout and keeps running") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", "exec >&-; exec sleep 30"}, runner_options{.slots = 1});
  start_in_flight(*r, {"a", "b"});
  const auto done = run_until_finished(*r, 2);
  REQUIRE(done.size() == 2); // it never answered anything: neither is worth returning
  for (const auto& f : done) {
    CHECK(f.result.status == task_status::failed);
    CHECK(f.result.error == "the persistent command closed its stdout with this task pending");
  }
  CHECK(log.has("persistent command 'sh' closed its stdout; restarting it in 100 ms"));
}

TEST_CASE("persistent runner fails every task of a command that dies before answering any") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", "read x; exit 3"}, runner_options{.slots = 1});
  start_in_flight(*r, {"a", "b"});
  const auto done = run_until_finished(*r, 2);
  REQUIRE(done.size() == 2);
  CHECK(done[0].result.code == 3);
  CHECK(done[0].result.error == "the persistent command exited while answering this task");
  CHECK(done[1].result.code == 3);
  CHECK(done[1].result.error == "the persistent command exited before answering this task");
  CHECK(r->take_returned().empty());
  CHECK(log.has("persistent command 'sh' exited with status 3; restarting it in 100 ms"));
}

TEST_CASE("persistent runner returns the tasks behind the one a working command died on") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", R"(read x; echo "r$x"; read y; echo oops >&2; exit 3)"},
                                         runner_options{.slots = 1});
  start_in_flight(*r, {"0", "1", "2"});
  const auto done = run_until_finished(*r, 2);
  REQUIRE(done.size() == 2);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "r0");
  CHECK(done[1].result.id == 1);
  CHECK(done[1].result.code == 3);
  CHECK(done[1].result.error == "the persistent command exited while answering this task: oops\n");
  const auto returned = r->take_returned();
  REQUIRE(returned.size() == 1);
  CHECK(returned[0].task.id == 2);
  // It had answered: restarted at once.
  CHECK(log.has("persistent command 'sh' exited with status 3; restarting it"));
  CHECK_FALSE(log.has(" in 100 ms"));
}

TEST_CASE("persistent runner doubles the delay before restarting a command that keeps dying at once") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", "exit 1"}, runner_options{.slots = 1});
  auto now = steady::now();
  const long expected_ms[] = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
  for (const long ms : expected_ms) {
    CAPTURE(ms);
    const auto seen = log.lines.size();
    REQUIRE(drive(
        *r, [&] { return log.lines.size() > seen; }, &now));
    CHECK(log.lines.back().find(fmt::format("exited with status 1; restarting it in {} ms", ms)) != std::string::npos);
    // No process until the delay is over: nothing to poll, even when asked just before.
    std::vector<pollfd> fds;
    now += millis(ms - 1);
    r->on_ready(fds, now);
    r->poll_items(fds);
    CHECK(fds.empty());
    CHECK(r->next_deadline(now + millis(60000)) == now + millis(1));
    now += millis(1);
    r->on_ready(fds, now);
    r->poll_items(fds);
    CHECK_FALSE(fds.empty());
  }
  // One that lived through the healthy period is restarted at once, and the delay starts over.
  const auto seen = log.lines.size();
  auto later = now + millis(10000);
  REQUIRE(drive(
      *r, [&] { return log.lines.size() > seen; }, &later));
  CHECK(log.lines.back().find("exited with status 1; restarting it") != std::string::npos);
  CHECK(log.lines.back().find(" in ") == std::string::npos);
  REQUIRE(drive(
      *r, [&] { return log.lines.size() > seen + 1; }, &later));
  CHECK(log.lines.back().find("restarting it in 100 ms") != std::string::npos);
}

TEST_CASE("persistent runner hands a task to no process while every one is restarting") {
  captured_log log;
  auto r = mtask::make_persistent_runner({"sh", "-c", "exit 1"}, runner_options{.slots = 1});
  auto now = steady::now();
  REQUIRE(drive(
      *r, [&] { return !log.lines.empty(); }, &now));
  CHECK_FALSE(r->has_room());
  r->start(task(0, "a"), now);
  CHECK(r->running() == 0);
  const auto returned = r->take_returned();
  REQUIRE(returned.size() == 1);
  CHECK(returned[0].task.id == 0);
}

TEST_CASE("framed persistent runner carries multi-line tasks and answers, and their statuses") {
  captured_log log;
  auto r = framed_runner();
  start_in_flight(*r, {"a\nb\n", "status 3", ""});
  const auto done = run_until_finished(*r, 3);
  REQUIRE(done.size() == 3);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "A\nB\n");
  CHECK(done[1].result.status == task_status::failed);
  CHECK(done[1].result.code == 3);
  CHECK(done[1].result.output == "failed");
  CHECK(done[1].result.error == "why 3\n");
  CHECK(done[1].result.payload == "status 3");
  CHECK(done[2].result.status == task_status::ok);
  CHECK(done[2].result.output.empty());
  CHECK(log.lines.empty());
}

TEST_CASE("framed persistent runner fails the task whose answer header is malformed and returns the rest") {
  captured_log log;
  auto r = framed_runner();
  start_in_flight(*r, {"a", "debug", "c"});
  const auto done = run_until_finished(*r, 2);
  REQUIRE(done.size() == 2);
  CHECK(done[0].result.output == "A");
  CHECK(done[1].result.id == 1);
  CHECK(done[1].result.status == task_status::failed);
  CHECK(done[1].result.error ==
        "the persistent command broke the framing: malformed answer header 'debug line': "
        "expected '<status> <length>' and a newline");
  const auto returned = r->take_returned();
  REQUIRE(returned.size() == 1);
  CHECK(returned[0].task.id == 2);
  CHECK(log.has("persistent command 'python3' broke the framing: malformed answer header 'debug line'"));
}

TEST_CASE("framed persistent runner fails a task whose answer ends in the middle") {
  captured_log log;
  auto r = framed_runner();
  r->start(task(0, "cut"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::failed);
  CHECK(done[0].result.code == 4);
  CHECK(done[0].result.error ==
        "the persistent command exited while answering this task (it ended its output in "
        "the middle of an answer, after 3 of its 10 bytes)");
}

TEST_CASE("framed persistent runner refuses an answer whose header announces more than --max-output-bytes") {
  captured_log log;
  auto r = framed_runner({.slots = 1, .max_output_bytes = 1000});
  r->start(task(0, "huge"), steady::now());
  const auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::too_large);
  CHECK(done[0].result.error ==
        "output exceeded --max-output-bytes (1000 bytes): the answer's header announced 2000 bytes");
}
