// Unit tests for record_splitter (lib/src/input/splitter.cpp): how an input byte stream becomes task
// payloads, whatever the chunking of the bytes fed.
#include "input/splitter.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using mtask::record_splitter;
using mtask::split_options;

namespace {

using payloads = std::vector<std::string>;

payloads drain(record_splitter& s) {
  payloads out;
  while (auto p = s.next()) out.push_back(std::move(*p));
  return out;
}

// Feeds `input` in chunks of `chunk` bytes (0: all at once), taking payloads as they complete.
payloads split(std::string_view input, split_options opts = {}, std::size_t chunk = 0) {
  record_splitter s(opts);
  payloads out;
  if (chunk == 0) chunk = input.size() + 1;
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    s.feed(input.substr(at, chunk));
    for (auto& p : drain(s)) out.push_back(std::move(p));
  }
  s.finish();
  for (auto& p : drain(s)) out.push_back(std::move(p));
  CHECK(s.buffered() == 0);
  return out;
}

const split_options nul{.separator = '\0', .records_per_task = 1};

std::string bytes(std::string_view s) { return std::string(s); }

} // namespace

TEST_CASE("splitter makes one payload per line, without the newline") {
  CHECK(split("alpha\nbeta\ngamma\n") == payloads{"alpha", "beta", "gamma"});
}

TEST_CASE("splitter makes a payload of a last line that has no newline") {
  CHECK(split("alpha\nbeta") == payloads{"alpha", "beta"});
  CHECK(split("only") == payloads{"only"});
}

TEST_CASE("splitter does not make an empty task of the trailing newline") {
  CHECK(split("a\nb\n") == payloads{"a", "b"});
  CHECK(split("a\n").size() == 1);
}

TEST_CASE("splitter makes an empty task of each empty line") {
  CHECK(split("a\n\nb\n") == payloads{"a", "", "b"});
  CHECK(split("\n") == payloads{""});
  CHECK(split("\n\n\n") == payloads{"", "", ""});
  CHECK(split("a\n\n") == payloads{"a", ""});
  CHECK(split("\na") == payloads{"", "a"});
}

TEST_CASE("splitter keeps carriage returns and other bytes of a line as they are") {
  CHECK(split("a\r\n b \t\n") == payloads{"a\r", " b \t"});
  CHECK(split(bytes(std::string_view("x\0y\n\xff\n", 6))) == payloads{bytes(std::string_view("x\0y", 3)), "\xff"});
}

TEST_CASE("splitter groups 7 lines 3 to a task as 3, 3 and 1, joined by newlines") {
  const split_options three{.separator = '\n', .records_per_task = 3};
  const payloads expected{"1\n2\n3", "4\n5\n6", "7"};
  CHECK(split("1\n2\n3\n4\n5\n6\n7\n", three) == expected);
  CHECK(split("1\n2\n3\n4\n5\n6\n7", three) == expected);
}

TEST_CASE("splitter groups lines exactly when the count divides evenly") {
  const split_options two{.separator = '\n', .records_per_task = 2};
  CHECK(split("1\n2\n3\n4\n", two) == payloads{"1\n2", "3\n4"});
  CHECK(split("1\n2\n3\n4", two) == payloads{"1\n2", "3\n4"});
}

TEST_CASE("splitter keeps empty lines inside a group") {
  const split_options two{.separator = '\n', .records_per_task = 2};
  CHECK(split("a\n\n\nb\n", two) == payloads{"a\n", "\nb"});
  CHECK(split("\n\n", two) == payloads{"\n"});
  CHECK(split("a\n\n", two) == payloads{"a\n"});
}

TEST_CASE("splitter holds back a group until it is complete or the input ends") {
  record_splitter s(split_options{.separator = '\n', .records_per_task = 3});
  s.feed("1\n2\n");
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 4);
  s.feed("3\n4");
  CHECK(s.next() == std::optional<std::string>("1\n2\n3"));
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 1);
  CHECK_FALSE(s.finished());
  s.finish();
  CHECK(s.finished());
  CHECK(s.next() == std::optional<std::string>("4"));
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 0);
}

TEST_CASE("splitter holds back a line without newline until the input ends") {
  record_splitter s(split_options{});
  s.feed("abc");
  CHECK_FALSE(s.next().has_value());
  s.feed("def\ngh");
  CHECK(s.next() == std::optional<std::string>("abcdef"));
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 2);
  s.finish();
  CHECK(s.next() == std::optional<std::string>("gh"));
  CHECK_FALSE(s.next().has_value());
}

TEST_CASE("splitter cuts at NUL with --null and keeps newlines inside records") {
  CHECK(split(bytes(std::string_view("a\0b\nc\0\0d", 9)), nul) == payloads{"a", "b\nc", "", "d"});
  CHECK(split(bytes(std::string_view("a\0b\0", 4)), nul) == payloads{"a", "b"});
  CHECK(split("line one\nline two\n", nul) == payloads{"line one\nline two\n"});
}

TEST_CASE("splitter groups NUL-separated records joined by NUL") {
  const split_options two_nul{.separator = '\0', .records_per_task = 2};
  CHECK(split(bytes(std::string_view("a\0b\0c\0", 6)), two_nul) == payloads{bytes(std::string_view("a\0b", 3)), "c"});
}

TEST_CASE("splitter names the terminator it cuts at") {
  CHECK(record_splitter(split_options{}).terminator() == "\n");
  CHECK(record_splitter(nul).terminator() == std::string(1, '\0'));
}

TEST_CASE("splitter gives the same payloads fed one byte at a time as fed at once") {
  const std::vector<std::string> inputs{
      "alpha\nbeta\ngamma\n",
      "a\n\nb",
      "\n\n\n",
      "1\n2\n3\n4\n5\n6\n7\n",
      "1\n2\n3\n4\n5\n6\n7",
      std::string("x\0y\0\0z\n\0", 9),
      std::string(1000, 'q') + "\n" + std::string(999, 'r'),
  };
  for (char sep : {'\n', '\0'}) {
    for (std::size_t n : {1u, 2u, 3u, 5u}) {
      const split_options opts{.separator = sep, .records_per_task = n};
      for (const auto& input : inputs) {
        CAPTURE(static_cast<int>(sep));
        CAPTURE(n);
        CAPTURE(input);
        const auto at_once = split(input, opts);
        CHECK(split(input, opts, 1) == at_once);
        CHECK(split(input, opts, 2) == at_once);
        CHECK(split(input, opts, 7) == at_once);
      }
    }
  }
}

TEST_CASE("splitter passes a 1 MiB line whole, fed at once or in 4 KiB chunks") {
  std::string line(1u << 20, 'x');
  for (std::size_t i = 0; i < line.size(); i += 4099) line[i] = static_cast<char>('a' + i % 26);
  const std::string input = line + "\nshort\n" + line;
  for (std::size_t chunk : {std::size_t{0}, std::size_t{4096}}) {
    CAPTURE(chunk);
    const auto out = split(input, split_options{}, chunk);
    REQUIRE(out.size() == 3);
    CHECK(out[0].size() == line.size());
    CHECK(out[0] == line);
    CHECK(out[1] == "short");
    CHECK(out[2] == line);
  }
}

TEST_CASE("splitter gives no payload for empty input") {
  CHECK(split("").empty());
  CHECK(split("", nul).empty());
  record_splitter s(split_options{.separator = '\n', .records_per_task = 3});
  CHECK_FALSE(s.next().has_value());
  s.feed("");
  s.finish();
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 0);
}

TEST_CASE("splitter gives nothing more once the last payload is taken") {
  record_splitter s(split_options{});
  s.feed("a\nb");
  s.finish();
  CHECK(s.next() == std::optional<std::string>("a"));
  CHECK(s.next() == std::optional<std::string>("b"));
  CHECK_FALSE(s.next().has_value());
  CHECK_FALSE(s.next().has_value());
}

TEST_CASE("splitter refuses zero records per task") {
  CHECK_THROWS_WITH_AS(record_splitter(split_options{.separator = '\n', .records_per_task = 0}),
                       "records per task must be at least 1", mtask::usage_error);
}
