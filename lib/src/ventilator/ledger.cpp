// The in-flight ledger: unacknowledged tasks by id (a ring, plus the stragglers it left behind)
// and a queue of those waiting for credit.
#include "ventilator/ledger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>

namespace mtask {
namespace {

// The ring may be this much longer than what is live before its oldest live entry moves to the
// stragglers: enough slack that with tasks finishing out of order almost nothing moves, little
// enough that the ring's memory follows the window.
constexpr std::size_t ring_slack_factor = 4;
constexpr std::size_t ring_min_span = 4096;

} // namespace

ledger::entry* ledger::find(std::uint64_t id) {
  if (id >= base_) {
    if (id - base_ >= ring_.size()) return nullptr;
    auto& e = ring_[id - base_];
    return e.where == state::released ? nullptr : &e;
  }
  auto it = stragglers_.find(id);
  return it == stragglers_.end() ? nullptr : &it->second;
}

ledger::worker_ref ledger::ref_of(const std::string& worker) {
  auto [it, inserted] = worker_refs_.try_emplace(worker, static_cast<worker_ref>(workers_.size()));
  if (inserted) workers_.push_back(worker);
  return it->second;
}

template <typename Fn>
void ledger::for_each_live(Fn fn) {
  for (std::size_t i = 0; i < ring_.size(); ++i) {
    if (ring_[i].where != state::released) fn(base_ + i, ring_[i]);
  }
  for (auto& [id, e] : stragglers_) fn(id, e);
}

void ledger::add(std::uint64_t id, std::string payload) {
  assert((ring_.empty() || id >= base_ + ring_.size()) && "task ids come from a counter and are never reused");
  // A long gap (a restarted ventilator read past millions of tasks the sink held) is not filled
  // slot by slot: what is live moves aside to the stragglers and the ring starts again at `id`.
  if (!ring_.empty() && id - (base_ + ring_.size()) > std::max(ring_min_span, ring_slack_factor * live_)) {
    for (std::size_t i = 0; i < ring_.size(); ++i) {
      if (ring_[i].where != state::released) stragglers_.emplace(base_ + i, std::move(ring_[i]));
    }
    ring_.clear();
  }
  if (ring_.empty()) base_ = id;
  // Ids are consecutive from the ventilator's counter; a gap (never made by it) is filled with
  // released slots so indexing stays id - base_.
  while (base_ + ring_.size() < id) ring_.emplace_back();
  auto& e = ring_.emplace_back();
  e.payload = std::move(payload);
  e.where = state::queued;
  e.retries_left = limits_.retries;
  ++live_;
  queue_.push_back(id);
  compact();
}

void ledger::take(const std::string& worker, std::size_t n, bool avoid_repeats, std::vector<wire::task>& out,
                  std::uint64_t batch) {
  out.clear();
  take_each(
      worker, n, avoid_repeats, batch, [](std::size_t) { return true; },
      [&](const wire::task_view& t) {
        out.push_back(wire::task{
            .id = t.id, .attempt = t.attempt, .payload = std::string(t.payload), .retries_left = t.retries_left});
      });
}

ledger::ack_outcome ledger::acknowledge(const wire::ack& a) {
  auto* e = find(a.id);
  if (!e) return ack_outcome::unknown;
  const bool failed = a.status != wire::task_status::ok;
  if (failed && a.attempt != 0 && e->retries_left > 0) {
    // The sink did not keep this failure (retries were left when the task was sent). Run it again,
    // unless this ack is for an attempt already superseded (the task was requeued meanwhile).
    if (e->where != state::held || a.attempt != e->attempt) return ack_outcome::unknown;
    --e->retries_left;
    e->avoid = e->holder;
    e->holder = 0;
    e->where = state::queued;
    queue_.push_front(a.id);
    return ack_outcome::retry;
  }
  if (e->where == state::queued) {
    // Acked while queued: a lost worker's result arrived after its task was requeued.
    queue_.erase(std::find(queue_.begin(), queue_.end(), a.id));
  } else if (e->where == state::quarantined) {
    --quarantined_;
  }
  release(a.id, *e);
  return ack_outcome::released;
}

void ledger::release(std::uint64_t id, entry& e) {
  --live_;
  if (id < base_) {
    stragglers_.erase(id);
    return;
  }
  e.where = state::released;
  std::string().swap(e.payload); // frees it now: the slot may wait a while for the ring to move on
  while (!ring_.empty() && ring_.front().where == state::released) {
    ring_.pop_front();
    ++base_;
  }
}

void ledger::compact() {
  // The oldest live entry holds the ring open behind it: past the slack, it moves aside.
  while (ring_.size() > std::max(ring_min_span, ring_slack_factor * live_)) {
    if (ring_.front().where != state::released) stragglers_.emplace(base_, std::move(ring_.front()));
    ring_.pop_front();
    ++base_;
  }
}

void ledger::requeue_front(std::vector<std::uint64_t> ids) {
  std::sort(ids.begin(), ids.end());
  // Front of the queue, lowest id first: an ordered sink is most likely waiting for it.
  queue_.insert(queue_.begin(), ids.begin(), ids.end());
}

ledger::lost_tasks ledger::requeue_held_by(const std::string& worker, std::uint64_t delivered_below) {
  lost_tasks lost;
  auto it = worker_refs_.find(worker);
  if (it == worker_refs_.end()) return lost; // never held anything
  const worker_ref who = it->second;
  for_each_live([&](std::uint64_t id, entry& e) {
    if (e.where != state::held || e.holder != who) return;
    e.avoid = e.holder; // another worker, where there is one
    e.holder = 0;
    if (e.batch < delivered_below) ++e.crashes;
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
  });
  requeue_front(lost.requeued);
  std::sort(lost.requeued.begin(), lost.requeued.end());
  std::sort(lost.quarantined.begin(), lost.quarantined.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return lost;
}

std::size_t ledger::requeue_batch(const std::string& worker, std::uint64_t batch) {
  auto it = worker_refs_.find(worker);
  if (it == worker_refs_.end()) return 0;
  const worker_ref who = it->second;
  std::vector<std::uint64_t> ids;
  for_each_live([&](std::uint64_t id, entry& e) {
    if (e.where != state::held || e.holder != who || e.batch != batch) return;
    e.where = state::queued;
    e.holder = 0;
    --e.attempt; // it never ran: the next dispatch is the same attempt
    ids.push_back(id);
  });
  requeue_front(ids);
  return ids.size();
}

std::size_t ledger::release_below(std::uint64_t id) {
  // Called with every status of the sink, so it costs nothing when the acks it repeats have
  // already arrived: the ring's front is always live, so base_ >= id means none there.
  std::vector<std::uint64_t> ids;
  for (auto& [i, e] : stragglers_) {
    if (i < id) ids.push_back(i);
  }
  for (std::uint64_t i = base_; i < id && i - base_ < ring_.size(); ++i) {
    if (ring_[i - base_].where != state::released) ids.push_back(i);
  }
  for (auto i : ids) (void)acknowledge(wire::ack{.id = i, .attempt = 0, .status = wire::task_status::ok});
  return ids.size();
}

void ledger::set_aside(std::uint64_t id) {
  auto* e = find(id);
  if (!e || e->where != state::queued) return;
  queue_.erase(std::find(queue_.begin(), queue_.end(), id));
  e->where = state::quarantined;
  ++quarantined_;
}

bool ledger::contains(std::uint64_t id) const { return find(id) != nullptr; }

} // namespace mtask
