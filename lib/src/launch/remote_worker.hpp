// How mtask --ssh starts one worker on another host: the ssh command line, and the short sh script
// it runs there. The host's secret key travels on ssh's stdin (encrypted, never on a command line
// that `ps` shows) into a private temporary folder that the script removes; stdin then stays open
// for the whole job, so its end (mtask finished, or killed: its ssh client dies with it) stops
// the worker at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

struct ssh_login;

struct remote_worker_command {
  std::vector<std::string> argv; // ssh and its arguments, to exec
  std::string stdin_data;        // written to ssh's stdin first: the secret certificate, or ""
};

// `ssh_command`: the ssh program and its options (--ssh-command, split into words).
// `worker_argv`: the worker's command line, program first, without --key (added here when
// `secret_certificate` is set: the text of the key file this host's worker uses).
remote_worker_command plan_remote_worker(const std::vector<std::string>& ssh_command, const ssh_login& login,
                                         const std::vector<std::string>& worker_argv,
                                         const std::optional<std::string>& secret_certificate);

} // namespace mtask
