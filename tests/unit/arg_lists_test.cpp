// Unit tests for ::: and :::: argument lists (lib/src/input/arg_lists.cpp): taking the groups off a
// command, reading files, and the cross product in GNU parallel's order (first group slowest).
#include "input/arg_lists.hpp"
#include "exec/replacement.hpp"
#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using mtask::arg_list_source;
using mtask::load_arg_groups;
using mtask::take_arg_groups;

namespace {

using words = std::vector<std::string>;

words all(std::vector<words> lists) {
  arg_list_source s(std::move(lists));
  CHECK(s.fd() == -1);
  words out;
  while (!s.exhausted()) {
    auto t = s.next();
    REQUIRE(t.has_value());
    out.push_back(*t);
  }
  CHECK_FALSE(s.next().has_value());
  return out;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = std::string(P_tmpdir) + "/mtask-arg-lists-test-" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

} // namespace

TEST_CASE("arg lists: the groups are taken off the end of the command") {
  words cmd{"echo", "{1}", ":::", "a", "b", "::::", "f1", "f2", ":::", "1"};
  const auto groups = take_arg_groups(cmd);
  CHECK(cmd == words{"echo", "{1}"});
  REQUIRE(groups.size() == 3);
  CHECK_FALSE(groups[0].from_file);
  CHECK(groups[0].words == words{"a", "b"});
  CHECK(groups[1].from_file);
  CHECK(groups[1].words == words{"f1", "f2"});
  CHECK(groups[2].words == words{"1"});
}

TEST_CASE("arg lists: a command without ::: keeps its words and has no groups") {
  words cmd{"echo", "::", "a"};
  CHECK(take_arg_groups(cmd).empty());
  CHECK(cmd.size() == 3);
}

TEST_CASE("arg lists: ::: or :::: with nothing after it is a usage error") {
  words a{"echo", ":::"};
  CHECK_THROWS_WITH_AS(take_arg_groups(a), "::: needs at least one argument after it", mtask::usage_error);
  words b{"echo", ":::", "a", "::::"};
  CHECK_THROWS_WITH_AS(take_arg_groups(b), ":::: needs a file after it", mtask::usage_error);
}

TEST_CASE("arg lists: one group gives one task per argument, exactly as given") {
  CHECK(all({{"a", " b ", ""}}) == words{"a", " b ", ""});
}

TEST_CASE("arg lists: several groups combine with the first varying slowest") {
  const std::string s(1, mtask::arg_separator);
  CHECK(all({{"a", "b"}, {"1", "2", "3"}}) ==
        words{"a" + s + "1", "a" + s + "2", "a" + s + "3", "b" + s + "1", "b" + s + "2", "b" + s + "3"});
  CHECK(all({{"x"}, {"y"}, {"1", "2"}}) == words{"x" + s + "y" + s + "1", "x" + s + "y" + s + "2"});
}

TEST_CASE("arg lists: a :::: file gives one argument per line, one group per file") {
  const auto f1 = temp_file("f1", "x\ny z\n");
  const auto f2 = temp_file("f2", "1\n\n2");
  words cmd{":::", "a", "::::", f1, f2};
  const auto lists = load_arg_groups(take_arg_groups(cmd));
  REQUIRE(lists.size() == 3);
  CHECK(lists[0] == words{"a"});
  CHECK(lists[1] == words{"x", "y z"});
  CHECK(lists[2] == words{"1", "", "2"});
  std::remove(f1.c_str());
  std::remove(f2.c_str());
}

TEST_CASE("arg lists: a missing or empty :::: file and the separator byte are refused") {
  words missing{"::::", "/nonexistent/mtask-arg-lists"};
  CHECK_THROWS_WITH_AS(load_arg_groups(take_arg_groups(missing)),
                       "cannot open '/nonexistent/mtask-arg-lists': No such file or directory", mtask::error);
  const auto empty = temp_file("empty", "");
  words e{"::::", empty};
  CHECK_THROWS_WITH_AS(load_arg_groups(take_arg_groups(e)), (":::: '" + empty + "' is empty: no tasks").c_str(),
                       mtask::usage_error);
  std::remove(empty.c_str());
  words sep{":::", std::string("a\x1f"
                               "b")};
  CHECK_THROWS_WITH_AS(load_arg_groups(take_arg_groups(sep)), "argument lists cannot hold the byte 0x1f",
                       mtask::usage_error);
}

TEST_CASE("arg lists: the fingerprint changes with the arguments and their grouping") {
  using mtask::arg_lists_fingerprint;
  CHECK(arg_lists_fingerprint({{"a", "b"}}) == arg_lists_fingerprint({{"a", "b"}}));
  CHECK(arg_lists_fingerprint({{"a", "b"}}) != arg_lists_fingerprint({{"a"}, {"b"}}));
  CHECK(arg_lists_fingerprint({{"ab"}}) != arg_lists_fingerprint({{"a", "b"}}));
  CHECK(arg_lists_fingerprint({{"a"}}).starts_with("args 1 "));
}

TEST_CASE("arg lists: a task of several groups expands into {1} {2} and {} exactly, untrimmed") {
  mtask::command_template t({"cmd", "{2}", "{1}", "X{}Y"}, std::string(1, mtask::arg_separator));
  words out;
  t.expand(std::string(" a ") + mtask::arg_separator, {}, out);
  CHECK(out == words{"cmd", "", " a ", "X a ", "Y"});
  mtask::command_template spelled({"{1}"}, std::string("\\x1f"));
  spelled.expand(std::string(" b ") + mtask::arg_separator + "c", {}, out);
  CHECK(out == words{" b "});
}
