// A msgpack writer for the wire encoder, the counterpart of msgpack_cursor.hpp: values go
// straight into a string, with no msgpack-c packer between. Private to lib/src.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

namespace mtask::wire::detail {

// Writes msgpack values into a string, each in the smallest encoding msgpack allows, exactly as
// msgpack-c's packer chooses it (the unit tests compare the two byte for byte). Gathered in a local
// buffer, a result's nine fields reach the string in one or two appends instead of one each
// (appending per field was a fifth of the worker's time with micro-tasks). Not msgpack-c's packer:
// behind it, a field's cost depended on what the compiler chose to inline into each builder (the
// tasks builder lost a third of its speed to that once, measured); each value here is a bounds
// check and a few stores, which the builders inline whole.
class writer {
 public:
  explicit writer(std::string& out) : out_(out) {}
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer() { flush(); }

  void array(std::uint32_t n) {
    room(5);
    if (n < 16)
      tagged(static_cast<std::uint8_t>(0x90u | n));
    else if (n < 0x10000)
      tagged(0xdc, static_cast<std::uint16_t>(n));
    else
      tagged(0xdd, n);
  }

  void uint(std::uint64_t v) {
    room(9);
    if (v < 0x80)
      tagged(static_cast<std::uint8_t>(v)); // positive fixint
    else if (v < 0x100)
      tagged(0xcc, static_cast<std::uint8_t>(v));
    else if (v < 0x10000)
      tagged(0xcd, static_cast<std::uint16_t>(v));
    else if (v < 0x100000000)
      tagged(0xce, static_cast<std::uint32_t>(v));
    else
      tagged(0xcf, v);
  }

  // Non-negative values as uint, as msgpack-c writes them.
  void sint(std::int64_t v) {
    if (v >= 0) return uint(static_cast<std::uint64_t>(v));
    room(9);
    if (v >= -32)
      tagged(static_cast<std::uint8_t>(v)); // negative fixint
    else if (v >= std::numeric_limits<std::int8_t>::min())
      tagged(0xd0, static_cast<std::uint8_t>(v));
    else if (v >= std::numeric_limits<std::int16_t>::min())
      tagged(0xd1, static_cast<std::uint16_t>(v));
    else if (v >= std::numeric_limits<std::int32_t>::min())
      tagged(0xd2, static_cast<std::uint32_t>(v));
    else
      tagged(0xd3, static_cast<std::uint64_t>(v));
  }

  void boolean(bool v) {
    room(1);
    tagged(v ? 0xc3 : 0xc2);
  }

  void str(std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    room(5);
    if (n < 32)
      tagged(static_cast<std::uint8_t>(0xa0u | n));
    else if (n < 0x100)
      tagged(0xd9, static_cast<std::uint8_t>(n));
    else if (n < 0x10000)
      tagged(0xda, static_cast<std::uint16_t>(n));
    else
      tagged(0xdb, n);
    raw(s);
  }

  void bin(std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    room(5);
    if (n < 0x100)
      tagged(0xc4, static_cast<std::uint8_t>(n));
    else if (n < 0x10000)
      tagged(0xc5, static_cast<std::uint16_t>(n));
    else
      tagged(0xc6, n);
    raw(s);
  }

 private:
  // Each value makes room for its longest encoding first, so that each of its branches is only
  // stores.
  void room(std::size_t n) {
    if (n > sizeof buf_ - len_) [[unlikely]]
      flush();
  }

  void tagged(std::uint8_t tag) { buf_[len_++] = static_cast<char>(tag); }

  // A type byte, then `v` big-endian.
  template <typename U>
  void tagged(std::uint8_t tag, U v) {
    buf_[len_] = static_cast<char>(tag);
    for (std::size_t i = 0; i < sizeof(U); ++i) {
      buf_[len_ + 1 + i] = static_cast<char>(static_cast<std::uint64_t>(v) >> (8 * (sizeof(U) - 1 - i)));
    }
    len_ += 1 + sizeof(U);
  }

  void raw(std::string_view s) {
    if (s.size() > sizeof buf_ - len_) {
      flush();
      if (s.size() > sizeof buf_ / 2) {
        out_.append(s);
        return;
      }
    }
    std::memcpy(buf_ + len_, s.data(), s.size());
    len_ += s.size();
  }

  void flush() {
    out_.append(buf_, len_);
    len_ = 0;
  }

  std::string& out_;
  char buf_[256];
  std::size_t len_ = 0;
};

} // namespace mtask::wire::detail
