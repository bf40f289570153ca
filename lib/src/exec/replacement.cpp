// GNU parallel's replacement strings: parsing a command once, expanding it per task. Where parallel's
// Perl has a quirk (a '.' in Perl regexes stops at a newline; {-N} past the first column wraps), the
// quirk is kept on purpose so that the same command line prints the same bytes under both.
#include "exec/replacement.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

namespace mtask {
namespace {

// Perl's \s (ASCII): what parallel's --colsep trims from each column.
bool perl_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && perl_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && perl_space(s.back())) s.remove_suffix(1);
  return s;
}

// File::Basename's _strip_trailing_sep: s{(.)/*\z}{$1}s.
std::string_view strip_trailing_slashes(std::string_view s) {
  while (s.size() > 1 && s.back() == '/') s.remove_suffix(1);
  return s;
}

// File::Basename's fileparse (Unix), directory part only, with its trailing slashes stripped.
std::string_view parsed_directory(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return "."; // fileparse's "./", stripped
  return strip_trailing_slashes(path.substr(0, slash + 1));
}

// Column `position` (from 1; negative from the end) of `n`, as parallel finds it: it computes
// n+position for a negative one and hands that to Perl, whose own negative indexes count from the
// end once more, so {-4} over three columns is the last one.
// Returns: the index, or nothing past either end (the replacement is then empty).
std::optional<std::size_t> column_index(std::int64_t position, std::size_t n) {
  const auto count = static_cast<std::int64_t>(n);
  std::int64_t i = position > 0 ? position - 1 : count + position;
  if (i < 0) i += count;
  if (i < 0 || i >= count) return std::nullopt;
  return static_cast<std::size_t>(i);
}

bool shell_safe(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '+' || c == '/';
}

} // namespace

namespace detail {

// s:\.[^/.]*$:: — the last '.' starts the extension unless a '/' follows it. (Perl's $ may also
// match before a final newline, but [^/.]* takes that newline anyway.)
std::string_view no_extension(std::string_view path) {
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return path;
  return path.substr(0, dot);
}

// s:.*/:: — Perl's '.' stops at a newline, so for a multi-line task (-0, -N) this removes from the
// start of the first line holding a '/' to that line's last '/'.
void append_basename(std::string_view path, std::string& out) {
  const auto first = path.find('/');
  if (first == std::string_view::npos) {
    out.append(path);
    return;
  }
  const auto nl_before = first == 0 ? std::string_view::npos : path.rfind('\n', first - 1);
  const std::size_t line_start = nl_before == std::string_view::npos ? 0 : nl_before + 1;
  const auto line_end = std::min(path.find('\n', first), path.size());
  const auto last = path.rfind('/', line_end - 1);
  out.append(path.substr(0, line_start));
  out.append(path.substr(last + 1));
}

// File::Basename::dirname (Unix): the directory part without trailing slashes; for a path that
// ends in '/', the directory above it.
std::string_view dirname(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  const auto dir = strip_trailing_slashes(path.substr(0, slash + 1));
  if (slash + 1 < path.size()) return dir;
  return parsed_directory(dir);
}

// Perl's split(/RE/, $line, -1): a match must end past where the field started (so an empty match
// right there does not count, one a character on does), each match's groups are columns too, and
// once anything matched, what follows the last match is a column even when empty.
void split_columns(std::string_view line, const std::regex& re, std::vector<std::string_view>& columns,
                   bool trim_them) {
  columns.clear();
  if (line.empty()) {
    columns.emplace_back(); // parallel: an empty line is one empty column
    return;
  }
  const char* const begin = line.data();
  const char* const end = begin + line.size();
  const char* s = begin;
  bool matched = false;
  std::cmatch m;
  while (s < end) {
    const auto prev = s == begin ? std::regex_constants::match_default : std::regex_constants::match_prev_avail;
    const bool here = std::regex_search(
        s, end, m, re, prev | std::regex_constants::match_continuous | std::regex_constants::match_not_null);
    if (!here && !std::regex_search(s + 1, end, m, re, std::regex_constants::match_prev_avail)) break;
    columns.emplace_back(s, static_cast<std::size_t>(m[0].first - s));
    for (std::size_t g = 1; g < m.size(); ++g) {
      if (m[g].matched)
        columns.emplace_back(m[g].first, static_cast<std::size_t>(m[g].length()));
      else
        columns.emplace_back();
    }
    s = m[0].second;
    matched = true;
  }
  if (s < end || matched) columns.emplace_back(s, static_cast<std::size_t>(end - s));
  if (trim_them) {
    for (auto& c : columns) c = trim(c);
  }
}

} // namespace detail

command_template::command_template(std::vector<std::string> argv, std::optional<std::string> colsep)
    : argv_(std::move(argv)) {
  if (colsep) {
    // The unit separator joins the arguments of `:::` groups (input/arg_lists.hpp), which parallel
    // passes exactly as given: ' a ' stays ' a '.
    trim_ = !(*colsep == "\x1f" || *colsep == "\\x1f");
    try {
      colsep_.emplace(*colsep, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw usage_error(fmt::format("--colsep: '{}' is not a regular expression: {}", *colsep, e.what()));
    }
  }
  args_.reserve(argv_.size());
  for (const auto& a : argv_) {
    args_.push_back(parse_arg(a));
    has_replacements_ = has_replacements_ || !args_.back().literal;
  }
}

// Finds each replacement string: '{', an optional column number (-?digits, then white space, as
// parallel's positional form allows), one of the transforms, '}'. Anything else is literal text.
command_template::arg_template command_template::parse_arg(const std::string& arg) {
  static constexpr std::pair<std::string_view, transform> transforms[] = {
      {"}", transform::whole},     {".}", transform::no_extension},           {"/}", transform::basename},
      {"//}", transform::dirname}, {"/.}", transform::basename_no_extension}, {"#}", transform::seq},
      {"%}", transform::slot}};
  arg_template t;
  std::string literal;
  const std::string_view a(arg);
  std::size_t i = 0;
  while (i < a.size()) {
    if (a[i] != '{') {
      literal.push_back(a[i++]);
      continue;
    }
    std::size_t k = i + 1;
    segment f{.field = true};
    const std::size_t digits_from = k < a.size() && a[k] == '-' ? k + 1 : k;
    std::size_t digits_end = digits_from;
    while (digits_end < a.size() && a[digits_end] >= '0' && a[digits_end] <= '9') ++digits_end;
    if (digits_end > digits_from) {
      const std::string_view number = a.substr(k, digits_end - k);
      // Perl's truth: "0" is false, so {0} is {}; "00" and "-0" are true and name no column.
      if (number != "0") {
        f.positional = true;
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
        if (ec == std::errc::result_out_of_range)
          v = number.front() == '-' ? std::numeric_limits<std::int64_t>::min() / 2
                                    : std::numeric_limits<std::int64_t>::max() / 2;
        f.position = v;
      }
      k = digits_end;
      while (k < a.size() && perl_space(a[k])) ++k;
    } else if (digits_from != k) {
      // A lone '-' is no number.
      literal.push_back(a[i++]);
      continue;
    }
    bool found = false;
    for (const auto& [spelling, op] : transforms) {
      // {#} and {%} have no column form: parallel's {1#} is garbage (it reads "11" as the column).
      if (digits_end > digits_from && (op == transform::seq || op == transform::slot)) continue;
      if (a.substr(k).starts_with(spelling)) {
        f.op = op;
        k += spelling.size();
        found = true;
        break;
      }
    }
    if (!found) {
      literal.push_back(a[i++]);
      continue;
    }
    if (!literal.empty()) {
      t.plain_text = t.plain_text && std::all_of(literal.begin(), literal.end(), shell_safe);
      t.segments.push_back(segment{.text = std::exchange(literal, {})});
    }
    t.segments.push_back(std::move(f));
    t.literal = false;
    i = k;
  }
  if (!literal.empty() || t.segments.empty()) {
    t.plain_text = t.plain_text && std::all_of(literal.begin(), literal.end(), shell_safe);
    t.segments.push_back(segment{.text = std::move(literal)});
  }
  return t;
}

void command_template::split_columns(std::string_view task) {
  if (colsep_) {
    detail::split_columns(task, *colsep_, columns_, trim_);
  } else {
    columns_.assign(1, task);
  }
}

void command_template::apply(const segment& s, std::string_view column, const task_vars& vars, std::string& out) const {
  switch (s.op) {
    case transform::whole: out.append(column); break;
    case transform::no_extension: out.append(detail::no_extension(column)); break;
    case transform::basename: detail::append_basename(column, out); break;
    case transform::dirname: out.append(detail::dirname(column)); break;
    case transform::basename_no_extension: {
      if (column.find('\n') == std::string_view::npos) {
        const auto slash = column.rfind('/');
        out.append(detail::no_extension(slash == std::string_view::npos ? column : column.substr(slash + 1)));
      } else {
        std::string base;
        detail::append_basename(column, base);
        out.append(detail::no_extension(base));
      }
      break;
    }
    case transform::seq: fmt::format_to(std::back_inserter(out), "{}", vars.seq); break;
    case transform::slot: fmt::format_to(std::back_inserter(out), "{}", vars.slot); break;
  }
}

namespace {

// Builds the arguments themselves: values go straight into the word (the hot path).
class raw_words {
 public:
  explicit raw_words(std::vector<std::string>& out) : out_(out) {}
  // Starts the next argument, reusing a string `out` already holds.
  void begin_word() {
    if (used_ == out_.size()) out_.emplace_back();
    word_ = &out_[used_++];
    word_->clear();
  }
  void literal(std::string_view s) { word_->append(s); }
  std::string& value() { return *word_; }
  void value_done() {}
  void finish() { out_.resize(used_); }

 private:
  std::vector<std::string>& out_;
  std::size_t used_ = 0;
  std::string* word_ = nullptr;
};

// Builds --dry-run's line as parallel prints it: the command's own text as it is, each value
// quoted in place (x{.} over "a b" gives x'a b').
class quoted_line {
 public:
  explicit quoted_line(std::string& line) : line_(line) {}
  void begin_word() {
    if (words_++ > 0) line_.push_back(' ');
  }
  void literal(std::string_view s) { line_.append(s); }
  std::string& value() {
    value_.clear();
    return value_;
  }
  void value_done() { line_.append(shell_quote(value_)); }

 private:
  std::string& line_;
  std::string value_;
  std::size_t words_ = 0;
};

} // namespace

template <class Words>
void command_template::expand_arg(const arg_template& t, const task_vars& vars, Words& w) const {
  w.begin_word();
  for (const auto& s : t.segments) {
    if (!s.field) {
      w.literal(s.text);
    } else if (s.op == transform::seq || s.op == transform::slot) {
      apply(s, {}, vars, w.value());
      w.value_done();
    } else if (s.positional) {
      auto& v = w.value();
      if (auto i = column_index(s.position, columns_.size())) apply(s, columns_[*i], vars, v);
      w.value_done();
    } else {
      for (std::size_t c = 0; c < columns_.size(); ++c) {
        if (c > 0) w.begin_word();
        apply(s, columns_[c], vars, w.value());
        w.value_done();
      }
    }
  }
}

void command_template::expand(std::string_view task, const task_vars& vars, std::vector<std::string>& out) {
  split_columns(task);
  raw_words w(out);
  for (std::size_t a = 0; a < args_.size(); ++a) {
    if (args_[a].literal) {
      w.begin_word();
      w.literal(argv_[a]);
    } else {
      expand_arg(args_[a], vars, w);
    }
  }
  w.finish();
}

std::string command_template::dry_run_line(std::string_view task, const task_vars& vars) {
  split_columns(task);
  std::string line;
  quoted_line q(line);
  std::vector<std::string> words;
  for (std::size_t a = 0; a < args_.size(); ++a) {
    const auto& t = args_[a];
    if (t.literal || !t.plain_text) {
      // Text a shell would change: mtask passes it on unchanged (as parallel -q does), so the
      // whole word is quoted, as parallel -q --dry-run prints it.
      words.clear();
      raw_words r(words);
      if (t.literal) {
        r.begin_word();
        r.literal(argv_[a]);
      } else {
        expand_arg(t, vars, r);
      }
      r.finish();
      for (const auto& word : words) {
        q.begin_word();
        q.literal(shell_quote(word));
      }
    } else {
      expand_arg(t, vars, q);
    }
  }
  return line;
}

unsigned slot_numbers::take() {
  if (free_.empty()) return ++made_;
  const unsigned s = free_.front();
  free_.pop_front();
  return s;
}

void slot_numbers::give_back(unsigned slot) { free_.push_back(slot); }

bool has_replacement_string(const std::string& arg) { return command_template({arg}).has_replacements(); }

std::string shell_quote(std::string_view word) {
  if (word.empty()) return "''";
  if (std::all_of(word.begin(), word.end(), shell_safe)) return std::string(word);
  std::string q = "'";
  for (char c : word) {
    if (c == '\'')
      q.append(R"('"'"')");
    else
      q.push_back(c);
  }
  q.push_back('\'');
  // As parallel: no empty '' left at either end ("'" quotes as "'"'"'... trimmed to "'").
  if (q.starts_with("''")) q.erase(0, 2);
  if (q.ends_with("''") && q.size() >= 2) q.erase(q.size() - 2);
  return q;
}

} // namespace mtask
