// --stats: what the sink learns of a job from its results, summed up as one JSON document at the
// end: totals by status, and per worker its tasks, failures, busy time and runtime percentiles,
// and the slowest tasks. Pure (no I/O, time passed in); memory is bounded per worker (runtimes go
// into a histogram of logarithmic buckets, not a list), whatever the job's length.
#pragma once

#include "common/clock.hpp"
#include "protocol/wire.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

class job_stats {
 public:
  // Every attempt whose result reached the sink, final or not (a failure with retries left), the
  // first copy only. `worker` is its name as the output names it.
  void on_attempt(std::string_view worker, const wire::result_view& r);
  void on_duplicate() { ++duplicates_; }
  // Resuming from a journal: the job's duplicates so far, the journal's count.
  void set_duplicates(std::uint64_t n) { duplicates_ = n; }

  // For --journal: every attempt counted so far (not the duplicates) as bytes, which restore()
  // reads back; histograms go as their non-zero buckets.
  [[nodiscard]] std::string save() const;
  // Replaces what was counted with what save() returned.
  // Throws: error when `saved` is not what save() returns.
  void restore(std::string_view saved);

  struct totals {
    std::uint64_t job = 0;
    double wall_seconds = 0;
    std::uint64_t malformed = 0; // frames dropped: malformed or of another job
    std::uint64_t requeued = 0;  // tasks requeued because their worker was lost (the ventilator's count)
  };
  // Returns: the JSON document (one object, ending in a newline); schema in the README.
  [[nodiscard]] std::string to_json(const totals& t) const;

  // The runtime histogram: bucket i holds runtimes in [lower(i), lower(i + 1)) microseconds: one
  // per microsecond below 16, then 16 per power of two (percentiles within 1/16), up to 2^64.
  static constexpr std::size_t buckets = (64 - 3) * 16;
  static std::size_t bucket_of(std::uint64_t us);
  static std::uint64_t lower_bound_of(std::size_t bucket);

 private:
  struct per_worker {
    std::uint64_t attempts = 0;
    std::uint64_t failures = 0; // attempts that did not end with exit status 0
    std::uint64_t busy_us = 0;
    std::uint64_t max_us = 0;
    std::vector<std::uint32_t> histogram; // `buckets` counts once the first attempt is in
    [[nodiscard]] std::uint64_t percentile(double p) const;
  };
  struct slow_task {
    std::uint64_t runtime_us;
    std::uint64_t id;
    std::string worker;
  };
  static constexpr std::size_t slowest_kept = 10;

  std::map<std::string, per_worker, std::less<>> workers_;
  std::array<std::uint64_t, 7> by_status_{}; // indexed by wire::task_status, final attempts only
  std::uint64_t retried_ = 0;                // attempts that failed with retries left
  std::uint64_t duplicates_ = 0;
  std::vector<slow_task> slowest_; // the slowest_kept longest, sorted longest first
  per_worker* last_ = nullptr;     // the worker of the last attempt (map nodes do not move)
  std::string_view last_name_;     // its key in workers_
};

} // namespace mtask
