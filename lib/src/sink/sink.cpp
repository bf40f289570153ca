// The sink's I/O loop: its sockets, stdout and --failures around sink_core (lib/src/sink/), which
// holds the whole protocol. See docs/ARCHITECTURE.md for the message flow.
#include "mtask/sink.hpp"

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"
#include "security/security.hpp"
#include "sink/joblog.hpp"
#include "sink/journal_file.hpp"
#include "sink/output_writer.hpp"
#include "sink/progress.hpp"
#include "sink/report.hpp"
#include "sink/result_text.hpp"
#include "sink/sink_core.hpp"
#include "transport/curve.hpp"
#include "transport/socket.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

namespace mtask {
namespace {

// Opens --failures for writing (truncating), or returns -1 when not asked for.
// Throws: error "cannot open 'PATH' for writing: reason".
int open_failures(const std::string& path) {
  if (path.empty()) return -1;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error(fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
  return fd;
}

// Opens --joblog: truncated for a new job; resuming from a journal, appended to (the job keeps the
// lines of the attempts before the crash: each attempt is logged once, by the sink that got it).
// Returns: the descriptor, or -1 when not asked for.
// Throws: error "cannot open 'PATH' for writing: reason".
int open_joblog(const std::string& path, bool resumed) {
  if (path.empty()) return -1;
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (resumed ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) throw error(fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
  return fd;
}

std::uint64_t file_size(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Opens --output (truncating) without a journal; stdout when not asked for.
// Throws: error "cannot open 'PATH' for writing: reason".
int open_output(const std::string& path) {
  if (path.empty()) return STDOUT_FILENO;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error(fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
  return fd;
}

// A test-only hook (tests/e2e/test_journal.py): the sink dies like kill -9 (exit 137) once it has
// taken this many results since it started, after writing the bytes of a group that has some and
// before journaling them.
std::uint64_t crash_after_writes() {
  const char* v = std::getenv("MTASK_TEST_CRASH_AFTER_WRITES");
  return v != nullptr ? std::strtoull(v, nullptr, 10) : 0;
}

// The journal is rewritten as a snapshot once it passes this size and twice what a snapshot would
// take (MTASK_TEST_JOURNAL_COMPACT_BYTES lowers it for tests).
std::uint64_t compact_min_bytes() {
  const char* v = std::getenv("MTASK_TEST_JOURNAL_COMPACT_BYTES");
  return v != nullptr ? std::strtoull(v, nullptr, 10) : std::uint64_t{4} << 20;
}

// Like a worker's: a connection that drops and comes back is the same sink to the ventilator's
// ROUTER (ROUTER_HANDOVER), not a stranger with the old one's acks lost.
std::uint64_t unix_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string random_routing_id() {
  std::random_device rd;
  return fmt::format("s{:08x}{:08x}", rd(), rd());
}

sink_config config_of(const sink_options& o, const std::optional<opened_journal>& journal) {
  auto resume = journal && journal->resumed ? std::make_shared<const journal::state>(journal->st) : nullptr;
  return sink_config{.keep_order = o.keep_order,
                     .jsonl = o.jsonl,
                     .failures = !o.failures_path.empty(),
                     .make_aggregator = o.make_aggregator,
                     .heartbeat = millis(o.common.heartbeat_ms),
                     .heartbeat_timeout = millis(o.common.heartbeat_timeout_ms),
                     .idle_timeout = millis(o.common.idle_timeout_ms),
                     .max_message_bytes = static_cast<std::size_t>(o.common.max_message_bytes),
                     .ventilator_endpoint = o.common.ventilator,
                     .journal = !o.journal_path.empty(),
                     .journal_every = static_cast<std::size_t>(o.journal_every),
                     .journal_interval = millis(o.journal_interval_ms),
                     .resume = std::move(resume),
                     .stats = !o.stats_path.empty(),
                     .report = !o.report_path.empty(),
                     .details = !o.joblog_path.empty() || !o.report_path.empty() || o.tag || !o.results_dir.empty(),
                     .tag = o.tag,
                     .results_files = !o.results_dir.empty()};
}

// The progress display --progress asks for, or none.
std::unique_ptr<progress_display> make_progress(const sink_options& opts, time_point start) {
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  using mode = sink_options::progress_mode;
  const bool on = opts.progress == mode::on || (opts.progress == mode::automatic && terminal && !opts.common.quiet);
  if (!on) return nullptr;
  return std::make_unique<progress_display>(STDERR_FILENO, terminal, millis(opts.progress_interval_ms), start);
}

progress_figures figures_of(const sink_core& core) {
  const auto& s = core.stats();
  const auto& fleet = core.ventilator_fleet();
  return progress_figures{.done = s.written,
                          .total = core.total(),
                          .failed = s.failed,
                          .retried = s.retried,
                          .requeued = fleet.requeued,
                          .workers = fleet.workers,
                          .slots = fleet.slots};
}

// --stats, --report: written whole under a temporary name, then renamed, so a reader never sees
// half of it. `flag` names the file in the error.
void write_whole(const std::string& path, std::string_view flag, std::string_view text) {
  const auto tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = fd < 0 ? errno : write_all(fd, text);
  if (fd >= 0 && ::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    log::error("cannot write {} '{}': {}", flag, path, std::strerror(err));
    ::unlink(tmp.c_str());
  }
}

// --stats and --report of a job its journal says is complete (the sink may have died before it
// wrote them), from the attempts journaled; a journal without them (format 1, or other flags)
// writes nothing.
void write_figures_of_complete(const sink_options& opts, const journal::state& st) {
  if (!st.head.attempts() || !st.complete) return;
  const bool stats = !opts.stats_path.empty(), report = !opts.report_path.empty();
  if (!stats && !report) return;
  job_stats js;
  report_collector rc;
  try {
    recount(st, stats ? &js : nullptr, report ? &rc : nullptr);
  } catch (const error& e) {
    log::error("journal '{}': {}", opts.journal_path, e.what());
    return;
  }
  const auto& done = *st.complete;
  const double wall = done.ended_us > st.head.started_us && st.head.started_us > 0
                          ? static_cast<double>(done.ended_us - st.head.started_us) / 1e6
                          : 0;
  if (stats)
    write_whole(
        opts.stats_path, "--stats",
        js.to_json(job_stats::totals{
            .job = done.job, .wall_seconds = wall, .malformed = st.since.dropped, .requeued = st.since.requeued}));
  if (report)
    write_whole(opts.report_path, "--report",
                rc.to_html(report_collector::job_figures{.job = done.job,
                                                         .wall_seconds = wall,
                                                         .duplicates = st.since.duplicates,
                                                         .malformed = st.since.dropped,
                                                         .requeued = st.since.requeued}));
}

// A frame's bytes for the core. A message of several frames (our protocol has none) is handed on
// as an empty frame, which the core counts as malformed like any it cannot decode.
std::string_view frame_of(const incoming& in) { return in.extra_frames ? std::string_view() : body_of(in); }

class sink_loop final : public sink_io {
 public:
  // `journal`: opened by run_sink (the loop owns its descriptors from here on), or none.
  sink_loop(const sink_options& opts, std::optional<opened_journal> journal)
      : opts_(opts),
        cfg_(config_of(opts, journal)),
        sec_(load_security(opts.common, role::sink)),
        failures_fd_(journal ? -1 : open_failures(opts.failures_path)),
        joblog_fd_(open_joblog(opts.joblog_path, journal && journal->resumed)),
        joblog_(joblog_fd_ >= 0 && file_size(joblog_fd_) == 0 ? joblog_header() : std::string_view()),
        output_fd_(journal ? -1 : open_output(opts.output_path)),
        jw_(journal ? std::make_unique<journal_writer>(*journal, opts.journal_path) : nullptr),
        // Before the bind: libzmq asks the ZAP handler about every client from the first one on.
        zap_(sec_.curve() ? std::make_unique<zap_authenticator>(ctx_, sec_.allowed) : nullptr),
        pull_(bind_socket(ctx_, zmq::socket_type::pull, opts.common.sink, policy_of(opts.common, sec_.server()))),
        dealer_(client_socket(ctx_, zmq::socket_type::dealer,
                              policy_of(opts.common, sec_.client_of(sec_.ventilator_key)),
                              journal ? journal->st.head.routing_id : random_routing_id())),
        pull_watch_(ctx_, pull_, "", "", ""),
        watch_(ctx_, dealer_, "ventilator", "--ventilator-key", sec_.curve() ? sec_.own->public_key : ""),
        out_(output_fd_ >= 0 ? output_fd_ : STDOUT_FILENO),
        failures_(failures_fd_ >= 0 ? failures_fd_ : STDERR_FILENO),
        journal_state_(journal ? std::move(journal->st) : journal::state{}),
        crash_after_(crash_after_writes()),
        compact_at_(compact_min_bytes()) {
    // The attempts are not kept here: a compaction takes the collectors' own tally, which counts
    // exactly the attempts journaled so far (every attempt the core took is in this group or an
    // earlier one). Those of the journal it resumes from are in the collectors already.
    journal_state_.counters_only = true;
    journal_state_.since.workers.clear();
    journal_state_.since.attempts.clear();
    connect_to(dealer_, opts.common.ventilator); // once watch_ watches it: from its first handshake on
  }
  ~sink_loop() override {
    if (failures_fd_ >= 0) ::close(failures_fd_);
    if (joblog_fd_ >= 0) ::close(joblog_fd_);
    if (output_fd_ >= 0 && output_fd_ != STDOUT_FILENO) ::close(output_fd_);
  }
  sink_loop(const sink_loop&) = delete;
  sink_loop& operator=(const sink_loop&) = delete;

  int run() {
    log::info("bound '{}', ventilator '{}'", opts_.common.sink, opts_.common.ventilator);
    const auto started = clock::now();
    sink_core core(cfg_, *this, started);
    core_ = &core;
    // A resumed job's figures span it from its first sink's start (format 1 journals lack it).
    const auto first_start_us = journal_state_.head.started_us;
    const auto wall_seconds = [&] {
      if (first_start_us == 0) return std::chrono::duration<double>(clock::now() - started).count();
      return std::max(0.0, static_cast<double>(unix_us()) - static_cast<double>(first_start_us)) / 1e6;
    };
    auto progress = make_progress(opts_, started);
    bool stopping = false;
    bool failure_told = false;
    for (auto now = clock::now(); !core.exit_code(); now = clock::now()) {
      if (int sig = stop_signal(); sig != 0 && !stopping) {
        stopping = true;
        drain(); // what a stuck reader does not take is lost
        core.stop(sig, now);
      }
      if (failure_ && !failure_told) {
        failure_told = true;
        core.fail(*failure_, now);
      }
      core.advance(now);
      if (core.exit_code()) break;
      output([&] { out_.flush(); }); // before waiting: whatever is ready goes to the writer thread now
      if (jw_) output([&] { jw_->flush(); });
      flush_joblog();
      wait(core, now);
      if (jw_) tell_durable(core, clock::now());
      take(core, clock::now());
      watch_.check();
      pull_watch_.check();
      if (progress) progress->update(figures_of(core), clock::now());
    }
    if (progress) progress->finish(figures_of(core), clock::now());
    if (pull_watch_.failures() > 0)
      log::warn("refused {} handshake(s): clients without CURVE or not on --allow", pull_watch_.failures());
    if (!stopping) drain(); // after giving up, what was written so far still reaches the reader
    flush_joblog();
    if (!opts_.stats_path.empty()) {
      const auto& s = core.stats();
      write_whole(opts_.stats_path, "--stats",
                  core.job_statistics().to_json(job_stats::totals{.job = core.job(),
                                                                  .wall_seconds = wall_seconds(),
                                                                  .malformed = s.malformed + s.foreign,
                                                                  .requeued = core.ventilator_fleet().requeued}));
    }
    if (const auto* report = core.report()) {
      const auto& s = core.stats();
      write_whole(opts_.report_path, "--report",
                  report->to_html(report_collector::job_figures{.job = core.job(),
                                                                .wall_seconds = wall_seconds(),
                                                                .duplicates = s.duplicates,
                                                                .malformed = s.malformed + s.foreign,
                                                                .requeued = core.ventilator_fleet().requeued}));
    }
    return *core.exit_code();
  }

  // sink_io
  send_result send_control(std::string_view frame) override {
    // A DEALER with ZMQ_IMMEDIATE fails with EAGAIN alike when it has no connection yet and when
    // the connection's queue is full, and nothing tells the two apart: both are `full` here. The
    // core treats them alike (keeps its acks, asks for POLLOUT), so nothing is lost by it.
    return try_send(dealer_, frame) ? send_result::sent : send_result::full;
  }
  void write_output(std::string_view bytes) override { // the core applied the output rule
    if (jw_)
      jw_->append_output(bytes);
    else
      out_.append(bytes);
  }
  void write_attempt(const wire::result_view& r, std::string_view worker) override {
    if (joblog_fd_ < 0) return;
    append_joblog_line(joblog_, r, worker);
    if (joblog_.size() >= (1u << 16)) flush_joblog();
  }
  void write_result_files(const wire::result_view& r) override {
    if (failure_) return;
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(opts_.results_dir) / detail::results_folder(r.payload);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const auto put = [&](const char* name, std::string_view bytes) {
      if (ec) return;
      std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!f) ec = std::make_error_code(std::errc::io_error);
    };
    put("seq", fmt::format("{}", r.id + 1)); // no newline, as parallel writes it
    put("stdout", r.output);
    put("stderr", r.error);
    put("status", detail::status_text(r));
    // The job's own failure, as for --failures: results it cannot keep are not silently dropped.
    if (ec) failure_ = fmt::format("--results: cannot write '{}': {}", dir.string(), ec.message());
  }
  void write_failure(std::string_view line) override {
    if (jw_)
      jw_->append_failure(line);
    else
      failures_.write(line);
  }
  [[nodiscard]] std::size_t output_backlog() const override { return jw_ ? jw_->backlog() : out_.backlog(); }
  [[nodiscard]] bool output_drained() override {
    if (jw_) {
      output([&] { jw_->flush(); });
      drain_awaited_ = !failure_ && !jw_->idle();
      return !drain_awaited_ && !failure_;
    }
    output([&] {
      out_.flush();
      if (failures_fd_ >= 0) failures_.flush();
    });
    drain_awaited_ = !failure_ && !out_.drained();
    return !drain_awaited_ && !failure_;
  }
  void journal_group(std::uint64_t seq, journal::commit& group) override {
    // The attempts of a group's results are in the joblog before the group can become durable: a
    // crash then costs no line of a result the journal keeps.
    flush_joblog();
    journal::commit& c = group; // filled in here, then emptied by the core
    c.output_end = jw_->output_offset();
    c.failures_end = jw_->failures_offset();
    last_seq_ = seq;
    if (crash_after_ > 0) {
      for (const auto& run : c.final_ids) results_seen_ += run.count;
      // Once a group has bytes in the output (with -k, a group may only hold results).
      if (results_seen_ >= crash_after_ && c.output_end > journal_state_.output_end) {
        // Test-only: the group's bytes reach the output, its record never does.
        jw_->end_group(0, {});
        output([&] { (void)jw_->wait_idle(millis(60'000)); });
        log::error("MTASK_TEST_CRASH_AFTER_WRITES: dying after {} results written", results_seen_);
        ::_exit(137);
      }
    }
    record_.clear();
    record_.append(job_record_); // the job's input, before its first results
    job_record_.clear();
    journal::append_record(record_, c);
    try {
      journal_state_.apply(c);
    } catch (const journal::corrupt& e) {
      failure_ = fmt::format("journal '{}': {}", opts_.journal_path, e.what()); // our own bug
      return;
    }
    if (jw_->journal_bytes() + record_.size() >= std::max(compact_at_, 2 * journal::snapshot_size(journal_state_))) {
      // Compaction: the journal's size follows the state's (a watermark, the exceptions, -k's held
      // results, the tally of the attempts), not the job's length.
      if (journal_state_.head.attempts()) {
        journal_state_.saved =
            journal::tally{.stats = cfg_.stats ? core_->job_statistics().save() : std::string(),
                           .report = core_->report() != nullptr ? core_->report()->save() : std::string()};
      }
      const auto snap = journal::snapshot(journal_state_);
      jw_->end_group(seq, snap, true);
      log::debug("journal compacted to {} bytes", snap.size());
    } else {
      jw_->end_group(seq, record_);
    }
    output([&] { jw_->flush(); });
  }
  void journal_job(const journal::job_record& j) override {
    try {
      journal_state_.apply(j);
    } catch (const journal::corrupt& e) {
      failure_ = fmt::format("journal '{}': {}", opts_.journal_path, e.what()); // our own bug
      return;
    }
    journal::append_record(job_record_, j); // goes out with the next group
  }
  void journal_complete(const journal::completion& c) override {
    record_.clear();
    journal::completion ended = c;
    ended.ended_us = unix_us();
    journal::append_record(record_, ended);
    jw_->end_group(last_seq_, record_);
    output([&] { jw_->flush(); });
  }

 private:
  // Writes the joblog's pending lines; a failure is the job's (as for --failures).
  void flush_joblog() {
    if (joblog_fd_ < 0 || joblog_.empty() || failure_) return;
    if (int e = write_all(joblog_fd_, joblog_); e != 0)
      failure_ = fmt::format("cannot write to '{}': {}", opts_.joblog_path, std::strerror(e));
    joblog_.clear();
  }

  // Tells the core which journal groups have become durable since it last heard.
  void tell_durable(sink_core& core, time_point now) {
    const auto durable = jw_->durable();
    if (durable > told_durable_) {
      told_durable_ = durable;
      core.on_durable(durable, now);
    }
  }

  // Waits for a frame, the writer thread, or the core's next_wakeup().
  void wait(const sink_core& core, time_point now) {
    // A control frame that could not be sent waits for the connection (ZMQ_IMMEDIATE: the dealer
    // is writable only once connected), so it goes out the moment the ventilator is there.
    const auto dealer_events = static_cast<short>(core.wants_to_send() ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN);
    // Held back, results are left in the socket (ZeroMQ's queues then stop the workers). The
    // writer thread's eventfd says when stdout has taken a batch; it is polled only when something
    // waits on that (a batch not yet handed over, held-back results, the end of the job), or each
    // batch it writes would wake the loop once more for nothing.
    const bool wait_for_writer = !failure_ && (out_.has_pending() || !core.wants_results() || drain_awaited_);
    // The journal's thread is always waited on while it has work: each batch it finishes lets
    // acknowledgements go out.
    const bool wait_for_journal = jw_ && !failure_ && !jw_->idle();
    std::vector<zmq::pollitem_t> items{
        {dealer_.handle(), 0, dealer_events, 0},
        {nullptr, out_.fd(), static_cast<short>(wait_for_writer && !jw_ ? ZMQ_POLLIN : 0), 0},
        {pull_.handle(), 0, static_cast<short>(core.wants_results() ? ZMQ_POLLIN : 0), 0},
        {nullptr, jw_ ? jw_->fd() : -1, static_cast<short>(wait_for_journal ? ZMQ_POLLIN : 0), 0}};
    const auto until = std::chrono::ceil<millis>(core.next_wakeup() - now);
    poll_items(items, std::clamp(until, millis(0), millis(60'000)));
    if (items[1].revents != 0) output([&] { out_.on_ready(); });
    if (items[3].revents != 0) output([&] { jw_->on_ready(); });
  }

  // Hands what arrived to the core: control frames first, then results while it takes them.
  void take(sink_core& core, time_point now) {
    for (int i = 0; i < 1000; ++i) {
      auto in = try_receive(dealer_, false);
      if (!in) break;
      core.on_control(frame_of(*in), now);
    }
    for (int i = 0; i < 1000 && core.wants_results(); ++i) {
      auto in = try_receive(pull_, false);
      if (!in) break;
      const auto sender = sec_.name_of(in->user_id);
      // Under CURVE only allowed keys get here (the ZAP handler); checked again, as the
      // ventilator does. An empty frame is what the core counts as malformed.
      core.on_results(sec_.curve() && sender.empty() ? std::string_view() : frame_of(*in), now, sender);
      if (!jw_ && out_.backlog() >= cfg_.output_limit) output([&] { out_.flush(); }); // keep the writer busy
    }
  }

  // Runs an output call; its error (stdout closed...) is kept for the core, which aborts the job.
  template <typename F>
  void output(F&& f) {
    if (failure_) return;
    try {
      f();
    } catch (const error& e) {
      failure_ = e.what();
    }
  }

  // Waits (at most a heartbeat timeout) until stdout and --failures have taken everything.
  void drain() {
    if (failure_) return;
    try {
      if (jw_) {
        (void)jw_->wait_idle(millis(opts_.common.heartbeat_timeout_ms));
        return;
      }
      (void)out_.wait_drained(millis(opts_.common.heartbeat_timeout_ms));
      if (failures_fd_ >= 0) failures_.flush();
    } catch (const error& e) {
      failure_ = e.what();
      log::error("{}", e.what());
    }
  }

  const sink_options& opts_;
  const sink_config cfg_;
  zmq::context_t ctx_;
  const security_setup sec_;
  int failures_fd_;
  int joblog_fd_;                          // --joblog, or -1
  std::string joblog_;                     // its lines not yet written
  int output_fd_;                          // --output without a journal
  std::unique_ptr<journal_writer> jw_;     // --journal: the output, failures and journal, grouped fsyncs
  std::unique_ptr<zap_authenticator> zap_; // under CURVE: who may push results
  zmq::socket_t pull_;
  zmq::socket_t dealer_;
  handshake_watch pull_watch_; // counts the workers refused at the handshake
  handshake_watch watch_;      // says why the ventilator will not have us (a key it does not allow...)
  // stdout, written from a thread of its own: a slow reader holds results back, not the loop.
  background_writer out_;
  output_writer failures_;             // used only with --failures
  std::optional<std::string> failure_; // the first output error
  bool drain_awaited_ = false;         // the core waits for the output to drain
  journal::state journal_state_;       // what the journal says so far (compaction writes it whole)
  std::string job_record_;             // the job's record, until the first group carries it
  std::string record_;                 // reused encoding buffer
  std::uint64_t last_seq_ = 0;         // the last journal group the core closed
  std::uint64_t told_durable_ = 0;     // the last durable group the core was told of
  std::uint64_t crash_after_ = 0;      // MTASK_TEST_CRASH_AFTER_WRITES
  std::uint64_t results_seen_ = 0;
  const std::uint64_t compact_at_;
  const sink_core* core_ = nullptr; // run()'s, for the tally a compaction journals
};

} // namespace

int run_sink(const sink_options& opts) {
  // Deliberately never destroyed: libzmq 4.3.4 has aborted while tearing down a context whose
  // connections were being dropped (seen under the hostile-frames test: "Resource temporarily
  // unavailable (src/zmtp_engine.cpp:446)"; cf. libzmq#4841). Everything this role must say is
  // said through handshakes before run() returns, so the process leaves its sockets to the kernel
  // at exit instead of running that teardown.
  std::optional<opened_journal> journal;
  if (!opts.journal_path.empty()) {
    journal = open_journal(journal_paths{.journal = opts.journal_path,
                                         .output = opts.output_path,
                                         .failures = opts.failures_path,
                                         .keep_order = opts.keep_order,
                                         .jsonl = opts.jsonl,
                                         .reduces = static_cast<bool>(opts.make_aggregator),
                                         .stats = !opts.stats_path.empty(),
                                         .report = !opts.report_path.empty()},
                           random_routing_id());
    if (journal->torn)
      log::warn("journal '{}' ended in a torn record: recovered to its last whole one", opts.journal_path);
    if (const auto& done = journal->st.complete) {
      // A finished job: its summary, and nothing runs again.
      log::warn("journal '{}': job {:016x} is already complete ({} task(s), {} failed); nothing to do",
                opts.journal_path, done->job, done->total, done->failed);
      write_figures_of_complete(opts, journal->st);
      ::close(journal->journal_fd);
      return done->failed > 0 ? exit_tasks_failed : exit_ok;
    }
  }
  static sink_loop* kept = nullptr; // reachable, so leak checkers know it is kept on purpose
  kept = new sink_loop(opts, std::move(journal));
  return kept->run();
}

} // namespace mtask
