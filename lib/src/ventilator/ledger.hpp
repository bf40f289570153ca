// The ventilator's ledger: every task read from input and not yet acknowledged by the sink,
// whether it waits in the queue, is held by a worker, or was quarantined; with its attempt count,
// how many workers died holding it, and how many retries it has left.
// Pure bookkeeping (no sockets); the ledger's size is what --window bounds.
#pragma once

#include "common/ring.hpp"
#include "protocol/wire.hpp"

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

  // A task read from input joins the back of the queue. Ids come from a counter: each is larger
  // than the one before.
  void add(std::uint64_t id, std::string payload);

  // Replaces `out` with up to `n` queued tasks, now recorded as held by `worker` in its batch
  // number `batch`. With `avoid_repeats`, a task that last failed on `worker` is left for another
  // worker (looking a little way down the queue). `out` keeps its capacity from call to call.
  void take(const std::string& worker, std::size_t n, bool avoid_repeats, std::vector<wire::task>& out,
            std::uint64_t batch = 0);
  // The same, handing each task to `emit(const wire::task_view&)` instead (the ventilator encodes
  // them straight into a message; the payload view is valid until the ledger next changes), and
  // stopping before a task for which `fits(payload_bytes)` is false (the message is full).
  // Returns: how many were taken.
  template <typename Fits, typename Emit>
  std::size_t take_each(const std::string& worker, std::size_t n, bool avoid_repeats, std::uint64_t batch, Fits&& fits,
                        Emit&& emit) {
    if (n == 0 || queue_.empty()) return 0;
    const worker_ref who = ref_of(worker);
    std::size_t pos = 0;
    std::size_t taken = 0;
    wire::task_view t;
    while (taken < n && take_one(who, avoid_repeats, batch, pos, fits, t)) {
      emit(static_cast<const wire::task_view&>(t));
      ++taken;
    }
    return taken;
  }
  std::vector<wire::task> take(const std::string& worker, std::size_t n, bool avoid_repeats = false) {
    std::vector<wire::task> out;
    take(worker, n, avoid_repeats, out);
    return out;
  }

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
  // `worker` is gone: each task it held counts a crash, then is requeued or quarantined. Only tasks
  // of batches numbered below `delivered_below` count a crash (the worker confirmed it had them);
  // the others may never have reached it. 0: no task is to blame (requeue them all, no crash).
  lost_tasks requeue_held_by(const std::string& worker, std::uint64_t delivered_below = UINT64_MAX);
  // Batch `batch` never reached `worker` (the send failed, or the worker reported it lost): its
  // tasks still held by that worker go back to the front of the queue, counting nothing against
  // them. Returns: how many.
  std::size_t requeue_batch(const std::string& worker, std::uint64_t batch);
  // The sink holds the final result of every task below `id` (its cumulative acknowledgement):
  // they all leave the ledger. Returns: how many were still here.
  std::size_t release_below(std::uint64_t id);
  // The ventilator decided task `id`'s final outcome itself (it is too large to send): it is
  // never dispatched, and waits like a quarantined task for the sink to acknowledge that outcome.
  void set_aside(std::uint64_t id);
  // Returns: whether task `id` is still unacknowledged.
  [[nodiscard]] bool contains(std::uint64_t id) const;

  [[nodiscard]] std::size_t size() const { return live_; }
  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  [[nodiscard]] std::size_t held() const { return live_ - queue_.size() - quarantined_; }
  [[nodiscard]] bool empty() const { return live_ == 0; }
  // Slots the ledger's memory spans (live tasks and released ones between them): stays within a
  // small multiple of size(), however long one task is held.
  [[nodiscard]] std::size_t span() const { return ring_.size() + stragglers_.size(); }

 private:
  enum class state : std::uint8_t { released, queued, held, quarantined };
  using worker_ref = std::uint32_t; // index into workers_; 0: nobody
  struct entry {
    std::string payload;
    state where = state::released;
    worker_ref holder = 0;     // while held
    worker_ref avoid = 0;      // the worker of its last failure, to prefer another
    std::uint32_t attempt = 0; // attempts dispatched so far
    std::uint32_t crashes = 0;
    std::uint32_t retries_left = 0;
    std::uint64_t batch = 0; // the holder's batch number it went out in
  };
  entry* find(std::uint64_t id);
  [[nodiscard]] const entry* find(std::uint64_t id) const { return const_cast<ledger*>(this)->find(id); }
  // The next queued task at or after queue position `pos` that `who` may take, now held by it;
  // none when the next one does not fit.
  template <typename Fits>
  bool take_one(worker_ref who, bool avoid_repeats, std::uint64_t batch, std::size_t& pos, Fits& fits,
                wire::task_view& out) {
    while (pos < queue_.size()) {
      const auto id = queue_[pos];
      auto* e = find(id);
      if (avoid_repeats && e->avoid == who && pos < avoid_lookahead) {
        ++pos; // leave it for another worker
        continue;
      }
      if (!fits(e->payload.size())) return false;
      if (pos == 0)
        queue_.pop_front();
      else
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(pos));
      e->where = state::held;
      e->holder = who;
      e->batch = batch;
      ++e->attempt;
      out = wire::task_view{.id = id, .attempt = e->attempt, .payload = e->payload, .retries_left = e->retries_left};
      return true;
    }
    return false;
  }
  // How far down the queue take() looks for a task that did not last fail on the asking worker.
  static constexpr std::size_t avoid_lookahead = 64;
  void release(std::uint64_t id, entry& e);
  void compact();
  worker_ref ref_of(const std::string& worker);
  void requeue_front(std::vector<std::uint64_t> ids);
  template <typename Fn>
  void for_each_live(Fn fn);

  ledger_limits limits_;
  // Entries by id: ids base_ .. base_ + ring_.size() - 1 in a ring (most tasks are released in
  // about the order they were read, so the ring stays about as long as the window); live tasks
  // left behind when the ring moves on (one long task among millions of short ones) wait in
  // stragglers_, so the ring's length stays bounded by what is live, not by the oldest task.
  ring<entry> ring_;
  std::uint64_t base_ = 0;
  std::unordered_map<std::uint64_t, entry> stragglers_;
  std::size_t live_ = 0;
  std::deque<std::uint64_t> queue_; // ids waiting for credit, retries first
  std::size_t quarantined_ = 0;
  // Worker names, interned: an entry refers to its holder by index instead of holding a copy of
  // its routing id (a string allocation per task dispatched).
  std::vector<std::string> workers_{""};
  std::unordered_map<std::string, worker_ref> worker_refs_;
};

} // namespace mtask
