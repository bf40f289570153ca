// The in-flight ledger: a map of unacknowledged tasks and a queue of those waiting for credit.
#include "mtask/ledger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>

namespace mtask {
namespace {

// How far down the queue take() looks for a task that did not last fail on the asking worker.
constexpr std::size_t avoid_lookahead = 64;

} // namespace

void ledger::add(std::uint64_t id, std::string payload) {
  auto [it, inserted] = entries_.try_emplace(id);
  assert(inserted && "task ids come from a counter and are never reused");
  it->second.payload = std::move(payload);
  it->second.retries_left = limits_.retries;
  queue_.push_back(id);
}

std::vector<wire::task> ledger::take(const std::string& worker, std::size_t n, bool avoid_repeats) {
  std::vector<wire::task> out;
  out.reserve(std::min(n, queue_.size()));
  std::size_t pos = 0;
  while (out.size() < n && pos < queue_.size()) {
    auto id = queue_[pos];
    auto& e = entries_.at(id);
    if (avoid_repeats && e.avoid == worker && pos < avoid_lookahead) {
      ++pos; // leave it for another worker
      continue;
    }
    if (pos == 0)
      queue_.pop_front();
    else
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pos));
    e.where = state::held;
    e.holder = worker;
    ++e.attempt;
    out.push_back(wire::task{.id = id, .attempt = e.attempt, .payload = e.payload, .retries_left = e.retries_left});
  }
  return out;
}

ledger::ack_outcome ledger::acknowledge(const wire::ack& a) {
  auto it = entries_.find(a.id);
  if (it == entries_.end()) return ack_outcome::unknown;
  auto& e = it->second;
  const bool failed = a.status != wire::task_status::ok;
  if (failed && a.attempt != 0 && e.retries_left > 0) {
    // The sink did not keep this failure (retries were left when the task was sent). Run it again,
    // unless this ack is for an attempt already superseded (the task was requeued meanwhile).
    if (e.where != state::held || a.attempt != e.attempt) return ack_outcome::unknown;
    --e.retries_left;
    e.avoid = e.holder;
    e.holder.clear();
    e.where = state::queued;
    queue_.push_front(a.id);
    return ack_outcome::retry;
  }
  if (e.where == state::queued) {
    // Acked while queued: a lost worker's result arrived after its task was requeued.
    queue_.erase(std::find(queue_.begin(), queue_.end(), a.id));
  } else if (e.where == state::quarantined) {
    --quarantined_;
  }
  entries_.erase(it);
  return ack_outcome::released;
}

void ledger::requeue_front(std::vector<std::uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  // Front of the queue, lowest id first: an ordered sink is most likely waiting for it.
  queue_.insert(queue_.begin(), ids.begin(), ids.end());
}

ledger::lost_tasks ledger::requeue_held_by(const std::string& worker, bool count_crash) {
  lost_tasks lost;
  for (auto& [id, e] : entries_) {
    if (e.where != state::held || e.holder != worker) continue;
    e.avoid = e.holder; // another worker, where there is one
    e.holder.clear();
    if (count_crash) ++e.crashes;
    if (e.crashes >= limits_.max_crashes) {
      e.where = state::quarantined;
      ++quarantined_;
      lost.quarantined.push_back(wire::result{
          .id = id,
          .attempt = e.attempt,
          .status = wire::task_status::crashed,
          .code = static_cast<std::int32_t>(e.crashes),
          .error = fmt::format("{} worker(s) died running it; quarantined (--max-crashes {})", e.crashes,
                               limits_.max_crashes),
          .payload = e.payload,
      });
    } else {
      e.where = state::queued;
      lost.requeued.push_back(id);
    }
  }
  requeue_front(lost.requeued);
  std::sort(lost.requeued.begin(), lost.requeued.end());
  std::sort(lost.quarantined.begin(), lost.quarantined.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return lost;
}

} // namespace mtask
