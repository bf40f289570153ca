// Flags shared by the three binaries (same name, same meaning everywhere) and the exit-code policy.
#pragma once

#include "common/role.hpp"
#include "mtask/exit_code.hpp"
#include "mtask/options.hpp"

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mtask {

// Adds --ventilator, --sink, -v, -q, --heartbeat-ms, --heartbeat-timeout-ms, --idle-timeout-ms and
// --max-message-bytes. `idle_help` says what "idle" means for this binary.
void add_common_flags(CLI::App& app, common_options& opts, const std::string& idle_help);
// The part of add_common_flags that is not an endpoint: -v, -q, --heartbeat-ms,
// --heartbeat-timeout-ms, --idle-timeout-ms and --max-message-bytes (mtask picks the endpoints).
void add_process_flags(CLI::App& app, common_options& opts, const std::string& idle_help);
// Throws: usage_error when --heartbeat-timeout-ms does not exceed --heartbeat-ms.
void check_process_flags(const common_options& opts);
// Sets the log level from -v/-q.
void apply_log_flags(const common_options& opts);

// Adds the CURVE flags `r` uses: --key everywhere; --ventilator-key (worker, sink); --sink-key
// (worker, ventilator); --allow and --insecure (ventilator, sink: the two that bind).
void add_security_flags(CLI::App& app, common_options& opts, role r);

// Parses argv with `app` and runs `validate` (may throw usage_error), for any program. Given
// `command`, the words after the first "--" are appended to it as they are, unseen by CLI11 (which
// would rewrite "[x]"), before `validate` runs.
// Returns: -1 to go on, or the exit code to return now (0 after --help/--version, 2 after a
//          usage error, having printed one line "PROGRAM: error: MESSAGE (try --help)").
int parse_args(CLI::App& app, int argc, char** argv, const std::function<void()>& validate,
               std::vector<std::string>* command = nullptr);

// Parses argv (and the command after "--" into `command`, as parse_args does); sets up logging
// from -v/-q. `validate` runs after parsing and may throw usage_error.
// Returns: -1 to go on, or the exit code to return now (0 after --help, 2 after a usage error,
//          having printed one line "PROGRAM: error: MESSAGE (try --help)").
int parse_flags(CLI::App& app, common_options& opts, int argc, char** argv, const std::function<void()>& validate,
                std::vector<std::string>* command = nullptr);

// Installs the stop handlers and runs `role`, turning any escaping exception into one error line
// on stderr and exit code 1 (2 for a usage_error, such as flags that do not go together).
int run_role(const std::function<int()>& role);

// The name a program was started as (argv[0] without its directory), for messages and --help.
std::string program_name(const char* argv0, const char* fallback);
} // namespace mtask
