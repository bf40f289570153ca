// A forward-only msgpack reader over one frame, for the wire decoder. It reads values in place:
// no object tree, no allocation, strings and binaries come back as views into the frame.
// msgpack-c's unpacker builds a tree of every message first, which was most of the sink's time
// and a tenth of the worker's with batches of thousands of tiny results (bench/RESULTS.md).
// msgpack-c's tree-free alternative, its SAX-style visitor (msgpack::parse), calls back once per
// value and would need a state machine per message type to map positions to fields; a pull cursor
// reads each message's layout in the order the code states it.
// Every read is bounds-checked; anything that is not well-formed msgpack throws protocol_error.
// Private to lib/src: the wire format's public face is wire.hpp.
#pragma once

#include "mtask/error.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

namespace mtask::wire::detail {

class cursor {
 public:
  explicit cursor(std::string_view frame) : p_(frame.data()), end_(frame.data() + frame.size()) {}

  [[nodiscard]] bool at_end() const { return p_ == end_; }
  [[nodiscard]] std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

  // An integer as msgpack-c sees it: any non-negative value is positive, whatever its encoding.
  struct integer {
    bool negative = false;
    std::uint64_t u = 0; // when !negative
    std::int64_t i = 0;  // when negative
  };

  // Each read_* consumes the next value and returns true if it is of that kind; otherwise it
  // consumes nothing and returns false.

  // An array's header; `n` elements follow (at most one per remaining byte, or it throws).
  bool read_array(std::uint32_t& n) {
    const auto b = peek();
    if (b >= 0x90 && b <= 0x9f) {
      n = b & 0x0fu;
      ++p_;
    } else if (b == 0xdc) {
      n = load<std::uint16_t>(1);
      p_ += 3;
    } else if (b == 0xdd) {
      n = load<std::uint32_t>(1);
      p_ += 5;
    } else {
      return false;
    }
    if (n > remaining()) fail("an array longer than the frame");
    return true;
  }

  bool read_integer(integer& v) {
    const auto b = peek();
    v = {};
    if (b <= 0x7f) {
      v.u = b;
      ++p_;
      return true;
    }
    if (b >= 0xe0) {
      set_signed(v, static_cast<std::int8_t>(b));
      ++p_;
      return true;
    }
    switch (b) {
      case 0xcc: v.u = load<std::uint8_t>(1), p_ += 2; return true;
      case 0xcd: v.u = load<std::uint16_t>(1), p_ += 3; return true;
      case 0xce: v.u = load<std::uint32_t>(1), p_ += 5; return true;
      case 0xcf: v.u = load<std::uint64_t>(1), p_ += 9; return true;
      case 0xd0: set_signed(v, static_cast<std::int8_t>(load<std::uint8_t>(1))), p_ += 2; return true;
      case 0xd1: set_signed(v, static_cast<std::int16_t>(load<std::uint16_t>(1))), p_ += 3; return true;
      case 0xd2: set_signed(v, static_cast<std::int32_t>(load<std::uint32_t>(1))), p_ += 5; return true;
      case 0xd3: set_signed(v, static_cast<std::int64_t>(load<std::uint64_t>(1))), p_ += 9; return true;
      default: return false;
    }
  }

  bool read_bool(bool& v) {
    const auto b = peek();
    if (b != 0xc2 && b != 0xc3) return false;
    v = b == 0xc3;
    ++p_;
    return true;
  }

  // A str or a bin, as a view into the frame.
  bool read_bytes(std::string_view& v) {
    const auto b = peek();
    std::size_t header = 0;
    std::size_t size = 0;
    if (b >= 0xa0 && b <= 0xbf) {
      header = 1;
      size = b & 0x1fu;
    } else if (b == 0xd9 || b == 0xc4) {
      header = 2;
      size = load<std::uint8_t>(1);
    } else if (b == 0xda || b == 0xc5) {
      header = 3;
      size = load<std::uint16_t>(1);
    } else if (b == 0xdb || b == 0xc6) {
      header = 5;
      size = load<std::uint32_t>(1);
    } else {
      return false;
    }
    need(header + size);
    v = std::string_view(p_ + header, size);
    p_ += header + size;
    return true;
  }

  // Skips one value of any kind, nesting at most `depth` containers deep.
  void skip(int depth) {
    if (depth <= 0) fail("nested too deeply");
    const auto b = peek();
    std::uint32_t n = 0;
    integer i;
    bool flag = false;
    std::string_view s;
    if (read_integer(i) || read_bool(flag) || read_bytes(s)) return;
    if (read_array(n)) {
      for (std::uint32_t k = 0; k < n; ++k) skip(depth - 1);
      return;
    }
    std::size_t pairs = 0;
    if (b >= 0x80 && b <= 0x8f) {
      pairs = b & 0x0fu, p_ += 1;
    } else if (b == 0xde) {
      pairs = load<std::uint16_t>(1), p_ += 3;
    } else if (b == 0xdf) {
      pairs = load<std::uint32_t>(1), p_ += 5;
    } else {
      skip_scalar(b);
      return;
    }
    if (pairs > remaining()) fail("a map longer than the frame");
    for (std::size_t k = 0; k < 2 * pairs; ++k) skip(depth - 1);
  }

  [[noreturn]] static void fail(std::string_view why) {
    throw protocol_error(std::string("malformed message: ").append(why));
  }

 private:
  // nil, floats and extension types: nothing of ours, skipped by size.
  void skip_scalar(std::uint8_t b) {
    switch (b) {
      case 0xc0: ++p_; return;
      case 0xca: return advance(5);
      case 0xcb: return advance(9);
      case 0xd4: return advance(3);
      case 0xd5: return advance(4);
      case 0xd6: return advance(6);
      case 0xd7: return advance(10);
      case 0xd8: return advance(18);
      case 0xc7: return advance(3 + std::size_t{load<std::uint8_t>(1)});
      case 0xc8: return advance(4 + std::size_t{load<std::uint16_t>(1)});
      case 0xc9: return advance(6 + std::size_t{load<std::uint32_t>(1)});
      default: fail("0xc1 is not a msgpack value"); // the one byte the format leaves unused
    }
  }

  void advance(std::size_t n) {
    need(n);
    p_ += n;
  }

  static void set_signed(integer& v, std::int64_t x) {
    v.negative = x < 0;
    if (v.negative)
      v.i = x;
    else
      v.u = static_cast<std::uint64_t>(x);
  }

  [[nodiscard]] std::uint8_t peek() const {
    if (p_ == end_) fail("truncated");
    return static_cast<std::uint8_t>(*p_);
  }

  void need(std::size_t n) const {
    if (n > remaining()) fail("truncated");
  }

  // A big-endian unsigned integer `offset` bytes ahead.
  template <typename U>
  [[nodiscard]] U load(std::size_t offset) const {
    need(offset + sizeof(U));
    unsigned char raw[sizeof(U)];
    std::memcpy(raw, p_ + offset, sizeof(U));
    U v = 0;
    for (unsigned char c : raw) v = static_cast<U>((v << 8) | c);
    return v;
  }

  const char* p_;
  const char* end_;
};

} // namespace mtask::wire::detail
