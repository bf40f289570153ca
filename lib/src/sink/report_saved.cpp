// --report (see report.hpp): the collector saved whole as bytes and read back, for the journal's
// tally (a restarted sink's page then shows the whole job).
#include "sink/report.hpp"

#include "common/bytes.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mtask {
namespace {

using bytes::put_u8;
using bytes::put_var;
using bytes::put_vstr;

class bad_report : public error {
 public:
  explicit bad_report(const std::string& why) : error("--report in the journal: " + why) {}
};
using report_reader = bytes::reader<bad_report>;

void put_list(std::string& out, const std::vector<std::uint64_t>& v) {
  put_var(out, v.size());
  for (auto n : v) put_var(out, n);
}

std::vector<std::uint64_t> read_list(report_reader& r, std::size_t expected) {
  const auto n = r.var_count(1);
  if (n != expected) throw bad_report(fmt::format("a series of {} buckets, not {}", n, expected));
  std::vector<std::uint64_t> v(n);
  for (auto& x : v) x = r.var();
  return v;
}

} // namespace

void report_collector::put_attempt(std::string& out, const attempt& a) {
  put_var(out, a.id);
  put_var(out, a.start_us);
  put_var(out, a.runtime_us);
  put_var(out, a.worker);
  put_var(out, a.attempt);
  put_u8(out, static_cast<std::uint8_t>(a.status));
  put_var(out, static_cast<std::uint32_t>(a.code));
  put_u8(out, a.final ? 1 : 0);
  put_vstr(out, a.command);
}

template <typename Reader>
report_collector::attempt report_collector::read_attempt(Reader& r) const {
  attempt a{};
  a.id = r.var();
  a.start_us = r.var();
  a.runtime_us = r.var();
  a.worker = r.var32();
  if (a.worker >= workers_.size())
    throw bad_report(fmt::format("an attempt of worker {} of {}", a.worker, workers_.size()));
  a.attempt = r.var32();
  const auto status = r.u8();
  if (status > static_cast<std::uint8_t>(wire::task_status::too_large))
    throw bad_report(fmt::format("an attempt of status {}", status));
  a.status = static_cast<wire::task_status>(status);
  a.code = static_cast<std::int32_t>(r.var32());
  a.final = r.u8() != 0;
  a.command = r.vstr();
  return a;
}

std::string report_collector::save() const {
  std::string out;
  put_var(out, workers_.size());
  for (const auto& w : workers_) {
    put_vstr(out, w.name);
    put_var(out, w.attempts);
    put_var(out, w.failures);
    put_var(out, w.busy_us);
    put_list(out, w.lane_free_at);
    put_var(out, w.lane_busy.size());
    for (const auto& lane : w.lane_busy) put_list(out, lane);
  }
  put_u8(out, bucketed_ ? 1 : 0);
  put_var(out, axis_.origin_us);
  put_var(out, axis_.width_us);
  put_list(out, finished_ok_);
  put_list(out, finished_failed_);
  put_var(out, attempts_);
  put_var(out, no_start_);
  put_var(out, min_start_);
  put_var(out, max_end_);
  for (auto n : by_status_) put_var(out, n);
  put_var(out, retried_);
  const auto used =
      static_cast<std::size_t>(std::count_if(histogram_.begin(), histogram_.end(), [](auto n) { return n > 0; }));
  put_var(out, used);
  for (std::size_t i = 0; i < histogram_.size(); ++i) {
    if (histogram_[i] == 0) continue;
    put_var(out, i);
    put_var(out, histogram_[i]);
  }
  for (const auto* list : {&kept_, &slowest_, &failures_}) {
    put_var(out, list->size());
    for (const auto& a : *list) put_attempt(out, a);
  }
  put_var(out, failures_total_);
  return out;
}

void report_collector::restore(std::string_view saved) {
  report_reader r(saved);
  report_collector c(lim_);
  const auto workers = r.var_count(4);
  for (std::size_t i = 0; i < workers; ++i) {
    per_worker w;
    w.name = r.vstr();
    w.attempts = r.var();
    w.failures = r.var();
    w.busy_us = r.var();
    const auto lanes = r.var_count(1);
    if (lanes > lim_.max_lanes) throw bad_report(fmt::format("{} lanes", lanes));
    w.lane_free_at.resize(lanes);
    for (auto& t : w.lane_free_at) t = r.var();
    const auto busy = r.var_count(1);
    if (busy > lim_.max_lanes) throw bad_report(fmt::format("{} lanes", busy));
    for (std::uint32_t k = 0; k < busy; ++k) w.lane_busy.push_back(read_list(r, lim_.time_buckets));
    if (!c.index_.emplace(w.name, static_cast<std::uint32_t>(c.workers_.size())).second)
      throw bad_report("a worker twice");
    c.workers_.push_back(std::move(w));
  }
  c.bucketed_ = r.u8() != 0;
  c.axis_.origin_us = r.var();
  c.axis_.width_us = r.var();
  if (c.axis_.width_us == 0 || c.axis_.width_us > max_time_us / lim_.time_buckets || c.axis_.origin_us > max_time_us) {
    throw bad_report(fmt::format("time buckets {} µs wide from {}", c.axis_.width_us, c.axis_.origin_us));
  }
  const auto series = c.bucketed_ ? lim_.time_buckets : 0;
  c.finished_ok_ = read_list(r, series);
  c.finished_failed_ = read_list(r, series);
  c.attempts_ = r.var();
  c.no_start_ = r.var();
  c.min_start_ = r.var();
  c.max_end_ = r.var();
  for (auto& n : c.by_status_) n = r.var();
  c.retried_ = r.var();
  const auto used = r.var_count(2);
  for (std::uint32_t k = 0; k < used; ++k) {
    const auto b = r.var();
    if (b >= c.histogram_.size()) throw bad_report(fmt::format("a runtime bucket {}", b));
    c.histogram_[b] = r.var();
  }
  for (auto* list : {&c.kept_, &c.slowest_, &c.failures_}) {
    const auto n = r.var_count(9);
    for (std::uint32_t k = 0; k < n; ++k) list->push_back(c.read_attempt(r));
  }
  if (c.kept_.size() > lim_.every_attempt || c.slowest_.size() > lim_.slowest || c.failures_.size() > lim_.failures)
    throw bad_report("more attempts kept than its limits allow");
  c.failures_total_ = r.var();
  if (!r.done()) throw bad_report("bytes after its fields");
  *this = std::move(c);
}

} // namespace mtask
