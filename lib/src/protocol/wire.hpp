// The wire protocol: every message the three roles exchange, and its msgpack encoding.
// Pure: no sockets here. Every frame is one msgpack array [version, type, job, ...fields];
// decoders accept trailing fields they do not know (a newer peer of the same version may add some).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mtask::wire {

// Version 2: per-worker batch sequence numbers (lost batches are detected, not guessed), the sink's
// cumulative acknowledgement (done_below), held result bytes, and wrong_version.
// Version 3: the input's fingerprint in job_info, and the sink's claim (a restarted ventilator
// learns the job it continues and every id already done).
// Version 4: the ventilator's view of its workers in job_info (live workers, their slots, tasks
// requeued), for the sink's progress line; and per-attempt details (the worker's start time, the
// payload's size, the command line, the task) that results carry when the sink asks for them
// (--joblog, --report, --tag, --results): the sink
// asks in its status, the ventilator passes it on in each batch.
inline constexpr std::uint32_t protocol_version = 4;
// Frames larger than this are refused by the socket (ZMQ_MAXMSGSIZE) and by the decoder's limits.
inline constexpr std::size_t default_max_frame_bytes = 256u << 20;

enum class msg_type : std::uint8_t {
  worker_status = 1, // worker -> ventilator: hello, credit and heartbeat in one
  worker_bye = 2,    // worker -> ventilator: leaving cleanly, requeue my tasks now
  tasks = 3,         // ventilator -> worker: a batch of tasks, sent only against credit
  vent_status = 4,   // ventilator -> worker: heartbeat; says whether the job is complete
  job_info = 5,      // ventilator -> sink: heartbeat with the job id and, once input ended, the total
  sink_status = 6,   // sink -> ventilator: hello, heartbeat and acknowledgements of results
  complete = 7,      // sink -> ventilator: every result is written; the job's summary
  complete_ack = 8,  // ventilator -> sink: the ventilator has seen `complete`
  results = 9,       // worker -> sink: a batch of results; also ventilator -> sink for tasks it
                     // gave up on itself (quarantined after killing --max-crashes workers)
  abort = 10,        // ventilator <-> sink: the job is over, unfinished; the other side exits too
  // ventilator -> a peer whose frames carry another protocol version: [our version, 11, 0]. Its
  // envelope is the same in every version from 2 on, so a newcomer of any version can read it.
  wrong_version = 11,
  status_request = 12, // anyone allowed in -> ventilator: send me a status_report (mtask-top)
  status_report = 13,  // ventilator -> who asked: the job and one row per worker
  halt = 14,           // ventilator -> sink: --halt stopped the job: write what you have and complete
};

// How a task's attempt ended. The numeric values are on the wire.
enum class task_status : std::uint8_t {
  ok = 0,          // exit status 0
  failed = 1,      // non-zero exit status (code holds it)
  signalled = 2,   // killed by a signal (code holds the signal number)
  not_started = 3, // the command could not be started (code holds errno)
  timed_out = 4,   // exceeded the task timeout and was killed
  crashed = 5,     // the worker running it died (decided by the ventilator, never sent by a worker)
  too_large = 6,   // its payload, output or result exceeds a limit (--max-message-bytes, --max-output-bytes)
};

struct task {
  std::uint64_t id = 0; // 0-based position in the input
  std::uint32_t attempt = 1;
  std::string payload;            // the record without its terminator
  std::uint32_t retries_left = 0; // a failure with retries left is not final: the ventilator will run it again
  friend bool operator==(const task&, const task&) = default;
};

// A run of numbers [first, first + count): task ids, or batch numbers.
struct id_range {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  friend bool operator==(const id_range&, const id_range&) = default;
};

struct worker_status {
  std::uint64_t job = 0;   // the job whose batches `next_seq` counts (0: none yet)
  std::string name;        // host:pid, for people reading logs
  std::uint32_t slots = 0; // tasks it runs at once
  std::uint32_t free = 0;  // slots idle right now
  // Every batch of `job` numbered below this has arrived or is listed in `lost`: lets the
  // ventilator count the tasks still in flight and requeue lost ones without blaming anyone.
  std::uint64_t next_seq = 1;
  std::uint64_t completed_job = 0; // the last job it was told is complete (lets that ventilator exit)
  std::uint32_t busy = 0;          // tasks received and not yet sent on to the sink (0: idle)
  std::vector<id_range> lost;      // batch numbers it will never receive (a dropped connection)
  std::uint64_t done = 0;          // tasks of `job` it finished and sent on to the sink (for mtask-top)
  // Of them, failures for good: the ventilator's --halt hears of a failure in the very status that
  // frees its slot, before it hands that slot another task.
  std::uint64_t failed = 0;
  friend bool operator==(const worker_status&, const worker_status&) = default;
};

struct worker_bye {
  std::uint64_t job = 0;
  friend bool operator==(const worker_bye&, const worker_bye&) = default;
};

struct tasks_msg {
  std::uint64_t job = 0;
  std::uint64_t seq = 0;     // this worker's batch number in this job: 1, 2, ... (gaps are losses)
  std::string terminator;    // appended when a payload is written to a command's stdin
  std::string sink_endpoint; // where results go, for workers started without --sink
  bool details = false;      // results of these tasks carry start_us, payload_bytes and command
  std::vector<task> tasks;
  friend bool operator==(const tasks_msg&, const tasks_msg&) = default;
};

struct vent_status {
  std::uint64_t job = 0;
  bool complete = false;            // every task of `job` is accounted for: --once workers may exit
  std::uint64_t sent_seq = 0;       // the last batch sent to this worker: one not received by now is lost (FIFO)
  std::uint64_t resolved_below = 0; // batches below this are settled: the worker may forget they were lost
  bool cancel = false;              // --halt now: kill the tasks of `job` still running, drop the others
  friend bool operator==(const vent_status&, const vent_status&) = default;
};

struct job_info {
  std::uint64_t job = 0;
  std::int64_t total = -1; // number of tasks, or -1 while input is still being read
  // What the input is (its size, mtime and first MiB's hash, and the splitting flags; see
  // input/fingerprint.hpp): the sink keeps it with the job so that a restarted ventilator can prove
  // it reads the same input. "" when it cannot be checked (a pipe): such a job cannot be resumed.
  std::string fingerprint;
  // What only the ventilator knows, for the sink's progress line: workers alive now, the slots they
  // run together, and tasks requeued so far because their worker was lost.
  std::uint32_t workers = 0;
  std::uint64_t slots = 0;
  std::uint64_t requeued = 0;
  friend bool operator==(const job_info&, const job_info&) = default;
};

struct ack {
  std::uint64_t id = 0;
  std::uint32_t attempt = 0;
  task_status status = task_status::ok;
  friend bool operator==(const ack&, const ack&) = default;
};

struct sink_status {
  std::uint64_t job = 0;           // 0 until the sink has heard of a job
  std::uint64_t written_below = 0; // in ordered mode, results below this id are written
  // Every task below this id has its final result at the sink: a cumulative acknowledgement, so an
  // ack lost on the wire is re-derived by the next status.
  std::uint64_t done_below = 0;
  std::uint64_t held_bytes = 0; // bytes of results waiting in -k's reorder buffer for an earlier one
  // The sink has stopped taking results until its stdout drains (a slow reader): results not yet
  // acknowledged are waiting, not lost.
  bool held_back = false;
  std::vector<ack> acks;      // failures the sink did not keep (retries left): run them again
  std::vector<id_range> done; // tasks whose final result the sink now holds, as runs of ids
  // A claim: the answer to a ventilator of another job (a restarted one). `job` is the job this sink
  // serves, `fingerprint` that job's input, and done_below + `done` every id final at the sink (durable,
  // with a journal), not just the news: the ventilator adopts the job when its input is the same.
  bool claim = false;
  std::string fingerprint; // "" unless `claim`
  bool details = false;    // results should carry per-attempt details (--joblog, --report, --tag, --results)
  // Final results so far and, of them, failures (for the ventilator's --halt): counts, so a lost
  // status loses nothing.
  std::uint64_t final_results = 0;
  std::uint64_t failed = 0;
  friend bool operator==(const sink_status&, const sink_status&) = default;
};

// Appends `id` to `runs`, extending the last run when `id` follows it (acks are mostly in order).
void append_id(std::vector<id_range>& runs, std::uint64_t id);

struct complete {
  std::uint64_t job = 0;
  std::uint64_t total = 0;
  std::uint64_t failed = 0;
  friend bool operator==(const complete&, const complete&) = default;
};

struct complete_ack {
  std::uint64_t job = 0;
  friend bool operator==(const complete_ack&, const complete_ack&) = default;
};

struct result {
  std::uint64_t id = 0;
  std::uint32_t attempt = 1;
  task_status status = task_status::ok;
  std::int32_t code = 0; // exit status, signal number or errno, per status
  std::string output;    // the command's stdout
  std::string error;     // the tail of its stderr, or why it did not start
  std::uint64_t runtime_us = 0;
  std::uint32_t retries_left = 0; // echoed from the task: with status != ok and retries left, not final
  std::string payload;            // the task's payload, sent back only with failures (for --failures)
  // Only when the batch asked for details (the sink's --joblog), else 0 and "": when the attempt
  // started on the worker's clock (µs since the epoch), the payload's size, and what ran (the
  // command line with the task in it, or the payload for a built-in or a handler).
  std::uint64_t start_us = 0;
  std::uint64_t payload_bytes = 0;
  std::string command;
  [[nodiscard]] bool final() const { return status == task_status::ok || retries_left == 0; }
  friend bool operator==(const result&, const result&) = default;
};

struct results_msg {
  std::uint64_t job = 0;
  std::string worker; // the worker's name
  std::vector<result> results;
  friend bool operator==(const results_msg&, const results_msg&) = default;
};

struct abort_msg {
  std::uint64_t job = 0;
  std::string reason;
  friend bool operator==(const abort_msg&, const abort_msg&) = default;
};

// Sent in answer to a frame of another protocol version, with this build's version in the envelope.
struct wrong_version {
  std::uint64_t job = 0;
  friend bool operator==(const wrong_version&, const wrong_version&) = default;
};

// A live view's question (mtask-top): the ventilator answers with a status_report. `job` is 0.
struct status_request {
  std::uint64_t job = 0;
  friend bool operator==(const status_request&, const status_request&) = default;
};

// One worker as the ventilator sees it, in a status_report.
struct worker_row {
  std::string name;
  std::uint32_t slots = 0;
  std::uint32_t busy = 0;       // tasks it holds (received, not yet sent on)
  std::uint64_t done = 0;       // tasks it says it finished in this job
  std::uint64_t rate_milli = 0; // its recent rate, in thousandths of a task per second
  std::uint64_t silent_ms = 0;  // since its last message
  bool alive = true;            // false once declared lost (kept: it may come back)
  friend bool operator==(const worker_row&, const worker_row&) = default;
};

struct status_report {
  std::uint64_t job = 0;
  std::string phase;              // waiting_for_sink, running, farewell, aborting, finished
  std::int64_t total = -1;        // tasks in the job, or -1 while input is being read
  std::uint64_t read = 0;         // tasks read so far
  std::uint64_t acknowledged = 0; // tasks whose final result the sink holds
  std::uint64_t requeued = 0;     // requeued because their worker was lost
  std::uint64_t retried = 0;      // failed attempts run again (--retries)
  std::uint64_t elapsed_ms = 0;   // since the ventilator started
  std::vector<worker_row> workers;
  friend bool operator==(const status_report&, const status_report&) = default;
};

// --halt stopped the job: the sink writes what it holds (with -k, in order, past the tasks that
// never ran), ignores later results, and completes as usual (complete, complete_ack).
struct halt_msg {
  std::uint64_t job = 0;
  std::string reason;
  friend bool operator==(const halt_msg&, const halt_msg&) = default;
};

using message =
    std::variant<worker_status, worker_bye, tasks_msg, vent_status, job_info, sink_status, complete, complete_ack,
                 results_msg, abort_msg, wrong_version, status_request, status_report, halt_msg>;

// Returns: the msgpack bytes of `m`.
std::string encode(const message& m);
// Writes the msgpack bytes of `m` into `out` (replacing its contents, reusing its capacity).
void encode_to(std::string& out, const message& m);
// The sink's status (it carries the acknowledgements of every batch), encoded without first being
// copied into a `message`. Batches of tasks and results are built with the builders below.
void encode_to(std::string& out, const sink_status& m);

// A task whose payload is a view into the frame it was decoded from. Valid while that frame is.
struct task_view {
  std::uint64_t id = 0;
  std::uint32_t attempt = 1;
  std::string_view payload;
  std::uint32_t retries_left = 0;
};

struct tasks_view {
  std::uint64_t job = 0;
  std::uint64_t seq = 0;
  std::string_view terminator;
  std::string_view sink_endpoint;
  bool details = false;
  std::vector<task_view> tasks;
};

// A result whose bytes are views into the frame it was decoded from (the sink's hot path: no copy
// of any output before it is written). Valid while that frame is.
struct result_view {
  std::uint64_t id = 0;
  std::uint32_t attempt = 1;
  task_status status = task_status::ok;
  std::int32_t code = 0;
  std::string_view output;
  std::string_view error;
  std::uint64_t runtime_us = 0;
  std::uint32_t retries_left = 0;
  std::string_view payload;
  std::uint64_t start_us = 0;
  std::uint64_t payload_bytes = 0;
  std::string_view command;
  [[nodiscard]] bool final() const { return status == task_status::ok || retries_left == 0; }
};
result_view view_of(const result& r);

struct results_view {
  std::uint64_t job = 0;
  std::string_view worker;
  std::vector<result_view> results;
};

// A message whose last field is a list, encoded one element at a time straight into its frame:
// the hot paths build no vector of structs to move around and encode afterwards. The frame
// decodes like encode()'s for the same message (its bytes differ only in the list's length
// header, always 5 bytes here). Reusable: start() keeps the buffer's capacity.
class batch_builder {
 public:
  [[nodiscard]] std::uint64_t job() const { return job_; }
  [[nodiscard]] std::uint32_t count() const { return count_; }
  // Returns: the encoded message; valid until the next start() or add().
  std::string_view frame();
  // Returns: the bytes of the message so far (what frame() would return).
  [[nodiscard]] std::size_t size() const { return frame_.size(); }

 protected:
  void open_list(); // after the header: the list's length, patched by frame()
  std::string frame_;
  std::size_t count_at_ = 0;
  std::uint64_t job_ = 0;
  std::uint32_t count_ = 0;
};

// The worker's results, each added as it finishes.
class results_builder : public batch_builder {
 public:
  void start(std::uint64_t job, std::string_view worker);
  void add(const result& r);
};

// The ventilator's tasks, each added from the ledger as it is taken (payloads never copied into a
// wire::task first).
class tasks_builder : public batch_builder {
 public:
  void start(std::uint64_t job, std::uint64_t seq, std::string_view terminator, std::string_view sink_endpoint,
             bool details = false);
  void add(const task_view& t);
};

// Returns: the message in `frame`.
// Throws: protocol_error for anything that is not a complete, well-formed message of our version,
//         including frames beyond `max_bytes`.
message decode(std::string_view frame, std::size_t max_bytes = default_max_frame_bytes);

// Decodes a results message into `out` (replacing its contents, reusing its capacity), with every
// string a view into `frame`. All or nothing: on a throw `out` holds no result of this frame.
// Throws: protocol_error as decode() does, and for a well-formed message of any other type.
void decode_results(std::string_view frame, results_view& out, std::size_t max_bytes = default_max_frame_bytes);

// decode_results' counterpart for a tasks message (the worker's hot path).
void decode_tasks(std::string_view frame, tasks_view& out, std::size_t max_bytes = default_max_frame_bytes);

// Returns: the type a frame's envelope names (version, type and job well-formed and of our
// version), or nothing; the body is not checked. Lets a role pick the decoder for a frame.
std::optional<msg_type> peek_type(std::string_view frame);

// Returns: the version of a frame that is a msgpack array starting with an unsigned integer other
// than protocol_version (a peer of another version), or nothing (ours, or not an envelope at all).
std::optional<std::uint64_t> foreign_version(std::string_view frame);

std::string_view to_string(task_status s);

} // namespace mtask::wire
