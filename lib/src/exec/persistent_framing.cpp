// persistent_framing: tasks encoded for a persistent command, its answers decoded (line or framed).
#include "exec/persistent_framing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>

namespace mtask {
namespace {

// Parses `digits` (1 to `max_digits` ASCII digits, nothing else) into `value`.
// Returns: false when it is not such a number; `overflow` set when it is one too big for `value`.
bool parse_decimal(std::string_view digits, std::size_t max_digits, std::uint64_t& value, bool& overflow) {
  if (digits.empty() || digits.size() > max_digits) return false;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  overflow = ec == std::errc::result_out_of_range;
  return overflow || (ec == std::errc() && end == digits.data() + digits.size());
}

} // namespace

void append_task_record(persistent_framing f, std::string_view payload, std::string& out) {
  if (f == persistent_framing::framed) {
    out.append(std::to_string(payload.size()));
    out.push_back('\n');
    out.append(payload);
  } else {
    out.append(payload);
    out.push_back('\n');
  }
}

answer_decoder::answer_decoder(persistent_framing f, std::size_t max_output_bytes)
    : framing_(f), max_output_bytes_(max_output_bytes) {}

std::size_t answer_decoder::read_limit() const {
  if (framing_ == persistent_framing::line) return max_output_bytes_;
  return max_output_bytes_ > std::numeric_limits<std::size_t>::max() - max_header_bytes
             ? std::numeric_limits<std::size_t>::max()
             : max_output_bytes_ + max_header_bytes;
}

void answer_decoder::decode(std::vector<answer>& out) {
  if (fault_ != fault::none) {
    buf_.clear();
    return;
  }
  if (framing_ == persistent_framing::framed) {
    decode_framed(out);
  } else {
    decode_lines(out);
  }
  if (fault_ != fault::none) std::string().swap(buf_); // nothing after a fault is ever decoded
}

void answer_decoder::decode_lines(std::vector<answer>& out) {
  std::size_t start = 0;
  for (std::size_t nl; (nl = buf_.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(answer{.status = 0, .output = buf_.substr(start, nl - start)});
  buf_.erase(0, start);
  // What is left is a line without its newline yet: already past the limit, it is too large.
  if (buf_.size() > max_output_bytes_) fault_ = fault::too_large;
}

void answer_decoder::decode_framed(std::vector<answer>& out) {
  std::size_t pos = 0;
  while (true) {
    if (!in_body_) {
      const std::size_t scan = std::min(buf_.size() - pos, max_header_bytes);
      const auto nl = std::string_view(buf_).substr(pos, scan).find('\n');
      if (nl == std::string_view::npos) {
        if (scan == max_header_bytes) {
          fault_ = fault::malformed;
          fault_text_ = fmt::format("malformed answer header {}: no newline within {} bytes",
                                    quote_bytes(std::string_view(buf_).substr(pos)), max_header_bytes);
        }
        break;
      }
      if (!parse_header(std::string_view(buf_).substr(pos, nl))) break;
      pos += nl + 1;
      in_body_ = true;
    }
    if (buf_.size() - pos < length_) break;
    out.push_back(answer{.status = status_, .output = buf_.substr(pos, length_)});
    pos += length_;
    in_body_ = false;
  }
  buf_.erase(0, pos);
}

bool answer_decoder::parse_header(std::string_view h) {
  const auto space = h.find(' ');
  std::uint64_t status = 0, length = 0;
  bool status_overflow = false, length_overflow = false;
  if (space == std::string_view::npos || !parse_decimal(h.substr(0, space), 3, status, status_overflow) ||
      !parse_decimal(h.substr(space + 1), 20, length, length_overflow)) {
    fault_ = fault::malformed;
    fault_text_ = fmt::format("malformed answer header {}: expected '<status> <length>' and a newline", quote_bytes(h));
    return false;
  }
  if (status > 255) {
    fault_ = fault::malformed;
    fault_text_ = fmt::format("malformed answer header {}: the status must be 0 to 255", quote_bytes(h));
    return false;
  }
  if (length_overflow || length > max_output_bytes_) {
    fault_ = fault::too_large;
    fault_text_ = fmt::format("the answer's header announced {} bytes", h.substr(space + 1));
    return false;
  }
  status_ = static_cast<int>(status);
  length_ = length;
  return true;
}

std::string answer_decoder::describe_partial() const {
  if (in_body_) return fmt::format("after {} of its {} bytes", buf_.size(), length_);
  if (framing_ == persistent_framing::framed) return fmt::format("inside its header {}", quote_bytes(buf_));
  return fmt::format("after {} bytes without a newline", buf_.size());
}

std::string quote_bytes(std::string_view bytes, std::size_t max) {
  std::string q = "'";
  for (const char c : bytes.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      q += "\\n";
    } else if (c == '\\' || c == '\'') {
      q += '\\';
      q += c;
    } else if (u < 0x20 || u == 0x7f) {
      q += fmt::format("\\x{:02x}", u);
    } else {
      q += c;
    }
  }
  q += bytes.size() > max ? "'..." : "'";
  return q;
}

} // namespace mtask
