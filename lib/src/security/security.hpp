// Who may talk to whom: the CURVE flags of one process, loaded and checked once at start, and
// the rule that a bind beyond loopback is never plaintext unless --insecure says so.
#pragma once

#include "common/role.hpp"
#include "mtask/options.hpp"
#include "security/certificate.hpp"
#include "security/curve_keys.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

struct security_setup {
  std::optional<certificate> own;             // --key; nothing: plaintext
  std::string ventilator_key;                 // --ventilator-key's public key (Z85)
  std::string sink_key;                       // --sink-key's
  std::map<std::string, std::string> allowed; // servers: public key -> name of each client let in

  [[nodiscard]] bool curve() const { return own.has_value(); }
  // Returns: the keys of our bound socket, or nothing in plaintext.
  [[nodiscard]] std::optional<curve_keys> server() const;
  // Returns: the keys of a socket that connects to the server holding `server_key`.
  [[nodiscard]] std::optional<curve_keys> client_of(const std::string& server_key) const;
  // Returns: the name an allowed client's certificate gives, or "" for a key not on the list.
  [[nodiscard]] std::string_view name_of(const std::string& key) const;
};

// Loads the key files the flags name and checks that they fit `r`.
// Throws: usage_error for flags that do not go together or a plaintext bind beyond loopback;
//         error for a key file that is missing, unreadable or not a certificate.
security_setup load_security(const common_options& opts, role r);

// Returns: whether every address `endpoint` (tcp://HOST:PORT) binds is a loopback one: 127.0.0.0/8
// or ::1, directly, as an interface name, or as a host name that resolves only to such.
// "*" and 0.0.0.0 are not. Non-TCP endpoints (ipc://, inproc://) count as local: true.
[[nodiscard]] bool is_local_endpoint(std::string_view endpoint);

} // namespace mtask
