// persistent_process: a record-in, record-out conversation with a long-lived command.
#include "exec/persistent_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace mtask {
namespace {

// Appends `got` to `tail`, keeping at least its last `keep` bytes (and at most twice that).
void append_tail(std::string& tail, std::string_view got, std::size_t keep) {
  tail.append(got);
  if (tail.size() > 2 * keep) tail.erase(0, tail.size() - keep);
}

std::string last_bytes(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

} // namespace

persistent_process::persistent_process(const std::vector<std::string>& argv, persistent_framing framing,
                                       std::size_t max_output_bytes)
    : child_(spawn_piped(argv)), decoder_(framing, max_output_bytes), framing_(framing) {
  start_errno_ = child_.start_errno;
}

persistent_process::~persistent_process() {
  close_fd(child_.in);
  close_fd(child_.out);
  close_fd(child_.err);
  if (child_.pid > 0 && !reaped_) {
    ::kill(-child_.pid, SIGKILL);
    ::waitpid(child_.pid, nullptr, 0);
  }
  close_fd(child_.pidfd);
}

void persistent_process::submit(std::uint64_t key, std::string_view payload) {
  if (in_flight_.empty()) oldest_since_ = std::chrono::steady_clock::now();
  in_flight_.push_back(key);
  if (trouble_ != trouble::none) return; // nothing more is written: the runner settles it
  append_task_record(framing_, payload, to_write_);
  if (child_.in >= 0) write_pending();
}

void persistent_process::poll_items(std::vector<pollfd>& fds) const {
  if (child_.in >= 0 && !to_write_.empty()) fds.push_back({child_.in, POLLOUT, 0});
  if (child_.out >= 0) fds.push_back({child_.out, POLLIN, 0});
  if (child_.err >= 0) fds.push_back({child_.err, POLLIN, 0});
  if (child_.pidfd >= 0 && !reaped_) fds.push_back({child_.pidfd, POLLIN, 0});
}

void persistent_process::on_ready(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if (p.revents == 0) continue;
    if (p.fd == child_.in && child_.in >= 0) {
      write_pending();
    } else if (p.fd == child_.out && child_.out >= 0) {
      read_answers();
    } else if (p.fd == child_.err && child_.err >= 0) {
      read_errors();
    } else if (p.fd == child_.pidfd && !reaped_) {
      reap();
    }
  }
}

void persistent_process::read_answers() {
  // One pass, at most a byte past what one answer may need (poll reports the rest).
  drain_fd_up_to(child_.out, decoder_.buffer(), decoder_.read_limit());
  decoded_.clear();
  decoder_.decode(decoded_);
  std::size_t matched = 0;
  for (; matched < decoded_.size() && !in_flight_.empty(); ++matched) {
    answers_.push_back(answered{.key = in_flight_.front(), .reply = std::move(decoded_[matched]), .err = {}});
    in_flight_.pop_front();
  }
  if (matched > 0) {
    oldest_since_ = std::chrono::steady_clock::now();
    // What it wrote to stderr before this answer is in the pipe by now (and perhaps some of the next).
    const bool failures = std::any_of(answers_.end() - static_cast<std::ptrdiff_t>(matched), answers_.end(),
                                      [](const answered& a) { return a.reply.status != 0; });
    if (failures) {
      if (child_.err >= 0) read_errors();
      for (auto it = answers_.end() - static_cast<std::ptrdiff_t>(matched); it != answers_.end(); ++it)
        if (it->reply.status != 0) it->err = last_bytes(err_since_, error_tail_bytes);
    }
    err_since_.clear();
  }

  const bool framed = framing_ == persistent_framing::framed;
  if (matched < decoded_.size()) {
    give_up(trouble::stray_output, fmt::format("wrote {}{} with no task pending", framed ? "an answer " : "",
                                               quote_bytes(decoded_[matched].output)));
  } else if (decoder_.failed() != answer_decoder::fault::none) {
    const std::string& why = decoder_.fault_text();
    if (in_flight_.empty()) {
      give_up(trouble::stray_output, fmt::format("wrote output with no task pending{}{}{}", why.empty() ? "" : " (",
                                                 why, why.empty() ? "" : ")"));
    } else {
      give_up(decoder_.failed() == answer_decoder::fault::malformed ? trouble::malformed : trouble::too_large, why);
    }
  } else if (in_flight_.empty() && decoder_.mid_answer()) {
    give_up(trouble::stray_output, fmt::format("wrote {} with no task pending", quote_bytes(decoder_.buffer())));
  } else if (child_.out < 0 && decoder_.mid_answer()) { // end of file
    give_up(trouble::cut_short,
            fmt::format("ended its output in the middle of an answer, {}", decoder_.describe_partial()));
  } else if (child_.out < 0) {
    give_up(trouble::stdout_closed, "closed its stdout");
  }
}

void persistent_process::read_errors() {
  std::string got;
  drain_fd(child_.err, got, error_tail_bytes);
  append_tail(err_, got, error_tail_bytes);
  append_tail(err_since_, got, error_tail_bytes);
}

std::vector<persistent_process::answered> persistent_process::take_answers() { return std::exchange(answers_, {}); }

void persistent_process::give_up(trouble t, std::string text) {
  trouble_ = t;
  trouble_text_ = std::move(text);
  close_fd(child_.out);
  close_fd(child_.in);
  std::string().swap(to_write_);
  std::string().swap(decoder_.buffer());
}

void persistent_process::write_pending() {
  while (!to_write_.empty()) {
    ssize_t n = ::write(child_.in, to_write_.data(), to_write_.size());
    if (n > 0) {
      to_write_.erase(0, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    } else {
      close_fd(child_.in); // EPIPE: it stopped reading; it will be seen dead soon
      return;
    }
  }
}

void persistent_process::reap() {
  int status = 0;
  if (::waitpid(child_.pid, &status, WNOHANG) == child_.pid) {
    status_ = status;
    reaped_ = true;
    close_fd(child_.pidfd);
    // Answers it wrote before exiting are in the pipe now, even where poll saw the exit first:
    // their tasks succeeded, and must not be taken for the one it died answering.
    if (child_.out >= 0) read_answers();
    if (child_.err >= 0) read_errors();
  }
}

void persistent_process::kill(int sig) {
  if (child_.pid > 0) ::kill(-child_.pid, sig);
}

std::string persistent_process::error_tail() const { return last_bytes(err_, error_tail_bytes); }

} // namespace mtask
