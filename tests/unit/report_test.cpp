// Unit tests for --report's page (lib/src/sink/report.cpp): every attempt or buckets, lanes,
// escaping, the totals it embeds, and its size for a million attempts.
#include "sink/report.hpp"

#include "mtask/error.hpp"

#include <doctest/doctest.h>

#include <queue>
#include <string>

using mtask::report_collector;
namespace wire = mtask::wire;

namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000'000; // µs since the epoch

wire::result_view attempt(std::uint64_t id, std::uint64_t start_ms, std::uint64_t runtime_ms,
                          wire::task_status status = wire::task_status::ok, std::uint32_t retries_left = 0) {
  return wire::result_view{.id = id,
                           .status = status,
                           .code = status == wire::task_status::ok ? 0 : 1,
                           .runtime_us = runtime_ms * 1000,
                           .retries_left = retries_left,
                           .start_us = t0 + start_ms * 1000,
                           .payload_bytes = 4,
                           .command = "echo"};
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// The embedded JSON block.
std::string data_of(const std::string& page) {
  const std::string open = R"(<script type="application/json" id="mtask-data">)";
  const auto from = page.find(open);
  REQUIRE(from != std::string::npos);
  const auto to = page.find("</script>", from);
  REQUIRE(to != std::string::npos);
  return page.substr(from + open.size(), to - from - open.size());
}

} // namespace

TEST_CASE("report draws every attempt of a small job, failures in their own colour") {
  report_collector r;
  r.on_attempt("w1", attempt(0, 0, 10));
  r.on_attempt("w1", attempt(1, 10, 10, wire::task_status::failed));
  r.on_attempt("w2", attempt(2, 0, 30));
  const auto page = r.to_html({});
  CHECK_FALSE(r.bucketed());
  CHECK(count(page, "<title>task ") == 3);
  CHECK(count(page, R"(<rect class="f" x=)") >= 1); // the failure's bar (and its throughput bar)
  const auto data = data_of(page);
  CHECK(count(data, R"("timeline":"attempts")") == 1);
  CHECK(count(data, R"("tasks":3,"by_status":{"ok":2,"failed":1,)") == 1);
  CHECK(count(data, R"({"name":"w1","attempts":2,"failures":1,)") == 1);
  CHECK(count(page, "workers' own clocks") == 1);
}

TEST_CASE("report switches to buckets past its limit of attempts drawn one by one") {
  report_collector r(report_collector::limits{.every_attempt = 10});
  for (std::uint64_t i = 0; i < 50; ++i) r.on_attempt("w", attempt(i, i * 10, 10));
  CHECK(r.bucketed());
  const auto page = r.to_html({});
  CHECK(count(page, "<title>task ") == 0);
  CHECK(count(page, "fill-opacity") >= 1);
  const auto data = data_of(page);
  CHECK(count(data, R"("timeline":"buckets")") == 1);
  CHECK(count(data, R"("tasks":50,)") == 1);
  CHECK(count(data, R"("lanes":1})") == 1); // back to back: one lane
}

TEST_CASE("report gives each attempt the first lane free at its start, drawn or bucketed") {
  for (std::size_t limit : {std::size_t{5000}, std::size_t{2}}) {
    CAPTURE(limit);
    report_collector r(report_collector::limits{.every_attempt = limit});
    // Arriving in end order: [5,15) overlaps [0,10); [10,20) takes the first lane again; [16,18)
    // the second, free since 15.
    r.on_attempt("w", attempt(0, 0, 10));
    r.on_attempt("w", attempt(1, 5, 10));
    r.on_attempt("w", attempt(3, 16, 2));
    r.on_attempt("w", attempt(2, 10, 10));
    r.on_attempt("v", attempt(4, 0, 20));
    const auto data = data_of(r.to_html({}));
    CHECK(count(data, R"({"name":"w","attempts":4,"failures":0,"busy_seconds":0.032000,"lanes":2})") == 1);
    CHECK(count(data, R"({"name":"v","attempts":1,"failures":0,"busy_seconds":0.020000,"lanes":1})") == 1);
  }
}

TEST_CASE("report counts totals as --stats does: final attempts by status, retries apart") {
  report_collector r(report_collector::limits{.failures = 2});
  r.on_attempt("w", attempt(0, 0, 1, wire::task_status::failed, 1)); // retried
  r.on_attempt("w", attempt(0, 1, 1, wire::task_status::failed, 0)); // failed for good
  r.on_attempt("w", attempt(1, 0, 1, wire::task_status::timed_out));
  r.on_attempt("w", attempt(2, 0, 1));
  const auto page = r.to_html({.job = 0xabc, .wall_seconds = 2, .duplicates = 3, .malformed = 4, .requeued = 5});
  const auto data = data_of(page);
  CHECK(count(data, R"({"job":{"id":"0000000000000abc","wall_seconds":2.000000,"tasks":3,)"
                    R"("by_status":{"ok":1,"failed":1,"signalled":0,"not_started":0,"timed_out":1,"crashed":0,)"
                    R"("too_large":0},"retries":1,"requeues":5,"duplicates_dropped":3,"malformed_dropped":4},)"
                    R"("attempts":4,)") == 1);
  // Three failed attempts, two listed.
  CHECK(count(data, R"("failures":{"total":3,"listed":[)") == 1);
  CHECK(count(data.substr(data.find(R"("failures":{)")), R"("final":false)") == 1);
  CHECK(count(page, "the first 2 are listed, 1 more are not") == 1);
}

TEST_CASE("report escapes worker names and commands: a script in a payload stays text") {
  report_collector r;
  auto a = attempt(0, 0, 5, wire::task_status::failed);
  a.command = R"(</script><script>alert("x")</script> & 'q')";
  r.on_attempt("<b>host</b>", a);
  const auto page = r.to_html({});
  CHECK(count(page, "<script") == 1); // the JSON block's own
  CHECK(count(page, "</script>") == 1);
  CHECK(count(page, "<b>") == 0);
  CHECK(count(page, "&lt;b&gt;host&lt;/b&gt;") >= 1);
  CHECK(count(page, "&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;") >= 1);
  // In the JSON, as \u003c escapes a JSON reader turns back into the bytes.
  CHECK(count(data_of(page), R"(\u003c/script\u003e\u003cscript\u003ealert(\"x\"))") >= 1);
}

TEST_CASE("report of a million attempts stays under 5 MB") {
  report_collector r;
  constexpr std::uint64_t workers = 16, slots = 8, per_slot = 1'000'000 / (workers * slots);
  std::array<std::string, workers> names;
  for (std::uint64_t w = 0; w < workers; ++w) names[w] = "host" + std::to_string(w) + ":1234";
  std::uint64_t id = 0;
  // Every slot of every worker runs one task of 1 to 40 ms after another, 1% failing; results
  // arrive in the order the tasks end, as they would.
  struct running {
    std::uint64_t end, start, slot, id;
    bool operator>(const running& o) const { return end > o.end; }
  };
  std::priority_queue<running, std::vector<running>, std::greater<>> slots_by_end;
  auto start_on = [&](std::uint64_t slot, std::uint64_t at) {
    const auto runtime = 1 + (id * 7919) % 40;
    slots_by_end.push(running{at + runtime, at, slot, id++});
  };
  for (std::uint64_t s = 0; s < workers * slots; ++s) start_on(s, 0);
  std::uint64_t done = 0, failed = 0;
  for (; done < per_slot * workers * slots; ++done) {
    const auto t = slots_by_end.top();
    slots_by_end.pop();
    r.on_attempt(names[t.slot / slots], attempt(t.id, t.start, t.end - t.start,
                                                t.id % 100 == 0 ? wire::task_status::failed : wire::task_status::ok));
    failed += t.id % 100 == 0 ? 1 : 0;
    start_on(t.slot, t.end);
  }
  id = done;
  CHECK(r.bucketed());
  const auto page = r.to_html({});
  MESSAGE("page of ", id, " attempts: ", page.size(), " bytes");
  CHECK(page.size() < 5'000'000);
  const auto data = data_of(page);
  CHECK(count(data, R"("tasks":)" + std::to_string(id) + ",") == 1);
  CHECK(count(data, R"("lanes":8})") == workers);
  CHECK(count(data, R"("failures":{"total":)" + std::to_string(failed) + ",") == 1);
}

TEST_CASE("report of an empty job is a whole page with zero totals") {
  report_collector r;
  const auto page = r.to_html({});
  CHECK(page.rfind("</html>\n") == page.size() - 8);
  CHECK(count(data_of(page), R"("tasks":0,)") == 1);
  CHECK(count(data_of(page), R"("failures":{"total":0,"listed":[]})") == 1);
}

namespace {

// Attempts of several workers, some failed and retried, with long commands (a UTF-8 character
// across the page's cut) and some without a start time.
std::vector<std::pair<std::string, wire::result_view>> varied(std::uint64_t n, std::vector<std::string>& commands) {
  commands.clear();
  commands.reserve(n);
  std::vector<std::pair<std::string, wire::result_view>> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    commands.push_back(std::string(199, 'c') + "é and the rest " + std::to_string(i));
    const auto status = i % 11 == 0 ? wire::task_status::failed : wire::task_status::ok;
    auto r = attempt(i, (i * 37) % 5000, 1 + (i * 7919) % 300, status, i % 22 == 0 ? 1 : 0);
    r.command = commands.back();
    if (i % 97 == 0) r.start_us = 0;
    out.emplace_back(i % 3 == 0 ? "w1" : i % 3 == 1 ? "w2@host:1" : "w3", r);
  }
  return out;
}

} // namespace

TEST_CASE("report saved and restored (the journal's tally) draws the page it would have drawn uninterrupted") {
  for (std::size_t every : {std::size_t{5000}, std::size_t{40}}) { // attempts drawn one by one, then buckets
    CAPTURE(every);
    const report_collector::limits lim{.every_attempt = every};
    std::vector<std::string> commands;
    const auto attempts = varied(300, commands);
    report_collector whole(lim), first(lim);
    for (const auto& [w, r] : attempts) (void)whole.on_attempt(w, r);
    for (std::size_t i = 0; i < 120; ++i) (void)first.on_attempt(attempts[i].first, attempts[i].second);
    report_collector resumed(lim);
    resumed.restore(first.save());
    CHECK(resumed.save() == first.save());
    // Replayed as the journal keeps them: what ran cut to command_kept + 1 bytes when kept, else nothing.
    for (std::size_t i = 120; i < attempts.size(); ++i) {
      auto r = attempts[i].second;
      const bool kept = first.on_attempt(attempts[i].first, r);
      r.command = kept ? r.command.substr(0, report_collector::command_kept + 1) : std::string_view();
      r.payload = {};
      (void)resumed.on_attempt(attempts[i].first, r);
    }
    const report_collector::job_figures f{.job = 7, .wall_seconds = 9};
    CHECK(resumed.to_html(f) == whole.to_html(f));
  }
}

TEST_CASE("report refuses a saved collection that is cut short or has bytes after it") {
  report_collector r(report_collector::limits{.every_attempt = 3});
  for (std::uint64_t i = 0; i < 5; ++i) (void)r.on_attempt("w", attempt(i, i, 1, wire::task_status::failed));
  const auto saved = r.save();
  for (std::size_t n = 0; n < saved.size(); ++n) {
    CAPTURE(n);
    report_collector c(report_collector::limits{.every_attempt = 3});
    CHECK_THROWS_WITH_AS(c.restore(saved.substr(0, n)), doctest::Contains("--report in the journal: "), mtask::error);
  }
  report_collector c(report_collector::limits{.every_attempt = 3});
  CHECK_THROWS_WITH_AS(c.restore(saved + "x"), "--report in the journal: bytes after its fields", mtask::error);
  report_collector other_limits(report_collector::limits{.every_attempt = 3, .time_buckets = 100}); // not 240
  CHECK_THROWS_WITH_AS(other_limits.restore(saved), doctest::Contains("--report in the journal: "), mtask::error);
}

TEST_CASE("report survives a peer's absurd clock once bucketed: a start near 2^64 ends, drawn clamped") {
  report_collector r(report_collector::limits{.every_attempt = 10});
  for (std::uint64_t i = 0; i < 20; ++i) r.on_attempt("w", attempt(i, i * 10, 10));
  REQUIRE(r.bucketed());
  auto wild = attempt(20, 0, 10);
  wild.start_us = UINT64_MAX - 5; // its end would wrap; widening the axis for it never ended
  wild.runtime_us = UINT64_MAX / 2;
  r.on_attempt("w", wild);
  const auto data = data_of(r.to_html({}));
  CHECK(count(data, R"("tasks":21,)") == 1);
}
