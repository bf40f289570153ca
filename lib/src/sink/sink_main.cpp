// The mtask-sink program (flags, then run_sink), also the entry point of custom sinks.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "mtask/error.hpp"
#include "mtask/sink.hpp"
#include "sink/sink_flags.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace mtask {

int sink_main(int argc, char** argv, std::function<std::unique_ptr<aggregator>()> make_aggregator) {
  sink_options opts;
  const bool custom = static_cast<bool>(make_aggregator);
  CLI::App app(custom ? "A custom mtask sink: collects results from mtask-worker processes, reduces them, and writes\n"
                        "the total to stdout once every task's result is in. Exits 0, or 3 if some tasks failed."
                      : "Collects results from mtask-worker processes and writes each task's result once to stdout.\n"
                        "Exits once every task's result is written: 0, or 3 if some tasks failed (named on stderr).",
               program_name(argc > 0 ? argv[0] : nullptr, "mtask-sink"));
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from the ventilator; 0: never");
  add_security_flags(app, opts.common, role::sink);
  sink_flags flags;
  flags.add(app, opts, !custom);
  auto validate = [&] {
    flags.finish();
    if (!opts.journal_path.empty() && custom && !make_aggregator()->save()) {
      throw usage_error("--journal needs a reducer that can save its total (override aggregator::save and restore)");
    }
  };
  if (int rc = parse_flags(app, opts.common, argc, argv, validate); rc >= 0) return rc;
  if (custom) opts.make_aggregator = std::move(make_aggregator);
  return run_role([&] { return run_sink(opts); });
}

} // namespace mtask
