// Flags shared by the three binaries (same name, same meaning everywhere) and the exit-code policy.
#pragma once

#include "mtask/exit_code.hpp"
#include "mtask/socket.hpp"

#include <functional>
#include <string>

namespace CLI {
class App;
}

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

  [[nodiscard]] socket_policy policy() const;
};

// Adds --ventilator, --sink, -v, -q, --heartbeat-ms, --heartbeat-timeout-ms, --idle-timeout-ms and
// --max-message-bytes. `idle_help` says what "idle" means for this binary.
void add_common_flags(CLI::App& app, common_options& opts, const std::string& idle_help);

// Parses argv; sets up logging from -v/-q. `validate` runs after parsing and may throw usage_error.
// Returns: -1 to go on, or the exit code to return now (0 after --help, 2 after a usage error,
//          having printed one line "PROGRAM: error: MESSAGE (try --help)").
int parse_flags(CLI::App& app, common_options& opts, int argc, char** argv, const std::function<void()>& validate);

// Installs SIGINT/SIGTERM handlers that only record the signal; loops poll stop_signal().
void install_stop_handlers();

// Installs the stop handlers and runs `role`, turning any escaping exception into one error line
// on stderr and exit code 1.
int run_role(const std::function<int()>& role);

// The name a program was started as (argv[0] without its directory), for messages and --help.
std::string program_name(const char* argv0, const char* fallback);
// Returns: the signal that asked us to stop, or 0.
int stop_signal();

} // namespace mtask
