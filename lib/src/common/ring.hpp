// A double-ended queue in one power-of-two array: push at the back, pop at the front, index from
// the front. Unlike std::deque it allocates only when it grows (std::deque allocates and frees a
// block every few hundred bytes as it slides, which was a tenth of the ventilator's time with one
// ledger entry per task).
#pragma once

#include <cassert>
#include <cstddef>
#include <utility>
#include <vector>

namespace mtask {

template <typename T>
class ring {
 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  T& operator[](std::size_t i) {
    assert(i < size_);
    return slots_[(head_ + i) & (slots_.size() - 1)];
  }
  const T& operator[](std::size_t i) const {
    assert(i < size_);
    return slots_[(head_ + i) & (slots_.size() - 1)];
  }
  T& front() { return (*this)[0]; }

  // Returns: the new back element, value-initialised.
  T& emplace_back() {
    if (size_ == slots_.size()) grow();
    T& slot = slots_[(head_ + size_) & (slots_.size() - 1)];
    slot = T{};
    ++size_;
    return slot;
  }

  // Every element is reset and leaves; the capacity stays.
  void clear() {
    while (size_ > 0) pop_front();
  }

  // The front element is reset (its resources freed) and leaves.
  void pop_front() {
    assert(size_ > 0);
    slots_[head_] = T{};
    head_ = (head_ + 1) & (slots_.size() - 1);
    --size_;
  }

 private:
  void grow() {
    std::vector<T> bigger(slots_.empty() ? 16 : 2 * slots_.size());
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    slots_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> slots_; // size is 0 or a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

} // namespace mtask
