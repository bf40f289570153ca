// Unit tests for --joblog's lines (lib/src/sink/joblog.cpp): GNU parallel's columns, byte for byte.
#include "sink/joblog.hpp"

#include <doctest/doctest.h>

#include <string>

using mtask::append_joblog_line;
namespace wire = mtask::wire;

TEST_CASE("joblog's header is GNU parallel's") {
  // As `parallel --joblog` 20221122 writes it.
  CHECK(mtask::joblog_header() == "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
}

TEST_CASE("joblog writes an attempt with parallel's columns and number formats") {
  std::string out;
  append_joblog_line(out,
                     wire::result_view{.id = 0,
                                       .output = "a\n",
                                       .runtime_us = 2345,
                                       .start_us = 1796620435969123,
                                       .payload_bytes = 1,
                                       .command = "echo a"},
                     "vm:17484");
  // Seq counts from 1; Starttime has millis (truncated); JobRuntime is %10.3f, as parallel pads it.
  CHECK(out == "1\tvm:17484\t1796620435.969\t     0.002\t1\t2\t0\t0\techo a\n");
}

TEST_CASE("joblog splits each status into parallel's Exitval and Signal") {
  const auto line = [](wire::task_status status, int code) {
    std::string out;
    append_joblog_line(out, wire::result_view{.id = 41, .status = status, .code = code}, "w");
    return out;
  };
  CHECK(line(wire::task_status::failed, 3) == "42\tw\t0.000\t     0.000\t0\t0\t3\t0\t\n");
  CHECK(line(wire::task_status::signalled, 9) == "42\tw\t0.000\t     0.000\t0\t0\t0\t9\t\n");
  CHECK(line(wire::task_status::not_started, 2) == "42\tw\t0.000\t     0.000\t0\t0\t127\t0\t\n");
  CHECK(line(wire::task_status::timed_out, 0) == "42\tw\t0.000\t     0.000\t0\t0\t-1\t15\t\n");
  CHECK(line(wire::task_status::crashed, 0) == "42\tw\t0.000\t     0.000\t0\t0\t-1\t0\t\n");
  CHECK(line(wire::task_status::too_large, 0) == "42\tw\t0.000\t     0.000\t0\t0\t-1\t0\t\n");
}

TEST_CASE("joblog keeps one line per attempt whatever the command holds") {
  std::string out;
  append_joblog_line(out, wire::result_view{.id = 1, .command = "printf 'a\tb\nc'\r"}, "host\tname");
  CHECK(out == "2\thost name\t0.000\t     0.000\t0\t0\t0\t0\tprintf 'a b c' \n");
}

TEST_CASE("joblog's command is the payload for an attempt that names no command line") {
  // A built-in or a handler: the worker sends the payload once, not again as the command.
  std::string out;
  append_joblog_line(out, wire::result_view{.id = 0, .payload = "task 7"}, "w");
  CHECK(out == "1\tw\t0.000\t     0.000\t0\t0\t0\t0\ttask 7\n");
}
