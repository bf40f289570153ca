// The ventilator's view of its workers: credit (free slots not yet filled) and liveness.
// Credit is recomputed from what the worker last said, never accumulated, so it cannot drift:
//   credit = free slots reported - tasks sent that the worker had not yet received when it reported.
#pragma once

#include "mtask/clock.hpp"
#include "mtask/wire.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

struct worker_record {
  std::string name;
  std::uint32_t slots = 0;
  std::uint32_t free = 0;          // as last reported
  std::uint64_t received = 0;      // tasks of our job it had received when it last reported
  std::uint64_t sent = 0;          // tasks of our job we sent it
  std::uint64_t completed_job = 0; // the last job it has heard is complete
  // Since when it has reported holding nothing (and had received all we sent): a task still not
  // acknowledged a while after that lost its result on the way to the sink.
  std::optional<time_point> idle_since;
  time_point last_seen{};
  bool alive = true;

  [[nodiscard]] std::int64_t credit() const {
    return static_cast<std::int64_t>(free) - static_cast<std::int64_t>(sent - received);
  }
};

class worker_table {
 public:
  explicit worker_table(std::uint64_t job) : job_(job) {}

  enum class seen { known, joined, returned };
  // A status message arrived from routing id `id`.
  // Returns: joined for a worker never seen, returned for one we had declared lost.
  seen on_status(const std::string& id, const wire::worker_status& s, time_point now);
  // Any other message from `id` also proves it alive.
  void touch(const std::string& id, time_point now);
  void on_sent(const std::string& id, std::size_t tasks);
  // The worker said goodbye: it is lost now rather than after the heartbeat timeout.
  bool on_bye(const std::string& id);

  // Returns: the ids of live workers silent for longer than `timeout`, now marked lost.
  std::vector<std::string> expire(time_point now, millis timeout);

  // Returns: live workers that have held nothing for longer than `timeout`.
  [[nodiscard]] std::vector<std::string> idle_for(time_point now, millis timeout) const;

  // Returns: live workers with credit, starting after the one served last (round robin).
  std::vector<std::string> with_credit();
  void served(const std::string& id) { last_served_ = id; }

  [[nodiscard]] const worker_record* find(const std::string& id) const;
  [[nodiscard]] std::vector<std::string> live() const;
  // Returns: the credit all live workers offer together.
  [[nodiscard]] std::int64_t total_credit() const;
  [[nodiscard]] std::size_t live_count() const;
  [[nodiscard]] std::size_t size() const { return workers_.size(); }

 private:
  std::uint64_t job_;
  // Lost workers stay here: if one comes back (it was stopped, not dead), `sent` must still count
  // the tasks we sent it, or its credit would be overstated.
  std::map<std::string, worker_record> workers_;
  std::string last_served_;
};

} // namespace mtask
