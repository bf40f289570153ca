// The three roles of a job: what a process is decides which flags it takes and which sockets it binds.
#pragma once

namespace mtask {

enum class role { ventilator, worker, sink };

} // namespace mtask
