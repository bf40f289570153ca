// CURVE certificate files in ZeroMQ's text format (ZPL, rfc.zeromq.org/spec/4): reading with
// every failure named, writing with the secret file never readable by others.
#include "security/certificate.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

namespace mtask {
namespace {

constexpr std::string_view z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A ZPL value: "quoted", 'quoted', or a bare word that ends at a space or a comment.
std::string_view value_of(std::string_view v) {
  v = trim(v);
  if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
    const auto end = v.find(v.front(), 1);
    return end == std::string_view::npos ? v.substr(1) : v.substr(1, end - 1);
  }
  return v.substr(0, v.find_first_of(" \t#"));
}

struct key_file {
  std::string text;
  unsigned mode; // permission bits
  uid_t owner;
};

// Reads a key file, through symlinks (Kubernetes mounts a Secret's files as `key -> ..data/key`).
// Returns: its text, and its mode bits and owner as the open descriptor has them (the file
// checked is the file read).
key_file read_file(const std::string& path, std::string_view what) {
  // O_NONBLOCK: a FIFO named as a key must fail, not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw error(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw error(fmt::format("cannot read {} '{}': not a regular file", what, path));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw error(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > (1u << 16)) {
      ::close(fd);
      throw error(fmt::format("cannot read {} '{}': not a certificate (over 64 KiB)", what, path));
    }
  }
  ::close(fd);
  return {std::move(text), static_cast<unsigned>(st.st_mode & 0777), st.st_uid};
}

void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  // O_EXCL: never overwrite a key, and never follow a link planted where the secret goes. The
  // umask may take bits away from `mode`; it never adds any, so the secret stays 0600 at most.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  std::size_t done = 0;
  int err = 0;
  while (done < text.size() && err == 0) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      err = errno;
    else
      done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str()); // no half-written key left behind
    throw error(fmt::format("cannot write '{}': {}", path, std::strerror(err)));
  }
}

} // namespace

bool is_z85_key(std::string_view key) {
  return key.size() == 40 &&
         std::all_of(key.begin(), key.end(), [](char c) { return z85_alphabet.find(c) != std::string_view::npos; });
}

certificate parse_certificate(std::string_view text, std::string_view where, bool need_secret) {
  certificate c;
  bool have_curve = false;
  std::string section;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    const auto body = trim(line);
    if (body.empty() || body.front() == '#') continue;
    const bool indented = line.front() == ' ' || line.front() == '\t';
    const auto eq = body.find('=');
    if (!indented) {
      section = std::string(trim(body.substr(0, eq)));
      have_curve = have_curve || section == "curve";
      continue;
    }
    if (eq == std::string_view::npos) continue; // a deeper section name: nothing we read
    const auto key = trim(body.substr(0, eq));
    const auto value = value_of(body.substr(eq + 1));
    if (section == "metadata" && key == "name") c.name = value;
    if (section == "curve" && key == "public-key") c.public_key = value;
    if (section == "curve" && key == "secret-key") c.secret_key = value;
  }
  if (!have_curve) throw error(fmt::format("'{}': not a ZeroMQ certificate (no 'curve' section)", where));
  if (!is_z85_key(c.public_key))
    throw error(fmt::format("'{}': public-key is not a CURVE key (40 characters of Z85)", where));
  if (need_secret && c.secret_key.empty())
    throw error(fmt::format("'{}': no secret-key: this is a public certificate, give the '_secret' file", where));
  if (!c.secret_key.empty() && !is_z85_key(c.secret_key))
    throw error(fmt::format("'{}': secret-key is not a CURVE key (40 characters of Z85)", where));
  return c;
}

std::string format_certificate(const certificate& c) {
  const bool secret = !c.secret_key.empty();
  std::string out = "#   ****  Generated by mtask-keygen  ****\n";
  out += secret ? "#   ZeroMQ CURVE **Secret** Certificate\n"
                  "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                : "#   ZeroMQ CURVE Public Certificate\n"
                  "#   Exchange securely, or use a secure mechanism to verify the contents\n"
                  "#   of this file after exchange.\n";
  out += "\nmetadata\n";
  out += fmt::format("    name = \"{}\"\n", c.name);
  out += "curve\n";
  out += fmt::format("    public-key = \"{}\"\n", c.public_key);
  if (secret) out += fmt::format("    secret-key = \"{}\"\n", c.secret_key);
  return out;
}

certificate load_certificate(const std::string& path, bool need_secret) {
  const auto [text, mode, owner] = read_file(path, "key");
  certificate c;
  try {
    c = parse_certificate(text, path, need_secret);
  } catch (const error& e) {
    throw error(fmt::format("cannot read key {}", e.what()));
  }
  // As ssh's check: group or others bits matter on a file we own (we could chmod it); on a file
  // someone else owns, only others' bits do. A Kubernetes Secret volume with fsGroup is
  // root:fsGroup 0440 whatever its defaultMode (kubernetes#57923): no warning we could act on.
  const unsigned exposed = owner == ::geteuid() ? 077 : 007;
  if (!c.secret_key.empty() && (mode & exposed) != 0)
    log::warn("secret key '{}' is readable by others (mode {:03o}): chmod 600 it", path, mode);
  if (c.name.empty()) c.name = c.public_key.substr(0, 8); // a certificate from elsewhere may have none
  return c;
}

std::map<std::string, certificate> load_allowlist(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throw error(fmt::format("cannot read --allow '{}': {}", dir, std::strerror(errno)));
  std::vector<std::string> files;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    // Kubernetes' own entries in a Secret volume (`..data`, `..2026_12_07_09_00_00.123`): the
    // `..` prefix is reserved to it (a Secret's key cannot start with one).
    if (n.starts_with("..")) continue;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".key") files.emplace_back(n);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  std::map<std::string, certificate> keys;
  for (const auto& f : files) {
    auto c = load_certificate(dir + "/" + f, false);
    c.secret_key.clear(); // a server has no business keeping a client's secret
    keys.emplace(c.public_key, std::move(c));
  }
  if (keys.empty()) throw error(fmt::format("cannot read --allow '{}': no public certificates (*.key) in it", dir));
  return keys;
}

void save_public_certificate(const std::string& path, const certificate& c) {
  certificate pub = c;
  pub.secret_key.clear();
  write_new_file(path, format_certificate(pub), 0644);
}

void save_certificate_pair(const std::string& path, const certificate& c) {
  certificate pub = c;
  pub.secret_key.clear();
  // The secret first: a public key without its secret is useless, the reverse is merely odd.
  write_new_file(path + ".key_secret", format_certificate(c), 0600);
  write_new_file(path + ".key", format_certificate(pub), 0644);
}

} // namespace mtask
