// Holds results that arrived ahead of their turn so the sink can write them in task order (-k).
// Its size is bounded by the ventilator, which does not hand out task ids beyond
// next() + window while the sink still waits for next().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace mtask {

class reorder_buffer {
 public:
  // Stores `bytes` for `id`; ids below next() or already stored are ignored.
  void put(std::uint64_t id, std::string bytes);
  // Returns: the bytes for next() if they have arrived, advancing next().
  [[nodiscard]] std::optional<std::string> pop();
  [[nodiscard]] std::uint64_t next() const { return next_; }
  [[nodiscard]] std::size_t waiting() const { return held_.size(); }
  // Every result below `next` is written (a sink resuming from its journal); call on an empty buffer.
  void start_at(std::uint64_t next) { next_ = next; }
  // Returns: every result held, in id order, emptying the buffer (a halted job: the tasks between
  // will never come); next() moves past the last.
  [[nodiscard]] std::map<std::uint64_t, std::string> take_all() {
    if (!held_.empty()) next_ = held_.rbegin()->first + 1;
    return std::exchange(held_, {});
  }
  // Returns: the bytes held for `id`, or null.
  [[nodiscard]] const std::string* find(std::uint64_t id) const {
    auto it = held_.find(id);
    return it == held_.end() ? nullptr : &it->second;
  }

 private:
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, std::string> held_;
};

} // namespace mtask
