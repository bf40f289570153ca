// How workers on other hosts reach an mtask job (--listen, --ssh): the address and two TCP ports
// the ventilator and the sink bind, and the job's own CURVE keys, made fresh for each job in its
// private folder: the ventilator's, the sink's, one per worker host, and the allowed/ folder.
#pragma once

#include "security/certificate.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mtask {

struct listen_spec {
  std::string host;        // as given: an address or a name of this machine
  std::optional<int> port; // the ventilator's; the sink's is the next one. None: two free ports.
};

// Parses --listen's ADDR[:PORT].
// Throws: usage_error for a bad port or a wildcard (0.0.0.0, *, ::): workers must be told an
//         address they can reach.
listen_spec parse_listen(const std::string& text);

// Returns: the IPv4 address, numeric, that `host` names.
// Throws: error when it does not resolve to one.
std::string resolve_ipv4(const std::string& host);

// Returns: this machine's IPv4 address on the route to `host` (what a connection from here to
// there would come from; nothing is sent), the address it most likely reaches us at.
// Throws: error when `host` does not resolve or no route leads there.
std::string local_address_toward(const std::string& host);

struct job_endpoints {
  std::string ventilator; // tcp://ADDR:PORT
  std::string sink;       // tcp://ADDR:PORT+1
};

// Returns: the two endpoints on `address` (numeric IPv4): `port` and port+1, or two ports free now.
// Throws: error when no free port can be had.
job_endpoints pick_endpoints(const std::string& address, std::optional<int> port);

// The job's keys, written under `dir` (the private folder): DIR/keys/{ventilator,sink}.key_secret
// and .key, DIR/keys/allowed/NAME.key for every worker key made or admitted.
class job_keys {
 public:
  // Throws: error when a key cannot be made or written.
  explicit job_keys(const std::string& dir);

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] const certificate& ventilator() const { return ventilator_; }
  [[nodiscard]] const certificate& sink() const { return sink_; }
  [[nodiscard]] std::string ventilator_secret_path() const { return dir_ + "/ventilator.key_secret"; }
  [[nodiscard]] std::string sink_secret_path() const { return dir_ + "/sink.key_secret"; }
  [[nodiscard]] std::string allow_dir() const { return dir_ + "/allowed"; }

  // A new key pair for the worker named `name`, its public half put on the allowed list.
  // Returns: its secret certificate (kept in memory only: it goes to that host and nowhere else).
  certificate add_worker(const std::string& name);
  // A new key pair for a worker on this machine, both halves written.
  // Returns: the path of its secret certificate.
  std::string add_local_worker(const std::string& name);
  // Puts every public certificate of `allow_dir` (the user's --allow) on the allowed list.
  // Throws: error as load_allowlist does.
  void admit(const std::string& allow_dir);

 private:
  void allow(const certificate& c, const std::string& file_name);

  std::string dir_;
  certificate ventilator_;
  certificate sink_;
  unsigned workers_ = 0;
};

} // namespace mtask
