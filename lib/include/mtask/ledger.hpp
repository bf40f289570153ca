// The ventilator's ledger: every task read from input and not yet acknowledged by the sink,
// whether it waits in the queue or is held by a worker, and with which attempt.
// Pure bookkeeping (no sockets); the ledger's size is what --window bounds.
#pragma once

#include "mtask/clock.hpp"
#include "mtask/wire.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace mtask {

class ledger {
public:
  // A task read from input joins the back of the queue.
  void add(std::uint64_t id, std::string payload);

  // Returns: up to `n` queued tasks, now recorded as held by `worker`.
  std::vector<wire::task> take(const std::string& worker, std::size_t n, time_point now);

  enum class ack_outcome { released, unknown };
  // The sink holds a result for `id`: the task leaves the ledger whichever attempt produced it.
  // Returns: unknown when `id` was already released or never existed (a late duplicate).
  ack_outcome acknowledge(std::uint64_t id);

  // `worker` is gone: every task it held goes back to the front of the queue, next attempt.
  // Returns: the ids requeued, in id order.
  std::vector<std::uint64_t> requeue_held_by(const std::string& worker);

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  [[nodiscard]] std::size_t held() const { return entries_.size() - queue_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }

private:
  struct entry {
    std::string payload;
    std::string holder; // empty while queued
    std::uint32_t attempt = 0; // attempts dispatched so far
    time_point sent_at{};
  };
  std::unordered_map<std::uint64_t, entry> entries_;
  std::deque<std::uint64_t> queue_; // ids waiting for credit, retries first
};

} // namespace mtask
