// CURVE with libzmq: key pairs, the ZAP handler that lets in only the keys on an allowlist, and
// a watch on a client socket's handshakes (libzmq retries failed ones in silence).
#pragma once

#include "security/curve_keys.hpp"

#include <zmq.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>

namespace mtask {

// Returns: a new key pair (public_key, secret_key set; Z85).
// Throws: error when libzmq was built without CURVE.
curve_keys new_curve_keypair();

// Returns: the public key that belongs to `secret_key` (Z85), or "" when it is not a key.
std::string curve_public_of(const std::string& secret_key);

// Answers libzmq's ZAP requests (inproc://zeromq.zap.01 of `ctx`) on a thread of its own: a
// CURVE client whose public key is in `allowed` (key -> name) is let in, with the key as its
// User-Id; anyone else is refused, logged once per key at -v. Construct it before binding.
class zap_authenticator {
 public:
  zap_authenticator(zmq::context_t& ctx, std::map<std::string, std::string> allowed);
  ~zap_authenticator();
  zap_authenticator(const zap_authenticator&) = delete;
  zap_authenticator& operator=(const zap_authenticator&) = delete;

 private:
  void serve();

  zmq::socket_t rep_;
  std::map<std::string, std::string> allowed_;
  std::set<std::string> logged_; // keys already named in the log
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Watches one client socket's handshakes and logs each kind of failure once, at once (`our_key`
// is empty in plaintext, whose handshake fails against a CURVE server):
//   cannot join the ventilator at 'EP': refused: our key 'K...' is not on its --allow list
//   cannot join the ventilator at 'EP': handshake failed: is --ventilator-key its key?
// With `peer` empty it watches a server's socket: it only counts the handshakes it refused.
// check() reads the events without blocking; call it once per loop turn.
class handshake_watch {
 public:
  handshake_watch(zmq::context_t& ctx, zmq::socket_t& socket, std::string peer, std::string key_flag,
                  std::string our_key);
  void check();
  // Handshakes that failed so far.
  [[nodiscard]] std::uint64_t failures() const { return failures_; }

 private:
  zmq::socket_t events_;
  std::string peer_;     // "the ventilator", "the sink"
  std::string key_flag_; // the flag that names the server's key
  std::string our_key_;
  std::uint64_t failures_ = 0;
  bool refused_logged_ = false;
  bool mismatch_logged_ = false;
};

} // namespace mtask
