// Unit tests for the sink's progress line (lib/src/sink/progress.cpp): its text, rate and ETA at
// given instants (a fake clock: no waiting).
#include "sink/progress.hpp"

#include <doctest/doctest.h>

#include <chrono>

using mtask::progress_figures;
using mtask::progress_meter;
using namespace std::chrono_literals;

namespace {
const mtask::time_point t0{};
}

TEST_CASE("progress shows done, rate and the fleet while the total is unknown") {
  progress_meter m(t0);
  const progress_figures f{.done = 500, .workers = 3, .slots = 12};
  CHECK(m.line(f, t0 + 2s) == "500 done 250/s | 3 workers 12 slots | 0 failed 0 retried 0 requeued");
}

TEST_CASE("progress shows done of total, the percent floored, and an ETA from the rate") {
  progress_meter m(t0);
  const progress_figures f{
      .done = 999, .total = 1000, .failed = 2, .retried = 5, .requeued = 7, .workers = 1, .slots = 2};
  // 999 in 10 s: 99.9/s, one left: eta 0:00; 99% (never rounded up to 100 before the end).
  CHECK(m.line(f, t0 + 10s) == "999/1000 99% 99.9/s eta 0:00 | 1 workers 2 slots | 2 failed 5 retried 7 requeued");
}

TEST_CASE("progress's rate is over the last seconds, not the whole job") {
  progress_meter m(t0);
  progress_figures f{.done = 0, .total = 100000};
  (void)m.line(f, t0);
  f.done = 100;
  (void)m.line(f, t0 + 100s); // a slow start: 1/s
  f.done = 1100;
  // 1000 more in the last 2 s: 500/s (not 1100 in 102 s), and 98 900 left at that rate is 3:18.
  CHECK(m.line(f, t0 + 102s) == "1100/100000 1% 500/s eta 3:18 | 0 workers 0 slots | 0 failed 0 retried 0 requeued");
}

TEST_CASE("progress's ETA is unknown until a task is done, and absent once all are") {
  progress_meter m(t0);
  CHECK(m.line({.done = 0, .total = 10}, t0 + 1s).starts_with("0/10 0% 0.0/s eta ? |"));
  CHECK(m.line({.done = 10, .total = 10}, t0 + 2s).starts_with("10/10 100% 10.0/s |")); // 10 since 1 s ago
  CHECK(m.line({.done = 0, .total = 0}, t0 + 3s).starts_with("0/0 100% 0.0/s |"));
}

TEST_CASE("progress's summary gives the wall time and the mean rate") {
  progress_meter m(t0);
  CHECK(m.summary({.done = 7200, .total = 7200, .failed = 1}, t0 + 3723s) ==
        "done: 7200/7200 tasks in 1:02:03, 1.9/s | 1 failed 0 retried 0 requeued");
  CHECK(m.summary({.done = 3}, t0 + 90s) == "done: 3 tasks in 1:30, 0.0/s | 0 failed 0 retried 0 requeued");
}
