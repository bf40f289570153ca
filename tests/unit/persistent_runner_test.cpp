// Unit tests for the persistent runner (lib/src/worker/persistent_runner.cpp): an answer line longer than
// --max-output-bytes fails its task as too large, and its process is killed and restarted with the
// other lines in flight returned unrun. Real commands, driven by poll(2) as the worker drives them.
#include "common/log.hpp"
#include "worker/task_runner.hpp"

#include "process_driver.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using steady = mtask::clock;
using mtask::runner_options;
using mtask::test::run_until_finished;
using mtask::test::task;
using mtask::wire::task_status;

namespace {

// Collects the log lines written while it lives (the restart's warning), instead of stderr.
struct captured_log {
  std::vector<std::string> lines;
  captured_log() {
    mtask::log::set_sink([this](std::string_view line) { lines.emplace_back(line); });
  }
  ~captured_log() { mtask::log::set_sink(nullptr); }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
};

// Answers each line N with N x's (sh's read takes one line at a time from a pipe).
const std::vector<std::string> x_times = {"sh", "-c",
                                          R"(while IFS= read -r n; do head -c "$n" /dev/zero | tr '\0' x; echo; done)"};

} // namespace

TEST_CASE("persistent runner fails a task whose answer line passes --max-output-bytes as too large") {
  captured_log log;
  auto r = mtask::make_persistent_runner(x_times, runner_options{.slots = 1, .max_output_bytes = 1000});
  r->set_prefetch(1); // both lines in flight to the one process
  r->start(task(0, "1000"), steady::now());
  r->start(task(1, "1001"), steady::now());
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
  CHECK(log.lines[0].find("warn: persistent command 'sh' died; restarting it") != std::string::npos);
}

TEST_CASE("persistent runner restarts a command whose answer was too large and returns the lines behind it") {
  captured_log log;
  auto r = mtask::make_persistent_runner(x_times, runner_options{.slots = 1, .max_output_bytes = 1 << 20});
  r->set_prefetch(1);
  r->start(task(0, "3000000"), steady::now());
  r->start(task(1, "7"), steady::now());
  auto done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::too_large);
  CHECK(r->running() == 0);
  auto returned = r->take_returned();
  REQUIRE(returned.size() == 1);
  CHECK(returned[0].task.id == 1);

  r->start(std::move(returned[0]), steady::now()); // to the restarted process
  done = run_until_finished(*r, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result.status == task_status::ok);
  CHECK(done[0].result.output == "xxxxxxx");
}
