// Worker credit and liveness bookkeeping for the ventilator.
#include "ventilator/worker_table.hpp"

#include <algorithm>

namespace mtask {

namespace {

// A batch number a worker may claim to be at when we take over its numbering: far below the
// counter's end, so that no hostile claim makes ours wrap.
constexpr std::uint64_t max_adopted_seq = std::uint64_t{1} << 62;

bool in_ranges(const std::vector<wire::id_range>& ranges, std::uint64_t n) {
  for (const auto& r : ranges) {
    if (n >= r.first && n - r.first < r.count) return true;
  }
  return false;
}

} // namespace

worker_table::status_outcome worker_table::on_status(const std::string& id, const wire::worker_status& s,
                                                     time_point now) {
  auto [it, inserted] = workers_.try_emplace(id);
  auto& w = it->second;
  status_outcome out{.how = inserted ? seen::joined : (w.alive ? seen::known : seen::returned)};
  w.name = s.name;
  w.slots = s.slots;
  w.free = s.free;
  // A worker we have sent nothing yet that is already in our job got its batches from the process
  // we restarted as: ours are numbered after them (it drops a number it has seen as a duplicate),
  // and every one before them is settled.
  if (s.job == job_ && w.next_seq == 1 && w.in_flight.empty() && s.next_seq < max_adopted_seq) {
    w.next_seq = std::max<std::uint64_t>(s.next_seq, 1);
    w.resolved_below = w.next_seq;
  }
  // A worker that has received nothing of our job yet reports another job's numbers. A confused or
  // hostile peer cannot claim batches we never sent (that would inflate its credit).
  const std::uint64_t next = s.job == job_ ? std::min(s.next_seq, w.next_seq) : 1;
  while (!w.in_flight.empty() && w.in_flight.front().seq < next) {
    const auto b = w.in_flight.front();
    w.in_flight.pop_front();
    w.in_flight_tasks -= b.tasks;
    if (in_ranges(s.lost, b.seq)) out.lost_batches.push_back(b.seq);
  }
  w.resolved_below = std::max(w.resolved_below, next);
  w.completed_job = s.completed_job;
  w.reachable = true; // it spoke: its connection is back
  const bool idle = s.busy == 0 && w.in_flight.empty();
  if (!idle)
    w.idle_since.reset();
  else if (!w.idle_since)
    w.idle_since = now;
  w.last_seen = now;
  w.alive = true;
  w.done = s.job == job_ ? s.done : 0;
  w.failed = s.job == job_ ? s.failed : 0;
  if (!w.rate_mark || w.done < w.done_at_mark) {
    w.rate_mark = now;
    w.done_at_mark = w.done;
  } else if (const auto ms = std::chrono::duration_cast<millis>(now - *w.rate_mark).count(); ms >= 1000) {
    w.rate_milli = (w.done - w.done_at_mark) * 1'000'000 / static_cast<std::uint64_t>(ms);
    w.rate_mark = now;
    w.done_at_mark = w.done;
  }
  return out;
}

std::pair<std::uint64_t, std::uint64_t> worker_table::finished_and_failed() const {
  std::uint64_t done = 0;
  std::uint64_t failed = 0;
  for (const auto& [id, w] : workers_) {
    done += w.done;
    failed += w.failed;
  }
  return {done, failed};
}

std::vector<wire::worker_row> worker_table::rows(time_point now) const {
  std::vector<wire::worker_row> out;
  out.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    const auto silent = std::chrono::duration_cast<millis>(now - w.last_seen).count();
    out.push_back(wire::worker_row{.name = w.name,
                                   .slots = w.slots,
                                   .busy = w.slots > w.free ? w.slots - w.free : 0,
                                   .done = w.done,
                                   .rate_milli = w.alive ? w.rate_milli : 0,
                                   .silent_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(silent, 0)),
                                   .alive = w.alive});
  }
  return out;
}

void worker_table::touch(const std::string& id, time_point now) {
  auto it = workers_.find(id);
  if (it != workers_.end() && it->second.alive) it->second.last_seen = now;
}

void worker_table::on_sent(const std::string& id, std::uint64_t seq, std::size_t tasks) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  auto& w = it->second;
  w.in_flight.push_back({seq, static_cast<std::uint32_t>(tasks)});
  w.in_flight_tasks += tasks;
  w.next_seq = seq + 1;
  w.idle_since.reset(); // it holds these now, whatever its last report said
}

void worker_table::on_unreachable(const std::string& id) {
  auto it = workers_.find(id);
  if (it != workers_.end()) it->second.reachable = false;
}

void worker_table::adopt_job(std::uint64_t job) {
  job_ = job;
  for (auto& [id, w] : workers_) w.reachable = false; // its credit was counted in another job's numbers
}

bool worker_table::on_bye(const std::string& id) {
  auto it = workers_.find(id);
  if (it == workers_.end() || !it->second.alive) return false;
  it->second.alive = false;
  return true;
}

std::vector<std::string> worker_table::expire(time_point now, millis timeout) {
  std::vector<std::string> lost;
  for (auto& [id, w] : workers_) {
    if (w.alive && now - w.last_seen > timeout) {
      w.alive = false;
      lost.push_back(id);
    }
  }
  return lost;
}

std::vector<std::string> worker_table::idle_for(time_point now, millis timeout) const {
  std::vector<std::string> out;
  for (const auto& [id, w] : workers_) {
    if (w.alive && w.idle_since && now - *w.idle_since > timeout) out.push_back(id);
  }
  return out;
}

std::vector<std::string> worker_table::with_credit() {
  std::vector<std::string> out;
  auto start = workers_.upper_bound(last_served_);
  auto visit = [&](auto from, auto to) {
    for (auto it = from; it != to; ++it) {
      if (it->second.alive && it->second.credit() > 0) out.push_back(it->first);
    }
  };
  visit(start, workers_.end());
  visit(workers_.begin(), start);
  return out;
}

const worker_record* worker_table::find(const std::string& id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<std::string> worker_table::live() const {
  std::vector<std::string> out;
  for (const auto& [id, w] : workers_) {
    if (w.alive) out.push_back(id);
  }
  return out;
}

std::int64_t worker_table::total_credit() const {
  std::int64_t c = 0;
  for (const auto& [id, w] : workers_) {
    if (w.alive) c += std::max<std::int64_t>(0, w.credit());
  }
  return c;
}

std::size_t worker_table::live_count() const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_) n += w.alive ? 1 : 0;
  return n;
}

std::uint64_t worker_table::live_slots() const {
  std::uint64_t n = 0;
  for (const auto& [id, w] : workers_) n += w.alive ? w.slots : 0;
  return n;
}

} // namespace mtask
