// Unit tests for -j's forms (lib/src/common/slots.cpp): N, 0, N%, +N, -N, as GNU parallel takes
// them (20221122: 75% of 2 cores runs 2 at once, 150% runs 3, +1 runs 3).
#include "common/slots.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <initializer_list>

using mtask::parse_slots;

namespace {

struct slots_case {
  const char* text;
  unsigned cores;
  unsigned want;
};

void check_all(std::initializer_list<slots_case> cases) {
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CAPTURE(c.cores);
    CHECK(parse_slots(c.text, c.cores) == c.want);
  }
}

} // namespace

TEST_CASE("slots: a plain number is that many slots, and 0 as many as possible") {
  check_all({{"1", 8, 1}, {"7", 2, 7}, {"4096", 2, 4096}, {"0", 2, mtask::zero_slots}});
}

TEST_CASE("slots: N% is N percent of the cores, rounded to nearest, at least 1") {
  check_all({{"100%", 8, 8},
             {"50%", 8, 4},
             {"75%", 2, 2},
             {"150%", 2, 3},
             {"10%", 2, 1},
             {"0%", 4, 1},
             {"1000000%", 4, mtask::max_slots}});
}

TEST_CASE("slots: +N and -N are relative to the cores, never below 1") {
  check_all({{"+1", 2, 3},
             {"+0", 2, 2},
             {"-1", 4, 3},
             {"-1", 2, 1},
             {"-5", 2, 1},
             {"+99999999999999999999", 2, mtask::max_slots}});
}

TEST_CASE("slots: anything else is a usage error naming the text") {
  CHECK_THROWS_WITH_AS((void)parse_slots("", 2), "-j: '' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("x", 2), "-j: 'x' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("2.5", 2), "-j: '2.5' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("%", 2), "-j: '%' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("+", 2), "-j: '+' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("-x", 2), "-j: '-x' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots(" 2", 2), "-j: ' 2' is not N, 0, N%, +N or -N", mtask::usage_error);
  CHECK_THROWS_WITH_AS((void)parse_slots("4097", 2), "-j: 4097 is more than the most slots (4096)", mtask::usage_error);
}

TEST_CASE("slots: a cgroup CPU quota counts as its cores, rounded up; 'max' is no limit") {
  using mtask::cores_of_cpu_max;
  CHECK(cores_of_cpu_max("200000 100000\n") == 2u);
  CHECK(cores_of_cpu_max("150000 100000") == 2u); // 1.5 CPUs: two tasks keep them busy
  CHECK(cores_of_cpu_max("50000 100000") == 1u);
  CHECK(cores_of_cpu_max("6400000 100000") == 64u);
  CHECK_FALSE(cores_of_cpu_max("max 100000\n"));
  CHECK_FALSE(cores_of_cpu_max("-1 100000")); // cgroup v1's "no quota"
  CHECK_FALSE(cores_of_cpu_max(""));
  CHECK_FALSE(cores_of_cpu_max("garbage"));
  CHECK(mtask::core_count() >= 1u);
}
