// mtask's command line: the ventilator's, worker's and sink's flags in one app, each bound to
// the options of the role that owns it, plus the flags they share, given once and copied to all.
#include "launch/launch_flags.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "sink/sink_flags.hpp"
#include "ventilator/ventilator_flags.hpp"
#include "worker/worker_flags.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <thread>

namespace mtask {

int parse_launch_flags(int argc, char** argv, launch_options& opts) {
  CLI::App app(
      "Runs a whole job on this machine: a ventilator, a sink and -j local worker slots, wired over\n"
      "ipc:// in a private folder. Tasks come from stdin (or --input, --range), results go to stdout.\n"
      "Run as: mtask [OPTIONS] -- CMD [ARG...]   Each task runs CMD (no shell, as parallel -q). With\n"
      "        GNU parallel's replacement strings in CMD or an ARG ({} {.} {/} {//} {/.} {#} {%}, with\n"
      "        --colsep {1} {2} {-1} {1.}...), the task goes into the arguments; without any, the task\n"
      "        (with its newline) is written to CMD's stdin, as with parallel --pipe.\n"
      "    or: mtask [OPTIONS] --builtin echo|sleep\n"
      "Exits as the sink does: 0, 3 if some tasks failed, 1 on failure; 128+N when stopped by signal N.",
      program_name(argc > 0 ? argv[0] : nullptr, "mtask"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  common_options common;
  add_process_flags(app, common,
                    "Give up (exit 1) after this long without progress (no worker, sink or ventilator); "
                    "0: never");
  // As GNU parallel's -j: one slot per core by default.
  opts.worker.slots = std::max(1u, std::thread::hardware_concurrency());
  ventilator_flags vent_flags;
  vent_flags.add(app, opts.ventilator);
  worker_flags work_flags;
  work_flags.add(app, opts.worker, {.once = false, .command = true});
  sink_flags collect_flags;
  collect_flags.add(app, opts.sink, true);

  log::set_program(app.get_name());
  const int rc = parse_args(
      app, argc, argv,
      [&] {
        check_process_flags(common);
        vent_flags.finish();
        work_flags.finish();
        collect_flags.finish();
      },
      &opts.worker.command);
  if (rc >= 0) return rc;
  apply_log_flags(common);
  opts.ventilator.common = common;
  opts.worker.common = common;
  opts.sink.common = common;
  opts.worker.once = true; // the worker leaves with the job
  return -1;
}

} // namespace mtask
