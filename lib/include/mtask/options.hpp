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

  // CURVE (key files from mtask-keygen). Without `key` everything is plaintext.
  std::string key;            // --key: this process's own secret certificate
  std::string ventilator_key; // --ventilator-key: the ventilator's public certificate (pinned)
  std::string sink_key;       // --sink-key: the sink's; the ventilator lets only it act as the sink
  std::string allow;          // --allow DIR (ventilator, sink): public certificates of accepted clients
  bool insecure = false;      // --insecure: plaintext even on a TCP bind beyond loopback
};

} // namespace mtask
