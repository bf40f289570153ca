// Unit tests for mtask-top's screen (lib/src/top/top_view.cpp): the totals and the worker rows.
#include "top/top_view.hpp"

#include <doctest/doctest.h>

#include <string>

namespace wire = mtask::wire;

TEST_CASE("top shows the job, its totals over live workers, and live workers first, busiest first") {
  const wire::status_report r{
      .job = 0xab,
      .phase = "running",
      .total = 1000,
      .read = 1000,
      .acknowledged = 400,
      .requeued = 2,
      .retried = 1,
      .elapsed_ms = 12'345,
      .workers = {{.name = "b:2", .slots = 2, .busy = 1, .done = 150, .rate_milli = 50'000, .silent_ms = 100},
                  {.name = "gone:3", .slots = 8, .busy = 8, .done = 10, .silent_ms = 9'000, .alive = false},
                  {.name = "a:1", .slots = 4, .busy = 4, .done = 250, .rate_milli = 1'500, .silent_ms = 0}}};
  CHECK(mtask::render_status(r, "tcp://h:5557") ==
        "job 00000000000000ab at tcp://h:5557: running, 12 s\n"
        "tasks: 400 done of 1000 (1000 read), 51.5/s | workers: 2 live, 6 slots, 5 busy | 2 requeued, 1 retried\n"
        "WORKER                           SLOTS  BUSY       DONE       RATE LAST SEEN\n"
        "a:1                                  4     4        250      1.5/s      0.0s\n"
        "b:2                                  2     1        150     50.0/s      0.1s\n"
        "gone:3                               8     8         10      0.0/s      9.0s  lost\n");
}

TEST_CASE("top shows an unknown total as a question mark") {
  const wire::status_report r{.job = 1, .phase = "waiting_for_sink", .total = -1, .read = 5};
  CHECK(mtask::render_status(r, "ipc:///x").find("tasks: 0 done of ? (5 read), 0.0/s | workers: 0 live") !=
        std::string::npos);
}
