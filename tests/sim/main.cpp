// mtask-sim: runs the deterministic simulation over a range of seeds, or one seed verbosely, or
// the ventilator's cost per task at scale. A failing seed prints the command that replays it.
#include "simulator.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app("Runs mtask's roles over a simulated network with injected faults and checks the invariants.",
               "mtask-sim");
  std::uint64_t seed = 1;
  std::uint64_t seeds = 1;
  bool verbose = false;
  bool trace = false;
  bool no_faults = false;
  std::vector<int> scale;
  int tasks = 0;
  app.add_option("--seed", seed, "First seed")->capture_default_str();
  app.add_option("--seeds", seeds, "How many seeds, from --seed on")->capture_default_str();
  app.add_option("--tasks", tasks, "Tasks per job (0: drawn from the seed)");
  app.add_flag("--no-faults", no_faults, "Inject no faults");
  app.add_flag("-v,--verbose", verbose, "The roles' log lines and the faults on stderr");
  app.add_flag("--trace", trace,
               "With --verbose: debug lines at simulated times, and every batch and result delivered");
  app.add_option("--scale", scale, "Worker counts: time the ventilator core per task with that many workers");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mtask-sim: error: %s (try --help)\n", e.what());
    return 2;
  }
  if (!scale.empty()) {
    const int n = tasks > 0 ? tasks : 1'000'000;
    fmt::print("{:>8} {:>10} {:>16}\n", "workers", "tasks", "ventilator ns/task");
    for (int workers : scale) {
      auto out = mtask::sim::run({.seed = seed, .faults = false, .workers = workers, .tasks = n, .scale = true});
      if (!out.ok) {
        fmt::print(stderr, "mtask-sim: scale run with {} workers failed: {}\n", workers, out.failure);
        return 1;
      }
      fmt::print("{:>8} {:>10} {:>16.0f}\n", workers, n, out.ventilator_ns / n);
    }
    return 0;
  }
  std::uint64_t failed = 0, faults = 0, events = 0;
  double sim_seconds = 0;
  for (std::uint64_t s = seed; s < seed + seeds; ++s) {
    auto out = mtask::sim::run(
        {.seed = s, .faults = !no_faults, .verbose = verbose, .trace = trace && verbose, .tasks = tasks});
    faults += out.faults;
    events += out.events;
    sim_seconds += out.simulated_seconds;
    if (!out.ok) {
      ++failed;
      fmt::print(stderr, "mtask-sim: seed {} failed: {}\n  replay: mtask-sim --seed {} --verbose{}\n", s, out.failure,
                 s, no_faults ? " --no-faults" : "");
      if (failed >= 10) break;
    }
  }
  fmt::print("{} seed(s) from {}: {} failed; {} faults injected, {} events, {:.0f} s simulated\n", seeds, seed, failed,
             faults, events, sim_seconds);
  return failed == 0 ? 0 : 1;
}
