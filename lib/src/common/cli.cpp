// Shared command-line flags and usage-error policy.
#include "common/cli.hpp"

#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "mtask/error.hpp"
#include "protocol/endpoint.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string_view>

namespace mtask {
namespace {} // namespace

void add_common_flags(CLI::App& app, common_options& opts, const std::string& idle_help) {
  app.add_option("--ventilator", opts.ventilator,
                 "Endpoint the ventilator binds and workers and the sink connect to (tcp://HOST:PORT or ipc://PATH)")
      ->capture_default_str();
  app.add_option(
         "--sink", opts.sink,
         "Endpoint the sink binds and workers push results to (workers started without it use the ventilator's)")
      ->capture_default_str();
  add_process_flags(app, opts, idle_help);
}

void add_process_flags(CLI::App& app, common_options& opts, const std::string& idle_help) {
  app.add_flag("-v,--verbose", opts.verbose, "More detail on stderr (repeat for debug)");
  app.add_flag("-q,--quiet", opts.quiet, "Only errors on stderr");
  app.add_option("--heartbeat-ms", opts.heartbeat_ms, "Interval between heartbeats")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--heartbeat-timeout-ms", opts.heartbeat_timeout_ms, "A peer silent this long is considered gone")
      ->capture_default_str()
      ->check(CLI::Range(50, 3600000));
  app.add_option("--idle-timeout-ms", opts.idle_timeout_ms, idle_help)
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--max-message-bytes", opts.max_message_bytes, "Larger frames are refused (ZMQ_MAXMSGSIZE)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1024}, std::int64_t{1} << 40));
}

void add_security_flags(CLI::App& app, common_options& opts, role r) {
  app.add_option("--key", opts.key,
                 "This process's own secret certificate (from mtask-keygen): CURVE on every connection");
  if (r != role::ventilator)
    app.add_option(
        "--ventilator-key", opts.ventilator_key,
        "The ventilator's public certificate (or its 40-character public key): the only server accepted as the "
        "ventilator");
  if (r == role::worker)
    app.add_option(
        "--sink-key", opts.sink_key,
        "The sink's public certificate (or its 40-character public key): the only server accepted as the sink");
  if (r == role::ventilator)
    app.add_option(
        "--sink-key", opts.sink_key,
        "The sink's public certificate (or its 40-character public key): the only client that may act as the sink");
  if (r == role::worker) return;
  app.add_option("--allow", opts.allow,
                 "Folder of public certificates (*.key) of the clients accepted; anyone else is refused at the "
                 "handshake");
  app.add_flag("--insecure", opts.insecure, "Allow plaintext on a TCP bind beyond loopback");
}

int parse_args(CLI::App& app, int argc, char** argv, const std::function<void()>& validate,
               std::vector<std::string>* command) {
  const std::string program = app.get_name();
  // CLI11 (2.1) rewrites a positional that looks like a list ("[x]" becomes "x", "[a,b]" two
  // words): the words after the first "--" are a command, so CLI11 never sees them.
  int flags_argc = argc;
  std::vector<std::string> tail;
  if (command != nullptr) {
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--") {
        flags_argc = i;
        tail.assign(argv + i + 1, argv + argc);
        break;
      }
    }
  }
  try {
    app.parse(flags_argc, argv);
    if (command != nullptr) command->insert(command->end(), tail.begin(), tail.end());
    if (validate) validate();
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return exit_ok;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return exit_ok;
  } catch (const CLI::CallForVersion&) {
    std::fputs(fmt::format("{} {}\n", program, MTASK_VERSION).c_str(), stdout);
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    std::fputs(fmt::format("{}: error: {} (try --help)\n", program, e.what()).c_str(), stderr);
    return exit_usage;
  } catch (const usage_error& e) {
    std::fputs(fmt::format("{}: error: {} (try --help)\n", program, e.what()).c_str(), stderr);
    return exit_usage;
  }
  return -1;
}

int parse_flags(CLI::App& app, common_options& opts, int argc, char** argv, const std::function<void()>& validate,
                std::vector<std::string>* command) {
  log::set_program(app.get_name());
  const int rc = parse_args(
      app, argc, argv,
      [&] {
        opts.sink_given = app.get_option("--sink")->count() > 0;
        check_process_flags(opts);
        check_endpoint_syntax("--ventilator", opts.ventilator);
        check_endpoint_syntax("--sink", opts.sink);
        if (validate) validate();
      },
      command);
  if (rc >= 0) return rc;
  apply_log_flags(opts);
  return -1;
}

void check_process_flags(const common_options& opts) {
  if (opts.heartbeat_timeout_ms <= opts.heartbeat_ms) {
    throw usage_error(fmt::format("--heartbeat-timeout-ms ({}) must exceed --heartbeat-ms ({})",
                                  opts.heartbeat_timeout_ms, opts.heartbeat_ms));
  }
}

void apply_log_flags(const common_options& opts) {
  if (opts.quiet)
    log::set_level(log::level::error);
  else if (opts.verbose >= 2)
    log::set_level(log::level::debug);
  else if (opts.verbose == 1)
    log::set_level(log::level::info);
  else
    log::set_level(log::level::warn);
}

namespace {

// This process's peak resident memory (VmHWM), in KB, or -1 where /proc does not say. Its own
// mm only: rusage's maxrss would also count the parent's image it was forked from.
long peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmHWM:")) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

} // namespace

int run_role(const std::function<int()>& role) {
  install_stop_handlers();
  int code = exit_failure;
  try {
    code = role();
  } catch (const usage_error& e) {
    log::error("{} (try --help)", e.what());
    code = exit_usage;
  } catch (const std::exception& e) {
    log::error("{}", e.what());
  }
  log::info("exit {}; peak memory {} KB", code, peak_rss_kb());
  return code;
}

std::string program_name(const char* argv0, const char* fallback) {
  if (argv0 == nullptr || *argv0 == '\0') return fallback;
  std::string_view name(argv0);
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  return std::string(name);
}

} // namespace mtask
