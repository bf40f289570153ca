// ::: and :::: argument lists: taken off the command, read, and combined as parallel combines them.
#include "input/arg_lists.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace mtask {

std::vector<arg_group> take_arg_groups(std::vector<std::string>& words) {
  std::vector<arg_group> groups;
  std::size_t first = words.size();
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == ":::" || words[i] == "::::") {
      first = i;
      break;
    }
  }
  for (std::size_t i = first; i < words.size(); ++i) {
    if (words[i] == ":::" || words[i] == "::::") {
      groups.push_back(arg_group{.from_file = words[i] == "::::", .words = {}});
      continue;
    }
    groups.back().words.push_back(words[i]);
  }
  for (const auto& g : groups) {
    if (g.words.empty())
      throw usage_error(g.from_file ? ":::: needs a file after it" : "::: needs at least one argument after it");
  }
  words.resize(first);
  return groups;
}

namespace {

void check_argument(const std::string& a) {
  if (a.find(arg_separator) != std::string::npos) throw usage_error("argument lists cannot hold the byte 0x1f");
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  if (in.bad()) throw error(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  if (lines.empty()) throw usage_error(fmt::format(":::: '{}' is empty: no tasks", path));
  return lines;
}

} // namespace

std::vector<std::vector<std::string>> load_arg_groups(const std::vector<arg_group>& groups) {
  std::vector<std::vector<std::string>> lists;
  for (const auto& g : groups) {
    if (!g.from_file) {
      lists.push_back(g.words);
    } else {
      for (const auto& path : g.words) lists.push_back(read_lines(path));
    }
  }
  for (const auto& l : lists) {
    for (const auto& a : l) check_argument(a);
  }
  return lists;
}

arg_list_source::arg_list_source(std::vector<std::vector<std::string>> lists)
    : lists_(std::move(lists)), at_(lists_.size(), 0) {
  for ([[maybe_unused]] const auto& l : lists_) assert(!l.empty());
  done_ = lists_.empty();
}

std::optional<std::string> arg_list_source::next() {
  if (done_) return std::nullopt;
  std::string task;
  for (std::size_t g = 0; g < lists_.size(); ++g) {
    if (g > 0) task.push_back(arg_separator);
    task.append(lists_[g][at_[g]]);
  }
  // The last list turns fastest, so the first varies slowest, as in parallel.
  std::size_t g = lists_.size();
  while (g > 0) {
    --g;
    if (++at_[g] < lists_[g].size()) return task;
    at_[g] = 0;
  }
  done_ = true;
  return task;
}

std::string arg_lists_fingerprint(const std::vector<std::vector<std::string>>& lists) {
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ull;
    }
  };
  for (const auto& l : lists) {
    for (const auto& a : l) {
      mix(a);
      mix(std::string_view("\n", 1));
    }
    mix(std::string_view("\0", 1));
  }
  return fmt::format("args {} {:016x}", lists.size(), h);
}

} // namespace mtask
