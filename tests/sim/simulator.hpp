// A deterministic simulation of one mtask job: the real ventilator, sink and worker cores over a
// simulated network and clock, with faults drawn from one seeded RNG. A seed replays exactly.
#pragma once

#include <cstdint>
#include <string>

namespace mtask::sim {

struct options {
  std::uint64_t seed = 1;
  bool faults = true;
  bool verbose = false; // the cores' log lines, and the fault schedule, on stderr
  bool trace = false;   // with verbose: their debug lines too, at simulated times, and every batch and result delivered
  int workers = 0;      // 0: drawn from the seed (1-5)
  int tasks = 0;        // 0: drawn from the seed
  bool scale = false;   // fault-free, instant tiny tasks, product defaults for window and batch; times the ventilator
};

struct outcome {
  bool ok = false;
  std::string failure;          // the violated invariant, when !ok
  double simulated_seconds = 0; // when the job ended
  std::uint64_t events = 0;     // deliveries and wake-ups simulated
  std::uint64_t faults = 0;     // faults injected
  double ventilator_ns = 0;     // CPU time spent in the ventilator core (with `scale`)
};

// Runs one job under `o.seed` and checks the invariants (docs/ARCHITECTURE.md, "Simulation").
outcome run(const options& o);

} // namespace mtask::sim
