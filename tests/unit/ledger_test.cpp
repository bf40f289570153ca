// Unit tests for the ventilator's in-flight ledger (lib/src/ventilator/ledger.cpp): queue order, holders,
// attempts, acknowledgements and requeueing a lost worker's tasks.
#include "ventilator/ledger.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using mtask::ledger;
using mtask::wire::task;

namespace {

// A ledger holding tasks 0..n-1 with payloads "p0", "p1", ... (crashes never quarantine by default here).
ledger with_tasks(std::uint64_t n, mtask::ledger_limits limits = {.retries = 0, .max_crashes = 1000}) {
  ledger l(limits);
  for (std::uint64_t id = 0; id < n; ++id) l.add(id, "p" + std::to_string(id));
  return l;
}

std::vector<std::uint64_t> ids_of(const std::vector<task>& tasks) {
  std::vector<std::uint64_t> ids;
  for (const auto& t : tasks) ids.push_back(t.id);
  return ids;
}

using ids = std::vector<std::uint64_t>;

mtask::wire::ack ok(std::uint64_t id) { return {.id = id, .attempt = 1, .status = mtask::wire::task_status::ok}; }
mtask::wire::ack failed(std::uint64_t id, std::uint32_t attempt) {
  return {.id = id, .attempt = attempt, .status = mtask::wire::task_status::failed};
}

} // namespace

TEST_CASE("ledger starts empty") {
  ledger l;
  CHECK(l.empty());
  CHECK(l.size() == 0);
  CHECK(l.queued() == 0);
  CHECK(l.held() == 0);
  CHECK(l.take("w1", 5).empty());
}

TEST_CASE("ledger hands out queued tasks in input order as attempt 1 with their payloads") {
  auto l = with_tasks(3);
  CHECK(l.size() == 3);
  CHECK(l.queued() == 3);
  CHECK(l.held() == 0);
  CHECK_FALSE(l.empty());

  const auto got = l.take("w1", 2);
  CHECK(got == std::vector<task>{{.id = 0, .attempt = 1, .payload = "p0"}, {.id = 1, .attempt = 1, .payload = "p1"}});
  CHECK(l.size() == 3);
  CHECK(l.queued() == 1);
  CHECK(l.held() == 2);
}

TEST_CASE("ledger takes no more than is queued and nothing when asked for none") {
  auto l = with_tasks(2);
  CHECK(l.take("w1", 0).empty());
  CHECK(l.queued() == 2);
  CHECK(ids_of(l.take("w1", 10)) == ids{0, 1});
  CHECK(l.take("w2", 10).empty());
  CHECK(l.queued() == 0);
  CHECK(l.held() == 2);
}

TEST_CASE("ledger releases an acknowledged task whichever worker holds it") {
  auto l = with_tasks(3);
  (void)l.take("w1", 2);
  CHECK(l.acknowledge(ok(1)) == ledger::ack_outcome::released);
  CHECK(l.size() == 2);
  CHECK(l.held() == 1);
  CHECK(l.queued() == 1);
  CHECK(l.acknowledge(ok(0)) == ledger::ack_outcome::released);
  CHECK(l.size() == 1);
  CHECK(l.held() == 0);
}

TEST_CASE("ledger reports a duplicate or unknown acknowledgement as unknown and changes nothing") {
  auto l = with_tasks(2);
  (void)l.take("w1", 1);
  CHECK(l.acknowledge(ok(0)) == ledger::ack_outcome::released);
  CHECK(l.acknowledge(ok(0)) == ledger::ack_outcome::unknown);
  CHECK(l.acknowledge(ok(7)) == ledger::ack_outcome::unknown);
  CHECK(l.size() == 1);
  CHECK(l.queued() == 1);
  CHECK(l.held() == 0);
}

TEST_CASE("ledger requeues a lost worker's tasks at the front, in id order") {
  auto l = with_tasks(6);
  CHECK(ids_of(l.take("w1", 2)) == ids{0, 1});
  CHECK(ids_of(l.take("w2", 1)) == ids{2});
  CHECK(ids_of(l.take("w1", 2)) == ids{3, 4});
  REQUIRE(l.queued() == 1);

  CHECK(l.requeue_held_by("w1").requeued == ids{0, 1, 3, 4});
  CHECK(l.size() == 6);
  CHECK(l.queued() == 5);
  CHECK(l.held() == 1);

  const auto again = l.take("w3", 10);
  CHECK(again == std::vector<task>{{.id = 0, .attempt = 2, .payload = "p0"},
                                   {.id = 1, .attempt = 2, .payload = "p1"},
                                   {.id = 3, .attempt = 2, .payload = "p3"},
                                   {.id = 4, .attempt = 2, .payload = "p4"},
                                   {.id = 5, .attempt = 1, .payload = "p5"}});
  CHECK(l.held() == 6);
}

TEST_CASE("ledger requeues nothing for a worker that holds nothing") {
  auto l = with_tasks(2);
  (void)l.take("w1", 1);
  CHECK(l.requeue_held_by("w2").requeued.empty());
  CHECK(l.requeue_held_by("w1").requeued == ids{0});
  CHECK(l.requeue_held_by("w1").requeued.empty());
  CHECK(l.queued() == 2);
  CHECK(l.held() == 0);
}

TEST_CASE("ledger counts one more attempt each time a requeued task is taken again") {
  auto l = with_tasks(1);
  for (std::uint32_t attempt = 1; attempt <= 4; ++attempt) {
    CAPTURE(attempt);
    const auto got = l.take("w" + std::to_string(attempt), 1);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == task{.id = 0, .attempt = attempt, .payload = "p0"});
    CHECK(l.requeue_held_by("w" + std::to_string(attempt)).requeued == ids{0});
  }
  CHECK(l.size() == 1);
  CHECK(l.queued() == 1);
}

TEST_CASE("ledger removes a requeued task from the queue when its late result is acknowledged") {
  auto l = with_tasks(4);
  (void)l.take("w1", 3);
  CHECK(l.requeue_held_by("w1").requeued == ids{0, 1, 2});
  REQUIRE(l.queued() == 4);

  CHECK(l.acknowledge(ok(1)) == ledger::ack_outcome::released);
  CHECK(l.size() == 3);
  CHECK(l.queued() == 3);
  CHECK(l.held() == 0);
  CHECK(ids_of(l.take("w2", 10)) == ids{0, 2, 3});
  CHECK(l.acknowledge(ok(1)) == ledger::ack_outcome::unknown);
}

TEST_CASE("ledger releases a task acknowledged before it was ever dispatched") {
  auto l = with_tasks(3);
  CHECK(l.acknowledge(ok(1)) == ledger::ack_outcome::released);
  CHECK(l.size() == 2);
  CHECK(l.queued() == 2);
  CHECK(ids_of(l.take("w1", 10)) == ids{0, 2});
}

TEST_CASE("ledger is empty once every task is acknowledged") {
  auto l = with_tasks(3);
  (void)l.take("w1", 2);
  for (std::uint64_t id : {2u, 0u, 1u}) CHECK(l.acknowledge(ok(id)) == ledger::ack_outcome::released);
  CHECK(l.empty());
  CHECK(l.size() == 0);
  CHECK(l.queued() == 0);
  CHECK(l.held() == 0);
}

TEST_CASE("ledger queues tasks added after a requeue behind the requeued ones") {
  auto l = with_tasks(2);
  (void)l.take("w1", 2);
  (void)l.requeue_held_by("w1").requeued;
  l.add(2, "p2");
  CHECK(ids_of(l.take("w2", 10)) == ids{0, 1, 2});
}

TEST_CASE("ledger sends a task with the retries it has left and requeues a failure while some remain") {
  auto l = with_tasks(2, {.retries = 2, .max_crashes = 3});
  auto got = l.take("w1", 1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].retries_left == 2);
  CHECK(l.acknowledge(failed(0, 1)) == ledger::ack_outcome::retry);
  // The retry goes first, to a worker other than the one it failed on, with one retry fewer.
  got = l.take("w2", 1, true);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == task{.id = 0, .attempt = 2, .payload = "p0", .retries_left = 1});
  CHECK(l.acknowledge(failed(0, 2)) == ledger::ack_outcome::retry);
  got = l.take("w1", 1, true);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == task{.id = 0, .attempt = 3, .payload = "p0", .retries_left = 0});
  // No retries left: the failure is final and the task is released.
  CHECK(l.acknowledge(failed(0, 3)) == ledger::ack_outcome::released);
  CHECK(l.size() == 1);
}

TEST_CASE("ledger leaves a retried task for another worker when asked to avoid repeats") {
  auto l = with_tasks(2, {.retries = 1, .max_crashes = 3});
  (void)l.take("w1", 1);
  REQUIRE(l.acknowledge(failed(0, 1)) == ledger::ack_outcome::retry);
  CHECK(ids_of(l.take("w1", 1, true)) == ids{1});
  CHECK(ids_of(l.take("w2", 1, true)) == ids{0});
}

TEST_CASE("ledger ignores a failure acknowledged for an attempt that was superseded") {
  auto l = with_tasks(1, {.retries = 3, .max_crashes = 10});
  (void)l.take("w1", 1);
  (void)l.requeue_held_by("w1");
  (void)l.take("w2", 1); // attempt 2 now runs
  CHECK(l.acknowledge(failed(0, 1)) == ledger::ack_outcome::unknown);
  CHECK(l.queued() == 0);
  CHECK(l.acknowledge(ok(0)) == ledger::ack_outcome::released);
}

TEST_CASE("ledger quarantines a task once max_crashes workers died holding it") {
  auto l = with_tasks(2, {.retries = 0, .max_crashes = 2});
  (void)l.take("w1", 2);
  auto lost = l.requeue_held_by("w1");
  CHECK(lost.requeued == ids{0, 1});
  CHECK(lost.quarantined.empty());
  (void)l.take("w2", 1);
  lost = l.requeue_held_by("w2");
  CHECK(lost.requeued.empty());
  REQUIRE(lost.quarantined.size() == 1);
  const auto& r = lost.quarantined[0];
  CHECK(r.id == 0);
  CHECK(r.attempt == 2);
  CHECK(r.status == mtask::wire::task_status::crashed);
  CHECK(r.code == 2);
  CHECK(r.payload == "p0");
  CHECK(r.error == "2 worker(s) died running it; quarantined (--max-crashes 2)");
  // Quarantined: never handed out again, but still in the ledger until the sink acknowledges it.
  CHECK(ids_of(l.take("w3", 5)) == ids{1});
  CHECK(l.size() == 2);
  CHECK(l.acknowledge({.id = 0, .attempt = 2, .status = mtask::wire::task_status::crashed}) ==
        ledger::ack_outcome::released);
  CHECK(l.size() == 1);
}

TEST_CASE("ledger requeues without counting a crash when the task is not to blame, and prefers another worker") {
  auto l = with_tasks(2, {.retries = 0, .max_crashes = 1});
  (void)l.take("w1", 2);
  auto lost = l.requeue_held_by("w1", false);
  CHECK(lost.requeued == ids{0, 1});
  CHECK(lost.quarantined.empty()); // max_crashes 1 would have quarantined both had it counted
  CHECK(l.take("w1", 2, true).empty());
  CHECK(ids_of(l.take("w2", 2, true)) == ids{0, 1});
}

TEST_CASE("ledger keeps a task held for ever while a million others pass, in memory bounded by what is live") {
  ledger l({.retries = 1, .max_crashes = 1000});
  l.add(0, "long");
  CHECK(ids_of(l.take("slow", 1)) == ids{0});
  std::vector<task> batch;
  std::size_t widest = 0;
  for (std::uint64_t id = 1; id <= 1'000'000; ++id) {
    l.add(id, "short");
    l.take("fast", 1, false, batch);
    REQUIRE(batch.size() == 1);
    REQUIRE(batch[0].id == id);
    // Acknowledged a little out of order, as results from several workers arrive.
    if (id % 2 == 0) {
      REQUIRE(l.acknowledge(ok(id)) == ledger::ack_outcome::released);
      REQUIRE(l.acknowledge(ok(id - 1)) == ledger::ack_outcome::released);
    }
    widest = std::max(widest, l.span());
  }
  CHECK(l.size() == 1);
  CHECK(widest <= 4096 + 2); // the ring's minimum span, not a million

  // The straggler is still itself: a failure is retried, a lost holder requeues it, an ok releases it.
  CHECK(l.acknowledge(failed(0, 1)) == ledger::ack_outcome::retry);
  CHECK(l.take("slow", 1) == std::vector<task>{{.id = 0, .attempt = 2, .payload = "long", .retries_left = 0}});
  CHECK(l.requeue_held_by("slow").requeued == ids{0});
  CHECK(l.acknowledge(ok(999'999)) == ledger::ack_outcome::unknown);
  CHECK(l.acknowledge(ok(0)) == ledger::ack_outcome::released);
  CHECK(l.empty());
  CHECK(l.queued() == 0);
  CHECK(l.span() == 0);
}

TEST_CASE("ledger reuses the caller's batch: take() replaces its contents") {
  auto l = with_tasks(5);
  std::vector<task> batch{{.id = 99}};
  l.take("w1", 2, false, batch);
  CHECK(ids_of(batch) == ids{0, 1});
  l.take("w1", 0, false, batch);
  CHECK(batch.empty());
  l.take("w1", 9, false, batch);
  CHECK(ids_of(batch) == ids{2, 3, 4});
}

TEST_CASE("ledger requeues a batch that never reached its worker without counting an attempt or a crash") {
  auto l = with_tasks(6, {.retries = 0, .max_crashes = 1});
  std::vector<task> out;
  l.take("w1", 2, false, out, 1);
  l.take("w1", 2, false, out, 2);
  CHECK(l.requeue_batch("w1", 2) == 2);
  CHECK(l.requeue_batch("w1", 2) == 0); // already back
  CHECK(l.requeue_batch("nobody", 1) == 0);
  CHECK(l.queued() == 4);
  const auto again = l.take("w2", 2);
  CHECK(ids_of(again) == ids{2, 3});
  CHECK(again[0].attempt == 1); // the first attempt never ran
  // Batch 1 is still held by w1: losing w1 now (it confirmed batch 1) quarantines those (max_crashes 1).
  auto lost = l.requeue_held_by("w1", 2);
  CHECK(lost.requeued.empty());
  CHECK(lost.quarantined.size() == 2);
}

TEST_CASE("ledger counts a crash only for tasks of batches the lost worker confirmed receiving") {
  auto l = with_tasks(4, {.retries = 0, .max_crashes = 1});
  std::vector<task> out;
  l.take("w1", 2, false, out, 1);
  l.take("w1", 2, false, out, 2);
  // It confirmed batch 1 only (batches below 2): batch 2's tasks may never have reached it.
  auto lost = l.requeue_held_by("w1", 2);
  CHECK(lost.quarantined.size() == 2);
  CHECK(lost.quarantined[0].id == 0);
  CHECK(lost.requeued == ids{2, 3});
}

TEST_CASE("ledger releases every task below a cumulative acknowledgement, whatever its state") {
  auto l = with_tasks(6);
  (void)l.take("w1", 3); // 0, 1, 2 held; 3, 4, 5 queued
  CHECK(l.release_below(4) == 4);
  CHECK(l.release_below(4) == 0);
  CHECK(l.size() == 2);
  CHECK(l.queued() == 2);
  CHECK(ids_of(l.take("w1", 5)) == ids{4, 5});
  CHECK_FALSE(l.contains(0));
  CHECK(l.contains(5));
}

TEST_CASE("ledger keeps a task set aside out of the queue until the sink acknowledges it") {
  auto l = with_tasks(3);
  l.set_aside(1);
  CHECK(l.queued() == 2);
  CHECK(l.size() == 3);
  CHECK(ids_of(l.take("w1", 5)) == ids{0, 2});
  CHECK(l.acknowledge(ok(1)) == ledger::ack_outcome::released);
  CHECK_FALSE(l.contains(1));
}

TEST_CASE("ledger starts its ring again after a long gap in ids instead of filling it") {
  mtask::ledger l;
  l.add(0, "held");
  (void)l.take("w", 1);
  // A restarted ventilator read past 10 million tasks the sink held: the next id is far ahead.
  l.add(10'000'001, "next");
  CHECK(l.span() <= 4);
  CHECK(l.size() == 2);
  CHECK(l.contains(0));
  CHECK(l.acknowledge(mtask::wire::ack{.id = 0, .attempt = 1}) == mtask::ledger::ack_outcome::released);
  CHECK(l.take("w", 5).size() == 1);
}
