// mtask-sink: parse flags, then run the sink role.
#include "mtask/error.hpp"
#include "mtask/log.hpp"
#include "mtask/sink.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  mtask::sink_options opts;
  CLI::App app("Collects results from mtask-worker processes and writes each task's result once to stdout.\n"
               "Exits once every task's result is written: 0, or 3 if some tasks failed (named on stderr).",
               "mtask-sink");
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  mtask::add_common_flags(app, opts.common, "Give up (exit 1) after this long without hearing from the ventilator; 0: never");
  app.add_flag("-k,--keep-order", opts.keep_order, "Write results in input order rather than as they arrive");
  app.add_option("--failures", opts.failures_path, "Write one JSON line per task that failed for good to FILE (id, attempts, status, exit status or signal, payload, stderr tail)");
  if (int rc = mtask::parse_flags(app, opts.common, argc, argv, nullptr); rc >= 0) return rc;

  mtask::install_stop_handlers();
  try {
    return mtask::run_sink(opts);
  } catch (const std::exception& e) {
    mtask::log::error("{}", e.what());
    return mtask::exit_failure;
  }
}
