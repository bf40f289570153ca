// The one clock the bookkeeping uses; pure modules take `time_point now` so tests inject time.
#pragma once

#include <chrono>

namespace mtask {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using millis = std::chrono::milliseconds;

} // namespace mtask
