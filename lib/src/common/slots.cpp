// -j's forms (N, 0, N%, +N, -N) turned into a slot count.
#include "common/slots.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <thread>

namespace mtask {
namespace {

[[noreturn]] void bad(std::string_view text) {
  throw usage_error(fmt::format("-j: '{}' is not N, 0, N%, +N or -N", text));
}

// Decimal digits only (no sign, no space); values past 10^6 are as good as infinite here.
std::uint64_t number(std::string_view digits, std::string_view text) {
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad(text);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || end != digits.data() + digits.size() || v > 1000000) return 1000000;
  return v;
}

unsigned clamp_slots(std::uint64_t v) { return static_cast<unsigned>(std::clamp<std::uint64_t>(v, 1, max_slots)); }

} // namespace

unsigned core_count() { return std::max(1u, std::thread::hardware_concurrency()); }

unsigned parse_slots(std::string_view text, unsigned cores) {
  cores = std::max(1u, cores);
  if (text.empty()) bad(text);
  if (text.front() == '+') return clamp_slots(cores + number(text.substr(1), text));
  if (text.front() == '-') {
    const std::uint64_t less = number(text.substr(1), text);
    return less >= cores ? 1u : clamp_slots(cores - less);
  }
  if (text.back() == '%') {
    const std::uint64_t percent = number(text.substr(0, text.size() - 1), text);
    return clamp_slots((cores * percent + 50) / 100);
  }
  const std::uint64_t n = number(text, text);
  if (n == 0) return zero_slots;
  if (n > max_slots) throw usage_error(fmt::format("-j: {} is more than the most slots ({})", text, max_slots));
  return static_cast<unsigned>(n);
}

} // namespace mtask
