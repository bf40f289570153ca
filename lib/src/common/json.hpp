// JSON string encoding for results that may hold any bytes: the output is always valid JSON.
#pragma once

#include <string>
#include <string_view>

namespace mtask {

// Appends `bytes` to `out` as a quoted JSON string (RFC 8259). Valid UTF-8 passes through
// unchanged, including U+2028/U+2029 and DEL. Escaped: '"' and '\\', the control characters
// as \n \r \t \b \f or \u00xx (lower-case hex, as Python's json module writes them), and every
// byte that is not part of a valid UTF-8 sequence (overlong forms, surrogates, code points above
// U+10FFFF, stray continuation bytes, truncated sequences) as \u00xx, its latin-1 code point.
// A decoder sees such a byte as the character U+00xx: nothing is dropped or replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view bytes);

} // namespace mtask
