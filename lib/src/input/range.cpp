// --range parsing and generation; spans are computed in uint64 so int64 limits never overflow.
#include "input/range.hpp"

#include "mtask/error.hpp"

#include <cassert>
#include <charconv>
#include <limits>

namespace mtask {

namespace {

// from_chars without its leniencies: a '+' is allowed, the whole field must be the number.
bool parse_int64(std::string_view field, std::int64_t& value) {
  if (!field.empty() && field.front() == '+') {
    field.remove_prefix(1);
    if (!field.empty() && field.front() == '-') return false;
  }
  if (field.empty()) return false;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, value);
  return ec == std::errc() && ptr == end;
}

} // namespace

range_spec parse_range(std::string_view text) {
  const auto bad = [&] { return usage_error("--range: '" + std::string(text) + "' is not A:B[:STEP] with integers"); };
  const auto colon1 = text.find(':');
  if (colon1 == std::string_view::npos) throw bad();
  const auto colon2 = text.find(':', colon1 + 1);
  const std::string_view a = text.substr(0, colon1);
  const std::string_view b =
      text.substr(colon1 + 1, colon2 == std::string_view::npos ? std::string_view::npos : colon2 - colon1 - 1);
  range_spec spec{.first = 0, .last = 0, .step = 1};
  if (!parse_int64(a, spec.first) || !parse_int64(b, spec.last)) throw bad();
  if (colon2 != std::string_view::npos && !parse_int64(text.substr(colon2 + 1), spec.step)) throw bad();
  if (spec.step == 0) throw usage_error("--range: step must not be 0");
  return spec;
}

range_generator::range_generator(range_spec spec) : current_(spec.first), step_(spec.step) {
  assert(spec.step != 0);
  const bool up = spec.step > 0;
  if (up ? spec.first > spec.last : spec.first < spec.last) {
    done_ = true;
    return;
  }
  // Two's complement differences are exact in uint64 once the sign of the span is known.
  const auto span = up ? static_cast<std::uint64_t>(spec.last) - static_cast<std::uint64_t>(spec.first)
                       : static_cast<std::uint64_t>(spec.first) - static_cast<std::uint64_t>(spec.last);
  const auto stride =
      up ? static_cast<std::uint64_t>(spec.step) : std::uint64_t{0} - static_cast<std::uint64_t>(spec.step);
  steps_left_ = span / stride;
  count_ = steps_left_ == std::numeric_limits<std::uint64_t>::max() ? steps_left_ : steps_left_ + 1;
}

std::optional<std::string> range_generator::next() {
  if (done_) return std::nullopt;
  char buf[24];
  const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, current_);
  assert(ec == std::errc());
  std::string value(buf, ptr);
  if (steps_left_ == 0) {
    done_ = true;
  } else {
    --steps_left_;
    current_ += step_; // stays within [first, last] because a step is left
  }
  return value;
}

} // namespace mtask
