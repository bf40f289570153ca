// Unit tests for the ventilator's worker table (lib/src/ventilator/worker_table.cpp): credit from what
// workers report, liveness against an injected clock, and the round-robin order of dispatch.
#include "ventilator/worker_table.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using mtask::millis;
using mtask::worker_table;
using mtask::wire::worker_status;

namespace {

constexpr std::uint64_t job = 5;
const mtask::time_point t0{std::chrono::seconds(1000)};

// A status saying `free` slots are idle and every batch numbered below `next_seq` has arrived.
worker_status status(std::uint32_t free, std::uint64_t next_seq = 1, std::uint64_t of_job = job) {
  return worker_status{.job = of_job, .name = "host:1", .slots = 4, .free = free, .next_seq = next_seq};
}

using names = std::vector<std::string>;

} // namespace

TEST_CASE("worker table says joined, then known, for a worker's status reports") {
  worker_table t(job);
  CHECK(t.on_status("a", status(4), t0).how == worker_table::seen::joined);
  CHECK(t.on_status("a", status(4), t0).how == worker_table::seen::known);
  CHECK(t.size() == 1);
  CHECK(t.live_count() == 1);
  CHECK(t.find("b") == nullptr);
}

TEST_CASE("worker table records what a worker reported") {
  worker_table t(job);
  const worker_status s{.job = job, .name = "box:77", .slots = 8, .free = 6, .completed_job = 4};
  (void)t.on_status("a", s, t0);
  const auto* w = t.find("a");
  REQUIRE(w != nullptr);
  CHECK(w->name == "box:77");
  CHECK(w->slots == 8);
  CHECK(w->free == 6);
  CHECK(w->in_flight_tasks == 0);
  CHECK(w->next_seq == 1);
  CHECK(w->completed_job == 4);
  CHECK(w->last_seen == t0);
  CHECK(w->alive);
}

TEST_CASE("worker credit is free slots minus tasks in batches the worker had not received when it reported") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  CHECK(t.find("a")->credit() == 4);

  t.on_sent("a", 1, 3);
  CHECK(t.find("a")->in_flight_tasks == 3);
  CHECK(t.find("a")->next_seq == 2);
  CHECK(t.find("a")->credit() == 1);

  // A report from before batch 1 arrived: still in flight.
  (void)t.on_status("a", status(4, 1), t0);
  CHECK(t.find("a")->credit() == 1);

  // Batch 1 arrived; three slots busy, one left.
  (void)t.on_status("a", status(1, 2), t0);
  CHECK(t.find("a")->in_flight_tasks == 0);
  CHECK(t.find("a")->resolved_below == 2);
  CHECK(t.find("a")->credit() == 1);

  t.on_sent("a", 2, 1);
  CHECK(t.find("a")->credit() == 0);
}

TEST_CASE("worker credit goes negative when more is in flight than the worker has free") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.on_sent("a", 1, 1);
  t.on_sent("a", 2, 3);
  (void)t.on_status("a", status(0, 2), t0);
  CHECK(t.find("a")->credit() == -3);
  CHECK(t.with_credit().empty());
}

TEST_CASE("worker table hands back the batches a worker reports lost, once") {
  worker_table t(job);
  (void)t.on_status("a", status(8), t0);
  t.on_sent("a", 1, 2);
  t.on_sent("a", 2, 2);
  t.on_sent("a", 3, 2);
  auto s = status(6, 4);
  s.lost = {{.first = 1, .count = 2}};
  auto out = t.on_status("a", s, t0);
  CHECK(out.lost_batches == std::vector<std::uint64_t>{1, 2});
  CHECK(t.find("a")->in_flight_tasks == 0);
  CHECK(t.find("a")->credit() == 6);
  // The same report again (a duplicate, or the worker has not heard they are settled): nothing more.
  CHECK(t.on_status("a", s, t0).lost_batches.empty());
}

TEST_CASE("worker table counts batches of another job as not yet received") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.on_sent("a", 1, 3);
  (void)t.on_status("a", status(4, 10, job - 1), t0);
  CHECK(t.find("a")->in_flight_tasks == 3);
  CHECK(t.find("a")->credit() == 1);
}

TEST_CASE("worker table clamps a reported batch number to what was sent so a peer cannot inflate its credit") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.on_sent("a", 1, 2);
  (void)t.on_status("a", status(4, 9), t0);
  CHECK(t.find("a")->resolved_below == 2);
  CHECK(t.find("a")->credit() == 4);

  // A brand new worker already in our job (it served the process we restarted as) gets none of
  // them counted either: they are settled, and our batches to it are numbered after them.
  (void)t.on_status("b", status(3, 100), t0);
  CHECK(t.find("b")->resolved_below == 100);
  CHECK(t.find("b")->next_seq == 100);
  CHECK(t.find("b")->credit() == 3);
  // A claim near the counter's end is not taken up (our numbers must not wrap).
  (void)t.on_status("c", status(3, std::uint64_t{1} << 63), t0);
  CHECK(t.find("c")->next_seq == 1);
  CHECK(t.find("c")->credit() == 3);
}

TEST_CASE("worker table adopting a restarted job numbers each worker's batches after the ones it has") {
  worker_table t(job - 1); // the job id drawn at start, before the sink named the job we continue
  // A worker of the job we continue reports that job's numbers: they mean nothing in ours yet.
  (void)t.on_status("a", status(4, 7), t0);
  CHECK(t.find("a")->next_seq == 1);
  t.adopt_job(job);
  CHECK(t.find("a")->credit() == 0); // until it speaks in the adopted job's numbers
  (void)t.on_status("a", status(4, 7), t0);
  CHECK(t.find("a")->next_seq == 7);
  CHECK(t.find("a")->resolved_below == 7);
  CHECK(t.find("a")->credit() == 4);
  t.on_sent("a", 7, 2);
  CHECK(t.find("a")->credit() == 2);
  // Once we have sent it a batch, its reports are clamped as always.
  (void)t.on_status("a", status(4, 50), t0);
  CHECK(t.find("a")->next_seq == 8);
  CHECK(t.find("a")->credit() == 4);
}

TEST_CASE("worker table gives an unreachable worker no credit until it speaks again") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.on_unreachable("a");
  CHECK(t.find("a")->credit() == 0);
  CHECK(t.with_credit().empty());
  CHECK(t.total_credit() == 0);
  (void)t.on_status("a", status(4), t0);
  CHECK(t.find("a")->credit() == 4);
}

TEST_CASE("worker table ignores tasks sent to a worker it does not know") {
  worker_table t(job);
  t.on_sent("ghost", 1, 3);
  CHECK(t.size() == 0);
  CHECK(t.find("ghost") == nullptr);
}

TEST_CASE("worker table marks workers silent for longer than the timeout as lost") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  (void)t.on_status("b", status(4), t0 + millis(2000));

  // Silent for exactly the timeout is not longer than it.
  CHECK(t.expire(t0 + millis(3000), millis(3000)).empty());
  CHECK(t.expire(t0 + millis(3001), millis(3000)) == names{"a"});
  CHECK_FALSE(t.find("a")->alive);
  CHECK(t.find("b")->alive);
  CHECK(t.live() == names{"b"});
  CHECK(t.live_count() == 1);
  CHECK(t.size() == 2);

  // Already lost: not reported again.
  CHECK(t.expire(t0 + millis(4000), millis(3000)).empty());
  CHECK(t.expire(t0 + millis(5001), millis(3000)) == names{"b"});
  CHECK(t.live().empty());
  CHECK(t.live_count() == 0);
}

TEST_CASE("worker table reports every worker that went silent in one expiry") {
  worker_table t(job);
  for (const char* id : {"c", "a", "b"}) (void)t.on_status(id, status(1), t0);
  CHECK(t.expire(t0 + millis(101), millis(100)) == names{"a", "b", "c"});
}

TEST_CASE("worker table keeps a worker alive on any message it sends") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.touch("a", t0 + millis(2500));
  CHECK(t.find("a")->last_seen == t0 + millis(2500));
  CHECK(t.expire(t0 + millis(5000), millis(3000)).empty());
  CHECK(t.expire(t0 + millis(5501), millis(3000)) == names{"a"});
}

TEST_CASE("worker table neither revives a lost worker on touch nor learns an unknown one") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  REQUIRE(t.expire(t0 + millis(200), millis(100)) == names{"a"});
  t.touch("a", t0 + millis(300));
  CHECK_FALSE(t.find("a")->alive);
  CHECK(t.find("a")->last_seen == t0);
  t.touch("b", t0 + millis(300));
  CHECK(t.size() == 1);
}

TEST_CASE("worker table says returned for a lost worker that reports again, and keeps its batches in flight") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  t.on_sent("a", 1, 1);
  t.on_sent("a", 2, 2);
  REQUIRE(t.expire(t0 + millis(3001), millis(3000)) == names{"a"});

  CHECK(t.on_status("a", status(4, 2), t0 + millis(4000)).how == worker_table::seen::returned);
  const auto* w = t.find("a");
  REQUIRE(w != nullptr);
  CHECK(w->alive);
  CHECK(w->in_flight_tasks == 2);
  CHECK(w->credit() == 2);
  CHECK(w->last_seen == t0 + millis(4000));
  CHECK(t.live() == names{"a"});
  CHECK(t.on_status("a", status(4, 2), t0 + millis(4100)).how == worker_table::seen::known);
}

TEST_CASE("worker table marks a worker lost when it says goodbye, once") {
  worker_table t(job);
  (void)t.on_status("a", status(4), t0);
  (void)t.on_status("b", status(4), t0);
  CHECK(t.on_bye("a"));
  CHECK_FALSE(t.on_bye("a"));
  CHECK_FALSE(t.on_bye("nobody"));
  CHECK_FALSE(t.find("a")->alive);
  CHECK(t.live() == names{"b"});
  CHECK(t.with_credit() == names{"b"});
  // Gone already: the heartbeat timeout does not report it a second time.
  CHECK(t.expire(t0 + millis(10000), millis(3000)) == names{"b"});
  CHECK(t.on_status("a", status(4), t0 + millis(10000)).how == worker_table::seen::returned);
}

TEST_CASE("worker table lists workers with credit round robin, starting after the one served last") {
  worker_table t(job);
  for (const char* id : {"d", "b", "a", "c"}) (void)t.on_status(id, status(2), t0);
  CHECK(t.with_credit() == names{"a", "b", "c", "d"});
  t.served("b");
  CHECK(t.with_credit() == names{"c", "d", "a", "b"});
  t.served("d");
  CHECK(t.with_credit() == names{"a", "b", "c", "d"});
  t.served("a");
  CHECK(t.with_credit() == names{"b", "c", "d", "a"});
}

TEST_CASE("worker table leaves out workers without credit and lost workers from the round robin") {
  worker_table t(job);
  for (const char* id : {"a", "b", "c", "d"}) (void)t.on_status(id, status(2), t0);
  (void)t.on_status("c", status(0), t0);
  t.on_sent("a", 1, 2);
  (void)t.on_bye("d");
  CHECK(t.with_credit() == names{"b"});

  // Serving a worker that has since been lost still moves the start past it.
  (void)t.on_status("a", status(2, 2), t0);
  (void)t.on_status("c", status(1), t0);
  t.served("d");
  CHECK(t.with_credit() == names{"a", "b", "c"});
  t.served("b");
  CHECK(t.with_credit() == names{"c", "a", "b"});
}

TEST_CASE("worker table reports a worker idle only after it held nothing for longer than the timeout") {
  worker_table t(job);
  auto busy = status(0, 1);
  busy.busy = 3;
  (void)t.on_status("a", busy, t0);
  CHECK(t.idle_for(t0 + millis(5000), millis(1000)).empty());
  (void)t.on_status("a", status(4, 1), t0 + millis(100)); // busy 0: idle from here
  CHECK(t.idle_for(t0 + millis(1100), millis(1000)).empty());
  CHECK(t.idle_for(t0 + millis(1101), millis(1000)) == names{"a"});
  // A batch sent and not yet received: not idle, whatever it says.
  t.on_sent("a", 1, 2);
  (void)t.on_status("a", status(4, 1), t0 + millis(1200));
  CHECK(t.idle_for(t0 + millis(9000), millis(1000)).empty());
}

TEST_CASE("worker table forgets a worker's idleness as soon as tasks are sent to it") {
  worker_table t(job);
  (void)t.on_status("a", status(4, 1), t0);
  CHECK(t.idle_for(t0 + millis(2000), millis(1000)) == names{"a"});
  t.on_sent("a", 1, 1);
  CHECK(t.idle_for(t0 + millis(9000), millis(1000)).empty());
}
