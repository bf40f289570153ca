// Reference for bench/01: the least a credit-based dispatcher costs on bare libzmq. Like mtask,
// the ventilator (ROUTER) sends a worker (DEALER) only as many tasks as it has free slots, and a
// worker returns one credit per task it finished; results go PUSH -> PULL to the sink. No ledger,
// no acks, no heartbeats: the gap between this and mtask -j K is mtask's own overhead, the gap
// between this and zmq_pipeline is the price of credit (a round trip per task at -j 1).
//
//   zmq_credit worker --vent EP --sink EP [--slots K]    until killed
//   zmq_credit sink   --bind EP --done EP --total N [--timeout-ms T]
//   zmq_credit vent   --bind EP --done EP --total N [--timeout-ms T]
//
// Tasks are 8-byte ids, one a message. A worker says hello with its slot count; the ventilator
// keeps a credit per worker and hands out ids round robin among workers with credit. The sink
// checks count and checksum and pushes "done" to the ventilator, which stays up until it hears
// it (see zmq_pipeline.cpp for why the last word is a handshake).
#include <zmq.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "zmq_credit: %s: %s\n", what, zmq_strerror(zmq_errno()));
  std::exit(1);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: zmq_credit worker --vent EP --sink EP [--slots K]\n"
               "       zmq_credit sink --bind EP --done EP --total N [--timeout-ms T]\n"
               "       zmq_credit vent --bind EP --done EP --total N [--timeout-ms T]\n");
  std::exit(2);
}

struct args {
  std::string bind, vent, sink, done;
  std::uint64_t total = 0;
  std::uint32_t slots = 1;
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
    else if (f == "--vent")
      a.vent = v;
    else if (f == "--sink")
      a.sink = v;
    else if (f == "--done")
      a.done = v;
    else if (f == "--total")
      a.total = std::strtoull(v, nullptr, 10);
    else if (f == "--slots")
      a.slots = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    else if (f == "--timeout-ms")
      a.timeout_ms = std::atoi(v);
    else
      usage();
  }
  if (a.slots == 0) usage();
  return a;
}

void* make_socket(void* ctx, int type) {
  void* s = zmq_socket(ctx, type);
  if (s == nullptr) die("zmq_socket");
  const int reconnect_ms = 2; // see zmq_pipeline.cpp
  if (zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms) != 0) die("setsockopt");
  return s;
}

// Worker: hello = its slot count; then, per task, the result to the sink and one credit back.
int run_worker(const args& a) {
  if (a.vent.empty() || a.sink.empty()) usage();
  void* ctx = zmq_ctx_new();
  void* vent = make_socket(ctx, ZMQ_DEALER);
  void* out = make_socket(ctx, ZMQ_PUSH);
  if (zmq_connect(vent, a.vent.c_str()) != 0) die("connect");
  if (zmq_connect(out, a.sink.c_str()) != 0) die("connect");
  // DEALER without ZMQ_IMMEDIATE queues the hello until the connection is up: not lost.
  if (zmq_send(vent, &a.slots, sizeof a.slots, 0) < 0) die("send");
  const std::uint32_t one = 1;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (true) {
    if (zmq_msg_recv(&msg, vent, 0) < 0) die("recv");
    if (zmq_msg_send(&msg, out, 0) < 0) die("send");
    if (zmq_send(vent, &one, sizeof one, 0) < 0) die("send");
  }
}

int run_sink(const args& a) {
  if (a.bind.empty() || a.done.empty() || a.total == 0) usage();
  void* ctx = zmq_ctx_new();
  void* in = make_socket(ctx, ZMQ_PULL);
  void* done = make_socket(ctx, ZMQ_PUSH);
  if (zmq_setsockopt(in, ZMQ_RCVTIMEO, &a.timeout_ms, sizeof a.timeout_ms) != 0) die("setsockopt");
  if (zmq_bind(in, a.bind.c_str()) != 0) die("bind");
  if (zmq_connect(done, a.done.c_str()) != 0) die("connect");
  std::uint64_t count = 0, sum = 0, id = 0;
  while (count < a.total) {
    if (zmq_recv(in, &id, sizeof id, 0) < 0) {
      std::fprintf(stderr, "zmq_credit sink: no message for %d ms after %llu of %llu tasks\n", a.timeout_ms,
                   static_cast<unsigned long long>(count), static_cast<unsigned long long>(a.total));
      return 1;
    }
    sum += id;
    ++count;
  }
  const bool ok = sum == a.total * (a.total - 1) / 2;
  std::printf("tasks %llu checksum %s\n", static_cast<unsigned long long>(count), ok ? "ok" : "WRONG");
  if (zmq_send(done, "", 0, 0) < 0) die("send");
  zmq_close(in);
  zmq_close(done);
  zmq_ctx_term(ctx);
  return ok ? 0 : 1;
}

int run_vent(const args& a) {
  if (a.bind.empty() || a.done.empty() || a.total == 0) usage();
  void* ctx = zmq_ctx_new();
  void* router = make_socket(ctx, ZMQ_ROUTER);
  void* done = make_socket(ctx, ZMQ_PULL);
  if (zmq_bind(router, a.bind.c_str()) != 0) die("bind");
  if (zmq_bind(done, a.done.c_str()) != 0) die("bind");
  std::map<std::string, std::uint64_t> credit; // routing id -> free slots
  std::uint64_t next = 0;
  char rid[256];
  std::uint32_t grant = 0;
  zmq_pollitem_t items[] = {{router, 0, ZMQ_POLLIN, 0}, {done, 0, ZMQ_POLLIN, 0}};
  while (true) {
    if (zmq_poll(items, 2, a.timeout_ms) < 0) die("poll");
    if (items[1].revents & ZMQ_POLLIN) break; // the sink has every result
    if (!(items[0].revents & ZMQ_POLLIN)) {
      std::fprintf(stderr, "zmq_credit vent: nothing for %d ms\n", a.timeout_ms);
      return 1;
    }
    // Drain what is there, then spend the credit.
    while (true) {
      const int n = zmq_recv(router, rid, sizeof rid, ZMQ_DONTWAIT);
      if (n < 0) break;
      if (zmq_recv(router, &grant, sizeof grant, 0) < 0) die("recv");
      credit[std::string(rid, static_cast<std::size_t>(n))] += grant;
    }
    bool sent = true;
    while (next < a.total && sent) {
      sent = false;
      for (auto& [id, c] : credit) {
        if (c == 0 || next >= a.total) continue;
        if (zmq_send(router, id.data(), id.size(), ZMQ_SNDMORE) < 0) die("send");
        if (zmq_send(router, &next, sizeof next, 0) < 0) die("send");
        ++next;
        --c;
        sent = true;
      }
    }
  }
  zmq_close(router);
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
