// Worker credit and liveness bookkeeping for the ventilator.
#include "mtask/worker_table.hpp"

#include <algorithm>

namespace mtask {

worker_table::seen worker_table::on_status(const std::string& id, const wire::worker_status& s, time_point now) {
  auto [it, inserted] = workers_.try_emplace(id);
  auto& w = it->second;
  seen outcome = inserted ? seen::joined : (w.alive ? seen::known : seen::returned);
  w.name = s.name;
  w.slots = s.slots;
  w.free = s.free;
  // A worker that has not received anything of our job yet reports another job's count.
  w.received = s.job == job_ ? s.received : 0;
  if (w.received > w.sent) w.received = w.sent; // a confused or hostile peer must not inflate credit
  w.completed_job = s.completed_job;
  const bool idle = s.busy == 0 && w.received == w.sent;
  if (!idle)
    w.idle_since.reset();
  else if (!w.idle_since)
    w.idle_since = now;
  w.last_seen = now;
  w.alive = true;
  return outcome;
}

void worker_table::touch(const std::string& id, time_point now) {
  auto it = workers_.find(id);
  if (it != workers_.end() && it->second.alive) it->second.last_seen = now;
}

void worker_table::on_sent(const std::string& id, std::size_t tasks) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  it->second.sent += tasks;
  it->second.idle_since.reset(); // it holds these now, whatever its last report said
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

} // namespace mtask
