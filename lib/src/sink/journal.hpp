// The sink's journal (--journal, issue 11) as bytes: its records, their framing against a torn
// tail, the state they add up to, and the compacted form of that state. Pure: no files here (the
// files, the lock and the fsyncs are in journal_file.cpp). Format and recovery rules: the
// "Journal" section of docs/ARCHITECTURE.md.
#pragma once

#include "common/id_set.hpp"
#include "mtask/error.hpp"
#include "protocol/wire.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask::journal {

// 2 added the attempts --stats and --report count (header flag and start time, a commit's attempt
// log, the tally record). Format 1 journals are still read: they have no attempts.
inline constexpr std::uint32_t format_version = 2;

// A journal that cannot be trusted: a bad record with more after it, or no journal at all. Its
// message says where, without the path (the caller knows it).
class corrupt : public error {
 public:
  using error::error;
};

// The first record: which sink and which output the journal belongs to.
struct header {
  std::string routing_id;  // the sink's, kept across restarts: the ventilator must see the same sink
  std::string output_path; // absolute
  std::uint64_t output_dev = 0;
  std::uint64_t output_ino = 0;
  bool keep_order = false; // -k
  bool jsonl = false;
  std::string failures_path; // absolute, "" without --failures
  // Format 2: whether the sink counts attempts for --stats and for --report (then every commit
  // carries its attempts), and when the job's first sink started (µs since the epoch), so that a
  // resumed job's figures span it whole.
  bool stats = false;
  bool report = false;
  std::uint64_t started_us = 0;
  [[nodiscard]] bool attempts() const { return stats || report; }
  friend bool operator==(const header&, const header&) = default;
};

// One attempt as --stats and --report count it: what they take from a result, without its output.
struct attempt_entry {
  std::uint32_t worker = 0; // index into the names of its attempt_log
  std::uint64_t id = 0;
  std::uint32_t attempt = 1;
  std::uint8_t status = 0; // wire::task_status
  std::int32_t code = 0;
  bool final = true;
  std::uint64_t runtime_us = 0;
  std::uint64_t start_us = 0;
  std::string command; // --report: the start of what ran, when the page keeps it; otherwise ""
  friend bool operator==(const attempt_entry&, const attempt_entry&) = default;
};

// A group's attempts (every one that reached the sink and was not a duplicate, final or not, in
// the order the sink took them), and the sink's counters of what it dropped, cumulative.
struct attempt_log {
  std::vector<std::string> workers; // the names the attempts' `worker` indexes
  std::vector<attempt_entry> attempts;
  std::uint64_t duplicates = 0;
  std::uint64_t dropped = 0;  // malformed frames and results of other jobs
  std::uint64_t requeued = 0; // the ventilator's count of tasks requeued, as it last said
  friend bool operator==(const attempt_log&, const attempt_log&) = default;
};

// The --stats and --report collectors saved whole (job_stats::save, report_collector::save) at a
// compaction: what every attempt before it adds up to. Record type 5.
struct tally {
  std::string stats;  // "" without --stats
  std::string report; // "" without --report
  friend bool operator==(const tally&, const tally&) = default;
};

struct held_result {
  std::uint64_t id = 0;
  std::string bytes; // as they will be written once every earlier task is
  friend bool operator==(const held_result&, const held_result&) = default;
};

// One group of results made durable together (written after their bytes are fsynced).
struct commit {
  std::uint64_t job = 0;
  std::uint64_t output_end = 0;          // the output's bytes up to here are those of final results
  std::uint64_t failures_end = 0;        // likewise for --failures
  std::uint64_t written_below = 0;       // -k: every task below this id is in the output
  std::uint64_t failed = 0;              // final failures so far (cumulative)
  std::vector<wire::id_range> final_ids; // newly final: written, or (-k) held below
  std::vector<held_result> held;         // -k: final, waiting in the reorder buffer for an earlier task
  // --reduce: the aggregator's running total over every result final so far (aggregator::save), in
  // the same record as the ids, so that a crash can never separate the two. Absent in journals of
  // sinks without a reduction (and written last, so that journals without it read the same).
  std::optional<std::string> aggregate;
  // Format 2, in journals whose header says attempts(): the group's attempts (after the aggregate).
  std::optional<attempt_log> attempts;
  friend bool operator==(const commit&, const commit&) = default;
};

// The job is complete: every result is in the output.
struct completion {
  std::uint64_t job = 0;
  std::uint64_t total = 0;
  std::uint64_t failed = 0;
  std::uint64_t ended_us = 0; // format 2: when (µs since the epoch), for --stats and --report
  friend bool operator==(const completion&, const completion&) = default;
};

// The job the sink serves and its input (wire::job_info's fingerprint), journaled before its first
// commit: a restarted ventilator must prove it reads the same input. Record type 64, the first of
// the optional ones: a reader that does not know it skips it.
struct job_record {
  std::uint64_t job = 0;
  std::string fingerprint;
  friend bool operator==(const job_record&, const job_record&) = default;
};

// Appends one framed record to `out`.
void append_record(std::string& out, const header& h);
void append_record(std::string& out, const job_record& j);
void append_record(std::string& out, const commit& c);
void append_record(std::string& out, const completion& c);
void append_record(std::string& out, const tally& t);

// Returns: `records` (framed records, written by one write) as one record: unchanged when it is
// one already, otherwise a batch record (type 4) holding them, so that a power cut in the middle
// of that write tears one record at the end (recovered) rather than leaving whole records after a
// damaged one (which a reader must take for damage in the middle).
std::string as_one_record(std::string_view records);

using id_set = mtask::id_set; // the journal's final ids (common/id_set.hpp)

// What a journal says, record by record.
struct state {
  header head;
  std::uint64_t job = 0;   // 0: no result (nor the job's input) was ever journaled
  std::string fingerprint; // the job's input, "" if never journaled
  id_set final_ids;
  std::map<std::uint64_t, std::string> held; // -k: final results not yet in the output
  std::uint64_t output_end = 0;
  std::uint64_t failures_end = 0;
  std::uint64_t written_below = 0;
  std::uint64_t failed = 0;
  std::optional<completion> complete;
  std::uint64_t held_bytes = 0;         // of `held`'s results
  std::optional<std::string> aggregate; // --reduce: the last commit's running total
  // --stats, --report: the last tally, and the attempts journaled after it (their `worker` indexes
  // since.workers); since.duplicates and since.dropped are the last commit's.
  std::optional<tally> saved;
  attempt_log since;
  // Set by a sink for its own copy of the state: the attempts are not kept (a compaction takes the
  // collectors' own tally), only since's counters.
  bool counters_only = false;
  // Throws: corrupt when `c` contradicts the state (another job, an output that shrinks).
  void apply(const commit& c);
  // The tally replaces every attempt before it.
  void apply(const tally& t);
  // Throws: corrupt for another job than the commits'.
  void apply(const job_record& j);
  friend bool operator==(const state&, const state&) = default;
};

struct read_result {
  state st;
  std::size_t valid_bytes = 0; // the complete records; anything after them is a torn tail
  bool torn = false;
};

// Reads a whole journal. A last record that is incomplete or fails its checksum (a power cut in
// the middle of its write), or zero bytes after the last good record, is a torn tail: reported,
// not an error. Record types it does not know from 64 on are skipped (room for later parts).
// Throws: corrupt "at byte N: why" for a bad record followed by more, a missing or foreign header,
// or records that contradict each other.
read_result read(std::string_view bytes);

// Returns: about how many bytes snapshot(s) takes, without making it. The attempts since the last
// tally are not counted: a compacting sink folds them into a new tally first.
std::uint64_t snapshot_size(const state& s);

// Returns: a journal holding only `s` (its header, its tally, one commit of every final id and
// held result and of the attempts since the tally, and the completion if any): what compaction
// writes in place of a long journal.
std::string snapshot(const state& s);

// CRC-32 (IEEE 802.3, zlib's) of `bytes`.
std::uint32_t crc32(std::string_view bytes);

} // namespace mtask::journal
