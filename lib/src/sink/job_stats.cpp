// --stats (see job_stats.hpp): counting attempts, the runtime histogram, and the JSON document.
#include "sink/job_stats.hpp"

#include "common/bytes.hpp"
#include "common/json.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace mtask {

std::size_t job_stats::bucket_of(std::uint64_t us) {
  if (us < 16) return static_cast<std::size_t>(us);                    // exact below 16 µs
  const auto power = static_cast<std::size_t>(std::bit_width(us) - 1); // 2^power <= us
  const auto sub = static_cast<std::size_t>((us >> (power - 4)) & 15); // the next 4 bits
  return std::min(buckets - 1, (power - 3) * 16 + sub);
}

std::uint64_t job_stats::lower_bound_of(std::size_t bucket) {
  if (bucket < 16) return bucket;
  const auto power = bucket / 16 + 3;
  return (std::uint64_t{16} + bucket % 16) << (power - 4);
}

void job_stats::on_attempt(std::string_view worker, const wire::result_view& r) {
  // Results come in batches from one worker: the last one looked up is most likely the next.
  if (last_ == nullptr || worker != last_name_) {
    auto it = workers_.find(worker);
    if (it == workers_.end()) it = workers_.emplace(std::string(worker), per_worker{}).first;
    last_ = &it->second;
    last_name_ = it->first;
  }
  auto& w = *last_;
  if (w.histogram.empty()) w.histogram.assign(buckets, 0);
  ++w.attempts;
  if (r.status != wire::task_status::ok) ++w.failures;
  w.busy_us += r.runtime_us;
  w.max_us = std::max(w.max_us, r.runtime_us);
  ++w.histogram[bucket_of(r.runtime_us)];
  if (r.final()) {
    ++by_status_.at(static_cast<std::size_t>(r.status));
  } else {
    ++retried_;
  }
  // The slowest attempts, longest first; ties keep the earlier one.
  if (slowest_.size() < slowest_kept || r.runtime_us > slowest_.back().runtime_us) {
    const auto at = std::upper_bound(slowest_.begin(), slowest_.end(), r.runtime_us,
                                     [](std::uint64_t us, const slow_task& t) { return us > t.runtime_us; });
    slowest_.insert(at, slow_task{.runtime_us = r.runtime_us, .id = r.id, .worker = std::string(worker)});
    if (slowest_.size() > slowest_kept) slowest_.pop_back();
  }
}

std::string job_stats::save() const {
  using namespace bytes;
  std::string out;
  put_var(out, workers_.size());
  for (const auto& [name, w] : workers_) {
    put_vstr(out, name);
    put_var(out, w.attempts);
    put_var(out, w.failures);
    put_var(out, w.busy_us);
    put_var(out, w.max_us);
    const auto used =
        static_cast<std::size_t>(std::count_if(w.histogram.begin(), w.histogram.end(), [](auto n) { return n > 0; }));
    put_var(out, used);
    for (std::size_t i = 0; i < w.histogram.size(); ++i) {
      if (w.histogram[i] == 0) continue;
      put_var(out, i);
      put_var(out, w.histogram[i]);
    }
  }
  for (auto n : by_status_) put_var(out, n);
  put_var(out, retried_);
  put_var(out, slowest_.size());
  for (const auto& t : slowest_) {
    put_var(out, t.runtime_us);
    put_var(out, t.id);
    put_vstr(out, t.worker);
  }
  return out;
}

void job_stats::restore(std::string_view saved) {
  class bad : public error {
   public:
    explicit bad(const std::string& why) : error("--stats in the journal: " + why) {}
  };
  bytes::reader<bad> r(saved);
  job_stats s;
  const auto workers = r.var_count(6);
  for (std::uint32_t i = 0; i < workers; ++i) {
    auto name = r.vstr();
    per_worker w;
    w.attempts = r.var();
    w.failures = r.var();
    w.busy_us = r.var();
    w.max_us = r.var();
    w.histogram.assign(buckets, 0);
    const auto used = r.var_count(2);
    for (std::uint32_t k = 0; k < used; ++k) {
      const auto b = r.var();
      if (b >= buckets) throw bad(fmt::format("a runtime bucket {} of {}", b, buckets));
      w.histogram[b] = r.var32();
    }
    if (!s.workers_.emplace(std::move(name), std::move(w)).second) throw bad("a worker twice");
  }
  for (auto& n : s.by_status_) n = r.var();
  s.retried_ = r.var();
  const auto slow = r.var_count(3);
  if (slow > slowest_kept) throw bad(fmt::format("{} slowest tasks", slow));
  for (std::uint32_t i = 0; i < slow; ++i) {
    slow_task t{};
    t.runtime_us = r.var();
    t.id = r.var();
    t.worker = r.vstr();
    s.slowest_.push_back(std::move(t));
  }
  if (!r.done()) throw bad("bytes after its fields");
  s.duplicates_ = duplicates_;
  *this = std::move(s);
}

std::uint64_t job_stats::per_worker::percentile(double p) const {
  // The smallest bucket by which p of the attempts have ended; reported as its lower bound, and
  // never above the exact maximum.
  const auto want = static_cast<std::uint64_t>(p * static_cast<double>(attempts) + 0.999999);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < histogram.size(); ++i) {
    seen += histogram[i];
    if (seen >= std::max<std::uint64_t>(want, 1)) return std::min(lower_bound_of(i), max_us);
  }
  return max_us;
}

std::string job_stats::to_json(const totals& t) const {
  std::uint64_t tasks = 0;
  for (auto n : by_status_) tasks += n;
  const double wall = std::max(t.wall_seconds, 1e-9);
  std::string out =
      fmt::format(R"({{"job":{{"id":"{:016x}","wall_seconds":{:.6f},"tasks":{},"tasks_per_second":{:.3f},)", t.job,
                  t.wall_seconds, tasks, static_cast<double>(tasks) / wall);
  out += R"("by_status":{)";
  for (std::size_t s = 0; s < by_status_.size(); ++s) {
    if (s > 0) out += ',';
    static constexpr std::array<const char*, 7> names{"ok",        "failed",  "signalled", "not_started",
                                                      "timed_out", "crashed", "too_large"};
    out += fmt::format(R"("{}":{})", names.at(s), by_status_[s]);
  }
  out += fmt::format(R"(}},"retries":{},"requeues":{},"duplicates_dropped":{},"malformed_dropped":{}}},"workers":[)",
                     retried_, t.requeued, duplicates_, t.malformed);
  bool first = true;
  for (const auto& [name, w] : workers_) {
    if (!first) out += ',';
    first = false;
    out += R"({"name":)";
    append_json_string(out, name);
    out += fmt::format(
        R"(,"attempts":{},"failures":{},"busy_seconds":{:.6f},"busy_share":{:.6f},"runtime_us":{{"p50":{},"p90":{},"p99":{},"max":{}}}}})",
        w.attempts, w.failures, static_cast<double>(w.busy_us) / 1e6, static_cast<double>(w.busy_us) / 1e6 / wall,
        w.percentile(0.5), w.percentile(0.9), w.percentile(0.99), w.max_us);
  }
  out += R"(],"slowest":[)";
  for (std::size_t i = 0; i < slowest_.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format(R"({{"id":{},"runtime_us":{},"worker":)", slowest_[i].id, slowest_[i].runtime_us);
    append_json_string(out, slowest_[i].worker);
    out += '}';
  }
  out += "]}\n";
  return out;
}

} // namespace mtask
