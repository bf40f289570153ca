// The CURVE flags of one process, loaded once, and the refusal of plaintext beyond loopback.
#include "security/security.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"
#include "transport/curve.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

namespace mtask {
namespace {

bool loopback(const sockaddr* sa) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// Returns: whether `host` names an interface, and if so whether all its addresses are loopback.
std::optional<bool> interface_is_loopback(const std::string& host) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<bool> all;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (host != i->ifa_name || i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) continue;
    all = all.value_or(true) && loopback(i->ifa_addr);
  }
  ::freeifaddrs(list);
  return all;
}

bool host_is_loopback(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "*") return false;
  // In libzmq's order: an interface name first, then a numeric address.
  if (auto iface = interface_is_loopback(host)) return *iface;
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  // A host name (libzmq binds only numeric addresses, so the bind itself would fail after this).
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false; // unknown: assume the worst
  bool all = res != nullptr;
  for (auto* r = res; r != nullptr; r = r->ai_next) all = all && loopback(r->ai_addr);
  ::freeaddrinfo(res);
  return all;
}

// --ventilator-key and --sink-key take a certificate file or the public key itself (40 characters
// of Z85), which mtask --listen prints in the command line a remote worker joins with: nothing to
// copy but that line. Text that is a key is always the key: a file of that name, planted in a
// folder others can write to, must not decide which server we trust (such a file is ./NAME).
certificate load_public(const std::string& path) {
  if (is_z85_key(path)) return certificate{.name = "", .public_key = path};
  auto c = load_certificate(path, false);
  c.secret_key.clear();
  return c;
}

void require(bool ok, std::string_view message) {
  if (!ok) throw usage_error(std::string(message));
}

} // namespace

bool is_local_endpoint(std::string_view endpoint) {
  constexpr std::string_view tcp = "tcp://";
  if (endpoint.substr(0, tcp.size()) != tcp) return true;
  auto rest = endpoint.substr(tcp.size());
  const auto colon = rest.rfind(':');
  return host_is_loopback(std::string(rest.substr(0, colon)));
}

std::optional<curve_keys> security_setup::server() const {
  if (!own) return std::nullopt;
  return curve_keys{.public_key = own->public_key, .secret_key = own->secret_key, .server_key = {}};
}

std::optional<curve_keys> security_setup::client_of(const std::string& server_key) const {
  if (!own) return std::nullopt;
  return curve_keys{.public_key = own->public_key, .secret_key = own->secret_key, .server_key = server_key};
}

std::string_view security_setup::name_of(const std::string& key) const {
  const auto it = allowed.find(key);
  return it == allowed.end() ? std::string_view() : std::string_view(it->second);
}

security_setup load_security(const common_options& o, role r) {
  security_setup s;
  const bool binds = r != role::worker;
  const auto& bound = r == role::ventilator ? o.ventilator : o.sink;
  const auto* bound_flag = r == role::ventilator ? "--ventilator" : "--sink";
  if (o.key.empty()) {
    require(o.ventilator_key.empty(), "--ventilator-key needs --key (this process's own secret certificate)");
    require(o.sink_key.empty(), "--sink-key needs --key (this process's own secret certificate)");
    require(o.allow.empty(), "--allow needs --key (this process's own secret certificate)");
    if (binds && !o.insecure && !is_local_endpoint(bound)) {
      throw usage_error(
          fmt::format("refusing to bind {} '{}' in plaintext beyond loopback: make keys with "
                      "mtask-keygen and pass --key, --allow and the peers' keys, or pass --insecure",
                      bound_flag, bound));
    }
    return s;
  }
  switch (r) {
    case role::worker:
      require(!o.ventilator_key.empty() && !o.sink_key.empty(),
              "--key needs --ventilator-key and --sink-key: a worker pins both servers it talks to");
      break;
    case role::sink:
      require(!o.ventilator_key.empty() && !o.allow.empty(),
              "--key needs --ventilator-key (the server it joins) and --allow DIR (the workers it accepts)");
      break;
    case role::ventilator:
      require(!o.sink_key.empty() && !o.allow.empty(),
              "--key needs --sink-key (the only client that may act as the sink) and --allow DIR (the workers)");
      break;
  }
  s.own = load_certificate(o.key, true);
  if (curve_public_of(s.own->secret_key) != s.own->public_key)
    throw error(fmt::format("cannot read key '{}': its public-key does not belong to its secret-key", o.key));
  if (!o.ventilator_key.empty()) s.ventilator_key = load_public(o.ventilator_key).public_key;
  std::string sink_name;
  if (!o.sink_key.empty()) {
    auto sink = load_public(o.sink_key);
    s.sink_key = sink.public_key;
    sink_name = sink.name.empty() ? "sink" : sink.name; // a bare key names no one
  }
  if (binds) {
    for (auto& [key, cert] : load_allowlist(o.allow)) s.allowed.emplace(key, cert.name);
    // The ventilator also accepts the sink, under the name its certificate gives.
    if (r == role::ventilator) s.allowed.emplace(s.sink_key, sink_name);
    log::info("CURVE on: {} client key(s) allowed", s.allowed.size());
  }
  return s;
}

} // namespace mtask
