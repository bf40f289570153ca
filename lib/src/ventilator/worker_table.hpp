// The ventilator's view of its workers: credit (free slots not yet filled), the batches in flight
// to each, and liveness. Credit is recomputed from what the worker last said, never accumulated,
// so it cannot drift:
//   credit = free slots reported - tasks in batches the worker had not yet received when it reported.
// Batches are numbered per worker (1, 2, ...); a worker reports the next number it expects and the
// numbers it will never get (a dropped connection lost them), so a lost batch is known, not guessed.
#pragma once

#include "common/clock.hpp"
#include "protocol/wire.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

struct worker_record {
  std::string name;
  std::uint32_t slots = 0;
  std::uint32_t free = 0;           // as last reported
  std::uint64_t next_seq = 1;       // the number the next batch sent to it gets
  std::uint64_t resolved_below = 1; // batches below this have arrived or were reported lost
  struct batch {
    std::uint64_t seq;
    std::uint32_t tasks;
  };
  std::deque<batch> in_flight; // batches sent, numbered resolved_below and up
  std::uint64_t in_flight_tasks = 0;
  std::uint64_t completed_job = 0; // the last job it has heard is complete
  // Since when it has reported holding nothing (and had received all we sent): a task still not
  // acknowledged a while after that lost its result on the way to the sink.
  std::optional<time_point> idle_since;
  time_point last_seen{};
  bool alive = true;
  // Tasks it says it finished in our job, and its rate over about the last second (for mtask-top).
  std::uint64_t done = 0;
  std::uint64_t failed = 0; // of them, failures for good
  std::uint64_t rate_milli = 0;
  std::optional<time_point> rate_mark;
  std::uint64_t done_at_mark = 0;
  // False after a send to it failed (its connection is gone): no credit until it speaks again.
  bool reachable = true;

  [[nodiscard]] std::int64_t credit() const {
    if (!reachable) return 0;
    return static_cast<std::int64_t>(free) - static_cast<std::int64_t>(in_flight_tasks);
  }
};

class worker_table {
 public:
  explicit worker_table(std::uint64_t job) : job_(job) {}

  enum class seen { known, joined, returned };
  struct status_outcome {
    seen how = seen::known;
    std::vector<std::uint64_t> lost_batches; // numbers of batches it will never get: requeue their tasks
  };
  // A status message arrived from routing id `id`.
  // Returns: joined for a worker never seen, returned for one we had declared lost; and the
  //          batches its report settles as lost.
  status_outcome on_status(const std::string& id, const wire::worker_status& s, time_point now);
  // Any other message from `id` also proves it alive.
  void touch(const std::string& id, time_point now);
  // Batch number `seq` of `tasks` tasks went out to `id` (it must be find(id)->next_seq).
  void on_sent(const std::string& id, std::uint64_t seq, std::size_t tasks);
  // A send to `id` failed: its connection is gone. No credit until its next status.
  void on_unreachable(const std::string& id);
  // The worker said goodbye: it is lost now rather than after the heartbeat timeout.
  bool on_bye(const std::string& id);
  // A restarted ventilator adopts the job it continues (nothing has been sent yet). Every worker
  // has no credit until its next status, which numbers its batches of that job.
  void adopt_job(std::uint64_t job);

  // Returns: the ids of live workers silent for longer than `timeout`, now marked lost.
  std::vector<std::string> expire(time_point now, millis timeout);

  // Returns: live workers that have held nothing for longer than `timeout`.
  [[nodiscard]] std::vector<std::string> idle_for(time_point now, millis timeout) const;

  // Returns: live workers with credit, starting after the one served last (round robin).
  std::vector<std::string> with_credit();
  void served(const std::string& id) { last_served_ = id; }

  [[nodiscard]] const worker_record* find(const std::string& id) const;
  // Returns: tasks finished and, of them, failed for good, as every worker (live or lost) last said.
  [[nodiscard]] std::pair<std::uint64_t, std::uint64_t> finished_and_failed() const;
  // Returns: one row per worker, live or lost, for a status_report.
  [[nodiscard]] std::vector<wire::worker_row> rows(time_point now) const;
  [[nodiscard]] std::vector<std::string> live() const;
  // Returns: the credit all live workers offer together.
  [[nodiscard]] std::int64_t total_credit() const;
  [[nodiscard]] std::size_t live_count() const;
  // Returns: the slots all live workers run together.
  [[nodiscard]] std::uint64_t live_slots() const;
  [[nodiscard]] std::size_t size() const { return workers_.size(); }

 private:
  std::uint64_t job_;
  // Lost workers stay here: if one comes back (it was stopped, not dead), `sent` must still count
  // the tasks we sent it, or its credit would be overstated.
  std::map<std::string, worker_record> workers_;
  std::string last_served_;
};

} // namespace mtask
