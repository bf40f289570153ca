// Unit tests for mtask::ring (lib/include/mtask/ring.hpp), checked against std::deque.
#include "common/ring.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <string>

TEST_CASE("ring behaves as a deque under random pushes and pops, across wraps and growth") {
  mtask::ring<std::string> r;
  std::deque<std::string> model;
  std::mt19937 rng(7);
  for (int step = 0; step < 100000; ++step) {
    if (model.empty() || rng() % 3 != 0) {
      auto value = std::to_string(step) + std::string(rng() % 40, 'x'); // some on the heap, some not
      r.emplace_back() = value;
      model.push_back(value);
    } else {
      REQUIRE(r.front() == model.front());
      r.pop_front();
      model.pop_front();
    }
    REQUIRE(r.size() == model.size());
    REQUIRE(r.empty() == model.empty());
    if (!model.empty()) {
      const auto i = rng() % model.size();
      REQUIRE(r[i] == model[i]);
    }
  }
}

TEST_CASE("ring hands out a fresh element, whatever was in its slot before") {
  mtask::ring<std::string> r;
  for (int round = 0; round < 100; ++round) {
    CHECK(r.emplace_back().empty());
    r.front() = "used";
    r.pop_front();
  }
  CHECK(r.empty());
}
