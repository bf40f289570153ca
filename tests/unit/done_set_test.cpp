// Unit tests for done_set (lib/src/sink/done_set.cpp): the sink's record of which task ids it holds.
#include "sink/done_set.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

using mtask::done_set;

TEST_CASE("done set starts empty") {
  done_set d;
  CHECK(d.size() == 0);
  CHECK(d.watermark() == 0);
  CHECK_FALSE(d.contains(0));
}

TEST_CASE("done set says an id is new the first time only") {
  done_set d;
  CHECK(d.insert(0));
  CHECK_FALSE(d.insert(0));
  CHECK(d.insert(5));
  CHECK_FALSE(d.insert(5));
  CHECK(d.size() == 2);
}

TEST_CASE("done set raises its watermark over ids inserted in order") {
  done_set d;
  for (std::uint64_t id = 0; id < 100; ++id) CHECK(d.insert(id));
  CHECK(d.watermark() == 100);
  CHECK(d.size() == 100);
  CHECK(d.contains(0));
  CHECK(d.contains(99));
  CHECK_FALSE(d.contains(100));
}

TEST_CASE("done set absorbs ids that arrived early once the gap below them fills") {
  done_set d;
  CHECK(d.insert(3));
  CHECK(d.insert(2));
  CHECK(d.insert(5));
  CHECK(d.watermark() == 0);
  CHECK(d.size() == 3);
  CHECK(d.contains(2));
  CHECK(d.contains(3));
  CHECK_FALSE(d.contains(1));
  CHECK_FALSE(d.contains(4));

  CHECK(d.insert(0));
  CHECK(d.watermark() == 1);
  CHECK(d.insert(1));
  CHECK(d.watermark() == 4);
  CHECK(d.size() == 5);
  CHECK_FALSE(d.contains(4));
  CHECK(d.contains(5));

  CHECK(d.insert(4));
  CHECK(d.watermark() == 6);
  CHECK(d.size() == 6);
}

TEST_CASE("done set refuses ids below its watermark as already held") {
  done_set d;
  for (std::uint64_t id = 0; id < 10; ++id) (void)d.insert(id);
  CHECK_FALSE(d.insert(3));
  CHECK_FALSE(d.insert(9));
  CHECK(d.size() == 10);
  CHECK(d.insert(10));
  CHECK(d.watermark() == 11);
}

TEST_CASE("done set holds a far id without filling the gap") {
  done_set d;
  const auto far = std::numeric_limits<std::uint64_t>::max() - 1;
  CHECK(d.insert(far));
  CHECK(d.contains(far));
  CHECK_FALSE(d.contains(far - 1));
  CHECK(d.watermark() == 0);
  CHECK(d.size() == 1);
}
