// CURVE with libzmq: key pairs, a ZAP handler over an allowlist (RFC 27), handshake events.
#include "transport/curve.hpp"

#include "common/log.hpp"
#include "mtask/error.hpp"

#include <array>
#include <cstring>
#include <utility>
#include <vector>

namespace mtask {

curve_keys new_curve_keypair() {
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    throw error(fmt::format("cannot make a CURVE key pair: {}", zmq_strerror(zmq_errno())));
  return curve_keys{.public_key = pub.data(), .secret_key = sec.data(), .server_key = {}};
}

std::string curve_public_of(const std::string& secret_key) {
  std::array<char, 41> pub{};
  if (secret_key.size() != 40 || zmq_curve_public(pub.data(), secret_key.c_str()) != 0) return {};
  return pub.data();
}

zap_authenticator::zap_authenticator(zmq::context_t& ctx, std::map<std::string, std::string> allowed)
    : rep_(ctx, zmq::socket_type::rep), allowed_(std::move(allowed)) {
  rep_.set(zmq::sockopt::linger, 0);
  rep_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { serve(); });
}

zap_authenticator::~zap_authenticator() {
  stop_ = true;
  thread_.join();
}

void zap_authenticator::serve() {
  std::vector<zmq::pollitem_t> items{{rep_.handle(), 0, ZMQ_POLLIN, 0}};
  while (!stop_) {
    try {
      zmq::poll(items, std::chrono::milliseconds(100));
      if ((items[0].revents & ZMQ_POLLIN) != 0) answer();
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) return;
      // Never take the process down from this thread: a handler that cannot answer refuses
      // everyone (libzmq waits for the reply), which the clients report.
      log::error("the CURVE authenticator stopped: {}", e.what());
      return;
    }
  }
}

void zap_authenticator::answer() {
  // RFC 27: version, request id, domain, address, routing id, mechanism, credentials...
  std::vector<zmq::message_t> req;
  for (bool more = true; more;) {
    zmq::message_t m;
    if (!rep_.recv(m, zmq::recv_flags::dontwait)) break;
    more = m.more();
    req.push_back(std::move(m));
  }
  std::string status = "400";
  std::string text = "not on the allowlist";
  std::string user_id;
  if (req.size() < 7 || req[0].to_string_view() != "1.0") {
    status = "500";
    text = "not a ZAP 1.0 request";
  } else if (req[5].to_string_view() != "CURVE" || req[6].size() != 32) {
    text = "CURVE required";
  } else {
    std::array<char, 41> key{};
    zmq_z85_encode(key.data(), static_cast<const std::uint8_t*>(req[6].data()), 32);
    if (allowed_.count(key.data()) != 0) {
      status = "200";
      text = "OK";
      user_id = key.data();
    } else if (logged_.size() < 1000 && logged_.insert(key.data()).second) { // bounded: keys are free to make
      log::info("refused a client at {} with key '{}': not on the --allow list", req[3].to_string_view(), key.data());
    }
  }
  // A REP socket must answer every request, whatever it held, before it can read the next.
  const auto version = req.empty() ? std::string("1.0") : req[0].to_string();
  const auto id = req.size() < 2 ? std::string() : req[1].to_string();
  rep_.send(zmq::buffer(version), zmq::send_flags::sndmore);
  rep_.send(zmq::buffer(id), zmq::send_flags::sndmore);
  rep_.send(zmq::buffer(status), zmq::send_flags::sndmore);
  rep_.send(zmq::buffer(text), zmq::send_flags::sndmore);
  rep_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
  rep_.send(zmq::message_t(), zmq::send_flags::none);
}

namespace {
std::atomic<unsigned> monitor_count{0};
}

handshake_watch::handshake_watch(zmq::context_t& ctx, zmq::socket_t& socket, std::string peer, std::string key_flag,
                                 std::string our_key)
    : events_(ctx, zmq::socket_type::pair),
      peer_(std::move(peer)),
      key_flag_(std::move(key_flag)),
      our_key_(std::move(our_key)) {
  const auto address = fmt::format("inproc://mtask-handshakes-{}", monitor_count++);
  if (zmq_socket_monitor(socket.handle(), address.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
    throw error(fmt::format("cannot watch handshakes: {}", zmq_strerror(zmq_errno())));
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(address);
}

void handshake_watch::check() {
  for (;;) {
    zmq::message_t head;
    if (!events_.recv(head, zmq::recv_flags::dontwait)) return;
    zmq::message_t where;
    if (head.more()) (void)events_.recv(where, zmq::recv_flags::none);
    if (head.size() < 6) continue;
    std::uint16_t event = 0;
    std::uint32_t value = 0;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      ever_succeeded_ = true;
      in_a_row_ = 0;
      continue;
    }
    ++failures_;
    ++in_a_row_;
    if (!peer_.empty()) failed(event, value, where.to_string_view());
  }
}

void handshake_watch::failed(std::uint16_t event, std::uint32_t value, std::string_view where) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    rejected_ = true;
    if (!std::exchange(refused_logged_, true))
      log::error("cannot join the {} at '{}': refused ({}): our key '{}' is not on its --allow list", peer_, where,
                 value, our_key_);
  } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    rejected_ = true;
    if (std::exchange(mechanism_logged_, true)) return;
    if (our_key_.empty())
      log::error("cannot join the {} at '{}': it runs with --key: this process needs --key and {} too", peer_, where,
                 key_flag_);
    else
      log::error("cannot join the {} at '{}': it runs without --key (plaintext), and this process with it", peer_,
                 where);
  } else if (!our_key_.empty() && !ever_succeeded_ && in_a_row_ >= 3) {
    // Not a rejection: a server that cannot read our hello (a wrong pinned key) closes the
    // connection, and so does a proxy with nothing behind it yet; only the hint is given.
    if (!std::exchange(key_logged_, true))
      log::warn(
          "cannot join the {} at '{}' yet: the CURVE handshake failed {} times in a row: is {} its key? "
          "(a proxy with nothing behind it does the same)",
          peer_, where, in_a_row_, key_flag_);
  }
}

} // namespace mtask
