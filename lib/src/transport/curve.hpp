// CURVE with libzmq: key pairs, the ZAP handler that lets in only the keys on an allowlist, and
// a watch on a client socket's handshakes (libzmq retries failed ones in silence).
#pragma once

#include "security/curve_keys.hpp"

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
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
  void answer();

  zmq::socket_t rep_;
  std::map<std::string, std::string> allowed_;
  std::set<std::string> logged_; // keys already named in the log (the first 1000)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Watches one socket's handshakes (libzmq retries failed ones in silence). On a client it logs
// each kind of failure once, at once:
//   cannot join the ventilator at 'EP': refused (400): our key '...' is not on its --allow list
//   cannot join the ventilator at 'EP': it runs with --key: this process needs --key and --ventilator-key too
//   cannot join the ventilator at 'EP': it runs without --key (plaintext), and this process with it
//   cannot join the ventilator at 'EP' yet: the CURVE handshake failed 3 times in a row: is
//   --ventilator-key its key? (a warning: a proxy with nothing behind it looks the same)
// and says when the server will never have us (rejected()). A handshake that fails without detail
// (a connection cut mid-way) is hinted at only after three in a row with none succeeding, only
// under CURVE, and never counts as a rejection.
// With `peer` empty it watches a server's socket and only counts the failed handshakes.
// check() reads the events without blocking; call it once per loop turn.
class handshake_watch {
 public:
  // `peer`: "ventilator" or "sink"; `key_flag`: the flag that names its key; `our_key`: our public
  // key, empty in plaintext.
  handshake_watch(zmq::context_t& ctx, zmq::socket_t& socket, std::string peer, std::string key_flag,
                  std::string our_key);
  void check();
  // Handshakes that failed so far.
  [[nodiscard]] std::uint64_t failures() const { return failures_; }
  // Whether the server refused us in a way retrying cannot mend: our key is not on its list, or
  // the two sides disagree on CURVE.
  [[nodiscard]] bool rejected() const { return rejected_; }

 private:
  void failed(std::uint16_t event, std::uint32_t value, std::string_view where);

  zmq::socket_t events_;
  std::string peer_;
  std::string key_flag_;
  std::string our_key_;
  std::uint64_t failures_ = 0;
  unsigned in_a_row_ = 0; // failures since the last handshake that succeeded
  bool ever_succeeded_ = false;
  bool rejected_ = false;
  bool refused_logged_ = false;
  bool mechanism_logged_ = false;
  bool key_logged_ = false;
};

} // namespace mtask
