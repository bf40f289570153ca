// GNU parallel's joblog lines from results (see joblog.hpp).
#include "sink/joblog.hpp"

#include <fmt/format.h>

#include <csignal>
#include <iterator>

namespace mtask {
namespace {

struct exit_and_signal {
  int exitval = 0;
  int signal = 0;
};

exit_and_signal split_status(const wire::result_view& r) {
  using wire::task_status;
  switch (r.status) {
    case task_status::ok: return {0, 0};
    case task_status::failed: return {r.code, 0};
    case task_status::signalled: return {0, r.code};
    case task_status::not_started: return {127, 0}; // as a shell reports a command it cannot run
    case task_status::timed_out: return {-1, SIGTERM};
    case task_status::crashed:
    case task_status::too_large: return {-1, 0};
  }
  return {-1, 0};
}

// A field must not break the line or the columns.
void append_one_line(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
}

} // namespace

std::string_view joblog_header() {
  return "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";
}

void append_joblog_line(std::string& out, const wire::result_view& r, std::string_view worker) {
  const auto [exitval, signal] = split_status(r);
  fmt::format_to(std::back_inserter(out), "{}\t", r.id + 1);
  append_one_line(out, worker);
  fmt::format_to(std::back_inserter(out), "\t{}.{:03}\t{:10.3f}\t{}\t{}\t{}\t{}\t", r.start_us / 1'000'000,
                 r.start_us / 1000 % 1000, static_cast<double>(r.runtime_us) / 1e6, r.payload_bytes, r.output.size(),
                 exitval, signal);
  append_one_line(out, what_ran(r));
  out.push_back('\n');
}

} // namespace mtask
