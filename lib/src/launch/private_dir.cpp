// mkdtemp and removal of the folder holding one mtask job's sockets.
#include "launch/private_dir.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace mtask {
namespace {

// Room left in sun_path (108 bytes with its NUL) for "/mtask-XXXXXX/ventilator".
constexpr std::size_t max_parent_length = 108 - sizeof("/mtask-XXXXXX/ventilator");

} // namespace

private_dir::private_dir() {
  std::string parent = "/tmp";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0' && std::strlen(t) <= max_parent_length) {
    parent = t;
  }
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  std::string tmpl = parent + "/mtask-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw error(fmt::format("cannot create a private folder in '{}': {}", parent, std::strerror(errno)));
  }
  path_ = buf.data();
}

private_dir::~private_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) log::warn("cannot remove '{}': {}", path_, ec.message());
}

std::string private_dir::endpoint(std::string_view name) const { return fmt::format("ipc://{}/{}", path_, name); }

void remove_private_dir(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

} // namespace mtask
