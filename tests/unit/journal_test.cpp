// Unit tests for the sink's journal: its records and their recovery (lib/src/sink/journal.cpp),
// and the journal on disk (journal_file.cpp): create, lock, resume, cut the output back.
#include "sink/journal.hpp"
#include "sink/journal_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace journal = mtask::journal;
namespace wire = mtask::wire;

namespace {

journal::header head() {
  return journal::header{.routing_id = "s0123456789abcdef",
                         .output_path = "/tmp/out",
                         .output_dev = 1,
                         .output_ino = 2,
                         .keep_order = true,
                         .jsonl = false,
                         .failures_path = ""};
}

std::vector<journal::commit> commits() {
  return {
      journal::commit{.job = 9,
                      .output_end = 10,
                      .written_below = 2,
                      .final_ids = {{0, 2}, {4, 1}},
                      .held = {{.id = 4, .bytes = "four\n"}}},
      journal::commit{.job = 9,
                      .output_end = 10,
                      .written_below = 2,
                      .failed = 1,
                      .final_ids = {{7, 3}},
                      .held = {{.id = 7, .bytes = "x\n"}, {.id = 8, .bytes = ""}, {.id = 9, .bytes = "nine\n"}}},
      journal::commit{.job = 9,
                      .output_end = 30,
                      .failures_end = 5,
                      .written_below = 5,
                      .failed = 1,
                      .final_ids = {{2, 2}},
                      .held = {}},
  };
}

// A journal and the end offset of each record in it.
struct built {
  std::string bytes;
  std::vector<std::size_t> ends;
  std::vector<journal::state> states; // the state after each record
};

built build(bool with_completion = true) {
  built b;
  journal::state st;
  st.head = head();
  journal::append_record(b.bytes, st.head);
  b.ends.push_back(b.bytes.size());
  b.states.push_back(st);
  for (const auto& c : commits()) {
    journal::append_record(b.bytes, c);
    st.apply(c);
    b.ends.push_back(b.bytes.size());
    b.states.push_back(st);
  }
  if (with_completion) {
    const journal::completion done{.job = 9, .total = 10, .failed = 1};
    journal::append_record(b.bytes, done);
    st.complete = done;
    b.ends.push_back(b.bytes.size());
    b.states.push_back(st);
  }
  return b;
}

// A fresh folder, removed at the end of the test.
struct temp_dir {
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mtask-journal-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path / name).string(); }
  std::filesystem::path path;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void close_all(mtask::opened_journal& j) {
  for (int fd : {j.journal_fd, j.output_fd, j.failures_fd}) {
    if (fd >= 0) ::close(fd);
  }
}

} // namespace

TEST_CASE("journal crc32 is zlib's") {
  CHECK(journal::crc32("") == 0);
  CHECK(journal::crc32("123456789") == 0xCBF43926u);
}

TEST_CASE("journal id_set keeps a watermark and merges runs above it") {
  journal::id_set s;
  s.insert(5, 2);
  s.insert(8, 1);
  CHECK(s.watermark() == 0);
  CHECK(s.runs() == std::vector<wire::id_range>{{5, 2}, {8, 1}});
  s.insert(7, 1); // joins both neighbours
  CHECK(s.runs() == std::vector<wire::id_range>{{5, 4}});
  s.insert(0, 5); // reaches the run: absorbed
  CHECK(s.watermark() == 9);
  CHECK(s.above().empty());
  CHECK(s.contains(8));
  CHECK_FALSE(s.contains(9));
  s.insert(20, 5);
  s.insert(22, 10);
  CHECK(s.runs() == std::vector<wire::id_range>{{0, 9}, {20, 12}});
  CHECK(s.size() == 21);
  CHECK(s.contains(31));
  CHECK_FALSE(s.contains(32));
}

TEST_CASE("journal reads back what it wrote, record by record") {
  const auto b = build();
  const auto r = journal::read(b.bytes);
  CHECK_FALSE(r.torn);
  CHECK(r.valid_bytes == b.bytes.size());
  CHECK(r.st == b.states.back());
  CHECK(r.st.final_ids.runs() == std::vector<wire::id_range>{{0, 5}, {7, 3}});
  CHECK(r.st.written_below == 5);
  // Held results below written_below are in the output now: only 7, 8, 9 are still held.
  REQUIRE(r.st.held.size() == 3);
  CHECK(r.st.held.at(9) == "nine\n");
  CHECK(r.st.complete->total == 10);
}

TEST_CASE("journal torn at any byte recovers to its last whole record") {
  const auto b = build();
  for (std::size_t cut = b.ends[0]; cut < b.bytes.size(); ++cut) {
    CAPTURE(cut);
    const auto r = journal::read(std::string_view(b.bytes).substr(0, cut));
    std::size_t whole = 0;
    while (whole + 1 < b.ends.size() && b.ends[whole + 1] <= cut) ++whole;
    CHECK(r.valid_bytes == b.ends[whole]);
    CHECK(r.torn == (cut != b.ends[whole]));
    CHECK(r.st == b.states[whole]);
  }
  for (std::size_t cut = 0; cut < b.ends[0]; ++cut) {
    CAPTURE(cut);
    CHECK_THROWS_AS(journal::read(std::string_view(b.bytes).substr(0, cut)), journal::corrupt);
  }
}

TEST_CASE("journal followed by zeros (a power cut on a file system that extends files first) is a torn tail") {
  auto b = build(false);
  b.bytes.append(100, '\0');
  const auto r = journal::read(b.bytes);
  CHECK(r.torn);
  CHECK(r.valid_bytes == b.ends.back());
  CHECK(r.st == b.states.back());
}

TEST_CASE("journal damaged in the middle is corrupt at any byte, not a torn tail") {
  const auto b = build();
  // Every byte of the second record (the first commit), with whole records after it.
  for (std::size_t at = b.ends[0]; at < b.ends[1]; ++at) {
    CAPTURE(at);
    auto bad = b.bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x40);
    CHECK_THROWS_WITH_AS(journal::read(bad), doctest::Contains("at byte"), journal::corrupt);
  }
  auto bad = b.bytes;
  bad[b.ends[1] + 12] = static_cast<char>(bad[b.ends[1] + 12] ^ 1);
  const auto want = "at byte " + std::to_string(b.ends[1]) + ": a damaged record with whole records after it";
  CHECK_THROWS_WITH_AS(journal::read(bad), want.c_str(), journal::corrupt);
}

TEST_CASE("journal without its header, or of two jobs, is corrupt") {
  std::string bytes;
  journal::append_record(bytes, commits()[0]);
  CHECK_THROWS_WITH_AS(journal::read(bytes), "at byte 0: not an mtask journal (no header)", journal::corrupt);
  CHECK_THROWS_WITH_AS(journal::read("just some text\n"), doctest::Contains("no complete header"), journal::corrupt);
  auto b = build(false);
  auto other = commits()[2];
  other.job = 10;
  journal::append_record(b.bytes, other);
  CHECK_THROWS_WITH_AS(journal::read(b.bytes), doctest::Contains("records of two jobs"), journal::corrupt);
}

TEST_CASE("journal refuses a checksummed run of ids that is empty or wraps around") {
  for (const auto& run : {wire::id_range{.first = 5, .count = 0}, wire::id_range{.first = ~0ull - 1, .count = 3}}) {
    auto b = build(false);
    auto bad = commits()[2];
    bad.final_ids = {run};
    journal::append_record(b.bytes, bad);
    CHECK_THROWS_WITH_AS(journal::read(b.bytes), doctest::Contains("that is not one"), journal::corrupt);
  }
}

TEST_CASE("journal skips records of types it does not know from 65 on, and refuses others") {
  auto b = build(false);
  // Re-frame a body of type 65 (a later part's record) and of type 9.
  for (std::uint8_t type : {std::uint8_t{65}, std::uint8_t{9}}) {
    std::string body = std::string(1, static_cast<char>(type)) + "payload";
    std::string rec;
    for (int i = 0; i < 4; ++i) rec.push_back(static_cast<char>((body.size() >> (8 * i)) & 0xFF));
    const auto crc = journal::crc32(body);
    for (int i = 0; i < 4; ++i) rec.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
    rec += body;
    auto bytes = b.bytes + rec;
    if (type == 65) {
      CHECK(journal::read(bytes).st == b.states.back());
    } else {
      CHECK_THROWS_WITH_AS(journal::read(bytes), doctest::Contains("unknown type 9"), journal::corrupt);
    }
  }
}

TEST_CASE("journal snapshot (compaction) reads back as the same state") {
  for (bool completed : {false, true}) {
    const auto b = build(completed);
    const auto st = journal::read(b.bytes).st;
    const auto snap = journal::snapshot(st);
    CHECK(journal::read(snap).st == st);
    CHECK(journal::snapshot_size(st) >= snap.size()); // compaction's estimate is an upper bound
    CHECK(journal::snapshot_size(st) < snap.size() + 256);
  }
  // A long job in order compacts to a watermark: its size does not grow with the job.
  journal::state st;
  st.head = head();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    st.apply(journal::commit{.job = 1, .output_end = i + 1, .final_ids = {{i, 1}}});
  }
  st.apply(journal::commit{.job = 1, .output_end = 100001, .final_ids = {{200000, 1}}});
  const auto snap = journal::snapshot(st);
  CHECK(snap.size() < 300);
  CHECK(journal::read(snap).st.final_ids.runs() == std::vector<wire::id_range>{{0, 100000}, {200000, 1}});
}

TEST_CASE("journal file: a new journal is created, a second sink is refused, a restart resumes and cuts the output") {
  temp_dir dir;
  mtask::journal_paths p{
      .journal = dir / "j", .output = dir / "out", .failures = "", .keep_order = false, .jsonl = false};
  { std::ofstream(p.output) << "old contents"; }
  auto j = mtask::open_journal(p, "sABC");
  CHECK_FALSE(j.resumed);
  CHECK(j.st.head.routing_id == "sABC");
  CHECK(slurp(p.output).empty()); // a new job starts a new output
  CHECK_THROWS_WITH_AS(mtask::open_journal(p, "sDEF"),
                       ("journal '" + p.journal + "' is in use by another sink").c_str(), mtask::error);
  {
    mtask::journal_writer w(j, p.journal);
    w.append_output("a\nb\n");
    std::string rec;
    journal::append_record(rec, journal::commit{.job = 5, .output_end = w.output_offset(), .final_ids = {{0, 2}}});
    w.end_group(1, rec);
    w.append_output("c\n"); // written, never journaled
    w.end_group(2, "");
    REQUIRE(w.wait_idle(std::chrono::seconds(10)));
    CHECK(w.durable() == 2);
  }
  CHECK(slurp(p.output) == "a\nb\nc\n");
  auto again = mtask::open_journal(p, "sDEF");
  CHECK(again.resumed);
  CHECK(again.st.head.routing_id == "sABC"); // the same sink to the ventilator
  CHECK(again.st.job == 5);
  CHECK(again.st.final_ids.watermark() == 2);
  CHECK(slurp(p.output) == "a\nb\n"); // cut back to the journaled end
  close_all(again);
}

TEST_CASE("journal file refuses another output, a replaced output and a corrupt journal, changing nothing") {
  temp_dir dir;
  mtask::journal_paths p{
      .journal = dir / "j", .output = dir / "out", .failures = "", .keep_order = false, .jsonl = false};
  auto j = mtask::open_journal(p, "s1");
  {
    mtask::journal_writer w(j, p.journal);
    w.append_output("a\n");
    std::string rec;
    journal::append_record(rec, journal::commit{.job = 5, .output_end = 2, .final_ids = {{0, 1}}});
    w.end_group(1, rec);
    REQUIRE(w.wait_idle(std::chrono::seconds(10)));
  }
  auto other = p;
  other.output = dir / "other";
  CHECK_THROWS_WITH_AS(
      mtask::open_journal(other, "s2"),
      ("journal '" + p.journal + "' belongs to output '" + p.output + "', not '" + other.output + "'").c_str(),
      mtask::error);
  auto ordered = p;
  ordered.keep_order = true;
  CHECK_THROWS_WITH_AS(mtask::open_journal(ordered, "s2"), doctest::Contains("resume with the same flags"),
                       mtask::error);

  const auto journal_bytes = slurp(p.journal);
  {
    // The header's third byte damaged, with a whole record after it.
    auto bad = journal_bytes;
    bad[20] = static_cast<char>(bad[20] ^ 0x10);
    std::ofstream(p.journal, std::ios::binary | std::ios::trunc) << bad;
  }
  CHECK_THROWS_WITH_AS(mtask::open_journal(p, "s2"), doctest::Contains("is corrupt at byte 0"), mtask::error);
  CHECK(slurp(p.output) == "a\n");
  std::ofstream(p.journal, std::ios::binary | std::ios::trunc) << journal_bytes;

  // Replaced by another file (made while the first exists, so it cannot reuse its inode).
  std::ofstream(dir / "new") << "a\n";
  std::filesystem::rename(dir / "new", p.output);
  CHECK_THROWS_WITH_AS(mtask::open_journal(p, "s2"), doctest::Contains("is not the file journal"), mtask::error);
  std::filesystem::remove(p.output);
  CHECK_THROWS_WITH_AS(mtask::open_journal(p, "s2"), doctest::Contains("is missing"), mtask::error);
}

TEST_CASE("journal writer compaction replaces the journal with its snapshot and keeps the lock") {
  temp_dir dir;
  mtask::journal_paths p{
      .journal = dir / "j", .output = dir / "out", .failures = "", .keep_order = false, .jsonl = false};
  auto j = mtask::open_journal(p, "s1");
  journal::state st = j.st;
  {
    mtask::journal_writer w(j, p.journal);
    for (std::uint64_t i = 0; i < 50; ++i) {
      w.append_output("x\n");
      const journal::commit c{.job = 3, .output_end = w.output_offset(), .final_ids = {{i, 1}}};
      st.apply(c);
      std::string rec;
      journal::append_record(rec, c);
      w.end_group(i + 1, rec);
      w.flush();
    }
    w.end_group(51, journal::snapshot(st), true);
    REQUIRE(w.wait_idle(std::chrono::seconds(10)));
    CHECK(slurp(p.journal) == journal::snapshot(st));
    CHECK_THROWS_WITH_AS(mtask::open_journal(p, "s2"), doctest::Contains("is in use by another sink"), mtask::error);
  }
  auto again = mtask::open_journal(p, "s2");
  CHECK(again.st == st);
  close_all(again);
}

TEST_CASE("journal keeps the job's input (record 64), in snapshots too, and refuses a second job or input") {
  auto b = build(false);
  const journal::job_record job{.job = 9, .fingerprint = "file size=10 head=ab"};
  std::string bytes;
  journal::append_record(bytes, head());
  journal::append_record(bytes, job);
  for (const auto& c : commits()) journal::append_record(bytes, c);
  const auto st = journal::read(bytes).st;
  CHECK(st.job == 9);
  CHECK(st.fingerprint == "file size=10 head=ab");
  CHECK(st.final_ids == b.states.back().final_ids);
  // Compaction keeps it.
  CHECK(journal::read(journal::snapshot(st)).st == st);
  // A journal holding only the job (its first group never became durable) names the job.
  std::string only;
  journal::append_record(only, head());
  journal::append_record(only, job);
  CHECK(journal::read(only).st.job == 9);
  CHECK(journal::read(only).st.final_ids.size() == 0);
  // Torn in the middle of the job record: recovered to the header.
  const auto torn = journal::read(std::string_view(only).substr(0, only.size() - 3));
  CHECK(torn.torn);
  CHECK(torn.st.job == 0);
  // Another job, or another input for the same job: corrupt.
  std::string two = bytes;
  journal::append_record(two, journal::job_record{.job = 10, .fingerprint = job.fingerprint});
  CHECK_THROWS_WITH_AS(journal::read(two), doctest::Contains("two jobs"), journal::corrupt);
  std::string other = bytes;
  journal::append_record(other, journal::job_record{.job = 9, .fingerprint = "range 1:2:1"});
  CHECK_THROWS_WITH_AS(journal::read(other), doctest::Contains("two inputs"), journal::corrupt);
}

TEST_CASE("journal keeps a reduction's running total in its commits, the last one winning, in snapshots too") {
  std::string bytes;
  journal::append_record(bytes, head());
  auto cs = commits();
  cs[0].aggregate = "reduce sum\n1 1 5 0x0p+0 1 5 0x0p+0\n";
  cs[2].aggregate = std::string("reduce sum\n3 1 9 0x0p+0 1 9 0x0p+0\n") + std::string(1, '\0');
  for (const auto& c : cs) journal::append_record(bytes, c);
  const auto r = journal::read(bytes);
  REQUIRE(r.st.aggregate);
  CHECK(*r.st.aggregate == *cs[2].aggregate);
  CHECK(journal::read(journal::snapshot(r.st)).st == r.st);
  // A commit torn in its total is a torn commit: the state is the one before it.
  const auto torn = journal::read(std::string_view(bytes).substr(0, bytes.size() - 4));
  CHECK(torn.torn);
  CHECK(*torn.st.aggregate == *cs[0].aggregate);
}

TEST_CASE("journal writes the records of one write as one batch record, whole or torn together") {
  const auto b = build(true);
  std::string one;
  journal::append_record(one, commits()[0]);
  CHECK(journal::as_one_record(one) == one); // a single record is left as it is
  CHECK(journal::as_one_record("").empty());
  // Header alone, then the rest in one write.
  const std::string head_bytes = b.bytes.substr(0, b.ends[0]);
  const std::string rest = b.bytes.substr(b.ends[0]);
  const auto batch = journal::as_one_record(rest);
  CHECK(batch.size() == rest.size() + 9 - 4 * (b.ends.size() - 1)); // one frame and type; no inner checksums
  const auto whole = journal::read(head_bytes + batch);
  CHECK(whole.st == b.states.back());
  CHECK_FALSE(whole.torn);
  // A power cut anywhere in that write loses all of it, never some of its records.
  for (std::size_t cut = 1; cut < batch.size(); cut += 7) {
    CAPTURE(cut);
    const auto torn = journal::read(head_bytes + batch.substr(0, cut));
    CHECK(torn.torn);
    CHECK(torn.st == b.states.front());
  }
  // ...even when later bytes of it reached the disk and earlier ones did not (zeros in between).
  auto holed = batch;
  std::fill(holed.begin() + 20, holed.begin() + 40, '\0');
  const auto r = journal::read(head_bytes + holed);
  CHECK(r.torn);
  CHECK(r.st == b.states.front());
  // A batch whose checksum is good but whose records do not parse was written so: corrupt.
  std::string bad = batch;
  bad[9 + 2] = static_cast<char>(0x7f); // the first inner record's length, now past the batch
  std::string reframed;
  {
    const std::string body = bad.substr(8);
    for (int i = 0; i < 4; ++i) reframed.push_back(static_cast<char>((body.size() >> (8 * i)) & 0xFF));
    const auto crc = journal::crc32(body);
    for (int i = 0; i < 4; ++i) reframed.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
    reframed += body;
  }
  CHECK_THROWS_AS(journal::read(head_bytes + reframed), journal::corrupt);
}

namespace {

// Frames `body` as a whole, checksummed record (as the writer would).
std::string framed_record(const std::string& body) {
  std::string rec;
  for (int i = 0; i < 4; ++i) rec.push_back(static_cast<char>((body.size() >> (8 * i)) & 0xFF));
  const auto crc = journal::crc32(body);
  for (int i = 0; i < 4; ++i) rec.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return rec + body;
}

journal::header counting_head() {
  auto h = head();
  h.stats = true;
  h.report = true;
  h.started_us = 1'700'000'000'000'000;
  return h;
}

journal::attempt_entry an_attempt(std::uint32_t worker, std::uint64_t id, std::uint8_t status = 0, bool final = true) {
  return journal::attempt_entry{.worker = worker,
                                .id = id,
                                .attempt = final ? 2u : 1u,
                                .status = status,
                                .code = status == 0 ? 0 : -9,
                                .final = final,
                                .runtime_us = 1000 + id,
                                .start_us = 1'700'000'000'000'000 + id,
                                .command = id % 2 == 0 ? "echo " + std::to_string(id) : ""};
}

// Two groups of attempts from workers named in different orders, then (optionally) a tally.
std::vector<journal::commit> counted_commits() {
  return {
      journal::commit{
          .job = 9,
          .output_end = 4,
          .final_ids = {{0, 2}},
          .attempts = journal::attempt_log{.workers = {"w1", "w2"},
                                           .attempts = {an_attempt(0, 0), an_attempt(1, 5, 1, false), an_attempt(1, 1)},
                                           .duplicates = 0,
                                           .dropped = 1}},
      journal::commit{
          .job = 9,
          .output_end = 8,
          .final_ids = {{2, 2}, {5, 1}},
          .attempts = journal::attempt_log{.workers = {"w3", "w1"},
                                           .attempts = {an_attempt(0, 2), an_attempt(1, 3, 4), an_attempt(1, 5)},
                                           .duplicates = 7,
                                           .dropped = 1,
                                           .requeued = 2}},
  };
}

} // namespace

TEST_CASE("journal format 2 keeps each group's attempts, their workers' names merged across groups") {
  std::string bytes;
  journal::append_record(bytes, counting_head());
  for (const auto& c : counted_commits()) journal::append_record(bytes, c);
  const auto st = journal::read(bytes).st;
  CHECK(st.head == counting_head());
  CHECK(st.since.workers == std::vector<std::string>{"w1", "w2", "w3"});
  REQUIRE(st.since.attempts.size() == 6);
  CHECK(st.since.attempts[0] == an_attempt(0, 0));
  CHECK(st.since.attempts[1] == an_attempt(1, 5, 1, false));
  CHECK(st.since.attempts[3] == an_attempt(2, 2)); // "w3": the state's third name
  CHECK(st.since.attempts[4] == an_attempt(0, 3, 4));
  CHECK(st.since.duplicates == 7); // cumulative: the last commit's
  CHECK(st.since.dropped == 1);
  CHECK(st.since.requeued == 2);
  CHECK(st.final_ids.watermark() == 4);
}

TEST_CASE("journal tally replaces the attempts before it; a snapshot holds the tally and the attempts since") {
  journal::state st;
  st.head = counting_head();
  const auto commits = counted_commits();
  st.apply(commits[0]);
  st.apply(journal::tally{.stats = "stats bytes", .report = std::string("report\0bytes", 12)});
  CHECK(st.since.attempts.empty());
  CHECK(st.since.workers.empty());
  st.apply(commits[1]);
  CHECK(st.since.workers == std::vector<std::string>{"w3", "w1"});
  CHECK(st.since.attempts.size() == 3);
  const auto snap = journal::snapshot(st);
  CHECK(journal::read(snap).st == st);
  auto done = st;
  done.complete = journal::completion{.job = 9, .total = 6, .failed = 1, .ended_us = 1'700'000'000'123'456};
  CHECK(journal::read(journal::snapshot(done)).st == done); // its end time too (format 2)
  // Written record by record, the journal says the same.
  std::string bytes;
  journal::append_record(bytes, st.head);
  journal::append_record(bytes, commits[0]);
  journal::append_record(bytes, *st.saved);
  journal::append_record(bytes, commits[1]);
  CHECK(journal::read(bytes).st == st);
  // A tally after the completion is not one of ours.
  journal::append_record(bytes, journal::completion{.job = 9, .total = 6, .failed = 0});
  journal::append_record(bytes, *st.saved);
  CHECK_THROWS_WITH_AS(journal::read(bytes), doctest::Contains("a tally after the job's completion"), journal::corrupt);
}

TEST_CASE("journal refuses an attempt log cut short or of garbage, at every length, without reading past it") {
  std::string whole;
  journal::append_record(whole, counted_commits()[1]);
  const std::string body = whole.substr(8);
  std::string plain;
  auto no_attempts = counted_commits()[1];
  no_attempts.attempts.reset();
  journal::append_record(plain, no_attempts);
  const auto section = plain.size() - 8; // where the attempt log (tag 2) starts in the body
  std::string h;
  journal::append_record(h, counting_head());
  for (std::size_t n = section + 1; n < body.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(journal::read(h + framed_record(body.substr(0, n))), journal::corrupt);
  }
  CHECK(journal::read(h + framed_record(body)).st.since.attempts.size() == 3);
  // Checksummed garbage: never a crash, never an attempt beyond its log.
  std::uint64_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    auto bad = body;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      const auto at = section + (seed >> 33) % (bad.size() - section);
      bad[at] = static_cast<char>(seed >> 24);
    }
    try {
      const auto st = journal::read(h + framed_record(bad)).st;
      for (const auto& a : st.since.attempts) CHECK(a.worker < st.since.workers.size());
    } catch (const journal::corrupt&) {}
  }
  // The exact reasons for what a writer never makes.
  auto wrong = counted_commits()[1];
  wrong.attempts->attempts[0].worker = 2;
  std::string rec;
  journal::append_record(rec, wrong);
  CHECK_THROWS_WITH_AS(journal::read(h + rec),
                       ("at byte " + std::to_string(h.size()) + ": an attempt of worker 2 of 2").c_str(),
                       journal::corrupt);
  wrong = counted_commits()[1];
  wrong.attempts->attempts[2].status = 7;
  rec.clear();
  journal::append_record(rec, wrong);
  CHECK_THROWS_WITH_AS(journal::read(h + rec), doctest::Contains("an attempt of unknown status 7 (byte 0x8f)"),
                       journal::corrupt);
  // A section twice, or out of order, is not a commit we wrote.
  CHECK_THROWS_WITH_AS(journal::read(h + framed_record(body + body.substr(section))),
                       doctest::Contains("a commit with unknown fields"), journal::corrupt);
}

TEST_CASE("journal reads a format 1 journal (no attempts counted) and refuses a later format by name") {
  // Format 1's header: the fields of format 2 before its counting flags and start time.
  std::string body(1, '\x01');
  auto str = [&](std::string_view s) {
    for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>((s.size() >> (8 * i)) & 0xFF));
    body.append(s);
  };
  auto u64 = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  str("MTASKJNL");
  const auto version_at = body.size();
  body.append(std::string("\x01\x00\x00\x00", 4));
  str("s0123456789abcdef");
  str("/tmp/out");
  u64(1);
  u64(2);
  body.append(std::string("\x01\x00", 2));
  str("");
  std::string v1 = framed_record(body);
  journal::append_record(v1, commits()[0]);
  const auto st = journal::read(v1).st;
  CHECK(st.head == head()); // no stats, no report, no start time
  CHECK(st.final_ids.size() == 3);
  body[version_at] = '\x03';
  CHECK_THROWS_WITH_AS(journal::read(framed_record(body)),
                       "at byte 0: journal format 3 (this sink reads formats 1 and 2)", journal::corrupt);
}

TEST_CASE("journal file refuses to resume with other --stats or --report than the journal counted for") {
  temp_dir dir;
  mtask::journal_paths p{.journal = dir / "j", .output = dir / "out", .stats = true};
  auto j = mtask::open_journal(p, "s1");
  CHECK(j.st.head.stats);
  CHECK_FALSE(j.st.head.report);
  CHECK(j.st.head.started_us > 0);
  close_all(j);
  p.stats = false;
  p.report = true;
  CHECK_THROWS_WITH_AS(mtask::open_journal(p, "s2"),
                       ("journal '" + p.journal +
                        "' holds attempts for --stats and not for --report: resume with the "
                        "same flags")
                           .c_str(),
                       mtask::error);
  p.stats = true;
  p.report = false;
  auto again = mtask::open_journal(p, "s2");
  CHECK(again.resumed);
  close_all(again);
}

TEST_CASE("journal file resumes a journal that holds no attempts with --stats, counting from the restart") {
  // Written without --stats, or of format 1 (journals of an earlier mtask): not refused after an
  // upgrade; the sink journals no attempts for it either (sink_core's journal_attempts_).
  temp_dir dir;
  mtask::journal_paths p{.journal = dir / "j", .output = dir / "out"};
  auto j = mtask::open_journal(p, "s1");
  CHECK_FALSE(j.st.head.attempts());
  close_all(j);
  p.stats = true;
  p.report = true;
  auto again = mtask::open_journal(p, "s2");
  CHECK(again.resumed);
  CHECK_FALSE(again.st.head.attempts());
  close_all(again);
}
