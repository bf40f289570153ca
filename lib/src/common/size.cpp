// Size parsing for flags such as --block.
#include "common/size.hpp"

#include "mtask/error.hpp"

#include <charconv>
#include <limits>
#include <string>

namespace mtask {

std::size_t parse_size(std::string_view flag, std::string_view text) {
  const auto quoted = std::string(flag) + ": '" + std::string(text) + "'";
  const auto bad = [&] { return usage_error(quoted + " is not a size (like 4096, 64k, 1M)"); };
  std::string_view digits = text;
  int shift = 0;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K': shift = 10; break;
      case 'm':
      case 'M': shift = 20; break;
      case 'g':
      case 'G': shift = 30; break;
      default: break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  // from_chars would accept a '-'; only digits make a size.
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) throw bad();
  std::size_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (ec == std::errc::result_out_of_range) throw usage_error(quoted + " is too large");
  if (ec != std::errc() || ptr != end || value == 0) throw bad();
  if (value > (std::numeric_limits<std::size_t>::max() >> shift)) throw usage_error(quoted + " is too large");
  return value << shift;
}

} // namespace mtask
