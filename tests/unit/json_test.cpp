// Unit tests for append_json_string (lib/src/common/json.cpp). Expected strings come from Python:
//   ref(b) = json.dumps(b.decode("utf-8", "surrogateescape"), ensure_ascii=False), then each
//   U+DC80..U+DCFF in it (an undecodable byte xx) replaced by the six characters \u00xx.
#include "common/json.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::string_view_literals;
using mtask::append_json_string;

namespace {

std::string json(std::string_view bytes) {
  std::string out;
  append_json_string(out, bytes);
  return out;
}

using cases = std::vector<std::pair<std::string_view, std::string_view>>;

void check_all(const cases& all) {
  for (const auto& c : all) {
    CAPTURE(c.first);
    CHECK(json(c.first) == c.second);
  }
}

// FNV-1a, 64 bit: lets a test compare an exhaustive run with one number computed in Python.
std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h) {
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ULL;

} // namespace

TEST_CASE("json quotes plain ascii unchanged") {
  check_all({
      {""sv, R"("")"sv},
      {"hello"sv, R"("hello")"sv},
      {"a b ~ { } / '"sv, R"("a b ~ { } / '")"sv},
  });
}

TEST_CASE("json escapes quote, backslash and the named control characters") {
  check_all({
      {"say \"hi\"\\"sv, R"("say \"hi\"\\")"sv},
      {"a\nb\rc\td\be\ff"sv, R"("a\nb\rc\td\be\ff")"sv},
  });
}

TEST_CASE("json writes other control characters as lower-case \\u00xx and keeps DEL") {
  check_all({
      {"\x00\x01\x1f\x7f"sv, "\"\\u0000\\u0001\\u001f\x7f\""sv},
      {"\x1b[0m"sv, R"("\u001b[0m")"sv},
  });
}

TEST_CASE("json passes valid utf-8 through unchanged") {
  check_all({
      {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"sv, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""sv},
      {"\xe2\x80\xa8\xe2\x80\xa9"sv, "\"\xe2\x80\xa8\xe2\x80\xa9\""sv}, // U+2028, U+2029: valid JSON
      {"\xed\x9f\xbf"sv, "\"\xed\x9f\xbf\""sv},                         // U+D7FF, just below the surrogates
      {"\xf4\x8f\xbf\xbf"sv, "\"\xf4\x8f\xbf\xbf\""sv},                 // U+10FFFF, the last code point
      {"\xef\xbb\xbf"
       "bom"sv,
       "\"\xef\xbb\xbf"
       "bom\""sv},
      {"\xf0\x90\x80\x80\xf3\xbf\xbf\xbf"sv, "\"\xf0\x90\x80\x80\xf3\xbf\xbf\xbf\""sv},
  });
}

TEST_CASE("json writes bytes that can never occur in utf-8 as their latin-1 code point") {
  check_all({
      {"\xff"sv, R"("\u00ff")"sv},
      {"\xfe\xc0\xc1\xf5"sv, R"("\u00fe\u00c0\u00c1\u00f5")"sv},
      {"caf\xe9"sv, R"("caf\u00e9")"sv},
  });
}

TEST_CASE("json escapes a stray continuation byte and carries on") {
  check_all({
      {"\x80"
       "abc"sv,
       R"("\u0080abc")"sv},
      {"\xc3\xa9\xa9"sv, "\"\xc3\xa9\\u00a9\""sv},
  });
}

TEST_CASE("json escapes every byte of an overlong form") {
  check_all({
      {"\xc0\xaf"sv, R"("\u00c0\u00af")"sv},
      {"\xe0\x80\xaf"sv, R"("\u00e0\u0080\u00af")"sv},
      {"\xf0\x80\x80\xaf"sv, R"("\u00f0\u0080\u0080\u00af")"sv},
  });
}

TEST_CASE("json escapes encoded surrogates and code points beyond U+10FFFF") {
  check_all({
      {"\xed\xa0\x80"sv, R"("\u00ed\u00a0\u0080")"sv},
      {"\xed\xbf\xbf"sv, R"("\u00ed\u00bf\u00bf")"sv},
      {"\xf4\x90\x80\x80"sv, R"("\u00f4\u0090\u0080\u0080")"sv},
  });
}

TEST_CASE("json escapes a truncated sequence and keeps the valid one that follows") {
  check_all({
      {"\xe2\x82"sv, R"("\u00e2\u0082")"sv},
      {"\xe2\x82"
       "A"sv,
       R"("\u00e2\u0082A")"sv},
      {"\xe2\x82\xe2\x82\xac"sv, "\"\\u00e2\\u0082\xe2\x82\xac\""sv},
      {"\xf0\x9f\x98"sv, R"("\u00f0\u009f\u0098")"sv},
      {"\xc3"sv, R"("\u00c3")"sv},
      {"\xc3\xa9\xc3"sv, "\"\xc3\xa9\\u00c3\""sv},
      {"\xc3\n"sv, R"("\u00c3\n")"sv},
  });
}

TEST_CASE("json appends to what the string already holds") {
  std::string out = "{\"result\":";
  append_json_string(out, "a\"b");
  out += '}';
  CHECK(out == R"({"result":"a\"b"})");
}

TEST_CASE("json matches Python for every two-byte input and every four bytes of a tricky set") {
  // Digests from Python (ref() as in the file comment, fnv1a over each output plus "\n"):
  //   pairs: itertools.product(range(256), repeat=2)            -> 0xbc6f721ce197f695
  //   quads: itertools.product(tricky, repeat=4), tricky below -> 0x5cb182ae4db6e941
  std::uint64_t h = fnv_basis;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::array<char, 2> in{static_cast<char>(a), static_cast<char>(b)};
      h = fnv1a(json(std::string_view(in.data(), in.size())) + "\n", h);
    }
  }
  CHECK(h == 0xbc6f721ce197f695ULL);

  const std::array<unsigned char, 26> tricky{0x00, 0x0a, 0x1f, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0x8f,
                                             0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
                                             0xe1, 0xed, 0xef, 0xf0, 0xf3, 0xf4, 0xf5, 0xff};
  h = fnv_basis;
  for (auto a : tricky) {
    for (auto b : tricky) {
      for (auto c : tricky) {
        for (auto d : tricky) {
          const std::array<char, 4> in{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                                       static_cast<char>(d)};
          h = fnv1a(json(std::string_view(in.data(), in.size())) + "\n", h);
        }
      }
    }
  }
  CHECK(h == 0x5cb182ae4db6e941ULL);
}
