// Integer ranges as task input (--range A:B[:STEP]): the numbers `seq A STEP B` prints, one a task.
// Pure: values are generated on demand, so a range of 2^63 numbers costs no memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

struct range_spec {
  std::int64_t first;
  std::int64_t last;
  std::int64_t step;
};

// Parses "A:B" or "A:B:STEP": decimal integers in int64 range with an optional sign, nothing
// else (no spaces). STEP defaults to 1 whatever the direction, as for `seq A B`.
// Throws: usage_error "--range: 'TEXT' is not A:B[:STEP] with integers" (also for numbers
//         outside int64), usage_error "--range: step must not be 0".
range_spec parse_range(std::string_view text);

class range_generator {
 public:
  // Accepts any spec with step != 0 (assert); a range in the wrong direction for its step
  // (5:1 with step 1, 1:5 with step -1) yields nothing, as seq does.
  explicit range_generator(range_spec spec);

  // Returns: the next value in decimal ("-3", "0", "42"), or nothing once the range is done.
  [[nodiscard]] std::optional<std::string> next();

  // Returns: how many values the whole range yields, independent of next() calls. The one range
  //          with 2^64 values (INT64_MIN to INT64_MAX, step 1) reports UINT64_MAX.
  [[nodiscard]] std::uint64_t count() const { return count_; }

 private:
  std::int64_t current_;
  std::int64_t step_;
  std::uint64_t steps_left_ = 0; // steps after current_; unsigned so the span never overflows
  bool done_ = false;
  std::uint64_t count_ = 0;
};

} // namespace mtask
