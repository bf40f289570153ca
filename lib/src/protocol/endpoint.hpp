// The syntax of an endpoint, without ZeroMQ: the flags are checked with it (socket.cpp's
// check_endpoint) and so is the sink endpoint a ventilator names to a worker (worker_core.cpp).
#pragma once

#include <string_view>

namespace mtask {

// Throws: usage_error "FLAG: 'EP' is not an endpoint ..." unless `endpoint` is tcp://, ipc:// or
//         inproc:// with an address.
void check_endpoint_syntax(std::string_view flag, std::string_view endpoint);

} // namespace mtask
