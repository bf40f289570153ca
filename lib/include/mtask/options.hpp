// The options every role shares (same flag, same meaning in the three binaries): endpoints,
// logging, liveness timing and the message size limit. Plain data: no transport types.
#pragma once

#include <cstdint>
#include <string>

namespace mtask {

struct common_options {
  std::string ventilator = "tcp://127.0.0.1:5557";
  std::string sink = "tcp://127.0.0.1:5558";
  bool sink_given = false; // --sink was on the command line (workers otherwise use what the ventilator says)
  int verbose = 0;
  bool quiet = false;
  int heartbeat_ms = 250;
  int heartbeat_timeout_ms = 3000;
  int idle_timeout_ms = 60000; // 0: wait forever
  std::int64_t max_message_bytes = 256 << 20;
};

} // namespace mtask
