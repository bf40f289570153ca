// The workers of an mtask job: the one on this machine, and with --listen or --ssh those of other
// hosts. Sets the roles' endpoints and keys for a job served over TCP, and says what to start.
#pragma once

#include "launch/launch_flags.hpp"
#include "launch/remote_worker.hpp"

#include <string>
#include <vector>

namespace mtask {

struct fleet_plan {
  bool serving = false;     // the roles bind TCP (--listen, --ssh); else ipc:// in the private folder
  bool local_worker = true; // a worker on this machine (with --ssh, only when ':' is listed)
  struct remote {
    std::string host;
    remote_worker_command command;
  };
  std::vector<remote> remotes; // a worker over ssh on each of these
  std::string join_line;       // --listen: the command line a worker started by hand joins with
};

// With --listen or --ssh: picks the address and ports, makes the job's keys under `private_path`,
// and fills in `opts`' endpoints and key flags for the three roles. Without: leaves them be.
// Throws: usage_error for flags that do not go together; error when an address, a port or a key
//         cannot be had.
fleet_plan plan_fleet(launch_options& opts, const std::string& private_path);

} // namespace mtask
