// The mtask program: parse every role's flags, make the private folder, start the sink, the
// ventilator and one worker with -j slots as children, and wait for them.
#include "launch/launch.hpp"

#include "common/log.hpp"
#include "exec/replacement.hpp"
#include "exec/spawn.hpp"
#include "launch/launch_flags.hpp"
#include "launch/private_dir.hpp"
#include "launch/supervisor.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"

#include <exception>

namespace mtask {

int launch_main(int argc, char** argv) {
  launch_options opts;
  if (int rc = parse_launch_flags(argc, argv, opts); rc >= 0) return rc;
  try {
    opts.ventilator.arg_lists = load_arg_groups(opts.arg_groups);
  } catch (const usage_error& e) {
    log::error("{} (try --help)", e.what());
    return exit_usage;
  } catch (const error& e) {
    log::error("{}", e.what());
    return exit_failure;
  }
  const auto& command = opts.worker.command;
  if (!opts.worker.handler && !opts.worker.dry_run && !has_replacement_string(command.front()) &&
      find_executable(command.front()).empty()) {
    log::error("command '{}' not found or not executable", command.front());
    return exit_failure;
  }
  try {
    // Destroyed last: after every child has been waited for.
    const private_dir dir;
    for (common_options* c : {&opts.ventilator.common, &opts.worker.common, &opts.sink.common}) {
      c->ventilator = dir.endpoint("ventilator");
      c->sink = dir.endpoint("sink");
      c->sink_given = true;
    }
    supervisor sup;
    // One worker process with -j slots: it already runs that many tasks at once (threads for a
    // built-in, processes for a command), and more processes would only add sockets and startup.
    sup.start(
        {.name = "mtask-sink", .stdin_null = true, .tidy_dir = dir.path(), .body = [&] { return run_sink(opts.sink); }},
        true);
    sup.start({.name = "mtask-ventilator",
               .stdout_to_stderr = true,
               .tidy_dir = dir.path(),
               .body = [&] { return run_ventilator(opts.ventilator); }},
              false);
    sup.start({.name = "mtask-worker",
               .stdin_null = true,
               .stdout_to_stderr = true,
               .tidy_dir = dir.path(),
               .body = [&] { return run_worker(opts.worker); }},
              false);
    return sup.wait();
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    return exit_failure;
  }
}

} // namespace mtask
