// Unit tests for the --reduce aggregators (lib/src/sink/aggregator.cpp): exact integer totals, the
// switch to floating point, per-line and per-key results, and errors that name the task.
// Big-integer expectations were checked with Python's int arithmetic.
#include "mtask/aggregator.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using mtask::make_key_reducer;
using mtask::make_reducer;

namespace {

// Feeds the results as tasks 1, 2, 3, ... and returns finish().
std::string reduce(std::string_view op, const std::vector<std::string_view>& results, bool per_line = false) {
  auto agg = make_reducer(op, per_line);
  std::uint64_t id = 1;
  for (auto r : results) agg->add(id++, r);
  return agg->finish();
}

std::string reduce_by_key(std::string_view op, const std::vector<std::string_view>& results) {
  auto agg = make_key_reducer(op);
  std::uint64_t id = 1;
  for (auto r : results) agg->add(id++, r);
  return agg->finish();
}

} // namespace

TEST_CASE("reducer sums integers exactly") {
  CHECK(reduce("sum", {"1", "2", "3"}) == "6\n");
  CHECK(reduce("sum", {"-5", "+3", "0"}) == "-2\n");
  CHECK(reduce("sum", {"007", "-0"}) == "7\n");
}

TEST_CASE("reducer prints every digit of an integer sum beyond 2^63") {
  CHECK(reduce("sum", {"9223372036854775807", "9223372036854775807", "2"}) == "18446744073709551616\n");
  CHECK(reduce("sum", {"999999999999999999999999999999", "1"}) == "1000000000000000000000000000000\n");
  CHECK(reduce("sum", {"-9223372036854775808", "-9223372036854775808", "-1"}) == "-18446744073709551617\n");
}

TEST_CASE("reducer takes integers up to the 128-bit limits and refuses a sum beyond them") {
  CHECK(reduce("sum", {"170141183460469231731687303715884105727"}) == "170141183460469231731687303715884105727\n");
  CHECK(reduce("sum", {"-170141183460469231731687303715884105728"}) == "-170141183460469231731687303715884105728\n");
  CHECK(reduce("sum", {"170141183460469231731687303715884105727", "-170141183460469231731687303715884105728"}) ==
        "-1\n");
  auto agg = make_reducer("sum", false);
  agg->add(1, "170141183460469231731687303715884105727");
  CHECK_THROWS_WITH_AS(agg->add(2, "1"), "task 2: sum overflows", mtask::error);
  agg->add(3, "-7"); // the failed task counted nothing
  CHECK(agg->finish() == "170141183460469231731687303715884105720\n");
  CHECK_THROWS_WITH_AS(reduce("sum", {"170141183460469231731687303715884105728"}),
                       "task 1: number out of range: '170141183460469231731687303715884105728'", mtask::error);
  CHECK_THROWS_WITH_AS(reduce("sum", {"-170141183460469231731687303715884105729"}),
                       "task 1: number out of range: '-170141183460469231731687303715884105729'", mtask::error);
}

TEST_CASE("reducer switches to floating point at the first fraction and prints the shortest double") {
  CHECK(reduce("sum", {"1", "2.5", "3"}) == "6.5\n");
  CHECK(reduce("sum", {"0.25", "1e2", ".5", "-1.", "2E-1"}) == "99.95\n");
  CHECK(reduce("sum", {"1.5", "1.5"}) == "3\n");
  // Summed in long double, so 0.1 + 0.2 is the double nearest 0.3, unlike in double arithmetic.
  CHECK(reduce("sum", {"0.1", "0.2"}) == "0.3\n");
  // The exact sum so far carries over (Python: float(10**30 + 1 + 0.5) == 1e30, 2.0**64 + 0.5).
  CHECK(reduce("sum", {"999999999999999999999999999999", "2", "0.5"}) == "1e+30\n");
  CHECK(reduce("sum", {"9223372036854775807", "9223372036854775807", "2", "0.5"}) == "18446744073709551616\n");
  // std::to_chars picks whichever of fixed and scientific is shorter.
  CHECK(reduce("sum", {"999999.5", "0.5"}) == "1e+06\n");
  CHECK(reduce("sum", {"123456.5", "0.5"}) == "123457\n");
  CHECK(reduce("sum", {"1e308"}) == "1e+308\n");
}

TEST_CASE("reducer ignores spaces and tabs around a number and one trailing newline") {
  CHECK(reduce("sum", {" \t+5\t ", "6\n", "  7 \n"}) == "18\n");
}

TEST_CASE("reducer skips an empty or blank result, even for count") {
  CHECK(reduce("sum", {"", "4", "\n", " \t\n", "  "}) == "4\n");
  CHECK(reduce("count", {"", "4", "\n", "x", "  "}) == "2\n");
}

TEST_CASE("reducer refuses a result of several lines unless per line") {
  CHECK_THROWS_WITH_AS(reduce("sum", {"1\n2\n"}), "task 1: not a number: '1\\n2'", mtask::error);
  CHECK_THROWS_WITH_AS(reduce("sum", {"5\n\n"}), "task 1: not a number: '5\\n'", mtask::error);
}

TEST_CASE("reducer per line takes every non-blank line of a result as a number") {
  CHECK(reduce("sum", {"1\n2\n\n  3 \n", "4", "", "\n\n"}, true) == "10\n");
  CHECK(reduce("count", {"1\n2\n\n  3 \n", "4", "", "\n\n", "a\nb"}, true) == "6\n");
  CHECK(reduce("max", {"1\n20\n3", "4\n"}, true) == "20\n");
  CHECK(reduce("mean", {"1\n2", "3\n4\n"}, true) == "2.5\n");
}

TEST_CASE("reducer names the task and the text that is not a number") {
  for (std::string_view text :
       {"abc", "inf", "-inf", "nan", "NaN", "infinity", "0x10",  "1,5", "+-1",      "-+1",     "--1",
        "1e",  "1e+", ".",    "-",   "+",   "1 2",      "1.2.3", "e5",  "5 apples", "\xc3\xa9"}) {
    CAPTURE(text);
    const std::string message = "task 7: not a number: '" + std::string(text) + "'";
    auto agg = make_reducer("sum", false);
    CHECK_THROWS_WITH_AS(agg->add(7, text), message.c_str(), mtask::error);
  }
}

TEST_CASE("reducer names the line of a per-line result that is not a number") {
  auto agg = make_reducer("sum", true);
  CHECK_THROWS_WITH_AS(agg->add(3, "1\n\nx y\n4"), "task 3: line 3: not a number: 'x y'", mtask::error);
}

TEST_CASE("reducer cuts the quoted text to 40 bytes and escapes control characters") {
  const std::string long_text(100, 'z');
  const std::string expected = "task 9: not a number: '" + std::string(40, 'z') + "...'";
  CHECK_THROWS_WITH_AS(reduce("sum", {"1", "2", "3", "4", "5", "6", "7", "8", long_text}), expected.c_str(),
                       mtask::error);
  // 39 ASCII bytes then a two-byte character: the cut does not split it.
  const std::string accented = std::string(39, 'a') + "\xc3\xa9" + "bbb";
  const std::string expected_accented = "task 1: not a number: '" + std::string(39, 'a') + "...'";
  CHECK_THROWS_WITH_AS(reduce("sum", {accented}), expected_accented.c_str(), mtask::error);
  CHECK_THROWS_WITH_AS(reduce("sum", {std::string_view("1\x1b\r\x00", 4)}), "task 1: not a number: '1\\x1b\\r\\x00'",
                       mtask::error);
}

TEST_CASE("reducer refuses numbers beyond the double range") {
  CHECK_THROWS_WITH_AS(reduce("sum", {"1e400"}), "task 1: number out of range: '1e400'", mtask::error);
  CHECK_THROWS_WITH_AS(reduce("max", {"-1e309"}), "task 1: number out of range: '-1e309'", mtask::error);
  CHECK_THROWS_WITH_AS(reduce("sum", {"1e99999"}), "task 1: number out of range: '1e99999'", mtask::error);
}

TEST_CASE("reducer refuses at finish a sum with fractions beyond the double range") {
  auto agg = make_reducer("sum", false);
  agg->add(1, "1e308");
  agg->add(2, "1.5e308");
  CHECK_THROWS_WITH_AS(agg->finish(), "sum overflows", mtask::error);
  CHECK(reduce("mean", {"1.5e308", "1.5e308"}) == "1.5e+308\n");
}

TEST_CASE("reducer adds nothing of a per-line result with a bad line") {
  auto agg = make_reducer("sum", true);
  agg->add(1, "10\n20");
  CHECK_THROWS_AS(agg->add(2, "1\n2\nbad\n"), mtask::error);
  CHECK_THROWS_AS(agg->add(3, "0.5\nbad"), mtask::error); // nor does a fraction switch the total to floating point
  agg->add(4, "5");
  CHECK(agg->finish() == "35\n");
}

TEST_CASE("reducer counts values without parsing them") { CHECK(reduce("count", {"1", "2.5", "three"}) == "3\n"); }

TEST_CASE("reducer finds the min and max, printing an integer winner exactly") {
  CHECK(reduce("min", {"3", "-2", "7"}) == "-2\n");
  CHECK(reduce("max", {"3", "-2", "7"}) == "7\n");
  CHECK(reduce("min", {"3", "2.5", "7"}) == "2.5\n");
  CHECK(reduce("max", {"3", "2.5", "7"}) == "7\n");
  CHECK(reduce("max", {"1e20", "100000000000000000016"}) == "100000000000000000016\n");
  // An integer meets a fraction in long double (64-bit mantissa): 1e20 + 1 ties with 1e20.
  CHECK(reduce("max", {"1e20", "100000000000000000001"}) == "1e+20\n");
  CHECK(reduce("min", {"-170141183460469231731687303715884105728", "-1e30"}) ==
        "-170141183460469231731687303715884105728\n");
  // Beyond 2^53, integers still compare exactly among themselves.
  CHECK(reduce("max", {"9007199254740993", "9007199254740992"}) == "9007199254740993\n");
  CHECK(reduce("min", {"9007199254740993", "9007199254740992"}) == "9007199254740992\n");
  CHECK(reduce("min", {"1.0", "1"}) == "1\n"); // a tie keeps the first, printed as a double
  CHECK(reduce("min", {"1", "1.0"}) == "1\n");
}

TEST_CASE("reducer means integers exactly when they divide evenly, else as a double") {
  CHECK(reduce("mean", {"2", "4"}) == "3\n");
  CHECK(reduce("mean", {"1", "2", "3", "4"}) == "2.5\n");
  CHECK(reduce("mean", {"1", "2", "2"}) == "1.6666666666666667\n");
  CHECK(reduce("mean", {"-3", "0"}) == "-1.5\n");
  CHECK(reduce("mean", {"0.5", "1"}) == "0.75\n");
  CHECK(reduce("mean", {"170141183460469231731687303715884105727", "-170141183460469231731687303715884105727"}) ==
        "0\n");
  CHECK(reduce("mean", {"100000000000000000000000000000", "100000000000000000000000000000"}) ==
        "100000000000000000000000000000\n");
}

TEST_CASE("reducer with no values prints 0 for sum and count and nothing for min, max and mean") {
  for (bool per_line : {false, true}) {
    CHECK(reduce("sum", {}, per_line) == "0\n");
    CHECK(reduce("count", {}, per_line) == "0\n");
    CHECK(reduce("min", {}, per_line).empty());
    CHECK(reduce("max", {}, per_line).empty());
    CHECK(reduce("mean", {"", " \n"}, per_line).empty());
  }
}

TEST_CASE("reducer gives the same output when finish is called twice") {
  auto agg = make_reducer("mean", false);
  agg->add(1, "1");
  agg->add(2, "2");
  CHECK(agg->finish() == "1.5\n");
  CHECK(agg->finish() == "1.5\n");
}

TEST_CASE("reducer refuses an unknown operation, listing the known ones") {
  CHECK_THROWS_WITH_AS(make_reducer("avg", false),
                       "--reduce: unknown operation 'avg' (known: sum, count, min, max, mean)", mtask::usage_error);
  CHECK_THROWS_WITH_AS(make_reducer("", true), "--reduce: unknown operation '' (known: sum, count, min, max, mean)",
                       mtask::usage_error);
  CHECK_THROWS_WITH_AS(make_reducer("SUM", true),
                       "--reduce: unknown operation 'SUM' (known: sum, count, min, max, mean)", mtask::usage_error);
}

TEST_CASE("key reducer counts words like wordcount, one line per distinct word") {
  CHECK(reduce_by_key("count", {"the\ncat\nthe\n", "sat\non\nthe\nmat", "", "cat\n"}) ==
        "cat\t2\nmat\t1\non\t1\nsat\t1\nthe\t3\n");
}

TEST_CASE("key reducer count keys on the text before a tab and ignores the value") {
  CHECK(reduce_by_key("count", {"a\t5\na\tx\nb", "a\n"}) == "a\t3\nb\t1\n");
}

TEST_CASE("key reducer sums values per key, exactly for integers") {
  CHECK(reduce_by_key("sum", {"the\t1\ncat\t1\nthe\t1\n", "the\t2\ncat\t-1",
                              "big\t9223372036854775807\nbig\t9223372036854775807\n"}) ==
        "big\t18446744073709551614\ncat\t0\nthe\t4\n");
  CHECK(reduce_by_key("sum", {"x\t0.5\ny\t1\n", "x\t1\n"}) == "x\t1.5\ny\t1\n");
}

TEST_CASE("key reducer sorts keys by their bytes, non-ascii after ascii") {
  CHECK(reduce_by_key("count", {"zebra\n\xc3\xa4pfel\napple\nZoo\n\xc3\xa9mile\n\xe2\x82\xac\n10\n9\n"}) ==
        "10\t1\n9\t1\nZoo\t1\napple\t1\nzebra\t1\n\xc3\xa4pfel\t1\n\xc3\xa9mile\t1\n\xe2\x82\xac\t1\n");
}

TEST_CASE("key reducer keeps keys verbatim, spaces and empty keys included") {
  CHECK(reduce_by_key("sum", {"a\t1\n a\t2\na \t3\n\t4\n\t 5 \n"}) == "\t9\n a\t2\na\t1\na \t3\n");
}

TEST_CASE("key reducer finds the min and max per key") {
  CHECK(reduce_by_key("min", {"a\t3\nb\t-1\na\t2.5", "b\t-7\na\t10"}) == "a\t2.5\nb\t-7\n");
  CHECK(reduce_by_key("max", {"a\t3\nb\t-1\na\t2.5", "b\t-7\na\t10"}) == "a\t10\nb\t-1\n");
}

TEST_CASE("key reducer with no lines prints nothing") {
  CHECK(reduce_by_key("sum", {}).empty());
  CHECK(reduce_by_key("count", {"", "\n\n"}).empty());
}

TEST_CASE("key reducer names the task and line of a line without a tab") {
  auto agg = make_key_reducer("sum");
  CHECK_THROWS_WITH_AS(agg->add(4, "a\t1\nword\n"), "task 4: line 2: no tab between key and value: 'word'",
                       mtask::error);
}

TEST_CASE("key reducer names the task and line of a value that is not a number") {
  auto agg = make_key_reducer("max");
  CHECK_THROWS_WITH_AS(agg->add(5, "a\t1\n\nb\tten\n"), "task 5: line 3: not a number: 'ten'", mtask::error);
  CHECK_THROWS_WITH_AS(agg->add(6, "a\t\n"), "task 6: line 1: not a number: ''", mtask::error);
}

TEST_CASE("key reducer adds nothing of a result with a bad line") {
  auto agg = make_key_reducer("sum");
  agg->add(1, "a\t1\n");
  CHECK_THROWS_AS(agg->add(2, "a\t10\nb\t5\nc\tbad\n"), mtask::error);
  CHECK_THROWS_AS(agg->add(3, "a\t1\nnotab\n"), mtask::error);
  CHECK(agg->finish() == "a\t1\n");
}

TEST_CASE("key reducer names the key whose sum overflows and counts nothing of that result") {
  auto agg = make_key_reducer("sum");
  agg->add(1, "a\t170141183460469231731687303715884105727\n");
  CHECK_THROWS_WITH_AS(agg->add(2, "b\t1\na\t1\n"), "task 2: key 'a': sum overflows", mtask::error);
  CHECK(agg->finish() == "a\t170141183460469231731687303715884105727\n");
  auto within = make_key_reducer("sum");
  CHECK_THROWS_WITH_AS(within->add(3, "k\t170141183460469231731687303715884105727\nk\t1\n"),
                       "task 3: key 'k': sum overflows", mtask::error);
  auto floating = make_key_reducer("sum");
  floating->add(1, "k\t1e308\nk\t1e308\n");
  CHECK_THROWS_WITH_AS(floating->finish(), "key 'k': sum overflows", mtask::error);
}

TEST_CASE("key reducer refuses an unknown operation, mean included") {
  CHECK_THROWS_WITH_AS(make_key_reducer("mean"),
                       "--reduce-by-key: unknown operation 'mean' (known: sum, count, min, max)", mtask::usage_error);
}

// ---- save and restore (--journal) ----

namespace {

// Feeds the first half, saves, restores into a new aggregator made the same way, feeds the rest:
// the total must be the one an uninterrupted run prints, bit for bit.
template <typename Make>
void check_resumes(Make make, const std::vector<std::string_view>& results) {
  auto whole = make();
  auto first = make();
  std::uint64_t id = 1;
  for (std::size_t i = 0; i < results.size(); ++i) {
    whole->add(id + i, results[i]);
    if (i < results.size() / 2) first->add(id + i, results[i]);
  }
  const auto saved = first->save();
  REQUIRE(saved);
  auto second = make();
  second->restore(*saved);
  CHECK(*second->save() == *saved);
  for (std::size_t i = results.size() / 2; i < results.size(); ++i) second->add(id + i, results[i]);
  CHECK(second->finish() == whole->finish());
}

} // namespace

TEST_CASE("reducers save and restore their running total exactly") {
  const std::vector<std::string_view> ints{"170141183460469231731687303715884105000", "-5", "700", "7", "3"};
  const std::vector<std::string_view> fractions{"0.1", "0.2", "1e-30", "3", "-2.5", "1e300", "-1e300", "0.7"};
  for (std::string_view op : {"sum", "count", "min", "max", "mean"}) {
    CAPTURE(op);
    check_resumes([&] { return make_reducer(op, false); }, ints);
    check_resumes([&] { return make_reducer(op, false); }, fractions);
    check_resumes([&] { return make_reducer(op, true); },
                  {"1\n2\n", "3.5\n\n4", "-170141183460469231731687303715884105728"});
  }
  // Nothing added yet: restores to nothing added.
  check_resumes([] { return make_reducer("min", false); }, {});
}

TEST_CASE("key reducers save and restore every key's total exactly") {
  const std::vector<std::string_view> lines{"a\t1\nb\t2.5\n", "\t7\nc d\t-1", "a\t1e10\nb\t0.25\n", "z\t3\na\t-4"};
  for (std::string_view op : {"sum", "count", "min", "max"}) {
    CAPTURE(op);
    check_resumes([&] { return make_key_reducer(op); }, lines);
  }
}

TEST_CASE("a saved total restores only into the same reduction, and a damaged one is refused") {
  const auto sum = make_reducer("sum", false)->save();
  REQUIRE(sum);
  CHECK_THROWS_WITH_AS(make_reducer("count", false)->restore(*sum), doctest::Contains("another reduction"),
                       mtask::error);
  CHECK_THROWS_WITH_AS(make_reducer("sum", true)->restore(*sum), doctest::Contains("another reduction"), mtask::error);
  CHECK_THROWS_WITH_AS(make_key_reducer("sum")->restore(*sum), doctest::Contains("another reduction"), mtask::error);
  auto damaged = *sum;
  damaged.replace(damaged.find(' ', damaged.find('\n')), 1, "x");
  CHECK_THROWS_WITH_AS(make_reducer("sum", false)->restore(damaged), doctest::Contains("damaged"), mtask::error);
  auto keys = make_key_reducer("sum");
  keys->add(1, "k\t1\n");
  auto saved = *keys->save();
  CHECK_THROWS_WITH_AS(make_key_reducer("sum")->restore(saved + saved.substr(saved.find('\n') + 1)),
                       doctest::Contains("damaged"), mtask::error); // a key twice
  // A custom aggregator that does not override them cannot be journaled.
  struct plain final : mtask::aggregator {
    void add(std::uint64_t, std::string_view) override {}
    std::string finish() override { return {}; }
  };
  plain p;
  CHECK_FALSE(p.save());
  CHECK_THROWS_AS(p.restore("x"), mtask::error);
}
