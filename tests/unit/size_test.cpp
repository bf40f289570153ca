// Unit tests for parse_size (lib/src/common/size.cpp): byte sizes with 1024-based suffixes, as for --block.
#include "common/size.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using mtask::parse_size;

namespace {

void check_not_a_size(std::string_view text) {
  CAPTURE(text);
  const std::string message = "--block: '" + std::string(text) + "' is not a size (like 4096, 64k, 1M)";
  CHECK_THROWS_WITH_AS(parse_size("--block", text), message.c_str(), mtask::usage_error);
}

} // namespace

TEST_CASE("size takes a plain number as bytes") {
  CHECK(parse_size("--block", "1") == 1);
  CHECK(parse_size("--block", "4096") == 4096);
  CHECK(parse_size("--block", "007") == 7);
}

TEST_CASE("size multiplies by 1024 per suffix step, either case") {
  CHECK(parse_size("--block", "64k") == 64u * 1024);
  CHECK(parse_size("--block", "64K") == 64u * 1024);
  CHECK(parse_size("--block", "1m") == 1024u * 1024);
  CHECK(parse_size("--block", "1M") == 1024u * 1024);
  CHECK(parse_size("--block", "2g") == std::size_t{2} << 30);
  CHECK(parse_size("--block", "3G") == std::size_t{3} << 30);
}

TEST_CASE("size refuses text that is not a positive integer with one optional suffix") {
  for (std::string_view text : {"",   "k",   "0",     "0k",  "-1", "+1", "1.5",  "1.5M", " 1", "1 ",
                                "1X", "1KB", "64KiB", "1kk", "1t", "1T", "0x10", "1e3",  "k1", "1,024"}) {
    check_not_a_size(text);
  }
}

TEST_CASE("size names the flag it was given") {
  CHECK_THROWS_WITH_AS(parse_size("--max-bytes", "lots"), "--max-bytes: 'lots' is not a size (like 4096, 64k, 1M)",
                       mtask::usage_error);
}

TEST_CASE("size refuses values beyond size_t instead of wrapping") {
  static_assert(sizeof(std::size_t) == 8, "the limits below assume a 64-bit size_t");
  CHECK(parse_size("--block", "18446744073709551615") == 18446744073709551615u);
  CHECK(parse_size("--block", "17179869183G") == std::size_t{17179869183} << 30);
  CHECK_THROWS_WITH_AS(parse_size("--block", "18446744073709551616"), "--block: '18446744073709551616' is too large",
                       mtask::usage_error);
  CHECK_THROWS_WITH_AS(parse_size("--block", "17179869184G"), "--block: '17179869184G' is too large",
                       mtask::usage_error);
  CHECK_THROWS_WITH_AS(parse_size("--block", "99999999999999999999999k"),
                       "--block: '99999999999999999999999k' is too large", mtask::usage_error);
}
