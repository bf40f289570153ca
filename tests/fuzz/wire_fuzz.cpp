// libFuzzer target for the wire decoder: any bytes must either decode or throw protocol_error;
// whatever decodes must encode and decode back to the same message.
#include "mtask/error.hpp"
#include "mtask/wire.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  try {
    auto m = mtask::wire::decode(frame, 1 << 20);
    auto again = mtask::wire::decode(mtask::wire::encode(m));
    if (!(again == m)) std::abort(); // a round trip that changes the message is a bug
  } catch (const mtask::protocol_error&) {
    // expected for garbage
  }
  return 0;
}
