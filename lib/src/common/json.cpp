// JSON string encoding: validates UTF-8 byte by byte so any input becomes a valid JSON string.
#include "common/json.hpp"

#include <cstddef>

namespace mtask {

namespace {

// Returns: the length of the valid UTF-8 sequence (RFC 3629, table 3-7 of Unicode) that starts
// at `at`, or 0 when the byte there does not start one. Checking the second byte's range per
// lead byte is what rules out overlong forms, surrogates and code points above U+10FFFF.
std::size_t utf8_sequence_length(std::string_view s, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xC0) == 0x80; };
  const unsigned char lead = byte(at);
  if (lead < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0; // below: overlong
    if (lead == 0xED) hi = 0x9F; // above: UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90; // below: overlong
    if (lead == 0xF4) hi = 0x8F; // above: beyond U+10FFFF
  } else {
    return 0; // continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (at + 1 >= s.size() || byte(at + 1) < lo || byte(at + 1) > hi) return 0;
  for (std::size_t i = 2; i < len; ++i) {
    if (!cont(at + i)) return 0;
  }
  return len;
}

void append_u00(std::string& out, unsigned char c) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u00";
  out += hex[c >> 4];
  out += hex[c & 0xF];
}

} // namespace

void append_json_string(std::string& out, std::string_view bytes) {
  out.reserve(out.size() + bytes.size() + 2);
  out += '"';
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence_length(bytes, i);
      if (len == 0) {
        append_u00(out, c);
        ++i;
      } else {
        out.append(bytes.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          append_u00(out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

} // namespace mtask
