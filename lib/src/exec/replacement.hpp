// GNU parallel's replacement strings in a worker's command ({}, {.}, {/}, {//}, {/.}, {#}, {%}, and
// with --colsep {1}, {-1}, {2/.}...): the command is parsed once at start, then expanded per task.
// Pure logic, checked case by case against GNU parallel 20221122 (tests/e2e/test_parallel_compat.py).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

// What a task's replacement strings draw on besides the task itself.
struct task_vars {
  std::uint64_t seq = 1; // {#}: the task's number counted from 1 (its id + 1)
  unsigned slot = 1;     // {%}: the slot it runs in, 1..-j
};

class command_template {
 public:
  // Parses `argv` once. With `colsep`, each task is cut into columns by that regular expression
  // (ECMAScript) and each column is trimmed of white space, as parallel --colsep does; except with
  // the byte 0x1f (or its spelling \x1f), which joins the arguments of ::: groups, kept exact.
  // Throws: usage_error "--colsep: ..." when `colsep` is not a valid regular expression.
  explicit command_template(std::vector<std::string> argv, std::optional<std::string> colsep = std::nullopt);

  // True when some argument holds a replacement string: tasks then become arguments (expand());
  // otherwise a task goes to the command's stdin and argv() runs as it is.
  [[nodiscard]] bool has_replacements() const { return has_replacements_; }
  // The command as given.
  [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }

  // Replaces the contents of `out` with the command for `task`, reusing its strings' storage.
  // A replacement string that stands for every column ({}, {.}... with --colsep) puts each column
  // in an argument of its own, as parallel does (X{}Y over "a,b" gives "Xa" "bY").
  void expand(std::string_view task, const task_vars& vars, std::vector<std::string>& out);

  // Returns: the command for `task` as one line for a shell, as parallel --dry-run prints it (each
  // value quoted in place: x'a b'); an argument whose own text a shell would change is quoted
  // whole instead, as parallel -q --dry-run prints it, since mtask runs it without a shell.
  [[nodiscard]] std::string dry_run_line(std::string_view task, const task_vars& vars);

 private:
  enum class transform : std::uint8_t { whole, no_extension, basename, dirname, basename_no_extension, seq, slot };
  struct segment {
    std::string text; // literal text, when !field
    bool field = false;
    transform op = transform::whole;
    bool positional = false;   // {N...}: one column; otherwise every column in turn
    std::int64_t position = 0; // N as written: from 1, or negative from the end
  };
  struct arg_template {
    std::vector<segment> segments;
    bool literal = true;    // no replacement string: copied as it is
    bool plain_text = true; // its own text needs no quoting for a shell
  };

  static arg_template parse_arg(const std::string& arg);
  void split_columns(std::string_view task);
  void apply(const segment& s, std::string_view column, const task_vars& vars, std::string& out) const;
  // Expands one argument into `w` (a builder of words: raw for running, quoted for --dry-run).
  template <class Words>
  void expand_arg(const arg_template& t, const task_vars& vars, Words& w) const;

  std::vector<std::string> argv_;
  std::vector<arg_template> args_;
  bool has_replacements_ = false;
  std::optional<std::regex> colsep_;
  bool trim_ = true;                      // false for the byte 0x1f that joins ::: arguments: they are exact
  std::vector<std::string_view> columns_; // the task's columns, scratch reused per task
};

// {%}'s slot numbers, handed out as parallel does: a task takes the number freed longest ago, and a
// new number (1, 2, ...) is made only when none is free, so -j N uses 1..N.
class slot_numbers {
 public:
  [[nodiscard]] unsigned take();
  void give_back(unsigned slot);

 private:
  std::deque<unsigned> free_;
  unsigned made_ = 0;
};

// Returns: whether `arg` holds a replacement string (so that a command name such as {} is not
// looked up in PATH before a task gives it a value).
[[nodiscard]] bool has_replacement_string(const std::string& arg);

// GNU parallel's path transforms on one string, exactly as its Perl does them (tested against it):
// {.} removes from the last '.' on when no '/' follows it ("a.b.c" -> "a.b", "dir.x/f" unchanged,
// ".hidden" -> ""); {/} removes up to the last '/'; {//} is Perl's File::Basename::dirname ("file"
// -> ".", "dir/" -> ".", "/" -> "/").
namespace detail {
std::string_view no_extension(std::string_view path);
void append_basename(std::string_view path, std::string& out);
std::string_view dirname(std::string_view path);
// parallel --colsep's columns: Perl's split(/RE/, line, -1) (a capture group's text is a column
// too), an empty line being one empty column, then each column trimmed of white space (unless
// `trim_them` is false).
void split_columns(std::string_view line, const std::regex& re, std::vector<std::string_view>& columns,
                   bool trim_them = true);
} // namespace detail

// Returns: `word` quoted for a POSIX shell as GNU parallel quotes it (left alone when made only of
// letters, digits and -_.+/).
std::string shell_quote(std::string_view word);

} // namespace mtask
