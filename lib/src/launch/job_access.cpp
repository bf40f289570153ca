// Address, ports and keys of an mtask job that takes workers from other hosts.
#include "launch/job_access.hpp"

#include "common/fd_guard.hpp"
#include "mtask/error.hpp"
#include "transport/curve.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace mtask {
namespace {

sockaddr_in ipv4_of(const std::string& address, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1)
    throw error(fmt::format("'{}' is not an IPv4 address", address));
  return a;
}

std::string text_of(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return buf;
}

// Returns: a TCP port free on `address` now (bound to port 0, read back, let go: the ventilator
// binds it moments later, after the fork).
int free_port(const std::string& address, std::optional<int> avoid) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const fd_guard s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = ipv4_of(address, 0);
    socklen_t len = sizeof a;
    if (s.get() < 0 || ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw error(fmt::format("cannot find a free TCP port on '{}': {}", address, std::strerror(errno)));
    }
    const int port = ntohs(a.sin_port);
    if (port != avoid) return port;
  }
  throw error(fmt::format("cannot find a free TCP port on '{}'", address));
}

std::string file_name_of(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-') ? c : '_';
  return out.empty() ? "worker" : out;
}

certificate new_certificate(const std::string& name) {
  const auto keys = new_curve_keypair();
  return certificate{.name = name, .public_key = keys.public_key, .secret_key = keys.secret_key};
}

} // namespace

listen_spec parse_listen(const std::string& text) {
  listen_spec spec{.host = text, .port = std::nullopt};
  // HOST:PORT with a single colon (IPv4 only: an IPv6 address, with colons of its own, is refused
  // below).
  if (const auto colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
    spec.host = text.substr(0, colon);
    int port = 0;
    const auto* first = text.data() + colon + 1;
    const auto* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || end != last || port < 1 || port > 65534)
      throw usage_error(fmt::format("--listen '{}': the port must be 1 to 65534 (the sink takes the next one)", text));
    spec.port = port;
  }
  if (spec.host.empty() || spec.host == "*" || spec.host == "0.0.0.0" || spec.host.find(':') != std::string::npos)
    throw usage_error(fmt::format(
        "--listen '{}': give an IPv4 address or host name of this machine that the workers can reach, not a "
        "wildcard (they are told to connect to it)",
        text));
  return spec;
}

std::string resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0 || res == nullptr)
    throw error(fmt::format("cannot resolve '{}' to an IPv4 address: {}", host, ::gai_strerror(rc)));
  const auto a = *reinterpret_cast<const sockaddr_in*>(res->ai_addr);
  ::freeaddrinfo(res);
  return text_of(a);
}

std::string local_address_toward(const std::string& host) {
  const auto remote = resolve_ipv4(host);
  // Connecting a UDP socket only chooses the route and the source address: no packet leaves.
  const fd_guard s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  auto to = ipv4_of(remote, 22);
  sockaddr_in from{};
  socklen_t len = sizeof from;
  if (s.get() < 0 || ::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&from), &len) != 0) {
    throw error(fmt::format("no route from here to '{}' ({}): {}", host, remote, std::strerror(errno)));
  }
  return text_of(from);
}

job_endpoints pick_endpoints(const std::string& address, std::optional<int> port) {
  const int vent = port ? *port : free_port(address, std::nullopt);
  const int sink = port ? *port + 1 : free_port(address, vent);
  return {.ventilator = fmt::format("tcp://{}:{}", address, vent), .sink = fmt::format("tcp://{}:{}", address, sink)};
}

job_keys::job_keys(const std::string& dir) : dir_(dir) {
  for (const auto& d : {dir_, allow_dir()}) {
    if (::mkdir(d.c_str(), 0700) != 0) throw error(fmt::format("cannot create '{}': {}", d, std::strerror(errno)));
  }
  ventilator_ = new_certificate("ventilator");
  sink_ = new_certificate("sink");
  save_certificate_pair(dir_ + "/ventilator", ventilator_);
  save_certificate_pair(dir_ + "/sink", sink_);
}

void job_keys::allow(const certificate& c, const std::string& file_name) {
  save_public_certificate(fmt::format("{}/{}-{}.key", allow_dir(), ++workers_, file_name_of(file_name)), c);
}

certificate job_keys::add_worker(const std::string& name) {
  auto c = new_certificate(name);
  allow(c, name);
  return c;
}

std::string job_keys::add_local_worker(const std::string& name) {
  auto c = new_certificate(name);
  allow(c, name);
  const auto path = fmt::format("{}/local-{}", dir_, workers_);
  save_certificate_pair(path, c);
  return path + ".key_secret";
}

void job_keys::admit(const std::string& allow_dir) {
  for (const auto& [key, c] : load_allowlist(allow_dir)) allow(c, c.name);
}

} // namespace mtask
