// The sink's journal on disk (see journal_file.hpp): open or create under flock, check, cut the
// output back, and the writing thread with its grouped fsyncs.
#include "sink/journal_file.hpp"

#include "common/fd_guard.hpp"
#include "common/log.hpp"
#include "mtask/error.hpp"
#include "sink/output_writer.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

namespace mtask {
namespace {

std::string absolute(const std::string& path) {
  if (path.empty()) return path;
  return std::filesystem::absolute(path).lexically_normal().string();
}

[[noreturn]] void fail_errno(std::string_view what, const std::string& path) {
  throw error(fmt::format("cannot {} '{}': {}", what, path, std::strerror(errno)));
}

std::string read_all(int fd, const std::string& path) {
  std::string out;
  char buf[1 << 16];
  for (std::uint64_t at = 0;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_errno("read", path);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    at += static_cast<std::uint64_t>(n);
  }
}

void fsync_dir_of(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path().string();
  fd_guard d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() < 0 || ::fsync(d.get()) != 0) fail_errno("sync the folder of", path);
}

void write_file(int fd, std::string_view bytes, const std::string& path) {
  if (int err = write_all(fd, bytes)) {
    errno = err;
    fail_errno("write", path);
  }
}

// Cuts `fd` back to `size` bytes and puts its offset there.
void cut_to(int fd, std::uint64_t size, const std::string& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail_errno("truncate", path);
  if (::lseek(fd, static_cast<off_t>(size), SEEK_SET) < 0) fail_errno("seek in", path);
}

// Opens and locks an existing journal; another sink holding it fails at once.
// Returns: -1 if it does not exist.
int lock_existing(const std::string& path) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_guard fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (fd.get() < 0) {
      if (errno == ENOENT) return -1;
      fail_errno("open the journal", path);
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) throw error(fmt::format("journal '{}' is in use by another sink", path));
      fail_errno("lock the journal", path);
    }
    // A sink compacting its journal renames a new file over this one: a lock on the old file
    // would protect nothing. Only the file the path names now counts.
    struct stat held {
    }, named{};
    if (::fstat(fd.get(), &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      return fd.release();
    }
  }
  throw error(fmt::format("journal '{}' keeps being replaced: is another sink compacting it?", path));
}

opened_journal create_journal(const journal_paths& p, const std::string& routing_id) {
  opened_journal j;
  // Not truncated yet: only once the journal is ours (linked and locked below), or a second sink
  // racing for the same new journal would empty the first one's live output before losing.
  fd_guard out(::open(p.output.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (out.get() < 0) fail_errno("open the output", p.output);
  fd_guard failures;
  if (!p.failures.empty()) {
    failures.reset(::open(p.failures.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (failures.get() < 0) fail_errno("open for writing", p.failures);
  }
  struct stat st {};
  if (::fstat(out.get(), &st) != 0) fail_errno("stat", p.output);
  j.st.head = journal::header{
      .routing_id = routing_id,
      .output_path = absolute(p.output),
      .output_dev = static_cast<std::uint64_t>(st.st_dev),
      .output_ino = static_cast<std::uint64_t>(st.st_ino),
      .keep_order = p.keep_order,
      .jsonl = p.jsonl,
      .failures_path = absolute(p.failures),
      .stats = p.stats,
      .report = p.report,
      .started_us = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count())};
  std::string bytes;
  journal::append_record(bytes, j.st.head);
  // Written whole under a temporary name, then linked into place: link() fails if the path
  // exists, so two sinks starting on one new journal cannot both create it, and a journal that
  // exists always has its whole header.
  const auto tmp = fmt::format("{}.new.{}", p.journal, ::getpid());
  ::unlink(tmp.c_str()); // left by a crashed sink that had our pid (containers reuse them): ours to remove
  fd_guard jfd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (jfd.get() < 0) fail_errno("create the journal", tmp);
  if (::flock(jfd.get(), LOCK_EX | LOCK_NB) != 0) fail_errno("lock the journal", tmp);
  write_file(jfd.get(), bytes, tmp);
  if (::fsync(jfd.get()) != 0) fail_errno("sync", tmp);
  const bool linked = ::link(tmp.c_str(), p.journal.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!linked) {
    if (link_errno == EEXIST) throw error(fmt::format("journal '{}' is in use by another sink", p.journal));
    errno = link_errno;
    fail_errno("create the journal", p.journal);
  }
  if (::ftruncate(out.get(), 0) != 0) fail_errno("truncate", p.output);
  if (failures.get() >= 0 && ::ftruncate(failures.get(), 0) != 0) fail_errno("truncate", p.failures);
  // The files' names must survive a power cut as the journal's does: fdatasync later keeps their
  // bytes, not their directory entries (which matter when they live in other folders).
  fsync_dir_of(p.output);
  if (!p.failures.empty()) fsync_dir_of(p.failures);
  fsync_dir_of(p.journal);
  j.journal_bytes = bytes.size();
  j.journal_fd = jfd.release();
  j.output_fd = out.release();
  j.failures_fd = failures.release();
  return j;
}

} // namespace

opened_journal open_journal(const journal_paths& p, const std::string& routing_id) {
  fd_guard jfd(lock_existing(p.journal));
  if (jfd.get() < 0) return create_journal(p, routing_id);

  opened_journal j;
  j.resumed = true;
  const auto bytes = read_all(jfd.get(), p.journal);
  journal::read_result r;
  try {
    r = journal::read(bytes);
  } catch (const journal::corrupt& e) {
    throw error(fmt::format("journal '{}' is corrupt {}; nothing was changed", p.journal, e.what()));
  }
  const auto& h = r.st.head;
  if (h.output_path != absolute(p.output)) {
    throw error(
        fmt::format("journal '{}' belongs to output '{}', not '{}'", p.journal, h.output_path, absolute(p.output)));
  }
  if (h.keep_order != p.keep_order || h.jsonl != p.jsonl) {
    throw error(fmt::format("journal '{}' was written {} -k and {} --jsonl: resume with the same flags", p.journal,
                            h.keep_order ? "with" : "without", h.jsonl ? "with" : "without"));
  }
  if (h.failures_path != absolute(p.failures)) {
    throw error(fmt::format("journal '{}' was written with --failures '{}', not '{}'", p.journal, h.failures_path,
                            absolute(p.failures)));
  }
  if (r.st.complete) {
    // A finished job only prints its summary (and rewrites --stats/--report from the attempts
    // journaled, if it has them): its flags need not match.
  } else if (!h.attempts() && (p.stats || p.report)) {
    // Written without them, or before journals held attempts (format 1): resumed as then, the
    // figures counting only from this restart, rather than refused after an upgrade.
    log::warn(
        "journal '{}' holds no attempts (written without --stats and --report, or of format 1): --stats "
        "and --report count only from this restart",
        p.journal);
  } else if (h.attempts() && (h.stats != p.stats || h.report != p.report)) {
    // The attempts before the crash are in the journal only for what its sinks counted.
    throw error(fmt::format("journal '{}' holds attempts {} --stats and {} --report: resume with the same flags",
                            p.journal, h.stats ? "for" : "not for", h.report ? "for" : "not for"));
  }
  if (r.st.aggregate && !p.reduces) {
    throw error(fmt::format(
        "journal '{}' is of a reduction (--reduce, --reduce-by-key): run the sink with the same flags", p.journal));
  }
  if (!r.st.aggregate && p.reduces && r.st.final_ids.size() > 0) {
    throw error(
        fmt::format("journal '{}' holds results, not a reduction's total: run the sink without --reduce", p.journal));
  }
  j.st = std::move(r.st);
  j.torn = r.torn;
  if (j.st.complete) { // nothing to open: the job is done
    j.journal_fd = jfd.release();
    return j;
  }
  fd_guard out(::open(p.output.c_str(), O_WRONLY | O_CLOEXEC));
  if (out.get() < 0) {
    if (errno == ENOENT) throw error(fmt::format("output '{}' of journal '{}' is missing", p.output, p.journal));
    fail_errno("open the output", p.output);
  }
  struct stat st {};
  if (::fstat(out.get(), &st) != 0) fail_errno("stat", p.output);
  if (static_cast<std::uint64_t>(st.st_dev) != h.output_dev || static_cast<std::uint64_t>(st.st_ino) != h.output_ino) {
    throw error(
        fmt::format("output '{}' is not the file journal '{}' was written for (it was replaced)", p.output, p.journal));
  }
  if (static_cast<std::uint64_t>(st.st_size) < j.st.output_end) {
    throw error(fmt::format("output '{}' has {} bytes, fewer than the {} journal '{}' says are written", p.output,
                            st.st_size, j.st.output_end, p.journal));
  }
  fd_guard failures;
  if (!p.failures.empty()) {
    failures.reset(::open(p.failures.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (failures.get() < 0) fail_errno("open for writing", p.failures);
    struct stat fst {};
    if (::fstat(failures.get(), &fst) != 0) fail_errno("stat", p.failures);
    if (static_cast<std::uint64_t>(fst.st_size) < j.st.failures_end) {
      throw error(fmt::format("'{}' has {} bytes, fewer than the {} journal '{}' says are written", p.failures,
                              fst.st_size, j.st.failures_end, p.journal));
    }
  }
  // Every check passed: now cut back what was written and never journaled (those tasks run again).
  if (r.torn) {
    cut_to(jfd.get(), r.valid_bytes, p.journal);
    if (::fsync(jfd.get()) != 0) fail_errno("sync", p.journal);
  }
  cut_to(out.get(), j.st.output_end, p.output);
  if (failures.get() >= 0) cut_to(failures.get(), j.st.failures_end, p.failures);
  if (::lseek(jfd.get(), 0, SEEK_END) < 0) fail_errno("seek in", p.journal);
  j.journal_bytes = r.valid_bytes;
  j.journal_fd = jfd.release();
  j.output_fd = out.release();
  j.failures_fd = failures.release();
  return j;
}

// ---- journal_writer ----

void journal_writer::batch::clear() {
  out.clear();
  failures.clear();
  records.clear();
  replace = false;
  seq = 0;
}

struct journal_writer::shared {
  int out_fd = -1;
  int failures_fd = -1;
  int journal_fd = -1;
  int event_fd = -1;
  std::string journal_path;
  std::mutex mutex;
  std::condition_variable cv;
  batch writing; // the thread's while busy
  bool busy = false;
  bool stopping = false;
  std::uint64_t durable = 0;
  std::string error; // the first failure, as a message
  shared() = default;
  shared(const shared&) = delete;
  shared& operator=(const shared&) = delete;
  ~shared() {
    for (int fd : {out_fd, failures_fd, journal_fd, event_fd}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

journal_writer::journal_writer(opened_journal& j, std::string journal_path) : s_(std::make_shared<shared>()) {
  s_->out_fd = std::exchange(j.output_fd, -1);
  s_->failures_fd = std::exchange(j.failures_fd, -1);
  s_->journal_fd = std::exchange(j.journal_fd, -1);
  s_->journal_path = std::move(journal_path);
  output_offset_ = j.st.output_end;
  failures_offset_ = j.st.failures_end;
  journal_bytes_ = j.journal_bytes;
  s_->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s_->event_fd < 0) throw error(fmt::format("cannot create an eventfd: {}", std::strerror(errno)));
  thread_ = std::thread([state = s_] { run(*state); });
}

journal_writer::~journal_writer() {
  bool busy = false;
  {
    std::lock_guard lock(s_->mutex);
    s_->stopping = true;
    busy = s_->busy;
  }
  s_->cv.notify_all();
  if (busy)
    thread_.detach(); // a write stuck on a dead disk must not hang the exit
  else
    thread_.join();
}

void journal_writer::append_failure(std::string_view line) {
  const auto before = pending_.failures.size();
  append_result(pending_.failures, line);
  failures_offset_ += pending_.failures.size() - before;
}

void journal_writer::end_group(std::uint64_t seq, std::string_view records, bool replace) {
  if (replace) {
    // A snapshot holds everything journaled so far: records not yet written are in it.
    pending_.records.assign(records);
    pending_.replace = true;
    journal_bytes_ = records.size();
  } else {
    pending_.records.append(records);
    journal_bytes_ += records.size();
  }
  pending_.seq = std::max(pending_.seq, seq);
}

int journal_writer::fd() const { return s_->event_fd; }

void journal_writer::flush() {
  std::lock_guard lock(s_->mutex);
  if (!s_->error.empty()) throw error(s_->error);
  if (s_->busy || pending_.empty()) return;
  std::swap(s_->writing, pending_);
  pending_.clear();
  s_->busy = true;
  s_->cv.notify_all();
}

void journal_writer::on_ready() {
  std::uint64_t count = 0;
  (void)::read(s_->event_fd, &count, sizeof count);
  flush();
}

std::uint64_t journal_writer::durable() const {
  std::lock_guard lock(s_->mutex);
  return s_->durable;
}

bool journal_writer::idle() const {
  std::lock_guard lock(s_->mutex);
  return pending_.empty() && !s_->busy && s_->error.empty();
}

std::size_t journal_writer::backlog() const {
  std::lock_guard lock(s_->mutex);
  return pending_.out.size() + (s_->busy ? s_->writing.out.size() : 0);
}

bool journal_writer::wait_idle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    flush();
    std::unique_lock lock(s_->mutex);
    if (!s_->busy && pending_.empty()) return true;
    if (!s_->cv.wait_until(lock, deadline, [&] { return !s_->busy || !s_->error.empty(); })) return false;
    if (!s_->error.empty()) throw error(s_->error);
  }
}

namespace {

// One batch: the results' bytes, their fsync, then the records and theirs. Returns: "" or what failed.
std::string write_batch(int out_fd, int failures_fd, int& journal_fd, const std::string& journal_path,
                        const journal_writer::batch& b) {
  const auto failed = [](std::string_view what, const std::string& path, int err) {
    return fmt::format("cannot {} '{}': {}", what, path, std::strerror(err));
  };
  if (!b.out.empty()) {
    if (int err = write_all(out_fd, b.out)) return failed("write the output", "--output", err);
    if (::fdatasync(out_fd) != 0) return failed("sync the output", "--output", errno);
  }
  if (!b.failures.empty()) {
    if (int err = write_all(failures_fd, b.failures)) return failed("write", "--failures", err);
    if (::fdatasync(failures_fd) != 0) return failed("sync", "--failures", errno);
  }
  if (b.replace) {
    // Compaction: the snapshot goes to a new file, locked before it takes the journal's name, and
    // the folder is synced so the rename survives a crash. A crash before the rename leaves the
    // old journal, which says the same.
    const auto tmp = journal_path + ".compact";
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return failed("create", tmp, errno);
    fd_guard guard(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return failed("lock", tmp, errno);
    if (int err = write_all(fd, b.records)) return failed("write", tmp, err);
    if (::fsync(fd) != 0) return failed("sync", tmp, errno);
    if (::rename(tmp.c_str(), journal_path.c_str()) != 0) return failed("rename over", journal_path, errno);
    try {
      fsync_dir_of(journal_path);
    } catch (const error& e) {
      return e.what();
    }
    ::close(journal_fd);
    journal_fd = guard.release();
  } else if (!b.records.empty()) {
    const auto records = journal::as_one_record(b.records);
    if (int err = write_all(journal_fd, records)) return failed("write the journal", journal_path, err);
    if (::fdatasync(journal_fd) != 0) return failed("sync the journal", journal_path, errno);
  }
  return {};
}

} // namespace

void journal_writer::run(shared& s) {
  while (true) {
    {
      std::unique_lock lock(s.mutex);
      s.cv.wait(lock, [&] { return s.stopping || s.busy; });
      if (!s.busy) return;
    }
    auto err = write_batch(s.out_fd, s.failures_fd, s.journal_fd, s.journal_path, s.writing);
    {
      std::lock_guard lock(s.mutex);
      if (err.empty()) {
        s.durable = std::max(s.durable, s.writing.seq);
      } else if (s.error.empty()) {
        s.error = std::move(err);
      }
      s.writing.clear();
      s.busy = false;
      if (s.stopping) return;
    }
    s.cv.notify_all();
    const std::uint64_t one = 1;
    (void)::write(s.event_fd, &one, sizeof one);
  }
}

} // namespace mtask
