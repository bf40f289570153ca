// Starting a command with its stdin, stdout and stderr on non-blocking pipes and a pidfd for its
// exit; shared by one-shot task processes and persistent ones.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace mtask {

// Returns: the full path of `command` found as execvp would find it, or empty when there is none.
std::string find_executable(const std::string& command);

struct piped_child {
  pid_t pid = -1;
  int pidfd = -1; // readable once the process has exited
  int in = -1, out = -1, err = -1;
  int start_errno = 0; // non-zero: it did not start, and no descriptor is open
};

// Starts argv[0] (searched in PATH) in its own process group (so signals reach everything it
// starts), with SIGPIPE at its default, on non-blocking close-on-exec pipes.
piped_child spawn_piped(const std::vector<std::string>& argv);

void close_fd(int& fd);

// Reads what `fd` has now (up to about 1 MiB a call, so a flood cannot keep the event loop from
// its sockets; poll reports the rest) into `sink`; with `keep_tail` > 0 keeps only about that many
// last bytes. At end of file or on error, closes `fd` (sets it to -1).
void drain_fd(int& fd, std::string& sink, std::size_t keep_tail = 0);

// As drain_fd, but no further than one byte past `limit` (a command flooding its stdout must cost
// its reader the limit, not the flood).
// Returns: true when `sink` holds more than `limit` bytes (and `fd` may still have more).
bool drain_fd_up_to(int& fd, std::string& sink, std::size_t limit);

} // namespace mtask
