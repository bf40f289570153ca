// Unit tests for GNU parallel's replacement strings (lib/src/exec/replacement.cpp). Every expected
// value below was printed by GNU parallel 20221122 (`parallel -q -k --will-cite printf '<%s>' ...`,
// with -0 for the multi-line tasks); tests/e2e/test_parallel_compat.py runs many of them against
// parallel itself.
#include "exec/replacement.hpp"

#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <regex>
#include <string>
#include <vector>

using mtask::command_template;
using mtask::task_vars;
using mtask::usage_error;

namespace {

using words = std::vector<std::string>;

words expand(const words& command, std::string_view task, std::optional<std::string> colsep = std::nullopt,
             task_vars vars = {}) {
  command_template t(command, std::move(colsep));
  words out;
  t.expand(task, vars, out);
  return out;
}

words columns(std::string_view line, const std::string& re) {
  std::vector<std::string_view> cols;
  mtask::detail::split_columns(line, std::regex(re), cols);
  return words(cols.begin(), cols.end());
}

// A path and what parallel makes of it: {.}, {/}, {//}, {/.}.
struct path_forms {
  std::string path, no_extension, basename, dirname, basename_no_extension;
};

} // namespace

TEST_CASE("a command with no replacement string has none and keeps its words") {
  command_template t({"wc", "-l", "{a,b}", "[x]", "{x}", "{-}", "{ 1}", "{+1}", "{"});
  CHECK_FALSE(t.has_replacements());
  CHECK(t.argv() == words{"wc", "-l", "{a,b}", "[x]", "{x}", "{-}", "{ 1}", "{+1}", "{"});
}

TEST_CASE("{} is the whole task, anywhere in an argument and as often as it appears") {
  CHECK(command_template({"echo", "{}"}).has_replacements());
  CHECK(expand({"echo", "x{}y", "{}{}", "{{}}"}, "a b") == words{"echo", "xa by", "a ba b", "{a b}"});
  CHECK(expand({"{}", "-n"}, "cmd") == words{"cmd", "-n"});
}

TEST_CASE("path forms cut as parallel's Perl does: the last dot unless a slash follows, dirname, line by line") {
  const std::vector<path_forms> rows{
      // several dots; a dot in a directory only; no directory ({//} is ".")
      {"a.b.c", "a.b", "a.b.c", ".", "a.b"},
      {"dir.x/file", "dir.x/file", "file", "dir.x", "file"},
      {"file", "file", "file", ".", "file"},
      {"/abs/f.txt", "/abs/f", "f.txt", "/abs", "f"},
      {"../up.tar.gz", "../up.tar", "up.tar.gz", "..", "up.tar"},
      {"./x.y", "./x", "x.y", ".", "x"},
      {"a b.c", "a b", "a b.c", ".", "a b"},
      {"x.", "x", "x.", ".", "x"},
      // hidden files: the leading dot starts an extension
      {".hidden", "", ".hidden", ".", ""},
      {"dir/.hidden", "dir/", ".hidden", "dir", ""},
      {"d/.e.f", "d/.e", ".e.f", "d", ".e"},
      {"a/.b", "a/", ".b", "a", ""},
      {".", "", ".", ".", ""},
      {"..", ".", "..", ".", "."},
      // trailing and doubled slashes, the root, nothing
      {"dir/", "dir/", "", ".", ""},
      {"dir/sub/", "dir/sub/", "", "dir", ""},
      {"a/b.c/", "a/b.c/", "", "a", ""},
      {"a.b/", "a.b/", "", ".", ""},
      {"a//", "a//", "", ".", ""},
      {"a/b//", "a/b//", "", "a", ""},
      {"//a", "//a", "a", "/", "a"},
      {"///a", "///a", "a", "/", "a"},
      {"/", "/", "", "/", ""},
      {"//", "//", "", "/", ""},
      {"", "", "", ".", ""},
      // multi-line tasks (-0, -N): Perl's '.' stops at a newline, so {/} cuts within one line
      {"x\na/b\nc/d.e", "x\na/b\nc/d", "x\nb\nc/d.e", "x\na/b\nc", "x\nb\nc/d"},
      {"nodir\nline.two", "nodir\nline", "nodir\nline.two", ".", "nodir\nline"},
      {"a.b\n", "a", "a.b\n", ".", "a"},
      {"p/q\n", "p/q\n", "q\n", "p", "q\n"},
      {"a/b\n/c", "a/b\n/c", "b\n/c", "a/b\n", "b\n/c"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.path);
    CHECK(expand({"{.}", "{/}", "{//}", "{/.}"}, r.path) ==
          words{r.no_extension, r.basename, r.dirname, r.basename_no_extension});
  }
}

TEST_CASE("{#} is the sequence number and {%} the slot, whatever the columns") {
  CHECK(expand({"{#}", "{%}", "n{#}s{%}"}, "t", std::nullopt, {.seq = 42, .slot = 3}) == words{"42", "3", "n42s3"});
  CHECK(expand({"{#}"}, "a,b,c", ",", {.seq = 7, .slot = 1}) == words{"7"});
}

TEST_CASE("without --colsep the task is the only column: {1} is the task and {2} empty") {
  CHECK(expand({"{1}", "{2}", "{-1}", "{1.}", "{1/}", "{-2}", "{-3}"}, "d/a.b") ==
        words{"d/a.b", "", "d/a.b", "d/a", "a.b", "d/a.b", ""});
}

TEST_CASE("--colsep makes {N} the columns, trimmed, empty past the end") {
  CHECK(expand({"{1}", "{2}", "{3}", "{4}"}, "a,b,c", ",") == words{"a", "b", "c", ""});
  CHECK(expand({"{1}", "{2}", "{3}"}, " x , y.z ,w", ",") == words{"x", "y.z", "w"});
  CHECK(expand({"<{1}>", "<{2}>", "<{3}>"}, "a,,c", ",") == words{"<a>", "<>", "<c>"});
  CHECK(expand({"{1}", "{2}"}, "one", ",") == words{"one", ""});
  CHECK(expand({"{1}", "{2}"}, "", ",") == words{"", ""});
  CHECK(expand({"{1}{2}", "X{1}Y{2}Z"}, "a,b", ",") == words{"ab", "XaYbZ"});
}

TEST_CASE("--colsep numbers from the end with {-N}, wrapping past the first column as parallel does") {
  // parallel hands n+N to Perl, whose negative indexes count from the end again.
  const std::string task = "a.x, b/c.y ,d";
  CHECK(expand({"{-1}", "{-2}", "{-3}", "{-4}", "{-5}", "{-6}", "{-7}"}, task, ",") ==
        words{"d", "b/c.y", "a.x", "d", "b/c.y", "a.x", ""});
}

TEST_CASE("--colsep combines columns with the path forms") {
  CHECK(expand({"{1.}", "{2/}", "{1//}", "{2/.}", "{-1.}", "{2//}"}, "p/q.r,s/t/,u.v.w", ",") ==
        words{"p/q", "", "p", "", "u.v", "s"});
  CHECK(expand({"{1/.}", "{-1//}", "{-1/}"}, "a.x, b/c.y ,d", ",") == words{"a", ".", "d"});
}

TEST_CASE("--colsep makes {} every column, each its own argument, as parallel does") {
  CHECK(expand({"{}"}, "a.x, b/c.y ,d", ",") == words{"a.x", "b/c.y", "d"});
  CHECK(expand({"X{}Y"}, "a.x, b/c.y ,d", ",") == words{"Xa.x", "b/c.y", "dY"});
  CHECK(expand({"{.}", "{/}"}, "a.x, b/c.y ,d", ",") == words{"a", "b/c", "d", "a.x", "c.y", "d"});
  CHECK(expand({"{}{}"}, "a,b", ",") == words{"a", "ba", "b"});
}

TEST_CASE("column numbers follow parallel's spelling: {0} is {}, {01} is {1}, {1 } is {1}, {00} is empty") {
  CHECK(expand({"{0}"}, "a,b", ",") == words{"a", "b"});
  CHECK(expand({"{01}", "{1 }", "{2 .}", "{00}", "{-0}"}, "a,b.c", ",") == words{"a", "a", "b", "", ""});
  // No column form for {#} and {%}: parallel reads {1#} as column 11.
  CHECK_FALSE(command_template({"{1#}", "{2%}"}).has_replacements());
}

TEST_CASE("a column number beyond 64 bits names no column (parallel's Perl overflows into some column)") {
  CHECK(expand({"{99999999999999999999999}", "{-99999999999999999999999}"}, "a,b", ",") == words{"", ""});
}

TEST_CASE("--colsep splits as Perl's split with a limit of -1") {
  CHECK(columns("a,b,c", ",") == words{"a", "b", "c"});
  CHECK(columns(",a", ",") == words{"", "a"});
  CHECK(columns("a,", ",") == words{"a", ""});
  CHECK(columns("a,,", ",") == words{"a", "", ""});
  CHECK(columns("abc", ",") == words{"abc"});
  CHECK(columns("", ",") == words{""});
  CHECK(columns("a\tb  c", "\\s+") == words{"a", "b", "c"});
  CHECK(columns(" a b ", "\\s+") == words{"", "a", "b", ""});
  CHECK(columns(" a b ", " ") == words{"", "a", "b", ""}); // a regex: no awk-style special case
}

TEST_CASE("--colsep never splits at an empty match where a field starts, but does one character on") {
  CHECK(columns("a,b", ",*") == words{"a", "b", ""});
  CHECK(columns(",a", ",*") == words{"", "a", ""});
  CHECK(columns("abc", "") == words{"a", "b", "c", ""});
}

TEST_CASE("--colsep keeps what a capture group matched as a column") {
  CHECK(columns("a,b", "(,)") == words{"a", ",", "b"});
  CHECK(columns("a;b,c", "(,)|(;)") == words{"a", "", ";", "b", ",", "", "c"});
}

TEST_CASE("--colsep that is not a regular expression is a usage error naming it") {
  std::string why;
  try {
    std::regex bad("a(b");
  } catch (const std::regex_error& e) {
    why = e.what();
  }
  REQUIRE_FALSE(why.empty());
  CHECK_THROWS_WITH_AS(command_template({"echo", "{1}"}, "a(b"),
                       ("--colsep: 'a(b' is not a regular expression: " + why).c_str(), usage_error);
}

TEST_CASE("expand reuses the argument list it is given and trims it to the new command") {
  command_template t({"echo", "{}"}, ",");
  words out{"old", "words", "and", "more", "than", "needed"};
  t.expand("a,b", {}, out);
  CHECK(out == words{"echo", "a", "b"});
  t.expand("c", {}, out);
  CHECK(out == words{"echo", "c"});
}

TEST_CASE("has_replacement_string tells a command name to look up from one a task will give") {
  CHECK(mtask::has_replacement_string("{}"));
  CHECK(mtask::has_replacement_string("bin/{/.}.sh"));
  CHECK_FALSE(mtask::has_replacement_string("echo"));
  CHECK_FALSE(mtask::has_replacement_string("{a,b}"));
}

TEST_CASE("slot numbers are made as needed and reused freed-first, as parallel's {%}") {
  mtask::slot_numbers s;
  CHECK(s.take() == 1);
  CHECK(s.take() == 2);
  s.give_back(1);
  CHECK(s.take() == 1);
  CHECK(s.take() == 3);
  s.give_back(3);
  s.give_back(2);
  CHECK(s.take() == 3);
  CHECK(s.take() == 2);
}

TEST_CASE("shell_quote quotes as parallel --dry-run does") {
  CHECK(mtask::shell_quote("plain-word_1.2+x/y") == "plain-word_1.2+x/y");
  CHECK(mtask::shell_quote("") == "''");
  CHECK(mtask::shell_quote("a b") == "'a b'");
  CHECK(mtask::shell_quote("a$b") == "'a$b'");
  CHECK(mtask::shell_quote("x'y") == R"('x'"'"'y')");
  CHECK(mtask::shell_quote("it''s") == R"('it'"'"''"'"'s')");
  CHECK(mtask::shell_quote("'") == R"("'")");
  CHECK(mtask::shell_quote("[x]") == "'[x]'");
}

TEST_CASE("dry_run_line quotes each value in place, as parallel --dry-run does") {
  command_template t({"echo", "{}", "{#}", "x{.}", "{2//}/{1/}", "-n"}, ",");
  CHECK(t.dry_run_line("a b,c/", {.seq = 3}) == "echo 'a b' c/ 3 x'a b' c/ ./'a b' -n");
  // A column past the end is an empty argument, so it shows as '' (parallel without -q splices in
  // nothing, and its shell then drops the argument).
  CHECK(t.dry_run_line("it's", {.seq = 1}) == R"(echo 'it'"'"'s' 1 x'it'"'"'s' ''/'it'"'"'s' -n)");
}

TEST_CASE("dry_run_line quotes a whole word whose own text a shell would change, as parallel -q does") {
  command_template t({"printf", "%s\\n", "<{}>", "[x]", "--out={}"});
  CHECK(t.dry_run_line("a b", {}) == R"(printf '%s\n' '<a b>' '[x]' '--out=a b')");
}

TEST_CASE("dry_run_line of a command without replacement strings is the command, quoted") {
  command_template t({"wc", "-l", "a b"});
  CHECK(t.dry_run_line("task", {}) == "wc -l 'a b'");
}
