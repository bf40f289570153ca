// Parsing GNU parallel's sshlogin syntax.
#include "launch/ssh_logins.hpp"

#include "common/slots.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mtask {
namespace {

// ssh's options that take a value (ssh(1), OpenSSH 9.2): "-p 2222", "-i KEY", "-o OPT".
constexpr std::string_view ssh_options_with_argument = "BbcDEeFIiJLlmOoPpQRSWw";

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

} // namespace

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string ssh_login::host() const {
  if (words.empty()) return {};
  const auto& last = words.back();
  const auto at = last.rfind('@');
  return at == std::string::npos ? last : last.substr(at + 1);
}

std::string ssh_login::text() const {
  std::string joined;
  for (const auto& w : words) joined.append(joined.empty() ? "" : " ").append(w);
  return slots ? *slots + "/" + joined : joined;
}

ssh_login parse_ssh_login(const std::string& text) {
  ssh_login login;
  std::string rest = trim(text);
  // "N/login": only digits before the slash (a path in an ssh option, "-i /k", has other text).
  if (const auto slash = rest.find('/'); slash != std::string::npos && slash > 0) {
    const auto head = rest.substr(0, slash);
    if (std::all_of(head.begin(), head.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
      if (head.size() > 6 || std::stoul(head) == 0)
        throw usage_error(fmt::format("sshlogin '{}': the slots before '/' must be 1 to 999999", text));
      login.slots = head;
      rest = trim(rest.substr(slash + 1));
    }
  }
  login.words = split_words(rest);
  if (login.words.empty()) throw usage_error(fmt::format("sshlogin '{}' names no host", text));
  if (login.words.back().front() == '-' || login.host().empty())
    throw usage_error(fmt::format("sshlogin '{}' ends with '{}', not a host", text, login.words.back()));
  if (login.words.size() > 1 && login.words.back() == ":")
    throw usage_error(fmt::format("sshlogin '{}': ':' (this machine) takes no ssh options", text));
  // Every word before the host must be an ssh option or its value: a stray word would become
  // ssh's destination, and the key made for the last word would go to that host instead.
  const auto last = login.words.size() - 1;
  for (std::size_t i = 0; i < last; ++i) {
    const auto& w = login.words[i];
    if (w.size() < 2 || w.front() != '-')
      throw usage_error(fmt::format(
          "sshlogin '{}': '{}' is not an ssh option (the host is the last word; an option's value cannot hold a "
          "comma: put such options in --ssh-command or ~/.ssh/config)",
          text, w));
    if (w.size() == 2 && ssh_options_with_argument.find(w[1]) != std::string_view::npos && ++i == last)
      throw usage_error(fmt::format("sshlogin '{}': '{}' needs a value before the host", text, w));
  }
  if (login.slots) (void)parse_slots(*login.slots, 1); // at most max_slots, as -j
  return login;
}

std::vector<ssh_login> collect_ssh_logins(const std::vector<std::string>& lists,
                                          const std::vector<std::string>& files) {
  std::vector<ssh_login> logins;
  for (const auto& list : lists) {
    std::string::size_type start = 0;
    while (start <= list.size()) {
      auto end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      logins.push_back(parse_ssh_login(list.substr(start, end - start)));
      start = end + 1;
    }
  }
  for (const auto& path : files) {
    std::ifstream in(path);
    if (!in) throw error(fmt::format("cannot read --sshloginfile '{}': {}", path, std::strerror(errno)));
    for (std::string line; std::getline(in, line);) {
      line = trim(line.substr(0, line.find('#')));
      if (!line.empty()) logins.push_back(parse_ssh_login(line));
    }
  }
  return logins;
}

} // namespace mtask
