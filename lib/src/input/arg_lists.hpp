// Argument lists on the command line, as GNU parallel takes them: `::: a b c` (the words) and
// `:::: FILE` (the lines of FILE) are groups, and the tasks are their cross product in parallel's
// order (the first group varies slowest). A task of several groups joins its arguments with
// arg_separator, which the worker's --colsep then cuts into {1}, {2}...
#pragma once

#include "input/input_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mtask {

// The ASCII unit separator: between the arguments of one task of several groups. An argument
// cannot hold it (a usage error), and a --colsep of exactly this byte keeps columns untrimmed.
inline constexpr char arg_separator = '\x1f';

struct arg_group {
  bool from_file = false; // `::::`: `words` are file names, one group per file
  std::vector<std::string> words;
};

// Takes the argument lists off the end of `words` (a command, or a program's arguments): from the
// first word that is exactly ":::" or "::::" on. `::: a b` is one group of words; `:::: f1 f2`
// one group per file (as parallel's). `words` keeps what came before.
// Returns: the groups, in order; none when no ":::" or "::::" is there.
// Throws: usage_error "::: needs at least one argument after it" (also for ::::, "a file").
std::vector<arg_group> take_arg_groups(std::vector<std::string>& words);

// Reads the `::::` files (each line an argument, as parallel: the last line's missing newline
// does not matter, an empty line is an empty argument).
// Returns: one list of arguments per group (a `::::` group of two files counts as two).
// Throws: error "cannot open 'FILE': REASON" for a file that cannot be read; usage_error
//         "argument lists cannot hold the byte 0x1f" when one does; usage_error
//         "'::::' FILE is empty: no tasks" when a file has no line.
std::vector<std::vector<std::string>> load_arg_groups(const std::vector<arg_group>& groups);

// The tasks of argument lists, generated one at a time: memory is the lists, not their product.
class arg_list_source final : public task_source {
 public:
  // `lists` must each hold at least one argument (assert).
  explicit arg_list_source(std::vector<std::vector<std::string>> lists);

  int fd() override { return -1; }
  void read_chunk() override {}
  // Returns: the next combination: one argument per list, joined by arg_separator.
  std::optional<std::string> next() override;
  bool exhausted() const override { return done_; }
  std::string terminator() const override { return "\n"; }

 private:
  std::vector<std::vector<std::string>> lists_;
  std::vector<std::size_t> at_; // the odometer: which argument of each list comes next
  bool done_ = false;
};

// Returns: the fingerprint of a job whose input is these lists ("args N HEX": how many lists and
//          the FNV-1a hash of their contents), so that a resumed job proves it has the same tasks.
std::string arg_lists_fingerprint(const std::vector<std::vector<std::string>>& lists);

} // namespace mtask
