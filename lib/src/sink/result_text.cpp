// The sink's text for results: stderr lines for failures, and the JSON of --failures and --jsonl.
#include "sink/result_text.hpp"

#include "common/json.hpp"

#include <fmt/format.h>

namespace mtask::detail {
namespace {

// Appends "id", "attempts", "status" and, per status, the code that explains it
// ("exit_status", "signal", "errno" or "crashes"): shared by --failures and --jsonl.
void append_outcome(std::string& j, const wire::result_view& r) {
  j += fmt::format("\"id\":{},\"attempts\":{},\"status\":", r.id, r.attempt);
  append_json_string(j, wire::to_string(r.status));
  switch (r.status) {
    case wire::task_status::failed: j += fmt::format(",\"exit_status\":{}", r.code); break;
    case wire::task_status::signalled: j += fmt::format(",\"signal\":{}", r.code); break;
    case wire::task_status::not_started: j += fmt::format(",\"errno\":{}", r.code); break;
    case wire::task_status::crashed: j += fmt::format(",\"crashes\":{}", r.code); break;
    default: break;
  }
}

} // namespace

std::string describe_failure(const wire::result_view& r) {
  std::string what;
  switch (r.status) {
    case wire::task_status::failed: what = fmt::format("exit status {}", r.code); break;
    case wire::task_status::signalled: what = fmt::format("killed by signal {}", r.code); break;
    default: what = std::string(wire::to_string(r.status)); break;
  }
  std::string tail(r.error);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  for (auto& c : tail) {
    if (c == '\n') c = '|'; // one line per failure
  }
  return tail.empty() ? fmt::format("task {} failed: {}", r.id, what)
                      : fmt::format("task {} failed: {}: {}", r.id, what, tail);
}

std::string failure_json(const wire::result_view& r) {
  std::string j = "{";
  append_outcome(j, r);
  j += ",\"payload\":";
  append_json_string(j, r.payload);
  j += ",\"stderr\":";
  append_json_string(j, r.error);
  j += "}\n";
  return j;
}

std::string results_folder(std::string_view task) {
  std::string out;
  std::size_t group = 1;
  while (true) {
    const auto end = task.find('\x1f');
    const auto arg = task.substr(0, end);
    if (!out.empty()) out.push_back('/');
    out += std::to_string(group++);
    out.push_back('/');
    if (arg.empty()) {
      out += "\\_empty";
    } else if (arg == "." || arg == "..") {
      out.append("\\_").append(arg);
    } else {
      for (char c : arg) {
        if (c == '/')
          out += "\\_";
        else
          out.push_back(c);
      }
    }
    if (end == std::string_view::npos) break;
    task.remove_prefix(end + 1);
  }
  return out;
}

std::string status_text(const wire::result_view& r) {
  switch (r.status) {
    case wire::task_status::ok: return "ok\n";
    case wire::task_status::failed: return fmt::format("exit {}\n", r.code);
    case wire::task_status::signalled: return fmt::format("signal {}\n", r.code);
    case wire::task_status::not_started: return "not started\n";
    case wire::task_status::timed_out: return "timed out\n";
    case wire::task_status::crashed: return "crashed\n";
    case wire::task_status::too_large: return "too large\n";
  }
  return "unknown\n";
}

void append_tagged(std::string& out, std::string_view task, std::string_view output) {
  std::string tag(task);
  for (char& c : tag) {
    if (c == '\n' || c == '\x1f') c = ' ';
  }
  tag.push_back('\t');
  while (!output.empty()) {
    const auto end = output.find('\n');
    const auto line = output.substr(0, end);
    out.append(tag).append(line).push_back('\n');
    if (end == std::string_view::npos) break;
    output.remove_prefix(end + 1);
  }
}

std::string result_json(const wire::result_view& r, std::string_view worker) {
  std::string j = "{";
  append_outcome(j, r);
  j += ",\"worker\":";
  append_json_string(j, worker);
  j += fmt::format(",\"runtime_us\":{},\"output\":", r.runtime_us);
  append_json_string(j, r.output);
  if (r.status != wire::task_status::ok) {
    j += ",\"stderr\":";
    append_json_string(j, r.error);
  }
  j += "}\n";
  return j;
}

} // namespace mtask::detail
