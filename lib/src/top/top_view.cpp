// mtask-top's screen text (see top_view.hpp).
#include "top/top_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace mtask {
namespace {

std::string rate_text(std::uint64_t rate_milli) {
  const double r = static_cast<double>(rate_milli) / 1000.0;
  return r >= 100 ? fmt::format("{:.0f}/s", r) : fmt::format("{:.1f}/s", r);
}

std::string seconds_text(std::uint64_t ms) { return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0); }

} // namespace

std::string render_status(const wire::status_report& r, const std::string& ventilator) {
  std::string out;
  auto to = std::back_inserter(out);
  const std::string total = r.total >= 0 ? fmt::format("{}", r.total) : "?";
  fmt::format_to(to, "job {:016x} at {}: {}, {} s\n", r.job, ventilator, r.phase, r.elapsed_ms / 1000);
  std::uint64_t slots = 0;
  std::uint64_t busy = 0;
  std::uint64_t rate = 0;
  std::size_t live = 0;
  for (const auto& w : r.workers) {
    if (!w.alive) continue;
    ++live;
    slots += w.slots;
    busy += w.busy;
    rate += w.rate_milli;
  }
  fmt::format_to(to,
                 "tasks: {} done of {} ({} read), {} | workers: {} live, {} slots, {} busy | {} requeued, {} retried\n",
                 r.acknowledged, total, r.read, rate_text(rate), live, slots, busy, r.requeued, r.retried);
  fmt::format_to(to, "{:<32} {:>5} {:>5} {:>10} {:>10} {:>9}\n", "WORKER", "SLOTS", "BUSY", "DONE", "RATE",
                 "LAST SEEN");
  std::vector<const wire::worker_row*> rows;
  for (const auto& w : r.workers) rows.push_back(&w);
  std::stable_sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    if (a->alive != b->alive) return a->alive;
    if (a->busy != b->busy) return a->busy > b->busy;
    return a->name < b->name;
  });
  for (const auto* w : rows) {
    fmt::format_to(to, "{:<32} {:>5} {:>5} {:>10} {:>10} {:>9}{}\n", w->name, w->slots, w->busy, w->done,
                   rate_text(w->rate_milli), seconds_text(w->silent_ms), w->alive ? "" : "  lost");
  }
  return out;
}

} // namespace mtask
