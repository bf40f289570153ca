// --report: what the sink learns of every attempt, kept in bounded memory, and the one
// self-contained HTML page it becomes at the end (SVG timeline, throughput, runtime histogram,
// slowest tasks, failures, and the figures as embedded JSON). Pure: no I/O, no clock.
#pragma once

#include "protocol/wire.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

// The latest time (µs since the epoch, 2^60: 36 000 years) an attempt's start or end is drawn at:
// a peer's absurd clock is clamped, so the time axis's arithmetic never wraps.
inline constexpr std::uint64_t max_time_us = std::uint64_t{1} << 60;

class report_collector {
 public:
  struct limits {
    std::size_t every_attempt = 5000; // up to this many attempts each is drawn; beyond, buckets
    std::size_t time_buckets = 240;   // of the timeline and throughput, once bucketed
    std::size_t max_lanes = 64;       // per worker; more overlapping attempts share the last lanes
    // A lane is free this long before its last attempt ended: a worker reads its wall clock for a
    // batch of results a little after each ended, so back-to-back attempts may seem to overlap.
    std::uint64_t lane_slack_us = 2000;
    std::size_t slowest = 20;
    std::size_t failures = 1000; // listed; the rest are counted
  };
  report_collector() : report_collector(limits{}) {}
  explicit report_collector(limits l);

  // Every attempt whose result reached the sink, final or not, the first copy only (as --stats
  // counts them). `worker` is its name as results name it. Needs the result's details (start_us).
  // Returns: whether the page keeps what ran (the result's command, else its payload), shortened
  // to command_kept bytes: the journal then keeps its first command_kept + 1 bytes, from which
  // the same shortened text comes back.
  bool on_attempt(std::string_view worker, const wire::result_view& r);
  static constexpr std::size_t command_kept = 200; // bytes of a command kept for the lists

  // For --journal: everything collected so far as bytes, which restore() reads back into a
  // collector with the same limits.
  [[nodiscard]] std::string save() const;
  // Replaces what was collected with what save() returned.
  // Throws: error when `saved` is not what save() of a collector with these limits returns.
  void restore(std::string_view saved);

  // What only the sink's loop knows, for the page's summary.
  struct job_figures {
    std::uint64_t job = 0;
    double wall_seconds = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t malformed = 0;
    std::uint64_t requeued = 0;
  };
  // Returns: the whole page. Its <script type="application/json" id="mtask-data"> holds the totals
  // (as --stats has them), per worker attempts, failures and lanes, and the drawn series.
  [[nodiscard]] std::string to_html(const job_figures& f) const;

  // True once the attempts are too many to keep each: the timeline is drawn from buckets.
  [[nodiscard]] bool bucketed() const { return bucketed_; }
  [[nodiscard]] std::uint64_t attempts() const { return attempts_; }

 private:
  struct attempt {
    std::uint64_t id;
    std::uint64_t start_us; // the worker's wall clock
    std::uint64_t runtime_us;
    std::uint32_t worker;
    std::uint32_t attempt;
    wire::task_status status;
    std::int32_t code;
    bool final;
    std::string command; // shortened
  };
  struct per_worker {
    std::string name;
    std::uint64_t attempts = 0;
    std::uint64_t failures = 0;
    std::uint64_t busy_us = 0;
    std::vector<std::uint64_t> lane_free_at;           // bucketed: when each lane's last attempt ended
    std::vector<std::vector<std::uint64_t>> lane_busy; // bucketed: busy µs per lane per time bucket
  };
  // The timeline's and throughput's time axis once bucketed: `time_buckets` of `width_us` from
  // `origin_us`, doubled in width (neighbours merged) whenever an attempt ends past the last.
  struct time_axis {
    std::uint64_t origin_us = 0;
    std::uint64_t width_us = 1;
  };

  std::uint32_t worker_index(std::string_view name);
  void to_buckets(); // the kept attempts become buckets; from now on each attempt goes there
  void add_to_buckets(const attempt& a);
  void widen_until(std::uint64_t end_us);
  [[nodiscard]] static std::string shorten(std::string_view s, std::size_t max);
  static void put_attempt(std::string& out, const attempt& a);
  template <typename Reader>
  attempt read_attempt(Reader& r) const;

  limits lim_;
  std::vector<per_worker> workers_;
  std::map<std::string, std::uint32_t, std::less<>> index_;
  std::vector<attempt> kept_; // until bucketed
  bool bucketed_ = false;
  time_axis axis_;
  std::vector<std::uint64_t> finished_ok_, finished_failed_; // attempts ended per time bucket (bucketed)
  std::uint64_t attempts_ = 0, no_start_ = 0;
  std::uint64_t min_start_ = UINT64_MAX, max_end_ = 0;
  std::array<std::uint64_t, 7> by_status_{}; // final attempts only, as --stats
  std::uint64_t retried_ = 0;
  std::vector<std::uint64_t> histogram_; // runtimes, job_stats' buckets
  std::vector<attempt> slowest_;         // longest first
  std::vector<attempt> failures_;        // the first `failures` failed attempts
  std::uint64_t failures_total_ = 0;
};

// Escapes text for HTML element content and attribute values: & < > " ' become entities, control
// characters spaces. The page is UTF-8; invalid bytes reach the browser, which shows U+FFFD.
void append_html_escaped(std::string& out, std::string_view text);

} // namespace mtask
