// The in-flight ledger: a map of unacknowledged tasks and a queue of those waiting for credit.
#include "mtask/ledger.hpp"

#include <algorithm>
#include <cassert>

namespace mtask {

void ledger::add(std::uint64_t id, std::string payload) {
  auto [it, inserted] = entries_.try_emplace(id);
  it->second.payload = std::move(payload);
  assert(inserted && "task ids come from a counter and are never reused");
  (void)it;
  queue_.push_back(id);
}

std::vector<wire::task> ledger::take(const std::string& worker, std::size_t n, time_point now) {
  std::vector<wire::task> out;
  out.reserve(std::min(n, queue_.size()));
  while (out.size() < n && !queue_.empty()) {
    auto id = queue_.front();
    queue_.pop_front();
    auto& e = entries_.at(id);
    e.holder = worker;
    e.sent_at = now;
    ++e.attempt;
    out.push_back(wire::task{.id = id, .attempt = e.attempt, .payload = e.payload});
  }
  return out;
}

ledger::ack_outcome ledger::acknowledge(std::uint64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return ack_outcome::unknown;
  if (it->second.holder.empty()) {
    // Acked while queued: a lost worker's result arrived after its task was requeued.
    queue_.erase(std::find(queue_.begin(), queue_.end(), id));
  }
  entries_.erase(it);
  return ack_outcome::released;
}

std::vector<std::uint64_t> ledger::requeue_held_by(const std::string& worker) {
  std::vector<std::uint64_t> ids;
  for (auto& [id, e] : entries_) {
    if (e.holder == worker) {
      e.holder.clear();
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  // Front of the queue, lowest id first: an ordered sink is most likely waiting for it.
  queue_.insert(queue_.begin(), ids.begin(), ids.end());
  return ids;
}

} // namespace mtask
