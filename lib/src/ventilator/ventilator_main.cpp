// The mtask-ventilator program: flags, then run_ventilator.
#include "common/cli.hpp"
#include "ventilator/ventilator.hpp"
#include "ventilator/ventilator_flags.hpp"

#include <CLI/CLI.hpp>

namespace mtask {

int ventilator_main(int argc, char** argv) {
  ventilator_options opts;
  CLI::App app(
      "Reads input, splits it into tasks and hands them to mtask-worker processes as they have free slots.\n"
      "Exits once mtask-sink has written every result: 0, or 3 if some tasks failed.",
      program_name(argc > 0 ? argv[0] : nullptr, "mtask-ventilator"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(
      app, opts.common,
      "Give up (exit 1) after this long without a sink or, with tasks left, without a live worker; 0: never");
  add_security_flags(app, opts.common, role::ventilator);
  ventilator_flags flags;
  flags.add(app, opts);
  if (int rc = parse_flags(app, opts.common, argc, argv, [&] { flags.finish(); }); rc >= 0) return rc;

  return run_role([&] { return run_ventilator(opts); });
}

} // namespace mtask
