// Unit tests for block_splitter (lib/src/input/block_splitter.cpp): --block payloads of about N bytes,
// cut at record boundaries, the same whatever the chunking of the bytes fed.
#include "input/block_splitter.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using mtask::block_splitter;

namespace {

using payloads = std::vector<std::string>;

payloads drain(block_splitter& s) {
  payloads out;
  while (auto p = s.next()) out.push_back(std::move(*p));
  return out;
}

// Feeds `input` in the given chunk sizes (cycled; empty: all at once), taking payloads as they complete.
payloads split(std::string_view input, std::size_t block, char sep = '\n',
               const std::vector<std::size_t>& chunks = {}) {
  block_splitter s(sep, block);
  payloads out;
  std::size_t at = 0;
  for (std::size_t i = 0; at < input.size(); ++i) {
    const std::size_t n = chunks.empty() ? input.size() : chunks[i % chunks.size()];
    s.feed(input.substr(at, n));
    at += n;
    for (auto& p : drain(s)) out.push_back(std::move(p));
  }
  s.finish();
  for (auto& p : drain(s)) out.push_back(std::move(p));
  CHECK(s.buffered() == 0);
  return out;
}

// The definition, written the slow way: records with their separators, packed greedily.
payloads reference(std::string_view input, std::size_t block, char sep) {
  std::vector<std::string> records;
  std::size_t start = 0;
  while (start < input.size()) {
    const auto end = input.find(sep, start);
    if (end == std::string_view::npos) {
      records.emplace_back(input.substr(start));
      break;
    }
    records.emplace_back(input.substr(start, end - start));
    start = end + 1;
  }
  payloads out;
  for (std::size_t i = 0; i < records.size();) {
    std::string payload = records[i];
    std::size_t used = records[i].size() + 1;
    for (++i; i < records.size() && used + records[i].size() + 1 <= block; ++i) {
      used += records[i].size() + 1;
      payload += sep;
      payload += records[i];
    }
    out.push_back(std::move(payload));
  }
  return out;
}

std::string joined(const payloads& ps, char sep) {
  std::string all;
  for (const auto& p : ps) {
    all += p;
    all += sep;
  }
  return all;
}

} // namespace

TEST_CASE("block splitter packs as many whole lines as fit in the block") {
  // Each line takes 2 bytes with its newline: 3 fit in 6 or 7 bytes, 4 in 8.
  CHECK(split("a\nb\nc\nd\ne\n", 6) == payloads{"a\nb\nc", "d\ne"});
  CHECK(split("a\nb\nc\nd\ne\n", 7) == payloads{"a\nb\nc", "d\ne"});
  CHECK(split("a\nb\nc\nd\ne\n", 8) == payloads{"a\nb\nc\nd", "e"});
  CHECK(split("a\nb\nc\nd\ne\n", 100) == payloads{"a\nb\nc\nd\ne"});
}

TEST_CASE("block splitter gives one line per payload when the block holds only one") {
  CHECK(split("aa\nbb\ncc\n", 3) == payloads{"aa", "bb", "cc"});
  CHECK(split("a\nb\n", 1) == payloads{"a", "b"});
}

TEST_CASE("block splitter passes a line larger than the block whole, alone") {
  CHECK(split("a\nbbbbbbbbbb\nc\nd\n", 4) == payloads{"a", "bbbbbbbbbb", "c\nd"});
  CHECK(split("bbbbbbbbbb", 4) == payloads{"bbbbbbbbbb"});
  CHECK(split("bbbbbbbbbb\n", 4) == payloads{"bbbbbbbbbb"});
}

TEST_CASE("block splitter counts a last line without newline as if it had one") {
  CHECK(split("a\nbc", 5) == payloads{"a\nbc"});
  CHECK(split("a\nbc", 4) == payloads{"a", "bc"});
  CHECK(split("a\nbc\n", 5) == payloads{"a\nbc"});
  CHECK(split("a\nbc\n", 4) == payloads{"a", "bc"});
}

TEST_CASE("block splitter keeps empty lines and does not make one of the trailing newline") {
  CHECK(split("\n\n\n", 1) == payloads{"", "", ""});
  CHECK(split("\n\n\n", 2) == payloads{"\n", ""});
  CHECK(split("\n\n\n", 3) == payloads{"\n\n"});
  CHECK(split("a\n\nb\n", 100) == payloads{"a\n\nb"});
}

TEST_CASE("block splitter gives no payload for empty input") {
  CHECK(split("", 10).empty());
  block_splitter s('\n', 10);
  CHECK_FALSE(s.next().has_value());
  s.feed("");
  s.finish();
  CHECK_FALSE(s.next().has_value());
}

TEST_CASE("block splitter cuts NUL-separated records and keeps their newlines") {
  const std::string input("a\nb\0c\0dddd\0", 11);
  CHECK(split(input, 6, '\0') == payloads{std::string("a\nb\0c", 5), "dddd"});
  CHECK(block_splitter('\0', 6).terminator() == std::string(1, '\0'));
  CHECK(block_splitter('\n', 6).terminator() == "\n");
}

TEST_CASE("block splitter holds back a block until it is full or the input ends") {
  block_splitter s('\n', 8);
  s.feed("a\nb\n");
  CHECK_FALSE(s.next().has_value()); // more lines may still fit
  CHECK(s.buffered() == 4);
  s.feed("cc\nd");
  CHECK(s.next() == std::optional<std::string>("a\nb\ncc")); // 8 bytes buffered: "d" cannot fit
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 1);
  CHECK_FALSE(s.finished());
  s.finish();
  CHECK(s.finished());
  CHECK(s.next() == std::optional<std::string>("d"));
  CHECK_FALSE(s.next().has_value());
  CHECK(s.buffered() == 0);
}

TEST_CASE("block splitter releases an oversized line as soon as its newline arrives") {
  block_splitter s('\n', 4);
  s.feed("xxxxxx");
  CHECK_FALSE(s.next().has_value());
  s.feed("xxxx\ny");
  CHECK(s.next() == std::optional<std::string>("xxxxxxxxxx"));
  CHECK_FALSE(s.next().has_value());
  s.finish();
  CHECK(s.next() == std::optional<std::string>("y"));
}

TEST_CASE("block splitter refuses a block of 0 bytes") {
  CHECK_THROWS_WITH_AS(block_splitter('\n', 0), "block size must be at least 1 byte", mtask::usage_error);
}

TEST_CASE("block splitter payloads plus terminators rebuild random input, however it is fed") {
  std::mt19937 rng(20240611);
  const auto below = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  for (int round = 0; round < 2000; ++round) {
    const char sep = round % 2 == 0 ? '\n' : '\0';
    // Records of mixed lengths, some empty, some longer than the block.
    std::string input;
    const std::size_t records = below(30);
    for (std::size_t r = 0; r < records; ++r) {
      const std::size_t len = below(4) == 0 ? below(60) : below(6);
      for (std::size_t i = 0; i < len; ++i) input += static_cast<char>('a' + below(3));
      input += sep;
    }
    const bool unterminated = below(3) == 0;
    if (unterminated) input += std::string(1 + below(10), 'z');
    const std::size_t block = 1 + below(40);
    std::vector<std::size_t> chunks;
    for (std::size_t i = 0, n = 1 + below(5); i < n; ++i) chunks.push_back(1 + below(below(2) == 0 ? 3 : 50));
    CAPTURE(round);
    CAPTURE(input);
    CAPTURE(block);

    const payloads at_once = split(input, block, sep);
    CHECK(at_once == reference(input, block, sep));
    CHECK(split(input, block, sep, chunks) == at_once);
    CHECK(split(input, block, sep, {1}) == at_once);
    CHECK(joined(at_once, sep) == (unterminated ? input + sep : input));
    for (const auto& p : at_once) {
      // Within the block, unless it is one oversized record.
      CHECK((p.size() + 1 <= block || p.find(sep) == std::string::npos));
    }
  }
}

TEST_CASE("block splitter cuts 1 MiB blocks from 8 MiB of lines fed in 4 KiB chunks") {
  std::string input;
  for (int i = 0; input.size() < (8u << 20); ++i) input += std::string(static_cast<std::size_t>(i % 200), 'x') + "\n";
  const payloads out = split(input, 1u << 20, '\n', {4096});
  CHECK(out == reference(input, 1u << 20, '\n'));
  CHECK(out.size() >= 8);
  CHECK(out.size() <= 10);
  CHECK(joined(out, '\n') == input);
}
