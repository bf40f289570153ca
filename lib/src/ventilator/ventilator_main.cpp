// The mtask-ventilator program: flags, then run_ventilator.
#include "common/cli.hpp"
#include "ventilator/ventilator.hpp"
#include "ventilator/ventilator_flags.hpp"

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace mtask {

int ventilator_main(int argc, char** argv) {
  ventilator_options opts;
  CLI::App app(
      "Reads input, splits it into tasks and hands them to mtask-worker processes as they have free slots.\n"
      "Run as: mtask-ventilator [OPTIONS] [::: ARG... | :::: FILE...]...   With argument lists (as GNU\n"
      "        parallel's), the tasks are their cross product instead of stdin: one argument a task for\n"
      "        one group; with several, the arguments joined by the byte 0x1f, for workers started with\n"
      "        --colsep '\\x1f' -- CMD {1} {2}...\n"
      "Exits once mtask-sink has written every result: 0, or 3 if some tasks failed.",
      program_name(argc > 0 ? argv[0] : nullptr, "mtask-ventilator"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(
      app, opts.common,
      "Give up (exit 1) after this long without a sink or, with tasks left, without a live worker; 0: never");
  add_security_flags(app, opts.common, role::ventilator);
  ventilator_flags flags;
  flags.add(app, opts);
  // `::: a b` and `:::: FILE` end the command line, as in parallel: CLI11 sees only what precedes.
  int flags_argc = argc;
  for (int i = 1; i < argc; ++i) {
    const std::string_view w(argv[i]);
    if (w == ":::" || w == "::::") {
      flags_argc = i;
      break;
    }
  }
  auto validate = [&] {
    std::vector<std::string> tail(argv + flags_argc, argv + argc);
    flags.set_arg_groups(take_arg_groups(tail));
    flags.finish();
  };
  if (int rc = parse_flags(app, opts.common, flags_argc, argv, validate); rc >= 0) return rc;

  return run_role([&] {
    // A :::: file that cannot be read fails the job (exit 1), as a missing --input does.
    opts.arg_lists = load_arg_groups(flags.arg_groups());
    return run_ventilator(opts);
  });
}

} // namespace mtask
