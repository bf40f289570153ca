// Little-endian fixed-width and varint fields in a byte string, and a reader of them that never
// trusts its input: the journal's records and the --stats/--report snapshots it holds use them.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace mtask::bytes {

inline void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
// LEB128: 7 bits a byte, low first; small numbers (most counts and runtimes) take one or two.
inline void put_var(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
inline void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}
inline void put_vstr(std::string& out, std::string_view s) {
  put_var(out, s.size());
  out.append(s);
}

// Reads fields back; every overrun or malformed field throws E (an error type taking a message).
template <typename E>
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(fixed(4)); }
  std::uint64_t u64() { return fixed(8); }
  std::uint64_t var() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const auto b = u8();
      if (shift == 63 && b > 1) break; // more than 64 bits
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw E("a number longer than 64 bits");
  }
  // A varint that must fit 32 bits.
  std::uint32_t var32() {
    const auto v = var();
    if (v > UINT32_MAX) throw E(fmt::format("a number {} beyond 32 bits", v));
    return static_cast<std::uint32_t>(v);
  }
  std::string str() { return std::string(take(u32())); }
  // A string of a varint length.
  std::string vstr() { return std::string(take(var_count(1))); }
  // A count of items of at least `min_bytes` each, bounded by what is left.
  std::uint32_t count(std::size_t min_bytes) { return bounded(u32(), min_bytes); }
  std::uint32_t var_count(std::size_t min_bytes) { return bounded(var32(), min_bytes); }
  [[nodiscard]] bool done() const { return pos_ == bytes_.size(); }

 private:
  std::uint32_t bounded(std::uint32_t n, std::size_t min_bytes) {
    if (n > (bytes_.size() - pos_) / min_bytes) throw E(fmt::format("a count of {} items overruns its record", n));
    return n;
  }
  std::uint64_t fixed(int n) {
    auto b = take(static_cast<std::size_t>(n));
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[static_cast<std::size_t>(i)]);
    return v;
  }
  std::string_view take(std::size_t n) {
    if (n > bytes_.size() - pos_) throw E("a record is shorter than its fields");
    auto s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

} // namespace mtask::bytes
