// The ssh command line and remote script of one mtask --ssh worker.
#include "launch/remote_worker.hpp"

#include "exec/replacement.hpp"
#include "launch/ssh_logins.hpp"

#include <fmt/format.h>

namespace mtask {
namespace {

// Run by sh on the remote host. $1: the byte count of the secret key on stdin (0: none); the
// rest: the worker's command line. The key goes into a folder only we can read, removed on every
// exit. The worker gets no stdin of ours; a subshell holds it instead (fd 3: a background list's
// own stdin would be /dev/null) and stops the worker when it ends: SIGTERM, then SIGKILL after
// kill_grace_s (a worker in the middle of a built-in task, which cannot be interrupted, would
// otherwise finish it first, and a 10-minute task outlive its job by 10 minutes). `wait` returns
// early when the script itself is signalled (sshd's SIGHUP, say): the trap passes that on. Once
// the worker runs, the script's own stderr is /dev/null: sh reports a job killed by a signal
// ("Terminated"), and written to an ssh session already gone that would be a SIGPIPE, ending the
// script before its EXIT trap removes the key (found by tests/e2e/test_ssh.py).
// One line: csh and tcsh, login shells on some clusters, refuse a quoted string across lines.
constexpr int kill_grace_s = 5;
std::string remote_script() {
  return fmt::format(
      "umask 077; d=$(mktemp -d \"${{TMPDIR:-/tmp}}/mtask-worker.XXXXXX\") || exit 1; trap 'rm -rf \"$d\"' EXIT; "
      "n=$1; shift; if [ \"$n\" -gt 0 ]; then head -c \"$n\" > \"$d/key_secret\" || exit 1; p=$1; shift; "
      "set -- \"$p\" --key \"$d/key_secret\" \"$@\"; fi; "
      "\"$@\" </dev/null & w=$!; trap 'kill -TERM $w 2>/dev/null' HUP INT TERM; exec 3<&0; "
      "( cat >/dev/null; kill -TERM $w; sleep {}; kill -KILL $w ) <&3 >/dev/null 2>&1 & c=$!; exec 2>/dev/null; "
      "while :; do wait $w; rc=$?; kill -0 $w 2>/dev/null || break; done; kill $c 2>/dev/null; exit $rc",
      kill_grace_s);
}

} // namespace

remote_worker_command plan_remote_worker(const std::vector<std::string>& ssh_command, const ssh_login& login,
                                         const std::vector<std::string>& worker_argv,
                                         const std::optional<std::string>& secret_certificate) {
  remote_worker_command cmd;
  cmd.argv = ssh_command;
  cmd.argv.insert(cmd.argv.end(), login.words.begin(), login.words.end() - 1);
  // No terminal (stdin carries a secret: a pty would echo it back), and never a password prompt
  // that would hang the job: a host that wants one fails at once, named on stderr. After the
  // login's own options: for -t/-T the last one given wins.
  for (const char* opt : {"-T", "-o", "BatchMode=yes"}) cmd.argv.emplace_back(opt);
  cmd.argv.push_back(login.words.back());
  // ssh joins its arguments into one line for the remote user's shell: quoted once for that
  // shell, the script and the worker's words arrive as sh's own arguments.
  const auto bytes = secret_certificate ? secret_certificate->size() : 0;
  std::string line = fmt::format("exec sh -c {} mtask-remote-worker {}", shell_quote(remote_script()), bytes);
  for (const auto& w : worker_argv) line.append(" ").append(shell_quote(w));
  cmd.argv.push_back(std::move(line));
  if (secret_certificate) cmd.stdin_data = *secret_certificate;
  return cmd;
}

} // namespace mtask
