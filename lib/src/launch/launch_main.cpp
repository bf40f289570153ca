// The mtask program: parse every role's flags, make the private folder, start the sink, the
// ventilator and one worker with -j slots as children, and wait for them.
#include "launch/launch.hpp"

#include "common/log.hpp"
#include "exec/replacement.hpp"
#include "exec/spawn.hpp"
#include "launch/fleet.hpp"
#include "launch/launch_flags.hpp"
#include "launch/private_dir.hpp"
#include "launch/supervisor.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

namespace mtask {
namespace {

// ssh, with the host's secret key waiting in its stdin pipe (a few hundred bytes: the pipe holds
// them without a reader).
void start_remote_worker(supervisor& sup, const fleet_plan::remote& remote) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw error(fmt::format("cannot start ssh: pipe: {}", std::strerror(errno)));
  const auto& data = remote.command.stdin_data;
  if (!data.empty() && ::write(fds[1], data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw error(fmt::format("cannot start ssh: writing its key: {}", std::strerror(errno)));
  }
  const auto& argv = remote.command.argv;
  sup.start({.name = fmt::format("the worker on '{}'", remote.host),
             .stdout_to_stderr = true,
             .stdin_fd = fds[0],
             .body =
                 [&argv] {
                   std::vector<char*> args;
                   for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
                   args.push_back(nullptr);
                   ::execvp(args[0], args.data());
                   log::error("cannot run '{}': {}", argv.front(), std::strerror(errno));
                   return 127;
                 }},
            role_kind::worker, fds[1]);
}

} // namespace

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
  try {
    // Destroyed last: after every child has been waited for.
    const private_dir dir;
    const auto fleet = plan_fleet(opts, dir.path());
    // Only where a worker runs here: with --ssh alone, the command may exist on the hosts only.
    const auto& command = opts.worker.command;
    if (fleet.local_worker && !opts.worker.handler && !opts.worker.dry_run &&
        !has_replacement_string(command.front()) && find_executable(command.front()).empty()) {
      log::error("command '{}' not found or not executable", command.front());
      return exit_failure;
    }
    if (!fleet.serving) {
      for (common_options* c : {&opts.ventilator.common, &opts.worker.common, &opts.sink.common}) {
        c->ventilator = dir.endpoint("ventilator");
        c->sink = dir.endpoint("sink");
        c->sink_given = true;
      }
    } else {
      // Not warnings, and not hidden as info is: what a user needs to add workers (-q hides it).
      if (log::enabled(log::level::warn)) {
        std::fputs(fmt::format("{}: serving workers of other hosts: ventilator {}, sink {}\n", log::program(),
                               opts.ventilator.common.ventilator, opts.ventilator.common.sink)
                       .c_str(),
                   stderr);
        if (!fleet.join_line.empty())
          std::fputs(fmt::format("{}: a worker joins with: {}\n", log::program(), fleet.join_line).c_str(), stderr);
      }
    }
    supervisor sup;
    sup.start(
        {.name = "mtask-sink", .stdin_null = true, .tidy_dir = dir.path(), .body = [&] { return run_sink(opts.sink); }},
        role_kind::sink);
    sup.start({.name = "mtask-ventilator",
               .stdout_to_stderr = true,
               .tidy_dir = dir.path(),
               .body = [&] { return run_ventilator(opts.ventilator); }},
              role_kind::coordinator);
    // One worker process with -j slots: it already runs that many tasks at once (threads for a
    // built-in, processes for a command), and more processes would only add sockets and startup.
    if (fleet.local_worker) {
      sup.start({.name = "mtask-worker",
                 .stdin_null = true,
                 .stdout_to_stderr = true,
                 .tidy_dir = dir.path(),
                 .body = [&] { return run_worker(opts.worker); }},
                role_kind::worker);
    }
    // Last: no role forked after them inherits the write ends of their stdin.
    try {
      for (const auto& remote : fleet.remotes) start_remote_worker(sup, remote);
    } catch (...) {
      sup.stop_and_wait(); // the roles already started
      throw;
    }
    // mtask's ventilator may linger for workers that arrive late: not cut short as a straggler.
    sup.set_leave_grace(std::chrono::milliseconds(opts.ventilator.linger_ms));
    return sup.wait();
  } catch (const usage_error& e) {
    log::error("{} (try --help)", e.what());
    return exit_usage;
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    return exit_failure;
  }
}

} // namespace mtask
