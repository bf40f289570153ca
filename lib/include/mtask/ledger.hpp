// The ventilator's ledger: every task read from input and not yet acknowledged by the sink,
// whether it waits in the queue, is held by a worker, or was quarantined; with its attempt count,
// how many workers died holding it, and how many retries it has left.
// Pure bookkeeping (no sockets); the ledger's size is what --window bounds.
#pragma once

#include "mtask/wire.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace mtask {

struct ledger_limits {
  std::uint32_t retries = 0;     // --retries: runs after a failed one
  std::uint32_t max_crashes = 3; // --max-crashes: workers lost while holding it before it is poison
};

class ledger {
 public:
  explicit ledger(ledger_limits limits = {}) : limits_(limits) {}

  // A task read from input joins the back of the queue.
  void add(std::uint64_t id, std::string payload);

  // Returns: up to `n` queued tasks, now recorded as held by `worker`. With `avoid_repeats`, a task
  // that last failed on `worker` is left for another worker (looking a little way down the queue).
  std::vector<wire::task> take(const std::string& worker, std::size_t n, bool avoid_repeats = false);

  enum class ack_outcome {
    released, // the sink holds the task's final result: it leaves the ledger
    retry,    // a failure with retries left: queued again at the front
    unknown,  // already released, or never existed, or an ack for an attempt superseded since
  };
  // The sink acknowledges a result for `a.id`.
  ack_outcome acknowledge(const wire::ack& a);

  struct lost_tasks {
    std::vector<std::uint64_t> requeued;   // back at the front of the queue, in id order
    std::vector<wire::result> quarantined; // reached max_crashes: final failures for the sink
  };
  // `worker` is gone: each task it held counts a crash (unless `count_crash` is false: the task is
  // not to blame), then is requeued or quarantined.
  lost_tasks requeue_held_by(const std::string& worker, bool count_crash = true);

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  [[nodiscard]] std::size_t held() const { return entries_.size() - queue_.size() - quarantined_; }
  [[nodiscard]] bool empty() const { return entries_.empty(); }

 private:
  enum class state { queued, held, quarantined };
  struct entry {
    std::string payload;
    state where = state::queued;
    std::string holder;        // while held
    std::string avoid;         // the worker of its last failure, to prefer another
    std::uint32_t attempt = 0; // attempts dispatched so far
    std::uint32_t crashes = 0;
    std::uint32_t retries_left = 0;
  };
  void requeue_front(std::vector<std::uint64_t> ids);

  ledger_limits limits_;
  std::unordered_map<std::uint64_t, entry> entries_;
  std::deque<std::uint64_t> queue_; // ids waiting for credit, retries first
  std::size_t quarantined_ = 0;
};

} // namespace mtask
