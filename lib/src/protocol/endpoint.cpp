// Endpoint syntax (protocol/endpoint.hpp): pure, so the roles' cores check endpoints without ZeroMQ.
#include "protocol/endpoint.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

namespace mtask {

void check_endpoint_syntax(std::string_view flag, std::string_view endpoint) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.starts_with(scheme) && endpoint.size() > scheme.size()) return;
  }
  throw usage_error(
      fmt::format("{}: '{}' is not an endpoint (expected tcp://HOST:PORT or ipc://PATH)", flag, endpoint));
}

} // namespace mtask
