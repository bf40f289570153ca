// The progress line's text and its drawing on stderr (see progress.hpp).
#include "sink/progress.hpp"

#include "common/log.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

namespace mtask {
namespace {

constexpr auto rate_window = std::chrono::seconds(5);

// "0:07", "12:34", "1:02:03".
std::string clock_text(double seconds) {
  const auto s = static_cast<std::uint64_t>(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string rate_text(double per_second) {
  if (per_second >= 100) return fmt::format("{:.0f}/s", per_second);
  return fmt::format("{:.1f}/s", per_second);
}

std::string tail_text(const progress_figures& f) {
  return fmt::format("{} failed {} retried {} requeued", f.failed, f.retried, f.requeued);
}

double seconds_between(time_point a, time_point b) { return std::chrono::duration<double>(b - a).count(); }

} // namespace

double progress_meter::rate(std::uint64_t done, time_point now) const {
  if (!samples_.empty()) {
    const auto& [when, then_done] = samples_.front();
    const double dt = seconds_between(when, now);
    if (dt >= 1.0) return static_cast<double>(done - std::min(done, then_done)) / dt;
  }
  const double since_start = seconds_between(start_, now);
  return since_start > 0 ? static_cast<double>(done) / since_start : 0.0;
}

std::string progress_meter::line(const progress_figures& f, time_point now) {
  while (!samples_.empty() && now - samples_.front().first > rate_window) samples_.pop_front();
  const double r = rate(f.done, now);
  samples_.emplace_back(now, f.done);
  std::string text;
  if (f.total >= 0) {
    const auto total = static_cast<std::uint64_t>(f.total);
    const double percent =
        total == 0 ? 100.0 : 100.0 * static_cast<double>(std::min(f.done, total)) / static_cast<double>(total);
    text = fmt::format("{}/{} {:.0f}% {}", f.done, total, std::floor(percent), rate_text(r));
    if (f.done < total) {
      text += r > 0 ? fmt::format(" eta {}", clock_text(static_cast<double>(total - f.done) / r)) : " eta ?";
    }
  } else {
    text = fmt::format("{} done {}", f.done, rate_text(r));
  }
  return fmt::format("{} | {} workers {} slots | {}", text, f.workers, f.slots, tail_text(f));
}

std::string progress_meter::summary(const progress_figures& f, time_point now) const {
  const double wall = seconds_between(start_, now);
  const std::string of = f.total >= 0 ? fmt::format("/{}", f.total) : "";
  return fmt::format("done: {}{} tasks in {}, {} | {}", f.done, of, clock_text(wall),
                     rate_text(wall > 0 ? static_cast<double>(f.done) / wall : 0.0), tail_text(f));
}

progress_display::progress_display(int fd, bool terminal, millis interval, time_point start)
    : fd_(fd), terminal_(terminal), interval_(interval), meter_(start), next_draw_(start), prefix_(log::program()) {
  // On a terminal, log lines must not land in the middle of our line: they go through us.
  if (terminal_) log::set_sink([this](std::string_view line) { on_log_line(line); });
}

progress_display::~progress_display() {
  if (terminal_) log::set_sink(nullptr);
}

void progress_display::write_locked(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const auto n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; // stderr gone: progress is not worth failing the job for
    off += static_cast<std::size_t>(n);
  }
}

void progress_display::on_log_line(std::string_view line) {
  std::lock_guard lock(mutex_);
  // \r and "erase to the end of the line" (ESC [ K), the log line, then our line again.
  std::string bytes = shown_.empty() ? std::string() : "\r\x1b[K";
  bytes.append(line);
  bytes += shown_;
  write_locked(bytes);
}

void progress_display::update(const progress_figures& f, time_point now) {
  if (now < next_draw_) return;
  next_draw_ = now + (terminal_ ? millis(100) : interval_); // a terminal: at most 10 redraws a second
  const auto text = meter_.line(f, now);
  std::lock_guard lock(mutex_);
  if (finished_) return;
  if (terminal_) {
    shown_ = text;
    write_locked("\r\x1b[K" + text);
  } else {
    write_locked(fmt::format("{}: progress: {}\n", prefix_, text));
  }
}

void progress_display::finish(const progress_figures& f, time_point now) {
  const auto text = meter_.summary(f, now);
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (terminal_) {
    shown_.clear();
    write_locked(fmt::format("\r\x1b[K{}: {}\n", prefix_, text));
  } else {
    write_locked(fmt::format("{}: progress: {}\n", prefix_, text));
  }
}

} // namespace mtask
