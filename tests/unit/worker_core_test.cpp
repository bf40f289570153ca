// Unit tests for the worker's core (lib/src/worker/worker_core.cpp), driven with no socket, process
// or clock: a fake network records the frames, a fake runner finishes tasks when the test says so.
#include "worker/worker_core.hpp"

#include "common/log.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <csignal>
#include <limits>
#include <string>
#include <variant>
#include <vector>

using namespace mtask;

namespace {

constexpr std::uint64_t job = 7;
constexpr const char* sink_ep = "tcp://127.0.0.1:5558";
const time_point t0{std::chrono::seconds(1000)};

// Runs up to `slots` tasks; each finishes when the test calls finish_all(), its output its payload.
class fake_runner : public task_runner {
 public:
  explicit fake_runner(std::size_t slots) : slots_(slots) {}
  [[nodiscard]] bool has_room() const override { return running_.size() < slots_; }
  void start(job_task t, time_point /*now*/) override {
    started.push_back(t.task.id);
    running_.push_back(std::move(t));
  }
  [[nodiscard]] std::size_t running() const override { return running_.size(); }
  void poll_items(std::vector<pollfd>& /*fds*/) const override {}
  void on_ready(const std::vector<pollfd>& /*fds*/, time_point /*now*/) override {}
  void stop(int sig) override { stopped_with = sig; }

  void finish_all() {
    for (auto& t : running_) {
      auto r = result_for(t);
      r.output = t.task.payload;
      r.runtime_us = 100;
      report(t, std::move(r));
    }
    running_.clear();
  }

  std::vector<std::uint64_t> started; // task ids, in the order they started
  int stopped_with = 0;

 private:
  std::size_t slots_;
  std::vector<job_task> running_;
};

class fake_io : public worker_io {
 public:
  send_result send_to_ventilator(std::string_view frame) override {
    if (ventilator_answer == send_result::sent) to_ventilator.emplace_back(frame);
    return ventilator_answer;
  }
  void connect_sink(const std::string& endpoint) override { connected.push_back(endpoint); }
  [[nodiscard]] std::uint64_t wall_clock_us() const override { return wall_us; }
  std::uint64_t wall_us = 1'800'000'000'000'000; // the wall clock results' start_us is taken from
  send_result send_to_sink(std::string_view frame) override {
    if (connected.empty()) return send_result::unreachable;
    to_sink.emplace_back(frame);
    return send_result::sent;
  }

  [[nodiscard]] std::vector<wire::worker_status> statuses() const {
    std::vector<wire::worker_status> out;
    for (const auto& f : to_ventilator) {
      auto m = wire::decode(f);
      if (auto* s = std::get_if<wire::worker_status>(&m)) out.push_back(*s);
    }
    return out;
  }
  [[nodiscard]] wire::worker_status last_status() const {
    auto all = statuses();
    REQUIRE(!all.empty());
    return all.back();
  }
  [[nodiscard]] std::vector<wire::result> results() const {
    std::vector<wire::result> out;
    for (const auto& f : to_sink) {
      auto m = std::get<wire::results_msg>(wire::decode(f));
      out.insert(out.end(), m.results.begin(), m.results.end());
    }
    return out;
  }

  send_result ventilator_answer = send_result::sent;
  std::vector<std::string> to_ventilator;
  std::vector<std::string> to_sink;
  std::vector<std::string> connected;
};

worker_config config(unsigned slots = 4) {
  return worker_config{.name = "host:1",
                       .slots = slots,
                       .prefetch = 0,
                       .heartbeat = millis(250),
                       .heartbeat_timeout = millis(3000),
                       .ventilator_endpoint = "tcp://127.0.0.1:5557"};
}

// A batch of tasks `first`, `first` + 1, ... whose payloads are their ids, or `payload` when given.
std::string tasks(std::uint64_t seq, std::uint64_t first, std::size_t n, const std::string& payload = {},
                  std::uint64_t of_job = job) {
  wire::tasks_msg m{.job = of_job, .seq = seq, .terminator = "\n", .sink_endpoint = sink_ep};
  for (std::uint64_t id = first; id < first + n; ++id) {
    m.tasks.push_back(wire::task{
        .id = id, .attempt = 1, .payload = payload.empty() ? std::to_string(id) : payload, .retries_left = 2});
  }
  return wire::encode(m);
}

std::string vent_status(std::uint64_t sent_seq, std::uint64_t resolved_below = 0, bool complete = false,
                        std::uint64_t of_job = job) {
  return wire::encode(
      wire::vent_status{.job = of_job, .complete = complete, .sent_seq = sent_seq, .resolved_below = resolved_below});
}

// Advances until nothing runs or waits: every task received has been run and its result sent.
void drain(worker_core& core, fake_runner& runner, time_point now) {
  for (int i = 0; i < 100; ++i) {
    core.advance(now);
    if (core.busy() == 0) return;
    runner.finish_all();
  }
  FAIL("the worker never drained");
}

// Captures log lines (warnings and errors) for the life of the object.
struct captured_log {
  captured_log() : was(log::current_level()) {
    log::set_level(log::level::warn);
    log::set_sink([this](std::string_view line) { lines.emplace_back(line); });
  }
  ~captured_log() {
    log::set_sink(nullptr);
    log::set_level(was);
  }
  captured_log(const captured_log&) = delete;
  captured_log& operator=(const captured_log&) = delete;
  log::level was;
  std::vector<std::string> lines;
};

} // namespace

TEST_CASE("worker core offers credit at start") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.advance(t0);
  const auto s = io.last_status();
  CHECK(s.job == 0);
  CHECK(s.slots == 4);
  CHECK(s.free == 4);
  CHECK(s.busy == 0);
  CHECK(s.next_seq == 1);
  CHECK(s.lost.empty());
  CHECK_FALSE(core.wants_to_send_status());
}

TEST_CASE("worker core keeps a status it could not send due until it goes") {
  fake_runner runner(4);
  fake_io io;
  io.ventilator_answer = send_result::full; // not connected yet
  worker_core core(config(4), runner, io, t0);
  core.advance(t0);
  CHECK(core.wants_to_send_status());
  CHECK(core.next_wakeup(t0) == t0 + millis(10));
  io.ventilator_answer = send_result::sent;
  core.advance(t0 + millis(1));
  CHECK(io.to_ventilator.size() == 1);
  CHECK_FALSE(core.wants_to_send_status());
  CHECK(core.next_wakeup(t0 + millis(1)) == t0 + millis(251)); // the next heartbeat
}

TEST_CASE("worker core runs a batch and pushes its results") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.advance(t0);
  core.on_message(tasks(1, 10, 3), t0);
  CHECK(core.busy() == 3);
  drain(core, runner, t0);
  CHECK(io.connected == std::vector<std::string>{sink_ep});
  const auto results = io.results();
  REQUIRE(results.size() == 3);
  for (std::size_t i = 0; i < results.size(); ++i) {
    CHECK(results[i].id == 10 + i);
    CHECK(results[i].status == wire::task_status::ok);
    CHECK(results[i].output == std::to_string(10 + i));
    CHECK(results[i].retries_left == 2);
  }
  const auto s = io.last_status();
  CHECK(s.job == job);
  CHECK(s.next_seq == 2);
  CHECK(s.free == 4);
  CHECK(s.busy == 0);
}

TEST_CASE("worker core adds per-attempt details to results only when their batch asks") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.advance(t0);
  SUBCASE("not asked: nothing more travels") {
    core.on_message(tasks(1, 10, 2, "payload"), t0);
    drain(core, runner, t0);
    const auto results = io.results();
    REQUIRE(results.size() == 2);
    for (const auto& r : results) {
      CHECK(r.start_us == 0);
      CHECK(r.payload_bytes == 0);
      CHECK(r.command.empty());
    }
  }
  SUBCASE("asked (the sink keeps a joblog): start on the wall clock, payload size, what ran") {
    auto m = std::get<wire::tasks_msg>(wire::decode(tasks(1, 10, 2, "payload")));
    m.details = true;
    core.on_message(wire::encode(m), t0);
    drain(core, runner, t0);
    const auto results = io.results();
    REQUIRE(results.size() == 2);
    for (const auto& r : results) {
      CHECK(r.start_us == io.wall_us - 100); // the fake runner's tasks take 100 µs
      CHECK(r.payload_bytes == 7);
      CHECK(r.payload == "payload"); // the task itself (for --tag); what ran is that, for a built-in
      CHECK(r.command.empty());      // (only a command runner names a command line)
    }
  }
}

TEST_CASE("worker core starts at most half its capacity per turn") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 4), t0);
  core.advance(t0);
  CHECK(runner.started.size() == 2);
}

TEST_CASE("worker core reports a gap in batch numbers as lost in its next status") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.on_message(tasks(4, 5, 1), t0);
  CHECK(core.wants_to_send_status());
  core.advance(t0);
  const auto s = io.last_status();
  CHECK(s.next_seq == 5);
  CHECK(s.lost == std::vector<wire::id_range>{{.first = 2, .count = 2}});
  drain(core, runner, t0);
  CHECK(runner.started == std::vector<std::uint64_t>{0, 5}); // the tasks that did arrive still run
}

TEST_CASE("worker core marks a batch lost when a vent_status says it was sent and it never came") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.on_message(vent_status(3), t0);
  core.advance(t0);
  auto s = io.last_status();
  CHECK(s.next_seq == 4);
  CHECK(s.lost == std::vector<wire::id_range>{{.first = 2, .count = 2}});

  SUBCASE("a vent_status of a job it never got a batch of switches to that job") {
    core.on_message(vent_status(2, 0, false, job + 1), t0);
    core.advance(t0);
    s = io.last_status();
    CHECK(s.job == job + 1);
    CHECK(s.next_seq == 3);
    CHECK(s.lost == std::vector<wire::id_range>{{.first = 1, .count = 2}});
  }
  SUBCASE("a vent_status of what it already has marks nothing") {
    core.on_message(vent_status(3), t0);
    core.advance(t0);
    CHECK(io.last_status().lost == std::vector<wire::id_range>{{.first = 2, .count = 2}});
  }
}

TEST_CASE("worker core drops a batch naming a malformed sink endpoint, and it is reported lost") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  wire::tasks_msg bad{.job = job, .seq = 1, .terminator = "\n", .sink_endpoint = "nowhere"};
  bad.tasks.push_back(wire::task{.id = 0, .payload = "0"});
  core.on_message(wire::encode(bad), t0);
  CHECK(core.busy() == 0);
  CHECK(core.malformed() == 1);
  core.on_message(tasks(2, 1, 1), t0);
  drain(core, runner, t0);
  CHECK(runner.started == std::vector<std::uint64_t>{1});
  CHECK(io.last_status().lost == std::vector<wire::id_range>{{.first = 1, .count = 1}});
  REQUIRE(log.lines.size() == 1);
  CHECK(
      log.lines[0].ends_with("warn: dropped tasks: sink endpoint: 'nowhere' is not an endpoint (expected "
                             "tcp://HOST:PORT or ipc://PATH)\n"));
}

TEST_CASE("worker core does not run a batch delivered twice") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 2), t0);
  core.on_message(tasks(1, 0, 2), t0);
  CHECK(core.busy() == 2);
  drain(core, runner, t0);
  CHECK(runner.started == std::vector<std::uint64_t>{0, 1});
  CHECK(io.results().size() == 2);
  CHECK(io.last_status().lost.empty());
}

TEST_CASE("worker core forgets lost batches below resolved_below") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.on_message(tasks(3, 1, 1), t0);
  core.on_message(tasks(6, 2, 1), t0);
  core.advance(t0);
  CHECK(io.last_status().lost == std::vector<wire::id_range>{{.first = 2, .count = 1}, {.first = 4, .count = 2}});
  core.on_message(vent_status(6, 5), t0); // [4, 6) is not wholly below 5
  core.advance(t0 + millis(300));
  CHECK(io.last_status().lost == std::vector<wire::id_range>{{.first = 4, .count = 2}});
  core.on_message(vent_status(6, 6), t0);
  core.advance(t0 + millis(600));
  CHECK(io.last_status().lost.empty());
  CHECK(io.last_status().next_seq == 7);
}

TEST_CASE("worker core fails a result over the message limit as too_large and sends the others") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  auto cfg = config(4);
  cfg.max_message_bytes = 4096;
  worker_core core(cfg, runner, io, t0);
  core.on_message(tasks(1, 0, 1, "small"), t0);
  core.on_message(tasks(2, 1, 1, std::string(3500, 'x')), t0);
  core.on_message(tasks(3, 2, 1, "small too"), t0);
  drain(core, runner, t0);
  const auto results = io.results();
  REQUIRE(results.size() == 3);
  CHECK(results[0].status == wire::task_status::ok);
  CHECK(results[0].output == "small");
  CHECK(results[1].id == 1);
  CHECK(results[1].attempt == 1);
  CHECK(results[1].retries_left == 0); // final: --retries would only make the same output again
  CHECK(results[1].status == wire::task_status::too_large);
  CHECK(results[1].output.empty());
  CHECK(results[1].error == "result of 3500 bytes exceeds --max-message-bytes (4096)");
  CHECK(results[2].status == wire::task_status::ok);
  CHECK(results[2].output == "small too");
  for (const auto& f : io.to_sink) CHECK(f.size() <= 4096);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].ends_with("warn: task 1: result of 3500 bytes exceeds --max-message-bytes (4096)\n"));
}

TEST_CASE("worker core splits results into several messages under the limit") {
  fake_runner runner(24);
  fake_io io;
  auto cfg = config(24);
  cfg.max_message_bytes = 4096;
  worker_core core(cfg, runner, io, t0);
  core.on_message(tasks(1, 0, 12, std::string(300, 'y')), t0);
  core.advance(t0); // starts all 12: half of 24
  REQUIRE(runner.started.size() == 12);
  runner.finish_all();
  core.advance(t0);
  CHECK(io.to_sink.size() >= 2);
  for (const auto& f : io.to_sink) CHECK(f.size() <= 4096);
  const auto results = io.results();
  REQUIRE(results.size() == 12);
  for (std::size_t i = 0; i < results.size(); ++i) {
    CHECK(results[i].id == i);
    CHECK(results[i].status == wire::task_status::ok);
  }
}

TEST_CASE("worker core with --once exits 0 after its job completes, having told the ventilator") {
  fake_runner runner(4);
  fake_io io;
  auto cfg = config(4);
  cfg.once = true;
  worker_core core(cfg, runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  drain(core, runner, t0);
  CHECK_FALSE(core.exit_code());
  core.on_message(vent_status(1, 0, true), t0);
  core.advance(t0);
  CHECK(core.current_phase() == worker_core::phase::finished);
  CHECK(core.exit_code() == 0);
  CHECK(io.last_status().completed_job == job);
}

TEST_CASE("worker core with --once gives up when the ventilator goes silent") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  auto cfg = config(4);
  cfg.once = true;
  worker_core core(cfg, runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.advance(t0 + millis(3000));
  CHECK_FALSE(core.exit_code());
  core.advance(t0 + millis(3001));
  CHECK(core.exit_code() == 1);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].ends_with("the ventilator at 'tcp://127.0.0.1:5557' went away before its job completed\n"));
}

TEST_CASE("worker core gives up after the idle timeout without a ventilator") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  auto cfg = config(4);
  cfg.heartbeat = millis(10000);
  cfg.idle_timeout = millis(1000);
  worker_core core(cfg, runner, io, t0);
  core.advance(t0);
  CHECK(core.next_wakeup(t0) == t0 + millis(1001));
  core.advance(t0 + millis(1000));
  CHECK_FALSE(core.exit_code());
  core.advance(t0 + millis(1001));
  CHECK(core.exit_code() == 1);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].ends_with("giving up after 1000 ms without a ventilator at 'tcp://127.0.0.1:5557'\n"));
}

TEST_CASE("worker core stopped by a signal says bye, stops its tasks and exits 128 + signal") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.advance(t0);
  core.stop(SIGINT, t0);
  CHECK(core.exit_code() == 128 + SIGINT);
  CHECK(runner.stopped_with == SIGTERM);
  CHECK(io.to_ventilator.back() == wire::encode(wire::worker_bye{.job = job}));
}

TEST_CASE("worker core giving up says bye, stops its tasks, names the reason and exits 1") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.advance(t0);
  core.give_up("giving up: the sink will not take our results", t0);
  CHECK(core.exit_code() == 1);
  CHECK(runner.stopped_with == SIGTERM);
  CHECK(io.to_ventilator.back() == wire::encode(wire::worker_bye{.job = job}));
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].ends_with("error: giving up: the sink will not take our results\n"));
}

TEST_CASE("worker core stopped by SIGTERM says bye and exits 143") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message(tasks(1, 0, 1), t0);
  core.advance(t0);
  core.stop(15, t0);
  CHECK(core.exit_code() == 128 + 15);
  CHECK(runner.stopped_with == 15);
  CHECK(std::holds_alternative<wire::worker_bye>(wire::decode(io.to_ventilator.back())));
}

TEST_CASE("worker core ends with exit 1 on a frame of another protocol version") {
  captured_log log;
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.advance(t0);
  int version = 0;
  SUBCASE("a vent_status of version 1") {
    version = 1;
    core.on_message(std::string("\x94\x01\x04\x07\xc3", 5), t0); // [1, vent_status, 7, true]
  }
  SUBCASE("a vent_status of version 2, the one before ours") {
    version = 2;
    core.on_message(std::string("\x96\x02\x04\x07\xc3\x00\x00", 7), t0); // [2, vent_status, 7, true, 0, 0]
  }
  SUBCASE("a wrong_version from a ventilator of version 2") {
    version = 2;
    core.on_message(std::string("\x93\x02\x0b\x00", 4), t0); // [2, wrong_version, 0]
  }
  SUBCASE("a wrong_version from a ventilator of version 5") {
    version = 5;
    core.on_message(std::string("\x93\x05\x0b\x00", 4), t0); // [5, wrong_version, 0]
  }
  CHECK(core.current_phase() == worker_core::phase::finished);
  CHECK(core.exit_code() == 1);
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].ends_with(fmt::format(
      "error: the ventilator at 'tcp://127.0.0.1:5557' speaks protocol version {}; this worker speaks 4\n", version)));
}

TEST_CASE("worker core counts and drops a malformed frame") {
  fake_runner runner(4);
  fake_io io;
  worker_core core(config(4), runner, io, t0);
  core.on_message("garbage", t0);
  core.on_message(tasks(std::numeric_limits<std::uint64_t>::max(), 0, 1), t0); // no successor
  core.on_message(vent_status(std::numeric_limits<std::uint64_t>::max()), t0);
  core.advance(t0);
  CHECK(core.malformed() == 3);
  CHECK(core.busy() == 0);
  CHECK(io.last_status().next_seq == 1);
  CHECK_FALSE(core.exit_code());
}
