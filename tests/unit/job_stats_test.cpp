// Unit tests for --stats (lib/src/sink/job_stats.cpp): the runtime histogram's buckets, the
// per-worker figures, the slowest tasks, and the totals by status. The JSON's schema is checked
// end to end (tests/e2e/test_sink_modes.py reads it back with Python's json module).
#include "sink/job_stats.hpp"

#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <string>

using mtask::job_stats;
namespace wire = mtask::wire;

namespace {

wire::result_view attempt(std::uint64_t id, std::uint64_t us, wire::task_status status = wire::task_status::ok,
                          std::uint32_t retries_left = 0) {
  return wire::result_view{.id = id, .status = status, .runtime_us = us, .retries_left = retries_left};
}

} // namespace

TEST_CASE("job stats buckets runtimes within 1/16 of their value, in order, over the whole range") {
  std::size_t last = 0;
  for (std::uint64_t us = 0; us < (std::uint64_t{1} << 40); us = us < 64 ? us + 1 : us + us / 7) {
    CAPTURE(us);
    const auto b = job_stats::bucket_of(us);
    CHECK(b >= last); // monotonic
    last = b;
    CHECK(job_stats::lower_bound_of(b) <= us);
    if (b + 1 < job_stats::buckets) {
      CHECK(job_stats::lower_bound_of(b + 1) > us);
      CHECK(static_cast<double>(job_stats::lower_bound_of(b + 1) - job_stats::lower_bound_of(b)) <=
            static_cast<double>(us) / 16.0 + 1.0);
    }
  }
  CHECK(job_stats::bucket_of(UINT64_MAX) == job_stats::buckets - 1);
}

TEST_CASE("job stats counts attempts per worker, final outcomes by status, and keeps the slowest tasks") {
  job_stats s;
  for (std::uint64_t i = 0; i < 100; ++i) s.on_attempt("w1", attempt(i, 1000 + i)); // 1000..1099 µs
  s.on_attempt("w2", attempt(100, 50'000, wire::task_status::failed, 1));           // retried: not final
  s.on_attempt("w2", attempt(100, 60'000, wire::task_status::failed));              // final failure
  s.on_attempt("w2", attempt(101, 7, wire::task_status::timed_out));
  s.on_duplicate();
  const auto json = s.to_json(job_stats::totals{.job = 0xab, .wall_seconds = 2.0, .malformed = 3, .requeued = 4});
  CHECK(json.starts_with(R"({"job":{"id":"00000000000000ab","wall_seconds":2.000000,"tasks":102,)"));
  CHECK(json.find(R"("by_status":{"ok":100,"failed":1,"signalled":0,"not_started":0,"timed_out":1,"crashed":0,)"
                  R"("too_large":0},"retries":1,"requeues":4,"duplicates_dropped":1,"malformed_dropped":3})") !=
        std::string::npos);
  // w1: 100 attempts of 1000..1099 µs; percentiles are bucket lower bounds (within 1/16), never above max.
  CHECK(json.find(R"({"name":"w1","attempts":100,"failures":0,"busy_seconds":0.104950,"busy_share":0.052475,)"
                  R"("runtime_us":{"p50":1024,"p90":1088,"p99":1088,"max":1099}})") != std::string::npos);
  CHECK(json.find(R"({"name":"w2","attempts":3,"failures":3,)") != std::string::npos);
  // The slowest, longest first: the two attempts of task 100, then w1's longest.
  CHECK(
      json.find(R"("slowest":[{"id":100,"runtime_us":60000,"worker":"w2"},{"id":100,"runtime_us":50000,"worker":"w2"},)"
                R"({"id":99,"runtime_us":1099,"worker":"w1"},)") != std::string::npos);
  CHECK(json.ends_with("]}\n"));
}

TEST_CASE("job stats saved and restored (the journal's tally) go on as if never interrupted") {
  job_stats whole, first;
  const auto feed = [](job_stats& s, std::uint64_t from, std::uint64_t to) {
    for (auto i = from; i < to; ++i) {
      const auto status = i % 13 == 0 ? wire::task_status::failed : wire::task_status::ok;
      s.on_attempt(i % 3 == 0 ? "w1" : "w2@host:12", attempt(i, (i * 7919) % 100'000, status, i % 26 == 0 ? 1 : 0));
    }
  };
  feed(whole, 0, 500);
  feed(first, 0, 200);
  job_stats resumed;
  resumed.on_attempt("stale", attempt(1, 1)); // replaced by the restore
  resumed.restore(first.save());
  CHECK(resumed.save() == first.save());
  feed(resumed, 200, 500);
  whole.on_duplicate();
  resumed.set_duplicates(1);
  const job_stats::totals t{.job = 1, .wall_seconds = 3, .malformed = 0, .requeued = 0};
  CHECK(resumed.to_json(t) == whole.to_json(t));
  CHECK(job_stats{}.save().size() < 16); // an empty job's tally is a few bytes
}

TEST_CASE("job stats refuse a saved tally that is cut short or has bytes after it") {
  job_stats s;
  s.on_attempt("w1", attempt(0, 10));
  s.on_attempt("w2", attempt(1, 2000, wire::task_status::failed));
  const auto saved = s.save();
  for (std::size_t n = 0; n < saved.size(); ++n) {
    CAPTURE(n);
    job_stats r;
    CHECK_THROWS_WITH_AS(r.restore(saved.substr(0, n)), doctest::Contains("--stats in the journal: "), mtask::error);
  }
  job_stats r;
  CHECK_THROWS_WITH_AS(r.restore(saved + "x"), "--stats in the journal: bytes after its fields", mtask::error);
}
