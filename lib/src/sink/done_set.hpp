// The set of task ids the sink already holds a result for, to drop later copies.
// Stored as "everything below a watermark" plus the ids above it, so memory is bounded by how far
// out of order results arrive, not by the length of the job.
#pragma once

#include <cstdint>
#include <unordered_set>

namespace mtask {

class done_set {
 public:
  // Returns: true if `id` was not in the set (and now is).
  bool insert(std::uint64_t id);
  [[nodiscard]] bool contains(std::uint64_t id) const;
  // Every id below `below` is in the set (a sink resuming from its journal); call on an empty set.
  void start_at(std::uint64_t below) { below_ = below; }
  // Every id below this is in the set.
  [[nodiscard]] std::uint64_t watermark() const { return below_; }
  [[nodiscard]] std::uint64_t size() const { return below_ + above_.size(); }
  // Returns: the ids above the watermark, in no particular order.
  [[nodiscard]] const std::unordered_set<std::uint64_t>& above() const { return above_; }

 private:
  std::uint64_t below_ = 0;
  std::unordered_set<std::uint64_t> above_;
};

} // namespace mtask
