// The one clock the bookkeeping uses; pure modules take `time_point now` so tests inject time.
#pragma once

#include <chrono>
#include <cstdint>

namespace mtask {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using millis = std::chrono::milliseconds;

inline std::uint64_t micros_between(time_point start, time_point end) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(end - start).count());
}

} // namespace mtask
