// The keys one CURVE socket needs, as libzmq takes them (Z85 text): plain data, no ZeroMQ.
#pragma once

#include <string>

namespace mtask {

struct curve_keys {
  std::string public_key; // ours
  std::string secret_key; // ours
  std::string server_key; // a client's pinned server; empty on a server
};

} // namespace mtask
