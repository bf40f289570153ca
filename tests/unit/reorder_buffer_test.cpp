// Unit tests for reorder_buffer (lib/src/sink/reorder_buffer.cpp): results written in task order (-k).
#include "sink/reorder_buffer.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>

using mtask::reorder_buffer;

namespace {
using bytes = std::optional<std::string>;
}

TEST_CASE("reorder buffer gives nothing until the next id arrives") {
  reorder_buffer r;
  CHECK(r.next() == 0);
  CHECK(r.pop() == std::nullopt);
  r.put(1, "one");
  CHECK(r.pop() == std::nullopt);
  CHECK(r.next() == 0);
  CHECK(r.waiting() == 1);
}

TEST_CASE("reorder buffer releases results in id order whatever order they arrive in") {
  reorder_buffer r;
  r.put(2, "two");
  r.put(0, "zero");
  r.put(1, "one");
  CHECK(r.waiting() == 3);
  CHECK(r.pop() == bytes("zero"));
  CHECK(r.pop() == bytes("one"));
  CHECK(r.pop() == bytes("two"));
  CHECK(r.pop() == std::nullopt);
  CHECK(r.next() == 3);
  CHECK(r.waiting() == 0);
}

TEST_CASE("reorder buffer stops at a gap and resumes when it fills") {
  reorder_buffer r;
  r.put(0, "a");
  r.put(2, "c");
  CHECK(r.pop() == bytes("a"));
  CHECK(r.pop() == std::nullopt);
  CHECK(r.next() == 1);
  r.put(1, "b");
  CHECK(r.pop() == bytes("b"));
  CHECK(r.pop() == bytes("c"));
  CHECK(r.next() == 3);
}

TEST_CASE("reorder buffer passes an empty result as a result, not as nothing") {
  reorder_buffer r;
  r.put(0, "");
  const auto got = r.pop();
  REQUIRE(got.has_value());
  CHECK(got->empty());
  CHECK(r.next() == 1);
}

TEST_CASE("reorder buffer ignores ids already written") {
  reorder_buffer r;
  r.put(0, "a");
  CHECK(r.pop() == bytes("a"));
  r.put(0, "again");
  CHECK(r.waiting() == 0);
  CHECK(r.pop() == std::nullopt);
  CHECK(r.next() == 1);
}

TEST_CASE("reorder buffer keeps the first copy of an id it holds") {
  reorder_buffer r;
  r.put(1, "first");
  r.put(1, "second");
  CHECK(r.waiting() == 1);
  r.put(0, "zero");
  CHECK(r.pop() == bytes("zero"));
  CHECK(r.pop() == bytes("first"));
}

TEST_CASE("reorder buffer keeps bytes exactly, NUL and all") {
  reorder_buffer r;
  const std::string raw("a\0b\n\xff", 5);
  r.put(0, raw);
  CHECK(r.pop() == bytes(raw));
}
