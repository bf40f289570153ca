// id_set: a watermark and the runs above it, merged as they come.
#include "common/id_set.hpp"

#include <algorithm>
#include <iterator>

namespace mtask {

void id_set::insert(std::uint64_t first, std::uint64_t count) {
  if (count == 0) return;
  std::uint64_t end = first + count;
  if (first <= below_) {
    below_ = std::max(below_, end);
  } else {
    // Merge with every run it overlaps or touches.
    auto it = above_.upper_bound(first);
    if (it != above_.begin() && std::prev(it)->second >= first) --it;
    while (it != above_.end() && it->first <= end) {
      first = std::min(first, it->first);
      end = std::max(end, it->second);
      it = above_.erase(it);
    }
    above_.emplace(first, end);
  }
  // Absorb the runs the watermark now reaches.
  while (!above_.empty() && above_.begin()->first <= below_) {
    below_ = std::max(below_, above_.begin()->second);
    above_.erase(above_.begin());
  }
}

bool id_set::contains(std::uint64_t id) const {
  if (id < below_) return true;
  auto it = above_.upper_bound(id);
  return it != above_.begin() && std::prev(it)->second > id;
}

std::uint64_t id_set::size() const {
  std::uint64_t n = below_;
  for (const auto& [first, end] : above_) n += end - first;
  return n;
}

std::vector<wire::id_range> id_set::runs() const {
  std::vector<wire::id_range> out;
  if (below_ > 0) out.push_back(wire::id_range{.first = 0, .count = below_});
  for (const auto& [first, end] : above_) out.push_back(wire::id_range{.first = first, .count = end - first});
  return out;
}

} // namespace mtask
