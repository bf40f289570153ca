// done_set: watermark plus sparse ids above it.
#include "sink/done_set.hpp"

namespace mtask {

bool done_set::insert(std::uint64_t id) {
  if (id < below_) return false;
  if (id == below_) {
    ++below_;
    // Absorb the ids that were waiting just above the watermark.
    while (!above_.empty()) {
      auto it = above_.find(below_);
      if (it == above_.end()) break;
      above_.erase(it);
      ++below_;
    }
    return true;
  }
  return above_.insert(id).second;
}

bool done_set::contains(std::uint64_t id) const { return id < below_ || above_.count(id) != 0; }

} // namespace mtask
