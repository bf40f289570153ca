// The private folder of one mtask job: where its ipc:// sockets live, reachable only by its user.
#pragma once

#include <string>
#include <string_view>

namespace mtask {

class private_dir {
 public:
  // Creates a folder with mode 0700 (mkdtemp) under $TMPDIR, or /tmp when TMPDIR is unset or so
  // long that a socket path in it would not fit an ipc:// address (108 bytes on Linux).
  // Throws: error "cannot create a private folder in 'DIR': REASON".
  private_dir();
  // Removes the folder and whatever is left in it (the socket of a role that was killed).
  ~private_dir();
  private_dir(const private_dir&) = delete;
  private_dir& operator=(const private_dir&) = delete;

  const std::string& path() const { return path_; }
  // Returns: "ipc://PATH/NAME".
  std::string endpoint(std::string_view name) const;

 private:
  std::string path_;
};

// Removes `path` and what is in it, quietly (a role whose mtask was killed tidies up: ZeroMQ
// leaves the socket files of named ipc:// endpoints behind).
void remove_private_dir(const std::string& path);

} // namespace mtask
