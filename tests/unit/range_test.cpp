// Unit tests for --range (lib/src/input/range.cpp): parsing A:B[:STEP], and values exactly as
// GNU seq 9.1 prints them (expected outputs below were produced by `seq A STEP B`).
#include "input/range.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using mtask::parse_range;
using mtask::range_generator;
using mtask::range_spec;

namespace {

using values = std::vector<std::string>;

constexpr auto min64 = std::numeric_limits<std::int64_t>::min();
constexpr auto max64 = std::numeric_limits<std::int64_t>::max();

values all(std::string_view text) {
  range_generator g(parse_range(text));
  values out;
  while (auto v = g.next()) out.push_back(*v);
  CHECK(g.count() == out.size());
  CHECK_FALSE(g.next().has_value());
  return out;
}

bool same(const range_spec& a, const range_spec& b) {
  return a.first == b.first && a.last == b.last && a.step == b.step;
}

} // namespace

TEST_CASE("range parses A:B with step 1 and A:B:STEP with its step") {
  CHECK(same(parse_range("1:5"), {1, 5, 1}));
  CHECK(same(parse_range("5:1"), {5, 1, 1}));
  CHECK(same(parse_range("-3:+2"), {-3, 2, 1}));
  CHECK(same(parse_range("10:0:-2"), {10, 0, -2}));
  CHECK(same(parse_range("-9223372036854775808:9223372036854775807:9223372036854775807"), {min64, max64, max64}));
  CHECK(same(parse_range("0:0:-9223372036854775808"), {0, 0, min64}));
}

TEST_CASE("range refuses text that is not two or three integers separated by colons") {
  for (std::string_view text : {"",
                                "5",
                                ":",
                                "1:",
                                ":5",
                                "1:5:",
                                "1::2",
                                "1:5:1:1",
                                "a:b",
                                "1.0:5",
                                "1:5:0.5",
                                " 1:5",
                                "1:5 ",
                                "1 :5",
                                "0x10:20",
                                "--1:5",
                                "+-1:5",
                                "+:5",
                                "1e3:5",
                                "1,5",
                                "9223372036854775808:0",
                                "0:-9223372036854775809",
                                "0:1:99999999999999999999"}) {
    CAPTURE(text);
    const std::string message = "--range: '" + std::string(text) + "' is not A:B[:STEP] with integers";
    CHECK_THROWS_WITH_AS(parse_range(text), message.c_str(), mtask::usage_error);
  }
}

TEST_CASE("range refuses a step of 0") {
  CHECK_THROWS_WITH_AS(parse_range("1:5:0"), "--range: step must not be 0", mtask::usage_error);
  CHECK_THROWS_WITH_AS(parse_range("1:5:-0"), "--range: step must not be 0", mtask::usage_error);
}

TEST_CASE("range counts up by 1 like seq A B") {
  CHECK(all("1:5") == values{"1", "2", "3", "4", "5"});
  CHECK(all("-3:2") == values{"-3", "-2", "-1", "0", "1", "2"});
  CHECK(all("-5:-1") == values{"-5", "-4", "-3", "-2", "-1"});
  CHECK(all("0:0") == values{"0"});
  CHECK(all("+007:9") == values{"7", "8", "9"});
}

TEST_CASE("range stops at the last value not beyond B, like seq A STEP B") {
  CHECK(all("1:6:2") == values{"1", "3", "5"});
  CHECK(all("-2:7:3") == values{"-2", "1", "4", "7"});
  CHECK(all("1:1:100") == values{"1"});
}

TEST_CASE("range counts down with a negative step") {
  CHECK(all("5:1:-2") == values{"5", "3", "1"});
  CHECK(all("7:-8:-3") == values{"7", "4", "1", "-2", "-5", "-8"});
}

TEST_CASE("range yields nothing when the step points away from B, as seq does") {
  CHECK(all("5:1").empty());
  CHECK(all("1:5:-1").empty());
  CHECK(all("-1:-5").empty());
  range_generator g(parse_range("5:1"));
  CHECK(g.count() == 0);
  CHECK_FALSE(g.next().has_value());
}

TEST_CASE("range reaches the int64 limits without overflowing") {
  CHECK(all("9223372036854775805:9223372036854775807") ==
        values{"9223372036854775805", "9223372036854775806", "9223372036854775807"});
  CHECK(all("-9223372036854775808:-9223372036854775806") ==
        values{"-9223372036854775808", "-9223372036854775807", "-9223372036854775806"});
  CHECK(all("-9223372036854775807:-9223372036854775808:-1") == values{"-9223372036854775807", "-9223372036854775808"});
  CHECK(all("9223372036854775806:9223372036854775807:5") == values{"9223372036854775806"});
}

TEST_CASE("range steps across the whole int64 span without overflowing") {
  CHECK(all("-9223372036854775808:9223372036854775807:9223372036854775807") ==
        values{"-9223372036854775808", "-1", "9223372036854775806"});
  CHECK(all("9223372036854775807:-9223372036854775808:-4611686018427387904") ==
        values{"9223372036854775807", "4611686018427387903", "-1", "-4611686018427387905"});
  CHECK(all("0:-9223372036854775808:-9223372036854775808") == values{"0", "-9223372036854775808"});
  CHECK(all("-9223372036854775808:9223372036854775807:-9223372036854775808").empty());
}

TEST_CASE("range counts its values up front, saturating for the full int64 span") {
  CHECK(range_generator(range_spec{1, 1000000000000, 1}).count() == 1000000000000u);
  CHECK(range_generator(range_spec{0, max64, 1}).count() == std::uint64_t{1} << 63);
  CHECK(range_generator(range_spec{max64, min64, -1}).count() == std::numeric_limits<std::uint64_t>::max());
  range_generator full(range_spec{min64, max64, 1});
  CHECK(full.count() == std::numeric_limits<std::uint64_t>::max());
  CHECK(full.next() == std::optional<std::string>("-9223372036854775808"));
  CHECK(full.next() == std::optional<std::string>("-9223372036854775807"));
  CHECK(full.count() == std::numeric_limits<std::uint64_t>::max());
}
