// Byte sizes on the command line (--block 64k): a positive integer with an optional 1024-based suffix.
#pragma once

#include <cstddef>
#include <string_view>

namespace mtask {

// Parses "4096", "64k"/"64K" (x1024), "1m"/"1M" (x1024^2), "2g"/"2G" (x1024^3), like GNU
// parallel's --block. No spaces, signs, fractions or longer suffixes ("64KiB", "1MB").
// `flag` only names the flag in messages.
// Throws: usage_error "FLAG: 'TEXT' is not a size (like 4096, 64k, 1M)" for bad text or 0,
//         usage_error "FLAG: 'TEXT' is too large" beyond what size_t holds.
std::size_t parse_size(std::string_view flag, std::string_view text);

} // namespace mtask
