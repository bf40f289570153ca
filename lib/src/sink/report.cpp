// --report (see report.hpp): collecting attempts in bounded memory, then the HTML page.
#include "sink/report.hpp"

#include "sink/joblog.hpp"

#include "common/json.hpp"
#include "sink/job_stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <numeric>

namespace mtask {
namespace {

constexpr std::array<const char*, 7> status_names{"ok",        "failed",  "signalled", "not_started",
                                                  "timed_out", "crashed", "too_large"};
constexpr double svg_width = 1100, label_width = 180, plot_width = svg_width - label_width - 10;
constexpr std::size_t cell_budget = 60000; // timeline rectangles at most, bucketed
constexpr std::size_t rows_drawn = 2000;   // timeline lanes at most

const char* name_of(wire::task_status s) { return status_names.at(static_cast<std::size_t>(s)); }

std::string seconds(std::uint64_t us) { return fmt::format("{:.3f}", static_cast<double>(us) / 1e6); }

std::string duration(std::uint64_t us) {
  if (us < 1000) return fmt::format("{} µs", us);
  if (us < 1'000'000) return fmt::format("{:.3g} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.3g} s", static_cast<double>(us) / 1e6);
}

// JSON that may sit inside <script>: no '<' (so no "</script>") and no '>' or '&' outside strings
// either (there are none: they come only from strings, where \u escapes mean the same).
std::string script_safe(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else
      out.push_back(c);
  }
  return out;
}

// Lanes: of the lanes free at `start` (give or take `slack`), the one that became free last (in
// start order any free lane would do; results arrive in about end order, and there taking the
// latest keeps as many lanes as slots), else a new one below `max_lanes`, else the lane that frees
// first. Returns the lane and marks it busy until `end`.
std::size_t take_lane(std::vector<std::uint64_t>& free_at, std::uint64_t start, std::uint64_t end,
                      std::size_t max_lanes, std::uint64_t slack) {
  std::size_t lane = free_at.size();
  for (std::size_t i = 0; i < free_at.size(); ++i)
    if (free_at[i] <= start + slack && (lane == free_at.size() || free_at[i] > free_at[lane])) lane = i;
  if (lane == free_at.size()) {
    if (free_at.size() < max_lanes)
      free_at.push_back(0);
    else
      lane = static_cast<std::size_t>(std::min_element(free_at.begin(), free_at.end()) - free_at.begin());
  }
  free_at[lane] = std::max(free_at[lane], end);
  return lane;
}

} // namespace

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
    }
  }
}

report_collector::report_collector(limits l) : lim_(l), histogram_(job_stats::buckets, 0) {}

std::string report_collector::shorten(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut; // not inside a UTF-8 character
  return std::string(s.substr(0, cut)) + "…";
}

std::uint32_t report_collector::worker_index(std::string_view name) {
  auto it = index_.find(name);
  if (it != index_.end()) return it->second;
  const auto i = static_cast<std::uint32_t>(workers_.size());
  workers_.push_back(per_worker{.name = std::string(name)});
  index_.emplace(std::string(name), i);
  return i;
}

bool report_collector::on_attempt(std::string_view worker, const wire::result_view& r) {
  ++attempts_;
  attempt a{.id = r.id,
            .start_us = r.start_us,
            .runtime_us = r.runtime_us,
            .worker = worker_index(worker),
            .attempt = r.attempt,
            .status = r.status,
            .code = r.code,
            .final = r.final(),
            .command = {}};
  auto& w = workers_[a.worker];
  ++w.attempts;
  w.busy_us += r.runtime_us;
  const bool failed = r.status != wire::task_status::ok;
  if (failed) ++w.failures;
  if (a.final)
    ++by_status_.at(static_cast<std::size_t>(r.status));
  else
    ++retried_;
  ++histogram_[job_stats::bucket_of(r.runtime_us)];
  if (r.start_us == 0) {
    ++no_start_; // no details: not on the time axis
  } else {
    min_start_ = std::min(min_start_, r.start_us);
    max_end_ = std::max(max_end_, r.start_us + r.runtime_us);
  }
  const bool slow = slowest_.size() < lim_.slowest || r.runtime_us > slowest_.back().runtime_us;
  const bool listed_failure = failed && failures_.size() < lim_.failures;
  if (failed) ++failures_total_;
  const bool keep_command = slow || listed_failure || !bucketed_;
  if (keep_command) a.command = shorten(what_ran(r), command_kept);
  if (slow) {
    const auto at = std::upper_bound(slowest_.begin(), slowest_.end(), r.runtime_us,
                                     [](std::uint64_t us, const attempt& t) { return us > t.runtime_us; });
    slowest_.insert(at, a);
    if (slowest_.size() > lim_.slowest) slowest_.pop_back();
  }
  if (listed_failure) failures_.push_back(a);
  if (bucketed_) {
    add_to_buckets(a);
    return keep_command;
  }
  kept_.push_back(std::move(a));
  if (kept_.size() > lim_.every_attempt) to_buckets();
  return keep_command;
}

void report_collector::to_buckets() {
  bucketed_ = true;
  const std::size_t n = lim_.time_buckets;
  finished_ok_.assign(n, 0);
  finished_failed_.assign(n, 0);
  axis_.origin_us = min_start_ == UINT64_MAX ? 0 : min_start_;
  // What is seen so far fills half the axis: the job may well go on as long again.
  const auto span = max_end_ > axis_.origin_us ? max_end_ - axis_.origin_us : 0;
  axis_.width_us = std::max<std::uint64_t>(1, span / (n / 2) + 1);
  std::stable_sort(kept_.begin(), kept_.end(), [](const attempt& a, const attempt& b) {
    return a.start_us < b.start_us; // lanes are given in start order, as they would have been taken
  });
  for (const auto& a : kept_) add_to_buckets(a);
  kept_.clear();
  kept_.shrink_to_fit();
}

void report_collector::widen_until(std::uint64_t end_us) {
  const std::size_t n = lim_.time_buckets;
  auto halve = [n](std::vector<std::uint64_t>& v) {
    for (std::size_t i = 0; i < n; ++i) v[i] = i < n / 2 ? v[2 * i] + (2 * i + 1 < n ? v[2 * i + 1] : 0) : 0;
  };
  // Never past the width at which width * n would wrap (times are clamped to max_time_us first,
  // so a sane axis never needs it): a loop that doubled the width to 0 would never end.
  while (end_us - axis_.origin_us >= axis_.width_us * n && axis_.width_us <= max_time_us / n) {
    halve(finished_ok_);
    halve(finished_failed_);
    for (auto& w : workers_)
      for (auto& lane : w.lane_busy) halve(lane);
    axis_.width_us *= 2;
  }
}

void report_collector::add_to_buckets(const attempt& a) {
  if (a.start_us == 0) return;
  const std::size_t n = lim_.time_buckets;
  // A worker whose clock is behind the first ones starts before the axis: drawn at its start.
  // Times from a peer are clamped (2^60 µs is 36 000 years): sums of them cannot wrap.
  const auto start = std::min(std::max(a.start_us, axis_.origin_us), max_time_us);
  // At least a microsecond: a built-in's attempts measure 0 µs, and a lane that ran 10^5 of them
  // was not idle.
  const auto end = std::max(std::min(a.start_us, max_time_us) + std::min(a.runtime_us, max_time_us), start + 1);
  widen_until(end);
  auto& w = workers_[a.worker];
  const auto lane = take_lane(w.lane_free_at, start, end, lim_.max_lanes, lim_.lane_slack_us);
  if (w.lane_busy.size() <= lane) w.lane_busy.resize(lane + 1, std::vector<std::uint64_t>(n, 0));
  auto& busy = w.lane_busy[lane];
  const auto o = axis_.origin_us, width = axis_.width_us;
  for (auto b = (start - o) / width; b < n && o + b * width < end; ++b) {
    const auto from = std::max(start, o + b * width), to = std::min(end, o + (b + 1) * width);
    busy[b] += to - from;
  }
  auto& finished = a.status == wire::task_status::ok ? finished_ok_ : finished_failed_;
  ++finished[std::min<std::uint64_t>(n - 1, (end - o) / width)];
}

std::string report_collector::to_html(const job_figures& f) const {
  // Small jobs: the throughput comes from a bucketed copy over exactly the job's span.
  const report_collector* b = this;
  report_collector copy;
  std::vector<std::size_t> lanes_of(workers_.size(), 0); // lanes per worker
  std::vector<std::size_t> lane_of;                      // small jobs: each kept attempt's lane
  if (!bucketed_) {
    copy = *this;
    copy.kept_.clear();
    copy.bucketed_ = true;
    const auto span = max_end_ > min_start_ && min_start_ != UINT64_MAX ? max_end_ - min_start_ : 0;
    copy.axis_ = time_axis{.origin_us = min_start_ == UINT64_MAX ? 0 : min_start_,
                           .width_us = std::max<std::uint64_t>(1, span / lim_.time_buckets + 1)};
    for (auto& w : copy.workers_) w = per_worker{.name = w.name};
    copy.finished_ok_.assign(lim_.time_buckets, 0);
    copy.finished_failed_.assign(lim_.time_buckets, 0);
    for (const auto& a : kept_) copy.add_to_buckets(a);
    b = &copy;
    // Lanes: per worker in start order, the first lane free at the attempt's start.
    std::vector<std::size_t> order(kept_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return kept_[x].start_us < kept_[y].start_us; });
    std::vector<std::vector<std::uint64_t>> free_at(workers_.size());
    lane_of.assign(kept_.size(), 0);
    for (auto i : order) {
      const auto& a = kept_[i];
      if (a.start_us == 0) continue;
      lane_of[i] =
          take_lane(free_at[a.worker], a.start_us, a.start_us + a.runtime_us, lim_.max_lanes, lim_.lane_slack_us);
    }
    for (std::size_t w = 0; w < workers_.size(); ++w) lanes_of[w] = free_at[w].size();
  } else {
    for (std::size_t w = 0; w < workers_.size(); ++w) lanes_of[w] = workers_[w].lane_busy.size();
  }
  const auto& ax = b->axis_;
  const std::size_t n = lim_.time_buckets;
  const std::uint64_t t0 = min_start_ == UINT64_MAX ? 0 : std::min(min_start_, ax.origin_us);
  const std::uint64_t t1 = std::max(max_end_, t0 + 1);
  const auto used_buckets = std::min<std::size_t>(n, (t1 - ax.origin_us + ax.width_us - 1) / ax.width_us);
  const auto x_of = [&](std::uint64_t t) {
    return label_width + plot_width * static_cast<double>(t - std::min(t, t0)) / static_cast<double>(t1 - t0);
  };
  std::vector<std::size_t> by_name(workers_.size());
  std::iota(by_name.begin(), by_name.end(), 0);
  std::sort(by_name.begin(), by_name.end(), [&](auto x, auto y) { return workers_[x].name < workers_[y].name; });
  std::uint64_t tasks = 0;
  for (auto c : by_status_) tasks += c;

  // The embedded figures.
  std::string json = fmt::format(R"({{"job":{{"id":"{:016x}","wall_seconds":{:.6f},"tasks":{},"by_status":{{)", f.job,
                                 f.wall_seconds, tasks);
  for (std::size_t s = 0; s < by_status_.size(); ++s)
    json += fmt::format(R"({}"{}":{})", s > 0 ? "," : "", status_names.at(s), by_status_[s]);
  json += fmt::format(
      R"(}},"retries":{},"requeues":{},"duplicates_dropped":{},"malformed_dropped":{}}},"attempts":{},"timeline":"{}",)",
      retried_, f.requeued, f.duplicates, f.malformed, attempts_, bucketed_ ? "buckets" : "attempts");
  json += fmt::format(R"("time":{{"start_us":{},"end_us":{},"bucket_us":{}}},"workers":[)", t0, t1, ax.width_us);
  for (std::size_t k = 0; k < by_name.size(); ++k) {
    const auto& w = workers_[by_name[k]];
    json += k > 0 ? R"(,{"name":)" : R"({"name":)";
    append_json_string(json, w.name);
    json += fmt::format(R"(,"attempts":{},"failures":{},"busy_seconds":{:.6f},"lanes":{}}})", w.attempts, w.failures,
                        static_cast<double>(w.busy_us) / 1e6, lanes_of[by_name[k]]);
  }
  auto series = [&](const std::vector<std::uint64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < used_buckets; ++i) s += fmt::format("{}{}", i > 0 ? "," : "", v[i]);
    return s + "]";
  };
  json += fmt::format(R"(],"throughput":{{"ok":{},"failed":{}}},"runtime_histogram":[)", series(b->finished_ok_),
                      series(b->finished_failed_));
  // Shown in quarter octaves: four of job_stats' sixteen buckets per power of two.
  std::vector<std::uint64_t> hist((histogram_.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < histogram_.size(); ++i) hist[i / 4] += histogram_[i];
  std::size_t h_lo = hist.size(), h_hi = 0;
  for (std::size_t i = 0; i < hist.size(); ++i)
    if (hist[i] > 0) h_lo = std::min(h_lo, i), h_hi = i + 1;
  for (std::size_t i = h_lo; i < h_hi; ++i)
    json +=
        fmt::format(R"({}{{"from_us":{},"count":{}}})", i > h_lo ? "," : "", job_stats::lower_bound_of(i * 4), hist[i]);
  auto attempt_json = [&](const attempt& a) {
    json += fmt::format(R"({{"id":{},"attempt":{},"status":"{}","code":{},"final":{},"runtime_us":{},"start_us":{},)",
                        a.id, a.attempt, name_of(a.status), a.code, a.final, a.runtime_us, a.start_us);
    json += R"("worker":)";
    append_json_string(json, workers_[a.worker].name);
    json += R"(,"command":)";
    append_json_string(json, a.command);
    json += '}';
  };
  json += R"(],"slowest":[)";
  for (std::size_t i = 0; i < slowest_.size(); ++i) {
    if (i > 0) json += ',';
    attempt_json(slowest_[i]);
  }
  json += fmt::format(R"(],"failures":{{"total":{},"listed":[)", failures_total_);
  for (std::size_t i = 0; i < failures_.size(); ++i) {
    if (i > 0) json += ',';
    attempt_json(failures_[i]);
  }
  json += "]}}";

  std::string out;
  auto o = std::back_inserter(out);
  out += R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mtask report</title>
<style>
body{font:14px sans-serif;margin:16px;color:#222}h2{margin-top:28px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
td.n{text-align:right}td.c{font-family:monospace;max-width:520px;overflow-wrap:anywhere}
svg text{font:11px sans-serif}.ok{fill:#3a7bd5}.f{fill:#d9363e}.ax{stroke:#999}.note{color:#555;max-width:1100px}
</style></head><body>
)";
  fmt::format_to(o, "<h1>mtask report</h1>\n<p>Job {:016x}: {} task(s) in {:.3f} s", f.job, tasks, f.wall_seconds);
  for (std::size_t s = 0; s < by_status_.size(); ++s)
    if (by_status_[s] > 0) fmt::format_to(o, ", {} {}", by_status_[s], status_names.at(s));
  fmt::format_to(o, "; {} attempt(s), {} retried, {} requeued, {} duplicate(s) dropped, {} worker(s).</p>\n", attempts_,
                 retried_, f.requeued, f.duplicates, workers_.size());
  out +=
      R"(<p class="note">Times are the workers' own clocks: each attempt's start is read on its worker's wall clock )"
      R"(and its runtime measured there. On one host the timeline is exact; across hosts each worker's lanes are )"
      R"(consistent in themselves, but lanes of different hosts may be shifted by their clocks' difference.</p>)";

  // The timeline.
  std::size_t rows = 0;
  for (auto l : lanes_of) rows += l;
  const std::size_t drawn_rows = std::min(rows, rows_drawn);
  const double row_h = std::clamp(520.0 / static_cast<double>(std::max<std::size_t>(drawn_rows, 1)), 2.0, 16.0);
  const double tl_h = row_h * static_cast<double>(drawn_rows) + 24;
  fmt::format_to(o,
                 "\n<h2>Timeline</h2>\n<p class=\"note\">One row per worker lane. Workers do not say which slot ran an "
                 "attempt: lanes are given per worker in order of start time, each attempt taking the first lane free "
                 "at its start (within {}, as workers read their clock a little after a task ends), so a worker has "
                 "about as many lanes as it ran attempts at once. ",
                 duration(lim_.lane_slack_us));
  if (bucketed_)
    fmt::format_to(o,
                   "The job has {} attempts, more than the {} drawn one by one: each lane shows how busy it was in "
                   "each time bucket (darker is busier); failures are in the throughput chart and the list below.",
                   attempts_, lim_.every_attempt);
  else
    out += "Each attempt is a bar; <span style=\"color:#d9363e\">failures in red</span>. Hover a bar for its task.";
  if (rows > drawn_rows) fmt::format_to(o, " Only the first {} of {} lanes are drawn.", drawn_rows, rows);
  if (no_start_ > 0) fmt::format_to(o, " {} attempt(s) without a start time are not drawn.", no_start_);
  fmt::format_to(o, "</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{:.0f}\">\n", svg_width,
                 tl_h);
  std::vector<std::size_t> first_row(workers_.size(), 0);
  {
    std::size_t row = 0;
    for (auto w : by_name) {
      first_row[w] = row;
      if (row < drawn_rows && lanes_of[w] > 0) {
        fmt::format_to(o, "<text x=\"4\" y=\"{:.1f}\">", static_cast<double>(row) * row_h + std::min(row_h, 12.0));
        append_html_escaped(out, shorten(workers_[w].name, 28));
        out += "</text>\n";
        fmt::format_to(o, "<line class=\"ax\" x1=\"0\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>\n", svg_width,
                       static_cast<double>(row) * row_h, static_cast<double>(row) * row_h);
      }
      row += lanes_of[w];
    }
  }
  if (!bucketed_) {
    for (std::size_t i = 0; i < kept_.size(); ++i) {
      const auto& a = kept_[i];
      const auto row = first_row[a.worker] + lane_of[i];
      if (a.start_us == 0 || row >= drawn_rows) continue;
      const double x = x_of(a.start_us), w = std::max(0.5, x_of(a.start_us + a.runtime_us) - x);
      fmt::format_to(o, R"(<rect class="{}" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>task {} )",
                     a.status == wire::task_status::ok ? "ok" : "f", x, static_cast<double>(row) * row_h + 0.5, w,
                     std::max(1.0, row_h - 1), a.id);
      fmt::format_to(o, "attempt {}, {}, {}, ", a.attempt, name_of(a.status), duration(a.runtime_us));
      append_html_escaped(out, workers_[a.worker].name);
      out += ": ";
      append_html_escaped(out, shorten(a.command, 80));
      out += "</title></rect>\n";
    }
  } else {
    // Cells of `group` buckets, busy fraction in tenths; equal neighbours drawn as one rectangle.
    const std::size_t group = std::max<std::size_t>(1, (drawn_rows * used_buckets + cell_budget - 1) / cell_budget);
    const double bucket_x = plot_width * static_cast<double>(ax.width_us) / static_cast<double>(t1 - t0);
    for (auto wi : by_name) {
      const auto& w = workers_[wi];
      for (std::size_t lane = 0; lane < w.lane_busy.size(); ++lane) {
        const auto row = first_row[wi] + lane;
        if (row >= drawn_rows) break;
        const auto& busy = w.lane_busy[lane];
        int run_level = 0;
        std::size_t run_from = 0;
        auto flush = [&](std::size_t to) {
          if (run_level == 0) return;
          const double x = x_of(ax.origin_us) + bucket_x * static_cast<double>(run_from);
          fmt::format_to(
              o, R"(<rect class="ok" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill-opacity=".{}"/>)", x,
              static_cast<double>(row) * row_h + 0.5, bucket_x * static_cast<double>(to - run_from),
              std::max(1.0, row_h - 1), run_level == 10 ? 99 : run_level * 10);
          out += '\n';
        };
        for (std::size_t c = 0; c < used_buckets; c += group) {
          std::uint64_t sum = 0;
          for (std::size_t k = c; k < std::min(used_buckets, c + group); ++k) sum += busy[k];
          const double frac = static_cast<double>(sum) / static_cast<double>(ax.width_us * group);
          const int level = std::clamp(static_cast<int>(frac * 10 + 0.5), sum > 0 ? 1 : 0, 10);
          if (level != run_level) {
            flush(c);
            run_level = level;
            run_from = c;
          }
        }
        flush(used_buckets);
      }
    }
  }
  for (int k = 0; k <= 5; ++k) { // the time axis, in seconds from the first start
    const double x = label_width + plot_width * k / 5;
    fmt::format_to(o, "<line class=\"ax\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"0\" y2=\"{:.1f}\"/>", x, x, tl_h - 20);
    fmt::format_to(o, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\">{} s</text>\n", x, tl_h - 6,
                   k == 5 ? "end" : "middle", seconds((t1 - t0) * static_cast<std::uint64_t>(k) / 5));
  }
  out += "</svg>\n";

  // Throughput: attempts ended per bucket, failures stacked on top in red.
  std::uint64_t peak = 1;
  for (std::size_t i = 0; i < used_buckets; ++i) peak = std::max(peak, b->finished_ok_[i] + b->finished_failed_[i]);
  fmt::format_to(o,
                 "\n<h2>Throughput</h2>\n<p class=\"note\">Attempts ended per {} (peak {}, {:.1f}/s), failures in "
                 "red.</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"190\">\n",
                 duration(ax.width_us), peak, static_cast<double>(peak) * 1e6 / static_cast<double>(ax.width_us),
                 svg_width);
  const double bar_w = plot_width * static_cast<double>(ax.width_us) / static_cast<double>(t1 - t0);
  for (std::size_t i = 0; i < used_buckets; ++i) {
    const double hok = 160.0 * static_cast<double>(b->finished_ok_[i]) / static_cast<double>(peak);
    const double hf = 160.0 * static_cast<double>(b->finished_failed_[i]) / static_cast<double>(peak);
    const double x = x_of(ax.origin_us) + bar_w * static_cast<double>(i);
    if (hok > 0)
      fmt::format_to(o, R"(<rect class="ok" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)", x, 165 - hok,
                     std::max(0.5, bar_w - 0.3), hok);
    if (hf > 0)
      fmt::format_to(o, R"(<rect class="f" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"/>)", x, 165 - hok - hf,
                     std::max(0.5, bar_w - 0.3), hf);
  }
  fmt::format_to(o, "\n<text x=\"4\" y=\"12\">{}</text><text x=\"4\" y=\"165\">0</text>", peak);
  fmt::format_to(o, "<text x=\"{}\" y=\"183\">0 s</text><text x=\"{}\" y=\"183\" text-anchor=\"end\">{} s</text>\n",
                 label_width, svg_width - 10, seconds(t1 - t0));
  out += "</svg>\n";

  // The runtime histogram.
  std::uint64_t hpeak = 1;
  for (auto c : hist) hpeak = std::max(hpeak, c);
  out +=
      "\n<h2>Runtimes</h2>\n<p class=\"note\">Attempts by runtime, in quarter octaves (each bar from the runtime "
      "below it to the next).</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1100\" height=\"200\">\n";
  const double hbar = h_hi > h_lo ? plot_width / static_cast<double>(h_hi - h_lo) : plot_width;
  for (std::size_t i = h_lo; i < h_hi; ++i) {
    const double h = 160.0 * static_cast<double>(hist[i]) / static_cast<double>(hpeak);
    const double x = label_width + hbar * static_cast<double>(i - h_lo);
    fmt::format_to(
        o, R"(<rect class="ok" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"><title>{}: {}</title></rect>)", x,
        165 - h, std::max(0.5, hbar - 1), h, duration(job_stats::lower_bound_of(i * 4)), hist[i]);
    if ((i - h_lo) % std::max<std::size_t>(1, (h_hi - h_lo) / 8) == 0)
      fmt::format_to(o, "<text x=\"{:.1f}\" y=\"183\">{}</text>", x, duration(job_stats::lower_bound_of(i * 4)));
    out += '\n';
  }
  fmt::format_to(o, "<text x=\"4\" y=\"12\">{}</text><text x=\"4\" y=\"165\">0</text>\n</svg>\n", hpeak);

  // The lists.
  auto row_of = [&](const attempt& a) {
    fmt::format_to(o, "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}{}</td><td class=\"n\">{}</td><td>",
                   a.id, a.attempt, name_of(a.status),
                   a.status == wire::task_status::ok ? "" : fmt::format(" ({})", a.code), duration(a.runtime_us));
    append_html_escaped(out, workers_[a.worker].name);
    out += "</td><td class=\"c\">";
    append_html_escaped(out, a.command);
    out += "</td></tr>\n";
  };
  const char* head =
      "<tr><th>task</th><th>attempt</th><th>status</th><th>runtime</th><th>worker</th><th>command</th></tr>\n";
  fmt::format_to(o, "\n<h2>Slowest attempts</h2>\n<table>\n{}", head);
  for (const auto& a : slowest_) row_of(a);
  out += "</table>\n";
  fmt::format_to(o, "\n<h2>Failures</h2>\n<p>{} failed attempt(s)", failures_total_);
  if (failures_total_ > failures_.size())
    fmt::format_to(o, "; the first {} are listed, {} more are not", failures_.size(),
                   failures_total_ - failures_.size());
  fmt::format_to(o, ". Status codes: exit status, signal or errno.</p>\n<table>\n{}", head);
  for (const auto& a : failures_) row_of(a);
  out +=
      "</table>\n\n<h2>Workers</h2>\n<table>\n<tr><th>worker</th><th>attempts</th><th>failures</th><th>busy "
      "s</th><th>lanes</th></tr>\n";
  for (auto wi : by_name) {
    const auto& w = workers_[wi];
    out += "<tr><td>";
    append_html_escaped(out, w.name);
    fmt::format_to(
        o, "</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
        w.attempts, w.failures, seconds(w.busy_us), lanes_of[wi]);
  }
  out += "</table>\n<script type=\"application/json\" id=\"mtask-data\">";
  out += script_safe(json);
  out += "</script>\n</body></html>\n";
  return out;
}

} // namespace mtask
