// reorder_buffer: an ordered map drained from its smallest key.
#include "sink/reorder_buffer.hpp"

namespace mtask {

void reorder_buffer::put(std::uint64_t id, std::string bytes) {
  if (id < next_) return;
  held_.try_emplace(id, std::move(bytes));
}

std::optional<std::string> reorder_buffer::pop() {
  auto it = held_.begin();
  if (it == held_.end() || it->first != next_) return std::nullopt;
  std::string bytes = std::move(it->second);
  held_.erase(it);
  ++next_;
  return bytes;
}

} // namespace mtask
