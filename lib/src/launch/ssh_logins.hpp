// Where mtask --ssh starts workers: GNU parallel's sshlogin syntax, "[N/][ssh options] [user@]host"
// or ":" for this machine, from the command line or an --sshloginfile. Pure text: no ssh here.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mtask {

struct ssh_login {
  std::vector<std::string> words;   // what ssh gets before the command: "-p", "2222", "user@host"
  std::optional<std::string> slots; // "N/": -j for this host; none: the -j given to mtask, if any

  // Whether this is ":", this machine: its worker is started locally, not over ssh.
  [[nodiscard]] bool local() const { return words.size() == 1 && words.front() == ":"; }
  // Returns: the host, without user@: the last word (what logs and the worker's key are named by).
  [[nodiscard]] std::string host() const;
  // Returns: the login as given, for messages: "2/user@host".
  [[nodiscard]] std::string text() const;
};

// Returns: `text`'s words, split at spaces and tabs, as ssh options (in a login and --ssh-command) are.
std::vector<std::string> split_words(const std::string& text);

// Parses one sshlogin, "[N/]LOGIN" with LOGIN "[ssh options] [user@]host" or ":".
// Throws: usage_error for an empty login, a bad slot count or a host that starts with '-'.
ssh_login parse_ssh_login(const std::string& text);

// Returns: the logins of --ssh (comma-separated lists, repeatable) and of each --sshloginfile
// (one a line; blank lines and '#' comments skipped), in order, duplicates kept (parallel runs a
// host listed twice twice).
// Throws: usage_error for a bad login; error when a file cannot be read.
std::vector<ssh_login> collect_ssh_logins(const std::vector<std::string>& lists, const std::vector<std::string>& files);

} // namespace mtask
