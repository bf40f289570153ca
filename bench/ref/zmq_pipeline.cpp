// Reference for bench/01: the bare libzmq pipeline (PUSH vent -> N x PULL/PUSH worker -> PULL sink)
// that mtask is measured against. Tiny tasks (one 8-byte id each, K ids per message when
// batching), workers do no work, the sink knows the total and checks count and checksum.
//
//   zmq_pipeline worker --bind EP --sink EP                       forwards messages until killed
//   zmq_pipeline sink   --bind EP --done EP --total N [--timeout-ms T]
//   zmq_pipeline vent   --done EP --total N [--batch K] --worker EP [--worker EP]... [--timeout-ms T]
//
// Workers and the sink bind; the ventilator connects to every worker. A connecting PUSH socket
// (without ZMQ_IMMEDIATE) creates one pipe per endpoint at connect time, so round robin is fair
// from the first message whatever the start order: no ready handshake and no sleep are needed.
// Workers likewise connect to the sink, whose pipes queue until the connection is up.
//
// The last word is a handshake, not linger: with libzmq 4.3.4 over ipc://, a ventilator that
// exits right after zmq_ctx_term (infinite linger) lost the last 1 000-4 000 of 1 M messages in
// most runs (cf. docs/ARCHITECTURE.md, libzmq#4660). So the sink, having counted N tasks, pushes
// one "done" to the ventilator's --done endpoint, and the ventilator stays up until it hears it.
// The sink exits 0 if count and checksum match, 1 otherwise or after T ms without a message;
// workers run until the harness stops them with SIGTERM.
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "zmq_pipeline: %s: %s\n", what, zmq_strerror(zmq_errno()));
  std::exit(1);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: zmq_pipeline worker --bind EP --sink EP\n"
               "       zmq_pipeline sink --bind EP --done EP --total N [--timeout-ms T]\n"
               "       zmq_pipeline vent --done EP --total N [--batch K] --worker EP... [--timeout-ms T]\n");
  std::exit(2);
}

struct args {
  std::string bind, sink, done;
  std::vector<std::string> workers;
  std::uint64_t total = 0, batch = 1;
  int timeout_ms = 60000;
};

args parse(int argc, char** argv) {
  args a;
  for (int i = 2; i < argc; ++i) {
    std::string f = argv[i];
    if (i + 1 >= argc) usage();
    const char* v = argv[++i];
    if (f == "--bind")
      a.bind = v;
    else if (f == "--sink")
      a.sink = v;
    else if (f == "--done")
      a.done = v;
    else if (f == "--worker")
      a.workers.emplace_back(v);
    else if (f == "--total")
      a.total = std::strtoull(v, nullptr, 10);
    else if (f == "--batch")
      a.batch = std::strtoull(v, nullptr, 10);
    else if (f == "--timeout-ms")
      a.timeout_ms = std::atoi(v);
    else
      usage();
  }
  if (a.batch == 0) usage();
  return a;
}

void* make_socket(void* ctx, int type) {
  void* s = zmq_socket(ctx, type);
  if (s == nullptr) die("zmq_socket");
  // A peer started a moment later is retried after 2 ms, not libzmq's default 100 ms, so the
  // start order the harness happens to produce does not show up in the timings.
  const int reconnect_ms = 2;
  if (zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms) != 0) die("setsockopt");
  return s;
}

int run_worker(const args& a) {
  if (a.bind.empty() || a.sink.empty()) usage();
  void* ctx = zmq_ctx_new();
  void* in = make_socket(ctx, ZMQ_PULL);
  void* out = make_socket(ctx, ZMQ_PUSH);
  if (zmq_bind(in, a.bind.c_str()) != 0) die("bind");
  if (zmq_connect(out, a.sink.c_str()) != 0) die("connect");
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (true) { // the message is passed on as it is: the worker does no work
    if (zmq_msg_recv(&msg, in, 0) < 0) die("recv");
    if (zmq_msg_send(&msg, out, 0) < 0) die("send");
  }
}

int run_sink(const args& a) {
  if (a.bind.empty() || a.done.empty() || a.total == 0) usage();
  void* ctx = zmq_ctx_new();
  void* in = make_socket(ctx, ZMQ_PULL);
  void* done = make_socket(ctx, ZMQ_PUSH);
  if (zmq_connect(done, a.done.c_str()) != 0) die("connect");
  if (zmq_setsockopt(in, ZMQ_RCVTIMEO, &a.timeout_ms, sizeof a.timeout_ms) != 0) die("setsockopt");
  if (zmq_bind(in, a.bind.c_str()) != 0) die("bind");
  std::uint64_t count = 0, sum = 0;
  std::chrono::steady_clock::time_point first;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (count < a.total) {
    if (zmq_msg_recv(&msg, in, 0) < 0) {
      std::fprintf(stderr, "zmq_pipeline sink: no message for %d ms after %llu of %llu tasks\n", a.timeout_ms,
                   static_cast<unsigned long long>(count), static_cast<unsigned long long>(a.total));
      return 1;
    }
    if (count == 0) first = std::chrono::steady_clock::now();
    const auto* p = static_cast<const unsigned char*>(zmq_msg_data(&msg));
    const std::size_t n = zmq_msg_size(&msg) / sizeof(std::uint64_t);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t id;
      std::memcpy(&id, p + i * sizeof id, sizeof id);
      sum += id;
    }
    count += n;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
  const std::uint64_t want = a.total * (a.total - 1) / 2;
  std::printf("tasks %llu checksum %s first-to-last %.6f s\n", static_cast<unsigned long long>(count),
              sum == want && count == a.total ? "ok" : "WRONG", secs);
  if (zmq_send(done, "", 0, 0) < 0) die("send");
  zmq_close(in);
  zmq_close(done); // the ventilator is idle and reading: this one message is not at risk
  zmq_ctx_term(ctx);
  return sum == want && count == a.total ? 0 : 1;
}

int run_vent(const args& a) {
  if (a.workers.empty() || a.done.empty() || a.total == 0) usage();
  void* ctx = zmq_ctx_new();
  void* out = make_socket(ctx, ZMQ_PUSH);
  void* done = make_socket(ctx, ZMQ_PULL);
  if (zmq_setsockopt(done, ZMQ_RCVTIMEO, &a.timeout_ms, sizeof a.timeout_ms) != 0) die("setsockopt");
  if (zmq_bind(done, a.done.c_str()) != 0) die("bind");
  for (const auto& ep : a.workers)
    if (zmq_connect(out, ep.c_str()) != 0) die("connect");
  std::vector<std::uint64_t> buf(a.batch);
  for (std::uint64_t next = 0; next < a.total;) {
    const std::uint64_t n = std::min(a.batch, a.total - next);
    for (std::uint64_t i = 0; i < n; ++i) buf[i] = next + i;
    if (zmq_send(out, buf.data(), n * sizeof(std::uint64_t), 0) < 0) die("send");
    next += n;
  }
  char byte;
  if (zmq_recv(done, &byte, sizeof byte, 0) < 0) {
    std::fprintf(stderr, "zmq_pipeline vent: no word from the sink for %d ms\n", a.timeout_ms);
    return 1;
  }
  zmq_close(out);
  zmq_close(done);
  zmq_ctx_term(ctx);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string mode = argv[1];
  const args a = parse(argc, argv);
  if (mode == "worker") return run_worker(a);
  if (mode == "sink") return run_sink(a);
  if (mode == "vent") return run_vent(a);
  usage();
}
