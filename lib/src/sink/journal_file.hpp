// The sink's journal on disk: created or resumed under an exclusive flock, checked against
// --output, the output cut back to what it says; and journal_writer, a thread that writes each
// group of results, fsyncs them, then appends the group's record and fsyncs it, so that a record
// never names bytes that are not on disk.
#pragma once

#include "sink/journal.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace mtask {

struct journal_paths {
  std::string journal;
  std::string output;
  std::string failures; // "" without --failures
  bool keep_order = false;
  bool jsonl = false;
  bool reduces = false; // --reduce, --reduce-by-key or a custom reducer: the journal holds its totals
  bool stats = false;   // --stats: the journal holds the attempts it counts
  bool report = false;  // --report: likewise
};

struct opened_journal {
  int journal_fd = -1; // locked (flock LOCK_EX) for as long as it is open
  int output_fd = -1;  // positioned at its end
  int failures_fd = -1;
  journal::state st; // what the journal said (a new one: only its header)
  bool resumed = false;
  bool torn = false; // its last record was torn and has been cut off
  std::uint64_t journal_bytes = 0;
};

// Opens the journal at p.journal: a new job when the path does not exist (the output and the
// failures file are created or truncated, the journal created with `routing_id`), a resume when
// it does (the output and failures file are cut back to the journaled ends; nothing is changed
// before every check has passed).
// Throws: error for a journal in use by another sink, corrupt, of another output or other flags,
// or an output that is missing, replaced or shorter than journaled.
opened_journal open_journal(const journal_paths& p, const std::string& routing_id);

// Writes results to the output and failures file and records to the journal from a thread of its
// own, in groups: a group's records go to the journal only after its bytes are fsynced. Groups
// that queue up while the thread syncs are written and synced together.
class journal_writer {
 public:
  // Takes ownership of the descriptors in `j`. Throws: error when the thread's eventfd cannot be made.
  journal_writer(opened_journal& j, std::string journal_path);
  ~journal_writer(); // abandons what is not durable
  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  void append_output(std::string_view bytes) {
    pending_.out.append(bytes);
    output_offset_ += bytes.size();
  }
  // Appends a --failures line by the output rule.
  void append_failure(std::string_view line);
  [[nodiscard]] std::uint64_t output_offset() const { return output_offset_; }
  [[nodiscard]] std::uint64_t failures_offset() const { return failures_offset_; }
  // Closes group `seq`: `records` go to the journal once its bytes (and every earlier group's) are
  // durable; with `replace`, they replace the journal instead (compaction: a snapshot).
  void end_group(std::uint64_t seq, std::string_view records, bool replace = false);
  // Hands the closed groups to the thread, unless it is busy with earlier ones.
  // Throws: error naming the file once a write or fsync has failed.
  void flush();
  // Readable when the thread has finished a batch: poll it, then call on_ready().
  [[nodiscard]] int fd() const;
  // Resets fd() and hands the thread the next batch. Throws: as flush().
  void on_ready();
  // Returns: the last group whose bytes and record are durable.
  [[nodiscard]] std::uint64_t durable() const;
  // Returns: nothing is waiting or being written.
  [[nodiscard]] bool idle() const;
  [[nodiscard]] bool has_pending() const { return !pending_.empty(); }
  [[nodiscard]] std::size_t backlog() const;
  // The size of the journal file once everything handed over is written.
  [[nodiscard]] std::uint64_t journal_bytes() const { return journal_bytes_; }
  // Waits until idle(), at most `timeout`. Returns: idle(). Throws: as flush().
  bool wait_idle(std::chrono::milliseconds timeout);

  // What one hand-over to the thread holds.
  struct batch {
    std::string out, failures, records;
    bool replace = false;
    std::uint64_t seq = 0;
    [[nodiscard]] bool empty() const { return out.empty() && failures.empty() && records.empty() && seq == 0; }
    void clear();
  };

 private:
  struct shared;
  static void run(shared& s);

  std::shared_ptr<shared> s_;
  batch pending_; // the caller's thread only
  std::uint64_t output_offset_ = 0;
  std::uint64_t failures_offset_ = 0;
  std::uint64_t journal_bytes_ = 0;
  std::thread thread_;
};

} // namespace mtask
