// Unit tests for --halt (lib/src/ventilator/halt_policy.cpp): parallel's syntax, and when a policy
// is reached.
#include "ventilator/halt_policy.hpp"

#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <string>

using mtask::halt_policy;
using mtask::parse_halt_policy;

TEST_CASE("halt policy reads parallel's forms and old numbers") {
  CHECK(parse_halt_policy("never").text() == "never");
  CHECK(parse_halt_policy("0").text() == "never");
  CHECK(parse_halt_policy("soon,fail=3").text() == "soon,fail=3");
  CHECK(parse_halt_policy("now,fail=1").text() == "now,fail=1");
  CHECK(parse_halt_policy("now,success=2").text() == "now,success=2");
  CHECK(parse_halt_policy("soon,done=10%").text() == "soon,done=10%");
  CHECK(parse_halt_policy("soon,fail=2.5%").text() == "soon,fail=2.5%");
  CHECK(parse_halt_policy("1").text() == "soon,fail=1");
  CHECK(parse_halt_policy("2").text() == "now,fail=1");
  CHECK(parse_halt_policy("-1").text() == "soon,success=1");
  CHECK(parse_halt_policy("-2").text() == "now,success=1");
  CHECK(parse_halt_policy("30%").text() == "soon,fail=30%");
}

TEST_CASE("halt policy refuses anything else with one usage error naming it") {
  for (const char* bad : {"", "sometime,fail=1", "soon", "soon,fail", "soon,fail=", "soon,fail=0", "soon,fail=-1",
                          "soon,fail=x", "soon,oops=1", "now,fail=0%", "now,fail=101%", "100%", "3", "soon,fail=1,2"}) {
    CAPTURE(bad);
    const std::string message =
        std::string("--halt: '") + bad +
        "' is not a halt policy (never, soon,fail=N, now,fail=P%, soon,success=N, now,done=N...)";
    CHECK_THROWS_WITH_AS(parse_halt_policy(bad), message.c_str(), mtask::usage_error);
  }
}

TEST_CASE("halt policy is reached by a count of failures, successes or tasks done") {
  const auto fail3 = parse_halt_policy("soon,fail=3");
  CHECK_FALSE(fail3.reached({.final_results = 10, .failed = 2}));
  CHECK(fail3.reached({.final_results = 10, .failed = 3}) == "3 task(s) failed (--halt soon,fail=3)");
  const auto success2 = parse_halt_policy("now,success=2");
  CHECK_FALSE(success2.reached({.final_results = 5, .failed = 4}));
  CHECK(success2.reached({.final_results = 6, .failed = 4}) == "2 task(s) succeeded (--halt now,success=2)");
  const auto done4 = parse_halt_policy("soon,done=4");
  CHECK_FALSE(done4.reached({.final_results = 3}));
  CHECK(done4.reached({.final_results = 4, .failed = 4}) == "4 task(s) done (--halt soon,done=4)");
  CHECK_FALSE(parse_halt_policy("never").reached({.final_results = 100, .failed = 100}));
}

TEST_CASE("halt policy's percentage is of the job's tasks, or of those read while input is read") {
  const auto p = parse_halt_policy("soon,fail=20%");
  // As parallel: 10 tasks, 20% is 2 failures.
  CHECK_FALSE(p.reached({.final_results = 5, .failed = 1, .total = 10, .read = 10}));
  CHECK(p.reached({.final_results = 5, .failed = 2, .total = 10, .read = 10}) ==
        "2 of 10 task(s) failed (--halt soon,fail=20%)");
  // Total unknown: of the 5 read so far, 1 is 20%.
  CHECK(p.reached({.final_results = 1, .failed = 1, .total = -1, .read = 5}) ==
        "1 of 5 task(s) failed (--halt soon,fail=20%)");
  CHECK_FALSE(p.reached({.final_results = 0, .failed = 0, .total = 0, .read = 0}));
}
