// A set of task ids as "everything below a watermark" plus disjoint runs above it: 10^8 ids in
// order cost one number. The sink's journal keeps its final ids in one; a restarted ventilator
// keeps in one the ids the sink holds that it has not read yet.
#pragma once

#include "protocol/wire.hpp"

#include <cstdint>
#include <map>
#include <vector>

namespace mtask {

class id_set {
 public:
  void insert(std::uint64_t first, std::uint64_t count);
  [[nodiscard]] bool contains(std::uint64_t id) const;
  [[nodiscard]] std::uint64_t watermark() const { return below_; }
  [[nodiscard]] std::uint64_t size() const;
  // Returns: the runs above the watermark, in order (first → end).
  [[nodiscard]] const std::map<std::uint64_t, std::uint64_t>& above() const { return above_; }
  // Returns: every id, as runs: [0, watermark) first (if any), then those above.
  [[nodiscard]] std::vector<wire::id_range> runs() const;
  friend bool operator==(const id_set&, const id_set&) = default;

 private:
  std::uint64_t below_ = 0;
  std::map<std::uint64_t, std::uint64_t> above_; // first -> end, disjoint, not touching
};

} // namespace mtask
