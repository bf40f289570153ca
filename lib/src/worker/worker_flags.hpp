// mtask-worker's own flags (-j, --builtin, --persistent, the command after --...), registered by
// one function so that mtask-worker, C++ workers and mtask declare them once.
#pragma once

#include "mtask/worker.hpp"

#include <string>

namespace CLI {
class App;
class Option;
} // namespace CLI

namespace mtask {

class worker_flags {
 public:
  struct parts {
    bool once = true;    // --once (mtask always sets it itself)
    bool command = true; // --task-timeout-ms, --max-output-bytes, --persistent, --colsep, --dry-run,
                         // --builtin and CMD (a C++ worker brings its own handler)
  };

  // Adds -j, --once, --prefetch and, as `which` says, the command flags to `app`, writing into
  // `opts` (which must outlive the parse).
  void add(CLI::App& app, worker_options& opts, parts which);

  // After parsing: stores -j's slot count, --max-output-bytes, --persistent and the --builtin
  // handler in the options given to add() (only -j when the command flags were not added).
  // Throws: usage_error for a bad -j, a bad size, an unknown built-in or framing, both or neither
  //         of --builtin and a command, --persistent without a command or with a replacement
  //         string in it, --colsep that is no regular expression or with a command that has no
  //         replacement string, --colsep or --dry-run without a command.
  void finish() const;

 private:
  worker_options* opts_ = nullptr;
  bool command_ = true;
  std::string jobs_; // -j as given: N, 0, N%, +N, -N
  std::string builtin_;
  std::string persistent_; // --persistent's framing: "line", "framed" or (not given) empty
  std::string max_output_;
  CLI::Option* colsep_ = nullptr;
  std::string colsep_text_;
};

} // namespace mtask
