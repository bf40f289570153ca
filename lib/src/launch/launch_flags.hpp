// mtask's command line: every role's own flags registered into one CLI11 app (by the roles' own
// registration functions) and handed to the role that owns them.
#pragma once

#include "input/arg_lists.hpp"
#include "mtask/sink.hpp"
#include "mtask/worker.hpp"
#include "ventilator/ventilator.hpp"

#include <vector>

namespace mtask {

// Workers beyond this machine: --listen, --ssh and what goes with them.
struct remote_options {
  std::string listen;                     // --listen ADDR[:PORT]; "" with --ssh: toward the first host
  std::string allow;                      // --allow: public keys of workers started by hand
  bool insecure = false;                  // --insecure: plaintext, no keys
  std::vector<std::string> ssh;           // --ssh, -S: comma-separated sshlogins
  std::vector<std::string> sshloginfiles; // --sshloginfile
  std::string ssh_command = "ssh";        // --ssh-command: the program and its options
  std::string remote_worker = "mtask-worker";
  std::string jobs;                      // -j as given ("" when not): each host reads it against its own cores
  std::vector<std::string> worker_flags; // the worker's flags as given, for the workers of other hosts

  [[nodiscard]] bool any() const { return !listen.empty() || !ssh.empty() || !sshloginfiles.empty(); }
};

struct launch_options {
  ventilator_options ventilator;
  worker_options worker;
  sink_options sink;
  std::vector<arg_group> arg_groups; // ::: and :::: after the command: read by launch_main
  remote_options remote;
};

// Parses mtask's argv into the three roles' options (endpoints not set yet: see launch_main);
// sets up logging from -v/-q.
// Returns: -1 to go on, or the exit code to return now (0 after --help/--version, 2 after a usage
//          error, having printed one line "mtask: error: MESSAGE (try --help)").
int parse_launch_flags(int argc, char** argv, launch_options& opts);

} // namespace mtask
